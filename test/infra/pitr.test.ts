import { beforeAll, describe, expect, it } from 'vitest';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Stack } from 'aws-cdk-lib';
import { parseAlarmDescription } from '../../functions/alert/alarm-event.ts';
import { DIMENSIONS, METRICS_NAMESPACE, METRIC_NAMES, SERVICE_NAMES } from '../../functions/lib/metrics/names.ts';
import { REPLICA_LAG_ALLOWANCE_MINUTES } from '../../functions/lib/pitr/posture.ts';
import { PITR_LAG_ALARM_PERIOD } from '../../infra/constructs/database-alarms.ts';
import { PITR_WATCH_RATE } from '../../infra/source-stack.ts';
import { logicalIdOf, synthApp, type Synthesized } from './helpers/app.ts';
import { productionConfigJson } from './helpers/configs.ts';
import { evaluate, rolesOf, TemplateResolver, type CfnTemplate, type DeployedTemplate, type EvaluatedRole } from './helpers/iam-evaluator.ts';
import { resourcesOfType, templatesIn } from './helpers/templates.ts';

/**
 * Issue 13, must-show 3 and the posture check's IAM: a pitr-lag alarm per
 * database of a pitr plan (lag over maxLagMinutes alarms, missing data
 * breaching), the 5-minute lag watch, and the posture function's grants
 * evaluated both ways by the IAM simulator.
 */
const ACCOUNT = '111111111111';
const COPY_KEY = 'arn:aws:kms:eu-central-1:111111111111:key/11111111-2222-3333-4444-555555555555';
const db = (id: string, region = 'eu-west-1') => `arn:aws:rds:${region}:${ACCOUNT}:db:${id}`;
const autoBackup = (region: string) => `arn:aws:rds:${region}:${ACCOUNT}:auto-backup:ab-l2ijcexjp7xq7hoj4siexample`;

/** The production config plus two pitr plans: orders (instance) and billing (Aurora) without copy region, reports (instance) replicated to eu-central-1. */
function pitrConfig(manage: boolean): Record<string, unknown> {
  const config = productionConfigJson() as Record<string, unknown> & { plans: Array<Record<string, unknown>> };
  config.plans.push(
    { id: 'pitr-local', schedule: { cron: 'cron(30 3 * * ? *)' }, databases: ['orders', 'billing'], rpoMinutes: 1440, rtoMinutes: 120, pitr: { windowDays: 7, maxLagMinutes: 20 } },
    { id: 'pitr-replicated', schedule: { cron: 'cron(45 3 * * ? *)' }, databases: ['reports'], rpoMinutes: 1440, rtoMinutes: 120, pitr: { windowDays: 14, copyRegion: true, manage, maxLagMinutes: 10 } },
  );
  return config;
}

const deployedOf = (stack: Stack): DeployedTemplate => ({ template: Template.fromStack(stack).toJSON() as CfnTemplate, stackName: stack.stackName, account: stack.account, region: stack.region });

let managed: Synthesized;
let unmanaged: Synthesized;
let alarms: Map<string, Record<string, unknown>>;
const pitrRole = (s: Synthesized): EvaluatedRole => {
  const id = logicalIdOf(s.stack.pitrFunction.role);
  return rolesOf(deployedOf(s.stack)).find((r) => r.logicalId === id)!;
};

beforeAll(() => {
  managed = synthApp({ config: pitrConfig(true), nag: true });
  unmanaged = synthApp({ config: pitrConfig(false) });
  alarms = new Map(resourcesOfType(templatesIn(managed.outdir), 'AWS::CloudWatch::Alarm').map((a) => [String(a.resource.Properties!.AlarmName), a.resource.Properties!]));
}, 240_000);

describe('PITR lag alarm', () => {
  it('alarms per database of a pitr plan when the Minimum lag of a 10-minute period exceeds maxLagMinutes, missing data breaching', () => {
    for (const [database, maxLag] of [['orders', 20], ['billing', 20], ['reports', 10]] as const) {
      const name = `lifeboat/acme/pitr-lag/${database}`;
      const alarm = alarms.get(name);
      expect(alarm, name).toMatchObject({
        Namespace: METRICS_NAMESPACE,
        MetricName: METRIC_NAMES.pitrRestorableLagSeconds,
        Statistic: 'Minimum',
        Period: 600,
        EvaluationPeriods: 1,
        DatapointsToAlarm: 1,
        Threshold: maxLag * 60,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'breaching',
      });
      expect(Object.fromEntries((alarm!.Dimensions as Array<{ Name: string; Value: string }>).map((d) => [d.Name, d.Value])), name).toEqual({ [DIMENSIONS.service]: SERVICE_NAMES.pitr, [DIMENSIONS.database]: database });
      expect(parseAlarmDescription(String(alarm!.AlarmDescription)).metadata, name).toMatchObject({ kind: 'pitr-posture', failure: 'PitrLagOverTarget', databaseId: database });
      // Routed through the alert function (one alert format), never straight to SNS.
      expect(alarm!.AlarmActions, name).toBeUndefined();
    }
    expect([...alarms.keys()].filter((n) => n.startsWith('lifeboat/acme/pitr-lag/')).sort()).toEqual(['billing', 'orders', 'reports'].map((d) => `lifeboat/acme/pitr-lag/${d}`));
  });

  it('alarms per database of a copyRegion plan when the copy region\'s Minimum replica lag of 10 minutes exceeds maxLagMinutes, missing data breaching', () => {
    // Only reports is in a plan with copyRegion (eu-central-1, maxLagMinutes 10); the allowance AWS documents is none.
    const name = 'lifeboat/acme/pitr-replica-lag/reports';
    const alarm = alarms.get(name);
    expect(REPLICA_LAG_ALLOWANCE_MINUTES).toBe(0);
    expect(alarm, name).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC_NAMES.pitrReplicaLagSeconds,
      Statistic: 'Minimum',
      Period: PITR_LAG_ALARM_PERIOD.toSeconds(),
      EvaluationPeriods: 1,
      DatapointsToAlarm: 1,
      Threshold: 10 * 60,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'breaching',
    });
    expect(Object.fromEntries((alarm!.Dimensions as Array<{ Name: string; Value: string }>).map((d) => [d.Name, d.Value]))).toEqual({ [DIMENSIONS.service]: SERVICE_NAMES.pitr, [DIMENSIONS.database]: 'reports' });
    const described = parseAlarmDescription(String(alarm!.AlarmDescription));
    expect(described.metadata).toMatchObject({ kind: 'pitr-posture', failure: 'PitrReplicaLagOverTarget', databaseId: 'reports', planId: 'pitr-replicated' });
    expect(described.human).toContain('copy region eu-central-1');
    expect(alarm!.AlarmActions).toBeUndefined();
    expect([...alarms.keys()].filter((n) => n.includes('/pitr-replica-lag/'))).toEqual([name]);
  });

  it('sees two samples per period, so a normal 5-minute shipping lag never alarms', () => {
    expect(PITR_LAG_ALARM_PERIOD.toSeconds() / PITR_WATCH_RATE.toSeconds()).toBe(2);
  });

  it('publishes the lag every 5 minutes: a schedule invokes the posture function with the watch input, nothing else', () => {
    // Prepare
    const template = managed.template.toJSON() as CfnTemplate;
    const schedules = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Scheduler::Schedule' && String((r.Properties as { ScheduleExpression?: string }).ScheduleExpression).startsWith('rate('));

    // Assess
    expect(schedules).toHaveLength(1);
    expect(schedules[0]!.Properties).toMatchObject({
      ScheduleExpression: 'rate(5 minutes)',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: { Arn: { 'Fn::GetAtt': [logicalIdOf(managed.stack.pitrFunction.function), 'Arn'] }, Input: JSON.stringify({ action: 'watch' }) },
    });
  });

  it('has no lag alarm and no watch without a pitr plan', () => {
    // Prepare
    const plain = synthApp({ config: productionConfigJson() });
    const names = resourcesOfType(templatesIn(plain.outdir), 'AWS::CloudWatch::Alarm').map((a) => String(a.resource.Properties!.AlarmName));

    // Assess
    expect(names.filter((n) => n.includes('/pitr-lag/') || n.includes('/pitr-replica-lag/'))).toEqual([]);
    expect(plain.stack.pitrWatchSchedule).toBeUndefined();
  });
});

describe('PITR posture IAM, evaluated', () => {
  it('leaves cdk-nag nothing unacknowledged (the auto-backup wildcards carry their reason)', () => {
    // Act
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(managed.app);

    // Assess
    expect(report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
  });

  /** The copy region's key is the user's: KMS needs its key policy too; this is AWS's default one (the account's IAM policies decide). */
  const defaultKeyPolicy = { Version: '2012-10-17', Statement: [{ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' }] };
  const decide = async (role: EvaluatedRole, action: string, resource: string, context?: Record<string, string>) =>
    `${action} ${resource}: ${await evaluate({ principal: role, action, resource, resourceAccount: ACCOUNT, context, ...(action.startsWith('kms:') ? { resourcePolicy: defaultKeyPolicy } : {}) })}`;

  it('allows what the check needs: reading the plans\' instances and clusters, the replicas in the copy region, and starting a replication with manage', async () => {
    // Prepare
    const role = pitrRole(managed);
    const rdsInCopyRegion = { 'kms:GrantIsForAWSResource': 'true', 'kms:ViaService': 'rds.eu-central-1.amazonaws.com' };
    const cases: Array<[string, string, Record<string, string>?]> = [
      ['rds:DescribeDBInstances', db('orders-prod')],
      ['rds:DescribeDBInstances', db('reports-prod')],
      ['rds:DescribeDBInstanceAutomatedBackups', db('orders-prod')],
      ['rds:DescribeDBClusters', `arn:aws:rds:eu-west-1:${ACCOUNT}:cluster:billing-prod`],
      // The lag watch lists the region's instances and clusters (metadata), a few pages per region.
      ['rds:DescribeDBInstances', `arn:aws:rds:eu-west-1:${ACCOUNT}:db:*`],
      ['rds:DescribeDBClusters', `arn:aws:rds:eu-west-1:${ACCOUNT}:cluster:*`],
      ['rds:DescribeDBInstanceAutomatedBackups', autoBackup('eu-west-1')],
      ['rds:DescribeDBInstanceAutomatedBackups', autoBackup('eu-central-1')],
      ['rds:StartDBInstanceAutomatedBackupsReplication', db('reports-prod')],
      ['rds:StartDBInstanceAutomatedBackupsReplication', autoBackup('eu-central-1')],
      ['kms:DescribeKey', COPY_KEY],
      ['kms:CreateGrant', COPY_KEY, rdsInCopyRegion],
    ];

    // Act
    const decisions = await Promise.all(cases.map(([action, resource, context]) => decide(role, action, resource, context)));

    // Assess
    expect(decisions).toEqual(cases.map(([action, resource]) => `${action} ${resource}: Allowed`));
  });

  it('denies the rest: other regions, starting replication for a plan without manage, the key outside RDS, changing or stopping anything', async () => {
    // Prepare
    const role = pitrRole(managed);
    const cases: Array<[string, string, Record<string, string>?]> = [
      ['rds:DescribeDBInstances', db('orders-prod', 'us-east-1')],
      ['rds:DescribeDBClusters', `arn:aws:rds:us-east-1:${ACCOUNT}:cluster:billing-prod`],
      ['rds:ModifyDBCluster', `arn:aws:rds:eu-west-1:${ACCOUNT}:cluster:payroll-prod`],
      // orders' plan has no manage (nor copyRegion).
      ['rds:StartDBInstanceAutomatedBackupsReplication', db('orders-prod')],
      ['rds:StopDBInstanceAutomatedBackupsReplication', db('reports-prod')],
      ['rds:ModifyDBInstance', db('reports-prod')],
      ['rds:DeleteDBInstanceAutomatedBackup', autoBackup('eu-central-1')],
      ['kms:CreateGrant', COPY_KEY, { 'kms:GrantIsForAWSResource': 'true', 'kms:ViaService': 'ec2.eu-central-1.amazonaws.com' }],
      ['kms:CreateGrant', COPY_KEY, { 'kms:GrantIsForAWSResource': 'false', 'kms:ViaService': 'rds.eu-central-1.amazonaws.com' }],
      ['kms:CreateGrant', 'arn:aws:kms:eu-central-1:111111111111:key/99999999-2222-3333-4444-555555555555', { 'kms:GrantIsForAWSResource': 'true', 'kms:ViaService': 'rds.eu-central-1.amazonaws.com' }],
      ['kms:Decrypt', COPY_KEY],
    ];

    // Act
    const decisions = await Promise.all(cases.map(([action, resource, context]) => decide(role, action, resource, context)));

    // Assess
    expect(decisions).toEqual(cases.map(([action, resource]) => `${action} ${resource}: ImplicitlyDenied`));
  });

  it('without pitr.manage, never starts a replication nor touches the copy key, and still reads the replicas', async () => {
    // Prepare
    const role = pitrRole(unmanaged);

    // Act
    const decisions = await Promise.all([
      decide(role, 'rds:StartDBInstanceAutomatedBackupsReplication', db('reports-prod')),
      decide(role, 'rds:StartDBInstanceAutomatedBackupsReplication', autoBackup('eu-central-1')),
      decide(role, 'kms:CreateGrant', COPY_KEY, { 'kms:GrantIsForAWSResource': 'true', 'kms:ViaService': 'rds.eu-central-1.amazonaws.com' }),
      decide(role, 'rds:DescribeDBInstanceAutomatedBackups', autoBackup('eu-central-1')),
    ]);

    // Assess
    expect(decisions).toEqual([
      `rds:StartDBInstanceAutomatedBackupsReplication ${db('reports-prod')}: ImplicitlyDenied`,
      `rds:StartDBInstanceAutomatedBackupsReplication ${autoBackup('eu-central-1')}: ImplicitlyDenied`,
      `kms:CreateGrant ${COPY_KEY}: ImplicitlyDenied`,
      `rds:DescribeDBInstanceAutomatedBackups ${autoBackup('eu-central-1')}: Allowed`,
    ]);
  });

  it("lets the watch's scheduler role invoke the posture function and nothing else", async () => {
    // Prepare
    const deployed = deployedOf(managed.stack);
    const roleId = managed.stack.node.findChild('PitrWatchSchedulerRole').node.defaultChild as never;
    const role = rolesOf(deployed).find((r) => r.logicalId === managed.stack.getLogicalId(roleId))!;
    const resolver = new TemplateResolver(deployed);
    const pitrArn = resolver.getAtt(logicalIdOf(managed.stack.pitrFunction.function), 'Arn');
    const planArn = resolver.getAtt(logicalIdOf(managed.stack.planFunction.function), 'Arn');

    // Act
    const decisions = await Promise.all([
      decide(role, 'lambda:InvokeFunction', pitrArn),
      decide(role, 'lambda:InvokeFunction', planArn),
      decide(role, 'states:StartExecution', `arn:aws:states:eu-west-1:${ACCOUNT}:stateMachine:acme-lifeboat-backup`),
    ]);

    // Assess
    expect(decisions).toEqual([`lambda:InvokeFunction ${pitrArn}: Allowed`, `lambda:InvokeFunction ${planArn}: ImplicitlyDenied`, `states:StartExecution arn:aws:states:eu-west-1:${ACCOUNT}:stateMachine:acme-lifeboat-backup: ImplicitlyDenied`]);
  });
});
