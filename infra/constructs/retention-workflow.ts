import type { Construct } from 'constructs';
import { deployedWorkflowNames } from '../../state-machines/definitions.ts';
import { MonitoredStateMachine } from './monitored-state-machine.ts';
import type { ProjectFunction } from './project-function.ts';

export interface RetentionStateMachinesProps {
  readonly deploymentName: string;
  /** The deployed workflow's name: `retention` at the source, `vault-retention` in the vault; its child is `<workflow>-target`. */
  readonly workflow: 'retention' | 'vault-retention';
  readonly retentionFunction: ProjectFunction;
  readonly alertFunction: ProjectFunction;
  /** Construct ids of the run and its child in `scope`. */
  readonly ids: { readonly run: string; readonly target: string };
}

/**
 * A retention workflow, at the source or in the vault: the run (a Map over the
 * plan's targets) and its child, which prunes one (database, location) target
 * in its own execution so the run stays within Step Functions' history and
 * payload limits at fleet size (docs/limits.md). Both alert `retention-failed`.
 */
export function retentionStateMachines(scope: Construct, props: RetentionStateMachinesProps): { run: MonitoredStateMachine; target: MonitoredStateMachine } {
  const alert = { deploymentName: props.deploymentName, kind: 'retention-failed' } as const;
  const targetWorkflow = `${props.workflow}-target`;
  const target = new MonitoredStateMachine(scope, props.ids.target, {
    definition: 'retention-target',
    substitutions: { RetentionFunctionArn: props.retentionFunction.functionArn, AlertFunctionArn: props.alertFunction.functionArn },
    invokedFunctions: [props.retentionFunction.function, props.alertFunction.function],
    alert,
    alarmLabel: targetWorkflow,
    ...deployedWorkflowNames(props.deploymentName, targetWorkflow),
  });
  const run = new MonitoredStateMachine(scope, props.ids.run, {
    definition: 'retention',
    substitutions: { RetentionTargetStateMachineArn: target.stateMachine.stateMachineArn, AlertFunctionArn: props.alertFunction.functionArn },
    invokedFunctions: [props.alertFunction.function],
    startedStateMachines: [target],
    alert,
    alarmLabel: props.workflow,
    ...deployedWorkflowNames(props.deploymentName, props.workflow),
  });
  return { run, target };
}
