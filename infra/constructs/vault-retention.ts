import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { RetentionSchedule } from '../../events/schedules.ts';
import type { LifeboatConfig } from '../../functions/lib/config/schema.ts';
import { METRICS_NAMESPACE, SERVICE_NAMES } from '../../functions/lib/metrics/names.ts';
import { retentionFunctionEnvironment, vaultRetentionRoleName } from '../../functions/lib/retention/environment.ts';
import { AlarmRouting } from './alarm-routing.ts';
import { DeploymentConfigObject } from './deployment-config.ts';
import { Alerts } from './alerts.ts';
import type { MonitoredStateMachine } from './monitored-state-machine.ts';
import { retentionStateMachines } from './retention-workflow.ts';
import { ProjectFunction, type ProjectFunctionSource } from './project-function.ts';
import { grantPruneBackups, grantPruneSnapshots, grantReadDrillReports, grantWriteRetentionAudit, type BackupBucketScope } from './retention-access.ts';
import { ScheduledWorkflow } from './scheduled-workflow.ts';
import { acknowledge } from '../nag.ts';

export interface VaultRetentionProps {
  /** The validated config (needs `vault`). */
  readonly config: LifeboatConfig;
  readonly bucket: s3.IBucket;
  readonly bucketKey: kms.IKey;
  /** The plans' vault retention runs (retentionSchedules with locations ['vault']); at least one. */
  readonly runs: readonly RetentionSchedule[];
  /** @default functions/retention/handler.ts and functions/alert/handler.ts bundled with the local esbuild */
  readonly code?: { readonly retention?: ProjectFunctionSource };
  /** The repository root (esbuild project root). */
  readonly projectRoot: string;
  /** The vault stack's alert topic, alert function and alarm routing. */
  readonly alerting: { readonly alerts: Alerts; readonly alertFunction: ProjectFunction; readonly alarmRouting: AlarmRouting };
}

/**
 * Vault-side retention, run by the vault account alone (principle 3): the same
 * retention function and state machine as the source, at location `vault`
 * only, on its own EventBridge Scheduler schedules, alerting through the vault
 * stack's own topic and alert function (the vault must work without production).
 *
 * Two roles keep "who runs" apart from "who deletes":
 *
 * - the function's execution role reads the drill reports and writes the
 *   audit logs in the vault bucket, and may assume
 * - the vault retention role (`<name>-lifeboat-vault-retention`), which alone
 *   may delete vault backup versions and vault snapshots. Only that execution
 *   role may assume it; its ARN is the bucket policy's delete exception, and
 *   Object Lock still refuses anything under retention.
 */
export class VaultRetention extends Construct {
  public readonly function: ProjectFunction;
  /** The config object the vault retention function reads its plans from. */
  public readonly config: DeploymentConfigObject;
  /** Deletes expired vault backups; assumable by `function`'s role only. */
  public readonly retentionRole: iam.Role;
  public readonly alerts: Alerts;
  public readonly alertFunction: ProjectFunction;
  public readonly alarmRouting: AlarmRouting;
  public readonly stateMachine: MonitoredStateMachine;
  /** Prunes one vault target; a child execution of `stateMachine`. */
  public readonly targetStateMachine: MonitoredStateMachine;
  public readonly schedulerRole: iam.Role;
  /** Plan id → its vault retention schedule. */
  public readonly schedules = new Map<string, ScheduledWorkflow>();

  constructor(scope: Construct, id: string, props: VaultRetentionProps) {
    super(scope, id);
    const { config, bucket, bucketKey } = props;
    const stack = Stack.of(this);
    const nodejs = (path: string): ProjectFunctionSource => ({ kind: 'nodejs', entry: `${props.projectRoot}/${path}`, handler: 'handler', projectRoot: props.projectRoot });
    const bucketScope: BackupBucketScope = { bucket, bucketKeyArn: bucketKey.keyArn, prefix: config.storage.prefix };

    // The vault stack's own alerting (one topic, alert function and routing for everything in the vault).
    this.alerts = props.alerting.alerts;
    this.alertFunction = props.alerting.alertFunction;
    this.alarmRouting = props.alerting.alarmRouting;

    this.function = new ProjectFunction(this, 'Function', {
      source: props.code?.retention ?? nodejs('functions/retention/handler.ts'),
      description: `lifeboat ${config.name} vault: prune vault dumps and snapshots (GFS) with an audit log, as the vault retention role.`,
      serviceName: SERVICE_NAMES.retention,
      metricsNamespace: METRICS_NAMESPACE,
      timeout: Duration.minutes(15),
      memorySize: 512,
      // The vault target only: no copy region, and the vault bucket is where the drill reports and audit logs are read and written.
      environment: { ...retentionFunctionEnvironment({ ...config, snapshots: undefined }, stack.partition), BACKUP_PREFIX: config.storage.prefix },
    });
    this.function.addResourceEnvironment('BACKUP_BUCKET', bucket.bucketName, () => {
      grantReadDrillReports(this.function.role, bucketScope);
      grantWriteRetentionAudit(this.function.role, bucketScope);
    });
    // The plans (every database) come from the config object the vault stack publishes itself, in the
    // vault account's asset bucket: what the vault deployer reviewed, never what production wrote.
    // The whole config, as validated: the function's environment (above) decides the location (the vault only).
    this.config = new DeploymentConfigObject(this, 'DeploymentConfig', { config });
    for (const [name, value] of Object.entries(this.config.environment())) this.function.addResourceEnvironment(name, value, (g) => this.config.grantRead(g));

    this.retentionRole = new iam.Role(this, 'RetentionRole', {
      roleName: vaultRetentionRoleName(config.name),
      description: `lifeboat ${config.name}: deletes expired vault backups and snapshots. Assumed only by the vault's own retention function; production can never assume it.`,
      assumedBy: new iam.ArnPrincipal(this.function.role.roleArn),
      maxSessionDuration: Duration.hours(1),
    });
    grantPruneBackups(this.retentionRole, bucketScope);
    grantPruneSnapshots(this.retentionRole, [stack.region]);
    acknowledge(
      this.retentionRole,
      'AwsSolutions-IAM5[Resource::*]',
      'rds:DescribeDBSnapshots and DescribeDBClusterSnapshots are on "*": a listing of manual snapshots has no resource-level permission; deletes are limited to lifeboat-* snapshots.',
    );
    this.function.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: [this.retentionRole.roleArn] }));

    // The same workflow as at the source: each vault target in its own child execution.
    const machines = retentionStateMachines(this, {
      deploymentName: config.name,
      workflow: 'vault-retention',
      retentionFunction: this.function,
      alertFunction: this.alertFunction,
      ids: { run: 'StateMachine', target: 'TargetStateMachine' },
    });
    this.stateMachine = machines.run;
    this.targetStateMachine = machines.target;

    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      description: `lifeboat ${config.name} vault: lets EventBridge Scheduler start vault retention, nothing else.`,
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
    });
    for (const run of props.runs) {
      this.schedules.set(
        run.planId,
        new ScheduledWorkflow(this, `Schedule-${run.planId}`, {
          workflow: this.stateMachine,
          schedule: { expression: run.expression, timeZone: run.timeZone },
          input: { ...run.input },
          description: `lifeboat ${config.name}: prune plan "${run.planId}" in the vault`,
          role: this.schedulerRole,
          deadLetterQueue: this.alarmRouting.deadLetterQueue,
        }),
      );
    }
  }
}
