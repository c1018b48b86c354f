import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { createS3Client, createStsClient, type AwsCredentials, type AwsCredentialsProvider } from '../lib/aws/clients.ts';
import { parseWith } from '../lib/config/load.ts';
import { renewingVaultCredentials, type StsApi } from '../lib/vault/credentials.ts';
import { copyDumpToVault, type VaultDumpCopyResult } from '../lib/vault/dump-copy.ts';
import { vaultCopyEnvSchema, vaultDumpTargetFrom, type VaultDumpTarget } from '../lib/vault/environment.ts';
import { readEnv } from '../shared/env.ts';
import { logger as sharedLogger, metrics as sharedMetrics, tracer } from '../shared/powertools.ts';

/** What the backup state machine passes after a committed dump (never a secret). */
export const vaultCopyTaskInputSchema = z.object({
  planId: z.string().min(1),
  databaseId: z.string().min(1),
  bucket: z.string().min(3),
  manifestKey: z.string().min(1),
  executionId: z.string().optional(),
});
export type VaultCopyTaskInput = z.input<typeof vaultCopyTaskInputSchema>;

export type VaultCopyTaskOutput = VaultDumpCopyResult | { status: 'skipped'; reason: string };

export interface VaultCopyHandlerDeps {
  sourceS3: S3Client;
  sts: StsApi;
  /** S3 client in the vault region with the copier role's credentials. */
  vaultS3: (region: string, credentials: AwsCredentials | AwsCredentialsProvider) => S3Client;
  vault?: VaultDumpTarget;
  logger: Logger;
  metrics: Metrics;
}

let coldStartDeps: VaultCopyHandlerDeps | undefined;
function depsFromEnvironment(): VaultCopyHandlerDeps {
  coldStartDeps ??= {
    sourceS3: createS3Client(),
    sts: createStsClient(),
    vaultS3: (region, credentials) => createS3Client({ region, credentials }),
    vault: vaultDumpTargetFrom(readEnv(vaultCopyEnvSchema)),
    logger: sharedLogger,
    metrics: sharedMetrics,
  };
  return coldStartDeps;
}

/**
 * Copies a committed dump into the vault as the vault's copier role and
 * verifies it (see lib/vault/dump-copy.ts). Failures keep their class name
 * (VaultCopyVerificationError, ChecksumMismatchError, VaultAccessError, ...)
 * for the state machine's Retry and Catch.
 */
export function createVaultCopyHandler(injected?: VaultCopyHandlerDeps) {
  const logger = injected?.logger ?? sharedLogger;
  const metrics = injected?.metrics ?? sharedMetrics;
  return middy()
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger))
    .handler(async (event: unknown): Promise<VaultCopyTaskOutput> => {
      const deps = injected ?? depsFromEnvironment();
      const input = parseWith(vaultCopyTaskInputSchema, event, 'vault copy task input');
      const log = logger.createChild({ persistentKeys: { databaseId: input.databaseId, planId: input.planId } });
      if (!deps.vault) {
        log.info('No vault configured; dump not copied off-site');
        return { status: 'skipped', reason: 'no vault is configured' };
      }
      const record = (name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number) => {
        const single = metrics.singleMetric();
        single.addDimension('database', input.databaseId);
        single.addMetric(name, unit, value);
      };
      const started = Date.now();
      try {
        // The credentials stay in this scope: never logged, returned or put in an error. They renew
        // themselves before each session expires: a copy on Fargate may run for hours.
        const credentials = await renewingVaultCredentials(deps.sts, { roleArn: deps.vault.copierRoleArn, account: deps.vault.account }, `${input.databaseId}-vault-copy`);
        const result = await copyDumpToVault(
          { sourceBucket: input.bucket, manifestKey: input.manifestKey, databaseId: input.databaseId, executionId: input.executionId },
          { sourceS3: deps.sourceS3, vaultS3: deps.vaultS3(deps.vault.region, credentials), vaultBucket: deps.vault.bucket },
        );
        record('VaultCopySucceeded', MetricUnit.Count, 1);
        record('VaultCopySeconds', MetricUnit.Seconds, (Date.now() - started) / 1000);
        log.info('Dump copied to the vault and verified', { status: result.status, vaultBucket: result.vaultBucket, manifestKey: result.manifestKey, sha256: result.sha256, storedBytes: result.storedBytes });
        return result;
      } catch (error) {
        record('VaultCopyFailed', MetricUnit.Count, 1);
        log.error('Vault copy failed', { error: { name: (error as Error).name, message: (error as Error).message } });
        throw error;
      }
    });
}

export const handler = createVaultCopyHandler();

/** For the bundle tests: the error classes this bundle throws, under the names Step Functions matches. */
export { errorClasses } from '../shared/error-classes.ts';
