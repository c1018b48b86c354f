import { DeleteDBSnapshotCommand, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import {
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetBucketEncryptionCommand,
  GetBucketTaggingCommand,
  GetObjectRetentionCommand,
  ListBucketsCommand,
  ListObjectVersionsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DescribeKeyCommand, ListKeysCommand, ListResourceTagsCommand, ScheduleKeyDeletionCommand, type KMSClient } from '@aws-sdk/client-kms';
import { DeleteSecretCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { deleteDrillSecret, listDrillSecrets } from '../../functions/lib/drill/credentials.ts';
import { DRILL_TAG } from '../../functions/lib/drill/provisioner.ts';
import { RdsProvisioner } from '../../functions/lib/drill/rds-provisioner.ts';
import { tagRecord } from '../../functions/lib/drill/provisioner.ts';
import { TAG } from '../../functions/lib/snapshots/ids.ts';
import { awsErrorName } from './aws.ts';
import { sleep, type CleanupOutcome } from './cleanup.ts';
import { manualSnapshots } from './checks.ts';

/**
 * The deletions behind the cleanup registry's entries. Each is idempotent: a
 * resource that is already gone counts as deleted, and one that cannot be
 * deleted yet (Object Lock, still being created) is reported as left behind
 * with what to do, not as an error.
 */

/** The shortest window AWS KMS allows before a key is deleted. */
export const KEY_DELETION_DAYS = 7;

const gone = (detail: string): CleanupOutcome => ({ status: 'done', detail });

export interface EmptyBucketResult {
  readonly deleted: number;
  /** Versions Object Lock keeps, with the latest retain-until date among them. */
  readonly locked: number;
  readonly lockedUntil?: Date;
  readonly bucketDeleted: boolean;
  readonly missing?: boolean;
}

/**
 * Deletes every version and delete marker, then the bucket. Versions under
 * Object Lock stay (nobody can delete them early); the bucket then stays too.
 */
export async function emptyAndDeleteBucket(s3: S3Client, bucket: string): Promise<EmptyBucketResult> {
  let deleted = 0;
  let locked = 0;
  let lockedUntil: Date | undefined;
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  const refused: { Key: string; VersionId?: string }[] = [];
  try {
    do {
      const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
      const batch = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].filter((v) => v.Key).map((v) => ({ Key: v.Key!, VersionId: v.VersionId ?? undefined }));
      if (batch.length) {
        const out = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }));
        const errors = out.Errors ?? [];
        deleted += batch.length - errors.length;
        for (const e of errors) if (e.Key) refused.push({ Key: e.Key, VersionId: e.VersionId });
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
    } while (keyMarker || versionMarker);
  } catch (error) {
    if (awsErrorName(error) === 'NoSuchBucket') return { deleted, locked: 0, bucketDeleted: true, missing: true };
    throw error;
  }
  for (const r of refused) {
    locked++;
    try {
      const retention = await s3.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: r.Key, VersionId: r.VersionId }));
      const until = retention.Retention?.RetainUntilDate;
      if (until && (!lockedUntil || until > lockedUntil)) lockedUntil = until;
    } catch {
      // no retention readable: still refused, date unknown
    }
  }
  if (locked > 0) return { deleted, locked, lockedUntil, bucketDeleted: false };
  try {
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (error) {
    if (awsErrorName(error) !== 'NoSuchBucket') throw error;
  }
  return { deleted, locked: 0, bucketDeleted: true };
}

export function bucketOutcome(bucket: string, result: EmptyBucketResult): CleanupOutcome {
  if (result.missing) return gone(`s3://${bucket} does not exist (already deleted)`);
  if (result.bucketDeleted) return gone(`s3://${bucket} deleted with ${result.deleted} object version(s)`);
  const until = result.lockedUntil ? ` until ${result.lockedUntil.toISOString()}` : '';
  return {
    status: 'kept',
    detail: `s3://${bucket}: ${result.locked} object version(s) under Object Lock (compliance)${until}; nobody can delete them earlier. Run npm run smoke:aws -- --cleanup <work dir> after that date to delete them and the bucket`,
  };
}

/**
 * Buckets a stack kept (RETAIN): named after the stack (CloudFormation-generated
 * names start with the lowercased stack name) and tagged with the deployment.
 */
export async function findRetainedBuckets(s3: S3Client, region: string, stackName: string, deployment: string): Promise<string[]> {
  const prefix = stackName.toLowerCase();
  const candidates: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListBucketsCommand({ Prefix: prefix, BucketRegion: region, ContinuationToken: token }));
    for (const b of page.Buckets ?? []) if (b.Name?.startsWith(prefix)) candidates.push(b.Name);
    token = page.ContinuationToken;
  } while (token);
  const found: string[] = [];
  for (const name of candidates) {
    try {
      const tags = await s3.send(new GetBucketTaggingCommand({ Bucket: name }));
      if ((tags.TagSet ?? []).some((t) => t.Key === 'lifeboat:deployment' && t.Value === deployment)) found.push(name);
    } catch {
      // untagged or gone: not ours
    }
  }
  return found.sort();
}

/** Of a stack's retained buckets, the backup bucket: the one under SSE-KMS (its access-log bucket is SSE-S3). */
export async function backupBucketOf(s3: S3Client, buckets: readonly string[]): Promise<string | undefined> {
  for (const bucket of buckets) {
    const out = await s3.send(new GetBucketEncryptionCommand({ Bucket: bucket }));
    if (out.ServerSideEncryptionConfiguration?.Rules?.some((r) => r.ApplyServerSideEncryptionByDefault?.SSEAlgorithm === 'aws:kms')) return bucket;
  }
  return undefined;
}

/** Customer managed keys in the client's region tagged `lifeboat:deployment=<deployment>`, not yet pending deletion. */
export async function findDeploymentKeys(kms: KMSClient, deployment: string): Promise<string[]> {
  const found: string[] = [];
  let marker: string | undefined;
  do {
    const page = await kms.send(new ListKeysCommand({ Marker: marker }));
    for (const k of page.Keys ?? []) {
      if (!k.KeyId) continue;
      try {
        const meta = (await kms.send(new DescribeKeyCommand({ KeyId: k.KeyId }))).KeyMetadata;
        if (meta?.KeyManager !== 'CUSTOMER' || meta.KeyState === 'PendingDeletion') continue;
        const tags = (await kms.send(new ListResourceTagsCommand({ KeyId: k.KeyId }))).Tags ?? [];
        if (tags.some((t) => t.TagKey === 'lifeboat:deployment' && t.TagValue === deployment)) found.push(meta.Arn ?? k.KeyId);
      } catch {
        // a key we may not describe is not one this run made
      }
    }
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return found;
}

/** Schedules deletion after the shortest window; a key already pending deletion or gone is fine. */
export async function scheduleKeyDeletion(kms: KMSClient, keyId: string): Promise<'scheduled' | 'already'> {
  try {
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: KEY_DELETION_DAYS }));
    return 'scheduled';
  } catch (error) {
    const name = awsErrorName(error);
    if (name === 'NotFoundException' || name === 'KMSInvalidStateException') return 'already';
    throw error;
  }
}

/**
 * Deletes the manual snapshots (and snapshot copies) made by executions of one
 * state machine, found by their `lifeboat:execution` tag. A snapshot still
 * being created cannot be deleted: it is waited for, up to `maxWaitMs`; a copy
 * in progress is cancelled by deleting it.
 */
export async function deleteSnapshotsOfExecutions(rds: RDSClient, executionArnPrefix: string, options: { maxWaitMs?: number; pollMs?: number } = {}): Promise<CleanupOutcome> {
  const deadline = Date.now() + (options.maxWaitMs ?? 30 * 60_000);
  const deleted = new Set<string>();
  for (;;) {
    const ours = (await manualSnapshots(rds)).filter((s) => tagRecord(s.TagList)[TAG.execution]?.startsWith(executionArnPrefix));
    const remaining = ours.filter((s) => s.Status !== 'deleting');
    const busy: string[] = [];
    for (const s of remaining) {
      try {
        await rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: s.DBSnapshotIdentifier! }));
        deleted.add(s.DBSnapshotIdentifier!);
      } catch (error) {
        const name = awsErrorName(error);
        if (name === 'DBSnapshotNotFoundFault' || name === 'DBSnapshotNotFound') continue;
        if (name === 'InvalidDBSnapshotStateFault' || name === 'InvalidDBSnapshotState') busy.push(`${s.DBSnapshotIdentifier} (${s.Status})`);
        else throw error;
      }
    }
    if (busy.length === 0) return gone(deleted.size ? `deleted ${[...deleted].join(', ')}` : 'no snapshot of this run');
    if (Date.now() >= deadline) return { status: 'left', detail: `still not deletable: ${busy.join(', ')}; run --cleanup again once they are available` };
    await sleep(options.pollMs ?? 30_000);
  }
}

/**
 * Drill resources (throwaway instances, snapshots, subnet groups, secrets) that
 * executions of one drill state machine left, found by the drill tags the way
 * the janitor finds them, deleted with the janitor's own calls; waits until
 * the instances are gone so the subnet group they sit in can be deleted.
 */
export async function deleteDrillLeftovers(
  rds: RDSClient,
  secrets: SecretsManagerClient,
  executionArnPrefix: string,
  options: { maxWaitMs?: number; pollMs?: number } = {},
): Promise<CleanupOutcome> {
  const provisioner = new RdsProvisioner({ clients: { source: rds } });
  const ours = (await provisioner.listDrillResources()).filter((r) => r.tags[DRILL_TAG.execution]?.startsWith(executionArnPrefix));
  const order: Record<string, number> = { 'rds-instance': 0, 'rds-cluster': 1, 'rds-snapshot': 1, 'rds-subnet-group': 2 };
  ours.sort((a, b) => (order[a.type] ?? 9) - (order[b.type] ?? 9));
  const done: string[] = [];
  const instances: string[] = [];
  for (const r of ours) {
    const item = await provisioner.deleteResource({ ...r, location: 'source' });
    done.push(`${item.type} ${item.id}: ${item.outcome}`);
    if (r.type === 'rds-instance' && item.outcome !== 'absent') instances.push(r.id);
  }
  for (const s of await listDrillSecrets(secrets)) {
    if (!s.tags[DRILL_TAG.execution]?.startsWith(executionArnPrefix)) continue;
    const item = await deleteDrillSecret(secrets, s.id);
    done.push(`secret ${s.id}: ${item.outcome}`);
  }
  const deadline = Date.now() + (options.maxWaitMs ?? 30 * 60_000);
  let waiting = instances;
  while (waiting.length > 0) {
    const still: string[] = [];
    for (const id of waiting) {
      try {
        await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
        still.push(id);
      } catch (error) {
        if (!/NotFound/.test(awsErrorName(error))) throw error;
      }
    }
    waiting = still;
    if (waiting.length === 0) break;
    if (Date.now() >= deadline) return { status: 'left', detail: `still deleting: ${waiting.join(', ')}` };
    await sleep(options.pollMs ?? 30_000);
  }
  return gone(done.length ? done.join('; ') : 'the drills left nothing');
}

export async function forceDeleteSecret(secrets: SecretsManagerClient, secretId: string): Promise<CleanupOutcome> {
  try {
    await secrets.send(new DeleteSecretCommand({ SecretId: secretId, ForceDeleteWithoutRecovery: true }));
    return gone(`${secretId} deleted`);
  } catch (error) {
    const name = awsErrorName(error);
    if (name === 'ResourceNotFoundException') return gone(`${secretId} does not exist (already deleted)`);
    if (name === 'InvalidRequestException') return gone(`${secretId} is already scheduled for deletion`);
    throw error;
  }
}
