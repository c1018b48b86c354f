import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

/** Where a watch's matched CloudTrail events go. */
export interface CloudTrailAlertTarget {
  /** Formats and publishes the alert (functions/alert/handler.ts accepts these events). */
  readonly alertFunction: lambda.IFunction;
  /** Where events go that could not be delivered (the alarm routing's queue, itself alarmed). */
  readonly deadLetterQueue: sqs.IQueue;
}

/**
 * An EventBridge rule on CloudTrail's "AWS API Call via CloudTrail" events,
 * to the alert function, retried for a day, then to the dead-letter queue:
 * what every watch (keys, the break-glass role) is made of.
 */
export function cloudTrailAlertRule(
  scope: Construct,
  id: string,
  props: CloudTrailAlertTarget & { readonly description: string; readonly source: string; readonly detail: Record<string, unknown> },
): events.Rule {
  return new events.Rule(scope, id, {
    description: props.description,
    eventPattern: { source: [props.source], detailType: ['AWS API Call via CloudTrail'], detail: props.detail },
    targets: [new eventsTargets.LambdaFunction(props.alertFunction, { deadLetterQueue: props.deadLetterQueue, retryAttempts: 8, maxEventAge: Duration.hours(24) })],
  });
}
