import {
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { RetentionPolicy } from '../config/schema.ts';
import { backupKeys, manifestSchema, parseBackupIdTime, type Manifest } from '../backup/manifest.ts';
import { groupBackupDirectories } from '../backup/catalog.ts';
import {
  auditKeyFor,
  backoff,
  defaultSleep,
  mapLimit,
  newRunId,
  renderTable,
  wallClock,
  writeAuditLines,
  type AuditSink,
  type PruneFailure,
  type PruneSummaryBase,
  type RetryOptions,
} from './common.ts';
import { RetentionAuditError, RetentionListingError } from './errors.ts';
import { planRetention, type RetentionBackup, type RetentionDecision } from './planner.ts';
import { collapseCrowdedDays, decideForEachCopy, membersOfDay, type CrowdedDay } from './crowded-days.ts';

/**
 * Retention for pg_dump backups in S3: list, plan (with the pure planner), and
 * delete, with a dry run, an audit log and per-backup failure reporting.
 *
 * ## What is a backup here
 * Everything under `<prefix><databaseId>/<backupId>/`. A directory whose
 * `manifest.json` currently exists (in a versioned bucket: whose latest version is
 * not a delete marker) is a backup, timed by the manifest's `consistentAt`. A
 * directory without one is an *incomplete* backup (a dump that died, or a prune
 * that deleted the manifest but not the data): it never counts as a backup, is
 * reported separately, and is deleted once its newest object is older than both
 * `minAgeDays` and {@link INCOMPLETE_GRACE_DAYS} (so a dump still being written is
 * never touched). A manifest that does not parse or validate is *unreadable*: it
 * is reported and left alone (it may be a newer format), and it takes no part in
 * planning. Leaving backups out of the plan can only keep more, never delete more:
 * the planner is monotone.
 *
 * ## Listing
 * One flat, paginated listing of the database prefix: ListObjectVersions in a
 * bucket that has (or had) versioning, ListObjectsV2 otherwise. That yields the
 * backup ids (the first path segment), whether each has a manifest, and every
 * object version to delete, in ~n/1000 calls, instead of a delimiter listing plus
 * one listing per backup. Then one GetObject per backup for its manifest.
 *
 * ## Object Lock
 * Only objects that the plan would delete are inspected (HeadObject per version:
 * `ObjectLockRetainUntilDate`, `ObjectLockLegalHoldStatus`); locks only ever turn
 * a delete into a keep, and the planner's lock rule is independent of its other
 * rules, so re-planning with the locks of the candidates gives exactly the plan
 * that knowing every lock would. A backup with ANY locked or held version is kept
 * whole (deleting only its unlocked manifest would break it). Locked objects are
 * never sent to S3 for deletion. S3 stays the final authority: if a lock appears
 * after planning, the delete is denied and reported as a failure.
 *
 * ## Versioned buckets
 * A plain DeleteObject only adds a delete marker and frees nothing, so prune
 * deletes the specific versions it listed (every version and delete marker under
 * the backup's directory), which permanently removes them. Versions written after
 * the listing are not touched.
 *
 * ## Order
 * Phase 1 deletes the manifests (every real version of `manifest.json`) of all
 * backups to delete, in DeleteObjects batches of up to 1000; phase 2 then deletes
 * everything else (data, other objects, delete markers) of the backups whose
 * manifests all went. A half-deleted backup therefore never looks complete: it
 * shows up as incomplete and the next run finishes it.
 *
 * ## Throttling
 * The client's adaptive retry (see `createS3Client`) retries whole requests. On
 * top of that, per-key errors inside a DeleteObjects response (SlowDown,
 * InternalError, ServiceUnavailable), and requests that still fail with
 * throttling, are retried with exponential backoff and full jitter.
 *
 * ## Audit
 * A real run with something to delete writes a JSON lines object to
 * `<auditPrefix><yyyy>/<mm>/<dd>/<runId>.<location>.<databaseId>.jsonl`
 * (`auditPrefix` defaults to `<prefix>_audit/retention/`) in the target bucket,
 * or in `audit.bucket` when given (the retention function keeps every
 * location's log in the source bucket): first with every
 * planned deletion (`outcome: "planned"`) before anything is deleted, so no
 * deletion is ever unrecorded even if the run dies midway, then overwritten with
 * the outcomes (`deleted` / `failed`). If the first write fails nothing is deleted.
 */

/** Incomplete backups younger than this are never deleted, whatever minAgeDays says. */
export const INCOMPLETE_GRACE_DAYS = 1;
/** DeleteObjects accepts at most 1000 keys. */
export const DELETE_BATCH_SIZE = 1000;

const DAY_MS = 86_400_000;

export interface S3RetentionTarget {
  /** Location label used in plans and the audit log, e.g. `source`, `copy`, `vault`. */
  location: string;
  bucket: string;
  /** Storage prefix, empty or ending in `/` (config `storage.prefix`). */
  prefix: string;
  databaseId: string;
}

export interface StoredObjectVersion {
  key: string;
  /** Absent in a bucket that never had versioning. */
  versionId?: string;
  isDeleteMarker: boolean;
  isLatest: boolean;
  lastModified?: Date;
  size?: number;
}

export interface ObjectLockState {
  /** Latest retain-until date that is still in the future. */
  lockedUntil?: Date;
  legalHold: boolean;
}

export interface StoredBackup {
  id: string;
  base: string;
  manifestKey: string;
  dataKey: string;
  manifest: Manifest;
  /** `manifest.consistentAt`. */
  time: Date;
  objects: StoredObjectVersion[];
}

export interface IncompleteBackup {
  id: string;
  base: string;
  objects: StoredObjectVersion[];
  /** Newest LastModified over its objects, versions and delete markers. */
  lastWrite: Date | undefined;
}

export interface UnreadableBackup {
  id: string;
  base: string;
  error: string;
  objects: StoredObjectVersion[];
  /** The manifest reads, but its date contradicts when S3 says it was written: forged or misdated. */
  suspicious?: 'misdated';
  /** The plan a suspicious manifest names (each plan's run reports only its own). */
  planId?: string;
}

/** How far a manifest's `consistentAt` may lie ahead of its S3 write time (clock skew between hosts). */
export const MANIFEST_CLOCK_SKEW_MS = 5 * 60_000;

export interface S3BackupInventory {
  target: S3RetentionTarget;
  /** The bucket has (or had) versioning: objects carry version ids. */
  versioned: boolean;
  backups: StoredBackup[];
  incomplete: IncompleteBackup[];
  unreadable: UnreadableBackup[];
  warnings: string[];
}

export interface PrunePlanEntry extends RetentionDecision {
  kind: 'backup' | 'incomplete';
  /** Every object version this entry would delete (or has). */
  objects: StoredObjectVersion[];
  /** Lock state, when it was inspected (only for would-be deletions). */
  lock?: ObjectLockState;
}

export interface S3PrunePlan {
  target: S3RetentionTarget;
  policy: RetentionPolicy;
  now: Date;
  timeZone: string;
  versioned: boolean;
  /** With `planId`: that plan; backups whose manifest names another plan (or none) were left out. */
  planId?: string;
  /** With `planId`: how many backups were left out because they belong to another plan (or none). */
  otherPlans?: number;
  /** Backups (with a manifest), newest first. */
  decisions: PrunePlanEntry[];
  /** Directories without a manifest, newest write first. */
  incomplete: PrunePlanEntry[];
  /** Directories whose manifest does not parse; never deleted. */
  unreadable: UnreadableBackup[];
  /** Ids the policy would delete but Object Lock (retention or legal hold) keeps. */
  skippedLocked: string[];
  /** Days holding more of the plan's backups than its schedule makes (with `maxBackupsPerDay`). */
  crowded: readonly CrowdedDay[];
  warnings: string[];
}

export type { PruneFailure, RetryOptions } from './common.ts';
export { auditKeyFor } from './common.ts';

export interface PruneSummary extends PruneSummaryBase {
  /** Backups kept (including skippedLocked). */
  kept: number;
  /** Backups and incomplete leftovers whose deletion failed; everything else proceeded. */
  failed: PruneFailure[];
  /** Backups and incomplete leftovers the policy would delete but Object Lock keeps. */
  skippedLocked: number;
  incomplete: { found: number; deleted: number };
  unreadable: number;
  plan: S3PrunePlan;
}

export interface PlanS3PruneOptions {
  s3: S3Client;
  target: S3RetentionTarget;
  policy: RetentionPolicy;
  /** Plan schedule time zone (IANA), for the GFS buckets. */
  timeZone: string;
  now: Date;
  /** Backup ids a restore drill has proven. */
  provenBackupIds?: Iterable<string>;
  /**
   * Plan only this plan's backups (manifest `planId`); the others, and ad-hoc
   * backups without a plan, are left out: kept, and not counted against this
   * plan's policy. @default - every backup of the database
   */
  planId?: string;
  /** Parallel GetObject/HeadObject calls. @default 8 */
  concurrency?: number;
  /** MaxKeys per listing page (tests use a small one to exercise pagination). */
  pageSize?: number;
  /** See listS3Backups. @default - trust `consistentAt` */
  maxWriteDelayMs?: number;
  /**
   * The most backups of this plan a day may hold (in `timeZone`). A day holding
   * more is crowded (see crowded-days.ts): its backups are planned as one.
   * Needs `planId`. @default - no limit
   */
  maxBackupsPerDay?: number;
}

export interface ExecuteS3PruneOptions {
  s3: S3Client;
  /** Defaults to `<yyyymmddThhmmssZ>-<random>`. */
  runId?: string;
  /** Defaults to `<prefix>_audit/retention/`. */
  auditPrefix?: string;
  retry?: RetryOptions;
  /** Keys per DeleteObjects call, at most {@link DELETE_BATCH_SIZE}. @default 1000 */
  batchSize?: number;
  /** Timestamps in the audit log. @default () => new Date() */
  clock?: () => Date;
  /** Where the audit log goes. @default - the target bucket, with `s3` */
  audit?: AuditSink;
}

export type PruneS3Options = PlanS3PruneOptions &
  Omit<ExecuteS3PruneOptions, 's3'> & {
    dryRun: boolean;
  };

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

interface AwsLikeError {
  name?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const RETRYABLE_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeTooSkewed',
]);

function errorCode(error: unknown): string {
  const e = error as AwsLikeError;
  return e?.Code ?? e?.name ?? 'Error';
}

function isRetryable(error: unknown): boolean {
  const status = (error as AwsLikeError)?.$metadata?.httpStatusCode;
  return RETRYABLE_CODES.has(errorCode(error)) || status === 500 || status === 503;
}

function describe(error: unknown): string {
  const e = error as AwsLikeError;
  const code = errorCode(error);
  const message = e?.message && e.message !== code ? `: ${e.message}` : '';
  return `${code}${message}`;
}

function dbPrefix(target: S3RetentionTarget): string {
  return `${target.prefix}${target.databaseId}/`;
}

function where(target: S3RetentionTarget): string {
  return `s3://${target.bucket}/${dbPrefix(target)} (database ${target.databaseId}, location ${target.location})`;
}

function listingError(target: S3RetentionTarget, what: string, cause: unknown): RetentionListingError {
  const retryable = isRetryable(cause);
  const code = errorCode(cause);
  const nextStep = retryable
    ? 'S3 is throttling or unavailable; retry the retention run later.'
    : code === 'AccessDenied' || code === 'Forbidden'
      ? 'grant the retention role s3:ListBucket, s3:ListBucketVersions, s3:GetObject, s3:GetObjectVersion, s3:GetObjectRetention, s3:GetObjectLegalHold and s3:GetBucketVersioning on the bucket.'
      : code === 'NoSuchBucket'
        ? 'check the bucket name for this location in the lifeboat config.'
        : 'check the bucket and the error above; nothing was deleted.';
  return new RetentionListingError(`Retention could not ${what} at ${where(target)}: ${describe(cause)}.`, {
    cause,
    nextStep,
    retryable,
  });
}

function objectRef(o: StoredObjectVersion): string {
  return o.versionId === undefined ? o.key : `${o.key}?versionId=${o.versionId}`;
}

// ---------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------

async function isVersioned(s3: S3Client, target: S3RetentionTarget): Promise<boolean> {
  try {
    const out = await s3.send(new GetBucketVersioningCommand({ Bucket: target.bucket }));
    return out.Status === 'Enabled' || out.Status === 'Suspended';
  } catch (error) {
    throw listingError(target, 'read the bucket versioning status', error);
  }
}

async function listAllObjects(
  s3: S3Client,
  target: S3RetentionTarget,
  versioned: boolean,
  pageSize: number | undefined,
): Promise<StoredObjectVersion[]> {
  const Prefix = dbPrefix(target);
  const all: StoredObjectVersion[] = [];
  try {
    if (versioned) {
      let KeyMarker: string | undefined;
      let VersionIdMarker: string | undefined;
      for (;;) {
        const page = await s3.send(
          new ListObjectVersionsCommand({ Bucket: target.bucket, Prefix, KeyMarker, VersionIdMarker, MaxKeys: pageSize }),
        );
        for (const v of page.Versions ?? []) {
          if (!v.Key) continue;
          all.push({
            key: v.Key,
            ...(v.VersionId ? { versionId: v.VersionId } : {}),
            isDeleteMarker: false,
            isLatest: v.IsLatest ?? false,
            ...(v.LastModified ? { lastModified: v.LastModified } : {}),
            ...(v.Size !== undefined ? { size: v.Size } : {}),
          });
        }
        for (const m of page.DeleteMarkers ?? []) {
          if (!m.Key) continue;
          all.push({
            key: m.Key,
            ...(m.VersionId ? { versionId: m.VersionId } : {}),
            isDeleteMarker: true,
            isLatest: m.IsLatest ?? false,
            ...(m.LastModified ? { lastModified: m.LastModified } : {}),
          });
        }
        if (!page.IsTruncated) break;
        if (!page.NextKeyMarker && !page.NextVersionIdMarker) {
          throw new Error('ListObjectVersions reported a truncated page without a next marker');
        }
        KeyMarker = page.NextKeyMarker;
        VersionIdMarker = page.NextVersionIdMarker;
      }
    } else {
      let ContinuationToken: string | undefined;
      for (;;) {
        const page = await s3.send(
          new ListObjectsV2Command({ Bucket: target.bucket, Prefix, ContinuationToken, MaxKeys: pageSize }),
        );
        for (const o of page.Contents ?? []) {
          if (!o.Key) continue;
          all.push({
            key: o.Key,
            isDeleteMarker: false,
            isLatest: true,
            ...(o.LastModified ? { lastModified: o.LastModified } : {}),
            ...(o.Size !== undefined ? { size: o.Size } : {}),
          });
        }
        if (!page.IsTruncated) break;
        if (!page.NextContinuationToken) throw new Error('ListObjectsV2 reported a truncated page without a token');
        ContinuationToken = page.NextContinuationToken;
      }
    }
  } catch (error) {
    throw listingError(target, 'list the backups', error);
  }
  return all;
}

async function readManifest(
  s3: S3Client,
  target: S3RetentionTarget,
  id: string,
  current: StoredObjectVersion,
): Promise<{ manifest: Manifest } | { error: string }> {
  let text: string;
  try {
    const out = await s3.send(
      new GetObjectCommand({
        Bucket: target.bucket,
        Key: current.key,
        ...(current.versionId && current.versionId !== 'null' ? { VersionId: current.versionId } : {}),
      }),
    );
    text = (await out.Body?.transformToString('utf-8')) ?? '';
  } catch (error) {
    throw listingError(target, `read the manifest of backup ${id}`, error);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { error: `manifest.json is not JSON (${(error as Error).message})` };
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return { error: `manifest.json does not match the manifest schema (${issues.join('; ')})` };
  }
  if (parsed.data.backupId !== id) {
    return { error: `manifest.json names backup ${parsed.data.backupId}, not ${id}` };
  }
  if (parsed.data.database.id !== target.databaseId) {
    return { error: `manifest.json names database ${parsed.data.database.id}, not ${target.databaseId}` };
  }
  return { manifest: parsed.data };
}

/** Lists the backups of one database at one location (see the module comment). */
export async function listS3Backups(
  s3: S3Client,
  target: S3RetentionTarget,
  options: {
    concurrency?: number;
    pageSize?: number;
    /**
     * Trust a manifest's `consistentAt` only within this long before S3 wrote
     * the manifest (and not after it): a backup dated otherwise is left alone,
     * never planned or counted, and reported. Where production writes (the
     * vault), this keeps a forged manifest from dating itself into past GFS
     * periods. @default - trust `consistentAt`
     */
    maxWriteDelayMs?: number;
  } = {},
): Promise<S3BackupInventory> {
  const versioned = await isVersioned(s3, target);
  const objects = await listAllObjects(s3, target, versioned, options.pageSize);
  const warnings: string[] = [];
  // The catalog's rules (functions/lib/backup/catalog.ts), over object versions.
  const { dirs, strays } = groupBackupDirectories(objects, target.prefix, target.databaseId);
  for (const o of strays) if (!o.isDeleteMarker) warnings.push(`ignored ${o.key}: not inside a backup directory`);

  const ids = [...dirs.keys()].sort();
  const backups: StoredBackup[] = [];
  const incomplete: IncompleteBackup[] = [];
  const unreadable: UnreadableBackup[] = [];
  const withManifest: { id: string; current: StoredObjectVersion }[] = [];
  for (const id of ids) {
    const list = dirs.get(id)!;
    const keys = backupKeys(target.prefix, target.databaseId, id);
    // Committed: the manifest's current version is an object, not a delete marker.
    const current = list.find((o) => o.key === keys.manifest && o.isLatest && !o.isDeleteMarker);
    if (current) {
      withManifest.push({ id, current });
    } else {
      let lastWrite: number | undefined;
      for (const o of list) {
        const t = o.lastModified?.getTime();
        if (t !== undefined && (lastWrite === undefined || t > lastWrite)) lastWrite = t;
      }
      incomplete.push({ id, base: keys.base, objects: list, lastWrite: lastWrite === undefined ? undefined : new Date(lastWrite) });
    }
  }

  const manifests = await mapLimit(withManifest, options.concurrency ?? 8, ({ id, current }) =>
    readManifest(s3, target, id, current),
  );
  withManifest.forEach(({ id }, i) => {
    const keys = backupKeys(target.prefix, target.databaseId, id);
    const list = dirs.get(id)!;
    const result = manifests[i]!;
    if ('error' in result) {
      unreadable.push({ id, base: keys.base, error: result.error, objects: list });
      warnings.push(`backup ${id} is unreadable and was left alone: ${result.error}`);
      return;
    }
    const written = withManifest[i]!.current.lastModified;
    if (options.maxWriteDelayMs !== undefined && written) {
      const lag = written.getTime() - new Date(result.manifest.consistentAt).getTime();
      if (lag < -MANIFEST_CLOCK_SKEW_MS || lag > options.maxWriteDelayMs) {
        const error = `its consistentAt ${result.manifest.consistentAt} does not fit when S3 wrote the manifest (${written.toISOString()}): a copy is written within ${Math.round(options.maxWriteDelayMs / 3_600_000)} h after its dump, so this manifest is forged or misdated`;
        unreadable.push({ id, base: keys.base, error, objects: list, suspicious: 'misdated', planId: result.manifest.planId });
        warnings.push(`backup ${id} was left alone and not counted: ${error}`);
        return;
      }
    }
    if (!list.some((o) => o.key === keys.data && o.isLatest && !o.isDeleteMarker)) {
      warnings.push(`backup ${id} has a manifest but no ${keys.data}: it cannot be restored; run a fresh backup`);
    }
    backups.push({
      id,
      base: keys.base,
      manifestKey: keys.manifest,
      dataKey: keys.data,
      manifest: result.manifest,
      time: new Date(result.manifest.consistentAt),
      objects: list,
    });
  });
  return { target, versioned, backups, incomplete, unreadable, warnings };
}

// ---------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------

async function inspectLocks(
  s3: S3Client,
  target: S3RetentionTarget,
  id: string,
  objects: readonly StoredObjectVersion[],
  now: Date,
  concurrency: number,
): Promise<ObjectLockState> {
  const real = objects.filter((o) => !o.isDeleteMarker && o.versionId !== undefined);
  const states = await mapLimit(real, concurrency, async (o) => {
    try {
      const head = await s3.send(new HeadObjectCommand({ Bucket: target.bucket, Key: o.key, VersionId: o.versionId }));
      return {
        until: head.ObjectLockRetainUntilDate,
        mode: head.ObjectLockMode,
        hold: head.ObjectLockLegalHoldStatus === 'ON',
      };
    } catch (error) {
      const status = (error as AwsLikeError)?.$metadata?.httpStatusCode;
      if (status === 404) return { until: undefined, mode: undefined, hold: false }; // gone already
      throw listingError(target, `read the Object Lock state of ${objectRef(o)} (backup ${id})`, error);
    }
  });
  let lockedUntil: Date | undefined;
  let legalHold = false;
  for (const s of states) {
    if (s.hold) legalHold = true;
    if (s.until && s.until.getTime() > now.getTime() && (!lockedUntil || s.until > lockedUntil)) {
      lockedUntil = s.until;
    }
  }
  return { ...(lockedUntil ? { lockedUntil } : {}), legalHold };
}

// ---------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------

function planIncomplete(
  item: IncompleteBackup,
  policy: RetentionPolicy,
  now: Date,
  location: string,
  lock: ObjectLockState | undefined,
): PrunePlanEntry {
  const graceDays = Math.max(policy.minAgeDays, INCOMPLETE_GRACE_DAYS);
  const idTime = parseBackupIdTime(item.id);
  const newest = Math.max(item.lastWrite?.getTime() ?? -Infinity, idTime?.getTime() ?? -Infinity);
  const time = new Date(Number.isFinite(newest) ? newest : now.getTime());
  const reasons: string[] = [];
  if (!Number.isFinite(newest)) reasons.push('incomplete backup with no timestamps: kept');
  else if (newest > now.getTime()) reasons.push('incomplete backup dated in the future: kept');
  else if (now.getTime() - newest < graceDays * DAY_MS) {
    reasons.push(`incomplete backup written within ${graceDays} d: may still be in progress`);
  }
  if (lock?.lockedUntil) reasons.push(`under Object Lock until ${lock.lockedUntil.toISOString()}`);
  if (lock?.legalHold) reasons.push('under an Object Lock legal hold');
  const base = { id: item.id, location, time, kind: 'incomplete' as const, objects: item.objects, ...(lock ? { lock } : {}) };
  return reasons.length > 0
    ? { ...base, action: 'keep', reasons }
    : { ...base, action: 'delete', reasons: ['incomplete backup (no manifest)'] };
}

/** Lists, inspects locks of would-be deletions, and plans. Reads only. */
export async function planS3Prune(options: PlanS3PruneOptions): Promise<S3PrunePlan> {
  const { s3, target, policy, timeZone, now } = options;
  const concurrency = options.concurrency ?? 8;
  const listed = await listS3Backups(s3, target, { concurrency, pageSize: options.pageSize, maxWriteDelayMs: options.maxWriteDelayMs });
  // Leaving another plan's backups out can only keep more: the planner is monotone.
  const { planId } = options;
  const inventory =
    planId === undefined
      ? listed
      : { ...listed, backups: listed.backups.filter((b) => b.manifest.planId === planId), unreadable: listed.unreadable.filter((u) => !u.suspicious || u.planId === planId) };
  const collapsed =
    options.maxBackupsPerDay === undefined || planId === undefined
      ? undefined
      : collapseCrowdedDays(inventory.backups, { maxPerDay: options.maxBackupsPerDay, timeZone, now, planId, what: 'backups' });
  const planned = collapsed?.items ?? inventory.backups;
  const proven = new Set(options.provenBackupIds ?? []);
  const byId = new Map(inventory.backups.map((b) => [b.id, b]));
  const members = (id: string) => membersOfDay(collapsed, byId.get(id)!);

  const input = (locks: ReadonlyMap<string, ObjectLockState>): RetentionBackup[] =>
    planned.map((b) => {
      const lock = locks.get(b.id);
      return {
        id: b.id,
        time: b.time,
        location: target.location,
        verifiedByDrill: members(b.id).some((m) => proven.has(m.id)),
        ...(lock?.lockedUntil ? { lockedUntil: lock.lockedUntil } : {}),
        ...(lock?.legalHold ? { legalHold: true } : {}),
      };
    });

  const first = planRetention(input(new Map()), policy, now, timeZone);
  const firstIncomplete = inventory.incomplete.map((i) => planIncomplete(i, policy, now, target.location, undefined));

  // Only a delete can be changed by a lock; inspect just those (a crowded day: every copy of it, as one).
  const locks = new Map<string, ObjectLockState>();
  const incompleteLocks = new Map<string, ObjectLockState>();
  if (inventory.versioned) {
    const candidates = [
      ...first.filter((d) => d.action === 'delete').map((d) => ({ id: d.id, objects: members(d.id).flatMap((m) => m.objects), into: locks })),
      ...firstIncomplete
        .filter((d) => d.action === 'delete')
        .map((d) => ({ id: d.id, objects: d.objects, into: incompleteLocks })),
    ];
    await mapLimit(candidates, Math.max(1, Math.floor(concurrency / 2)), async (c) => {
      c.into.set(c.id, await inspectLocks(s3, target, c.id, c.objects, now, 2));
    });
  }

  const final = planRetention(input(locks), policy, now, timeZone);
  const decisions: PrunePlanEntry[] = decideForEachCopy(collapsed, final, byId, 'backups').map(({ copy, representative, ...d }) => {
    const lock = locks.get(representative);
    return { ...d, kind: 'backup' as const, objects: copy.objects, ...(lock ? { lock } : {}) };
  });
  const incomplete = inventory.incomplete
    .map((i) => planIncomplete(i, policy, now, target.location, incompleteLocks.get(i.id)))
    .sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));

  const wanted = new Set([
    ...first.filter((d) => d.action === 'delete').flatMap((d) => members(d.id).map((m) => m.id)),
    ...firstIncomplete.filter((d) => d.action === 'delete').map((d) => d.id),
  ]);
  const skippedLocked = [...decisions, ...incomplete]
    .filter((d) => wanted.has(d.id) && d.action === 'keep')
    .map((d) => d.id);

  return {
    target,
    policy,
    now,
    timeZone,
    versioned: inventory.versioned,
    ...(planId !== undefined ? { planId, otherPlans: listed.backups.length - inventory.backups.length } : {}),
    decisions,
    incomplete,
    unreadable: inventory.unreadable,
    skippedLocked,
    crowded: collapsed?.crowded ?? [],
    warnings: [...inventory.warnings, ...(collapsed?.crowded ?? []).map((c) => `crowded day: ${c.reason}`)],
  };
}

// ---------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------

const GONE_CODES = new Set(['NoSuchKey', 'NoSuchVersion']);

/**
 * Deletes one batch (≤ 1000 object versions), retrying throttled keys. Returns
 * the objects that could not be deleted, with the reason.
 */
async function deleteBatch(
  s3: S3Client,
  bucket: string,
  batch: readonly StoredObjectVersion[],
  retry: RetryOptions,
): Promise<Map<StoredObjectVersion, string>> {
  const attempts = retry.attempts ?? 5;
  const sleep = retry.sleep ?? defaultSleep;
  const failures = new Map<StoredObjectVersion, string>();
  let pending = [...batch];
  for (let attempt = 1; pending.length > 0; attempt++) {
    let errors: { Key?: string; VersionId?: string; Code?: string; Message?: string }[];
    try {
      const out = await s3.send(
        new DeleteObjectsCommand({
          Bucket: bucket,
          Delete: {
            Objects: pending.map((o) => ({ Key: o.key, ...(o.versionId !== undefined ? { VersionId: o.versionId } : {}) })),
            Quiet: true,
          },
        }),
      );
      errors = out.Errors ?? [];
    } catch (error) {
      if (isRetryable(error) && attempt < attempts) {
        await sleep(backoff(attempt, retry));
        continue;
      }
      for (const o of pending) failures.set(o, describe(error));
      break;
    }
    const retryNext: StoredObjectVersion[] = [];
    for (const o of pending) {
      // Some S3 implementations (moto) leave VersionId out of the error; then the
      // error applies to every version of that key in the batch.
      const err = errors.find((e) => e.Key === o.key && (e.VersionId === undefined || e.VersionId === o.versionId));
      if (!err || GONE_CODES.has(err.Code ?? '')) continue;
      if (RETRYABLE_CODES.has(err.Code ?? '') && attempt < attempts) retryNext.push(o);
      else failures.set(o, `${err.Code ?? 'Error'}${err.Message ? `: ${err.Message}` : ''}`);
    }
    pending = retryNext;
    if (pending.length > 0) await sleep(backoff(attempt, retry));
  }
  return failures;
}

/** Deletes objects in batches, in order; returns the failures. */
async function deleteAll(
  s3: S3Client,
  bucket: string,
  objects: readonly StoredObjectVersion[],
  retry: RetryOptions,
  batchSize: number,
): Promise<Map<StoredObjectVersion, string>> {
  const failures = new Map<StoredObjectVersion, string>();
  for (let i = 0; i < objects.length; i += batchSize) {
    for (const [o, e] of await deleteBatch(s3, bucket, objects.slice(i, i + batchSize), retry)) failures.set(o, e);
  }
  return failures;
}

export interface AuditLine {
  time: string;
  runId: string;
  location: string;
  bucket: string;
  databaseId: string;
  backupId: string;
  kind: 'backup' | 'incomplete';
  /** Consistent point (backups) or newest write (incomplete). */
  backupTime: string;
  keys: string[];
  /** Parallel to `keys` objects: one entry per deleted version (`null` in an unversioned bucket). */
  versionIds: (string | null)[];
  objects: { key: string; versionId: string | null; deleteMarker: boolean }[];
  reasons: string[];
  outcome: 'planned' | 'deleted' | 'failed';
  error?: string;
}

/** Executes a plan made by {@link planS3Prune}. Deletes only what the plan says, manifests first. */
export async function executeS3Prune(plan: S3PrunePlan, options: ExecuteS3PruneOptions): Promise<PruneSummary> {
  const { s3 } = options;
  const clock = options.clock ?? (() => new Date());
  const retry = options.retry ?? {};
  const batchSize = Math.max(1, Math.min(DELETE_BATCH_SIZE, Math.floor(options.batchSize ?? DELETE_BATCH_SIZE)));
  const started = clock();
  const runId = options.runId ?? newRunId(started);
  const { target } = plan;
  const toDelete = [...plan.decisions, ...plan.incomplete].filter((d) => d.action === 'delete');
  const kept = plan.decisions.filter((d) => d.action === 'keep').length;

  const summary: PruneSummary = {
    runId,
    location: target.location,
    databaseId: target.databaseId,
    dryRun: false,
    kept,
    deleted: 0,
    failed: [],
    skippedLocked: plan.skippedLocked.length,
    incomplete: { found: plan.incomplete.length, deleted: 0 },
    unreadable: plan.unreadable.length,
    deletedIds: [],
    plan,
  };
  if (toDelete.length === 0) return summary;

  const line = (d: PrunePlanEntry, outcome: AuditLine['outcome'], error?: string): AuditLine => ({
    time: clock().toISOString(),
    runId,
    location: target.location,
    bucket: target.bucket,
    databaseId: target.databaseId,
    backupId: d.id,
    kind: d.kind,
    backupTime: d.time.toISOString(),
    keys: d.objects.map((o) => o.key),
    versionIds: d.objects.map((o) => o.versionId ?? null),
    objects: d.objects.map((o) => ({ key: o.key, versionId: o.versionId ?? null, deleteMarker: o.isDeleteMarker })),
    reasons: d.reasons,
    outcome,
    ...(error !== undefined ? { error } : {}),
  });

  const auditKey = auditKeyFor(target, runId, started, options.auditPrefix);
  const audit: AuditSink = options.audit ?? { s3, bucket: target.bucket };
  summary.auditKey = auditKey;
  try {
    await writeAuditLines(audit, auditKey, toDelete.map((d) => line(d, 'planned')));
  } catch (cause) {
    throw new RetentionAuditError(
      `Retention at ${where(target)} could not write its audit log s3://${audit.bucket}/${auditKey}: ${describe(cause)}. Nothing was deleted.`,
      { ...summary, auditKey: undefined },
      { cause, nextStep: 'grant the retention role s3:PutObject on the audit prefix, then run retention again.' },
    );
  }

  // Phase 1: manifests (real versions only; a manifest's delete markers go in phase 2,
  // so no older manifest version can resurface while the data is still there).
  const isManifest = (d: PrunePlanEntry, o: StoredObjectVersion) =>
    !o.isDeleteMarker && o.key === backupKeys(target.prefix, target.databaseId, d.id).manifest;
  const owner = new Map<StoredObjectVersion, PrunePlanEntry>();
  for (const d of toDelete) for (const o of d.objects) owner.set(o, d);
  const errorsOf = new Map<PrunePlanEntry, string[]>();
  const record = (failures: Map<StoredObjectVersion, string>) => {
    for (const [o, e] of failures) {
      const d = owner.get(o)!;
      errorsOf.set(d, [...(errorsOf.get(d) ?? []), `${objectRef(o)}: ${e}`]);
    }
  };
  record(await deleteAll(s3, target.bucket, toDelete.flatMap((d) => d.objects.filter((o) => isManifest(d, o))), retry, batchSize));

  // Phase 2: everything else, only for entries whose manifests are all gone.
  const phase2 = toDelete.filter((d) => !errorsOf.has(d));
  record(await deleteAll(s3, target.bucket, phase2.flatMap((d) => d.objects.filter((o) => !isManifest(d, o))), retry, batchSize));

  const lines: AuditLine[] = [];
  for (const d of toDelete) {
    const errors = errorsOf.get(d);
    if (errors) {
      const manifestFailed = !phase2.includes(d);
      const error = `${errors.join('; ')}${manifestFailed ? ' (manifest not deleted, so the data was left in place)' : ' (manifest deleted; the rest is now an incomplete backup that the next run removes)'}`;
      summary.failed.push({ id: d.id, error });
      lines.push(line(d, 'failed', error));
    } else {
      if (d.kind === 'backup') {
        summary.deleted++;
        summary.deletedIds.push(d.id);
      } else {
        summary.incomplete.deleted++;
      }
      lines.push(line(d, 'deleted'));
    }
  }

  try {
    await writeAuditLines(audit, auditKey, lines);
  } catch (cause) {
    throw new RetentionAuditError(
      `Retention at ${where(target)} deleted ${summary.deleted} backups but could not write the outcomes to s3://${audit.bucket}/${auditKey} (the planned deletions are recorded there): ${describe(cause)}.`,
      summary,
      { cause, nextStep: 'grant the retention role s3:PutObject on the audit prefix; the summary in this error lists what happened.' },
    );
  }
  return summary;
}

/** Plans and, unless `dryRun`, executes retention for one database at one location. */
export async function pruneS3Backups(options: PruneS3Options): Promise<PruneSummary> {
  const plan = await planS3Prune(options);
  if (!options.dryRun) return executeS3Prune(plan, options);
  const willDelete = plan.decisions.filter((d) => d.action === 'delete');
  return {
    runId: options.runId ?? newRunId((options.clock ?? (() => new Date()))()),
    location: plan.target.location,
    databaseId: plan.target.databaseId,
    dryRun: true,
    kept: plan.decisions.length - willDelete.length,
    deleted: willDelete.length,
    failed: [],
    skippedLocked: plan.skippedLocked.length,
    incomplete: { found: plan.incomplete.length, deleted: plan.incomplete.filter((d) => d.action === 'delete').length },
    unreadable: plan.unreadable.length,
    deletedIds: willDelete.map((d) => d.id),
    plan,
  };
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/** Renders a plan as a plain-text table, e.g. for `lifeboat prune --dry-run`. */
export function renderPrunePlan(plan: S3PrunePlan): string {
  const { target, policy } = plan;
  const rows: string[][] = [];
  for (const d of plan.decisions) rows.push([d.action, d.id, wallClock(d.time, plan.timeZone), d.reasons.join(', ')]);
  for (const d of plan.incomplete) {
    rows.push([d.action, `${d.id} (incomplete)`, wallClock(d.time, plan.timeZone), d.reasons.join(', ')]);
  }
  for (const u of plan.unreadable) rows.push(['keep', `${u.id} (unreadable)`, '', u.error]);
  const header = ['ACTION', 'BACKUP', `TIME (${plan.timeZone})`, 'REASONS'];
  const deletes = plan.decisions.filter((d) => d.action === 'delete').length;
  const incompleteDeletes = plan.incomplete.filter((d) => d.action === 'delete').length;
  const lines = [
    `Retention plan for database ${target.databaseId} at ${target.location} (s3://${target.bucket}/${dbPrefix(target)})`,
    `now ${plan.now.toISOString()}, time zone ${plan.timeZone}; policy: keepLast ${policy.keepLast}, daily ${policy.daily}, weekly ${policy.weekly}, monthly ${policy.monthly}, yearly ${policy.yearly}, minAgeDays ${policy.minAgeDays}`,
    '',
    ...renderTable(header, rows),
    '',
    `${plan.decisions.length} backups: ${plan.decisions.length - deletes} keep, ${deletes} delete` +
      (plan.skippedLocked.length > 0 ? ` (${plan.skippedLocked.length} beyond policy but locked)` : '') +
      `; ${plan.incomplete.length} incomplete (${incompleteDeletes} delete); ${plan.unreadable.length} unreadable (kept)`,
    ...(plan.otherPlans ? [`${plan.otherPlans} backup(s) of other plans (or of none) left alone: plan ${plan.planId} prunes only its own`] : []),
    ...plan.warnings.map((w) => `warning: ${w}`),
  ];
  return lines.join('\n') + '\n';
}
