import { describe, expect, it } from 'vitest';
import { loadDefinition, placeholders } from '../../state-machines/definitions.ts';
import { LOCAL_FARGATE_PLACEHOLDERS } from '../../cli/local-drill.ts';

interface State {
  Type: string;
  Next?: string;
  End?: boolean;
  Default?: string;
  Choices?: { Next: string }[];
  Catch?: { ErrorEquals: string[]; Next: string }[];
  Retry?: { ErrorEquals: string[]; MaxAttempts?: number }[];
  SecondsPath?: string;
  ItemProcessor?: { StartAt: string; States: Record<string, State> };
}

const fake = (name: string) => `arn:aws:lambda:eu-west-1:000000000000:function:${name}`;
const drill = loadDefinition('drill', { PlanFunctionArn: fake('plan'), AlertFunctionArn: fake('alert'), DrillDatabaseStateMachineArn: 'arn:aws:states:eu-west-1:000000000000:stateMachine:acme-lifeboat-drill-database' }) as {
  States: Record<string, State & { ItemSelector?: unknown; Parameters?: unknown }>;
};
const child = loadDefinition('drill-database', { PlanFunctionArn: fake('plan'), DrillFunctionArn: fake('drill'), DrillRestoreFunctionArn: fake('restore'), AlertFunctionArn: fake('alert'), ...LOCAL_FARGATE_PLACEHOLDERS }) as { StartAt: string; States: Record<string, State> };
const states = child.States;

function successors(state: State): string[] {
  return [state.Next, state.Default, ...(state.Choices ?? []).map((c) => c.Next), ...(state.Catch ?? []).map((c) => c.Next)].filter((n): n is string => Boolean(n));
}

const isTerminal = (s: State) => s.End === true || s.Type === 'Succeed' || s.Type === 'Fail';

describe('drill state machine definition', () => {
  it('has exactly the placeholders CDK must substitute', () => {
    expect(placeholders('drill')).toEqual(['AlertFunctionArn', 'DrillDatabaseStateMachineArn', 'PlanFunctionArn']);
    expect(placeholders('drill-database')).toEqual(['AlertFunctionArn', 'DrillFunctionArn', 'DrillRestoreFunctionArn', 'DrillRestoreTaskDefinitionArn', 'DumpClusterArn', 'DumpSecurityGroupIds', 'DumpSubnetIds', 'PlanFunctionArn']);
    expect(placeholders('janitor')).toEqual(['AlertFunctionArn', 'JanitorFunctionArn']);
  });

  it('hands each database to its own child execution with ids only', () => {
    const map = drill.States.DrillEachDatabase!;
    expect(drill.States.ResolveDrills).toMatchObject({ Type: 'Task', Parameters: { workflow: 'drill', 'input.$': '$' }, Next: 'DrillEachDatabase' });
    expect(map.ItemSelector).toEqual({ 'database.$': '$$.Map.Item.Value', 'executionId.$': '$$.Execution.Id' });
    const run = map.ItemProcessor!.States.DrillDatabase as State & { Resource: string; ResultSelector: unknown };
    expect(run.Resource).toBe('arn:aws:states:::states:startExecution.sync:2');
    expect(run.ResultSelector).toEqual({ 'databaseId.$': '$.Output.databaseId', 'status.$': '$.Output.status' });
    expect(child.StartAt).toBe('BuildRequest');
    expect(states.BuildRequest).toMatchObject({ Next: 'SelectBackup', Catch: [{ ErrorEquals: ['States.ALL'], Next: 'AlertRequestFailed' }] });
  });

  it('catches every error of every step before the report and sends it to teardown', () => {
    const steps = ['SelectBackup', 'ProvisionInstance', 'CheckInstance', 'SetCredentials', 'RestoreBackup', 'RestoreBackupOnFargate', 'VerifyRestore', 'MeasureDrill', 'WriteReport'];
    const tasks = Object.entries(states).filter(([, s]) => s.Type === 'Task').map(([n]) => n);
    const others = ['BuildRequest', 'TeardownInstance', 'TeardownAfterFailure', 'ReportFailure', 'AlertDrillFailed', 'AlertObjectiveMissed', 'AlertRequestFailed', 'AlertTeardownIncomplete', 'AlertTeardownAfterFailureIncomplete'];
    expect(tasks.filter((n) => !others.includes(n)).sort()).toEqual([...steps].sort());
    for (const name of steps) {
      expect(states[name]!.Catch, name).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'TeardownAfterFailure' }]);
    }
  });

  it('keeps a verdict whose teardown gave up: an alert of its own, then the report, never the failure path', () => {
    expect(states.TeardownInstance!.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.teardownError', Next: 'AlertTeardownIncomplete' }]);
    expect(states.AlertTeardownIncomplete).toMatchObject({ Next: 'WriteReport', Catch: [{ Next: 'WriteReport' }], Parameters: { kind: 'drill-teardown-incomplete' } });
  });

  it('tears down, then reports, then alerts, then fails on the failure path, whatever fails there', () => {
    expect(states.TeardownAfterFailure).toMatchObject({ Next: 'ReportFailure', Catch: [{ ErrorEquals: ['States.ALL'], Next: 'AlertTeardownAfterFailureIncomplete' }] });
    expect(states.AlertTeardownAfterFailureIncomplete).toMatchObject({ Next: 'ReportFailure', Catch: [{ Next: 'ReportFailure' }] });
    expect(states.ReportFailure).toMatchObject({ Next: 'AlertDrillFailed', Catch: [{ Next: 'ReportUnavailable' }] });
    expect(states.ReportUnavailable!.Next).toBe('AlertDrillFailed');
    expect(states.VerificationFailed!.Next).toBe('AlertDrillFailed');
    expect(states.AlertDrillFailed).toMatchObject({ Next: 'DrillFailed', Catch: [{ Next: 'DrillFailed' }] });
    expect(states.DrillFailed).toMatchObject({ End: true, Parameters: { status: 'failed' } });
    expect(drill.States.DrillRunFailed).toMatchObject({ Type: 'Fail', Error: 'DrillFailed' });
  });

  it('reaches no end without passing a teardown state', () => {
    const teardown = new Set(['TeardownInstance', 'TeardownAfterFailure']);
    const seen = new Set<string>();
    // After the request: before it nothing was provisioned (RequestFailed ends without a teardown).
    expect(successors(states.BuildRequest!)).toEqual(['SelectBackup', 'AlertRequestFailed']);
    const queue = ['SelectBackup'];
    while (queue.length) {
      const name = queue.shift()!;
      if (seen.has(name) || teardown.has(name)) continue;
      seen.add(name);
      expect(isTerminal(states[name]!), `${name} ends the drill before any teardown`).toBe(false);
      queue.push(...successors(states[name]!));
    }
    expect(seen.has('RestoreBackup')).toBe(true);
  });

  it('waits with a Wait state in the poll loop, never in a function, and bounds every retry', () => {
    expect(states.WaitForInstance).toMatchObject({ Type: 'Wait', SecondsPath: '$.request.pollIntervalSeconds', Next: 'CheckInstance' });
    expect(states.CheckInstance!.Next).toBe('IsInstanceReady');
    expect(successors(states.IsInstanceReady!)).toEqual(['ChooseRestoreRunner', 'WaitForInstance', 'SetCredentials']);
    // The restore runs in the function, or on Fargate for a database dumped there; both retry an instance not ready yet.
    expect(successors(states.ChooseRestoreRunner!).sort()).toEqual(['PrepareFargateRestore', 'RestoreBackup']);
    expect(states.RestoreBackupOnFargate!.Retry![0]!.ErrorEquals).toEqual(['InstanceNotReadyError']);
    expect(states.SetCredentials!.Next).toBe('WaitForInstance');
    for (const [name, s] of Object.entries(states)) {
      for (const [i, r] of (s.Retry ?? []).entries()) {
        expect(r.MaxAttempts, `${name} retry ${i}`).toBeLessThanOrEqual(20);
        // Step Functions requires States.ALL to be the last retrier.
        if (r.ErrorEquals.includes('States.ALL')) expect(i, name).toBe(s.Retry!.length - 1);
      }
    }
    expect(states.RestoreBackup!.Retry![0]!.ErrorEquals).toEqual(['InstanceNotReadyError']);
  });
});
