/**
 * Walks a synthesized CloudFormation template and collects every IAM statement
 * that can grant something to one role:
 *
 * - identity policies: AWS::IAM::Policy and AWS::IAM::ManagedPolicy attached to
 *   the role, and the role's own inline `Policies`;
 * - managed policy ARNs on the role (not inspectable here, so treated as
 *   "may allow anything");
 * - resource policies (KMS key policies, bucket, topic and queue policies) whose
 *   principal is the role or everyone.
 *
 * It errs on the side of finding a grant: conditions are ignored (a conditional
 * Allow is still an Allow) and wildcard resources match.
 */

export interface CfnResourceJson {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}
export interface CfnTemplateJson {
  readonly Resources: Record<string, CfnResourceJson>;
}

export interface PolicyStatementJson {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action?: string | string[];
  readonly NotAction?: string | string[];
  readonly Resource?: unknown;
  readonly NotResource?: unknown;
  readonly Principal?: unknown;
  readonly Condition?: unknown;
}

/** A statement that applies to the role, and where it came from. */
export interface FoundStatement {
  readonly statement: PolicyStatementJson;
  /** e.g. `DumpRoleDefaultPolicy (AWS::IAM::Policy)` or `EnvelopeKey (key policy)`. */
  readonly source: string;
  /** For resource policies: the resource the policy is attached to. */
  readonly attachedTo?: string;
}

/** A resource in the template: matched by logical id through Ref/GetAtt and by name inside joined strings. */
export interface TargetResource {
  readonly logicalId: string;
}

export interface Grant {
  readonly action: string;
  readonly source: string;
  readonly statement: PolicyStatementJson;
}

const asArray = <T>(value: T | T[] | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

function isRefTo(value: unknown, logicalId: string): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  if (v.Ref === logicalId) return true;
  const getAtt = v['Fn::GetAtt'];
  return Array.isArray(getAtt) && getAtt[0] === logicalId;
}

/** Renders an intrinsic value to a string: `${Id}` for Ref, `${Id.Attr}` for GetAtt, `*` for anything unknown. */
export function renderIntrinsic(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return '*';
  const v = value as Record<string, unknown>;
  if (typeof v.Ref === 'string') return v.Ref.startsWith('AWS::') ? '*' : `\${${v.Ref}}`;
  const getAtt = v['Fn::GetAtt'];
  if (Array.isArray(getAtt)) return `\${${String(getAtt[0])}.${String(getAtt[1])}}`;
  const join = v['Fn::Join'];
  if (Array.isArray(join) && Array.isArray(join[1])) return (join[1] as unknown[]).map(renderIntrinsic).join(String(join[0]));
  return '*';
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

/** IAM action matching: case-insensitive, `*` and `?` wildcards (`kms:*`, `kms:Decrypt*`, `*`). */
export function actionMatches(pattern: string, action: string): boolean {
  return globToRegExp(pattern).test(action);
}

/** Whether an Allow statement's Action/NotAction covers the action. */
export function statementCoversAction(statement: PolicyStatementJson, action: string): boolean {
  if (statement.NotAction !== undefined) return !asArray(statement.NotAction).some((p) => actionMatches(p, action));
  return asArray(statement.Action).some((p) => actionMatches(p, action));
}

/**
 * Whether one Resource entry may denote the target: `*`, a Ref/GetAtt to it, a
 * joined string that embeds it, or a wildcard pattern whose service could be the
 * target's (`arn:*:kms:*`, `arn:aws:*`...).
 */
export function resourceMayMatch(entry: unknown, target: TargetResource | undefined, service?: string): boolean {
  if (target === undefined) return true;
  if (isRefTo(entry, target.logicalId)) return true;
  const text = renderIntrinsic(entry);
  if (text === '*') return true;
  if (text.includes(`\${${target.logicalId}`)) return true;
  if (!text.includes('*') && !text.includes('?')) return false;
  if (text.includes('${')) return false; // a pattern anchored on another resource
  const arnService = text.split(':')[2];
  return arnService === undefined || service === undefined || globToRegExp(arnService).test(service);
}

function statementCoversResource(statement: PolicyStatementJson, target: TargetResource | undefined, service?: string): boolean {
  if (statement.NotResource !== undefined) {
    // NotResource allows everything except the listed resources.
    return !asArray(statement.NotResource).some((r) => target !== undefined && isRefTo(r, target.logicalId));
  }
  if (statement.Resource === undefined) return true; // resource policies may omit Resource
  return asArray(statement.Resource).some((r) => resourceMayMatch(r, target, service));
}

function principalIsRole(principal: unknown, roleLogicalId: string): boolean {
  if (principal === '*') return true;
  if (typeof principal !== 'object' || principal === null) return false;
  const aws = (principal as Record<string, unknown>).AWS;
  return asArray(aws as unknown).some((p) => p === '*' || isRefTo(p, roleLogicalId));
}

function statementsOf(document: unknown): PolicyStatementJson[] {
  const statements = (document as { Statement?: unknown } | undefined)?.Statement;
  return asArray(statements as PolicyStatementJson | PolicyStatementJson[] | undefined);
}

const RESOURCE_POLICY_DOCUMENTS: Record<string, { document: string; attachedTo: (props: Record<string, unknown>) => unknown[] }> = {
  'AWS::KMS::Key': { document: 'KeyPolicy', attachedTo: () => [] },
  'AWS::S3::BucketPolicy': { document: 'PolicyDocument', attachedTo: (p) => [p.Bucket] },
  'AWS::SNS::TopicPolicy': { document: 'PolicyDocument', attachedTo: (p) => asArray(p.Topics as unknown[]) },
  'AWS::SQS::QueuePolicy': { document: 'PolicyDocument', attachedTo: (p) => asArray(p.Queues as unknown[]) },
};

/** Every statement in the template that can grant something to the role. */
export function statementsForRole(template: CfnTemplateJson, roleLogicalId: string): FoundStatement[] {
  const role = template.Resources[roleLogicalId];
  if (!role || role.Type !== 'AWS::IAM::Role') throw new Error(`No AWS::IAM::Role "${roleLogicalId}" in the template`);
  const found: FoundStatement[] = [];

  for (const inline of asArray(role.Properties?.Policies as Array<{ PolicyName?: string; PolicyDocument?: unknown }>)) {
    for (const statement of statementsOf(inline.PolicyDocument)) {
      found.push({ statement, source: `${roleLogicalId} inline policy ${inline.PolicyName ?? ''}`.trim() });
    }
  }
  for (const arn of asArray(role.Properties?.ManagedPolicyArns as unknown[])) {
    found.push({
      statement: { Effect: 'Allow', Action: '*', Resource: '*' },
      source: `${roleLogicalId} managed policy ${renderIntrinsic(arn)} (not inspectable: assumed to allow anything)`,
    });
  }

  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    const props = resource.Properties ?? {};
    if (resource.Type === 'AWS::IAM::Policy' || resource.Type === 'AWS::IAM::ManagedPolicy') {
      if (!asArray(props.Roles as unknown[]).some((r) => isRefTo(r, roleLogicalId))) continue;
      for (const statement of statementsOf(props.PolicyDocument)) {
        found.push({ statement, source: `${logicalId} (${resource.Type})` });
      }
      continue;
    }
    const resourcePolicy = RESOURCE_POLICY_DOCUMENTS[resource.Type];
    if (!resourcePolicy) continue;
    for (const statement of statementsOf(props[resourcePolicy.document])) {
      if (!principalIsRole(statement.Principal, roleLogicalId)) continue;
      const attached = resourcePolicy.attachedTo(props);
      found.push({
        statement,
        source: `${logicalId} (${resource.Type} ${resourcePolicy.document})`,
        attachedTo: resource.Type === 'AWS::KMS::Key' ? logicalId : attached.map(renderIntrinsic).join(','),
      });
    }
  }
  return found;
}

export interface GrantQuery {
  /** Actions to look for, e.g. `kms:Decrypt`. */
  readonly actions: readonly string[];
  /** Only grants that may cover this resource. @default any resource */
  readonly on?: TargetResource;
  /** The target's service, for wildcard ARN patterns (`kms`, `s3`). */
  readonly service?: string;
}

/** The Allow grants of any of the actions to the role (on the target, if given). */
export function findGrants(template: CfnTemplateJson, roleLogicalId: string, query: GrantQuery): Grant[] {
  const grants: Grant[] = [];
  for (const { statement, source, attachedTo } of statementsForRole(template, roleLogicalId)) {
    if (statement.Effect !== 'Allow') continue;
    for (const action of query.actions) {
      if (!statementCoversAction(statement, action)) continue;
      // A key policy always governs its own key: "Resource": "*" there means "this key".
      if (attachedTo !== undefined && source.includes('AWS::KMS::Key')) {
        if (query.on === undefined || attachedTo === query.on.logicalId) grants.push({ action, source, statement });
        continue;
      }
      if (statementCoversResource(statement, query.on, query.service)) grants.push({ action, source, statement });
    }
  }
  return grants;
}

/** A readable list of grants for assertion messages. */
export function describeGrants(grants: readonly Grant[]): string {
  return grants.map((g) => `${g.action} via ${g.source}: ${JSON.stringify(g.statement)}`).join('\n');
}
