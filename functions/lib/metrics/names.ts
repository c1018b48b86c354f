/**
 * The CloudWatch metrics lifeboat publishes, shared by the functions that emit
 * them (Powertools Metrics, EMF) and the CDK app that alarms on and charts them.
 *
 * A CloudWatch metric is identified by namespace, name and its EXACT dimension
 * set. Powertools' `singleMetric()` with `addDimension('database', id)` emits the
 * dimension set `[service, database]`, where `service` is the function's
 * POWERTOOLS_SERVICE_NAME. An alarm that names only `database` (or another
 * service) watches a different metric and never sees a data point, so both
 * sides take the names below.
 */

/** Powertools metrics namespace of every lifeboat function (POWERTOOLS_METRICS_NAMESPACE). */
export const METRICS_NAMESPACE = 'lifeboat';

/** POWERTOOLS_SERVICE_NAME of each runner: the `service` dimension of its metrics. */
export const SERVICE_NAMES = {
  /** The pg_dump runner, as a Lambda function and as a Fargate task (same dimension on purpose). */
  dump: 'lifeboat-dump',
  alert: 'lifeboat-alert',
  snapshot: 'lifeboat-snapshot',
  vaultCopy: 'lifeboat-vault-copy',
  drill: 'lifeboat-drill',
  janitor: 'lifeboat-janitor',
  retention: 'lifeboat-retention',
  plan: 'lifeboat-plan',
  /** The PITR posture check (backup runs) and its frequent lag watch. */
  pitr: 'lifeboat-pitr',
} as const;
export type ServiceName = (typeof SERVICE_NAMES)[keyof typeof SERVICE_NAMES];

/** Dimension names, in the order Powertools emits them for a per-database metric. */
export const DIMENSIONS = { service: 'service', database: 'database' } as const;

/** Per-database metrics (dimensions `[service, database]`). */
export const METRIC_NAMES = {
  /** Count 1 per committed dump (manifest written). The dead man's switch watches it. */
  backupSucceeded: 'BackupSucceeded',
  /** Count 1 per failed dump. */
  backupFailed: 'BackupFailed',
  /** Bytes stored for the dump (compressed, encrypted). */
  backupStoredBytes: 'BackupStoredBytes',
  /** Wall-clock seconds of the dump. */
  backupDurationSeconds: 'BackupDurationSeconds',
  /** Count 1 per source snapshot that became available (snapshot function, action `status`). The snapshot staleness alarm watches it. */
  snapshotSucceeded: 'SnapshotSucceeded',
  /** Count 1 per dump copied into the vault and verified (vault-copy function). The vault dump staleness alarm watches it. */
  vaultCopySucceeded: 'VaultCopySucceeded',
  /** Count 1 per snapshot copy that became available in the vault (snapshot function). The vault snapshot staleness alarm watches it. */
  vaultSnapshotCopied: 'VaultSnapshotCopied',
  /** Count 1 per drill that reported a result (passed, failed or emulated). The drill staleness alarm watches it. */
  drillCompleted: 'DrillCompleted',
  /** Count 1 per drill whose restore was proven against the manifest. */
  drillSucceeded: 'DrillSucceeded',
  /** Count 1 per drill that failed (restore, verification or teardown). */
  drillFailed: 'DrillFailed',
  /** Count 1 per drill run on emulated infrastructure (proves nothing about data). */
  drillEmulated: 'DrillEmulated',
  /** Measured recovery time of a drill, in seconds. */
  drillRtoSeconds: 'DrillRtoSeconds',
  /** Measured recovery point of a drill (data age at restore), in seconds. */
  drillRpoSeconds: 'DrillRpoSeconds',
  /** 1 when a drill missed the plan's RTO or RPO target, else 0. */
  drillObjectiveMissed: 'DrillObjectiveMissed',
  /**
   * Age of the newest committed backup, in seconds, published periodically by an
   * age probe (not the dump). Alarms for RPOs beyond CloudWatch's 7-day
   * evaluation range need it; see docs/limits.md.
   */
  newestBackupAgeSeconds: 'NewestBackupAgeSeconds',
  /**
   * The PITR RPO: now minus the newest restorable moment (LatestRestorableTime)
   * of a database of a plan with `pitr`, in seconds (service `lifeboat-pitr`).
   * Published by every posture check, and every 5 minutes by the lag watch;
   * the per-database `pitr-lag` alarm watches it (missing data breaching).
   */
  pitrRestorableLagSeconds: 'PitrRestorableLagSeconds',
  /** The point-in-time window RDS reports (newest minus oldest restorable moment), in seconds; not published when the oldest moment is only estimated. */
  pitrWindowSeconds: 'PitrWindowSeconds',
  /**
   * How far the copy region's window trails now: now minus the newest
   * restorable moment (RestoreWindow.LatestTime) of the automated backups
   * replicated to the copy region, in seconds (service `lifeboat-pitr`), for
   * the databases of plans with `pitr.copyRegion`. Published by the lag watch
   * (and every posture check) only while the replica is `replicating`; the
   * per-database `pitr-replica-lag` alarm watches it (missing data breaching).
   */
  pitrReplicaLagSeconds: 'PitrReplicaLagSeconds',
} as const;
export type MetricName = (typeof METRIC_NAMES)[keyof typeof METRIC_NAMES];
