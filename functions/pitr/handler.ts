import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { RDSClient } from '@aws-sdk/client-rds';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { createRdsClient, createS3Client } from '../lib/aws/clients.ts';
import { deploymentConfigEnvSchema, deploymentConfigLoader, type DeploymentConfig } from '../lib/config/deployment.ts';
import { parseWith } from '../lib/config/load.ts';
import { DIMENSIONS, METRIC_NAMES } from '../lib/metrics/names.ts';
import { checkPosture, pitrTargets, summarisePosture, type DatabasePosture, type PitrTarget, type PostureSummary } from '../lib/pitr/posture.ts';
import { watchPitrLag, type WatchReport, type WatchSink } from '../lib/pitr/watch.ts';
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
 *   alerting nothing; the per-database `pitr-lag` and `pitr-replica-lag` alarms
 *   watch its metrics. It reads region-wide listings (functions/lib/pitr/watch.ts:
 *   a few pages per region, not calls per database) and publishes each
 *   database's metric as soon as it is known, stopping WATCH_SAFETY_MS before
 *   the function's timeout with what it has: a database it could not read goes
 *   unpublished, so its own alarm fires (missing data), not everyone's.
 *
 * Both publish PitrRestorableLagSeconds, PitrWindowSeconds and, for plans with
 * copyRegion, PitrReplicaLagSeconds per database, each as soon as it is known.
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

/** Both actions stop this long before the function's timeout, so they return (and log) what they have instead of being killed. */
export const WATCH_SAFETY_MS = 20_000;

/** Aborts `WATCH_SAFETY_MS` before the invocation's end (never, without a Lambda context); clear() when done. */
function deadlineOf(context: Partial<Context> | undefined): { signal?: AbortSignal; clear: () => void } {
  const remaining = typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : undefined;
  if (remaining === undefined) return { clear: () => undefined };
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('the PITR function is about to time out')), Math.max(0, remaining - WATCH_SAFETY_MS));
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** One per-database metric, flushed at once (its own EMF record). */
function publishOne(metrics: PitrHandlerDeps['metrics'], databaseId: string, name: string, seconds: number): void {
  const single = metrics.singleMetric();
  single.addDimension(DIMENSIONS.database, databaseId);
  single.addMetric(name, MetricUnit.Seconds, seconds);
}

/** The watch's sink: each figure published the moment it is read. */
function metricSink(metrics: PitrHandlerDeps['metrics']): WatchSink {
  return {
    lag: (databaseId, seconds) => publishOne(metrics, databaseId, METRIC_NAMES.pitrRestorableLagSeconds, seconds),
    window: (databaseId, seconds) => publishOne(metrics, databaseId, METRIC_NAMES.pitrWindowSeconds, seconds),
    replicaLag: (databaseId, seconds) => publishOne(metrics, databaseId, METRIC_NAMES.pitrReplicaLagSeconds, seconds),
  };
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

/** PitrRestorableLagSeconds, PitrWindowSeconds and PitrReplicaLagSeconds of one database, with the dimensions the alarms name. */
function publish(metrics: PitrHandlerDeps['metrics'], posture: DatabasePosture): void {
  if (posture.lagSeconds !== undefined) publishOne(metrics, posture.databaseId, METRIC_NAMES.pitrRestorableLagSeconds, posture.lagSeconds);
  if (posture.earliest && posture.latest && !posture.earliestEstimated) {
    publishOne(metrics, posture.databaseId, METRIC_NAMES.pitrWindowSeconds, Math.max(0, Math.round((Date.parse(posture.latest) - Date.parse(posture.earliest)) / 1000)));
  }
  if (posture.copyRegion?.lagSeconds !== undefined) publishOne(metrics, posture.databaseId, METRIC_NAMES.pitrReplicaLagSeconds, posture.copyRegion.lagSeconds);
}

/** One target per database: a database in several pitr plans is read once, against its tightest lag target, its replica watched if any of them has copyRegion. */
function oncePerDatabase(targets: readonly PitrTarget[]): PitrTarget[] {
  const byId = new Map<string, PitrTarget>();
  for (const t of targets) {
    const seen = byId.get(t.databaseId);
    const tighter = !seen || t.pitr.maxLagMinutes < seen.pitr.maxLagMinutes ? t : seen;
    byId.set(t.databaseId, { ...tighter, pitr: { ...tighter.pitr, copyRegion: t.pitr.copyRegion || (seen?.pitr.copyRegion ?? false) } });
  }
  return [...byId.values()];
}

export function createPitrHandler(injected?: PitrHandlerDeps) {
  const logger = injected?.logger ?? sharedLogger;
  return middy()
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger))
    .handler(async (event: unknown, context?: Context): Promise<PostureSummary | WatchReport> => {
      const deps = injected ?? depsFromEnvironment();
      const input = parseWith(pitrTaskInputSchema, event, 'pitr task input');
      const deployed = await deps.config();
      const postureDeps = { rds: deps.rds, ...(deps.now ? { now: deps.now } : {}) };
      const deadline = deadlineOf(context);
      try {
        if (input.action === 'watch') {
          const report = await watchPitrLag({ ...postureDeps, ...(deadline.signal ? { signal: deadline.signal } : {}) }, oncePerDatabase(pitrTargets(deployed.config)), metricSink(deps.metrics));
          // Unpublished databases: their own alarms treat the missing data as breaching.
          if (report.unpublishedCount > 0 || report.failedListings.length > 0 || report.stoppedEarly) {
            logger.warn('PITR lag not published for some databases', { unpublishedCount: report.unpublishedCount, unpublished: report.unpublished, failedListings: report.failedListings, stoppedEarly: report.stoppedEarly });
          }
          logger.info('PITR lag published', { checked: report.checked, published: report.published, replicaWatched: report.replicaWatched, replicaPublished: report.replicaPublished, rdsCalls: report.rdsCalls });
          return report;
        }
        const plan = deployed.plan(input.planId);
        const posture = await checkPosture(postureDeps, plan.pitr ? pitrTargets(deployed.config, { planId: plan.id }) : [], {
          mode: 'full',
          onResult: (database) => publish(deps.metrics, database),
          ...(deadline.signal ? { signal: deadline.signal } : {}),
        });
        const summary = summarisePosture(plan.id, posture);
        for (const database of posture.databases.filter((d) => d.actions)) logger.info('PITR posture changed', { databaseId: database.databaseId, actions: database.actions });
        (summary.notInPosture > 0 ? logger.warn : logger.info).call(logger, 'PITR posture checked', { planId: plan.id, checked: summary.checked, ok: summary.ok, drifting: summary.drifting, unreadable: summary.unreadable, problems: summary.problems });
        return summary;
      } finally {
        deadline.clear();
      }
    });
}

export const handler = createPitrHandler();

/** For the bundle tests: the error classes this bundle throws, under the names Step Functions matches. */
export { errorClasses } from '../shared/error-classes.ts';
