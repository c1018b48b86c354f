import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectLockConfigurationCommand } from '@aws-sdk/client-s3';
import { TASK_INPUT_ENV, TASK_TOKEN_ENV } from '../../functions/dump/fargate-task.ts';
import { createS3Client } from '../../functions/lib/aws/clients.ts';
import { vaultNames } from '../../functions/lib/vault/names.ts';
import { credentialsFor } from '../../local/moto-rds-compat.ts';
import type { LocalRunResult } from '../../local/state-machine-runner.ts';
import { capturingOutput } from '../harness/capture.ts';
import { deployForTest, type TestDeployment } from '../harness/deployed.ts';
import { createTestBucket, createTestKey, createTestSecret, localAwsEnvironment, testClients, uniqueName } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import { alertInbox } from './drill-harness.ts';

/**
 * The backup workflow as the source stack deploys it, with databases on
 * `dump.runner: 'fargate'`, run from what ships: the functions from their
 * bundles, and each Fargate task (`ecs:runTask.waitForTaskToken`) as a process
 * running the runner image's entry point with the task definition's
 * environment and the state machine's overrides, reporting with its task
 * token (local/fargate.ts). The plan function decides each database's runners
 * from the deployed config; the execution input names the plan only.
 */

const clients = testClients();
const SOURCE = { account: '111111111111', region: 'eu-west-1' } as const;
const VAULT = { account: '222222222222', region: 'eu-central-1' } as const;
const NETWORK = { vpcId: 'vpc-0a1b2c3d4e5f60718', subnetIds: ['subnet-0aaa1111bbbb2222c', 'subnet-0ddd3333eeee4444f'], securityGroupIds: ['sg-0123456789abcdef0'], egress: 'user-managed' };
const SENTINEL = 'S3NTINEL-fargate-pw-41';

const dbs: Awaited<ReturnType<typeof createTestDatabase>>[] = [];
let bucket: string;
let keyArn: string;
let goodSecret: string;
let badSecret: string;
let deployment: TestDeployment | undefined;

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
afterEach(async () => {
  await deployment?.stop();
  deployment = undefined;
});
afterAll(async () => {
  for (const db of dbs) await db.drop();
});

const database = (id: string, name: string, secretArn: string, runner: 'lambda' | 'fargate') => ({ id, connection: { database: name, secretArn, sslMode: 'disable' as const, connectTimeoutSeconds: 3 }, dump: { runner } });

/** A deployment with these databases in one plan (and a vault, if asked), Fargate in a private network. */
function config(name: string, databases: ReturnType<typeof database>[], vault = false) {
  return {
    name,
    source: { ...SOURCE, network: NETWORK },
    databases,
    plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: databases.map((d) => d.id), rpoMinutes: 1440, rtoMinutes: 60, dump: true, snapshot: false, maxConcurrency: 2 }],
    storage: { prefix: 'backups/', kmsKeyArn: keyArn },
    ...(vault ? { vault: { ...VAULT, retentionDays: 1 } } : {}),
    alerts: { subscribers: [{ protocol: 'email', endpoint: 'oncall@example.com' }] },
  };
}

async function deploy(raw: ReturnType<typeof config>, topicArn: string): Promise<TestDeployment> {
  deployment = await deployForTest({ config: raw, values: { BACKUP_BUCKET: bucket, ALERT_TOPIC_ARN: topicArn }, awsEnvironment: localAwsEnvironment(), onLog: () => {} });
  return deployment;
}

const entered = (r: LocalRunResult, state: string) => r.events.filter((e) => e.type === 'StateEntered' && e.state?.name === state);
type Result = { databaseId: string; status: string; dump: { status: string; backupId?: string; manifestKey?: string; vault?: string; error?: string } };
const childOf = (d: TestDeployment, databaseId: string) => d.children.find((c) => (c.output as Result | undefined)?.databaseId === databaseId)!;
/** The Lambda invocations of a function, by database (what the function's log lines name). */
const lambdaRuns = (d: TestDeployment, placeholder: string) => d.lambdas[placeholder]!.logs.filter((l) => l.includes('"databaseId"')).length;

describe('the backup workflow with databases on Fargate, from what ships', () => {
  it('dumps the Fargate database through ECS RunTask with its task token and the Lambda one through the function, both committed', async () => {
    // Prepare
    const d = await deploy(config(uniqueName('fg1').replace(/[^a-z0-9-]/g, ''), [database('orders', dbs[0]!.name, goodSecret, 'fargate'), database('billing', dbs[1]!.name, goodSecret, 'lambda')]), 'arn:aws:sns:eu-west-1:123456789012:unused');

    // Act: what the plan's schedule sends.
    const { result: run } = await capturingOutput(() => d.run('backup', d.scheduledInputs('backup')[0]));

    // Assess: both succeeded, each on its runner.
    expect(run.status, JSON.stringify(run.cause)).toBe('SUCCEEDED');
    const orders = childOf(d, 'orders');
    const billing = childOf(d, 'billing');
    expect([orders.output, billing.output].map((o) => [(o as Result).databaseId, (o as Result).status, (o as Result).dump.status, (o as Result).dump.vault])).toEqual([
      ['orders', 'succeeded', 'succeeded', 'skipped'],
      ['billing', 'succeeded', 'succeeded', 'skipped'],
    ]);
    expect(entered(orders, 'DumpDatabaseOnFargate')).toHaveLength(1);
    expect(entered(billing, 'DumpDatabaseOnFargate')).toEqual([]);
    expect(d.fargate!.runs).toHaveLength(1);

    // Assess: RunTask got the cluster, the dump task definition, the private subnets and the container overrides; the task input names the database only.
    const [task] = d.fargate!.runs;
    expect(task!.container).toBe('dump');
    expect(task!.parameters).toMatchObject({
      TaskDefinition: 'local-DumpTaskDefinitionArn',
      LaunchType: 'FARGATE',
      NetworkConfiguration: { AwsvpcConfiguration: { Subnets: expect.any(Array), AssignPublicIp: 'DISABLED' } },
      Overrides: { ContainerOverrides: [{ Name: 'dump', Environment: [{ Name: TASK_TOKEN_ENV, Value: expect.any(String) }, { Name: TASK_INPUT_ENV, Value: expect.any(String) }] }] },
    });
    const taskInput = JSON.parse(task!.environment[TASK_INPUT_ENV]!) as Record<string, unknown>;
    expect(taskInput).toEqual({ planId: 'nightly', databaseId: 'orders', executionId: expect.stringContaining(':execution:') });
    // Assess: the container ran with the task definition's environment (the image's job, the bucket, the config object), reported success and ended by itself.
    expect(task!.environment).toMatchObject({ LIFEBOAT_TASK_HANDLER: 'dump', BACKUP_BUCKET: bucket, POWERTOOLS_SERVICE_NAME: 'lifeboat-dump' });
    expect(task!.outcome?.kind).toBe('success');
    expect(task!.exitCode).toBe(0);
    expect(task!.stillRunningAfterReport).toBeUndefined();
    expect(d.fargate!.unknownTokens).toEqual([]);

    // Assess: the Fargate dump is a committed backup like the other (manifest last, in the bucket).
    const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'backups/' }));
    const manifests = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('manifest.json'));
    expect(manifests.map((k) => k.split('/')[1]).sort()).toEqual(['billing', 'orders']);
    const ordersDump = (orders.output as Result).dump;
    expect(manifests).toContain(ordersDump.manifestKey);
    const manifest = JSON.parse(await (await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: ordersDump.manifestKey! }))).Body!.transformToString()) as { inventory: { tables: unknown[] } };
    expect(manifest.inventory.tables).toEqual([{ schema: 'public', name: 't', kind: 'r', rows: 50 }]);
  });

  it("copies the Fargate database's dump into the vault with the vault copy task, and the Lambda database's with the function", async () => {
    // Prepare: the vault bucket of the vault account (Object Lock, compliance mode), named as the vault stack names it, reached through the copier role.
    const name = uniqueName('fg2').replace(/[^a-z0-9-]/g, '');
    const vaultAdmin = createS3Client({ region: VAULT.region, credentials: await credentialsFor(VAULT.account, 'vault-admin') });
    const vaultBucket = vaultNames({ name, vault: VAULT }).bucketName;
    await vaultAdmin.send(new CreateBucketCommand({ Bucket: vaultBucket, CreateBucketConfiguration: { LocationConstraint: VAULT.region }, ObjectLockEnabledForBucket: true }));
    await vaultAdmin.send(new PutObjectLockConfigurationCommand({ Bucket: vaultBucket, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 1 } } } }));
    const d = await deploy(config(name, [database('orders', dbs[0]!.name, goodSecret, 'fargate'), database('billing', dbs[1]!.name, goodSecret, 'lambda')], true), 'arn:aws:sns:eu-west-1:123456789012:unused');

    // Act
    const { result: run } = await capturingOutput(() => d.run('backup', d.scheduledInputs('backup')[0]));

    // Assess: both copied, each on its runner: two tasks for orders (dump, vault copy), the function for billing.
    expect(run.status, JSON.stringify(run.cause)).toBe('SUCCEEDED');
    const orders = childOf(d, 'orders');
    const billing = childOf(d, 'billing');
    expect([orders.output, billing.output].map((o) => (o as Result).dump.vault)).toEqual(['copied', 'copied']);
    expect(d.fargate!.runs.map((t) => [t.taskDefinition, t.container, t.outcome?.kind])).toEqual([
      ['local-DumpTaskDefinitionArn', 'dump', 'success'],
      ['local-VaultCopyTaskDefinitionArn', 'vault-copy', 'success'],
    ]);
    expect(entered(orders, 'CopyDumpToVaultOnFargate')).toHaveLength(1);
    expect(entered(orders, 'CopyDumpToVault')).toEqual([]);
    expect(entered(billing, 'CopyDumpToVaultOnFargate')).toEqual([]);
    expect(entered(billing, 'CopyDumpToVault')).toHaveLength(1);
    expect(lambdaRuns(d, 'VaultCopyFunctionArn')).toBeGreaterThan(0);

    // Assess: the copy task names the dump only, and runs with the vault's names from the template.
    const copy = d.fargate!.runs[1]!;
    const ordersDump = (orders.output as Result).dump;
    expect(JSON.parse(copy.environment[TASK_INPUT_ENV]!)).toEqual({ planId: 'nightly', databaseId: 'orders', executionId: expect.stringContaining(':execution:'), bucket, manifestKey: ordersDump.manifestKey });
    expect(copy.environment).toMatchObject({ LIFEBOAT_TASK_HANDLER: 'vault-copy', VAULT_BUCKET: vaultBucket });

    // Assess: the vault holds both committed dumps, manifest beside data.
    const listed = await vaultAdmin.send(new ListObjectsV2Command({ Bucket: vaultBucket, Prefix: 'backups/' }));
    const vaultManifests = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('manifest.json'));
    expect(vaultManifests).toContain(ordersDump.manifestKey);
    expect(vaultManifests.map((k) => k.split('/')[1]).sort()).toEqual(['billing', 'orders']);
  });

  it('alerts a Fargate dump that fails with the error its task reports, and no secret leaks', async () => {
    // Prepare
    const inbox = await alertInbox();
    const d = await deploy(config(uniqueName('fg3').replace(/[^a-z0-9-]/g, ''), [database('ledger', dbs[0]!.name, badSecret, 'fargate')]), inbox.topicArn);

    // Act
    const { result: run, output } = await capturingOutput(() => d.run('backup', d.scheduledInputs('backup')[0]));
    const alerts = await inbox.receiveAll();

    // Assess: the run reports the database failed; the task reported the dump handler's error class; one alert names it.
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('BackupIncomplete');
    expect(childOf(d, 'ledger').output).toMatchObject({ databaseId: 'ledger', status: 'failed', dump: { status: 'failed', error: 'DatabaseConnectionError' } });
    expect(d.fargate!.runs.map((t) => [t.outcome?.kind, t.outcome?.kind === 'failure' ? t.outcome.error : undefined])).toEqual([['failure', 'DatabaseConnectionError']]);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.subject).toBe('[lifeboat] Backup failed: database ledger, plan nightly: DatabaseConnectionError');
    expect(alerts[0]!.message).toMatch(/password authentication failed/);
    expect(alerts[0]!.details).toMatchObject({ kind: 'backup-failed', databaseId: 'ledger', details: { backup: 'dump' } });
    const taskLogs = d.fargate!.runs.flatMap((t) => t.logs);
    expect(taskLogs.join('\n')).toContain('DatabaseConnectionError');
    expect(JSON.stringify({ output, taskLogs, events: run.events, children: d.children.map((c) => c.events), alerts, outcomes: d.fargate!.runs.map((t) => t.outcome) })).not.toContain(SENTINEL);
  });
});
