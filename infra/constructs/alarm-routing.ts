import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { pipelineAlarmName, routedAlarmPrefix } from '../alarm-names.ts';
import { acknowledge } from '../nag.ts';

export interface AlarmRoutingProps {
  /** The deployment name (config `name`): alarms named `lifeboat/<name>/...` are routed. */
  readonly deploymentName: string;
  /** Formats and publishes the alert (functions/alert/handler.ts accepts alarm state changes). */
  readonly alertFunction: lambda.IFunction;
  /** Where the alarms about the alert path itself publish directly. */
  readonly topic: sns.ITopic;
  /** EventBridge delivery retries to the alert function before the event goes to the dead-letter queue. @default 8 */
  readonly retryAttempts?: number;
  /** Oldest event EventBridge still delivers. @default Duration.hours(24) */
  readonly maxEventAge?: Duration;
}

/**
 * Sends every lifeboat alarm through the alert function, so alarms reach
 * subscribers in the same format as every other alert: an EventBridge rule on
 * "CloudWatch Alarm State Change" to ALARM for alarms named with the
 * deployment's prefix.
 *
 * The alert path watches itself: a dead-letter queue keeps events (and failed
 * schedule invocations) that could not be delivered, and two alarms, on the
 * alert function's errors and on that queue, publish straight to the topic in
 * CloudWatch's format, because a broken alert function cannot report itself.
 */
export class AlarmRouting extends Construct {
  public readonly rule: events.Rule;
  /** Undelivered alarm events and schedule invocations (SSE-SQS, TLS only, 14 days). */
  public readonly deadLetterQueue: sqs.Queue;
  /** The alert function failed at least once in 5 minutes (an alert may be lost). */
  public readonly alertErrorsAlarm: cloudwatch.Alarm;
  /** Something could not be delivered and waits in the dead-letter queue. */
  public readonly undeliveredAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: AlarmRoutingProps) {
    super(scope, id);
    const name = props.deploymentName;

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(
      this.deadLetterQueue,
      'AwsSolutions-SQS3',
      'This queue is itself the dead-letter queue of the alarm-routing rule and the schedules; an alarm on its depth tells operators.',
    );

    this.rule = new events.Rule(this, 'AlarmStateChange', {
      description: `lifeboat ${name}: send every lifeboat alarm that goes to ALARM to the alert function (one alert format).`,
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        detail: {
          alarmName: [{ prefix: routedAlarmPrefix(name) }],
          state: { value: ['ALARM'] },
        },
      },
      targets: [
        new eventsTargets.LambdaFunction(props.alertFunction, {
          deadLetterQueue: this.deadLetterQueue,
          retryAttempts: props.retryAttempts ?? 8,
          maxEventAge: props.maxEventAge ?? Duration.hours(24),
        }),
      ],
    });

    const period = Duration.minutes(5);
    this.alertErrorsAlarm = new cloudwatch.Alarm(this, 'AlertErrors', {
      alarmName: pipelineAlarmName(name, 'alert-function-errors'),
      alarmDescription:
        `lifeboat ${name}: the alert function failed, so an alert (a failed backup, a late backup, a failed drill) may not have reached you. ` +
        `Open the function's log group (${Stack.of(this).stackName}, AlertFunction) and fix the error; meanwhile check \`lifeboat status\`.`,
      metric: props.alertFunction.metricErrors({ period, statistic: cloudwatch.Stats.SUM }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.undeliveredAlarm = new cloudwatch.Alarm(this, 'Undelivered', {
      alarmName: pipelineAlarmName(name, 'undelivered'),
      alarmDescription:
        `lifeboat ${name}: an alarm event or a scheduled run could not be delivered and waits in the dead-letter queue. ` +
        'Read the message (its attributes name the error), fix the cause, then run the missed work with `lifeboat run` and purge the queue.',
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const alarm of [this.alertErrorsAlarm, this.undeliveredAlarm]) alarm.addAlarmAction(new cwActions.SnsAction(props.topic));
  }
}
