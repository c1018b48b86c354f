import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { createDumpHandler } from '../../functions/dump/handler.ts';
import { createAlertHandler } from '../../functions/alert/handler.ts';
import { createVaultCopyHandler } from '../../functions/vault-copy/handler.ts';
import { createStsClient } from '../../functions/lib/aws/clients.ts';
import { asLocalTask } from '../../local/lambda-task.ts';
import { localStepFunctionsArn, startLocalStepFunctions, type LocalStepFunctions } from '../../local/sfn-server.ts';
import { LOCAL_TIME_SCALE, localFunctionArn, localSubstitutions } from '../../local/state-machine-runner.ts';
import { createPlanHandler } from '../../functions/plan/handler.ts';
import { deployedConfig } from '../harness/config.ts';
import { loadDefinition, placeholders } from '../../state-machines/definitions.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients, uniqueName } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import { lifeboat as runCli } from '../harness/cli.ts';

const clients = testClients();
let sfn: LocalStepFunctions;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let dir: string;
let configPath: string;

const lifeboat = (args: string[]) => runCli(args, { AWS_ENDPOINT_URL_SFN: sfn.endpoint, LIFEBOAT_POLL_MS: '100' });

beforeAll(async () => {
  db = await createTestDatabase('lbrun');
  await withClient(db.name, (c) => c.query('CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)'));
  const [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  const s = pgServer();
  const good = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  const bad = await createTestSecret({ username: s.user, password: 'wrong-password', host: s.host, port: s.port });
  const topicArn = (await clients.sns.send(new CreateTopicCommand({ Name: uniqueName('alerts') }))).TopicArn!;
  const logger = new Logger({ serviceName: 'lifeboat-test', logLevel: 'CRITICAL' });
  const dumpArn = localFunctionArn('dump');
  const alertArn = localFunctionArn('alert');
  const vaultCopyArn = localFunctionArn('vault-copy');
  const databases = [
    { id: 'good', connection: { database: db.name, secretArn: good, sslMode: 'disable' as const } },
    { id: 'broken', connection: { database: db.name, secretArn: bad, sslMode: 'disable' as const } },
  ];
  const config = deployedConfig(databases);
  const planArn = localFunctionArn('plan');
  const childArn = localStepFunctionsArn('clirun-lifeboat-backup-database');
  const resources = {
    [planArn]: asLocalTask('plan', createPlanHandler({ config, logger })),
    [dumpArn]: asLocalTask('dump', createDumpHandler({ clients: { s3: clients.s3, secrets: clients.secrets, keyringKms: clients.keyringKms }, target: { bucket, prefix: 'backups/', kmsKeyArn: keyArn }, config, logger, metrics: new Metrics({ namespace: 'lifeboat-test' }) })),
    [alertArn]: asLocalTask('alert', createAlertHandler({ sns: clients.sns, topicArn, logger })),
    // No vault in this deployment: the copy step reports it skipped.
    [vaultCopyArn]: asLocalTask('vault-copy', createVaultCopyHandler({ sourceS3: clients.s3, sts: createStsClient(), vaultS3: () => clients.s3, logger, metrics: new Metrics({ namespace: 'lifeboat-test' }) })),
  };
  sfn = await startLocalStepFunctions([
    {
      name: 'clirun-lifeboat-backup',
      definition: loadDefinition('backup', localSubstitutions(placeholders('backup'), { PlanFunctionArn: planArn, AlertFunctionArn: alertArn, BackupDatabaseStateMachineArn: childArn })),
      resources,
      timeScale: LOCAL_TIME_SCALE,
    },
    {
      name: 'clirun-lifeboat-backup-database',
      definition: loadDefinition('backup-database', localSubstitutions(placeholders('backup-database'), { DumpFunctionArn: dumpArn, AlertFunctionArn: alertArn, VaultCopyFunctionArn: vaultCopyArn })),
      resources,
      timeScale: LOCAL_TIME_SCALE,
    },
  ]);
  dir = mkdtempSync(join(tmpdir(), 'lifeboat-run-'));
  configPath = join(dir, 'lifeboat.config.json');
  const connection = (secretArn: string) => ({ database: db.name, secretArn, sslMode: 'disable' });
  writeFileSync(
    configPath,
    JSON.stringify({
      name: 'clirun',
      source: { region: 'eu-west-1' },
      databases: [
        { id: 'good', connection: connection(good) },
        { id: 'broken', connection: connection(bad) },
      ],
      plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['good', 'broken'], rpoMinutes: 1440, rtoMinutes: 60 }],
    }),
  );
});
afterAll(async () => {
  await sfn?.stop();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lifeboat run (against a Step Functions API stand-in that runs the real definition)', () => {
  it('follows a run state by state and exits 0 when it succeeds', async () => {
    const out = await lifeboat(['run', 'backup', '--config', configPath, '--plan', 'nightly', '--database', 'good']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/> ResolvePlan[\s\S]*> BackupEachDatabase[\s\S]*> BackupDatabase[\s\S]*execution succeeded/);
    expect(out.stdout).toMatch(/^database good: succeeded$/m);
    expect(out.stdout).not.toMatch(/database broken/);
    expect(out.stdout).toMatch(/backup succeeded \(arn:aws:states:eu-west-1:000000000000:execution:clirun-lifeboat-backup:/);
  });

  it('prints the failing state and exits 1 with the execution verdict when a database fails', async () => {
    const out = await lifeboat(['run', 'backup', '--config', configPath, '--plan', 'nightly']);
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/^database good: succeeded$/m);
    expect(out.stdout).toMatch(/^database broken: failed\n {4}\S+ {2}FAILED DatabaseConnectionError: Cannot connect to database "broken"/m);
    expect(out.stderr).toMatch(/backup FAILED: BackupIncomplete/);
    expect(out.stdout + out.stderr).not.toContain('wrong-password');
  });

  it('--no-wait prints the execution ARN and returns at once', async () => {
    const out = await lifeboat(['run', 'backup', '--config', configPath, '--plan', 'nightly', '--database', 'good', '--no-wait']);
    expect(out.code).toBe(0);
    expect(out.stdout.trim()).toMatch(/^arn:aws:states:eu-west-1:000000000000:execution:clirun-lifeboat-backup:cli-backup-\d+$/);
    await sfn.idle();
  });

  it('names the state machine it could not find', async () => {
    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ name: 'nothere', source: { region: 'eu-west-1' }, databases: [{ id: 'x', connection: { database: 'x', host: 'h', passwordEnv: 'X' } }], plans: [{ id: 'p', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['x'], rpoMinutes: 1, rtoMinutes: 1 }] }));
    const out = await lifeboat(['run', 'backup', '--config', other]);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/no deployed state machine named "nothere-lifeboat-backup"/);
  });
});
