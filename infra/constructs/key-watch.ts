import type * as events from 'aws-cdk-lib/aws-events';
import { Construct } from 'constructs';
import { cloudTrailAlertRule, type CloudTrailAlertTarget } from './cloudtrail-alert-rule.ts';
import { WATCHED_KEY_EVENTS } from '../../functions/alert/key-event.ts';

export interface KeyWatchProps extends CloudTrailAlertTarget {
  /** The deployment name (config `name`), for the rule's description. */
  readonly deploymentName: string;
  /** The keys lifeboat's backups depend on, in this stack's account and region. */
  readonly keyArns: readonly string[];
}

/**
 * An alert within minutes when someone schedules the deletion of, disables,
 * or rewrites the policy of a key the backups depend on, or tries to: an
 * EventBridge rule on CloudTrail's management events for those keys
 * (WATCHED_KEY_EVENTS), to the alert function, in the one alert format.
 * CloudTrail delivers management events to EventBridge in the account and
 * region of the key; a key in another region needs its own watch.
 */
export class KeyWatch extends Construct {
  public readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: KeyWatchProps) {
    super(scope, id);
    if (props.keyArns.length === 0) throw new Error('KeyWatch needs at least one key ARN.');
    this.rule = cloudTrailAlertRule(this, 'KeyCalls', {
      description: `lifeboat ${props.deploymentName}: alert on ScheduleKeyDeletion, DisableKey, PutKeyPolicy and other calls that can make backups unreadable, on the keys they depend on (also when refused).`,
      source: 'aws.kms',
      detail: { eventSource: ['kms.amazonaws.com'], eventName: [...WATCHED_KEY_EVENTS], resources: { ARN: [...props.keyArns] } },
      alertFunction: props.alertFunction,
      deadLetterQueue: props.deadLetterQueue,
    });
  }
}
