import './promise-with-resolvers.ts';
import { randomUUID } from 'node:crypto';
import { StateMachine, ExecutionError } from 'aws-local-stepfunctions';

/**
 * Runs a state machine definition locally on aws-local-stepfunctions, with each
 * Task state's resource mapped to an in-process handler: the same definition
 * that CDK deploys, executed for real in tests and in the demo.
 */
export type TaskHandler = (input: unknown) => Promise<unknown>;

/** An execution event from aws-local-stepfunctions (StateEntered, StateFailed, ...). */
export interface EventLog {
  type: string;
  timestamp: number;
  state?: { name: string; type: string; input?: unknown; output?: unknown };
  Error?: string;
  Cause?: unknown;
  [key: string]: unknown;
}

export interface LocalRunOptions {
  /** Handlers keyed by Task resource ARN (the ARNs you substituted into the definition). */
  resources: Record<string, TaskHandler>;
  /** Keep Retry intervals short locally; maps state name → milliseconds. */
  retryIntervalOverrides?: Record<string, number | number[]>;
  waitTimeOverrides?: Record<string, number>;
  executionName?: string;
  /** Used in the execution ARN. @default 'lifeboat-local' */
  stateMachineName?: string;
  region?: string;
  account?: string;
  onEvent?: (event: EventLog) => void;
  /**
   * `$$.Task.Token` for `.waitForTaskToken` integrations (the Fargate dump).
   * @default a random token per execution
   */
  taskToken?: string;
}

export interface LocalRunResult {
  status: 'SUCCEEDED' | 'FAILED';
  executionArn: string;
  output?: unknown;
  error?: string;
  cause?: unknown;
  events: EventLog[];
}

interface AnyState {
  Type: string;
  Resource?: string;
  ItemProcessor?: { States: Record<string, AnyState> };
  Iterator?: { States: Record<string, AnyState> };
  Branches?: { States: Record<string, AnyState> }[];
}

function collectTaskResources(states: Record<string, AnyState>, out: Record<string, string>): Record<string, string> {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === 'Task' && state.Resource) out[name] = state.Resource;
    if (state.ItemProcessor) collectTaskResources(state.ItemProcessor.States, out);
    if (state.Iterator) collectTaskResources(state.Iterator.States, out);
    for (const branch of state.Branches ?? []) collectTaskResources(branch.States, out);
  }
  return out;
}

/** State name → Resource for every Task of a definition, nested Maps and Parallels included. */
export function taskStateResources(definition: Record<string, unknown>): Record<string, string> {
  return collectTaskResources((definition as { States: Record<string, AnyState> }).States, {});
}

/**
 * Local values for every `${Placeholder}` of a definition: fake Lambda ARNs for
 * `*FunctionArn`, placeholder strings for the rest (ECS cluster, subnets, ...).
 * Map the ARNs you want to run to handlers; unreached ones need none.
 */
export function localSubstitutions(names: readonly string[], overrides: Record<string, string> = {}): Record<string, string> {
  return Object.fromEntries(
    names.map((name) => [name, overrides[name] ?? (name.endsWith('FunctionArn') ? localFunctionArn(name.replace(/FunctionArn$/, '').toLowerCase()) : `local-${name}`)]),
  );
}

/** A fake Lambda ARN for a placeholder, to substitute into a definition. */
export function localFunctionArn(name: string, region = 'eu-west-1', account = '000000000000'): string {
  return `arn:aws:lambda:${region}:${account}:function:lifeboat-local-${name}`;
}

export async function runLocalStateMachine(
  definition: Record<string, unknown>,
  input: unknown,
  options: LocalRunOptions,
): Promise<LocalRunResult> {
  const region = options.region ?? 'eu-west-1';
  const account = options.account ?? '000000000000';
  const name = options.executionName ?? randomUUID();
  const executionArn = `arn:aws:states:${region}:${account}:execution:${options.stateMachineName ?? 'lifeboat-local'}:${name}`;
  const localHandlers: Record<string, (input: never) => Promise<never>> = {};
  for (const [stateName, resource] of Object.entries(taskStateResources(definition))) {
    // A state the run never reaches (say, the Fargate branch) needs no handler;
    // reaching one without a handler fails the task as AWS would fail a bad resource.
    const handler =
      options.resources[resource] ??
      (async () => {
        const error = new Error(`No local handler for resource ${resource} (state "${stateName}")`);
        error.name = 'States.TaskFailed';
        throw error;
      });
    localHandlers[stateName] = handler as unknown as (input: never) => Promise<never>;
  }
  const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false, checkPaths: true } });
  const events: EventLog[] = [];
  const execution = machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers: localHandlers,
      retryIntervalOverrides: options.retryIntervalOverrides,
      waitTimeOverrides: options.waitTimeOverrides,
    },
    context: { Execution: { Id: executionArn, Name: name, StartTime: new Date().toISOString() }, Task: { Token: options.taskToken ?? `local-task-token-${randomUUID()}` } },
  } as never);
  const collect = (async () => {
    for await (const event of execution.eventLogs as unknown as AsyncIterable<EventLog>) {
      events.push(event);
      options.onEvent?.(event);
    }
  })();
  try {
    const output = await execution.result;
    await collect.catch(() => undefined);
    return { status: 'SUCCEEDED', executionArn, output, events };
  } catch (error) {
    await collect.catch(() => undefined);
    if (error instanceof ExecutionError) {
      const cause = error.cause as { name?: string; message?: string; cause?: unknown } | undefined;
      return { status: 'FAILED', executionArn, error: cause?.name ?? 'ExecutionError', cause: cause?.message ?? cause, events };
    }
    throw error;
  }
}
