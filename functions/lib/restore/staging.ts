import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../processes.ts';

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

/** Staging directories under `parent` with the pid they were made by. */
function stagingDirs(parent: string): { path: string; pid: number }[] {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const match = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    return match ? [{ path: join(parent, name), pid: Number(match[1]) }] : [];
  });
}

function remove(path: string): boolean {
  try {
    if (!statSync(path).isDirectory()) return false;
    rmSync(path, { recursive: true, force: true });
    return true;
  } catch {
    // Another user's, or gone already: not ours to report.
    return false;
  }
}

/**
 * Removes staging directories whose process is gone (each holds decrypted
 * production data). Returns what it removed. A directory of a live process,
 * or one not named as ours, is never touched.
 */
export function removeAbandonedStaging(parent = tmpdir()): string[] {
  return stagingDirs(parent)
    .filter((d) => d.pid !== process.pid && !processAlive(d.pid))
    .filter((d) => remove(d.path))
    .map((d) => d.path);
}

/** Removes this process's own staging directories (an interrupted drill, whose restore runs in-process). */
export function removeOwnStaging(parent = tmpdir()): string[] {
  return stagingDirs(parent)
    .filter((d) => d.pid === process.pid)
    .filter((d) => remove(d.path))
    .map((d) => d.path);
}
