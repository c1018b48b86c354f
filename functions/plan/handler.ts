import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { createS3Client } from '../lib/aws/clients.ts';
import { deploymentConfigEnvSchema, deploymentConfigLoader, type DeploymentConfig } from '../lib/config/deployment.ts';
import { parseWith } from '../lib/config/load.ts';
import { backupRunInputSchema, drillRequestInputSchema, drillRunInputSchema, resolveBackupRun, resolveDrillRequest, resolveDrillRun, type BackupPlanRun, type DrillRun } from '../lib/config/targets.ts';
import type { DrillRequest } from '../lib/drill/types.ts';
import { readEnv } from '../shared/env.ts';
import { logger as sharedLogger, tracer } from '../shared/powertools.ts';

/**
 * The first step of the backup and drill workflows: what the run covers,
 * resolved from the deployed config (the execution input only names it); and
 * the first step of each database's drill: its full drill request.
 */
export const planTaskInputSchema = z.discriminatedUnion('workflow', [
  z.object({ workflow: z.literal('backup'), input: z.unknown() }).strict(),
  z.object({ workflow: z.literal('drill'), input: z.unknown() }).strict(),
  z.object({ workflow: z.literal('drill-request'), input: z.unknown() }).strict(),
]);

export interface PlanHandlerDeps {
  config: () => Promise<DeploymentConfig>;
  logger: Logger;
}

let coldStartDeps: PlanHandlerDeps | undefined;
function depsFromEnvironment(): PlanHandlerDeps {
  coldStartDeps ??= { config: deploymentConfigLoader(createS3Client(), readEnv(deploymentConfigEnvSchema)), logger: sharedLogger };
  return coldStartDeps;
}

export function createPlanHandler(injected?: PlanHandlerDeps) {
  const logger = injected?.logger ?? sharedLogger;
  return middy()
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger))
    .handler(async (event: unknown): Promise<BackupPlanRun | DrillRun | DrillRequest> => {
      const deps = injected ?? depsFromEnvironment();
      const task = parseWith(planTaskInputSchema, event, 'plan task input');
      const deployed = await deps.config();
      if (task.workflow === 'backup') {
        const run = resolveBackupRun(deployed, parseWith(backupRunInputSchema, task.input, 'the backup execution input'));
        logger.info('Backup run resolved', { planId: run.planId, databases: run.databases.length });
        return run;
      }
      if (task.workflow === 'drill-request') {
        const request = resolveDrillRequest(deployed, parseWith(drillRequestInputSchema, task.input, 'the drill request input'));
        logger.info('Drill request resolved', { databaseId: request.databaseId, backupKind: request.backupKind });
        return request;
      }
      const run = resolveDrillRun(deployed, parseWith(drillRunInputSchema, task.input, 'the drill execution input'));
      logger.info('Drill run resolved', { databases: run.databases.length });
      return run;
    });
}

export const handler = createPlanHandler();

/** For the bundle tests: the error classes this bundle throws, under the names Step Functions matches. */
export { errorClasses } from '../shared/error-classes.ts';
