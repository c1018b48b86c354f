import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { createKmsClient, createRdsClient, createS3Client, createStsClient } from '../lib/aws/clients.ts';
import { deploymentConfigEnvSchema, deploymentConfigLoader, type DeploymentConfig } from '../lib/config/deployment.ts';
import { parseWith } from '../lib/config/load.ts';
import { METRIC_NAMES } from '../lib/metrics/names.ts';
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
 * machine (a Wait as long as the last `status` asked for, then a Choice).
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

/** Names only: the database's RDS identity comes from the deployed config. */
const jobShape = {
  planId: z.string().min(1),
  databaseId: z.string().min(1),
  executionId: z.string().optional(),
  executionStartTime: z.string().optional(),
};

const pollSchema = z.object({ ready: z.boolean(), ref: refSchema, waitSeconds: z.number().nonnegative() });
const copyResultSchema = z.union([
  z.object({ started: z.literal(true), poll: pollSchema }),
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
  /** The deployed config, where each database's RDS identity is looked up. */
  config: () => Promise<DeploymentConfig>;
  logger: Logger;
  metrics: Metrics;
}

let coldStartDeps: SnapshotHandlerDeps | undefined;
function depsFromEnvironment(): SnapshotHandlerDeps {
  coldStartDeps ??= (() => {
    const env = snapshotEnvironmentFrom(readEnv(snapshotEnvSchema));
    const configS3 = createS3Client();
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
      config: deploymentConfigLoader(configS3, readEnv(deploymentConfigEnvSchema)),
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
      const deps = injected ?? depsFromEnvironment();
      const { context } = deps;
      const input = parseWith(snapshotTaskInputSchema, event, 'snapshot task input');
      const database = (await deps.config()).database(input.databaseId);
      const job: SnapshotJob = { ...input, database: { id: database.id, rds: database.rds } };
      const log = logger.createChild({ persistentKeys: { databaseId: input.databaseId, planId: input.planId, action: input.action } });
      const count = (name: string) => {
        const single = metrics.singleMetric();
        single.addDimension('database', input.databaseId);
        single.addMetric(name, MetricUnit.Count, 1);
      };
      try {
        switch (input.action) {
          case 'create': {
            const result = await createSourceSnapshot(job, context);
            count('SnapshotRequested');
            log.info('Snapshot requested', { backupId: result.backupId, snapshot: result.poll.ref.id, quota: { used: result.quota.used, max: result.quota.max, source: result.quota.source } });
            if (result.quota.warn) log.warn('Manual snapshot quota nearly used', { quota: result.quota });
            return result;
          }
          case 'status': {
            const poll = await checkSnapshot(job, input.ref, context, input.backupId);
            const where = { location: poll.ref.location, snapshot: poll.ref.id, region: poll.ref.region, status: poll.ref.status };
            if (!poll.ready) {
              log.info('Snapshot not available yet', { ...where, nextCheckSeconds: poll.waitSeconds });
              return poll;
            }
            log.info('Snapshot available', where);
            if (poll.ref.location === 'vault') count('VaultSnapshotCopied');
            // The snapshot staleness alarm watches this (infra/constructs/database-alarms.ts).
            if (poll.ref.location === 'source') count(METRIC_NAMES.snapshotSucceeded);
            return poll;
          }
          case 'copy': {
            const result = await copyToCopyRegion(job, input.source, context, input.backupId);
            if (!result.started) {
              log.info('No snapshot copy configured', { reason: result.reason });
              return result;
            }
            log.info('Snapshot copy requested', { snapshot: result.poll.ref.id, region: result.poll.ref.region, quota: { used: result.quota.used, max: result.quota.max, source: result.quota.source } });
            if (result.quota.warn) log.warn('Manual snapshot quota nearly used', { quota: result.quota });
            return result;
          }
          case 'share': {
            const result = await shareWithVault(job, input.source, input.copy, context);
            log.info(result.shared ? 'Snapshot shared with the vault account' : 'Snapshot not shared', result.shared ? { snapshot: result.ref.arn } : { reason: result.reason });
            return result;
          }
          case 'vault-copy': {
            const result = await copyIntoVault(job, input.shared, input.source, context, input.backupId);
            const { poll, quota } = result;
            log.info('Vault copy requested', { snapshot: poll.ref.id, account: poll.ref.account, region: poll.ref.region, quota: { used: quota.used, max: quota.max, source: quota.source } });
            if (quota.warn) log.warn('Manual snapshot quota nearly used', { quota });
            return result;
          }
        }
      } catch (error) {
        count('SnapshotStepFailed');
        log.error('Snapshot step failed', { error: { name: (error as Error).name, message: (error as Error).message } });
        throw error;
      }
    });
}

export const handler = createSnapshotHandler();

/** For the bundle tests: the error classes this bundle throws, under the names Step Functions matches. */
export { errorClasses } from '../shared/error-classes.ts';
