import type pg from 'pg';
import { z } from 'zod';
import { quoteIdent } from './inventory.ts';

/**
 * What belongs to the database itself rather than to what is in it, and which
 * pg_dump without `--create` does not carry: `ALTER DATABASE ... SET` and
 * `ALTER ROLE ... IN DATABASE ... SET` settings, the owner and the database's
 * ACL. Read in the dump's transaction, recorded in the manifest, applied after
 * a verified restore (or reported as not restored, with why).
 */
export const databaseStateSchema = z.object({
  owner: z.string(),
  /** `pg_database.datacl` as aclitem texts; null: the defaults (PUBLIC may connect and create temp tables). */
  acl: z.array(z.string()).nullable(),
  /** `name=value` as pg_db_role_setting stores it; `role` for `ALTER ROLE ... IN DATABASE`. */
  settings: z.array(z.object({ role: z.string().optional(), setting: z.string() })),
});
export type DatabaseState = z.infer<typeof databaseStateSchema>;

/** What no pg_dump archive holds, so a restore cannot bring it back: said in every report so nobody mistakes it for loss. */
export const NOT_CARRIED_BY_PG_DUMP = [
  'planner statistics (run ANALYZE on the restored database before judging its performance)',
  'role passwords (never stored: lifeboat keeps roles, attributes and memberships without them)',
  'tablespace locations (recorded by name only: the target creates them, or the restore uses --no-tablespaces)',
  'replication slots, publications\' slot state and subscriptions\' progress',
  'cluster-wide settings (postgresql.conf, RDS parameter groups)',
] as const;

export async function readDatabaseState(client: pg.Client): Promise<DatabaseState> {
  const db = await client.query<{ owner: string; acl: string[] | null }>(
    `SELECT pg_catalog.pg_get_userbyid(datdba) AS owner, datacl::text[] AS acl FROM pg_catalog.pg_database WHERE datname = current_database()`,
  );
  const settings = await client.query<{ role: string | null; setting: string }>(
    `SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole) END AS role, unnest(s.setconfig) AS setting
       FROM pg_catalog.pg_db_role_setting s
      WHERE s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
      ORDER BY 1 NULLS FIRST, 2`,
  );
  return {
    owner: db.rows[0]!.owner,
    acl: db.rows[0]!.acl,
    settings: settings.rows.map((r) => ({ ...(r.role ? { role: r.role } : {}), setting: r.setting })),
  };
}

export interface AppliedDatabaseState {
  restored: string[];
  /** Each with why. */
  notRestored: string[];
  notCarried: readonly string[];
}

const PRIVILEGES: Record<string, string> = { C: 'CREATE', T: 'TEMPORARY', c: 'CONNECT' };

/**
 * Applies a recorded database state to `client`'s current database, item by
 * item: what the target lacks (a role) or refuses (a setting it does not
 * know, a privilege the restoring user lacks) is reported, never fatal.
 * Settings go through the server's own parser (set_config, then SET ... FROM
 * CURRENT), so list values such as search_path keep their quoting.
 */
export async function applyDatabaseState(client: pg.Client, state: DatabaseState): Promise<AppliedDatabaseState> {
  const out: AppliedDatabaseState = { restored: [], notRestored: [], notCarried: NOT_CARRIED_BY_PG_DUMP };
  const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
  const db = quoteIdent(rows[0]!.db);
  const roleExists = async (role: string) => ((await client.query('SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1', [role])).rowCount ?? 0) > 0;
  const attempt = async (what: string, statements: () => Promise<void>) => {
    try {
      await client.query('SAVEPOINT lifeboat_state');
      await statements();
      await client.query('RELEASE SAVEPOINT lifeboat_state');
      out.restored.push(what);
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT lifeboat_state');
      out.notRestored.push(`${what}: ${(error as Error).message}`);
    }
  };
  await client.query('BEGIN');
  try {
    for (const { role, setting } of state.settings) {
      const at = setting.indexOf('=');
      const [name, value] = [setting.slice(0, at), setting.slice(at + 1)];
      const what = role ? `ALTER ROLE ${role} IN DATABASE SET ${setting}` : `ALTER DATABASE SET ${setting}`;
      if (role && !(await roleExists(role))) {
        out.notRestored.push(`${what}: role "${role}" does not exist on the target`);
        continue;
      }
      await attempt(what, async () => {
        await client.query('SELECT pg_catalog.set_config($1, $2, true)', [name, value]);
        await client.query(`${role ? `ALTER ROLE ${quoteIdent(role)} IN DATABASE ${db}` : `ALTER DATABASE ${db}`} SET ${quoteIdent(name)} FROM CURRENT`);
      });
    }
    if (await roleExists(state.owner)) await attempt(`owner ${state.owner}`, async () => void (await client.query(`ALTER DATABASE ${db} OWNER TO ${quoteIdent(state.owner)}`)));
    else out.notRestored.push(`owner ${state.owner}: the role does not exist on the target (the database stays owned by the restoring user)`);
    if (state.acl) {
      await attempt('REVOKE ALL ON DATABASE FROM PUBLIC (the recorded ACL replaces the defaults)', async () => void (await client.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`)));
      for (const item of state.acl) {
        const match = /^(.*)=([A-Za-z*]*)\/(.*)$/.exec(item);
        if (!match) {
          out.notRestored.push(`database privilege ${item}: not an aclitem lifeboat can read`);
          continue;
        }
        const grantee = match[1]!.replace(/^"(.*)"$/, '$1').replace(/""/g, '"');
        if (grantee === state.owner) continue; // the owner's own rights come with ownership
        if (grantee && !(await roleExists(grantee))) {
          out.notRestored.push(`database privilege ${item}: role "${grantee}" does not exist on the target`);
          continue;
        }
        for (const [letter, privilege] of Object.entries(PRIVILEGES)) {
          const at = match[2]!.indexOf(letter);
          if (at < 0) continue;
          const withGrant = match[2]![at + 1] === '*' ? ' WITH GRANT OPTION' : '';
          await attempt(`GRANT ${privilege} ON DATABASE TO ${grantee || 'PUBLIC'}${withGrant}`, async () => void (await client.query(`GRANT ${privilege} ON DATABASE ${db} TO ${grantee ? quoteIdent(grantee) : 'PUBLIC'}${withGrant}`)));
        }
      }
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  return out;
}
