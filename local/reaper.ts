import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/**
 * A watcher for local runs (the demo) that cleans up after a process that died
 * without cleaning up itself: killed with SIGKILL, crashed, or cut short by a
 * wrapper (tsx kills its child 30 ms after relaying a Ctrl-C it did not see
 * acknowledged). The process registers what it starts (process groups, and a
 * work directory that holds its PostgreSQL clusters and temp files) in a small
 * file; a detached watcher polls the process and, once it is gone, stops every
 * cluster in the work directory, kills the processes and removes the directory.
 * A normal exit calls `done()`, which removes the file and stops the watcher.
 */
export interface Reaper {
  /** A process (group leader) to kill: SIGTERM to its group, then SIGKILL. */
  process(pid: number): void;
  /** A directory to remove, after stopping every local cluster in it (`lifeboat-pg-*\/data`, as postgres-cluster.ts lays them out). */
  workDir(path: string): void;
  /** Everything was cleaned up normally: forget it all and stop the watcher. */
  done(): void;
}

type Entry = { kind: 'process'; pid: number } | { kind: 'workDir'; path: string };

const SELF = fileURLToPath(import.meta.url);

/** Starts the watcher for this process; it runs detached, in its own process group. */
export function startReaper(): Reaper {
  const file = join(tmpdir(), `lifeboat-reaper-${process.pid}.jsonl`);
  const add = (entry: Entry) => appendFileSync(file, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
  const watcher = spawn(process.execPath, ['--import', import.meta.resolve('tsx/esm'), SELF, String(process.pid), file], { detached: true, stdio: 'ignore' });
  watcher.unref();
  return {
    process: (pid) => add({ kind: 'process', pid }),
    workDir: (path) => add({ kind: 'workDir', path }),
    done: () => {
      rmSync(file, { force: true });
      try {
        watcher.kill('SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}

/** Whether `pid` runs; a zombie (exited, not yet reaped by its new parent) does not. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
  } catch {
    return true;
  }
}

async function killGroup(pid: number): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-pid, s);
    } catch {
      try {
        process.kill(pid, s);
      } catch {
        // gone
      }
    }
  };
  signal('SIGTERM');
  for (let i = 0; i < 60 && alive(pid); i++) await delay(50);
  if (alive(pid)) signal('SIGKILL');
}

/** Immediate shutdown (SIGQUIT) of the postmaster serving `dataDir`, then removal of its lifeboat-pg-* root. */
async function stopCluster(dataDir: string): Promise<void> {
  const root = dirname(dataDir);
  if (!/^lifeboat-pg-/.test(basename(root))) return;
  const pidFile = join(dataDir, 'postmaster.pid');
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[0]) : NaN;
  let ours = false;
  try {
    ours = Number.isInteger(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(dataDir);
  } catch {
    // no /proc entry: not running
  }
  if (ours) {
    process.kill(pid, 'SIGQUIT');
    for (let i = 0; i < 200 && alive(pid); i++) await delay(25);
  }
  rmSync(root, { recursive: true, force: true });
}

async function reap(entries: Entry[]): Promise<void> {
  // Processes first (a dump or restore still talking to a cluster), then the clusters, then the directories.
  for (const e of entries) if (e.kind === 'process') await killGroup(e.pid).catch(() => undefined);
  for (const e of entries) {
    if (e.kind !== 'workDir') continue;
    let clusters: string[] = [];
    try {
      clusters = readdirSync(e.path).filter((name) => /^lifeboat-pg-/.test(name));
    } catch {
      // already gone
    }
    for (const name of clusters) await stopCluster(join(e.path, name, 'data')).catch(() => undefined);
    rmSync(e.path, { recursive: true, force: true });
  }
}

/** The watcher: waits for `pid` to die, then reaps what `file` still lists. */
async function watch(pid: number, file: string): Promise<void> {
  while (alive(pid)) await delay(200);
  if (!existsSync(file)) return;
  const entries = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Entry);
  await reap(entries);
  rmSync(file, { force: true });
}

if (process.argv[1] === SELF) {
  await watch(Number(process.argv[2]), process.argv[3]!);
}
