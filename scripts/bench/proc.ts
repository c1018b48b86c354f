import { readdirSync, readFileSync } from 'node:fs';

/**
 * Linux /proc readers for the benchmark: CPU time of a process and of the
 * children it has reaped (a process's children roll their CPU time into its
 * cutime/cstime when it waits for them), peak RSS (VmHWM), and child pids.
 */

/** USER_HZ: clock ticks per second in /proc/<pid>/stat (100 on every Linux ABI Node supports). */
const TICKS_PER_SECOND = 100;

export interface CpuTimes {
  /** This process, user + system, in milliseconds. */
  selfMs: number;
  /** Children it has reaped (and their reaped children), in milliseconds. */
  childrenMs: number;
}

export function cpuTimes(pid: number | 'self' = 'self'): CpuTimes {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": the comm may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is 14, stime 15, cutime 16, cstime 17.
  const tick = (field: number) => Number(fields[field - 3]);
  const ms = (ticks: number) => (ticks * 1000) / TICKS_PER_SECOND;
  return { selfMs: ms(tick(14) + tick(15)), childrenMs: ms(tick(16) + tick(17)) };
}

/** Peak resident set size (VmHWM) in KiB, or undefined once the process is gone. */
export function peakRssKiB(pid: number | 'self' = 'self'): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Direct children of a process (all its threads), with their command names. */
export function childProcesses(pid: number | 'self' = 'self'): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const task of tasks) {
    let children: string;
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const child of children.split(' ').filter(Boolean)) {
      try {
        out.push({ pid: Number(child), comm: readFileSync(`/proc/${child}/comm`, 'utf8').trim() });
      } catch {
        // exited meanwhile
      }
    }
  }
  return out;
}

/**
 * Watches the peak RSS of a running process (and, optionally, of its children
 * whose command is one of `childNames`) by polling VmHWM, a high-water mark,
 * so the last reading before exit is the peak to within one interval.
 */
export function watchPeakRss(pid: number | 'self', intervalMs = 50, childNames: string[] = []): { stop(): { selfKiB: number; childrenKiB: Record<string, number> } } {
  let selfKiB = 0;
  const childrenKiB: Record<string, number> = {};
  const sample = () => {
    selfKiB = Math.max(selfKiB, peakRssKiB(pid) ?? 0);
    if (childNames.length === 0) return;
    for (const child of childProcesses(pid)) {
      if (!childNames.includes(child.comm)) continue;
      const kib = peakRssKiB(child.pid);
      if (kib !== undefined) childrenKiB[child.comm] = Math.max(childrenKiB[child.comm] ?? 0, kib);
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { selfKiB, childrenKiB };
    },
  };
}
