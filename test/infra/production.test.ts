import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { parseAlarmDescription } from '../../functions/alert/alarm-event.ts';
import { vaultNames } from '../../functions/lib/vault/names.ts';
import { vaultRetentionRoleArn } from '../../functions/lib/retention/environment.ts';
import { METRICS_NAMESPACE, METRIC_NAMES, SERVICE_NAMES } from '../../functions/lib/metrics/names.ts';
import { pipelineAlarmName, routedAlarmPrefix } from '../../infra/alarm-names.ts';
import { deadMansSwitchWindow } from '../../infra/constructs/database-alarms.ts';
import { DUMP_CONTAINER_NAME, FARGATE_TASK_COMMAND } from '../../infra/constructs/fargate-dump-runner.ts';
import { INTERFACE_ENDPOINT_SERVICES, FARGATE_ENDPOINT_SERVICES } from '../../infra/constructs/runner-network.ts';
import { FARGATE_PLACEHOLDERS } from '../../infra/source-stack.ts';
import type { SourceStack } from '../../infra/source-stack.ts';
import { logicalIdOf, repoRoot, synthApp, type Synthesized } from './helpers/app.ts';
import { PRODUCTION, productionConfigJson } from './helpers/configs.ts';
import { actionMatches, statementCoversAction, type PolicyStatementJson } from './helpers/iam-walker.ts';
import { identityStatements, resourcesOfType, templatesIn, type NamedTemplate } from './helpers/templates.ts';

// One synth, with cdk-nag as a validation plugin (synth throws on any
// unacknowledged finding), of a config that turns on every production feature.

let synthesized: Synthesized;
let primary: SourceStack;
let us: SourceStack;
let templates: NamedTemplate[];
let template: Template;
beforeAll(() => {
  synthesized = synthApp({ config: productionConfigJson(), nag: true });
  [primary, us] = synthesized.stacks as [SourceStack, SourceStack];
  templates = templatesIn(synthesized.outdir);
  template = synthesized.template;
});

const asArray = <T>(value: T | T[] | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);
const props = (resource: { Properties?: Record<string, unknown> }) => resource.Properties ?? {};

/** The production side: the source stacks and their nested stacks (not the vault, which is the vault account's). */
const productionTemplates = () => templates.filter((t) => !t.file.startsWith('acme-lifeboat-vault'));

/** A schedule's databases: the plan it names, resolved from the stack's deployed config object (as the plan function does). */
function scheduledDatabases(stack: SourceStack): Array<{ id: string; connection: { sslMode: string } }> {
  const { asset } = stack.deploymentConfig;
  const path = join(synthesized.outdir, `asset.${asset.assetHash}.json`);
  expect(existsSync(path), path).toBe(true);
  const deployed = JSON.parse(readFileSync(path, 'utf8')) as { databases: Array<{ id: string; connection: { sslMode: string } }>; plans: Array<{ id: string; databases: string[] }> };
  return Object.values(Template.fromStack(stack).findResources('AWS::Scheduler::Schedule')).flatMap((r) => {
    const input = JSON.parse(r.Properties.Target.Input as string) as { planId?: string; targets?: unknown };
    if (!input.planId || input.targets) return [];
    const plan = deployed.plans.find((p) => p.id === input.planId);
    return (plan?.databases ?? []).map((id) => deployed.databases.find((d) => d.id === id)!);
  });
}

describe('production config: stacks and cdk-nag', () => {
  it('synthesizes one source stack per source, nested alarm stacks, and passes cdk-nag with reasons', () => {
    expect(synthesized.stacks.map((s) => [s.stackName, s.region, s.account])).toEqual([
      ['acme-lifeboat-source', 'eu-west-1', '111111111111'],
      ['acme-lifeboat-source-us', 'us-east-1', PRODUCTION.usAccount],
    ]);
    expect(templates.filter((t) => t.file.endsWith('.nested.template.json')).length).toBeGreaterThan(0);
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(synthesized.app);
    expect(report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
  });
});

describe('every bucket in every stack', () => {
  it('is encrypted, blocks all public access and denies requests without TLS', () => {
    const buckets = resourcesOfType(templates, 'AWS::S3::Bucket');
    const policies = resourcesOfType(templates, 'AWS::S3::BucketPolicy');
    expect(buckets.length).toBeGreaterThanOrEqual(4); // backup + access logs, in each source stack
    for (const { file, logicalId, resource } of buckets) {
      const where = `${file}#${logicalId}`;
      const encryption = props(resource).BucketEncryption as { ServerSideEncryptionConfiguration: Array<{ ServerSideEncryptionByDefault: { SSEAlgorithm: string } }> };
      expect(['aws:kms', 'AES256', 'aws:kms:dsse'], where).toContain(encryption?.ServerSideEncryptionConfiguration?.[0]?.ServerSideEncryptionByDefault?.SSEAlgorithm);
      expect(props(resource).PublicAccessBlockConfiguration, where).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
      const policy = policies.find((p) => p.file === file && JSON.stringify(props(p.resource).Bucket) === JSON.stringify({ Ref: logicalId }));
      const statements = asArray((props(policy?.resource ?? {}).PolicyDocument as { Statement?: PolicyStatementJson[] } | undefined)?.Statement);
      expect(
        statements.some((st) => st.Effect === 'Deny' && JSON.stringify(st.Condition) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } }) && asArray(st.Action).includes('s3:*')),
        `${where} has no TLS-only bucket policy`,
      ).toBe(true);
    }
  });
});

describe('every state machine in every stack', () => {
  it('logs every event, traces with X-Ray, and has a routed failure alarm', () => {
    const machines = resourcesOfType(templates, 'AWS::StepFunctions::StateMachine');
    const alarms = resourcesOfType(templates, 'AWS::CloudWatch::Alarm');
    expect(machines.length).toBeGreaterThanOrEqual(2);
    for (const { file, logicalId, resource } of machines) {
      const where = `${file}#${logicalId}`;
      expect(props(resource).LoggingConfiguration, where).toMatchObject({ Level: 'ALL', IncludeExecutionData: false, Destinations: [expect.anything()] });
      expect(props(resource).TracingConfiguration, where).toEqual({ Enabled: true });
      const watching = alarms.filter((a) => a.file === file && JSON.stringify(props(a.resource)).includes(`{"Ref":"${logicalId}"}`));
      expect(watching.map((a) => props(a.resource).AlarmName), where).toEqual([expect.stringMatching(/^lifeboat\/acme\/[a-z-]+-failed\//)]);
    }
  });
});

describe('no production role can delete or weaken backups elsewhere', () => {
  const S3_DESTRUCTIVE = ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:DeleteBucket', 's3:PutObjectRetention', 's3:PutBucketObjectLockConfiguration', 's3:BypassGovernanceRetention', 's3:PutLifecycleConfiguration', 's3:PutBucketPolicy', 's3:PutBucketVersioning'];
  const KMS_DESTRUCTIVE = ['kms:ScheduleKeyDeletion', 'kms:DisableKey', 'kms:PutKeyPolicy', 'kms:DeleteImportedKeyMaterial', 'kms:DisableKeyRotation'];

  it('grants no destructive S3 action outside the stack\'s own buckets, and no destructive KMS action at all', () => {
    // Prepare: the source stacks' own buckets (anything else, the vault included, is off limits).
    const own = new Set(synthesized.stacks.flatMap((s) => [logicalIdOf(s.storage.bucket), logicalIdOf(s.storage.accessLogsBucket)]));
    const onlyOwnBuckets = (st: PolicyStatementJson) =>
      st.NotResource === undefined &&
      asArray(st.Resource as unknown[]).length > 0 &&
      asArray(st.Resource as unknown[]).every((r) => [...own].some((id) => JSON.stringify(r).startsWith(`{"Fn::Join":["",[{"Fn::GetAtt":["${id}",`) || JSON.stringify(r).startsWith(`{"Fn::GetAtt":["${id}",`)));

    // Act
    const violations = identityStatements(productionTemplates()).flatMap(({ where, statement }) => {
      if (statement.Effect !== 'Allow') return [];
      const s3 = S3_DESTRUCTIVE.filter((a) => statementCoversAction(statement, a) && !onlyOwnBuckets(statement));
      const kms = KMS_DESTRUCTIVE.filter((a) => statementCoversAction(statement, a));
      return [...s3, ...kms].map((action) => `${where}: ${action} on ${JSON.stringify(statement.Resource ?? statement.NotResource)}`);
    });

    // Assess
    expect(violations).toEqual([]);
  });

  it('may assume only the vault\'s copier role, which can add to the vault but never delete', () => {
    const copier = vaultNames({ name: 'acme', vault: { account: '222222222222', region: 'eu-central-1' } }).copierRoleArn;
    const assumed = identityStatements(productionTemplates())
      .filter(({ statement }) => statement.Effect === 'Allow' && statementCoversAction(statement, 'sts:AssumeRole'))
      .flatMap(({ statement }) => asArray(statement.Resource as unknown[]));
    expect(assumed.length).toBeGreaterThan(0);
    expect(new Set(assumed)).toEqual(new Set([copier]));
  });

  it('can never assume the vault retention role: it trusts only the vault\'s own retention function, and production prunes only the source and the copy region', () => {
    // Prepare
    const retentionRole = vaultRetentionRoleArn({ name: 'acme', vault: { account: '222222222222', region: 'eu-central-1', retentionDays: 35 } })!;
    const vault = templates.find((t) => t.file === 'acme-lifeboat-vault.template.json')!.template;
    const [roleId, role] = Object.entries(vault.Resources).find(([, r]) => r.Type === 'AWS::IAM::Role' && props(r).RoleName === 'acme-lifeboat-vault-retention')!;
    const vaultFunctionRole = Object.entries(vault.Resources).find(
      ([, r]) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(props(r).PolicyDocument).includes(`{"Fn::GetAtt":["${roleId}","Arn"]}`),
    )![1];

    // Act
    const mentions = identityStatements(productionTemplates()).filter(({ statement }) => JSON.stringify(statement).includes(':role/acme-lifeboat-vault-retention'));
    const trust = (props(role).AssumeRolePolicyDocument as { Statement: PolicyStatementJson[] }).Statement;
    const retentionEnvs = resourcesOfType(productionTemplates(), 'AWS::Lambda::Function')
      .map((f) => (props(f.resource).Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {})
      .filter((env) => env.POWERTOOLS_SERVICE_NAME === SERVICE_NAMES.retention);
    const retentionInputs = productionTemplates()
      .flatMap((t) => Object.values(t.template.Resources).filter((r) => r.Type === 'AWS::Scheduler::Schedule'))
      .map((r) => JSON.parse(String((props(r).Target as { Input: string }).Input)) as { targets?: Array<{ location: string }> })
      .filter((input) => input.targets);

    // Assess: no production statement names the role; it trusts one principal, the vault function's role, in the vault template.
    expect(retentionRole).toBe('arn:aws:iam::222222222222:role/acme-lifeboat-vault-retention');
    expect(mentions).toEqual([]);
    expect(trust).toEqual([{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { AWS: { 'Fn::GetAtt': [expect.stringMatching(/^RetentionFunctionRole/), 'Arn'] } } }]);
    expect(JSON.stringify(vaultFunctionRole)).toContain('sts:AssumeRole');
    // Production's retention knows no vault target, and its schedules never name the vault.
    expect(retentionEnvs.length).toBe(2);
    for (const env of retentionEnvs) expect(Object.keys(env).filter((k) => k.startsWith('VAULT_'))).toEqual([]);
    expect(retentionInputs.length).toBeGreaterThan(0);
    expect(new Set(retentionInputs.flatMap((i) => i.targets!.map((t) => t.location)))).toEqual(new Set(['source', 'copy-region']));
  });
});

describe('network: functions in the configured VPC, AWS through endpoints', () => {
  it('runs every function of the primary stack in the configured subnets and security groups', () => {
    const functions = resourcesOfType(templates, 'AWS::Lambda::Function').filter((f) => f.file === 'acme-lifeboat-source.template.json');
    expect(functions.length).toBeGreaterThanOrEqual(4);
    for (const { logicalId, resource } of functions) {
      expect(props(resource).VpcConfig, logicalId).toEqual({ SubnetIds: [...PRODUCTION.subnetIds], SecurityGroupIds: [...PRODUCTION.securityGroupIds] });
    }
  });

  it('lets each function role attach network interfaces, with no managed policy', () => {
    const functions = [primary.dumpFunction, primary.alertFunction, primary.snapshotFunction!, primary.vaultCopyFunction!, primary.retentionFunction, primary.drillFunction, primary.drillRestoreFunction, primary.janitorFunction];
    for (const fn of functions) {
      const role = template.findResources('AWS::IAM::Role')[logicalIdOf(fn.role)];
      expect(role?.Properties.ManagedPolicyArns).toBeUndefined();
      const forRole = Object.entries(template.findResources('AWS::IAM::Policy'))
        .filter(([, p]) => JSON.stringify(p.Properties.Roles).includes(logicalIdOf(fn.role)))
        .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as PolicyStatementJson[]);
      expect(forRole.some((st) => statementCoversAction(st, 'ec2:CreateNetworkInterface'))).toBe(true);
    }
  });

  it('creates an S3 gateway endpoint on the route tables and private-DNS interface endpoints for every AWS API the runners call', () => {
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcId: PRODUCTION.vpcId,
      ServiceName: 'com.amazonaws.eu-west-1.s3',
      VpcEndpointType: 'Gateway',
      RouteTableIds: [...PRODUCTION.routeTableIds],
    });
    const interfaces = Object.values(template.findResources('AWS::EC2::VPCEndpoint')).filter((e) => e.Properties.VpcEndpointType === 'Interface');
    const services = interfaces.map((e) => String(e.Properties.ServiceName).replace('com.amazonaws.eu-west-1.', '')).sort();
    expect(services).toEqual([...Object.values(INTERFACE_ENDPOINT_SERVICES), ...Object.values(FARGATE_ENDPOINT_SERVICES)].sort());
    expect(services).toEqual(expect.arrayContaining(['kms', 'secretsmanager', 'sns', 'sts', 'rds', 'states', 'monitoring', 'logs']));
    for (const endpoint of interfaces) {
      expect(endpoint.Properties).toMatchObject({ PrivateDnsEnabled: true, SubnetIds: [...PRODUCTION.subnetIds], VpcId: PRODUCTION.vpcId });
    }
  });

  it('opens the endpoints on 443 to the runners\' security groups only', () => {
    const sg = template.findResources('AWS::EC2::SecurityGroup')[logicalIdOf(primary.network!.endpointSecurityGroup!)];
    expect(sg?.Properties.SecurityGroupIngress).toEqual([
      expect.objectContaining({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, SourceSecurityGroupId: PRODUCTION.securityGroupIds[0] }),
    ]);
    expect(JSON.stringify(sg?.Properties)).not.toContain('0.0.0.0/0');
  });

  it('warns when a step must reach another region, which the endpoints cannot', () => {
    Annotations.fromStack(primary).hasWarning('*', Match.stringLikeRegexp('call AWS in eu-central-1 .*VPC endpoints in eu-west-1 do not reach'));
  });

  it('creates no endpoints where the source manages its own egress, and still places functions in its VPC', () => {
    const usTemplate = Template.fromStack(us);
    usTemplate.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    for (const fn of Object.values(usTemplate.findResources('AWS::Lambda::Function'))) {
      expect(fn.Properties.VpcConfig).toEqual({ SubnetIds: ['subnet-0bbb1111bbbb2222c'], SecurityGroupIds: ['sg-0b23456789abcdef0'] });
    }
  });
});

/** Identity statements of one role in the primary template, minus what every runner has (logs, X-Ray, VPC) and the task callbacks. */
function accessStatements(roleLogicalId: string): string[] {
  const runnerPlumbing = /^(logs:|xray:|ec2:|states:SendTask)/;
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(`"${roleLogicalId}"`))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as PolicyStatementJson[])
    .flatMap((st) => asArray(st.Action).filter((a) => !runnerPlumbing.test(a)).map((a) => JSON.stringify({ a, r: asArray(st.Resource as unknown[]), c: st.Condition ?? null })))
    .sort();
}

describe('database access', () => {
  it('reads exactly the configured secrets and decrypts a customer-keyed secret only through Secrets Manager', () => {
    const dumpRole = logicalIdOf(primary.dumpFunction.role);
    const statements = accessStatements(dumpRole).map((s) => JSON.parse(s) as { a: string; r: unknown[]; c: unknown });
    expect(statements.filter((s) => s.a === 'secretsmanager:GetSecretValue').flatMap((s) => s.r).sort()).toEqual(
      [
        'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/billing-GhIjKl',
        'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/orders-AbCdEf',
        PRODUCTION.rdsManagedSecretArn,
      ].sort(),
    );
    expect(statements.filter((s) => s.a === 'kms:Decrypt' && s.r.includes(PRODUCTION.secretKeyArn))).toEqual([
      { a: 'kms:Decrypt', r: [PRODUCTION.secretKeyArn], c: { StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' } } },
    ]);
  });

  it('wraps every dump\'s data key under the vault\'s recovery key too, with kms:Encrypt only', () => {
    const env = template.findResources('AWS::Lambda::Function')[logicalIdOf(primary.dumpFunction.function)]?.Properties.Environment.Variables as Record<string, unknown>;
    expect(env.BACKUP_RECOVERY_KMS_KEY_ARNS).toBe(PRODUCTION.recoveryKeyArn);
    const onRecoveryKey = accessStatements(logicalIdOf(primary.dumpFunction.role))
      .map((s) => JSON.parse(s) as { a: string; r: unknown[] })
      .filter((s) => s.r.includes(PRODUCTION.recoveryKeyArn) || s.r.includes('*'));
    expect(onRecoveryKey).toEqual([{ a: 'kms:Encrypt', r: [PRODUCTION.recoveryKeyArn], c: null }]);
  });

  it('connects with RDS IAM authentication only as the configured user of the configured instance', () => {
    const statements = accessStatements(logicalIdOf(primary.dumpFunction.role)).map((s) => JSON.parse(s) as { a: string; r: unknown[] });
    expect(statements.filter((s) => actionMatches('rds-db:*', s.a))).toEqual([
      { a: 'rds-db:connect', r: [`arn:aws:rds-db:eu-west-1:111111111111:dbuser:${PRODUCTION.ledgerResourceId}/lifeboat_backup`], c: null },
    ]);
  });

  it('may look up the endpoints of RDS instances whose host the config does not name (an RDS-managed secret has none)', () => {
    // orders and reports name no host; billing does; ledger (IAM auth) must.
    const statements = accessStatements(logicalIdOf(primary.dumpFunction.role)).map((s) => JSON.parse(s) as { a: string; r: unknown[] });
    expect(statements.filter((s) => s.a.startsWith('rds:'))).toEqual([
      { a: 'rds:DescribeDBInstances', r: ['arn:aws:rds:eu-west-1:111111111111:db:orders-prod', 'arn:aws:rds:eu-west-1:111111111111:db:reports-prod'], c: null },
    ]);
  });

  it('verifies TLS against the RDS CA bundle: the image sets it, nothing overrides it, every database defaults to verify-full', () => {
    // The runner image points libpq and Node at the RDS bundle.
    const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/ENV PGSSLROOTCERT=\/opt\/rds-ca\/global-bundle\.pem/);
    expect(dockerfile).toMatch(/NODE_EXTRA_CA_CERTS=\/opt\/rds-ca\/global-bundle\.pem/);
    expect(dockerfile).toMatch(/ADD .*https:\/\/truststore\.pki\.rds\.amazonaws\.com\/global\/global-bundle\.pem \/opt\/rds-ca\/global-bundle\.pem/);
    // Both runners use that image and leave its TLS settings alone.
    const dump = template.findResources('AWS::Lambda::Function')[logicalIdOf(primary.dumpFunction.function)];
    expect(dump?.Properties.PackageType).toBe('Image');
    const containerEnv = (Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0]?.Properties.ContainerDefinitions as Array<{ Environment: Array<{ Name: string }> }>)[0]!.Environment;
    for (const names of [Object.keys(dump?.Properties.Environment.Variables ?? {}), containerEnv.map((e) => e.Name)]) {
      expect(names).not.toContain('PGSSLROOTCERT');
      expect(names).not.toContain('NODE_EXTRA_CA_CERTS');
      expect(names).not.toContain('PGSSLMODE');
    }
    // The schedules' databases carry sslMode verify-full (the config default).
    const scheduled = scheduledDatabases(primary);
    expect(scheduled.length).toBeGreaterThan(0);
    for (const db of scheduled) expect(db.connection.sslMode).toBe('verify-full');
  });
});

describe('Fargate dump task', () => {
  it('runs the runner image (the dump function\'s asset) on arm64 Fargate with a read-only root and its own log group', () => {
    const taskDefinitions = template.findResources('AWS::ECS::TaskDefinition');
    // The dump, the vault copy of its dumps, and the restore of its drills.
    expect(Object.keys(taskDefinitions).sort()).toEqual([primary.fargateDump!, primary.fargateVaultCopy!, primary.fargateDrillRestore!].map((r) => logicalIdOf(r.taskDefinition)).sort());
    const task = taskDefinitions[logicalIdOf(primary.fargateDump!.taskDefinition)]!.Properties;
    expect(task).toMatchObject({
      RequiresCompatibilities: ['FARGATE'],
      NetworkMode: 'awsvpc',
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
      Family: 'acme-lifeboat-dump',
      TaskRoleArn: { 'Fn::GetAtt': [logicalIdOf(primary.fargateDump!.taskRole), 'Arn'] },
    });
    const container = (task.ContainerDefinitions as Array<Record<string, unknown>>)[0]!;
    expect(container).toMatchObject({
      Name: DUMP_CONTAINER_NAME,
      EntryPoint: [FARGATE_TASK_COMMAND[0]],
      Command: FARGATE_TASK_COMMAND.slice(1),
      ReadonlyRootFilesystem: true,
      LogConfiguration: { LogDriver: 'awslogs', Options: expect.objectContaining({ 'awslogs-group': { Ref: logicalIdOf(primary.fargateDump!.logGroup) } }) },
    });
    // Same image: the Lambda's image URI and the container's name the same asset tag.
    const lambdaImage = JSON.stringify(template.findResources('AWS::Lambda::Function')[logicalIdOf(primary.dumpFunction.function)]?.Properties.Code.ImageUri);
    const tag = primary.runnerImage.assetHash;
    expect(lambdaImage).toContain(tag);
    expect(JSON.stringify(container.Image)).toContain(tag);
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 90 });
    template.hasResourceProperties('AWS::ECS::Cluster', { ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }] });
  });

  it('has the dump function\'s settings and exactly the dump function\'s grants', () => {
    // Settings: the same names and values (Powertools service "lifeboat-dump": the dead man's switch sees both runners).
    const lambdaEnv = template.findResources('AWS::Lambda::Function')[logicalIdOf(primary.dumpFunction.function)]?.Properties.Environment.Variables as Record<string, unknown>;
    const taskEnv = containerEnvironment(primary.fargateDump!);
    for (const name of ['BACKUP_BUCKET', 'BACKUP_PREFIX', 'BACKUP_KMS_KEY_ARN', 'POWERTOOLS_SERVICE_NAME', 'POWERTOOLS_METRICS_NAMESPACE']) {
      expect(taskEnv[name], name).toEqual(lambdaEnv[name]);
    }
    expect(taskEnv.POWERTOOLS_SERVICE_NAME).toBe(SERVICE_NAMES.dump);
    expect(taskEnv.LIFEBOAT_TASK_HANDLER).toBe('dump');
    // Grants: identical once each runner's plumbing (logs, X-Ray, network interfaces, task callbacks) is set aside.
    expect(accessStatements(logicalIdOf(primary.fargateDump!.taskRole))).toEqual(accessStatements(logicalIdOf(primary.dumpFunction.role)));
    expect(accessStatements(logicalIdOf(primary.dumpFunction.role)).length).toBeGreaterThan(5);
  });

  it('may report only to the per-database backup state machine that starts it, and cannot decrypt', () => {
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles).includes(logicalIdOf(primary.fargateDump!.taskRole)))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as PolicyStatementJson[]);
    expect(statements.filter((st) => asArray(st.Action).some((a) => a.startsWith('states:')))).toEqual([
      {
        Effect: 'Allow',
        Action: ['states:SendTaskFailure', 'states:SendTaskHeartbeat', 'states:SendTaskSuccess'],
        Resource: 'arn:aws:states:eu-west-1:111111111111:stateMachine:acme-lifeboat-backup-database',
      },
    ]);
    const envelopeKey = JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(primary.storage.envelopeKey), 'Arn'] });
    expect(statements.filter((st) => statementCoversAction(st, 'kms:Decrypt') && JSON.stringify(st.Resource).includes(envelopeKey))).toEqual([]);
  });

  it('gives the per-database backup definition the Fargate task, with RunTask in that cluster and PassRole to ECS tasks only', () => {
    // Prepare
    const stack = primary;
    const machine = template.findResources('AWS::StepFunctions::StateMachine')[logicalIdOf(stack.backupDatabase.stateMachine)]!;
    const backupRole = logicalIdOf(stack.backupDatabase.stateMachine.role);
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: backupRole }]))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as PolicyStatementJson[]);

    // Assess: the definition gets the real cluster, task definition, subnets and security groups.
    expect(Object.keys(machine.Properties.DefinitionSubstitutions)).toEqual(expect.arrayContaining([...FARGATE_PLACEHOLDERS]));
    expect(machine.Properties.DefinitionSubstitutions).toMatchObject({
      DumpClusterArn: { 'Fn::GetAtt': [logicalIdOf(stack.fargateDump!.cluster), 'Arn'] },
      DumpTaskDefinitionArn: { Ref: logicalIdOf(stack.fargateDump!.taskDefinition) },
      DumpSubnetIds: PRODUCTION.subnetIds.join(','),
      DumpSecurityGroupIds: PRODUCTION.securityGroupIds[0],
    });
    // RunTask on the dump's and the vault copy's task definitions (one statement), in that cluster only.
    const runTask = statements.filter((st) => statementCoversAction(st, 'ecs:RunTask'));
    expect(runTask).toHaveLength(1);
    expect(runTask[0]!.Condition).toEqual({ ArnEquals: { 'ecs:cluster': { 'Fn::GetAtt': [logicalIdOf(stack.fargateDump!.cluster), 'Arn'] } } });
    expect(asArray(runTask[0]!.Resource as unknown[])).toEqual(expect.arrayContaining([{ Ref: logicalIdOf(stack.fargateDump!.taskDefinition) }]));
    const passRole = statements.find((st) => statementCoversAction(st, 'iam:PassRole'))!;
    expect(passRole.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
    // Each runner's task role and execution role, nothing else.
    expect(asArray(passRole.Resource as unknown[])).toHaveLength(4);
    Annotations.fromStack(primary).hasNoWarning('*', Match.stringLikeRegexp('no Fargate states'));
  });
});

describe('Fargate vault copy task (the dumps of Fargate databases are too big for the vault copy function too)', () => {
  it('runs the vault copy job of the runner image in the dump\'s cluster, with the vault copy function\'s settings', () => {
    // Prepare
    const task = template.findResources('AWS::ECS::TaskDefinition')[logicalIdOf(primary.fargateVaultCopy!.taskDefinition)]!.Properties;
    const container = (task.ContainerDefinitions as Array<Record<string, unknown>>)[0]!;
    const lambdaEnv = template.findResources('AWS::Lambda::Function')[logicalIdOf(primary.vaultCopyFunction!.function)]?.Properties.Environment.Variables as Record<string, unknown>;
    const taskEnv = containerEnvironment(primary.fargateVaultCopy!);

    // Assess
    expect(task).toMatchObject({ Family: 'acme-lifeboat-vault-copy', RuntimePlatform: { CpuArchitecture: 'ARM64' }, TaskRoleArn: { 'Fn::GetAtt': [logicalIdOf(primary.fargateVaultCopy!.taskRole), 'Arn'] } });
    expect(container).toMatchObject({ Name: 'vault-copy', EntryPoint: [FARGATE_TASK_COMMAND[0]], Command: FARGATE_TASK_COMMAND.slice(1), ReadonlyRootFilesystem: true });
    expect(JSON.stringify(container.Image)).toContain(primary.runnerImage.assetHash);
    expect(primary.fargateVaultCopy!.cluster).toBe(primary.fargateDump!.cluster);
    expect(taskEnv.LIFEBOAT_TASK_HANDLER).toBe('vault-copy');
    expect(taskEnv.POWERTOOLS_SERVICE_NAME).toBe(SERVICE_NAMES.vaultCopy);
    for (const name of ['VAULT_ACCOUNT', 'VAULT_REGION', 'VAULT_BUCKET', 'VAULT_COPIER_ROLE_ARN', 'POWERTOOLS_METRICS_NAMESPACE']) expect(taskEnv[name], name).toEqual(lambdaEnv[name]);
  });

  it('has exactly the vault copy function\'s grants: it reads ciphertext, assumes the copier role, and can neither write a backup nor decrypt one', () => {
    // Prepare
    const role = logicalIdOf(primary.fargateVaultCopy!.taskRole);
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles).includes(role))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as PolicyStatementJson[]);
    const envelopeKey = JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(primary.storage.envelopeKey), 'Arn'] });

    // Assess
    expect(accessStatements(role)).toEqual(accessStatements(logicalIdOf(primary.vaultCopyFunction!.role)));
    expect(statements.some((st) => statementCoversAction(st, 'sts:AssumeRole') && JSON.stringify(st.Resource).includes('acme-lifeboat-vault-copier'))).toBe(true);
    expect(statements.filter((st) => statementCoversAction(st, 's3:PutObject') || statementCoversAction(st, 's3:DeleteObject'))).toEqual([]);
    expect(statements.filter((st) => statementCoversAction(st, 'kms:Decrypt') && JSON.stringify(st.Resource).includes(envelopeKey))).toEqual([]);
    expect(statements.filter((st) => asArray(st.Action).some((a) => a.startsWith('states:'))).map((st) => st.Resource)).toEqual(['arn:aws:states:eu-west-1:111111111111:stateMachine:acme-lifeboat-backup-database']);
  });

  it('is what the per-database backup definition starts for the vault copy, with RunTask on it in that cluster', () => {
    // Prepare
    const machine = template.findResources('AWS::StepFunctions::StateMachine')[logicalIdOf(primary.backupDatabase.stateMachine)]!;
    const backupRole = logicalIdOf(primary.backupDatabase.stateMachine.role);
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: backupRole }]))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as PolicyStatementJson[]);

    // Assess
    expect(machine.Properties.DefinitionSubstitutions).toMatchObject({ VaultCopyTaskDefinitionArn: { Ref: logicalIdOf(primary.fargateVaultCopy!.taskDefinition) } });
    const runTask = statements.filter((st) => statementCoversAction(st, 'ecs:RunTask'));
    expect(runTask).toHaveLength(1);
    expect(asArray(runTask[0]!.Resource as unknown[])).toEqual(expect.arrayContaining([{ Ref: logicalIdOf(primary.fargateVaultCopy!.taskDefinition) }]));
    expect(runTask[0]!.Condition).toEqual({ ArnEquals: { 'ecs:cluster': { 'Fn::GetAtt': [logicalIdOf(primary.fargateDump!.cluster), 'Arn'] } } });
  });

  it('is not created without a vault, and the definition then names an inert task definition', () => {
    // Prepare: the production config without its vault.
    const raw = productionConfigJson() as Record<string, unknown> & { plans: Array<Record<string, unknown>> };
    delete raw.vault;
    for (const plan of raw.plans) delete (plan.retention as Record<string, unknown> | undefined)?.vault;

    // Act
    const { stack, template: t } = synthApp({ config: raw });

    // Assess
    expect(stack.fargateDump).toBeDefined();
    expect(stack.fargateVaultCopy).toBeUndefined();
    expect(Object.keys(t.findResources('AWS::ECS::TaskDefinition'))).toHaveLength(2);
    const substitutions = t.findResources('AWS::StepFunctions::StateMachine')[logicalIdOf(stack.backupDatabase.stateMachine)]!.Properties.DefinitionSubstitutions;
    expect(JSON.stringify(substitutions.VaultCopyTaskDefinitionArn)).toContain('lifeboat-no-fargate-runner');
  });
});

describe('Fargate drill restore task (a database dumped on Fargate is restored there too)', () => {
  it('runs the drill restore job with the drill restore function\'s settings and exactly its grants: it may decrypt, and never write or delete a backup', () => {
    // Prepare
    const runner = primary.fargateDrillRestore!;
    const task = template.findResources('AWS::ECS::TaskDefinition')[logicalIdOf(runner.taskDefinition)]!.Properties;
    const taskEnv = containerEnvironment(runner);
    const lambdaEnv = template.findResources('AWS::Lambda::Function')[logicalIdOf(primary.drillRestoreFunction.function)]?.Properties.Environment.Variables as Record<string, unknown>;
    const role = logicalIdOf(runner.taskRole);
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles).includes(role))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as PolicyStatementJson[]);
    const envelopeKey = JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(primary.storage.envelopeKey), 'Arn'] });

    // Assess
    expect(task).toMatchObject({ Family: 'acme-lifeboat-drill-restore', EphemeralStorage: { SizeInGiB: 200 } });
    expect((task.ContainerDefinitions as Array<{ Name: string }>)[0]!.Name).toBe('drill-restore');
    expect(taskEnv.LIFEBOAT_TASK_HANDLER).toBe('drill-restore');
    for (const name of ['BACKUP_BUCKET', 'BACKUP_PREFIX', 'DRILL_DUMP_PROVISIONER', 'POWERTOOLS_SERVICE_NAME']) expect(taskEnv[name], name).toEqual(lambdaEnv[name]);
    expect(accessStatements(role)).toEqual(accessStatements(logicalIdOf(primary.drillRestoreFunction.role)));
    expect(statements.some((st) => statementCoversAction(st, 'kms:Decrypt') && JSON.stringify(st.Resource).includes(envelopeKey))).toBe(true);
    expect(statements.filter((st) => statementCoversAction(st, 's3:PutObject') || statementCoversAction(st, 's3:DeleteObject'))).toEqual([]);
    expect(statements.filter((st) => asArray(st.Action).some((a) => a.startsWith('states:'))).map((st) => st.Resource)).toEqual(['arn:aws:states:eu-west-1:111111111111:stateMachine:acme-lifeboat-drill-database']);
  });

  it('is what the per-database drill definition starts for the restore, with RunTask on it in the dump\'s cluster', () => {
    const machine = template.findResources('AWS::StepFunctions::StateMachine')[logicalIdOf(primary.drillDatabase.stateMachine)]!;
    expect(machine.Properties.DefinitionSubstitutions).toMatchObject({
      DrillRestoreTaskDefinitionArn: { Ref: logicalIdOf(primary.fargateDrillRestore!.taskDefinition) },
      DumpClusterArn: { 'Fn::GetAtt': [logicalIdOf(primary.fargateDump!.cluster), 'Arn'] },
    });
    const role = logicalIdOf(primary.drillDatabase.stateMachine.role);
    const runTask = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: role }]))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as PolicyStatementJson[])
      .filter((st) => statementCoversAction(st, 'ecs:RunTask'));
    expect(runTask.map((st) => st.Resource)).toEqual([{ Ref: logicalIdOf(primary.fargateDrillRestore!.taskDefinition) }]);
  });
});

/** A Fargate runner's container environment, by name. */
function containerEnvironment(runner: { taskDefinition: unknown }): Record<string, unknown> {
  const task = template.findResources('AWS::ECS::TaskDefinition')[logicalIdOf(runner.taskDefinition as never)]!.Properties;
  const container = (task.ContainerDefinitions as Array<{ Environment: Array<{ Name: string; Value: unknown }> }>)[0]!;
  return Object.fromEntries(container.Environment.map((e) => [e.Name, e.Value]));
}

describe('additional sources', () => {
  it('backs up each database from its own source stack only', () => {
    const inputs = (s: SourceStack) => scheduledDatabases(s).map((d) => d.id);
    expect(new Set(inputs(primary))).toEqual(new Set(['orders', 'billing', 'ledger', 'reports']));
    expect(inputs(us)).toEqual(['us-orders']);
    expect(us.config.databases.map((d) => d.id)).toEqual(['us-orders']);
    expect([...us.databaseAlarms.backupLate.keys()]).toEqual(['us-orders']);
  });
});

describe('alarms: one alert format, routed through the alert function', () => {
  it('names every alarm for routing (no direct action) except the alert path\'s own, which publish straight to SNS', () => {
    const alarms = resourcesOfType(templates, 'AWS::CloudWatch::Alarm');
    expect(alarms.length).toBeGreaterThan(8);
    for (const { file, logicalId, resource } of alarms) {
      const name = String(props(resource).AlarmName);
      if (name.startsWith('lifeboat-pipeline/')) {
        expect(props(resource).AlarmActions, `${file}#${logicalId}`).toHaveLength(1);
        continue;
      }
      expect(name, `${file}#${logicalId}`).toMatch(new RegExp(`^${routedAlarmPrefix('acme').replace(/\//g, '\\/')}`));
      expect(props(resource).AlarmActions, name).toBeUndefined();
      expect(parseAlarmDescription(String(props(resource).AlarmDescription)).metadata, name).toBeDefined();
    }
  });

  it('routes alarms going to ALARM by name prefix to the alert function, with retries and a dead-letter queue', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.cloudwatch'], 'detail-type': ['CloudWatch Alarm State Change'], detail: { alarmName: [{ prefix: 'lifeboat/acme/' }], state: { value: ['ALARM'] } } },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalIdOf(primary.alertFunction.function), 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalIdOf(primary.alarmRouting.deadLetterQueue), 'Arn'] } },
          RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 86400 },
        }),
      ],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', { Principal: 'events.amazonaws.com', Action: 'lambda:InvokeFunction' });
    for (const alarm of [primary.alarmRouting.alertErrorsAlarm, primary.alarmRouting.undeliveredAlarm]) {
      const resource = template.findResources('AWS::CloudWatch::Alarm')[logicalIdOf(alarm)];
      expect(resource?.Properties.AlarmName).toMatch(/^lifeboat-pipeline\/acme\//);
      expect(resource?.Properties.AlarmActions).toEqual([{ Ref: logicalIdOf(primary.alerts.topic) }]);
    }
    expect(pipelineAlarmName('acme', 'x').startsWith(routedAlarmPrefix('acme'))).toBe(false);
  });
});

describe('dead man\'s switch', () => {
  it('watches the metric the dump emits: same namespace, name and exact dimension set as Powertools writes it', () => {
    // Prepare: what the dump handler's singleMetric() prints, with the service name the stack gives the function.
    const lambdaEnv = template.findResources('AWS::Lambda::Function')[logicalIdOf(primary.dumpFunction.function)]?.Properties.Environment.Variables as Record<string, string>;
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    try {
      const single = new Metrics({ serviceName: lambdaEnv.POWERTOOLS_SERVICE_NAME, namespace: lambdaEnv.POWERTOOLS_METRICS_NAMESPACE }).singleMetric();
      single.addDimension('database', 'orders');
      single.addMetric(METRIC_NAMES.backupSucceeded, MetricUnit.Count, 1);
    } finally {
      spy.mockRestore();
    }
    const emf = JSON.parse(lines.find((l) => l.includes('CloudWatchMetrics'))!) as { _aws: { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string }> }> } } & Record<string, string>;
    const directive = emf._aws.CloudWatchMetrics[0]!;
    const emitted = Object.fromEntries(directive.Dimensions[0]!.map((name) => [name, emf[name]]));

    // Act
    const alarm = resourcesOfType(templates, 'AWS::CloudWatch::Alarm').find((a) => props(a.resource).AlarmName === 'lifeboat/acme/backup-late/orders')!;
    const p = props(alarm.resource) as { Namespace: string; MetricName: string; Dimensions: Array<{ Name: string; Value: string }> };

    // Assess
    expect(p.Namespace).toBe(directive.Namespace);
    expect(p.MetricName).toBe(directive.Metrics[0]!.Name);
    expect(Object.fromEntries(p.Dimensions.map((d) => [d.Name, d.Value]))).toEqual(emitted);
    expect(emitted).toEqual({ service: SERVICE_NAMES.dump, database: 'orders' });
    expect(directive.Namespace).toBe(METRICS_NAMESPACE);
  });

  it('alarms per dumped database when no success arrives within its tightest RPO, missing data counting as late', () => {
    const byName = new Map(resourcesOfType(templates, 'AWS::CloudWatch::Alarm').map((a) => [String(props(a.resource).AlarmName), props(a.resource)]));
    for (const [database, rpo] of [['orders', 1500], ['billing', 1500], ['ledger', 90], ['reports', 1500]] as const) {
      const alarm = byName.get(`lifeboat/acme/backup-late/${database}`) as Record<string, number | string>;
      const window = deadMansSwitchWindow(rpo)!;
      expect(alarm, database).toMatchObject({
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'breaching',
        Period: window.periodSeconds,
        EvaluationPeriods: window.evaluationPeriods,
        DatapointsToAlarm: window.evaluationPeriods,
      });
      expect(Number(alarm.Period) * (Number(alarm.EvaluationPeriods) - 1)).toBeGreaterThanOrEqual(rpo * 60);
      expect(parseAlarmDescription(String(alarm.AlarmDescription)).metadata).toMatchObject({ kind: 'backup-late', databaseId: database });
    }
    expect(byName.get('lifeboat/acme/backup-late/ledger')).toMatchObject({ Period: 300 });
  });
});

describe('dashboards', () => {
  it('has an overview and one dashboard per plan with a database selector and the plan\'s targets as annotations', () => {
    const dashboards = template.findResources('AWS::CloudWatch::Dashboard');
    expect(Object.values(dashboards).map((d) => d.Properties.DashboardName).sort()).toEqual(
      ['acme-lifeboat-overview', 'acme-lifeboat-plan-hourly', 'acme-lifeboat-plan-nightly', 'acme-lifeboat-plan-snapshots'].sort(),
    );
    const nightly = Object.values(dashboards).find((d) => d.Properties.DashboardName === 'acme-lifeboat-plan-nightly')!;
    // The body is JSON joined around region tokens.
    const parts = (nightly.Properties.DashboardBody as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1];
    const parsed = JSON.parse(parts.map((p) => (typeof p === 'string' ? p : 'eu-west-1')).join('')) as { variables: Array<Record<string, unknown>>; widgets: unknown[] };
    expect(parsed.variables).toEqual([
      expect.objectContaining({ type: 'property', property: 'database', inputType: 'select', defaultValue: 'orders', values: ['orders', 'billing', 'ledger', 'reports'].map((id) => ({ label: id, value: id })) }),
    ]);
    expect(parsed.widgets.length).toBeLessThanOrEqual(10);
    const body = JSON.stringify(parsed);
    expect(body).toContain('RPO 1500 min');
    expect(body).toContain('RTO target 60 min');
    expect(body).toContain('FILL(EPOCH(s), REPEAT)');
    for (const metric of [METRIC_NAMES.backupSucceeded, METRIC_NAMES.drillSucceeded, METRIC_NAMES.drillRtoSeconds, METRIC_NAMES.backupStoredBytes, METRIC_NAMES.backupFailed]) {
      expect(body).toContain(metric);
    }
  });
});
