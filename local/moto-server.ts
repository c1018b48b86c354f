import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { MissingToolError } from '../functions/lib/errors.ts';
import { onPath } from '../functions/lib/pg/binaries.ts';
import { freePort } from '../functions/lib/pg/ports.ts';

/** moto_server: LIFEBOAT_MOTO_SERVER, else PATH; a MissingToolError saying how to install it otherwise. */
export function motoServerBinary(): string {
  const found = process.env.LIFEBOAT_MOTO_SERVER ?? onPath('moto_server');
  if (found) {
    try {
      accessSync(found, constants.X_OK);
      return found;
    } catch {
      // not executable: report it as missing
    }
  }
  throw new MissingToolError('Required binary "moto_server" was not found.', {
    nextStep: 'install it with `pip install "moto[server]"` (Python 3), or set LIFEBOAT_MOTO_SERVER to its path.',
  });
}

export interface LocalMotoServer {
  readonly endpoint: string;
  readonly port: number;
  /** moto_server's process id, which leads its own process group. */
  readonly pid: number;
  /** Wipes all state (POST /moto-api/reset), for tests that need a clean account. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

async function waitForHttp(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited early with code ${child.exitCode}`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`moto_server did not answer on ${url} within ${timeoutMs} ms`);
}

/** Starts moto_server on loopback on a free port. */
export async function startMotoServer(): Promise<LocalMotoServer> {
  const binary = motoServerBinary();
  const port = await freePort();
  const child = spawn(binary, ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      child.kill('SIGTERM');
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, 3000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForHttp(`${endpoint}/moto-api/`, child, 30_000);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${stderr}`, { cause: error });
  }
  return {
    endpoint,
    port,
    pid: child.pid!,
    reset: async () => {
      await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
    },
    stop,
  };
}
