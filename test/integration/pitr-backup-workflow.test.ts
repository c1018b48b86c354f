import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { RDSClient } from '@aws-sdk/client-rds';
import { createAlertHandler } from '../../functions/alert/handler.ts';
import { createPitrHandler } from '../../functions/pitr/handler.ts';
import { createPlanHandler } from '../../functions/plan/handler.ts';
import { DeploymentConfig } from '../../functions/lib/config/deployment.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { asLocalTask } from '../../local/lambda-task.ts';
import { startMotoCompatProxy, type MotoCompatProxy } from '../../local/nightly-environment.ts';
import { localFunctionArn, localStateMachineArn, localSubstitutions, runLocalStateMachine, type TaskHandler } from '../../local/state-machine-runner.ts';
import { loadDefinition, placeholders } from '../../state-machines/definitions.ts';
import { uniqueName } from '../harness/aws.ts';
import { createPitrInstance, ScriptedAutomatedBackups } from '../harness/pitr-rds.ts';

/**
 * Issue 13: the backup workflow (state-machines/backup.asl.json, on the local
 * engine) checks the PITR posture of plans with `pitr` through the posture
 * function, raises ONE pitr-posture alert listing the drifting databases, and
 * does not fail because of drift or of a failed check. The plan, posture and
 * alert functions are the real handlers; RDS is moto behind the fault proxy.
 */
const CHILD = localStateMachineArn('pitrwf-backup-database');
const arns = { plan: localFunctionArn('plan'), pitr: localFunctionArn('pitr'), alert: localFunctionArn('alert') };
const definition = loadDefinition('backup', localSubstitutions(placeholders('backup'), { PlanFunctionArn: arns.plan, PitrFunctionArn: arns.pitr, AlertFunctionArn: arns.alert, BackupDatabaseStateMachineArn: CHILD }));
/** Each database's backup: succeeds at once (the dumps are not what this proves). */
const child = { definition: { StartAt: 'Done', States: { Done: { Type: 'Pass', Parameters: { 'databaseId.$': '$.databaseId', status: 'succeeded' }, End: true } } } };

let proxy: MotoCompatProxy;
let deployed: DeploymentConfig;
let good: string;
let short: string;
const published: Array<PublishCommand['input']> = [];
const logger = new Logger({ serviceName: 'pitr-workflow-test', logLevel: 'ERROR' });
const sns = { send: async (command: PublishCommand) => (published.push(command.input), { MessageId: `m-${published.length}` }) } as unknown as SNSClient;

function resources(pitr?: TaskHandler): Record<string, TaskHandler> {
  const rds = new RDSClient({ region: 'eu-west-1', endpoint: proxy.endpoint });
  return {
    [arns.plan]: asLocalTask('plan', createPlanHandler({ config: async () => deployed, logger })),
    [arns.pitr]: pitr ?? asLocalTask('pitr', createPitrHandler({ rds: () => rds, config: async () => deployed, logger, metrics: new Metrics({ namespace: 'lifeboat-test' }) })),
    [arns.alert]: asLocalTask('alert', createAlertHandler({ sns, topicArn: 'arn:aws:sns:eu-west-1:123456789012:alerts', logger })),
  };
}

const run = (planId: string, taskResources: Record<string, TaskHandler>) =>
  runLocalStateMachine(definition, { planId }, { resources: taskResources, stateMachines: { [CHILD]: child }, timeScale: 0.001, stateMachineName: 'pitrwf-backup' });

beforeAll(async () => {
  proxy = await startMotoCompatProxy(inject('motoEndpoint'), undefined, false);
  const backups = new ScriptedAutomatedBackups();
  proxy.addRule(backups.rule());
  const rds = new RDSClient({ region: 'eu-west-1', endpoint: proxy.endpoint });
  good = (await createPitrInstance(rds, backups, uniqueName('pitrwf-good'), 7)).id;
  short = (await createPitrInstance(rds, backups, uniqueName('pitrwf-short'), 1)).id;
  const connection = (database: string) => ({ host: 'db.invalid', database, username: 'lifeboat', passwordEnv: 'UNUSED' });
  deployed = new DeploymentConfig(
    parseConfig({
      name: 'pitrwf',
      source: { region: 'eu-west-1' },
      databases: [
        { id: 'good', connection: connection('good'), rds: { instanceIdentifier: good } },
        { id: 'short', connection: connection('short'), rds: { instanceIdentifier: short } },
      ],
      plans: [
        { id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['good', 'short'], rpoMinutes: 1440, rtoMinutes: 60, pitr: { windowDays: 7 } },
        { id: 'plain', schedule: { cron: 'cron(0 4 * * ? *)' }, databases: ['good'], rpoMinutes: 1440, rtoMinutes: 60 },
      ],
      storage: { bucketName: 'pitrwf-unused', kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000' },
    }),
  );
});

afterAll(async () => {
  await proxy?.stop();
});

describe('backup workflow: PITR posture', () => {
  it('raises one pitr-posture alert listing the drifting database, and the run succeeds', async () => {
    // Prepare
    const before = published.length;

    // Act
    const result = await run('nightly', resources());

    // Assess
    expect(result.status, JSON.stringify(result.cause)).toBe('SUCCEEDED');
    const alerts = published.slice(before);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.Subject).toBe('[lifeboat] PITR posture drift: plan nightly: PitrPostureDrift');
    expect(alerts[0]!.MessageAttributes?.kind?.StringValue).toBe('pitr-posture');
    expect(alerts[0]!.Message).toContain(`1 of 2 databases of plan "nightly" are not in their point-in-time recovery posture (1 drifting):\n- short: Database "short" (instance ${short}, eu-west-1) keeps automated backups for 1 days; the plan "nightly" wants a point-in-time window of 7 days.`);
    expect(alerts[0]!.Message).toContain('Next step: run `lifeboat pitr status --plan nightly`');
    expect(alerts[0]!.Message).not.toContain('- good:');
  });

  it('alerts that the check itself failed, and still backs up', async () => {
    // Prepare
    const before = published.length;
    const failing: TaskHandler = async () => {
      throw Object.assign(new Error('the posture function crashed'), { name: 'PostureCrash' });
    };

    // Act
    const result = await run('nightly', resources(failing));

    // Assess
    expect(result.status).toBe('SUCCEEDED');
    const alerts = published.slice(before);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.Subject).toMatch(/^\[lifeboat\] PITR posture drift: plan nightly: /);
    expect(alerts[0]!.MessageAttributes?.kind?.StringValue).toBe('pitr-posture');
  });

  it('does not check plans without pitr', async () => {
    // Prepare
    const before = published.length;
    let calls = 0;
    const counting: TaskHandler = async () => {
      calls += 1;
      return {};
    };

    // Act
    const result = await run('plain', resources(counting));

    // Assess
    expect(result.status).toBe('SUCCEEDED');
    expect(calls).toBe(0);
    expect(published.slice(before)).toHaveLength(0);
  });
});
