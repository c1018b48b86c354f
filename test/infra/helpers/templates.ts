import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CfnResourceJson, CfnTemplateJson, PolicyStatementJson } from './iam-walker.ts';

/**
 * Actions allowed on "Resource": "*", each family named in an acknowledgement's
 * reason: tracing, vended logs, network interfaces, ECR auth, and listings
 * with no resource-level permission (the snapshot quota check, retention, the
 * janitor's sweep of RDS and drill secrets).
 */
export const ALLOWED_ON_ANY_RESOURCE =
  /^(xray:(PutTraceSegments|PutTelemetryRecords|GetSamplingRules|GetSamplingTargets)|logs:(CreateLogDelivery|DeleteLogDelivery|DescribeLogGroups|DescribeResourcePolicies|GetLogDelivery|ListLogDeliveries|PutResourcePolicy|UpdateLogDelivery)|rds:(DescribeDBSnapshots|DescribeDBClusterSnapshots|DescribeAccountAttributes|DescribeDBInstances|DescribeDBClusters|DescribeDBSubnetGroups)|secretsmanager:ListSecrets|ec2:(CreateNetworkInterface|DescribeNetworkInterfaces|DescribeSubnets|DeleteNetworkInterface|AssignPrivateIpAddresses|UnassignPrivateIpAddresses)|ecr:GetAuthorizationToken)$/;

export interface NamedTemplate {
  /** File name in the cloud assembly, e.g. `acme-lifeboat-source.template.json` or `...nested.template.json`. */
  readonly file: string;
  readonly template: CfnTemplateJson;
}

/** Every CloudFormation template in a cloud assembly directory: stacks and nested stacks. */
export function templatesIn(outdir: string): NamedTemplate[] {
  return readdirSync(outdir)
    .filter((file) => file.endsWith('.template.json'))
    .sort()
    .map((file) => ({ file, template: JSON.parse(readFileSync(join(outdir, file), 'utf8')) as CfnTemplateJson }));
}

/** Every resource of the given type across templates, with where it was found. */
export function resourcesOfType(templates: readonly NamedTemplate[], type: string): Array<{ file: string; logicalId: string; resource: CfnResourceJson }> {
  return templates.flatMap(({ file, template }) =>
    Object.entries(template.Resources)
      .filter(([, resource]) => resource.Type === type)
      .map(([logicalId, resource]) => ({ file, logicalId, resource })),
  );
}

const asArray = <T>(value: T | T[] | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/** Every identity-policy statement (AWS::IAM::Policy, ManagedPolicy, and roles' inline policies) across templates. */
export function identityStatements(templates: readonly NamedTemplate[]): Array<{ where: string; statement: PolicyStatementJson }> {
  const found: Array<{ where: string; statement: PolicyStatementJson }> = [];
  for (const { file, template } of templates) {
    for (const [logicalId, resource] of Object.entries(template.Resources)) {
      const props = resource.Properties ?? {};
      const documents =
        resource.Type === 'AWS::IAM::Policy' || resource.Type === 'AWS::IAM::ManagedPolicy'
          ? [props.PolicyDocument]
          : resource.Type === 'AWS::IAM::Role'
            ? asArray(props.Policies as Array<{ PolicyDocument?: unknown }>).map((p) => p.PolicyDocument)
            : [];
      for (const document of documents) {
        for (const statement of asArray((document as { Statement?: PolicyStatementJson | PolicyStatementJson[] } | undefined)?.Statement)) {
          found.push({ where: `${file}#${logicalId}`, statement });
        }
      }
    }
  }
  return found;
}
