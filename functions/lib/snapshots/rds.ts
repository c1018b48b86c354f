import {
  CopyDBClusterSnapshotCommand,
  CopyDBSnapshotCommand,
  CreateDBClusterSnapshotCommand,
  CreateDBSnapshotCommand,
  DeleteDBClusterSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBClustersCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBClusterSnapshotAttributeCommand,
  ModifyDBSnapshotAttributeCommand,
  type DBClusterSnapshot,
  type DBSnapshot,
  type RDSClient,
  type Tag,
} from '@aws-sdk/client-rds';
import type { DatabaseConfig } from '../config/schema.ts';
import { SourceDatabaseNotFoundError } from '../errors.ts';
import { classifyRdsError, isAwsError } from './rds-errors.ts';

/**
 * RDS instance snapshots and Aurora cluster snapshots behind one small
 * interface: the workflow never branches on the kind, this module does.
 */
export type SnapshotKind = 'instance' | 'cluster';

/** Only `send` is used, so tests can hand in a real client or a small fake. */
export type RdsApi = Pick<RDSClient, 'send'>;

export interface SourceDatabase {
  readonly kind: SnapshotKind;
  /** DBInstanceIdentifier or DBClusterIdentifier. */
  readonly identifier: string;
}

export interface SourceDatabaseInfo extends SourceDatabase {
  readonly arn: string;
  readonly encrypted: boolean;
  readonly kmsKeyId?: string;
  readonly engine?: string;
}

export interface SnapshotInfo {
  readonly kind: SnapshotKind;
  readonly id: string;
  readonly arn: string;
  /** creating, copying, available, failed, ... (lowercase, as RDS reports it). */
  readonly status: string;
  readonly encrypted: boolean;
  readonly kmsKeyId?: string;
  readonly percentProgress?: number;
  readonly engine?: string;
  readonly sourceIdentifier?: string;
  readonly tags: Readonly<Record<string, string>>;
}

export function sourceDatabaseOf(database: Pick<DatabaseConfig, 'id' | 'rds'>): SourceDatabase {
  const rds = database.rds;
  if (!rds) throw new SourceDatabaseNotFoundError(`Database "${database.id}" has no rds.instanceIdentifier or rds.clusterIdentifier, so it cannot be snapshotted.`, { nextStep: `add rds to databases[id=${database.id}] or take this plan's snapshot off.` });
  return 'instanceIdentifier' in rds ? { kind: 'instance', identifier: rds.instanceIdentifier } : { kind: 'cluster', identifier: rds.clusterIdentifier };
}

export function describeKind(kind: SnapshotKind): string {
  return kind === 'instance' ? 'RDS instance' : 'Aurora cluster';
}

const toTags = (tags: Readonly<Record<string, string>>): Tag[] => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
const fromTags = (tags: Tag[] | undefined): Record<string, string> => Object.fromEntries((tags ?? []).filter((t) => t.Key).map((t) => [t.Key!, t.Value ?? '']));

function fromInstanceSnapshot(s: DBSnapshot): SnapshotInfo {
  return {
    kind: 'instance',
    id: s.DBSnapshotIdentifier ?? '',
    arn: s.DBSnapshotArn ?? '',
    status: (s.Status ?? 'unknown').toLowerCase(),
    encrypted: s.Encrypted === true,
    kmsKeyId: s.KmsKeyId,
    percentProgress: s.PercentProgress,
    engine: s.Engine,
    sourceIdentifier: s.DBInstanceIdentifier,
    tags: fromTags(s.TagList),
  };
}

function fromClusterSnapshot(s: DBClusterSnapshot): SnapshotInfo {
  return {
    kind: 'cluster',
    id: s.DBClusterSnapshotIdentifier ?? '',
    arn: s.DBClusterSnapshotArn ?? '',
    status: (s.Status ?? 'unknown').toLowerCase(),
    encrypted: s.StorageEncrypted === true,
    kmsKeyId: s.KmsKeyId,
    percentProgress: s.PercentProgress,
    engine: s.Engine,
    sourceIdentifier: s.DBClusterIdentifier,
    tags: fromTags(s.TagList),
  };
}

/** The instance or cluster, or SourceDatabaseNotFoundError naming it and the region. */
export async function describeSourceDatabase(rds: RdsApi, source: SourceDatabase, region: string, databaseId: string): Promise<SourceDatabaseInfo> {
  const where = `${describeKind(source.kind)} "${source.identifier}" (database "${databaseId}", ${region})`;
  try {
    if (source.kind === 'instance') {
      const out = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: source.identifier }));
      const db = out.DBInstances?.[0];
      if (!db) throw Object.assign(new Error('not found'), { name: 'DBInstanceNotFoundFault' });
      return { ...source, arn: db.DBInstanceArn ?? '', encrypted: db.StorageEncrypted === true, kmsKeyId: db.KmsKeyId, engine: db.Engine };
    }
    const out = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: source.identifier }));
    const db = out.DBClusters?.[0];
    if (!db) throw Object.assign(new Error('not found'), { name: 'DBClusterNotFoundFault' });
    return { ...source, arn: db.DBClusterArn ?? '', encrypted: db.StorageEncrypted === true, kmsKeyId: db.KmsKeyId, engine: db.Engine };
  } catch (error) {
    if (isAwsError(error, 'DBInstanceNotFound', 'DBClusterNotFoundFault', 'DBClusterNotFound')) {
      throw new SourceDatabaseNotFoundError(`The ${where} does not exist, so no snapshot was taken.`, {
        cause: error,
        nextStep: `fix rds.${source.kind === 'instance' ? 'instanceIdentifier' : 'clusterIdentifier'} of database "${databaseId}" in the config (or the region the source stack is deployed to).`,
      });
    }
    throw classifyRdsError(error, 'describing the source database', where);
  }
}

export async function createSnapshot(rds: RdsApi, source: SourceDatabase, snapshotId: string, tags: Readonly<Record<string, string>>): Promise<SnapshotInfo> {
  if (source.kind === 'instance') {
    const out = await rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: source.identifier, DBSnapshotIdentifier: snapshotId, Tags: toTags(tags) }));
    return fromInstanceSnapshot(out.DBSnapshot ?? {});
  }
  const out = await rds.send(new CreateDBClusterSnapshotCommand({ DBClusterIdentifier: source.identifier, DBClusterSnapshotIdentifier: snapshotId, Tags: toTags(tags) }));
  return fromClusterSnapshot(out.DBClusterSnapshot ?? {});
}

/** The snapshot by identifier (own) or ARN (shared with this account), or undefined if it does not exist. */
export async function describeSnapshot(rds: RdsApi, kind: SnapshotKind, idOrArn: string): Promise<SnapshotInfo | undefined> {
  const shared = idOrArn.startsWith('arn:');
  try {
    if (kind === 'instance') {
      const out = await rds.send(
        new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: idOrArn, ...(shared ? { IncludeShared: true, SnapshotType: 'shared' } : {}) }),
      );
      const found = (out.DBSnapshots ?? []).find((s) => s.DBSnapshotIdentifier === idOrArn || s.DBSnapshotArn === idOrArn) ?? out.DBSnapshots?.[0];
      return found ? fromInstanceSnapshot(found) : undefined;
    }
    const out = await rds.send(
      new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: idOrArn, ...(shared ? { IncludeShared: true, SnapshotType: 'shared' } : {}) }),
    );
    const found =
      (out.DBClusterSnapshots ?? []).find((s) => s.DBClusterSnapshotIdentifier === idOrArn || s.DBClusterSnapshotArn === idOrArn) ?? out.DBClusterSnapshots?.[0];
    return found ? fromClusterSnapshot(found) : undefined;
  } catch (error) {
    if (isAwsError(error, 'DBSnapshotNotFound', 'DBClusterSnapshotNotFoundFault', 'DBClusterSnapshotNotFound')) return undefined;
    throw error;
  }
}

export interface CopySnapshotRequest {
  readonly kind: SnapshotKind;
  /** Source ARN (another region or account) or identifier (same region). */
  readonly source: string;
  readonly targetId: string;
  /** KMS key in the destination region; omitted for unencrypted cluster snapshots. */
  readonly kmsKeyId?: string;
  /** Copy the source's tags (same account only); explicit `tags` win over it, as in RDS. */
  readonly copyTags?: boolean;
  readonly tags?: Readonly<Record<string, string>>;
  /** The source region for a cross-region copy; the SDK presigns the request from it. */
  readonly sourceRegion?: string;
}

/** CopyDBSnapshot / CopyDBClusterSnapshot, called in the destination region. */
export async function copySnapshot(rds: RdsApi, request: CopySnapshotRequest): Promise<SnapshotInfo> {
  const common = {
    KmsKeyId: request.kmsKeyId,
    CopyTags: request.copyTags,
    Tags: request.tags ? toTags(request.tags) : undefined,
    SourceRegion: request.sourceRegion,
  };
  if (request.kind === 'instance') {
    const out = await rds.send(new CopyDBSnapshotCommand({ SourceDBSnapshotIdentifier: request.source, TargetDBSnapshotIdentifier: request.targetId, ...common }));
    return fromInstanceSnapshot(out.DBSnapshot ?? {});
  }
  const out = await rds.send(
    new CopyDBClusterSnapshotCommand({ SourceDBClusterSnapshotIdentifier: request.source, TargetDBClusterSnapshotIdentifier: request.targetId, ...common }),
  );
  return fromClusterSnapshot(out.DBClusterSnapshot ?? {});
}

/** Lets `account` copy or restore the snapshot (ModifyDB[Cluster]SnapshotAttribute restore). */
export async function shareSnapshot(rds: RdsApi, kind: SnapshotKind, snapshotId: string, account: string): Promise<void> {
  if (kind === 'instance') {
    await rds.send(new ModifyDBSnapshotAttributeCommand({ DBSnapshotIdentifier: snapshotId, AttributeName: 'restore', ValuesToAdd: [account] }));
  } else {
    await rds.send(new ModifyDBClusterSnapshotAttributeCommand({ DBClusterSnapshotIdentifier: snapshotId, AttributeName: 'restore', ValuesToAdd: [account] }));
  }
}

/** Deletes a snapshot of this account (cancels a copy in progress). */
export async function deleteSnapshot(rds: RdsApi, kind: SnapshotKind, snapshotId: string): Promise<void> {
  if (kind === 'instance') await rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: snapshotId }));
  else await rds.send(new DeleteDBClusterSnapshotCommand({ DBClusterSnapshotIdentifier: snapshotId }));
}

/** Manual snapshots of this account and region, counted page by page. */
export async function countManualSnapshots(rds: RdsApi, kind: SnapshotKind): Promise<number> {
  let count = 0;
  let marker: string | undefined;
  do {
    if (kind === 'instance') {
      const out = await rds.send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual', Marker: marker, MaxRecords: 100 }));
      count += out.DBSnapshots?.length ?? 0;
      marker = out.Marker;
    } else {
      const out = await rds.send(new DescribeDBClusterSnapshotsCommand({ SnapshotType: 'manual', Marker: marker, MaxRecords: 100 }));
      count += out.DBClusterSnapshots?.length ?? 0;
      marker = out.Marker;
    }
  } while (marker);
  return count;
}
