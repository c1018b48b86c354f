import type pg from 'pg';
import { z } from 'zod';
import { quoteIdent } from './inventory.ts';

/**
 * The cluster-wide part of a database that a database dump does not hold:
 * roles (attributes, memberships, settings; never passwords) and tablespaces.
 * Read structurally in the dump's own transaction, so a restore can decide
 * role by role what to create, and stored beside it with the output of
 * `pg_dumpall --globals-only --no-role-passwords` (for people and other tools).
 * Both read pg_roles, never pg_authid, so they work on RDS and Aurora.
 */
export const GLOBALS_FORMAT_VERSION = 1;

export const roleSchema = z.object({
  name: z.string(),
  superuser: z.boolean(),
  inherit: z.boolean(),
  createRole: z.boolean(),
  createDb: z.boolean(),
  canLogin: z.boolean(),
  replication: z.boolean(),
  bypassRls: z.boolean(),
  connectionLimit: z.number().int(),
  /** `rolvaliduntil` as text (`infinity`, a timestamp), or null. */
  validUntil: z.string().nullable(),
  comment: z.string().nullable(),
});
export type Role = z.infer<typeof roleSchema>;

export const membershipSchema = z.object({
  /** The group role. */
  role: z.string(),
  member: z.string(),
  admin: z.boolean(),
  /** PostgreSQL 16+: the membership's INHERIT and SET options. */
  inherit: z.boolean().optional(),
  set: z.boolean().optional(),
});
export type Membership = z.infer<typeof membershipSchema>;

export const globalsDocumentSchema = z.object({
  formatVersion: z.literal(GLOBALS_FORMAT_VERSION),
  serverVersionNum: z.number().int(),
  /** Every role but the predefined `pg_*` ones. */
  roles: z.array(roleSchema),
  memberships: z.array(membershipSchema),
  /** `ALTER ROLE ... SET` for every database (per-database ones are in the manifest's database state). */
  roleSettings: z.array(z.object({ role: z.string(), setting: z.string() })),
  tablespaces: z.array(z.object({ name: z.string(), owner: z.string() })),
  /** `pg_dumpall --globals-only --no-role-passwords`, verbatim. */
  pgDumpall: z.object({ versionOutput: z.string(), sql: z.string() }),
});
export type GlobalsDocument = z.infer<typeof globalsDocumentSchema>;

/** Roles PostgreSQL itself defines; they cannot be created and exist on every server of the same major. */
export function isPredefinedRole(name: string): boolean {
  return name.startsWith('pg_');
}

/**
 * Roles a managed service creates and owns (RDS and Aurora: rdsadmin,
 * rds_superuser, rds_iam, rds_replication, rdstopmgr, ...). lifeboat never
 * recreates them from a backup; where the target lacks one that the database
 * needs, a NOLOGIN placeholder of that name is created and reported.
 */
export function isManagedServiceRole(name: string): boolean {
  return /^(rdsadmin|rdsrepladmin|rdstopmgr|rdsproxyadmin)$/.test(name) || /^rds_/.test(name) || /^aurora_/.test(name);
}

/** A role whose membership hands out power beyond data: a superuser, or one that may create roles, bypass RLS or replicate. */
function isPowerful(role: Role | undefined): boolean {
  return Boolean(role && (role.superuser || role.createRole || role.bypassRls || role.replication));
}

/** PostgreSQL 16+: a membership that only lets the member administer the role (what CREATEROLE users get on every role they create). */
function isAdminOnly(m: Membership): boolean {
  return m.admin && m.inherit === false && m.set === false;
}

export async function readGlobals(client: pg.Client): Promise<Omit<GlobalsDocument, 'pgDumpall'>> {
  const version = await client.query<{ num: string }>(`SELECT current_setting('server_version_num') AS num`);
  const serverVersionNum = Number(version.rows[0]!.num);
  const roles = await client.query<{
    name: string; superuser: boolean; inherit: boolean; createrole: boolean; createdb: boolean; canlogin: boolean;
    replication: boolean; bypassrls: boolean; connlimit: number; validuntil: string | null; comment: string | null;
  }>(
    `SELECT r.rolname AS name, r.rolsuper AS superuser, r.rolinherit AS inherit, r.rolcreaterole AS createrole, r.rolcreatedb AS createdb,
            r.rolcanlogin AS canlogin, r.rolreplication AS replication, r.rolbypassrls AS bypassrls, r.rolconnlimit AS connlimit,
            r.rolvaliduntil::text AS validuntil, pg_catalog.shobj_description(r.oid, 'pg_authid') AS comment
       FROM pg_catalog.pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY 1`,
  );
  const options = serverVersionNum >= 160000 ? ', m.inherit_option AS inherit, m.set_option AS set' : '';
  const memberships = await client.query<{ role: string; member: string; admin: boolean; inherit?: boolean; set?: boolean }>(
    `SELECT g.rolname AS role, u.rolname AS member, m.admin_option AS admin${options}
       FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid JOIN pg_catalog.pg_roles u ON u.oid = m.member
      ORDER BY 1, 2`,
  );
  const settings = await client.query<{ role: string; setting: string }>(
    `SELECT pg_catalog.pg_get_userbyid(s.setrole) AS role, unnest(s.setconfig) AS setting
       FROM pg_catalog.pg_db_role_setting s WHERE s.setdatabase = 0 AND s.setrole <> 0 ORDER BY 1, 2`,
  );
  const tablespaces = await client.query<{ name: string; owner: string }>(
    `SELECT spcname AS name, pg_catalog.pg_get_userbyid(spcowner) AS owner FROM pg_catalog.pg_tablespace
      WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY 1`,
  );
  return {
    formatVersion: GLOBALS_FORMAT_VERSION,
    serverVersionNum,
    roles: roles.rows.map((r) => ({
      name: r.name, superuser: r.superuser, inherit: r.inherit, createRole: r.createrole, createDb: r.createdb, canLogin: r.canlogin,
      replication: r.replication, bypassRls: r.bypassrls, connectionLimit: r.connlimit, validUntil: r.validuntil, comment: r.comment,
    })),
    memberships: memberships.rows.map((m) => ({ role: m.role, member: m.member, admin: m.admin, ...(m.inherit === undefined ? {} : { inherit: m.inherit, set: m.set }) })),
    roleSettings: settings.rows,
    tablespaces: tablespaces.rows,
  };
}

/** Tablespaces other than the default that this database's relations live in. */
export async function tablespacesUsed(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT DISTINCT t.spcname AS name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_tablespace t ON t.oid = c.reltablespace
      WHERE c.reltablespace <> 0 AND t.spcname NOT IN ('pg_default', 'pg_global') ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

/**
 * The roles a restore brings: those the database names (owners, grantees,
 * settings) and every role joined to them through memberships, up (the groups
 * they belong to) and down (the login roles that use them), so the
 * application's login role comes back with the group that holds its grants.
 * Predefined and managed-service roles are not followed.
 */
export function rolesToBring(globals: Pick<GlobalsDocument, 'roles' | 'memberships'>, needed: readonly string[]): string[] {
  const byName = new Map(globals.roles.map((r) => [r.name, r]));
  const followed = (name: string) => byName.has(name) && !isPredefinedRole(name) && !isManagedServiceRole(name);
  const out = new Set<string>();
  const queue = needed.filter(followed);
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (out.has(name)) continue;
    out.add(name);
    for (const m of globals.memberships) {
      // Administration-only memberships (PostgreSQL 16 gives one to whoever created a role) join nothing.
      if (isAdminOnly(m)) continue;
      // Up: the groups this role uses, unless they hand out power (those are granted by people, not restores).
      if (m.member === name && followed(m.role) && !isPowerful(byName.get(m.role))) queue.push(m.role);
      // Down: the login roles that use this group, never an administrator of it.
      const member = byName.get(m.member);
      if (m.role === name && followed(m.member) && member?.canLogin && !isPowerful(member)) queue.push(m.member);
    }
  }
  return [...out].sort();
}

export interface TargetRoles {
  currentUser: string;
  superuser: boolean;
  createRole: boolean;
  existing: Set<string>;
  /** Roles the current user may SET ROLE to, which PostgreSQL 16+ needs to give them objects (membership on 15 and older). */
  canSet: Set<string>;
}

export async function readTargetRoles(client: pg.Client): Promise<TargetRoles> {
  const me = await client.query<{ name: string; superuser: boolean; createrole: boolean }>(
    `SELECT rolname AS name, rolsuper AS superuser, rolcreaterole AS createrole FROM pg_catalog.pg_roles WHERE rolname = current_user`,
  );
  const version = Number((await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!.v);
  const all = await client.query<{ name: string; can_set: boolean }>(
    `SELECT rolname AS name, pg_catalog.pg_has_role(current_user, oid, '${version >= 160000 ? 'SET' : 'MEMBER'}') AS can_set
       FROM pg_catalog.pg_roles`,
  );
  const row = me.rows[0]!;
  return {
    currentUser: row.name,
    superuser: row.superuser,
    createRole: row.createrole,
    existing: new Set(all.rows.map((r) => r.name)),
    canSet: new Set(all.rows.filter((r) => r.can_set).map((r) => r.name)),
  };
}

export interface RolesReport {
  /** Roles this restore created. */
  created: string[];
  /** Created roles that can log in and have no password yet. */
  needPassword: string[];
  /** Managed-service roles the database names and the target lacked, created NOLOGIN so owners and grants could be kept. */
  placeholders: string[];
  /** Memberships granted (`group TO member`). */
  memberships: string[];
  /** What was not brought back, each with why. */
  skipped: string[];
  /** Created roles granted to the restoring user so it could give them objects (it is no superuser); revoked once the restore is done. */
  grantedToRestoringUser: string[];
}

/** Settings that would change who the restoring session is, never applied from a backup. */
const REFUSED_SETTINGS = new Set(['role', 'session_authorization']);

const ATTRIBUTES: { key: keyof Role; on: string; off: string; privileged?: boolean }[] = [
  { key: 'inherit', on: 'INHERIT', off: 'NOINHERIT' },
  { key: 'canLogin', on: 'LOGIN', off: 'NOLOGIN' },
  { key: 'createDb', on: 'CREATEDB', off: 'NOCREATEDB', privileged: true },
  { key: 'createRole', on: 'CREATEROLE', off: 'NOCREATEROLE', privileged: true },
  { key: 'replication', on: 'REPLICATION', off: 'NOREPLICATION', privileged: true },
  { key: 'bypassRls', on: 'BYPASSRLS', off: 'NOBYPASSRLS', privileged: true },
];

/**
 * Creates the roles a restore needs and the target lacks, without passwords,
 * then the memberships that join them. Never SUPERUSER (reported instead);
 * an attribute the restoring user may not give (REPLICATION, BYPASSRLS on a
 * managed service) is dropped and reported rather than failing the restore.
 * Runs in one transaction with a savepoint per item; returns what it did.
 */
export async function createMissingRoles(client: pg.Client, globals: GlobalsDocument, needed: readonly string[]): Promise<RolesReport> {
  const report: RolesReport = { created: [], needPassword: [], placeholders: [], memberships: [], skipped: [], grantedToRestoringUser: [] };
  const target = await readTargetRoles(client);
  const byName = new Map(globals.roles.map((r) => [r.name, r]));
  const bring = rolesToBring(globals, needed).filter((n) => !target.existing.has(n));
  const attempt = async (statement: string): Promise<string | undefined> => {
    try {
      await client.query('SAVEPOINT lifeboat_role');
      await client.query(statement);
      await client.query('RELEASE SAVEPOINT lifeboat_role');
      return undefined;
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT lifeboat_role');
      return (error as Error).message;
    }
  };
  const claim = async (name: string) => {
    // A non-superuser can give objects only to roles it is a member of (RDS's master user is no superuser).
    if (target.superuser) return;
    const failed = await attempt(`GRANT ${quoteIdent(name)} TO ${quoteIdent(target.currentUser)}`);
    if (failed) report.skipped.push(`granting ${name} to ${target.currentUser} (needed to give it objects): ${failed}`);
    else report.grantedToRestoringUser.push(name);
  };

  await client.query('BEGIN');
  try {
    for (const name of bring) {
      const role = byName.get(name)!;
      const dropped: string[] = [];
      // A source superuser comes back as a plain role: no attribute of its that hands out power.
      const kept = (a: (typeof ATTRIBUTES)[number]) => role[a.key] && !(role.superuser && a.privileged);
      let attributes = ATTRIBUTES.map((a) => (kept(a) ? a.on : a.off));
      if (role.superuser) {
        dropped.push(`SUPERUSER${ATTRIBUTES.filter((a) => a.privileged && role[a.key]).map((a) => `, ${a.on}`).join('')} (a superuser of the source comes back as a plain role; grant what it really needs yourself)`);
      }
      const options = () =>
        [...attributes, `CONNECTION LIMIT ${Number(role.connectionLimit)}`, ...(role.validUntil ? [`VALID UNTIL ${client.escapeLiteral(role.validUntil)}`] : [])].join(' ');
      let failed = await attempt(`CREATE ROLE ${quoteIdent(name)} WITH ${options()}`);
      if (failed && /permission denied|must be superuser|must have/i.test(failed)) {
        // The restoring user may not give every attribute (managed services): keep the role, drop those.
        const privileged = ATTRIBUTES.filter((a) => a.privileged && kept(a)).map((a) => a.on);
        attributes = attributes.map((a) => (privileged.includes(a) ? `NO${a}` : a));
        dropped.push(...privileged.map((a) => `${a} (the restoring user may not give it: ${failed})`));
        failed = await attempt(`CREATE ROLE ${quoteIdent(name)} WITH ${options()}`);
      }
      if (failed) {
        report.skipped.push(`role ${name}: ${failed}`);
        continue;
      }
      report.created.push(name);
      target.existing.add(name);
      if (role.canLogin) report.needPassword.push(name);
      for (const d of dropped) report.skipped.push(`role ${name}: created without ${d}`);
      if (role.comment !== null) await attempt(`COMMENT ON ROLE ${quoteIdent(name)} IS ${client.escapeLiteral(role.comment)}`);
      await claim(name);
    }
    // Managed-service roles the database itself names (an owner, a grantee) and the target lacks.
    for (const name of needed.filter((n) => !target.existing.has(n) && isManagedServiceRole(n))) {
      const failed = await attempt(`CREATE ROLE ${quoteIdent(name)} WITH NOLOGIN`);
      if (failed) {
        report.skipped.push(`managed-service role ${name} (named by the database, missing on the target): ${failed}`);
        continue;
      }
      report.placeholders.push(name);
      target.existing.add(name);
      await attempt(`COMMENT ON ROLE ${quoteIdent(name)} IS ${client.escapeLiteral('lifeboat: NOLOGIN placeholder for a managed-service role the restored database names')}`);
      await claim(name);
    }
    // Memberships join roles this restore created (placeholders stand alone).
    const created = new Set(report.created);
    const current = await client.query<{ role: string; member: string }>(
      `SELECT g.rolname AS role, u.rolname AS member FROM pg_catalog.pg_auth_members m
         JOIN pg_catalog.pg_roles g ON g.oid = m.roleid JOIN pg_catalog.pg_roles u ON u.oid = m.member`,
    );
    const has = new Set(current.rows.map((m) => `${m.role}\u0000${m.member}`));
    const targetMajor = Math.floor(Number((await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!.v) / 10_000);
    for (const m of globals.memberships) {
      if (!created.has(m.member) && !created.has(m.role)) continue; // memberships of roles that were there are left alone
      if (isAdminOnly(m)) continue; // PostgreSQL 16's creator memberships: the target makes its own
      if (has.has(`${m.role}\u0000${m.member}`)) continue;
      const what = `GRANT ${m.role} TO ${m.member}`;
      // Power is granted by people, not restores: predefined and managed-service roles, and roles that may do more than use data.
      if (isPredefinedRole(m.role) || isManagedServiceRole(m.role) || isPowerful(byName.get(m.role))) {
        report.skipped.push(`${what}: ${m.role} grants more than access to data (a predefined, managed-service or privileged role); grant it yourself if ${m.member} needs it`);
        continue;
      }
      if (!target.existing.has(m.role) || !target.existing.has(m.member)) {
        report.skipped.push(`${what}: role ${target.existing.has(m.role) ? m.member : m.role} does not exist on the target`);
        continue;
      }
      if (targetMajor < 16 && (m.inherit === false || m.set === false)) {
        report.skipped.push(`${what}: the source grants it WITH ${m.inherit === false ? 'INHERIT FALSE' : ''}${m.inherit === false && m.set === false ? ', ' : ''}${m.set === false ? 'SET FALSE' : ''}, which PostgreSQL ${targetMajor} cannot express; grant it yourself`);
        continue;
      }
      const options = targetMajor >= 16 && m.inherit !== undefined ? ` WITH INHERIT ${m.inherit ? 'TRUE' : 'FALSE'}, SET ${m.set ? 'TRUE' : 'FALSE'}` : '';
      const failed = await attempt(`GRANT ${quoteIdent(m.role)} TO ${quoteIdent(m.member)}${options}`);
      if (failed) report.skipped.push(`${what}: ${failed}`);
      else report.memberships.push(`${m.role} TO ${m.member}${m.admin ? ' (without the ADMIN OPTION the source gives: grant it yourself if needed)' : ''}`);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  // ALTER ROLE ... SET, each in its own transaction: set_config(..., true) lets the server's own parser
  // read list values such as search_path, and ends with the transaction, so the restoring session is
  // never changed. Settings that would change who the session is are refused; values are never printed.
  for (const setting of globals.roleSettings.filter((x) => report.created.includes(x.role))) {
    const at = setting.setting.indexOf('=');
    const [name, value] = [setting.setting.slice(0, at), setting.setting.slice(at + 1)];
    if (REFUSED_SETTINGS.has(name.toLowerCase())) {
      report.skipped.push(`ALTER ROLE ${setting.role} SET ${name}: refused (it would change who a session is)`);
      continue;
    }
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_catalog.set_config($1, $2, true)', [name, value]);
      await client.query(`ALTER ROLE ${quoteIdent(setting.role)} SET ${quoteIdent(name)} FROM CURRENT`);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      report.skipped.push(`ALTER ROLE ${setting.role} SET ${name}: ${(error as Error).message.replaceAll(value, '...')}`);
    }
  }
  return report;
}

/** Takes back the memberships a non-superuser restore gave itself to hand objects to the roles it created. */
export async function releaseClaimedRoles(client: pg.Client, report: RolesReport): Promise<string[]> {
  const left: string[] = [];
  for (const name of report.grantedToRestoringUser) {
    try {
      await client.query(`REVOKE ${quoteIdent(name)} FROM CURRENT_USER`);
    } catch (error) {
      left.push(`${name} (${(error as Error).message})`);
    }
  }
  return left;
}

/** Drops roles a failed restore created (best effort: a role that still owns something elsewhere stays, and is named). */
export async function dropCreatedRoles(client: pg.Client, names: readonly string[]): Promise<string[]> {
  const left: string[] = [];
  for (const name of [...names].reverse()) {
    try {
      await client.query(`DROP ROLE IF EXISTS ${quoteIdent(name)}`);
    } catch (error) {
      left.push(`${name} (${(error as Error).message})`);
    }
  }
  return left;
}
