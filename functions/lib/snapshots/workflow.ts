import type { AwsCredentials } from '../aws/clients.ts';
import type { DatabaseConfig, SnapshotSettings } from '../config/schema.ts';
import {
  DefaultKeyNotShareableError,
  EncryptionKeyError,
  SnapshotFailedError,
  SnapshotKeyNotSharedError,
  SnapshotWaitTimeoutError,
  UnencryptedSnapshotRefusedError,
  VaultAccessError,
} from '../errors.ts';
import { assumeVaultRole, type StsApi } from '../vault/credentials.ts';
import { sameRegionCopyId, snapshotBackupId, snapshotIdentifier, snapshotTags, TAG, type SnapshotJobIdentity } from './ids.ts';
import { describeSnapshotKey, type KmsApi } from './keys.ts';
import { checkSnapshotQuota, type QuotaCheck } from './quota.ts';
import { awsErrorName, classifyRdsError, isAwsError } from './rds-errors.ts';
import {
  copySnapshot,
  createSnapshot,
  deleteSnapshot,
  describeKind,
  describeSnapshot,
  describeSourceDatabase,
  shareSnapshot,
  sourceDatabaseOf,
  type RdsApi,
  type SnapshotInfo,
  type SnapshotKind,
} from './rds.ts';

/**
 * The snapshot side of a backup, one step per Lambda invocation; the state
 * machine waits between them (a Wait as long as the last check asked for, then a Choice),
 * never a sleeping Lambda:
 *
 *   create (source region) → status → copy (snapshots.copy: cross-region, CMK)
 *   → status → share with the vault account → copy into the vault under the
 *   vault's key, as the vault's copier role → status.
 *
 * Every step returns a small JSON-safe `SnapshotRef` that the next one takes.
 */
export type SnapshotLocation = 'source' | 'copy' | 'vault';

export interface SnapshotRef {
  readonly location: SnapshotLocation;
  readonly kind: SnapshotKind;
  /** The owning account when known (always for the vault). */
  readonly account?: string;
  readonly region: string;
  readonly id: string;
  readonly arn: string;
  readonly status: string;
  readonly encrypted: boolean;
  readonly kmsKeyId?: string;
  /** When the snapshot was requested: the wait for it and all its copies counts from here. */
  readonly startedAt: string;
  /** Past this, a copy that is still not available fails with SnapshotWaitTimeoutError. */
  readonly deadline: string;
}

/**
 * What each snapshot step hands the state machine: the ref, whether it is
 * available, and how long the Wait before the next check should be.
 */
export interface SnapshotPoll {
  readonly ready: boolean;
  readonly ref: SnapshotRef;
  /** Seconds until the next status check (0 once ready). */
  readonly waitSeconds: number;
}

/** Polls start 30 s apart and stretch with the time waited (a quarter of it, at most 10 minutes), never past the deadline. */
export const FIRST_POLL_SECONDS = 30;
export const LONGEST_POLL_SECONDS = 600;

/** The Wait before the next status check: longer the longer it takes, and never far past the deadline. */
export function pollWaitSeconds(ref: Pick<SnapshotRef, 'startedAt' | 'deadline'>, now: Date): number {
  const waited = Math.max(0, now.getTime() - Date.parse(ref.startedAt)) / 1000;
  const stretch = Math.min(LONGEST_POLL_SECONDS, Math.max(FIRST_POLL_SECONDS, Math.round(waited / 4)));
  // One second past the deadline, so the last check can tell it was missed.
  const untilDeadline = Math.ceil((Date.parse(ref.deadline) - now.getTime()) / 1000) + 1;
  return Math.max(1, Math.min(stretch, untilDeadline));
}

const pending = (ref: SnapshotRef, now: Date): SnapshotPoll => ({ ready: false, ref, waitSeconds: pollWaitSeconds(ref, now) });

/** A fresh wait budget: each snapshot and each copy gets snapshots.maxWaitMinutes of its own. */
function waitBudget(now: Date, settings: SnapshotSettings): Pick<SnapshotRef, 'startedAt' | 'deadline'> {
  return { startedAt: now.toISOString(), deadline: new Date(now.getTime() + settings.maxWaitMinutes * 60_000).toISOString() };
}

export interface SnapshotJob extends Omit<SnapshotJobIdentity, 'databaseId'> {
  readonly database: Pick<DatabaseConfig, 'id' | 'rds'>;
}

export interface VaultSnapshotTarget {
  readonly account: string;
  readonly region: string;
  readonly copierRoleArn: string;
  /** Key id, key ARN or alias ARN of the vault's snapshot key (in the vault region). */
  readonly snapshotKmsKeyId: string;
}

export interface SnapshotContext {
  /** RDS client for a region; with credentials for the vault's copier role. */
  readonly rds: (region: string, credentials?: AwsCredentials) => RdsApi;
  readonly kms: (region: string) => KmsApi;
  readonly sts: StsApi;
  /** Region of the databases (the function's own). */
  readonly sourceRegion: string;
  readonly settings: SnapshotSettings;
  readonly vault?: VaultSnapshotTarget;
  readonly now?: () => Date;
}

const identity = (job: SnapshotJob): SnapshotJobIdentity => ({ ...job, databaseId: job.database.id });
const clock = (ctx: SnapshotContext) => (ctx.now ?? (() => new Date()))();

function refOf(info: SnapshotInfo, location: SnapshotLocation, region: string, timing: Pick<SnapshotRef, 'startedAt' | 'deadline'>, account?: string): SnapshotRef {
  return {
    location,
    kind: info.kind,
    ...(account ? { account } : {}),
    region,
    id: info.id,
    arn: info.arn,
    status: info.status,
    encrypted: info.encrypted,
    ...(info.kmsKeyId ? { kmsKeyId: info.kmsKeyId } : {}),
    startedAt: timing.startedAt,
    deadline: timing.deadline,
  };
}

function describeLocation(ref: Pick<SnapshotRef, 'location' | 'kind' | 'id' | 'region' | 'account'>): string {
  const what = ref.kind === 'instance' ? 'DB snapshot' : 'DB cluster snapshot';
  if (ref.location === 'source') return `${what} ${ref.id} (${ref.region})`;
  if (ref.location === 'copy') return `cross-region copy ${ref.id} (${ref.region})`;
  return `vault copy ${ref.id} (account ${ref.account ?? '?'}, ${ref.region})`;
}

/** The account in an RDS ARN (`arn:aws:rds:<region>:<account>:...`), if there is one. */
const accountOf = (arn: string): string | undefined => arn.split(':')[4] || undefined;

/**
 * The snapshot a first attempt of this step already made (same name, same
 * backup id tag), so that a retried copy step neither copies twice nor counts
 * its own copy as one more against the quota. A snapshot of that name that is
 * not this backup's is left to the copy call, which refuses it (adoptExisting).
 */
async function ownSnapshot(rds: RdsApi, kind: SnapshotKind, id: string, backupId: string, where: string): Promise<SnapshotInfo | undefined> {
  let existing: SnapshotInfo | undefined;
  try {
    existing = await describeSnapshot(rds, kind, id);
  } catch (error) {
    throw classifyRdsError(error, 'looking for a copy made by an earlier attempt', where);
  }
  return existing && existing.tags[TAG.backupId] === backupId ? existing : undefined;
}

/** A retried step finds the snapshot its first attempt made: same name, and the same backup id tag. */
async function adoptExisting(rds: RdsApi, kind: SnapshotKind, id: string, backupId: string, where: string, cause: unknown): Promise<SnapshotInfo> {
  const existing = await describeSnapshot(rds, kind, id);
  if (existing && existing.tags[TAG.backupId] === backupId) return existing;
  throw new SnapshotFailedError(`A snapshot named ${id} already exists in ${where} and is not from this backup (${backupId}).`, {
    cause,
    nextStep: 'rename or delete that snapshot; lifeboat never overwrites one it did not make.',
  });
}

export interface CreateResult {
  readonly backupId: string;
  readonly quota: QuotaCheck;
  readonly poll: SnapshotPoll;
}

/**
 * Checks the source (exists, encrypted unless allowed) and the manual snapshot
 * quota, then requests the snapshot, tagged with the backup id, plan and database.
 */
export async function createSourceSnapshot(job: SnapshotJob, ctx: SnapshotContext): Promise<CreateResult> {
  const now = clock(ctx);
  const id = identity(job);
  const source = sourceDatabaseOf(job.database);
  const rds = ctx.rds(ctx.sourceRegion);
  const info = await describeSourceDatabase(rds, source, ctx.sourceRegion, job.database.id);
  if (!info.encrypted && !ctx.settings.allowUnencrypted) {
    throw new UnencryptedSnapshotRefusedError(
      `The ${describeKind(source.kind)} "${source.identifier}" behind database "${job.database.id}" is not encrypted, so lifeboat refused to snapshot it: an unencrypted snapshot cannot be kept under the vault's key.`,
      {
        nextStep:
          'encrypt the database (snapshot it, copy the snapshot with a KMS key, restore from the copy), or set snapshots.allowUnencrypted: true to accept unencrypted snapshots.',
      },
    );
  }
  const quota = await checkSnapshotQuota(rds, source.kind, ctx.sourceRegion, ctx.settings, { account: accountOf(info.arn), location: 'source' });
  const backupId = snapshotBackupId(id, now);
  const snapshotId = snapshotIdentifier(job.database.id, backupId);
  const where = `${describeKind(source.kind)} "${source.identifier}" (database "${job.database.id}", ${ctx.sourceRegion})`;
  let created: SnapshotInfo;
  try {
    created = await createSnapshot(rds, source, snapshotId, snapshotTags(id, backupId, source.kind));
  } catch (error) {
    if (isAwsError(error, 'DBSnapshotAlreadyExists', 'DBClusterSnapshotAlreadyExistsFault')) {
      created = await adoptExisting(rds, source.kind, snapshotId, backupId, ctx.sourceRegion, error);
    } else if (isAwsError(error, 'DBInstanceNotFound', 'DBClusterNotFoundFault')) {
      // Deleted between the describe and the create: describing it again throws SourceDatabaseNotFoundError.
      await describeSourceDatabase(rds, source, ctx.sourceRegion, job.database.id);
      throw classifyRdsError(error, 'creating a snapshot', where);
    } else {
      throw classifyRdsError(error, 'creating a snapshot', where);
    }
  }
  return { backupId, quota, poll: pending(refOf(created, 'source', ctx.sourceRegion, waitBudget(now, ctx.settings)), now) };
}

const FAILED_STATES = new Set(['failed', 'error', 'deleted', 'deleting', 'cancelled', 'canceled', 'incompatible-restore', 'incompatible-parameters']);

async function rdsFor(ref: Pick<SnapshotRef, 'location' | 'region'>, job: SnapshotJob, ctx: SnapshotContext, backupId: string): Promise<RdsApi> {
  if (ref.location !== 'vault') return ctx.rds(ref.region);
  const vault = requireVault(ctx);
  const credentials = await assumeVaultRole(ctx.sts, { roleArn: vault.copierRoleArn, account: vault.account }, `${job.database.id}-${backupId}`);
  return ctx.rds(vault.region, credentials);
}

function requireVault(ctx: SnapshotContext): VaultSnapshotTarget {
  if (!ctx.vault) throw new VaultAccessError('No vault is configured for the snapshot function.', { nextStep: 'add the vault section to the config and redeploy.' });
  return ctx.vault;
}

/**
 * One status check. Returns the poll: ready once the snapshot is available,
 * otherwise how long to wait before the next check (the state machine's Wait
 * and Choice loop); throws SnapshotFailedError when it failed and
 * SnapshotWaitTimeoutError past its deadline.
 * A failed or timed-out snapshot in the production account is deleted (a copy
 * in progress is cancelled that way) so that nothing is left behind; the vault
 * copier cannot delete, so a failed vault copy stays for the vault's admins.
 */
export async function checkSnapshot(job: SnapshotJob, ref: SnapshotRef, ctx: SnapshotContext, backupId: string): Promise<SnapshotPoll> {
  const rds = await rdsFor(ref, job, ctx, backupId);
  const what = describeLocation(ref);
  let info: SnapshotInfo | undefined;
  try {
    info = await describeSnapshot(rds, ref.kind, ref.id);
  } catch (error) {
    throw classifyRdsError(error, 'checking the snapshot', what);
  }
  if (!info) {
    throw new SnapshotFailedError(`The ${what} of database "${job.database.id}" no longer exists: it was deleted or its copy was cancelled.`, {
      nextStep: 'check the RDS events of the account and region; the next scheduled run takes a fresh snapshot.',
    });
  }
  const current = { ...ref, status: info.status, encrypted: info.encrypted, ...(info.kmsKeyId ? { kmsKeyId: info.kmsKeyId } : {}), arn: info.arn || ref.arn };
  if (info.status === 'available') return { ready: true, ref: current, waitSeconds: 0 };

  const deleteCall = ref.kind === 'instance' ? 'DeleteDBSnapshot' : 'DeleteDBClusterSnapshot';
  const deleteByHand = `aws rds ${ref.kind === 'instance' ? 'delete-db-snapshot --db-snapshot-identifier' : 'delete-db-cluster-snapshot --db-cluster-snapshot-identifier'} ${ref.id} --region ${ref.region}`;
  /**
   * Deletes what this backup made and can no longer use: a failed snapshot, or
   * one past its deadline, so that it holds no place in the manual snapshot
   * quota; deleting a copy in progress cancels it, which also frees its slot
   * among the copies in progress. Says what happened, for the alert.
   */
  const cleanUp = async (reason: 'failed' | 'timeout'): Promise<string> => {
    if (ref.location === 'vault') {
      if (reason === 'failed') return ' The vault copier cannot delete it; a vault admin may remove it.';
      return ` lifeboat did not cancel it: the vault copier role may not delete snapshots in the vault, so the copy goes on and counts toward the vault's copies in progress and manual snapshot quota. A vault admin may cancel it: ${deleteByHand}, in account ${ref.account ?? '?'}.`;
    }
    if (info.tags[TAG.backupId] !== backupId) return '';
    try {
      await deleteSnapshot(rds, ref.kind, ref.id);
    } catch (error) {
      if (reason === 'timeout' && isAwsError(error, 'InvalidDBSnapshotState', 'InvalidDBClusterSnapshotStateFault', 'InvalidDBClusterSnapshotState')) {
        return ` RDS does not delete a snapshot while it is being created (${awsErrorName(error)}), so lifeboat could not cancel it: once it is available, delete it (${deleteByHand}) or leave it to snapshot retention.`;
      }
      return ` Deleting it failed (${awsErrorName(error) ?? 'error'}); delete it by hand: ${deleteByHand}.`;
    }
    if (reason === 'failed') return ' lifeboat deleted it, so the next run starts clean.';
    return ref.location === 'copy'
      ? ` lifeboat cancelled the copy (${deleteCall}), so it no longer takes a copy slot or counts toward the manual snapshot quota.`
      : ` lifeboat deleted it (${deleteCall}), so it does not count toward the manual snapshot quota.`;
  };
  if (FAILED_STATES.has(info.status)) {
    const cleaned = await cleanUp('failed');
    throw new SnapshotFailedError(`The ${what} of database "${job.database.id}" ended in status '${info.status}'.${cleaned}`, {
      nextStep: `read the RDS events for it (aws rds describe-events --source-type ${ref.kind === 'instance' ? 'db-snapshot' : 'db-cluster-snapshot'} --source-identifier ${ref.id}); the next scheduled run takes a fresh snapshot.`,
    });
  }
  const now = clock(ctx);
  const progress = info.percentProgress !== undefined ? ` (${info.percentProgress}%)` : '';
  if (now.getTime() >= new Date(ref.deadline).getTime()) {
    const waited = now.getTime() - new Date(ref.startedAt).getTime();
    const elapsed = waited < 120_000 ? `${Math.round(waited / 1000)} seconds` : `${Math.round(waited / 60_000)} minutes`;
    const cancelled = await cleanUp('timeout');
    throw new SnapshotWaitTimeoutError(
      `The ${what} of database "${job.database.id}" is still '${info.status}'${progress} after ${elapsed}; the limit is ${ctx.settings.maxWaitMinutes} minutes (snapshots.maxWaitMinutes).${cancelled}`,
      { nextStep: 'check the RDS events for a stuck copy; a first full copy of a large database may need a larger snapshots.maxWaitMinutes. The next run starts a fresh snapshot.' },
    );
  }
  return pending(current, now);
}

/** The copy step's answer: the copy and the copy region's quota check, checked before the copy was requested. */
export type CopyResult = { readonly started: true; readonly quota: QuotaCheck; readonly poll: SnapshotPoll } | { readonly started: false; readonly reason: string };

/**
 * The production account's copy under `snapshots.copy.kmsKeyArn`, in
 * `snapshots.copy.region`, tags copied. The copy region's manual snapshot quota
 * is checked first (SnapshotQuotaExceededError when it is full, and nothing is copied).
 */
export async function copyToCopyRegion(job: SnapshotJob, source: SnapshotRef, ctx: SnapshotContext, backupId: string): Promise<CopyResult> {
  const copy = ctx.settings.copy;
  if (!copy) return { started: false, reason: 'snapshots.copy is not configured' };
  const crossRegion = copy.region !== source.region;
  const targetId = crossRegion ? source.id : sameRegionCopyId(source.id);
  const rds = ctx.rds(copy.region);
  const where = `${copy.region} (copy of ${source.arn})`;
  const earlier = await ownSnapshot(rds, source.kind, targetId, backupId, where);
  const quota = await checkSnapshotQuota(rds, source.kind, copy.region, ctx.settings, { account: accountOf(source.arn), location: 'copy', alreadyCounted: earlier !== undefined });
  let info: SnapshotInfo;
  try {
    info =
      earlier ??
      (await copySnapshot(rds, {
        kind: source.kind,
        source: crossRegion ? source.arn : source.id,
        targetId,
        // An unencrypted cluster snapshot cannot be encrypted by a copy; an instance snapshot can.
        kmsKeyId: source.encrypted || source.kind === 'instance' ? copy.kmsKeyArn : undefined,
        copyTags: true,
        sourceRegion: crossRegion ? source.region : undefined,
      }));
  } catch (error) {
    if (isAwsError(error, 'DBSnapshotAlreadyExists', 'DBClusterSnapshotAlreadyExistsFault')) {
      info = await adoptExisting(rds, source.kind, targetId, backupId, copy.region, error);
    } else if (isAwsError(error, 'KMSKeyNotAccessibleFault', 'KMSKeyNotAccessible')) {
      throw new EncryptionKeyError(`RDS could not use the copy key ${copy.kmsKeyArn} for the copy of ${source.id} into ${copy.region}.`, {
        cause: error,
        nextStep: 'check that the key exists and is enabled in that region, and that the snapshot function may kms:CreateGrant and kms:DescribeKey on it (and on the source key).',
      });
    } else {
      throw classifyRdsError(error, 'copying the snapshot', where);
    }
  }
  const now = clock(ctx);
  return { started: true, quota, poll: pending(refOf(info, 'copy', copy.region, waitBudget(now, ctx.settings)), now) };
}

export type ShareResult = { readonly shared: true; readonly ref: SnapshotRef } | { readonly shared: false; readonly reason: string };

/**
 * Shares the production snapshot that sits in the vault's region (the CMK copy
 * when there is one) with the vault account. A snapshot under the AWS managed
 * aws/rds key cannot be shared: that is refused with DefaultKeyNotShareableError
 * saying what to configure, since lifeboat re-encrypts only through snapshots.copy.
 */
export async function shareWithVault(
  job: SnapshotJob,
  source: SnapshotRef,
  copy: { readonly started: true; readonly poll: SnapshotPoll } | { readonly started: false; readonly reason: string },
  ctx: SnapshotContext,
): Promise<ShareResult> {
  const vault = ctx.vault;
  if (!vault) return { shared: false, reason: 'no vault is configured' };
  const copied = copy.started ? copy.poll.ref : undefined;
  const candidate = copied && copied.region === vault.region ? copied : source.region === vault.region ? source : undefined;
  if (!candidate) {
    throw new SnapshotFailedError(
      `No snapshot of database "${job.database.id}" is in the vault's region ${vault.region} (source ${source.region}${copied ? `, copy ${copied.region}` : ''}), and a shared encrypted snapshot cannot change region.`,
      { nextStep: `set snapshots.copy.region to "${vault.region}" with a customer managed kmsKeyArn in that region.` },
    );
  }
  const rds = ctx.rds(candidate.region);
  const what = describeLocation(candidate);
  let info: SnapshotInfo | undefined;
  try {
    info = await describeSnapshot(rds, candidate.kind, candidate.id);
  } catch (error) {
    throw classifyRdsError(error, 'describing the snapshot to share', what);
  }
  if (!info) throw new SnapshotFailedError(`The ${what} of database "${job.database.id}" no longer exists, so it cannot be shared with the vault.`);
  if (!info.encrypted && !ctx.settings.allowUnencrypted) {
    throw new UnencryptedSnapshotRefusedError(`The ${what} of database "${job.database.id}" is not encrypted; lifeboat does not share unencrypted snapshots with the vault.`, {
      nextStep: 'set snapshots.copy with a customer managed key (the copy is then encrypted), or snapshots.allowUnencrypted: true.',
    });
  }
  if (info.encrypted) {
    const keyId = info.kmsKeyId ?? candidate.kmsKeyId;
    if (!keyId) throw new EncryptionKeyError(`RDS reports the ${what} as encrypted but names no KMS key.`);
    const key = await describeSnapshotKey(ctx.kms(candidate.region), keyId, `the ${what}`);
    if (key.manager === 'AWS') {
      throw new DefaultKeyNotShareableError(
        `The ${what} of database "${job.database.id}" is encrypted with the AWS managed key aws/rds (${key.arn}), which RDS cannot share with the vault account ${vault.account}; nothing was shared.`,
        {
          nextStep: `set snapshots.copy to { "region": "${vault.region}", "kmsKeyArn": "<a customer managed key in ${vault.region}>" } whose key policy allows arn:aws:iam::${vault.account}:root kms:CreateGrant, kms:Decrypt, kms:DescribeKey, kms:GenerateDataKey* and kms:ReEncrypt*; lifeboat then shares that re-encrypted copy. Or re-encrypt the database itself with a customer managed key.`,
        },
      );
    }
  }
  try {
    await shareSnapshot(rds, candidate.kind, candidate.id, vault.account);
  } catch (error) {
    throw classifyRdsError(error, `sharing the snapshot with the vault account ${vault.account}`, what);
  }
  return { shared: true, ref: { ...candidate, status: info.status, ...(info.kmsKeyId ? { kmsKeyId: info.kmsKeyId } : {}) } };
}

/** The vault-copy step's answer: the copy and the vault's quota check, checked before the copy was requested. */
export interface VaultCopyResult {
  readonly quota: QuotaCheck;
  readonly poll: SnapshotPoll;
}

/**
 * The vault's copier role copies the shared snapshot in under the vault's own
 * key, with self-describing tags. The vault account's manual snapshot quota in
 * its region is checked first, as the copier role (SnapshotQuotaExceededError
 * when it is full, and nothing is copied).
 */
export async function copyIntoVault(job: SnapshotJob, shared: SnapshotRef, source: SnapshotRef, ctx: SnapshotContext, backupId: string): Promise<VaultCopyResult> {
  const vault = requireVault(ctx);
  const credentials = await assumeVaultRole(ctx.sts, { roleArn: vault.copierRoleArn, account: vault.account }, `${job.database.id}-${backupId}`);
  const rds = ctx.rds(vault.region, credentials);
  const targetId = snapshotIdentifier(job.database.id, backupId);
  const sourceAccount = shared.arn.split(':')[4] ?? '';
  const tags: Record<string, string> = {
    ...snapshotTags(identity(job), backupId, shared.kind),
    [TAG.sourceAccount]: sourceAccount,
    [TAG.sourceRegion]: source.region,
    [TAG.sourceSnapshot]: source.arn,
    [TAG.sourceDatabase]: sourceDatabaseOf(job.database).identifier,
  };
  const where = `the vault (account ${vault.account}, ${vault.region})`;
  const earlier = await ownSnapshot(rds, shared.kind, targetId, backupId, where);
  const target = { account: vault.account, location: 'vault' as const, alreadyCounted: earlier !== undefined };
  // A vault stack from before this check (the copier may not read the quota): copied anyway, with a warning (unreadableQuota).
  let quota: QuotaCheck;
  try {
    quota = await checkSnapshotQuota(rds, shared.kind, vault.region, ctx.settings, target);
  } catch (error) {
    throw classifyRdsError(error, 'checking the manual snapshot quota', where);
  }
  let info: SnapshotInfo;
  try {
    info =
      earlier ??
      (await copySnapshot(rds, {
        kind: shared.kind,
        source: shared.arn,
        targetId,
        kmsKeyId: shared.encrypted || shared.kind === 'instance' ? vault.snapshotKmsKeyId : undefined,
        tags,
      }));
  } catch (error) {
    if (isAwsError(error, 'DBSnapshotAlreadyExists', 'DBClusterSnapshotAlreadyExistsFault')) {
      info = await adoptExisting(rds, shared.kind, targetId, backupId, where, error);
    } else if (isAwsError(error, 'KMSKeyNotAccessibleFault', 'KMSKeyNotAccessible')) {
      const message = (error as Error).message ?? '';
      const vaultKeyProblem = /target|destination/i.test(message) || message.includes(vault.snapshotKmsKeyId);
      if (vaultKeyProblem) {
        throw new EncryptionKeyError(`The vault's snapshot key ${vault.snapshotKmsKeyId} is not usable by the copier role in ${vault.region}.`, {
          cause: error,
          nextStep: 'deploy the vault stack (it creates the key and grants the copier role) and check vault.region.',
        });
      }
      throw new SnapshotKeyNotSharedError(
        `The vault account ${vault.account} cannot use the KMS key ${shared.kmsKeyId ?? '(unknown)'} that encrypts the shared snapshot ${shared.arn}, so it could not copy it in (${(error as Error).name}).`,
        {
          cause: error,
          nextStep: `add to that key's policy a statement allowing arn:aws:iam::${vault.account}:root kms:CreateGrant, kms:Decrypt, kms:DescribeKey, kms:GenerateDataKey* and kms:ReEncrypt* (README, "Vault"), or point snapshots.copy.kmsKeyArn at a key that has one.`,
        },
      );
    } else if (isAwsError(error, 'DBSnapshotNotFound', 'DBClusterSnapshotNotFoundFault')) {
      throw new SnapshotFailedError(`The vault account ${vault.account} cannot see the snapshot ${shared.arn}: it is not shared with it, or it no longer exists.`, {
        cause: error,
        nextStep: 'check the snapshot\'s "restore" attribute (aws rds describe-db-snapshot-attributes) and rerun the plan.',
      });
    } else if (isAwsError(error, 'AccessDenied', 'AccessDeniedException')) {
      throw new VaultAccessError(`The vault copier role was denied copying ${shared.arn} into ${where}.`, {
        cause: error,
        nextStep: 'redeploy the vault stack; its copier role grants rds:CopyDBSnapshot and rds:AddTagsToResource.',
      });
    } else {
      throw classifyRdsError(error, 'copying the snapshot into the vault', where);
    }
  }
  const now = clock(ctx);
  return { quota, poll: pending(refOf(info, 'vault', vault.region, waitBudget(now, ctx.settings), vault.account), now) };
}
