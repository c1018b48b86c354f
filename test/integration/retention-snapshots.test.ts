import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { createRdsClient, createS3Client, createStsClient } from '../../functions/lib/aws/clients.ts';
import type { RetentionPolicy } from '../../functions/lib/config/schema.ts';
import { planRetention } from '../../functions/lib/retention/planner.ts';
import { readDrillProofs } from '../../functions/lib/retention/proofs.ts';
import { runRetention, summariseRetention, type RetentionContext } from '../../functions/lib/retention/run.ts';
import type { RetentionSettings } from '../../functions/lib/retention/environment.ts';
import {
  executeSnapshotPrune,
  pruneSnapshots,
  renderSnapshotPrunePlan,
  type SnapshotAuditLine,
  type SnapshotRetentionTarget,
} from '../../functions/lib/retention/snapshot-executor.ts';
import { startFaultProxy, type FaultProxy } from '../../local/fault-proxy.ts';
import { uniqueName } from '../harness/aws.ts';
import { createRetentionBucket, createSnapshot, lifeboatTags, putDrillReport, readJsonLines, snapshotListing } from './retention-fixtures.ts';
import { actAsAccount, credentialsFor, failRds, throttleRds } from '../../local/moto-rds-compat.ts';

/**
 * The snapshot retention executor against moto, behind the fault proxy: moto
 * stamps snapshot times itself and makes every snapshot available at once, so
 * the proxy sets times and statuses per snapshot in the listings (see
 * snapshotListing), denies one delete and throttles others. Production is
 * account 333333333333 in eu-west-1, the vault 444444444444 in eu-central-1.
 */
const PROD = '333333333333';
const VAULT = '444444444444';
const SOURCE_REGION = 'eu-west-1';
const VAULT_REGION = 'eu-central-1';
const PREFIX = 'backups/';
const HOUR = 3_600_000;
const NOW = new Date('2027-03-15T12:00:00Z');
const TZ = 'Europe/Berlin';

let proxy: FaultProxy;
let bucket: string;
const overrides = new Map<string, { time?: Date; status?: string; copiedAt?: Date }>();
const instance = uniqueName('orders-db');
const cluster = uniqueName('billing-db');
const noSleep = { sleep: async () => undefined, baseDelayMs: 1 };

beforeAll(async () => {
  const upstream = inject('motoEndpoint');
  proxy = await startFaultProxy(upstream);
  process.env.AWS_ENDPOINT_URL = proxy.endpoint;
  proxy.addRule(snapshotListing(upstream, overrides));
  await actAsAccount(PROD);
  bucket = await createRetentionBucket(createS3Client(), false);
  const rds = createRdsClient({ region: SOURCE_REGION });
  await rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: instance, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1' }));
  await rds.send(new CreateDBClusterCommand({ DBClusterIdentifier: cluster, Engine: 'aurora-postgresql', MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1' }));
});
afterAll(async () => {
  await proxy?.stop();
});

/** Lifeboat-tagged snapshots `<db>-<i>` at the given ages; returns their ids, newest first. */
async function seed(rds: RDSClient, source: { instance: string } | { cluster: string }, planId: string, databaseId: string, agesHours: number[]): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, age] of agesHours.entries()) {
    const id = `${databaseId}-${i}`;
    await createSnapshot(rds, source, id, lifeboatTags(planId, databaseId, `backup-${databaseId}-${i}`));
    overrides.set(id, { time: new Date(NOW.getTime() - age * HOUR) });
    ids.push(id);
  }
  return ids;
}

async function instanceSnapshotIds(rds: RDSClient): Promise<string[]> {
  const out = await rds.send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual' }));
  return (out.DBSnapshots ?? []).map((s) => s.DBSnapshotIdentifier!).sort();
}

/** What the vault's retention function runs with: the vault's retention role, the given plan as "nightly". */
async function vaultRetentionContext(plan: RetentionSettings['plans'][string]) {
  const roleArn = `arn:aws:iam::${VAULT}:role/acme-lifeboat-vault-retention`;
  const settings: RetentionSettings = {
    plans: { nightly: plan },
    sourceRegion: SOURCE_REGION,
    storage: { bucket, prefix: PREFIX },
    vault: { account: VAULT, region: VAULT_REGION, bucket: await createRetentionBucket(createS3Client(), false), retentionRoleArn: roleArn },
  };
  const regionsAsked: { region: string; withCredentials: boolean }[] = [];
  const ctx: RetentionContext = {
    settings,
    s3: createS3Client(),
    s3With: (region, credentials) => createS3Client({ region, credentials }),
    rds: (region, credentials) => {
      regionsAsked.push({ region, withCredentials: credentials !== undefined });
      return createRdsClient({ region, credentials });
    },
    sts: createStsClient({ region: SOURCE_REGION }),
    now: () => NOW,
    retry: noSleep,
  };
  return { ctx, roleArn, regionsAsked };
}

describe('snapshot retention executor against moto', () => {
  it("plans only lifeboat's available manual snapshots of the plan and database with RDS's times, and deletes exactly the plan with an audit log", async () => {
    // Prepare: nine snapshots of one database a day or so apart, plus everything that must never be touched.
    const rds = createRdsClient({ region: SOURCE_REGION });
    const db = uniqueName('orders');
    const ids = await seed(rds, { instance }, 'nightly', db, [2, 26, 30, 74, 122, 170, 290, 460, 1000]);
    const proven = ids[7]!;
    await putDrillReport(createS3Client(), { bucket, prefix: PREFIX }, { databaseId: db, kind: 'snapshot', backupId: proven, verdict: 'passed', drillId: '20270301T000000Z-aaaaaa' });
    await putDrillReport(createS3Client(), { bucket, prefix: PREFIX }, { databaseId: db, kind: 'snapshot', backupId: ids[8]!, verdict: 'emulated', emulated: true, drillId: '20270302T000000Z-bbbbbb' });
    const creating = `${db}-creating`;
    await createSnapshot(rds, { instance }, creating, lifeboatTags('nightly', db, 'backup-creating'));
    overrides.set(creating, { time: new Date(NOW.getTime() - 900 * HOUR), status: 'creating' });
    const untouchable = [`${db}-other-plan`, `${db}-other-db`, `${db}-untagged`, `${db}-partly-tagged`];
    await createSnapshot(rds, { instance }, untouchable[0]!, lifeboatTags('hourly', db, 'backup-x'));
    await createSnapshot(rds, { instance }, untouchable[1]!, lifeboatTags('nightly', `${db}-x`, 'backup-y'));
    await createSnapshot(rds, { instance }, untouchable[2]!, []);
    await createSnapshot(rds, { instance }, untouchable[3]!, lifeboatTags('nightly', db, 'backup-z').filter((t) => t.Key !== 'lifeboat:backup-id'));
    for (const id of untouchable) overrides.set(id, { time: new Date(NOW.getTime() - 2000 * HOUR) });
    const policy: RetentionPolicy = { keepLast: 1, daily: 2, weekly: 2, monthly: 0, yearly: 0, minAgeDays: 1 };
    const target: SnapshotRetentionTarget = { location: 'source', region: SOURCE_REGION, planId: 'nightly', databaseId: db };
    const proofs = await readDrillProofs(createS3Client(), bucket, PREFIX, db);
    const options = { rds, target, policy, timeZone: TZ, now: NOW, provenBackupIds: proofs.snapshot, audit: { s3: createS3Client(), bucket }, prefix: PREFIX };
    const before = await instanceSnapshotIds(rds);

    // Act: dry run.
    const dry = await pruneSnapshots({ ...options, dryRun: true });

    // Assess: nothing deleted; the plan is the pure planner's over the RDS times, proofs from passed, real drills only.
    expect(proofs.snapshot).toEqual(new Set([proven]));
    expect(await instanceSnapshotIds(rds)).toEqual(before);
    const expected = planRetention(
      ids.map((id) => ({ id, time: overrides.get(id)!.time!, location: 'source', verifiedByDrill: id === proven })),
      policy,
      NOW,
      TZ,
    );
    expect(dry.plan.decisions.map(({ id, action, reasons }) => ({ id, action, reasons }))).toEqual(expected.map(({ id, action, reasons }) => ({ id, action, reasons })));
    const planned = expected.filter((d) => d.action === 'delete').map((d) => d.id);
    expect(planned.length).toBeGreaterThanOrEqual(3);
    expect(dry.plan.decisions.find((d) => d.id === proven)!.reasons).toContain('newest backup proven by a drill');
    expect(dry.plan.untouchable.map((u) => [u.snapshot.id, u.reason])).toEqual([[creating, 'status "creating": not a usable backup, never touched']]);
    expect(dry).toMatchObject({ dryRun: true, deleted: planned.length, kept: ids.length - planned.length + 1 });
    const table = renderSnapshotPrunePlan(dry.plan);
    expect(table).toMatch(/^ACTION +SNAPSHOT +KIND +CREATED \(Europe\/Berlin\) +REASONS$/m);
    expect(table).toContain(`delete  ${planned[0]}`);
    expect(table).toContain('not a usable backup, never touched');

    // Act: the real run, with two throttled deletes on a client that does not retry by itself.
    const throttle = throttleRds('DeleteDBSnapshot', 2);
    proxy.addRule(throttle);
    const runAt = new Date();
    const summary = await executeSnapshotPrune(dry.plan, { ...options, rds: createRdsClient({ region: SOURCE_REGION, maxAttempts: 1 }), runId: 'run-1', retry: noSleep, clock: () => runAt, concurrency: 2 });

    // Assess: exactly the plan is gone, throttles retried, everything else intact, audit written.
    expect(throttle.count()).toBeGreaterThanOrEqual(2);
    expect(summary.failed).toEqual([]);
    expect(summary.deletedIds.sort()).toEqual([...planned].sort());
    expect(await instanceSnapshotIds(rds)).toEqual(before.filter((id) => !planned.includes(id)));
    const auditKey = `${PREFIX}_audit/retention/${runAt.toISOString().slice(0, 10).replace(/-/g, '/')}/run-1-snapshots.source.${db}.jsonl`;
    expect(summary.auditKey).toBe(auditKey);
    const audit = await readJsonLines<SnapshotAuditLine>(createS3Client(), bucket, auditKey);
    expect(audit.map((l) => l.snapshotId).sort()).toEqual([...planned].sort());
    for (const l of audit) {
      expect(l).toMatchObject({ runId: 'run-1', location: 'source', region: SOURCE_REGION, planId: 'nightly', databaseId: db, kind: 'rds-snapshot', outcome: 'deleted', reasons: ['beyond policy'] });
      expect(l.backupId).toBe(`backup-${l.snapshotId}`);
      expect(l.snapshotArn).toContain(`:snapshot:${l.snapshotId}`);
    }

    // Idempotent: planning again deletes nothing.
    const again = await pruneSnapshots({ ...options, dryRun: false });
    expect(again).toMatchObject({ deleted: 0, failed: [] });
    expect(again.auditKey).toBeUndefined();
  });

  it('Aurora cluster snapshots: a denied delete is reported while every other deletion proceeds', async () => {
    // Prepare
    const rds = createRdsClient({ region: SOURCE_REGION });
    const db = uniqueName('billing');
    const ids = await seed(rds, { cluster }, 'nightly', db, [3, 50, 100, 150, 200, 250]);
    const denied = ids[4]!;
    proxy.addRule(failRds('DeleteDBClusterSnapshot', 'InvalidDBClusterSnapshotStateFault', 'Cannot delete the snapshot because it is being copied.', (r) => r.params.get('DBClusterSnapshotIdentifier') === denied));
    const policy: RetentionPolicy = { keepLast: 2, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 1 };
    const target: SnapshotRetentionTarget = { location: 'source', region: SOURCE_REGION, planId: 'nightly', databaseId: db };

    // Act
    const summary = await pruneSnapshots({ rds, target, policy, timeZone: TZ, now: NOW, audit: { s3: createS3Client(), bucket }, prefix: PREFIX, retry: noSleep, dryRun: false, runId: 'run-2' });

    // Assess
    expect(summary.failed).toEqual([{ id: denied, error: expect.stringMatching(/^InvalidDBClusterSnapshotStateFault: Cannot delete the snapshot because it is being copied/) }]);
    expect(summary.deletedIds.sort()).toEqual([ids[2]!, ids[3]!, ids[5]!].sort());
    expect(summary.kept).toBe(3);
    const left = await rds.send(new DescribeDBClusterSnapshotsCommand({ SnapshotType: 'manual' }));
    expect((left.DBClusterSnapshots ?? []).map((s) => s.DBClusterSnapshotIdentifier).filter((id) => id?.startsWith(db)).sort()).toEqual([ids[0]!, ids[1]!, denied].sort());
    const audit = await readJsonLines<SnapshotAuditLine>(createS3Client(), bucket, summary.auditKey!);
    expect(audit.find((l) => l.snapshotId === denied)).toMatchObject({ outcome: 'failed', kind: 'aurora-cluster-snapshot', error: expect.stringContaining('being copied') });
    expect(audit.filter((l) => l.outcome === 'deleted')).toHaveLength(3);
  });

  it("prunes the vault only as the vault's retention role, never with the production credentials", async () => {
    // Prepare: the same plan, database and tags in production and in the vault, in the vault's region.
    const db = uniqueName('ledger');
    const prodRds = createRdsClient({ region: VAULT_REGION });
    const vaultRds = createRdsClient({ region: VAULT_REGION, credentials: await credentialsFor(VAULT, 'vault-admin') });
    const standIn = uniqueName('standin');
    for (const client of [prodRds, vaultRds]) {
      await client.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: standIn, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1' }));
    }
    const vaultIds = await seed(vaultRds, { instance: standIn }, 'nightly', db, [5, 60, 120, 180]);
    const prodBefore = await seed(prodRds, { instance: standIn }, 'nightly', db, [5, 60, 120, 180]).then(() => instanceSnapshotIds(prodRds));
    const { ctx, roleArn, regionsAsked } = await vaultRetentionContext({ timeZone: TZ, databases: [db], retention: { vault: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 1 } } });
    const assumed: string[] = [];
    proxy.addRule((req) => {
      const params = new URLSearchParams(req.body.toString());
      if (params.get('Action') === 'AssumeRole') assumed.push(params.get('RoleArn') ?? '');
      return undefined;
    });

    // Act
    const result = await runRetention({ planId: 'nightly', databaseId: db, location: 'vault', dryRun: false, runId: 'run-3' }, ctx);

    // Assess: the vault lost all but the newest; production, with identical tags, lost nothing.
    expect(assumed).toEqual([roleArn]);
    expect(regionsAsked).toEqual([{ region: VAULT_REGION, withCredentials: true }]);
    const output = summariseRetention(result);
    expect(output).toMatchObject({ status: 'succeeded', location: 'vault', deleted: 3, failedCount: 0 });
    expect(output.deletedIds.sort()).toEqual(vaultIds.slice(1).sort());
    expect((await instanceSnapshotIds(vaultRds)).filter((id) => id.startsWith(db))).toEqual([vaultIds[0]!]);
    expect(await instanceSnapshotIds(prodRds)).toEqual(prodBefore);
    // The audit log stays in the production account's source bucket.
    expect(output.auditBucket).toBe(bucket);
    expect(output.auditKeys).toEqual([expect.stringMatching(new RegExp(`run-3-snapshots\\.vault\\.${db}\\.jsonl$`))]);
    expect((await readJsonLines<SnapshotAuditLine>(createS3Client(), bucket, output.auditKeys[0]!)).every((l) => l.account === VAULT && l.region === VAULT_REGION)).toBe(true);
  });

  it('plans a vault day holding more snapshots than the schedule makes as one (kept or dropped together, counted once), keeps a copy backdated into a past period, and alerts both', async () => {
    // Prepare: in the vault, a once-a-day plan: three snapshots today, one on each of two other days, and two on a
    // day a week ago that has left the policy.
    const db = uniqueName('ledger');
    const vaultRds = createRdsClient({ region: VAULT_REGION, credentials: await credentialsFor(VAULT, 'vault-admin') });
    const standIn = uniqueName('standin');
    await vaultRds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: standIn, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1' }));
    const ids = await seed(vaultRds, { instance: standIn }, 'nightly', db, [5, 5.1, 5.2, 60, 120, 180, 180.1]);
    // And a copy of a year-old snapshot, copied in an hour ago: dated into a past period.
    await createSnapshot(vaultRds, { instance: standIn }, `${db}-backdated`, lifeboatTags('nightly', db, 'backup-backdated'));
    overrides.set(`${db}-backdated`, { time: new Date(NOW.getTime() - 24 * 365 * HOUR), copiedAt: new Date(NOW.getTime() - HOUR) });
    const { ctx } = await vaultRetentionContext({ timeZone: TZ, maxBackupsPerDay: 1, databases: [db], retention: { vault: { keepLast: 2, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 0 } } });

    // Act
    const output = summariseRetention(await runRetention({ planId: 'nightly', databaseId: db, location: 'vault', dryRun: false, runId: 'run-4' }, ctx));

    // Assess: keepLast 2 keeps today (three snapshots, counted once) and the next newest; the rest go, the old
    // crowded day's two together; the backdated copy is kept and not counted.
    expect((await instanceSnapshotIds(vaultRds)).filter((id) => id.startsWith(db))).toEqual([...ids.slice(0, 4), `${db}-backdated`].sort());
    expect(output).toMatchObject({ status: 'partial', location: 'vault', deleted: 3, failedCount: 0 });
    expect(output.deletedIds.sort()).toEqual(ids.slice(4).sort());
    // Only today's crowded day is alerted: the week-old one was (on the days after it), and is now just planned.
    expect(output.alert).toMatchObject({ Error: 'RetentionSuspiciousBackups' });
    expect(output.alert!.Cause).toMatch(new RegExp(`^4 backup\\(s\\) of database ${db} at vault look forged: 1 whose dates contradict when they were copied in \\(first: ${db}-backdated: copied in at .*, \\d+ h after its original was taken .*; 3 on days holding more copies than the plan's schedule makes \\(first: ${db}-\\d: 3 snapshots of plan nightly are dated 2027-03-15 \\(Europe/Berlin\\), and its schedule makes at most 1 a day`));
  });
});
