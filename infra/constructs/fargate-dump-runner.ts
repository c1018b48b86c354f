import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge } from '../nag.ts';
import type { RunnerPlacement } from './runner-network.ts';

/** The container's name in the dump task definition (the ASL's ContainerOverrides name it). */
export const DUMP_CONTAINER_NAME = 'dump';
/** The jobs a runner task definition can run (functions/dump/fargate-task.ts FARGATE_JOBS); each is also its container's name. */
export type FargateRunnerJob = 'dump' | 'vault-copy' | 'drill-restore';
/** The entrypoint inside the runner image (functions/dump/fargate-task.ts, bundled next to the handlers). */
export const FARGATE_TASK_COMMAND = ['node', 'functions/dump/fargate-task.mjs'];

export interface FargateDumpRunnerProps {
  /** Deployment name, for the cluster and task family names. */
  readonly deploymentName: string;
  /**
   * The job the task runs (LIFEBOAT_TASK_HANDLER); also the container's name
   * and the family's suffix.
   * @default 'dump'
   */
  readonly job?: FargateRunnerJob;
  /** Run in this cluster (another runner's). @default a new cluster */
  readonly cluster?: ecs.Cluster;
  /** Powertools service name (`POWERTOOLS_SERVICE_NAME`): the job's function's, so its metrics and alarms see both runners. */
  readonly serviceName: string;
  /** Powertools metrics namespace (`POWERTOOLS_METRICS_NAMESPACE`). */
  readonly metricsNamespace: string;
  /** The runner image: the same asset as the dump function. */
  readonly image: ecs.ContainerImage;
  /** Private subnets and security groups (never a public IP: the ASL says `AssignPublicIp: DISABLED`). */
  readonly placement: RunnerPlacement;
  /** Name of the state machine that starts the task; the task reports back to it with its task token. */
  readonly stateMachineName: string;
  /** Plain settings that grant nothing (resource names go through addResourceEnvironment). @default {} */
  readonly environment?: Readonly<Record<string, string>>;
  /** @default 1024 (1 vCPU) */
  readonly cpu?: number;
  /** @default 4096 */
  readonly memoryLimitMiB?: number;
  /** Ephemeral storage (/tmp), 21–200 GiB. @default 20 GiB, Fargate's own */
  readonly ephemeralStorageGiB?: number;
  /** @default logs.RetentionDays.THREE_MONTHS */
  readonly logRetention?: logs.RetentionDays;
  /** @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/**
 * A job for databases whose dump outlasts Lambda's 15 minutes (the dump, its
 * copy into the vault, its drill's restore): the runner image as an arm64
 * Fargate task in the configured private subnets. The state machine named by
 * `stateMachineName` starts it with `ecs:runTask.waitForTaskToken`; the
 * container runs the job's handler and reports the result with
 * SendTaskSuccess/SendTaskFailure.
 *
 * Each job has its own task definition and role: the role gets exactly the
 * grants of the job's Lambda function (the stack applies the same grants to
 * both) plus the task-token callbacks on that state machine, so the dump task
 * can still not read a backup and the copy task not write one.
 */
export class FargateDumpRunner extends Construct {
  public readonly cluster: ecs.Cluster;
  /** The job this task definition runs. */
  public readonly job: FargateRunnerJob;
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly container: ecs.ContainerDefinition;
  public readonly taskRole: iam.Role;
  public readonly logGroup: logs.LogGroup;
  private readonly placement: RunnerPlacement;

  constructor(scope: Construct, id: string, props: FargateDumpRunnerProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.placement = props.placement;

    const job = props.job ?? 'dump';
    this.job = job;
    this.cluster =
      props.cluster ??
      new ecs.Cluster(this, 'Cluster', {
        clusterName: `${props.deploymentName}-lifeboat`,
        vpc: props.placement.vpc,
        containerInsightsV2: ecs.ContainerInsights.ENABLED,
      });

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });

    this.taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'ecs', resource: '*', arnFormat: ArnFormat.SLASH_RESOURCE_NAME }) },
        },
      }),
      description: `lifeboat ${props.deploymentName}: the Fargate ${job} task (same grants as the ${job} function, plus its task-token callbacks).`,
    });
    // Report the result of the run that started the task (its task token is the capability).
    this.taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
        resources: [stack.formatArn({ service: 'states', resource: 'stateMachine', resourceName: props.stateMachineName, arnFormat: ArnFormat.COLON_RESOURCE_NAME })],
      }),
    );

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      family: `${props.deploymentName}-lifeboat-${job}`,
      cpu: props.cpu ?? 1024,
      memoryLimitMiB: props.memoryLimitMiB ?? 4096,
      ...(props.ephemeralStorageGiB ? { ephemeralStorageGiB: props.ephemeralStorageGiB } : {}),
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.ARM64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
      taskRole: this.taskRole,
    });
    // Read-only root file system; /tmp is writable scratch, as on Lambda.
    this.taskDefinition.addVolume({ name: 'tmp' });
    this.container = this.taskDefinition.addContainer(job, {
      image: props.image,
      // The image is the Lambda base image: bypass its runtime interface client.
      entryPoint: [FARGATE_TASK_COMMAND[0]!],
      command: FARGATE_TASK_COMMAND.slice(1),
      workingDirectory: '/var/task',
      readonlyRootFilesystem: true,
      environment: {
        ...props.environment,
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace,
        // No X-Ray daemon beside the container; INFO as the functions log.
        POWERTOOLS_TRACE_ENABLED: 'false',
        LOG_LEVEL: 'INFO',
        AWS_REGION: stack.region,
        LIFEBOAT_TASK_HANDLER: job,
      },
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: job }),
      stopTimeout: Duration.seconds(30),
    });
    this.container.addMountPoints({ containerPath: '/tmp', sourceVolume: 'tmp', readOnly: false });

    acknowledge(
      this.taskDefinition,
      'AwsSolutions-ECS2',
      'The environment holds names (bucket, prefix, key ARN, service names), never a secret: database credentials are read from Secrets Manager at run time and the task token arrives as a run-time override.',
    );
    acknowledge(
      this.taskDefinition.obtainExecutionRole(),
      'AwsSolutions-IAM5[Resource::*]',
      'ecr:GetAuthorizationToken supports no resource-level permissions; CDK adds it to the execution role to pull the image asset.',
    );
  }

  /** Adds an environment variable naming a resource together with the task role's grant on it. */
  public addResourceEnvironment(name: string, value: string, grant: (grantee: iam.IGrantable) => void): this {
    this.container.addEnvironment(name, value);
    grant(this.taskRole);
    return this;
  }

  /** What the backup state machine needs to start the task: RunTask on this family in this cluster, and PassRole for its roles. */
  public grantRun(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['ecs:RunTask'],
      resourceArns: [this.taskDefinition.taskDefinitionArn],
      conditions: { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } },
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['iam:PassRole'],
      resourceArns: [this.taskRole.roleArn, this.taskDefinition.obtainExecutionRole().roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    });
  }

  /**
   * Substitutions for the backup definition's Fargate states, once it has them:
   * `${DumpClusterArn}`, `${DumpTaskDefinitionArn}`, and the comma-separated
   * `${DumpSubnetIds}` and `${DumpSecurityGroupIds}` (the ASL splits them with States.StringSplit).
   */
  public substitutions(): Record<'DumpClusterArn' | 'DumpTaskDefinitionArn' | 'DumpSubnetIds' | 'DumpSecurityGroupIds', string> {
    return {
      DumpClusterArn: this.cluster.clusterArn,
      DumpTaskDefinitionArn: this.taskDefinition.taskDefinitionArn,
      DumpSubnetIds: this.placement.subnets.map((s) => s.subnetId).join(','),
      DumpSecurityGroupIds: this.placement.securityGroups.map((g) => g.securityGroupId).join(','),
    };
  }
}
