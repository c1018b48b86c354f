import { App, Stack } from 'aws-cdk-lib';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAlarmDescription } from '../../functions/alert/alarm-event.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import { DIMENSIONS, METRICS_NAMESPACE, METRIC_NAMES, SERVICE_NAMES } from '../../functions/lib/metrics/names.ts';
import { checkSourceStackSupport } from '../../infra/config.ts';
import { MAX_DEAD_MANS_SWITCH_RPO_MINUTES, MAX_RESOURCES_PER_STACK, ShardedDatabaseAlarms, deadMansSwitchWindow, type MonitoredDatabase } from '../../infra/constructs/database-alarms.ts';
import type { FreshnessKind } from '../../infra/freshness.ts';
import { cdkJsonContext, synthApp, type Synthesized } from './helpers/app.ts';
import { PRODUCTION, fleetConfigJson, productionConfigJson } from './helpers/configs.ts';
import { resourcesOfType, templatesIn, type NamedTemplate } from './helpers/templates.ts';

// Dead man's switches beyond the dump (issue 10, defect 12): a snapshot plan,
// a vault copy or a drill schedule that silently stops must alarm like a dump
// that stops. Each alarm watches the success metric its step emits (see
// test/unit/freshness-metrics.test.ts) with missing data counted as late.

const MAX_WAIT = 240; // snapshots.maxWaitMinutes default: each wait (source, copy region, vault) gets it.
const DRILL_RUN_ALLOWANCE = 120;

let synthesized: Synthesized;
let templates: NamedTemplate[];
let alarms: Map<string, Record<string, unknown>>;
beforeAll(() => {
  synthesized = synthApp({ config: productionConfigJson() });
  templates = templatesIn(synthesized.outdir);
  alarms = new Map(resourcesOfType(templates, 'AWS::CloudWatch::Alarm').map((a) => [String(a.resource.Properties!.AlarmName), a.resource.Properties!]));
});

function expectStalenessAlarm(name: string, expected: { metric: string; service: string; database: string; windowMinutes: number; kind: string }): void {
  const alarm = alarms.get(name);
  expect(alarm, `${name} exists`).toBeDefined();
  const window = deadMansSwitchWindow(expected.windowMinutes)!;
  expect(alarm, name).toMatchObject({
    Namespace: METRICS_NAMESPACE,
    MetricName: expected.metric,
    Statistic: 'Sum',
    Threshold: 1,
    ComparisonOperator: 'LessThanThreshold',
    TreatMissingData: 'breaching',
    Period: window.periodSeconds,
    EvaluationPeriods: window.evaluationPeriods,
    DatapointsToAlarm: window.evaluationPeriods,
  });
  // Exactly the dimension set Powertools' singleMetric() emits from that function.
  expect(Object.fromEntries((alarm!.Dimensions as Array<{ Name: string; Value: string }>).map((d) => [d.Name, d.Value])), name).toEqual({
    [DIMENSIONS.service]: expected.service,
    [DIMENSIONS.database]: expected.database,
  });
  // Never before the window has passed.
  expect(Number(alarm!.Period) * (Number(alarm!.EvaluationPeriods) - 1), name).toBeGreaterThanOrEqual(expected.windowMinutes * 60);
  expect(parseAlarmDescription(String(alarm!.AlarmDescription)).metadata, name).toMatchObject({ kind: expected.kind, databaseId: expected.database });
  // Routed through the alert function (one alert format), never straight to SNS.
  expect(alarm!.AlarmActions, name).toBeUndefined();
}

const namesOf = (part: string) => [...alarms.keys()].filter((n) => n.startsWith(`lifeboat/acme/${part}/`)).sort();

describe('snapshot staleness', () => {
  it('alarms per database of a snapshot plan when no source snapshot became available within the RPO plus one wait', () => {
    // orders is snapshotted by plan "snapshots" (RPO 1500 min) only; no other database is snapshotted.
    expectStalenessAlarm('lifeboat/acme/snapshot-late/orders', { metric: METRIC_NAMES.snapshotSucceeded, service: SERVICE_NAMES.snapshot, database: 'orders', windowMinutes: 1500 + MAX_WAIT, kind: 'backup-late' });
    expect(namesOf('snapshot-late')).toEqual(['lifeboat/acme/snapshot-late/orders']);
  });
});

describe('vault copy staleness', () => {
  it('alarms per dumped database when no dump reached the vault within its tightest dump RPO', () => {
    for (const [database, rpo] of [['orders', 1500], ['billing', 1500], ['ledger', 90], ['reports', 1500], ['us-orders', 1500]] as const) {
      expectStalenessAlarm(`lifeboat/acme/vault-copy-late/${database}`, { metric: METRIC_NAMES.vaultCopySucceeded, service: SERVICE_NAMES.vaultCopy, database, windowMinutes: rpo, kind: 'backup-late' });
    }
    expect(namesOf('vault-copy-late')).toEqual(['billing', 'ledger', 'orders', 'reports', 'us-orders'].map((d) => `lifeboat/acme/vault-copy-late/${d}`));
  });

  it('alarms per snapshotted database when no snapshot copy reached the vault within the RPO plus its three waits', () => {
    // Source snapshot, copy-region copy (snapshots.copy), vault copy: each may wait snapshots.maxWaitMinutes.
    expectStalenessAlarm('lifeboat/acme/vault-snapshot-late/orders', { metric: METRIC_NAMES.vaultSnapshotCopied, service: SERVICE_NAMES.snapshot, database: 'orders', windowMinutes: 1500 + 3 * MAX_WAIT, kind: 'backup-late' });
    expect(namesOf('vault-snapshot-late')).toEqual(['lifeboat/acme/vault-snapshot-late/orders']);
  });
});

describe('drill staleness', () => {
  it('alarms per drilled database when no drill reported a result within a day plus the drill\'s own time, so a stopped schedule alarms', () => {
    // Daily schedule (cron(0 4 * * ? *)), restoreTimeoutMinutes 90, no flexible window.
    for (const database of ['orders', 'billing', 'ledger', 'reports', 'us-orders']) {
      expectStalenessAlarm(`lifeboat/acme/drill-late/${database}`, { metric: METRIC_NAMES.drillCompleted, service: SERVICE_NAMES.drill, database, windowMinutes: 24 * 60 + 90 + DRILL_RUN_ALLOWANCE, kind: 'drill-failed' });
    }
  });

  it('keeps the objective alarm on measured drills only: it is not the one that notices a stopped schedule', () => {
    const objective = alarms.get('lifeboat/acme/objective-missed/orders')!;
    expect(objective).toMatchObject({ MetricName: METRIC_NAMES.drillObjectiveMissed, TreatMissingData: 'notBreaching' });
  });

  it('lets drills.lateAfterHours size the window, and false turn the alarm off', () => {
    // Prepare
    const sized = productionConfigJson() as Record<string, unknown> & { drills: Record<string, unknown> };
    sized.drills.lateAfterHours = 50;
    const off = productionConfigJson() as Record<string, unknown> & { drills: Record<string, unknown> };
    off.drills.lateAfterHours = false;

    // Act
    const alarmsOf = (config: unknown) =>
      new Map(resourcesOfType(templatesIn(synthApp({ config }).outdir), 'AWS::CloudWatch::Alarm').map((a) => [String(a.resource.Properties!.AlarmName), a.resource.Properties!]));
    const withSize = alarmsOf(sized);
    const withoutAlarm = alarmsOf(off);

    // Assess
    const window = deadMansSwitchWindow(50 * 60)!;
    expect(withSize.get('lifeboat/acme/drill-late/orders')).toMatchObject({ Period: window.periodSeconds, EvaluationPeriods: window.evaluationPeriods, TreatMissingData: 'breaching' });
    expect([...withoutAlarm.keys()].filter((n) => n.includes('/drill-late/'))).toEqual([]);
    expect(withoutAlarm.get('lifeboat/acme/objective-missed/orders')).toBeDefined();
  });
});

describe('what the staleness alarms refuse at synth time', () => {
  function issuesOf(config: unknown): string[] {
    try {
      checkSourceStackSupport(parseConfig(config), 'test');
    } catch (error) {
      if (error instanceof ConfigError) return [...error.issues];
      throw error;
    }
    return [];
  }

  it('a drill schedule that does not run every day, unless drills.lateAfterHours says how late is late', () => {
    // Prepare
    const weekdays = productionConfigJson() as Record<string, unknown> & { drills: Record<string, unknown> };
    weekdays.drills.schedule = { cron: 'cron(0 4 ? * MON-FRI *)', timezone: 'UTC' };

    // Act
    const refused = issuesOf(weekdays);
    // Friday to Monday, plus the drill run.
    weekdays.drills.lateAfterHours = 72 + 4;
    const sized = issuesOf(weekdays);

    // Assess
    expect(refused).toEqual([expect.stringMatching(/^drills\.lateAfterHours: the drill schedule cron\(0 4 \? \* MON-FRI \*\) does not run every day.*set lateAfterHours .* or false/)]);
    expect(sized).toEqual([]);
  });

  it('a snapshot plan whose RPO plus its waits exceeds CloudWatch\'s range, naming the RPO and snapshots.maxWaitMinutes', () => {
    // Prepare: 160 h fits a dump's switch, not 160 h plus three 240-minute waits.
    const config = productionConfigJson() as Record<string, unknown> & { plans: Array<Record<string, unknown>> };
    config.plans[2]!.rpoMinutes = 160 * 60;

    // Act
    const issues = issuesOf(config);

    // Assess
    expect(160 * 60).toBeLessThan(MAX_DEAD_MANS_SWITCH_RPO_MINUTES);
    expect(issues).toEqual([expect.stringMatching(/^plans\[2\]\.rpoMinutes: .*9600 min RPO plus 3 × snapshots\.maxWaitMinutes \(240\).*at most 10020 minutes/)]);
  });

  it('a snapshot-only plan with an RPO no dead man\'s switch can watch, unless the plan turns its alarms off', () => {
    // Prepare
    const config = productionConfigJson() as Record<string, unknown> & { plans: Array<Record<string, unknown>> };
    config.plans[2]!.rpoMinutes = 8 * 24 * 60;

    // Act
    const refused = issuesOf(config);
    config.plans[2]!.backupAgeAlarm = false;
    const allowed = issuesOf(config);

    // Assess
    expect(refused).toEqual([expect.stringMatching(/^plans\[2\]\.rpoMinutes: the dead man's switch watches at most 10020 minutes/)]);
    expect(allowed).toEqual([]);
  });
});

describe('staleness alarms at fleet size', () => {
  const ALL_KINDS: FreshnessKind[] = ['snapshot', 'vault-dump', 'vault-snapshot', 'drill'];
  const watchedDatabase = (id: string): MonitoredDatabase => ({
    id,
    planIds: ['nightly'],
    rpoMinutes: 1500,
    rtoMinutes: 60,
    deadMansSwitch: true,
    freshness: ALL_KINDS.map((kind) => ({ kind, planIds: ['nightly'], windowMinutes: 1500, basis: 'RPO 1500 min' })),
  });
  const bareStack = () => {
    const app = new App({ context: cdkJsonContext(), builtinCloudFormationValidation: false });
    return { app, stack: new Stack(app, 'Alarms', { env: { account: '111111111111', region: 'eu-west-1' } }) };
  };

  it('holds every alarm of 200 fully watched databases (dump, snapshot, vault, drills) in nested stacks under 500 resources', () => {
    // Prepare: one plan with dumps and snapshots, copied to the vault, drilled nightly.
    const FLEET = 200;
    const config = fleetConfigJson(FLEET, 5) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    config.plans[0].snapshot = true;
    config.snapshots = { copy: { region: 'eu-central-1', kmsKeyArn: 'arn:aws:kms:eu-central-1:111111111111:key/11111111-2222-3333-4444-555555555555' } };
    config.source = { ...config.source, network: { vpcId: PRODUCTION.vpcId, subnetIds: [...PRODUCTION.subnetIds], securityGroupIds: [...PRODUCTION.securityGroupIds], egress: 'user-managed' } };
    config.drills = { subnetIds: [...PRODUCTION.drillSubnetIds], maxConcurrency: 10 };

    // Act
    const fleet = templatesIn(synthApp({ config }).outdir);

    // Assess
    for (const { file, template } of fleet) expect(Object.keys(template.Resources).length, file).toBeLessThan(MAX_RESOURCES_PER_STACK);
    const names = new Set(resourcesOfType(fleet, 'AWS::CloudWatch::Alarm').map((a) => String(a.resource.Properties!.AlarmName)));
    for (const part of ['backup-late', 'snapshot-late', 'vault-copy-late', 'vault-snapshot-late', 'objective-missed', 'drill-late']) {
      expect([...names].filter((n) => n.startsWith(`lifeboat/acme/${part}/`)), part).toHaveLength(FLEET);
    }
  }, 120_000);

  it('spreads the staleness alarms of 1,000 databases over their shards within CloudFormation\'s limit', () => {
    // Prepare
    const { stack } = bareStack();
    const databases = Array.from({ length: 1000 }, (_, i) => watchedDatabase(`db-${String(i).padStart(4, '0')}`));

    // Act
    const alarms = new ShardedDatabaseAlarms(stack, 'DatabaseAlarms', { deploymentName: 'acme', databases });
    alarms.addDrillObjectiveAlarms();
    const sizes = [...alarms.shards.values(), ...alarms.freshnessShards.values()].map(({ stack: nested }) => nested.node.findAll().filter((c) => (c as { cfnResourceType?: string }).cfnResourceType).length);

    // Assess
    expect(ALL_KINDS.map((kind) => alarms.staleness(kind).size)).toEqual([1000, 1000, 1000, 1000]);
    expect(Math.max(...sizes)).toBeLessThan(MAX_RESOURCES_PER_STACK);
    expect(stack.node.findAll().flatMap((c) => c.node.validate())).toEqual([]);
  });

  it('refuses at synth a nested alarm stack over 500 resources, naming it and the way out', () => {
    // Prepare: one shard for 130 databases of 4 staleness alarms each.
    const { app, stack } = bareStack();
    new ShardedDatabaseAlarms(stack, 'DatabaseAlarms', {
      deploymentName: 'acme',
      databases: Array.from({ length: 130 }, (_, i) => watchedDatabase(`db-${i}`)),
      freshnessShards: 1,
    });

    // Act
    const synth = () => app.synth();

    // Assess
    expect(synth).toThrow(/Nested stack FreshnessAlarms0 holds 520 resources; CloudFormation allows 500 per stack/);
  });
});
