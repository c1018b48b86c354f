import { DescribeExecutionCommand, GetExecutionHistoryCommand, StartExecutionCommand, StopExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { LifeboatConfig } from '../../functions/lib/config/schema.ts';
import { describeEvent, runInput, stateMachineName } from '../../cli/commands/run.ts';
import { sleep } from './cleanup.ts';

/**
 * Starts lifeboat's deployed state machines exactly as their schedules (and
 * `lifeboat run`) would: the state machine name and the input come from
 * cli/commands/run.ts, so when the schedule inputs change, the smoke test follows.
 */
export type Workflow = 'backup' | 'retention' | 'drill';

export interface StartedExecution {
  readonly workflow: Workflow;
  readonly executionArn: string;
  readonly stateMachineArn: string;
  readonly input: unknown;
}

export function stateMachineArn(config: LifeboatConfig, workflow: Workflow, where: { partition?: string; region: string; account: string }): string {
  return `arn:${where.partition ?? 'aws'}:states:${where.region}:${where.account}:stateMachine:${stateMachineName(config, workflow)}`;
}

export async function startWorkflow(
  sfn: SFNClient,
  config: LifeboatConfig,
  workflow: Workflow,
  flags: { plan?: string; database?: string },
  where: { partition?: string; region: string; account: string },
  executionName: string,
): Promise<StartedExecution> {
  const arn = stateMachineArn(config, workflow, where);
  const input = runInput(workflow, config, flags);
  const started = await sfn.send(new StartExecutionCommand({ stateMachineArn: arn, input: JSON.stringify(input), name: executionName }));
  return { workflow, executionArn: started.executionArn!, stateMachineArn: arn, input };
}

export interface FollowedExecution {
  readonly executionArn: string;
  /** SUCCEEDED, FAILED, TIMED_OUT, ABORTED, or RUNNING when we stopped waiting. */
  readonly status: string;
  readonly error?: string;
  readonly cause?: string;
  readonly output?: unknown;
  /** We gave up waiting (timeout); the execution may still run. */
  readonly gaveUp?: boolean;
}

/**
 * Follows an execution to its end, printing each state as `lifeboat run`
 * does (describeEvent). Returns when it ends, when `timeoutMs` passes, or
 * throws the abort reason when `signal` aborts.
 */
export async function followExecution(
  sfn: SFNClient,
  executionArn: string,
  options: { print: (line: string) => void; pollMs?: number; timeoutMs: number; signal?: AbortSignal; label?: string },
): Promise<FollowedExecution> {
  const deadline = Date.now() + options.timeoutMs;
  const label = options.label ? `${options.label} ` : '';
  let seen = 0;
  for (;;) {
    const description = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    let nextToken: string | undefined;
    do {
      const page = await sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken, maxResults: 100 }));
      for (const event of page.events ?? []) {
        if ((event.id ?? 0) <= seen) continue;
        seen = event.id ?? seen + 1;
        const line = describeEvent(event);
        if (line) options.print(`${label}${line}`);
      }
      nextToken = page.nextToken;
    } while (nextToken);
    if (description.status !== 'RUNNING') {
      let output: unknown;
      try {
        output = description.output ? JSON.parse(description.output) : undefined;
      } catch {
        output = description.output;
      }
      return { executionArn, status: description.status ?? 'UNKNOWN', error: description.error, cause: description.cause, output };
    }
    if (Date.now() >= deadline) return { executionArn, status: 'RUNNING', gaveUp: true };
    await sleep(options.pollMs ?? 15_000, options.signal);
  }
}

/** Stops an execution if it still runs; a finished or unknown one is fine. */
export async function stopExecutionIfRunning(sfn: SFNClient, executionArn: string): Promise<'stopped' | 'not running'> {
  const description = await sfn.send(new DescribeExecutionCommand({ executionArn }));
  if (description.status !== 'RUNNING') return 'not running';
  await sfn.send(new StopExecutionCommand({ executionArn, error: 'SmokeTestCleanup', cause: 'npm run smoke:aws is cleaning up' }));
  return 'stopped';
}
