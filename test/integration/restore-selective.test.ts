import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDumpBackup } from '../../functions/lib/backup/dump-pipeline.ts';
import type { Manifest } from '../../functions/lib/backup/manifest.ts';
import { dumpSettingsSchema } from '../../functions/lib/config/schema.ts';
import { RestoreFailedError } from '../../functions/lib/errors.ts';
import type { ResolvedConnection } from '../../functions/lib/pg/connection.ts';
import { readManifest } from '../../functions/lib/restore/fetch.ts';
import { listBackupContents, restoreBackup, verifyRestoredDatabase } from '../../functions/lib/restore/restore.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { adminClient, createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

/**
 * Issue 12, must-show 3: `lifeboat restore --list` shows what a backup holds;
 * `--schema` and `--table` restore a part of it, each table with what belongs
 * to it, verified against the manifest for exactly what was restored.
 */
const clients = testClients();
const deps = { s3: clients.s3, kms: clients.keyringKms, secrets: clients.secrets };
let source: Awaited<ReturnType<typeof createTestDatabase>>;
let manifest: Manifest;
const created: string[] = [];

const target = (database: string): ResolvedConnection => ({ ...pgServer(), database, sslMode: 'disable', connectTimeoutSeconds: 5 });
const fresh = (label: string) => {
  const name = `lbsel_${label}_${Date.now().toString(36)}`;
  created.push(name);
  return target(name);
};
const one = async <T>(database: string, sql: string) => withClient(database, async (c) => (await c.query(sql)).rows[0] as T);

beforeAll(async () => {
  source = await createTestDatabase('lbselsrc');
  await withClient(source.name, (c) =>
    c.query(`
      CREATE SCHEMA app; CREATE SCHEMA billing;
      CREATE TYPE app.status AS ENUM ('open', 'paid');
      CREATE TABLE app.customers (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text UNIQUE);
      CREATE TABLE app.orders (id serial PRIMARY KEY, customer_id int REFERENCES app.customers, status app.status NOT NULL DEFAULT 'open', total numeric);
      CREATE INDEX orders_status_idx ON app.orders (status);
      CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.total := coalesce(NEW.total, 0); RETURN NEW; END$$;
      CREATE TRIGGER orders_touch BEFORE INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.touch();
      ALTER TABLE app.orders ENABLE ROW LEVEL SECURITY;
      CREATE POLICY everyone ON app.orders USING (true);
      CREATE TABLE billing.invoices (id bigserial PRIMARY KEY, order_id int REFERENCES app.orders, amount numeric);
      CREATE SEQUENCE billing.invoice_numbers START 1000;
      CREATE TABLE app.events (id int, at date) PARTITION BY RANGE (at);
      CREATE TABLE app.events_2024 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
      CREATE TABLE public.orders (note text);
      CREATE MATERIALIZED VIEW app.order_stats AS SELECT count(*) AS orders FROM app.orders;
      INSERT INTO app.customers (name) SELECT 'customer ' || g FROM generate_series(1, 20) g;
      INSERT INTO app.orders (customer_id, total) SELECT 1 + g % 20, g FROM generate_series(1, 100) g;
      INSERT INTO billing.invoices (order_id, amount) SELECT g, g * 2 FROM generate_series(1, 100) g;
      INSERT INTO app.events SELECT g, date '2024-03-01' + g FROM generate_series(1, 10) g;
      SELECT nextval('billing.invoice_numbers') FROM generate_series(1, 5);
    `),
  );
  const [bucket, kmsKeyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  const s = pgServer();
  const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  const backup = await runDumpBackup(
    {
      databaseId: 'shop',
      connection: { database: source.name, secretArn, sslMode: 'disable', passwordAuth: 'scram-sha-256', connectTimeoutSeconds: 5 },
      settings: dumpSettingsSchema.parse({}),
      target: { bucket, prefix: 'backups/', kmsKeyArn },
    },
    deps,
  );
  manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
}, 120_000);

afterAll(async () => {
  await source?.drop();
  const admin = await adminClient();
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

describe('restore --list', () => {
  it('shows the archive\'s objects with the manifest\'s row counts, and deletes the plaintext it read them from', async () => {
    // Act
    const contents = await listBackupContents(manifest, deps);

    // Assess
    const names = contents.entries.map((e) => `${e.kind} ${e.schema ?? '-'} ${e.name}`);
    expect(names).toEqual(expect.arrayContaining(['TABLE app orders', 'TABLE billing invoices', 'INDEX app orders_status_idx', 'TRIGGER app orders orders_touch', 'POLICY app orders everyone', 'SEQUENCE billing invoice_numbers']));
    expect(contents.rows['app.orders']).toBe(100);
    expect(contents.archive.version).toMatch(/^1\.1\d\./);
    expect(readdirSync(tmpdir()).filter((d) => d.startsWith(`lifeboat-restore-${process.pid}-`))).toEqual([]);
  });
});

describe('restore --table / --schema', () => {
  it('restores one table with its sequence, index, trigger and policy, leaves out the foreign key to a table it does not restore, and verifies exactly that', async () => {
    // Prepare
    const into = fresh('orders');

    // Act
    const result = await restoreBackup(manifest, into, deps, { createDatabase: true, select: { schemas: [], tables: ['app.orders'] } });

    // Assess: every check passed on what was restored
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
    expect(result.selection!.tables).toEqual([{ schema: 'app', name: 'orders' }]);
    expect(result.selection!.leftOut.join('\n')).toMatch(/FK CONSTRAINT app\.orders orders_customer_id_fkey: needs .*app\.customers/);
    // ... the table, its rows and everything that belongs to it, and nothing else
    const state = await one<Record<string, unknown>>(
      into.database,
      `SELECT (SELECT count(*)::int FROM app.orders) AS orders,
              to_regclass('app.customers') IS NULL AS no_customers, to_regclass('billing.invoices') IS NULL AS no_invoices,
              to_regclass('app.orders_status_idx') IS NOT NULL AS index,
              (SELECT count(*)::int FROM pg_trigger WHERE tgname = 'orders_touch') AS triggers,
              (SELECT count(*)::int FROM pg_policy WHERE polname = 'everyone') AS policies,
              (SELECT relrowsecurity FROM pg_class WHERE oid = 'app.orders'::regclass) AS rls,
              (SELECT count(*)::int FROM pg_constraint WHERE contype = 'f') AS foreign_keys,
              nextval('app.orders_id_seq')::int AS next_id`,
    );
    expect(state).toEqual({ orders: 100, no_customers: true, no_invoices: true, index: true, triggers: 1, policies: 1, rls: true, foreign_keys: 0, next_id: 101 });
    expect(result.databaseState.notRestored.join('\n')).toMatch(/not applied by a selective restore/);
  });

  it('restores whole schemas and tables together, keeping the foreign keys between them and a standalone sequence\'s value', async () => {
    // Prepare
    const into = fresh('billing');

    // Act
    const result = await restoreBackup(manifest, into, deps, { createDatabase: true, select: { schemas: ['billing'], tables: ['app.orders', 'customers'] } });

    // Assess
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
    expect(result.selection!.leftOut).toEqual([]);
    expect(result.selection!.tables.map((t) => `${t.schema}.${t.name}`).sort()).toEqual(['app.customers', 'app.orders', 'billing.invoices']);
    const state = await one<Record<string, unknown>>(
      into.database,
      `SELECT (SELECT count(*)::int FROM billing.invoices) AS invoices, (SELECT count(*)::int FROM pg_constraint WHERE contype = 'f') AS foreign_keys,
              nextval('billing.invoice_numbers')::int AS next_number`,
    );
    expect(state).toEqual({ invoices: 100, foreign_keys: 2, next_number: 1005 });
  });

  it('restores a partition with its parent as structure only', async () => {
    // Act
    const result = await restoreBackup(manifest, fresh('events'), deps, { createDatabase: true, select: { schemas: [], tables: ['app.events_2024'] } });

    // Assess
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
    expect(result.selection!.structureOnly).toEqual([{ schema: 'app', name: 'events' }]);
    expect((await one<{ n: number }>(result.target.split(' on ')[0]!, 'SELECT count(*)::int AS n FROM app.events')).n).toBe(10);
  });

  it('restores a partitioned table with its partitions, and a whole schema with its materialized view, verified', async () => {
    // Act
    const parent = await restoreBackup(manifest, fresh('parent'), deps, { createDatabase: true, select: { schemas: [], tables: ['app.events'] } });
    const schema = await restoreBackup(manifest, fresh('schema'), deps, { createDatabase: true, select: { schemas: ['app'], tables: [] } });

    // Assess
    expect(parent.checks.filter((c) => !c.ok)).toEqual([]);
    // The partitioned parent holds no rows of its own: its partitions come with their data.
    expect(parent.selection!.tables.map((t) => t.name)).toEqual(['events_2024']);
    expect((await one<{ n: number }>(parent.target.split(' on ')[0]!, 'SELECT count(*)::int AS n FROM app.events')).n).toBe(10);
    expect(schema.checks.filter((c) => !c.ok)).toEqual([]);
    expect(schema.selection!.tables.map((t) => t.name)).toContain('order_stats');
    expect((await one<{ orders: string }>(schema.target.split(' on ')[0]!, 'SELECT orders::text FROM app.order_stats')).orders).toBe('100');
  });

  it('refuses, before downloading, a table the backup does not have or one that is ambiguous, saying how to find the right name', async () => {
    // Act
    const missing = await restoreBackup(manifest, fresh('missing'), deps, { createDatabase: true, select: { schemas: [], tables: ['app.refunds'] } }).catch((e: unknown) => e);
    const ambiguous = await restoreBackup(manifest, fresh('ambiguous'), deps, { createDatabase: true, select: { schemas: [], tables: ['orders'] } }).catch((e: unknown) => e);
    const noSchema = await restoreBackup(manifest, fresh('noschema'), deps, { createDatabase: true, select: { schemas: ['audit'], tables: [] } }).catch((e: unknown) => e);

    // Assess
    expect(missing).toBeInstanceOf(RestoreFailedError);
    expect((missing as Error).message).toMatch(/has no table app\.refunds\..*restore --list.*nothing was downloaded/s);
    expect((ambiguous as Error).message).toMatch(/--table orders is ambiguous .*app\.orders, public\.orders|--table orders is ambiguous .*public\.orders, app\.orders/);
    expect((noSchema as Error).message).toMatch(/has no schema audit/);
    const dbs = await one<{ n: number }>('postgres', `SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'lbsel_missing%' OR datname LIKE 'lbsel_ambiguous%' OR datname LIKE 'lbsel_noschema%'`);
    expect(dbs.n).toBe(0);
  });

  it('fails the verification of a selective restore whose rows differ from the manifest', async () => {
    // Prepare
    const into = fresh('tampered');
    const result = await restoreBackup(manifest, into, deps, { createDatabase: true, select: { schemas: [], tables: ['app.orders'] } });
    await withClient(into.database, (c) => c.query('DELETE FROM app.orders WHERE id <= 3'));

    // Act
    const checks = await verifyRestoredDatabase(manifest, into, undefined, result.selection);

    // Assess
    expect(checks.find((c) => c.name === 'row counts')).toMatchObject({ ok: false, differences: ['table "app"."orders" has 97 rows, the manifest says 100'] });
  });
});
