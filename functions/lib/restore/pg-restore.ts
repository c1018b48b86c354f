import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { RestoreFailedError } from '../errors.ts';
import type { SecretRegistry } from '../redact.ts';

export interface PgRestoreRun {
  stdout: string;
  stderrTail: string;
}

/** Runs pg_restore to completion and throws a RestoreFailedError naming `what` on failure. */
export async function runPgRestore(
  path: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  what: string,
  registry: SecretRegistry,
  stdinFrom?: (stdin: Writable) => Promise<void>,
  signal?: AbortSignal,
): Promise<PgRestoreRun> {
  const child = spawn(path, args, { env, stdio: [stdinFrom ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  // Interrupted: pg_restore stops now (the caller drops what it created).
  const stop = () => child.kill('SIGTERM');
  signal?.addEventListener('abort', stop, { once: true });
  child.once('close', () => signal?.removeEventListener('abort', stop));
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (t: string) => {
    stdout += t;
  });
  child.stderr!.setEncoding('utf8').on('data', (t: string) => {
    stderr = (stderr + t).slice(-16_384);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  let feedError: unknown;
  if (stdinFrom && child.stdin) {
    try {
      await stdinFrom(child.stdin);
    } catch (error) {
      feedError = error;
      child.kill('SIGTERM');
    }
  }
  let result: { code: number | null; signal: NodeJS.Signals | null };
  try {
    result = await exit;
  } catch (error) {
    throw new RestoreFailedError(`Could not start pg_restore for ${what}: ${(error as Error).message}`, { cause: error });
  }
  if (feedError !== undefined) throw feedError;
  const tail = registry.redact(stderr.trim()).split('\n').slice(-8).join('\n');
  if (result.signal || result.code !== 0) {
    throw new RestoreFailedError(`pg_restore failed for ${what} (${result.signal ?? `exit code ${result.code}`}): ${tail || '(no output)'}`, {
      nextStep: 'see the pg_restore error above; the target may be partly restored and must not be used.',
    });
  }
  return { stdout, stderrTail: tail };
}

/**
 * A sink that feeds a child's stdin while it reads, and keeps draining after the
 * child stops reading (pg_restore --list reads only the table of contents), so
 * the upstream checksum and decryption still see every byte.
 */
export function forgivingStdinSink(stdin: Writable): Writable {
  let open = true;
  stdin.on('error', () => {
    open = false;
  });
  stdin.on('close', () => {
    open = false;
  });
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!open) return cb();
      stdin.write(chunk, () => cb());
    },
    final(cb) {
      if (open) stdin.end(() => cb());
      else cb();
    },
  });
}
