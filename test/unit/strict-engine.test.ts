import { describe, expect, it } from 'vitest';
import { AWS_STEP_FUNCTIONS_LIMITS, localFunctionArn, localStateMachineArn, runLocalStateMachine, type LocalRunResult } from '../../local/state-machine-runner.ts';

/**
 * The local engine is at least as strict as Step Functions where lifeboat can
 * hit a limit: payload size, history length, waits that take time, child
 * executions with their own history. Each test states the AWS rule it imitates.
 */
const FN = localFunctionArn('probe');
const echo = async (input: unknown) => input;

describe('payload limits (256 KiB per state input, output and task result)', () => {
  it('fails the execution with States.DataLimitExceeded, which a Catch on States.ALL does not catch, when a state output is too large', async () => {
    // Prepare: a task returning ~300 KB, with a catch-all that would hide any ordinary error.
    const definition = {
      StartAt: 'Big',
      States: {
        Big: { Type: 'Task', Resource: FN, Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Caught' }], End: true },
        Caught: { Type: 'Succeed' },
      },
    };
    // Act
    const run = await runLocalStateMachine(definition, {}, { resources: { [FN]: async () => ({ blob: 'x'.repeat(300_000) }) } });
    // Assess
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('States.DataLimitExceeded');
    expect(String(run.cause)).toMatch(/the result of task "Big" is 300011 bytes; Step Functions allows at most 262144/);
  });

  it('fails when a Pass or Map output grows past the limit even though every task result is small', async () => {
    // Prepare: 40 items of 7 KB each, aggregated by an inline Map into ~280 KB.
    const definition = {
      StartAt: 'Each',
      States: {
        Each: { Type: 'Map', ItemsPath: '$.items', ItemProcessor: { ProcessorConfig: { Mode: 'INLINE' }, StartAt: 'Work', States: { Work: { Type: 'Task', Resource: FN, End: true } } }, End: true },
      },
    };
    const items = Array.from({ length: 40 }, (_, i) => ({ i, pad: 'y'.repeat(7_000) }));
    // Act
    const run = await runLocalStateMachine(definition, { items: items.slice(0, 30) }, { resources: { [FN]: echo } });
    const tooBig = await runLocalStateMachine(definition, { items: items.slice(0, 30).map((x) => ({ i: x.i })) }, { resources: { [FN]: async (x) => ({ ...(x as object), pad: 'z'.repeat(9_000) }) } });
    // Assess: the 210 KB input passes; 30 results of 9 KB (270 KB) do not.
    expect(run.status).toBe('SUCCEEDED');
    expect(run.stats.peakPayloadBytes).toBeGreaterThan(200_000);
    expect(tooBig).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
    expect(String(tooBig.cause)).toMatch(/the output of state "Each"/);
  });

  it('refuses an execution input over 256 KiB before anything runs', async () => {
    const calls: unknown[] = [];
    const run = await runLocalStateMachine({ StartAt: 'T', States: { T: { Type: 'Task', Resource: FN, End: true } } }, { blob: 'x'.repeat(AWS_STEP_FUNCTIONS_LIMITS.payloadBytes) }, { resources: { [FN]: async (x) => (calls.push(x), x) } });
    expect(run).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
    expect(calls).toEqual([]);
  });
});

describe('execution history (25,000 events, counted as AWS counts them)', () => {
  it('counts a Lambda task as 5 events, each retry as 3 more, a Pass and a Succeed as 2 each, the execution as 2', async () => {
    // Prepare: the task fails once (retried), then succeeds.
    let calls = 0;
    const flaky = async (input: unknown) => {
      if (calls++ === 0) throw Object.assign(new Error('try again'), { name: 'ThrottledError' });
      return input;
    };
    const definition = {
      StartAt: 'Call',
      States: {
        Call: { Type: 'Task', Resource: FN, Retry: [{ ErrorEquals: ['ThrottledError'], IntervalSeconds: 1, MaxAttempts: 2 }], Next: 'Shape' },
        Shape: { Type: 'Pass', Next: 'Done' },
        Done: { Type: 'Succeed' },
      },
    };
    // Act
    const run = await runLocalStateMachine(definition, {}, { resources: { [FN]: flaky }, timeScale: 0.001 });
    // Assess: 2 (execution) + 5 + 3 (retry) + 2 (Pass) + 2 (Succeed).
    expect(run.status).toBe('SUCCEEDED');
    expect(run.stats.historyEvents).toBe(14);
  });

  it('counts inline Map iterations in the parent history: Map 4, plus 2 per iteration and its states', async () => {
    const definition = {
      StartAt: 'Each',
      States: { Each: { Type: 'Map', ItemsPath: '$.items', ItemProcessor: { StartAt: 'Noop', States: { Noop: { Type: 'Pass', End: true } } }, End: true } },
    };
    const run = await runLocalStateMachine(definition, { items: [1, 2, 3] }, { resources: {} });
    // 2 (execution) + 4 (Map) + 3 × (2 iteration + 2 Pass)
    expect(run.stats.historyEvents).toBe(18);
  });

  it('fails an execution whose history passes the quota (a poll loop that never ends)', async () => {
    // Prepare: poll forever; a small quota keeps the test short.
    const definition = {
      StartAt: 'Poll',
      States: {
        Poll: { Type: 'Task', Resource: FN, ResultPath: '$.check', Next: 'Ready?' },
        'Ready?': { Type: 'Choice', Choices: [{ Variable: '$.check.ready', BooleanEquals: true, Next: 'Done' }], Default: 'Wait' },
        Wait: { Type: 'Wait', Seconds: 10, Next: 'Poll' },
        Done: { Type: 'Succeed' },
      },
    };
    // Act
    const run = await runLocalStateMachine(definition, {}, { resources: { [FN]: async () => ({ ready: false }) }, timeScale: 0.0001, limits: { historyEvents: 500 } });
    // Assess: 9 events a poll, so it stops after about 55 polls.
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('States.Runtime');
    expect(String(run.cause)).toMatch(/history .* passed 500 events/);
  });
});

describe('time: Wait and Retry intervals are scaled, not skipped', () => {
  it('waits Seconds and SecondsPath scaled, and backs off retries exponentially', async () => {
    // Prepare: Wait 2 s, Wait $.seconds (3 s), then a task failing twice with 1 s × 2^n backoff (1 + 2 s).
    let failures = 0;
    const definition = {
      StartAt: 'Fixed',
      States: {
        Fixed: { Type: 'Wait', Seconds: 2, Next: 'FromInput' },
        FromInput: { Type: 'Wait', SecondsPath: '$.seconds', Next: 'Flaky' },
        Flaky: { Type: 'Task', Resource: FN, Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 1, BackoffRate: 2, MaxAttempts: 3, JitterStrategy: 'NONE' }], End: true },
      },
    };
    const handler = async (input: unknown) => {
      if (failures++ < 2) throw new Error('not yet');
      return input;
    };
    // Act
    const started = Date.now();
    const run = await runLocalStateMachine(definition, { seconds: 3 }, { resources: { [FN]: handler }, timeScale: 0.05 });
    const elapsed = Date.now() - started;
    // Assess: (2 + 3 + 1 + 2) s × 0.05 = 400 ms at least.
    expect(run.status).toBe('SUCCEEDED');
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('refuses a time scale of 0', async () => {
    await expect(runLocalStateMachine({ StartAt: 'P', States: { P: { Type: 'Pass', End: true } } }, {}, { resources: {}, timeScale: 0 })).rejects.toThrow(/never skipped/);
  });
});

describe('Map concurrency', () => {
  it('never runs more iterations at once than MaxConcurrencyPath allows', async () => {
    let running = 0;
    let peak = 0;
    const handler = async (input: unknown) => {
      peak = Math.max(peak, ++running);
      await new Promise((r) => setTimeout(r, 15));
      running--;
      return input;
    };
    const definition = {
      StartAt: 'Each',
      States: { Each: { Type: 'Map', ItemsPath: '$.items', MaxConcurrencyPath: '$.max', ItemProcessor: { StartAt: 'Work', States: { Work: { Type: 'Task', Resource: FN, End: true } } }, End: true } },
    };
    const run = await runLocalStateMachine(definition, { items: Array.from({ length: 12 }, (_, i) => i), max: 3 }, { resources: { [FN]: handler } });
    expect(run.status).toBe('SUCCEEDED');
    expect(peak).toBe(3);
  });
});

describe('child executions (states:startExecution.sync:2)', () => {
  const childArn = localStateMachineArn('child');
  const child = {
    StartAt: 'Work',
    States: {
      Work: { Type: 'Task', Resource: FN, Next: 'Fail?' },
      'Fail?': { Type: 'Choice', Choices: [{ And: [{ Variable: '$.fail', IsPresent: true }, { Variable: '$.fail', BooleanEquals: true }], Next: 'Failed' }], Default: 'Done' },
      Failed: { Type: 'Fail', Error: 'ChildFailed', Cause: 'asked to' },
      Done: { Type: 'Pass', Parameters: { 'id.$': '$.id', status: 'ok' }, End: true },
    },
  };
  const parent = {
    StartAt: 'Each',
    States: {
      Each: {
        Type: 'Map',
        ItemsPath: '$.items',
        ItemProcessor: {
          StartAt: 'Start',
          States: {
            Start: {
              Type: 'Task',
              Resource: 'arn:aws:states:::states:startExecution.sync:2',
              Parameters: { StateMachineArn: childArn, 'Input.$': '$' },
              ResultSelector: { 'status.$': '$.Output.status', 'id.$': '$.Output.id' },
              Catch: [{ ErrorEquals: ['States.TaskFailed'], ResultPath: '$.error', Next: 'Failed' }],
              End: true,
            },
            Failed: { Type: 'Pass', Parameters: { 'id.$': '$.id', status: 'failed', 'cause.$': '$.error.Cause' }, End: true },
          },
        },
        End: true,
      },
    },
  };

  it('runs each child with its own history, returns its parsed output, and reports a failed child as States.TaskFailed', async () => {
    // Prepare
    const children: LocalRunResult[] = [];
    // Act
    const run = await runLocalStateMachine(
      parent,
      { items: [{ id: 'a' }, { id: 'b', fail: true }] },
      { resources: { [FN]: echo }, stateMachines: { [childArn]: { definition: child } }, onChildExecution: (c) => children.push(c) },
    );
    // Assess
    expect(run.status).toBe('SUCCEEDED');
    const [ok, failed] = run.output as Array<{ id: string; status: string; cause?: string }>;
    expect(ok).toEqual({ id: 'a', status: 'ok' });
    expect(failed).toMatchObject({ id: 'b', status: 'failed' });
    expect(JSON.parse(failed!.cause!)).toMatchObject({ Status: 'FAILED', Error: 'ChildFailed', Cause: 'asked to' });
    expect(run.stats.childExecutions).toBe(2);
    expect(children.map((c) => c.status).sort()).toEqual(['FAILED', 'SUCCEEDED']);
    // The parent counts each child as one .sync task (6 events), not the child's states.
    // 2 + 4 (Map) + 2 × (2 iteration + 6 task) + 2 (the Pass of the failed one)
    expect(run.stats.historyEvents).toBe(24);
    expect(children.every((c) => c.stats.historyEvents >= 9)).toBe(true);
  });

  it('fails the task when the child state machine does not exist', async () => {
    const run = await runLocalStateMachine(
      { StartAt: 'Start', States: { Start: { Type: 'Task', Resource: 'arn:aws:states:::states:startExecution.sync:2', Parameters: { StateMachineArn: localStateMachineArn('missing'), Input: {} }, End: true } } },
      {},
      { resources: {}, stateMachines: {} },
    );
    expect(run).toMatchObject({ status: 'FAILED', error: 'StepFunctions.StateMachineDoesNotExistException' });
  });
});
