import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { rmSync } from 'node:fs';
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  DeleteDBClusterCommand,
  DeleteDBInstanceCommand,
  DescribeDBClustersCommand,
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  RDSClient,
  StartDBInstanceAutomatedBackupsReplicationCommand,
} from '@aws-sdk/client-rds';
import { Logger } from '@aws-lambda-powertools/logger';
import { localDrillDeps, runLocalDrill, type LocalDrillResult } from '../../cli/local-drill.ts';
import type { DrillRequestInput } from '../../functions/lib/drill/types.ts';
import { drillResourceName } from '../../functions/lib/drill/provisioner.ts';
import type { DrillPostgres, LocalCertificateAuthority } from '../../local/drill-postgres.ts';
import { failRds, rdsRequest } from '../../local/moto-rds-compat.ts';
import type { MotoCompatProxy } from '../../local/nightly-environment.ts';
import { waitUntilAvailable } from '../../local/strict-rds.ts';
import { createTestBucket, testClients, uniqueName } from '../harness/aws.ts';
import { alertInbox, capturingOutput, rdsWithServers, secretExists, tempRegistry } from './drill-harness.ts';

/**
 * PITR drills on the strict RDS emulation, where no server backs the restored
 * instances (their data checks run `emulated`, never passed): an Aurora
 * cluster restored to a moment plus its instance, a restore from the automated
 * backups replicated to the copy region, and the failures: no dump inside the
 * window, no window at all, RDS refusing the restore. Each failure alerts,
 * names what and where, and leaves nothing behind.
 */
const COPY = 'eu-central-1';
let proxy: MotoCompatProxy;
let servers: DrillPostgres;
let ca: LocalCertificateAuthority;
let rds: RDSClient;
let copyRds: RDSClient;
let bucket: string;
const registries: string[] = [];
const instanceId = uniqueName('pitr-src').replace(/[^a-z0-9-]/g, '');
const noWindowId = uniqueName('nowin-src').replace(/[^a-z0-9-]/g, '');
const clusterId = uniqueName('pitr-aurora').replace(/[^a-z0-9-]/g, '');

beforeAll(async () => {
  ({ ca, servers, proxy } = await rdsWithServers(inject('motoEndpoint'), () => false));
  rds = new RDSClient({});
  copyRds = new RDSClient({ region: COPY });
  bucket = await createTestBucket();
  await rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: instanceId, Engine: 'postgres', DBInstanceClass: 'db.r6g.large', AllocatedStorage: 100, MasterUsername: 'app', MasterUserPassword: 'not-used-here-1', BackupRetentionPeriod: 7 }));
  await rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: noWindowId, Engine: 'postgres', DBInstanceClass: 'db.r6g.large', AllocatedStorage: 100, MasterUsername: 'app', MasterUserPassword: 'not-used-here-2', BackupRetentionPeriod: 0 }));
  await rds.send(new CreateDBClusterCommand({ DBClusterIdentifier: clusterId, Engine: 'aurora-postgresql', MasterUsername: 'app', MasterUserPassword: 'not-used-here-3', BackupRetentionPeriod: 7 }));
  await waitUntilAvailable(rds, { instances: [instanceId, noWindowId], clusters: [clusterId] });
}, 120_000);

afterAll(async () => {
  await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: instanceId, SkipFinalSnapshot: true })).catch(() => undefined);
  await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: noWindowId, SkipFinalSnapshot: true })).catch(() => undefined);
  await rds.send(new DeleteDBClusterCommand({ DBClusterIdentifier: clusterId, SkipFinalSnapshot: true })).catch(() => undefined);
  await proxy?.stop();
  ca?.remove();
  process.env.AWS_ENDPOINT_URL = inject('motoEndpoint');
  for (const dir of registries) rmSync(dir, { recursive: true, force: true });
});

function request(overrides: Partial<DrillRequestInput>): DrillRequestInput {
  return {
    databaseId: 'orders',
    planId: 'nightly',
    databaseName: 'orders',
    backupKind: 'pitr',
    rds: { instanceIdentifier: instanceId },
    pitr: { moment: 'latest', from: 'source' },
    targets: { rpoMinutes: 15, rtoMinutes: 60 },
    instance: { instanceClass: 'db.t4g.micro', securityGroupIds: [] },
    pollIntervalSeconds: 0,
    ...overrides,
  };
}

async function drill(req: DrillRequestInput): Promise<{ result: LocalDrillResult; alerts: Awaited<ReturnType<Awaited<ReturnType<typeof alertInbox>>['receiveAll']>> }> {
  const inbox = await alertInbox();
  const registryDir = tempRegistry();
  registries.push(registryDir);
  const deps = localDrillDeps({ clients: { ...testClients(), rds }, storage: { bucket, prefix: 'backups/' }, registryDir, rdsEmulated: true, copyRds });
  const { result } = await capturingOutput(() => runLocalDrill({ requests: [req], deps, alert: { sns: inbox.sns, topicArn: inbox.topicArn }, logger: new Logger({ serviceName: 'lifeboat-test', logLevel: 'SILENT' }) }));
  return { result, alerts: await inbox.receiveAll() };
}

const seenSince = (from: number, action: string) => proxy.seen.slice(from).map(rdsRequest).filter((r) => r?.action === action);

async function gone(id: string, client = rds): Promise<boolean> {
  const found = await client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id })).then((o) => o.DBInstances?.[0], () => undefined);
  return found === undefined || found.DBInstanceStatus === 'deleting';
}

describe('PITR drills on emulated RDS', () => {
  it('restores an Aurora cluster to its newest restorable moment plus one Aurora instance, reports the data checks as emulated, and deletes both', async () => {
    // Prepare
    const from = proxy.seen.length;

    // Act
    const { result, alerts } = await drill(request({ databaseId: 'billing', rds: { clusterIdentifier: clusterId }, instance: { instanceClass: 'db.t4g.medium', securityGroupIds: [] }, assertions: [{ name: 'x', sql: 'SELECT true' }] }));

    // Assess: the calls.
    expect(result.run.status, String(result.run.cause)).toBe('SUCCEEDED');
    const report = result.reports[0]!;
    const name = drillResourceName(report.drillId);
    const restore = seenSince(from, 'RestoreDBClusterToPointInTime');
    expect(restore).toHaveLength(1);
    expect(Object.fromEntries([...restore[0]!.params.entries()].filter(([k]) => ['DBClusterIdentifier', 'SourceDBClusterIdentifier', 'UseLatestRestorableTime', 'RestoreToTime', 'RestoreType', 'DeletionProtection'].includes(k)))).toEqual({
      DBClusterIdentifier: name,
      SourceDBClusterIdentifier: clusterId,
      // The newest restorable moment as RDS reported it at selection, sent as an explicit time: the report says what was restored.
      RestoreToTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      RestoreType: 'full-copy',
      DeletionProtection: 'false',
    });
    const member = seenSince(from, 'CreateDBInstance');
    expect(member.map((r) => [r!.params.get('DBInstanceIdentifier'), r!.params.get('DBClusterIdentifier'), r!.params.get('DBInstanceClass'), r!.params.get('PubliclyAccessible')])).toEqual([[`${name}-1`, name, 'db.t4g.medium', 'false']]);

    // Assess: emulated, said so, never passed; the PITR RPO is measured from the cluster's LatestRestorableTime.
    expect(report.verdict).toBe('emulated');
    const restoredTo = new Date(restore[0]!.params.get('RestoreToTime')!).toISOString();
    expect(report.backup).toMatchObject({ kind: 'pitr', id: `${clusterId}@${restoredTo}`, consistentAt: restoredTo });
    const statuses = Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
    expect(statuses).toEqual({ 'restored data readable': 'not-performed', 'assertion: x': 'not-performed', amcheck: 'not-performed', 'freshness: backup age': 'passed' });
    const latest = (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: clusterId }))).DBClusters![0]!.LatestRestorableTime!;
    expect(report.rpo?.basis).toBe('latest-restorable');
    expect(Date.parse(report.backup!.consistentAt)).toBeLessThanOrEqual(latest.getTime());
    expect(report.rpo?.note).toMatch(/^drill start minus the newest restorable moment \(LatestRestorableTime \S+\); the drill restored to /);
    expect(alerts).toEqual([]);

    // Assess: both torn down, and the secret.
    // (strict RDS keeps them `deleting` for a few polls: teardown is retried until they are absent)
    expect(report.teardown.status).toBe('complete');
    expect(report.teardown.items.map((i) => i.type)).toEqual(['secret', 'rds-instance', 'rds-cluster']);
    expect(report.teardown.items.every((i) => i.outcome === 'deleted' || i.outcome === 'absent')).toBe(true);
    expect(seenSince(from, 'DeleteDBCluster').map((r) => r!.params.get('DBClusterIdentifier'))).toContain(name);
    expect(await gone(`${name}-1`)).toBe(true);
    expect(await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: name })).then((o) => o.DBClusters?.[0]?.Status, (e: Error) => e.name)).toMatch(/DBClusterNotFound|deleting/);
    expect(await secretExists(report.drillId)).toBe(false);
  });

  it('restores from the automated backups replicated to the copy region, into the copy region, and deletes the throwaway there', async () => {
    // Prepare: the source's automated backups replicated to the copy region, as pitr.copyRegion keeps them.
    const source = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceId }))).DBInstances![0]!;
    await copyRds.send(new StartDBInstanceAutomatedBackupsReplicationCommand({ SourceDBInstanceArn: source.DBInstanceArn, BackupRetentionPeriod: 7 }));
    for (let i = 0; i < 10; i++) {
      const replica = (await copyRds.send(new DescribeDBInstanceAutomatedBackupsCommand({}))).DBInstanceAutomatedBackups?.find((b) => b.DBInstanceIdentifier === instanceId);
      if (replica?.Status === 'replicating') break;
    }
    const from = proxy.seen.length;

    // Act
    const { result, alerts } = await drill(request({ pitr: { moment: 'latest', from: 'copy-region', copyRegion: COPY } }));

    // Assess: restored in the copy region from the replica's ARN, not from the source instance.
    expect(result.run.status, String(result.run.cause)).toBe('SUCCEEDED');
    const report = result.reports[0]!;
    const restore = seenSince(from, 'RestoreDBInstanceToPointInTime');
    expect(restore).toHaveLength(1);
    expect(restore[0]!.region).toBe(COPY);
    expect(restore[0]!.params.get('SourceDBInstanceAutomatedBackupsArn')).toMatch(new RegExp(`^arn:aws:rds:${COPY}:\\d{12}:auto-backup:ab-`));
    expect(restore[0]!.params.get('SourceDBInstanceIdentifier')).toBeNull();
    expect(report.backup).toMatchObject({ kind: 'pitr', from: 'copy-region' });
    expect(report.backup!.location).toMatch(new RegExp(`auto-backup:ab-.* in ${COPY} at \\S+, the newest restorable moment when selected`));
    expect(report.verdict).toBe('emulated');
    expect(alerts).toEqual([]);

    // Assess: the throwaway was made and deleted in the copy region, never in the source region.
    const name = drillResourceName(report.drillId);
    expect(seenSince(from, 'DeleteDBInstance').map((r) => [r!.region, r!.params.get('DBInstanceIdentifier')])).toEqual([[COPY, name]]);
    expect(await gone(name, copyRds)).toBe(true);
  });

  it("fails with a named reason and provisions nothing when no dump's consistent point lies inside the window", async () => {
    // Prepare
    const from = proxy.seen.length;

    // Act
    const { result, alerts } = await drill(request({ pitr: { moment: 'dump', from: 'source' } }));

    // Assess
    expect(result.run.status).toBe('FAILED');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.details).toMatchObject({ kind: 'drill-failed', databaseId: 'orders', failure: 'BackupNotFoundError' });
    expect(alerts[0]!.message).toMatch(new RegExp(`No committed dump of database "orders" has its consistent point inside the point-in-time window of ${instanceId}`));
    expect(seenSince(from, 'RestoreDBInstanceToPointInTime')).toEqual([]);
  });

  it('fails naming the retention to turn on when the instance keeps no automated backups', async () => {
    // Act
    const { result, alerts } = await drill(request({ rds: { instanceIdentifier: noWindowId } }));

    // Assess
    expect(result.run.status).toBe('FAILED');
    expect(alerts[0]!.details).toMatchObject({ kind: 'drill-failed', failure: 'BackupNotFoundError' });
    expect(alerts[0]!.message).toMatch(new RegExp(`${noWindowId} .*has no point-in-time window \\(BackupRetentionPeriod 0`));
    expect(alerts[0]!.message).toMatch(new RegExp(`modify-db-instance --db-instance-identifier ${noWindowId} --backup-retention-period`));
  });

  it('tears down only the instance name in the copy region when the restore there is refused (nothing else is made, or may be deleted, there)', async () => {
    // Prepare
    let refuse = true;
    proxy.addRule((req) => (refuse ? failRds('RestoreDBInstanceToPointInTime', 'KMSKeyNotAccessibleFault', 'The specified KMS key is not accessible')(req) : undefined));
    const from = proxy.seen.length;

    // Act
    const { result, alerts } = await drill(request({ pitr: { moment: 'latest', from: 'copy-region', copyRegion: COPY } }));
    refuse = false;

    // Assess: the real error is the alert, and teardown touched the copy region's instance name only.
    expect(result.run.status).toBe('FAILED');
    expect(alerts[0]!.details).toMatchObject({ kind: 'drill-failed', failure: 'DrillProvisioningError' });
    expect(alerts[0]!.message).toMatch(/RestoreDBInstanceToPointInTime .* failed: KMSKeyNotAccessibleFault/);
    const report = result.reports[0]!;
    expect(report.teardown.status).toBe('complete');
    expect(report.teardown.items.map((i) => i.type)).toEqual(['secret', 'rds-instance']);
    expect(report.teardown.items[1]!.outcome).toBe('absent');
    expect(seenSince(from, 'DeleteDBCluster')).toEqual([]);
    expect(seenSince(from, 'DeleteDBSubnetGroup')).toEqual([]);
  });

  it('refuses, naming the cluster to configure, a database whose rds.instanceIdentifier is an Aurora cluster member', async () => {
    // Prepare
    const member = `${clusterId}-member`;
    await rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: member, DBClusterIdentifier: clusterId, Engine: 'aurora-postgresql', DBInstanceClass: 'db.r6g.large' }));
    await waitUntilAvailable(rds, { instances: [member] });
    const from = proxy.seen.length;

    // Act
    const { result, alerts } = await drill(request({ rds: { instanceIdentifier: member } }));
    await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: member, SkipFinalSnapshot: true })).catch(() => undefined);

    // Assess
    expect(result.run.status).toBe('FAILED');
    expect(alerts[0]!.message, alerts[0]!.message).toMatch(new RegExp(`${member} .*is an instance of Aurora cluster ${clusterId}[\\s\\S]*set rds.clusterIdentifier: "${clusterId}"`));
    expect(seenSince(from, 'RestoreDBInstanceToPointInTime')).toEqual([]);
  });

  it('alerts with the refused call and leaves nothing behind when RDS refuses the restore (the window moved on)', async () => {
    // Prepare
    let refuse = true;
    proxy.addRule((req) => (refuse ? failRds('RestoreDBInstanceToPointInTime', 'InvalidRestoreFault', 'Restore time must be within the restorable window')(req) : undefined));
    const running = servers.running().length;

    // Act
    const { result, alerts } = await drill(request({}));
    refuse = false;

    // Assess
    expect(result.run.status).toBe('FAILED');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.details).toMatchObject({ kind: 'drill-failed', failure: 'DrillProvisioningError' });
    expect(alerts[0]!.message).toMatch(new RegExp(`RestoreDBInstanceToPointInTime lifeboat-drill-\\S+ from ${instanceId} failed: InvalidRestoreFault`));
    const report = result.reports[0]!;
    expect(report.teardown.status).toBe('complete');
    expect(await secretExists(report.drillId)).toBe(false);
    expect(servers.running()).toHaveLength(running);
  });
});
