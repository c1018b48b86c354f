import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareWithDumpAtMoment, IN_FLIGHT_ROWS } from '../../functions/lib/drill/verify.ts';
import type { Manifest } from '../../functions/lib/backup/manifest.ts';
import type { ResolvedConnection } from '../../functions/lib/pg/connection.ts';
import { createTestBucket, createTestKey, createTestSecret } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import { backUp } from './drill-harness.ts';

/**
 * A point-in-time restore to a dump's consistent point, compared with that
 * dump's manifest: the checks that are exact at that instant fail on any
 * difference; row counts may differ by transactions in flight, so a small
 * difference is `inexact` (reported, not failed) and a larger one fails.
 * The "restored database" here is the dumped one, changed after the dump.
 */
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let manifest: Manifest;
let target: ResolvedConnection;

beforeAll(async () => {
  db = await createTestDatabase('lbpitrcmp');
  await withClient(db.name, (c) =>
    c.query(`CREATE TABLE orders (id serial PRIMARY KEY, amount int NOT NULL); INSERT INTO orders (amount) SELECT g FROM generate_series(1, 20000) g;
             CREATE TABLE notes (id serial PRIMARY KEY, body text); INSERT INTO notes (body) SELECT 'n' || g FROM generate_series(1, 50) g;`),
  );
  const s = pgServer();
  const [bucket, kmsKeyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  manifest = (await backUp('orders', db.name, { bucket, kmsKeyArn, secretArn })).manifest;
  target = { host: s.host, port: s.port, database: db.name, user: s.user, password: s.password, sslMode: 'disable', connectTimeoutSeconds: 5 } as ResolvedConnection;
}, 120_000);

afterAll(async () => {
  await db?.drop();
});

const statuses = async () => Object.fromEntries((await compareWithDumpAtMoment(manifest, target)).map((c) => [c.name, c.status]));

describe('comparing a point-in-time restore with the dump of that moment', () => {
  it('passes every check, each saying whether it is exact, when the data is the dump\'s', async () => {
    // Act
    const checks = await compareWithDumpAtMoment(manifest, target);

    // Assess
    expect(Object.fromEntries(checks.map((c) => [c.name, c.status]))).toEqual({
      tables: 'passed',
      'row counts': 'passed',
      sequences: 'passed',
      'schema fingerprint': 'passed',
      'large objects': 'passed',
      extensions: 'passed',
      'owners and privileges': 'passed',
    });
    expect(checks.find((c) => c.name === 'row counts')!.detail).toMatch(/equal at the moment$/);
    expect(checks.find((c) => c.name === 'tables')!.detail).toMatch(/; exact$/);
  });

  it('reports a few rows more as inexact (transactions in flight), with the differences, without failing', async () => {
    // Prepare
    await withClient(db.name, (c) => c.query(`INSERT INTO notes (body) SELECT 'late' FROM generate_series(1, 3)`));

    // Act
    const checks = await compareWithDumpAtMoment(manifest, target);

    // Assess
    const rows = checks.find((c) => c.name === 'row counts')!;
    expect(rows.status).toBe('inexact');
    expect(rows.differences.join('\n')).toMatch(/notes.* has 53 rows, the manifest says 50/);
    expect(checks.filter((c) => c.status === 'failed')).toEqual([]);
  });

  it(`fails row counts that differ by more than in-flight transactions explain (over ${IN_FLIGHT_ROWS} rows, or the configured number)`, async () => {
    // Prepare: 30 rows of orders gone (0.15 % of 20,000): a restore to the wrong moment on a quiet table.
    await withClient(db.name, (c) => c.query('DELETE FROM orders WHERE id <= 30'));

    // Act
    const strict = await statuses();
    const tolerant = Object.fromEntries((await compareWithDumpAtMoment(manifest, target, { inFlightRows: 50 })).map((c) => [c.name, c.status]));

    // Assess
    expect(strict['row counts']).toBe('failed');
    expect(tolerant['row counts']).toBe('inexact');
  });

  it("leaves out the schemas the dumps leave out (a restored instance has them, the manifest does not)", async () => {
    // Prepare: a schema the dump excluded appears in the restored database.
    await withClient(db.name, (c) => c.query('CREATE SCHEMA audit; CREATE TABLE audit.log (id int)'));

    // Act
    const withIt = await statuses();
    const without = Object.fromEntries((await compareWithDumpAtMoment(manifest, target, { inFlightRows: 50, excludeSchemas: ['audit'] })).map((c) => [c.name, c.status]));
    await withClient(db.name, (c) => c.query('DROP SCHEMA audit CASCADE'));

    // Assess
    expect(withIt.tables).toBe('failed');
    expect(without).toMatchObject({ tables: 'passed', 'schema fingerprint': 'passed', 'owners and privileges': 'passed' });
  });

  it('fails large objects beyond the in-flight allowance', async () => {
    // Prepare: 12 large objects that the dump's moment did not have.
    await withClient(db.name, (c) => c.query('SELECT lo_create(0) FROM generate_series(1, 12)'));

    // Act
    const found = await statuses();
    await withClient(db.name, (c) => c.query('SELECT lo_unlink(oid) FROM pg_largeobject_metadata'));

    // Assess
    expect(found['large objects']).toBe('failed');
  });

  it('fails the exact checks on a schema change at the moment: a dropped table, a new column', async () => {
    // Prepare
    await withClient(db.name, (c) => c.query('DROP TABLE notes; ALTER TABLE orders ADD COLUMN note text'));

    // Act
    const found = await statuses();

    // Assess
    expect(found).toMatchObject({ tables: 'failed', 'schema fingerprint': 'failed' });
  });
});
