import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * The smoke test's cleanup must run when the operator presses Ctrl-C or the
 * process is terminated: a real child process (smoke-aws-cleanup-child.ts,
 * using the registry and runWithCleanup the smoke test uses) is killed here.
 */
const CHILD = new URL('./smoke-aws-cleanup-child.ts', import.meta.url).pathname;

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function startChild(mode: 'wait' | 'slow-cleanup') {
  const dir = mkdtempSync(join(tmpdir(), 'lifeboat-smoke-signal-'));
  dirs.push(dir);
  const journal = join(dir, 'journal.json');
  const log = join(dir, 'deleted.log');
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, journal, log, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stdout += c.toString()));
  const waitFor = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (stdout.includes(text)) {
          clearInterval(timer);
          resolve();
        } else if (child.exitCode !== null) {
          clearInterval(timer);
          reject(new Error(`child exited ${child.exitCode} before "${text}":\n${stdout}`));
        }
      }, 20);
    });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, journal, log, waitFor, exited, output: () => stdout };
}

const deletedIds = (log: string) => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []);
const journalStatuses = (journal: string) => (JSON.parse(readFileSync(journal, 'utf8')) as { entries: { id: string; status: string }[] }).entries.map((e) => [e.id, e.status]);

describe('smoke:aws cleanup on signals', () => {
  it('cleans up everything it recorded, in order, when interrupted with SIGINT, and exits 130', async () => {
    // Prepare
    const run = startChild('wait');
    await run.waitFor('ready');

    // Act
    run.child.kill('SIGINT');
    const code = await run.exited;

    // Assess
    expect(code).toBe(130);
    expect(deletedIds(run.log)).toEqual(['execution', 'source-stack', 'fixture-stack']);
    expect(journalStatuses(run.journal)).toEqual([['fixture-stack', 'done'], ['source-stack', 'done'], ['execution', 'done']]);
    expect(run.output()).toMatch(/SIGINT: stopping, then cleaning up/);
    expect(run.output()).toMatch(/interrupted\s+SIGINT/);
  });

  it('cleans up the same way on SIGTERM, and exits 143', async () => {
    // Prepare
    const run = startChild('wait');
    await run.waitFor('ready');

    // Act
    run.child.kill('SIGTERM');
    const code = await run.exited;

    // Assess
    expect(code).toBe(143);
    expect(deletedIds(run.log)).toEqual(['execution', 'source-stack', 'fixture-stack']);
  });

  it('abandons the cleanup on a second Ctrl-C, leaving the journal with what is still to do', async () => {
    // Prepare
    const run = startChild('slow-cleanup');
    await run.waitFor('ready');
    run.child.kill('SIGINT');
    await run.waitFor('cleanup: fixture stack');

    // Act
    await new Promise((r) => setTimeout(r, 1_700));
    run.child.kill('SIGINT');
    const code = await run.exited;

    // Assess
    expect(code).toBe(130);
    expect(run.output()).toMatch(/abandoned the cleanup/);
    expect(deletedIds(run.log)).toEqual(['execution', 'source-stack']);
    expect(journalStatuses(run.journal)).toEqual([['fixture-stack', 'pending'], ['source-stack', 'done'], ['execution', 'done']]);
  });
});
