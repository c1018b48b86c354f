import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { runDumpBackup, type DumpBackupResult } from '../../functions/lib/backup/dump-pipeline.ts';
import { dumpSettingsSchema } from '../../functions/lib/config/schema.ts';
import { BackupNotFoundError, ChecksumMismatchError, DatabaseConnectionError, DecryptionError, ManifestMismatchError, RestoreFailedError } from '../../functions/lib/errors.ts';
import { findBackup } from '../../functions/lib/backup/catalog.ts';
import { readManifest } from '../../functions/lib/restore/fetch.ts';
import { restoreBackup, verifyBackup } from '../../functions/lib/restore/restore.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { adminClient, createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import type { ResolvedConnection } from '../../functions/lib/pg/connection.ts';

const clients = testClients();
const deps = { s3: clients.s3, kms: clients.keyringKms, secrets: clients.secrets };
let source: Awaited<ReturnType<typeof createTestDatabase>>;
let bucket: string;
let backup: DumpBackupResult;
const dropAfter: string[] = [];

function target(database: string): ResolvedConnection {
  const s = pgServer();
  return { host: s.host, port: s.port, database, user: s.user, password: s.password, sslMode: 'disable', connectTimeoutSeconds: 5 };
}

beforeAll(async () => {
  source = await createTestDatabase('lbsrc');
  await withClient(source.name, async (c) => {
    await c.query(`CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, owner text NOT NULL, balance numeric(20,4))`);
    await c.query(`INSERT INTO accounts (owner, balance) SELECT 'owner-' || g, g * 1.5 FROM generate_series(1, 2000) g`);
    await c.query(`CREATE VIEW rich AS SELECT * FROM accounts WHERE balance > 1000`);
  });
  bucket = await createTestBucket();
  const keyArn = await createTestKey();
  const s = pgServer();
  const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  backup = await runDumpBackup(
    {
      databaseId: 'accounts',
      connection: { database: source.name, secretArn, sslMode: 'disable', passwordAuth: 'scram-sha-256', connectTimeoutSeconds: 5 },
      settings: dumpSettingsSchema.parse({}),
      target: { bucket, prefix: 'backups/', kmsKeyArn: keyArn },
    },
    deps,
  );
});
afterAll(async () => {
  await source?.drop();
  const admin = await adminClient();
  for (const name of dropAfter) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.end();
});

async function corruptCopy(flipAt: (size: number) => number): Promise<string> {
  const original = Buffer.from(await (await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: backup.dataKey }))).Body!.transformToByteArray());
  const corrupted = Buffer.from(original);
  const at = flipAt(corrupted.length);
  corrupted[at] = corrupted[at]! ^ 0x01;
  const key = backup.dataKey.replace('dump.enc', 'corrupt.enc');
  await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: corrupted }));
  return key;
}

describe('verify', () => {
  it('checks sha256, decryption and the archive table of contents without restoring', async () => {
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const result = await verifyBackup(manifest, deps);
    expect(result.fetch.sha256).toBe(manifest.object.sha256);
    expect(result.fetch.plaintextBytes).toBe(manifest.object.rawBytes);
    expect(result.tocEntries).toBeGreaterThan(3);
  });

  it('reports one flipped byte as a checksum mismatch naming the backup', async () => {
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const key = await corruptCopy((n) => Math.floor(n / 2));
    const error = await verifyBackup({ ...manifest, object: { ...manifest.object, key } }, deps).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect((error as Error).message).toContain(manifest.backupId);
  });

  it('refuses an object whose encryption context belongs to another backup even when its checksum matches', async () => {
    // Prepare: a manifest that claims a different backup id for the same object.
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const forged = { ...manifest, encryption: { ...manifest.encryption, encryptionContext: { ...manifest.encryption.encryptionContext, 'lifeboat:backup-id': 'other' } } };
    const error = await verifyBackup(forged, deps).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DecryptionError);
    expect((error as Error).message).toMatch(/context mismatch/);
  });
});

describe('restore', () => {
  it('restores into a new database and proves it matches the manifest', async () => {
    const name = `lbrestored_${Date.now()}`;
    dropAfter.push(name);
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const result = await restoreBackup(manifest, target(name), deps, { createDatabase: true });
    expect(result.checks.map((c) => [c.name, c.ok])).toEqual([
      ['tables', true],
      ['row counts', true],
      ['sequences', true],
      ['schema fingerprint', true],
      ['large objects', true],
      ['extensions', true],
      ['owners and privileges', true],
    ]);
    const rows = await withClient(name, async (c) => (await c.query('SELECT count(*)::int AS n, sum(balance)::text AS s FROM accounts')).rows[0]);
    expect(rows).toEqual({ n: 2000, s: '3001500.0000' });
  });

  it('checks before downloading anything: the database to create is new, the server has the extensions, the staging has room', async () => {
    // Prepare: an S3 client that counts reads of the backup.
    const { s3 } = testClients();
    let reads = 0;
    s3.middlewareStack.add((next, context) => async (args) => (context.commandName === 'GetObjectCommand' && reads++, next(args)), { step: 'initialize', name: 'countReads' });
    const counted = { ...deps, s3 };
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const fresh = () => `lbpre_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;

    // Act
    const exists = await restoreBackup(manifest, target(source.name), counted, { createDatabase: true }).catch((e: Error) => e);
    const extension = await restoreBackup({ ...manifest, inventory: { ...manifest.inventory, extensions: ['no_such_extension'] } }, target(fresh()), counted, { createDatabase: true }).catch((e: Error) => e);
    const room = await restoreBackup({ ...manifest, object: { ...manifest.object, rawBytes: 2 ** 52 } }, target(fresh()), counted, { createDatabase: true }).catch((e: Error) => e);

    // Assess
    expect([exists, extension, room].map((e) => (e as Error).name)).toEqual(['RestoreFailedError', 'RestoreFailedError', 'RestoreFailedError']);
    expect((exists as Error).message).toMatch(new RegExp(`Target database "${source.name}" .* already exists; nothing was downloaded`));
    expect((extension as Error).message).toMatch(/does not offer the extension\(s\) no_such_extension, which backup \S+ uses; nothing was downloaded/);
    expect((room as Error).message).toMatch(/needs \d+ bytes in .*, which has \d+ free; nothing was downloaded.*Next step: point TMPDIR/);
    expect(reads).toBe(0);
  });

  it('says what to fix on the target side when the target refuses the password, never "rerun the backup"', async () => {
    // Act
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const error = await restoreBackup(manifest, { ...target(`lbwrongpw_${Date.now()}`), password: 'not-the-password' }, deps, { createDatabase: true }).catch((e: Error) => e);

    // Assess
    expect(error).toBeInstanceOf(DatabaseConnectionError);
    expect((error as DatabaseConnectionError).nextStep).toBe('the target rejected the password or user: check the user in --target and PGPASSWORD (lifeboat never takes a password from the command line).');
    expect((error as Error).message).not.toContain('rerun the backup');
    expect((error as Error).message).not.toContain('not-the-password');
  });

  it('refuses to restore into a database that already holds tables', async () => {
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const error = await restoreBackup(manifest, target(source.name), deps).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RestoreFailedError);
    expect((error as Error).message).toMatch(/not empty/);
  });

  it('fails when the manifest disagrees with the data, and keeps the restored database as <name>_unverified, saying where and why', async () => {
    // Prepare
    const name = `lbmismatch_${Date.now()}`;
    dropAfter.push(`${name}_unverified`);
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const tables = manifest.inventory.tables.map((t) => (t.name === 'accounts' ? { ...t, rows: t.rows + 1 } : t));
    const lying = { ...manifest, inventory: { ...manifest.inventory, tables } };

    // Act
    const error = await restoreBackup(lying, target(name), deps, { createDatabase: true }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ManifestMismatchError);
    expect((error as Error).message).toMatch(/accounts.* has 2000 rows, the manifest says 2001/);
    expect((error as Error).message).toContain(`the restored database is kept as "${name}_unverified" on `);
    const kept = await withClient('postgres', async (c) =>
      (await c.query(`SELECT datname, shobj_description(oid, 'pg_database') AS note FROM pg_database WHERE datname IN ($1, $2)`, [name, `${name}_unverified`])).rows,
    );
    expect(kept).toEqual([{ datname: `${name}_unverified`, note: expect.stringMatching(new RegExp(`^lifeboat: UNVERIFIED restore of backup ${manifest.backupId} .*1 difference\\(s\\)`)) }]);
    const rows = await withClient(`${name}_unverified`, async (c) => (await c.query('SELECT count(*)::int AS n FROM accounts')).rows[0]);
    expect(rows).toEqual({ n: 2000 });
  });

  it('drops the database it created on a mismatch only when asked (--drop-on-mismatch)', async () => {
    // Prepare
    const name = `lbmismatchdrop_${Date.now()}`;
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const lying = { ...manifest, inventory: { ...manifest.inventory, largeObjects: 3 } };

    // Act
    const error = await restoreBackup(lying, target(name), deps, { createDatabase: true, onMismatch: 'drop' }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ManifestMismatchError);
    expect((error as Error).message).toContain('the restored database was dropped (--drop-on-mismatch)');
    const exists = await withClient('postgres', async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = ANY($1)', [[name, `${name}_unverified`]])).rowCount);
    expect(exists).toBe(0);
  });

  it('never runs pg_restore on a corrupted object', async () => {
    const name = `lbcorrupt_${Date.now()}`;
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const key = await corruptCopy((n) => n - 10);
    const error = await restoreBackup({ ...manifest, object: { ...manifest.object, key } }, target(name), deps, { createDatabase: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    const exists = await withClient('postgres', async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount);
    expect(exists).toBe(0);
  });
});

describe('finding a backup', () => {
  it('refuses a backup directory without a manifest, naming it as not committed', async () => {
    // Prepare: a dump that died after its data landed but before the manifest.
    const id = '20991231T000000Z-dead00'; // newer than every real backup, so "latest" must skip it
    await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `backups/accounts/${id}/dump.enc`, Body: 'partial' }));

    // Act
    const explicit = await findBackup(clients.s3, bucket, 'backups/', 'accounts', id).catch((e: unknown) => e);
    const manifest = await readManifest(clients.s3, bucket, `backups/accounts/${id}/manifest.json`).catch((e: unknown) => e);
    const latest = await findBackup(clients.s3, bucket, 'backups/', 'accounts');

    // Assess
    expect(explicit).toBeInstanceOf(BackupNotFoundError);
    expect((explicit as Error).message).toMatch(/has no manifest.*not a committed backup/);
    expect(manifest).toBeInstanceOf(BackupNotFoundError);
    expect(latest.backupId).toBe(backup.backupId);
  });

  it('says there is no committed backup for a database that never had one', async () => {
    const error = await findBackup(clients.s3, bucket, 'backups/', 'never-backed-up').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackupNotFoundError);
    expect((error as Error).message).toMatch(/No committed backup of database "never-backed-up"/);
  });
});
