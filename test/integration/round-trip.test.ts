import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runDumpBackup } from '../../functions/lib/backup/dump-pipeline.ts';
import { dumpSettingsSchema } from '../../functions/lib/config/schema.ts';
import { diffTableChecksums, tableChecksums } from '../../functions/lib/pg/table-checksums.ts';
import { readManifest } from '../../functions/lib/restore/fetch.ts';
import { restoreBackup } from '../../functions/lib/restore/restore.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { adminClient, pgServer } from '../harness/pg.ts';
import { createFixtureDatabase, type FixtureDatabase } from '../fixtures/rich-schema.ts';

const clients = testClients();
const deps = { s3: clients.s3, kms: clients.keyringKms, secrets: clients.secrets };
let source: FixtureDatabase;
const restoredName = `lbroundtrip_${Date.now()}`;

async function checksumsOf(database: string) {
  const client = new pg.Client({ ...pgServer(), database });
  await client.connect();
  try {
    return await tableChecksums(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  source = await createFixtureDatabase(pgServer(), { rows: 1500, prefix: 'lbrich' });
});
afterAll(async () => {
  await source?.drop();
  const admin = await adminClient();
  await admin.query(`DROP DATABASE IF EXISTS ${restoredName} WITH (FORCE)`);
  await admin.end();
});

describe('round trip on a database that is not a toy', () => {
  it('dumps, restores and reproduces every table, sequence and large object exactly', async () => {
    // Prepare
    const bucket = await createTestBucket();
    const keyArn = await createTestKey();
    const s = pgServer();
    const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
    const before = await checksumsOf(source.name);

    // Act
    const backup = await runDumpBackup(
      {
        databaseId: 'rich',
        connection: { database: source.name, secretArn, sslMode: 'disable', passwordAuth: 'scram-sha-256', connectTimeoutSeconds: 5 },
        settings: dumpSettingsSchema.parse({}),
        target: { bucket, prefix: 'backups/', kmsKeyArn: keyArn },
      },
      deps,
    );
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const restored = await restoreBackup(manifest, { ...s, database: restoredName, sslMode: 'disable', connectTimeoutSeconds: 5 }, deps, { createDatabase: true, jobs: 2 });
    const after = await checksumsOf(restoredName);

    // Assess: the manifest saw the interesting parts of the fixture...
    const names = manifest.inventory.tables.map((t) => `${t.schema}.${t.name}`);
    expect(names).toEqual(expect.arrayContaining(['sales.客户', 'Audit Log.Kunden Ü']));
    expect(manifest.inventory.tables.some((t) => t.kind === 'm')).toBe(true);
    expect(manifest.inventory.largeObjects).toBe(2);
    expect(manifest.inventory.extensions).toEqual(expect.arrayContaining(['citext', 'pgcrypto']));
    expect(manifest.inventory.sequences.length).toBeGreaterThanOrEqual(5);
    // ...every manifest check passed after the restore...
    expect(restored.checks.filter((c) => !c.ok)).toEqual([]);
    // ...and the content is identical, relation by relation.
    expect(before.size).toBeGreaterThan(15);
    expect(diffTableChecksums(before, after)).toEqual([]);
  });
});
