import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Where a restore keeps the decrypted archive: a private directory (mkdtemp
 * makes it 0700; the file inside is written 0600) named with the process id,
 * so a directory left by a process that was killed outright (SIGKILL, power
 * loss) is recognised and removed by the next run on this machine.
 */
const PREFIX = 'lifeboat-restore-';

export function createStagingDir(parent = tmpdir()): string {
  return mkdtempSync(join(parent, `${PREFIX}${process.pid}-`));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes staging directories whose process is gone (each holds decrypted
 * production data). Returns what it removed. A directory of a live process,
 * or one not named as ours, is never touched.
 */
export function removeAbandonedStaging(parent = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return removed;
  }
  for (const name of names) {
    const match = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (!match || Number(match[1]) === process.pid || alive(Number(match[1]))) continue;
    const path = join(parent, name);
    try {
      if (!statSync(path).isDirectory()) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      // Another user's, or gone already: not ours to report.
    }
  }
  return removed;
}

/** Removes this process's own staging directories (an interrupted drill, whose restore runs in-process). */
export function removeOwnStaging(parent = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return removed;
  }
  for (const name of names.filter((n) => n.startsWith(`${PREFIX}${process.pid}-`))) {
    rmSync(join(parent, name), { recursive: true, force: true });
    removed.push(join(parent, name));
  }
  return removed;
}
