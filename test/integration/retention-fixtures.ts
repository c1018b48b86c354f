import { createHash, randomBytes } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateDBClusterSnapshotCommand, CreateDBSnapshotCommand, type RDSClient } from '@aws-sdk/client-rds';
import { expect } from 'vitest';
import { backupKeys, manifestSchema, type Manifest } from '../../functions/lib/backup/manifest.ts';
import { drillReportSchema, writeDrillReport, type DrillReport } from '../../functions/lib/drill/report.ts';
import { TAG } from '../../functions/lib/snapshots/ids.ts';
import type { FaultRule } from '../../local/fault-proxy.ts';
import { rdsRequest } from '../../local/moto-rds-compat.ts';

/** Shared fixtures of the retention tests: stored dumps, drill reports, tagged snapshots, audit logs. */

export const REGION = 'eu-west-1';

/** A manifest that passes `manifestSchema` (checked here, so a schema change fails loudly). */
export function fakeManifest(
  target: { bucket: string; prefix: string; databaseId: string; planId?: string },
  backupId: string,
  consistentAt: Date,
  data: Buffer,
): Manifest {
  const { data: key } = backupKeys(target.prefix, target.databaseId, backupId);
  const manifest: Manifest = {
    formatVersion: 1,
    backupId,
    kind: 'pg_dump',
    planId: target.planId ?? 'nightly',
    database: {
      id: target.databaseId,
      name: 'orders',
      host: 'orders.cluster-abc.eu-west-1.rds.amazonaws.com',
      port: 5432,
      serverVersion: '15.8',
      serverVersionNum: 150008,
      sizeBytes: 123_456,
    },
    dump: { tool: 'pg_dump', toolVersion: '15.8', toolMajor: 15, format: 'custom', compression: 'gzip', snapshotId: '00000003-0000001B-1' },
    startedAt: new Date(consistentAt.getTime() - 1000).toISOString(),
    consistentAt: consistentAt.toISOString(),
    finishedAt: new Date(consistentAt.getTime() + 60_000).toISOString(),
    object: {
      bucket: target.bucket,
      key,
      rawBytes: data.length,
      storedBytes: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
      partSizeBytes: 8 * 1024 * 1024,
    },
    encryption: {
      sdk: 'aws-encryption-sdk',
      kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555',
      encryptionContext: { lifeboat: 'v1', database: target.databaseId, backup: backupId },
      frameLength: 4096,
    },
    inventory: {
      tables: [{ schema: 'public', name: 'orders', kind: 'r', rows: 42 }],
      sequences: [{ schema: 'public', name: 'orders_id_seq', lastValue: '42', isCalled: true }],
      largeObjects: 0,
      schemaFingerprint: createHash('sha256').update('schema').digest('hex'),
      extensions: ['plpgsql'],
    },
  };
  return manifestSchema.parse(manifest);
}

export async function createRetentionBucket(s3: S3Client, objectLock: boolean): Promise<string> {
  const bucket = `lifeboat-retention-${randomBytes(5).toString('hex')}`;
  await s3.send(
    new CreateBucketCommand({
      Bucket: bucket,
      CreateBucketConfiguration: { LocationConstraint: REGION },
      ...(objectLock ? { ObjectLockEnabledForBucket: true } : {}),
    }),
  );
  return bucket;
}

/** A committed dump: data, then its manifest. */
export async function putBackup(
  s3: S3Client,
  target: { bucket: string; prefix: string; databaseId: string; planId?: string },
  id: string,
  consistentAt: Date,
): Promise<{ data: string; manifest: string }> {
  const keys = backupKeys(target.prefix, target.databaseId, id);
  const data = randomBytes(64);
  await s3.send(new PutObjectCommand({ Bucket: target.bucket, Key: keys.data, Body: data }));
  await s3.send(
    new PutObjectCommand({
      Bucket: target.bucket,
      Key: keys.manifest,
      Body: JSON.stringify(fakeManifest(target, id, consistentAt, data)),
      ContentType: 'application/json',
    }),
  );
  return keys;
}

/** A drill report in the layout lib/drill/report.ts writes. */
export async function putDrillReport(
  s3: S3Client,
  at: { bucket: string; prefix: string },
  report: { databaseId: string; kind: 'dump' | 'snapshot'; backupId: string; verdict: 'passed' | 'failed' | 'emulated'; emulated?: boolean; drillId: string },
): Promise<void> {
  const now = new Date().toISOString();
  const full: DrillReport = drillReportSchema.parse({
    formatVersion: 1,
    drillId: report.drillId,
    databaseId: report.databaseId,
    planId: 'nightly',
    startedAt: now,
    finishedAt: now,
    verdict: report.verdict,
    summary: `drill ${report.verdict}`,
    backup: { kind: report.kind, id: report.backupId, from: 'source', location: 'somewhere', consistentAt: now, choice: 'latest', newestConsistentAt: now },
    instance: { provider: 'rds', identifier: `drill-${report.drillId}`, emulated: report.emulated ?? false },
    checks: [],
    objectivesMet: true,
    teardown: { status: 'complete', items: [] },
  });
  await writeDrillReport(full, [{ s3, bucket: at.bucket, prefix: at.prefix }]);
}

export async function readJsonLines<T>(s3: S3Client, bucket: string, key: string): Promise<T[]> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const text = await out.Body!.transformToString();
  expect(text.endsWith('\n')).toBe(true);
  return text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as T);
}

/** The tags the snapshot workflow writes (lib/snapshots/ids.ts). */
export function lifeboatTags(planId: string, databaseId: string, backupId: string): { Key: string; Value: string }[] {
  return [
    { Key: TAG.managed, Value: 'true' },
    { Key: TAG.backupId, Value: backupId },
    { Key: TAG.plan, Value: planId },
    { Key: TAG.database, Value: databaseId },
  ];
}

export async function createSnapshot(
  rds: RDSClient,
  source: { instance: string } | { cluster: string },
  id: string,
  tags: { Key: string; Value: string }[],
): Promise<void> {
  if ('instance' in source) await rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: source.instance, DBSnapshotIdentifier: id, Tags: tags }));
  else await rds.send(new CreateDBClusterSnapshotCommand({ DBClusterIdentifier: source.cluster, DBClusterSnapshotIdentifier: id, Tags: tags }));
}

/**
 * Rewrites single snapshots inside moto's DescribeDBSnapshots /
 * DescribeDBClusterSnapshots listings: moto stamps the creation time itself and
 * makes every snapshot `available` at once, so tests set `time`, `status`
 * and, for a copy, `copiedAt` per identifier here. The rest of the answer is moto's own.
 */
export function snapshotListing(upstream: string, overrides: Map<string, { time?: Date; status?: string; copiedAt?: Date }>): FaultRule {
  return async (req) => {
    const r = rdsRequest(req);
    if (!r || (r.action !== 'DescribeDBSnapshots' && r.action !== 'DescribeDBClusterSnapshots')) return undefined;
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k, v]) => v !== undefined && !['host', 'content-length', 'connection'].includes(k)).map(([k, v]) => [k, String(v)]));
    const answer = await fetch(new URL(req.url, upstream), { method: 'POST', headers, body: req.body });
    const element = r.action === 'DescribeDBSnapshots' ? 'DBSnapshot' : 'DBClusterSnapshot';
    const body = (await answer.text()).replace(new RegExp(`<${element}>[\\s\\S]*?</${element}>`, 'g'), (block) => {
      const id = new RegExp(`<${element}Identifier>([^<]*)</${element}Identifier>`).exec(block)?.[1] ?? '';
      const o = overrides.get(id);
      if (!o) return block;
      let out = block;
      if (o.time) out = out.replace(/<(SnapshotCreateTime|OriginalSnapshotCreateTime)>[^<]*</g, (_m, tag: string) => `<${tag}>${o.time!.toISOString()}<`);
      // A copy: RDS reports when the copy was made (SnapshotCreateTime) beside its original's time.
      if (o.copiedAt) {
        out = out.replace(/<OriginalSnapshotCreateTime>[^<]*<\/OriginalSnapshotCreateTime>/, '');
        out = out.replace(/<SnapshotCreateTime>([^<]*)<\/SnapshotCreateTime>/, (_m, original: string) => `<SnapshotCreateTime>${o.copiedAt!.toISOString()}</SnapshotCreateTime><OriginalSnapshotCreateTime>${original}</OriginalSnapshotCreateTime>`);
      }
      if (o.status) out = out.replace(/<Status>[^<]*</, `<Status>${o.status}<`);
      return out;
    });
    return { status: answer.status, headers: { 'content-type': answer.headers.get('content-type') ?? 'text/xml' }, body };
  };
}
