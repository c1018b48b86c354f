import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CopyDBSnapshotCommand,
  CreateDBClusterSnapshotCommand,
  CreateDBInstanceCommand,
  CreateDBSnapshotCommand,
  CreateDBSubnetGroupCommand,
  DeleteDBClusterCommand,
  DeleteDBInstanceCommand,
  DeleteDBSnapshotCommand,
  DeleteDBSubnetGroupCommand,
  DescribeAccountAttributesCommand,
  DescribeDBClustersCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBInstanceCommand,
  ModifyDBSnapshotAttributeCommand,
  RDSClient,
  RestoreDBClusterFromSnapshotCommand,
  CreateDBClusterCommand,
} from '@aws-sdk/client-rds';
import type { AwsCredentials } from '../../functions/lib/aws/clients.ts';
import { credentialsFor, snapshotStatus, type QuotaScript } from '../../local/moto-rds-compat.ts';
import { startMotoCompatProxy, type MotoCompatProxy } from '../../local/nightly-environment.ts';
import { uniqueName } from '../harness/aws.ts';

/**
 * The strict RDS lifecycle layer (local/strict-rds.ts) on its own, against the
 * suite's moto behind the compat proxy: each AWS behaviour both ways, the busy
 * call refused and the same call accepted once the resource is available.
 * Accounts 777777777777 (owner) and 888888888888 (a vault that copies in).
 */
const OWNER = '777777777777';
const VAULT = '888888888888';
const REGION = 'eu-west-1';
const OTHER_REGION = 'eu-central-1';
/** CopyDBSnapshot's SourceRegion (the SDK's presigned-URL customization) is not in the command's input type; lifeboat passes it the same way (functions/lib/snapshots/rds.ts). */
const fromRegion = { SourceRegion: REGION } as object;

let upstream: string;
let proxy: MotoCompatProxy;
let owner: AwsCredentials;
const quota: QuotaScript = { max: () => 100 };
const proxies: MotoCompatProxy[] = [];

beforeAll(async () => {
  upstream = inject('motoEndpoint');
  proxy = await startMotoCompatProxy(upstream, quota);
  proxies.push(proxy);
  owner = await credentialsFor(OWNER, 'strict-rds-owner');
});
afterAll(async () => {
  for (const p of proxies) await p.stop();
});

/** An RDS client through `via` that does not retry on its own, so every call is one request. */
const rdsVia = (via: MotoCompatProxy, region = REGION, credentials: AwsCredentials = owner) => new RDSClient({ endpoint: via.endpoint, region, credentials, maxAttempts: 1 });

const instanceStatus = async (rds: RDSClient, id: string) => (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances![0]!;
const snapshotOf = async (rds: RDSClient, id: string) => (await rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: id }))).DBSnapshots![0]!;
const clusterStatus = async (rds: RDSClient, id: string) => (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: id }))).DBClusters![0]!.Status;

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

const createInstance = (rds: RDSClient, id: string, extra: Record<string, unknown> = {}) =>
  rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: id, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'owner', MasterUserPassword: 'not-a-real-secret-1', ...extra }));

async function availableInstance(rds: RDSClient, prefix: string): Promise<string> {
  const id = uniqueName(prefix);
  await createInstance(rds, id);
  for (let i = 0; i < 10 && (await instanceStatus(rds, id)).DBInstanceStatus !== 'available'; i++);
  return id;
}

async function availableSnapshot(rds: RDSClient, instance: string): Promise<string> {
  const id = uniqueName('snap');
  await rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: id }));
  for (let i = 0; i < 10 && (await snapshotOf(rds, id)).Status !== 'available'; i++);
  return id;
}

describe('instances', () => {
  it('a new instance is creating (without an endpoint), then backing-up, then available, one step per poll', async () => {
    // Prepare
    const rds = rdsVia(proxy);
    const id = uniqueName('new');

    // Act
    const created = await createInstance(rds, id);
    const seen = [];
    for (let i = 0; i < 4; i++) {
      const db = await instanceStatus(rds, id);
      seen.push(`${db.DBInstanceStatus}${db.Endpoint ? ' +endpoint' : ''}`);
    }

    // Assess
    expect(created.DBInstance!.DBInstanceStatus).toBe('creating');
    expect(created.DBInstance!.Endpoint).toBeUndefined();
    expect(seen).toEqual(['creating', 'creating', 'backing-up +endpoint', 'available +endpoint']);
  });

  it('refuses a snapshot of an instance that is not available (InvalidDBInstanceState, HTTP 400), and takes it once available', async () => {
    // Prepare
    const rds = rdsVia(proxy);
    const id = uniqueName('busy');
    await createInstance(rds, id);

    // Act
    const whileCreating = await outcome(rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: id, DBSnapshotIdentifier: uniqueName('early') })));
    for (let i = 0; i < 3; i++) await instanceStatus(rds, id);
    const onceAvailable = await outcome(rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: id, DBSnapshotIdentifier: uniqueName('later') })));

    // Assess
    expect(whileCreating).toBe('InvalidDBInstanceStateFault 400');
    expect(onceAvailable).toBe('accepted');
  });

  it('a scripted backup window makes an available instance busy for a few polls', async () => {
    // Prepare
    const rds = rdsVia(proxy);
    const id = await availableInstance(rds, 'window');
    proxy.rds!.makeBusy({ account: OWNER, region: REGION, kind: 'instance', id }, 'backing-up', 2);

    // Act
    const first = await outcome(rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: id, DBSnapshotIdentifier: uniqueName('w1') })));
    const described = (await instanceStatus(rds, id)).DBInstanceStatus;
    const after = await outcome(rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: id, DBSnapshotIdentifier: uniqueName('w2') })));

    // Assess: the refused call and the describe were the two polls of the window.
    expect([first, described, after]).toEqual(['InvalidDBInstanceStateFault 400', 'backing-up', 'accepted']);
  });

  it('a new master password takes resetting-master-credentials, during which a modification is refused; other changes are modifying', async () => {
    // Prepare
    const rds = rdsVia(proxy);
    const id = await availableInstance(rds, 'creds');

    // Act
    const answer = await rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: id, MasterUserPassword: 'a-new-password-123', ApplyImmediately: true }));
    const reset = [(await instanceStatus(rds, id)).DBInstanceStatus, (await instanceStatus(rds, id)).DBInstanceStatus];
    await rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: id, MasterUserPassword: 'another-password-456' }));
    const refused = await outcome(rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: id, BackupRetentionPeriod: 0, ApplyImmediately: true })));
    const accepted = await outcome(rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: id, BackupRetentionPeriod: 0, ApplyImmediately: true })));
    const modifying = [(await instanceStatus(rds, id)).DBInstanceStatus, (await instanceStatus(rds, id)).DBInstanceStatus];

    // Assess: the modify answer itself still shows the instance as it was, as RDS answers; the refusal was the reset's poll.
    expect(answer.DBInstance!.DBInstanceStatus).toBe('available');
    expect(reset).toEqual(['resetting-master-credentials', 'available']);
    expect([refused, accepted]).toEqual(['InvalidDBInstanceStateFault 400', 'accepted']);
    expect(modifying).toEqual(['modifying', 'available']);
  });

  it('a deleted instance is deleting for several polls, keeps its subnet group in use meanwhile, then is not found', async () => {
    // Prepare: an instance in its own subnet group (moto's default VPC subnets).
    const rds = rdsVia(proxy);
    const subnets = await defaultSubnets();
    const group = uniqueName('group');
    await rds.send(new CreateDBSubnetGroupCommand({ DBSubnetGroupName: group, DBSubnetGroupDescription: 'strict rds test', SubnetIds: subnets }));
    const id = uniqueName('doomed');
    await createInstance(rds, id, { DBSubnetGroupName: group });
    for (let i = 0; i < 3; i++) await instanceStatus(rds, id);

    // Act
    const deleted = await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true }));
    const whileDeleting = (await instanceStatus(rds, id)).DBInstanceStatus;
    const groupWhileDeleting = await outcome(rds.send(new DeleteDBSubnetGroupCommand({ DBSubnetGroupName: group })));
    const gone = await outcome(instanceStatus(rds, id));
    const groupAfter = await outcome(rds.send(new DeleteDBSubnetGroupCommand({ DBSubnetGroupName: group })));

    // Assess: the describe and the refused subnet group deletion were the two polls of 'deleting'.
    expect(deleted.DBInstance!.DBInstanceStatus).toBe('deleting');
    expect(whileDeleting).toBe('deleting');
    expect(groupWhileDeleting).toBe('InvalidDBSubnetGroupStateFault 400');
    expect(gone).toBe('DBInstanceNotFoundFault 404');
    expect(groupAfter).toBe('accepted');
  });

  it('refuses to delete an instance that is already being deleted', async () => {
    // Prepare
    const rds = rdsVia(proxy);
    const id = await availableInstance(rds, 'twice');

    // Act
    const first = await outcome(rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true })));
    const second = await outcome(rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true })));

    // Assess
    expect([first, second]).toEqual(['accepted', 'InvalidDBInstanceStateFault 400']);
  });
});

describe('snapshots and copies', () => {
  it('a snapshot is creating with its progress, then available; it can be neither copied nor deleted before', async () => {
    // Prepare
    const rds = rdsVia(proxy);
    const instance = await availableInstance(rds, 'snapsrc');
    const id = uniqueName('snap');

    // Act
    const created = await rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: id }));
    const copyEarly = await outcome(rds.send(new CopyDBSnapshotCommand({ SourceDBSnapshotIdentifier: id, TargetDBSnapshotIdentifier: uniqueName('copy') })));
    const deleteEarly = await outcome(rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: id })));
    const later = await snapshotOf(rds, id);
    const copyLater = await outcome(rds.send(new CopyDBSnapshotCommand({ SourceDBSnapshotIdentifier: id, TargetDBSnapshotIdentifier: uniqueName('copy') })));

    // Assess: the two refusals were the two polls of 'creating'.
    expect([created.DBSnapshot!.Status, created.DBSnapshot!.PercentProgress]).toEqual(['creating', 0]);
    expect(copyEarly).toBe('InvalidDBSnapshotStateFault 400');
    expect(deleteEarly).toBe('InvalidDBSnapshotStateFault 400');
    expect([later.Status, later.PercentProgress]).toEqual(['available', 100]);
    expect(copyLater).toBe('accepted');
  });

  it('a cross-region copy is pending, then copying with progress, then available; deleting it while copying cancels it', async () => {
    // Prepare
    const source = rdsVia(proxy);
    const destination = rdsVia(proxy, OTHER_REGION);
    const snapshot = await availableSnapshot(source, await availableInstance(source, 'copysrc'));
    const arn = (await snapshotOf(source, snapshot)).DBSnapshotArn!;
    const target = uniqueName('xregion');

    // Act
    const requested = await destination.send(new CopyDBSnapshotCommand({ SourceDBSnapshotIdentifier: arn, TargetDBSnapshotIdentifier: target, ...fromRegion }));
    const seen = [];
    for (let i = 0; i < 4; i++) {
      const s = await snapshotOf(destination, target);
      seen.push(`${s.Status} ${s.PercentProgress}`);
    }
    const cancelled = uniqueName('cancelled');
    await destination.send(new CopyDBSnapshotCommand({ SourceDBSnapshotIdentifier: arn, TargetDBSnapshotIdentifier: cancelled, ...fromRegion }));
    await snapshotOf(destination, cancelled);
    const copyingStatus = (await snapshotOf(destination, cancelled)).Status;
    const cancel = await outcome(destination.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: cancelled })));

    // Assess
    expect(requested.DBSnapshot!.Status).toBe('pending');
    expect(seen).toEqual(['pending 0', 'copying 33', 'copying 66', 'available 100']);
    expect([copyingStatus, cancel]).toEqual(['copying', 'accepted']);
    await expect(snapshotOf(destination, cancelled)).rejects.toThrow(/not found/);
  });

  it('a copy into another account (a shared snapshot, as the vault copies it) goes through the same states', async () => {
    // Prepare
    const rds = rdsVia(proxy);
    const snapshot = await availableSnapshot(rds, await availableInstance(rds, 'shared'));
    await rds.send(new ModifyDBSnapshotAttributeCommand({ DBSnapshotIdentifier: snapshot, AttributeName: 'restore', ValuesToAdd: [VAULT] }));
    const vault = rdsVia(proxy, REGION, await credentialsFor(VAULT, 'strict-rds-vault'));
    const arn = (await snapshotOf(rds, snapshot)).DBSnapshotArn!;
    const target = uniqueName('invault');

    // Act
    const requested = await vault.send(new CopyDBSnapshotCommand({ SourceDBSnapshotIdentifier: arn, TargetDBSnapshotIdentifier: target }));
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push((await snapshotOf(vault, target)).Status);

    // Assess
    expect(requested.DBSnapshot!.DBSnapshotArn).toBe(`arn:aws:rds:${REGION}:${VAULT}:snapshot:${target}`);
    expect([requested.DBSnapshot!.Status, ...seen]).toEqual(['pending', 'pending', 'copying', 'copying', 'available']);
  });

  it('a status a scripted rule reports wins over the lifecycle, and a failed snapshot can be deleted', async () => {
    // Prepare
    const rds = rdsVia(proxy);
    const instance = await availableInstance(rds, 'fails');
    const id = uniqueName('doomed-snap');
    await rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: id }));
    proxy.addRule(snapshotStatus(upstream, (s) => s === id, () => 'failed'));

    // Act
    const status = (await snapshotOf(rds, id)).Status;
    const deleted = await outcome(rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: id })));

    // Assess
    expect([status, deleted]).toEqual(['failed', 'accepted']);
  });
});

describe('Aurora clusters', () => {
  it('a restored cluster is busy while creating; it is deleted only after its instances, and stays deleting until they are gone', async () => {
    // Prepare: a source cluster and its snapshot, both settled.
    const rds = rdsVia(proxy);
    const source = uniqueName('aurora');
    await rds.send(new CreateDBClusterCommand({ DBClusterIdentifier: source, Engine: 'aurora-postgresql', MasterUsername: 'owner', MasterUserPassword: 'not-a-real-secret-1' }));
    for (let i = 0; i < 3; i++) await clusterStatus(rds, source);
    const snapshot = uniqueName('aurora-snap');
    await rds.send(new CreateDBClusterSnapshotCommand({ DBClusterIdentifier: source, DBClusterSnapshotIdentifier: snapshot }));
    const restored = uniqueName('restored');

    // Act: restore while the snapshot is still creating, then once it is available.
    const early = await outcome(rds.send(new RestoreDBClusterFromSnapshotCommand({ DBClusterIdentifier: restored, SnapshotIdentifier: snapshot, Engine: 'aurora-postgresql' })));
    await rds.send(new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: snapshot }));
    const late = await outcome(rds.send(new RestoreDBClusterFromSnapshotCommand({ DBClusterIdentifier: restored, SnapshotIdentifier: snapshot, Engine: 'aurora-postgresql' })));
    await rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: `${restored}-1`, DBClusterIdentifier: restored, Engine: 'aurora-postgresql', DBInstanceClass: 'db.t4g.medium' }));
    const snapshotWhileCreating = await outcome(rds.send(new CreateDBClusterSnapshotCommand({ DBClusterIdentifier: restored, DBClusterSnapshotIdentifier: uniqueName('x') })));
    for (let i = 0; i < 3; i++) {
      await clusterStatus(rds, restored);
      await instanceStatus(rds, `${restored}-1`);
    }
    const withLiveInstance = await outcome(rds.send(new DeleteDBClusterCommand({ DBClusterIdentifier: restored, SkipFinalSnapshot: true })));
    await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: `${restored}-1`, SkipFinalSnapshot: true }));
    const withDeletingInstance = await outcome(rds.send(new DeleteDBClusterCommand({ DBClusterIdentifier: restored, SkipFinalSnapshot: true })));
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push(await outcome(clusterStatus(rds, restored).then((s) => (s === 'deleting' ? s : Promise.reject(new Error(s))))));

    // Assess: the refused restore and the describe were the snapshot's two polls; the cluster goes after its instance.
    expect([early, late]).toEqual(['InvalidDBClusterSnapshotStateFault 400', 'accepted']);
    expect(snapshotWhileCreating).toBe('InvalidDBClusterStateFault 400');
    expect(withLiveInstance).toBe('InvalidDBClusterStateFault 400');
    expect(withDeletingInstance).toBe('accepted');
    expect(seen).toEqual(['accepted', 'accepted', 'DBClusterNotFoundFault 404', 'DBClusterNotFoundFault 404']);
    await expect(instanceStatus(rds, `${restored}-1`)).rejects.toThrow(/not found/);
  });
});

describe('quotas', () => {
  it('enforces the manual snapshot quota that DescribeAccountAttributes reports, and takes the snapshot once there is room', async () => {
    // Prepare
    const rds = rdsVia(proxy);
    const instance = await availableInstance(rds, 'quota');
    quota.max = (used) => used;
    try {
      // Act
      const reported = (await rds.send(new DescribeAccountAttributesCommand({}))).AccountQuotas!.find((q) => q.AccountQuotaName === 'ManualSnapshots')!;
      const refused = await outcome(rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: uniqueName('over') })));
      quota.max = (used) => used + 1;
      const accepted = await outcome(rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: uniqueName('room') })));

      // Assess
      expect(reported.Used).toBe(reported.Max);
      expect(refused).toBe('SnapshotQuotaExceededFault 400');
      expect(accepted).toBe('accepted');
    } finally {
      quota.max = () => 100;
    }
  });

  it('limits the snapshot copies in progress per destination region, and accepts the next one once a copy is done', async () => {
    // Prepare: a proxy that allows two copies in progress.
    const strict = await startMotoCompatProxy(upstream, { max: () => 100 }, { concurrentCopies: { instance: 2 } });
    proxies.push(strict);
    const source = rdsVia(strict);
    const destination = rdsVia(strict, OTHER_REGION);
    const arn = (await snapshotOf(source, await availableSnapshot(source, await availableInstance(source, 'copies')))).DBSnapshotArn!;
    const copy = (target: string) => destination.send(new CopyDBSnapshotCommand({ SourceDBSnapshotIdentifier: arn, TargetDBSnapshotIdentifier: target, ...fromRegion }));
    const first = uniqueName('c1');

    // Act
    await copy(first);
    await copy(uniqueName('c2'));
    const third = await outcome(copy(uniqueName('c3')));
    for (let i = 0; i < 4; i++) await snapshotOf(destination, first);
    const fourth = await outcome(copy(uniqueName('c4')));

    // Assess
    expect(third).toBe('SnapshotQuotaExceededFault 400');
    expect(fourth).toBe('accepted');
  });
});

describe('knobs', () => {
  it('polls and a minimum time per status: with minMillis a status lasts however fast the polls come', async () => {
    // Prepare: one poll per status, but at least 300 ms each.
    const strict = await startMotoCompatProxy(upstream, { max: () => 100 }, { polls: 1, minMillis: 300 });
    proxies.push(strict);
    const rds = rdsVia(strict);
    const instance = uniqueName('slow');
    await createInstance(rds, instance);

    // Act
    const quick = [(await instanceStatus(rds, instance)).DBInstanceStatus, (await instanceStatus(rds, instance)).DBInstanceStatus];
    await new Promise((r) => setTimeout(r, 350));
    const later = (await instanceStatus(rds, instance)).DBInstanceStatus;

    // Assess
    expect(quick).toEqual(['creating', 'creating']);
    expect(later).toBe('creating');
    expect((await instanceStatus(rds, instance)).DBInstanceStatus).toBe('backing-up');
  });

  it("turned off, the proxy answers with moto's instant lifecycle", async () => {
    const lenient = await startMotoCompatProxy(upstream, { max: () => 100 }, false);
    proxies.push(lenient);
    const rds = rdsVia(lenient);
    const instance = uniqueName('instant');
    await createInstance(rds, instance);
    expect(lenient.rds).toBeUndefined();
    expect((await instanceStatus(rds, instance)).DBInstanceStatus).toBe('available');
  });
});

/** moto's default VPC subnets in the owner account, through the EC2 query API. */
async function defaultSubnets(): Promise<string[]> {
  const response = await fetch(upstream, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `AWS4-HMAC-SHA256 Credential=${owner.accessKeyId}/20240101/${REGION}/ec2/aws4_request, SignedHeaders=host, Signature=0` },
    body: 'Action=DescribeSubnets&Version=2016-11-15',
  });
  return [...(await response.text()).matchAll(/<subnetId>([^<]+)</g)].map((m) => m[1]!).slice(0, 2);
}
