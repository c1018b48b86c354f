import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { parseWith } from '../lib/config/load.ts';
import { drillDepsFromEnvironment } from '../lib/drill/environment.ts';
import { DRILL_ACTIONS, runDrillAction, type DrillDeps } from '../lib/drill/steps.ts';
import { drillStateSchema } from '../lib/drill/types.ts';
import { redactError, SecretRegistry } from '../lib/redact.ts';
import { logger as sharedLogger, metrics as sharedMetrics, tracer } from '../shared/powertools.ts';

/** What each Task of the drill state machine passes: the step to run and the drill's state so far. */
export const drillTaskInputSchema = z.object({
  action: z.enum(DRILL_ACTIONS),
  drill: drillStateSchema,
});
export type DrillTaskInput = z.input<typeof drillTaskInputSchema>;

export interface DrillHandlerDeps extends DrillDeps {
  logger?: Logger;
}

let coldStartDeps: DrillDeps | undefined;

/**
 * One function for every step of a drill (select, provision, poll, credentials,
 * restore, verify, measure, teardown, report). Errors keep their class names
 * (RestoreTimeoutError, InstanceNotReadyError, ...), which the state machine
 * retries or routes on; their messages are redacted of every secret this
 * invocation saw.
 */
export function createDrillHandler(injected?: DrillHandlerDeps) {
  const logger = injected?.logger ?? sharedLogger;
  return middy()
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger))
    .handler(async (event: unknown): Promise<unknown> => {
      const deps = injected ?? (coldStartDeps ??= { ...drillDepsFromEnvironment(), metrics: sharedMetrics });
      const { action, drill } = parseWith(drillTaskInputSchema, event, 'drill task input');
      const log = logger.createChild({ persistentKeys: { databaseId: drill.request.databaseId, drillId: drill.selection?.drillId, action } });
      const registry = new SecretRegistry();
      try {
        const result = await runDrillAction(action, drill, deps, registry);
        log.info(`Drill step ${action} done`, { result: summarise(result) });
        return result;
      } catch (error) {
        const clean = redactError(error, registry.values());
        log.error(`Drill step ${action} failed`, { error: { name: clean.name, message: clean.message } });
        throw clean;
      }
    });
}

/** A loggable digest of a step's result: statuses and ids, never connection details. */
function summarise(result: unknown): unknown {
  if (!result || typeof result !== 'object') return result;
  const r = result as Record<string, unknown>;
  if (Array.isArray(r.checks)) return { checks: (r.checks as { name: string; status: string }[]).map((c) => `${c.name}: ${c.status}`) };
  const { drillId, backup, identifier, ready, status, verdict, locations, secretArn, items } = r as Record<string, unknown>;
  return { drillId, backupId: (backup as { backupId?: string } | undefined)?.backupId, identifier, ready, status, verdict, locations, secretArn, items };
}

export const handler = createDrillHandler();

/** For the bundle tests: the error classes this bundle throws, under the names Step Functions matches. */
export { errorClasses } from '../shared/error-classes.ts';
