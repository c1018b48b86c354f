import { Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { IConstruct } from 'constructs';

/** Shortest reason we accept for acknowledging a cdk-nag finding. */
export const MIN_ACKNOWLEDGEMENT_REASON_LENGTH = 20;

/**
 * Acknowledges one cdk-nag finding on a construct (and its children). Every
 * acknowledgement must say why the finding does not apply; an empty or token
 * reason is a bug, so it throws at synth time.
 *
 * @param id the rule id, or `RuleId[FindingId]` for one finding of a multi-finding rule
 */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  if (reason.trim().length < MIN_ACKNOWLEDGEMENT_REASON_LENGTH) {
    throw new Error(
      `Acknowledging ${id} on ${scope.node.path} needs a reason of at least ${MIN_ACKNOWLEDGEMENT_REASON_LENGTH} characters saying why it does not apply.`,
    );
  }
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * Acknowledges AwsSolutions-IAM5 for exactly these wildcard resources (ARNs,
 * tokens allowed) of the policies under `scope`, rendered the way cdk-nag
 * names its findings, so nothing else wildcarded slips through.
 */
export function acknowledgeWildcardResources(scope: IConstruct, resources: readonly string[], reason: string): void {
  const stack = Stack.of(scope);
  for (const resource of new Set(resources)) {
    acknowledge(scope, `AwsSolutions-IAM5[Resource::${flattenCfnReference(stack.resolve(resource))}]`, reason);
  }
}

/**
 * Registers the AWS Solutions rule pack as a policy validation plugin: synthesis
 * fails on any finding that is not acknowledged with a reason.
 */
export function addNagChecks(app: IConstruct): AwsSolutionsChecks {
  const pack = new AwsSolutionsChecks(app, { verbose: true });
  Validations.of(app).addPlugins(pack);
  return pack;
}
