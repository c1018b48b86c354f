import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { deploymentConfigBytes, sha256Hex } from '../functions/lib/config/deployment.ts';
import type { LifeboatConfig } from '../functions/lib/config/schema.ts';
import { LocalLambda, type LocalLambdaSpec } from './lambda-runtime.ts';
import { LOCAL_TIME_SCALE, localFunctionArn, localStateMachineArn, runLocalStateMachine, type LocalRunOptions, type LocalRunResult, type LocalStateMachine, type TaskHandler } from './state-machine-runner.ts';

/**
 * A synthesized source stack, "deployed" onto the local stand-ins: every
 * Lambda function of the template runs from its shipped bundle in its own
 * processes with the template's environment (tokens resolved to the local
 * resources the caller created), every state machine runs its synthesized
 * definition on the strict local engine, child executions included, and the
 * deployed config object is published as `cdk deploy` would publish it.
 * What the template names literally (bucket names, role ARNs, settings) is
 * used as is: the caller creates those resources under those names.
 */

/** The part of a CloudFormation template this needs. */
export interface TemplateJson {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/** A function of the stack: its template logical id, and the bundle that is its code. */
export interface DeployedFunction {
  readonly logicalId: string;
  /** The shipped bundle (NodejsFunction index.mjs, or the image's functions/<name>/handler.mjs). */
  readonly modulePath: string;
  readonly handlerExport?: string;
}

export interface LocalDeploymentOptions {
  readonly template: TemplateJson;
  /** The config the stack was synthesized from (its config object is published from it). */
  readonly config: LifeboatConfig;
  /** The sha256 the stack put into the functions' environment; checked against the published bytes. */
  readonly configSha256: string;
  /** Definition placeholder (e.g. `SnapshotFunctionArn`) → the function it names. */
  readonly functions: Readonly<Record<string, DeployedFunction>>;
  /**
   * Values for environment variables the template sets from tokens (a
   * bucket's Ref, a topic's ARN), by variable name. Literal values are never
   * overridden.
   */
  readonly values: Readonly<Record<string, string>>;
  /** Region, credentials and endpoint every function runs with (AWS gives them the function's role). */
  readonly awsEnvironment: Readonly<Record<string, string>>;
  /** An S3 client of the deploying account, to publish the config object. */
  readonly s3: S3Client;
  /** Handlers for non-Lambda task resources (e.g. the Fargate task), by resource ARN. */
  readonly taskResources?: Readonly<Record<string, TaskHandler>>;
  /** Values for other definition placeholders (ECS cluster, subnets). @default `local-<Name>` */
  readonly placeholderValues?: Readonly<Record<string, string>>;
  /** Where function logs go. @default this process's stdout */
  readonly onLog?: LocalLambdaSpec['onLog'];
}

export interface LocalDeployment {
  /** Placeholder → the running function. */
  readonly lambdas: Readonly<Record<string, LocalLambda>>;
  /** Placeholder → the local ARN its definitions name it by (to put a stand-in in its place for one run). */
  readonly functionArns: Readonly<Record<string, string>>;
  /** Workflow (`backup`, `backup-database`, ...) → its definition, substituted. */
  readonly definitions: Readonly<Record<string, Record<string, unknown>>>;
  /** The execution inputs the stack's EventBridge schedules send to a workflow, in template order. */
  scheduledInputs(workflow: string): unknown[];
  /** Runs a workflow's execution to the end on the strict engine. */
  run(workflow: string, input: unknown, options?: Partial<LocalRunOptions>): Promise<LocalRunResult>;
  /** Every child execution that ended, newest last. */
  readonly children: LocalRunResult[];
  stop(): Promise<void>;
}

type Value = string | Record<string, unknown>;

/** The workflow name in `<deployment>-lifeboat-<workflow>`. */
const workflowOf = (stateMachineName: string) => /-lifeboat-(.+)$/.exec(stateMachineName)?.[1];

export async function deployLocally(options: LocalDeploymentOptions): Promise<LocalDeployment> {
  const resources = options.template.Resources;
  const region = options.awsEnvironment.AWS_REGION ?? 'eu-west-1';

  // 1. The config object, where the functions' environment says it is.
  const bytes = deploymentConfigBytes(options.config);
  if (sha256Hex(bytes) !== options.configSha256) throw new Error('The config given to deployLocally is not the one the stack was synthesized from (sha256 differs).');
  const configLocations = new Set<string>();

  // 2. The functions.
  const lambdas: Record<string, LocalLambda> = {};
  const functionArns: Record<string, string> = {};
  for (const [placeholder, fn] of Object.entries(options.functions)) {
    const resource = resources[fn.logicalId];
    if (resource?.Type !== 'AWS::Lambda::Function') throw new Error(`${placeholder}: ${fn.logicalId} is not a Lambda function of the template.`);
    const props = resource.Properties ?? {};
    const variables = ((props.Environment as { Variables?: Record<string, Value> } | undefined)?.Variables ?? {}) as Record<string, Value>;
    const environment: Record<string, string> = {};
    const unresolved: string[] = [];
    for (const [name, value] of Object.entries(variables)) {
      if (typeof value === 'string') environment[name] = value;
      else if (options.values[name] !== undefined) environment[name] = options.values[name]!;
      else unresolved.push(name);
    }
    if (unresolved.length > 0) throw new Error(`${placeholder} (${fn.logicalId}): give values for ${unresolved.join(', ')} (set from tokens in the template).`);
    if (environment.LIFEBOAT_CONFIG_BUCKET) configLocations.add(`${environment.LIFEBOAT_CONFIG_BUCKET}/${environment.LIFEBOAT_CONFIG_KEY}`);
    const name = `local-${fn.logicalId}`;
    lambdas[placeholder] = new LocalLambda({
      name,
      modulePath: fn.modulePath,
      handlerExport: fn.handlerExport,
      environment,
      timeoutSeconds: Number(props.Timeout ?? 3),
      memoryMb: Number(props.MemorySize ?? 128),
      awsEnvironment: options.awsEnvironment,
      onLog: options.onLog,
    });
    functionArns[placeholder] = localFunctionArn(name.toLowerCase(), region);
  }
  for (const location of configLocations) {
    const [bucket, ...key] = location.split('/');
    await options.s3.send(new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: region as 'eu-west-1' } })).catch((error: Error) => {
      if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes(error.name)) throw error;
    });
    await options.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key.join('/'), Body: bytes }));
  }

  // 3. The state machines, with every placeholder substituted.
  const machines = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::StepFunctions::StateMachine');
  const stateMachineArns = new Map<string, string>();
  for (const [logicalId, r] of machines) {
    const workflow = workflowOf(String(r.Properties?.StateMachineName ?? ''));
    if (workflow) stateMachineArns.set(logicalId, localStateMachineArn(workflow, region));
  }
  const definitions: Record<string, Record<string, unknown>> = {};
  const stateMachines: Record<string, LocalStateMachine> = {};
  for (const [logicalId, r] of machines) {
    const workflow = workflowOf(String(r.Properties?.StateMachineName ?? ''));
    const text = r.Properties?.DefinitionString;
    if (!workflow || typeof text !== 'string') continue;
    let definition = text;
    for (const [key, value] of Object.entries((r.Properties?.DefinitionSubstitutions ?? {}) as Record<string, Value>)) {
      const ref = typeof value === 'object' ? JSON.stringify(value) : '';
      const machine = [...stateMachineArns.entries()].find(([id]) => ref.includes(`"${id}"`));
      const local = functionArns[key] ?? machine?.[1] ?? options.placeholderValues?.[key] ?? (key.endsWith('FunctionArn') ? undefined : `local-${key}`);
      if (local === undefined) throw new Error(`State machine ${logicalId} needs \${${key}}, which names no function given to deployLocally.`);
      definition = definition.split(`\${${key}}`).join(local);
    }
    definitions[workflow] = JSON.parse(definition) as Record<string, unknown>;
    stateMachines[stateMachineArns.get(logicalId)!] = { definition: definitions[workflow]!, name: String(r.Properties!.StateMachineName) };
  }

  const taskHandlers: Record<string, TaskHandler> = { ...options.taskResources };
  for (const [placeholder, fn] of Object.entries(lambdas)) taskHandlers[functionArns[placeholder]!] = fn.asTask();
  const children: LocalRunResult[] = [];
  const workflowByLogicalId = new Map(machines.map(([logicalId, r]) => [logicalId, workflowOf(String(r.Properties?.StateMachineName ?? ''))]));
  const schedules = Object.values(resources).filter((r) => r.Type === 'AWS::Scheduler::Schedule');
  return {
    lambdas,
    functionArns,
    definitions,
    children,
    scheduledInputs: (workflow) =>
      schedules.flatMap((r) => {
        const target = r.Properties?.Target as { Arn?: { Ref?: string }; Input?: unknown } | undefined;
        const ref = target?.Arn?.Ref;
        if (!ref || workflowByLogicalId.get(ref) !== workflow) return [];
        if (typeof target.Input !== 'string') throw new Error(`The schedule of ${workflow} has an input that is not a literal JSON string.`);
        return [JSON.parse(target.Input) as unknown];
      }),
    run: (workflow, input, runOptions = {}) => {
      const definition = definitions[workflow];
      if (!definition) throw new Error(`No "${workflow}" state machine in the template (found: ${Object.keys(definitions).join(', ')}).`);
      return runLocalStateMachine(definition, input, {
        timeScale: LOCAL_TIME_SCALE,
        stateMachineName: `local-lifeboat-${workflow}`,
        region,
        ...runOptions,
        resources: { ...taskHandlers, ...runOptions.resources },
        stateMachines,
        onChildExecution: (child) => {
          children.push(child);
          runOptions.onChildExecution?.(child);
        },
      });
    },
    stop: async () => {
      await Promise.all(Object.values(lambdas).map((l) => l.stop()));
    },
  };
}
