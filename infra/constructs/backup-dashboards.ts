import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { DIMENSIONS, METRICS_NAMESPACE, METRIC_NAMES, SERVICE_NAMES, type MetricName } from '../../functions/lib/metrics/names.ts';
import { routedAlarmPrefix } from '../alarm-names.ts';
import { PITR_LAG_ALARM_PERIOD } from './database-alarms.ts';

/** A plan as its dashboard shows it. */
export interface DashboardPlan {
  readonly id: string;
  readonly rpoMinutes: number;
  readonly rtoMinutes: number;
  /** The plan's databases in this source, in plan order. */
  readonly databaseIds: readonly string[];
  /**
   * The plan's `pitr` section: its dashboard graphs the PITR RPO
   * (PitrRestorableLagSeconds) and window (PitrWindowSeconds) the posture
   * function publishes for the selected database.
   * @default - no PITR graphs
   */
  readonly pitr?: DashboardPitr;
}

export interface DashboardPitr {
  /** pitr.windowDays: the window the plan wants. */
  readonly windowDays: number;
  /**
   * Database id -> the threshold of its pitr-lag alarm, in minutes (the
   * tightest maxLagMinutes of its pitr plans): the plan's databases the lag
   * watch publishes for (those with an RDS instance or cluster).
   */
  readonly lagAlarmMinutes: Readonly<Record<string, number>>;
}

export interface BackupDashboardsProps {
  readonly deploymentName: string;
  readonly plans: readonly DashboardPlan[];
  /** Stack-level alarms for the overview's status widget (state machines, alert path). */
  readonly alarms: readonly cloudwatch.IAlarm[];
  /** Service dimension of the drill metrics. @default SERVICE_NAMES.drill */
  readonly drillServiceName?: string;
  /** Time range a dashboard opens with. @default 14 days */
  readonly defaultRange?: Duration;
}

const HOUR = Duration.hours(1);
const DAY = Duration.days(1);

function metric(name: MetricName, service: string, databaseId: string, statistic: string, period: Duration, label: string): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName: name,
    dimensionsMap: { [DIMENSIONS.service]: service, [DIMENSIONS.database]: databaseId },
    statistic,
    period,
    label,
  });
}

/**
 * The PITR metrics of one database, with the exact identity the posture
 * function emits (namespace, name, dimensions service=lifeboat-pitr and
 * database): the lag as the pitr-lag alarm reads it (Minimum per
 * PITR_LAG_ALARM_PERIOD) and its 5-minute peak, and the window.
 */
export function pitrLagMetric(databaseId: string, statistic: string, period: Duration, label: string): cloudwatch.Metric {
  return metric(METRIC_NAMES.pitrRestorableLagSeconds, SERVICE_NAMES.pitr, databaseId, statistic, period, label);
}
export function pitrWindowMetric(databaseId: string, period: Duration, label: string): cloudwatch.Metric {
  return metric(METRIC_NAMES.pitrWindowSeconds, SERVICE_NAMES.pitr, databaseId, 'Minimum', period, label);
}

/** One red line per distinct pitr-lag alarm threshold (minutes), naming its databases when they differ. */
function lagAlarmAnnotations(lagAlarmMinutes: Readonly<Record<string, number>>): cloudwatch.HorizontalAnnotation[] {
  const byThreshold = new Map<number, string[]>();
  for (const [databaseId, minutes] of Object.entries(lagAlarmMinutes)) byThreshold.set(minutes, [...(byThreshold.get(minutes) ?? []), databaseId]);
  const named = (ids: string[]) => (ids.length <= 3 ? ids.join(', ') : `${ids.slice(0, 3).join(', ')} and ${ids.length - 3} more`);
  return [...byThreshold]
    .sort(([a], [b]) => a - b)
    .map(([minutes, ids]) => ({ value: minutes, label: byThreshold.size === 1 ? `pitr-lag alarm: over ${minutes} min` : `pitr-lag alarm: over ${minutes} min (${named(ids)})`, color: cloudwatch.Color.RED }));
}

/**
 * Hours since the newest data point of a success count, as a line: EPOCH gives
 * each point's timestamp, FILL(..., REPEAT) carries the last success forward.
 * It is computed over the dashboard's time range, so the line starts at the
 * first success in view.
 */
export function ageInHours(successes: cloudwatch.IMetric, label: string): cloudwatch.MathExpression {
  return new cloudwatch.MathExpression({
    expression: '(EPOCH(FILL(s, 0)) - FILL(EPOCH(s), REPEAT)) / 3600',
    usingMetrics: { s: successes },
    label,
    period: HOUR,
  });
}

/**
 * The CloudWatch dashboards of one source stack, a constant number of
 * resources and widgets whatever the fleet size (a dashboard holds at most 500
 * widgets):
 *
 * - `<name>-lifeboat-overview`: alarm status of the stack-level alarms, a link
 *   to every routed alarm, and fleet graphs (failures, successes, stored
 *   bytes per database) built with SEARCH;
 * - `<name>-lifeboat-plan-<plan>`, one per plan: a `database` selector (a
 *   dashboard property variable) and, for the selected database, the age of
 *   the newest backup and of the newest proven restore against the RPO, the
 *   drill RTO and RPO trends against their targets, backup size and duration,
 *   and failures. The targets are the plan's, so they can be drawn as
 *   horizontal annotations.
 */
export class BackupDashboards extends Construct {
  public readonly overview: cloudwatch.Dashboard;
  /** Plan id → its dashboard. */
  public readonly plans = new Map<string, cloudwatch.Dashboard>();

  constructor(scope: Construct, id: string, props: BackupDashboardsProps) {
    super(scope, id);
    const name = props.deploymentName;
    const range = `-PT${(props.defaultRange ?? Duration.days(14)).toHours()}H`;
    const region = Stack.of(this).region;
    const drill = props.drillServiceName ?? SERVICE_NAMES.drill;

    this.overview = new cloudwatch.Dashboard(this, 'Overview', {
      dashboardName: `${name}-lifeboat-overview`,
      start: range,
    });
    const alarmsUrl = `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#alarmsV2:?search=${encodeURIComponent(routedAlarmPrefix(name))}`;
    this.overview.addWidgets(
      new cloudwatch.TextWidget({
        markdown:
          `# lifeboat ${name}: backups and drills\n` +
          `Per-database views: the \`${name}-lifeboat-plan-<plan>\` dashboards. ` +
          `Every lifeboat alarm (late backups per database, failed runs): [alarms named ${routedAlarmPrefix(name)}](${alarmsUrl}). ` +
          'Run `lifeboat status` for the inventory and the last proven restore of each database.',
        width: 24,
        height: 2,
      }),
    );
    if (props.alarms.length > 0) {
      this.overview.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Runs and alert path', alarms: [...props.alarms], width: 24, height: 3 }));
    }
    const search = (metricName: MetricName, service: string, statistic: string, period: Duration, label: string) =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{${METRICS_NAMESPACE},${DIMENSIONS.database},${DIMENSIONS.service}} MetricName="${metricName}" ${DIMENSIONS.service}="${service}"', '${statistic}', ${period.toSeconds()})`,
        label,
        period,
      });
    const pitrPlans = props.plans.filter((p): p is DashboardPlan & { pitr: DashboardPitr } => p.pitr !== undefined);
    if (pitrPlans.length > 0) {
      // Every database the lag watch publishes for, at once (SEARCH); the plan dashboards show one database with its targets.
      const thresholds = Object.assign({}, ...pitrPlans.map((p) => p.pitr.lagAlarmMinutes)) as Record<string, number>;
      this.overview.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'PITR RPO per database: newest restorable moment behind now (minutes, Minimum per 10 min as the pitr-lag alarms read it)',
          left: [
            new cloudwatch.MathExpression({
              expression: 'lagSeconds / 60',
              usingMetrics: { lagSeconds: search(METRIC_NAMES.pitrRestorableLagSeconds, SERVICE_NAMES.pitr, 'Minimum', PITR_LAG_ALARM_PERIOD, '') },
              label: '',
              period: PITR_LAG_ALARM_PERIOD,
            }),
          ],
          leftAnnotations: lagAlarmAnnotations(thresholds),
          leftYAxis: { min: 0, showUnits: false },
          width: 12,
          height: 6,
        }),
        new cloudwatch.GraphWidget({
          title: 'PITR window per database (days)',
          left: [
            new cloudwatch.MathExpression({
              expression: 'windowSeconds / 86400',
              usingMetrics: { windowSeconds: search(METRIC_NAMES.pitrWindowSeconds, SERVICE_NAMES.pitr, 'Minimum', HOUR, '') },
              label: '',
              period: HOUR,
            }),
          ],
          leftYAxis: { min: 0, showUnits: false },
          width: 12,
          height: 6,
        }),
      );
    }
    this.overview.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Failed backups per database (per day)',
        left: [search(METRIC_NAMES.backupFailed, SERVICE_NAMES.dump, 'Sum', DAY, '')],
        view: cloudwatch.GraphWidgetView.BAR,
        width: 12,
        height: 6,
      }),
      new cloudwatch.GraphWidget({
        title: 'Failed drills per database (per day)',
        left: [search(METRIC_NAMES.drillFailed, drill, 'Sum', DAY, '')],
        view: cloudwatch.GraphWidgetView.BAR,
        width: 12,
        height: 6,
      }),
      new cloudwatch.GraphWidget({
        title: 'Committed backups per database (per day)',
        left: [search(METRIC_NAMES.backupSucceeded, SERVICE_NAMES.dump, 'Sum', DAY, '')],
        width: 12,
        height: 6,
      }),
      new cloudwatch.GraphWidget({
        title: 'Stored backup size per database (bytes)',
        left: [search(METRIC_NAMES.backupStoredBytes, SERVICE_NAMES.dump, 'Maximum', DAY, '')],
        width: 12,
        height: 6,
      }),
    );

    for (const plan of props.plans) {
      const first = plan.databaseIds[0];
      if (first === undefined) continue;
      const dashboard = new cloudwatch.Dashboard(this, `Plan-${plan.id}`, {
        dashboardName: `${name}-lifeboat-plan-${plan.id}`,
        start: range,
        variables: [
          new cloudwatch.DashboardVariable({
            id: 'database',
            label: 'Database',
            type: cloudwatch.VariableType.PROPERTY,
            inputType: cloudwatch.VariableInputType.SELECT,
            value: DIMENSIONS.database,
            values: cloudwatch.Values.fromValues(...plan.databaseIds.map((id) => ({ value: id, label: id }))),
            defaultValue: cloudwatch.DefaultValue.value(first),
            visible: true,
          }),
        ],
      });
      const rpoHours = plan.rpoMinutes / 60;
      dashboard.addWidgets(
        new cloudwatch.TextWidget({
          markdown:
            `# Plan ${plan.id}: RPO ${plan.rpoMinutes} min, RTO ${plan.rtoMinutes} min${plan.pitr ? `, PITR window ${plan.pitr.windowDays} d` : ''}\n` +
            'Pick the database in the **Database** selector above. Ages count from the newest success inside the time range shown.' +
            (plan.pitr ? ' PITR graphs: the point-in-time window and RPO of databases with an RDS instance or cluster, published every 5 minutes by the lag watch.' : ''),
          width: 24,
          height: 2,
        }),
      );
      dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'Age of the newest backup (hours)',
          left: [ageInHours(metric(METRIC_NAMES.backupSucceeded, SERVICE_NAMES.dump, first, 'Sum', HOUR, 'successes'), 'hours since the last committed dump')],
          leftAnnotations: [{ value: rpoHours, label: `RPO ${plan.rpoMinutes} min`, color: cloudwatch.Color.RED }],
          leftYAxis: { min: 0, showUnits: false },
          width: 12,
          height: 6,
        }),
        new cloudwatch.GraphWidget({
          title: 'Age of the newest proven restore (hours)',
          left: [ageInHours(metric(METRIC_NAMES.drillSucceeded, drill, first, 'Sum', HOUR, 'drills passed'), 'hours since the last passed drill')],
          leftYAxis: { min: 0, showUnits: false },
          width: 12,
          height: 6,
        }),
        objectiveWidget('RTO', metric(METRIC_NAMES.drillRtoSeconds, drill, first, 'Maximum', DAY, 'RTO'), plan.rtoMinutes),
        objectiveWidget('RPO', metric(METRIC_NAMES.drillRpoSeconds, drill, first, 'Maximum', DAY, 'RPO'), plan.rpoMinutes),
        new cloudwatch.GraphWidget({
          title: 'Backup size',
          left: [metric(METRIC_NAMES.backupStoredBytes, SERVICE_NAMES.dump, first, 'Maximum', DAY, 'stored bytes')],
          right: [metric(METRIC_NAMES.backupDurationSeconds, SERVICE_NAMES.dump, first, 'Maximum', DAY, 'dump duration (s)')],
          leftYAxis: { min: 0 },
          rightYAxis: { min: 0 },
          width: 12,
          height: 6,
        }),
        new cloudwatch.GraphWidget({
          title: 'Failures (per day)',
          left: [
            metric(METRIC_NAMES.backupFailed, SERVICE_NAMES.dump, first, 'Sum', DAY, 'failed backups'),
            metric(METRIC_NAMES.drillFailed, drill, first, 'Sum', DAY, 'failed drills'),
            metric(METRIC_NAMES.drillObjectiveMissed, drill, first, 'Maximum', DAY, 'objective missed'),
          ],
          view: cloudwatch.GraphWidgetView.BAR,
          leftYAxis: { min: 0 },
          width: 12,
          height: 6,
        }),
      );
      if (plan.pitr) dashboard.addWidgets(...pitrWidgets(first, plan.pitr));
      this.plans.set(plan.id, dashboard);
    }
  }
}

/** A drill objective (measured seconds, shown in minutes) against its target line. */
function objectiveWidget(objective: 'RTO' | 'RPO', seconds: cloudwatch.IMetric, targetMinutes: number): cloudwatch.GraphWidget {
  return new cloudwatch.GraphWidget({
    title: `Drill ${objective} (minutes) against target`,
    left: [new cloudwatch.MathExpression({ expression: 'seconds / 60', usingMetrics: { seconds }, label: `measured ${objective}`, period: DAY })],
    leftAnnotations: [{ value: targetMinutes, label: `${objective} target ${targetMinutes} min`, color: cloudwatch.Color.RED }],
    leftYAxis: { min: 0, showUnits: false },
    width: 12,
    height: 6,
  });
}

/**
 * The selected database's PITR RPO (minutes) against its pitr-lag alarm's
 * threshold, and its point-in-time window (days) against pitr.windowDays.
 */
function pitrWidgets(databaseId: string, pitr: DashboardPitr): cloudwatch.GraphWidget[] {
  const FIVE_MINUTES = Duration.minutes(5);
  return [
    new cloudwatch.GraphWidget({
      title: 'PITR RPO: newest restorable moment behind now (minutes)',
      left: [
        new cloudwatch.MathExpression({
          expression: 'lagMin / 60',
          usingMetrics: { lagMin: pitrLagMetric(databaseId, cloudwatch.Stats.MINIMUM, PITR_LAG_ALARM_PERIOD, 'lag') },
          label: `PITR RPO (Minimum per ${PITR_LAG_ALARM_PERIOD.toMinutes()} min, as the alarm reads it)`,
          period: PITR_LAG_ALARM_PERIOD,
        }),
        new cloudwatch.MathExpression({
          expression: 'lagMax / 60',
          usingMetrics: { lagMax: pitrLagMetric(databaseId, cloudwatch.Stats.MAXIMUM, FIVE_MINUTES, 'lag') },
          label: 'PITR RPO (Maximum per 5 min: log shipping\'s sawtooth)',
          period: FIVE_MINUTES,
        }),
      ],
      leftAnnotations: lagAlarmAnnotations(pitr.lagAlarmMinutes),
      leftYAxis: { min: 0, showUnits: false },
      width: 12,
      height: 6,
    }),
    new cloudwatch.GraphWidget({
      title: 'PITR window: oldest to newest restorable moment (days)',
      left: [
        new cloudwatch.MathExpression({
          expression: 'window / 86400',
          usingMetrics: { window: pitrWindowMetric(databaseId, HOUR, 'window') },
          label: 'window RDS keeps (Minimum per hour)',
          period: HOUR,
        }),
      ],
      leftAnnotations: [{ value: pitr.windowDays, label: `pitr.windowDays ${pitr.windowDays} d`, color: cloudwatch.Color.RED }],
      leftYAxis: { min: 0, showUnits: false },
      width: 12,
      height: 6,
    }),
  ];
}
