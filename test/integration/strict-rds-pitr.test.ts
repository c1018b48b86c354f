import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  DeleteDBClusterCommand,
  DeleteDBInstanceCommand,
  DescribeDBClustersCommand,
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  RDSClient,
  RestoreDBClusterToPointInTimeCommand,
  RestoreDBInstanceToPointInTimeCommand,
  StartDBInstanceAutomatedBackupsReplicationCommand,
  StopDBInstanceAutomatedBackupsReplicationCommand,
  type DBInstanceAutomatedBackup,
} from '@aws-sdk/client-rds';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import type { AwsCredentials } from '../../functions/lib/aws/clients.ts';
import { credentialsFor } from '../../local/moto-rds-compat.ts';
import { startMotoCompatProxy, type MotoCompatProxy } from '../../local/nightly-environment.ts';
import type { InstanceHooks, InstanceInfo, PointInTimeRestoreInfo } from '../../local/strict-rds.ts';
import { uniqueName } from '../harness/aws.ts';

/**
 * Point-in-time recovery in the strict RDS layer (local/strict-rds.ts), against
 * the suite's moto behind the compat proxy, through real SDK calls: the window
 * RDS reports (log shipping lag, pinned windows, a real server's newest WAL),
 * automated backups and their replication to another Region, and the restores,
 * each refused and accepted. Account 787878787878 only.
 */
const ACCOUNT = '787878787878';
const REGION = 'eu-west-1';
const COPY_REGION = 'eu-central-1';
const SHIPPING_MS = 300_000;

let upstream: string;
let proxy: MotoCompatProxy;
let creds: AwsCredentials;
const proxies: MotoCompatProxy[] = [];
/** Everything created, deleted straight in moto at the end. */
const made: Array<{ region: string; kind: 'instance' | 'cluster'; id: string }> = [];

/** Hooks that record the point-in-time restores and can name a real server's newest restorable moment. */
const restores: Array<{ instance: InstanceInfo; pointInTime?: PointInTimeRestoreInfo }> = [];
const realLatest = new Map<string, Date>();
const hooks: InstanceHooks = {
  created: (instance, _password, pointInTime) => void restores.push({ instance, pointInTime }),
  latestRestorable: (instance) => realLatest.get(instance.id),
  endpoint: () => undefined,
  passwordApplied: async () => undefined,
  deleted: async () => undefined,
  stop: async () => undefined,
};

beforeAll(async () => {
  upstream = inject('motoEndpoint');
  proxy = await startMotoCompatProxy(upstream, { max: () => 100 }, { instances: hooks });
  proxies.push(proxy);
  creds = await credentialsFor(ACCOUNT, 'strict-rds-pitr');
});
afterAll(async () => {
  for (const p of proxies) await p.stop();
  for (const m of made) {
    const rds = new RDSClient({ endpoint: upstream, region: m.region, credentials: creds, maxAttempts: 1 });
    const gone = m.kind === 'instance' ? rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: m.id, SkipFinalSnapshot: true })) : rds.send(new DeleteDBClusterCommand({ DBClusterIdentifier: m.id, SkipFinalSnapshot: true }));
    await gone.catch(() => undefined);
  }
});

const rdsIn = (region = REGION, via: MotoCompatProxy = proxy) => new RDSClient({ endpoint: via.endpoint, region, credentials: creds, maxAttempts: 1 });
const at = (kind: 'instance' | 'cluster', id: string, region = REGION) => ({ account: ACCOUNT, region, kind, id });

/** The error an RDS call fails with (its name and HTTP status), or 'accepted'. */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'accepted';
  } catch (error) {
    const e = error as { name: string; $metadata?: { httpStatusCode?: number } };
    return `${e.name} ${e.$metadata?.httpStatusCode}`;
  }
}

const instanceOf = async (rds: RDSClient, id: string) => (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances![0]!;
const clusterOf = async (rds: RDSClient, id: string) => (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: id }))).DBClusters![0]!;
const backupsOf = async (rds: RDSClient, input: ConstructorParameters<typeof DescribeDBInstanceAutomatedBackupsCommand>[0] = {}) =>
  (await rds.send(new DescribeDBInstanceAutomatedBackupsCommand(input))).DBInstanceAutomatedBackups ?? [];

async function availableInstance(prefix: string, extra: Record<string, unknown> = {}, rds = rdsIn()): Promise<string> {
  const id = uniqueName(prefix);
  await rds.send(
    new CreateDBInstanceCommand({ DBInstanceIdentifier: id, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'owner', MasterUserPassword: 'not-a-real-secret-1', BackupRetentionPeriod: 7, ...extra }),
  );
  made.push({ region: REGION, kind: 'instance', id });
  for (let i = 0; i < 10 && (await instanceOf(rds, id)).DBInstanceStatus !== 'available'; i++);
  return id;
}

/** The shipping estimate for an instance created at `created`, read between `before` and `after`. */
const shippedBetween = (created: Date, before: number, after: number) =>
  [before, after].map((t) => Math.max(created.getTime(), Math.floor(t / SHIPPING_MS) * SHIPPING_MS));

describe('the restorable window', () => {
  it('LatestRestorableTime lags like log shipping (the newest 5-minute boundary, never before creation); retention 0 has none', async () => {
    // Prepare
    const rds = rdsIn();
    const kept = await availableInstance('lag');
    const none = await availableInstance('nobackup', { BackupRetentionPeriod: 0 });

    // Act
    const before = Date.now();
    const db = await instanceOf(rds, kept);
    const after = Date.now();
    const without = await instanceOf(rds, none);

    // Assess: never "now", as moto says; exactly the estimate.
    expect(shippedBetween(db.InstanceCreateTime!, before, after)).toContain(db.LatestRestorableTime!.getTime());
    expect(db.LatestRestorableTime!.getTime()).toBeLessThan(before);
    expect(without.BackupRetentionPeriod).toBe(0);
    expect(without.LatestRestorableTime).toBeUndefined();
  });

  it('logShippingSeconds sets the lag: with 1 s the window catches up with the clock, with an hour it stays at creation', async () => {
    // Prepare
    const quick = await startMotoCompatProxy(upstream, { max: () => 100 }, { logShippingSeconds: 1 });
    const slow = await startMotoCompatProxy(upstream, { max: () => 100 }, { logShippingSeconds: 3600 });
    proxies.push(quick, slow);
    const id = await availableInstance('shipping', {}, rdsIn(REGION, quick));
    await new Promise((r) => setTimeout(r, 1600));

    // Act
    const viaQuick = await instanceOf(rdsIn(REGION, quick), id);
    const before = Date.now();
    const viaSlow = await instanceOf(rdsIn(REGION, slow), id);
    const after = Date.now();

    // Assess: a second's boundary at least 0.6 s after creation; the hour's is before creation (unless one just passed).
    expect(viaQuick.LatestRestorableTime!.getTime()).toBeGreaterThan(viaQuick.InstanceCreateTime!.getTime() + 500);
    expect(viaQuick.LatestRestorableTime!.getTime() % 1000).toBe(0);
    const hourly = [before, after].map((t) => Math.max(viaSlow.InstanceCreateTime!.getTime(), Math.floor(t / 3_600_000) * 3_600_000));
    expect(hourly).toContain(viaSlow.LatestRestorableTime!.getTime());
  });

  it("reports a real server's newest restorable moment when the latestRestorable hook knows one", async () => {
    // Prepare
    const rds = rdsIn();
    const real = await availableInstance('realwal');
    const other = await availableInstance('nowal');
    const archived = new Date(Date.now() - 1234);
    realLatest.set(real, archived);

    // Act
    const withServer = await instanceOf(rds, real);
    const withoutServer = await instanceOf(rds, other);

    // Assess
    expect(withServer.LatestRestorableTime).toEqual(archived);
    expect(withoutServer.LatestRestorableTime).not.toEqual(archived);
    expect(withoutServer.LatestRestorableTime!.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('a test can pin the window (log shipping stuck 2 hours back), in DescribeDBInstances and the automated backup alike, and unpin it', async () => {
    // Prepare
    const rds = rdsIn();
    const id = await availableInstance('stale');
    const stuck = new Date(Date.now() - 2 * 3_600_000);
    const oldest = new Date(Date.now() - 3 * 86_400_000);

    // Act
    proxy.rds!.setRestoreWindow(at('instance', id), { earliest: oldest, latest: stuck });
    const pinned = await instanceOf(rds, id);
    const [backup] = await backupsOf(rds, { DBInstanceIdentifier: id });
    proxy.rds!.setRestoreWindow(at('instance', id), undefined);
    const unpinned = await instanceOf(rds, id);

    // Assess
    expect(pinned.LatestRestorableTime).toEqual(stuck);
    expect(backup!.RestoreWindow).toEqual({ EarliestTime: oldest, LatestTime: stuck });
    expect(unpinned.LatestRestorableTime!.getTime()).toBeGreaterThan(stuck.getTime());
  });

  it('a cluster has EarliestRestorableTime (creation, within the retention period) and a lagging LatestRestorableTime; both can be pinned', async () => {
    // Prepare
    const rds = rdsIn();
    const id = uniqueName('pitr-aurora');
    await rds.send(new CreateDBClusterCommand({ DBClusterIdentifier: id, Engine: 'aurora-postgresql', MasterUsername: 'owner', MasterUserPassword: 'not-a-real-secret-1', BackupRetentionPeriod: 3 }));
    made.push({ region: REGION, kind: 'cluster', id });
    const creating = await clusterOf(rds, id);
    for (let i = 0; i < 4; i++) await clusterOf(rds, id);

    // Act
    const before = Date.now();
    const own = await clusterOf(rds, id);
    const after = Date.now();
    const earliest = new Date(Date.now() - 86_400_000);
    proxy.rds!.setRestoreWindow(at('cluster', id), { earliest });
    const pinned = await clusterOf(rds, id);

    // Assess: nothing is restorable before the first backup.
    expect(creating.Status).toBe('creating');
    expect([creating.EarliestRestorableTime, creating.LatestRestorableTime]).toEqual([undefined, undefined]);
    expect(own.Status).toBe('available');
    expect(own.EarliestRestorableTime).toEqual(own.ClusterCreateTime);
    expect(shippedBetween(own.ClusterCreateTime!, before, after)).toContain(own.LatestRestorableTime!.getTime());
    expect(pinned.EarliestRestorableTime).toEqual(earliest);
    expect(pinned.LatestRestorableTime).toEqual(own.LatestRestorableTime);
  });
});

describe('automated backups', () => {
  it("lists each instance's active backup with its window and a stable ARN, filters by identifier, resource id and ARN, and refuses an instance without backups", async () => {
    // Prepare
    const rds = rdsIn();
    const id = await availableInstance('autobackup');
    const none = await availableInstance('autonone', { BackupRetentionPeriod: 0 });
    const db = await instanceOf(rds, id);

    // Act
    const all = await backupsOf(rds);
    const [byId] = await backupsOf(rds, { DBInstanceIdentifier: id });
    const [byResource] = await backupsOf(rds, { DbiResourceId: db.DbiResourceId });
    const [byArn] = await backupsOf(rds, { DBInstanceAutomatedBackupsArn: byId!.DBInstanceAutomatedBackupsArn });
    const withoutBackups = await outcome(backupsOf(rds, { DBInstanceIdentifier: none }));

    // Assess
    expect(byId).toMatchObject({
      DBInstanceArn: db.DBInstanceArn,
      DbiResourceId: db.DbiResourceId,
      DBInstanceIdentifier: id,
      Region: REGION,
      Status: 'active',
      BackupRetentionPeriod: 7,
      Engine: 'postgres',
      Encrypted: false,
      DBInstanceAutomatedBackupsReplications: [],
    });
    expect(byId!.DBInstanceAutomatedBackupsArn).toMatch(new RegExp(`^arn:aws:rds:${REGION}:${ACCOUNT}:auto-backup:ab-[a-z0-9]+$`));
    expect(byId!.RestoreWindow).toEqual({ EarliestTime: db.InstanceCreateTime, LatestTime: db.LatestRestorableTime });
    expect([byResource!.DBInstanceAutomatedBackupsArn, byArn!.DBInstanceAutomatedBackupsArn]).toEqual([byId!.DBInstanceAutomatedBackupsArn, byId!.DBInstanceAutomatedBackupsArn]);
    expect(all.map((b) => b.DBInstanceIdentifier)).toContain(id);
    expect(all.map((b) => b.DBInstanceIdentifier)).not.toContain(none);
    expect(withoutBackups).toBe('DBInstanceAutomatedBackupNotFoundFault 404');
  });
});

describe('cross-Region replication of automated backups', () => {
  async function keyIn(region: string): Promise<string> {
    const kms = new KMSClient({ endpoint: proxy.endpoint, region, credentials: creds, maxAttempts: 1 });
    return (await kms.send(new CreateKeyCommand({ Description: 'pitr replica key' }))).KeyMetadata!.Arn!;
  }
  const start = (input: { SourceDBInstanceArn: string; KmsKeyId?: string; BackupRetentionPeriod?: number }, region = COPY_REGION) =>
    rdsIn(region).send(new StartDBInstanceAutomatedBackupsReplicationCommand(input));

  it('refuses what RDS refuses: the same Region, a missing source, no automated backups, an encrypted source without a key there', async () => {
    // Prepare
    const rds = rdsIn();
    const sourceKey = await keyIn(REGION);
    const plain = (await instanceOf(rds, await availableInstance('repplain'))).DBInstanceArn!;
    const noBackups = (await instanceOf(rds, await availableInstance('repnone', { BackupRetentionPeriod: 0 }))).DBInstanceArn!;
    const encrypted = (await instanceOf(rds, await availableInstance('repenc', { StorageEncrypted: true, KmsKeyId: sourceKey }))).DBInstanceArn!;

    // Act
    const sameRegion = await outcome(start({ SourceDBInstanceArn: plain }, REGION));
    const missing = await outcome(start({ SourceDBInstanceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${uniqueName('nosuchdb')}` }));
    const withoutBackups = await outcome(start({ SourceDBInstanceArn: noBackups }));
    const withoutKey = await outcome(start({ SourceDBInstanceArn: encrypted }));
    const keyOfSourceRegion = await outcome(start({ SourceDBInstanceArn: encrypted, KmsKeyId: sourceKey }));
    const accepted = await outcome(start({ SourceDBInstanceArn: encrypted, KmsKeyId: await keyIn(COPY_REGION) }));

    // Assess
    expect(sameRegion).toBe('InvalidParameterValue 400');
    expect(missing).toBe('DBInstanceNotFoundFault 404');
    expect(withoutBackups).toBe('InvalidDBInstanceStateFault 400');
    expect(withoutKey).toBe('InvalidParameterCombination 400');
    expect(keyOfSourceRegion).toBe('KMSKeyNotAccessibleFault 400');
    expect(accepted).toBe('accepted');
  });

  it('a replicated backup is pending, then replicating with the source window; the source lists it and is modifying meanwhile; a second start is refused; stopped, it is retained', async () => {
    // Prepare
    const source = rdsIn();
    const copy = rdsIn(COPY_REGION);
    const id = await availableInstance('repsrc', { StorageEncrypted: true, KmsKeyId: await keyIn(REGION) });
    const sourceArn = (await instanceOf(source, id)).DBInstanceArn!;
    const copyKey = await keyIn(COPY_REGION);

    // Act
    const started = (await start({ SourceDBInstanceArn: sourceArn, KmsKeyId: copyKey, BackupRetentionPeriod: 3 })).DBInstanceAutomatedBackup!;
    const sourceAfter = await instanceOf(source, id);
    const sourceLater = (await instanceOf(source, id)).DBInstanceStatus;
    const seen: DBInstanceAutomatedBackup[] = [];
    for (let i = 0; i < 2; i++) seen.push((await backupsOf(copy, { DBInstanceAutomatedBackupsArn: started.DBInstanceAutomatedBackupsArn }))[0]!);
    const again = await outcome(start({ SourceDBInstanceArn: sourceArn, KmsKeyId: copyKey }));
    const stopped = (await copy.send(new StopDBInstanceAutomatedBackupsReplicationCommand({ SourceDBInstanceArn: sourceArn }))).DBInstanceAutomatedBackup!;
    const [retained] = await backupsOf(copy, { DBInstanceAutomatedBackupsArn: started.DBInstanceAutomatedBackupsArn });
    const sourceStopped = await instanceOf(source, id);
    const stopAgain = await outcome(copy.send(new StopDBInstanceAutomatedBackupsReplicationCommand({ SourceDBInstanceArn: sourceArn })));

    // Assess: pending with no window yet, then replicating with the source's latest moment.
    expect(started).toMatchObject({ Status: 'pending', DBInstanceArn: sourceArn, Region: REGION, BackupRetentionPeriod: 3, Encrypted: true, KmsKeyId: copyKey, RestoreWindow: {} });
    expect(started.DBInstanceAutomatedBackupsArn).toMatch(new RegExp(`^arn:aws:rds:${COPY_REGION}:${ACCOUNT}:auto-backup:ab-`));
    expect(sourceAfter.DBInstanceStatus).toBe('modifying');
    expect(sourceAfter.DBInstanceAutomatedBackupsReplications).toEqual([{ DBInstanceAutomatedBackupsArn: started.DBInstanceAutomatedBackupsArn }]);
    expect(sourceLater).toBe('available');
    expect(seen.map((b) => b.Status)).toEqual(['pending', 'replicating']);
    expect(seen[1]!.RestoreWindow!.LatestTime).toEqual(sourceAfter.LatestRestorableTime);
    expect(again).toBe('InvalidDBInstanceAutomatedBackupStateFault 400');
    expect(stopped.Status).toBe('replicating');
    expect(retained!.Status).toBe('retained');
    expect(sourceStopped.DBInstanceAutomatedBackupsReplications ?? []).toEqual([]);
    expect(stopAgain).toBe('InvalidDBInstanceStateFault 400');
  });
});

describe('RestoreDBInstanceToPointInTime', () => {
  const restore = (input: ConstructorParameters<typeof RestoreDBInstanceToPointInTimeCommand>[0], region = REGION) => {
    made.push({ region, kind: 'instance', id: input.TargetDBInstanceIdentifier! });
    return rdsIn(region).send(new RestoreDBInstanceToPointInTimeCommand(input));
  };

  it('refuses both or neither moment, a source without backups, a moment outside the window, an unknown resource id and an existing target', async () => {
    // Prepare
    const rds = rdsIn();
    const id = await availableInstance('pitrsrc');
    const none = await availableInstance('pitrnone', { BackupRetentionPeriod: 0 });
    // A pinned window: a 5-minute boundary passing mid-test would move the layer's own estimate.
    proxy.rds!.setRestoreWindow(at('instance', id), { earliest: new Date(Date.now() - 3_600_000), latest: new Date(Date.now() - 60_000) });
    const db = await instanceOf(rds, id);
    const latest = db.LatestRestorableTime!;
    const [{ RestoreWindow }] = (await backupsOf(rds, { DBInstanceIdentifier: id })) as [DBInstanceAutomatedBackup];

    // Act
    const both = await outcome(restore({ SourceDBInstanceIdentifier: id, TargetDBInstanceIdentifier: uniqueName('t'), RestoreTime: latest, UseLatestRestorableTime: true }));
    const neither = await outcome(restore({ SourceDBInstanceIdentifier: id, TargetDBInstanceIdentifier: uniqueName('t') }));
    const noBackups = await outcome(restore({ SourceDBInstanceIdentifier: none, TargetDBInstanceIdentifier: uniqueName('t'), UseLatestRestorableTime: true }));
    const notYetShipped = await outcome(restore({ SourceDBInstanceIdentifier: id, TargetDBInstanceIdentifier: uniqueName('t'), RestoreTime: new Date(latest.getTime() + 1000) }));
    const tooOld = await outcome(restore({ SourceDBInstanceIdentifier: id, TargetDBInstanceIdentifier: uniqueName('t'), RestoreTime: new Date(RestoreWindow!.EarliestTime!.getTime() - 1000) }));
    const unknownResource = await outcome(restore({ SourceDbiResourceId: 'db-NOSUCHRESOURCE0000000000', TargetDBInstanceIdentifier: uniqueName('t'), UseLatestRestorableTime: true }));
    const existingTarget = await outcome(restore({ SourceDBInstanceIdentifier: id, TargetDBInstanceIdentifier: none, UseLatestRestorableTime: true }));
    const inside = await outcome(restore({ SourceDBInstanceIdentifier: id, TargetDBInstanceIdentifier: uniqueName('t'), RestoreTime: latest }));

    // Assess
    expect([both, neither]).toEqual(['InvalidParameterCombination 400', 'InvalidParameterCombination 400']);
    expect(noBackups).toBe('PointInTimeRestoreNotEnabledFault 400');
    expect([notYetShipped, tooOld]).toEqual(['InvalidRestoreFault 400', 'InvalidRestoreFault 400']);
    expect(unknownResource).toBe('DBInstanceAutomatedBackupNotFoundFault 404');
    expect(existingTarget).toBe('DBInstanceAlreadyExistsFault 400');
    expect(inside).toBe('accepted');
  });

  it('restores to the exact moment (given, or the latest restorable one at the call) through creating, backing-up, available, and tells the instance hooks', async () => {
    // Prepare
    const rds = rdsIn();
    const id = await availableInstance('pitrok');
    const window = { earliest: new Date(Date.now() - 86_400_000), latest: new Date(Date.now() - 120_000) };
    proxy.rds!.setRestoreWindow(at('instance', id), window);
    const moment = new Date(Date.now() - 3_600_000);
    const [toMoment, toLatest, byResource] = [uniqueName('pitr-moment'), uniqueName('pitr-latest'), uniqueName('pitr-dbi')];

    // Act
    const answer = await restore({ SourceDBInstanceIdentifier: id, TargetDBInstanceIdentifier: toMoment, RestoreTime: moment, DBInstanceClass: 'db.t4g.small' });
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push((await instanceOf(rds, toMoment)).DBInstanceStatus);
    await restore({ SourceDBInstanceIdentifier: id, TargetDBInstanceIdentifier: toLatest, UseLatestRestorableTime: true });
    await restore({ SourceDbiResourceId: (await instanceOf(rds, id)).DbiResourceId, TargetDBInstanceIdentifier: byResource, UseLatestRestorableTime: true });

    // Assess
    expect(answer.DBInstance).toMatchObject({ DBInstanceIdentifier: toMoment, DBInstanceStatus: 'creating', DBInstanceClass: 'db.t4g.small' });
    expect(seen).toEqual(['creating', 'creating', 'backing-up', 'available']);
    const told = (target: string) => restores.find((r) => r.instance.id === target)?.pointInTime;
    expect(told(toMoment)).toEqual({ source: { account: ACCOUNT, region: REGION, id }, restoreTime: moment });
    expect(told(toLatest)).toEqual({ source: { account: ACCOUNT, region: REGION, id }, restoreTime: window.latest });
    expect(told(byResource)?.source.id).toBe(id);
  });

  it("restores from replicated backups in their Region (the instance made there from the source's settings), refused while they are still pending", async () => {
    // Prepare
    const rds = rdsIn();
    const copy = rdsIn(COPY_REGION);
    const id = await availableInstance('pitrrep');
    const source = await instanceOf(rds, id);
    const replica = (await copy.send(new StartDBInstanceAutomatedBackupsReplicationCommand({ SourceDBInstanceArn: source.DBInstanceArn! }))).DBInstanceAutomatedBackup!;
    const target = uniqueName('pitr-inregion');
    const fromReplica = (t: string) =>
      restore(
        { SourceDBInstanceAutomatedBackupsArn: replica.DBInstanceAutomatedBackupsArn, TargetDBInstanceIdentifier: t, UseLatestRestorableTime: true, DBInstanceClass: 'db.t4g.small', Tags: [{ Key: 'purpose', Value: 'dr' }] },
        COPY_REGION,
      );

    // Act: the refusal is the replica's pending poll.
    const whilePending = await outcome(fromReplica(uniqueName('pitr-early')));
    const [replicating] = await backupsOf(copy, { DBInstanceAutomatedBackupsArn: replica.DBInstanceAutomatedBackupsArn });
    const answer = await fromReplica(target);
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push((await instanceOf(copy, target)).DBInstanceStatus);
    const restored = await instanceOf(copy, target);

    // Assess
    expect(whilePending).toBe('InvalidRestoreFault 400');
    expect(replicating!.Status).toBe('replicating');
    expect(answer.DBInstance!.DBInstanceArn).toBe(`arn:aws:rds:${COPY_REGION}:${ACCOUNT}:db:${target}`);
    expect(seen).toEqual(['creating', 'creating', 'backing-up', 'available']);
    expect(restored).toMatchObject({ Engine: source.Engine, EngineVersion: source.EngineVersion, AllocatedStorage: source.AllocatedStorage, DBInstanceClass: 'db.t4g.small', PubliclyAccessible: false, MasterUsername: 'owner' });
    expect(restored.TagList).toEqual([{ Key: 'purpose', Value: 'dr' }]);
    expect(restores.find((r) => r.instance.id === target)?.pointInTime).toEqual({ source: { account: ACCOUNT, region: REGION, id }, restoreTime: replicating!.RestoreWindow!.LatestTime });
  });
});

describe('RestoreDBClusterToPointInTime', () => {
  it('refuses both moments, a moment outside the window and an existing cluster; restores inside it through the cluster lifecycle', async () => {
    // Prepare
    const rds = rdsIn();
    const id = uniqueName('pitr-cl');
    await rds.send(new CreateDBClusterCommand({ DBClusterIdentifier: id, Engine: 'aurora-postgresql', MasterUsername: 'owner', MasterUserPassword: 'not-a-real-secret-1', BackupRetentionPeriod: 2 }));
    made.push({ region: REGION, kind: 'cluster', id });
    for (let i = 0; i < 4; i++) await clusterOf(rds, id);
    proxy.rds!.setRestoreWindow(at('cluster', id), { earliest: new Date(Date.now() - 3_600_000), latest: new Date(Date.now() - 1000) });
    const cluster = await clusterOf(rds, id);
    const target = uniqueName('pitr-clr');
    made.push({ region: REGION, kind: 'cluster', id: target });
    const restore = (input: Omit<ConstructorParameters<typeof RestoreDBClusterToPointInTimeCommand>[0], 'SourceDBClusterIdentifier'>) =>
      rds.send(new RestoreDBClusterToPointInTimeCommand({ SourceDBClusterIdentifier: id, ...input }));

    // Act
    const both = await outcome(restore({ DBClusterIdentifier: target, RestoreToTime: cluster.LatestRestorableTime, UseLatestRestorableTime: true }));
    const tooEarly = await outcome(restore({ DBClusterIdentifier: target, RestoreToTime: new Date(cluster.EarliestRestorableTime!.getTime() - 1000) }));
    const tooLate = await outcome(restore({ DBClusterIdentifier: target, RestoreToTime: new Date(cluster.LatestRestorableTime!.getTime() + 1000) }));
    const existing = await outcome(restore({ DBClusterIdentifier: id, UseLatestRestorableTime: true }));
    const answer = await restore({ DBClusterIdentifier: target, RestoreToTime: cluster.LatestRestorableTime });
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push((await clusterOf(rds, target)).Status);

    // Assess
    expect(both).toBe('InvalidParameterCombination 400');
    expect([tooEarly, tooLate]).toEqual(['InvalidRestoreFault 400', 'InvalidRestoreFault 400']);
    expect(existing).toBe('DBClusterAlreadyExistsFault 400');
    expect(answer.DBCluster!.Status).toBe('creating');
    expect(seen).toEqual(['creating', 'creating', 'backing-up', 'available']);
  });
});
