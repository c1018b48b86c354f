import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { retentionRunInput } from '../../events/schedules.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { drillRequestsFromConfig } from '../../functions/lib/drill/plan.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import { DIMENSIONS, METRICS_NAMESPACE, METRIC_NAMES, SERVICE_NAMES } from '../../functions/lib/metrics/names.ts';
import { retentionPlansOf } from '../../functions/lib/retention/environment.ts';
import { checkSourceStackSupport, drillRestoreStorageFromContext } from '../../infra/config.ts';
import { withExecutionTimeout } from '../../infra/constructs/monitored-state-machine.ts';
import { MAX_LAMBDA_ENVIRONMENT_BYTES, ProjectFunction } from '../../infra/constructs/project-function.ts';
import { DRILL_OVERHEAD, JANITOR_SCHEDULE, type SourceStack } from '../../infra/source-stack.ts';
import { stateMachinePath } from '../../state-machines/definitions.ts';
import { exampleConfigJson, logicalIdOf, synthApp, type Synthesized } from './helpers/app.ts';
import { fleetConfigJson } from './helpers/configs.ts';
import { describeGrants, findGrants, statementsForRole, type CfnTemplateJson } from './helpers/iam-walker.ts';
import { resourcesOfType, templatesIn } from './helpers/templates.ts';

// The retention, drill and janitor workflows of the source stack: one synth
// (with cdk-nag) of the example config plus a snapshot copy region, a
// copy-region retention policy and a drills section.

const COPY_KEY = 'arn:aws:kms:eu-central-1:111111111111:key/11111111-2222-3333-4444-555555555555';

function workflowConfig(): Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const raw = exampleConfigJson() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  raw.plans[0].snapshot = true;
  raw.plans[0].retention.copyRegion = { keepLast: 2, daily: 7 };
  raw.plans[0].retention.vault = { keepLast: 3, daily: 30 };
  raw.snapshots = { copy: { region: 'eu-central-1', kmsKeyArn: COPY_KEY } };
  // Deployed drills reach their throwaways from inside the VPC (the stack's drill security group admits the runners).
  raw.source.network = { vpcId: 'vpc-0a1b2c3d4e5f60718', subnetIds: ['subnet-0aaa1111bbbb2222c', 'subnet-0ddd3333eeee4444f'], securityGroupIds: ['sg-0123456789abcdef0'], egress: 'user-managed' };
  raw.drills = {
    schedule: { cron: 'cron(30 4 * * ? *)', timezone: 'Europe/Berlin' },
    subnetGroupName: 'isolated-drills',
    restoreTimeoutMinutes: 45,
    maxConcurrency: 1,
    databases: [{ id: 'orders', assertions: [{ name: 'has orders', sql: 'SELECT count(*) > 0 FROM orders' }] }, { id: 'billing' }],
  };
  return raw;
}

let synthesized: Synthesized;
let stack: SourceStack;
let template: Template;
let json: CfnTemplateJson;
beforeAll(() => {
  synthesized = synthApp({ config: workflowConfig(), nag: true });
  stack = synthesized.stack;
  template = synthesized.template;
  json = template.toJSON() as CfnTemplateJson;
});

const fnProps = (fn: { function: { node: { defaultChild?: unknown } } }) =>
  template.findResources('AWS::Lambda::Function')[logicalIdOf(fn.function as never)]!.Properties as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const scheduleOf = (machine: { stateMachine: never }) =>
  Object.values(template.findResources('AWS::Scheduler::Schedule')).filter((r) => JSON.stringify(r.Properties.Target.Arn) === JSON.stringify({ Ref: logicalIdOf(machine.stateMachine) }));
const bucketArn = () => ({ 'Fn::GetAtt': [logicalIdOf(stack.storage.bucket), 'Arn'] });
const objects = (suffix: string) => ({ 'Fn::Join': ['', [bucketArn(), `/${suffix}`]] });
const machineProps = (machine: { stateMachine: never }) => template.findResources('AWS::StepFunctions::StateMachine')[logicalIdOf(machine.stateMachine)]!.Properties as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('retention at the source and in the copy region', () => {
  it('runs the retention handler for 15 minutes with the plans from the deployed config object, the locations in its environment, and no vault target', () => {
    const p = fnProps(stack.retentionFunction);
    expect(p).toMatchObject({ Runtime: 'nodejs22.x', Timeout: 900, MemorySize: 512, TracingConfig: { Mode: 'Active' } });
    const env = p.Environment.Variables as Record<string, unknown>;
    // The plans list every database: they come from the config object (hash-checked), not the 4 KB environment.
    expect(env.RETENTION_PLANS).toBeUndefined();
    expect(env.LIFEBOAT_CONFIG_SHA256).toBe(stack.deploymentConfig.sha256);
    const stored = JSON.parse(readFileSync(join(synthesized.outdir, stack.deploymentConfig.asset.assetPath), 'utf8'));
    expect(retentionPlansOf(stored)).toEqual(retentionPlansOf(parseConfig(workflowConfig())));
    expect(findGrants(json, logicalIdOf(stack.retentionFunction.role), { actions: ['s3:GetObject'] }).length).toBeGreaterThan(0);
    expect(env).toMatchObject({ BACKUP_BUCKET: { Ref: logicalIdOf(stack.storage.bucket) }, BACKUP_PREFIX: 'backups/', SNAPSHOT_COPY_REGION: 'eu-central-1', POWERTOOLS_SERVICE_NAME: SERVICE_NAMES.retention });
    expect(Object.keys(env).filter((k) => k.startsWith('VAULT_'))).toEqual([]);
  });

  it('schedules each plan\'s source and copy-region targets (never the vault) on the deployed retention definition', () => {
    const machine = machineProps(stack.retention as never);
    expect(machine).toMatchObject({
      StateMachineName: 'acme-lifeboat-retention',
      DefinitionString: withExecutionTimeout(readFileSync(stateMachinePath('retention'), 'utf8'), Duration.hours(12), 'retention'),
      DefinitionSubstitutions: {
        RetentionTargetStateMachineArn: { Ref: logicalIdOf(stack.retentionTarget.stateMachine) },
        AlertFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.alertFunction.function), 'Arn'] },
      },
    });
    // Each target runs as a child execution of the deployed target definition, which calls the retention function.
    expect(machineProps(stack.retentionTarget as never)).toMatchObject({
      StateMachineName: 'acme-lifeboat-retention-target',
      DefinitionString: withExecutionTimeout(readFileSync(stateMachinePath('retention-target'), 'utf8'), Duration.hours(12), 'retention-target'),
      DefinitionSubstitutions: {
        RetentionFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.retentionFunction.function), 'Arn'] },
        AlertFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.alertFunction.function), 'Arn'] },
      },
    });
    const starts = findGrants(json, logicalIdOf(stack.retention.stateMachine.role), { actions: ['states:StartExecution'] });
    expect(starts.map((g) => g.statement.Resource)).toEqual([{ Ref: logicalIdOf(stack.retentionTarget.stateMachine) }]);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'lifeboat/acme/retention-failed/retention-target-executions' });
    const [schedule, ...more] = scheduleOf(stack.retention as never);
    expect(more).toEqual([]);
    const input = JSON.parse(schedule!.Properties.Target.Input as string) as ReturnType<typeof retentionRunInput>;
    expect(input).toEqual(retentionRunInput(parseConfig(workflowConfig()), 'nightly', { locations: ['source', 'copy-region'] }));
    expect(input.targets.map((t) => t.location).sort()).toEqual(['copy-region', 'copy-region', 'source', 'source']);
    expect(schedule!.Properties).toMatchObject({ ScheduleExpression: 'cron(30 5 * * ? *)', ScheduleExpressionTimezone: 'Europe/Berlin' });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'lifeboat/acme/retention-failed/retention-executions' });
  });

  it('deletes backup versions under the prefix only, never audit logs or drill reports, and writes only its audit log', () => {
    const role = logicalIdOf(stack.retentionFunction.role);
    const deletes = findGrants(json, role, { actions: ['s3:DeleteObject', 's3:DeleteObjectVersion'] });
    expect(new Set(deletes.map((g) => JSON.stringify(g.statement.Resource)))).toEqual(new Set([JSON.stringify(objects('backups/*'))]));
    const denied = statementsForRole(json, role).filter((s) => s.statement.Effect === 'Deny' && s.source.includes('AWS::IAM::Policy')).map((s) => s.statement);
    expect(denied).toEqual([expect.objectContaining({ Action: ['s3:DeleteObject', 's3:DeleteObjectVersion'], Resource: objects('backups/_*') })]);
    const writes = findGrants(json, role, { actions: ['s3:PutObject'] });
    expect(writes.map((g) => g.statement.Resource)).toEqual([objects('backups/_audit/retention/*')]);
    const lists = findGrants(json, role, { actions: ['s3:ListBucketVersions'] });
    expect(lists.map((g) => g.statement.Condition)).toEqual([{ StringLike: { 's3:prefix': ['backups/*'] } }]);
  });

  it('uses the bucket key only through S3, never the envelope key (it cannot read a backup), and assumes no role', () => {
    const role = logicalIdOf(stack.retentionFunction.role);
    const envelope = findGrants(json, role, { actions: ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:CreateGrant'], on: { logicalId: logicalIdOf(stack.storage.envelopeKey) }, service: 'kms' });
    expect(envelope, describeGrants(envelope)).toEqual([]);
    const bucketKey = findGrants(json, role, { actions: ['kms:Decrypt'], on: { logicalId: logicalIdOf(stack.storage.bucketKey) }, service: 'kms' });
    expect(bucketKey.map((g) => g.statement.Condition)).toEqual([{ StringEquals: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' } }]);
    expect(findGrants(json, role, { actions: ['sts:AssumeRole'] })).toEqual([]);
  });

  it('deletes only lifeboat snapshots of this account, at the source and in the copy region', () => {
    const grants = findGrants(json, logicalIdOf(stack.retentionFunction.role), { actions: ['rds:DeleteDBSnapshot', 'rds:DeleteDBClusterSnapshot'] });
    expect(new Set(grants.flatMap((g) => [g.statement.Resource].flat()))).toEqual(
      new Set(['eu-west-1', 'eu-central-1'].flatMap((r) => [`arn:aws:rds:${r}:111111111111:snapshot:lifeboat-*`, `arn:aws:rds:${r}:111111111111:cluster-snapshot:lifeboat-*`])),
    );
  });
});

describe('restore drills', () => {
  it('runs the steps in a Node.js function and restore/verify in the runner image with pg_restore, 15 minutes and a 10 GiB /tmp', () => {
    expect(fnProps(stack.drillFunction)).toMatchObject({ Runtime: 'nodejs22.x', Timeout: 300, MemorySize: 512 });
    const restore = fnProps(stack.drillRestoreFunction);
    expect(restore).toMatchObject({
      PackageType: 'Image',
      ImageConfig: { Command: ['functions/drill/handler.handler'] },
      Timeout: 900,
      EphemeralStorage: { Size: 10240 },
      Architectures: ['arm64'],
    });
    // The same image as the dump (pg_restore, PGSSLROOTCERT).
    expect(JSON.stringify(restore.Code.ImageUri)).toContain(stack.runnerImage.assetHash);
    for (const fn of [stack.drillFunction, stack.drillRestoreFunction]) {
      const env = fnProps(fn).Environment.Variables as Record<string, unknown>;
      expect(env).toMatchObject({ BACKUP_BUCKET: { Ref: logicalIdOf(stack.storage.bucket) }, BACKUP_PREFIX: 'backups/', DRILL_DUMP_PROVISIONER: 'rds', POWERTOOLS_SERVICE_NAME: SERVICE_NAMES.drill });
      expect(Object.keys(env).filter((k) => k.startsWith('VAULT_'))).toEqual([]);
    }
  });

  it('lets only the drill restore decrypt with the envelope key (principle 4), and no drill role delete a backup', () => {
    const envelope = { logicalId: logicalIdOf(stack.storage.envelopeKey) };
    const roles = Object.entries(json.Resources).filter(([, r]) => r.Type === 'AWS::IAM::Role').map(([id]) => id);
    const decrypting = roles.filter((role) => findGrants(json, role, { actions: ['kms:Decrypt'], on: envelope, service: 'kms' }).length > 0);
    expect(decrypting).toEqual([logicalIdOf(stack.drillRestoreFunction.role)]);
    for (const fn of [stack.drillFunction, stack.drillRestoreFunction, stack.janitorFunction]) {
      const grants = findGrants(json, logicalIdOf(fn.role), { actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:PutObjectRetention', 's3:PutLifecycleConfiguration'] });
      expect(grants, describeGrants(grants)).toEqual([]);
    }
    const reports = findGrants(json, logicalIdOf(stack.drillFunction.role), { actions: ['s3:PutObject'] });
    expect(reports.map((g) => g.statement.Resource)).toEqual([objects('backups/_drills/*')]);
    expect(findGrants(json, logicalIdOf(stack.drillRestoreFunction.role), { actions: ['s3:PutObject'] })).toEqual([]);
  });

  it('creates, changes and deletes only lifeboat-drill-* throwaways (from lifeboat snapshots) and lifeboat/drill/* secrets', () => {
    const role = logicalIdOf(stack.drillFunction.role);
    const arn = (resource: string, name: string) => `arn:aws:rds:eu-west-1:111111111111:${resource}:${name}`;
    const rdsWrites = ['rds:CreateDBInstance', 'rds:RestoreDBInstanceFromDBSnapshot', 'rds:RestoreDBClusterFromSnapshot', 'rds:ModifyDBInstance', 'rds:ModifyDBCluster', 'rds:DeleteDBInstance', 'rds:DeleteDBCluster', 'rds:DeleteDBSubnetGroup'];
    const resources = new Set(findGrants(json, role, { actions: rdsWrites }).flatMap((g) => [g.statement.Resource].flat() as string[]));
    const instanceOrCluster = [...resources].filter((r) => /:(db|cluster):/.test(r));
    expect(new Set(instanceOrCluster)).toEqual(new Set([arn('db', 'lifeboat-drill-*'), arn('cluster', 'lifeboat-drill-*')]));
    expect(resources).toContain(arn('subgrp', 'isolated-drills'));
    expect([...resources].filter((r) => /:(cluster-)?snapshot:/.test(r)).sort()).toEqual([arn('cluster-snapshot', 'lifeboat-*'), arn('snapshot', 'lifeboat-*')]);
    // Snapshots and the source databases themselves are never modified or deleted.
    expect(findGrants(json, role, { actions: ['rds:DeleteDBSnapshot', 'rds:DeleteDBClusterSnapshot', 'rds:ModifyDBSnapshotAttribute'] })).toEqual([]);
    const secrets = findGrants(json, role, { actions: ['secretsmanager:CreateSecret', 'secretsmanager:DeleteSecret', 'secretsmanager:GetSecretValue'] });
    expect(new Set(secrets.map((g) => JSON.stringify([g.action, g.statement.Resource])))).toEqual(
      new Set(['secretsmanager:CreateSecret', 'secretsmanager:DeleteSecret'].map((a) => JSON.stringify([a, 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/drill/*']))),
    );
    const restoreSecrets = findGrants(json, logicalIdOf(stack.drillRestoreFunction.role), { actions: ['secretsmanager:GetSecretValue'] });
    expect(restoreSecrets.map((g) => g.statement.Resource)).toEqual(['arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/drill/*']);
    // RDS may use a snapshot's key on the drill's behalf, nothing more.
    const grants = findGrants(json, role, { actions: ['kms:CreateGrant'] });
    expect(grants.map((g) => g.statement.Condition)).toEqual([{ Bool: { 'kms:GrantIsForAWSResource': 'true' }, StringEquals: { 'kms:ViaService': 'rds.eu-west-1.amazonaws.com' } }]);
  });

  it('schedules the drills from config, sized for rounds of restores, with objective alarms per database', () => {
    const config = parseConfig(workflowConfig());
    const machine = machineProps(stack.drill as never);
    expect(machine).toMatchObject({
      StateMachineName: 'acme-lifeboat-drill',
      DefinitionString: withExecutionTimeout(readFileSync(stateMachinePath('drill'), 'utf8'), Duration.minutes(2 * (45 + 120)), 'drill'),
      DefinitionSubstitutions: {
        PlanFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.planFunction.function), 'Arn'] },
        AlertFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.alertFunction.function), 'Arn'] },
        DrillDatabaseStateMachineArn: { Ref: logicalIdOf(stack.drillDatabase.stateMachine) },
      },
    });
    // Two databases, one at a time: two rounds of (45 min restore timeout + 2 h).
    expect(JSON.parse(machine.DefinitionString as string).TimeoutSeconds).toBe(2 * (45 * 60 + DRILL_OVERHEAD.toSeconds()));
    // Each database's drill: one round.
    const child = machineProps(stack.drillDatabase as never);
    expect(child).toMatchObject({
      StateMachineName: 'acme-lifeboat-drill-database',
      DefinitionSubstitutions: {
        PlanFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.planFunction.function), 'Arn'] },
        DrillFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.drillFunction.function), 'Arn'] },
        DrillRestoreFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.drillRestoreFunction.function), 'Arn'] },
        AlertFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.alertFunction.function), 'Arn'] },
      },
    });
    expect(JSON.parse(child.DefinitionString as string).TimeoutSeconds).toBe(45 * 60 + DRILL_OVERHEAD.toSeconds());
    const [schedule, ...more] = scheduleOf(stack.drill as never);
    expect(more).toEqual([]);
    expect(schedule!.Properties).toMatchObject({ ScheduleExpression: 'cron(30 4 * * ? *)', ScheduleExpressionTimezone: 'Europe/Berlin' });
    // The schedule names nothing: every database the drills section covers.
    expect(JSON.parse(schedule!.Properties.Target.Input as string)).toEqual({});
    expect(drillRequestsFromConfig(config)).toHaveLength(2);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'lifeboat/acme/drill-failed/drill-executions' });
    const objectives = resourcesOfType(templatesIn(synthesized.outdir), 'AWS::CloudWatch::Alarm').filter((a) => String(a.resource.Properties?.AlarmName).includes('/objective-missed/'));
    expect(objectives.map((a) => a.resource.Properties!.AlarmName).sort()).toEqual(['lifeboat/acme/objective-missed/billing', 'lifeboat/acme/objective-missed/orders']);
    for (const { resource } of objectives) {
      expect(resource.Properties).toMatchObject({
        Namespace: METRICS_NAMESPACE,
        MetricName: METRIC_NAMES.drillObjectiveMissed,
        Dimensions: expect.arrayContaining([{ Name: DIMENSIONS.service, Value: SERVICE_NAMES.drill }]),
      });
    }
  });
});

describe('the janitor', () => {
  it('runs hourly in UTC and deletes only expired drill resources', () => {
    const [schedule, ...more] = scheduleOf(stack.janitor as never);
    expect(more).toEqual([]);
    expect(schedule!.Properties).toMatchObject({ ScheduleExpression: JANITOR_SCHEDULE, ScheduleExpressionTimezone: 'UTC' });
    expect(JSON.parse(schedule!.Properties.Target.Input as string)).toEqual({});
    const role = logicalIdOf(stack.janitorFunction.role);
    const deletes = findGrants(json, role, { actions: ['rds:DeleteDBInstance', 'rds:DeleteDBCluster', 'rds:DeleteDBSubnetGroup', 'rds:DeleteDBSnapshot', 'rds:DeleteDBClusterSnapshot', 'secretsmanager:DeleteSecret'] });
    for (const resource of deletes.flatMap((g) => [g.statement.Resource].flat() as string[])) expect(resource).toMatch(/:(db|cluster|subgrp|snapshot):lifeboat-drill-\*$|:secret:lifeboat\/drill\/\*$/);
    expect(findGrants(json, role, { actions: ['s3:DeleteObject', 's3:GetObject', 'kms:Decrypt', 'rds:CreateDBInstance'] })).toEqual([]);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'lifeboat/acme/drill-failed/janitor-executions' });
  });
});

describe('what the workflows refuse at synth time', () => {
  it('drills from the vault in a deployment (production may not read or report there)', () => {
    const raw = workflowConfig();
    raw.vault = { account: '222222222222', region: 'eu-central-1', retentionDays: 35 };
    raw.drills.from = 'vault';
    raw.drills.databases[1].from = 'vault';
    let error: unknown;
    try {
      checkSourceStackSupport(parseConfig(raw), 'test');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      expect.stringMatching(/^drills\.from: deployed drills run with production credentials/),
      expect.stringMatching(/^drills\.databases\[1\]\.from: deployed drills run with production credentials/),
    ]);
  });

  it('a function environment over Lambda\'s 4 KB, naming the largest variable', () => {
    const app = new App();
    const stack = new Stack(app, 'Bare', { env: { account: '111111111111', region: 'eu-west-1' } });
    new ProjectFunction(stack, 'Big', {
      source: { kind: 'prebuilt', code: lambda.Code.fromInline('exports.handler = async () => 1'), handler: 'index.handler' },
      serviceName: 'test',
      metricsNamespace: 'test',
      environment: { LARGE: 'x'.repeat(4500), SMALL: 'y' },
    });
    expect(() => app.synth()).toThrow(new RegExp(`Big: the function's environment is about \\d+ bytes; Lambda accepts at most ${MAX_LAMBDA_ENVIRONMENT_BYTES}\\. Largest: LARGE \\(4500 bytes\\)`));
  });

  it('nothing that grows with the fleet in any environment: 1,000 databases in one plan synthesize (retention read ~450 from its environment before)', () => {
    const synthesized = synthApp({ config: fleetConfigJson(1000) });
    expect(synthesized.stack.config.databases).toHaveLength(1000);
  });

  it('a drill restore /tmp outside Lambda\'s 512 MiB to 10 GiB', () => {
    const app = (value: unknown) => new App({ context: { drillRestoreStorageMiB: value } });
    expect(drillRestoreStorageFromContext(app('4096'))?.toMebibytes()).toBe(4096);
    expect(drillRestoreStorageFromContext(new App())).toBeUndefined();
    for (const bad of ['lots', 100, 20_000]) expect(() => drillRestoreStorageFromContext(app(bad))).toThrow(/drillRestoreStorageMiB[\s\S]*512 to 10240/);
  });
});
