import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import type { TemplateJson } from './deployment.ts';
import type { TaskHandler } from './state-machine-runner.ts';

/**
 * The `ecs:runTask.waitForTaskToken` integration, locally: RunTask starts the
 * container of a task definition of the template as a process running the
 * image's entry point (its EntryPoint and Command, from the runner image's
 * bundles), with the container's environment from the template (tokens
 * resolved), the state machine's container overrides on top, as ECS merges
 * them. The task reports with SendTaskSuccess / SendTaskFailure /
 * SendTaskHeartbeat: its AWS endpoint is a proxy that answers those calls for
 * its own token (and an unknown token as Step Functions does), and passes
 * every other call through to the given endpoint. The state's result is what
 * the task reported.
 *
 * As on ECS: overrides for a container the task definition does not have are
 * refused (`ECS.InvalidParameterException`), so is an unknown task definition.
 * Unlike Step Functions, a task that exits without reporting fails the state at
 * once with `States.HeartbeatTimeout` instead of after its heartbeat interval.
 */
export interface LocalFargateOptions {
  readonly template: TemplateJson;
  /** The TaskDefinition value the definitions pass to RunTask (as substituted) → the task definition's logical id. */
  readonly taskDefinitions: Readonly<Record<string, string>>;
  /** Values for container environment variables the template sets from tokens, by name. */
  readonly values: Readonly<Record<string, string>>;
  /** Region, credentials and endpoint the task runs with (AWS gives it the task role); `AWS_ENDPOINT_URL` is where its calls go on to. */
  readonly awsEnvironment: Readonly<Record<string, string>>;
  /** The runner image's working directory (its bundles): the container's command runs there. */
  readonly imageDir: string;
  /** Where the task's output lines go. @default kept in `runs` only */
  readonly onLog?: (line: string) => void;
}

export interface LocalTaskRun {
  readonly taskDefinition: string;
  readonly container: string;
  readonly parameters: Record<string, unknown>;
  readonly environment: Readonly<Record<string, string>>;
  /** What the task reported: `success` with its output, or `failure` with error and cause. */
  outcome?: { kind: 'success'; output: string } | { kind: 'failure'; error: string; cause: string };
  heartbeats: number;
  exitCode?: number | null;
  /** True when the process had to be killed 30 s after it reported (it would have kept running on ECS). */
  stillRunningAfterReport?: boolean;
  readonly logs: string[];
}

export interface LocalFargate {
  readonly task: TaskHandler;
  readonly runs: LocalTaskRun[];
  /** Calls that named a task token no running task has (answered as Step Functions answers them). */
  readonly unknownTokens: string[];
  stop(): Promise<void>;
}

interface ContainerDefinition {
  Name: string;
  EntryPoint?: string[];
  Command?: string[];
  Environment?: { Name: string; Value: unknown }[];
}

class EcsError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

const TOKEN_ENV = 'LIFEBOAT_TASK_TOKEN';

export async function startLocalFargate(options: LocalFargateOptions): Promise<LocalFargate> {
  const upstream = options.awsEnvironment.AWS_ENDPOINT_URL;
  if (!upstream) throw new Error('startLocalFargate: awsEnvironment needs AWS_ENDPOINT_URL (where the task\'s AWS calls go).');
  const waiting = new Map<string, { run: LocalTaskRun; done: () => void }>();
  const unknownTokens: string[] = [];
  const callbacks: FaultProxy = await startFaultProxy(upstream);
  callbacks.addRule((req) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    const action = /^AWSStepFunctions\.(SendTaskSuccess|SendTaskFailure|SendTaskHeartbeat)$/.exec(target)?.[1];
    if (!action) return undefined;
    const body = JSON.parse(req.body.toString('utf8')) as { taskToken: string; output?: string; error?: string; cause?: string };
    const pending = waiting.get(body.taskToken);
    const json = (status: number, value: unknown) => ({ status, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: JSON.stringify(value) });
    if (!pending) {
      unknownTokens.push(body.taskToken);
      return json(400, { __type: 'com.amazonaws.swf.base.model#TaskDoesNotExist', message: 'Task does not exist anymore' });
    }
    if (action === 'SendTaskHeartbeat') pending.run.heartbeats++;
    else {
      pending.run.outcome = action === 'SendTaskSuccess' ? { kind: 'success', output: body.output ?? 'null' } : { kind: 'failure', error: body.error ?? '', cause: body.cause ?? '' };
      waiting.delete(body.taskToken);
      pending.done();
    }
    return json(200, {});
  });

  const runs: LocalTaskRun[] = [];
  const children = new Set<ReturnType<typeof spawn>>();

  const task: TaskHandler = async (raw) => {
    const parameters = raw as { TaskDefinition?: string; Overrides?: { ContainerOverrides?: { Name?: string; Environment?: { Name: string; Value: string }[] }[] } };
    const logicalId = options.taskDefinitions[String(parameters.TaskDefinition)];
    const definition = logicalId ? options.template.Resources[logicalId] : undefined;
    if (definition?.Type !== 'AWS::ECS::TaskDefinition') throw new EcsError('ECS.InvalidParameterException', `TaskDefinition not found: ${String(parameters.TaskDefinition)}`);
    const containers = (definition.Properties?.ContainerDefinitions ?? []) as ContainerDefinition[];
    const overrides = parameters.Overrides?.ContainerOverrides ?? [];
    for (const o of overrides) {
      if (!containers.some((c) => c.Name === o.Name)) throw new EcsError('ECS.InvalidParameterException', `Override for container named ${String(o.Name)} is not a container in the TaskDefinition.`);
    }
    if (containers.length !== 1) throw new Error(`${logicalId}: the local Fargate runs task definitions of one container (found ${containers.length}).`);
    const container = containers[0]!;
    const environment: Record<string, string> = {};
    for (const { Name, Value } of container.Environment ?? []) {
      if (typeof Value === 'string') environment[Name] = Value;
      else if (options.values[Name] !== undefined) environment[Name] = options.values[Name]!;
      else throw new Error(`${logicalId} (${container.Name}): give a value for ${Name} (set from a token in the template).`);
    }
    for (const { Name, Value } of overrides.find((o) => o.Name === container.Name)?.Environment ?? []) environment[Name] = Value;
    const token = environment[TOKEN_ENV];
    if (!token) throw new Error(`${logicalId}: RunTask gave the container no ${TOKEN_ENV}: the task could not report.`);
    const [command, ...args] = [...(container.EntryPoint ?? []), ...(container.Command ?? [])];
    if (command !== 'node' || !args[0]) throw new Error(`${logicalId}: the local Fargate runs "node <script>" containers (found ${[command, ...args].join(' ')}).`);

    const run: LocalTaskRun = { taskDefinition: String(parameters.TaskDefinition), container: container.Name, parameters: raw as Record<string, unknown>, environment, heartbeats: 0, logs: [] };
    runs.push(run);
    let done!: () => void;
    const reported = new Promise<void>((resolve) => (done = resolve));
    waiting.set(token, { run, done });
    const child = spawn(process.execPath, [join(options.imageDir, args[0]), ...args.slice(1)], {
      cwd: options.imageDir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TMPDIR: process.env.TMPDIR ?? '/tmp', TZ: 'UTC', ...options.awsEnvironment, ...environment, AWS_ENDPOINT_URL: callbacks.endpoint },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    const log = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        run.logs.push(line);
        options.onLog?.(line);
      }
    };
    child.stdout.on('data', log);
    child.stderr.on('data', log);
    const exited = new Promise<void>((resolve) => child.once('exit', (code) => ((run.exitCode = code), children.delete(child), resolve())));
    await Promise.race([reported, exited]);
    // A task that reported but does not end would keep running (and billing) on ECS: give it a moment, then stop it.
    const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000).unref())]);
    if (!stopped) {
      run.stillRunningAfterReport = true;
      child.kill('SIGKILL');
      await exited;
    }
    waiting.delete(token);
    if (!run.outcome) throw new EcsError('States.HeartbeatTimeout', `The ${container.Name} task exited (code ${String(run.exitCode)}) without reporting to Step Functions.`);
    if (run.outcome.kind === 'success') return JSON.parse(run.outcome.output) as unknown;
    throw new EcsError(run.outcome.error, run.outcome.cause);
  };

  return {
    task,
    runs,
    unknownTokens,
    stop: async () => {
      for (const child of children) child.kill('SIGKILL');
      await callbacks.stop();
    },
  };
}
