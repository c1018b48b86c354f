import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { placeholders, stateMachinePath } from '../../state-machines/definitions.ts';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { Duration } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { withExecutionTimeout } from '../../infra/constructs/monitored-state-machine.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { exampleConfigJson, logicalIdOf, repoRoot, synthApp, type Synthesized } from './helpers/app.ts';
import { describeGrants, findGrants, type CfnTemplateJson } from './helpers/iam-walker.ts';

const EXISTING_KEY_ARN = 'arn:aws:kms:eu-west-1:111111111111:key/11111111-2222-3333-4444-555555555555';

/** The example config with every variation the tests below need: an existing envelope key, more subscriber kinds, a plan without window or time zone. */
function variantConfig(): Record<string, unknown> {
  const config = exampleConfigJson();
  (config.storage as Record<string, unknown>).kmsKeyArn = EXISTING_KEY_ARN;
  config.alerts = {
    subscribers: [
      { protocol: 'https', endpoint: 'https://hooks.example.com/lifeboat' },
      { protocol: 'sqs', endpoint: 'arn:aws:sqs:eu-west-1:111111111111:lifeboat-alerts' },
      { protocol: 'lambda', endpoint: 'arn:aws:lambda:eu-west-1:111111111111:function:pager' },
    ],
  };
  (config.plans as Array<Record<string, unknown>>)[0]!.schedule = { cron: 'cron(30 1 * * ? *)' };
  return config;
}

// Two synths for the whole file: the example config and one variant of it.
let synthesized: Synthesized;
let template: Template;
let variant: Template;
let variantSynth: Synthesized;
beforeAll(() => {
  // The example config with CDK's own NodejsFunction bundling, exactly as `cdk synth`.
  synthesized = synthApp({ realBundling: true });
  template = synthesized.template;
  variantSynth = synthApp({ config: variantConfig() });
  variant = variantSynth.template;
});

describe('source stack: backup bucket', () => {
  it('encrypts the bucket with SSE-KMS under the stack bucket key, with an S3 bucket key', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: { 'Fn::GetAtt': [logicalIdOf(synthesized.stack.storage.bucketKey), 'Arn'] },
            },
            BucketKeyEnabled: true,
          },
        ],
      },
    });
  });

  it('versions the bucket and blocks every kind of public access', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: Match.objectLike({ ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }) })] }),
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
    });
  });

  it('denies every request to the bucket that does not use TLS', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logicalIdOf(synthesized.stack.storage.bucket) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Principal: { AWS: '*' },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('aborts incomplete multipart uploads after a day', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: Match.objectLike({ ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }) })] }),
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } })]),
      },
    });
  });

  it('logs bucket access to a separate bucket', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      LoggingConfiguration: {
        DestinationBucketName: { Ref: logicalIdOf(synthesized.stack.storage.accessLogsBucket) },
        LogFilePrefix: 'backup-bucket/',
      },
    });
  });
});

describe('source stack: KMS keys', () => {
  it('rotates every key it creates', () => {
    const keys = template.findResources('AWS::KMS::Key');
    // envelope, bucket and alert-topic keys
    expect(Object.keys(keys)).toHaveLength(3);
    for (const key of Object.values(keys)) expect(key.Properties.EnableKeyRotation).toBe(true);
  });

  it('keeps the envelope key apart from the bucket key', () => {
    expect(logicalIdOf(synthesized.stack.storage.envelopeKey)).not.toBe(logicalIdOf(synthesized.stack.storage.bucketKey));
  });

  it('uses an existing envelope key when the config names one, and creates none', () => {
    expect(Object.keys(variant.findResources('AWS::KMS::Key'))).toHaveLength(2);
    variant.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ BACKUP_KMS_KEY_ARN: EXISTING_KEY_ARN }) },
    });
  });
});

describe('source stack: alerts', () => {
  it('creates an encrypted topic that only accepts TLS', () => {
    template.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: { 'Fn::GetAtt': [logicalIdOf(synthesized.stack.alerts.key), 'Arn'] },
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
      },
    });
  });

  it('subscribes the config alert subscribers to the topic', () => {
    template.resourceCountIs('AWS::SNS::Subscription', 1);
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
      TopicArn: { Ref: logicalIdOf(synthesized.stack.alerts.topic) },
    });
  });

  it('subscribes https, sqs and lambda endpoints with their protocols', () => {
    const subscribed = variant;
    subscribed.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'https', Endpoint: 'https://hooks.example.com/lifeboat' });
    subscribed.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'sqs', Endpoint: 'arn:aws:sqs:eu-west-1:111111111111:lifeboat-alerts' });
    subscribed.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'lambda', Endpoint: 'arn:aws:lambda:eu-west-1:111111111111:function:pager' });
    // A same-account function gets an invoke permission for the topic.
    subscribed.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'sns.amazonaws.com',
      FunctionName: 'arn:aws:lambda:eu-west-1:111111111111:function:pager',
    });
  });
});

describe('source stack: schedules', () => {
  it('creates one schedule per plan in the plan time zone with its flexible window', () => {
    const backupMachine = { Ref: logicalIdOf(synthesized.stack.backup.stateMachine) };
    const backups = Object.values(template.findResources('AWS::Scheduler::Schedule')).filter((r) => JSON.stringify(r.Properties.Target.Arn) === JSON.stringify(backupMachine));
    expect(backups).toHaveLength(1);
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 3 * * ? *)',
      ScheduleExpressionTimezone: 'Europe/Berlin',
      FlexibleTimeWindow: { Mode: 'FLEXIBLE', MaximumWindowInMinutes: 15 },
      State: 'ENABLED',
    });
  });

  it('starts the backup state machine with the plan id only', () => {
    // Act
    const schedules = Object.values(template.findResources('AWS::Scheduler::Schedule'));
    const target = schedules.find((r) => JSON.stringify(r.Properties.Target.Arn) === JSON.stringify({ Ref: logicalIdOf(synthesized.stack.backup.stateMachine) }))?.Properties
      .Target as { Arn: unknown; Input: string; RoleArn: unknown };

    // Assess
    expect(target.Arn).toEqual({ Ref: logicalIdOf(synthesized.stack.backup.stateMachine) });
    expect(target.RoleArn).toEqual({ 'Fn::GetAtt': [logicalIdOf(synthesized.stack.schedulerRole), 'Arn'] });
    expect(JSON.parse(target.Input)).toEqual({ planId: 'nightly' });
  });

  it('publishes the deployed config as one object whose sha256 each reader has in its environment, and lets only those read it', () => {
    // Prepare
    const stack = variantSynth.stack;
    const { asset, sha256 } = stack.deploymentConfig;

    // Act
    const stored = readFileSync(join(variantSynth.outdir, `asset.${asset.assetHash}.json`));
    const functions = Object.values(variant.findResources('AWS::Lambda::Function'));
    const readers = functions.filter((f) => f.Properties.Environment?.Variables?.LIFEBOAT_CONFIG_SHA256 !== undefined);
    const grants = Object.values(variant.findResources('AWS::IAM::Policy'))
      .flatMap((p) => (p.Properties.PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>).map((st) => ({ roles: p.Properties.Roles, st })))
      .filter(({ st }) => JSON.stringify(st.Resource).includes(asset.s3ObjectKey));

    // Assess: the bytes are the validated config, the hash matches them, and no secret is in them.
    expect(createHash('sha256').update(stored).digest('hex')).toBe(sha256);
    expect(JSON.parse(stored.toString('utf8'))).toEqual(parseConfig(variantConfig()));
    // (connection.passwordAuth names how a password may be sent, not one.)
    expect(stored.toString('utf8').replace(/"passwordAuth": "(scram-sha-256|any)"/g, '')).not.toMatch(/password/i);
    // The runners that resolve databases or plans read it: dump, plan and snapshot functions.
    expect(readers.length).toBeGreaterThanOrEqual(2);
    for (const f of readers) expect(f.Properties.Environment.Variables.LIFEBOAT_CONFIG_SHA256).toBe(sha256);
    expect(grants.length).toBe(readers.length);
    for (const { st } of grants) expect(st.Action).toBe('s3:GetObject');
  });

  it('runs a plan without a flexible window exactly on time, in UTC by default', () => {
    variant.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(30 1 * * ? *)',
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
    });
  });

  it('lets the scheduler role start the scheduled state machines and park failed starts in the dead-letter queue, nothing else', () => {
    // The example config schedules backup, retention and the janitor; it has no drills section, so no drill schedule.
    const stack = synthesized.stack;
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: logicalIdOf(stack.schedulerRole) }],
      PolicyDocument: {
        Statement: [
          { Effect: 'Allow', Action: 'states:StartExecution', Resource: [stack.backup, stack.janitor, stack.retention].map((m) => ({ Ref: logicalIdOf(m.stateMachine) })) },
          { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: { 'Fn::GetAtt': [logicalIdOf(stack.alarmRouting.deadLetterQueue), 'Arn'] } },
        ],
      },
    });
    expect(stack.drillSchedule).toBeUndefined();
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({ Principal: { Service: 'scheduler.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': '111111111111' } } })],
      },
    });
  });
});

describe('source stack: backup state machine', () => {
  it('inlines the shared definitions, named for operators, with the function and child state machine ARNs substituted', () => {
    const stack = synthesized.stack;
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'acme-lifeboat-backup',
      // The file as it is, with the execution timeout (24 h) CDK leaves out of string definitions.
      DefinitionString: withExecutionTimeout(readFileSync(stateMachinePath('backup'), 'utf8'), Duration.hours(24), 'backup'),
      DefinitionSubstitutions: {
        PlanFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.planFunction.function), 'Arn'] },
        AlertFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.alertFunction.function), 'Arn'] },
        PitrFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.pitrFunction.function), 'Arn'] },
        BackupDatabaseStateMachineArn: { Ref: logicalIdOf(stack.backupDatabase.stateMachine) },
      },
    });
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'acme-lifeboat-backup-database',
      DefinitionString: withExecutionTimeout(readFileSync(stateMachinePath('backup-database'), 'utf8'), Duration.hours(24), 'backup-database'),
      DefinitionSubstitutions: Match.objectLike({
        DumpFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.dumpFunction.function), 'Arn'] },
        AlertFunctionArn: { 'Fn::GetAtt': [logicalIdOf(stack.alertFunction.function), 'Arn'] },
      }),
    });
  });

  it('lets the backup workflow start and follow its per-database child executions, nothing more', () => {
    // Prepare
    const stack = synthesized.stack;
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: logicalIdOf(stack.backup.stateMachine.role) }]))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>);
    const on = (action: string) => statements.filter((st) => [st.Action].flat().includes(action)).flatMap((st) => [st.Resource].flat());

    // Assess
    expect(on('states:StartExecution')).toEqual([{ Ref: logicalIdOf(stack.backupDatabase.stateMachine) }]);
    expect(JSON.stringify(on('states:DescribeExecution'))).toContain(':execution:acme-lifeboat-backup-database:*');
    expect(JSON.stringify(on('states:StopExecution'))).toContain(':execution:acme-lifeboat-backup-database:*');
    expect(JSON.stringify(on('events:PutRule'))).toContain('rule/StepFunctionsGetEventsForStepFunctionsExecutionRule');
  });

  it('logs every event without execution data and traces with X-Ray', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: {
        Level: 'ALL',
        IncludeExecutionData: false,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logicalIdOf(synthesized.stack.backup.logGroup), 'Arn'] } } }],
      },
      TracingConfiguration: { Enabled: true },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/vendedlogs/states/lifeboat/acme/backup',
      RetentionInDays: 90,
    });
  });

  it('may invoke exactly the functions its definition calls', () => {
    // Prepare: the functions behind the definition's placeholders.
    const stack = synthesized.stack;
    const called = [stack.dumpFunction, stack.alertFunction, stack.snapshotFunction, stack.vaultCopyFunction].flatMap((f) => (f ? [f] : []));
    expect(called.length).toBe(placeholders('backup-database').filter((p) => p.endsWith('FunctionArn')).length);

    // Act
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: logicalIdOf(stack.backupDatabase.stateMachine.role) }]))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>)
      .filter((st) => st.Action === 'lambda:InvokeFunction');

    // Assess
    expect(statements).toHaveLength(1);
    expect([statements[0]!.Resource].flat()).toEqual(
      expect.arrayContaining(called.map((f) => ({ 'Fn::GetAtt': [logicalIdOf(f.function), 'Arn'] }))),
    );
    expect([statements[0]!.Resource].flat()).toHaveLength(called.length);
  });

  it('alarms on any failed, timed-out or aborted execution, named for routing to the alert function', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'lifeboat/acme/backup-failed/backup-executions',
      AlarmDescription: Match.stringLikeRegexp('lifeboat-alert: \\{"kind":"backup-failed"'),
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
      AlarmActions: Match.absent(),
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'failed + timedOut + aborted' }),
        Match.objectLike({ Id: 'failed', MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'ExecutionsFailed', Namespace: 'AWS/States' }), Stat: 'Sum' }) }),
        Match.objectLike({ Id: 'timedOut', MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'ExecutionsTimedOut' }) }) }),
        Match.objectLike({ Id: 'aborted', MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'ExecutionsAborted' }) }) }),
      ]),
    });
  });

  it('lets CloudWatch alarms use the alert key and publish to the topic', () => {
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey*'] }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: 'sns:Publish', Effect: 'Allow' })]),
      },
    });
  });
});

describe('source stack: functions', () => {
  it('runs the dump as an arm64 container image with active tracing, 15 minutes and its own log group', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      PackageType: 'Image',
      Code: { ImageUri: Match.anyValue() },
      ImageConfig: { Command: ['functions/dump/handler.handler'] },
      Architectures: ['arm64'],
      TracingConfig: { Mode: 'Active' },
      Timeout: 900,
      MemorySize: 2048,
      LoggingConfig: { LogGroup: { Ref: logicalIdOf(synthesized.stack.dumpFunction.logGroup) } },
    });
  });

  it('runs the alert function on nodejs22.x, arm64, with active tracing and its own log group', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Handler: 'index.handler',
      Architectures: ['arm64'],
      TracingConfig: { Mode: 'Active' },
      Timeout: 30,
      LoggingConfig: { LogGroup: { Ref: logicalIdOf(synthesized.stack.alertFunction.logGroup) } },
      Environment: {
        Variables: Match.objectLike({
          ALERT_TOPIC_ARN: { Ref: logicalIdOf(synthesized.stack.alerts.topic) },
          NODE_OPTIONS: '--enable-source-maps',
          POWERTOOLS_SERVICE_NAME: 'lifeboat-alert',
        }),
      },
    });
  });

  it('bundles the alert handler into an ES module that Node loads and that exports `handler`', () => {
    // Prepare: the asset directory, copied under the repo so its external @aws-sdk imports resolve.
    const alert = template.findResources('AWS::Lambda::Function')[logicalIdOf(synthesized.stack.alertFunction.function)];
    const assetHash = String((alert?.Properties.Code as { S3Key: string }).S3Key).replace(/\.zip$/, '');
    mkdirSync(join(repoRoot, '.lifeboat-tmp'), { recursive: true });
    const dir = mkdtempSync(join(repoRoot, '.lifeboat-tmp', 'alert-bundle-'));
    try {
      cpSync(join(synthesized.outdir, `asset.${assetHash}`), dir, { recursive: true });

      // Act
      const result = spawnSync(
        process.execPath,
        ['--enable-source-maps', '--input-type=module', '-e', `const m = await import(${JSON.stringify(pathToFileURL(join(dir, 'index.mjs')).href)}); console.log(typeof m.handler);`],
        { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:111111111111:alerts' } },
      );

      // Assess
      expect(result.stderr).toBe('');
      expect(result.stdout.trim()).toBe('function');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps function logs for three months', () => {
    for (const fn of [synthesized.stack.dumpFunction, synthesized.stack.alertFunction]) {
      const logGroup = template.findResources('AWS::Logs::LogGroup')[logicalIdOf(fn.logGroup)];
      expect(logGroup?.Properties.RetentionInDays).toBe(90);
    }
  });

  it('gives the dump function the bucket, prefix, envelope key and Powertools settings', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      PackageType: 'Image',
      Environment: {
        Variables: {
          BACKUP_BUCKET: { Ref: logicalIdOf(synthesized.stack.storage.bucket) },
          BACKUP_PREFIX: 'backups/',
          BACKUP_KMS_KEY_ARN: { 'Fn::GetAtt': [logicalIdOf(synthesized.stack.storage.envelopeKey), 'Arn'] },
          POWERTOOLS_SERVICE_NAME: 'lifeboat-dump',
          POWERTOOLS_METRICS_NAMESPACE: 'lifeboat',
          LOG_LEVEL: 'INFO',
        },
      },
    });
  });

  it('lets the dump read exactly the configured database secrets', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: logicalIdOf(synthesized.stack.dumpFunction.role) }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: 'secretsmanager:GetSecretValue',
            Resource: [
              'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/billing-GhIjKl',
              'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/orders-AbCdEf',
            ],
          },
        ]),
      },
    });
  });

  it('attaches no managed policies to any function role', () => {
    for (const fn of [synthesized.stack.dumpFunction, synthesized.stack.alertFunction]) {
      const role = template.findResources('AWS::IAM::Role')[logicalIdOf(fn.role)];
      expect(role?.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });
});

describe('source stack: identity', () => {
  it('takes its stack name from the config name and its environment from config.source', () => {
    expect(synthesized.stack.stackName).toBe('acme-lifeboat-source');
    expect(synthesized.stack.account).toBe('111111111111');
    expect(synthesized.stack.region).toBe('eu-west-1');
  });
});

// DESIGN principle 4, "writers can't read": the dump role generates data keys
// under the envelope key but can never decrypt them, read a backup or delete one.
describe('the dump role', () => {
  let json: CfnTemplateJson;
  let dumpRole: string;
  let envelopeKey: { logicalId: string };
  beforeAll(() => {
    json = template.toJSON() as CfnTemplateJson;
    dumpRole = logicalIdOf(synthesized.stack.dumpFunction.role);
    envelopeKey = { logicalId: logicalIdOf(synthesized.stack.storage.envelopeKey) };
  });

  it('may generate data keys under the envelope key (so the walker sees its real policies)', () => {
    const grants = findGrants(json, dumpRole, { actions: ['kms:GenerateDataKey'], on: envelopeKey, service: 'kms' });
    expect(grants.length, 'expected the dump role to be able to generate envelope data keys').toBeGreaterThan(0);
  });

  it('cannot decrypt with the envelope key, through any action wildcard or policy', () => {
    // Act
    const grants = findGrants(json, dumpRole, {
      actions: ['kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:CreateGrant', 'kms:PutKeyPolicy'],
      on: envelopeKey,
      service: 'kms',
    });

    // Assess
    expect(grants, `the dump role can decrypt envelope data keys:\n${describeGrants(grants)}`).toEqual([]);
  });

  it('cannot delete, read or change the retention of any backup object', () => {
    // Act: in the backup bucket (it reads one object elsewhere: the deployed config).
    const grants = findGrants(json, dumpRole, {
      on: { logicalId: logicalIdOf(synthesized.stack.storage.bucket) },
      actions: [
        's3:DeleteObject',
        's3:DeleteObjectVersion',
        's3:DeleteBucket',
        's3:PutLifecycleConfiguration',
        's3:PutBucketPolicy',
        's3:PutObjectRetention',
        's3:BypassGovernanceRetention',
        's3:GetObject',
        's3:GetObjectVersion',
      ],
    });

    // Assess
    expect(grants, `the dump role can delete or read backups:\n${describeGrants(grants)}`).toEqual([]);
  });

  it('may use the bucket key, needed for multipart uploads under SSE-KMS, only through S3', () => {
    // Prepare
    const bucketKey = { logicalId: logicalIdOf(synthesized.stack.storage.bucketKey) };

    // Act
    const grants = findGrants(json, dumpRole, { actions: ['kms:Decrypt'], on: bucketKey, service: 'kms' });

    // Assess
    expect(grants).toHaveLength(1);
    expect(grants[0]?.statement.Condition).toEqual({ StringEquals: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' } });
  });

  it('writes only under the backup prefix', () => {
    const grants = findGrants(json, dumpRole, { actions: ['s3:PutObject'] });
    expect(grants.map((g) => g.statement.Resource)).toEqual([
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalIdOf(synthesized.stack.storage.bucket), 'Arn'] }, '/backups/*']] },
    ]);
  });
});
