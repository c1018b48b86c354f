import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { createRdsClient, createS3Client, createStsClient } from '../lib/aws/clients.ts';
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
  logger: Logger;
  metrics: Metrics;
}

let coldStartDeps: RetentionHandlerDeps | undefined;
function depsFromEnvironment(): RetentionHandlerDeps {
  coldStartDeps ??= (() => {
    const settings = retentionSettingsFromEnv(readEnv(retentionEnvSchema));
    const rdsClients = new Map<string, ReturnType<typeof createRdsClient>>();
    return {
      context: {
        settings,
        s3: createS3Client({ region: settings.sourceRegion }),
        // Vault clients are built per run from fresh, short-lived credentials.
        s3With: (region, credentials) => createS3Client({ region, credentials }),
        rds: (region, credentials) => {
          if (credentials) return createRdsClient({ region, credentials });
          let client = rdsClients.get(region);
          if (!client) rdsClients.set(region, (client = createRdsClient({ region })));
          return client;
        },
        sts: createStsClient({ region: settings.sourceRegion }),
      },
      logger: sharedLogger,
      metrics: sharedMetrics,
    };
  })();
  return coldStartDeps;
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
      const { context } = injected ?? depsFromEnvironment();
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
