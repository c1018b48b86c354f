import { CfnResource, Duration, NestedStack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { alarmDescription, type AlarmMetadata } from '../../functions/alert/alarm-event.ts';
import { DIMENSIONS, METRICS_NAMESPACE, METRIC_NAMES, SERVICE_NAMES, type MetricName, type ServiceName } from '../../functions/lib/metrics/names.ts';
import { replicaMaxLagSeconds } from '../../functions/lib/pitr/posture.ts';
import { routedAlarmName } from '../alarm-names.ts';
import type { FreshnessKind, FreshnessWatch } from '../freshness.ts';

/**
 * CloudWatch limits an alarm's evaluation range (period x evaluation periods)
 * to one day when the period is under an hour, and to seven days otherwise
 * (PutMetricAlarm, "Period": "An alarm's total current evaluation period can be
 * no longer than seven days ... For alarms with a period of less than one hour,
 * the total evaluation period can't be longer than one day").
 */
export const MAX_EVALUATION_RANGE_SHORT_PERIODS = Duration.days(1);
export const MAX_EVALUATION_RANGE = Duration.days(7);

/** Periods tried for the dead man's switch, shortest first (each divides a day). */
const CANDIDATE_PERIODS_SECONDS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
/** Prefer at most this many evaluation periods; more only when no longer period fits. */
const PREFERRED_MAX_PERIODS = 50;

export interface DeadMansSwitchWindow {
  readonly periodSeconds: number;
  /** Also the datapoints to alarm: every period in the window must have no success. */
  readonly evaluationPeriods: number;
}

function fits(periodSeconds: number, evaluationPeriods: number): boolean {
  const range = periodSeconds * evaluationPeriods;
  return periodSeconds < 3600 ? range <= MAX_EVALUATION_RANGE_SHORT_PERIODS.toSeconds() : range <= MAX_EVALUATION_RANGE.toSeconds();
}

/**
 * The alarm window for an RPO: N periods of P seconds, all without a
 * successful dump. N = ceil(RPO / P) + 1: the extra period covers the partly
 * elapsed current period, so the alarm never fires before the RPO has passed,
 * and fires at most about two periods after it. P is the shortest candidate that
 * keeps N at 50 or fewer (else the shortest that fits CloudWatch's range limit).
 *
 * Returns undefined when no window fits in the 7-day range: RPOs over 167 hours
 * need an age metric (METRIC_NAMES.newestBackupAgeSeconds; docs/limits.md).
 */
export function deadMansSwitchWindow(rpoMinutes: number): DeadMansSwitchWindow | undefined {
  const rpoSeconds = rpoMinutes * 60;
  const windows = CANDIDATE_PERIODS_SECONDS.map((periodSeconds) => ({ periodSeconds, evaluationPeriods: Math.ceil(rpoSeconds / periodSeconds) + 1 })).filter((w) =>
    fits(w.periodSeconds, w.evaluationPeriods),
  );
  return windows.find((w) => w.evaluationPeriods <= PREFERRED_MAX_PERIODS) ?? windows[0];
}

/** The longest RPO the dead man's switch can watch with the dump's own success metric, in minutes. */
export const MAX_DEAD_MANS_SWITCH_RPO_MINUTES = (() => {
  let minutes = 1;
  for (let step = 1 << 20; step >= 1; step >>= 1) if (deadMansSwitchWindow(minutes + step)) minutes += step;
  return minutes;
})();

/** One database as the monitoring sees it. */
export interface MonitoredDatabase {
  readonly id: string;
  /** The plans that dump it (with their dead man's switch on). */
  readonly planIds: readonly string[];
  /** The tightest RPO of those plans. */
  readonly rpoMinutes: number;
  /** The tightest RTO of the plans that hold it. */
  readonly rtoMinutes: number;
  /** Whether a dead man's switch watches it (some plan dumps it with backupAgeAlarm on). */
  readonly deadMansSwitch: boolean;
  /**
   * Staleness alarms beside the dead man's switch: snapshots, vault copies,
   * drills (infra/freshness.ts computes them from the config).
   * @default []
   */
  readonly freshness?: readonly FreshnessWatch[];
  /**
   * The database is in plans with `pitr`: the pitr-lag alarm watches its PITR
   * RPO (PitrRestorableLagSeconds) against the tightest maxLagMinutes.
   * @default - no PITR lag alarm
   */
  readonly pitr?: {
    readonly planIds: readonly string[];
    readonly maxLagMinutes: number;
    /**
     * Plans with `pitr.copyRegion` hold it (an RDS instance): the
     * pitr-replica-lag alarm watches its copy region's window
     * (PitrReplicaLagSeconds) against the tightest maxLagMinutes of those plans.
     * @default - no replica lag alarm
     */
    readonly replica?: { readonly planIds: readonly string[]; readonly maxLagMinutes: number; readonly copyRegion: string };
  };
}

/**
 * The PITR lag alarm's period. The lag watch publishes every 5 minutes
 * (PITR_WATCH_RATE), so each 10-minute period holds two samples, and at least
 * one even when an invocation is late by minutes. RDS ships transaction logs
 * about every 5 minutes, so the lag is a sawtooth from ~0 to ~5 minutes; the
 * alarm takes the Minimum of the period, which only a lag that stays high
 * exceeds: a normal shipping lag (at its peak in one sample) never alarms, and
 * maxLagMinutes is at least 6. Missing data is breaching: a watch that stops,
 * or a window it cannot read (it then publishes nothing), alarms too. The
 * alarm fires at most about maxLagMinutes + 20 minutes after shipping stops.
 */
export const PITR_LAG_ALARM_PERIOD = Duration.minutes(10);

/** A metric with the exact dimension set Powertools' singleMetric() emits from `service` for one database. */
export function databaseMetric(service: ServiceName, metricName: MetricName, databaseId: string, period: Duration, statistic: string = cloudwatch.Stats.SUM): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { [DIMENSIONS.service]: service, [DIMENSIONS.database]: databaseId },
    statistic,
    period,
  });
}

/** The dump's success metric for one database: namespace and dimensions exactly as Powertools emits them. */
export function backupSucceededMetric(databaseId: string, period: Duration): cloudwatch.Metric {
  return databaseMetric(SERVICE_NAMES.dump, METRIC_NAMES.backupSucceeded, databaseId, period);
}

function describeDuration(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  return `${Math.round(seconds / 60)} min`;
}

/**
 * An alarm that fires when a success metric has no data point for a window
 * sized like the dead man's switch (deadMansSwitchWindow): Sum < 1 in every
 * one of N periods, missing data breaching, so a step that stops running
 * alarms just like one that fails.
 */
function stalenessAlarm(
  scope: Construct,
  id: string,
  props: { alarmName: string; windowMinutes: number; metric: (period: Duration) => cloudwatch.Metric; describe: (about: string) => string; metadata: AlarmMetadata },
): cloudwatch.Alarm {
  const window = deadMansSwitchWindow(props.windowMinutes);
  if (!window) {
    throw new Error(`${props.alarmName}: a ${props.windowMinutes} min window exceeds the ${MAX_DEAD_MANS_SWITCH_RPO_MINUTES} min CloudWatch can evaluate (7 days); infra/config.ts should have refused the config.`);
  }
  return new cloudwatch.Alarm(scope, id, {
    alarmName: props.alarmName,
    alarmDescription: alarmDescription(props.describe(describeDuration(window.periodSeconds * window.evaluationPeriods)), props.metadata),
    metric: props.metric(Duration.seconds(window.periodSeconds)),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    evaluationPeriods: window.evaluationPeriods,
    datapointsToAlarm: window.evaluationPeriods,
    treatMissingData: cloudwatch.TreatMissingData.BREACHING,
  });
}

/** Each staleness kind: its alarm name part, the success metric it watches, and what the alert says. */
export const FRESHNESS_ALARMS: Record<
  FreshnessKind,
  {
    readonly alarm: string;
    readonly service: ServiceName;
    readonly metric: MetricName;
    readonly kind: AlarmMetadata['kind'];
    readonly failure: string;
    readonly what: (databaseId: string, plans: string, about: string, basis: string) => string;
    readonly nextStep: (databaseId: string, planId: string) => string;
  }
> = {
  snapshot: {
    alarm: 'snapshot-late',
    service: SERVICE_NAMES.snapshot,
    metric: METRIC_NAMES.snapshotSucceeded,
    kind: 'backup-late',
    failure: 'NoSnapshotWithinRpo',
    what: (db, plans, about, basis) =>
      `No snapshot of database "${db}" (plan ${plans}) has become available for about ${about} (${basis}). Missing data counts as late: snapshots may be failing, or not running at all.`,
    nextStep: (_db, plan) => `check the snapshot branch of plan ${plan}'s last backup execution and the RDS events, then run \`lifeboat run backup --plan ${plan}\` and \`lifeboat status\`.`,
  },
  'vault-dump': {
    alarm: 'vault-copy-late',
    service: SERVICE_NAMES.vaultCopy,
    metric: METRIC_NAMES.vaultCopySucceeded,
    kind: 'backup-late',
    failure: 'NoVaultCopyWithinRpo',
    what: (db, plans, about, basis) =>
      `No dump of database "${db}" (plan ${plans}) has reached the vault for about ${about} (${basis}). Missing data counts as late: the vault copy may be failing (copier role, vault bucket, route to the vault region), or backups are not running.`,
    nextStep: (_db, plan) => `check the CopyDumpToVault step of plan ${plan}'s last backup execution, then run \`lifeboat run backup --plan ${plan}\` and \`lifeboat status\` (vault copies).`,
  },
  'vault-snapshot': {
    alarm: 'vault-snapshot-late',
    service: SERVICE_NAMES.snapshot,
    metric: METRIC_NAMES.vaultSnapshotCopied,
    kind: 'backup-late',
    failure: 'NoVaultSnapshotCopyWithinRpo',
    what: (db, plans, about, basis) =>
      `No snapshot copy of database "${db}" (plan ${plans}) has become available in the vault for about ${about} (${basis}). Missing data counts as late: sharing or copying into the vault may be failing, or snapshots are not running.`,
    nextStep: (_db, plan) => `check the share and vault-copy steps of plan ${plan}'s last backup execution (keys shared with the vault account, copy quotas), then run \`lifeboat run backup --plan ${plan}\`.`,
  },
  drill: {
    alarm: 'drill-late',
    service: SERVICE_NAMES.drill,
    metric: METRIC_NAMES.drillCompleted,
    kind: 'drill-failed',
    failure: 'NoDrillResult',
    what: (db, _plans, about, basis) =>
      `No restore drill of database "${db}" has reported a result for about ${about} (${basis}). Missing data counts as late: the drill schedule may be disabled or the drill workflow broken, so nothing proves the backups restore.`,
    nextStep: (db) => `check the drill schedule and the last drill execution, then run \`lifeboat run drill --database ${db}\` and \`lifeboat status\`.`,
  },
};

/**
 * `lifeboat/<name>/pitr-lag/<db>`: the newest restorable moment has stayed
 * more than maxLagMinutes behind now for a whole PITR_LAG_ALARM_PERIOD (or
 * nothing was published), routed as a pitr-posture alert.
 */
function pitrLagAlarm(scope: Construct, deploymentName: string, databaseId: string, pitr: NonNullable<MonitoredDatabase['pitr']>): cloudwatch.Alarm {
  const plans = pitr.planIds.join(', ');
  return new cloudwatch.Alarm(scope, `pitr-lag-${databaseId}`, {
    alarmName: routedAlarmName(deploymentName, 'pitr-lag', databaseId),
    alarmDescription: alarmDescription(
      `The newest restorable moment of database "${databaseId}" (plan ${plans}) has stayed more than ${pitr.maxLagMinutes} min behind now (pitr.maxLagMinutes) for ${PITR_LAG_ALARM_PERIOD.toMinutes()} min, ` +
        'or its lag was not published (missing data counts as late: the lag watch may be failing, or cannot read the database): its point-in-time RPO is at risk.',
      {
        kind: 'pitr-posture',
        failure: 'PitrLagOverTarget',
        databaseId,
        planId: pitr.planIds[0],
        nextStep: `run \`lifeboat pitr status --database ${databaseId}\`: it names the lag, the instance's state and the fix (docs/runbooks.md, "PITR posture drift").`,
      },
    ),
    metric: databaseMetric(SERVICE_NAMES.pitr, METRIC_NAMES.pitrRestorableLagSeconds, databaseId, PITR_LAG_ALARM_PERIOD, cloudwatch.Stats.MINIMUM),
    threshold: pitr.maxLagMinutes * 60,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    treatMissingData: cloudwatch.TreatMissingData.BREACHING,
  });
}

/**
 * `lifeboat/<name>/pitr-replica-lag/<db>`: the newest restorable moment of the
 * automated backups replicated to the copy region has stayed more than
 * maxLagMinutes (plus REPLICA_LAG_ALLOWANCE_MINUTES, none) behind now for a
 * whole PITR_LAG_ALARM_PERIOD, or nothing was published (no replica, not
 * replicating, or not read), routed as a pitr-posture alert. Same period,
 * statistic and missing-data handling as the pitr-lag alarm.
 */
function pitrReplicaLagAlarm(scope: Construct, deploymentName: string, databaseId: string, replica: NonNullable<NonNullable<MonitoredDatabase['pitr']>['replica']>): cloudwatch.Alarm {
  const plans = replica.planIds.join(', ');
  return new cloudwatch.Alarm(scope, `pitr-replica-lag-${databaseId}`, {
    alarmName: routedAlarmName(deploymentName, 'pitr-replica-lag', databaseId),
    alarmDescription: alarmDescription(
      `The newest restorable moment of database "${databaseId}" in the copy region ${replica.copyRegion} (its replicated automated backups, plan ${plans}) has stayed more than ${replica.maxLagMinutes} min behind now (pitr.maxLagMinutes) for ${PITR_LAG_ALARM_PERIOD.toMinutes()} min, ` +
        'or its replica lag was not published (missing data counts as late: no replica, not replicating, or the lag watch cannot read it): if the source region is lost, that is all that can be restored.',
      {
        kind: 'pitr-posture',
        failure: 'PitrReplicaLagOverTarget',
        databaseId,
        planId: replica.planIds[0],
        nextStep: `run \`lifeboat pitr status --database ${databaseId}\`: it names the copy region's lag, the replication's state and the fix (docs/runbooks.md, "PITR posture drift").`,
      },
    ),
    metric: databaseMetric(SERVICE_NAMES.pitr, METRIC_NAMES.pitrReplicaLagSeconds, databaseId, PITR_LAG_ALARM_PERIOD, cloudwatch.Stats.MINIMUM),
    threshold: replicaMaxLagSeconds({ maxLagMinutes: replica.maxLagMinutes }),
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    treatMissingData: cloudwatch.TreatMissingData.BREACHING,
  });
}

/** Per-database staleness alarms (FRESHNESS_ALARMS), routed to the alert function by name like every lifeboat alarm. */
export class FreshnessAlarms extends Construct {
  /** Kind → database id → alarm. */
  public readonly alarms = new Map<FreshnessKind, Map<string, cloudwatch.Alarm>>();

  /** Database id → its PITR lag alarm (databases of plans with `pitr`). */
  public readonly pitrLag = new Map<string, cloudwatch.Alarm>();

  /** Database id → its copy-region replica lag alarm (instances of plans with `pitr.copyRegion`). */
  public readonly pitrReplicaLag = new Map<string, cloudwatch.Alarm>();

  constructor(scope: Construct, id: string, props: DatabaseAlarmsProps) {
    super(scope, id);
    for (const database of props.databases) {
      if (database.pitr) this.pitrLag.set(database.id, pitrLagAlarm(this, props.deploymentName, database.id, database.pitr));
      if (database.pitr?.replica) this.pitrReplicaLag.set(database.id, pitrReplicaLagAlarm(this, props.deploymentName, database.id, database.pitr.replica));
      for (const watch of database.freshness ?? []) {
        const spec = FRESHNESS_ALARMS[watch.kind];
        const plans = watch.planIds.join(', ');
        const alarm = stalenessAlarm(this, `${spec.alarm}-${database.id}`, {
          alarmName: routedAlarmName(props.deploymentName, spec.alarm, database.id),
          windowMinutes: watch.windowMinutes,
          metric: (period) => databaseMetric(spec.service, spec.metric, database.id, period),
          describe: (about) => spec.what(database.id, plans, about, watch.basis),
          metadata: { kind: spec.kind, failure: spec.failure, databaseId: database.id, planId: watch.planIds[0], nextStep: spec.nextStep(database.id, watch.planIds[0] ?? '') },
        });
        if (!this.alarms.has(watch.kind)) this.alarms.set(watch.kind, new Map());
        this.alarms.get(watch.kind)!.set(database.id, alarm);
      }
    }
  }
}

export interface DatabaseAlarmsProps {
  readonly deploymentName: string;
  readonly databases: readonly MonitoredDatabase[];
}

/**
 * Per-database alarms, routed to the alert function by name (AlarmRouting):
 *
 * - the dead man's switch (`lifeboat/<name>/backup-late/<db>`): no
 *   `BackupSucceeded` data point for the database in a window sized from its
 *   RPO. Missing data counts as breaching, so a dump that silently stops
 *   running (schedule deleted, state machine broken, runner crashing before it
 *   reports) fires it just like a failing one;
 * - optionally (`addDrillObjectiveAlarms`), a measured RTO or RPO over target.
 */
export class DatabaseAlarms extends Construct {
  /** Database id → its dead man's switch. */
  public readonly backupLate = new Map<string, cloudwatch.Alarm>();
  /** Database id → its drill objective alarm (after addDrillObjectiveAlarms). */
  public readonly objectiveMissed = new Map<string, cloudwatch.Alarm>();
  private readonly props: DatabaseAlarmsProps;

  constructor(scope: Construct, id: string, props: DatabaseAlarmsProps) {
    super(scope, id);
    this.props = props;
    for (const database of props.databases) {
      if (!database.deadMansSwitch) continue;
      const window = deadMansSwitchWindow(database.rpoMinutes);
      if (!window) {
        throw new Error(
          `Database "${database.id}": RPO ${database.rpoMinutes} min is longer than the ${MAX_DEAD_MANS_SWITCH_RPO_MINUTES} min a dead man's switch on BackupSucceeded can watch (CloudWatch's 7-day evaluation range).`,
        );
      }
      const period = Duration.seconds(window.periodSeconds);
      const range = window.periodSeconds * window.evaluationPeriods;
      const plans = database.planIds.join(', ');
      this.backupLate.set(
        database.id,
        new cloudwatch.Alarm(this, `BackupLate-${database.id}`, {
          alarmName: routedAlarmName(props.deploymentName, 'backup-late', database.id),
          alarmDescription: alarmDescription(
            `No dump of database "${database.id}" (plan ${plans}) has succeeded for about ${describeDuration(range)}; its RPO is ${describeDuration(database.rpoMinutes * 60)}. ` +
              `Missing data counts as late: the backup may be failing, or not running at all.`,
            {
              kind: 'backup-late',
              failure: 'NoBackupWithinRpo',
              databaseId: database.id,
              planId: database.planIds[0],
              nextStep: `check the last backup execution and the schedule of plan ${plans}, then run \`lifeboat run backup --plan ${database.planIds[0]}\` and \`lifeboat status\`.`,
            },
          ),
          metric: backupSucceededMetric(database.id, period),
          threshold: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: window.evaluationPeriods,
          datapointsToAlarm: window.evaluationPeriods,
          treatMissingData: cloudwatch.TreatMissingData.BREACHING,
        }),
      );
    }
  }

  /**
   * Hook for the drill workflow: an alarm per database when a drill reports
   * `DrillObjectiveMissed` = 1 (measured RTO or RPO over the plan's target).
   * Missing data is not breaching: the metric comes only with a measured
   * drill. A drill that stops running is the `drill-late` staleness alarm's
   * business (FRESHNESS_ALARMS.drill, on DrillCompleted).
   *
   * @param serviceName POWERTOOLS_SERVICE_NAME of the function that publishes the drill metrics
   */
  public addDrillObjectiveAlarms(serviceName: string = SERVICE_NAMES.drill): void {
    for (const database of this.props.databases) {
      if (this.objectiveMissed.has(database.id)) continue;
      this.objectiveMissed.set(
        database.id,
        new cloudwatch.Alarm(this, `ObjectiveMissed-${database.id}`, {
          alarmName: routedAlarmName(this.props.deploymentName, 'objective-missed', database.id),
          alarmDescription: alarmDescription(
            `A restore drill of database "${database.id}" measured an RTO or RPO over target (RTO target ${database.rtoMinutes} min, RPO target ${database.rpoMinutes} min).`,
            {
              kind: 'objective-missed',
              failure: 'DrillObjectiveMissed',
              databaseId: database.id,
              planId: database.planIds[0],
              nextStep: 'compare the measured values with the targets in `lifeboat status`, then speed up the restore (instance class, parallel restore) or revise the target.',
            },
          ),
          metric: new cloudwatch.Metric({
            namespace: METRICS_NAMESPACE,
            metricName: METRIC_NAMES.drillObjectiveMissed,
            dimensionsMap: { [DIMENSIONS.service]: serviceName, [DIMENSIONS.database]: database.id },
            statistic: cloudwatch.Stats.MAXIMUM,
            period: Duration.hours(1),
          }),
          threshold: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      );
    }
  }
}

/**
 * Shards for per-database resources. A CloudFormation stack holds at most 500
 * resources, so per-database alarms live in nested stacks: a database's shard
 * comes from a hash of its id, so it never moves when others are added or
 * removed (an alarm with a fixed name cannot move between stacks in one update).
 */
export const ALARM_SHARDS = 8;
/** Databases per shard before synth refuses (2 alarms each stays far below 500 resources). */
export const MAX_DATABASES_PER_SHARD = 200;
/**
 * Shards of the staleness alarms (`FreshnessAlarms<shard>`: up to 4 per
 * database, plus the PITR lag alarms, 2 with pitr.copyRegion), apart from the
 * dead man's switch shards so those never move. 16 shards of at most 500
 * resources hold about 1,300 databases with every alarm.
 */
export const FRESHNESS_SHARDS = 16;
/** CloudFormation's resource limit per stack (nested stacks included). */
export const MAX_RESOURCES_PER_STACK = 500;

/** Synth fails when a nested alarm stack would exceed CloudFormation's 500 resources, naming the stack and the way out. */
function limitResources(stack: NestedStack, what: string): void {
  stack.node.addValidation({
    validate: () => {
      const resources = stack.node.findAll().filter((c) => c instanceof CfnResource).length;
      return resources > MAX_RESOURCES_PER_STACK
        ? [`${what} holds ${resources} resources; CloudFormation allows ${MAX_RESOURCES_PER_STACK} per stack. Split the databases over more sources, or raise the shard count in infra/constructs/database-alarms.ts (alarms then move: deploy into a fresh stack).`]
        : [];
    },
  });
}

/** FNV-1a: a stable, well-spread shard for a database id. */
export function shardOf(databaseId: string, shards: number = ALARM_SHARDS): number {
  let hash = 0x811c9dc5;
  for (const char of databaseId) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shards;
}

export interface ShardedDatabaseAlarmsProps extends DatabaseAlarmsProps {
  /** @default ALARM_SHARDS */
  readonly shards?: number;
  /** @default FRESHNESS_SHARDS */
  readonly freshnessShards?: number;
}

/** DatabaseAlarms for any number of databases, in nested stacks `DatabaseAlarms<shard>`. */
export class ShardedDatabaseAlarms extends Construct {
  /** Shard number → the nested stack and its alarms (only non-empty shards exist). */
  public readonly shards = new Map<number, { stack: NestedStack; alarms: DatabaseAlarms }>();
  /** Shard number → the nested stack of staleness alarms (only shards with alarms exist). */
  public readonly freshnessShards = new Map<number, { stack: NestedStack; alarms: FreshnessAlarms }>();

  constructor(scope: Construct, id: string, props: ShardedDatabaseAlarmsProps) {
    super(scope, id);
    const count = props.shards ?? ALARM_SHARDS;
    const byShard = new Map<number, MonitoredDatabase[]>();
    for (const database of props.databases) {
      const shard = shardOf(database.id, count);
      byShard.set(shard, [...(byShard.get(shard) ?? []), database]);
    }
    for (const [shard, databases] of [...byShard].sort(([a], [b]) => a - b)) {
      if (databases.length > MAX_DATABASES_PER_SHARD) {
        throw new Error(
          `${databases.length} databases hash to alarm shard ${shard} (limit ${MAX_DATABASES_PER_SHARD}); split the databases over more sources or raise ALARM_SHARDS in infra/constructs/database-alarms.ts.`,
        );
      }
      const stack = new NestedStack(this, `DatabaseAlarms${shard}`, {
        description: `lifeboat ${props.deploymentName}: per-database alarms, shard ${shard} of ${count}.`,
      });
      limitResources(stack, `Nested stack DatabaseAlarms${shard}`);
      this.shards.set(shard, { stack, alarms: new DatabaseAlarms(stack, 'Alarms', { deploymentName: props.deploymentName, databases }) });
    }
    const freshnessCount = props.freshnessShards ?? FRESHNESS_SHARDS;
    const watched = new Map<number, MonitoredDatabase[]>();
    for (const database of props.databases.filter((d) => (d.freshness ?? []).length > 0 || d.pitr)) {
      const shard = shardOf(database.id, freshnessCount);
      watched.set(shard, [...(watched.get(shard) ?? []), database]);
    }
    for (const [shard, databases] of [...watched].sort(([a], [b]) => a - b)) {
      const stack = new NestedStack(this, `FreshnessAlarms${shard}`, {
        description: `lifeboat ${props.deploymentName}: per-database snapshot, vault copy, drill staleness and PITR lag alarms, shard ${shard} of ${freshnessCount}.`,
      });
      limitResources(stack, `Nested stack FreshnessAlarms${shard}`);
      this.freshnessShards.set(shard, { stack, alarms: new FreshnessAlarms(stack, 'Alarms', { deploymentName: props.deploymentName, databases }) });
    }
  }

  /** Every staleness alarm of one kind, by database id. */
  public staleness(kind: FreshnessKind): Map<string, cloudwatch.Alarm> {
    return new Map([...this.freshnessShards.values()].flatMap(({ alarms }) => [...(alarms.alarms.get(kind) ?? [])]));
  }

  /** Every PITR lag alarm, by database id. */
  public get pitrLag(): Map<string, cloudwatch.Alarm> {
    return new Map([...this.freshnessShards.values()].flatMap(({ alarms }) => [...alarms.pitrLag]));
  }

  /** Every copy-region replica lag alarm, by database id. */
  public get pitrReplicaLag(): Map<string, cloudwatch.Alarm> {
    return new Map([...this.freshnessShards.values()].flatMap(({ alarms }) => [...alarms.pitrReplicaLag]));
  }

  /** Every database's dead man's switch. */
  public get backupLate(): Map<string, cloudwatch.Alarm> {
    return new Map([...this.shards.values()].flatMap(({ alarms }) => [...alarms.backupLate]));
  }

  /** See DatabaseAlarms.addDrillObjectiveAlarms. */
  public addDrillObjectiveAlarms(serviceName?: string): void {
    for (const { alarms } of this.shards.values()) alarms.addDrillObjectiveAlarms(serviceName);
  }
}
