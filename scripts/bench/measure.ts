import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { childProcesses, cpuTimes, watchPeakRss } from './proc.ts';

/**
 * Timing and CPU accounting for the benchmark's runs.
 *
 * Every run records its wall time and the CPU time it caused, split by who
 * spent it (the client tools, lifeboat's Node.js process, the PostgreSQL
 * server), plus the CPU that *other* processes on the machine used meanwhile,
 * so a figure taken on a busy machine says so.
 */

export interface CpuSplit {
  /** pg_dump / pg_restore / compressors, in ms. */
  toolsMs: number;
  /** lifeboat's own Node.js code (the dump handler process, or the in-process restore), in ms. */
  nodeMs: number;
  /** All PostgreSQL server processes (backends, parallel workers, background writers), in ms. */
  serverMs: number;
  /** Everything else this benchmark runs (the null S3 sink, moto), in ms. */
  harnessMs: number;
  /** CPU used by processes that are not part of this benchmark, in ms. */
  foreignMs: number;
}

export interface RunRecord {
  wallMs: number;
  cpu: CpuSplit;
  [extra: string]: unknown;
}

/** Processes this run started, so an interrupt can stop them. */
export const activeChildren = new Set<ChildProcess>();

export function killActiveChildren(): void {
  for (const child of activeChildren) {
    try {
      // Runs are started in their own process group: take pg_dump etc. down with them.
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  }
  activeChildren.clear();
}

/** Total busy CPU of the machine, in ms (from /proc/stat). */
function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [, ...values] = line.trim().split(/\s+/);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = values.map(Number);
  return ((user + nice + system + irq + softirq + steal) * 1000) / 100;
}

/** CPU of a process and everything below it, alive or reaped, in ms. */
function treeCpuMs(pid: number): number {
  let total = 0;
  try {
    const own = cpuTimes(pid);
    total += own.selfMs + own.childrenMs;
  } catch {
    return 0;
  }
  for (const child of childProcesses(pid)) total += treeCpuMs(child.pid);
  return total;
}

export interface CpuProbe {
  postmasterPid: number;
}

interface CpuSnapshot {
  busy: number;
  selfMs: number;
  reapedMs: number;
  liveChildrenMs: number;
  serverMs: number;
}

function snapshot(probe: CpuProbe): CpuSnapshot {
  const self = cpuTimes('self');
  let liveChildrenMs = 0;
  for (const child of childProcesses('self')) liveChildrenMs += treeCpuMs(child.pid);
  return { busy: machineBusyMs(), selfMs: self.selfMs, reapedMs: self.childrenMs, liveChildrenMs, serverMs: treeCpuMs(probe.postmasterPid) };
}

/**
 * Measures `fn`. `attribute` says how to split this process's own CPU and that
 * of the children reaped during the run between tools, node and harness.
 */
export async function measure<T>(
  probe: CpuProbe,
  fn: () => Promise<T>,
  attribute: (delta: { selfMs: number; reapedMs: number; liveChildrenMs: number }, result: T) => Pick<CpuSplit, 'toolsMs' | 'nodeMs' | 'harnessMs'>,
): Promise<{ wallMs: number; cpu: CpuSplit; result: T }> {
  const before = snapshot(probe);
  const started = performance.now();
  const result = await fn();
  const wallMs = performance.now() - started;
  const after = snapshot(probe);
  const split = attribute(
    { selfMs: after.selfMs - before.selfMs, reapedMs: after.reapedMs - before.reapedMs, liveChildrenMs: after.liveChildrenMs - before.liveChildrenMs },
    result,
  );
  const serverMs = after.serverMs - before.serverMs;
  const ours = split.toolsMs + split.nodeMs + split.harnessMs + serverMs;
  const foreignMs = Math.max(0, after.busy - before.busy - ours);
  return { wallMs, cpu: { ...split, serverMs, foreignMs }, result };
}

export interface SpawnOptions {
  env: NodeJS.ProcessEnv;
  /** Where stdout goes: /dev/null, a file path, or counted and dropped. */
  stdout: 'devnull' | 'count' | { file: string };
  /** Poll the child's peak RSS. */
  watchRss?: boolean;
}

export interface SpawnResult {
  bytes?: number;
  peakRssKiB?: number;
  stderr: string;
}

/** Runs a command to completion in its own process group; rejects on a non-zero exit. */
export async function runCommand(cmd: string, args: string[], options: SpawnOptions): Promise<SpawnResult> {
  let fd: number | undefined;
  if (options.stdout === 'devnull') fd = openSync('/dev/null', 'w');
  else if (typeof options.stdout === 'object') fd = openSync(options.stdout.file, 'w', 0o600);
  const child = spawn(cmd, args, { env: options.env, stdio: ['ignore', fd ?? 'pipe', 'pipe'], detached: true });
  activeChildren.add(child);
  let bytes = 0;
  if (options.stdout === 'count') child.stdout!.on('data', (chunk: Buffer) => (bytes += chunk.length));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-8192)));
  const watcher = options.watchRss && child.pid ? watchPeakRss(child.pid, 50) : undefined;
  try {
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolve({ code: c, signal: s }));
    });
    if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit code ${code}`}): ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
  } finally {
    activeChildren.delete(child);
    if (fd !== undefined) closeSync(fd);
  }
  return { bytes: options.stdout === 'count' ? bytes : undefined, peakRssKiB: watcher?.stop().selfKiB, stderr };
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median of each CPU field, for a table row. */
export function medianCpu(runs: { cpu: CpuSplit }[]): CpuSplit {
  const pick = (k: keyof CpuSplit) => median(runs.map((r) => r.cpu[k]));
  return { toolsMs: pick('toolsMs'), nodeMs: pick('nodeMs'), serverMs: pick('serverMs'), harnessMs: pick('harnessMs'), foreignMs: pick('foreignMs') };
}
