import { readFileSync } from 'node:fs';
import { stateMachinePath } from '../../state-machines/definitions.ts';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { backupRunInput } from '../../events/schedules.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { exampleConfigJson, logicalIdOf, repoRoot, synthApp, type Synthesized } from './helpers/app.ts';

// One synth of the example config (plus a few variations) for the whole file.
let synthesized: Synthesized;
let template: Template;
beforeAll(() => {
  synthesized = synthApp();
  template = synthesized.template;
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
    // Prepare
    const config = exampleConfigJson();
    const kmsKeyArn = 'arn:aws:kms:eu-west-1:111111111111:key/11111111-2222-3333-4444-555555555555';
    (config.storage as Record<string, unknown>).kmsKeyArn = kmsKeyArn;

    // Act
    const { template: withKey } = synthApp({ config });

    // Assess
    expect(Object.keys(withKey.findResources('AWS::KMS::Key'))).toHaveLength(2);
    withKey.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ BACKUP_KMS_KEY_ARN: kmsKeyArn }) },
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
    // Prepare
    const config = exampleConfigJson();
    config.alerts = {
      subscribers: [
        { protocol: 'https', endpoint: 'https://hooks.example.com/lifeboat' },
        { protocol: 'sqs', endpoint: 'arn:aws:sqs:eu-west-1:111111111111:lifeboat-alerts' },
        { protocol: 'lambda', endpoint: 'arn:aws:lambda:eu-west-1:111111111111:function:pager' },
      ],
    };

    // Act
    const { template: subscribed } = synthApp({ config });

    // Assess
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
    template.resourceCountIs('AWS::Scheduler::Schedule', 1);
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 3 * * ? *)',
      ScheduleExpressionTimezone: 'Europe/Berlin',
      FlexibleTimeWindow: { Mode: 'FLEXIBLE', MaximumWindowInMinutes: 15 },
      State: 'ENABLED',
    });
  });

  it('starts the backup state machine with the plan id, its max concurrency and its parsed databases', () => {
    // Prepare
    const expected = backupRunInput(parseConfig(exampleConfigJson()), 'nightly');

    // Act
    const schedules = Object.values(template.findResources('AWS::Scheduler::Schedule'));
    const target = schedules[0]?.Properties.Target as { Arn: unknown; Input: string; RoleArn: unknown };

    // Assess
    expect(target.Arn).toEqual({ Ref: logicalIdOf(synthesized.stack.backup.stateMachine) });
    expect(target.RoleArn).toEqual({ 'Fn::GetAtt': [logicalIdOf(synthesized.stack.schedulerRole), 'Arn'] });
    expect(JSON.parse(target.Input)).toEqual(expected);
    expect(JSON.parse(target.Input)).toMatchObject({ planId: 'nightly', maxConcurrency: 4 });
  });

  it('runs a plan without a flexible window exactly on time, in UTC by default', () => {
    // Prepare
    const config = exampleConfigJson();
    const plan = (config.plans as Array<Record<string, unknown>>)[0]!;
    plan.schedule = { cron: 'cron(30 1 * * ? *)' };

    // Act
    const { template: onTime } = synthApp({ config });

    // Assess
    onTime.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
    });
  });

  it('lets the scheduler role start the backup state machine and do nothing else', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: logicalIdOf(synthesized.stack.schedulerRole) }],
      PolicyDocument: {
        Statement: [{ Effect: 'Allow', Action: 'states:StartExecution', Resource: { Ref: logicalIdOf(synthesized.stack.backup.stateMachine) } }],
      },
    });
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({ Principal: { Service: 'scheduler.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': '111111111111' } } })],
      },
    });
  });
});

describe('source stack: backup state machine', () => {
  it('inlines the shared definition, named for operators, with the dump and alert function ARNs substituted', () => {
    const functions = synthesized.stack;
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'acme-lifeboat-backup',
      DefinitionString: readFileSync(stateMachinePath('backup'), 'utf8'),
      DefinitionSubstitutions: {
        DumpFunctionArn: { 'Fn::GetAtt': [logicalIdOf(functions.dumpFunction.function), 'Arn'] },
        AlertFunctionArn: { 'Fn::GetAtt': [logicalIdOf(functions.alertFunction.function), 'Arn'] },
      },
    });
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

  it('may invoke exactly the dump and alert functions', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: logicalIdOf(synthesized.stack.backup.stateMachine.role) }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: 'lambda:InvokeFunction',
            Resource: [
              { 'Fn::GetAtt': [logicalIdOf(synthesized.stack.alertFunction.function), 'Arn'] },
              { 'Fn::GetAtt': [logicalIdOf(synthesized.stack.dumpFunction.function), 'Arn'] },
            ],
          },
        ]),
      },
    });
  });

  it('alarms on any failed, timed-out or aborted execution and publishes the alarm to the alert topic', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: logicalIdOf(synthesized.stack.alerts.topic) }],
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
