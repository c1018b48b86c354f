import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalLambda } from '../../local/lambda-runtime.ts';
import { runLocalStateMachine, type TaskHandler } from '../../local/state-machine-runner.ts';

/**
 * The local Lambda runtime fails as Lambda does, so the definitions' Retry and
 * Catch see what they would see on AWS: the handler's error name as
 * `errorType`, `Sandbox.Timedout` past the function's timeout (and a fresh
 * environment after it), `Runtime.ExitError` when the process dies.
 */

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lifeboat-local-lambda-'));
  writeFileSync(
    join(dir, 'index.mjs'),
    `
    class SnapshotNotReadyError extends Error { constructor(m) { super(m); this.name = 'SnapshotNotReadyError'; } }
    let calls = 0;
    export const handler = async (event) => {
      calls++;
      if (event.do === 'throw') throw new SnapshotNotReadyError('still creating');
      if (event.do === 'hang') await new Promise(() => setInterval(() => undefined, 1000));
      if (event.do === 'exit') process.exit(7);
      if (event.do === 'crash') await new Promise(() => setTimeout(() => { throw new Error('boom'); }, 0));
      return { calls, pid: process.pid, region: process.env.AWS_REGION, setting: process.env.SETTING };
    };
    `,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fn(timeoutSeconds = 1): LocalLambda {
  return new LocalLambda({ name: 'probe', modulePath: join(dir, 'index.mjs'), environment: { SETTING: 'from-template' }, timeoutSeconds, awsEnvironment: { AWS_REGION: 'eu-west-1' }, maxConcurrency: 2, onLog: () => undefined });
}

describe('the local Lambda runtime', () => {
  it('runs the module with the template environment and keeps the environment warm between invocations', async () => {
    const lambda = fn();
    try {
      const first = (await lambda.invoke({})) as { calls: number; pid: number; region: string; setting: string };
      const second = (await lambda.invoke({})) as { calls: number; pid: number };
      expect(first).toMatchObject({ calls: 1, region: 'eu-west-1', setting: 'from-template' });
      expect(second).toMatchObject({ calls: 2, pid: first.pid });
      expect(lambda.environments).toBe(1);
    } finally {
      await lambda.stop();
    }
  });

  it("reports the handler's error name as errorType, which a Retry on that name matches", async () => {
    // Prepare: a task retried on SnapshotNotReadyError, then caught.
    const lambda = fn();
    const definition = {
      StartAt: 'Check',
      States: {
        Check: { Type: 'Task', Resource: 'arn:fn', Retry: [{ ErrorEquals: ['SnapshotNotReadyError'], IntervalSeconds: 1, MaxAttempts: 2 }], Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Caught' }], End: true },
        Caught: { Type: 'Pass', End: true },
      },
    };
    try {
      // Act
      const run = await runLocalStateMachine(definition, { do: 'throw' }, { resources: { 'arn:fn': lambda.asTask() as TaskHandler }, timeScale: 0.001 });

      // Assess: three attempts (two retries), then the Catch with Lambda's error shape.
      expect(run.status).toBe('SUCCEEDED');
      expect(lambda.events).toHaveLength(3);
      const caught = run.output as { Error: string; Cause: string };
      expect(caught.Error).toBe('SnapshotNotReadyError');
      expect(JSON.parse(caught.Cause)).toMatchObject({ errorType: 'SnapshotNotReadyError', errorMessage: 'still creating' });
    } finally {
      await lambda.stop();
    }
  });

  it('fails an invocation past the timeout with Sandbox.Timedout and starts a fresh environment for the next one', async () => {
    const lambda = fn(1);
    try {
      const first = (await lambda.invoke({})) as { pid: number };
      const started = Date.now();
      await expect(lambda.invoke({ do: 'hang' })).rejects.toMatchObject({ name: 'Sandbox.Timedout', errorMessage: expect.stringMatching(/Task timed out after 1\.00 seconds/) });
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      const after = (await lambda.invoke({})) as { pid: number; calls: number };
      expect(after.pid).not.toBe(first.pid);
      expect(after.calls).toBe(1);
    } finally {
      await lambda.stop();
    }
  });

  it('fails with Runtime.ExitError when the process exits or an uncaught error kills it', async () => {
    const lambda = fn(5);
    try {
      await expect(lambda.invoke({ do: 'exit' })).rejects.toMatchObject({ name: 'Runtime.ExitError', errorMessage: expect.stringMatching(/exit status 7/) });
      await expect(lambda.invoke({ do: 'crash' })).rejects.toMatchObject({ name: 'Runtime.ExitError' });
      expect(await lambda.invoke({})).toMatchObject({ calls: 1 });
    } finally {
      await lambda.stop();
    }
  });
});
