import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { RDSClient } from '@aws-sdk/client-rds';
import { z } from 'zod';
import { createRdsClient, createS3Client } from '../lib/aws/clients.ts';
import { deploymentConfigEnvSchema, deploymentConfigLoader, type DeploymentConfig } from '../lib/config/deployment.ts';
import { parseWith } from '../lib/config/load.ts';
import { DIMENSIONS, METRIC_NAMES } from '../lib/metrics/names.ts';
import { checkPosture, pitrTargets, summarisePosture, type DatabasePosture, type PitrTarget, type PostureSummary } from '../lib/pitr/posture.ts';
import { readEnv } from '../shared/env.ts';
import { logger as sharedLogger, metrics as sharedMetrics, tracer } from '../shared/powertools.ts';

/**
 * The PITR posture check (functions/lib/pitr/posture.ts):
 *
 * - `check` (the backup workflow, plans with `pitr`): the whole posture of the
 *   plan's databases, replication started where `pitr.manage` says so; returns
 *   a short summary whose `alert` the workflow sends as one `pitr-posture` alert.
 * - `watch` (an EventBridge Scheduler schedule every 5 minutes): the window and
 *   lag only, of every pitr database of the deployment, changing nothing and
 *   alerting nothing; the per-database `pitr-lag` alarms watch its metric.
 *
 * Both publish PitrRestorableLagSeconds (and PitrWindowSeconds) per database.
 * The input only names a plan; what it covers comes from the deployed config.
 */
export const pitrTaskInputSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('check'), planId: z.string().min(1) }).strict(),
  z.object({ action: z.literal('watch') }).strict(),
]);
export type PitrTaskInput = z.input<typeof pitrTaskInputSchema>;

export interface PitrHandlerDeps {
  rds: (region: string) => RDSClient;
  config: () => Promise<DeploymentConfig>;
  logger: Logger;
  metrics: Pick<Metrics, 'singleMetric'>;
  now?: () => Date;
}

let coldStartDeps: PitrHandlerDeps | undefined;
function depsFromEnvironment(): PitrHandlerDeps {
  coldStartDeps ??= (() => {
    const clients = new Map<string, RDSClient>();
    return {
      rds: (region: string) => {
        let client = clients.get(region);
        if (!client) clients.set(region, (client = createRdsClient({ region })));
        return client;
      },
      config: deploymentConfigLoader(createS3Client(), readEnv(deploymentConfigEnvSchema)),
      logger: sharedLogger,
      metrics: sharedMetrics,
    };
  })();
  return coldStartDeps;
}

/** PitrRestorableLagSeconds and PitrWindowSeconds of one database, with the dimensions the alarms name. */
function publish(metrics: PitrHandlerDeps['metrics'], posture: DatabasePosture): void {
  if (posture.lagSeconds !== undefined) {
    const single = metrics.singleMetric();
    single.addDimension(DIMENSIONS.database, posture.databaseId);
    single.addMetric(METRIC_NAMES.pitrRestorableLagSeconds, MetricUnit.Seconds, posture.lagSeconds);
  }
  if (posture.earliest && posture.latest && !posture.earliestEstimated) {
    const single = metrics.singleMetric();
    single.addDimension(DIMENSIONS.database, posture.databaseId);
    single.addMetric(METRIC_NAMES.pitrWindowSeconds, MetricUnit.Seconds, Math.max(0, Math.round((Date.parse(posture.latest) - Date.parse(posture.earliest)) / 1000)));
  }
}

/** One target per database: a database in several pitr plans is read once, against its tightest lag target. */
function oncePerDatabase(targets: readonly PitrTarget[]): PitrTarget[] {
  const byId = new Map<string, PitrTarget>();
  for (const t of targets) {
    const seen = byId.get(t.databaseId);
    if (!seen || t.pitr.maxLagMinutes < seen.pitr.maxLagMinutes) byId.set(t.databaseId, t);
  }
  return [...byId.values()];
}

export function createPitrHandler(injected?: PitrHandlerDeps) {
  const logger = injected?.logger ?? sharedLogger;
  return middy()
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger))
    .handler(async (event: unknown): Promise<PostureSummary | { checked: number; published: number }> => {
      const deps = injected ?? depsFromEnvironment();
      const input = parseWith(pitrTaskInputSchema, event, 'pitr task input');
      const deployed = await deps.config();
      const postureDeps = { rds: deps.rds, ...(deps.now ? { now: deps.now } : {}) };
      if (input.action === 'watch') {
        const posture = await checkPosture(postureDeps, oncePerDatabase(pitrTargets(deployed.config)), { mode: 'lag' });
        for (const database of posture.databases) publish(deps.metrics, database);
        const published = posture.databases.filter((d) => d.lagSeconds !== undefined).length;
        // Unreadable windows publish nothing: the alarm treats missing data as breaching.
        if (published < posture.checked) logger.warn('PITR lag not published for some databases', { unpublished: posture.databases.filter((d) => d.lagSeconds === undefined).map((d) => ({ databaseId: d.databaseId, problem: d.problems[0] })).slice(0, 20) });
        logger.info('PITR lag published', { checked: posture.checked, published });
        return { checked: posture.checked, published };
      }
      const plan = deployed.plan(input.planId);
      const posture = await checkPosture(postureDeps, plan.pitr ? pitrTargets(deployed.config, { planId: plan.id }) : [], { mode: 'full' });
      for (const database of posture.databases) publish(deps.metrics, database);
      const summary = summarisePosture(plan.id, posture);
      for (const database of posture.databases.filter((d) => d.actions)) logger.info('PITR posture changed', { databaseId: database.databaseId, actions: database.actions });
      (summary.notInPosture > 0 ? logger.warn : logger.info).call(logger, 'PITR posture checked', { planId: plan.id, checked: summary.checked, ok: summary.ok, drifting: summary.drifting, unreadable: summary.unreadable, problems: summary.problems });
      return summary;
    });
}

export const handler = createPitrHandler();

/** For the bundle tests: the error classes this bundle throws, under the names Step Functions matches. */
export { errorClasses } from '../shared/error-classes.ts';
