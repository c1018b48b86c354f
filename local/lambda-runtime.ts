import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { TaskHandler } from './state-machine-runner.ts';

/**
 * A local Lambda service for the shipped bundles: each function runs in its
 * own Node processes (execution environments), with the environment the
 * synthesized template gives it, one invocation at a time per environment, a
 * warm pool that grows up to `maxConcurrency`, and the function's timeout.
 * Errors come back as Lambda reports them to Step Functions: the error name is
 * the `errorType` (so Retry/Catch see what AWS would), the message is Lambda's
 * JSON (`errorType`, `errorMessage`, `trace`). A timeout kills the environment
 * and fails with `Sandbox.Timedout`; a crashed process with `Runtime.ExitError`.
 */
export interface LocalLambdaSpec {
  /** The function name (AWS_LAMBDA_FUNCTION_NAME). */
  readonly name: string;
  /** The bundle file: a NodejsFunction's index.mjs, or the image's functions/<name>/handler.mjs. */
  readonly modulePath: string;
  /** @default 'handler' */
  readonly handlerExport?: string;
  /** The function's environment (the template's variables, resolved), without AWS credentials. */
  readonly environment: Readonly<Record<string, string>>;
  readonly timeoutSeconds: number;
  /** @default 1024 */
  readonly memoryMb?: number;
  /** Environments at most (Lambda's concurrency for this function). @default 8 */
  readonly maxConcurrency?: number;
  /** The process environment AWS gives every function here: region, credentials, endpoint. */
  readonly awsEnvironment: Readonly<Record<string, string>>;
  /** Where the function's log lines go. @default this process's stdout */
  readonly onLog?: (line: string) => void;
}

interface Environment {
  child: ChildProcess;
  ready: Promise<void>;
  busy: boolean;
  /** Timed out: being killed, never to be used again (the kill completes asynchronously). */
  dead?: boolean;
}

const isGone = (e: Environment) => e.dead === true || e.child.exitCode !== null || e.child.signalCode !== null;

const WORKER = fileURLToPath(new URL('./lambda-worker.mjs', import.meta.url));

/** Lambda's errorType and errorMessage, as Step Functions receives them. */
export class LocalLambdaError extends Error {
  constructor(
    readonly errorType: string,
    readonly errorMessage: string,
    trace: string[] = [],
  ) {
    super(JSON.stringify({ errorType, errorMessage, trace }));
    this.name = errorType;
  }
}

export class LocalLambda {
  readonly spec: LocalLambdaSpec;
  /** Every event this function was invoked with, in order (for assertions on payloads). */
  readonly events: unknown[] = [];
  /** Every line the function logged. */
  readonly logs: string[] = [];
  readonly #pool: Environment[] = [];
  readonly #waiting: Array<() => void> = [];
  #stopped = false;

  constructor(spec: LocalLambdaSpec) {
    this.spec = spec;
  }

  /** Cold starts so far (environments created). */
  get environments(): number {
    return this.#pool.length;
  }

  /** Invokes the function synchronously (RequestResponse) and returns its result. */
  async invoke(event: unknown): Promise<unknown> {
    if (this.#stopped) throw new LocalLambdaError('Lambda.ServiceException', `The local function ${this.spec.name} has been stopped.`);
    this.events.push(event);
    const env = await this.#acquire();
    try {
      return await this.#run(env, event);
    } finally {
      env.busy = false;
      this.#waiting.shift()?.();
    }
  }

  /** The function as a Step Functions Task handler. */
  asTask(): TaskHandler {
    return (input) => this.invoke(input);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#pool.map((env) => kill(env.child)));
    this.#pool.length = 0;
  }

  async #acquire(): Promise<Environment> {
    for (;;) {
      const idle = this.#pool.find((e) => !e.busy && !isGone(e));
      if (idle) {
        idle.busy = true;
        await idle.ready;
        return idle;
      }
      // Drop dead environments (timed out, crashed) before counting.
      for (let i = this.#pool.length - 1; i >= 0; i--) if (isGone(this.#pool[i]!)) this.#pool.splice(i, 1);
      if (this.#pool.length < (this.spec.maxConcurrency ?? 8)) {
        const env = this.#spawn();
        env.busy = true;
        this.#pool.push(env);
        await env.ready;
        return env;
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  #spawn(): Environment {
    const { spec } = this;
    const child = fork(WORKER, [], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        TMPDIR: process.env.TMPDIR ?? '/tmp',
        TZ: 'UTC',
        AWS_LAMBDA_FUNCTION_NAME: spec.name,
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(spec.memoryMb ?? 1024),
        AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
        ...spec.awsEnvironment,
        ...spec.environment,
        LIFEBOAT_LOCAL_LAMBDA_MODULE: spec.modulePath,
        LIFEBOAT_LOCAL_LAMBDA_EXPORT: spec.handlerExport ?? 'handler',
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const log = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        this.logs.push(line);
        if (spec.onLog) spec.onLog(line);
        else process.stdout.write(`${line}\n`);
      }
    };
    child.stdout?.on('data', log);
    child.stderr?.on('data', log);
    const ready = new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new LocalLambdaError('Runtime.ExitError', `The local environment of ${spec.name} exited during init (code ${code}).`)));
    });
    ready.catch(() => undefined);
    return { child, ready, busy: false };
  }

  #run(env: Environment, event: unknown): Promise<unknown> {
    const id = randomUUID();
    const timeoutMs = this.spec.timeoutSeconds * 1000;
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        env.child.off('message', onMessage);
        env.child.off('exit', onExit);
      };
      const onMessage = (message: { type: string; id?: string; result?: unknown; error?: { errorType: string; errorMessage: string; trace?: string[] } }) => {
        if (message.id !== id) return;
        done();
        if (message.type === 'result') resolve(JSON.parse(String(message.result)));
        else reject(new LocalLambdaError(message.error!.errorType, message.error!.errorMessage, message.error!.trace));
      };
      const onExit = (code: number | null, signal: string | null) => {
        done();
        reject(new LocalLambdaError('Runtime.ExitError', `RequestId: ${id} Error: Runtime exited with error: ${signal ? `signal: ${signal}` : `exit status ${code}`}`));
      };
      const timer = setTimeout(() => {
        done();
        env.dead = true;
        void kill(env.child);
        reject(new LocalLambdaError('Sandbox.Timedout', `RequestId: ${id} Error: Task timed out after ${this.spec.timeoutSeconds.toFixed(2)} seconds`));
      }, timeoutMs);
      env.child.on('message', onMessage);
      env.child.once('exit', onExit);
      env.child.send({ type: 'invoke', id, event: JSON.stringify(event ?? null), timeoutMs });
    });
  }
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}
