import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { runDumpBackup, type DumpBackupRequest } from '../../functions/lib/backup/dump-pipeline.ts';
import { manifestSchema } from '../../functions/lib/backup/manifest.ts';
import { dumpSettingsSchema } from '../../functions/lib/config/schema.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

const clients = testClients();
const deps = { s3: clients.s3, kms: clients.keyringKms, secrets: clients.secrets };

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let bucket: string;
let keyArn: string;
let secretArn: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await withClient(db.name, async (c) => {
    await c.query(`CREATE TABLE items (id serial PRIMARY KEY, label text NOT NULL, payload jsonb)`);
    await c.query(`INSERT INTO items (label, payload) SELECT 'item ' || g, jsonb_build_object('n', g) FROM generate_series(1, 5000) g`);
    await c.query(`CREATE SCHEMA "Mixed Case"`);
    await c.query(`CREATE TABLE "Mixed Case"."Ünïcode" (k int)`);
    await c.query(`INSERT INTO "Mixed Case"."Ünïcode" VALUES (1), (2), (3)`);
  });
  [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  const s = pgServer();
  secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
});
afterAll(async () => {
  await db?.drop();
});

function request(overrides: Partial<DumpBackupRequest> = {}): DumpBackupRequest {
  return {
    databaseId: 'items-db',
    planId: 'nightly',
    connection: { database: db.name, secretArn, sslMode: 'disable', passwordAuth: 'scram-sha-256', connectTimeoutSeconds: 5 },
    settings: dumpSettingsSchema.parse({}),
    target: { bucket, prefix: 'backups/', kmsKeyArn: keyArn },
    ...overrides,
  };
}

describe('dump pipeline', () => {
  it('stores an encrypted dump whose sha256 and size match a manifest written beside it', async () => {
    // Act
    const result = await runDumpBackup(request(), deps);

    // Assess
    const manifestObject = await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: result.manifestKey }));
    const manifest = manifestSchema.parse(JSON.parse(await manifestObject.Body!.transformToString()));
    const data = Buffer.from(await (await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: result.dataKey }))).Body!.transformToByteArray());
    const { createHash } = await import('node:crypto');
    expect(manifest.object.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(manifest.object.storedBytes).toBe(data.length);
    expect(manifest.object.rawBytes).toBeGreaterThan(0);
    expect(data.subarray(0, 5).toString('latin1')).not.toBe('PGDMP'); // encrypted, not a raw archive
    expect(manifest.inventory.tables).toEqual(
      expect.arrayContaining([
        { schema: 'public', name: 'items', kind: 'r', rows: 5000 },
        { schema: 'Mixed Case', name: 'Ünïcode', kind: 'r', rows: 3 },
      ]),
    );
    expect(manifest.inventory.sequences).toEqual([{ schema: 'public', name: 'items_id_seq', lastValue: '5000', isCalled: true }]);
    expect(manifest.encryption.encryptionContext).toEqual({ 'lifeboat:database': 'items-db', 'lifeboat:backup-id': result.backupId });
    expect(manifest.dump.toolMajor).toBeGreaterThanOrEqual(15);
    expect(new Date(manifest.consistentAt).getTime()).toBeGreaterThanOrEqual(new Date(manifest.startedAt).getTime());
  });

  it('counts rows in the very snapshot pg_dump reads, even while writers keep inserting', async () => {
    // Prepare: insert continuously during the dump.
    let stop = false;
    const writer = withClient(db.name, async (c) => {
      while (!stop) await c.query(`INSERT INTO items (label) SELECT 'late' FROM generate_series(1, 50)`);
    });

    // Act
    const result = await runDumpBackup(request({ databaseId: 'busy-db' }), deps).finally(() => {
      stop = true;
    });
    await writer;

    // Assess: the count in the manifest is what the snapshot saw, not what the table holds now.
    const nowCount = await withClient(db.name, async (c) => Number((await c.query('SELECT count(*) AS n FROM items')).rows[0].n));
    const recorded = result.manifest.inventory.tables.find((t) => t.name === 'items')!.rows;
    expect(recorded).toBeGreaterThanOrEqual(5000);
    expect(nowCount).toBeGreaterThan(recorded);
  });
});
