import { fileURLToPath } from 'node:url';
import { CfnOutput, CustomResource, Duration, Fn, RemovalPolicy, Stack, Tags, type App, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { SHIPPED_BUNDLING } from '../../infra/bundling.ts';
import { SAMPLE_SCHEMA } from './sample-data.ts';

/**
 * The smoke test's own stack: what a real lifeboat user already has before
 * deploying lifeboat (a VPC with private subnets and a way out, an encrypted
 * RDS PostgreSQL instance with its secret and some data) plus what the smoke
 * test observes with (an SQS queue for the alert topic) and what it breaks on
 * purpose (a second secret for the same instance with a wrong password).
 *
 * A CDK stack rather than SDK calls, because the project has no EC2 client to
 * build a VPC with; CloudFormation creates and deletes the pieces in
 * dependency order and rolls back a half-made fixture by itself; and a custom
 * resource seeds the data from inside the VPC, so the instance never needs
 * public access. Never part of what lifeboat ships.
 */
export interface SmokeFixtureProps {
  /** Deployment name of the smoke run (`config.name`). */
  readonly name: string;
  /** The source region (the account is the deploying credentials'). */
  readonly region: string;
  readonly engineMajor: number;
  /** lifeboat's source stack name: only its alert topic may send to the queue. */
  readonly sourceStackName: string;
  /** RDS windows away from the run, so no automated backup or maintenance collides with lifeboat's snapshot. */
  readonly backupWindow: string;
  readonly maintenanceWindow: string;
}

export const SMOKE_DATABASE_NAME = 'smoke';
export const SMOKE_MASTER_USER = 'lifeboat_smoke';
/** The context key naming the JSON file with the fixture's props (`-c smokeFixture=<file>`). */
export const FIXTURE_CONTEXT_KEY = 'smokeFixture';

export function fixtureStackName(name: string): string {
  return `${name}-smoke-fixture`;
}

/** What the fixture stack outputs, as the smoke test reads it back. */
export interface SmokeFixture {
  readonly vpcId: string;
  readonly privateSubnetIds: string[];
  readonly runnerSecurityGroupId: string;
  readonly databaseSecurityGroupId: string;
  readonly subnetGroupName: string;
  readonly instanceIdentifier: string;
  readonly databaseName: string;
  readonly masterSecretArn: string;
  readonly wrongSecretArn: string;
  readonly alertQueueArn: string;
  readonly alertQueueUrl: string;
  /** Rows per sample table as the seeding function counted them. */
  readonly sampleRows: Record<string, number>;
}

const OUTPUTS = {
  vpcId: 'VpcId',
  privateSubnetIds: 'PrivateSubnetIds',
  runnerSecurityGroupId: 'RunnerSecurityGroupId',
  databaseSecurityGroupId: 'DatabaseSecurityGroupId',
  subnetGroupName: 'SubnetGroupName',
  instanceIdentifier: 'InstanceIdentifier',
  databaseName: 'DatabaseName',
  masterSecretArn: 'MasterSecretArn',
  wrongSecretArn: 'WrongSecretArn',
  alertQueueArn: 'AlertQueueArn',
  alertQueueUrl: 'AlertQueueUrl',
  sampleRows: 'SampleRows',
} as const satisfies Record<keyof SmokeFixture, string>;

/**
 * RDS windows twelve hours from `now` (backup) and three days out, an hour later (maintenance),
 * in RDS's formats (`hh24:mi-hh24:mi`, `ddd:hh24:mi-ddd:hh24:mi`, UTC).
 */
export function quietWindows(now: Date): { backupWindow: string; maintenanceWindow: string } {
  const pad = (n: number) => String(n).padStart(2, '0');
  const hour = (now.getUTCHours() + 12) % 24;
  // An hour after the backup window, so the two never overlap (RDS refuses that).
  const maintenanceHour = (hour + 1) % 24;
  const days = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
  const day = days[(now.getUTCDay() + 3) % 7]!;
  return {
    backupWindow: `${pad(hour)}:00-${pad(hour)}:30`,
    maintenanceWindow: `${day}:${pad(maintenanceHour)}:00-${day}:${pad(maintenanceHour)}:30`,
  };
}

export class SmokeFixtureStack extends Stack {
  public readonly instance: rds.DatabaseInstance;
  public readonly queue: sqs.Queue;

  constructor(scope: Construct, id: string, props: SmokeFixtureProps & StackProps) {
    // Region only: the account is whoever deploys, and the AZs stay Fn::GetAZs
    // tokens, so synth needs no lookup (and writes no cdk.context.json).
    super(scope, id, { ...props, env: { region: props.region }, stackName: fixtureStackName(props.name), description: `lifeboat smoke test ${props.name}: fixture (VPC, RDS, secrets, alert queue). Deleted by the smoke test.` });
    Tags.of(this).add('lifeboat:smoke', props.name);

    const vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.70.0.0/16'),
      maxAzs: 2,
      // One NAT gateway: the runners call S3, KMS, STS and the vault region, and
      // costs less per hour than lifeboat's interface endpoints would.
      natGateways: 1,
      restrictDefaultSecurityGroup: false,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
      ],
    });
    const privateSubnets = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };

    const runners = new ec2.SecurityGroup(this, 'RunnerSecurityGroup', { vpc, description: `lifeboat smoke ${props.name}: lifeboat functions and the seeder`, allowAllOutbound: true });
    const database = new ec2.SecurityGroup(this, 'DatabaseSecurityGroup', { vpc, description: `lifeboat smoke ${props.name}: the database and drill throwaways`, allowAllOutbound: false });
    database.addIngressRule(runners, ec2.Port.tcp(5432), 'PostgreSQL from lifeboat functions');

    const subnetGroup = new rds.SubnetGroup(this, 'SubnetGroup', {
      vpc,
      vpcSubnets: privateSubnets,
      description: `lifeboat smoke ${props.name}: private subnets for the database and drill throwaways`,
      subnetGroupName: `${props.name}-smoke`,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.instance = new rds.DatabaseInstance(this, 'Database', {
      instanceIdentifier: `${props.name}-db`,
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.of(String(props.engineMajor), String(props.engineMajor)) }),
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
      allocatedStorage: 20,
      storageType: rds.StorageType.GP3,
      // Encrypted with the default aws/rds key, as most databases are: lifeboat
      // must re-encrypt the snapshot copy under a customer key to share it.
      storageEncrypted: true,
      publiclyAccessible: false,
      deletionProtection: false,
      multiAz: false,
      backupRetention: Duration.days(1),
      deleteAutomatedBackups: true,
      removalPolicy: RemovalPolicy.DESTROY,
      preferredBackupWindow: props.backupWindow,
      preferredMaintenanceWindow: props.maintenanceWindow,
      autoMinorVersionUpgrade: false,
      enablePerformanceInsights: false,
      vpc,
      subnetGroup,
      securityGroups: [database],
      databaseName: SMOKE_DATABASE_NAME,
      credentials: rds.Credentials.fromGeneratedSecret(SMOKE_MASTER_USER, { secretName: `lifeboat-smoke/${props.name}/master` }),
    });
    const masterSecret = this.instance.secret!;

    // Same instance, same user, a password that is not the user's: the "broken" database.
    const wrongSecret = new secretsmanager.Secret(this, 'WrongPasswordSecret', {
      secretName: `lifeboat-smoke/${props.name}/wrong-password`,
      description: `lifeboat smoke ${props.name}: deliberately wrong password, to prove a failed dump alerts`,
      generateSecretString: {
        secretStringTemplate: Stack.of(this).toJsonString({ username: SMOKE_MASTER_USER, host: this.instance.dbInstanceEndpointAddress, port: 5432, dbname: SMOKE_DATABASE_NAME }),
        generateStringKey: 'password',
        excludePunctuation: true,
        passwordLength: 32,
      },
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.queue = new sqs.Queue(this, 'AlertQueue', {
      queueName: `${props.name}-smoke-alerts`,
      // SSE-SQS: SNS can deliver to it without a key grant.
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(1),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.queue.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'LifeboatAlertTopicMaySend',
        principals: [new iam.ServicePrincipal('sns.amazonaws.com')],
        actions: ['sqs:SendMessage'],
        resources: [this.queue.queueArn],
        // CloudFormation names the topic `<stack name>-<logical id>-<suffix>`.
        conditions: { ArnLike: { 'aws:SourceArn': `arn:${this.partition}:sns:${this.region}:${this.account}:${props.sourceStackName}-*` } },
      }),
    );

    const seeder = new nodejs.NodejsFunction(this, 'SeedFunction', {
      entry: fileURLToPath(new URL('./fixture-seed.ts', import.meta.url)),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      timeout: Duration.minutes(2),
      memorySize: 256,
      vpc,
      vpcSubnets: privateSubnets,
      securityGroups: [runners],
      environment: { NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem' },
      logGroup: new logs.LogGroup(this, 'SeedLogs', { retention: logs.RetentionDays.ONE_DAY, removalPolicy: RemovalPolicy.DESTROY }),
      depsLockFilePath: fileURLToPath(new URL('../../package-lock.json', import.meta.url)),
      projectRoot: fileURLToPath(new URL('../..', import.meta.url)),
      bundling: {
        forceDockerBundling: false,
        format: nodejs.OutputFormat.ESM,
        target: SHIPPED_BUNDLING.target,
        mainFields: [...SHIPPED_BUNDLING.mainFields],
        banner: SHIPPED_BUNDLING.banner,
        minify: SHIPPED_BUNDLING.minify,
        keepNames: SHIPPED_BUNDLING.keepNames,
        externalModules: [...SHIPPED_BUNDLING.external],
      },
    });
    masterSecret.grantRead(seeder);
    const provider = new cr.Provider(this, 'SeedProvider', {
      onEventHandler: seeder,
      logGroup: new logs.LogGroup(this, 'SeedProviderLogs', { retention: logs.RetentionDays.ONE_DAY, removalPolicy: RemovalPolicy.DESTROY }),
    });
    const seed = new CustomResource(this, 'SampleData', {
      serviceToken: provider.serviceToken,
      properties: { SecretArn: masterSecret.secretArn, DatabaseName: SMOKE_DATABASE_NAME, Schema: SAMPLE_SCHEMA },
    });
    seed.node.addDependency(this.instance);

    const output = (key: keyof SmokeFixture, value: string) => new CfnOutput(this, OUTPUTS[key], { value });
    output('vpcId', vpc.vpcId);
    output('privateSubnetIds', Fn.join(',', vpc.selectSubnets(privateSubnets).subnetIds));
    output('runnerSecurityGroupId', runners.securityGroupId);
    output('databaseSecurityGroupId', database.securityGroupId);
    output('subnetGroupName', subnetGroup.subnetGroupName);
    output('instanceIdentifier', this.instance.instanceIdentifier);
    output('databaseName', SMOKE_DATABASE_NAME);
    output('masterSecretArn', masterSecret.secretArn);
    output('wrongSecretArn', wrongSecret.secretArn);
    output('alertQueueArn', this.queue.queueArn);
    output('alertQueueUrl', this.queue.queueUrl);
    output('sampleRows', seed.getAttString('Rows'));
  }
}

export function addSmokeFixture(app: App, props: SmokeFixtureProps): SmokeFixtureStack {
  return new SmokeFixtureStack(app, fixtureStackName(props.name), props);
}

/** The fixture as `cdk deploy --outputs-file` wrote it; names every missing output. */
export function readFixtureOutputs(outputs: Record<string, Record<string, string> | undefined>, stackName: string): SmokeFixture {
  const values = outputs[stackName];
  if (!values) throw new Error(`cdk wrote no outputs for stack ${stackName}; did the deploy finish?`);
  const missing = Object.values(OUTPUTS).filter((key) => !values[key]);
  if (missing.length > 0) throw new Error(`stack ${stackName} is missing outputs ${missing.join(', ')}`);
  const get = (key: keyof SmokeFixture) => values[OUTPUTS[key]]!;
  return {
    vpcId: get('vpcId'),
    privateSubnetIds: get('privateSubnetIds').split(','),
    runnerSecurityGroupId: get('runnerSecurityGroupId'),
    databaseSecurityGroupId: get('databaseSecurityGroupId'),
    subnetGroupName: get('subnetGroupName'),
    instanceIdentifier: get('instanceIdentifier'),
    databaseName: get('databaseName'),
    masterSecretArn: get('masterSecretArn'),
    wrongSecretArn: get('wrongSecretArn'),
    alertQueueArn: get('alertQueueArn'),
    alertQueueUrl: get('alertQueueUrl'),
    sampleRows: JSON.parse(get('sampleRows')) as Record<string, number>,
  };
}
