import { describe, expect, it } from 'vitest';
import { SendTaskFailureCommand, SendTaskHeartbeatCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import type { DumpTaskOutput } from '../../functions/dump/handler.ts';
import { TASK_HANDLER_ENV, TASK_INPUT_ENV, TASK_TOKEN_ENV, TaskTokenMissingError, jobHandler, runFargateTask, type TaskRunner } from '../../functions/dump/fargate-task.ts';
import { resolveBackupRun } from '../../functions/lib/config/targets.ts';
import { deployedConfig } from '../harness/config.ts';
import { DumpFailedError } from '../../functions/lib/errors.ts';

/** Records every command sent, answers with `respond`. */
function recordingSfn(respond: (command: unknown) => Promise<unknown> = async () => ({})) {
  const sent: unknown[] = [];
  return {
    sent,
    client: {
      send: (command: unknown) => {
        sent.push(command);
        return respond(command);
      },
    } as never,
  };
}

const output: DumpTaskOutput = {
  databaseId: 'orders',
  backupId: '20261121T030000Z-abc123',
  bucket: 'b',
  dataKey: 'backups/orders/20261121T030000Z-abc123/dump.bin',
  manifestKey: 'backups/orders/20261121T030000Z-abc123/manifest.json',
  rawBytes: 10,
  storedBytes: 20,
  sha256: 'a'.repeat(64),
  consistentAt: '2026-11-21T03:00:00.000Z',
};
const input = { planId: 'nightly', database: { id: 'orders', connection: { database: 'orders', secretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:x' } } };
const env = { [TASK_INPUT_ENV]: JSON.stringify(input), [TASK_TOKEN_ENV]: 'token-123', POWERTOOLS_SERVICE_NAME: 'lifeboat-dump' };
const quiet = () => undefined;

describe('Fargate dump task entrypoint', () => {
  it('runs the handler with the task input and reports its output with SendTaskSuccess', async () => {
    // Prepare
    const sfn = recordingSfn();
    const seen: unknown[] = [];
    const handler: TaskRunner = async (event) => {
      seen.push(event);
      return output;
    };

    // Act
    const outcome = await runFargateTask({ sfn: sfn.client, handler, env, log: quiet });

    // Assess
    expect(seen).toEqual([input]);
    expect(outcome).toEqual({ status: 'succeeded', output });
    expect(sfn.sent).toHaveLength(1);
    expect(sfn.sent[0]).toBeInstanceOf(SendTaskSuccessCommand);
    expect((sfn.sent[0] as SendTaskSuccessCommand).input).toEqual({ taskToken: 'token-123', output: JSON.stringify(output) });
  });

  it('reports a failure with the error class name as `error` and Lambda-shaped JSON as `cause`', async () => {
    // Prepare
    const sfn = recordingSfn();
    const handler: TaskRunner = async () => {
      throw new DumpFailedError('pg_dump exited with status 1 for database "orders": password=hunter22 rejected. Next step: fix the secret.');
    };

    // Act
    const outcome = await runFargateTask({ sfn: sfn.client, handler, env, log: quiet });

    // Assess
    expect(outcome.status).toBe('failed');
    const command = sfn.sent[0] as SendTaskFailureCommand;
    expect(command).toBeInstanceOf(SendTaskFailureCommand);
    expect(command.input.taskToken).toBe('token-123');
    expect(command.input.error).toBe('DumpFailedError');
    const cause = JSON.parse(command.input.cause!) as Record<string, unknown>;
    expect(Object.keys(cause).sort()).toEqual(['errorMessage', 'errorType']);
    expect(cause.errorType).toBe('DumpFailedError');
    expect(cause.errorMessage).toMatch(/^pg_dump exited with status 1 for database "orders"/);
    expect(cause.errorMessage).not.toContain('hunter22');
  });

  it('fails the task as ConfigError when the input is missing or not JSON', async () => {
    const sfn = recordingSfn();
    const handler: TaskRunner = async () => output;

    const outcome = await runFargateTask({ sfn: sfn.client, handler, env: { ...env, [TASK_INPUT_ENV]: '{not json' }, log: quiet });

    expect(outcome.status).toBe('failed');
    expect((sfn.sent[0] as SendTaskFailureCommand).input.error).toBe('ConfigError');
  });

  it('refuses to run without a task token, since it could report to no one', async () => {
    const sfn = recordingSfn();
    const error = await runFargateTask({ sfn: sfn.client, handler: async () => output, env: { [TASK_INPUT_ENV]: '{}' }, log: quiet }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskTokenMissingError);
    expect(sfn.sent).toEqual([]);
  });

  it('sends heartbeats while the dump runs', async () => {
    // Prepare: a dump that takes a few heartbeat intervals.
    const sfn = recordingSfn();
    const handler: TaskRunner = () => new Promise((resolve) => setTimeout(() => resolve(output), 60));

    // Act
    await runFargateTask({ sfn: sfn.client, handler, env, heartbeatIntervalMs: 10, log: quiet });

    // Assess
    const heartbeats = sfn.sent.filter((c) => c instanceof SendTaskHeartbeatCommand) as SendTaskHeartbeatCommand[];
    expect(heartbeats.length).toBeGreaterThanOrEqual(2);
    expect(heartbeats[0]!.input).toEqual({ taskToken: 'token-123' });
    expect(sfn.sent.at(-1)).toBeInstanceOf(SendTaskSuccessCommand);
  });

  it('stops when a heartbeat says the state machine gave up, and reports nothing more', async () => {
    // Prepare
    const timedOut = Object.assign(new Error('Task Timed Out'), { name: 'TaskTimedOut' });
    const sfn = recordingSfn(async (command) => {
      if (command instanceof SendTaskHeartbeatCommand) throw timedOut;
      return {};
    });
    const abandoned: string[] = [];
    let finish: (value: DumpTaskOutput) => void = () => undefined;
    const handler: TaskRunner = () => new Promise((resolve) => (finish = resolve));

    // Act
    const run = runFargateTask({ sfn: sfn.client, handler, env, heartbeatIntervalMs: 5, log: quiet, onAbandoned: (reason) => abandoned.push(reason) });
    await new Promise((resolve) => setTimeout(resolve, 40));
    finish(output);
    const outcome = await run;

    // Assess
    expect(abandoned[0]).toMatch(/TaskTimedOut/);
    expect(outcome.status).toBe('abandoned');
    expect(sfn.sent.filter((c) => c instanceof SendTaskSuccessCommand || c instanceof SendTaskFailureCommand)).toEqual([]);
  });
});

describe('the job a Fargate task runs (LIFEBOAT_TASK_HANDLER, set by its task definition)', () => {
  it('runs the vault copy handler for a vault-copy task: without a vault configured it answers "skipped", as the function does', async () => {
    // Prepare: the vault copy handler with no VAULT_* in its environment.
    const handler = jobHandler({ [TASK_HANDLER_ENV]: 'vault-copy' });
    const sfn = recordingSfn();

    // Act
    const outcome = await runFargateTask({ sfn: sfn.client, handler, env: { ...env, [TASK_INPUT_ENV]: JSON.stringify({ planId: 'nightly', databaseId: 'orders', bucket: 'acme-backups', manifestKey: output.manifestKey }) }, log: quiet });

    // Assess
    expect(outcome).toEqual({ status: 'succeeded', output: { status: 'skipped', reason: 'no vault is configured' } });
    expect(sfn.sent.filter((c) => c instanceof SendTaskSuccessCommand)).toHaveLength(1);
  });

  it('reports an unknown job as a ConfigError through the task token, so the state machine alerts at once', async () => {
    // Prepare
    const sfn = recordingSfn();

    // Act
    const outcome = await runFargateTask({ sfn: sfn.client, handler: jobHandler({ [TASK_HANDLER_ENV]: 'restore-everything' }), env, log: quiet });

    // Assess
    expect(outcome).toMatchObject({ status: 'failed', error: 'ConfigError' });
    const failure = sfn.sent.find((c) => c instanceof SendTaskFailureCommand) as SendTaskFailureCommand;
    expect(failure.input.cause).toMatch(/LIFEBOAT_TASK_HANDLER is \\"restore-everything\\", which is not a lifeboat Fargate job \(dump, vault-copy, drill-restore\)/);
  });
});

describe('where a dump is copied to the vault (the plan function decides from the deployed config)', () => {
  const deployed = (vault: boolean) =>
    deployedConfig([
      { id: 'big', connection: { database: 'big', secretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:big' }, dump: { runner: 'fargate' } },
      { id: 'small', connection: { database: 'small', secretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:small' } },
    ], vault ? { vault: { account: '222222222222', region: 'eu-central-1', retentionDays: 30 } } : {});

  it('on Fargate for a database dumped on Fargate when there is a vault, else with the function', async () => {
    const withVault = await deployed(true)();
    const withoutVault = await deployed(false)();
    expect(resolveBackupRun(withVault, { planId: 'nightly' }).databases).toEqual([
      { id: 'big', dumpRunner: 'fargate', vaultCopyRunner: 'fargate' },
      { id: 'small', dumpRunner: 'lambda', vaultCopyRunner: 'lambda' },
    ]);
    expect(resolveBackupRun(withoutVault, { planId: 'nightly' }).databases.map((d) => d.vaultCopyRunner)).toEqual(['lambda', 'lambda']);
  });
});
