import { createHash, randomBytes } from 'node:crypto';
import { newBackupId } from '../backup/manifest.ts';
import type { SnapshotKind } from './rds.ts';

/** Tag keys lifeboat puts on every snapshot and copy: the vault describes itself through them. */
export const TAG = {
  managed: 'lifeboat:managed',
  backupId: 'lifeboat:backup-id',
  plan: 'lifeboat:plan',
  database: 'lifeboat:database',
  kind: 'lifeboat:kind',
  execution: 'lifeboat:execution',
  sourceAccount: 'lifeboat:source-account',
  sourceRegion: 'lifeboat:source-region',
  sourceSnapshot: 'lifeboat:source-snapshot',
  sourceDatabase: 'lifeboat:source-database',
} as const;

export interface SnapshotJobIdentity {
  readonly planId: string;
  readonly databaseId: string;
  /** Execution ARN: with its start time it makes the backup id the same on every retry of a step. */
  readonly executionId?: string;
  readonly executionStartTime?: string;
}

/**
 * The backup id of a snapshot: `20261121T093600Z-1a2b3c`, like a dump's. Within
 * one execution it is deterministic (start time + hash of execution and
 * database), so a retried create finds its own snapshot instead of making a
 * second one; a new execution always gets a new id, so a failed run leaves
 * nothing the next run trips over.
 */
export function snapshotBackupId(job: SnapshotJobIdentity, now: Date): string {
  const start = job.executionStartTime ? new Date(job.executionStartTime) : undefined;
  if (job.executionId && start && !Number.isNaN(start.getTime())) {
    const suffix = createHash('sha256').update(`${job.executionId}/${job.databaseId}`).digest('hex').slice(0, 6);
    return newBackupId(start, suffix);
  }
  return newBackupId(now, randomBytes(3).toString('hex'));
}

/**
 * `lifeboat-<database>-<backup id>` in RDS's identifier alphabet: lowercase
 * letters, digits and single hyphens, starting with a letter, at most 63
 * characters (the cluster snapshot limit; instance snapshots allow more).
 */
export function snapshotIdentifier(databaseId: string, backupId: string): string {
  const tail = backupId.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  const room = 63 - 'lifeboat--'.length - tail.length;
  const db = databaseId.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, Math.max(1, room));
  return `lifeboat-${db}-${tail}`.replace(/-{2,}/g, '-').replace(/-$/, '');
}

export function snapshotTags(job: SnapshotJobIdentity, backupId: string, kind: SnapshotKind): Record<string, string> {
  const tags: Record<string, string> = {
    [TAG.managed]: 'true',
    [TAG.backupId]: backupId,
    [TAG.plan]: job.planId,
    [TAG.database]: job.databaseId,
    [TAG.kind]: kind === 'instance' ? 'rds-snapshot' : 'aurora-cluster-snapshot',
  };
  if (job.executionId) tags[TAG.execution] = job.executionId.slice(0, 256);
  return tags;
}

/**
 * Id of the same-region copy under a customer key. The id is truncated before
 * the suffix is added, so even a 63-character source id yields a distinct copy id.
 */
export function sameRegionCopyId(sourceId: string): string {
  return `${sourceId.slice(0, 63 - '-cmk'.length).replace(/-+$/, '')}-cmk`;
}
