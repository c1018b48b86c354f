import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { createRdsClient, createS3Client, createStsClient } from '../lib/aws/clients.ts';
import { deploymentConfigEnvSchema, deploymentConfigLoader } from '../lib/config/deployment.ts';
import { parseWith } from '../lib/config/load.ts';
import { RETENTION_LOCATIONS, retentionEnvSchema, retentionSettingsFromEnv } from '../lib/retention/environment.ts';
import { runRetention, summariseRetention, type RetentionContext, type RetentionTaskOutput } from '../lib/retention/run.ts';
import { readEnv } from '../shared/env.ts';
import { logger as sharedLogger, metrics as sharedMetrics, tracer } from '../shared/powertools.ts';

/** What the retention state machine passes for one database at one location. Policies come from the environment, never from here. */
export const retentionTaskInputSchema = z
  .object({
    planId: z.string().min(1),
    databaseId: z.string().min(1),
    location: z.enum(RETENTION_LOCATIONS),
    executionId: z.string().optional(),
  })
  .strict();
export type RetentionTaskInput = z.input<typeof retentionTaskInputSchema>;

export interface RetentionHandlerDeps {
  context: RetentionContext;
  logger?: Logger;
  metrics?: Metrics;
}

/**
 * The deployed function's context, built once per cold start: the locations
 * from the environment, the plans from the deployed config object (read and
 * hash-checked on first use; a failed read is tried again next time).
 */
let coldStartContext: (() => Promise<RetentionContext>) | undefined;
function contextFromEnvironment(): () => Promise<RetentionContext> {
  coldStartContext ??= (() => {
    const env = readEnv(retentionEnvSchema);
    const s3 = createS3Client({ region: env.AWS_REGION });
    const config = deploymentConfigLoader(s3, readEnv(deploymentConfigEnvSchema));
    const rdsClients = new Map<string, ReturnType<typeof createRdsClient>>();
    const base: Omit<RetentionContext, 'settings'> = {
      s3,
      // Vault clients are built per run from fresh, short-lived credentials.
      s3With: (region, credentials) => createS3Client({ region, credentials }),
      rds: (region, credentials) => {
        if (credentials) return createRdsClient({ region, credentials });
        let client = rdsClients.get(region);
        if (!client) rdsClients.set(region, (client = createRdsClient({ region })));
        return client;
      },
      sts: createStsClient({ region: env.AWS_REGION }),
    };
    let context: RetentionContext | undefined;
    return async () => (context ??= { ...base, settings: retentionSettingsFromEnv(env, (await config()).config) });
  })();
  return coldStartContext;
}

/**
 * Prunes one database at one location for real (the state machine never dry
 * runs; `lifeboat prune` does by default) and returns a small summary. Single
 * deletions that fail are in the summary (`status: partial`, with an `alert`);
 * a part that cannot run at all throws its error with its class name
 * (RetentionListingError, RetentionAuditError, VaultAccessError, ...).
 */
export function createRetentionHandler(injected?: RetentionHandlerDeps) {
  const logger = injected?.logger ?? sharedLogger;
  const metrics = injected?.metrics ?? sharedMetrics;
  return middy()
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger))
    .handler(async (event: unknown): Promise<RetentionTaskOutput> => {
      const context = injected?.context ?? (await contextFromEnvironment()());
      const input = parseWith(retentionTaskInputSchema, event, 'retention task input');
      const log = logger.createChild({ persistentKeys: { databaseId: input.databaseId, planId: input.planId, location: input.location } });
      const record = (name: string, value: number) => {
        const single = metrics.singleMetric();
        single.addDimension('database', input.databaseId);
        single.addDimension('location', input.location);
        single.addMetric(name, MetricUnit.Count, value);
      };
      try {
        const result = await runRetention({ ...input, dryRun: false }, context);
        const output = summariseRetention(result);
        record('RetentionDeleted', output.deleted);
        record('RetentionDeleteFailed', output.failedCount);
        const facts = { runId: output.runId, executionId: input.executionId, kept: output.kept, deleted: output.deleted, failed: output.failedCount, auditKeys: output.auditKeys };
        if (output.status === 'partial') log.warn('Retention finished with failed deletions', { ...facts, failures: output.failed });
        else log.info('Retention finished', facts);
        return output;
      } catch (error) {
        record('RetentionFailed', 1);
        log.error('Retention failed', { error: { name: (error as Error).name, message: (error as Error).message } });
        throw error;
      }
    });
}

export const handler = createRetentionHandler();

/** For the bundle tests: the error classes this bundle throws, under the names Step Functions matches. */
export { errorClasses } from '../shared/error-classes.ts';
