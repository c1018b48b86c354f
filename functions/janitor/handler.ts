import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Logger } from '@aws-lambda-powertools/logger';
import { janitorDepsFromEnvironment } from '../lib/drill/environment.ts';
import { sweepExpiredDrillResources, type JanitorDeps, type SweepResult } from '../lib/drill/janitor.ts';
import type { DrillMetrics } from '../lib/drill/measure.ts';
import { logger as sharedLogger, metrics as sharedMetrics, tracer } from '../shared/powertools.ts';

export interface JanitorHandlerDeps extends JanitorDeps {
  logger?: Logger;
  metrics?: DrillMetrics;
}

let coldStartDeps: JanitorDeps | undefined;

/** Deletes drill resources whose expiry tag has passed; the state machine alerts when any deletion failed. */
export function createJanitorHandler(injected?: JanitorHandlerDeps) {
  const logger = injected?.logger ?? sharedLogger;
  const metrics = injected ? injected.metrics : sharedMetrics;
  return middy()
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger))
    .handler(async (): Promise<SweepResult> => {
      const deps = injected ?? (coldStartDeps ??= janitorDepsFromEnvironment());
      const result = await sweepExpiredDrillResources(deps);
      for (const [name, value] of [['JanitorDeleted', result.deleted.length], ['JanitorFailed', result.failedCount]] as const) {
        const single = metrics?.singleMetric();
        single?.addMetric(name, MetricUnit.Count, value);
      }
      (result.failedCount ? logger.error : logger.info).call(logger, result.summary, { deleted: result.deleted, pending: result.pending, failed: result.failed });
      return result;
    });
}

export const handler = createJanitorHandler();

/** For the bundle tests: the error classes this bundle throws, under the names Step Functions matches. */
export { errorClasses } from '../shared/error-classes.ts';
