import { Duration, NestedStack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { alarmDescription } from '../../functions/alert/alarm-event.ts';
import { DIMENSIONS, METRICS_NAMESPACE, METRIC_NAMES, SERVICE_NAMES } from '../../functions/lib/metrics/names.ts';
import { routedAlarmName } from '../alarm-names.ts';

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
}

/** The dump's success metric for one database: namespace and dimensions exactly as Powertools emits them. */
export function backupSucceededMetric(databaseId: string, period: Duration): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName: METRIC_NAMES.backupSucceeded,
    dimensionsMap: { [DIMENSIONS.service]: SERVICE_NAMES.dump, [DIMENSIONS.database]: databaseId },
    statistic: cloudwatch.Stats.SUM,
    period,
  });
}

function describeDuration(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  return `${Math.round(seconds / 60)} min`;
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
   * Missing data is not breaching: a drill that stops running is the drill
   * schedule's failure alarm's business.
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
}

/** DatabaseAlarms for any number of databases, in nested stacks `DatabaseAlarms<shard>`. */
export class ShardedDatabaseAlarms extends Construct {
  /** Shard number → the nested stack and its alarms (only non-empty shards exist). */
  public readonly shards = new Map<number, { stack: NestedStack; alarms: DatabaseAlarms }>();

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
      this.shards.set(shard, { stack, alarms: new DatabaseAlarms(stack, 'Alarms', { deploymentName: props.deploymentName, databases }) });
    }
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
