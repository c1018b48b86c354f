import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';

/**
 * Evaluates requests against the policies of synthesized templates with an
 * IAM policy simulator (@cloud-copilot/iam-simulate): identity policies,
 * resource policies (bucket and key policies), conditions, same- and
 * cross-account rules. Templates hold CloudFormation intrinsics; they are
 * resolved here the way CloudFormation would resolve them for a deployment
 * (physical names where the template sets them, CloudFormation's generated
 * role names `<stack>-<logicalId>-<suffix>` where it does not).
 */

export interface CfnTemplate {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
  Parameters?: Record<string, { Default?: unknown }>;
}

export interface DeployedTemplate {
  readonly template: CfnTemplate;
  readonly stackName: string;
  readonly account: string;
  readonly region: string;
  readonly partition?: string;
  /** Physical ids known from elsewhere (a key id the config names), by logical id. */
  readonly physicalIds?: Readonly<Record<string, string>>;
}

export interface EvaluatedRole {
  readonly stack: string;
  readonly logicalId: string;
  readonly arn: string;
  readonly identityPolicies: { name: string; policy: unknown }[];
  /** AWS managed policies attached by ARN (not evaluated: see `KNOWN_MANAGED_POLICIES`). */
  readonly managedPolicyArns: string[];
}

export interface EvaluatedResourcePolicy {
  readonly stack: string;
  readonly account: string;
  /** ARNs this policy governs: a bucket and its objects, a key. */
  readonly arns: string[];
  readonly policy: unknown;
}

/**
 * AWS managed policies lifeboat attaches, and why none of them reaches a
 * vault resource. Any other managed policy fails the evaluation loudly: it
 * cannot be evaluated offline.
 */
export const KNOWN_MANAGED_POLICIES: Readonly<Record<string, string>> = {
  'service-role/AWSLambdaBasicExecutionRole': 'CloudWatch Logs only',
  'service-role/AWSLambdaVPCAccessExecutionRole': 'CloudWatch Logs and EC2 network interfaces only',
  'service-role/AmazonECSTaskExecutionRolePolicy': 'ECR pulls and CloudWatch Logs only',
};

type Json = unknown;

/** A stable, CloudFormation-like id for resources whose name CloudFormation generates. */
const suffixOf = (logicalId: string) => logicalId.replace(/[^A-Za-z0-9]/g, '').slice(-12).toUpperCase();

export class TemplateResolver {
  readonly #t: DeployedTemplate;
  readonly #partition: string;

  constructor(t: DeployedTemplate) {
    this.#t = t;
    this.#partition = t.partition ?? 'aws';
  }

  /** The physical name (Ref) of a resource. */
  ref(logicalId: string): string {
    const { template, account, region, stackName } = this.#t;
    const pseudo: Record<string, string> = { 'AWS::AccountId': account, 'AWS::Region': region, 'AWS::Partition': this.#partition, 'AWS::URLSuffix': 'amazonaws.com', 'AWS::StackName': stackName, 'AWS::NoValue': '' };
    if (pseudo[logicalId] !== undefined) return pseudo[logicalId]!;
    const parameter = template.Parameters?.[logicalId];
    if (parameter) return String(parameter.Default ?? `param-${logicalId}`);
    const resource = template.Resources[logicalId];
    if (!resource) throw new Error(`${stackName}: Ref to unknown ${logicalId}`);
    const known = this.#t.physicalIds?.[logicalId];
    if (known) return known;
    const p = resource.Properties ?? {};
    const named = (key: string) => (p[key] !== undefined ? String(this.resolve(p[key])) : undefined);
    switch (resource.Type) {
      case 'AWS::S3::Bucket':
        return named('BucketName') ?? `${stackName}-${logicalId}-${suffixOf(logicalId)}`.toLowerCase().slice(0, 63);
      case 'AWS::IAM::Role':
        return named('RoleName') ?? `${stackName}-${logicalId}-${suffixOf(logicalId)}`.slice(0, 64);
      case 'AWS::KMS::Key':
        return `${logicalId.toLowerCase().slice(0, 8)}-0000-4000-8000-${suffixOf(logicalId).toLowerCase().padStart(12, '0')}`;
      case 'AWS::Lambda::Function':
        return named('FunctionName') ?? `${stackName}-${logicalId}-${suffixOf(logicalId)}`.slice(0, 64);
      case 'AWS::SNS::Topic':
        return `arn:${this.#partition}:sns:${region}:${account}:${named('TopicName') ?? `${stackName}-${logicalId}`}`;
      case 'AWS::StepFunctions::StateMachine':
        return `arn:${this.#partition}:states:${region}:${account}:stateMachine:${named('StateMachineName') ?? `${logicalId}`}`;
      case 'AWS::SQS::Queue':
        return `https://sqs.${region}.amazonaws.com/${account}/${named('QueueName') ?? logicalId}`;
      case 'AWS::Logs::LogGroup':
        return named('LogGroupName') ?? `/${stackName}/${logicalId}`;
      case 'AWS::ECS::Cluster':
        return named('ClusterName') ?? `${stackName}-${logicalId}`;
      default:
        return `${stackName}-${logicalId}`;
    }
  }

  getAtt(logicalId: string, attribute: string): string {
    const { template, account, region } = this.#t;
    const resource = template.Resources[logicalId];
    if (!resource) throw new Error(`GetAtt of unknown ${logicalId}`);
    const name = this.ref(logicalId);
    const arn = (service: string, res: string, withRegion = true) => `arn:${this.#partition}:${service}:${withRegion ? region : ''}:${account}:${res}`;
    const key = `${resource.Type}.${attribute}`;
    switch (key) {
      case 'AWS::S3::Bucket.Arn':
        return `arn:${this.#partition}:s3:::${name}`;
      case 'AWS::IAM::Role.Arn':
        return `arn:${this.#partition}:iam::${account}:role/${name}`;
      case 'AWS::KMS::Key.Arn':
        return arn('kms', `key/${name}`);
      case 'AWS::Lambda::Function.Arn':
        return arn('lambda', `function:${name}`);
      case 'AWS::SNS::Topic.TopicArn':
        return name;
      case 'AWS::StepFunctions::StateMachine.Arn':
        return name;
      case 'AWS::SQS::Queue.Arn':
        return arn('sqs', this.ref(logicalId).split('/').pop()!);
      case 'AWS::Logs::LogGroup.Arn':
        return arn('logs', `log-group:${name}:*`);
      case 'AWS::ECS::Cluster.Arn':
        return arn('ecs', `cluster/${name}`);
      case 'AWS::ECS::TaskDefinition.TaskDefinitionArn':
        return arn('ecs', `task-definition/${logicalId}:1`);
      default:
        return `${arn(resource.Type.split('::')[1]!.toLowerCase(), `${logicalId}/${attribute}`)}`;
    }
  }

  resolve(value: Json): Json {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, Json>);
    if (entries.length === 1) {
      const [fn, arg] = entries[0]!;
      switch (fn) {
        case 'Ref':
          return this.ref(String(arg));
        case 'Fn::GetAtt': {
          const [id, attr] = Array.isArray(arg) ? (arg as string[]) : String(arg).split('.');
          return this.getAtt(id!, attr!);
        }
        case 'Fn::Join': {
          const [sep, parts] = arg as [string, Json[]];
          return (this.resolve(parts) as Json[]).map(String).join(sep);
        }
        case 'Fn::Select': {
          const [index, list] = arg as [Json, Json];
          return (this.resolve(list) as Json[])[Number(this.resolve(index))];
        }
        case 'Fn::Split': {
          const [sep, text] = arg as [string, Json];
          return String(this.resolve(text)).split(sep);
        }
        case 'Fn::Sub': {
          const [text, vars] = Array.isArray(arg) ? (arg as [string, Record<string, Json>]) : [String(arg), {}];
          return text.replace(/\$\{([^}!]+)\}/g, (_, name: string) => {
            if (vars[name] !== undefined) return String(this.resolve(vars[name]));
            const [id, attr] = name.split('.');
            return attr ? this.getAtt(id!, attr) : this.ref(id!);
          });
        }
        case 'Fn::If':
        case 'Fn::ImportValue':
          throw new Error(`${this.#t.stackName}: ${fn} is not resolved by the evaluator`);
        default:
          break;
      }
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, this.resolve(v)]));
  }
}

/** Every role of a template, with its identity policies resolved. */
export function rolesOf(t: DeployedTemplate): EvaluatedRole[] {
  const r = new TemplateResolver(t);
  const resources = t.template.Resources;
  const roles: EvaluatedRole[] = [];
  for (const [logicalId, res] of Object.entries(resources)) {
    if (res.Type !== 'AWS::IAM::Role') continue;
    const p = res.Properties ?? {};
    const identityPolicies = ((p.Policies ?? []) as { PolicyName: string; PolicyDocument: Json }[]).map((x) => ({ name: x.PolicyName, policy: r.resolve(x.PolicyDocument) }));
    for (const [policyId, policy] of Object.entries(resources)) {
      if (policy.Type !== 'AWS::IAM::Policy' && policy.Type !== 'AWS::IAM::ManagedPolicy') continue;
      const attached = ((policy.Properties?.Roles ?? []) as Json[]).some((role) => (role as { Ref?: string }).Ref === logicalId);
      if (attached) identityPolicies.push({ name: policyId, policy: r.resolve(policy.Properties!.PolicyDocument) });
    }
    const managedPolicyArns = ((p.ManagedPolicyArns ?? []) as Json[]).map((m) => String(r.resolve(m)));
    for (const managed of managedPolicyArns) {
      const name = managed.replace(/^arn:[^:]+:iam::aws:policy\//, '');
      if (KNOWN_MANAGED_POLICIES[name] === undefined) throw new Error(`${t.stackName}/${logicalId}: managed policy ${managed} cannot be evaluated offline; add it to KNOWN_MANAGED_POLICIES with why it reaches no vault resource, or replace it.`);
    }
    roles.push({ stack: t.stackName, logicalId, arn: r.getAtt(logicalId, 'Arn'), identityPolicies, managedPolicyArns });
  }
  return roles;
}

/** The bucket and key policies of a template, with the ARNs they govern. */
export function resourcePoliciesOf(t: DeployedTemplate): EvaluatedResourcePolicy[] {
  const r = new TemplateResolver(t);
  const out: EvaluatedResourcePolicy[] = [];
  for (const [logicalId, res] of Object.entries(t.template.Resources)) {
    const p = res.Properties ?? {};
    if (res.Type === 'AWS::S3::BucketPolicy') {
      const bucket = String(r.resolve(p.Bucket));
      out.push({ stack: t.stackName, account: t.account, arns: [`arn:${t.partition ?? 'aws'}:s3:::${bucket}`, `arn:${t.partition ?? 'aws'}:s3:::${bucket}/*`], policy: r.resolve(p.PolicyDocument) });
    } else if (res.Type === 'AWS::KMS::Key') {
      out.push({ stack: t.stackName, account: t.account, arns: [r.getAtt(logicalId, 'Arn')], policy: r.resolve(p.KeyPolicy) });
    }
  }
  return out;
}

export interface EvaluationRequest {
  /** The role making the request (its identity policies come with it; none for a principal outside the templates), or an AWS service principal. */
  readonly principal: { arn: string; identityPolicies: { name: string; policy: unknown }[] };
  readonly action: string;
  readonly resource: string;
  /** The account that owns the resource. */
  readonly resourceAccount: string;
  readonly resourcePolicy?: unknown;
  /**
   * A service control policy on the principal's account, under AWS's default
   * FullAWSAccess at the root and the account (as Organizations attaches it).
   */
  readonly serviceControlPolicy?: unknown;
  readonly context?: Record<string, string | string[]>;
}

const FULL_AWS_ACCESS = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };

export type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

/** The simulator's decision for one request; validation errors throw. */
export async function evaluate(request: EvaluationRequest): Promise<Decision> {
  // An AWS service (logging.s3.amazonaws.com) has no ARN or account: it is named by aws:PrincipalServiceName.
  const service = !request.principal.arn.startsWith('arn:');
  const principalContext: Record<string, string> = service
    ? { 'aws:PrincipalServiceName': request.principal.arn }
    : { 'aws:PrincipalArn': request.principal.arn, 'aws:PrincipalAccount': request.principal.arn.split(':')[4]! };
  const simulation: Simulation = {
    identityPolicies: request.principal.identityPolicies.map((p) => ({ name: p.name, policy: p.policy as never })),
    serviceControlPolicies: request.serviceControlPolicy
      ? [
          { orgIdentifier: 'r-root', policies: [{ name: 'FullAWSAccess', policy: FULL_AWS_ACCESS }] },
          { orgIdentifier: request.principal.arn.split(':')[4]!, policies: [{ name: 'FullAWSAccess', policy: FULL_AWS_ACCESS }, { name: 'lifeboat-vault', policy: request.serviceControlPolicy as never }] },
        ]
      : [],
    resourceControlPolicies: [],
    ...(request.resourcePolicy ? { resourcePolicy: request.resourcePolicy as never } : {}),
    request: {
      action: request.action,
      principal: request.principal.arn,
      resource: { accountId: request.resourceAccount, resource: request.resource },
      contextVariables: { ...principalContext, 'aws:SecureTransport': 'true', ...request.context },
    },
  } as Simulation;
  const response = await runSimulation(simulation, {});
  if (response.resultType === 'error') throw new Error(`The simulator refused ${request.action} on ${request.resource} by ${request.principal.arn}: ${JSON.stringify(response.errors)}`);
  // A context key the simulator drops (not valid for the action) would let a case pass on nothing: refuse it.
  const results = response.resultType === 'single' ? [response.result] : response.results;
  const ignored = [...new Set(results.flatMap((r) => r.ignoredContextKeys ?? []))];
  if (ignored.length > 0) throw new Error(`${request.action} on ${request.resource}: the simulator ignored context keys ${ignored.join(', ')} (not valid for this action): the case would not test what it says.`);
  return response.overallResult as Decision;
}
