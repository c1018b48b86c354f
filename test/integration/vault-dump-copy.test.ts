import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectLockConfigurationCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createDumpHandler, type DumpTaskOutput } from '../../functions/dump/handler.ts';
import { createS3Client, createStsClient, type AwsCredentials } from '../../functions/lib/aws/clients.ts';
import type { Manifest } from '../../functions/lib/backup/manifest.ts';
import { deployedConfig } from '../harness/config.ts';
import { ChecksumMismatchError, VaultCopyVerificationError } from '../../functions/lib/errors.ts';
import { localLambdaContext } from '../../functions/shared/lambda-context.ts';
import { fetchAndDecrypt, fetchGlobals, readManifest } from '../../functions/lib/restore/fetch.ts';
import { assumeVaultRole } from '../../functions/lib/vault/credentials.ts';
import { copyDumpToVault, quarantineKey } from '../../functions/lib/vault/dump-copy.ts';
import { startFaultProxy, type FaultProxy } from '../../local/fault-proxy.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients, uniqueName } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import { credentialsFor } from '../../local/moto-rds-compat.ts';

/**
 * Dumps reach the vault (account 222222222222, eu-central-1) by an explicit,
 * verified copy made with the vault copier role's credentials, against moto.
 */
const VAULT = '222222222222';
const VAULT_REGION = 'eu-central-1';
const COPIER_ROLE = `arn:aws:iam::${VAULT}:role/acme-lifeboat-vault-copier`;

let proxy: FaultProxy;
let clients: ReturnType<typeof testClients>;
let sourceBucket: string;
let vaultBucket: string;
let copier: AwsCredentials;
let vaultS3: S3Client;
let dumped: DumpTaskOutput;
let database: Awaited<ReturnType<typeof createTestDatabase>>;

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

async function body(s3: S3Client, bucket: string, key: string, versionId?: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function versions(s3: S3Client, prefix: string) {
  const out = await s3.send(new ListObjectVersionsCommand({ Bucket: vaultBucket, Prefix: prefix }));
  return (out.Versions ?? []).map((v) => ({ key: v.Key!, versionId: v.VersionId! }));
}

/** A committed backup in the source bucket whose data is `data` and whose manifest says `claims`. */
async function syntheticBackup(data: Buffer, claims: { sha256: string; bytes: number } = { sha256: sha256(data), bytes: data.length }) {
  const manifest = (await readManifest(clients.s3, sourceBucket, dumped.manifestKey)) as Manifest;
  const base = `backups/synthetic/${uniqueName('b')}/`;
  const copy: Manifest = { ...manifest, object: { ...manifest.object, key: `${base}dump.enc`, sha256: claims.sha256, storedBytes: claims.bytes }, globals: undefined };
  await clients.s3.send(new PutObjectCommand({ Bucket: sourceBucket, Key: copy.object.key, Body: data }));
  await clients.s3.send(new PutObjectCommand({ Bucket: sourceBucket, Key: `${base}manifest.json`, Body: JSON.stringify(copy) }));
  return { manifestKey: `${base}manifest.json`, dataKey: copy.object.key };
}

beforeAll(async () => {
  proxy = await startFaultProxy(inject('motoEndpoint'));
  process.env.AWS_ENDPOINT_URL = proxy.endpoint;
  clients = testClients();

  // A real committed dump in the production account's bucket.
  database = await createTestDatabase('lbvault');
  await withClient(database.name, (c) => c.query('CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 500) g'));
  const [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  sourceBucket = bucket;
  const s = pgServer();
  const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  const dump = createDumpHandler({
    clients: { s3: clients.s3, secrets: clients.secrets, keyringKms: clients.keyringKms },
    target: { bucket, prefix: 'backups/', kmsKeyArn: keyArn },
    config: deployedConfig([{ id: 'orders', connection: { database: database.name, secretArn, sslMode: 'disable' } }]),
    logger: new Logger({ serviceName: 'lifeboat-test', logLevel: 'ERROR' }),
    metrics: new Metrics({ namespace: 'lifeboat-test', serviceName: 'lifeboat-test' }),
  });
  dumped = (await dump(
    { planId: 'nightly', databaseId: 'orders' } as never,
    localLambdaContext('dump'),
  )) as DumpTaskOutput;

  // The vault bucket, made by the vault account: Object Lock in compliance mode.
  const vaultAdmin = createS3Client({ region: VAULT_REGION, credentials: await credentialsFor(VAULT, 'vault-admin') });
  vaultBucket = uniqueName('acme-lifeboat-vault');
  await vaultAdmin.send(new CreateBucketCommand({ Bucket: vaultBucket, CreateBucketConfiguration: { LocationConstraint: VAULT_REGION }, ObjectLockEnabledForBucket: true }));
  await vaultAdmin.send(
    new PutObjectLockConfigurationCommand({ Bucket: vaultBucket, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 1 } } } }),
  );

  // Production reaches it only through the copier role.
  copier = await assumeVaultRole(createStsClient(), { roleArn: COPIER_ROLE, account: VAULT }, 'orders-vault-copy');
  vaultS3 = createS3Client({ region: VAULT_REGION, credentials: copier });
});
afterAll(async () => {
  await database?.drop();
  await proxy?.stop();
});

const deps = () => ({ sourceS3: clients.s3, vaultS3, vaultBucket });

describe('copying a dump to the vault', () => {
  it('streams the data in, checks its sha256 against the manifest, writes the manifest last, and the copy restores', async () => {
    // Act
    const result = await copyDumpToVault({ sourceBucket, manifestKey: dumped.manifestKey, databaseId: 'orders' }, deps());

    // Assess: both objects are in the vault, the data matches the manifest byte for byte.
    expect(result).toMatchObject({ status: 'copied', vaultBucket, dataKey: dumped.dataKey, manifestKey: dumped.manifestKey, sha256: dumped.sha256 });
    expect(sha256(await body(vaultS3, vaultBucket, dumped.dataKey))).toBe(dumped.sha256);
    expect((await body(vaultS3, vaultBucket, dumped.manifestKey)).equals(await body(clients.s3, sourceBucket, dumped.manifestKey))).toBe(true);
    expect(await versions(vaultS3, quarantineKey(dumped.dataKey))).toEqual([]);

    // Assess: the manifest (the commit marker) was the last object written, each write If-None-Match.
    const keyOf = (url: string) => decodeURIComponent(url.split('?')[0]!.slice(vaultBucket.length + 2));
    const puts = proxy.seen.filter((r) => r.method === 'PUT' && r.url.startsWith(`/${vaultBucket}/`) && keyOf(r.url) !== '' && !r.url.includes('uploadId'));
    const globalsKey = dumped.dataKey.replace(/dump\.enc$/, 'globals.enc');
    expect(puts.map((r) => keyOf(r.url))).toEqual([dumped.dataKey, globalsKey, dumped.manifestKey]);
    for (const put of puts) expect(put.headers['if-none-match']).toBe('*');

    // Assess: the vault copy restores (read with vault credentials only, decrypted with the envelope key).
    const manifest = await readManifest(vaultS3, vaultBucket, dumped.manifestKey);
    let plaintext = 0;
    const sink = new Writable({ write: (chunk: Buffer, _e, cb) => ((plaintext += chunk.length), cb()) });
    const fetched = await fetchAndDecrypt(manifest, sink, { s3: vaultS3, kms: clients.keyringKms }, vaultBucket);
    expect(fetched.sha256).toBe(dumped.sha256);
    expect(plaintext).toBeGreaterThan(0);
    // ... and so do its roles, so a restore from the vault alone brings them back.
    const globals = await fetchGlobals(manifest, { s3: vaultS3, kms: clients.keyringKms }, vaultBucket);
    expect(globals.roles.map((r) => r.name)).toContain(pgServer().user);
  });

  it('is idempotent: a retried step verifies what is there and writes nothing', async () => {
    const before = await versions(vaultS3, `backups/orders/${dumped.backupId}/`);
    const again = await copyDumpToVault({ sourceBucket, manifestKey: dumped.manifestKey, databaseId: 'orders' }, deps());
    expect(again.status).toBe('already-in-vault');
    expect(await versions(vaultS3, `backups/orders/${dumped.backupId}/`)).toEqual(before);
  });

  it('copies a large object as a multipart upload completed with If-None-Match', async () => {
    const data = randomBytes(11 * 1024 * 1024);
    const backup = await syntheticBackup(data);
    const seenBefore = proxy.seen.length;

    const result = await copyDumpToVault({ sourceBucket, manifestKey: backup.manifestKey, databaseId: 'orders' }, { ...deps(), partSize: 5 * 1024 * 1024 });

    expect(result.status).toBe('copied');
    expect(sha256(await body(vaultS3, vaultBucket, backup.dataKey))).toBe(sha256(data));
    const requests = proxy.seen.slice(seenBefore).filter((r) => r.url.startsWith(`/${vaultBucket}/${backup.dataKey}`));
    expect(requests.filter((r) => r.method === 'PUT' && r.url.includes('partNumber='))).toHaveLength(3);
    const complete = requests.find((r) => r.method === 'POST' && r.url.includes('uploadId='));
    expect(complete?.headers['if-none-match']).toBe('*');
  });

  it('aborts, storing nothing, when the source bytes do not match the manifest', async () => {
    // Prepare: a manifest that claims other bytes than the object holds.
    const data = randomBytes(11 * 1024 * 1024);
    const backup = await syntheticBackup(data, { sha256: sha256('something else'), bytes: data.length });

    // Act
    const error = await copyDumpToVault({ sourceBucket, manifestKey: backup.manifestKey, databaseId: 'orders' }, { ...deps(), partSize: 5 * 1024 * 1024 }).catch((e: unknown) => e);

    // Assess: a clear error; no object, no manifest and no unfinished upload in the vault.
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect((error as Error).message).toMatch(/its manifest says [0-9a-f]{64} and 11534336\. Nothing was stored in the vault\. Next step: treat this backup as corrupt/);
    expect(await versions(vaultS3, backup.dataKey.replace(/dump\.enc$/, ''))).toEqual([]);
    const uploads = await vaultS3.send(new ListMultipartUploadsCommand({ Bucket: vaultBucket, Prefix: backup.dataKey }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });

  it('marks a stored copy that fails verification as quarantined, never writes its manifest, and reports it', async () => {
    // Prepare: the vault returns other bytes than were written (storage or network corruption).
    const data = randomBytes(64 * 1024);
    const backup = await syntheticBackup(data);
    proxy.addRule((req) =>
      req.method === 'GET' && req.url.split('?')[0] === `/${vaultBucket}/${backup.dataKey}`
        ? { status: 200, headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) }, body: Buffer.alloc(data.length, 7).toString('latin1') }
        : undefined,
    );

    // Act
    const error = await copyDumpToVault({ sourceBucket, manifestKey: backup.manifestKey, databaseId: 'orders' }, deps()).catch((e: unknown) => e);

    // Assess: reported, marked, not committed; the locked object is still there (it cannot be deleted).
    expect(error).toBeInstanceOf(VaultCopyVerificationError);
    expect((error as Error).message).toContain(`It cannot be deleted (Object Lock), so it is marked by s3://${vaultBucket}/${quarantineKey(backup.dataKey)} and its manifest was not copied: it is not a vault backup.`);
    const marker = JSON.parse((await body(vaultS3, vaultBucket, quarantineKey(backup.dataKey))).toString()) as Record<string, unknown>;
    expect(marker).toMatchObject({ lifeboatQuarantine: 1, key: backup.dataKey, expectedSha256: sha256(data), actualSha256: sha256(Buffer.alloc(data.length, 7)) });
    expect((await versions(vaultS3, backup.manifestKey)).length).toBe(0);
    expect((await versions(vaultS3, backup.dataKey)).filter((v) => v.key === backup.dataKey)).toHaveLength(1);
  });
});

describe('what production credentials can do to the vault', () => {
  it('cannot delete a locked vault object version, neither as the copier role nor with production credentials', async () => {
    // Prepare
    const [data] = (await versions(vaultS3, dumped.dataKey)).filter((v) => v.key === dumped.dataKey);
    const production = createS3Client({ region: VAULT_REGION });

    // Act + Assess
    for (const s3 of [vaultS3, production]) {
      const denied = await s3.send(new DeleteObjectCommand({ Bucket: vaultBucket, Key: dumped.dataKey, VersionId: data!.versionId })).catch((e: unknown) => e);
      expect((denied as Error).name).toBe('AccessDenied');
      const bypass = await s3
        .send(new DeleteObjectCommand({ Bucket: vaultBucket, Key: dumped.dataKey, VersionId: data!.versionId, BypassGovernanceRetention: true }))
        .catch((e: unknown) => e);
      expect((bypass as Error).name).toBe('AccessDenied');
    }
    expect(sha256(await body(vaultS3, vaultBucket, dumped.dataKey, data!.versionId))).toBe(dumped.sha256);
  });

  it('cannot overwrite a vault object: writes are If-None-Match, and the locked version stays', async () => {
    const [data] = (await versions(vaultS3, dumped.dataKey)).filter((v) => v.key === dumped.dataKey);
    const refused = await vaultS3.send(new PutObjectCommand({ Bucket: vaultBucket, Key: dumped.dataKey, Body: 'overwrite', IfNoneMatch: '*' })).catch((e: unknown) => e);
    expect((refused as Error).name).toBe('PreconditionFailed');
    expect(sha256(await body(vaultS3, vaultBucket, dumped.dataKey, data!.versionId))).toBe(dumped.sha256);
  });
});
