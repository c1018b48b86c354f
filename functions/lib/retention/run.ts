import type { S3Client } from '@aws-sdk/client-s3';
import type { AwsCredentials } from '../aws/clients.ts';
import type { RetentionPolicy } from '../config/schema.ts';
import { VaultAccessError } from '../errors.ts';
import type { RdsApi } from '../snapshots/rds.ts';
import { assumeVaultRole, type StsApi } from '../vault/credentials.ts';
import { newRunId, type AuditSink, type RetryOptions } from './common.ts';
import { policyFor, type PlanRetention, type RetentionLocation, type RetentionSettings } from './environment.ts';
import type { CrowdedDay } from './crowded-days.ts';
import { RetentionInputError } from './errors.ts';
import { readDrillProofs } from './proofs.ts';
import { pruneS3Backups, type PruneFailure, type PruneSummary, type S3RetentionTarget } from './s3-executor.ts';
import { pruneSnapshots, type SnapshotPruneSummary, type SnapshotRetentionTarget } from './snapshot-executor.ts';

/**
 * One retention run for one database of one plan at one location: its dumps
 * in S3 and its RDS/Aurora snapshots, each planned with the location's policy
 * and (unless a dry run) deleted, with one audit log per part in the source
 * bucket. Used by the retention function and by `lifeboat prune`.
 *
 * | location      | dumps                      | snapshots                                      |
 * |---------------|----------------------------|------------------------------------------------|
 * | `source`      | source bucket              | production account, source region (originals)  |
 * | `copy-region` | none (dumps are not copied)| production account, `snapshots.copy.region`     |
 * | `vault`       | vault bucket               | vault account and region                        |
 *
 * The vault is reached only through the vault's retention role, assumed with
 * STS for this run; never with the caller's own (production) credentials.
 * Both parts run even if one fails; a part that could not run (listing, audit
 * log) makes the run throw its error afterwards, so Step Functions can retry or
 * alert by class name. Failures of single deletions never throw: they are in
 * the result.
 */
export interface RetentionContext {
  settings: RetentionSettings;
  /** Production S3 client (source bucket: drill reports, audit logs, dumps). */
  s3: S3Client;
  /** S3 client in a region with explicit credentials (the vault). */
  s3With: (region: string, credentials: AwsCredentials) => S3Client;
  /** RDS client for a region; with credentials for the vault. */
  rds: (region: string, credentials?: AwsCredentials) => RdsApi;
  sts: StsApi;
  now?: () => Date;
  /** Deletes in flight per part. @default 4 */
  concurrency?: number;
  retry?: RetryOptions;
}

export interface RetentionRequest {
  planId: string;
  databaseId: string;
  location: RetentionLocation;
  dryRun: boolean;
  executionId?: string;
  runId?: string;
}

export type Skipped = { skipped: string };

export interface RetentionRunResult {
  runId: string;
  planId: string;
  databaseId: string;
  location: RetentionLocation;
  dryRun: boolean;
  timeZone: string;
  policy?: RetentionPolicy;
  dumps: PruneSummary | Skipped;
  snapshots: SnapshotPruneSummary | Skipped;
  /** Bucket holding the audit logs (and drill reports). */
  auditBucket: string;
  /** The error of a part that could not run, if any (also thrown by {@link runRetention}). */
  errors: Error[];
}

export const isSkipped = (part: PruneSummary | SnapshotPruneSummary | Skipped): part is Skipped => 'skipped' in part;

function planOf(settings: RetentionSettings, planId: string, databaseId: string): PlanRetention {
  const plan = settings.plans[planId];
  if (!plan) {
    throw new RetentionInputError(`Unknown plan "${planId}" for retention (known: ${Object.keys(settings.plans).join(', ') || 'none'}).`, {
      nextStep: 'start retention with a plan id from the deployed config, or redeploy after adding the plan.',
    });
  }
  if (!plan.databases.includes(databaseId)) {
    throw new RetentionInputError(`Database "${databaseId}" is not in plan "${planId}" (its databases: ${plan.databases.join(', ')}).`, {
      nextStep: "start retention with one of the plan's databases; nothing was deleted.",
    });
  }
  return plan;
}

async function vaultCredentials(ctx: RetentionContext, request: RetentionRequest): Promise<AwsCredentials> {
  const vault = ctx.settings.vault!;
  try {
    return await assumeVaultRole(ctx.sts, { roleArn: vault.retentionRoleArn, account: vault.account }, `${request.databaseId}-retention`);
  } catch (error) {
    if (!(error instanceof VaultAccessError)) throw error;
    throw new VaultAccessError(`Retention could not act in the vault (account ${vault.account}, ${vault.region}) as ${vault.retentionRoleArn}: ${(error as Error).message.split(' Next step:')[0]}`, {
      cause: error,
      nextStep: 'deploy the vault stack (it creates the vault retention role) and check that its trust policy names this retention function\'s role. Nothing was deleted.',
    });
  }
}

/** Runs retention for one database at one location (see the module comment). Throws the first part error after both parts ran. */
export async function runRetention(request: RetentionRequest, ctx: RetentionContext): Promise<RetentionRunResult> {
  const result = await runRetentionParts(request, ctx);
  if (result.errors.length > 0) throw result.errors[0]!;
  return result;
}

/** Like {@link runRetention}, but returns part errors in `errors` instead of throwing them. */
export async function runRetentionParts(request: RetentionRequest, ctx: RetentionContext): Promise<RetentionRunResult> {
  const { settings } = ctx;
  const plan = planOf(settings, request.planId, request.databaseId);
  const now = (ctx.now ?? (() => new Date()))();
  const runId = request.runId ?? newRunId(now);
  const policy = policyFor(plan, request.location);
  const result: RetentionRunResult = {
    runId,
    planId: request.planId,
    databaseId: request.databaseId,
    location: request.location,
    dryRun: request.dryRun,
    timeZone: plan.timeZone,
    ...(policy ? { policy } : {}),
    dumps: { skipped: 'no retention policy for this location: everything is kept' },
    snapshots: { skipped: 'no retention policy for this location: everything is kept' },
    auditBucket: settings.storage.bucket,
    errors: [],
  };
  if (!policy) return result;
  if (request.location === 'vault' && !settings.vault) {
    // The source deployment has no vault target on purpose: the vault prunes itself from the vault account.
    result.dumps = result.snapshots = { skipped: 'no vault is configured here (a deployed vault prunes itself: its own retention state machine in the vault account)' };
    return result;
  }
  const doDumps = request.location !== 'copy-region';
  const doSnapshots = request.location !== 'copy-region' || settings.copyRegion !== undefined;
  if (!doDumps) result.dumps = { skipped: 'dumps are not kept in a copy region' };
  if (!doSnapshots) result.snapshots = { skipped: 'snapshots.copy is not configured' };
  if (!doDumps && !doSnapshots) return result;

  const proofs = await readDrillProofs(ctx.s3, settings.storage.bucket, settings.storage.prefix, request.databaseId);
  const audit: AuditSink = { s3: ctx.s3, bucket: settings.storage.bucket };
  const credentials = request.location === 'vault' ? await vaultCredentials(ctx, request) : undefined;
  const common = { policy, timeZone: plan.timeZone, now, runId, dryRun: request.dryRun, retry: ctx.retry };

  if (doDumps) {
    const vault = settings.vault;
    const target: S3RetentionTarget =
      request.location === 'vault'
        ? { location: 'vault', bucket: vault!.bucket, prefix: settings.storage.prefix, databaseId: request.databaseId }
        : { location: 'source', bucket: settings.storage.bucket, prefix: settings.storage.prefix, databaseId: request.databaseId };
    const s3 = credentials ? ctx.s3With(vault!.region, credentials) : ctx.s3;
    try {
      // In the vault, production wrote the manifests: their dates count only where S3's own write time agrees.
      // And a day with more copies than the plan's schedule makes is contested (see planS3Prune).
      const dating = request.location === 'vault' ? { maxWriteDelayMs: VAULT_MAX_COPY_DELAY_MS, ...(plan.maxBackupsPerDay !== undefined ? { maxBackupsPerDay: plan.maxBackupsPerDay } : {}) } : {};
      result.dumps = await pruneS3Backups({ ...common, ...dating, s3, target, planId: request.planId, provenBackupIds: proofs.dump, audit });
    } catch (error) {
      result.dumps = { skipped: `failed: ${(error as Error).name}` };
      result.errors.push(error as Error);
    }
  }

  if (doSnapshots) {
    const sameRegionCopies = settings.copyRegion !== undefined && settings.copyRegion === settings.sourceRegion;
    const base = { planId: request.planId, databaseId: request.databaseId };
    const target: SnapshotRetentionTarget =
      request.location === 'vault'
        ? { ...base, location: 'vault', region: settings.vault!.region, account: settings.vault!.account }
        : request.location === 'copy-region'
          ? { ...base, location: 'copy-region', region: settings.copyRegion!, ...(sameRegionCopies ? { select: 'same-region-copies' as const } : {}) }
          : { ...base, location: 'source', region: settings.sourceRegion, ...(sameRegionCopies ? { select: 'originals' as const } : {}) };
    try {
      result.snapshots = await pruneSnapshots({
        ...common,
        rds: ctx.rds(target.region, credentials),
        target,
        // In the vault, the copier decides which snapshots come in: a day with more than the schedule makes is contested.
        ...(request.location === 'vault' && plan.maxBackupsPerDay !== undefined ? { maxBackupsPerDay: plan.maxBackupsPerDay } : {}),
        ...(request.location === 'vault' ? { maxCopyDelayMs: VAULT_MAX_COPY_DELAY_MS } : {}),
        provenBackupIds: proofs.snapshot,
        audit,
        prefix: settings.storage.prefix,
        concurrency: ctx.concurrency,
        executionId: request.executionId,
      });
    } catch (error) {
      result.snapshots = { skipped: `failed: ${(error as Error).name}` };
      result.errors.push(error as Error);
    }
  }
  return result;
}

// ---------------------------------------------------------------------------
// Compact output (Step Functions payloads are capped at 256 KB)
// ---------------------------------------------------------------------------

export const MAX_IDS_IN_OUTPUT = 50;
/**
 * Longest a vault copy's manifest may be written after its dump's consistent
 * point: a Fargate dump of hours, its copy, retries and a day of catching up.
 * A vault manifest dated earlier than this before S3 wrote it is treated as
 * forged or misdated (left alone, not counted, alerted).
 */
export const VAULT_MAX_COPY_DELAY_MS = 48 * 3_600_000;
export const MAX_FAILURES_IN_OUTPUT = 20;
const MAX_ERROR_CHARS = 400;

export interface RetentionFailure extends PruneFailure {
  backup: 'dump' | 'snapshot';
}

export interface RetentionTaskOutput {
  runId: string;
  planId: string;
  databaseId: string;
  location: RetentionLocation;
  dryRun: boolean;
  /** `partial` when at least one deletion failed, or a backup's manifest was forged or misdated; everything else proceeded. */
  status: 'succeeded' | 'partial';
  kept: number;
  deleted: number;
  /** Up to {@link MAX_IDS_IN_OUTPUT}; the audit logs list all. */
  deletedIds: string[];
  deletedIdsOmitted: number;
  failedCount: number;
  /** Up to {@link MAX_FAILURES_IN_OUTPUT}, errors shortened. */
  failed: RetentionFailure[];
  skippedLocked: number;
  dumps: { kept: number; deleted: number; failed: number; skippedLocked: number; incomplete: { found: number; deleted: number }; unreadable: number; suspicious: number; auditKey?: string } | Skipped;
  snapshots: { kept: number; deleted: number; failed: number; untouchable: number; auditKey?: string } | Skipped;
  auditBucket: string;
  auditKeys: string[];
  /** Step Functions-style `{ Error, Cause }` for the alert, present when `status` is `partial`. */
  alert?: { Error: string; Cause: string };
}

const shorten = (s: string) => (s.length <= MAX_ERROR_CHARS ? s : `${s.slice(0, MAX_ERROR_CHARS - 1)}…`);

/** The small, JSON-safe summary a state machine (or `--json`) gets: counts, ids, failures, audit keys; never the plans. */
export function summariseRetention(result: RetentionRunResult): RetentionTaskOutput {
  const { dumps, snapshots } = result;
  const failures: RetentionFailure[] = [
    ...(isSkipped(dumps) ? [] : dumps.failed.map((f) => ({ backup: 'dump' as const, ...f }))),
    ...(isSkipped(snapshots) ? [] : snapshots.failed.map((f) => ({ backup: 'snapshot' as const, ...f }))),
  ];
  const deletedIds = [...(isSkipped(dumps) ? [] : dumps.deletedIds), ...(isSkipped(snapshots) ? [] : snapshots.deletedIds)];
  const auditKeys = [isSkipped(dumps) ? undefined : dumps.auditKey, isSkipped(snapshots) ? undefined : snapshots.auditKey].filter((k): k is string => k !== undefined);
  // Forged-looking copies: misdated manifests, and recent days crowded beyond what the schedule makes.
  const crowded = (days: readonly CrowdedDay[]) => days.filter((c) => c.recent).flatMap((c) => c.ids.map((id) => ({ id, error: c.reason, suspicious: 'crowded-day' as const })));
  const suspicious = [
    ...(isSkipped(dumps) ? [] : dumps.plan.unreadable.filter((u) => u.suspicious).map((u) => ({ id: u.id, error: u.error, suspicious: u.suspicious! }))),
    ...(isSkipped(dumps) ? [] : crowded(dumps.plan.crowded)),
    ...(isSkipped(snapshots) ? [] : crowded(snapshots.plan.crowded)),
    ...(isSkipped(snapshots) ? [] : snapshots.plan.untouchable.filter((u) => u.suspicious).map((u) => ({ id: u.snapshot.id, error: u.reason, suspicious: u.suspicious! }))),
  ];
  const output: RetentionTaskOutput = {
    runId: result.runId,
    planId: result.planId,
    databaseId: result.databaseId,
    location: result.location,
    dryRun: result.dryRun,
    status: failures.length > 0 || suspicious.length > 0 ? 'partial' : 'succeeded',
    kept: (isSkipped(dumps) ? 0 : dumps.kept) + (isSkipped(snapshots) ? 0 : snapshots.kept),
    deleted: deletedIds.length,
    deletedIds: deletedIds.slice(0, MAX_IDS_IN_OUTPUT),
    deletedIdsOmitted: Math.max(0, deletedIds.length - MAX_IDS_IN_OUTPUT),
    failedCount: failures.length,
    failed: failures.slice(0, MAX_FAILURES_IN_OUTPUT).map((f) => ({ ...f, error: shorten(f.error) })),
    skippedLocked: isSkipped(dumps) ? 0 : dumps.skippedLocked,
    dumps: isSkipped(dumps)
      ? dumps
      : {
          kept: dumps.kept,
          deleted: dumps.deleted,
          failed: dumps.failed.length,
          skippedLocked: dumps.skippedLocked,
          incomplete: dumps.incomplete,
          unreadable: dumps.unreadable,
          suspicious: suspicious.length,
          ...(dumps.auditKey ? { auditKey: dumps.auditKey } : {}),
        },
    snapshots: isSkipped(snapshots)
      ? snapshots
      : { kept: snapshots.kept, deleted: snapshots.deleted, failed: snapshots.failed.length, untouchable: snapshots.untouchable, ...(snapshots.auditKey ? { auditKey: snapshots.auditKey } : {}) },
    auditBucket: result.auditBucket,
    auditKeys,
  };
  if (suspicious.length > 0) {
    // Worse news than a failed delete: someone with write access to this location planted or altered backups.
    output.alert = {
      Error: 'RetentionSuspiciousBackups',
      Cause:
        `${suspicious.length} backup(s) of database ${result.databaseId} at ${result.location} look forged: ` +
        (['misdated', 'crowded-day'] as const)
          .map((kind) => suspicious.filter((u) => u.suspicious === kind))
          .filter((group) => group.length > 0)
          .map((group) => `${group.length} ${group[0]!.suspicious === 'misdated' ? 'whose dates contradict when they were copied in' : 'on days holding more copies than the plan\'s schedule makes'} (first: ${group[0]!.id}: ${shorten(group[0]!.error)})`)
          .join('; ') +
        '.' +
        ` Retention did not let them push real copies out of the policy (misdated ones are left alone and not counted; a crowded day's copies are kept or dropped together and count once); ${deletedIds.length} backups were deleted, ${failures.length} deletions failed.` +
        ' Next step: treat it as an intrusion with production credentials: compare these manifests with the source bucket\'s, find who wrote them (S3 access logs of the vault bucket, CloudTrail), and rotate the credentials that could assume the copier role.',
    };
    return output;
  }
  if (failures.length > 0) {
    const first = failures[0]!;
    output.alert = {
      Error: 'RetentionPartialFailure',
      Cause:
        `Retention of database ${result.databaseId} (plan ${result.planId}) at ${result.location} deleted ${deletedIds.length} backups, but ${failures.length} could not be deleted` +
        ` (first: ${first.backup} ${first.id}: ${shorten(first.error)}). Everything else proceeded. The audit log ${auditKeys.map((k) => `s3://${result.auditBucket}/${k}`).join(' and ')} lists each outcome.` +
        ' Next step: check the failures (an Object Lock legal hold or retention, a snapshot in use, or a denied permission); the next run retries what the policy still wants deleted.',
    };
  }
  return output;
}
