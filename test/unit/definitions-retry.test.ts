import { describe, expect, it } from 'vitest';
import { loadDefinition, placeholders, stateMachineFiles, type StateMachineName } from '../../state-machines/definitions.ts';

/**
 * Lambda's own transient failures: AWS recommends retrying these on every
 * Lambda task (the function never ran, or its answer was lost).
 */
const TRANSIENT_LAMBDA_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'Lambda.ClientExecutionTimeoutException',
];

type State = { Type: string; Resource?: string; Retry?: { ErrorEquals: string[] }[]; ItemProcessor?: { States: Record<string, State> }; Branches?: { States: Record<string, State> }[] };

function lambdaTasks(states: Record<string, State>, out: [string, State][] = []): [string, State][] {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === 'Task' && state.Resource?.startsWith('arn:aws:lambda:')) out.push([name, state]);
    if (state.ItemProcessor) lambdaTasks(state.ItemProcessor.States, out);
    for (const b of state.Branches ?? []) lambdaTasks(b.States, out);
  }
  return out;
}

function definition(name: StateMachineName) {
  const subs = Object.fromEntries(placeholders(name).map((p) => [p, p.endsWith('FunctionArn') ? `arn:aws:lambda:eu-west-1:000000000000:function:${p}` : `local-${p}`]));
  return loadDefinition(name, subs) as { States: Record<string, State> };
}

describe('Retry on Lambda tasks', () => {
  for (const name of Object.keys(stateMachineFiles) as StateMachineName[]) {
    it(`retries Lambda's transient errors on every Lambda task of the ${name} workflow`, () => {
      // Prepare
      const tasks = lambdaTasks(definition(name).States);
      expect(tasks.length).toBeGreaterThan(0);
      // Act
      const missing = tasks.flatMap(([state, task]) => {
        const covered = new Set((task.Retry ?? []).flatMap((r) => r.ErrorEquals));
        if (covered.has('States.ALL') || covered.has('States.TaskFailed')) return [];
        const absent = TRANSIENT_LAMBDA_ERRORS.filter((e) => !covered.has(e));
        return absent.length ? [`${state}: ${absent.join(', ')}`] : [];
      });
      // Assess
      expect(missing).toEqual([]);
    });
  }

  it('retries a snapshot of a busy source database instead of failing the backup', () => {
    const create = (definition('backup-database').States.DumpAndSnapshot!.Branches![1]!.States.CreateSnapshot)!;
    expect(create.Retry!.some((r) => r.ErrorEquals.includes('SourceDatabaseBusyError'))).toBe(true);
  });
});
