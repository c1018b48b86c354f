import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DescribeDBInstancesCommand, DescribeDBSnapshotsCommand, type DBSnapshot, type RDSClient } from '@aws-sdk/client-rds';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { backupKeys, type Manifest } from '../../functions/lib/backup/manifest.ts';
import { listDrillReports } from '../../functions/lib/drill/report.ts';
import { DRILL_TAG, tagRecord } from '../../functions/lib/drill/provisioner.ts';
import { readManifest } from '../../functions/lib/restore/fetch.ts';
import { TAG } from '../../functions/lib/snapshots/ids.ts';
import { sleep } from './cleanup.ts';
import { awsErrorName } from './aws.ts';
import { sampleInventoryDifferences } from './sample-data.ts';

/**
 * The smoke test's verdicts on what the deployed workflows left behind. Each
 * check reads the outcome where a user would find it (S3 objects, RDS
 * snapshots, drill reports, audit logs, the alert queue) with the project's own
 * parsers, and reports a failure as a value, never by throwing, so every check
 * runs and the final table lists them all.
 */
export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export function passed(name: string, detail: string): CheckResult {
  return { name, ok: true, detail };
}

export function failed(name: string, detail: string): CheckResult {
  return { name, ok: false, detail };
}

/** Runs a check that may throw (access denied, missing object) and reports the error as its failure. */
export async function guarded(name: string, check: () => Promise<CheckResult | CheckResult[]>): Promise<CheckResult[]> {
  try {
    const out = await check();
    return Array.isArray(out) ? out : [out];
  } catch (error) {
    return [failed(name, `${awsErrorName(error) || 'Error'}: ${(error as Error).message}`)];
  }
}

export async function sha256OfObject(s3: S3Client, bucket: string, key: string): Promise<{ sha256: string; bytes: number }> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of out.Body as Readable) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

export interface BucketRef {
  readonly s3: S3Client;
  readonly bucket: string;
}

/** Backup ids under `<prefix><databaseId>/` that have a manifest (the commit marker), oldest first. */
export async function listCommittedBackupIds(where: BucketRef, prefix: string, databaseId: string): Promise<string[]> {
  const ids: string[] = [];
  let token: string | undefined;
  do {
    const page = await where.s3.send(new ListObjectsV2Command({ Bucket: where.bucket, Prefix: `${prefix}${databaseId}/`, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const m = new RegExp(`^${escapeRegExp(prefix)}${escapeRegExp(databaseId)}/([^/]+)/manifest\\.json$`).exec(o.Key ?? '');
      if (m) ids.push(m[1]!);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return ids.sort();
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The dump object of a backup hashes to its manifest's sha256 and size. */
async function checkStoredDump(where: BucketRef, manifest: Manifest, name: string): Promise<CheckResult> {
  const stored = await sha256OfObject(where.s3, where.bucket, manifest.object.key);
  if (stored.sha256 !== manifest.object.sha256 || stored.bytes !== manifest.object.storedBytes) {
    return failed(
      name,
      `s3://${where.bucket}/${manifest.object.key} has sha256 ${stored.sha256} (${stored.bytes} bytes); its manifest says ${manifest.object.sha256} (${manifest.object.storedBytes} bytes)`,
    );
  }
  return passed(name, `s3://${where.bucket}/${manifest.object.key}: sha256 ${stored.sha256.slice(0, 16)}..., ${stored.bytes} bytes, as the manifest says`);
}

/**
 * A backup in the source bucket and its copy in the vault: each has a manifest
 * and a dump whose sha256 matches it, and both manifests describe the same bytes.
 */
export async function checkDumpPair(source: BucketRef, vault: BucketRef, prefix: string, databaseId: string, backupId: string): Promise<{ checks: CheckResult[]; manifest?: Manifest }> {
  const keys = backupKeys(prefix, databaseId, backupId);
  const sourceName = `dump ${backupId} in the source bucket: manifest and dump, sha256 matches`;
  const vaultName = `dump ${backupId} in the vault: manifest and dump, sha256 matches the source's`;
  const checks: CheckResult[] = [];
  let manifest: Manifest | undefined;
  checks.push(
    ...(await guarded(sourceName, async () => {
      manifest = await readManifest(source.s3, source.bucket, keys.manifest);
      return checkStoredDump(source, manifest, sourceName);
    })),
  );
  checks.push(
    ...(await guarded(vaultName, async () => {
      const copy = await readManifest(vault.s3, vault.bucket, keys.manifest);
      if (manifest && (copy.object.sha256 !== manifest.object.sha256 || copy.backupId !== manifest.backupId)) {
        return failed(vaultName, `the vault manifest says sha256 ${copy.object.sha256} for backup ${copy.backupId}; the source's says ${manifest.object.sha256} for ${manifest.backupId}`);
      }
      return checkStoredDump(vault, copy, vaultName);
    })),
  );
  return { checks, manifest };
}

/** The manifest's inventory holds the sample tables with their known row counts. */
export function checkSampleInventory(manifest: Manifest | undefined): CheckResult {
  const name = 'manifest inventory: sample tables with their known row counts';
  if (!manifest) return failed(name, 'no manifest to read (see the dump check)');
  const differences = sampleInventoryDifferences(manifest.inventory.tables);
  return differences.length ? failed(name, differences.join('; ')) : passed(name, manifest.inventory.tables.map((t) => `${t.schema}.${t.name}=${t.rows}`).join(', '));
}

/** A backup's manifest is gone from one bucket (retention deleted it) or still there (the vault keeps it). */
export async function manifestExists(where: BucketRef, prefix: string, databaseId: string, backupId: string): Promise<boolean> {
  try {
    await where.s3.send(new HeadObjectCommand({ Bucket: where.bucket, Key: backupKeys(prefix, databaseId, backupId).manifest }));
    return true;
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || awsErrorName(error) === 'NotFound' || awsErrorName(error) === 'NoSuchKey') return false;
    throw error;
  }
}

/** The value lifeboat writes in the `lifeboat:execution` tag (RDS tag values stop at 256 characters). */
export function executionTagValue(executionArn: string): string {
  return executionArn.slice(0, 256);
}

/** Manual snapshots in the client's account and region that an execution made (by its lifeboat:execution tag). */
export async function snapshotsOfExecution(rds: RDSClient, executionArn: string): Promise<DBSnapshot[]> {
  const wanted = executionTagValue(executionArn);
  return (await manualSnapshots(rds)).filter((s) => tagRecord(s.TagList)[TAG.execution] === wanted);
}

export async function manualSnapshots(rds: RDSClient): Promise<DBSnapshot[]> {
  const out: DBSnapshot[] = [];
  let marker: string | undefined;
  do {
    const page = await rds.send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual', Marker: marker }));
    out.push(...(page.DBSnapshots ?? []));
    marker = page.Marker;
  } while (marker);
  return out;
}

function keyIdOf(arnOrId: string | undefined): string | undefined {
  return arnOrId?.split('/').pop();
}

/**
 * A snapshot is available, encrypted (under `kmsKeyArn` when given) and
 * carries the tags that let the vault describe itself.
 */
export function checkSnapshot(name: string, snapshots: readonly DBSnapshot[], expect: { planId: string; databaseId: string; kmsKeyArn?: string }): CheckResult {
  if (snapshots.length === 0) return failed(name, 'no snapshot tagged with this execution');
  const problems: string[] = [];
  const s = snapshots[0]!;
  const tags = tagRecord(s.TagList);
  if (s.Status !== 'available') problems.push(`status is ${s.Status}, not available`);
  if (!s.Encrypted) problems.push('not encrypted');
  if (expect.kmsKeyArn && keyIdOf(s.KmsKeyId) !== keyIdOf(expect.kmsKeyArn)) problems.push(`encrypted under ${s.KmsKeyId}, not ${expect.kmsKeyArn}`);
  if (tags[TAG.managed] !== 'true') problems.push(`tag ${TAG.managed} is ${tags[TAG.managed] ?? 'missing'}`);
  if (!tags[TAG.backupId]) problems.push(`tag ${TAG.backupId} is missing`);
  if (tags[TAG.plan] !== expect.planId) problems.push(`tag ${TAG.plan} is ${tags[TAG.plan] ?? 'missing'}, expected ${expect.planId}`);
  if (tags[TAG.database] !== expect.databaseId) problems.push(`tag ${TAG.database} is ${tags[TAG.database] ?? 'missing'}, expected ${expect.databaseId}`);
  return problems.length
    ? failed(name, `${s.DBSnapshotIdentifier}: ${problems.join('; ')}`)
    : passed(name, `${s.DBSnapshotIdentifier}: available, encrypted, ${TAG.backupId}=${tags[TAG.backupId]}`);
}

/** The newest drill report of a database: verdict passed, RTO and RPO measured, the expected backup, torn down. */
export async function checkDrillReport(where: BucketRef, prefix: string, databaseId: string, expect: { backupId?: string; executionArn?: string }): Promise<CheckResult> {
  const name = 'drill report: verdict passed, RTO and RPO measured, throwaway torn down';
  const [newest] = await listDrillReports(where.s3, where.bucket, prefix, { databaseId, limit: 1 });
  if (!newest) return failed(name, `no drill report under s3://${where.bucket}/${prefix}_drills/${databaseId}/`);
  const r = newest.report;
  const problems: string[] = [];
  if (r.verdict !== 'passed') problems.push(`verdict ${r.verdict}: ${r.summary}`);
  if (typeof r.rto?.seconds !== 'number') problems.push('RTO not measured');
  if (typeof r.rpo?.seconds !== 'number') problems.push('RPO not measured');
  if (expect.backupId && r.backup?.id !== expect.backupId) problems.push(`drilled backup ${r.backup?.id ?? 'none'}, expected ${expect.backupId}`);
  if (expect.executionArn && r.executionId && r.executionId !== expect.executionArn) problems.push(`report of execution ${r.executionId}, expected ${expect.executionArn}`);
  if (r.teardown.status !== 'complete') problems.push(`teardown ${r.teardown.status}${r.teardown.error ? `: ${r.teardown.error}` : ''}`);
  const failedChecks = r.checks.filter((c) => c.status === 'failed');
  if (failedChecks.length) problems.push(`failed checks: ${failedChecks.map((c) => c.name).join(', ')}`);
  if (problems.length) return failed(name, `${newest.key}: ${problems.join('; ')}`);
  return passed(name, `${newest.key}: RTO ${Math.round(r.rto!.seconds!)} s, RPO ${Math.round(r.rpo!.seconds!)} s, ${r.checks.filter((c) => c.status === 'passed').length} checks passed`);
}

/** Throwaway drill instances an execution left that are not on their way out. */
export async function lingeringDrillInstances(rds: RDSClient, executionArn: string): Promise<{ id: string; status: string }[]> {
  const wanted = executionTagValue(executionArn);
  const out: { id: string; status: string }[] = [];
  let marker: string | undefined;
  do {
    const page = await rds.send(new DescribeDBInstancesCommand({ Marker: marker }));
    for (const i of page.DBInstances ?? []) {
      if (tagRecord(i.TagList)[DRILL_TAG.execution] === wanted && i.DBInstanceStatus !== 'deleting') out.push({ id: i.DBInstanceIdentifier ?? '?', status: i.DBInstanceStatus ?? '?' });
    }
    marker = page.Marker;
  } while (marker);
  return out;
}

interface AuditLineView {
  backupId?: string;
  databaseId?: string;
  location?: string;
  outcome?: string;
  kind?: string;
}

/** A retention audit log written since `since` records `backupId` as deleted at the source. */
export async function checkRetentionAudit(where: BucketRef, prefix: string, expect: { databaseId: string; backupId: string; since: Date }): Promise<CheckResult> {
  const name = `retention audit log records backup ${expect.backupId} as deleted`;
  const auditPrefix = `${prefix}_audit/retention/`;
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await where.s3.send(new ListObjectsV2Command({ Bucket: where.bucket, Prefix: auditPrefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      if (o.Key && o.Key.endsWith('.jsonl') && (!o.LastModified || o.LastModified.getTime() >= expect.since.getTime() - 60_000)) keys.push(o.Key);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  if (keys.length === 0) return failed(name, `no audit log under s3://${where.bucket}/${auditPrefix} since ${expect.since.toISOString()}`);
  for (const key of keys) {
    const out = await where.s3.send(new GetObjectCommand({ Bucket: where.bucket, Key: key }));
    const lines = (await out.Body!.transformToString()).split('\n').filter((l) => l.trim());
    for (const text of lines) {
      let line: AuditLineView;
      try {
        line = JSON.parse(text) as AuditLineView;
      } catch {
        continue;
      }
      if (line.backupId === expect.backupId && line.databaseId === expect.databaseId && line.outcome === 'deleted') {
        return passed(name, `s3://${where.bucket}/${key}: ${line.location} ${line.kind} ${line.backupId} deleted`);
      }
    }
  }
  return failed(name, `${keys.length} audit log(s) since ${expect.since.toISOString()} (${keys.join(', ')}), none records ${expect.backupId} as deleted`);
}

/** A lifeboat alert as it arrives in SQS through SNS. */
export interface ReceivedAlert {
  readonly kind: string;
  readonly databaseId?: string;
  readonly planId?: string;
  readonly failure?: string;
  readonly subject?: string;
  /** The whole delivered text (subject and message), for the secrets check. */
  readonly text: string;
}

/**
 * Parses one SQS message body: an SNS envelope (`Type: Notification`, the
 * default) or raw delivery, whose message ends with lifeboat's
 * `--- details (JSON) ---` block (functions/lib/alerts/format.ts). Anything
 * else (a CloudWatch alarm's own JSON, a test message) is not an alert.
 */
export function parseAlertMessage(body: string): ReceivedAlert | undefined {
  let subject: string | undefined;
  let message = body;
  try {
    const envelope = JSON.parse(body) as { Type?: string; Message?: string; Subject?: string };
    if (envelope && typeof envelope.Message === 'string') {
      message = envelope.Message;
      subject = envelope.Subject;
    }
  } catch {
    // raw delivery: the body is the message
  }
  const marker = '--- details (JSON) ---';
  const at = message.indexOf(marker);
  if (at < 0) return undefined;
  let details: { lifeboatAlert?: unknown; kind?: unknown; databaseId?: unknown; planId?: unknown; failure?: unknown };
  try {
    details = JSON.parse(message.slice(at + marker.length)) as typeof details;
  } catch {
    return undefined;
  }
  if (details.lifeboatAlert !== 1 || typeof details.kind !== 'string') return undefined;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return { kind: details.kind, databaseId: str(details.databaseId), planId: str(details.planId), failure: str(details.failure), subject, text: `${subject ?? ''}\n${message}` };
}

/**
 * Polls the queue until an alert matching `match` arrives or the time is up.
 * Every message read is deleted (the queue is the smoke test's own) and every
 * parsed alert returned, so a caller can say what did arrive when the wanted one did not.
 */
export async function waitForAlert(
  sqs: SQSClient,
  queueUrl: string,
  match: (alert: ReceivedAlert) => boolean,
  options: { timeoutMs: number; signal?: AbortSignal; waitSeconds?: number },
): Promise<{ found?: ReceivedAlert; seen: ReceivedAlert[] }> {
  const deadline = Date.now() + options.timeoutMs;
  const seen: ReceivedAlert[] = [];
  for (;;) {
    if (options.signal?.aborted) throw options.signal.reason;
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: options.waitSeconds ?? 20, VisibilityTimeout: 60 }),
      { abortSignal: options.signal },
    );
    for (const m of out.Messages ?? []) {
      const alert = m.Body ? parseAlertMessage(m.Body) : undefined;
      if (m.ReceiptHandle) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
      if (!alert) continue;
      seen.push(alert);
      if (match(alert)) return { found: alert, seen };
    }
    if (Date.now() >= deadline) return { seen };
    if (!out.Messages?.length && (options.waitSeconds ?? 20) === 0) await sleep(500, options.signal);
  }
}

/** None of `secrets` appears in `text`. Names how many did, never which. */
export function checkNoSecrets(name: string, text: string, secrets: readonly string[]): CheckResult {
  const leaked = secrets.filter((s) => s.length >= 4 && text.includes(s)).length;
  return leaked ? failed(name, `${leaked} known secret value(s) appear in it`) : passed(name, `none of the ${secrets.length} known secret values appears`);
}
