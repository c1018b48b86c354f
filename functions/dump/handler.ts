import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { createAwsClients, createRdsClient, type AwsClients } from '../lib/aws/clients.ts';
import type { RDSClient } from '@aws-sdk/client-rds';
import { randomBytes } from 'node:crypto';
import { newBackupId } from '../lib/backup/manifest.ts';
import { rdsSignerTokens, type IamAuthTokenSigner } from '../lib/pg/iam-auth.ts';
import { runDumpBackup, type DumpBackupResult, type DumpTarget } from '../lib/backup/dump-pipeline.ts';
import { createKeyringKmsClient } from '../lib/backup/encryption.ts';
import { deploymentConfigEnvSchema, deploymentConfigLoader, type DeploymentConfig } from '../lib/config/deployment.ts';
import { parseWith } from '../lib/config/load.ts';
import { SecretRegistry } from '../lib/redact.ts';
import { readEnv } from '../shared/env.ts';
import { logger as sharedLogger, metrics as sharedMetrics, tracer } from '../shared/powertools.ts';

/**
 * What the backup state machine passes for one database: names only. Host,
 * port, TLS mode, secret and dump settings come from the deployed config, so
 * nobody who can start an execution can point the runner (and its
 * credentials) elsewhere.
 */
export const dumpTaskInputSchema = z
  .object({
    planId: z.string().min(1),
    databaseId: z.string().min(1),
    executionId: z.string().optional(),
  })
  .strict();
export type DumpTaskInput = z.input<typeof dumpTaskInputSchema>;

/** The backup result without the manifest (which stays in S3), plus its consistent point. */
export type DumpTaskOutput = Omit<DumpBackupResult, 'manifest'> & { consistentAt: string };

const envSchema = z.object({
  BACKUP_BUCKET: z.string().min(3),
  BACKUP_PREFIX: z.string().default('backups/'),
  BACKUP_KMS_KEY_ARN: z.string().startsWith('arn:'),
  /** Comma-separated recovery keys (the vault's), which may only encrypt. */
  BACKUP_RECOVERY_KMS_KEY_ARNS: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.string().startsWith('arn:'))),
});

export interface DumpHandlerDeps {
  clients: Pick<AwsClients, 's3' | 'secrets'> & {
    keyringKms: ReturnType<typeof createKeyringKmsClient>;
    /** For databases without a configured host (RDS-managed secrets). */
    rds?: Pick<RDSClient, 'send'>;
    /** For connections with `iamAuth`. */
    iamAuthToken?: IamAuthTokenSigner;
  };
  target: DumpTarget;
  /** The deployed config, where the database's connection and dump settings are looked up. */
  config: () => Promise<DeploymentConfig>;
  logger: Logger;
  metrics: Metrics;
  pgDumpPath?: string;
}

let coldStartDeps: DumpHandlerDeps | undefined;
function depsFromEnvironment(): DumpHandlerDeps {
  coldStartDeps ??= (() => {
    const env = readEnv(envSchema);
    const aws = createAwsClients();
    return {
      clients: { ...aws, keyringKms: createKeyringKmsClient(), rds: createRdsClient(), iamAuthToken: rdsSignerTokens() },
      config: deploymentConfigLoader(aws.s3, readEnv(deploymentConfigEnvSchema)),
      target: { bucket: env.BACKUP_BUCKET, prefix: env.BACKUP_PREFIX, kmsKeyArn: env.BACKUP_KMS_KEY_ARN, recoveryKmsKeyArns: env.BACKUP_RECOVERY_KMS_KEY_ARNS },
      logger: sharedLogger,
      metrics: sharedMetrics,
    };
  })();
  return coldStartDeps;
}

/**
 * Dumps one database into the backup bucket. Errors keep their class name
 * (DatabaseConnectionError, DumpFailedError, ...), which Step Functions sees
 * as the error type for Retry and Catch.
 */
export function createDumpHandler(injected?: DumpHandlerDeps) {
  const deps = () => injected ?? depsFromEnvironment();
  const logger = injected?.logger ?? sharedLogger;
  const metrics = injected?.metrics ?? sharedMetrics;
  return middy()
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger))
    .handler(async (event: unknown): Promise<DumpTaskOutput> => {
    const { clients, target, pgDumpPath, config } = deps();
    const input = parseWith(dumpTaskInputSchema, event, 'dump task input');
    const databaseId = input.databaseId;
    const database = (await config()).database(databaseId);
    // Per-invocation child logger and single metrics: local runs execute
    // several databases concurrently in one process.
    // The id is fixed here so every log line of this backup carries it.
    const backupId = newBackupId(new Date(), randomBytes(3).toString('hex'));
    const log = logger.createChild({ persistentKeys: { databaseId, planId: input.planId, backupId } });
    const record = (name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number) => {
      const single = metrics.singleMetric();
      single.addDimension('database', databaseId);
      single.addMetric(name, unit, value);
    };
    const registry = new SecretRegistry();
    const started = Date.now();
    try {
      const result = await runDumpBackup(
        { databaseId, backupId, planId: input.planId, connection: database.connection, settings: database.dump, target, rds: database.rds },
        { s3: clients.s3, kms: clients.keyringKms, secrets: clients.secrets, secretRegistry: registry, pgDumpPath, rds: clients.rds, iamAuthToken: clients.iamAuthToken },
      );
      record('BackupSucceeded', MetricUnit.Count, 1);
      record('BackupStoredBytes', MetricUnit.Bytes, result.storedBytes);
      record('BackupDurationSeconds', MetricUnit.Seconds, (Date.now() - started) / 1000);
      log.info('Backup committed', { manifestKey: result.manifestKey, storedBytes: result.storedBytes, rawBytes: result.rawBytes, sha256: result.sha256 });
      const { manifest, ...output } = result;
      return { ...output, consistentAt: manifest.consistentAt };
    } catch (error) {
      record('BackupFailed', MetricUnit.Count, 1);
      log.error('Backup failed', { error: { name: (error as Error).name, message: registry.redact((error as Error).message) } });
      throw error;
    }
  });
}

export const handler = createDumpHandler();

/** For the bundle tests: the error classes this bundle throws, under the names Step Functions matches. */
export { errorClasses } from '../shared/error-classes.ts';
