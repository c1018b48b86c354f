import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { existsSync } from 'node:fs';
import { DescribeDBInstancesCommand, DescribeDBSubnetGroupsCommand } from '@aws-sdk/client-rds';
import { createRdsClient } from '../../functions/lib/aws/clients.ts';
import { listDrillReports } from '../../functions/lib/drill/report.ts';
import type { DrillPostgres, LocalCertificateAuthority } from '../../local/drill-postgres.ts';
import { rdsRequest } from '../../local/moto-rds-compat.ts';
import type { MotoCompatProxy } from '../../local/nightly-environment.ts';
import { createTestBucket, createTestKey, createTestSecret, localAwsEnvironment, testClients, uniqueName } from '../harness/aws.ts';
import { deployForTest, type TestDeployment } from '../harness/deployed.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import { alertInbox, backUp, createSecurityGroup, defaultNetwork, portClosed, rdsWithServers, secretExists, type ReceivedAlert } from './drill-harness.ts';

/**
 * The nightly drill as the source stack deploys it, run from the shipped
 * bundles: the drill function (Node.js bundle) selects, provisions an RDS
 * instance, polls it, sets its password and tears it down; the drill restore
 * function (the runner image's entry point) restores the dump into it with
 * pg_restore and verifies it. The instance is emulated by the strict RDS layer
 * (it takes several polls to become available, refuses calls while busy) and
 * backed by a real PostgreSQL server that serves TLS with a local CA's
 * certificate, which the runner trusts as the image trusts the RDS CA bundle
 * (PGSSLROOTCERT), so the drill connects with `verify-full` as it does on AWS.
 */
let proxy: MotoCompatProxy;
let servers: DrillPostgres;
let ca: LocalCertificateAuthority;
let deployment: TestDeployment | undefined;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let bucket: string;
let keyArn: string;
let secretArn: string;
let network: Awaited<ReturnType<typeof defaultNetwork>>;
/** Every master password the drill sent to RDS (seen on the wire): none may appear in any output. */
let passwords: string[] = [];

beforeAll(async () => {
  ({ ca, servers, proxy, passwords } = await rdsWithServers(inject('motoEndpoint')));
  network = await defaultNetwork();
  db = await createTestDatabase('lbdrilldep');
  await withClient(db.name, (c) =>
    c.query(`CREATE TABLE orders (id serial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), amount int NOT NULL);
             CREATE INDEX orders_created ON orders (created_at);
             INSERT INTO orders (amount) SELECT g FROM generate_series(1, 300) g;`),
  );
  [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  const s = pgServer();
  secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  await backUp('alpha', db.name, { bucket, kmsKeyArn: keyArn, secretArn });
}, 60_000);

afterAll(async () => {
  await deployment?.stop();
  await proxy?.stop();
  ca?.remove();
  await db?.drop();
  process.env.AWS_ENDPOINT_URL = inject('motoEndpoint');
});

/** A deployment that dumps and drills one database, its throwaways in moto's default VPC. */
function config(runner: 'lambda' | 'fargate' = 'lambda') {
  return {
    name: uniqueName('drdep').replace(/[^a-z0-9-]/g, ''),
    source: { account: '123456789012', region: 'eu-west-1', network: { vpcId: network.vpcId, subnetIds: network.subnets, securityGroupIds: [network.securityGroup], egress: 'user-managed' } },
    databases: [{ id: 'alpha', connection: { database: db.name, secretArn, sslMode: 'disable', connectTimeoutSeconds: 3 }, dump: { runner } }],
    plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['alpha'], rpoMinutes: 1440, rtoMinutes: 60, dump: true, snapshot: false }],
    storage: { prefix: 'backups/', kmsKeyArn: keyArn },
    drills: {
      subnetIds: network.subnets,
      securityGroupIds: [network.securityGroup],
      amcheck: 'heapallindexed',
      databases: [{ id: 'alpha', assertions: [{ name: 'all orders restored', sql: 'SELECT count(*) = 300 FROM orders' }] }],
    },
    alerts: { subscribers: [{ protocol: 'email', endpoint: 'oncall@example.com' }] },
  };
}

describe('the nightly drill the source stack deploys, from its shipped bundles, into an RDS instance backed by PostgreSQL', () => {
  it('restores the latest dump over verify-full TLS, proves it check by check, reports, and deletes everything it made', async () => {
    // Prepare
    const inbox = await alertInbox();
    // The drill security group the stack creates (ingress from the runners only).
    const drillGroup = await createSecurityGroup(network.vpcId, uniqueName('lifeboat-drill'));
    deployment = await deployForTest({
      config: config(),
      values: { BACKUP_BUCKET: bucket, ALERT_TOPIC_ARN: inbox.topicArn, DRILL_SECURITY_GROUP_IDS: drillGroup },
      awsEnvironment: localAwsEnvironment({ PGSSLROOTCERT: ca.caPath }),
      onLog: () => {},
    });
    const [input] = deployment.scheduledInputs('drill');

    // Act: what the drill schedule sends.
    const run = await deployment.run('drill', input);
    const alerts: ReceivedAlert[] = await inbox.receiveAll();

    // Assess: the run passed, with the drill's result in its child execution.
    expect(servers.failures).toEqual([]);
    expect(run.status, JSON.stringify({ cause: run.cause, children: deployment.children.map((c) => c.output ?? c.cause), alerts: alerts.map((a) => a.message) })).toBe('SUCCEEDED');
    expect(run.output).toEqual({ results: [{ databaseId: 'alpha', status: 'passed' }], anyFailed: false });
    expect(alerts).toEqual([]);

    // Assess: the report, written by the drill function, holds every check passed.
    const stored = await listDrillReports(testClients().s3, bucket, 'backups/', { databaseId: 'alpha' });
    expect(stored).toHaveLength(1);
    const report = stored[0]!.report;
    expect(report.verdict).toBe('passed');
    const checks = Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
    expect(checks).toMatchObject({ sha256: 'passed', decryption: 'passed', pg_restore: 'passed', 'row counts': 'passed', 'schema fingerprint': 'passed', amcheck: 'passed', 'assertion: all orders restored': 'passed' });
    expect(report.checks.find((c) => c.name === 'row counts')?.detail).toBe('300 rows in 1 tables');
    expect(report.rto?.seconds).toBeGreaterThan(0);

    // Assess: the throwaway went through RDS (created with the drill's network, its password set by ModifyDBInstance)
    // and is gone: the instance, its server, its subnet group, its secret.
    const created = proxy.seen.map(rdsRequest).filter((r) => r?.action === 'CreateDBInstance');
    expect(created).toHaveLength(1);
    const identifier = created[0]!.params.get('DBInstanceIdentifier')!;
    expect(identifier).toMatch(/^lifeboat-drill-/);
    expect(created[0]!.params.get('PubliclyAccessible')).toBe('false');
    expect([...created[0]!.params.entries()].filter(([k]) => k.startsWith('VpcSecurityGroupIds.')).map(([, v]) => v)).toContain(drillGroup);
    expect(proxy.seen.map(rdsRequest).filter((r) => r?.action === 'ModifyDBInstance')).toHaveLength(1);
    const rds = createRdsClient({ region: 'eu-west-1' });
    const instance = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: identifier })).then(() => 'still there', (e: Error) => e.name);
    expect(instance).toBe('DBInstanceNotFoundFault');
    const groups = await rds.send(new DescribeDBSubnetGroupsCommand({ DBSubnetGroupName: identifier })).then(() => 'still there', (e: Error) => e.name);
    expect(groups).toBe('DBSubnetGroupNotFoundFault');
    expect(servers.started.map((s) => s.id)).toEqual([identifier]);
    expect(servers.running()).toEqual([]);
    expect(await portClosed(servers.started[0]!.port)).toBe(true);
    expect(existsSync(servers.started[0]!.dataDir)).toBe(false);
    expect(await secretExists(report.drillId)).toBe(false);

    // Assess: no password the drill set is in any log, event, output or report.
    expect(passwords.length).toBeGreaterThanOrEqual(2);
    const everything = JSON.stringify({ logs: Object.values(deployment.lambdas).flatMap((l) => l.logs), events: run.events, children: deployment.children.map((c) => [c.events, c.output]), report });
    for (const password of passwords) expect(everything).not.toContain(password);
  });

  it('fails at once, names the certificate problem and still tears down when the runner does not trust the server certificate', async () => {
    // Prepare: the same stack, its runner without the CA that signed the servers' certificates.
    const inbox = await alertInbox();
    const drillGroup = await createSecurityGroup(network.vpcId, uniqueName('lifeboat-drill'));
    await deployment?.stop();
    deployment = await deployForTest({
      config: config(),
      values: { BACKUP_BUCKET: bucket, ALERT_TOPIC_ARN: inbox.topicArn, DRILL_SECURITY_GROUP_IDS: drillGroup },
      awsEnvironment: localAwsEnvironment(),
      onLog: () => {},
    });
    const restoreFunction = deployment.lambdas.DrillRestoreFunctionArn!.asTask();
    const restoreCalls: string[] = [];
    const counting = async (event: unknown) => (restoreCalls.push((event as { action: string }).action), restoreFunction(event));
    const startedBefore = servers.started.length;

    // Act
    const run = await deployment.run('drill', deployment.scheduledInputs('drill')[0], { resources: { [deployment.functionArns.DrillRestoreFunctionArn!]: counting } });
    const alerts = await inbox.receiveAll();

    // Assess: one restore attempt (no retry on a certificate), a failed drill whose alert names the certificate and the CA bundle.
    expect(run.status).toBe('FAILED');
    expect(restoreCalls).toEqual(['restore']);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.details).toMatchObject({ kind: 'drill-failed', databaseId: 'alpha', failure: 'DatabaseConnectionError' });
    expect(alerts[0]!.message).toMatch(/Next step: the server's TLS certificate was not trusted \(sslMode verify-full\): check that PGSSLROOTCERT/);

    // Assess: the throwaway and its server are gone all the same.
    const [server] = servers.started.slice(startedBefore);
    expect(server).toBeDefined();
    expect(servers.running()).toEqual([]);
    expect(await portClosed(server!.port)).toBe(true);
    const instance = await createRdsClient({ region: 'eu-west-1' }).send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: server!.id })).then(() => 'still there', (e: Error) => e.name);
    expect(instance).toBe('DBInstanceNotFoundFault');
  });

  it('restores a database dumped on Fargate with the drill restore task (the image entry point, its task token) and verifies with the function', async () => {
    // Prepare: alpha on dump.runner "fargate": the plan function gives its drill restoreRunner "fargate".
    const inbox = await alertInbox();
    const drillGroup = await createSecurityGroup(network.vpcId, uniqueName('lifeboat-drill'));
    await deployment?.stop();
    deployment = await deployForTest({
      config: config('fargate'),
      values: { BACKUP_BUCKET: bucket, ALERT_TOPIC_ARN: inbox.topicArn, DRILL_SECURITY_GROUP_IDS: drillGroup },
      awsEnvironment: localAwsEnvironment({ PGSSLROOTCERT: ca.caPath }),
      onLog: () => {},
    });
    const restoreFunction = deployment.lambdas.DrillRestoreFunctionArn!.asTask();
    const functionCalls: string[] = [];
    const counting = async (event: unknown) => (functionCalls.push((event as { action: string }).action), restoreFunction(event));

    // Act
    const run = await deployment.run('drill', deployment.scheduledInputs('drill')[0], { resources: { [deployment.functionArns.DrillRestoreFunctionArn!]: counting } });

    // Assess: passed; the restore ran as the Fargate task from the image, the verification on the function.
    expect(run.status, JSON.stringify({ cause: run.cause, children: deployment.children.map((c) => c.output), tasks: deployment.fargate?.runs.map((t) => t.outcome) })).toBe('SUCCEEDED');
    expect(run.output).toEqual({ results: [{ databaseId: 'alpha', status: 'passed' }], anyFailed: false });
    expect(deployment.fargate!.runs.map((t) => [t.taskDefinition, t.container, t.outcome?.kind, t.exitCode])).toEqual([['local-DrillRestoreTaskDefinitionArn', 'drill-restore', 'success', 0]]);
    expect(functionCalls).toEqual(['verify']);
    // Assess: the task input is the restore step's part of the state, well inside RunTask's 8 KiB of overrides, with no password.
    const task = deployment.fargate!.runs[0]!;
    expect(JSON.parse(task.environment.LIFEBOAT_TASK_INPUT!)).toMatchObject({ action: 'restore', drill: { request: { databaseId: 'alpha', restoreRunner: 'fargate' } } });
    expect(JSON.stringify((task.parameters as { Overrides: unknown }).Overrides).length).toBeLessThan(8192);
    for (const password of passwords) expect(JSON.stringify({ overrides: task.parameters, logs: task.logs })).not.toContain(password);
    expect(servers.running()).toEqual([]);
  });
});
