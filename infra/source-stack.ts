import { fileURLToPath } from 'node:url';
import { Duration, Stack, Tags, TimeZone, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type { Construct } from 'constructs';
import { parseConfig } from '../functions/lib/config/load.ts';
import type { LifeboatConfig, LifeboatConfigInput } from '../functions/lib/config/schema.ts';
import { backupSchedules } from '../events/schedules.ts';
import { checkSourceStackSupport } from './config.ts';
import { Alerts } from './constructs/alerts.ts';
import { BackupStorage } from './constructs/backup-storage.ts';
import { MonitoredStateMachine } from './constructs/monitored-state-machine.ts';
import { ProjectFunction, type ProjectFunctionSource } from './constructs/project-function.ts';

/** The repository root: the Docker build context and the esbuild project root. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

/** Powertools metrics namespace shared by the project's functions. */
export const METRICS_NAMESPACE = 'lifeboat';

/**
 * Left out of the dump image's build context on top of any `.dockerignore`:
 * local state and things the image never needs. Keeps synth from copying
 * node_modules into cdk.out.
 */
export const DUMP_IMAGE_EXCLUDES = [
  'node_modules',
  '.git',
  'cdk.out',
  'coverage',
  'test-results',
  '.lifeboat-tmp',
  '*.tsbuildinfo',
];

/** Where the functions' code comes from; the defaults are the production sources. */
export interface SourceStackCode {
  /**
   * The pg_dump runner.
   * @default - a container image built from `Dockerfile` at the repo root, CMD `functions/dump/handler.handler`
   */
  readonly dump?: ProjectFunctionSource;
  /**
   * The alert publisher.
   * @default - `functions/alert/handler.ts` bundled with the local esbuild
   */
  readonly alert?: ProjectFunctionSource;
}

export interface SourceStackProps extends StackProps {
  /**
   * The lifeboat config. It is validated (again) here, so a bad config fails
   * synth with a ConfigError naming each bad field's path.
   */
  readonly config: LifeboatConfigInput | LifeboatConfig;
  /** @default - production sources, see SourceStackCode */
  readonly code?: SourceStackCode;
}

export function defaultDumpSource(): ProjectFunctionSource {
  return {
    kind: 'image',
    directory: REPO_ROOT,
    file: 'Dockerfile',
    cmd: ['functions/dump/handler.handler'],
    exclude: DUMP_IMAGE_EXCLUDES,
  };
}

export function defaultAlertSource(): ProjectFunctionSource {
  return { kind: 'nodejs', entry: `${REPO_ROOT}/functions/alert/handler.ts`, handler: 'handler', projectRoot: REPO_ROOT };
}

/** `acme` → `acme-lifeboat-source`. */
export function sourceStackName(config: Pick<LifeboatConfig, 'name'>): string {
  return `${config.name}-lifeboat-source`;
}

/**
 * One per account and region that holds databases: the backup bucket and keys,
 * the dump and alert functions, the backup state machine, one schedule per plan,
 * the alert topic and the failure alarms.
 */
export class SourceStack extends Stack {
  /** The validated config, defaults filled. */
  public readonly config: LifeboatConfig;
  public readonly storage: BackupStorage;
  public readonly alerts: Alerts;
  public readonly dumpFunction: ProjectFunction;
  public readonly alertFunction: ProjectFunction;
  public readonly backup: MonitoredStateMachine;
  /** Starts the backup state machine; may do nothing else. */
  public readonly schedulerRole: iam.Role;
  /** Plan id → its schedule. */
  public readonly schedules: ReadonlyMap<string, scheduler.Schedule>;

  constructor(scope: Construct, id: string, props: SourceStackProps) {
    const { config: input, code, ...stackProps } = props;
    const config = parseConfig(input, `the config given to stack "${id}"`);
    checkSourceStackSupport(config, `the config given to stack "${id}"`);
    super(scope, id, {
      stackName: sourceStackName(config),
      description: `lifeboat ${config.name}: PostgreSQL backups (dumps, schedules, alerts) for ${config.source.region}.`,
      ...stackProps,
      env: { account: config.source.account ?? stackProps.env?.account, region: config.source.region },
    });
    this.config = config;
    Tags.of(this).add('lifeboat:deployment', config.name);

    this.storage = new BackupStorage(this, 'Storage', {
      aliasPrefix: `lifeboat/${config.name}`,
      prefix: config.storage.prefix,
      envelopeKeyArn: config.storage.kmsKeyArn,
    });

    this.alerts = new Alerts(this, 'Alerts', {
      aliasPrefix: `lifeboat/${config.name}`,
      subscribers: config.alerts.subscribers,
    });

    this.dumpFunction = new ProjectFunction(this, 'DumpFunction', {
      source: code?.dump ?? defaultDumpSource(),
      description: `lifeboat ${config.name}: pg_dump a database, compress, envelope-encrypt and stream it to S3.`,
      serviceName: 'lifeboat-dump',
      metricsNamespace: METRICS_NAMESPACE,
      timeout: Duration.minutes(15),
      memorySize: 2048,
      environment: { BACKUP_PREFIX: config.storage.prefix },
    });
    this.dumpFunction
      .addResourceEnvironment('BACKUP_BUCKET', this.storage.bucket.bucketName, (g) => this.storage.grantWriteBackups(g))
      .addResourceEnvironment('BACKUP_KMS_KEY_ARN', this.storage.envelopeKey.keyArn, (g) => this.storage.grantEnvelopeEncrypt(g));
    const secretArns = [...new Set(config.databases.flatMap((db) => db.connection.secretArn ?? []))].sort();
    if (secretArns.length > 0) {
      this.dumpFunction.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: secretArns }),
      );
    }

    this.alertFunction = new ProjectFunction(this, 'AlertFunction', {
      source: code?.alert ?? defaultAlertSource(),
      description: `lifeboat ${config.name}: publish backup, drill and lateness alerts to SNS.`,
      serviceName: 'lifeboat-alert',
      metricsNamespace: METRICS_NAMESPACE,
      timeout: Duration.seconds(30),
      memorySize: 256,
    });
    this.alertFunction.addResourceEnvironment('ALERT_TOPIC_ARN', this.alerts.topic.topicArn, (g) => this.alerts.grantPublish(g));

    this.backup = new MonitoredStateMachine(this, 'Backup', {
      definition: 'backup',
      substitutions: {
        DumpFunctionArn: this.dumpFunction.functionArn,
        AlertFunctionArn: this.alertFunction.functionArn,
      },
      invokedFunctions: [this.dumpFunction.function, this.alertFunction.function],
      alarmTopic: this.alerts.topic,
      logGroupName: `/aws/vendedlogs/states/lifeboat/${config.name}/backup`,
      stateMachineName: `${config.name}-lifeboat-backup`,
    });

    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      description: `lifeboat ${config.name}: lets EventBridge Scheduler start the backup state machine, nothing else.`,
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    });

    const schedules = new Map<string, scheduler.Schedule>();
    for (const plan of backupSchedules(config)) {
      const schedule = new scheduler.Schedule(this, `BackupSchedule-${plan.planId}`, {
        description: `lifeboat ${config.name}: back up plan "${plan.planId}"`,
        schedule: scheduler.ScheduleExpression.expression(plan.expression, TimeZone.of(plan.timeZone)),
        timeWindow:
          plan.flexibleWindowMinutes > 0
            ? scheduler.TimeWindow.flexible(Duration.minutes(plan.flexibleWindowMinutes))
            : scheduler.TimeWindow.off(),
        target: new schedulerTargets.StepFunctionsStartExecution(this.backup.stateMachine, {
          role: this.schedulerRole,
          input: scheduler.ScheduleTargetInput.fromObject(plan.input),
          retryAttempts: 3,
          maxEventAge: Duration.hours(1),
        }),
      });
      schedules.set(plan.planId, schedule);
    }
    this.schedules = schedules;
  }
}
