import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { LOCAL_TIME_SCALE, runLocalStateMachine, type EventLog, type TaskHandler } from './state-machine-runner.ts';

/**
 * A local stand-in for the Step Functions API (JSON 1.0 protocol) that executes
 * real definitions on aws-local-stepfunctions with in-process handlers. The CLI's
 * `lifeboat run` talks to it exactly as it talks to AWS, so tests and the demo
 * exercise the same StartExecution / GetExecutionHistory code path.
 */
export interface LocalMachine {
  name: string;
  definition: Record<string, unknown>;
  resources: Record<string, TaskHandler>;
  /** Scale of Wait and Retry intervals. @default LOCAL_TIME_SCALE */
  timeScale?: number;
}

/** A history event without its ids. */
export interface HistoryEventBody {
  timestamp: number;
  type: string;
  [details: string]: unknown;
}

interface HistoryEvent extends HistoryEventBody {
  id: number;
  previousEventId: number;
}

interface Execution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  startDate: number;
  stopDate?: number;
  input: string;
  output?: string;
  error?: string;
  cause?: string;
  events: HistoryEvent[];
}

export interface LocalStepFunctions {
  endpoint: string;
  region: string;
  account: string;
  arnOf(name: string): string;
  /** The child executions an execution started (states:startExecution.sync:2), as DescribeExecution shows them. */
  childExecutions(executionArn: string): Array<{ executionArn: string; status: string; output?: unknown; error?: string }>;
  /** Resolves when every started execution has finished. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

const TYPE_PREFIX: Record<string, string> = { Task: 'Task', Map: 'Map', Pass: 'Pass', Choice: 'Choice', Wait: 'Wait', Succeed: 'Succeed', Fail: 'Fail', Parallel: 'Parallel' };

/**
 * An aws-local-stepfunctions event as the Step Functions history event that
 * GetExecutionHistory returns for it (without its ids), or undefined for events
 * the history does not show. Lets a local run print what `lifeboat run` prints.
 */
export function toHistoryEvent(event: EventLog): HistoryEventBody | undefined {
  const timestamp = event.timestamp / 1000;
  const prefix = event.state ? (TYPE_PREFIX[event.state.type] ?? 'Task') : '';
  const json = (v: unknown) => JSON.stringify(v ?? null);
  switch (event.type) {
    case 'ExecutionStarted':
      return { timestamp, type: 'ExecutionStarted', executionStartedEventDetails: { input: json(event.input) } };
    case 'ExecutionSucceeded':
      return { timestamp, type: 'ExecutionSucceeded', executionSucceededEventDetails: { output: json(event.output) } };
    case 'ExecutionFailed':
      return { timestamp, type: 'ExecutionFailed', executionFailedEventDetails: { error: event.Error, cause: String(event.Cause ?? '') } };
    case 'StateEntered':
      return { timestamp, type: `${prefix}StateEntered`, stateEnteredEventDetails: { name: event.state!.name, input: json(event.state!.input) } };
    case 'StateExited':
      return { timestamp, type: `${prefix}StateExited`, stateExitedEventDetails: { name: event.state!.name, output: json(event.state!.output) } };
    case 'StateFailed':
      return { timestamp, type: 'TaskFailed', taskFailedEventDetails: { resourceType: 'lambda', resource: event.state?.name, error: event.Error, cause: String(event.Cause ?? '') } };
    case 'MapIterationStarted':
    case 'MapIterationSucceeded':
    case 'MapIterationFailed': {
      const key = `${event.type[0]!.toLowerCase()}${event.type.slice(1)}EventDetails`;
      return { timestamp, type: event.type, [key]: { name: (event.parentState as { name?: string } | undefined)?.name, index: event.index } };
    }
    default:
      return undefined;
  }
}

/** The ARN the local API gives a state machine it serves (for definitions that start another as a child). */
export function localStepFunctionsArn(name: string, region = 'eu-west-1', account = '000000000000'): string {
  return `arn:aws:states:${region}:${account}:stateMachine:${name}`;
}

export async function startLocalStepFunctions(machines: LocalMachine[], options: { region?: string; account?: string } = {}): Promise<LocalStepFunctions> {
  const region = options.region ?? 'eu-west-1';
  const account = options.account ?? '000000000000';
  const arnOf = (name: string) => localStepFunctionsArn(name, region, account);
  const byArn = new Map(machines.map((m) => [arnOf(m.name), m]));
  const executions = new Map<string, Execution>();
  const running = new Set<Promise<unknown>>();
  const created = Date.now() / 1000;
  const children = new Map<string, string[]>();

  const operations: Record<string, (body: Record<string, unknown>) => unknown> = {
    ListStateMachines: () => ({
      stateMachines: machines.map((m) => ({ stateMachineArn: arnOf(m.name), name: m.name, type: 'STANDARD', creationDate: created })),
    }),
    StartExecution: (body) => {
      const machine = byArn.get(String(body.stateMachineArn));
      if (!machine) throw Object.assign(new Error(`State Machine Does Not Exist: '${String(body.stateMachineArn)}'`), { type: 'StateMachineDoesNotExist' });
      const name = String(body.name ?? randomUUID());
      const executionArn = `arn:aws:states:${region}:${account}:execution:${machine.name}:${name}`;
      if (executions.has(executionArn)) throw Object.assign(new Error(`Execution Already Exists: '${executionArn}'`), { type: 'ExecutionAlreadyExists' });
      const execution: Execution = { executionArn, stateMachineArn: arnOf(machine.name), name, status: 'RUNNING', startDate: Date.now() / 1000, input: String(body.input ?? '{}'), events: [] };
      executions.set(executionArn, execution);
      const run = runLocalStateMachine(machine.definition, JSON.parse(execution.input), {
        resources: machine.resources,
        timeScale: machine.timeScale ?? LOCAL_TIME_SCALE,
        stateMachines: Object.fromEntries(machines.map((m) => [arnOf(m.name), { definition: m.definition, name: m.name }])),
        executionName: name,
        region,
        account,
        stateMachineName: machine.name,
        onChildExecution: (child) => {
          const childName = child.executionArn.split(':').pop()!;
          const childMachine = child.executionArn.split(':').slice(-2, -1)[0]!;
          executions.set(child.executionArn, {
            executionArn: child.executionArn,
            stateMachineArn: arnOf(childMachine),
            name: childName,
            status: child.status,
            startDate: (child.events[0]?.timestamp ?? Date.now()) / 1000,
            stopDate: Date.now() / 1000,
            input: JSON.stringify((child.events[0] as { input?: unknown } | undefined)?.input ?? {}),
            ...(child.status === 'SUCCEEDED' ? { output: JSON.stringify(child.output ?? null) } : { error: child.error, cause: typeof child.cause === 'string' ? child.cause : JSON.stringify(child.cause ?? '') }),
            events: child.events.flatMap((event, i) => {
              const mapped = toHistoryEvent(event);
              return mapped ? [{ id: i + 1, previousEventId: i, ...mapped } as HistoryEvent] : [];
            }),
          });
          children.set(executionArn, [...(children.get(executionArn) ?? []), child.executionArn]);
        },
        onEvent: (event) => {
          const mapped = toHistoryEvent(event);
          if (!mapped) return;
          const id = execution.events.length + 1;
          execution.events.push({ id, previousEventId: id - 1, ...mapped } as HistoryEvent);
        },
      }).then(
        (result) => {
          execution.status = result.status;
          execution.stopDate = Date.now() / 1000;
          if (result.status === 'SUCCEEDED') execution.output = JSON.stringify(result.output ?? null);
          else {
            execution.error = result.error;
            execution.cause = typeof result.cause === 'string' ? result.cause : JSON.stringify(result.cause ?? '');
          }
        },
        (error: unknown) => {
          execution.status = 'FAILED';
          execution.stopDate = Date.now() / 1000;
          execution.error = 'States.Runtime';
          execution.cause = (error as Error).message;
        },
      );
      running.add(run);
      void run.finally(() => running.delete(run));
      return { executionArn, startDate: execution.startDate };
    },
    ListExecutions: (body) => {
      const arn = String(body.stateMachineArn);
      if (!byArn.has(arn) && ![...executions.values()].some((e) => e.stateMachineArn === arn)) {
        throw Object.assign(new Error(`State Machine Does Not Exist: '${arn}'`), { type: 'StateMachineDoesNotExist' });
      }
      const all = [...executions.values()]
        .filter((e) => e.stateMachineArn === arn && (!body.statusFilter || e.status === body.statusFilter))
        .sort((a, b) => b.startDate - a.startDate);
      const start = body.nextToken ? Number(body.nextToken) : 0;
      const max = Number(body.maxResults ?? 100) || 100;
      const page = all.slice(start, start + max).map(({ executionArn, stateMachineArn, name, status, startDate, stopDate }) => ({ executionArn, stateMachineArn, name, status, startDate, stopDate }));
      const next = start + page.length;
      return { executions: page, ...(next < all.length ? { nextToken: String(next) } : {}) };
    },
    DescribeExecution: (body) => {
      const e = executions.get(String(body.executionArn));
      if (!e) throw Object.assign(new Error(`Execution Does Not Exist: '${String(body.executionArn)}'`), { type: 'ExecutionDoesNotExist' });
      const { events: _events, ...rest } = e;
      return rest;
    },
    GetExecutionHistory: (body) => {
      const e = executions.get(String(body.executionArn));
      if (!e) throw Object.assign(new Error(`Execution Does Not Exist: '${String(body.executionArn)}'`), { type: 'ExecutionDoesNotExist' });
      const start = body.nextToken ? Number(body.nextToken) : 0;
      const max = Number(body.maxResults ?? 100) || 100;
      const page = e.events.slice(start, start + max);
      const next = start + page.length;
      return { events: page, ...(next < e.events.length ? { nextToken: String(next) } : {}) };
    },
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = operations[target.replace(/^AWSStepFunctions\./, '')];
      res.setHeader('content-type', 'application/x-amz-json-1.0');
      if (!op) {
        res.writeHead(400).end(JSON.stringify({ __type: 'UnknownOperationException', message: `${target} is not served by the local stand-in` }));
        return;
      }
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown>;
        res.writeHead(200).end(JSON.stringify(op(body)));
      } catch (error) {
        const e = error as { type?: string; message: string };
        res.writeHead(400).end(JSON.stringify({ __type: e.type ?? 'InvalidArn', message: e.message }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region,
    account,
    arnOf,
    childExecutions: (executionArn) =>
      (children.get(executionArn) ?? []).map((arn) => {
        const e = executions.get(arn)!;
        return { executionArn: arn, status: e.status, ...(e.output ? { output: JSON.parse(e.output) as unknown } : {}), ...(e.error ? { error: e.error } : {}) };
      }),
    idle: async () => {
      while (running.size) await Promise.allSettled([...running]);
    },
    stop: async () => {
      await Promise.allSettled([...running]);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
