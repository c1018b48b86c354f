import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { describeCaughtError } from '../alerts/format.ts';
import { redact } from '../redact.ts';
import { check } from './verify.ts';
import { drillCheckSchema, measurementSchema, restoreClientSchema, teardownItemSchema, type DrillCheck, type DrillState, type PitrBackup } from './types.ts';

/**
 * The drill report: one JSON object per drill at
 * `<prefix>_drills/<databaseId>/<drillId>.json`, in the source bucket and, when
 * configured, the vault. Drill ids sort by time, so the newest report of a
 * database is the last key. `lifeboat status` and the dashboard read them with
 * `listDrillReports`.
 */
export const DRILL_REPORT_FORMAT_VERSION = 1;

export const drillReportSchema = z.object({
  formatVersion: z.literal(DRILL_REPORT_FORMAT_VERSION),
  drillId: z.string(),
  databaseId: z.string(),
  planId: z.string(),
  executionId: z.string().optional(),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  /** `emulated`: the instance was an API emulation (moto); no data check passed, none was performed. */
  verdict: z.enum(['passed', 'failed', 'emulated']),
  summary: z.string(),
  backup: z
    .object({
      kind: z.enum(['dump', 'snapshot', 'pitr']),
      id: z.string(),
      from: z.enum(['source', 'vault', 'copy-region']),
      location: z.string(),
      consistentAt: z.iso.datetime(),
      choice: z.enum(['latest', 'random', 'explicit']),
      newestConsistentAt: z.iso.datetime(),
    })
    .optional(),
  instance: z
    .object({
      provider: z.enum(['local', 'rds']),
      identifier: z.string(),
      emulated: z.boolean(),
      endpoint: z.object({ host: z.string(), port: z.number() }).optional(),
      dataDir: z.string().optional(),
    })
    .optional(),
  /** Dump drills: the pg_restore that ran, the pg_dump that wrote the archive and the server restored into. */
  restore: restoreClientSchema.optional(),
  checks: z.array(drillCheckSchema),
  rto: measurementSchema.shape.rto.optional(),
  rpo: measurementSchema.shape.rpo.optional(),
  objectivesMet: z.boolean().nullable(),
  error: z.object({ name: z.string(), message: z.string() }).optional(),
  teardown: z.object({ status: z.enum(['complete', 'incomplete', 'not-run']), items: z.array(teardownItemSchema), error: z.string().optional() }),
});
export type DrillReport = z.infer<typeof drillReportSchema>;

export function drillReportsPrefix(prefix: string, databaseId?: string): string {
  return `${prefix}_drills/${databaseId ? `${databaseId}/` : ''}`;
}

export function drillReportKey(prefix: string, databaseId: string, drillId: string): string {
  return `${drillReportsPrefix(prefix, databaseId)}${drillId}.json`;
}

/** Which check an error that stopped the drill stands for, so the report names it. */
const ERROR_CHECK: Record<string, string> = {
  ChecksumMismatchError: 'sha256',
  DecryptionError: 'decryption',
  EncryptionKeyError: 'decryption',
  RestoreFailedError: 'pg_restore',
  ToolVersionError: 'pg_restore',
  RestoreTimeoutError: 'instance available',
  DrillProvisioningError: 'instance available',
  InstanceNotReadyError: 'instance available',
  BackupNotFoundError: 'backup selected',
  StorageError: 'backup selected',
  DatabaseConnectionError: 'connection',
  TeardownIncompleteError: 'teardown',
};

function caught(error: { Error?: string; Cause?: string }): { name: string; message: string } {
  const d = describeCaughtError(error);
  return { name: d.failure, message: redact(d.nextStep ? `${d.what} Next step: ${d.nextStep}` : d.what) };
}

/** Where a point-in-time restore came from, in words: the automated backups (or their replica) and the moment. */
function pitrLocation(b: PitrBackup): string {
  const what = b.automatedBackupsArn ?? `automated backups of ${b.isCluster ? 'cluster' : 'instance'} ${b.sourceIdentifier}`;
  const moment =
    b.moment === 'latest'
      ? `${b.consistentAt}, the newest restorable moment when selected`
      : b.dump
        ? `${b.consistentAt}, the consistent point of dump ${b.dump.backupId}`
        : b.consistentAt;
  return `${what}${b.region ? ` in ${b.region}` : ''} at ${moment}; window ${b.window.earliest} to ${b.window.latest}`;
}

export function buildDrillReport(state: DrillState, drillId: string, now: Date): DrillReport {
  const { request, selection, instance, measurement } = state;
  const error = state.error ? caught(state.error) : undefined;
  const checks: DrillCheck[] = [...(state.verification?.checks ?? state.restore?.checks ?? [])];
  if (error) checks.push(check(ERROR_CHECK[error.name] ?? 'drill', false, error.message));
  const b = selection?.backup;
  const verdict = error ? 'failed' : (measurement?.verdict ?? 'failed');
  return {
    formatVersion: DRILL_REPORT_FORMAT_VERSION,
    drillId,
    databaseId: request.databaseId,
    planId: request.planId,
    executionId: state.executionId,
    startedAt: selection?.startedAt ?? now.toISOString(),
    finishedAt: now.toISOString(),
    verdict,
    summary: error ? `Drill ${drillId} of database "${request.databaseId}" failed: ${error.name}: ${error.message}` : (measurement?.summary ?? ''),
    backup: b && {
      kind: b.kind,
      id: b.backupId,
      from: b.from,
      location: b.kind === 'dump' ? `s3://${b.bucket}/${b.manifestKey}` : b.kind === 'snapshot' ? b.snapshotArn : pitrLocation(b),
      consistentAt: b.consistentAt,
      choice: selection.choice,
      newestConsistentAt: selection.newestConsistentAt,
    },
    instance: instance && { provider: instance.provider, identifier: instance.identifier, emulated: instance.emulated, endpoint: instance.endpoint, dataDir: instance.dataDir },
    restore: state.restore?.client,
    checks,
    rto: measurement?.rto,
    rpo: measurement?.rpo,
    objectivesMet: measurement ? measurement.objectivesMet : null,
    error,
    teardown: {
      status: state.teardownError ? 'incomplete' : state.teardown ? 'complete' : 'not-run',
      items: state.teardown?.items ?? [],
      error: state.teardownError ? caught(state.teardownError).message : undefined,
    },
  };
}

export interface ReportTarget {
  s3: S3Client;
  bucket: string;
  prefix: string;
}

/** Writes the report to every target; returns the `s3://` locations written. */
export async function writeDrillReport(report: DrillReport, targets: readonly ReportTarget[]): Promise<string[]> {
  const body = `${JSON.stringify(drillReportSchema.parse(report), null, 2)}\n`;
  const locations: string[] = [];
  for (const t of targets) {
    const key = drillReportKey(t.prefix, report.databaseId, report.drillId);
    // A report is written once (its key is the drill's own); the vault bucket refuses writes that could overwrite.
    await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: key, Body: body, ContentType: 'application/json', IfNoneMatch: '*' }));
    locations.push(`s3://${t.bucket}/${key}`);
  }
  return locations;
}

export interface StoredDrillReport {
  key: string;
  report: DrillReport;
}

/**
 * Drill reports, newest first: of one database, or of all. `limit` bounds how
 * many are fetched (the listing itself is one key per drill).
 */
export async function listDrillReports(
  s3: S3Client,
  bucket: string,
  prefix: string,
  options: { databaseId?: string; limit?: number } = {},
): Promise<StoredDrillReport[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: drillReportsPrefix(prefix, options.databaseId), ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key?.endsWith('.json')) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const drillIdOf = (key: string) => key.slice(key.lastIndexOf('/') + 1);
  keys.sort((a, b) => (drillIdOf(a) < drillIdOf(b) ? 1 : drillIdOf(a) > drillIdOf(b) ? -1 : 0));
  const out: StoredDrillReport[] = [];
  for (const key of keys.slice(0, options.limit ?? keys.length)) out.push({ key, report: await readDrillReport(s3, bucket, key) });
  return out;
}

export async function readDrillReport(s3: S3Client, bucket: string, key: string): Promise<DrillReport> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return drillReportSchema.parse(JSON.parse(await out.Body!.transformToString()));
}
