import { Duration, TimeZone } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { MonitoredStateMachine } from './monitored-state-machine.ts';

/**
 * EventBridge Scheduler caps a schedule's payload, target input included, at
 * 256 KB (Quotas for Amazon EventBridge Scheduler, "Maximum schedule payload
 * size"); Step Functions caps an execution input at 256 KiB (262,144 bytes,
 * UTF-8) as well. The stricter reading of both.
 */
export const MAX_SCHEDULE_INPUT_BYTES = 256 * 1000;

/** When a workflow runs: a cron expression in a time zone, optionally inside a flexible window. */
export interface WorkflowSchedule {
  /** EventBridge Scheduler expression, e.g. `cron(0 3 * * ? *)`. */
  readonly expression: string;
  /** IANA time zone the expression is evaluated in. */
  readonly timeZone: string;
  /** Flexible time window in minutes; 0 fires exactly on time. @default 0 */
  readonly flexibleWindowMinutes?: number;
}

export interface ScheduledWorkflowProps {
  /** The state machine to start. */
  readonly workflow: MonitoredStateMachine;
  readonly schedule: WorkflowSchedule;
  /** The execution input (JSON), at most MAX_SCHEDULE_INPUT_BYTES once serialized. */
  readonly input: Record<string, unknown>;
  readonly description: string;
  /**
   * The role EventBridge Scheduler assumes; it is granted `states:StartExecution`
   * on this workflow only.
   */
  readonly role: iam.IRole;
  /** Where invocations that still fail after the retries go. @default - dropped after the retries */
  readonly deadLetterQueue?: sqs.IQueue;
  /** @default 3 */
  readonly retryAttempts?: number;
  /** Give up starting a run this late. @default Duration.hours(1) */
  readonly maxEventAge?: Duration;
}

/**
 * Starts a monitored state machine on a schedule (EventBridge Scheduler, with
 * time zone and flexible window). Backup, retention, drill and janitor runs all
 * use it; a run that fails is reported by the workflow's own failure alarm, and
 * one that never starts ends in the dead-letter queue.
 */
export class ScheduledWorkflow extends Construct {
  public readonly schedule: scheduler.Schedule;
  /** The serialized execution input. */
  public readonly inputJson: string;

  constructor(scope: Construct, id: string, props: ScheduledWorkflowProps) {
    super(scope, id);
    this.inputJson = JSON.stringify(props.input);
    const bytes = Buffer.byteLength(this.inputJson, 'utf8');
    if (bytes > MAX_SCHEDULE_INPUT_BYTES) {
      throw new Error(
        `${this.node.path}: the schedule input is ${bytes} bytes; EventBridge Scheduler and Step Functions accept at most ${MAX_SCHEDULE_INPUT_BYTES}. ` +
          'Pass names instead: workflow inputs name a plan or databases, and the functions read the rest from the deployed config object (docs/limits.md).',
      );
    }
    const window = props.schedule.flexibleWindowMinutes ?? 0;
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: props.description,
      schedule: scheduler.ScheduleExpression.expression(props.schedule.expression, TimeZone.of(props.schedule.timeZone)),
      timeWindow: window > 0 ? scheduler.TimeWindow.flexible(Duration.minutes(window)) : scheduler.TimeWindow.off(),
      target: new schedulerTargets.StepFunctionsStartExecution(props.workflow.stateMachine, {
        role: props.role,
        input: scheduler.ScheduleTargetInput.fromObject(props.input),
        retryAttempts: props.retryAttempts ?? 3,
        maxEventAge: props.maxEventAge ?? Duration.hours(1),
        deadLetterQueue: props.deadLetterQueue,
      }),
    });
  }
}
