import * as events from 'aws-cdk-lib/aws-events';
import { Construct } from 'constructs';
import { cloudTrailAlertRule, type CloudTrailAlertTarget } from './cloudtrail-alert-rule.ts';

export interface BreakGlassWatchProps extends CloudTrailAlertTarget {
  /** The deployment name (config `name`), for the rule's description. */
  readonly deploymentName: string;
  /** The roles that may change the vault's protections: the break-glass role and vault.adminRoleArns. */
  readonly roleArns: readonly string[];
}

/**
 * An alert within minutes whenever someone assumes a role that may change the
 * vault's protections, or tries to: an EventBridge rule on CloudTrail's
 * sts:AssumeRole events for those roles, to the alert function
 * (functions/alert/break-glass-event.ts). CloudTrail records the call in the
 * region of the STS endpoint used: the vault SCP allows the assumption only
 * through the vault region's endpoint (aws:RequestedRegion). AssumeRole is a
 * read-only management event: the rule receives it only in the state
 * ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS.
 */
export class BreakGlassWatch extends Construct {
  public readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: BreakGlassWatchProps) {
    super(scope, id);
    if (props.roleArns.length === 0) throw new Error('BreakGlassWatch needs at least one role ARN.');
    this.rule = cloudTrailAlertRule(this, 'AssumeRoleCalls', {
      description: `lifeboat ${props.deploymentName}: alert whenever a role that may change the vault's protections is assumed (also when refused).`,
      source: 'aws.sts',
      detail: {
        eventSource: ['sts.amazonaws.com'],
        eventName: ['AssumeRole'],
        // The role as the caller typed it, or as CloudTrail names the resource.
        $or: [{ requestParameters: { roleArn: [...props.roleArns] } }, { resources: { ARN: [...props.roleArns] } }],
      },
      alertFunction: props.alertFunction,
      deadLetterQueue: props.deadLetterQueue,
    });
    // CloudTrail records sts:AssumeRole as a read-only management event, which only a rule in this state receives.
    (this.rule.node.defaultChild as events.CfnRule).state = 'ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS';
  }
}
