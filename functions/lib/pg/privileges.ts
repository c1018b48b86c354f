import type pg from 'pg';
import { z } from 'zod';
import { fingerprint, NOT_FROM_EXTENSION, packSchemaLines, USER_NAMESPACE } from './inventory.ts';

/**
 * Who owns what and who may do what in a database, as a fingerprint the
 * manifest records and every restore and drill compares: the owner and ACL of
 * each schema, table, view, materialized view, foreign table, sequence and
 * function, column ACLs, and default privileges. Objects that belong to an
 * extension are left out (their owner is whoever created the extension).
 *
 * One line per object, tab-separated: kind, quoted name, owner, ACL. A NULL
 * ACL is written as the defaults it stands for (acldefault), so a restore that
 * writes the same privileges explicitly still matches. In an ACL the owner is
 * written `OWNER` and the grantor is left out, so the line does not change
 * when a different user restores the grants (PostgreSQL records who ran them).
 */
export const PRIVILEGES_FINGERPRINT_VERSION = 1;

export const privilegesInventorySchema = z.object({
  /** The description's form (PRIVILEGES_FINGERPRINT_VERSION). */
  version: z.number().int().min(1),
  /** sha256 over the lines. */
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  /** The lines, gzip and base64, so a mismatch names the objects and a partial restore can be checked. */
  lines: z.string(),
  /** Every role named as an owner or grantee (the database's own owner and ACL included), for the restore's preflight. */
  roles: z.array(z.string()),
  /** Roles named by row-level security policies: pg_restore needs them even with --no-owner --no-privileges. @default [] */
  policyRoles: z.array(z.string()).optional(),
  /**
   * Grants made by a role other than the object's owner (through WITH GRANT
   * OPTION): pg_restore replays them with SET SESSION AUTHORIZATION, which
   * only a superuser may run. @default 0
   */
  delegatedGrants: z.number().int().nonnegative().optional(),
});
export type PrivilegesInventory = z.infer<typeof privilegesInventorySchema>;


/** `grantee:privilege[*]` items of an ACL, owner as OWNER, PUBLIC as PUBLIC, sorted. */
const aclItems = (acl: string, owner: string) => `
  ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' WHEN a.grantee = ${owner} THEN 'OWNER' ELSE pg_catalog.pg_get_userbyid(a.grantee) END
               || ':' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END
          FROM pg_catalog.aclexplode(${acl}) a ORDER BY 1)`;

const KINDS: Record<string, string> = { r: 'table', p: 'table', v: 'view', m: 'materialized view', f: 'foreign table', S: 'sequence' };
const DEFAULT_ACL_KINDS: Record<string, string> = { r: 'tables', S: 'sequences', f: 'functions', T: 'types', n: 'schemas' };

interface Row {
  kind: string;
  name: string;
  owner: string | null;
  acl: string[];
}

const q = (name: string) => JSON.stringify(name);

/** Grantee names of `role:privilege` items, for the referenced-roles list. */
function granteesOf(items: readonly string[]): string[] {
  return items.map((i) => i.slice(0, i.lastIndexOf(':'))).filter((g) => g !== 'OWNER' && g !== 'PUBLIC');
}

/** Groups `role:priv` items into `role=priv,priv` so a line stays readable. */
function formatAcl(items: readonly string[]): string {
  const by = new Map<string, string[]>();
  for (const item of items) {
    const at = item.lastIndexOf(':');
    const grantee = item.slice(0, at);
    by.set(grantee, [...(by.get(grantee) ?? []), item.slice(at + 1)]);
  }
  return [...by.entries()].map(([g, p]) => `${g === 'OWNER' || g === 'PUBLIC' ? g : q(g)}=${p.sort().join(',')}`).sort().join(' ');
}

/** Reads the description; call it in the dump's snapshot. */
export async function privilegesDescription(client: pg.Client, excludeSchemas: string[] = []): Promise<{ lines: string[]; roles: string[] }> {
  const rows: Row[] = [];
  const schemas = await client.query<{ name: string; owner: string; acl: string[] }>(
    `SELECT n.nspname AS name, pg_catalog.pg_get_userbyid(n.nspowner) AS owner,
            ${aclItems(`coalesce(n.nspacl, pg_catalog.acldefault('n'::"char", n.nspowner))`, 'n.nspowner')} AS acl
       FROM pg_catalog.pg_namespace n
      WHERE ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_namespace', 'n.oid')}`,
    [excludeSchemas],
  );
  rows.push(...schemas.rows.map((r) => ({ kind: 'schema', name: q(r.name), owner: r.owner, acl: r.acl })));

  const relations = await client.query<{ schema: string; name: string; relkind: string; owner: string; acl: string[] }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind, pg_catalog.pg_get_userbyid(c.relowner) AS owner,
            ${aclItems(`coalesce(c.relacl, pg_catalog.acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))`, 'c.relowner')} AS acl
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND c.relpersistence <> 't'
        AND ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_class', 'c.oid')}`,
    [excludeSchemas],
  );
  rows.push(...relations.rows.map((r) => ({ kind: KINDS[r.relkind]!, name: `${q(r.schema)}.${q(r.name)}`, owner: r.owner, acl: r.acl })));

  const columns = await client.query<{ schema: string; table: string; name: string; acl: string[] }>(
    `SELECT n.nspname AS schema, c.relname AS table, a.attname AS name,
            ARRAY(SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(x.grantee) END
                         || ':' || x.privilege_type || CASE WHEN x.is_grantable THEN '*' ELSE '' END
                    FROM pg_catalog.aclexplode(a.attacl) x ORDER BY 1) AS acl
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_class', 'c.oid')}`,
    [excludeSchemas],
  );
  rows.push(...columns.rows.map((r) => ({ kind: 'column', name: `${q(r.schema)}.${q(r.table)}.${q(r.name)}`, owner: null, acl: r.acl })));

  const functions = await client.query<{ schema: string; name: string; args: string; owner: string; acl: string[] }>(
    `SELECT n.nspname AS schema, p.proname AS name, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args,
            pg_catalog.pg_get_userbyid(p.proowner) AS owner,
            ${aclItems(`coalesce(p.proacl, pg_catalog.acldefault('f'::"char", p.proowner))`, 'p.proowner')} AS acl
       FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      WHERE ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_proc', 'p.oid')}`,
    [excludeSchemas],
  );
  rows.push(...functions.rows.map((r) => ({ kind: 'function', name: `${q(r.schema)}.${q(r.name)}(${r.args})`, owner: r.owner, acl: r.acl })));

  const defaults = await client.query<{ role: string; schema: string | null; objtype: string; acl: string[] }>(
    `SELECT pg_catalog.pg_get_userbyid(d.defaclrole) AS role, n.nspname AS schema, d.defaclobjtype::text AS objtype,
            ${aclItems('d.defaclacl', 'd.defaclrole')} AS acl
       FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
      WHERE d.defaclnamespace = 0 OR (${USER_NAMESPACE})`,
    [excludeSchemas],
  );
  rows.push(
    ...defaults.rows.map((r) => ({
      kind: 'default privileges',
      name: `for ${q(r.role)} on ${DEFAULT_ACL_KINDS[r.objtype] ?? r.objtype} in ${r.schema === null ? 'every schema' : q(r.schema)}`,
      owner: r.role,
      acl: r.acl,
    })),
  );

  const roles = new Set<string>();
  for (const r of rows) {
    if (r.owner) roles.add(r.owner);
    for (const g of granteesOf(r.acl)) roles.add(g);
  }
  const lines = rows.map((r) => [r.kind, r.name, r.owner === null ? '' : `owner=${q(r.owner)}`, `acl=${formatAcl(r.acl)}`].join('\t')).sort();
  return { lines, roles: [...roles].sort() };
}

export async function readPrivileges(client: pg.Client, excludeSchemas: string[] = []): Promise<PrivilegesInventory> {
  const { lines, roles } = await privilegesDescription(client, excludeSchemas);
  const policies = await client.query<{ role: string }>(
    `SELECT DISTINCT pg_catalog.pg_get_userbyid(r.oid) AS role
       FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       CROSS JOIN LATERAL unnest(p.polroles) AS r(oid)
      WHERE r.oid <> 0 AND ${USER_NAMESPACE} ORDER BY 1`,
    [excludeSchemas],
  );
  const policyRoles = policies.rows.map((r) => r.role);
  const delegated = await client.query<{ n: string }>(
    `SELECT (
       (SELECT count(*) FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a WHERE a.grantor <> n.nspowner AND ${USER_NAMESPACE})
     + (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, pg_catalog.aclexplode(c.relacl) a
         WHERE a.grantor <> c.relowner AND ${USER_NAMESPACE})
     + (SELECT count(*) FROM pg_catalog.pg_attribute t JOIN pg_catalog.pg_class c ON c.oid = t.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
              pg_catalog.aclexplode(t.attacl) a WHERE a.grantor <> c.relowner AND ${USER_NAMESPACE})
     + (SELECT count(*) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace, pg_catalog.aclexplode(p.proacl) a
         WHERE a.grantor <> p.proowner AND ${USER_NAMESPACE}))::text AS n`,
    [excludeSchemas],
  );
  return {
    version: PRIVILEGES_FINGERPRINT_VERSION,
    fingerprint: fingerprint(lines),
    lines: packSchemaLines(lines),
    roles: [...new Set([...roles, ...policyRoles])].sort(),
    policyRoles,
    delegatedGrants: Number(delegated.rows[0]!.n),
  };
}

/** The `grantee=privileges` entries of a line's `acl=` field (grantees are JSON-quoted and may hold spaces). */
function aclEntries(field: string): string[] {
  return [...field.slice('acl='.length).matchAll(/(?:"(?:[^"\\]|\\.)*"|OWNER|PUBLIC)=\S+/g)].map((m) => m[0]);
}

/** What a restore was asked to leave out, so the comparison leaves it out too. */
export interface PrivilegesProjection {
  /** --no-owner: owners are whoever restored. */
  owners: boolean;
  /** --no-privileges: ACLs and default privileges are the target's defaults. */
  acls: boolean;
  /** Privilege names compared on neither side (those the backup's server did not have). @default none */
  unknownPrivileges?: readonly string[];
}

/** The lines as they should compare after a restore that kept only `keep`. */
export function projectPrivilegeLines(lines: readonly string[], keep: PrivilegesProjection): string[] {
  const unknown = new Set(keep.unknownPrivileges ?? []);
  const out: string[] = [];
  for (const line of lines) {
    const [kind, name, owner, acl] = line.split('\t') as [string, string, string, string];
    if (!keep.acls && (kind === 'column' || kind === 'default privileges')) continue;
    let entries = aclEntries(acl);
    // Without owners, the owner's own (default) entry names whoever restored: leave it out.
    if (!keep.owners) entries = entries.filter((e) => !e.startsWith('OWNER='));
    // Privileges the source's server did not have (MAINTAIN before 17) are the target's defaults, not a difference.
    if (unknown.size > 0) {
      entries = entries
        .map((e) => {
          const at = e.lastIndexOf('=');
          const privileges = e.slice(at + 1).split(',').filter((p) => !unknown.has(p.replace(/\*$/, '')));
          return privileges.length ? `${e.slice(0, at)}=${privileges.join(',')}` : '';
        })
        .filter(Boolean);
    }
    out.push([kind, name, keep.owners ? owner : '', keep.acls ? `acl=${entries.join(' ')}` : ''].join('\t'));
  }
  return out.sort();
}

/** Privileges a server of this major does not know, which a newer target adds to its defaults. */
export function privilegesUnknownTo(serverVersionNum: number): string[] {
  return serverVersionNum < 170000 ? ['MAINTAIN'] : [];
}


/** The roles named as owners in the lines (a non-superuser restoring them must be able to act as each). */
export function ownersIn(lines: readonly string[]): string[] {
  const owners = new Set<string>();
  for (const line of lines) {
    const owner = line.split('\t')[2];
    if (owner?.startsWith('owner=')) owners.add(JSON.parse(owner.slice('owner='.length)) as string);
  }
  return [...owners].sort();
}
