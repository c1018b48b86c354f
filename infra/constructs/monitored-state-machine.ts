import { readFileSync } from 'node:fs';
import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { alarmDescription } from '../../functions/alert/alarm-event.ts';
import type { AlertKind } from '../../functions/lib/alerts/format.ts';
import { placeholders, stateMachinePath, type StateMachineName } from '../../state-machines/definitions.ts';
import { routedAlarmName } from '../alarm-names.ts';
import { acknowledge, acknowledgeWildcardResources } from '../nag.ts';

export interface MonitoredStateMachineProps {
  /** Which definition in `state-machines/` to deploy. */
  readonly definition: StateMachineName;
  /**
   * A value for every `${Placeholder}` in the definition, no more, no less
   * (checked at synth time).
   */
  readonly substitutions: Readonly<Record<string, string>>;
  /** Functions the definition's Task states invoke by ARN; each gets an exact `lambda:InvokeFunction` grant. */
  readonly invokedFunctions: readonly lambda.IFunction[];
  /**
   * State machines the definition starts as child executions
   * (`states:startExecution.sync:2`): StartExecution on each, DescribeExecution
   * and StopExecution on their executions, and the EventBridge managed rule
   * Step Functions uses to learn that a child ended.
   * @default []
   */
  readonly startedStateMachines?: readonly MonitoredStateMachine[];
  /**
   * Names the failure alarm `lifeboat/<deployment>/<kind>/<definition>-executions`,
   * so AlarmRouting sends it through the alert function as a `kind` alert.
   * @default - a generated alarm name, not routed
   */
  readonly alert?: { readonly deploymentName: string; readonly kind: AlertKind };
  /**
   * Also publish the failure alarm straight to this topic, in CloudWatch's own
   * format. Leave it out when the alarm is routed (`alert`), or subscribers get two messages.
   * @default - no alarm action
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * What the failure alarm calls the workflow: `lifeboat/<deployment>/<kind>/<label>-executions`.
   * @default - the definition's name
   */
  readonly alarmLabel?: string;
  /** Name of the execution log group (keep it under `/aws/vendedlogs/states/`). */
  readonly logGroupName: string;
  /**
   * Physical name, so operators and `lifeboat run` can find it.
   * @default a CloudFormation-generated name
   */
  readonly stateMachineName?: string;
  /** @default logs.RetentionDays.THREE_MONTHS */
  readonly logRetention?: logs.RetentionDays;
  /** Longest an execution may run before it counts as timed out. @default Duration.hours(12) */
  readonly timeout?: Duration;
  /** @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/**
 * A state machine loaded from `state-machines/` with the project's fixed
 * observability: a log group at level ALL without execution data, X-Ray
 * tracing, and an alarm on any failed, timed-out or aborted execution (routed
 * to the alert function by AlarmRouting when `alert` is set).
 */
export class MonitoredStateMachine extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  /** The physical name, when one was given. */
  public readonly stateMachineName?: string;
  public readonly logGroup: logs.LogGroup;
  /** ExecutionsFailed + ExecutionsTimedOut + ExecutionsAborted >= 1 in 5 minutes. */
  public readonly failureAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: MonitoredStateMachineProps) {
    super(scope, id);
    checkSubstitutions(props.definition, props.substitutions);
    this.stateMachineName = props.stateMachineName;

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      logGroupName: props.logGroupName,
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });

    const timeout = props.timeout ?? Duration.hours(12);
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      // Inline (not an S3 asset): the synthesized template carries the exact
      // definition, which the local integration tests execute. CDK applies
      // \`timeout\` only to definitions it builds itself, so the execution
      // timeout goes into the definition here.
      definitionBody: sfn.DefinitionBody.fromString(withExecutionTimeout(readFileSync(stateMachinePath(props.definition), 'utf8'), timeout, props.definition)),
      stateMachineName: props.stateMachineName,
      definitionSubstitutions: { ...props.substitutions },
      stateMachineType: sfn.StateMachineType.STANDARD,
      tracingEnabled: true,
      // Payloads carry no secrets by design; leaving execution data out of the
      // logs keeps it that way even if a payload ever did.
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
    });

    // The definition is an opaque file, so CDK cannot infer what it calls.
    for (const fn of props.invokedFunctions) {
      this.stateMachine.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [fn.functionArn] }),
      );
    }
    const children = props.startedStateMachines ?? [];
    if (children.length > 0) {
      const stack = Stack.of(this);
      this.stateMachine.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: children.map((c) => c.stateMachine.stateMachineArn) }));
      const executions = children.map((c) => {
        if (!c.stateMachineName) throw new Error(`${c.node.path} needs a stateMachineName to be started as a child execution.`);
        return stack.formatArn({ service: 'states', resource: 'execution', resourceName: `${c.stateMachineName}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
      });
      this.stateMachine.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:DescribeExecution', 'states:StopExecution'], resources: executions }));
      this.stateMachine.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
          resources: [stack.formatArn({ service: 'events', resource: 'rule', resourceName: 'StepFunctionsGetEventsForStepFunctionsExecutionRule' })],
        }),
      );
      acknowledgeWildcardResources(
        this.stateMachine.role,
        executions,
        'Child executions get generated names; DescribeExecution and StopExecution are limited to the executions of the child state machines this workflow starts.',
      );
    }
    acknowledge(
      this.stateMachine.role,
      'AwsSolutions-IAM5[Resource::*]',
      'Vended log delivery (logs:CreateLogDelivery and friends) and X-Ray (PutTraceSegments, GetSamplingRules...) support no resource-level permissions; CDK adds them for logging and tracing.',
    );

    const period = Duration.minutes(5);
    const failures = new cloudwatch.MathExpression({
      expression: 'failed + timedOut + aborted',
      usingMetrics: {
        failed: this.stateMachine.metricFailed({ period, statistic: cloudwatch.Stats.SUM }),
        timedOut: this.stateMachine.metricTimedOut({ period, statistic: cloudwatch.Stats.SUM }),
        aborted: this.stateMachine.metricAborted({ period, statistic: cloudwatch.Stats.SUM }),
      },
      label: 'Failed, timed-out or aborted executions',
      period,
    });
    const human =
      `An execution of the lifeboat "${props.definition}" state machine failed, timed out or was aborted. ` +
      `Open the failed execution in the Step Functions console (logs: ${props.logGroupName}); ` +
      'each failed database also sent its own alert with the error.';
    this.failureAlarm = new cloudwatch.Alarm(this, 'FailureAlarm', {
      alarmName: props.alert ? routedAlarmName(props.alert.deploymentName, props.alert.kind, `${props.alarmLabel ?? props.definition}-executions`) : undefined,
      metric: failures,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: props.alert
        ? alarmDescription(human, {
            kind: props.alert.kind,
            failure: `${props.definition} execution failed`,
            nextStep: `open the failed execution (Step Functions console, or \`lifeboat run\` output), fix the cause and rerun it with \`lifeboat run ${props.definition}\`.`,
          })
        : human,
    });
    if (props.alarmTopic) this.failureAlarm.addAlarmAction(new cwActions.SnsAction(props.alarmTopic));
  }
}

/**
 * The definition with a top-level `TimeoutSeconds` (the execution timeout), the
 * rest of the text unchanged. A definition that sets its own is refused: the
 * timeout belongs to one place.
 */
export function withExecutionTimeout(definition: string, timeout: Duration, name: string): string {
  const parsed = JSON.parse(definition) as { TimeoutSeconds?: unknown };
  if (parsed.TimeoutSeconds !== undefined) {
    throw new Error(`State machine "${name}" sets TimeoutSeconds in its definition; set the execution timeout through MonitoredStateMachine's \`timeout\` instead.`);
  }
  const open = definition.indexOf('{');
  return `${definition.slice(0, open + 1)}\n  "TimeoutSeconds": ${timeout.toSeconds()},${definition.slice(open + 1)}`;
}

function checkSubstitutions(name: StateMachineName, substitutions: Readonly<Record<string, string>>): void {
  const expected = placeholders(name);
  const given = Object.keys(substitutions).sort();
  const missing = expected.filter((key) => !given.includes(key));
  const unknown = given.filter((key) => !expected.includes(key));
  if (missing.length > 0 || unknown.length > 0) {
    throw new Error(
      `State machine "${name}" (${stateMachinePath(name)}) needs exactly the substitutions ${expected.join(', ')}; ` +
        `missing: ${missing.join(', ') || 'none'}; unknown: ${unknown.join(', ') || 'none'}.`,
    );
  }
}
