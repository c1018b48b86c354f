import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type pg from 'pg';
import type { Inventory, SequenceInventory, TableInventory } from '../backup/manifest.ts';
import { readPrivileges } from './privileges.ts';

/**
 * What a backup must contain, read from the database: exact per-table row
 * counts, sequence states, large objects and a schema fingerprint.
 *
 * Call it inside a transaction. For a dump, that is the repeatable-read
 * transaction whose snapshot pg_dump imports, so the counts describe exactly
 * the data in the dump. The fingerprint excludes owners, grants and comments,
 * which a restore with --no-owner/--no-privileges legitimately changes.
 */

/** SQL: `n` is a user schema, not one of `$1` (the excluded schemas). */
export const USER_NAMESPACE = `
  n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND NOT (n.nspname = ANY($1::text[]))`;

/** SQL: the object is not a member of an extension. */
export const NOT_FROM_EXTENSION = (classId: string, objId: string) => `
  NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
              WHERE d.classid = '${classId}'::regclass AND d.objid = ${objId} AND d.deptype = 'e')`;

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

async function listTables(client: pg.Client, excludeSchemas: string[]) {
  const { rows } = await client.query<{ schema: string; name: string; kind: 'r' | 'm'; populated: boolean }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, c.relispopulated AS populated
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND ${USER_NAMESPACE}
        AND ${NOT_FROM_EXTENSION('pg_catalog.pg_class', 'c.oid')}
      ORDER BY 1, 2`,
    [excludeSchemas],
  );
  return rows;
}

export async function countRows(client: pg.Client, excludeSchemas: string[] = []): Promise<TableInventory[]> {
  const tables = await listTables(client, excludeSchemas);
  const out: TableInventory[] = [];
  for (const t of tables) {
    let rows = 0;
    if (t.populated) {
      // ONLY: inheritance children are counted as their own tables.
      const res = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ONLY ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`);
      rows = Number(res.rows[0]!.n);
    }
    out.push({ schema: t.schema, name: t.name, kind: t.kind, rows });
  }
  return out;
}

export async function readSequences(client: pg.Client, excludeSchemas: string[] = []): Promise<SequenceInventory[]> {
  const { rows: seqs } = await client.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'S' AND ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_class', 'c.oid')}
      ORDER BY 1, 2`,
    [excludeSchemas],
  );
  const out: SequenceInventory[] = [];
  for (const s of seqs) {
    const res = await client.query<{ last_value: string; is_called: boolean }>(
      `SELECT last_value::text, is_called FROM ${quoteIdent(s.schema)}.${quoteIdent(s.name)}`,
    );
    out.push({ schema: s.schema, name: s.name, lastValue: res.rows[0]!.last_value, isCalled: res.rows[0]!.is_called });
  }
  return out;
}

/**
 * The fingerprint's form. 1: every column with its position. 2: the columns of
 * an inheritance child or a partition without their position, because pg_dump
 * recreates such a table with `INHERITS`/`PARTITION OF`, which puts the
 * inherited columns first: a parent that gained a column after the child was
 * created comes back with the child's columns in another order, faithfully.
 * Manifests say which form they hold; a restore is compared in that form.
 */
export const SCHEMA_FINGERPRINT_VERSION = 2;

/** Canonical lines describing the schema; their sorted sha256 is the fingerprint. */
export async function schemaDescription(client: pg.Client, excludeSchemas: string[] = [], version = SCHEMA_FINGERPRINT_VERSION): Promise<string[]> {
  // Fully qualified names from pg_get_*def regardless of the caller's search_path.
  await client.query(`SET LOCAL search_path TO pg_catalog`);
  const p = [excludeSchemas];
  const lines: string[] = [];
  const add = async (sql: string) => {
    const { rows } = await client.query<{ line: string }>(sql, p);
    for (const r of rows) lines.push(r.line);
  };
  await add(`SELECT 'schema ' || quote_ident(n.nspname) AS line FROM pg_namespace n
              WHERE ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_namespace', 'n.oid')}`);
  await add(`SELECT 'rel ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' kind=' || c.relkind::text
                    || ' persistence=' || c.relpersistence::text
                    || coalesce(' partkey=' || pg_get_partkeydef(c.oid), '')
                    || coalesce(' bound=' || pg_get_expr(c.relpartbound, c.oid), '') AS line
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND ${USER_NAMESPACE}
                AND ${NOT_FROM_EXTENSION('pg_catalog.pg_class', 'c.oid')}`);
  // Version 2: no position for a table with a parent (inheritance child or partition); see SCHEMA_FINGERPRINT_VERSION.
  const position = version >= 2
    ? `CASE WHEN EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) THEN 'inherits'
            ELSE '#' || row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) END`
    : `'#' || row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum)`;
  await add(`SELECT 'col ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' '
                    || ${position} || ' ' || quote_ident(a.attname)
                    || ' ' || format_type(a.atttypid, a.atttypmod)
                    || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                    || coalesce(' default=' || pg_get_expr(ad.adbin, ad.adrelid), '')
                    || CASE WHEN a.attidentity <> '' THEN ' identity=' || a.attidentity::text ELSE '' END
                    || CASE WHEN a.attgenerated <> '' THEN ' generated=' || a.attgenerated::text ELSE '' END
                    || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                            THEN ' collate=' || a.attcollation::regcollation::text ELSE '' END AS line
               FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_type t ON t.oid = a.atttypid
               LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
              WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                AND ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_class', 'c.oid')}`);
  await add(`SELECT 'con ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' ' || quote_ident(co.conname)
                    || ' ' || pg_get_constraintdef(co.oid, true) AS line
               FROM pg_constraint co
               JOIN pg_class c ON c.oid = co.conrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_class', 'c.oid')}`);
  await add(`SELECT 'idx ' || pg_get_indexdef(i.indexrelid) AS line
               FROM pg_index i
               JOIN pg_class c ON c.oid = i.indexrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_class', 'i.indrelid')}`);
  await add(`SELECT 'view ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' ' || pg_get_viewdef(c.oid, true) AS line
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('v', 'm') AND ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_class', 'c.oid')}`);
  await add(`SELECT 'fn ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '('
                    || pg_get_function_identity_arguments(p.oid) || ') kind=' || p.prokind::text
                    || ' returns=' || coalesce(pg_get_function_result(p.oid), '')
                    || ' body=' || md5(coalesce(p.prosrc, '')) AS line
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_proc', 'p.oid')}`);
  await add(`SELECT 'type ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname) || ' typtype=' || t.typtype::text
                    || coalesce(' labels=' || (SELECT string_agg(quote_literal(e.enumlabel), ',' ORDER BY e.enumsortorder)
                                                 FROM pg_enum e WHERE e.enumtypid = t.oid), '') AS line
               FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
              WHERE t.typtype IN ('e', 'd', 'r', 'm') AND ${USER_NAMESPACE}
                AND ${NOT_FROM_EXTENSION('pg_catalog.pg_type', 't.oid')}`);
  await add(`SELECT 'trigger ' || pg_get_triggerdef(tg.oid, true) AS line
               FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE NOT tg.tgisinternal AND ${USER_NAMESPACE}`);
  await add(`SELECT 'extension ' || quote_ident(e.extname) AS line FROM pg_extension e WHERE e.extname <> 'plpgsql' AND $1::text[] IS NOT NULL`);
  if (version >= 2) {
    // Row-level security, policies, event triggers, operators, collations, domain constraints and composite types.
    await add(`SELECT 'rls ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' enabled=' || c.relrowsecurity || ' forced=' || c.relforcerowsecurity AS line
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE (c.relrowsecurity OR c.relforcerowsecurity) AND ${USER_NAMESPACE}`);
    await add(`SELECT 'policy ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' ' || quote_ident(po.polname)
                      || ' cmd=' || po.polcmd::text || ' permissive=' || po.polpermissive
                      || ' roles=' || (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE quote_ident(pg_get_userbyid(r)) END, ',' ORDER BY 1) FROM unnest(po.polroles) r)
                      || coalesce(' using=' || pg_get_expr(po.polqual, po.polrelid), '')
                      || coalesce(' check=' || pg_get_expr(po.polwithcheck, po.polrelid), '') AS line
                 FROM pg_policy po JOIN pg_class c ON c.oid = po.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE ${USER_NAMESPACE}`);
    await add(`SELECT 'evtrigger ' || quote_ident(e.evtname) || ' event=' || e.evtevent || ' enabled=' || e.evtenabled::text
                      || ' fn=' || e.evtfoid::regprocedure::text || coalesce(' tags=' || array_to_string(e.evttags, ','), '') AS line
                 FROM pg_event_trigger e WHERE $1::text[] IS NOT NULL AND ${NOT_FROM_EXTENSION('pg_catalog.pg_event_trigger', 'e.oid')}`);
    await add(`SELECT 'operator ' || quote_ident(n.nspname) || '.' || o.oprname || '(' || coalesce(format_type(o.oprleft, NULL), 'none') || ','
                      || coalesce(format_type(o.oprright, NULL), 'none') || ') fn=' || o.oprcode::regprocedure::text AS line
                 FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
                WHERE ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_operator', 'o.oid')}`);
    await add(`SELECT 'collation ' || quote_ident(n.nspname) || '.' || quote_ident(co.collname) || ' provider=' || co.collprovider::text
                      || ' collate=' || coalesce(co.collcollate, '') || ' ctype=' || coalesce(co.collctype, '') AS line
                 FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace
                WHERE ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_collation', 'co.oid')}`);
    await add(`SELECT 'domcon ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname) || ' ' || quote_ident(co.conname)
                      || ' ' || pg_get_constraintdef(co.oid, true) AS line
                 FROM pg_constraint co JOIN pg_type t ON t.oid = co.contypid JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE co.contypid <> 0 AND ${USER_NAMESPACE} AND ${NOT_FROM_EXTENSION('pg_catalog.pg_type', 't.oid')}`);
    await add(`SELECT 'typeattr ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' #'
                      || row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) || ' ' || quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod) AS line
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'c' AND a.attnum > 0 AND NOT a.attisdropped AND ${USER_NAMESPACE}
                  AND ${NOT_FROM_EXTENSION('pg_catalog.pg_type', 'c.reltype')}`);
  }
  await client.query(`RESET search_path`);
  return lines.sort();
}

export function fingerprint(lines: readonly string[]): string {
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

/** The fingerprint's lines as the manifest stores them: gzip, base64 (schemas of thousands of tables stay small). */
export function packSchemaLines(lines: readonly string[]): string {
  return gzipSync(Buffer.from(lines.join('\n'), 'utf8')).toString('base64');
}

export function unpackSchemaLines(packed: string): string[] {
  const text = gunzipSync(Buffer.from(packed, 'base64')).toString('utf8');
  return text === '' ? [] : text.split('\n');
}

type CatalogInventory = Pick<Inventory, 'largeObjects' | 'schemaFingerprint' | 'schemaFingerprintVersion' | 'schemaLines' | 'extensions'>;

/** Everything but the row counts and sequences: quick catalog reads. */
export async function readCatalog(client: pg.Client, excludeSchemas: string[] = [], version = SCHEMA_FINGERPRINT_VERSION): Promise<CatalogInventory> {
  const description = await schemaDescription(client, excludeSchemas, version);
  const lo = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_catalog.pg_largeobject_metadata`);
  const ext = await client.query<{ extname: string }>(`SELECT extname FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql' ORDER BY 1`);
  return {
    largeObjects: Number(lo.rows[0]!.n),
    schemaFingerprint: fingerprint(description),
    schemaFingerprintVersion: version,
    schemaLines: packSchemaLines(description),
    extensions: ext.rows.map((r) => r.extname),
  };
}

export async function takeInventory(client: pg.Client, options: { excludeSchemas?: string[]; fingerprintVersion?: number } = {}): Promise<Inventory> {
  const exclude = options.excludeSchemas ?? [];
  const sequences = await readSequences(client, exclude);
  const catalog = await readCatalog(client, exclude, options.fingerprintVersion);
  const tables = await countRows(client, exclude);
  const privileges = await readPrivileges(client, exclude);
  return { tables, sequences, ...catalog, privileges };
}
