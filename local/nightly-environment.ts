import { join } from 'node:path';
import { CreateAliasCommand, CreateKeyCommand, DisableKeyCommand, EnableKeyCommand, type KMS } from '@aws-sdk/client-kms';
import { CreateDBInstanceCommand, DescribeAccountAttributesCommand } from '@aws-sdk/client-rds';
import { CreateBucketCommand, PutBucketVersioningCommand, PutObjectLockConfigurationCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateTopicCommand, SubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createAlertHandler } from '../functions/alert/handler.ts';
import { createDumpHandler } from '../functions/dump/handler.ts';
import { createPlanHandler } from '../functions/plan/handler.ts';
import { createPitrHandler } from '../functions/pitr/handler.ts';
import { DeploymentConfig } from '../functions/lib/config/deployment.ts';
import { createRetentionHandler } from '../functions/retention/handler.ts';
import { createSnapshotHandler } from '../functions/snapshot/handler.ts';
import { createVaultCopyHandler } from '../functions/vault-copy/handler.ts';
import { loadDefinition } from '../state-machines/definitions.ts';
import { createAwsClients, createKmsClient, createRdsClient, createS3Client, createStsClient, type AwsCredentials } from '../functions/lib/aws/clients.ts';
import type { DumpTarget } from '../functions/lib/backup/dump-pipeline.ts';
import { createKeyringKmsClient } from '../functions/lib/backup/encryption.ts';
import { parseConfig } from '../functions/lib/config/load.ts';
import type { DrillsConfig, LifeboatConfig, RetentionPolicy } from '../functions/lib/config/schema.ts';
import { localDrillDeps } from '../cli/local-drill.ts';
import { LocalPostgresProvisioner } from '../functions/lib/drill/local-provisioner.ts';
import type { DrillDeps } from '../functions/lib/drill/steps.ts';
import { retentionEnvSchema, retentionFunctionEnvironment, retentionSettingsFromEnv } from '../functions/lib/retention/environment.ts';
import type { RetentionContext } from '../functions/lib/retention/run.ts';
import { snapshotEnvironmentFrom, snapshotEnvSchema, snapshotFunctionEnvironment } from '../functions/lib/snapshots/environment.ts';
import type { SnapshotContext } from '../functions/lib/snapshots/workflow.ts';
import type { StatusSources } from '../functions/lib/status/model.ts';
import { backupsFromBucket, drillsFromBucket } from '../functions/lib/status/s3-sources.ts';
import type { StsApi } from '../functions/lib/vault/credentials.ts';
import { vaultCopyEnvSchema, vaultCopyFunctionEnvironment, vaultDumpTargetFrom, type VaultDumpTarget } from '../functions/lib/vault/environment.ts';
import { vaultNames } from '../functions/lib/vault/names.ts';
import { enforceKmsKeyState, startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { asLocalTask } from './lambda-task.ts';
import { startLocalPostgres } from '../functions/lib/pg/postgres-cluster.ts';
import { accountQuotas, actAsAccount, awsManagedKeys, credentialsFor, crossAccountKms, crossAccountSnapshotCopy, type QuotaScript } from './moto-rds-compat.ts';
import { localStepFunctionsArn, type LocalMachine } from './sfn-server.ts';
import { strictRdsLifecycle, waitUntilAvailable, type StrictRds, type StrictRdsOptions } from './strict-rds.ts';
import { LOCAL_TIME_SCALE, localFunctionArn, type TaskHandler } from './state-machine-runner.ts';

/**
 * A whole lifeboat deployment on one machine, for local runs only (`npm run
 * demo` and the integration tests): a production account and a vault account
 * on moto, behind the loopback proxy that supplies what moto lacks (see
 * moto-rds-compat.ts), with the real handlers wired to the real state machine
 * definitions. Each handler gets the environment the CDK app would give it,
 * built from one parsed lifeboat config.
 *
 *   production 333333333333, eu-west-1:  backup bucket, envelope key, secrets,
 *     RDS instances (moto), alert topic with an SQS on-call queue; snapshot
 *     copies under a customer managed key in eu-central-1
 *   vault 222222222222, eu-central-1:    Object Lock bucket (compliance mode),
 *     snapshot key, recovery key (production may only encrypt with it)
 */
export const LOCAL_ACCOUNTS = { production: '333333333333', vault: '222222222222' } as const;
export const LOCAL_REGIONS = { source: 'eu-west-1', vault: 'eu-central-1' } as const;

/** Task resources of the backup state machines in local runs. */
export const backupFunctionArns = {
  PlanFunctionArn: localFunctionArn('plan'),
  DumpFunctionArn: localFunctionArn('dump'),
  AlertFunctionArn: localFunctionArn('alert'),
  SnapshotFunctionArn: localFunctionArn('snapshot'),
  VaultCopyFunctionArn: localFunctionArn('vault-copy'),
  PitrFunctionArn: localFunctionArn('pitr'),
};

/**
 * Everything the backup definition substitutes in local runs: the functions,
 * and inert values for its Fargate dump runner (local runs dump in-process;
 * see {@link backupTaskResources}).
 */
export const backupDatabaseSubstitutions = {
  DumpFunctionArn: backupFunctionArns.DumpFunctionArn,
  AlertFunctionArn: backupFunctionArns.AlertFunctionArn,
  SnapshotFunctionArn: backupFunctionArns.SnapshotFunctionArn,
  VaultCopyFunctionArn: backupFunctionArns.VaultCopyFunctionArn,
  DumpClusterArn: 'arn:aws:ecs:eu-west-1:333333333333:cluster/lifeboat-local',
  DumpTaskDefinitionArn: 'arn:aws:ecs:eu-west-1:333333333333:task-definition/lifeboat-local-dump:1',
  DumpSubnetIds: 'subnet-local',
  DumpSecurityGroupIds: 'sg-local',
  VaultCopyTaskDefinitionArn: 'arn:aws:ecs:eu-west-1:333333333333:task-definition/lifeboat-local-vault-copy:1',
};

/** The backup workflow's substitutions: its plan and alert functions, and the per-database workflow it starts. */
export function backupSubstitutions(backupDatabaseStateMachineArn: string): Record<string, string> {
  return {
    PlanFunctionArn: backupFunctionArns.PlanFunctionArn,
    AlertFunctionArn: backupFunctionArns.AlertFunctionArn,
    PitrFunctionArn: backupFunctionArns.PitrFunctionArn,
    BackupDatabaseStateMachineArn: backupDatabaseStateMachineArn,
  };
}

/** Service integrations of the backup definition, run in-process locally. */
const ECS_RUN_TASK = 'arn:aws:states:::ecs:runTask.waitForTaskToken';

/** Task resources of the retention target state machine in local runs (the run itself calls the alert function only). */
export const retentionFunctionArns = { RetentionFunctionArn: localFunctionArn('retention'), AlertFunctionArn: localFunctionArn('alert') };

/**
 * Starts the loopback proxy in front of moto with every rule that answers as
 * AWS does where moto does not: the RDS quota call, cross-account snapshot
 * copies and KMS calls, AWS managed keys, disabled keys. Tests add their
 * scripted faults after these.
 */
export interface MotoCompatProxy extends FaultProxy {
  /** The strict RDS lifecycle (strict-rds.ts), unless turned off. */
  rds?: StrictRds;
}

/**
 * The strict RDS lifecycle is on by default: resources take several polls to
 * become available and busy ones refuse calls, as on AWS. `strict` sets its
 * knobs (polls per status, minimum time, concurrent copies); the manual
 * snapshot quota it enforces is `quota`, the one DescribeAccountAttributes
 * reports. `strict: false` gives moto's instant lifecycle.
 */
export async function startMotoCompatProxy(upstream: string, quota: QuotaScript = { max: () => 100 }, strict: Omit<StrictRdsOptions, 'quota'> | false = {}): Promise<MotoCompatProxy> {
  const proxy: MotoCompatProxy = await startFaultProxy(upstream);
  if (strict !== false) {
    proxy.rds = strictRdsLifecycle(upstream, { ...strict, quota });
    proxy.addLayer(proxy.rds);
  }
  proxy.addRule(accountQuotas(upstream, quota));
  proxy.addRule(crossAccountSnapshotCopy(upstream));
  proxy.addRule(crossAccountKms(upstream));
  proxy.addRule(awsManagedKeys(upstream));
  proxy.addRule(enforceKmsKeyState(upstream));
  return proxy;
}

export interface ReceivedAlert {
  subject: string;
  message: string;
  /** The JSON block at the end of every alert. */
  details: Record<string, unknown>;
}

/** The alert topic with an SQS queue subscribed: the on-call inbox of a local run. */
export interface AlertInbox {
  topicArn: string;
  queueUrl: string;
  /** Polls until `expected` alerts arrived (at most about 10 s), then takes whatever else is there. */
  drain(expected?: number): Promise<ReceivedAlert[]>;
}

export async function createAlertInbox(sns: SNSClient, names: { topic: string; queue: string }): Promise<AlertInbox> {
  // The queue URL names moto's own port; keep every call on the configured endpoint (the proxy).
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  const topicArn = (await sns.send(new CreateTopicCommand({ Name: names.topic }))).TopicArn!;
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: names.queue }))).QueueUrl!;
  const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn }));
  return {
    topicArn,
    queueUrl,
    async drain(expected = 0) {
      // SNS delivers to SQS synchronously on moto; a last immediate poll catches any extra alert.
      const messages: Message[] = [];
      for (let i = 0; i < 10 && messages.length < expected; i++) {
        const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
        messages.push(...(out.Messages ?? []));
      }
      const extra = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      messages.push(...(extra.Messages ?? []));
      return messages.map((m) => {
        const envelope = JSON.parse(m.Body!) as { Subject: string; Message: string };
        const json = envelope.Message.split('--- details (JSON) ---')[1];
        return { subject: envelope.Subject, message: envelope.Message, details: json ? (JSON.parse(json) as Record<string, unknown>) : {} };
      });
    },
  };
}

/** Policy of the production key that re-encrypts snapshot copies; the vault account needs it to copy them in. */
export function snapshotCopyKeyPolicy(production: string, vault: string, sharedWithVault: boolean): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Owner', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${production}:root` }, Action: 'kms:*', Resource: '*' },
      ...(sharedWithVault
        ? [{ Sid: 'Vault', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${vault}:root` }, Action: ['kms:CreateGrant', 'kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'], Resource: '*' }]
        : []),
    ],
  });
}

export interface LocalVault {
  account: string;
  region: string;
  /** The vault account's own administrator: reads what the copier wrote, as an operator there would. */
  credentials: AwsCredentials;
  bucket: string;
  retentionDays: number;
  snapshotKeyArn: string;
  /** Production may only kms:Encrypt (and DescribeKey) with it, as the vault stack's RecoveryKey. */
  recoveryKeyArn: string;
}

export interface LocalVaultOptions {
  bucket: string;
  /** Default Object Lock retention (compliance mode) of the bucket. */
  retentionDays: number;
  productionAccounts: string[];
  account?: string;
  region?: string;
  /** Aliases, as the vault stack names them (vaultNames). */
  aliases?: { snapshotKey: string; recoveryKey: string };
}

/** The vault account's side, as its stack creates it: keys and the Object Lock bucket. */
export async function createLocalVault(options: LocalVaultOptions): Promise<LocalVault> {
  const account = options.account ?? LOCAL_ACCOUNTS.vault;
  const region = options.region ?? LOCAL_REGIONS.vault;
  const credentials = await credentialsFor(account, 'vault-admin');
  const kms = createKmsClient({ region, credentials });
  const snapshotKeyArn = (await kms.send(new CreateKeyCommand({ Description: 'vault snapshot key' }))).KeyMetadata!.Arn!;
  const recoveryPolicy = JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Owner', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' },
      { Sid: 'ProductionMayOnlyEncrypt', Effect: 'Allow', Principal: { AWS: options.productionAccounts.map((a) => `arn:aws:iam::${a}:root`) }, Action: ['kms:Encrypt', 'kms:DescribeKey'], Resource: '*' },
    ],
  });
  const recoveryKeyArn = (await kms.send(new CreateKeyCommand({ Description: 'vault recovery key', Policy: recoveryPolicy }))).KeyMetadata!.Arn!;
  if (options.aliases) {
    await kms.send(new CreateAliasCommand({ AliasName: options.aliases.snapshotKey, TargetKeyId: snapshotKeyArn }));
    await kms.send(new CreateAliasCommand({ AliasName: options.aliases.recoveryKey, TargetKeyId: recoveryKeyArn }));
  }
  const s3 = createS3Client({ region, credentials });
  await s3.send(new CreateBucketCommand({ Bucket: options.bucket, CreateBucketConfiguration: { LocationConstraint: region as 'eu-central-1' }, ObjectLockEnabledForBucket: true }));
  await s3.send(
    new PutObjectLockConfigurationCommand({
      Bucket: options.bucket,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: options.retentionDays } } },
    }),
  );
  return { account, region, credentials, bucket: options.bucket, retentionDays: options.retentionDays, snapshotKeyArn, recoveryKeyArn };
}

export interface BackupTaskOptions {
  /** The deployed config, as the functions read it from its S3 object. */
  config: LifeboatConfig;
  clients: { s3: S3Client; secrets: SecretsManagerClient; keyringKms: KMS; sns: SNSClient };
  dumpTarget: DumpTarget;
  /** Where dumps are copied (the vault-copy function's environment); without it copies are skipped. */
  vaultDump?: VaultDumpTarget;
  /** The snapshot function's environment; `rds` and `kms` default to clients in the given region. */
  snapshot: Pick<SnapshotContext, 'sourceRegion' | 'settings' | 'vault'> & Partial<Pick<SnapshotContext, 'rds' | 'kms'>>;
  /** STS that both copy functions assume the vault copier role with. @default a client in the source region */
  sts?: StsApi;
  topicArn: string;
  logger: Logger;
  metrics: Metrics;
}

/** The backup state machine's four functions, in-process and Lambda-shaped, keyed by {@link backupFunctionArns}. */
export function backupTaskResources(options: BackupTaskOptions): Record<string, TaskHandler> {
  const { clients, logger, metrics } = options;
  const sts = options.sts ?? createStsClient({ region: options.snapshot.sourceRegion });
  const deployed = new DeploymentConfig(options.config);
  const config = async () => deployed;
  const snapshot = createSnapshotHandler({
    config,
    context: {
      rds: options.snapshot.rds ?? ((region, credentials) => createRdsClient({ region, credentials })),
      kms: options.snapshot.kms ?? ((region) => createKmsClient({ region })),
      sts,
      sourceRegion: options.snapshot.sourceRegion,
      settings: options.snapshot.settings,
      vault: options.snapshot.vault,
    },
    logger,
    metrics,
  });
  const dump = asLocalTask(
    'dump',
    createDumpHandler({ clients: { s3: clients.s3, secrets: clients.secrets, keyringKms: clients.keyringKms }, target: options.dumpTarget, config, logger, metrics }),
  );
  const vaultCopy = asLocalTask(
    'vault-copy',
    createVaultCopyHandler({ sourceS3: clients.s3, sts, vaultS3: (region, credentials) => createS3Client({ region, credentials }), vault: options.vaultDump, logger, metrics }),
  );
  return {
    [backupFunctionArns.PlanFunctionArn]: asLocalTask('plan', createPlanHandler({ config, logger })),
    [backupFunctionArns.PitrFunctionArn]: asLocalTask('pitr', createPitrHandler({ rds: (region) => createRdsClient({ region }), config, logger, metrics })),
    [backupFunctionArns.DumpFunctionArn]: dump,
    // A dump on the Fargate runner: the same handler with the task's input, in-process instead of in a container.
    // A job on the Fargate runner (the dump, or its vault copy): the same handler with the task's input, in-process instead of in a container.
    [ECS_RUN_TASK]: async (input) => {
      const container = (input as { Overrides?: { ContainerOverrides?: { Name?: string; Environment?: { Name: string; Value: string }[] }[] } }).Overrides?.ContainerOverrides?.[0];
      const taskInput = container?.Environment?.find((e) => e.Name === 'LIFEBOAT_TASK_INPUT')?.Value;
      if (!taskInput) throw new Error('the Fargate task has no LIFEBOAT_TASK_INPUT');
      const job = container?.Name === 'vault-copy' ? vaultCopy : container?.Name === 'dump' ? dump : undefined;
      if (!job) throw new Error(`the Fargate task runs no container named ${String(container?.Name)}`);
      return job(JSON.parse(taskInput));
    },
    [backupFunctionArns.VaultCopyFunctionArn]: vaultCopy,
    [backupFunctionArns.SnapshotFunctionArn]: asLocalTask('snapshot', snapshot),
    [backupFunctionArns.AlertFunctionArn]: asLocalTask('alert', createAlertHandler({ sns: clients.sns, topicArn: options.topicArn, logger })),
  };
}

// ---------------------------------------------------------------------------
// The whole deployment, from one config
// ---------------------------------------------------------------------------

export interface NightlyDatabase {
  id: string;
  /** Its database on the local PostgreSQL cluster. */
  database: string;
  /** Its secret holds a wrong password, so its dumps fail (and alert); its snapshots still work. */
  wrongPassword?: boolean;
}

export interface NightlyEnvironmentOptions {
  /** Deployment name (`config.name`): state machines are `<name>-lifeboat-<workflow>`. */
  name: string;
  /** moto_server, which the proxy fronts. */
  motoEndpoint: string;
  /** The local cluster holding the databases, with its superuser (stored in each database's secret). */
  postgres: { host: string; port: number; user: string; password: string };
  databases: NightlyDatabase[];
  /** The one plan: every database, dumps and snapshots. */
  plan: { id: string; timezone: string; rpoMinutes: number; rtoMinutes: number; retention: { source?: RetentionPolicy; copyRegion?: RetentionPolicy; vault?: RetentionPolicy } };
  vaultRetentionDays: number;
  drills?: Partial<DrillsConfig>;
  /** Powertools log level of the handlers. @default 'SILENT' */
  logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'CRITICAL' | 'SILENT';
}

export interface NightlyEnvironment {
  config: LifeboatConfig;
  proxy: FaultProxy;
  /** Production's clients (this process acts as the production account). */
  clients: ReturnType<typeof createAwsClients> & { keyringKms: KMS };
  storage: { bucket: string; prefix: string; kmsKeyArn: string };
  vault: LocalVault;
  inbox: AlertInbox;
  /** RDS instance (on moto) of each database. */
  instances: Record<string, string>;
  /** The backup and retention state machines with their handlers, for the Step Functions stand-in or the local runner. */
  machines: LocalMachine[];
  /** What `lifeboat prune` builds from the config: for a dry run that shows the planner's decisions. */
  retentionContext(): RetentionContext;
  /** Drill deps whose throwaway clusters (and their registry, `drills/`) live in `workDir`. */
  drillDeps(workDir: string): DrillDeps;
  /** Status read from both accounts: source bucket, vault bucket (as the vault account), drill reports, snapshot quota. */
  statusSources(): StatusSources;
  /** Disables or enables production's envelope key (the proxy makes moto honour it). */
  setProductionKeyEnabled(enabled: boolean): Promise<void>;
  /** The environment of a process that holds only the vault account's credentials. */
  vaultProcessEnv(): Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Creates the deployment on moto (see the module comment). Points this
 * process's AWS SDK at the proxy and makes it act as the production account:
 * `AWS_ENDPOINT_URL`, `AWS_REGION` and the credential variables are set.
 */
export async function createNightlyEnvironment(options: NightlyEnvironmentOptions): Promise<NightlyEnvironment> {
  const { production, vault: vaultAccount } = LOCAL_ACCOUNTS;
  const { source: sourceRegion, vault: vaultRegion } = LOCAL_REGIONS;
  const proxy = await startMotoCompatProxy(options.motoEndpoint);
  try {
    Object.assign(process.env, { AWS_ENDPOINT_URL: proxy.endpoint, AWS_REGION: sourceRegion, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' });
    await actAsAccount(production);
    const clients = { ...createAwsClients(), keyringKms: createKeyringKmsClient() };
    const names = vaultNames({ name: options.name, vault: { account: vaultAccount, region: vaultRegion } });

    const [vault, inbox, envelopeKey, sourceKey, copyKey] = await Promise.all([
      createLocalVault({
        bucket: names.bucketName,
        retentionDays: options.vaultRetentionDays,
        productionAccounts: [production],
        aliases: { snapshotKey: names.snapshotKeyAlias, recoveryKey: names.recoveryKeyAlias },
      }),
      createAlertInbox(clients.sns, { topic: `${options.name}-lifeboat-alerts`, queue: `${options.name}-oncall` }),
      clients.kms.send(new CreateKeyCommand({ Description: 'lifeboat envelope key' })).then((o) => o.KeyMetadata!.Arn!),
      clients.kms.send(new CreateKeyCommand({ Description: 'database storage key' })).then((o) => o.KeyMetadata!.Arn!),
      createKmsClient({ region: vaultRegion })
        .send(new CreateKeyCommand({ Description: 'snapshot copy key', Policy: snapshotCopyKeyPolicy(production, vaultAccount, true) }))
        .then((o) => o.KeyMetadata!.Arn!),
    ]);
    const bucket = `${options.name}-lifeboat-backups-${production}-${sourceRegion}`;
    await clients.s3.send(new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: sourceRegion } }));
    await clients.s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));

    const rds = createRdsClient({ region: sourceRegion });
    const instances: Record<string, string> = {};
    const databases = [];
    for (const db of options.databases) {
      const pg = options.postgres;
      const secret = { username: pg.user, password: db.wrongPassword ? 'not-the-password' : pg.password, host: pg.host, port: pg.port };
      const secretArn = (await clients.secrets.send(new CreateSecretCommand({ Name: `lifeboat/${db.id}`, SecretString: JSON.stringify(secret) }))).ARN!;
      instances[db.id] = `${db.id}-db`;
      await rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: instances[db.id],
          Engine: 'postgres',
          DBInstanceClass: 'db.t4g.micro',
          AllocatedStorage: 20,
          MasterUsername: 'lifeboat',
          MasterUserPassword: 'not-a-real-secret-1',
          StorageEncrypted: true,
          KmsKeyId: sourceKey,
        }),
      );
      databases.push({
        id: db.id,
        connection: { database: db.database, secretArn, sslMode: 'disable', connectTimeoutSeconds: 5 },
        rds: { instanceIdentifier: instances[db.id] },
      });
    }
    // A new instance is 'creating', then 'backing-up', as on AWS: the deployment's databases exist before its first night.
    await waitUntilAvailable(rds, { instances: Object.values(instances) });

    const config = parseConfig({
      name: options.name,
      source: { account: production, region: sourceRegion },
      databases,
      plans: [
        {
          id: options.plan.id,
          // Three runs a day: the demo takes three backups in a row, which the vault's crowded-day guard must accept.
          schedule: { cron: 'cron(0 3,11,19 * * ? *)', timezone: options.plan.timezone },
          databases: options.databases.map((d) => d.id),
          rpoMinutes: options.plan.rpoMinutes,
          rtoMinutes: options.plan.rtoMinutes,
          dump: true,
          snapshot: true,
          maxConcurrency: 2,
          retention: options.plan.retention,
        },
      ],
      storage: { bucketName: bucket, kmsKeyArn: envelopeKey, prefix: 'backups/' },
      vault: { account: vaultAccount, region: vaultRegion, retentionDays: vault.retentionDays, recoveryKmsKeyArn: vault.recoveryKeyArn },
      snapshots: { copy: { region: vaultRegion, kmsKeyArn: copyKey } },
      ...(options.drills ? { drills: options.drills } : {}),
    });
    const storage = { bucket, prefix: config.storage.prefix, kmsKeyArn: envelopeKey };

    // Each function's environment, as the CDK app builds it from the config.
    const logger = new Logger({ serviceName: `${options.name}-lifeboat`, logLevel: options.logLevel ?? 'SILENT' });
    const metrics = new Metrics({ namespace: `${options.name}-lifeboat`, serviceName: `${options.name}-lifeboat` });
    const snapshotEnv = snapshotEnvironmentFrom(snapshotEnvSchema.parse({ ...snapshotFunctionEnvironment(config), AWS_REGION: sourceRegion }));
    const vaultDump = vaultDumpTargetFrom(vaultCopyEnvSchema.parse(vaultCopyFunctionEnvironment(config)));
    const retentionSettings = retentionSettingsFromEnv(
      retentionEnvSchema.parse({ ...retentionFunctionEnvironment(config), BACKUP_BUCKET: bucket, BACKUP_PREFIX: storage.prefix, AWS_REGION: sourceRegion }),
      config,
    );
    const retentionContext = (): RetentionContext => ({
      settings: retentionSettings,
      s3: createS3Client({ region: sourceRegion }),
      s3With: (region, credentials) => createS3Client({ region, credentials }),
      rds: (region, credentials) => createRdsClient({ region, credentials }),
      sts: createStsClient({ region: sourceRegion }),
    });
    const alertTask = asLocalTask('alert', createAlertHandler({ sns: clients.sns, topicArn: inbox.topicArn, logger }));
    const backupResources = backupTaskResources({
      config,
      clients,
      dumpTarget: { ...storage, recoveryKmsKeyArns: config.vault?.recoveryKmsKeyArn ? [config.vault.recoveryKmsKeyArn] : [] },
      vaultDump,
      snapshot: snapshotEnv,
      topicArn: inbox.topicArn,
      logger,
      metrics,
    });
    const backupDatabaseName = `${options.name}-lifeboat-backup-database`;
    const retentionTargetName = `${options.name}-lifeboat-retention-target`;
    const retentionResources = {
      [retentionFunctionArns.RetentionFunctionArn]: asLocalTask('retention', createRetentionHandler({ context: retentionContext(), logger, metrics })),
      [retentionFunctionArns.AlertFunctionArn]: alertTask,
    };
    const machines: LocalMachine[] = [
      {
        name: `${options.name}-lifeboat-backup`,
        definition: loadDefinition('backup', backupSubstitutions(localStepFunctionsArn(backupDatabaseName, sourceRegion, LOCAL_ACCOUNTS.production))),
        resources: backupResources,
        timeScale: LOCAL_TIME_SCALE,
      },
      {
        name: backupDatabaseName,
        definition: loadDefinition('backup-database', backupDatabaseSubstitutions),
        resources: backupResources,
        timeScale: LOCAL_TIME_SCALE,
      },
      {
        name: `${options.name}-lifeboat-retention`,
        definition: loadDefinition('retention', {
          RetentionTargetStateMachineArn: localStepFunctionsArn(retentionTargetName, sourceRegion, LOCAL_ACCOUNTS.production),
          AlertFunctionArn: retentionFunctionArns.AlertFunctionArn,
        }),
        resources: retentionResources,
        timeScale: LOCAL_TIME_SCALE,
      },
      {
        name: retentionTargetName,
        definition: loadDefinition('retention-target', retentionFunctionArns),
        resources: retentionResources,
        timeScale: LOCAL_TIME_SCALE,
      },
    ];
    const vaultS3 = createS3Client({ region: vaultRegion, credentials: vault.credentials });

    return {
      config,
      proxy,
      clients,
      storage,
      vault,
      inbox,
      instances,
      machines,
      retentionContext,
      drillDeps: (workDir) => {
        const deps = localDrillDeps({ clients, storage: { bucket, prefix: storage.prefix }, vault: { s3: vaultS3, bucket: vault.bucket, prefix: storage.prefix } });
        const registryDir = join(workDir, 'drills');
        return { ...deps, provisioners: { ...deps.provisioners, local: new LocalPostgresProvisioner({ registryDir, start: () => startLocalPostgres({ parentDir: workDir }) }) } };
      },
      statusSources: () => ({
        backups: (id) => backupsFromBucket(clients.s3, bucket, storage.prefix, id),
        vaultBackups: (id) => backupsFromBucket(vaultS3, vault.bucket, storage.prefix, id),
        drills: (id) => drillsFromBucket(clients.s3, bucket, storage.prefix, id),
        snapshotQuota: async () => {
          const out = await rds.send(new DescribeAccountAttributesCommand({}));
          const quota = out.AccountQuotas?.find((q) => q.AccountQuotaName === 'ManualSnapshots');
          return quota?.Used !== undefined && quota.Max !== undefined ? { used: quota.Used, limit: quota.Max } : undefined;
        },
      }),
      setProductionKeyEnabled: async (enabled) => {
        // moto takes the bare key id here, not the ARN.
        const KeyId = envelopeKey.split('/').pop();
        await clients.kms.send(enabled ? new EnableKeyCommand({ KeyId }) : new DisableKeyCommand({ KeyId }));
      },
      vaultProcessEnv: () => ({
        AWS_ENDPOINT_URL: proxy.endpoint,
        AWS_REGION: vault.region,
        AWS_ACCESS_KEY_ID: vault.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: vault.credentials.secretAccessKey,
        ...(vault.credentials.sessionToken ? { AWS_SESSION_TOKEN: vault.credentials.sessionToken } : {}),
      }),
      stop: () => proxy.stop(),
    };
  } catch (error) {
    await proxy.stop();
    throw error;
  }
}
