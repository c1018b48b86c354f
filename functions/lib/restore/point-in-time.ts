import { DescribeDBClustersCommand, DescribeDBInstanceAutomatedBackupsCommand, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import { errorName } from '../drill/provisioner.ts';

/**
 * The point-in-time recovery window RDS or Aurora keeps for a database, read
 * when `lifeboat recover` chooses how to bring it back: a moment inside the
 * window can be restored to the second (RDS ships the WAL about every five
 * minutes), which beats the newest dump before it whenever the two differ.
 * lifeboat does not run point-in-time restores itself yet; it says whether one
 * covers the moment and gives the command.
 */
export type RdsRef = { instanceIdentifier: string } | { clusterIdentifier: string };

export interface PitrWindow {
  kind: 'instance' | 'cluster';
  identifier: string;
  /** BackupRetentionPeriod: 0 means no automated backups, so no window. */
  retentionDays: number;
  /** Oldest restorable moment: RDS's own (cluster EarliestRestorableTime, the automated backup's RestoreWindow), else estimated. */
  earliest?: Date;
  earliestEstimated?: boolean;
  latest?: Date;
}

export async function readPitrWindow(rds: RDSClient, ref: RdsRef): Promise<PitrWindow> {
  if ('clusterIdentifier' in ref) {
    const cluster = (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: ref.clusterIdentifier }))).DBClusters?.[0];
    return {
      kind: 'cluster',
      identifier: ref.clusterIdentifier,
      retentionDays: cluster?.BackupRetentionPeriod ?? 0,
      earliest: cluster?.EarliestRestorableTime,
      latest: cluster?.LatestRestorableTime,
    };
  }
  const instance = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: ref.instanceIdentifier }))).DBInstances?.[0];
  const retentionDays = instance?.BackupRetentionPeriod ?? 0;
  let earliest: Date | undefined;
  try {
    const backups = await rds.send(new DescribeDBInstanceAutomatedBackupsCommand({ DBInstanceIdentifier: ref.instanceIdentifier }));
    earliest = backups.DBInstanceAutomatedBackups?.find((b) => b.RestoreWindow?.EarliestTime)?.RestoreWindow?.EarliestTime;
  } catch {
    // Only an estimate then (below).
  }
  // Without RDS's figure: the retention period back from now, not before the instance existed.
  const estimated = earliest === undefined && retentionDays > 0;
  if (estimated) earliest = new Date(Math.max(Date.now() - retentionDays * 86_400_000, instance?.InstanceCreateTime?.getTime() ?? 0));
  return { kind: 'instance', identifier: ref.instanceIdentifier, retentionDays, earliest, earliestEstimated: estimated || undefined, latest: instance?.LatestRestorableTime };
}

export interface PitrAdvice {
  /** A point-in-time restore reaches the moment itself. */
  covers: boolean;
  /** One sentence for the recover plan. */
  summary: string;
  window?: { kind: PitrWindow['kind']; identifier: string; retentionDays: number; earliest?: string; earliestEstimated?: boolean; latest?: string };
  /** The AWS CLI command that restores to the moment, when the window covers it. */
  command?: string;
}

/** Whether the window reaches `moment`, in words and with the command; never throws (an unreadable window is said so). */
export async function pointInTimeAdvice(rds: RDSClient, ref: RdsRef | undefined, moment: Date): Promise<PitrAdvice> {
  if (!ref) return { covers: false, summary: 'not available: the config names no RDS instance or Aurora cluster for this database (rds.instanceIdentifier / rds.clusterIdentifier)' };
  const id = 'clusterIdentifier' in ref ? ref.clusterIdentifier : ref.instanceIdentifier;
  let window: PitrWindow;
  try {
    window = await readPitrWindow(rds, ref);
  } catch (error) {
    return { covers: false, summary: `unknown: the window of ${id} could not be read (${errorName(error)}: ${(error as Error).message}); the dump below is used` };
  }
  const shown = {
    kind: window.kind,
    identifier: id,
    retentionDays: window.retentionDays,
    ...(window.earliest ? { earliest: window.earliest.toISOString() } : {}),
    ...(window.earliestEstimated ? { earliestEstimated: true } : {}),
    ...(window.latest ? { latest: window.latest.toISOString() } : {}),
  };
  if (window.retentionDays === 0) return { covers: false, summary: `not available: ${id} keeps no automated backups (BackupRetentionPeriod 0)`, window: shown };
  const span = `${window.earliest?.toISOString() ?? '?'}${window.earliestEstimated ? ' (estimated from the retention period)' : ''} to ${window.latest?.toISOString() ?? '?'}`;
  const inside = window.earliest !== undefined && window.latest !== undefined && moment >= window.earliest && moment <= window.latest;
  if (!inside) return { covers: false, summary: `does not reach ${moment.toISOString()}: the window of ${id} is ${span}`, window: shown };
  const at = moment.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const command =
    window.kind === 'cluster'
      ? `aws rds restore-db-cluster-to-point-in-time --source-db-cluster-identifier ${id} --db-cluster-identifier ${id}-pitr --restore-to-time ${at} --db-subnet-group-name <group> --vpc-security-group-ids <sg>, then aws rds create-db-instance --db-cluster-identifier ${id}-pitr --db-instance-identifier ${id}-pitr-1 --engine aurora-postgresql --db-instance-class <class>`
      : `aws rds restore-db-instance-to-point-in-time --source-db-instance-identifier ${id} --target-db-instance-identifier ${id}-pitr --restore-time ${at} --db-subnet-group-name <group> --vpc-security-group-ids <sg> --no-publicly-accessible`;
  return {
    covers: true,
    summary: `AVAILABLE and better: the window of ${id} (${span}) covers ${at}, so RDS can restore to the moment itself and lose nothing before it. lifeboat does not run point-in-time restores yet; to use it: ${command}. Below, the dump lifeboat can restore and verify`,
    window: shown,
    command,
  };
}
