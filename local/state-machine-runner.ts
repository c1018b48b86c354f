import './promise-with-resolvers.ts';
import { randomUUID } from 'node:crypto';
import { StateMachine, ExecutionError } from 'aws-local-stepfunctions';

/**
 * Runs a state machine definition locally on aws-local-stepfunctions, unchanged,
 * with each Task's resource mapped to a handler (in the tests: the shipped
 * bundle, run by local/lambda-runtime.ts), and with AWS's limits enforced where
 * the library has none:
 *
 * - 256 KiB for the execution input, every state's input and output and every
 *   task's raw result: `States.DataLimitExceeded`, which no Catch or Retry
 *   (States.ALL included) handles, so the execution fails as on AWS;
 * - 25,000 events in one execution's history, counted per state type as AWS
 *   writes them (a Lambda task is TaskStateEntered, LambdaFunctionScheduled,
 *   LambdaFunctionStarted, LambdaFunctionSucceeded/Failed, TaskStateExited, and
 *   each retry adds three; inline Map iterations count in the parent, child
 *   executions in their own history);
 * - Wait and Retry intervals scaled by `timeScale` (not zeroed), backoff,
 *   MaxDelaySeconds and full jitter included, so ordering and deadlines still
 *   play out; MaxConcurrency is the library's own (inline Map: 40 at most);
 * - child executions (`states:startExecution.sync:2`, `.sync`, and
 *   fire-and-forget), each with its own history and limits.
 *
 * docs/aws-fidelity.md lists what this engine does not imitate.
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

/** AWS Step Functions quotas (Standard workflows) the local engine enforces. */
export const AWS_STEP_FUNCTIONS_LIMITS = {
  /** Execution input, state input/output, task result: 256 KiB of UTF-8 JSON. */
  payloadBytes: 256 * 1024,
  /** Events in one execution's history. */
  historyEvents: 25_000,
} as const;

/**
 * The time scale of local runs (tests, the demo, local drills against the
 * emulator): a minute of Wait or Retry passes in 60 ms.
 */
export const LOCAL_TIME_SCALE = 0.001;

export type EngineLimits = { payloadBytes: number; historyEvents: number };

/** A definition the engine can start as a child execution, by its ARN. */
export interface LocalStateMachine {
  readonly definition: Record<string, unknown>;
  /** @default the last part of the ARN */
  readonly name?: string;
}

export interface LocalRunOptions {
  /** Handlers keyed by Task resource ARN (the ARNs substituted into the definition). */
  resources: Record<string, TaskHandler>;
  /** State machines a `states:startExecution` task may start, by ARN. */
  stateMachines?: Record<string, LocalStateMachine>;
  /**
   * Multiplies every Wait and Retry interval: 1 waits as AWS would, 0.001
   * turns a 60-second Wait into 60 ms. Never 0 in tests: ordering and
   * deadlines must still play out.
   * @default 1
   */
  timeScale?: number;
  /** Lower limits, to prove their enforcement with small inputs. @default AWS_STEP_FUNCTIONS_LIMITS */
  limits?: Partial<EngineLimits>;
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
  /** Called when a child execution ends (tests collect their statistics). */
  onChildExecution?: (child: LocalRunResult) => void;
  /**
   * Keep every event of the execution (and of its children) in `events`. A
   * fleet-size run turns this off: half a million events with their state
   * payloads would be gigabytes. The statistics are kept either way.
   * @default true
   */
  recordEvents?: boolean;
}

/** What the engine measured of one execution (its own history; children report theirs). */
export interface ExecutionStats {
  /** History events as AWS would count them. */
  historyEvents: number;
  /** The largest payload seen: execution input, a state's input or output, or a task result. */
  peakPayloadBytes: number;
  /** Where that payload was. */
  peakPayloadAt: string;
  /** Child executions this execution started. */
  childExecutions: number;
}

export interface LocalRunResult {
  status: 'SUCCEEDED' | 'FAILED';
  executionArn: string;
  output?: unknown;
  error?: string;
  cause?: unknown;
  events: EventLog[];
  stats: ExecutionStats;
}

interface AnyState {
  Type: string;
  Resource?: string;
  Seconds?: number;
  SecondsPath?: string;
  Timestamp?: string;
  TimestampPath?: string;
  InputPath?: string | null;
  Retry?: { ErrorEquals: string[]; IntervalSeconds?: number; MaxAttempts?: number; BackoffRate?: number; MaxDelaySeconds?: number; JitterStrategy?: string }[];
  ItemProcessor?: { States: Record<string, AnyState> };
  Iterator?: { States: Record<string, AnyState> };
  Branches?: { States: Record<string, AnyState> }[];
}
type Definition = { States: Record<string, AnyState> };

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
  return collectTaskResources((definition as Definition).States, {});
}

/**
 * Local values for every `${Placeholder}` of a definition: fake Lambda ARNs for
 * `*FunctionArn`, fake state machine ARNs for `*StateMachineArn`, placeholder
 * strings for the rest (ECS cluster, subnets, ...).
 */
export function localSubstitutions(names: readonly string[], overrides: Record<string, string> = {}): Record<string, string> {
  return Object.fromEntries(
    names.map((name) => [
      name,
      overrides[name] ??
        (name.endsWith('FunctionArn')
          ? localFunctionArn(name.replace(/FunctionArn$/, '').toLowerCase())
          : name.endsWith('StateMachineArn')
            ? localStateMachineArn(name.replace(/StateMachineArn$/, '').toLowerCase())
            : `local-${name}`),
    ]),
  );
}

/** A fake Lambda ARN for a placeholder, to substitute into a definition. */
export function localFunctionArn(name: string, region = 'eu-west-1', account = '000000000000'): string {
  return `arn:aws:lambda:${region}:${account}:function:lifeboat-local-${name}`;
}

/** A fake state machine ARN, to substitute into a definition and to register with `stateMachines`. */
export function localStateMachineArn(name: string, region = 'eu-west-1', account = '000000000000'): string {
  return `arn:aws:states:${region}:${account}:stateMachine:lifeboat-local-${name}`;
}

/** An error AWS raises that no Retry or Catch handles (States.ALL included). */
class TerminalStatesError extends Error {
  readonly isCatchable = false;
  readonly isRetryable = false;
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

const payloadBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value ?? null) ?? 'null', 'utf8');

/** Resolves `$.a.b[0]` style reference paths (what Wait's SecondsPath/TimestampPath use here). */
function referencePath(path: string, input: unknown): unknown {
  if (path === '$') return input;
  if (!path.startsWith('$.')) return undefined;
  let value: unknown = input;
  for (const part of path.slice(2).split('.')) {
    const m = /^([^[\]]+)((?:\[\d+\])*)$/.exec(part);
    if (!m) return undefined;
    value = (value as Record<string, unknown> | undefined)?.[m[1]!];
    for (const index of m[2]!.matchAll(/\[(\d+)\]/g)) value = (value as unknown[] | undefined)?.[Number(index[1])];
  }
  return value;
}

const isCallback = (resource: string | undefined) => /\.(sync(:2)?|waitForTaskToken)$/.test(resource ?? '');
/** Scheduled + Started + Succeeded/Failed, and Submitted for .sync and .waitForTaskToken. */
const attemptEvents = (resource: string | undefined) => (isCallback(resource) ? 4 : 3);

interface LoggerLike {
  dispatchStateEnteredEvent(name: string, type: string, input: unknown): void;
  dispatchStateExitedEvent(name: string, type: string, input: unknown, output: unknown): void;
  dispatchStateFailedEvent(name: string, type: string, input: unknown, error: Error): void;
  dispatchStateRetriedEvent(name: string, type: string, input: unknown, retrier: unknown, attempt: number): void;
  dispatchExecutionStartedEvent(input: unknown): void;
  dispatchExecutionSucceededEvent(output: unknown): void;
  dispatchExecutionFailedEvent(error: Error): void;
}

/**
 * One execution's accounting and limits. aws-local-stepfunctions runs inline
 * Map iterations and Parallel branches as nested executions that share the
 * run options, so one tracker sees them all; it tells them apart by the
 * definition objects of the root definition.
 */
class ExecutionTracker {
  readonly stats: ExecutionStats = { historyEvents: 0, peakPayloadBytes: 0, peakPayloadAt: '', childExecutions: 0 };
  readonly #states = new Map<object, Record<string, AnyState>>();
  readonly #mapIterations = new Set<object>();
  readonly #root: object;
  /** The Wait state being entered right now, so the wait override can scale its own interval. */
  #pendingWait: { state: AnyState; input: unknown; ms?: number } | undefined;
  /** The state whose failure is being decided right now, so the retry override can compute its delay. */
  #pendingFailure: { state: AnyState; error: Error; attempts: number[]; ms?: number } | undefined;

  constructor(
    definition: Definition,
    readonly limits: EngineLimits,
    readonly timeScale: number,
    readonly label: string,
  ) {
    this.#root = definition;
    const walk = (def: { States: Record<string, AnyState> }, mapIteration: boolean) => {
      this.#states.set(def, def.States);
      if (mapIteration) this.#mapIterations.add(def);
      for (const state of Object.values(def.States)) {
        if (state.ItemProcessor) walk(state.ItemProcessor, true);
        if (state.Iterator) walk(state.Iterator, true);
        for (const b of state.Branches ?? []) walk(b, false);
      }
    };
    walk(definition, false);
  }

  count(events: number, where: string): void {
    this.stats.historyEvents += events;
    if (this.stats.historyEvents > this.limits.historyEvents) {
      throw new TerminalStatesError(
        'States.Runtime',
        `The execution history of ${this.label} passed ${this.limits.historyEvents} events (at ${where}); Step Functions fails an execution whose history exceeds that quota.`,
      );
    }
  }

  payload(value: unknown, where: string): void {
    const bytes = payloadBytes(value);
    if (bytes > this.stats.peakPayloadBytes) {
      this.stats.peakPayloadBytes = bytes;
      this.stats.peakPayloadAt = where;
    }
    if (bytes > this.limits.payloadBytes) {
      throw new TerminalStatesError(
        'States.DataLimitExceeded',
        `${where} is ${bytes} bytes; Step Functions allows at most ${this.limits.payloadBytes} (in ${this.label}).`,
      );
    }
  }

  /** Hooks one (root or nested) execution's event logger; called as the library starts executing it. */
  instrument(definition: object, logger: LoggerLike): void {
    const states = this.#states.get(definition) ?? (definition as Definition).States;
    const isRoot = definition === this.#root;
    const isIteration = this.#mapIterations.has(definition);
    const original = {
      entered: logger.dispatchStateEnteredEvent.bind(logger),
      exited: logger.dispatchStateExitedEvent.bind(logger),
      failed: logger.dispatchStateFailedEvent.bind(logger),
      retried: logger.dispatchStateRetriedEvent.bind(logger),
      started: logger.dispatchExecutionStartedEvent.bind(logger),
      succeeded: logger.dispatchExecutionSucceededEvent.bind(logger),
      executionFailed: logger.dispatchExecutionFailedEvent.bind(logger),
    };
    const attemptsByState = new Map<string, number[]>();
    logger.dispatchStateEnteredEvent = (name, type, input) => {
      const state = states[name];
      this.payload(input, `the input of state "${name}"`);
      const events = type === 'Task' ? 1 + attemptEvents(state?.Resource) : type === 'Map' || type === 'Parallel' ? 2 : 1;
      this.count(events, `state "${name}"`);
      attemptsByState.set(name, (state?.Retry ?? []).map(() => 0));
      if (type === 'Wait' && state) this.#pendingWait = { state, input };
      original.entered(name, type, input);
    };
    logger.dispatchStateExitedEvent = (name, type, input, output) => {
      this.payload(output, `the output of state "${name}"`);
      this.count(type === 'Map' || type === 'Parallel' ? 2 : 1, `state "${name}"`);
      original.exited(name, type, input, output);
    };
    logger.dispatchStateFailedEvent = (name, type, input, error) => {
      const state = states[name];
      if (state) this.#pendingFailure = { state, error, attempts: attemptsByState.get(name) ?? [] };
      original.failed(name, type, input, error);
    };
    logger.dispatchStateRetriedEvent = (name, type, input, retrier, attempt) => {
      this.count(type === 'Task' ? attemptEvents(states[name]?.Resource) : 2, `a retry of state "${name}"`);
      original.retried(name, type, input, retrier, attempt);
    };
    logger.dispatchExecutionStartedEvent = (input) => {
      if (isRoot) {
        this.payload(input, 'the execution input');
        this.count(1, 'ExecutionStarted');
      } else if (isIteration) this.count(1, 'MapIterationStarted');
      original.started(input);
    };
    logger.dispatchExecutionSucceededEvent = (output) => {
      if (isRoot || isIteration) this.stats.historyEvents += 1;
      original.succeeded(output);
    };
    logger.dispatchExecutionFailedEvent = (error) => {
      if (isRoot || isIteration) this.stats.historyEvents += 1;
      original.executionFailed(error);
    };
  }

  /** The scaled wait for the Wait state being entered (read by the library right after StateEntered). */
  waitMs(stateName: string): number | undefined {
    const pending = this.#pendingWait;
    if (!pending) return undefined;
    if (pending.ms !== undefined) return pending.ms;
    const { state, input } = pending;
    let seconds: number | undefined;
    if (state.Seconds !== undefined) seconds = state.Seconds;
    else if (state.SecondsPath) seconds = Number(referencePath(state.SecondsPath, input));
    else if (state.Timestamp || state.TimestampPath) {
      const at = state.Timestamp ?? String(referencePath(state.TimestampPath!, input));
      seconds = Math.max(0, (Date.parse(at) - Date.now()) / 1000);
    }
    if (seconds === undefined || !Number.isFinite(seconds)) {
      throw new TerminalStatesError('States.Runtime', `The local engine could not work out how long Wait state "${stateName}" waits.`);
    }
    pending.ms = Math.round(seconds * 1000 * this.timeScale);
    return pending.ms;
  }

  /** The scaled delay before the retry being decided (read by the library right after StateFailed). */
  retryMs(): number | undefined {
    // The library reads the override more than once per decision: answer the same each time.
    const pending = this.#pendingFailure;
    if (!pending) return undefined;
    if (pending.ms !== undefined) return pending.ms;
    const retriers = pending.state.Retry ?? [];
    const index = retriers.findIndex((r) =>
      r.ErrorEquals.some((e) => e === pending.error.name || e === 'States.ALL' || (e === 'States.TaskFailed' && pending.state.Type === 'Task')),
    );
    if (index < 0) return undefined;
    const r = retriers[index]!;
    const attempt = pending.attempts[index] ?? 0;
    pending.attempts[index] = attempt + 1;
    const base = Math.min((r.IntervalSeconds ?? 1) * Math.pow(r.BackoffRate ?? 2, attempt), r.MaxDelaySeconds ?? Number.POSITIVE_INFINITY);
    const jittered = r.JitterStrategy === 'FULL' ? Math.random() * base : base;
    pending.ms = Math.round(jittered * 1000 * this.timeScale);
    return pending.ms;
  }
}

/** Installs the tracker hook on aws-local-stepfunctions once. */
function installHooks(): void {
  const proto = StateMachine.prototype as unknown as {
    __lifeboatHooked?: boolean;
    execute: (this: { definition: object }, input: unknown, options: { runOptions?: { __lifeboat?: ExecutionTracker }; eventLogger: LoggerLike }, cleanup: () => void) => Promise<unknown>;
  };
  if (proto.__lifeboatHooked) return;
  const execute = proto.execute;
  proto.execute = function (input, options, cleanup) {
    options.runOptions?.__lifeboat?.instrument(this.definition, options.eventLogger);
    return execute.call(this, input, options, cleanup);
  };
  proto.__lifeboatHooked = true;
}

/** The DescribeExecution-shaped result a `.sync` task returns; `.sync:2` parses Input and Output. */
function describeChild(child: LocalRunResult, stateMachineArn: string, input: unknown, started: number, parsed: boolean) {
  const json = (v: unknown) => JSON.stringify(v ?? null);
  return {
    ExecutionArn: child.executionArn,
    StateMachineArn: stateMachineArn,
    Name: child.executionArn.split(':').pop(),
    Status: child.status,
    StartDate: started,
    StopDate: Date.now(),
    Input: parsed ? input : json(input),
    InputDetails: { Included: true },
    ...(child.status === 'SUCCEEDED'
      ? { Output: parsed ? child.output : json(child.output), OutputDetails: { Included: true } }
      : { Error: child.error, Cause: typeof child.cause === 'string' ? child.cause : json(child.cause) }),
  };
}

export async function runLocalStateMachine(definition: Record<string, unknown>, input: unknown, options: LocalRunOptions): Promise<LocalRunResult> {
  installHooks();
  const region = options.region ?? 'eu-west-1';
  const account = options.account ?? '000000000000';
  const name = options.executionName ?? randomUUID();
  const executionArn = `arn:aws:states:${region}:${account}:execution:${options.stateMachineName ?? 'lifeboat-local'}:${name}`;
  const limits: EngineLimits = { ...AWS_STEP_FUNCTIONS_LIMITS, ...options.limits };
  const timeScale = options.timeScale ?? 1;
  if (!(timeScale > 0)) throw new Error('timeScale must be greater than 0: waits and retries are scaled, never skipped.');
  const tracker = new ExecutionTracker(definition as Definition, limits, timeScale, `execution ${name}`);

  // StartExecution refuses an oversized input before anything runs.
  const inputBytes = payloadBytes(input);
  if (inputBytes > limits.payloadBytes) {
    return {
      status: 'FAILED',
      executionArn,
      error: 'States.DataLimitExceeded',
      cause: `The execution input is ${inputBytes} bytes; Step Functions allows at most ${limits.payloadBytes}.`,
      events: [],
      stats: { ...tracker.stats, peakPayloadBytes: inputBytes, peakPayloadAt: 'the execution input' },
    };
  }

  const localHandlers: Record<string, (input: never) => Promise<never>> = {};
  for (const [stateName, resource] of Object.entries(taskStateResources(definition))) {
    const handler = options.resources[resource] ?? builtInIntegration(resource, options, tracker);
    localHandlers[stateName] = (async (taskInput: unknown) => {
      if (!handler) {
        // A state the run never reaches (say, the Fargate branch) needs no handler;
        // reaching one without a handler fails the task as AWS would fail a bad resource.
        const error = new Error(`No local handler for resource ${resource} (state "${stateName}")`);
        error.name = 'States.TaskFailed';
        throw error;
      }
      const result = await handler(taskInput);
      // The task's own result counts before ResultSelector/ResultPath trim it.
      tracker.payload(result, `the result of task "${stateName}"`);
      return result;
    }) as unknown as (input: never) => Promise<never>;
  }
  const waitTimeOverrides = new Proxy({}, { get: (_t, key) => (typeof key === 'string' ? tracker.waitMs(key) : undefined) });
  const retryIntervalOverrides = new Proxy({}, { get: (_t, key) => (typeof key === 'string' ? tracker.retryMs() : undefined) });

  const machine = machineFor(definition);
  const events: EventLog[] = [];
  const execution = machine.run(input as never, {
    overrides: { taskResourceLocalHandlers: localHandlers, waitTimeOverrides, retryIntervalOverrides },
    context: { Execution: { Id: executionArn, Name: name, StartTime: new Date().toISOString() }, Task: { Token: options.taskToken ?? `local-task-token-${randomUUID()}` } },
    __lifeboat: tracker,
  } as never);
  const collect = (async () => {
    const record = options.recordEvents ?? true;
    for await (const event of execution.eventLogs as unknown as AsyncIterable<EventLog>) {
      if (record) events.push(event);
      options.onEvent?.(event);
    }
  })();
  try {
    const output = await execution.result;
    await collect.catch(() => undefined);
    return { status: 'SUCCEEDED', executionArn, output, events, stats: tracker.stats };
  } catch (error) {
    await collect.catch(() => undefined);
    if (error instanceof ExecutionError) {
      const cause = error.cause as { name?: string; message?: string; cause?: unknown } | undefined;
      return { status: 'FAILED', executionArn, error: cause?.name ?? 'ExecutionError', cause: cause?.message ?? cause, events, stats: tracker.stats };
    }
    throw error;
  }
}

/**
 * One validated StateMachine per definition object: validating a definition
 * compiles the ASL schema, which at fleet size (a child execution per
 * database) would cost more than running the children.
 */
const machines = new WeakMap<object, StateMachine>();
function machineFor(definition: Record<string, unknown>): StateMachine {
  let machine = machines.get(definition);
  if (!machine) machines.set(definition, (machine = new StateMachine(definition as never, { validationOptions: { checkArn: false, checkPaths: true } })));
  return machine;
}

/** Step Functions' own integrations the engine provides: child executions. */
function builtInIntegration(resource: string, options: LocalRunOptions, parent: ExecutionTracker): TaskHandler | undefined {
  const m = /^arn:aws:states:::states:startExecution(\.sync(:2)?)?$/.exec(resource);
  if (!m) return undefined;
  const wait = m[1] !== undefined;
  const parsed = m[2] !== undefined;
  return async (taskInput) => {
    const params = taskInput as { StateMachineArn?: string; Input?: unknown; Name?: string };
    const arn = String(params.StateMachineArn ?? '');
    const target = options.stateMachines?.[arn];
    if (!target) {
      const error = new Error(`State Machine Does Not Exist: '${arn}'`);
      error.name = 'StepFunctions.StateMachineDoesNotExistException';
      throw error;
    }
    const childInput = typeof params.Input === 'string' ? JSON.parse(params.Input) : (params.Input ?? {});
    parent.stats.childExecutions++;
    const started = Date.now();
    const run = runLocalStateMachine(target.definition, childInput, {
      ...options,
      executionName: params.Name ?? randomUUID(),
      stateMachineName: target.name ?? arn.split(':').pop(),
      onEvent: undefined,
      taskToken: undefined,
    }).then((child) => {
      options.onChildExecution?.(child);
      return child;
    });
    if (!wait) {
      void run;
      return { ExecutionArn: `arn:aws:states:${options.region ?? 'eu-west-1'}:${options.account ?? '000000000000'}:execution:${arn.split(':').pop()}:${params.Name ?? 'child'}`, StartDate: started };
    }
    const child = await run;
    const described = describeChild(child, arn, childInput, started, parsed);
    if (child.status === 'SUCCEEDED') return described;
    // A failed child fails the task with States.TaskFailed; the cause is the child's description.
    const error = new Error(JSON.stringify(described));
    error.name = 'States.TaskFailed';
    throw error;
  };
}
