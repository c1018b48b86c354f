import {
  DeleteDBClusterSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  ListTagsForResourceCommand,
  type DBClusterSnapshot,
  type DBSnapshot,
  type Tag,
} from '@aws-sdk/client-rds';
import type { RetentionPolicy } from '../config/schema.ts';
import { TAG } from '../snapshots/ids.ts';
import { awsErrorName, isAwsError, isThrottling } from '../snapshots/rds-errors.ts';
import type { RdsApi, SnapshotKind } from '../snapshots/rds.ts';
import {
  auditKeyFor,
  mapLimit,
  newRunId,
  renderTable,
  wallClock,
  withRetry,
  writeAuditLines,
  type AuditSink,
  type PruneSummaryBase,
  type RetryOptions,
} from './common.ts';
import { RetentionAuditError, RetentionListingError } from './errors.ts';
import { planRetention, type RetentionDecision } from './planner.ts';
import { collapseCrowdedDays, decideForEachCopy, membersOfDay, type CrowdedDay } from './crowded-days.ts';

/**
 * Retention for lifeboat's manual RDS instance snapshots and Aurora cluster
 * snapshots at one location (an account and region): list, plan with the pure
 * planner, delete, with a dry run, an audit log and per-snapshot failures.
 *
 * ## Which snapshots
 * DescribeDBSnapshots and DescribeDBClusterSnapshots with `SnapshotType:
 * manual`, page by page. Only snapshots carrying all three tags that the
 * snapshot workflow writes (`lifeboat:backup-id`, `lifeboat:plan`,
 * `lifeboat:database`, see lib/snapshots/ids.ts) with this plan and database
 * are lifeboat's; anything else (automated, shared, public or AWS Backup
 * snapshots, or other manual snapshots) is never listed as a candidate. A
 * lifeboat snapshot that is not `available` (creating, copying, failed, ...)
 * is not a usable backup: it is reported, kept, and takes no part in planning,
 * so it can neither be deleted nor take the "newest" slot away from a usable
 * one (the planner is monotone: leaving backups out only keeps more).
 *
 * When the copy region is the source region, the production account holds the
 * originals and their re-encrypted copies side by side (`<id>-cmk`, see
 * copyToCopyRegion); `select` tells the two locations apart.
 *
 * ## Time
 * RDS's own record: `OriginalSnapshotCreateTime` (instance snapshots; it stays
 * the original's on a copy), else `SnapshotCreateTime`. Tags are not trusted
 * for time: the vault copier may tag, and an older-looking tag must never make
 * a vault copy deletable sooner.
 *
 * ## Drills
 * A snapshot is proven when a passed drill names its identifier or its backup
 * id (`provenBackupIds` holds both kinds of id).
 *
 * ## Execution
 * Deletes (DeleteDBSnapshot / DeleteDBClusterSnapshot) run `concurrency` at a
 * time; throttling is retried with exponential backoff and full jitter on top
 * of the client's adaptive retry. A snapshot already gone counts as deleted;
 * any other error is recorded for that snapshot while the rest proceed.
 *
 * ## Audit
 * Like the S3 executor: `<auditPrefix>…/<runId>.<location>.<databaseId>.jsonl`
 * in the audit sink, written with every planned deletion before the first
 * delete (if that write fails nothing is deleted), then overwritten with the
 * outcomes.
 */

export type SnapshotSelection = 'all' | 'originals' | 'same-region-copies';

export interface SnapshotRetentionTarget {
  /** Location label used in plans and the audit log: `source`, `copy-region`, `vault`. */
  location: string;
  region: string;
  /** The account the client acts in, for messages (the vault's). */
  account?: string;
  planId: string;
  databaseId: string;
  /** @default 'all' */
  select?: SnapshotSelection;
}

export interface ListedSnapshot {
  kind: SnapshotKind;
  id: string;
  arn: string;
  /** Lowercase, as RDS reports it. */
  status: string;
  /** `lifeboat:backup-id`. */
  backupId: string;
  createdAt?: Date;
}

export interface UntouchableSnapshot {
  snapshot: ListedSnapshot;
  reason: string;
  /** Copied in long after RDS says its original was taken: forged into a past period, or misdated. */
  suspicious?: 'misdated';
}

export interface SnapshotInventory {
  target: SnapshotRetentionTarget;
  /** Available lifeboat snapshots of this plan and database: the planner's input. */
  snapshots: ListedSnapshot[];
  /** Lifeboat snapshots of this plan and database that are never touched (not available, no time). */
  untouchable: UntouchableSnapshot[];
}

export interface SnapshotPlanEntry extends RetentionDecision {
  snapshot: ListedSnapshot;
}

export interface SnapshotPrunePlan {
  target: SnapshotRetentionTarget;
  policy: RetentionPolicy;
  now: Date;
  timeZone: string;
  /** Newest first. */
  decisions: SnapshotPlanEntry[];
  untouchable: UntouchableSnapshot[];
  /** Days holding more of the plan's snapshots than its schedule makes (with `maxBackupsPerDay`). */
  crowded: readonly CrowdedDay[];
}

export interface SnapshotPruneSummary extends PruneSummaryBase {
  /** Lifeboat snapshots never touched because they are not available. */
  untouchable: number;
  plan: SnapshotPrunePlan;
}

export interface PlanSnapshotPruneOptions {
  rds: RdsApi;
  target: SnapshotRetentionTarget;
  policy: RetentionPolicy;
  timeZone: string;
  now: Date;
  /** Snapshot identifiers and backup ids that a passed drill restored. */
  provenBackupIds?: Iterable<string>;
  /** MaxRecords per Describe page (20..100). @default 100 */
  pageSize?: number;
  /**
   * The most snapshots of this plan a day may hold (in `timeZone`, by RDS's
   * creation time). A day holding more is crowded (see crowded-days.ts): its
   * snapshots are planned as one. @default - no limit
   */
  maxBackupsPerDay?: number;
  /** See listRetentionSnapshots. @default - no limit */
  maxCopyDelayMs?: number;
}

export interface ExecuteSnapshotPruneOptions {
  rds: RdsApi;
  /** Where the audit log goes (normally the source bucket). */
  audit: AuditSink;
  /** Storage prefix; the audit prefix defaults to `<prefix>_audit/retention/`. */
  prefix: string;
  auditPrefix?: string;
  runId?: string;
  /** Deletes in flight at once. @default 4 */
  concurrency?: number;
  retry?: RetryOptions;
  clock?: () => Date;
  /** Recorded in the audit lines. */
  executionId?: string;
}

export type PruneSnapshotsOptions = PlanSnapshotPruneOptions & Omit<ExecuteSnapshotPruneOptions, 'rds'> & { dryRun: boolean };

export interface SnapshotAuditLine {
  time: string;
  runId: string;
  executionId?: string;
  location: string;
  region: string;
  account?: string;
  planId: string;
  databaseId: string;
  backupId: string;
  kind: 'rds-snapshot' | 'aurora-cluster-snapshot';
  snapshotId: string;
  snapshotArn: string;
  backupTime: string;
  reasons: string[];
  outcome: 'planned' | 'deleted' | 'failed';
  note?: string;
  error?: string;
}

// ---------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------

/** Same-region copies made by copyToCopyRegion are named `<source id>-cmk`. */
const SAME_REGION_COPY_SUFFIX = '-cmk';

function where(target: SnapshotRetentionTarget): string {
  const account = target.account ? `account ${target.account}, ` : '';
  return `the snapshots of database ${target.databaseId} (plan ${target.planId}) at ${target.location} (${account}${target.region})`;
}

function describeError(error: unknown): string {
  const name = awsErrorName(error) ?? 'Error';
  const message = (error as Error | undefined)?.message;
  return message && message !== name ? `${name}: ${message}` : name;
}

function listingError(target: SnapshotRetentionTarget, what: string, cause: unknown): RetentionListingError {
  const retryable = isThrottling(cause);
  const nextStep = retryable
    ? 'RDS is throttling; retry the retention run later. Nothing was deleted.'
    : isAwsError(cause, 'AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation')
      ? 'grant the retention role rds:DescribeDBSnapshots, rds:DescribeDBClusterSnapshots and rds:ListTagsForResource in this region. Nothing was deleted.'
      : 'check the error above; nothing was deleted.';
  return new RetentionListingError(`Retention could not ${what} for ${where(target)}: ${describeError(cause)}.`, { cause, nextStep, retryable });
}

const tagMap = (tags: Tag[]): Record<string, string> => Object.fromEntries(tags.filter((t) => t.Key).map((t) => [t.Key!, t.Value ?? '']));

interface RawSnapshot {
  kind: SnapshotKind;
  id: string;
  arn: string;
  status: string;
  type: string;
  createdAt?: Date;
  /** When this copy was made, for a copy whose original's time RDS also reports (instance snapshots). */
  copiedAt?: Date;
  tags?: Tag[];
}

function fromInstance(s: DBSnapshot): RawSnapshot {
  return {
    kind: 'instance',
    id: s.DBSnapshotIdentifier ?? '',
    arn: s.DBSnapshotArn ?? '',
    status: (s.Status ?? 'unknown').toLowerCase(),
    type: s.SnapshotType ?? '',
    createdAt: s.OriginalSnapshotCreateTime ?? s.SnapshotCreateTime,
    ...(s.OriginalSnapshotCreateTime && s.SnapshotCreateTime ? { copiedAt: s.SnapshotCreateTime } : {}),
    tags: s.TagList,
  };
}

function fromCluster(s: DBClusterSnapshot): RawSnapshot {
  return {
    kind: 'cluster',
    id: s.DBClusterSnapshotIdentifier ?? '',
    arn: s.DBClusterSnapshotArn ?? '',
    status: (s.Status ?? 'unknown').toLowerCase(),
    type: s.SnapshotType ?? '',
    createdAt: s.SnapshotCreateTime,
    tags: s.TagList,
  };
}

async function describeAll(rds: RdsApi, kind: SnapshotKind, pageSize: number): Promise<RawSnapshot[]> {
  const out: RawSnapshot[] = [];
  let Marker: string | undefined;
  do {
    if (kind === 'instance') {
      const page = await rds.send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual', MaxRecords: pageSize, Marker }));
      for (const s of page.DBSnapshots ?? []) out.push(fromInstance(s));
      Marker = page.Marker;
    } else {
      const page = await rds.send(new DescribeDBClusterSnapshotsCommand({ SnapshotType: 'manual', MaxRecords: pageSize, Marker }));
      for (const s of page.DBClusterSnapshots ?? []) out.push(fromCluster(s));
      Marker = page.Marker;
    }
  } while (Marker);
  return out;
}

function selected(target: SnapshotRetentionTarget, id: string): boolean {
  const copy = id.endsWith(SAME_REGION_COPY_SUFFIX);
  switch (target.select ?? 'all') {
    case 'all':
      return true;
    case 'originals':
      return !copy;
    case 'same-region-copies':
      return copy;
  }
}

/** Lifeboat's manual snapshots of one plan and database at one location (see the module comment). */
export async function listRetentionSnapshots(
  rds: RdsApi,
  target: SnapshotRetentionTarget,
  options: {
    pageSize?: number;
    /** Longest a copy may be made after its original (the vault's copies come in the same run): longer is misdated, kept and not counted. */
    maxCopyDelayMs?: number;
  } = {},
): Promise<SnapshotInventory> {
  const pageSize = Math.max(20, Math.min(100, options.pageSize ?? 100));
  let raw: RawSnapshot[];
  try {
    raw = [...(await describeAll(rds, 'instance', pageSize)), ...(await describeAll(rds, 'cluster', pageSize))];
  } catch (error) {
    throw listingError(target, 'list the manual snapshots', error);
  }
  const snapshots: ListedSnapshot[] = [];
  const untouchable: UntouchableSnapshot[] = [];
  for (const s of raw) {
    // Never anything but this account's manual snapshots, whatever the filter returned.
    if (s.type !== 'manual' || !s.id || !s.arn) continue;
    let tags = s.tags;
    if (tags === undefined) {
      try {
        tags = (await rds.send(new ListTagsForResourceCommand({ ResourceName: s.arn }))).TagList ?? [];
      } catch (error) {
        throw listingError(target, `read the tags of ${s.arn}`, error);
      }
    }
    const t = tagMap(tags);
    const backupId = t[TAG.backupId];
    if (!backupId || t[TAG.plan] !== target.planId || t[TAG.database] !== target.databaseId) continue;
    if (!selected(target, s.id)) continue;
    const snapshot: ListedSnapshot = { kind: s.kind, id: s.id, arn: s.arn, status: s.status, backupId, ...(s.createdAt ? { createdAt: s.createdAt } : {}) };
    if (s.status !== 'available') untouchable.push({ snapshot, reason: `status "${s.status}": not a usable backup, never touched` });
    else if (!s.createdAt) untouchable.push({ snapshot, reason: 'RDS reports no creation time: kept' });
    else if (options.maxCopyDelayMs !== undefined && s.copiedAt && s.copiedAt.getTime() - s.createdAt.getTime() > options.maxCopyDelayMs) {
      untouchable.push({
        snapshot,
        suspicious: 'misdated',
        reason: `copied in at ${s.copiedAt.toISOString()}, ${Math.round((s.copiedAt.getTime() - s.createdAt.getTime()) / 3_600_000)} h after its original was taken (${s.createdAt.toISOString()}): a copy comes in within ${Math.round(options.maxCopyDelayMs / 3_600_000)} h, so this one is forged into a past period or misdated; kept and not counted`,
      });
    } else snapshots.push(snapshot);
  }
  const byId = (a: UntouchableSnapshot, b: UntouchableSnapshot) => (a.snapshot.id < b.snapshot.id ? -1 : a.snapshot.id > b.snapshot.id ? 1 : 0);
  return { target, snapshots, untouchable: untouchable.sort(byId) };
}

// ---------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------

/** Lists and plans. Reads only. */
export async function planSnapshotPrune(options: PlanSnapshotPruneOptions): Promise<SnapshotPrunePlan> {
  const { rds, target, policy, timeZone, now } = options;
  const inventory = await listRetentionSnapshots(rds, target, { pageSize: options.pageSize, maxCopyDelayMs: options.maxCopyDelayMs });
  const proven = new Set(options.provenBackupIds ?? []);
  const dated = inventory.snapshots.map((s) => ({ id: s.id, time: s.createdAt!, snapshot: s }));
  const collapsed =
    options.maxBackupsPerDay === undefined ? undefined : collapseCrowdedDays(dated, { maxPerDay: options.maxBackupsPerDay, timeZone, now, planId: target.planId, what: 'snapshots' });
  const byId = new Map(dated.map((d) => [d.id, d]));
  const members = (id: string) => membersOfDay(collapsed, byId.get(id)!);
  const decisions = planRetention(
    (collapsed?.items ?? dated).map((d) => ({
      id: d.id,
      time: d.time,
      location: target.location,
      verifiedByDrill: members(d.id).some((m) => proven.has(m.id) || proven.has(m.snapshot.backupId)),
    })),
    policy,
    now,
    timeZone,
  );
  return {
    target,
    policy,
    now,
    timeZone,
    decisions: decideForEachCopy(collapsed, decisions, byId, 'snapshots').map(({ copy, representative: _representative, ...d }) => ({ ...d, snapshot: copy.snapshot })),
    crowded: collapsed?.crowded ?? [],
    untouchable: inventory.untouchable,
  };
}

// ---------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------

type DeleteOutcome = { ok: true; note?: string } | { ok: false; error: string };

async function deleteOne(rds: RdsApi, s: ListedSnapshot, retry: RetryOptions): Promise<DeleteOutcome> {
  try {
    await withRetry(
      () =>
        s.kind === 'instance'
          ? rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: s.id }))
          : rds.send(new DeleteDBClusterSnapshotCommand({ DBClusterSnapshotIdentifier: s.id })),
      isThrottling,
      retry,
    );
    return { ok: true };
  } catch (error) {
    if (isAwsError(error, 'DBSnapshotNotFound', 'DBClusterSnapshotNotFound')) return { ok: true, note: 'already gone' };
    return { ok: false, error: describeError(error) };
  }
}

function emptySummary(plan: SnapshotPrunePlan, runId: string, dryRun: boolean): SnapshotPruneSummary {
  return {
    runId,
    location: plan.target.location,
    databaseId: plan.target.databaseId,
    dryRun,
    kept: plan.decisions.filter((d) => d.action === 'keep').length + plan.untouchable.length,
    deleted: 0,
    failed: [],
    untouchable: plan.untouchable.length,
    deletedIds: [],
    plan,
  };
}

/** Executes a plan made by {@link planSnapshotPrune}: deletes only what it says. */
export async function executeSnapshotPrune(plan: SnapshotPrunePlan, options: ExecuteSnapshotPruneOptions): Promise<SnapshotPruneSummary> {
  const clock = options.clock ?? (() => new Date());
  const started = clock();
  const runId = options.runId ?? newRunId(started);
  const { target } = plan;
  const summary = emptySummary(plan, runId, false);
  const toDelete = plan.decisions.filter((d) => d.action === 'delete');
  if (toDelete.length === 0) return summary;

  const line = (d: SnapshotPlanEntry, outcome: SnapshotAuditLine['outcome'], extra: { note?: string; error?: string } = {}): SnapshotAuditLine => ({
    time: clock().toISOString(),
    runId,
    ...(options.executionId ? { executionId: options.executionId } : {}),
    location: target.location,
    region: target.region,
    ...(target.account ? { account: target.account } : {}),
    planId: target.planId,
    databaseId: target.databaseId,
    backupId: d.snapshot.backupId,
    kind: d.snapshot.kind === 'instance' ? 'rds-snapshot' : 'aurora-cluster-snapshot',
    snapshotId: d.snapshot.id,
    snapshotArn: d.snapshot.arn,
    backupTime: d.time.toISOString(),
    reasons: d.reasons,
    outcome,
    ...extra,
  });

  const auditKey = auditKeyFor({ prefix: options.prefix, location: target.location, databaseId: target.databaseId }, `${runId}-snapshots`, started, options.auditPrefix);
  summary.auditKey = auditKey;
  try {
    await writeAuditLines(options.audit, auditKey, toDelete.map((d) => line(d, 'planned')));
  } catch (cause) {
    throw new RetentionAuditError(
      `Retention for ${where(target)} could not write its audit log s3://${options.audit.bucket}/${auditKey}: ${describeError(cause)}. Nothing was deleted.`,
      { ...summary, auditKey: undefined, plan: undefined },
      { cause, nextStep: 'grant the retention role s3:PutObject on the audit prefix, then run retention again.' },
    );
  }

  const outcomes = await mapLimit(toDelete, options.concurrency ?? 4, (d) => deleteOne(options.rds, d.snapshot, options.retry ?? {}));
  const lines = toDelete.map((d, i) => {
    const outcome = outcomes[i]!;
    if (outcome.ok) {
      summary.deleted++;
      summary.deletedIds.push(d.id);
      return line(d, 'deleted', outcome.note ? { note: outcome.note } : {});
    }
    summary.failed.push({ id: d.id, error: outcome.error });
    return line(d, 'failed', { error: outcome.error });
  });
  summary.kept += summary.failed.length;

  try {
    await writeAuditLines(options.audit, auditKey, lines);
  } catch (cause) {
    throw new RetentionAuditError(
      `Retention for ${where(target)} deleted ${summary.deleted} snapshots but could not write the outcomes to s3://${options.audit.bucket}/${auditKey} (the planned deletions are recorded there): ${describeError(cause)}.`,
      { ...summary, plan: undefined },
      { cause, nextStep: 'grant the retention role s3:PutObject on the audit prefix; the summary in this error lists what happened.' },
    );
  }
  return summary;
}

/** Plans and, unless `dryRun`, executes snapshot retention for one database at one location. */
export async function pruneSnapshots(options: PruneSnapshotsOptions): Promise<SnapshotPruneSummary> {
  const plan = await planSnapshotPrune(options);
  if (!options.dryRun) return executeSnapshotPrune(plan, options);
  const summary = emptySummary(plan, options.runId ?? newRunId((options.clock ?? (() => new Date()))()), true);
  const willDelete = plan.decisions.filter((d) => d.action === 'delete');
  return { ...summary, deleted: willDelete.length, deletedIds: willDelete.map((d) => d.id) };
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/** Renders a snapshot plan as a plain-text table, like {@link renderPrunePlan} for dumps. */
export function renderSnapshotPrunePlan(plan: SnapshotPrunePlan): string {
  const { target, policy } = plan;
  const account = target.account ? `account ${target.account}, ` : '';
  if (plan.decisions.length === 0 && plan.untouchable.length === 0) {
    return `No lifeboat snapshots of database ${target.databaseId} (plan ${target.planId}) at ${target.location} (${account}${target.region}).\n`;
  }
  const kind = (s: ListedSnapshot) => (s.kind === 'instance' ? 'instance' : 'cluster');
  const rows: string[][] = plan.decisions.map((d) => [d.action, d.id, kind(d.snapshot), wallClock(d.time, plan.timeZone), d.reasons.join(', ')]);
  for (const u of plan.untouchable) {
    rows.push(['keep', u.snapshot.id, kind(u.snapshot), u.snapshot.createdAt ? wallClock(u.snapshot.createdAt, plan.timeZone) : '', u.reason]);
  }
  const deletes = plan.decisions.filter((d) => d.action === 'delete').length;
  return [
    `Snapshot retention plan for database ${target.databaseId} (plan ${target.planId}) at ${target.location} (${account}${target.region})`,
    `now ${plan.now.toISOString()}, time zone ${plan.timeZone}; policy: keepLast ${policy.keepLast}, daily ${policy.daily}, weekly ${policy.weekly}, monthly ${policy.monthly}, yearly ${policy.yearly}, minAgeDays ${policy.minAgeDays}`,
    '',
    ...renderTable(['ACTION', 'SNAPSHOT', 'KIND', `CREATED (${plan.timeZone})`, 'REASONS'], rows),
    '',
    `${plan.decisions.length} snapshots: ${plan.decisions.length - deletes} keep, ${deletes} delete; ${plan.untouchable.length} not available (never touched)`,
  ].join('\n') + '\n';
}
