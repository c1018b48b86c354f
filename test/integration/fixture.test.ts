import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SAMPLE_DATA_SQL_URL, growSampleDatabase } from '../../local/sample-data.ts';
import { RICH_SCHEMA_SQL_URL, createFixtureDatabase, type FixtureDatabase } from '../fixtures/rich-schema.ts';
import { diffTableChecksums, tableChecksums } from '../../functions/lib/pg/table-checksums.ts';

const server = inject('pg');

async function connect(db: FixtureDatabase): Promise<pg.Client> {
  const client = new pg.Client(db.config);
  await client.connect();
  return client;
}

async function one<T extends pg.QueryResultRow>(client: pg.ClientBase, sql: string, params: unknown[] = []): Promise<T> {
  const { rows } = await client.query<T>(sql, params);
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

describe('rich-schema fixture', () => {
  let db: FixtureDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createFixtureDatabase(server);
    client = await connect(db);
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('is the sample data the demo loads, not a copy of it', () => {
    expect(realpathSync(fileURLToPath(RICH_SCHEMA_SQL_URL))).toBe(realpathSync(fileURLToPath(SAMPLE_DATA_SQL_URL)));
    expect(db.summary.rows).toBe(1000);
  });

  it('has schemas and tables with spaces, mixed case and non-Latin names', async () => {
    const { rows: schemas } = await client.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname IN ('public', 'sales', 'Audit Log') ORDER BY 1`,
    );
    expect(schemas.map((r) => r.nspname)).toEqual(['Audit Log', 'public', 'sales']);
    const names = await one<{ customers: string | null; kunden: string | null; column: string | null }>(
      client,
      `SELECT to_regclass('sales."客户"')::text AS customers,
              to_regclass('"Audit Log"."Kunden Ü"')::text AS kunden,
              (SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                WHERE attrelid = 'sales."客户"'::regclass AND attname = 'CamelCase') AS column`,
    );
    expect(names).toEqual({ customers: 'sales."客户"', kunden: '"Audit Log"."Kunden Ü"', column: 'text' });
  });

  it('range-partitions sales.events into 3 partitions plus a DEFAULT one, each with rows', async () => {
    const parent = await one<{ relkind: string; partstrat: string }>(
      client,
      `SELECT c.relkind, p.partstrat FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
       WHERE p.partrelid = 'sales.events'::regclass`,
    );
    expect(parent).toEqual({ relkind: 'p', partstrat: 'r' });

    const { rows: partitions } = await client.query<{ name: string; bound: string; rows: string }>(
      `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound,
              (SELECT count(*) FROM sales.events e WHERE e.tableoid = c.oid)::text AS rows
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'sales.events'::regclass ORDER BY 1`,
    );
    expect(partitions.length).toBeGreaterThanOrEqual(4);
    expect(partitions.filter((p) => p.bound === 'DEFAULT')).toHaveLength(1);
    expect(partitions.filter((p) => p.bound.startsWith('FOR VALUES FROM')).length).toBeGreaterThanOrEqual(3);
    for (const p of partitions) expect(Number(p.rows), `${p.name} has rows`).toBeGreaterThan(0);
  });

  it('has views and a materialized view created WITH DATA', async () => {
    const mv = await one<{ relkind: string; populated: boolean; rows: string }>(
      client,
      `SELECT relkind, relispopulated AS populated, (SELECT count(*) FROM sales.customer_totals)::text AS rows
       FROM pg_class WHERE oid = 'sales.customer_totals'::regclass`,
    );
    expect(mv).toEqual({ relkind: 'm', populated: true, rows: '100' });
    const { rows: views } = await client.query(
      `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'v' AND n.nspname IN ('sales', 'Audit Log')`,
    );
    expect(views.length).toBeGreaterThanOrEqual(2);
    await expect(client.query('SELECT count(*) FROM "Audit Log"."Letzte Änderungen"')).resolves.toBeTruthy();
  });

  it('stores values over 8 KB out of line in the TOAST table, and compresses the compressible one', async () => {
    const docs = await one<{ min_body: number; min_blob: number; compressed: boolean; toast: string }>(
      client,
      `SELECT min(octet_length(body)) AS min_body, min(octet_length(blob)) AS min_blob,
              bool_and(pg_column_size(summary) < octet_length(summary) / 4) AS compressed,
              (SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'public.documents'::regclass) AS toast
       FROM public.documents`,
    );
    expect(docs.min_body).toBeGreaterThan(8192);
    expect(docs.min_blob).toBeGreaterThan(8192);
    expect(docs.compressed).toBe(true);
    const chunks = await one<{ n: string }>(client, `SELECT count(*)::text AS n FROM ${docs.toast}`);
    // 20 rows x (10 KB body + 10 KB blob) in chunks of just under 2 KB.
    expect(Number(chunks.n)).toBeGreaterThan(20 * 2 * 5);
  });

  it('has large objects with known content', async () => {
    const small = await one<{ data: Buffer; comment: string | null }>(
      client,
      `SELECT lo_get(4242001) AS data, obj_description(4242001, 'pg_largeobject') AS comment`,
    );
    expect(small.data).toEqual(Buffer.concat([Buffer.from('Lifeboat large object 🛟', 'utf8'), Buffer.from([0x00, 0xff, 0x00, 0xff])]));
    expect(small.comment).toMatch(/Small large object/);

    const expected = createHash('md5');
    for (let k = 1; k <= 10240; k++) expected.update(createHash('md5').update(`lo:${k}`).digest());
    const big = await one<{ size: number; md5: string }>(
      client,
      `SELECT octet_length(lo_get(4242002)) AS size, md5(lo_get(4242002)) AS md5`,
    );
    expect(big).toEqual({ size: 163840, md5: expected.digest('hex') });
  });

  it('uses citext for a unique column, and has pgcrypto', async () => {
    const { rows: extensions } = await client.query<{ extname: string }>(
      `SELECT extname FROM pg_extension WHERE extname IN ('citext', 'pgcrypto') ORDER BY 1`,
    );
    expect(extensions.map((e) => e.extname)).toEqual(['citext', 'pgcrypto']);
    const column = await one<{ type: string }>(
      client,
      `SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = 'sales."客户"'::regclass AND attname = 'email'`,
    );
    expect(column.type).toBe('citext');

    await client.query('BEGIN');
    try {
      await expect(
        client.query(
          // An explicit id: a rolled-back nextval() would still move the identity sequence.
          `INSERT INTO sales."客户" (id, email, "CamelCase", signup_at, api_key_sha256) OVERRIDING SYSTEM VALUE
           VALUES (1000000, 'KUNDE.1@example.com', 'dup', 'epoch', '\\x00')`,
        ),
      ).rejects.toMatchObject({ code: '23505' });
    } finally {
      await client.query('ROLLBACK');
    }
  });

  it('holds the edge-case values it claims', async () => {
    const v = await one<Record<string, boolean>>(
      client,
      `SELECT
         (SELECT octet_length(b) = 256 AND get_byte(b, 0) = 0 AND get_byte(b, 255) = 255 FROM public.type_zoo WHERE id = 3) AS every_byte,
         EXISTS (SELECT 1 FROM sales.orders WHERE total = 'NaN') AS orders_nan,
         (SELECT format_type(atttypid, atttypmod) = 'numeric(30,10)' FROM pg_attribute
           WHERE attrelid = 'sales.orders'::regclass AND attname = 'total') AS numeric_30_10,
         EXISTS (SELECT 1 FROM public.type_zoo WHERE n30 = 'NaN') AND EXISTS (SELECT 1 FROM public.type_zoo WHERE n = 'Infinity') AS numeric_specials,
         EXISTS (SELECT 1 FROM public.type_zoo WHERE ts = 'infinity') AND EXISTS (SELECT 1 FROM public.type_zoo WHERE ts = '-infinity') AS ts_infinity,
         EXISTS (SELECT 1 FROM public.type_zoo WHERE t LIKE '%🐘%' AND t LIKE '%数据库%') AS emoji_cjk,
         EXISTS (SELECT 1 FROM sales."客户" WHERE "CamelCase" LIKE U&'Zoe\\0308 #%')
           AND EXISTS (SELECT 1 FROM sales."客户" WHERE "CamelCase" LIKE 'Zoë #%') AS combining_chars,
         EXISTS (SELECT 1 FROM sales.orders WHERE notes = '') AND EXISTS (SELECT 1 FROM sales.orders WHERE notes IS NULL)
           AND EXISTS (SELECT 1 FROM sales.orders WHERE notes = '\\N') AS empty_null_backslash_n,
         (SELECT ia = '{{1,2,3},{4,NULL,6}}' AND array_lower(ba, 1) = 0 FROM public.type_zoo WHERE id = 14) AS arrays,
         (SELECT jsonb_typeof(j -> 'nested') = 'object' FROM public.type_zoo WHERE id = 11) AS jsonb`,
    );
    expect(v).toEqual({
      every_byte: true,
      orders_nan: true,
      numeric_30_10: true,
      numeric_specials: true,
      ts_infinity: true,
      emoji_cjk: true,
      combining_chars: true,
      empty_null_backslash_n: true,
      arrays: true,
      jsonb: true,
    });
  });

  it('has owned, identity and standalone sequences in distinctive states', async () => {
    expect(await one(client, 'SELECT last_value::int, is_called FROM public.invoice_number_seq')).toEqual({ last_value: 424242, is_called: true });
    expect(await one(client, 'SELECT last_value::int, is_called FROM "Audit Log"."ticket seq"')).toEqual({ last_value: 1000, is_called: false });
    const owned = await one<Record<string, string | null>>(
      client,
      `SELECT pg_get_serial_sequence('sales.orders', 'id') AS bigserial,
              pg_get_serial_sequence('sales."客户"', 'id') AS identity_always,
              pg_get_serial_sequence('public.documents', 'id') AS identity_by_default,
              (SELECT attidentity::text FROM pg_attribute WHERE attrelid = 'sales."客户"'::regclass AND attname = 'id') AS always,
              (SELECT attidentity::text FROM pg_attribute WHERE attrelid = 'public.documents'::regclass AND attname = 'id') AS by_default`,
    );
    expect(owned).toEqual({
      bigserial: 'sales.orders_id_seq',
      identity_always: 'sales."客户_id_seq"',
      identity_by_default: 'public.documents_id_seq',
      always: 'a',
      by_default: 'd',
    });
    // Owned sequences continue after the explicitly inserted ids.
    expect(await one(client, 'SELECT last_value::int FROM sales.orders_id_seq')).toEqual({ last_value: 1000 });
  });

  it('has constraints, indexes of each kind, a generated column, triggers, comments and an empty table', async () => {
    const s = await one<Record<string, number | string | null>>(
      client,
      `WITH ours AS (SELECT oid FROM pg_namespace WHERE nspname IN ('public', 'sales', 'Audit Log'))
       SELECT
         (SELECT count(*)::int FROM pg_constraint WHERE contype = 'f' AND connamespace IN (SELECT oid FROM ours)) AS foreign_keys,
         (SELECT count(*)::int FROM pg_constraint WHERE contype = 'f' AND condeferrable AND condeferred) AS deferred_fks,
         (SELECT count(*)::int FROM pg_constraint WHERE contype = 'c' AND connamespace IN (SELECT oid FROM ours)) AS checks,
         (SELECT count(*)::int FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           WHERE c.relnamespace IN (SELECT oid FROM ours) AND i.indisunique AND NOT i.indisprimary) AS unique_indexes,
         (SELECT count(*)::int FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           WHERE c.relnamespace IN (SELECT oid FROM ours) AND i.indpred IS NOT NULL) AS partial_indexes,
         (SELECT count(*)::int FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
           WHERE c.relnamespace IN (SELECT oid FROM ours) AND i.indexprs IS NOT NULL AND a.amname = 'btree') AS expression_indexes,
         (SELECT attgenerated::text FROM pg_attribute WHERE attrelid = 'sales.order_lines'::regclass AND attname = 'line_total') AS generated,
         (SELECT count(*)::int FROM pg_trigger WHERE NOT tgisinternal) AS triggers,
         (SELECT count(*)::int FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid
           WHERE c.relnamespace IN (SELECT oid FROM ours)) AS relation_comments,
         obj_description('sales'::regnamespace, 'pg_namespace') AS schema_comment,
         col_description('sales."客户"'::regclass, 3) AS column_comment,
         (SELECT count(*)::int FROM public.empty_table) AS empty_rows`,
    );
    expect(s).toMatchObject({
      generated: 's',
      empty_rows: 0,
      schema_comment: expect.stringContaining('sample shop'),
      column_comment: expect.stringContaining('mixed-case'),
    });
    expect(s.foreign_keys).toBeGreaterThanOrEqual(6);
    expect(s.deferred_fks).toBeGreaterThanOrEqual(1);
    expect(s.checks).toBeGreaterThanOrEqual(3);
    expect(s.unique_indexes).toBeGreaterThanOrEqual(3);
    expect(s.partial_indexes).toBeGreaterThanOrEqual(1);
    expect(s.expression_indexes).toBeGreaterThanOrEqual(1);
    expect(s.triggers).toBeGreaterThanOrEqual(2);
    expect(s.relation_comments).toBeGreaterThanOrEqual(8);
  });

  it('holds a few thousand rows by default', async () => {
    const sums = await tableChecksums(client);
    let rows = 0;
    for (const [key, value] of sums) if (key.startsWith('"')) rows += value.rows;
    expect(rows).toBeGreaterThan(2000);
    expect(rows).toBeLessThan(20_000);
  });

  describe('tableChecksums', () => {
    it('covers tables, partitions, materialized views, sequences and large objects, but not partitioned parents or views', async () => {
      const sums = await tableChecksums(client);
      for (const key of [
        '"sales"."客户"',
        '"Audit Log"."Kunden Ü"',
        '"sales"."events_2023"',
        '"sales"."events_default"',
        '"sales"."customer_totals"',
        '"public"."invoice_number_seq"',
        '"Audit Log"."ticket seq"',
        'large object 4242001',
        'large object 4242002',
      ]) {
        expect(sums.has(key), key).toBe(true);
      }
      expect(sums.has('"sales"."events"')).toBe(false);
      expect(sums.has('"sales"."order_summary"')).toBe(false);
      expect(sums.get('"public"."empty_table"')?.rows).toBe(0);
      expect(sums.get('"sales"."orders"')?.rows).toBe(1000);
      expect(sums.get('large object 4242002')?.rows).toBe(163840);
      for (const value of sums.values()) expect(value.sha256).toMatch(/^[0-9a-f]{64}$/);
    });

    it('is stable across calls', async () => {
      const first = await tableChecksums(client);
      const second = await tableChecksums(client);
      expect(diffTableChecksums(first, second)).toEqual([]);
      expect(second).toEqual(first);
    });

    describe('on a second load of the fixture', () => {
      let other: FixtureDatabase;
      let otherClient: pg.Client;

      beforeAll(async () => {
        other = await createFixtureDatabase(server);
        otherClient = await connect(other);
      });

      afterAll(async () => {
        await otherClient?.end();
        await other?.drop();
      });

      it('matches the first load exactly: the fixture is deterministic', async () => {
        expect(diffTableChecksums(await tableChecksums(client), await tableChecksums(otherClient))).toEqual([]);
      });

      it('does not depend on the physical order of rows', async () => {
        const before = await tableChecksums(otherClient);
        await otherClient.query('CLUSTER sales.orders USING orders_customer_idx');
        await otherClient.query('VACUUM FULL public.type_zoo');
        expect(diffTableChecksums(before, await tableChecksums(otherClient))).toEqual([]);
      });

      it('changes for exactly the table whose row changed', async () => {
        const before = await tableChecksums(otherClient);
        await otherClient.query(`UPDATE sales.orders SET notes = 'changed' WHERE id = 42`);
        expect(diffTableChecksums(before, await tableChecksums(otherClient))).toEqual([
          '"sales"."orders": same 1000 rows, different content',
        ]);
      });

      it('changes when a row is deleted, a sequence moves or a large object changes', async () => {
        const before = await tableChecksums(otherClient);
        await otherClient.query('DELETE FROM public.type_zoo WHERE id = 16');
        await otherClient.query(`SELECT nextval('"Audit Log"."ticket seq"')`);
        await otherClient.query(`SELECT lo_put(4242002, 100000, convert_to('lifeboat', 'UTF8'))`);
        expect(diffTableChecksums(before, await tableChecksums(otherClient))).toEqual([
          '"Audit Log"."ticket seq": same 1 rows, different content',
          '"public"."type_zoo": 16 rows expected, 15 found',
          'large object 4242002: same 163840 rows, different content',
        ]);
      });
    });
  });

  describe('scaling', () => {
    let small: FixtureDatabase;
    let smallClient: pg.Client;

    beforeAll(async () => {
      small = await createFixtureDatabase(server, { rows: 200 });
      smallClient = await connect(small);
    });

    afterAll(async () => {
      await smallClient?.end();
      await small?.drop();
    });

    it('sizes every table from the rows option', async () => {
      const sums = await tableChecksums(smallClient);
      expect(sums.get('"sales"."orders"')?.rows).toBe(200);
      expect(sums.get('"sales"."客户"')?.rows).toBe(20);
      for (const partition of ['events_2023', 'events_2024', 'events_2025', 'events_default']) {
        expect(sums.get(`"sales"."${partition}"`)?.rows, partition).toBeGreaterThan(0);
      }
    });

    it('grows the database to a target size with bulk rows', async () => {
      const { bytes: start } = await one<{ bytes: number }>(smallClient, 'SELECT pg_database_size(current_database())::int AS bytes');
      const target = start + 6 * 1024 * 1024;
      const grown = await growSampleDatabase(smallClient, target);
      const { bytes: end } = await one<{ bytes: number }>(smallClient, 'SELECT pg_database_size(current_database())::int AS bytes');
      expect(end).toBeGreaterThanOrEqual(target);
      expect(end).toBeLessThan(target + 4 * 1024 * 1024);
      expect(end).toBeGreaterThanOrEqual(grown.bytes); // autovacuum may add visibility-map pages meanwhile
      const { n } = await one<{ n: number }>(smallClient, 'SELECT count(*)::int AS n FROM public.bulk');
      expect(n).toBe(200 + grown.rowsAdded);
      // Already there: nothing to add.
      expect((await growSampleDatabase(smallClient, target)).rowsAdded).toBe(0);
    });
  });
});
