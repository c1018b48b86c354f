import { Duration, RemovalPolicy, Token, type Size } from 'aws-cdk-lib';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { SHIPPED_BUNDLING } from '../bundling.ts';
import { acknowledge } from '../nag.ts';
import { RunnerNetwork, type RunnerPlacement } from './runner-network.ts';

/** The Lambda runtime every project function uses (Node 22 on Lambda). */
export const PROJECT_RUNTIME = lambda.Runtime.NODEJS_22_X;
/** Graviton: cheaper per GB-second, and the container image is built for it. */
export const PROJECT_ARCHITECTURE = lambda.Architecture.ARM_64;

/** Code bundled from a TypeScript entry with the local esbuild (never Docker). */
export interface NodejsSource {
  readonly kind: 'nodejs';
  /** Absolute path of the handler module. */
  readonly entry: string;
  /** Exported handler name. @default 'handler' */
  readonly handler?: string;
  /** Directory holding package-lock.json; the bundling root. */
  readonly projectRoot: string;
}

/** A container image built from a Dockerfile (only `cdk deploy` needs Docker). */
export interface ImageSource {
  readonly kind: 'image';
  /** Build context directory. */
  readonly directory: string;
  /** Dockerfile, relative to `directory`. @default 'Dockerfile' */
  readonly file?: string;
  /** Image CMD: the handler, e.g. `functions/dump/handler.handler`. */
  readonly cmd: string[];
  /** Extra glob patterns left out of the build context (added to `.dockerignore`). @default [] */
  readonly exclude?: string[];
}

/**
 * A container image asset built once and shared, e.g. by the dump function and
 * the Fargate dump task (same image, same digest).
 */
export interface ImageAssetSource {
  readonly kind: 'imageAsset';
  readonly asset: ecrAssets.DockerImageAsset;
  /** Image CMD: the handler, e.g. `functions/dump/handler.handler`. */
  readonly cmd: string[];
}

/** Pre-built code, e.g. a directory bundled ahead of time. */
export interface PrebuiltSource {
  readonly kind: 'prebuilt';
  readonly code: lambda.Code;
  /** Handler in `file.export` form. */
  readonly handler: string;
}

export type ProjectFunctionSource = NodejsSource | ImageSource | ImageAssetSource | PrebuiltSource;

export type ProjectLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export interface ProjectFunctionProps {
  /** Where the function's code comes from. */
  readonly source: ProjectFunctionSource;
  /** Powertools service name (`POWERTOOLS_SERVICE_NAME`). */
  readonly serviceName: string;
  /** Powertools metrics namespace (`POWERTOOLS_METRICS_NAMESPACE`). */
  readonly metricsNamespace: string;
  /** @default - no description */
  readonly description?: string;
  /** @default Duration.seconds(30) */
  readonly timeout?: Duration;
  /** @default 256 */
  readonly memorySize?: number;
  /** Log level for the Powertools logger (`LOG_LEVEL`). @default 'INFO' */
  readonly logLevel?: ProjectLogLevel;
  /** @default logs.RetentionDays.THREE_MONTHS */
  readonly logRetention?: logs.RetentionDays;
  /** What happens to the log group when it leaves the stack. @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Plain configuration values that grant no access. Anything naming a resource
   * goes through `addResourceEnvironment`, which pairs it with its grant.
   * @default {}
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * Run in these VPC subnets with these security groups; the role then also
   * gets the network-interface actions Lambda needs.
   * @default - outside any VPC
   */
  readonly placement?: RunnerPlacement;
  /** Size of /tmp (512 MiB to 10 GiB). @default - Lambda's default, 512 MiB */
  readonly ephemeralStorageSize?: Size;
  /**
   * Why the function's own grants (beyond X-Ray and VPC networking) need
   * `"Resource": "*"`; added to the cdk-nag acknowledgement.
   * @default - it has no other such grants
   */
  readonly anyResourceReason?: string;
}

/**
 * A Lambda function with the project's fixed choices: Node 22 runtime, arm64,
 * active X-Ray tracing, its own log group with retention, explicit timeout and
 * memory, and a dedicated role with no managed policies. Environment variables
 * that name resources are added together with the grant they need.
 */
export class ProjectFunction extends Construct {
  /** The function. */
  public readonly function: lambda.Function;
  /** The function's execution role (no managed policies; every grant is explicit). */
  public readonly role: iam.Role;
  /** The function's log group. */
  public readonly logGroup: logs.LogGroup;
  /** Every environment variable set through this construct (name → value, tokens unresolved). */
  private readonly environment: Record<string, string> = {};

  constructor(scope: Construct, id: string, props: ProjectFunctionProps) {
    super(scope, id);

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${this.node.path}`,
    });
    // Instead of AWSLambdaBasicExecutionRole (which writes to any log group):
    // write to this function's own log group only.
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    const common = {
      role: this.role,
      architecture: PROJECT_ARCHITECTURE,
      tracing: lambda.Tracing.ACTIVE,
      logGroup: this.logGroup,
      timeout: props.timeout ?? Duration.seconds(30),
      memorySize: props.memorySize ?? 256,
      ephemeralStorageSize: props.ephemeralStorageSize,
      description: props.description,
      ...(props.placement
        ? { vpc: props.placement.vpc, vpcSubnets: { subnets: props.placement.subnets }, securityGroups: props.placement.securityGroups }
        : {}),
      environment: {
        ...props.environment,
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace,
        LOG_LEVEL: props.logLevel ?? 'INFO',
      },
    } satisfies Partial<lambda.FunctionProps>;

    if (props.placement) RunnerNetwork.grantNetworkInterfaces(this.role);
    this.function = createFunction(this, props.source, common);
    Object.assign(this.environment, common.environment, props.source.kind === 'nodejs' ? { NODE_OPTIONS: '--enable-source-maps' } : {});
    this.node.addValidation({ validate: () => checkEnvironmentSize(this.node.path, this.environment) });
    if (props.source.kind !== 'image' && props.source.kind !== 'imageAsset') {
      acknowledge(
        this.function,
        'AwsSolutions-L1',
        'The project pins the nodejs22.x runtime on purpose (DESIGN.md: target nodejs22.x); moving to a newer runtime is a deliberate, tested change, not a drive-by.',
      );
    }

    // Active tracing adds xray:PutTraceSegments/PutTelemetryRecords on "*".
    acknowledge(
      this.role,
      'AwsSolutions-IAM5[Resource::*]',
      'X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level permissions; "*" is the only valid resource (added by active tracing).' +
        (props.placement
          ? ' In a VPC, the EC2 network-interface actions of AWSLambdaVPCAccessExecutionRole are on "*" too: Describe* has no resource-level permissions and Lambda creates the interfaces before the function exists.'
          : '') +
        (props.anyResourceReason ? ` ${props.anyResourceReason}` : ''),
    );
  }

  /** The function's ARN. */
  public get functionArn(): string {
    return this.function.functionArn;
  }

  /**
   * Adds an environment variable that names a resource, together with the grant
   * the function needs on that resource, so neither exists without the other.
   */
  public addResourceEnvironment(name: string, value: string, grant: (grantee: iam.IGrantable) => void): this {
    this.function.addEnvironment(name, value);
    this.environment[name] = value;
    grant(this.role);
    return this;
  }
}

/** Lambda caps a function's environment (keys and values, UTF-8) at 4 KB. */
export const MAX_LAMBDA_ENVIRONMENT_BYTES = 4096;
/** What a token (a bucket name, an ARN) is counted as before it resolves. */
const TOKEN_ESTIMATE_BYTES = 128;

/** The environment's size as Lambda counts it, tokens estimated generously. */
export function environmentBytes(environment: Readonly<Record<string, string>>): number {
  return Object.entries(environment).reduce(
    (sum, [name, value]) => sum + Buffer.byteLength(name, 'utf8') + (Token.isUnresolved(value) ? TOKEN_ESTIMATE_BYTES : Buffer.byteLength(value, 'utf8')),
    0,
  );
}

function checkEnvironmentSize(path: string, environment: Readonly<Record<string, string>>): string[] {
  const bytes = environmentBytes(environment);
  if (bytes <= MAX_LAMBDA_ENVIRONMENT_BYTES) return [];
  const largest = Object.entries(environment)
    .map(([name, value]) => [name, Token.isUnresolved(value) ? TOKEN_ESTIMATE_BYTES : Buffer.byteLength(value, 'utf8')] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([name, size]) => `${name} (${size} bytes)`);
  return [
    `${path}: the function's environment is about ${bytes} bytes; Lambda accepts at most ${MAX_LAMBDA_ENVIRONMENT_BYTES}. Largest: ${largest.join(', ')}. ` +
      'Split the plans or databases over more sources (docs/limits.md).',
  ];
}

type CommonFunctionProps = Omit<lambda.FunctionProps, 'code' | 'handler' | 'runtime'>;

function createFunction(scope: Construct, source: ProjectFunctionSource, common: CommonFunctionProps): lambda.Function {
  switch (source.kind) {
    case 'nodejs':
      return new nodejs.NodejsFunction(scope, 'Function', {
        ...common,
        // The bundle ships a source map; without this flag Node ignores it.
        environment: { ...common.environment, NODE_OPTIONS: '--enable-source-maps' },
        runtime: PROJECT_RUNTIME,
        entry: source.entry,
        handler: source.handler ?? 'handler',
        projectRoot: source.projectRoot,
        depsLockFilePath: `${source.projectRoot}/package-lock.json`,
        awsSdkConnectionReuse: false,
        bundling: {
          forceDockerBundling: false,
          // infra/bundling.json: the settings every shipped bundle shares (keepNames
          // keeps error class names, which Retry/Catch match; the SDK is bundled).
          format: nodejs.OutputFormat.ESM,
          target: SHIPPED_BUNDLING.target,
          platform: SHIPPED_BUNDLING.platform,
          mainFields: [...SHIPPED_BUNDLING.mainFields],
          banner: SHIPPED_BUNDLING.banner,
          sourceMap: SHIPPED_BUNDLING.sourcemap,
          minify: SHIPPED_BUNDLING.minify,
          keepNames: SHIPPED_BUNDLING.keepNames,
          externalModules: [...SHIPPED_BUNDLING.external],
        },
      });
    case 'image':
      return new lambda.DockerImageFunction(scope, 'Function', {
        ...common,
        code: lambda.DockerImageCode.fromImageAsset(source.directory, {
          file: source.file ?? 'Dockerfile',
          cmd: source.cmd,
          platform: ecrAssets.Platform.LINUX_ARM64,
          exclude: source.exclude ?? [],
        }),
      });
    case 'imageAsset':
      return new lambda.DockerImageFunction(scope, 'Function', {
        ...common,
        code: lambda.DockerImageCode.fromEcr(source.asset.repository, { tagOrDigest: source.asset.imageTag, cmd: source.cmd }),
      });
    case 'prebuilt':
      return new lambda.Function(scope, 'Function', {
        ...common,
        runtime: PROJECT_RUNTIME,
        code: source.code,
        handler: source.handler,
      });
  }
}

