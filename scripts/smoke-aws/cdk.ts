import { spawn, type ChildProcess } from 'node:child_process';
import type { SmokeOutput } from './output.ts';

/**
 * `npx cdk deploy|destroy` as child processes: the one place the smoke test
 * leaves the SDK, because deploying lifeboat means running its CDK app the way
 * a user does. Each child runs in its own process group, so a Ctrl-C at the
 * terminal reaches only the smoke test, which lets a running deploy finish (a
 * killed `cdk deploy` leaves CloudFormation working with nobody watching) and
 * then cleans up. Its output is printed line by line through the redactor.
 */
export interface CdkInvocation {
  readonly action: 'deploy' | 'destroy';
  readonly stacks: readonly string[];
  /** `--app` command; default the repo's cdk.json app (infra/app.ts). */
  readonly app?: string;
  /** `-c key=value` pairs. */
  readonly context?: Readonly<Record<string, string>>;
  /** AWS profile for the CLI; undefined means the ambient credentials. */
  readonly profile?: string;
  /** Cloud assembly dir, so concurrent synths never share the repo's cdk.out. */
  readonly outdir: string;
  /** deploy only: where the CLI writes the stacks' outputs. */
  readonly outputsFile?: string;
}

export function cdkArgs(invocation: CdkInvocation): string[] {
  const args: string[] = ['cdk', invocation.action, ...invocation.stacks, '--exclusively', '--no-notices', '--output', invocation.outdir];
  if (invocation.app) args.push('--app', invocation.app);
  for (const [key, value] of Object.entries(invocation.context ?? {})) args.push('-c', `${key}=${value}`);
  if (invocation.profile) args.push('--profile', invocation.profile);
  if (invocation.action === 'deploy') {
    args.push('--require-approval', 'never', '--progress', 'events');
    if (invocation.outputsFile) args.push('--outputs-file', invocation.outputsFile);
  } else {
    args.push('--force');
  }
  return args;
}

const AMBIENT_CREDENTIALS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_DEFAULT_PROFILE'];

/**
 * The child's environment: with a profile, ambient credentials are removed so
 * they cannot win over it (the vault deploy must never run with production's).
 */
export function cdkEnvironment(env: NodeJS.ProcessEnv, invocation: Pick<CdkInvocation, 'profile'>, extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, ...extra, FORCE_COLOR: '0' };
  if (invocation.profile) for (const key of AMBIENT_CREDENTIALS) delete out[key];
  return out;
}

export interface ChildRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Children running now, so an abandoned cleanup can stop them. */
const running = new Set<ChildProcess>();

export function stopRunningChildren(signal: NodeJS.Signals = 'SIGINT'): void {
  for (const child of running) {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Runs a command in its own process group, printing its output (redacted, prefixed) as it comes. */
export function runChild(command: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; output: SmokeOutput; prefix: string }): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    const out = options.output.childSink(options.prefix);
    const err = options.output.childSink(options.prefix);
    child.stdout!.on('data', (chunk: Buffer) => out.write(chunk));
    child.stderr!.on('data', (chunk: Buffer) => err.write(chunk));
    child.on('error', (error) => {
      running.delete(child);
      reject(error);
    });
    child.on('close', (code, signal) => {
      running.delete(child);
      out.end();
      err.end();
      resolve({ code, signal });
    });
  });
}

export class CdkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CdkError';
  }
}

export async function runCdk(invocation: CdkInvocation, options: { cwd: string; env: NodeJS.ProcessEnv; output: SmokeOutput; extraEnv?: Readonly<Record<string, string>> }): Promise<void> {
  const args = cdkArgs(invocation);
  options.output.line(`$ npx ${args.join(' ')}`);
  const run = await runChild('npx', args, { cwd: options.cwd, env: cdkEnvironment(options.env, invocation, options.extraEnv), output: options.output, prefix: '  | ' });
  if (run.code !== 0) {
    throw new CdkError(`cdk ${invocation.action} ${invocation.stacks.join(' ')} ended with ${run.signal ? `signal ${run.signal}` : `exit code ${run.code}`} (its output is above)`);
  }
}
