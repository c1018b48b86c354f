import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { existsSync } from 'node:fs';
import { DeleteDBInstanceCommand, DescribeDBInstancesCommand } from '@aws-sdk/client-rds';
import { createRdsClient } from '../../functions/lib/aws/clients.ts';
import { listDrillReports } from '../../functions/lib/drill/report.ts';
import type { DrillPostgres, LocalCertificateAuthority } from '../../local/drill-postgres.ts';
import { rdsRequest } from '../../local/moto-rds-compat.ts';
import type { MotoCompatProxy } from '../../local/nightly-environment.ts';
import type { PitrSource } from '../../local/pitr-postgres.ts';
import { AWS_STEP_FUNCTIONS_LIMITS, type LocalRunResult } from '../../local/state-machine-runner.ts';
import { createTestBucket, createTestKey, createTestSecret, localAwsEnvironment, testClients, uniqueName } from '../harness/aws.ts';
import { deployForTest, type TestDeployment } from '../harness/deployed.ts';
import { alertInbox, backUp, createSecurityGroup, defaultNetwork, pitrProduction, portClosed, rdsWithServers, secretExists, type ReceivedAlert } from './drill-harness.ts';

/**
 * The nightly PITR drill as the source stack deploys it, from the shipped
 * bundles: the drill function reads the RDS instance's point-in-time window,
 * picks the consistent point of the newest dump inside it, restores the
 * instance to that moment (RestoreDBInstanceToPointInTime) into a throwaway,
 * and verifies it against the dump's manifest. RDS is the strict emulation;
 * behind the source instance runs a real PostgreSQL that archives its WAL, and
 * the restore is PostgreSQL's own archive recovery to the moment, so the data
 * checks really run: rows written after the moment must not be there.
 */
let proxy: MotoCompatProxy;
let servers: DrillPostgres;
let ca: LocalCertificateAuthority;
let source: PitrSource;
let deployment: TestDeployment | undefined;
let bucket: string;
let keyArn: string;
let secretArn: string;
let network: Awaited<ReturnType<typeof defaultNetwork>>;
let passwords: string[] = [];
const instanceId = uniqueName('shop-prod').replace(/[^a-z0-9-]/g, '');
/** When the dump took its snapshot, and when the rows written after it were committed. */
let dumpConsistentAt: string;

const rds = () => createRdsClient({ region: 'eu-west-1' });

let sql: (text: string) => Promise<void>;

beforeAll(async () => {
  ({ ca, servers, proxy, passwords } = await rdsWithServers(inject('motoEndpoint')));
  network = await defaultNetwork();
  // Production: a PostgreSQL archiving its WAL, behind an RDS instance with a 7-day window.
  ({ source, sql } = await pitrProduction(servers, ca, {
    instanceId,
    database: 'shop',
    masterUsername: 'shop_admin',
    setupSql: `CREATE TABLE orders (id serial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT clock_timestamp(), amount int NOT NULL);
               CREATE INDEX orders_created ON orders (created_at);
               INSERT INTO orders (amount) SELECT g FROM generate_series(1, 300) g;`,
  }));
  [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  secretArn = await createTestSecret({ username: source.masterUsername, password: source.masterPassword, host: source.host, port: source.port });
  // The nightly dump, then 50 more orders after its snapshot, then RDS ships the logs past both.
  const dumped = await backUp('shop', 'shop', { bucket, kmsKeyArn: keyArn, secretArn });
  dumpConsistentAt = dumped.manifest.consistentAt;
  await sql('INSERT INTO orders (amount) SELECT g FROM generate_series(1, 50) g');
  await source.switchWal();
}, 120_000);

afterAll(async () => {
  await deployment?.stop();
  await rds().send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: instanceId, SkipFinalSnapshot: true })).catch(() => undefined);
  await proxy?.stop();
  ca?.remove();
  process.env.AWS_ENDPOINT_URL = inject('motoEndpoint');
});

function config() {
  return {
    name: uniqueName('drpitr').replace(/[^a-z0-9-]/g, ''),
    source: { account: '123456789012', region: 'eu-west-1', network: { vpcId: network.vpcId, subnetIds: network.subnets, securityGroupIds: [network.securityGroup], egress: 'user-managed' } },
    databases: [{ id: 'shop', connection: { database: 'shop', secretArn, sslMode: 'disable', connectTimeoutSeconds: 3 }, rds: { instanceIdentifier: instanceId } }],
    plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['shop'], rpoMinutes: 1440, rtoMinutes: 60, pitr: { windowDays: 7, maxLagMinutes: 15, drill: { moment: 'dump' } } }],
    storage: { prefix: 'backups/', kmsKeyArn: keyArn },
    drills: {
      subnetIds: network.subnets,
      securityGroupIds: [network.securityGroup],
      amcheck: 'heapallindexed',
      databases: [{ id: 'shop', assertions: [{ name: 'the orders of the moment, not those after it', sql: 'SELECT count(*) = 300 FROM orders' }], freshness: { table: 'orders', column: 'created_at' } }],
    },
    alerts: { subscribers: [{ protocol: 'email', endpoint: 'oncall@example.com' }] },
  };
}

describe('the nightly PITR drill the source stack deploys, from its shipped bundles, against a real recovery to the moment', () => {
  it("restores the instance to the newest dump's consistent point, proves the data of that moment against the dump's manifest, reports RTO and PITR RPO, and deletes everything it made", async () => {
    // Prepare
    const inbox = await alertInbox();
    const drillGroup = await createSecurityGroup(network.vpcId, uniqueName('lifeboat-drill'));
    deployment = await deployForTest({
      config: config(),
      values: { BACKUP_BUCKET: bucket, ALERT_TOPIC_ARN: inbox.topicArn, DRILL_SECURITY_GROUP_IDS: drillGroup },
      awsEnvironment: localAwsEnvironment({ PGSSLROOTCERT: ca.caPath }),
      onLog: () => {},
    });

    // Act: what the drill schedule sends.
    const children: LocalRunResult[] = [];
    const run = await deployment.run('drill', deployment.scheduledInputs('drill')[0], { onChildExecution: (c) => children.push(c) });
    const alerts: ReceivedAlert[] = await inbox.receiveAll();

    // Assess: the run passed.
    expect(servers.failures).toEqual([]);
    expect(run.status, JSON.stringify({ cause: run.cause, children: deployment.children.map((c) => c.output ?? c.cause), alerts: alerts.map((a) => a.message) })).toBe('SUCCEEDED');
    expect(run.output).toEqual({ results: [{ databaseId: 'shop', status: 'passed' }], anyFailed: false });
    expect(alerts).toEqual([]);
    // The PITR branch is the drill's own definition: one child execution, its history and payload far inside Step Functions' limits.
    expect(children).toHaveLength(1);
    // (the Wait/poll loop's length follows how long the recovery takes: a few hundred events here)
    expect(children[0]!.stats.historyEvents).toBeLessThan(AWS_STEP_FUNCTIONS_LIMITS.historyEvents / 10);
    expect(children[0]!.stats.peakPayloadBytes).toBeLessThan(AWS_STEP_FUNCTIONS_LIMITS.payloadBytes / 10);

    // Assess: RDS was asked for exactly that moment, from the source instance, into an isolated tagged throwaway.
    const restores = proxy.seen.map(rdsRequest).filter((r) => r?.action === 'RestoreDBInstanceToPointInTime');
    expect(restores).toHaveLength(1);
    const restore = restores[0]!.params;
    expect(restore.get('SourceDBInstanceIdentifier')).toBe(instanceId);
    // The dump's consistent point, to the millisecond (the 50 orders written right after it, often in the same second, are not in it).
    const moment = new Date(dumpConsistentAt).toISOString();
    expect(new Date(restore.get('RestoreTime')!).toISOString()).toBe(moment);
    expect(restore.get('UseLatestRestorableTime')).toBeNull();
    expect(restore.get('PubliclyAccessible')).toBe('false');
    expect(restore.get('DeletionProtection')).toBe('false');
    const identifier = restore.get('TargetDBInstanceIdentifier')!;
    expect(identifier).toMatch(/^lifeboat-drill-/);
    expect([...restore.entries()].filter(([k]) => /^Tags\.\w+\.\d+\.Key$/.test(k)).map(([, v]) => v)).toContain('lifeboat:drill');
    expect(servers.recoveries.map((r) => [r.id, r.source, r.restoreTime.toISOString(), r.error])).toEqual([[identifier, instanceId, moment, undefined]]);

    // Assess: the report proves the moment's data: the manifest's checks (exact ones told apart), the assertion
    // that only the 300 orders before the moment are there (not the 50 after it), freshness, amcheck.
    const stored = await listDrillReports(testClients().s3, bucket, 'backups/', { databaseId: 'shop' });
    expect(stored).toHaveLength(1);
    const report = stored[0]!.report;
    expect(report.verdict).toBe('passed');
    expect(report.backup).toMatchObject({ kind: 'pitr', id: `${instanceId}@${moment}`, consistentAt: moment });
    expect(report.backup?.location).toContain(`automated backups of instance ${instanceId} at ${moment}, the consistent point of dump`);
    const checks = Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
    expect(checks).toEqual({
      tables: 'passed',
      'row counts': 'passed',
      sequences: 'passed',
      'schema fingerprint': 'passed',
      'large objects': 'passed',
      extensions: 'passed',
      'owners and privileges': 'passed',
      'assertion: the orders of the moment, not those after it': 'passed',
      'freshness: newest row': 'passed',
      amcheck: 'passed',
      'freshness: backup age': 'passed',
    });
    expect(report.checks.find((c) => c.name === 'row counts')?.detail).toBe('300 rows in 1 tables; equal at the moment');
    expect(report.checks.find((c) => c.name === 'schema fingerprint')?.detail).toMatch(/; exact$/);
    expect(report.rto?.seconds).toBeGreaterThan(0);
    expect(report.rpo).toMatchObject({ basis: 'latest-restorable', met: true });
    expect(report.rpo?.seconds).toBeGreaterThanOrEqual(0);
    // The data's own RPO: the moment minus the newest order in the restored database (the 300th, written just before the dump).
    expect(report.rpo?.dataLagSeconds).toBeGreaterThanOrEqual(0);
    expect(report.rpo?.dataLagSeconds).toBeLessThan(60);
    expect(report.checks.find((c) => c.name === 'freshness: backup age')?.detail).toMatch(/^newest restorable moment \(LatestRestorableTime\) is .* old .*; PITR RPO \(pitr\.maxLagMinutes\) 15\.0m$/);

    // Assess: the throwaway is gone: the instance, the recovered server and its directory, the secret.
    const instance = await rds().send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: identifier })).then(() => 'still there', (e: Error) => e.name);
    expect(instance).toBe('DBInstanceNotFoundFault');
    const recovered = servers.started.find((s) => s.id === identifier);
    expect(recovered).toBeDefined();
    expect(servers.running().map((s) => s.id)).not.toContain(identifier);
    expect(await portClosed(recovered!.port)).toBe(true);
    expect(existsSync(recovered!.dataDir)).toBe(false);
    expect(await secretExists(report.drillId)).toBe(false);

    // Assess: no password the drill set is in any log, event, output or report.
    expect(passwords.length).toBeGreaterThanOrEqual(1);
    const everything = JSON.stringify({ logs: Object.values(deployment.lambdas).flatMap((l) => l.logs), events: run.events, children: deployment.children.map((c) => [c.events, c.output]), report });
    for (const password of passwords) expect(everything).not.toContain(password);
  });
});
