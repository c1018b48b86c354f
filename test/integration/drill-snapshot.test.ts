import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { CreateDBClusterCommand, CreateDBClusterSnapshotCommand, CreateDBInstanceCommand, CreateDBSnapshotCommand, DeleteDBClusterCommand, DeleteDBInstanceCommand, DeleteDBSnapshotCommand, DescribeDBInstancesCommand, DescribeDBSubnetGroupsCommand, RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Logger } from '@aws-lambda-powertools/logger';
import { localDrillDeps, runLocalDrill, type LocalDrillResult } from '../../cli/local-drill.ts';
import { DRILL_TAG, drillResourceName } from '../../functions/lib/drill/provisioner.ts';
import { RdsProvisioner } from '../../functions/lib/drill/rds-provisioner.ts';
import { createTestBucket, testClients, uniqueName } from '../harness/aws.ts';
import { alertInbox, capturingOutput, defaultNetwork, secretExists, tempRegistry, type ReceivedAlert } from './drill-harness.ts';

const SENTINEL = 'S3NTINEL-snapshot-master-pw';
const calls: { command: string; input: Record<string, unknown> }[] = [];

/** Clients that record every command they send (call shapes; moto does not echo every parameter back). */
function recording<T extends RDSClient | SecretsManagerClient>(client: T): T {
  (client.middlewareStack as RDSClient['middlewareStack']).add(
    (next, context) => async (args) => {
      calls.push({ command: String(context.commandName), input: structuredClone(args.input as Record<string, unknown>) });
      return next(args);
    },
    { step: 'initialize', name: 'recordCalls' },
  );
  return client;
}

const rds = recording(new RDSClient({}));
const sourceInstance = uniqueName('prod-orders');
let network: Awaited<ReturnType<typeof defaultNetwork>>;
let drill: LocalDrillResult;
let output: string[];
let alerts: ReceivedAlert[];
let registryDir: string;

beforeAll(async () => {
  network = await defaultNetwork();
  await rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: sourceInstance, DBInstanceClass: 'db.r6g.large', Engine: 'postgres', MasterUsername: 'app_admin', MasterUserPassword: 'not-the-drill-password', AllocatedStorage: 100 }));
  await rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: sourceInstance, DBSnapshotIdentifier: `${sourceInstance}-snap-1` }));
  const clients = testClients();
  const bucket = await createTestBucket();
  registryDir = tempRegistry();
  const inbox = await alertInbox();
  const deps = localDrillDeps({ clients: { ...clients, secrets: recording(new SecretsManagerClient({})), rds }, storage: { bucket, prefix: 'backups/' }, registryDir, rdsEmulated: true });
  deps.generatePassword = () => SENTINEL;
  calls.length = 0;
  ({ result: drill, output } = await capturingOutput(() =>
    runLocalDrill({
      requests: [
        {
          databaseId: 'orders',
          planId: 'nightly',
          backupKind: 'snapshot',
          rds: { instanceIdentifier: sourceInstance },
          databaseName: 'orders',
          targets: { rpoMinutes: 60, rtoMinutes: 60 },
          assertions: [{ name: 'has orders', sql: 'SELECT count(*) > 0 FROM orders' }],
          freshness: { table: 'orders', column: 'created_at' },
          instance: { instanceClass: 'db.t4g.micro', subnetIds: network.subnets, securityGroupIds: [network.securityGroup] },
        },
      ],
      deps,
      alert: { sns: inbox.sns, topicArn: inbox.topicArn },
      logger: new Logger({ serviceName: 'lifeboat-test' }),
    }),
  ));
  alerts = await inbox.receiveAll();
}, 60_000);

afterAll(async () => {
  await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: sourceInstance, SkipFinalSnapshot: true })).catch(() => undefined);
  await rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: `${sourceInstance}-snap-1` })).catch(() => undefined);
  rmSync(registryDir, { recursive: true, force: true });
});

const call = (command: string) => calls.find((c) => c.command === command);
const index = (command: string) => calls.findIndex((c) => c.command === command);

describe('snapshot drill against moto', () => {
  it('restores the snapshot into an isolated, small, unprotected throwaway tagged with the drill', () => {
    expect(drill.run.status, String(drill.run.cause)).toBe('SUCCEEDED');
    const report = drill.reports[0]!;
    const name = drillResourceName(report.drillId);
    expect(call('CreateDBSubnetGroupCommand')?.input).toMatchObject({ DBSubnetGroupName: name, SubnetIds: network.subnets });
    const restore = call('RestoreDBInstanceFromDBSnapshotCommand')!.input;
    expect(restore).toMatchObject({
      DBInstanceIdentifier: name,
      DBSnapshotIdentifier: `${sourceInstance}-snap-1`,
      DBInstanceClass: 'db.t4g.micro',
      DBSubnetGroupName: name,
      VpcSecurityGroupIds: [network.securityGroup],
      PubliclyAccessible: false,
      DeletionProtection: false,
      MultiAZ: false,
      BackupRetentionPeriod: 0,
    });
    const tags = Object.fromEntries((restore.Tags as { Key: string; Value: string }[]).map((t) => [t.Key, t.Value]));
    expect(tags).toEqual({
      [DRILL_TAG.drill]: report.drillId,
      [DRILL_TAG.execution]: drill.run.executionArn,
      [DRILL_TAG.expiresAt]: expect.any(String),
      [DRILL_TAG.database]: 'orders',
    });
    expect(Date.parse(tags[DRILL_TAG.expiresAt]!)).toBeGreaterThan(Date.now());
  });

  it('sets a fresh master password after the restore, through a new secret, and never logs it', () => {
    const modify = call('ModifyDBInstanceCommand')!.input;
    expect(modify).toMatchObject({ DBInstanceIdentifier: drillResourceName(drill.reports[0]!.drillId), MasterUserPassword: SENTINEL, ApplyImmediately: true });
    expect(index('RestoreDBInstanceFromDBSnapshotCommand')).toBeLessThan(index('CreateSecretCommand'));
    expect(index('CreateSecretCommand')).toBeLessThan(index('ModifyDBInstanceCommand'));
    const secret = JSON.parse(call('CreateSecretCommand')!.input.SecretString as string);
    expect(secret).toMatchObject({ username: 'app_admin', password: SENTINEL, port: 5432 });
    const everything = JSON.stringify({ output, events: drill.events, reports: drill.reports, alerts, items: drill.items });
    expect(everything).not.toContain(SENTINEL);
  });

  it('says the data checks were not performed (emulated) and never reports one as passed', () => {
    const report = drill.reports[0]!;
    expect(report.verdict).toBe('emulated');
    expect(drill.items[0]).toMatchObject({ databaseId: 'orders', status: 'emulated' });
    expect(report.instance).toMatchObject({ provider: 'rds', emulated: true });
    const statuses = Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
    expect(statuses).toEqual({
      'restored data readable': 'not-performed',
      'assertion: has orders': 'not-performed',
      'freshness: newest row': 'not-performed',
      amcheck: 'not-performed',
      // Backup age is metadata, not data: it is really checked.
      'freshness: backup age': 'passed',
    });
    expect(report.checks.find((c) => c.name === 'amcheck')?.detail).toMatch(/^emulated: .*moto.*hold no data/);
    expect(report.rto).toMatchObject({ seconds: null, met: null });
    expect(report.summary).toMatch(/emulated instance: 4 data checks were not performed/);
    expect(alerts).toEqual([]);
  });

  it('tears down the instance, its secret and the subnet group it created', async () => {
    const report = drill.reports[0]!;
    const name = drillResourceName(report.drillId);
    expect(call('DeleteDBInstanceCommand')?.input).toMatchObject({ DBInstanceIdentifier: name, SkipFinalSnapshot: true, DeleteAutomatedBackups: true });
    expect(report.teardown.items.map((i) => `${i.type}:${i.outcome}`)).toEqual(['secret:deleted', 'rds-instance:deleted', 'rds-subnet-group:deleted']);
    await expect(rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: name }))).rejects.toThrow(/not found/i);
    await expect(rds.send(new DescribeDBSubnetGroupsCommand({ DBSubnetGroupName: name }))).rejects.toThrow(/not found/i);
    expect(await secretExists(report.drillId)).toBe(false);
  });
});

describe('RDS provisioner on moto, other backup kinds', () => {
  const provisioner = new RdsProvisioner({ clients: { source: rds }, emulated: true });
  const tags = (drillId: string) => ({ drillId, databaseId: 'orders', executionId: 'arn:aws:states:eu-west-1:000000000000:execution:drill:x', expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
  const instance = { instanceClass: 'db.t4g.micro', subnetGroupName: undefined, securityGroupIds: [] as string[] };

  it('creates a fresh, isolated instance for a dump drill, with a throwaway initial password', async () => {
    calls.length = 0;
    const drillId = `20260301T040000Z-${uniqueName('d').slice(2, 8)}`;
    const backup = { kind: 'dump' as const, backupId: 'b', from: 'source' as const, bucket: 'b', prefix: 'backups/', manifestKey: 'k', consistentAt: new Date().toISOString(), databaseName: 'orders', serverMajor: 16, sizeBytes: 30 * 1024 ** 3 };
    const ref = await provisioner.provision({ tags: tags(drillId), backup, instance });
    expect(call('CreateDBInstanceCommand')?.input).toMatchObject({
      DBInstanceIdentifier: drillResourceName(drillId),
      Engine: 'postgres',
      EngineVersion: '16',
      AllocatedStorage: 60,
      StorageEncrypted: true,
      PubliclyAccessible: false,
      DeletionProtection: false,
      MultiAZ: false,
      BackupRetentionPeriod: 0,
      MasterUsername: 'lifeboat_drill',
    });
    expect(await provisioner.status(ref)).toMatchObject({ state: 'available', masterUsername: 'lifeboat_drill' });
    expect((await provisioner.teardown(drillId, 'source', ref)).map((i) => `${i.type}:${i.outcome}`)).toEqual(['rds-instance:deleted']);
  });

  it('restores an Aurora cluster snapshot as a cluster plus one instance, and tears both down without a ref', async () => {
    const cluster = uniqueName('aurora-src');
    await rds.send(new CreateDBClusterCommand({ DBClusterIdentifier: cluster, Engine: 'aurora-postgresql', MasterUsername: 'app_admin', MasterUserPassword: 'not-the-drill-password' }));
    const snapshot = await rds.send(new CreateDBClusterSnapshotCommand({ DBClusterIdentifier: cluster, DBClusterSnapshotIdentifier: `${cluster}-snap` }));
    calls.length = 0;
    const drillId = `20260301T040000Z-${uniqueName('c').slice(2, 8)}`;
    const backup = { kind: 'snapshot' as const, backupId: `${cluster}-snap`, snapshotArn: snapshot.DBClusterSnapshot!.DBClusterSnapshotArn!, from: 'source' as const, isCluster: true, sourceIdentifier: cluster, engine: 'aurora-postgresql', consistentAt: new Date().toISOString() };
    const ref = await provisioner.provision({ tags: tags(drillId), backup, instance });
    const name = drillResourceName(drillId);
    expect(call('RestoreDBClusterFromSnapshotCommand')?.input).toMatchObject({ DBClusterIdentifier: name, SnapshotIdentifier: backup.backupId, Engine: 'aurora-postgresql', DeletionProtection: false });
    expect(call('CreateDBInstanceCommand')?.input).toMatchObject({ DBInstanceIdentifier: `${name}-1`, DBClusterIdentifier: name, DBInstanceClass: 'db.t4g.micro', PubliclyAccessible: false });
    await provisioner.applyPassword(ref, 'fresh-cluster-password');
    expect(call('ModifyDBClusterCommand')?.input).toMatchObject({ DBClusterIdentifier: name, MasterUserPassword: 'fresh-cluster-password', ApplyImmediately: true });
    const items = await provisioner.teardown(drillId, 'source');
    expect(items.filter((i) => i.outcome === 'deleted').map((i) => `${i.type}:${i.id}`)).toEqual([`rds-instance:${name}-1`, `rds-cluster:${name}`]);
    await rds.send(new DeleteDBClusterCommand({ DBClusterIdentifier: cluster, SkipFinalSnapshot: true })).catch(() => undefined);
  });
});
