import { createHash } from 'node:crypto';
import type pg from 'pg';

/**
 * Content checksums of a database, to prove a restore brought back exactly
 * what was dumped.
 *
 * Keys:
 * - `"schema"."name"` (both parts always double-quoted, `"` doubled) for every
 *   table, partition (leaf), materialized view and sequence outside
 *   pg_catalog/information_schema/pg_toast, except tables owned by an
 *   extension (they are the extension's, not the user's). Partitioned
 *   parents are left out: they hold no rows, their partitions are listed.
 * - `large object <oid>` for every large object (pg_dump keeps their OIDs).
 *
 * `rows` is the row count for tables and materialized views, 1 for a
 * sequence, and the size in bytes for a large object.
 */
export interface TableChecksum {
  rows: number;
  sha256: string;
}

export type TableChecksums = Map<string, TableChecksum>;

/**
 * Session settings under which a row's text form (`t::text`) is the same on
 * any server, before and after dump/restore: dates, intervals, bytea and
 * floats print one way, and reg* values print schema-qualified.
 */
const DETERMINISTIC_OUTPUT: Record<string, string> = {
  TimeZone: 'UTC',
  DateStyle: 'ISO, YMD',
  IntervalStyle: 'postgres',
  bytea_output: 'hex',
  extra_float_digits: '3',
  lc_monetary: 'C',
  search_path: 'pg_catalog',
};

/** Bytes of a large object hashed per round trip: the server sends back only a digest. */
const LARGE_OBJECT_CHUNK = 8 * 1024 * 1024;

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `"schema"."name"`, the key format of {@link tableChecksums}. */
export function relationKey(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

function sha256(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

interface RelationRow {
  schema: string;
  name: string;
  relkind: 'r' | 'm' | 'S';
  populated: boolean;
}

/**
 * Checksums every user table, partition, materialized view, sequence and
 * large object of the client's database.
 *
 * Everything is read in one REPEATABLE READ, READ ONLY transaction, so the
 * result is one consistent snapshot; session settings are SET LOCAL and end
 * with it. The client must not be inside a transaction already, and needs
 * read access to everything (a superuser or the owner).
 *
 * Rows are hashed on the server and only digests come back, so large tables
 * cost one sequential scan each and no transfer. A table's digest is
 * sha256(count, Σ hi64(md5(row::text)), Σ lo64(md5(row::text))): the sums are
 * exact numerics, so the digest is independent of physical row order and of
 * collation (ORDER BY row::text would sort differently under a restored
 * database's different default collation, and costs a sort of the whole
 * table), while duplicated, missing or changed rows all change it.
 */
export async function tableChecksums(client: pg.ClientBase): Promise<TableChecksums> {
  const result: TableChecksums = new Map();
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    for (const [name, value] of Object.entries(DETERMINISTIC_OUTPUT)) {
      await client.query('SELECT pg_catalog.set_config($1, $2, true)', [name, value]);
    }

    const { rows: relations } = await client.query<RelationRow>(`
      SELECT n.nspname AS schema, c.relname AS name, c.relkind, c.relispopulated AS populated
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'm', 'S')
        AND c.relpersistence <> 't'
        AND n.nspname <> 'information_schema'
        AND n.nspname !~ '^pg_'
        AND NOT EXISTS (
          SELECT 1 FROM pg_catalog.pg_depend d
          WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e')
      ORDER BY n.nspname, c.relname`);

    for (const rel of relations) {
      const key = relationKey(rel.schema, rel.name);
      if (rel.relkind === 'S') {
        result.set(key, await sequenceChecksum(client, key));
      } else if (!rel.populated) {
        // SELECT from a matview created WITH NO DATA is an error; a restore must keep it unpopulated.
        result.set(key, { rows: 0, sha256: sha256('unpopulated materialized view') });
      } else {
        result.set(key, await rowsChecksum(client, key));
      }
    }

    const { rows: objects } = await client.query<{ oid: string }>(
      'SELECT oid::text AS oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid',
    );
    for (const { oid } of objects) {
      result.set(`large object ${oid}`, await largeObjectChecksum(client, oid));
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  return result;
}

async function rowsChecksum(client: pg.ClientBase, qualifiedName: string): Promise<TableChecksum> {
  // ONLY: a plain-inheritance parent's checksum must not include its children's rows.
  const { rows: [row] } = await client.query<{ n: string; hi: string; lo: string }>(`
    SELECT count(*)::text AS n,
           coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint), 0)::text AS hi,
           coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint), 0)::text AS lo
    FROM (SELECT md5(t::text) AS h FROM ONLY ${qualifiedName} AS t) AS hashed`);
  return { rows: Number(row!.n), sha256: sha256('rows', row!.n, row!.hi, row!.lo) };
}

async function sequenceChecksum(client: pg.ClientBase, qualifiedName: string): Promise<TableChecksum> {
  // Definition (pg_dump restores it) and state (setval(last_value, is_called)); log_cnt is WAL bookkeeping and not restored.
  const { rows: [row] } = await client.query<Record<string, string>>(`
    SELECT s.last_value::text, s.is_called::text,
           d.seqtypid::regtype::text AS type, d.seqstart::text, d.seqincrement::text, d.seqmin::text, d.seqmax::text,
           d.seqcache::text, d.seqcycle::text
    FROM ${qualifiedName} AS s, pg_catalog.pg_sequence AS d
    WHERE d.seqrelid = $1::regclass`, [qualifiedName]);
  const fields = ['last_value', 'is_called', 'type', 'seqstart', 'seqincrement', 'seqmin', 'seqmax', 'seqcache', 'seqcycle'];
  return { rows: 1, sha256: sha256('sequence', ...fields.map((f) => `${f}=${row![f]}`)) };
}

async function largeObjectChecksum(client: pg.ClientBase, oid: string): Promise<TableChecksum> {
  // 262144 = INV_READ. Size by seeking to the end, then one md5 per chunk, so
  // objects of any size (lo_get of a whole object is limited to 1 GB) stay on the server.
  const { rows: [size] } = await client.query<{ bytes: string }>(
    'SELECT lo_lseek64(lo_open($1::oid, 262144), 0, 2)::text AS bytes',
    [oid],
  );
  const bytes = Number(size!.bytes);
  const { rows: [digest] } = await client.query<{ chunks: string | null }>(
    `SELECT string_agg(md5(lo_get($1::oid, off, ${LARGE_OBJECT_CHUNK})), '' ORDER BY off) AS chunks
     FROM generate_series(0::bigint, $2::bigint - 1, ${LARGE_OBJECT_CHUNK}) AS off`,
    [oid, bytes],
  );
  return { rows: bytes, sha256: sha256('large object', String(bytes), digest!.chunks ?? '') };
}

/**
 * What differs between two checksum maps, one line per key, for assertion
 * messages: `expect(diffTableChecksums(before, after)).toEqual([])`.
 */
export function diffTableChecksums(expected: TableChecksums, actual: TableChecksums): string[] {
  const lines: string[] = [];
  const keys = [...new Set([...expected.keys(), ...actual.keys()])].sort();
  for (const key of keys) {
    const a = expected.get(key);
    const b = actual.get(key);
    if (!b) lines.push(`${key}: missing (expected ${a!.rows} rows)`);
    else if (!a) lines.push(`${key}: unexpected (${b.rows} rows)`);
    else if (a.rows !== b.rows) lines.push(`${key}: ${a.rows} rows expected, ${b.rows} found`);
    else if (a.sha256 !== b.sha256) lines.push(`${key}: same ${a.rows} rows, different content`);
  }
  return lines;
}
