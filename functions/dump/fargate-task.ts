/**
 * The runner image's jobs as Fargate tasks, for databases whose dump outlasts
 * Lambda's 15 minutes (`dump.runner: 'fargate'`): the dump, the copy of that
 * dump into the vault (streamed in, read back and verified) and the restore of
 * its drill, each too long for Lambda too. Same image, same handlers, same
 * checks: the task runs the job named by LIFEBOAT_TASK_HANDLER (`dump`,
 * `vault-copy` or `drill-restore`, set by its task
 * definition) in-process and reports the result to the waiting state machine
 * with its task token (`ecs:runTask.waitForTaskToken`):
 *
 * - success: SendTaskSuccess with the handler's output (what the Lambda returns);
 * - failure: SendTaskFailure with `error` = the error's class name, so the
 *   state machine's Retry/Catch match it exactly as for the Lambda, and `cause`
 *   = Lambda's JSON `{ errorType, errorMessage }`, so the alert reads it the same way.
 *
 * Input comes from the container overrides the state machine sets:
 * LIFEBOAT_TASK_INPUT (the dump task input as JSON) and LIFEBOAT_TASK_TOKEN.
 * While the dump runs it sends heartbeats; if the state machine has given up
 * (TaskTimedOut), the task stops instead of finishing a dump nobody waits for.
 */
import type { Context } from 'aws-lambda';
import { SendTaskFailureCommand, SendTaskHeartbeatCommand, SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { createSfnClient } from '../lib/aws/clients.ts';
import { localLambdaContext } from '../shared/lambda-context.ts';
import { redact } from '../lib/redact.ts';
import { createDrillHandler } from '../drill/handler.ts';
import { createVaultCopyHandler } from '../vault-copy/handler.ts';
import { createDumpHandler } from './handler.ts';

export const TASK_INPUT_ENV = 'LIFEBOAT_TASK_INPUT';
export const TASK_TOKEN_ENV = 'LIFEBOAT_TASK_TOKEN';
/** Which job this task runs; set by its task definition, never by the execution input. */
export const TASK_HANDLER_ENV = 'LIFEBOAT_TASK_HANDLER';

/** The jobs a Fargate task can run, each with the handler its Lambda function runs. */
export const FARGATE_JOBS = {
  dump: () => createDumpHandler() as unknown as TaskRunner,
  'vault-copy': () => createVaultCopyHandler() as unknown as TaskRunner,
  'drill-restore': () => createDrillHandler() as unknown as TaskRunner,
} as const;
export type FargateJob = keyof typeof FARGATE_JOBS;

/** Step Functions limits: `error` 256 characters, `cause` 32,768. */
const MAX_ERROR = 256;
const MAX_CAUSE = 32_768;
/** @default interval between heartbeats; the ASL's HeartbeatSeconds must be several times longer. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 60_000;

/**
 * The remaining time the handler's (Lambda-style) context reports. The state
 * machine's TimeoutSeconds bounds the task; this only has to be long and stay
 * below setTimeout's 2^31-1 ms, or middy's timeout guard fires at once.
 */
const TASK_CONTEXT_TIMEOUT_MS = 14 * 24 * 3600 * 1000;

/** Errors that mean the state machine no longer waits for this task. */
const ABANDONED = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);

/** A job's handler, called as Lambda would call it. */
export type TaskRunner = (event: unknown, context: Context) => Promise<unknown>;

export interface FargateTaskDeps {
  readonly sfn: Pick<SFNClient, 'send'>;
  /** The job's handler (createDumpHandler(), createVaultCopyHandler()); the same code the Lambda runs. */
  readonly handler: TaskRunner;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** @default DEFAULT_HEARTBEAT_INTERVAL_MS */
  readonly heartbeatIntervalMs?: number;
  /** Where progress lines go (JSON, one per line). @default console.log */
  readonly log?: (entry: Record<string, unknown>) => void;
  /**
   * Called when a heartbeat learns that the state machine gave up (timeout,
   * execution stopped) while the dump still runs.
   * @default exit the process with status 3
   */
  readonly onAbandoned?: (reason: string) => void;
}

export type FargateTaskOutcome =
  | { readonly status: 'succeeded'; readonly output: unknown }
  | { readonly status: 'failed'; readonly error: string; readonly cause: string }
  /** The state machine stopped waiting (timeout, execution stopped): nothing was reported. */
  | { readonly status: 'abandoned'; readonly reason: string };

/** Thrown when the task cannot report at all (no token): the container exits non-zero and ECS shows it. */
export class TaskTokenMissingError extends Error {
  override readonly name = 'TaskTokenMissingError';
}

/** Lambda's error shape, so `describeCaughtError` and Retry/Catch see the same thing for both runners. */
export function lambdaShapedFailure(error: unknown): { error: string; cause: string } {
  const e = error instanceof Error ? error : new Error(String(error));
  const errorType = (e.name || 'Error').slice(0, MAX_ERROR);
  const cause = JSON.stringify({ errorType, errorMessage: redact(e.message) });
  return { error: errorType, cause: cause.length <= MAX_CAUSE ? cause : JSON.stringify({ errorType, errorMessage: redact(e.message).slice(0, MAX_CAUSE - 200) }) };
}

function errorName(error: unknown): string {
  return (error as { name?: string } | undefined)?.name ?? 'Error';
}

/** Runs one job with the task's input and reports the result with its task token. */
export async function runFargateTask(deps: FargateTaskDeps): Promise<FargateTaskOutcome> {
  const env = deps.env ?? process.env;
  const log = deps.log ?? ((entry) => console.log(JSON.stringify({ level: 'INFO', service: env.POWERTOOLS_SERVICE_NAME, ...entry })));
  const taskToken = env[TASK_TOKEN_ENV];
  if (!taskToken) {
    throw new TaskTokenMissingError(
      `${TASK_TOKEN_ENV} is not set: this container reports to a waiting state machine and must be started by it (ecs:runTask.waitForTaskToken with ContainerOverrides).`,
    );
  }

  let abandoned: string | undefined;
  const heartbeat = setInterval(() => {
    deps.sfn.send(new SendTaskHeartbeatCommand({ taskToken })).catch((error: unknown) => {
      if (!ABANDONED.has(errorName(error))) {
        log({ level: 'WARN', message: 'Heartbeat failed; retrying at the next interval', error: errorName(error) });
        return;
      }
      abandoned = `the state machine no longer waits for this task (${errorName(error)})`;
      log({ level: 'ERROR', message: 'Task abandoned by the state machine; stopping', reason: abandoned });
      // The dump has no manifest yet, so nothing is reported as a backup; the
      // bucket's lifecycle rule aborts the unfinished upload.
      (deps.onAbandoned ?? (() => process.exit(3)))(abandoned);
    });
  }, deps.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS);
  heartbeat.unref();

  const report = async (outcome: FargateTaskOutcome): Promise<FargateTaskOutcome> => {
    try {
      if (outcome.status === 'succeeded') {
        await deps.sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(outcome.output) }));
      } else if (outcome.status === 'failed') {
        await deps.sfn.send(new SendTaskFailureCommand({ taskToken, error: outcome.error, cause: outcome.cause }));
      }
    } catch (error) {
      if (ABANDONED.has(errorName(error))) return { status: 'abandoned', reason: `the state machine no longer waits for this task (${errorName(error)})` };
      throw error;
    }
    return outcome;
  };

  try {
    let event: unknown;
    try {
      event = JSON.parse(env[TASK_INPUT_ENV] ?? '');
    } catch {
      const failure = new Error(`${TASK_INPUT_ENV} is missing or not JSON. Next step: check the ContainerOverrides of the state machine's Fargate state.`);
      failure.name = 'ConfigError';
      return await report({ status: 'failed', ...lambdaShapedFailure(failure) });
    }
    log({ message: 'Task started', job: env[TASK_HANDLER_ENV] ?? 'dump', databaseId: (event as { databaseId?: string } | null)?.databaseId });
    try {
      const output = await deps.handler(event, localLambdaContext(`${env.POWERTOOLS_SERVICE_NAME ?? 'lifeboat-dump'}-fargate`, TASK_CONTEXT_TIMEOUT_MS));
      if (abandoned) return { status: 'abandoned', reason: abandoned };
      return await report({ status: 'succeeded', output });
    } catch (error) {
      if (abandoned) return { status: 'abandoned', reason: abandoned };
      return await report({ status: 'failed', ...lambdaShapedFailure(error) });
    }
  } finally {
    clearInterval(heartbeat);
  }
}

/**
 * The handler of the job LIFEBOAT_TASK_HANDLER names (`dump` when unset). An
 * unknown job is a deployment fault: its handler fails with ConfigError, which
 * is reported like any other failure, so the state machine alerts at once.
 */
export function jobHandler(env: NodeJS.ProcessEnv = process.env): TaskRunner {
  const job = env[TASK_HANDLER_ENV] ?? 'dump';
  if (Object.hasOwn(FARGATE_JOBS, job)) return FARGATE_JOBS[job as FargateJob]();
  return async () => {
    const error = new Error(`${TASK_HANDLER_ENV} is "${job}", which is not a lifeboat Fargate job (${Object.keys(FARGATE_JOBS).join(', ')}). Next step: redeploy the source stack, whose task definitions set it.`);
    error.name = 'ConfigError';
    throw error;
  };
}

/** Container entrypoint: `node functions/dump/fargate-task.mjs`. Exit 0 when the outcome was reported. */
export async function main(): Promise<number> {
  const job = process.env[TASK_HANDLER_ENV] ?? 'dump';
  try {
    const outcome = await runFargateTask({ sfn: createSfnClient(), handler: jobHandler() });
    console.log(JSON.stringify({ level: outcome.status === 'succeeded' ? 'INFO' : 'ERROR', message: `Task ${outcome.status}`, job }));
    return outcome.status === 'abandoned' ? 3 : 0;
  } catch (error) {
    console.error(JSON.stringify({ level: 'ERROR', message: 'Task could not report', job, error: errorName(error), detail: redact((error as Error).message ?? String(error)) }));
    return 2;
  }
}

const invokedDirectly = process.argv[1] !== undefined && /fargate-task\.(m?js|ts)$/.test(process.argv[1]);
if (invokedDirectly) {
  process.exitCode = await main();
}

/** For the bundle tests: the error classes this bundle throws, under the names Step Functions matches. */
export { errorClasses } from '../shared/error-classes.ts';
