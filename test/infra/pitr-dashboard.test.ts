import { beforeAll, describe, expect, it } from 'vitest';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DeploymentConfig } from '../../functions/lib/config/deployment.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { METRIC_NAMES, SERVICE_NAMES } from '../../functions/lib/metrics/names.ts';
import { createPitrHandler } from '../../functions/pitr/handler.ts';
import { localLambdaContext } from '../../functions/shared/lambda-context.ts';
import { capturingOutput } from '../harness/capture.ts';
import { emfMetrics, type EmfMetric } from '../harness/emf.ts';
import { scriptedRds } from '../harness/scripted-rds.ts';
import { logicalIdOf, synthApp, type Synthesized } from './helpers/app.ts';
import { productionConfigJson } from './helpers/configs.ts';
import { resourcesOfType, templatesIn } from './helpers/templates.ts';

/**
 * Issue 13, must-show 7: the dashboards show the point-in-time window and the
 * PITR RPO per database. Each pitr plan's dashboard graphs the selected
 * database's PitrRestorableLagSeconds against its pitr-lag alarm's threshold
 * and its PitrWindowSeconds against pitr.windowDays; the overview graphs every
 * database's. A graph that names another metric identity (namespace, name,
 * dimension set) shows nothing, so the widgets are compared with what the
 * posture function, configured as synthesized, actually emits.
 */
type MetricRow = Array<string | Record<string, unknown>>;
interface Widget {
  type: string;
  properties: { title?: string; markdown?: string; metrics?: MetricRow[]; annotations?: { horizontal?: Array<{ value: number; label: string }> } };
}

/** The production config plus two pitr plans: orders is in both (its alarm takes the tighter 10 min), billing is Aurora. */
function config(): Record<string, unknown> {
  const json = productionConfigJson() as Record<string, unknown> & { plans: Array<Record<string, unknown>> };
  json.plans.push(
    { id: 'pitr-local', schedule: { cron: 'cron(30 3 * * ? *)' }, databases: ['orders', 'billing'], rpoMinutes: 1440, rtoMinutes: 120, pitr: { windowDays: 7, maxLagMinutes: 20 } },
    { id: 'pitr-tight', schedule: { cron: 'cron(45 3 * * ? *)' }, databases: ['reports', 'orders'], rpoMinutes: 1440, rtoMinutes: 120, pitr: { windowDays: 14, maxLagMinutes: 10 } },
  );
  return json;
}

let synthesized: Synthesized;
let dashboards: Map<string, { widgets: Widget[]; variables: Array<Record<string, unknown>> }>;
let alarms: Map<string, Record<string, unknown>>;
let emitted: EmfMetric[];

/** A dashboard body is JSON joined around region tokens. */
function parseBody(body: unknown): { widgets: Widget[]; variables: Array<Record<string, unknown>> } {
  const text = typeof body === 'string' ? body : (body as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1].map((p) => (typeof p === 'string' ? p : 'eu-west-1')).join('');
  const parsed = JSON.parse(text) as { widgets: Widget[]; variables?: Array<Record<string, unknown>> };
  return { widgets: parsed.widgets, variables: parsed.variables ?? [] };
}

/** A graph's plain metric rows as identities: [namespace, name, ...dimension pairs, options]. */
function identities(widget: Widget): Array<{ namespace: string; name: string; dimensions: Array<[string, string]>; options: Record<string, unknown> }> {
  return (widget.properties.metrics ?? [])
    .filter((row) => typeof row[0] === 'string')
    .map((row) => {
      const options = (typeof row.at(-1) === 'object' ? row.at(-1) : {}) as Record<string, unknown>;
      const plain = row.filter((c): c is string => typeof c === 'string');
      const [namespace, name, ...rest] = plain;
      const dimensions: Array<[string, string]> = [];
      for (let i = 0; i < rest.length; i += 2) dimensions.push([rest[i]!, rest[i + 1]!]);
      return { namespace: namespace!, name: name!, dimensions, options };
    });
}

const titled = (widgets: Widget[], prefix: string) => widgets.filter((w) => w.properties.title?.startsWith(prefix));
const sortDims = (d: Array<[string, string]>) => [...d].sort(([a], [b]) => a.localeCompare(b));

beforeAll(async () => {
  synthesized = synthApp({ config: config() });
  dashboards = new Map(
    resourcesOfType(templatesIn(synthesized.outdir), 'AWS::CloudWatch::Dashboard').map((d) => [String(d.resource.Properties!.DashboardName), parseBody(d.resource.Properties!.DashboardBody)]),
  );
  alarms = new Map(resourcesOfType(templatesIn(synthesized.outdir), 'AWS::CloudWatch::Alarm').map((a) => [String(a.resource.Properties!.AlarmName), a.resource.Properties!]));

  // What the posture function emits, configured as synthesized (its POWERTOOLS_* environment), for one lag watch.
  const fn = synthesized.template.toJSON().Resources[logicalIdOf(synthesized.stack.pitrFunction.function)] as { Properties: { Environment: { Variables: Record<string, string> } } };
  const env = fn.Properties.Environment.Variables;
  const now = new Date('2026-11-21T12:00:00Z');
  const ago = (minutes: number) => new Date(now.getTime() - minutes * 60_000);
  const { rds } = scriptedRds({
    'orders-prod': { retentionDays: 7, earliest: ago(7 * 1440), latest: ago(3) },
    'reports-prod': { retentionDays: 14, earliest: ago(14 * 1440), latest: ago(4) },
  });
  const handler = createPitrHandler({
    rds,
    // billing is an Aurora cluster the scripted RDS refuses: it publishes nothing, as an unreadable database on AWS.
    config: async () => new DeploymentConfig(parseConfig(config())),
    logger: new Logger({ serviceName: env.POWERTOOLS_SERVICE_NAME, logLevel: 'CRITICAL' }),
    metrics: new Metrics({ namespace: env.POWERTOOLS_METRICS_NAMESPACE, serviceName: env.POWERTOOLS_SERVICE_NAME }),
    now: () => now,
  });
  const { output } = await capturingOutput(() => handler({ action: 'watch' }, localLambdaContext('lifeboat-pitr')));
  emitted = emfMetrics(output);
}, 240_000);

describe('PITR on the dashboards', () => {
  it('the posture function emits both metrics for the databases it can read (the identities the graphs must name)', () => {
    expect(emitted.map((m) => `${m.name}/${m.dimensions.map((d) => d.join('=')).join(',')}`).sort()).toEqual([
      `${METRIC_NAMES.pitrRestorableLagSeconds}/service=${SERVICE_NAMES.pitr},database=orders`,
      `${METRIC_NAMES.pitrRestorableLagSeconds}/service=${SERVICE_NAMES.pitr},database=reports`,
      `${METRIC_NAMES.pitrWindowSeconds}/service=${SERVICE_NAMES.pitr},database=orders`,
      `${METRIC_NAMES.pitrWindowSeconds}/service=${SERVICE_NAMES.pitr},database=reports`,
    ]);
  });

  for (const [plan, databases, windowDays] of [
    ['pitr-local', ['orders', 'billing'], 7],
    ['pitr-tight', ['reports', 'orders'], 14],
  ] as const) {
    it(`plan ${plan}: the selected database's PITR RPO and window, with exactly the metric identities the function emits`, () => {
      const dashboard = dashboards.get(`acme-lifeboat-plan-${plan}`)!;
      expect(dashboard.variables).toEqual([expect.objectContaining({ type: 'property', property: 'database', defaultValue: databases[0] })]);
      const [lag, ...moreLag] = titled(dashboard.widgets, 'PITR RPO');
      const [window, ...moreWindow] = titled(dashboard.widgets, 'PITR window');
      expect(moreLag).toEqual([]);
      expect(moreWindow).toEqual([]);

      // The graphs chart the first database; the selector swaps the `database` dimension's value.
      const shown = databases[0];
      const emittedLag = emitted.find((m) => m.name === METRIC_NAMES.pitrRestorableLagSeconds && m.dimensions.some(([k, v]) => k === 'database' && v === shown))!;
      const emittedWindow = emitted.find((m) => m.name === METRIC_NAMES.pitrWindowSeconds && m.dimensions.some(([k, v]) => k === 'database' && v === shown))!;
      const lagMetrics = identities(lag!);
      expect(lagMetrics.map((m) => m.options.stat)).toEqual(['Minimum', 'Maximum']);
      for (const m of lagMetrics) expect({ namespace: m.namespace, name: m.name, dimensions: sortDims(m.dimensions) }).toEqual({ namespace: emittedLag.namespace, name: emittedLag.name, dimensions: sortDims(emittedLag.dimensions) });
      const [windowMetric, ...otherWindowMetrics] = identities(window!);
      expect(otherWindowMetrics).toEqual([]);
      expect({ namespace: windowMetric!.namespace, name: windowMetric!.name, dimensions: sortDims(windowMetric!.dimensions) }).toEqual({
        namespace: emittedWindow.namespace,
        name: emittedWindow.name,
        dimensions: sortDims(emittedWindow.dimensions),
      });

      // The Minimum line is what the pitr-lag alarm of the shown database reads: same metric, statistic and period.
      const alarm = alarms.get(`lifeboat/acme/pitr-lag/${shown}`)!;
      const alarmDims = sortDims((alarm.Dimensions as Array<{ Name: string; Value: string }>).map((d) => [d.Name, d.Value]));
      expect({ namespace: lagMetrics[0]!.namespace, name: lagMetrics[0]!.name, dimensions: sortDims(lagMetrics[0]!.dimensions), stat: lagMetrics[0]!.options.stat, period: lagMetrics[0]!.options.period }).toEqual({
        namespace: alarm.Namespace,
        name: alarm.MetricName,
        dimensions: alarmDims,
        stat: alarm.Statistic,
        period: alarm.Period,
      });

      // Horizontal annotations: the pitr-lag alarms' thresholds of the plan's databases (minutes), and the window the plan wants (days).
      const thresholds = databases.map((d) => Number(alarms.get(`lifeboat/acme/pitr-lag/${d}`)!.Threshold) / 60);
      expect(lag!.properties.annotations!.horizontal!.map((a) => a.value)).toEqual([...new Set(thresholds)].sort((a, b) => a - b));
      expect(window!.properties.annotations!.horizontal).toEqual([expect.objectContaining({ value: windowDays, label: `pitr.windowDays ${windowDays} d` })]);
      expect(dashboard.widgets.length).toBeLessThanOrEqual(10);
    });
  }

  it('names each database with its threshold when a plan\'s databases alarm at different lags', () => {
    const lag = titled(dashboards.get('acme-lifeboat-plan-pitr-local')!.widgets, 'PITR RPO')[0]!;
    // orders alarms over 10 min (pitr-tight is tighter), billing over 20 min.
    expect(lag.properties.annotations!.horizontal!.map((a) => [a.value, a.label])).toEqual([
      [10, 'pitr-lag alarm: over 10 min (orders)'],
      [20, 'pitr-lag alarm: over 20 min (billing)'],
    ]);
    const tight = titled(dashboards.get('acme-lifeboat-plan-pitr-tight')!.widgets, 'PITR RPO')[0]!;
    expect(tight.properties.annotations!.horizontal!.map((a) => [a.value, a.label])).toEqual([[10, 'pitr-lag alarm: over 10 min']]);
  });

  it('graphs every database\'s PITR RPO and window on the overview, by the emitted identity, and none on plans without pitr', () => {
    const overview = dashboards.get('acme-lifeboat-overview')!;
    const expressions = (prefix: string) => titled(overview.widgets, prefix).flatMap((w) => (w.properties.metrics ?? []).map((row) => row[0] as { expression: string; id: string; visible?: boolean }));
    const emittedLag = emitted.find((m) => m.name === METRIC_NAMES.pitrRestorableLagSeconds)!;
    const service = emittedLag.dimensions.find(([k]) => k === 'service')![1];
    const dimensionNames = emittedLag.dimensions.map(([k]) => k).sort().join(',');
    // A hidden SEARCH over the emitted identity, shown in minutes (lag) and days (window).
    for (const [prefix, name, statistic, period, divisor] of [
      ['PITR RPO per database', METRIC_NAMES.pitrRestorableLagSeconds, 'Minimum', 600, 60],
      ['PITR window per database', METRIC_NAMES.pitrWindowSeconds, 'Minimum', 3600, 86_400],
    ] as const) {
      const rows = expressions(prefix);
      const searchRow = rows.find((r) => r.expression.startsWith('SEARCH('))!;
      expect(searchRow, prefix).toMatchObject({ expression: `SEARCH('{${emittedLag.namespace},${dimensionNames}} MetricName="${name}" service="${service}"', '${statistic}', ${period})`, visible: false });
      expect(rows.filter((r) => r.visible !== false).map((r) => r.expression), prefix).toEqual([`${searchRow.id} / ${divisor}`]);
    }
    for (const plan of ['nightly', 'hourly', 'snapshots']) {
      expect(JSON.stringify(dashboards.get(`acme-lifeboat-plan-${plan}`)!.widgets), plan).not.toContain('Pitr');
    }
  });
});
