import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateKeyCommand, DisableKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { runDumpBackup, type DumpBackupResult } from '../../functions/lib/backup/dump-pipeline.ts';
import { createKeyringKmsClient } from '../../functions/lib/backup/encryption.ts';
import { dumpSettingsSchema } from '../../functions/lib/config/schema.ts';
import { EncryptionKeyError } from '../../functions/lib/errors.ts';
import { verifyBackup } from '../../functions/lib/restore/restore.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { enforceKmsKeyState, startFaultProxy, type FaultProxy } from '../../local/fault-proxy.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

const clients = testClients();
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let proxy: FaultProxy;
let withRecovery: DumpBackupResult;
let withoutRecovery: DumpBackupResult;
let recoveryKeyArn: string;

beforeAll(async () => {
  db = await createTestDatabase('lbrecovery');
  await withClient(db.name, (c) => c.query('CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 50)'));
  const [bucket, primaryKeyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  // The vault's recovery key lives in another region (and, deployed, another account).
  recoveryKeyArn = (await new KMSClient({ region: 'eu-central-1' }).send(new CreateKeyCommand({ Description: 'vault recovery key' }))).KeyMetadata!.Arn!;
  const s = pgServer();
  const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  const request = (recovery: string[]) => ({
    databaseId: 'recoverable',
    connection: { database: db.name, secretArn, sslMode: 'disable' as const, passwordAuth: 'scram-sha-256' as const, connectTimeoutSeconds: 5 },
    settings: dumpSettingsSchema.parse({}),
    target: { bucket, prefix: 'backups/', kmsKeyArn: primaryKeyArn, recoveryKmsKeyArns: recovery },
  });
  const deps = { s3: clients.s3, kms: clients.keyringKms, secrets: clients.secrets };
  withRecovery = await runDumpBackup(request([recoveryKeyArn]), deps);
  withoutRecovery = await runDumpBackup(request([]), deps);
  // Production's key is gone for good: disabled (moto needs the proxy to enforce it).
  await clients.kms.send(new DisableKeyCommand({ KeyId: primaryKeyArn.split('/').pop() }));
  proxy = await startFaultProxy(process.env.AWS_ENDPOINT_URL!);
  proxy.addRule(enforceKmsKeyState(process.env.AWS_ENDPOINT_URL!));
});
afterAll(async () => {
  await proxy?.stop();
  await db?.drop();
});

describe('the vault recovery key', () => {
  it('is recorded in the manifest of every backup that used it', () => {
    expect(withRecovery.manifest.encryption.recoveryKmsKeyArns).toEqual([recoveryKeyArn]);
  });

  it('decrypts a backup after the production key is disabled', async () => {
    const kmsBehindProxy = createKeyringKmsClient({ endpoint: proxy.endpoint });
    const result = await verifyBackup(withRecovery.manifest, { s3: clients.s3, kms: kmsBehindProxy });
    expect(result.checks.every((c) => c.ok)).toBe(true);
    expect(result.fetch.plaintextBytes).toBe(withRecovery.rawBytes);
  });

  it('is what makes the difference: without it the same backup cannot be decrypted', async () => {
    const kmsBehindProxy = createKeyringKmsClient({ endpoint: proxy.endpoint });
    const error = await verifyBackup(withoutRecovery.manifest, { s3: clients.s3, kms: kmsBehindProxy }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EncryptionKeyError);
    expect((error as Error).message).toMatch(/disabled/i);
  });
});
