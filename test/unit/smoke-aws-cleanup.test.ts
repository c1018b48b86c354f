import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CleanupRegistry, runWithCleanup, sleep, type CleanupAction } from '../../scripts/smoke-aws/cleanup.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function journalPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lifeboat-smoke-cleanup-'));
  dirs.push(dir);
  return join(dir, 'journal.json');
}

/** Actions that only note what they deleted, in order. */
function recorder(fail: Set<string> = new Set()) {
  const calls: string[] = [];
  const action: CleanupAction = async (entry) => {
    calls.push(entry.id);
    if (fail.has(entry.id)) throw new Error(`${entry.id} refused`);
    return { status: 'done', detail: `deleted ${entry.id}` };
  };
  return { calls, actions: { thing: action } };
}

describe('smoke:aws cleanup registry', () => {
  it('deletes in order: lower order first, and the newest first among equals', async () => {
    // Prepare
    const { calls, actions } = recorder();
    const registry = new CleanupRegistry({ actions });
    registry.record({ id: 'fixture-stack', kind: 'thing', order: 60, description: 'fixture' });
    registry.record({ id: 'source-stack', kind: 'thing', order: 30, description: 'source' });
    registry.record({ id: 'execution-1', kind: 'thing', order: 10, description: 'first execution' });
    registry.record({ id: 'execution-2', kind: 'thing', order: 10, description: 'second execution' });
    registry.record({ id: 'vault-stack', kind: 'thing', order: 50, description: 'vault' });

    // Act
    await registry.runAll();

    // Assess
    expect(calls).toEqual(['execution-2', 'execution-1', 'source-stack', 'vault-stack', 'fixture-stack']);
    expect(registry.clean).toBe(true);
  });

  it('is idempotent: a second run deletes nothing again, and retries only what failed', async () => {
    // Prepare
    const fail = new Set(['b']);
    const { calls, actions } = recorder(fail);
    const registry = new CleanupRegistry({ actions });
    for (const id of ['a', 'b', 'c']) registry.record({ id, kind: 'thing', order: 1, description: id });

    // Act
    const first = await registry.runAll();
    fail.clear();
    await registry.runAll();
    await registry.runAll();

    // Assess
    expect(first.find((e) => e.id === 'b')).toMatchObject({ status: 'failed', detail: 'Error: b refused' });
    expect(first.filter((e) => e.status === 'done').map((e) => e.id).sort()).toEqual(['a', 'c']);
    expect(calls).toEqual(['c', 'b', 'a', 'b']);
    expect(registry.clean).toBe(true);
  });

  it('keeps going past a failing deletion and an unknown kind, reporting each', async () => {
    // Prepare
    const { calls, actions } = recorder(new Set(['breaks']));
    const registry = new CleanupRegistry({ actions });
    registry.record({ id: 'before', kind: 'thing', order: 1, description: 'before' });
    registry.record({ id: 'breaks', kind: 'thing', order: 2, description: 'breaks' });
    registry.record({ id: 'mystery', kind: 'no-such-kind', order: 3, description: 'mystery' });
    registry.record({ id: 'after', kind: 'thing', order: 4, description: 'after' });

    // Act
    const result = await registry.runAll();

    // Assess
    expect(calls).toEqual(['before', 'breaks', 'after']);
    expect(result.map((e) => [e.id, e.status])).toEqual([['before', 'done'], ['breaks', 'failed'], ['mystery', 'failed'], ['after', 'done']]);
    expect(result.find((e) => e.id === 'mystery')!.detail).toMatch(/no cleanup action for "no-such-kind"/);
    expect(registry.problems().map((e) => e.id)).toEqual(['breaks', 'mystery']);
  });

  it('shares one run between concurrent callers', async () => {
    // Prepare
    let calls = 0;
    const registry = new CleanupRegistry({
      actions: {
        slow: async () => {
          calls++;
          await sleep(20);
          return { status: 'done' };
        },
      },
    });
    registry.record({ id: 'x', kind: 'slow', order: 1, description: 'x' });

    // Act
    const [a, b] = await Promise.all([registry.runAll(), registry.runAll()]);

    // Assess
    expect(calls).toBe(1);
    expect(a).toEqual(b);
  });

  it('runs what an action discovers in the same pass, in its order', async () => {
    // Prepare
    const calls: string[] = [];
    const registry = new CleanupRegistry({
      actions: {
        stack: async () => {
          calls.push('stack');
          return { status: 'done', discovered: [{ id: 'retained-bucket', kind: 'bucket', order: 31, description: 'bucket the stack kept' }] };
        },
        bucket: async (e) => {
          calls.push(e.id);
          return { status: 'kept', detail: 'locked until tomorrow' };
        },
        later: async () => {
          calls.push('later');
          return { status: 'done' };
        },
      },
    });
    registry.record({ id: 'stack', kind: 'stack', order: 30, description: 'stack' });
    registry.record({ id: 'later', kind: 'later', order: 40, description: 'later' });

    // Act
    await registry.runAll();

    // Assess
    expect(calls).toEqual(['stack', 'retained-bucket', 'later']);
    expect(registry.clean).toBe(false);
    expect(registry.problems()).toEqual([]);
  });

  it('journals every entry before and after cleanup, and a loaded journal resumes only what is not done', async () => {
    // Prepare
    const path = journalPath();
    const fail = new Set(['stuck']);
    const first = recorder(fail);
    const registry = new CleanupRegistry({ actions: first.actions, journalPath: path, meta: { name: 'smoke-x', vaultProfile: 'vault' } });
    registry.record({ id: 'gone', kind: 'thing', order: 1, description: 'gone', params: { bucket: 'b1' } });
    registry.record({ id: 'stuck', kind: 'thing', order: 2, description: 'stuck' });
    const beforeCleanup = JSON.parse(readFileSync(path, 'utf8')) as { entries: { id: string; status: string }[] };

    // Act
    await registry.runAll();
    const second = recorder();
    const resumed = CleanupRegistry.load(path, { actions: second.actions });
    await resumed.runAll();

    // Assess
    expect(beforeCleanup.entries.map((e) => [e.id, e.status])).toEqual([['gone', 'pending'], ['stuck', 'pending']]);
    expect(resumed.meta).toEqual({ name: 'smoke-x', vaultProfile: 'vault' });
    expect(second.calls).toEqual(['stuck']);
    expect(resumed.entries().find((e) => e.id === 'gone')!.params).toEqual({ bucket: 'b1' });
    expect(JSON.parse(readFileSync(path, 'utf8')).entries.every((e: { status: string }) => e.status === 'done')).toBe(true);
  });

  it('resolves an entry that needs no cleanup, so it is never run', async () => {
    // Prepare
    const { calls, actions } = recorder();
    const registry = new CleanupRegistry({ actions });
    registry.record({ id: 'finished-execution', kind: 'thing', order: 10, description: 'execution' });
    registry.record({ id: 'stack', kind: 'thing', order: 30, description: 'stack' });

    // Act
    registry.resolve('finished-execution', 'ended SUCCEEDED');
    await registry.runAll();

    // Assess
    expect(calls).toEqual(['stack']);
  });

  it('cleans up after the main flow fails, and hands back the failure', async () => {
    // Prepare
    const { calls, actions } = recorder();
    const registry = new CleanupRegistry({ actions });

    // Act
    const outcome = await runWithCleanup(
      registry,
      async () => {
        registry.record({ id: 'half-made', kind: 'thing', order: 1, description: 'half made' });
        throw new Error('deploy failed');
      },
      { log: () => {}, abandon: () => {} },
    );

    // Assess
    expect((outcome.error as Error).message).toBe('deploy failed');
    expect(outcome.interrupted).toBeUndefined();
    expect(calls).toEqual(['half-made']);
    expect(process.listenerCount('SIGINT')).toBe(0);
  });

  it('ends a wait at once when aborted, with the abort reason', async () => {
    // Prepare
    const controller = new AbortController();
    const started = Date.now();

    // Act
    const waiting = sleep(60_000, controller.signal);
    controller.abort(new Error('stop'));

    // Assess
    await expect(waiting).rejects.toThrow('stop');
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
