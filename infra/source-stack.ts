import { SOURCE_RETENTION_LOCATIONS } from '../events/schedules.ts';
import { fileURLToPath } from 'node:url';
import { Annotations, ArnFormat, Duration, IgnoreMode, Size, Stack, Tags, type StackProps } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type { Construct } from 'constructs';
import { backupSchedules, drillRunInput, retentionSchedules } from '../events/schedules.ts';
import { parseConfig } from '../functions/lib/config/load.ts';
import { drillsSchema, type DatabaseConfig, type LifeboatConfig, type LifeboatConfigInput } from '../functions/lib/config/schema.ts';
import { drillNetworkEnvironment } from '../functions/lib/drill/environment.ts';
import { drillRequestsFromConfig } from '../functions/lib/drill/plan.ts';
import { pitrTargets } from '../functions/lib/pitr/posture.ts';
import { METRICS_NAMESPACE, SERVICE_NAMES } from '../functions/lib/metrics/names.ts';
import { retentionFunctionEnvironment } from '../functions/lib/retention/environment.ts';
import { snapshotFunctionEnvironment } from '../functions/lib/snapshots/environment.ts';
import { vaultCopyFunctionEnvironment } from '../functions/lib/vault/environment.ts';
import { vaultNames } from '../functions/lib/vault/names.ts';
import { deployedWorkflowNames, placeholders } from '../state-machines/definitions.ts';
import { checkSourceStackSupport } from './config.ts';
import { freshnessWatches } from './freshness.ts';
import { AlarmRouting } from './constructs/alarm-routing.ts';
import { Alerts } from './constructs/alerts.ts';
import { BackupDashboards, type DashboardPlan } from './constructs/backup-dashboards.ts';
import { BackupStorage } from './constructs/backup-storage.ts';
import { ShardedDatabaseAlarms, type MonitoredDatabase } from './constructs/database-alarms.ts';
import { createDrillSecurityGroup, grantDrillProvisioning, grantJanitor, grantReadDrillSecrets, POSTGRES_PORT } from './constructs/drill-access.ts';
import { FargateDumpRunner } from './constructs/fargate-dump-runner.ts';
import { KeyWatch } from './constructs/key-watch.ts';
import { retentionStateMachines } from './constructs/retention-workflow.ts';
import { MonitoredStateMachine } from './constructs/monitored-state-machine.ts';
import { DeploymentConfigObject } from './constructs/deployment-config.ts';
import { ProjectFunction, type ProjectFunctionSource } from './constructs/project-function.ts';
import { grantPruneBackups, grantPruneSnapshots, grantWriteRetentionAudit, type BackupBucketScope } from './constructs/retention-access.ts';
import { RunnerNetwork } from './constructs/runner-network.ts';
import { ScheduledWorkflow, type WorkflowSchedule } from './constructs/scheduled-workflow.ts';
import { acknowledgeWildcardResources } from './nag.ts';

/** The repository root: the Docker build context and the esbuild project root. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

/** Powertools metrics namespace shared by the project's functions. */
export { METRICS_NAMESPACE };

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

/** Placeholders of the backup definition's Fargate dump states (see FargateDumpRunner.substitutions). */
/** Ephemeral storage of the Fargate drill restore (Fargate's most): the dump is downloaded and verified in /tmp first. */
export const FARGATE_DRILL_RESTORE_STORAGE_GIB = 200;

export const FARGATE_PLACEHOLDERS = ['DumpClusterArn', 'DumpTaskDefinitionArn', 'DumpSubnetIds', 'DumpSecurityGroupIds', 'VaultCopyTaskDefinitionArn'] as const;
/** Where the drill restore's /tmp holds a downloaded dump: at most Lambda's 10 GiB unless told otherwise. */
export const DEFAULT_DRILL_RESTORE_STORAGE = Size.gibibytes(10);
/** Longest a backup run may take. */
export const BACKUP_TIMEOUT = Duration.hours(24);
/**
 * How often the PITR lag watch publishes PitrRestorableLagSeconds. RDS ships
 * transaction logs about every 5 minutes; the pitr-lag alarm takes the
 * Minimum over PITR_LAG_ALARM_PERIOD (two samples), see infra/constructs/database-alarms.ts.
 */
export const PITR_WATCH_RATE = Duration.minutes(5);
/** The janitor runs hourly, off the full hour. */
export const JANITOR_SCHEDULE = 'cron(17 * * * ? *)';
/** What a drill run may take beyond its restores: select, provision, verify, teardown and report. */
export const DRILL_OVERHEAD = Duration.hours(2);

/** Where the functions' code comes from; the defaults are the production sources. */
export interface SourceStackCode {
  /**
   * Resolves what a backup or drill run covers from the deployed config.
   * @default - `functions/plan/handler.ts` bundled with the local esbuild
   */
  readonly plan?: ProjectFunctionSource;
  /**
   * The pg_dump runner.
   * @default - the runner image (RunnerImage) built from `Dockerfile` at the repo root, CMD `functions/dump/handler.handler`
   */
  readonly dump?: ProjectFunctionSource;
  /**
   * The alert publisher.
   * @default - `functions/alert/handler.ts` bundled with the local esbuild
   */
  readonly alert?: ProjectFunctionSource;
  /**
   * The snapshot steps (only when the backup definition calls them).
   * @default - `functions/snapshot/handler.ts` bundled with the local esbuild
   */
  readonly snapshot?: ProjectFunctionSource;
  /**
   * The dump copier into the vault (only when the backup definition calls it).
   * @default - `functions/vault-copy/handler.ts` bundled with the local esbuild
   */
  readonly vaultCopy?: ProjectFunctionSource;
  /**
   * Retention (source and copy region).
   * @default - `functions/retention/handler.ts` bundled with the local esbuild
   */
  readonly retention?: ProjectFunctionSource;
  /**
   * The drill steps that need no pg_restore (select, provision, poll, credentials, measure, teardown, report).
   * @default - `functions/drill/handler.ts` bundled with the local esbuild
   */
  readonly drill?: ProjectFunctionSource;
  /**
   * The drill's restore and verify steps (pg_restore, the RDS CA bundle).
   * @default - the runner image, CMD `functions/drill/handler.handler`
   */
  readonly drillRestore?: ProjectFunctionSource;
  /**
   * The janitor.
   * @default - `functions/janitor/handler.ts` bundled with the local esbuild
   */
  readonly janitor?: ProjectFunctionSource;
  /**
   * The PITR posture check (backup runs) and lag watch (its own schedule).
   * @default - `functions/pitr/handler.ts` bundled with the local esbuild
   */
  readonly pitr?: ProjectFunctionSource;
}

export interface SourceStackProps extends StackProps {
  /**
   * The lifeboat config as this source sees it (see configForSource). It is
   * validated (again) here, so a bad config fails synth with a ConfigError
   * naming each bad field's path.
   */
  readonly config: LifeboatConfigInput | LifeboatConfig;
  /** @default - production sources, see SourceStackCode */
  readonly code?: SourceStackCode;
  /**
   * An additional source (not the config's primary `source`): its stack name
   * carries the source id.
   * @default false
   */
  readonly additional?: boolean;
  /**
   * /tmp of the drill restore function, which downloads the dump before
   * pg_restore: at least the largest dump (stored size). Lambda allows 512 MiB to 10 GiB.
   * @default DEFAULT_DRILL_RESTORE_STORAGE (10 GiB)
   */
  readonly drillRestoreStorage?: Size;
}


/**
 * The runner image's build: the Dockerfile at the repo root, for arm64.
 *
 * The context is the allowlist in `.dockerignore` (Docker's own matching, so
 * CDK stages exactly what `docker build` would send), plus DUMP_IMAGE_EXCLUDES.
 *
 * Attestations: Lambda rejects an image index that carries attestation
 * manifests. aws-cdk-lib's DockerImageAsset offers no provenance option, and
 * `outputs` (passed as `--output`) has no exporter attribute that drops them,
 * so none is set here: the CDK CLI pinned in package.json runs every asset
 * build with BUILDX_NO_DEFAULT_ATTESTATIONS=1, which turns off buildx's default
 * provenance (test/infra/runner-image.test.ts checks the pinned CLI does).
 * Building the image by hand needs `--provenance=false` (see the Dockerfile).
 *
 * `directory` is for tests that stage a copy of the repository.
 */
export function runnerImageProps(directory: string = REPO_ROOT): ecrAssets.DockerImageAssetProps {
  return { directory, file: 'Dockerfile', platform: ecrAssets.Platform.LINUX_ARM64, exclude: DUMP_IMAGE_EXCLUDES, ignoreMode: IgnoreMode.DOCKER };
}

function nodejsSource(handlerPath: string): ProjectFunctionSource {
  return { kind: 'nodejs', entry: `${REPO_ROOT}/${handlerPath}`, handler: 'handler', projectRoot: REPO_ROOT };
}

export function defaultAlertSource(): ProjectFunctionSource {
  return nodejsSource('functions/alert/handler.ts');
}

/** `acme` → `acme-lifeboat-source`; an additional source `us` → `acme-lifeboat-source-us`. */
export function sourceStackName(config: Pick<LifeboatConfig, 'name'>, additionalSourceId?: string): string {
  return additionalSourceId ? `${config.name}-lifeboat-source-${additionalSourceId}` : `${config.name}-lifeboat-source`;
}

/** The databases this stack watches, with the plans that hold them and their tightest targets. */
export function monitoredDatabases(config: LifeboatConfig): MonitoredDatabase[] {
  const drilled = new Set(config.drills ? drillRequestsFromConfig(config).map((r) => r.databaseId) : []);
  return config.databases.map((database) => {
    const plans = config.plans.filter((plan) => plan.databases.includes(database.id));
    const watched = plans.filter((plan) => plan.dump && plan.backupAgeAlarm);
    const rpoPlans = watched.length > 0 ? watched : plans;
    return {
      id: database.id,
      planIds: (watched.length > 0 ? watched : plans).map((plan) => plan.id),
      rpoMinutes: Math.min(...rpoPlans.map((plan) => plan.rpoMinutes)),
      rtoMinutes: Math.min(...plans.map((plan) => plan.rtoMinutes)),
      deadMansSwitch: watched.length > 0,
      freshness: freshnessWatches(config, database.id, drilled.has(database.id)),
      ...pitrWatchOf(config, database),
    };
  });
}

/**
 * The PITR lag alarm's target: the tightest maxLagMinutes over the pitr plans that hold an RDS-backed database;
 * for an RDS instance in plans with `pitr.copyRegion` (and a snapshots.copy region), the replica lag alarm's too.
 */
function pitrWatchOf(config: LifeboatConfig, database: DatabaseConfig): Pick<MonitoredDatabase, 'pitr'> {
  const plans = config.plans.filter((plan) => plan.pitr && plan.databases.includes(database.id));
  if (!database.rds || plans.length === 0) return {};
  const replicated = plans.filter((p) => p.pitr!.copyRegion);
  const copyRegion = config.snapshots?.copy?.region;
  const replica =
    copyRegion && replicated.length > 0 && 'instanceIdentifier' in database.rds
      ? { replica: { planIds: replicated.map((p) => p.id), maxLagMinutes: Math.min(...replicated.map((p) => p.pitr!.maxLagMinutes)), copyRegion } }
      : {};
  return { pitr: { planIds: plans.map((p) => p.id), maxLagMinutes: Math.min(...plans.map((p) => p.pitr!.maxLagMinutes)), ...replica } };
}

/** A function or task whose environment can name a resource together with its grant. */
type ConfigReader = { addResourceEnvironment(name: string, value: string, grant: (grantee: iam.IGrantable) => void): unknown };

/**
 * One per account and region that holds databases: the backup bucket and keys,
 * the runners (dump function, optional Fargate dump task), the backup,
 * retention, drill and janitor state machines and their schedules, the alert
 * topic and routing, a dead man's switch (and drill objective alarms) per
 * database, and the dashboards. With a `network`, every function runs in the
 * configured subnets, reaching AWS through the VPC endpoints the stack creates
 * (or the user's own egress).
 *
 * Retention here covers the source and the copy region only: the vault prunes
 * itself from the vault account (VaultStack), and nothing in this stack can
 * assume the vault's retention role (principle 3).
 */
export class SourceStack extends Stack {
  /** The validated config, defaults filled. */
  public readonly config: LifeboatConfig;
  public readonly storage: BackupStorage;
  public readonly alerts: Alerts;
  /** The configured VPC placement and endpoints; undefined without `source.network`. */
  public readonly network?: RunnerNetwork;
  /** The runner image shared by the dump function and the Fargate dump task. */
  public readonly runnerImage: ecrAssets.DockerImageAsset;
  public readonly dumpFunction: ProjectFunction;
  public readonly alertFunction: ProjectFunction;
  /** Present when the backup definition calls a snapshot function. */
  public readonly snapshotFunction?: ProjectFunction;
  /** Present when the backup definition calls a vault-copy function. */
  public readonly vaultCopyFunction?: ProjectFunction;
  /** Present when a database has `dump.runner: 'fargate'`. */
  public readonly fargateDump?: FargateDumpRunner;
  /** The vault copy of those databases' dumps, on Fargate in the same cluster; present when they have a vault too. */
  public readonly fargateVaultCopy?: FargateDumpRunner;
  /** The restore of their dump drills, on Fargate in the same cluster; present when the drills cover them. */
  public readonly fargateDrillRestore?: FargateDumpRunner;
  /** The backup workflow of a plan: resolves it, then one child execution per database. */
  public readonly backup: MonitoredStateMachine;
  /** The backup of one database (dump, snapshot, copies), started by `backup` as a child execution. */
  public readonly backupDatabase: MonitoredStateMachine;
  /** The deployed config object every function reads its databases and plans from. */
  public readonly deploymentConfig: DeploymentConfigObject;
  /** Resolves what a backup or drill run covers. */
  public readonly planFunction: ProjectFunction;
  /** The PITR posture check of plans with `pitr` (backup runs) and their lag watch. */
  public readonly pitrFunction: ProjectFunction;
  /** Invokes the PITR lag watch every PITR_WATCH_RATE; present when a plan has `pitr`. */
  public readonly pitrWatchSchedule?: scheduler.Schedule;
  /** Starts the workflows; may do nothing else. */
  public readonly schedulerRole: iam.Role;
  /** Plan id → its backup schedule. */
  public readonly schedules: ReadonlyMap<string, ScheduledWorkflow>;
  public readonly alarmRouting: AlarmRouting;
  /** Alerts on ScheduleKeyDeletion, DisableKey, PutKeyPolicy (and tries) on the envelope and bucket keys. */
  public readonly keyWatch: KeyWatch;
  /** Prunes dumps and snapshots at the source and in the copy region (never the vault: the vault stack prunes itself). */
  public readonly retentionFunction: ProjectFunction;
  public readonly retention: MonitoredStateMachine;
  /** Prunes one (database, location) target; a child execution of `retention`. */
  public readonly retentionTarget: MonitoredStateMachine;
  /** Plan id → its retention schedule (plans with a source or copy-region policy). */
  public readonly retentionSchedules: ReadonlyMap<string, ScheduledWorkflow>;
  /** The drill steps without pg_restore. */
  public readonly drillFunction: ProjectFunction;
  /** The drill's restore and verify steps: the runner image, in the VPC. */
  public readonly drillRestoreFunction: ProjectFunction;
  public readonly drill: MonitoredStateMachine;
  /** One database's drill, started by {@link drill} as a child execution. */
  public readonly drillDatabase: MonitoredStateMachine;
  /** Every drill throwaway joins it: ingress PostgreSQL from the runners only. Present with `drills` (which then needs `source.network`). */
  public readonly drillSecurityGroup?: ec2.SecurityGroup;
  /** Present when the config has a `drills` section. */
  public readonly drillSchedule?: ScheduledWorkflow;
  public readonly janitorFunction: ProjectFunction;
  public readonly janitor: MonitoredStateMachine;
  public readonly janitorSchedule: ScheduledWorkflow;
  /** Per-database alarms (dead man's switch; drill objectives through the hook). */
  public readonly databaseAlarms: ShardedDatabaseAlarms;
  public readonly dashboards: BackupDashboards;

  constructor(scope: Construct, id: string, props: SourceStackProps) {
    const { config: input, code, additional, drillRestoreStorage, ...stackProps } = props;
    const config = parseConfig(input, `the config given to stack "${id}"`);
    checkSourceStackSupport(config, `the config given to stack "${id}"`);
    super(scope, id, {
      stackName: sourceStackName(config, additional ? config.source.id : undefined),
      description: `lifeboat ${config.name}: PostgreSQL backups (dumps, schedules, alerts) for ${config.source.region}.`,
      ...stackProps,
      env: { account: config.source.account ?? stackProps.env?.account, region: config.source.region },
    });
    this.config = config;
    // Not on dashboards: CloudFormation's Dashboard tags are not in every region's
    // resource schema yet (cfn-lint E3002 for us-east-1), and they add nothing there.
    Tags.of(this).add('lifeboat:deployment', config.name, { excludeResourceTypes: ['AWS::CloudWatch::Dashboard'] });
    const aliasPrefix = `lifeboat/${config.name}`;
    const backupDatabaseStateMachineName = deployedWorkflowNames(config.name, 'backup-database').stateMachineName;
    const fargateDatabases = config.databases.filter((db) => db.dump.runner === 'fargate');

    this.storage = new BackupStorage(this, 'Storage', {
      aliasPrefix,
      prefix: config.storage.prefix,
      envelopeKeyArn: config.storage.kmsKeyArn,
    });

    this.deploymentConfig = new DeploymentConfigObject(this, 'DeploymentConfig', { config });
    const readsConfig = (fn: ConfigReader) => this.readsDeploymentConfig(fn);

    this.alerts = new Alerts(this, 'Alerts', { aliasPrefix, subscribers: config.alerts.subscribers });

    if (config.source.network) {
      this.network = new RunnerNetwork(this, 'Network', { network: config.source.network, fargate: fargateDatabases.length > 0 });
    }
    const placement = this.network;
    const otherRegions = [...new Set([config.vault?.region, config.snapshots?.copy?.region].filter((r): r is string => r !== undefined && r !== config.source.region))];
    if (config.source.network?.egress === 'vpc-endpoints' && otherRegions.length > 0) {
      Annotations.of(this).addWarningV2(
        'lifeboat:cross-region-egress',
        `The runners call AWS in ${otherRegions.join(', ')} (vault copies, the vault's recovery key, snapshot copies), which VPC endpoints in ${config.source.region} do not reach. ` +
          'Give the subnets a route out (NAT gateway; then egress "user-managed" saves the endpoints), or those steps fail.',
      );
    }

    this.runnerImage = new ecrAssets.DockerImageAsset(this, 'RunnerImage', runnerImageProps());

    // The dump runner's settings and access, applied alike to the Lambda
    // function and the Fargate task so both run with the same grants.
    const dumpResources: Array<[name: string, value: string, grant: (grantee: iam.IGrantable) => void]> = [
      ['BACKUP_BUCKET', this.storage.bucket.bucketName, (g) => this.storage.grantWriteBackups(g)],
      ['BACKUP_KMS_KEY_ARN', this.storage.envelopeKey.keyArn, (g) => this.storage.grantEnvelopeEncrypt(g)],
    ];
    const recoveryKey = config.vault?.recoveryKmsKeyArn;
    if (recoveryKey) {
      // The vault's recovery key also wraps each dump's data key, so the vault can
      // decrypt without production. Writers may only encrypt with it.
      dumpResources.push([
        'BACKUP_RECOVERY_KMS_KEY_ARNS',
        recoveryKey,
        (g) => iam.Grant.addToPrincipal({ grantee: g, actions: ['kms:Encrypt'], resourceArns: [recoveryKey] }),
      ]);
    }
    const grantDatabaseAccess = (grantee: iam.IGrantable) => this.grantDatabaseAccess(grantee, config.databases);

    this.dumpFunction = new ProjectFunction(this, 'DumpFunction', {
      source: code?.dump ?? { kind: 'imageAsset', asset: this.runnerImage, cmd: ['functions/dump/handler.handler'] },
      description: `lifeboat ${config.name}: pg_dump a database, compress, envelope-encrypt and stream it to S3.`,
      serviceName: SERVICE_NAMES.dump,
      metricsNamespace: METRICS_NAMESPACE,
      timeout: Duration.minutes(15),
      memorySize: 2048,
      environment: { BACKUP_PREFIX: config.storage.prefix },
      placement,
    });
    for (const [name, value, grant] of dumpResources) this.dumpFunction.addResourceEnvironment(name, value, grant);
    readsConfig(this.dumpFunction);
    grantDatabaseAccess(this.dumpFunction.role);

    this.planFunction = new ProjectFunction(this, 'PlanFunction', {
      source: code?.plan ?? nodejsSource('functions/plan/handler.ts'),
      description: `lifeboat ${config.name}: resolve what a backup or drill run covers from the deployed config.`,
      serviceName: SERVICE_NAMES.plan,
      metricsNamespace: METRICS_NAMESPACE,
      timeout: Duration.seconds(30),
      memorySize: 256,
      placement,
    });
    readsConfig(this.planFunction);

    this.pitrFunction = this.createPitrFunction(config, code?.pitr, placement);

    this.alertFunction = new ProjectFunction(this, 'AlertFunction', {
      source: code?.alert ?? defaultAlertSource(),
      description: `lifeboat ${config.name}: publish backup, drill and lateness alerts to SNS.`,
      serviceName: SERVICE_NAMES.alert,
      metricsNamespace: METRICS_NAMESPACE,
      timeout: Duration.seconds(30),
      memorySize: 256,
      placement,
    });
    this.alertFunction.addResourceEnvironment('ALERT_TOPIC_ARN', this.alerts.topic.topicArn, (g) => this.alerts.grantPublish(g));

    const needed = new Set(placeholders('backup-database'));
    if (needed.has('SnapshotFunctionArn')) this.snapshotFunction = this.createSnapshotFunction(config, code?.snapshot, placement);
    if (needed.has('VaultCopyFunctionArn')) this.vaultCopyFunction = this.createVaultCopyFunction(config, code?.vaultCopy, placement);

    if (fargateDatabases.length > 0 && placement) {
      this.fargateDump = new FargateDumpRunner(this, 'FargateDump', {
        deploymentName: config.name,
        image: ecs.ContainerImage.fromDockerImageAsset(this.runnerImage),
        placement,
        stateMachineName: backupDatabaseStateMachineName,
        serviceName: SERVICE_NAMES.dump,
        metricsNamespace: METRICS_NAMESPACE,
        environment: { BACKUP_PREFIX: config.storage.prefix },
      });
      for (const [name, value, grant] of dumpResources) this.fargateDump.addResourceEnvironment(name, value, grant);
      readsConfig(this.fargateDump);
      grantDatabaseAccess(this.fargateDump.taskRole);
      if (config.vault && this.vaultCopyFunction) {
        // Their dumps are too big for the vault copy function as well: the same job on Fargate, with its grants.
        this.fargateVaultCopy = new FargateDumpRunner(this, 'FargateVaultCopy', {
          deploymentName: config.name,
          job: 'vault-copy',
          cluster: this.fargateDump.cluster,
          image: ecs.ContainerImage.fromDockerImageAsset(this.runnerImage),
          placement,
          stateMachineName: backupDatabaseStateMachineName,
          serviceName: SERVICE_NAMES.vaultCopy,
          metricsNamespace: METRICS_NAMESPACE,
          environment: vaultCopyFunctionEnvironment(config, this.partition),
        });
        this.grantVaultCopy(this.fargateVaultCopy.taskRole, config);
      }
    }
    const fargateInDefinition = FARGATE_PLACEHOLDERS.every((p) => needed.has(p));
    if (fargateDatabases.length > 0 && !fargateInDefinition) {
      Annotations.of(this).addWarningV2(
        'lifeboat:fargate-not-in-definition',
        `Databases ${fargateDatabases.map((db) => db.id).join(', ')} have dump.runner "fargate", but state-machines/backup-database.asl.json has no Fargate states: ` +
          'the stack creates the Fargate task, and the backup workflow still dumps them with the Lambda function (15-minute limit).',
      );
    }

    const substitutions: Record<string, string> = {
      DumpFunctionArn: this.dumpFunction.functionArn,
      AlertFunctionArn: this.alertFunction.functionArn,
      ...(this.snapshotFunction ? { SnapshotFunctionArn: this.snapshotFunction.functionArn } : {}),
      ...(this.vaultCopyFunction ? { VaultCopyFunctionArn: this.vaultCopyFunction.functionArn } : {}),
      ...(fargateInDefinition ? this.fargateSubstitutions(config) : {}),
    };
    this.backupDatabase = new MonitoredStateMachine(this, 'BackupDatabase', {
      definition: 'backup-database',
      substitutions,
      invokedFunctions: [this.dumpFunction, this.alertFunction, this.snapshotFunction, this.vaultCopyFunction].flatMap((f) => (f ? [f.function] : [])),
      alert: { deploymentName: config.name, kind: 'backup-failed' },
      ...deployedWorkflowNames(config.name, 'backup-database'),
      // A Fargate dump alone may take 10 hours (DumpDatabaseOnFargate's TimeoutSeconds), and each snapshot wait up to snapshots.maxWaitMinutes.
      timeout: BACKUP_TIMEOUT,
    });
    if (fargateInDefinition && this.fargateDump) this.fargateDump.grantRun(this.backupDatabase.stateMachine);
    if (fargateInDefinition && this.fargateVaultCopy) this.fargateVaultCopy.grantRun(this.backupDatabase.stateMachine);
    this.backup = new MonitoredStateMachine(this, 'Backup', {
      definition: 'backup',
      substitutions: {
        PlanFunctionArn: this.planFunction.functionArn,
        AlertFunctionArn: this.alertFunction.functionArn,
        PitrFunctionArn: this.pitrFunction.functionArn,
        BackupDatabaseStateMachineArn: this.backupDatabase.stateMachine.stateMachineArn,
      },
      invokedFunctions: [this.planFunction.function, this.alertFunction.function, this.pitrFunction.function],
      startedStateMachines: [this.backupDatabase],
      alert: { deploymentName: config.name, kind: 'backup-failed' },
      ...deployedWorkflowNames(config.name, 'backup'),
      // A run that outlasts a day overlaps the next daily run and is reported as timed out.
      timeout: BACKUP_TIMEOUT,
    });

    this.alarmRouting = new AlarmRouting(this, 'AlarmRouting', {
      deploymentName: config.name,
      alertFunction: this.alertFunction.function,
      topic: this.alerts.topic,
    });
    // The keys the backups here depend on: the envelope key (given or created) and the bucket key.
    this.keyWatch = new KeyWatch(this, 'KeyWatch', {
      deploymentName: config.name,
      keyArns: [this.storage.envelopeKey.keyArn, this.storage.bucketKey.keyArn],
      alertFunction: this.alertFunction.function,
      deadLetterQueue: this.alarmRouting.deadLetterQueue,
    });

    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      description: `lifeboat ${config.name}: lets EventBridge Scheduler start the lifeboat state machines, nothing else.`,
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    });

    // Schedules name the plan; the plan function resolves it from the deployed config.
    const runs = backupSchedules(config);
    const schedules = new Map<string, ScheduledWorkflow>();
    for (const run of runs) {
      schedules.set(
        run.planId,
        this.scheduleWorkflow(
          `BackupSchedule-${run.planId}`,
          this.backup,
          { expression: run.expression, timeZone: run.timeZone, flexibleWindowMinutes: run.flexibleWindowMinutes },
          { ...run.input },
          `back up plan "${run.planId}"`,
        ),
      );
    }
    this.schedules = schedules;

    if (config.plans.some((plan) => plan.pitr)) this.pitrWatchSchedule = this.createPitrWatch(config);

    const databases = monitoredDatabases(config);
    this.databaseAlarms = new ShardedDatabaseAlarms(this, 'DatabaseAlarms', { deploymentName: config.name, databases });

    // Retention at the source and in the copy region. The vault prunes itself
    // from the vault account (VaultStack): no production role can reach the
    // vault retention role (principle 3), so the vault is left out here, both
    // from the schedules and from the function's environment.
    this.retentionFunction = this.createRetentionFunction(config, code?.retention, placement);
    // Each (database, location) target is pruned by its own child execution (fleet size: docs/limits.md).
    const retention = retentionStateMachines(this, {
      deploymentName: config.name,
      workflow: 'retention',
      retentionFunction: this.retentionFunction,
      alertFunction: this.alertFunction,
      ids: { run: 'Retention', target: 'RetentionTarget' },
    });
    this.retention = retention.run;
    this.retentionTarget = retention.target;
    const retentionRuns = new Map<string, ScheduledWorkflow>();
    for (const run of retentionSchedules(config, { locations: SOURCE_RETENTION_LOCATIONS })) {
      retentionRuns.set(
        run.planId,
        this.scheduleWorkflow(`RetentionSchedule-${run.planId}`, this.retention, { expression: run.expression, timeZone: run.timeZone }, { ...run.input }, `prune plan "${run.planId}" at the source`),
      );
    }
    this.retentionSchedules = retentionRuns;

    // Restore drills and the janitor. The state machines exist without a
    // drills section too (\`lifeboat run drill\`); only the schedule needs it.
    const drills = config.drills ?? drillsSchema.parse({});
    this.drillFunction = new ProjectFunction(this, 'DrillFunction', {
      source: code?.drill ?? nodejsSource('functions/drill/handler.ts'),
      description: `lifeboat ${config.name}: restore drill steps (select, provision, credentials, measure, teardown, report).`,
      serviceName: SERVICE_NAMES.drill,
      metricsNamespace: METRICS_NAMESPACE,
      timeout: Duration.minutes(5),
      memorySize: 512,
      // Where throwaways go is deploy-time config: a request naming other subnets or groups is refused.
      environment: { BACKUP_PREFIX: config.storage.prefix, DRILL_DUMP_PROVISIONER: 'rds', DRILL_NETWORK: drillNetworkEnvironment(drills) },
      placement,
      anyResourceReason: 'rds:DescribeDBSnapshots and DescribeDBClusterSnapshots are on "*": snapshot drills list the manual snapshots of a database.',
    });
    this.drillFunction.addResourceEnvironment('BACKUP_BUCKET', this.storage.bucket.bucketName, (g) => this.grantDrillStorage(g as iam.Role));
    const drillRequests = config.drills ? drillRequestsFromConfig(config) : [];
    // PITR drills restore the configured instances and clusters to a moment, in the source region or from their replica in the copy region.
    const pitrDrills = drillRequests.filter((r) => r.backupKind === 'pitr' && r.rds);
    const pitrCopyRegion = pitrDrills.find((r) => r.pitr?.from === 'copy-region')?.pitr?.copyRegion;
    if (pitrCopyRegion) {
      this.drillFunction.function.addEnvironment('COPY_REGION', pitrCopyRegion);
      if (drills.copyRegionNetwork) this.drillFunction.function.addEnvironment('DRILL_COPY_NETWORK', JSON.stringify({ subnetGroupName: drills.copyRegionNetwork.subnetGroupName, securityGroupIds: drills.copyRegionNetwork.securityGroupIds }));
    }
    grantDrillProvisioning(this.drillFunction.role, {
      subnetGroupName: drills.subnetGroupName,
      instanceClasses: [drills.instanceClass, drills.auroraInstanceClass],
      ...(pitrDrills.length
        ? {
            pointInTime: {
              instances: pitrDrills.flatMap((r) => (r.rds && 'instanceIdentifier' in r.rds ? [r.rds.instanceIdentifier] : [])),
              clusters: pitrDrills.flatMap((r) => (r.rds && 'clusterIdentifier' in r.rds ? [r.rds.clusterIdentifier] : [])),
              copyRegion: pitrCopyRegion,
              copyRegionSubnetGroupName: drills.copyRegionNetwork?.subnetGroupName,
            },
          }
        : {}),
    });
    if (config.drills && this.network) {
      // A restored snapshot, or an instance restored to a moment, keeps its source's port; a dump drill's instance listens on 5432.
      const snapshotPorts = drillRequests.flatMap((r) => (r.backupKind !== 'dump' ? (config.databases.find((d) => d.id === r.databaseId)?.connection.port ?? []) : []));
      this.drillSecurityGroup = createDrillSecurityGroup(this, 'DrillSecurityGroup', {
        vpc: this.network.vpc,
        runnerSecurityGroupIds: config.source.network!.securityGroupIds,
        ports: [POSTGRES_PORT, ...snapshotPorts],
      });
      // RDS attaches the group with its service-linked role: nothing to grant.
      this.drillFunction.addResourceEnvironment('DRILL_SECURITY_GROUP_IDS', this.drillSecurityGroup.securityGroupId, () => undefined);
    }

    // The drill restore's settings and access, applied alike to the function and the Fargate task.
    const drillRestoreSettings = { BACKUP_PREFIX: config.storage.prefix, DRILL_DUMP_PROVISIONER: 'rds' };
    this.drillRestoreFunction = new ProjectFunction(this, 'DrillRestoreFunction', {
      source: code?.drillRestore ?? { kind: 'imageAsset', asset: this.runnerImage, cmd: ['functions/drill/handler.handler'] },
      description: `lifeboat ${config.name}: restore drill restore and verify steps (pg_restore into the throwaway, verification suite).`,
      serviceName: SERVICE_NAMES.drill,
      metricsNamespace: METRICS_NAMESPACE,
      timeout: Duration.minutes(15),
      memorySize: 2048,
      ephemeralStorageSize: drillRestoreStorage ?? DEFAULT_DRILL_RESTORE_STORAGE,
      environment: drillRestoreSettings,
      placement,
    });
    this.drillRestoreFunction.addResourceEnvironment('BACKUP_BUCKET', this.storage.bucket.bucketName, () => this.grantDrillRestore(this.drillRestoreFunction.role));
    if (this.fargateDump && drillRequests.some((r) => r.restoreRunner === 'fargate')) {
      // Databases dumped on Fargate restore there too: the same job, with the drill restore function's settings and grants.
      this.fargateDrillRestore = new FargateDumpRunner(this, 'FargateDrillRestore', {
        deploymentName: config.name,
        job: 'drill-restore',
        cluster: this.fargateDump.cluster,
        image: ecs.ContainerImage.fromDockerImageAsset(this.runnerImage),
        placement: placement!,
        stateMachineName: deployedWorkflowNames(config.name, 'drill-database').stateMachineName,
        // The download is verified in /tmp before pg_restore reads it: room for a large dump.
        ephemeralStorageGiB: FARGATE_DRILL_RESTORE_STORAGE_GIB,
        serviceName: SERVICE_NAMES.drill,
        metricsNamespace: METRICS_NAMESPACE,
        environment: drillRestoreSettings,
      });
      const taskRole = this.fargateDrillRestore.taskRole;
      this.fargateDrillRestore.addResourceEnvironment('BACKUP_BUCKET', this.storage.bucket.bucketName, () => this.grantDrillRestore(taskRole));
    }

    const rounds = Math.max(1, Math.ceil(drillRequests.length / drills.maxConcurrency));
    // One database's drill may wait out the restore timeout, plus the steps around it.
    const oneDrill = Duration.minutes(drills.restoreTimeoutMinutes + DRILL_OVERHEAD.toMinutes());
    this.drillDatabase = new MonitoredStateMachine(this, 'DrillDatabase', {
      definition: 'drill-database',
      substitutions: {
        PlanFunctionArn: this.planFunction.functionArn,
        DrillFunctionArn: this.drillFunction.functionArn,
        DrillRestoreFunctionArn: this.drillRestoreFunction.functionArn,
        AlertFunctionArn: this.alertFunction.functionArn,
        ...this.drillRestoreSubstitutions(config),
      },
      invokedFunctions: [this.planFunction.function, this.drillFunction.function, this.drillRestoreFunction.function, this.alertFunction.function],
      alert: { deploymentName: config.name, kind: 'drill-failed' },
      ...deployedWorkflowNames(config.name, 'drill-database'),
      timeout: oneDrill,
    });
    this.fargateDrillRestore?.grantRun(this.drillDatabase.stateMachine);
    this.drill = new MonitoredStateMachine(this, 'Drill', {
      definition: 'drill',
      substitutions: {
        PlanFunctionArn: this.planFunction.functionArn,
        AlertFunctionArn: this.alertFunction.functionArn,
        DrillDatabaseStateMachineArn: this.drillDatabase.stateMachine.stateMachineArn,
      },
      invokedFunctions: [this.planFunction.function, this.alertFunction.function],
      startedStateMachines: [this.drillDatabase],
      alert: { deploymentName: config.name, kind: 'drill-failed' },
      ...deployedWorkflowNames(config.name, 'drill'),
      // Each round of drills (maxConcurrency at a time) may take as long as one drill.
      timeout: Duration.minutes(rounds * oneDrill.toMinutes()),
    });
    if (config.drills) {
      this.drillSchedule = this.scheduleWorkflow(
        'DrillSchedule',
        this.drill,
        { expression: config.drills.schedule.cron, timeZone: config.drills.schedule.timezone, flexibleWindowMinutes: config.drills.schedule.flexibleWindowMinutes },
        { ...drillRunInput() },
        'nightly restore drills',
      );
      this.databaseAlarms.addDrillObjectiveAlarms(SERVICE_NAMES.drill);
    }

    this.janitorFunction = new ProjectFunction(this, 'JanitorFunction', {
      source: code?.janitor ?? nodejsSource('functions/janitor/handler.ts'),
      description: `lifeboat ${config.name}: delete expired restore drill resources (lifeboat-drill-*, lifeboat/drill/*).`,
      serviceName: SERVICE_NAMES.janitor,
      metricsNamespace: METRICS_NAMESPACE,
      timeout: Duration.minutes(5),
      memorySize: 256,
      placement,
      anyResourceReason:
        'rds:DescribeDBInstances, DescribeDBClusters, DescribeDBSnapshots, DescribeDBSubnetGroups and secretsmanager:ListSecrets are on "*": the janitor lists everything to find expired drill resources by name and tag.',
    });
    grantJanitor(this.janitorFunction.role, { copyRegion: pitrCopyRegion });
    if (pitrCopyRegion) this.janitorFunction.function.addEnvironment('COPY_REGION', pitrCopyRegion);
    this.janitor = new MonitoredStateMachine(this, 'Janitor', {
      definition: 'janitor',
      substitutions: { JanitorFunctionArn: this.janitorFunction.functionArn, AlertFunctionArn: this.alertFunction.functionArn },
      invokedFunctions: [this.janitorFunction.function, this.alertFunction.function],
      alert: { deploymentName: config.name, kind: 'drill-failed' },
      ...deployedWorkflowNames(config.name, 'janitor'),
      timeout: Duration.hours(1),
    });
    this.janitorSchedule = this.scheduleWorkflow('JanitorSchedule', this.janitor, { expression: JANITOR_SCHEDULE, timeZone: 'UTC' }, {}, 'delete expired drill resources');

    // The pitr-lag alarms' thresholds, for the dashboards' PITR graphs.
    const lagAlarmMinutes = new Map(databases.flatMap((d) => (d.pitr ? [[d.id, d.pitr.maxLagMinutes] as const] : [])));
    const dashboardPlans: DashboardPlan[] = config.plans.map((plan) => ({
      id: plan.id,
      rpoMinutes: plan.rpoMinutes,
      rtoMinutes: plan.rtoMinutes,
      databaseIds: plan.databases,
      ...(plan.pitr
        ? { pitr: { windowDays: plan.pitr.windowDays, lagAlarmMinutes: Object.fromEntries(plan.databases.flatMap((id) => (lagAlarmMinutes.has(id) ? [[id, lagAlarmMinutes.get(id)!]] : []))) } }
        : {}),
    }));
    const stackAlarms: cloudwatch.IAlarm[] = [
      this.backup.failureAlarm,
      this.retention.failureAlarm,
      this.drill.failureAlarm,
      this.janitor.failureAlarm,
      this.alarmRouting.alertErrorsAlarm,
      this.alarmRouting.undeliveredAlarm,
    ];
    this.dashboards = new BackupDashboards(this, 'Dashboards', { deploymentName: config.name, plans: dashboardPlans, alarms: stackAlarms });
  }

  /**
   * Starts a workflow on a schedule with this stack's scheduler role (which may
   * then start that workflow too, nothing else) and dead-letter queue. This is
   * how the retention, drill and janitor workflows are wired, e.g.
   *
   * ```ts
   * const drill = new MonitoredStateMachine(this, 'Drill', { definition: 'drill', ..., alert: { deploymentName: config.name, kind: 'drill-failed' } });
   * this.scheduleWorkflow('DrillSchedule', drill, { expression: drills.schedule.cron, timeZone: drills.schedule.timezone }, { ... }, 'nightly restore drills');
   * ```
   */
  public scheduleWorkflow(id: string, workflow: MonitoredStateMachine, schedule: WorkflowSchedule, input: Record<string, unknown>, description: string): ScheduledWorkflow {
    return new ScheduledWorkflow(this, id, {
      workflow,
      schedule,
      input,
      description: `lifeboat ${this.config.name}: ${description}`,
      role: this.schedulerRole,
      deadLetterQueue: this.alarmRouting.deadLetterQueue,
    });
  }

  /** The drill definition's Fargate restore placeholders, inert where no database restores on Fargate (see fargateSubstitutions). */
  private drillRestoreSubstitutions(config: LifeboatConfig): Record<string, string> {
    const { DumpClusterArn, DumpSubnetIds, DumpSecurityGroupIds } = this.fargateSubstitutions(config);
    return { DumpClusterArn, DumpSubnetIds, DumpSecurityGroupIds, DrillRestoreTaskDefinitionArn: this.fargateDrillRestore?.taskDefinition.taskDefinitionArn ?? this.inertTaskDefinition(config) };
  }

  private inertTaskDefinition(config: LifeboatConfig): string {
    return this.formatArn({ service: 'ecs', resource: 'task-definition', resourceName: `${config.name}-lifeboat-no-fargate-runner:1`, arnFormat: ArnFormat.SLASH_RESOURCE_NAME });
  }

  /**
   * Values for the backup definition's Fargate placeholders. Where a runner
   * does not exist (no database dumps on Fargate, or no vault to copy to), the
   * value is inert: the plan function never routes there (its runners come from
   * the same config), and a hand-made input that did would fail the task (no
   * such cluster or task definition, no ecs:RunTask grant) and alert like any
   * failed dump.
   */
  private fargateSubstitutions(config: LifeboatConfig): Record<(typeof FARGATE_PLACEHOLDERS)[number], string> {
    const none = `${config.name}-lifeboat-no-fargate-runner`;
    const inertTask = this.inertTaskDefinition(config);
    const dump = this.fargateDump?.substitutions() ?? {
      DumpClusterArn: this.formatArn({ service: 'ecs', resource: 'cluster', resourceName: none, arnFormat: ArnFormat.SLASH_RESOURCE_NAME }),
      DumpTaskDefinitionArn: inertTask,
      DumpSubnetIds: 'none',
      DumpSecurityGroupIds: 'none',
    };
    return { ...dump, VaultCopyTaskDefinitionArn: this.fargateVaultCopy?.taskDefinition.taskDefinitionArn ?? inertTask };
  }

  /** Names the deployed config object in a runner's environment, with read access to it. */
  private readsDeploymentConfig(fn: ConfigReader): void {
    for (const [name, value] of Object.entries(this.deploymentConfig.environment())) fn.addResourceEnvironment(name, value, (g) => this.deploymentConfig.grantRead(g));
  }

  private backupBucketScope(): BackupBucketScope {
    return { bucket: this.storage.bucket, bucketKeyArn: this.storage.bucketKey.keyArn, prefix: this.storage.prefix };
  }

  /**
   * Retention at the source and in the copy region: the policies come from the
   * deployed config object and the locations from the function's environment
   * (never from the input), without the vault target.
   */
  private createRetentionFunction(config: LifeboatConfig, source: ProjectFunctionSource | undefined, placement: RunnerNetwork | undefined): ProjectFunction {
    const fn = new ProjectFunction(this, 'RetentionFunction', {
      source: source ?? nodejsSource('functions/retention/handler.ts'),
      description: `lifeboat ${config.name}: prune dumps and snapshots (GFS) at the source and in the copy region, with an audit log.`,
      serviceName: SERVICE_NAMES.retention,
      metricsNamespace: METRICS_NAMESPACE,
      timeout: Duration.minutes(15),
      memorySize: 512,
      environment: { ...retentionFunctionEnvironment({ ...config, vault: undefined }, this.partition), BACKUP_PREFIX: config.storage.prefix },
      placement,
      anyResourceReason: 'rds:DescribeDBSnapshots and DescribeDBClusterSnapshots are on "*": retention lists the manual snapshots of the account and region and keeps to lifeboat\'s by name and tag.',
    });
    // The plans (every database): from the deployed config object, not the 4 KB environment.
    this.readsDeploymentConfig(fn);
    const scope = this.backupBucketScope();
    fn.addResourceEnvironment('BACKUP_BUCKET', this.storage.bucket.bucketName, () => {
      grantPruneBackups(fn.role, scope);
      grantWriteRetentionAudit(fn.role, scope);
    });
    grantPruneSnapshots(fn.role, [this.region, ...(config.snapshots?.copy ? [config.snapshots.copy.region] : [])]);
    return fn;
  }

  /** What the drill steps need in the backup bucket: find and read backups (ciphertext), add drill reports. */
  private grantDrillStorage(role: iam.Role): void {
    this.storage.grantReadBackupObjects(role);
    const { bucket, prefix } = this.storage;
    iam.Grant.addToPrincipal({
      grantee: role,
      actions: ['s3:ListBucket'],
      resourceArns: [bucket.bucketArn],
      conditions: prefix ? { StringLike: { 's3:prefix': [`${prefix}*`] } } : undefined,
    });
    const reports = bucket.arnForObjects(`${prefix}_drills/*`);
    iam.Grant.addToPrincipal({ grantee: role, actions: ['s3:PutObject'], resourceArns: [reports] });
    iam.Grant.addToPrincipal({
      grantee: role,
      actions: ['kms:GenerateDataKey'],
      resourceArns: [this.storage.bucketKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${this.region}.amazonaws.com` } },
    });
    acknowledgeWildcardResources(role, [reports], 'Drill reports are named per database and drill id; the drill only adds them under the reports prefix.');
  }

  /**
   * What a dump runner needs to reach its databases: read their secrets (and
   * decrypt them through Secrets Manager when a customer key protects them),
   * connect with RDS IAM authentication as the configured user, and look up an
   * RDS endpoint when neither the config nor the secret names the host.
   */
  public grantDatabaseAccess(grantee: iam.IGrantable, databases: readonly DatabaseConfig[]): void {
    const secretArns = [...new Set(databases.flatMap((db) => db.connection.secretArn ?? []))].sort();
    if (secretArns.length > 0) {
      iam.Grant.addToPrincipal({ grantee, actions: ['secretsmanager:GetSecretValue'], resourceArns: secretArns });
    }
    const secretKeys = [...new Set(databases.flatMap((db) => db.connection.secretKmsKeyArn ?? []))].sort();
    if (secretKeys.length > 0) {
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['kms:Decrypt'],
        resourceArns: secretKeys,
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${this.region}.amazonaws.com` } },
      });
    }
    const iamUsers = [
      ...new Set(
        databases.flatMap((db) =>
          db.connection.iamAuth && db.connection.username
            ? [this.formatArn({ service: 'rds-db', resource: 'dbuser', resourceName: `${db.connection.iamAuth.resourceId}/${db.connection.username}`, arnFormat: ArnFormat.COLON_RESOURCE_NAME })]
            : [],
        ),
      ),
    ].sort();
    if (iamUsers.length > 0) iam.Grant.addToPrincipal({ grantee, actions: ['rds-db:connect'], resourceArns: iamUsers });
    const lookups = databases.filter((db) => db.rds && !db.connection.host);
    const instances = lookups.flatMap((db) => (db.rds && 'instanceIdentifier' in db.rds ? [this.rdsArn('db', db.rds.instanceIdentifier)] : []));
    const clusters = lookups.flatMap((db) => (db.rds && 'clusterIdentifier' in db.rds ? [this.rdsArn('cluster', db.rds.clusterIdentifier)] : []));
    if (instances.length > 0) iam.Grant.addToPrincipal({ grantee, actions: ['rds:DescribeDBInstances'], resourceArns: [...new Set(instances)].sort() });
    if (clusters.length > 0) iam.Grant.addToPrincipal({ grantee, actions: ['rds:DescribeDBClusters'], resourceArns: [...new Set(clusters)].sort() });
  }

  private rdsArn(resource: string, name: string, region: string = this.region): string {
    return this.formatArn({ service: 'rds', resource, resourceName: name, region, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
  }

  /**
   * The snapshot steps: create, wait, copy across regions, share with the
   * vault account and copy into it (as the vault's copier role). Snapshots it
   * creates are named `lifeboat-*`; it may delete only those, and only in this
   * account (intermediate copies it no longer needs).
   */
  private createSnapshotFunction(config: LifeboatConfig, source: ProjectFunctionSource | undefined, placement: RunnerNetwork | undefined): ProjectFunction {
    const fn = new ProjectFunction(this, 'SnapshotFunction', {
      source: source ?? nodejsSource('functions/snapshot/handler.ts'),
      description: `lifeboat ${config.name}: RDS and Aurora snapshots, cross-region copies and vault copies.`,
      serviceName: SERVICE_NAMES.snapshot,
      metricsNamespace: METRICS_NAMESPACE,
      timeout: Duration.minutes(1),
      memorySize: 256,
      environment: snapshotFunctionEnvironment(config, this.partition),
      placement,
      anyResourceReason:
        'rds:DescribeDBSnapshots, DescribeDBClusterSnapshots and DescribeAccountAttributes are on "*": the manual-snapshot quota check lists every snapshot of the account and region.',
    });
    this.readsDeploymentConfig(fn);
    const regions = [...new Set([this.region, ...(config.snapshots?.copy ? [config.snapshots.copy.region] : [])])];
    const instances = config.databases.flatMap((db) => (db.rds && 'instanceIdentifier' in db.rds ? [db.rds.instanceIdentifier] : []));
    const clusters = config.databases.flatMap((db) => (db.rds && 'clusterIdentifier' in db.rds ? [db.rds.clusterIdentifier] : []));
    const ownSnapshots = regions.flatMap((region) => [this.rdsArn('snapshot', 'lifeboat-*', region), this.rdsArn('cluster-snapshot', 'lifeboat-*', region)]);
    if (instances.length > 0) {
      fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['rds:DescribeDBInstances', 'rds:CreateDBSnapshot'], resources: instances.map((i) => this.rdsArn('db', i)) }));
    }
    if (clusters.length > 0) {
      fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['rds:DescribeDBClusters', 'rds:CreateDBClusterSnapshot'], resources: clusters.map((c) => this.rdsArn('cluster', c)) }));
    }
    fn.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: [
          'rds:CreateDBSnapshot',
          'rds:CreateDBClusterSnapshot',
          'rds:CopyDBSnapshot',
          'rds:CopyDBClusterSnapshot',
          'rds:AddTagsToResource',
          'rds:ModifyDBSnapshotAttribute',
          'rds:ModifyDBClusterSnapshotAttribute',
          'rds:DeleteDBSnapshot',
          'rds:DeleteDBClusterSnapshot',
        ],
        resources: ownSnapshots,
      }),
    );
    // Counting manual snapshots against the quota lists them all.
    fn.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['rds:DescribeDBSnapshots', 'rds:DescribeDBClusterSnapshots', 'rds:DescribeAccountAttributes'], resources: ['*'] }),
    );
    // RDS uses the caller's KMS permissions for encrypted copies: only through RDS, only for grants RDS holds.
    const keysInRegions = regions.map((region) => this.formatArn({ service: 'kms', resource: 'key', resourceName: '*', region }));
    fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:DescribeKey'], resources: keysInRegions }));
    fn.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['kms:CreateGrant'],
        resources: keysInRegions,
        conditions: { Bool: { 'kms:GrantIsForAWSResource': 'true' }, StringLike: { 'kms:ViaService': regions.map((r) => `rds.${r}.amazonaws.com`) } },
      }),
    );
    if (config.vault) {
      fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: [vaultNames({ name: config.name, vault: config.vault }, this.partition).copierRoleArn] }));
    }
    acknowledgeWildcardResources(
      fn.role,
      ownSnapshots,
      'Snapshot identifiers are generated per run (database and backup id) under the lifeboat- prefix; the function may create, copy, share and delete only those.',
    );
    acknowledgeWildcardResources(
      fn.role,
      keysInRegions,
      'The KMS key of a source snapshot (the database\'s storage key) is only known at run time; DescribeKey reads metadata, and CreateGrant is limited to grants for RDS (kms:GrantIsForAWSResource, kms:ViaService rds).',
    );
    return fn;
  }

  /**
   * The PITR posture check and lag watch. Least privilege, from the config's
   * pitr plans: it reads only their instances and clusters (and, in the copy
   * region, automated-backup replicas); it may start a replication only for
   * the instances of plans with `pitr.manage` and `pitr.copyRegion`, and use
   * the copy region's key only through RDS in that region for that.
   */
  private createPitrFunction(config: LifeboatConfig, source: ProjectFunctionSource | undefined, placement: RunnerNetwork | undefined): ProjectFunction {
    const fn = new ProjectFunction(this, 'PitrFunction', {
      source: source ?? nodejsSource('functions/pitr/handler.ts'),
      description: `lifeboat ${config.name}: point-in-time recovery posture of the pitr plans' databases (window, lag, copy-region replication).`,
      serviceName: SERVICE_NAMES.pitr,
      metricsNamespace: METRICS_NAMESPACE,
      // Under the watch's 5-minute rate, so runs never overlap.
      timeout: Duration.minutes(4),
      memorySize: 256,
      placement,
      anyResourceReason: 'rds:DescribeDBInstanceAutomatedBackups is on "*": the lag watch lists automated backups (and their replicas in the copy region) unfiltered, a listing with no resource-level permission; it reads metadata only.',
    });
    this.readsDeploymentConfig(fn);
    const targets = pitrTargets(config);
    const instancesOf = (pick: (t: (typeof targets)[number]) => boolean) =>
      [...new Set(targets.filter((t) => 'instanceIdentifier' in t.ref && pick(t)).map((t) => this.rdsArn('db', (t.ref as { instanceIdentifier: string }).instanceIdentifier)))].sort();
    const instances = instancesOf(() => true);
    const clusters = [...new Set(targets.flatMap((t) => ('clusterIdentifier' in t.ref ? [this.rdsArn('cluster', t.ref.clusterIdentifier)] : [])))].sort();
    const autoBackups = (region: string) => this.rdsArn('auto-backup', '*', region);
    // The lag watch lists the region's instances and clusters (a few pages, however many databases: functions/lib/pitr/watch.ts);
    // Describe* reads metadata only. The check reads the plans' own by name.
    const allInstances = this.rdsArn('db', '*');
    const allClusters = this.rdsArn('cluster', '*');
    if (instances.length > 0) {
      fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['rds:DescribeDBInstances'], resources: [...instances, allInstances] }));
      // An unfiltered DescribeDBInstanceAutomatedBackups (the watch's listing, here and in the copy region) has no
      // resource to authorize against: on "*", as the drill and janitor roles list (metadata only, every region).
      fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ListAutomatedBackups', actions: ['rds:DescribeDBInstanceAutomatedBackups'], resources: ['*'] }));
    }
    // Clusters, and the clusters of instances that turn out to be cluster members.
    if (targets.length > 0) fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['rds:DescribeDBClusters'], resources: [...clusters, allClusters] }));
    const copy = config.snapshots?.copy;
    const replicated = copy ? instancesOf((t) => t.pitr.copyRegion) : [];
    const managed = copy ? instancesOf((t) => t.pitr.copyRegion && t.pitr.manage) : [];
    const wildcards = [...(instances.length > 0 ? [allInstances, autoBackups(this.region)] : []), ...(targets.length > 0 ? [allClusters] : [])];
    if (copy && replicated.length > 0) wildcards.push(autoBackups(copy.region));
    if (copy && managed.length > 0) {
      // Called in the copy region: authorized on the source instance and the replica (auto-backup) it creates there.
      fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['rds:StartDBInstanceAutomatedBackupsReplication'], resources: [...managed, autoBackups(copy.region)] }));
      // RDS encrypts the replica with the copy region's key on the caller's behalf: a grant for RDS, made through RDS there.
      fn.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:DescribeKey'], resources: [copy.kmsKeyArn] }));
      fn.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['kms:CreateGrant'],
          resources: [copy.kmsKeyArn],
          conditions: { Bool: { 'kms:GrantIsForAWSResource': 'true' }, StringEquals: { 'kms:ViaService': `rds.${copy.region}.amazonaws.com` } },
        }),
      );
    }
    if (wildcards.length > 0) {
      acknowledgeWildcardResources(
        fn.role,
        wildcards,
        'Automated backups (auto-backup:ab-...) get ids RDS generates; the posture check lists and starts only those of the pitr plans\' instances (named by DbiResourceId, the source instance ARN). The 5-minute lag watch lists the region\'s instances and clusters (rds:DescribeDBInstances on db:*, rds:DescribeDBClusters on cluster:*, metadata only) so it costs a few pages per region instead of calls per database.',
      );
    }
    return fn;
  }

  /**
   * The PITR lag watch: EventBridge Scheduler invokes the posture function
   * every PITR_WATCH_RATE with `{ action: 'watch' }` (window and lag only,
   * nothing changed, no alert: the pitr-lag alarms read its metric), with a
   * role that may invoke that function and nothing else.
   */
  private createPitrWatch(config: LifeboatConfig): scheduler.Schedule {
    const role = new iam.Role(this, 'PitrWatchSchedulerRole', {
      description: `lifeboat ${config.name}: lets EventBridge Scheduler invoke the PITR lag watch, nothing else.`,
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': this.account } } }),
    });
    // The target grants lambda:InvokeFunction on the function and its versions (`<arn>:*`), which only this function has.
    acknowledgeWildcardResources(role, [`${this.pitrFunction.functionArn}:*`], 'The scheduler role may invoke the PITR lag watch function and its versions or aliases (<arn>:*) only.');
    return new scheduler.Schedule(this, 'PitrWatchSchedule', {
      description: `lifeboat ${config.name}: publish the PITR lag (PitrRestorableLagSeconds) of the pitr plans' databases every ${PITR_WATCH_RATE.toMinutes()} minutes`,
      schedule: scheduler.ScheduleExpression.rate(PITR_WATCH_RATE),
      timeWindow: scheduler.TimeWindow.off(),
      target: new schedulerTargets.LambdaInvoke(this.pitrFunction.function, {
        role,
        input: scheduler.ScheduleTargetInput.fromObject({ action: 'watch' }),
        // The next run is minutes away: a late retry only adds a stale sample.
        retryAttempts: 1,
        maxEventAge: Duration.minutes(4),
        deadLetterQueue: this.alarmRouting.deadLetterQueue,
      }),
    });
  }

  /** The dump copier: reads a committed dump (ciphertext) and writes it into the vault as the vault's copier role. */
  private createVaultCopyFunction(config: LifeboatConfig, source: ProjectFunctionSource | undefined, placement: RunnerNetwork | undefined): ProjectFunction {
    const fn = new ProjectFunction(this, 'VaultCopyFunction', {
      source: source ?? nodejsSource('functions/vault-copy/handler.ts'),
      description: `lifeboat ${config.name}: copy committed dumps into the vault and verify them.`,
      serviceName: SERVICE_NAMES.vaultCopy,
      metricsNamespace: METRICS_NAMESPACE,
      timeout: Duration.minutes(15),
      memorySize: 1024,
      environment: vaultCopyFunctionEnvironment(config, this.partition),
      placement,
    });
    this.grantVaultCopy(fn.role, config);
    return fn;
  }

  /**
   * What a drill restore runner (the function, the Fargate task) needs: read
   * backups and decrypt them (principle 4: only a drill or restore role
   * decrypts), and read the throwaway's credentials.
   */
  private grantDrillRestore(role: iam.Role): void {
    this.storage.grantReadBackupObjects(role);
    iam.Grant.addToPrincipal({ grantee: role, actions: ['kms:Decrypt'], resourceArns: [this.storage.envelopeKey.keyArn] });
    grantReadDrillSecrets(role);
  }

  /** What a vault copy runner (the function, the Fargate task) needs: read backups (ciphertext) and assume the vault copier role. */
  private grantVaultCopy(role: iam.IRole, config: LifeboatConfig): void {
    this.storage.grantReadBackupObjects(role);
    if (config.vault) {
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: [vaultNames({ name: config.name, vault: config.vault }, this.partition).copierRoleArn] }));
    }
  }
}
