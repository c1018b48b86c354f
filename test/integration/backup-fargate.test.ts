import '../../local/promise-with-resolvers.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectLockConfigurationCommand } from '@aws-sdk/client-s3';
import { SendTaskFailureCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createAlertHandler } from '../../functions/alert/handler.ts';
import { runFargateTask, TASK_INPUT_ENV, TASK_TOKEN_ENV, type TaskRunner } from '../../functions/dump/fargate-task.ts';
import { createDumpHandler } from '../../functions/dump/handler.ts';
import { createVaultCopyHandler } from '../../functions/vault-copy/handler.ts';
import { createS3Client, createStsClient } from '../../functions/lib/aws/clients.ts';
import { asLocalTask } from '../../local/lambda-task.ts';
import { LOCAL_TIME_SCALE, localFunctionArn, runLocalStateMachine, type LocalRunResult, type TaskHandler } from '../../local/state-machine-runner.ts';
import { deployedConfig } from '../harness/config.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients, uniqueName } from '../harness/aws.ts';
import { credentialsFor } from '../../local/moto-rds-compat.ts';
import type { VaultDumpTarget } from '../../functions/lib/vault/environment.ts';
import { capturingOutput } from '../harness/capture.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import { synthesizedDefinition } from '../harness/synthesized.ts';
import { alertInbox } from './drill-harness.ts';

/**
 * The per-database backup definition (backup-database) as the source stack
 * deploys it, executed locally with the real handlers against the suite's
 * PostgreSQL and moto: a database on `dump.runner: 'fargate'` goes through
 * DumpDatabaseOnFargate (`ecs:runTask.waitForTaskToken`), whose local handler
 * runs the container's entrypoint (functions/dump/fargate-task.ts) in-process
 * with the overrides the state machine sets, and returns what the task reports
 * with its token. The databases' connections come from the deployed config;
 * the execution input names them only.
 */

const clients = testClients();
const ECS_RUN_TASK = 'arn:aws:states:::ecs:runTask.waitForTaskToken';
const FARGATE = {
  DumpClusterArn: 'arn:aws:ecs:eu-west-1:111111111111:cluster/acme-lifeboat',
  DumpTaskDefinitionArn: 'arn:aws:ecs:eu-west-1:111111111111:task-definition/acme-lifeboat-dump:3',
  DumpSubnetIds: 'subnet-0aaa1111bbbb2222c,subnet-0ddd3333eeee4444f',
  DumpSecurityGroupIds: 'sg-0123456789abcdef0',
  VaultCopyTaskDefinitionArn: 'arn:aws:ecs:eu-west-1:111111111111:task-definition/acme-lifeboat-vault-copy:3',
};
const VAULT = { account: '222222222222', region: 'eu-central-1' as const };
const arns = {
  DumpFunctionArn: localFunctionArn('dump'),
  AlertFunctionArn: localFunctionArn('alert'),
  SnapshotFunctionArn: localFunctionArn('snapshot'),
  VaultCopyFunctionArn: localFunctionArn('vault-copy'),
};
const SENTINEL = 'S3NTINEL-fargate-pw-41';

const dbs: Awaited<ReturnType<typeof createTestDatabase>>[] = [];
let bucket: string;
let keyArn: string;
let goodSecret: string;
let badSecret: string;

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    const db = await createTestDatabase('lbfg');
    await withClient(db.name, (c) => c.query(`CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, ${50 * (i + 1)})`));
    dbs.push(db);
  }
  [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  const s = pgServer();
  goodSecret = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  badSecret = await createTestSecret({ username: s.user, password: SENTINEL, host: s.host, port: s.port });
});
afterAll(async () => {
  for (const db of dbs) await db.drop();
});

const database = (id: string, name: string, secretArn: string, runner: 'lambda' | 'fargate') => ({ id, connection: { database: name, secretArn, sslMode: 'disable' as const, connectTimeoutSeconds: 3 }, dump: { runner } });

/** What the plan's Map hands each child execution (see state-machines/backup.asl.json). */
const childInput = (databaseId: string, dumpRunner: 'lambda' | 'fargate', vaultCopyRunner: 'lambda' | 'fargate' = 'lambda') => ({
  planId: 'nightly',
  databaseId,
  dumpRunner,
  vaultCopyRunner,
  takeDump: true,
  takeSnapshot: false,
  executionId: 'arn:aws:states:eu-west-1:111111111111:execution:acme-lifeboat-backup:nightly-1',
  executionStartTime: new Date().toISOString(),
});

/** The shared local runner, with the task token the Fargate branch hands its container, and no retry delays. */
function run(definition: Record<string, unknown>, input: unknown, resources: Record<string, TaskHandler>, taskToken: string): Promise<LocalRunResult> {
  return runLocalStateMachine(definition, input, { resources, taskToken, timeScale: LOCAL_TIME_SCALE, stateMachineName: 'acme-lifeboat-backup-database' });
}

function handlers(databases: ReturnType<typeof database>[], vault?: VaultDumpTarget) {
  const logger = new Logger({ serviceName: 'lifeboat-test', logLevel: 'WARN' });
  const metrics = new Metrics({ namespace: 'lifeboat-test', serviceName: 'lifeboat-dump' });
  const dump = createDumpHandler({ clients: { s3: clients.s3, secrets: clients.secrets, keyringKms: clients.keyringKms }, target: { bucket, prefix: 'backups/', kmsKeyArn: keyArn }, config: deployedConfig(databases), logger, metrics });
  const vaultCopy = createVaultCopyHandler({ sourceS3: clients.s3, sts: createStsClient(), vaultS3: (region, credentials) => createS3Client({ region, credentials }), vault, logger, metrics });
  const lambdaCopies: string[] = [];
  const lambdaDumps: string[] = [];
  const tasks: Array<{ parameters: Record<string, any>; reported: SendTaskSuccessCommand | SendTaskFailureCommand }> = []; // eslint-disable-line @typescript-eslint/no-explicit-any

  /** ECS RunTask with a task token: start "the container" of the task definition's job with the overrides, wait for what it reports. */
  const jobs: Record<string, { container: string; handler: TaskRunner }> = {
    [FARGATE.DumpTaskDefinitionArn]: { container: 'dump', handler: dump as unknown as TaskRunner },
    [FARGATE.VaultCopyTaskDefinitionArn]: { container: 'vault-copy', handler: vaultCopy as unknown as TaskRunner },
  };
  const runTask: TaskHandler = async (parameters) => {
    const p = parameters as { TaskDefinition: string; Overrides: { ContainerOverrides: Array<{ Name: string; Environment: Array<{ Name: string; Value: string }> }> } };
    const job = jobs[p.TaskDefinition];
    if (!job) throw Object.assign(new Error(`no task definition ${p.TaskDefinition}`), { name: 'ECS.InvalidParameterException' });
    // ECS refuses overrides for a container the task definition does not have.
    const container = p.Overrides.ContainerOverrides.find((c) => c.Name === job.container);
    if (!container) throw Object.assign(new Error(`no container named ${job.container} in the overrides`), { name: 'ECS.InvalidParameterException' });
    const env = Object.fromEntries(container.Environment.map((e) => [e.Name, e.Value]));
    const sent: Array<SendTaskSuccessCommand | SendTaskFailureCommand> = [];
    await runFargateTask({
      sfn: { send: async (command: SendTaskSuccessCommand | SendTaskFailureCommand) => (sent.push(command), {}) } as never,
      handler: job.handler,
      env: { ...env, POWERTOOLS_SERVICE_NAME: `lifeboat-${job.container}` },
      log: () => undefined,
    });
    const reported = sent.find((c) => c instanceof SendTaskSuccessCommand || c instanceof SendTaskFailureCommand)!;
    tasks.push({ parameters: parameters as Record<string, unknown>, reported });
    if (reported instanceof SendTaskSuccessCommand) return JSON.parse(reported.input.output!) as unknown;
    // Step Functions fails the task with the reported error and cause.
    throw Object.assign(new Error(reported.input.cause), { name: reported.input.error });
  };

  return {
    lambdaDumps,
    lambdaCopies,
    tasks,
    resources: (alert: TaskHandler): Record<string, TaskHandler> => ({
      [ECS_RUN_TASK]: runTask,
      [arns.DumpFunctionArn]: async (event) => (lambdaDumps.push((event as { databaseId: string }).databaseId), asLocalTask('dump', dump)(event)),
      [arns.VaultCopyFunctionArn]: async (event) => (lambdaCopies.push((event as { databaseId: string }).databaseId), asLocalTask('vault-copy', vaultCopy)(event)),
      [arns.AlertFunctionArn]: alert,
    }),
  };
}

const entered = (r: LocalRunResult, state: string) => r.events.filter((e) => e.type === 'StateEntered' && e.state?.name === state);
type Result = { databaseId: string; status: string; dump: { status: string; backupId?: string; manifestKey?: string; vault?: string; error?: string } };

describe('the per-database backup definition with a database on Fargate', () => {
  it('dumps the Fargate database through ECS RunTask with its task token and the Lambda one through the function, both committed', async () => {
    // Prepare
    const definition = synthesizedDefinition('backup-database', { ...arns, ...FARGATE });
    const databases = [database('orders', dbs[0]!.name, goodSecret, 'fargate'), database('billing', dbs[1]!.name, goodSecret, 'lambda')];
    const h = handlers(databases);
    const resources = h.resources(async () => ({ messageId: 'unexpected' }));

    // Act: the two child executions the plan's Map would start.
    const { result: [orders, billing] } = await capturingOutput(() =>
      Promise.all([run(definition, childInput('orders', 'fargate'), resources, 'token-orders-1'), run(definition, childInput('billing', 'lambda'), resources, 'token-billing-1')]),
    );

    // Assess: both succeeded, each on its runner.
    for (const r of [orders!, billing!]) expect(r.status, String(r.cause)).toBe('SUCCEEDED');
    const results = [orders!.output as Result, billing!.output as Result];
    expect(results.map((x) => [x.databaseId, x.status, x.dump.status, x.dump.vault])).toEqual([
      ['orders', 'succeeded', 'succeeded', 'skipped'],
      ['billing', 'succeeded', 'succeeded', 'skipped'],
    ]);
    expect(h.lambdaDumps).toEqual(['billing']);
    expect(h.tasks).toHaveLength(1);
    expect(entered(orders!, 'DumpDatabaseOnFargate')).toHaveLength(1);
    expect(entered(billing!, 'DumpDatabaseOnFargate')).toEqual([]);

    // Assess: RunTask got the cluster, task definition, private subnets and the container overrides; the task input names the database only.
    const { parameters, reported } = h.tasks[0]!;
    expect(parameters).toEqual({
      Cluster: FARGATE.DumpClusterArn,
      TaskDefinition: FARGATE.DumpTaskDefinitionArn,
      LaunchType: 'FARGATE',
      NetworkConfiguration: { AwsvpcConfiguration: { Subnets: FARGATE.DumpSubnetIds.split(','), SecurityGroups: [FARGATE.DumpSecurityGroupIds], AssignPublicIp: 'DISABLED' } },
      Overrides: { ContainerOverrides: [{ Name: 'dump', Environment: [{ Name: TASK_TOKEN_ENV, Value: 'token-orders-1' }, { Name: TASK_INPUT_ENV, Value: expect.any(String) }] }] },
    });
    const taskInput = JSON.parse(parameters.Overrides.ContainerOverrides[0].Environment[1].Value as string) as Record<string, unknown>;
    expect(taskInput).toEqual({ planId: 'nightly', databaseId: 'orders', executionId: childInput('orders', 'fargate').executionId });
    expect(JSON.stringify(taskInput)).not.toContain(goodSecret);
    expect(reported).toBeInstanceOf(SendTaskSuccessCommand);
    expect(reported.input.taskToken).toBe('token-orders-1');

    // Assess: the Fargate dump is a committed backup like the other (manifest last, in the bucket).
    const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'backups/' }));
    const manifests = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('manifest.json'));
    expect(manifests.map((k) => k.split('/')[1]).sort()).toEqual(['billing', 'orders']);
    const ordersDump = results[0]!.dump;
    expect(manifests).toContain(ordersDump.manifestKey);
    const manifest = JSON.parse(await (await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: ordersDump.manifestKey! }))).Body!.transformToString()) as { inventory: { tables: unknown[] } };
    expect(manifest.inventory.tables).toEqual([{ schema: 'public', name: 't', kind: 'r', rows: 50 }]);
  });

  it('copies the Fargate database\'s dump into the vault with the vault copy task, and the Lambda database\'s with the function', async () => {
    // Prepare: a vault bucket of the vault account (Object Lock, compliance mode), reached through the copier role.
    const vaultAdmin = createS3Client({ region: VAULT.region, credentials: await credentialsFor(VAULT.account, 'vault-admin') });
    const vaultBucket = uniqueName('acme-lifeboat-vault');
    await vaultAdmin.send(new CreateBucketCommand({ Bucket: vaultBucket, CreateBucketConfiguration: { LocationConstraint: VAULT.region }, ObjectLockEnabledForBucket: true }));
    await vaultAdmin.send(new PutObjectLockConfigurationCommand({ Bucket: vaultBucket, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 1 } } } }));
    const vault: VaultDumpTarget = { ...VAULT, bucket: vaultBucket, copierRoleArn: `arn:aws:iam::${VAULT.account}:role/acme-lifeboat-vault-copier` };
    const definition = synthesizedDefinition('backup-database', { ...arns, ...FARGATE });
    const h = handlers([database('orders', dbs[0]!.name, goodSecret, 'fargate'), database('billing', dbs[1]!.name, goodSecret, 'lambda')], vault);
    const resources = h.resources(async () => ({ messageId: 'unexpected' }));

    // Act: what the plan function says for each (vaultCopyRunner follows the dump runner when there is a vault).
    const { result: [orders, billing] } = await capturingOutput(() =>
      Promise.all([run(definition, childInput('orders', 'fargate', 'fargate'), resources, 'token-orders-2'), run(definition, childInput('billing', 'lambda', 'lambda'), resources, 'token-billing-2')]),
    );

    // Assess: both copied, each on its runner: two tasks for orders (dump, vault copy), the function for billing.
    for (const r of [orders!, billing!]) expect(r.status, String(r.cause)).toBe('SUCCEEDED');
    expect([orders!.output, billing!.output].map((o) => (o as Result).dump.vault)).toEqual(['copied', 'copied']);
    expect(h.lambdaCopies).toEqual(['billing']);
    expect(h.tasks.map((t) => t.parameters.TaskDefinition)).toEqual([FARGATE.DumpTaskDefinitionArn, FARGATE.VaultCopyTaskDefinitionArn]);
    expect(entered(orders!, 'CopyDumpToVaultOnFargate')).toHaveLength(1);
    expect(entered(orders!, 'CopyDumpToVault')).toEqual([]);
    expect(entered(billing!, 'CopyDumpToVaultOnFargate')).toEqual([]);

    // Assess: the copy task got the same cluster and subnets, its own container, and names the dump only.
    const copyTask = h.tasks[1]!;
    expect(copyTask.parameters).toMatchObject({ Cluster: FARGATE.DumpClusterArn, LaunchType: 'FARGATE', NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'DISABLED' } } });
    const overrides = copyTask.parameters.Overrides.ContainerOverrides as Array<{ Name: string; Environment: Array<{ Name: string; Value: string }> }>;
    expect(overrides.map((o) => o.Name)).toEqual(['vault-copy']);
    const copyInput = JSON.parse(overrides[0]!.Environment.find((e) => e.Name === TASK_INPUT_ENV)!.Value) as Record<string, unknown>;
    const ordersDump = (orders!.output as Result).dump;
    expect(copyInput).toEqual({ planId: 'nightly', databaseId: 'orders', executionId: childInput('orders', 'fargate').executionId, bucket, manifestKey: ordersDump.manifestKey });
    expect(copyTask.reported).toBeInstanceOf(SendTaskSuccessCommand);

    // Assess: the vault holds both committed dumps, manifest beside data.
    const listed = await vaultAdmin.send(new ListObjectsV2Command({ Bucket: vaultBucket, Prefix: 'backups/' }));
    const vaultManifests = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('manifest.json'));
    expect(vaultManifests).toContain(ordersDump.manifestKey);
    expect(vaultManifests.map((k) => k.split('/')[1]).sort()).toEqual(['billing', 'orders']);
  });

  it('alerts a Fargate dump that fails with the error its task reports, and no secret leaks', async () => {
    // Prepare
    const definition = synthesizedDefinition('backup-database', { ...arns, ...FARGATE });
    const h = handlers([database('ledger', dbs[0]!.name, badSecret, 'fargate')]);
    const inbox = await alertInbox();
    const alert = asLocalTask('alert', createAlertHandler({ sns: inbox.sns, topicArn: inbox.topicArn, logger: new Logger({ serviceName: 'lifeboat-test', logLevel: 'WARN' }) }));

    // Act
    const { result: r, output } = await capturingOutput(() => run(definition, childInput('ledger', 'fargate'), h.resources(alert), 'token-ledger-1'));
    const alerts = await inbox.receiveAll();

    // Assess: the child reports the database failed, the task reported the dump handler's error class, one alert names it.
    expect(r.status).toBe('SUCCEEDED');
    expect(r.output).toMatchObject({ databaseId: 'ledger', status: 'failed', dump: { status: 'failed', error: 'DatabaseConnectionError' } });
    expect(h.tasks.map((t) => [t.reported.constructor.name, (t.reported.input as { error?: string }).error])).toEqual([['SendTaskFailureCommand', 'DatabaseConnectionError']]);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.subject).toBe('[lifeboat] Backup failed: database ledger, plan nightly: DatabaseConnectionError');
    expect(alerts[0]!.message).toMatch(/password authentication failed/);
    expect(alerts[0]!.details).toMatchObject({ kind: 'backup-failed', databaseId: 'ledger', details: { backup: 'dump' } });
    expect(JSON.stringify({ output, events: r.events, alerts, tasks: h.tasks.map((t) => t.reported.input) })).not.toContain(SENTINEL);
  });
});
