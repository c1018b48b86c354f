import { DescribeDBClustersCommand, DescribeDBInstanceAutomatedBackupsCommand, DescribeDBInstancesCommand, type DBCluster, type RDSClient } from '@aws-sdk/client-rds';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Manifest } from '../backup/manifest.ts';
import { errorName } from '../drill/provisioner.ts';
import { DatabaseConnectionError } from '../errors.ts';
import { connect, isTlsTrustFailure, type ResolvedConnection } from '../pg/connection.ts';

/**
 * The point-in-time recovery window RDS or Aurora keeps for a database, read
 * when `lifeboat recover` chooses how to bring it back: a moment inside the
 * window can be restored to the second (RDS ships the WAL about every five
 * minutes), which beats the newest dump before it whenever the two differ.
 * `recover --into-rds` runs that restore itself for an RDS instance; otherwise it says whether one
 * covers the moment and gives the command. It claims "covers" only on RDS's
 * own figures: an estimate is said to be one and never counted as cover.
 */
export type RdsRef = { instanceIdentifier: string } | { clusterIdentifier: string };

export interface PitrWindow {
  /** `instance` (RDS for PostgreSQL), `aurora` or `multi-az-cluster` (an RDS Multi-AZ DB cluster). */
  kind: 'instance' | 'aurora' | 'multi-az-cluster';
  identifier: string;
  engine?: string;
  /** BackupRetentionPeriod: 0 means no automated backups, so no window. */
  retentionDays: number;
  /** Oldest restorable moment: RDS's own (cluster EarliestRestorableTime, the active automated backup's RestoreWindow), else estimated. */
  earliest?: Date;
  /** Why RDS gave no oldest moment, when it was estimated. */
  earliestEstimated?: string;
  latest?: Date;
  /** The instance is stopped: its newest restorable moment is when it stopped. */
  status?: string;
  /** DBInstanceArn / DBClusterArn (the PITR posture check names the source of a backup replication by it). */
  arn?: string;
  /** The instance's DbiResourceId: its replicated automated backups in another region carry it. */
  resourceId?: string;
}

export async function readPitrWindow(rds: RDSClient, ref: RdsRef): Promise<PitrWindow> {
  if ('clusterIdentifier' in ref) return clusterWindow(ref.clusterIdentifier, (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: ref.clusterIdentifier }))).DBClusters?.[0]);
  const instance = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: ref.instanceIdentifier }))).DBInstances?.[0];
  // A member of a cluster is restored through its cluster.
  if (instance?.DBClusterIdentifier) {
    const cluster = (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: instance.DBClusterIdentifier }))).DBClusters?.[0];
    return clusterWindow(instance.DBClusterIdentifier, cluster);
  }
  const retentionDays = instance?.BackupRetentionPeriod ?? 0;
  let earliest: Date | undefined;
  let missing = 'RDS listed no active automated backup of this instance';
  try {
    const backups = await rds.send(new DescribeDBInstanceAutomatedBackupsCommand({ DBInstanceIdentifier: ref.instanceIdentifier }));
    // Only this instance's own, active backup: retained backups of a deleted namesake or replicas elsewhere have other windows.
    earliest = backups.DBInstanceAutomatedBackups?.find((b) => b.Status === 'active' && (!instance?.DbiResourceId || b.DbiResourceId === instance.DbiResourceId))?.RestoreWindow?.EarliestTime;
  } catch (error) {
    missing = `DescribeDBInstanceAutomatedBackups failed: ${errorName(error)}`;
  }
  let earliestEstimated: string | undefined;
  if (earliest === undefined && retentionDays > 0) {
    // Conservative: the oldest daily backup can be up to a day younger than the retention period, and there is no window before the instance existed.
    earliest = new Date(Math.max(Date.now() - (retentionDays - 1) * 86_400_000, (instance?.InstanceCreateTime?.getTime() ?? 0) + 86_400_000));
    earliestEstimated = missing;
  }
  return {
    kind: 'instance',
    identifier: ref.instanceIdentifier,
    engine: instance?.Engine,
    retentionDays,
    earliest,
    ...(earliestEstimated ? { earliestEstimated } : {}),
    latest: instance?.LatestRestorableTime,
    status: instance?.DBInstanceStatus,
    ...(instance?.DBInstanceArn ? { arn: instance.DBInstanceArn } : {}),
    ...(instance?.DbiResourceId ? { resourceId: instance.DbiResourceId } : {}),
  };
}

function clusterWindow(identifier: string, cluster: DBCluster | undefined): PitrWindow {
  return {
    kind: cluster?.Engine?.startsWith('aurora') ? 'aurora' : 'multi-az-cluster',
    identifier,
    engine: cluster?.Engine,
    retentionDays: cluster?.BackupRetentionPeriod ?? 0,
    earliest: cluster?.EarliestRestorableTime,
    latest: cluster?.LatestRestorableTime,
    status: cluster?.Status,
    ...(cluster?.DBClusterArn ? { arn: cluster.DBClusterArn } : {}),
  };
}

export interface PitrAdvice {
  /** A point-in-time restore reaches the moment itself, by RDS's own figures. */
  covers: boolean;
  /** The moment is inside an estimated window, or just past the newest restorable moment (logs still shipping). */
  likely?: boolean;
  /** One sentence for the recover plan. */
  summary: string;
  window?: { kind: PitrWindow['kind']; identifier: string; retentionDays: number; earliest?: string; earliestEstimated?: string; latest?: string };
  /** The AWS CLI command that restores to the moment (or to the newest restorable moment), when one may work. */
  command?: string;
}

/** RDS ships the WAL about every five minutes: a moment this recent may become restorable shortly. */
const SHIPPING_LAG_MS = 10 * 60_000;

function commandFor(window: PitrWindow, at: string, region: string | undefined, latest = false): string {
  const id = window.identifier;
  const target = `${id.slice(0, 58)}-pitr`;
  const when = latest ? '--use-latest-restorable-time' : window.kind === 'instance' ? `--restore-time ${at}` : `--restore-to-time ${at}`;
  const inRegion = region ? ` --region ${region}` : '';
  const keep = "add the source's parameter group, Multi-AZ, deletion protection and IAM authentication settings";
  switch (window.kind) {
    case 'aurora':
      return `aws rds restore-db-cluster-to-point-in-time${inRegion} --source-db-cluster-identifier ${id} --db-cluster-identifier ${target} ${when} --db-subnet-group-name <group> --vpc-security-group-ids <sg>, then aws rds create-db-instance${inRegion} --db-cluster-identifier ${target} --db-instance-identifier ${target}-1 --engine ${window.engine ?? 'aurora-postgresql'} --db-instance-class <class> (${keep})`;
    case 'multi-az-cluster':
      return `aws rds restore-db-cluster-to-point-in-time${inRegion} --source-db-cluster-identifier ${id} --db-cluster-identifier ${target} ${when} --db-cluster-instance-class <class> --db-subnet-group-name <group> --vpc-security-group-ids <sg> (${keep})`;
    default:
      return `aws rds restore-db-instance-to-point-in-time${inRegion} --source-db-instance-identifier ${id} --target-db-instance-identifier ${target} ${when} --db-subnet-group-name <group> --vpc-security-group-ids <sg> --no-publicly-accessible (${keep})`;
  }
}

/** Whether the window reaches `moment`, in words and with the command; never throws (an unreadable window is said so). */
export async function pointInTimeAdvice(rds: RDSClient, ref: RdsRef | undefined, moment: Date, options: { region?: string; now?: Date } = {}): Promise<PitrAdvice> {
  if (!ref) return { covers: false, summary: 'not available: the config names no RDS instance or Aurora cluster for this database (rds.instanceIdentifier / rds.clusterIdentifier)' };
  const id = 'clusterIdentifier' in ref ? ref.clusterIdentifier : ref.instanceIdentifier;
  const where = options.region ? ` in ${options.region}` : '';
  let window: PitrWindow;
  try {
    window = await readPitrWindow(rds, ref);
  } catch (error) {
    return {
      covers: false,
      summary: `unknown: the window of ${id}${where} could not be read (${errorName(error)}: ${(error as Error).message}); if the incident deleted the instance, its retained automated backups may still restore it (aws rds describe-db-instance-automated-backups, then restore-db-instance-to-point-in-time --source-dbi-resource-id)`,
    };
  }
  const shown = {
    kind: window.kind,
    identifier: window.identifier,
    retentionDays: window.retentionDays,
    ...(window.earliest ? { earliest: window.earliest.toISOString() } : {}),
    ...(window.earliestEstimated ? { earliestEstimated: window.earliestEstimated } : {}),
    ...(window.latest ? { latest: window.latest.toISOString() } : {}),
  };
  if (window.retentionDays === 0) return { covers: false, summary: `not available: ${window.identifier} keeps no automated backups (BackupRetentionPeriod 0)`, window: shown };
  // The restore time is given to the second, rounded down: that is the moment checked.
  const at = new Date(Math.floor(moment.getTime() / 1000) * 1000);
  const atText = at.toISOString().replace(/\.000Z$/, 'Z');
  const span = `${window.earliest?.toISOString() ?? '?'}${window.earliestEstimated ? ` (estimated: ${window.earliestEstimated})` : ''} to ${window.latest?.toISOString() ?? '? (no newest restorable moment yet)'}`;
  const now = options.now ?? new Date();
  if (!window.latest || at > window.latest) {
    const recent = now.getTime() - at.getTime() < SHIPPING_LAG_MS || window.status === 'stopped';
    if (recent) {
      return {
        covers: false,
        likely: true,
        summary: `not yet: the newest restorable moment of ${window.identifier} is ${window.latest?.toISOString() ?? 'not reported'}${window.status === 'stopped' ? ' (the instance is stopped: that is its last state)' : ' (RDS ships logs about every 5 minutes: ask again in a few minutes)'}; the newest restorable moment itself: ${commandFor(window, atText, options.region, true)}`,
        window: shown,
        command: commandFor(window, atText, options.region, true),
      };
    }
    return { covers: false, summary: `does not reach ${atText}: the window of ${window.identifier} is ${span}`, window: shown };
  }
  if (!window.earliest || at < window.earliest) return { covers: false, summary: `does not reach ${atText}: the window of ${window.identifier} is ${span}`, window: shown };
  const command = commandFor(window, atText, options.region);
  if (window.earliestEstimated) {
    return {
      covers: false,
      likely: true,
      summary: `probably available: ${atText} is inside the window of ${window.identifier} as estimated from its retention period (${span}); check with aws rds describe-db-instance-automated-backups --db-instance-identifier ${window.identifier}, then: ${command}. Below, the dump lifeboat can restore and verify`,
      window: shown,
      command,
    };
  }
  return {
    covers: true,
    summary: `AVAILABLE and better: the window of ${window.identifier} (${span}) covers ${atText}, so RDS can restore to the moment itself and lose nothing before it${window.kind === 'instance' ? ' (lifeboat recover --into-rds <new-id> does it for you)' : ''}; by hand: ${command}. Below, the dump lifeboat can restore and verify`,
    window: shown,
    command,
  };
}

/**
 * After a point-in-time restore: the database answers (over the caller's TLS
 * settings) and holds the tables of the newest dump before the moment, if any. Tables
 * may have been dropped between that dump and the moment, so missing ones are
 * listed, not failed; a database that does not answer is an error. A server
 * that refuses connections right after "available" is asked again a few times.
 */
export async function checkTablesAtMoment(
  manifest: Manifest | undefined,
  databaseId: string,
  target: ResolvedConnection,
  signal?: AbortSignal,
  attempts = 10,
  pauseMs = 3000,
): Promise<{ expected: number; found: number; missing: string[] }> {
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    let client;
    try {
      client = await connect(databaseId, target, 'lifeboat-recover');
    } catch (error) {
      if (attempt >= attempts || !(error instanceof DatabaseConnectionError) || isTlsTrustFailure(error)) throw error;
      await sleep(pauseMs, undefined, { signal });
      continue;
    }
    try {
      const { rows } = await client.query<{ schema: string; name: string }>(
        `SELECT n.nspname AS schema, c.relname AS name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'`,
      );
      const present = new Set(rows.map((r) => `${r.schema}.${r.name}`));
      const missing = (manifest?.inventory.tables ?? []).map((t) => `${t.schema}.${t.name}`).filter((t) => !present.has(t));
      return { expected: manifest?.inventory.tables.length ?? 0, found: present.size, missing };
    } finally {
      await client.end();
    }
  }
}
