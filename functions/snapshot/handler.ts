import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { createKmsClient, createRdsClient, createStsClient } from '../lib/aws/clients.ts';
import { parseWith } from '../lib/config/load.ts';
import { databaseSchema } from '../lib/config/schema.ts';
import { snapshotEnvironmentFrom, snapshotEnvSchema } from '../lib/snapshots/environment.ts';
import {
  checkSnapshot,
  copyIntoVault,
  copyToCopyRegion,
  createSourceSnapshot,
  shareWithVault,
  type SnapshotContext,
  type SnapshotJob,
} from '../lib/snapshots/workflow.ts';
import { readEnv } from '../shared/env.ts';
import { logger as sharedLogger, metrics as sharedMetrics, tracer } from '../shared/powertools.ts';

/**
 * One Lambda for every snapshot step; the state machine names the step in
 * `action`. Each step is short (a few RDS calls): waiting happens in the state
 * machine, which retries `status` on SnapshotNotReadyError.
 */
const refSchema = z.object({
  location: z.enum(['source', 'copy', 'vault']),
  kind: z.enum(['instance', 'cluster']),
  account: z.string().optional(),
  region: z.string().min(1),
  id: z.string().min(1),
  arn: z.string(),
  status: z.string(),
  encrypted: z.boolean(),
  kmsKeyId: z.string().optional(),
  startedAt: z.iso.datetime(),
  deadline: z.iso.datetime(),
});

const jobShape = {
  planId: z.string().min(1),
  /** Only id and rds are used; the rest of the database config may ride along. */
  database: z.object({ id: z.string().min(1), rds: databaseSchema.shape.rds }).loose(),
  executionId: z.string().optional(),
  executionStartTime: z.string().optional(),
};

const copyResultSchema = z.union([
  z.object({ started: z.literal(true), ref: refSchema }),
  z.object({ started: z.literal(false), reason: z.string() }),
]);

export const snapshotTaskInputSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('create'), ...jobShape }),
  z.object({ action: z.literal('status'), ...jobShape, backupId: z.string().min(1), ref: refSchema }),
  z.object({ action: z.literal('copy'), ...jobShape, backupId: z.string().min(1), source: refSchema }),
  z.object({ action: z.literal('share'), ...jobShape, source: refSchema, copy: copyResultSchema }),
  z.object({ action: z.literal('vault-copy'), ...jobShape, backupId: z.string().min(1), source: refSchema, shared: refSchema }),
]);
export type SnapshotTaskInput = z.input<typeof snapshotTaskInputSchema>;

export interface SnapshotHandlerDeps {
  context: SnapshotContext;
  logger: Logger;
  metrics: Metrics;
}

let coldStartDeps: SnapshotHandlerDeps | undefined;
function depsFromEnvironment(): SnapshotHandlerDeps {
  coldStartDeps ??= (() => {
    const env = snapshotEnvironmentFrom(readEnv(snapshotEnvSchema));
    const rdsClients = new Map<string, ReturnType<typeof createRdsClient>>();
    const kmsClients = new Map<string, ReturnType<typeof createKmsClient>>();
    return {
      context: {
        ...env,
        // Clients with the function's own credentials are cached per region;
        // vault clients are built per call from fresh, short-lived credentials.
        rds: (region, credentials) => {
          if (credentials) return createRdsClient({ region, credentials });
          let client = rdsClients.get(region);
          if (!client) rdsClients.set(region, (client = createRdsClient({ region })));
          return client;
        },
        kms: (region) => {
          let client = kmsClients.get(region);
          if (!client) kmsClients.set(region, (client = createKmsClient({ region })));
          return client;
        },
        sts: createStsClient({ region: env.sourceRegion }),
      },
      logger: sharedLogger,
      metrics: sharedMetrics,
    };
  })();
  return coldStartDeps;
}

export function createSnapshotHandler(injected?: SnapshotHandlerDeps) {
  const logger = injected?.logger ?? sharedLogger;
  const metrics = injected?.metrics ?? sharedMetrics;
  return middy()
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger))
    .handler(async (event: unknown): Promise<unknown> => {
      const { context } = injected ?? depsFromEnvironment();
      const input = parseWith(snapshotTaskInputSchema, event, 'snapshot task input');
      const job: SnapshotJob = input;
      const log = logger.createChild({ persistentKeys: { databaseId: input.database.id, planId: input.planId, action: input.action } });
      const count = (name: string) => {
        const single = metrics.singleMetric();
        single.addDimension('database', input.database.id);
        single.addMetric(name, MetricUnit.Count, 1);
      };
      try {
        switch (input.action) {
          case 'create': {
            const result = await createSourceSnapshot(job, context);
            count('SnapshotRequested');
            log.info('Snapshot requested', { backupId: result.backupId, snapshot: result.ref.id, quota: { used: result.quota.used, max: result.quota.max, source: result.quota.source } });
            if (result.quota.warn) log.warn('Manual snapshot quota nearly used', { quota: result.quota });
            return result;
          }
          case 'status': {
            const ref = await checkSnapshot(job, input.ref, context, input.backupId);
            log.info('Snapshot available', { location: ref.location, snapshot: ref.id, region: ref.region });
            if (ref.location === 'vault') count('VaultSnapshotCopied');
            return ref;
          }
          case 'copy': {
            const result = await copyToCopyRegion(job, input.source, context, input.backupId);
            log.info(result.started ? 'Snapshot copy requested' : 'No snapshot copy configured', result.started ? { snapshot: result.ref.id, region: result.ref.region } : { reason: result.reason });
            return result;
          }
          case 'share': {
            const result = await shareWithVault(job, input.source, input.copy, context);
            log.info(result.shared ? 'Snapshot shared with the vault account' : 'Snapshot not shared', result.shared ? { snapshot: result.ref.arn } : { reason: result.reason });
            return result;
          }
          case 'vault-copy': {
            const ref = await copyIntoVault(job, input.shared, input.source, context, input.backupId);
            log.info('Vault copy requested', { snapshot: ref.id, account: ref.account, region: ref.region });
            return { ref };
          }
        }
      } catch (error) {
        // Not-ready is the normal polling signal, not a failure.
        if ((error as Error).name !== 'SnapshotNotReadyError') {
          count('SnapshotStepFailed');
          log.error('Snapshot step failed', { error: { name: (error as Error).name, message: (error as Error).message } });
        } else {
          log.info('Snapshot not ready yet', { detail: (error as Error).message });
        }
        throw error;
      }
    });
}

export const handler = createSnapshotHandler();

/** For the bundle tests: the error classes this bundle throws, under the names Step Functions matches. */
export { errorClasses } from '../shared/error-classes.ts';
