import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, ListObjectsV2Command, PutObjectLegalHoldCommand, PutObjectRetentionCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateDBInstanceCommand, DescribeDBSnapshotsCommand } from '@aws-sdk/client-rds';
import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import type { RetentionRunInput } from '../../events/schedules.ts';
import { ThrottledError } from '../../functions/lib/errors.ts';
import { createRdsClient, createS3Client, type AwsCredentials } from '../../functions/lib/aws/clients.ts';
import { newBackupId } from '../../functions/lib/backup/manifest.ts';
import type { AuditLine } from '../../functions/lib/retention/s3-executor.ts';
import type { SnapshotAuditLine } from '../../functions/lib/retention/snapshot-executor.ts';
import { vaultNames } from '../../functions/lib/vault/names.ts';
import { startFaultProxy, type FaultProxy } from '../../local/fault-proxy.ts';
import { credentialsFor } from '../../local/moto-rds-compat.ts';
import { createTestSecret, localAwsEnvironment, uniqueName } from '../harness/aws.ts';
import { deployForTest, type TestDeployment } from '../harness/deployed.ts';
import { alertInbox, type ReceivedAlert } from './drill-harness.ts';
import { createRetentionBucket, createSnapshot, lifeboatTags, putBackup, readJsonLines, REGION } from './retention-fixtures.ts';

/**
 * The retention workflow as the source stack deploys it (the run, and each
 * target's child execution), executed on the strict local engine with the
 * retention and alert functions run from their shipped bundles
 * (deployForTest), against moto behind the fault proxy. Two databases, each
 * at the source and in the vault (another account): alpha has dumps, and one
 * of its deletions is denied by a legal hold placed after planning; bravo has
 * dumps and RDS snapshots. Alpha's vault copies are under Object Lock. The
 * functions run on the real clock, so the fixtures are dated in the past.
 */
const VAULT = '555555555555';
const PREFIX = 'backups/';
const DAY = 86_400_000;
const NOW = new Date();
const name = `rt${randomBytes(3).toString('hex')}`;
const alpha = uniqueName('alpha');
const bravo = uniqueName('bravo');

let proxy: FaultProxy;
let sourceBucket: string;
let vaultBucket: string;
let vaultCredentials: AwsCredentials;
let secretArn: string;
const stored: Record<string, { id: string; time: Date; keys: { data: string; manifest: string } }[]> = {};
/** The vault's copies, by database, newest first. */
const vaultStored: Record<string, { id: string; time: Date; keys: { data: string; manifest: string } }[]> = {};
let heldId: string;
let snapshotIds: string[];
let deployment: TestDeployment | undefined;
/** Other deployments a test made (the vault stack), stopped after it. */
const extra: TestDeployment[] = [];
/** Set by a test: the manifest key whose DeleteObjects gets a legal hold placed first (after planning). */
let holdOnDelete: { bucket: string; key: string } | undefined;

async function keysOf(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

/** The config a user would deploy. Snapshots are stamped "now" by moto, so they may be pruned at any age (minAgeDays 0). */
const rawConfig = () => ({
  name,
  source: { account: '123456789012', region: REGION },
  databases: [alpha, bravo].map((id) => ({ id, connection: { database: id, secretArn }, rds: { instanceIdentifier: `${id}-db` } })),
  plans: [
    {
      id: 'nightly',
      // Every four hours: up to 6 copies a day, so the fixtures' same-day copies are not contested.
      schedule: { cron: 'cron(0 */4 * * ? *)', timezone: 'Europe/Berlin' },
      databases: [alpha, bravo],
      rpoMinutes: 1440,
      rtoMinutes: 60,
      snapshot: true,
      maxConcurrency: 2,
      retention: {
        source: { keepLast: 2, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 0 },
        vault: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 0 },
      },
    },
  ],
  storage: { prefix: PREFIX, kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555' },
  vault: { account: VAULT, region: REGION, retentionDays: 30 },
  alerts: { subscribers: [{ protocol: 'email', endpoint: 'oncall@example.com' }] },
});

beforeAll(async () => {
  const upstream = inject('motoEndpoint');
  proxy = await startFaultProxy(upstream);
  process.env.AWS_ENDPOINT_URL = proxy.endpoint;
  // A legal hold lands on a manifest after planning, just before its DeleteObjects (placed on moto directly).
  const holder = new S3Client({ region: REGION, endpoint: upstream, forcePathStyle: true });
  proxy.addRule(async (req) => {
    const hold = holdOnDelete;
    if (hold && req.method === 'POST' && req.url.includes('delete') && req.url.includes(hold.bucket) && req.body.toString('utf8').includes(`<Key>${hold.key}</Key>`)) {
      await holder.send(new PutObjectLegalHoldCommand({ Bucket: hold.bucket, Key: hold.key, LegalHold: { Status: 'ON' } }));
    }
    return undefined;
  });

  secretArn = await createTestSecret({ username: 'unused', password: 'unused', host: 'localhost', port: 5432 });
  const s3 = createS3Client();
  sourceBucket = await createRetentionBucket(s3, true);
  // The vault bucket, in the vault account, named as the vault stack names it.
  vaultCredentials = await credentialsFor(VAULT, 'vault-admin');
  const vaultS3 = createS3Client({ credentials: vaultCredentials });
  vaultBucket = vaultNames({ name, vault: { account: VAULT, region: REGION } }).bucketName;
  await vaultS3.send(new CreateBucketCommand({ Bucket: vaultBucket, CreateBucketConfiguration: { LocationConstraint: REGION }, ObjectLockEnabledForBucket: true }));

  for (const [db, count] of [[alpha, 5], [bravo, 3]] as const) {
    stored[db] = [];
    for (let i = 0; i < count; i++) {
      const time = new Date(NOW.getTime() - (i + 2) * DAY);
      const id = newBackupId(time, randomBytes(3).toString('hex'));
      stored[db].push({ id, time, keys: await putBackup(s3, { bucket: sourceBucket, prefix: PREFIX, databaseId: db }, id, time) });
    }
  }
  heldId = stored[alpha]![4]!.id;
  // The vault's copies, each written (as a real copy is) within hours of its dump: S3 says when. Alpha's three
  // are under compliance-mode retention; bravo's two are not, and the older is past the vault's keepLast 1.
  for (const [db, hours, locked] of [[alpha, [1, 2, 3], true], [bravo, [1, 5], false]] as const) {
    vaultStored[db] = [];
    for (const h of hours) {
      const time = new Date(NOW.getTime() - h * 3_600_000);
      const id = newBackupId(time, randomBytes(3).toString('hex'));
      const keys = await putBackup(vaultS3, { bucket: vaultBucket, prefix: PREFIX, databaseId: db }, id, time);
      vaultStored[db].push({ id, time, keys });
      if (!locked) continue;
      for (const key of [keys.data, keys.manifest]) {
        await vaultS3.send(new PutObjectRetentionCommand({ Bucket: vaultBucket, Key: key, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(NOW.getTime() + 60 * DAY) } }));
      }
    }
  }
  // Bravo's RDS snapshots, tagged as the snapshot workflow tags them.
  const rds = createRdsClient({ region: REGION });
  await rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: `${bravo}-db`, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1' }));
  snapshotIds = [];
  for (let i = 0; i < 4; i++) {
    snapshotIds.push(`lifeboat-${bravo}-${i}`);
    await createSnapshot(rds, { instance: `${bravo}-db` }, snapshotIds[i]!, lifeboatTags('nightly', bravo, `backup-${i}`));
  }
});
afterEach(async () => {
  holdOnDelete = undefined;
  await deployment?.stop();
  deployment = undefined;
  for (const d of extra.splice(0)) await d.stop();
});
afterAll(async () => {
  await proxy?.stop();
  process.env.AWS_ENDPOINT_URL = inject('motoEndpoint');
});

/** Synthesizes the source stack and deploys it locally, alerts going to the inbox's topic. */
async function deploy(topicArn: string): Promise<TestDeployment> {
  deployment = await deployForTest({ config: rawConfig(), values: { BACKUP_BUCKET: sourceBucket, ALERT_TOPIC_ARN: topicArn }, awsEnvironment: localAwsEnvironment(), onLog: () => {} });
  return deployment;
}

/** Synthesizes the vault stack and deploys it locally in the vault account, alerts going to a topic there. */
async function deployVault(): Promise<TestDeployment> {
  const vaultTopic = (await new SNSClient({ region: REGION, credentials: vaultCredentials }).send(new CreateTopicCommand({ Name: uniqueName('vault-alerts') }))).TopicArn!;
  const vault = await deployForTest({
    config: rawConfig(),
    deploy: 'vault',
    credentials: vaultCredentials,
    values: { BACKUP_BUCKET: vaultBucket, ALERT_TOPIC_ARN: vaultTopic },
    awsEnvironment: localAwsEnvironment({ AWS_ACCESS_KEY_ID: vaultCredentials.accessKeyId, AWS_SECRET_ACCESS_KEY: vaultCredentials.secretAccessKey, AWS_SESSION_TOKEN: vaultCredentials.sessionToken! }),
    onLog: () => {},
  });
  extra.push(vault);
  return vault;
}

/** Requests (as seen by the proxy) that addressed the vault bucket. */
const vaultRequests = () => proxy.seen.filter((r) => r.url.includes(`/${vaultBucket}`));

describe('the retention workflows of the source and vault stacks, executed locally from the shipped bundles', () => {
  it('prunes every target from both stacks as deployed, reports and alerts the one denied delete, never attempts locked vault objects, and writes the audit logs', async () => {
    // Prepare: the source stack and the vault stack deployed locally (the vault's in the vault account); a legal
    // hold lands on alpha's oldest manifest after planning, just before its delete.
    const inbox = await alertInbox();
    const source = await deploy(inbox.topicArn);
    const vault = await deployVault();
    holdOnDelete = { bucket: sourceBucket, key: stored[alpha]![4]!.keys.manifest };
    // What each stack's schedule sends: the source stack prunes the source, the vault stack the vault.
    const input = source.scheduledInputs('retention')[0] as RetentionRunInput;
    const vaultInput = vault.scheduledInputs('vault-retention')[0] as RetentionRunInput;
    const seenBefore = proxy.seen.length;

    // Act
    const run = await source.run('retention', input);
    const vaultRun = await vault.run('vault-retention', vaultInput);
    const alerts: ReceivedAlert[] = await inbox.receiveAll();
    const vaultCalls = vaultRequests().filter((r) => proxy.seen.indexOf(r) >= seenBefore);

    // Assess: each schedule names each database once, at its own stack's location; the source run ends incomplete.
    expect(input).toEqual({ planId: 'nightly', maxConcurrency: 2, targets: [{ databaseId: alpha, location: 'source' }, { databaseId: bravo, location: 'source' }] });
    expect(vaultInput).toEqual({ planId: 'nightly', maxConcurrency: 2, targets: [{ databaseId: alpha, location: 'vault' }, { databaseId: bravo, location: 'vault' }] });
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('RetentionIncomplete');
    expect(vaultRun.status, JSON.stringify(vaultRun.cause)).toBe('SUCCEEDED');

    // Assess: everything else was pruned. Alpha keeps its 2 newest plus the held one; bravo its 2 newest dumps and snapshots.
    const s3 = createS3Client();
    const left = (db: string) => keysOf(s3, sourceBucket, `${PREFIX}${db}/`);
    const keysFor = (db: string, picks: number[]) => picks.flatMap((i) => [stored[db]![i]!.keys.data, stored[db]![i]!.keys.manifest]).sort();
    expect(await left(alpha)).toEqual(keysFor(alpha, [0, 1, 4]));
    expect(await left(bravo)).toEqual(keysFor(bravo, [0, 1]));
    const snapshots = await createRdsClient({ region: REGION }).send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual' }));
    // moto stamps creation times in call order, so the last two created are the newest.
    expect((snapshots.DBSnapshots ?? []).map((s) => s.DBSnapshotIdentifier!).filter((id) => id.startsWith(`lifeboat-${bravo}`)).sort()).toEqual(snapshotIds.slice(2));

    // Assess: in the vault, bravo's older unlocked copy was pruned (keepLast 1); alpha's locked copies were kept
    // and never sent to S3 for deletion.
    const vaultS3 = createS3Client({ credentials: vaultCredentials });
    const vaultKeysFor = (db: string, picks: number[]) => picks.flatMap((i) => [vaultStored[db]![i]!.keys.data, vaultStored[db]![i]!.keys.manifest]).sort();
    expect(await keysOf(vaultS3, vaultBucket, `${PREFIX}${bravo}/`)).toEqual(vaultKeysFor(bravo, [0]));
    expect(await keysOf(vaultS3, vaultBucket, `${PREFIX}${alpha}/`)).toEqual(vaultKeysFor(alpha, [0, 1, 2]));
    const vaultDeletes = vaultCalls.filter((r) => r.method === 'POST' && /[?&]delete/.test(r.url)).map((r) => r.body.toString('utf8'));
    expect(vaultDeletes.join('')).toContain(vaultStored[bravo]![1]!.keys.manifest);
    expect(vaultDeletes.join('')).not.toContain(`${PREFIX}${alpha}/`);

    // Assess: exactly one alert, for the denied delete, naming the backup and the audit log.
    expect(alerts.map((a) => a.subject)).toEqual([`[lifeboat] Retention failed: database ${alpha}, plan nightly: RetentionPartialFailure`]);
    const [partial] = alerts;
    expect(partial!.message).toContain(`dump ${heldId}`);
    expect(partial!.message).toContain(run.executionArn);
    expect(partial!.details).toMatchObject({ kind: 'retention-failed', databaseId: alpha, planId: 'nightly', details: { location: 'source', deleted: 2, failedCount: 1 } });
    // It names the run (executionId) and the target's own execution, whose history has the details.
    expect((partial!.details as unknown as { details: { targetExecutionId: string } }).details.targetExecutionId).toMatch(/:execution:[^:]*-lifeboat-retention-target:/);
    const { failed, auditKeys, auditBucket } = (partial!.details as unknown as { details: { failed: { id: string; error: string }[]; auditKeys: string[]; auditBucket: string } }).details;
    expect(failed).toEqual([{ backup: 'dump', id: heldId, error: expect.stringMatching(/AccessDenied.*manifest not deleted, so the data was left in place/) }]);
    expect(auditBucket).toBe(sourceBucket);

    // Assess: the audit log of every pruned target is in its own location's bucket, with each outcome.
    const alphaAudit = await readJsonLines<AuditLine>(s3, sourceBucket, auditKeys[0]!);
    expect(alphaAudit.map((l) => [l.backupId, l.outcome]).sort()).toEqual(
      [[stored[alpha]![2]!.id, 'deleted'], [stored[alpha]![3]!.id, 'deleted'], [heldId, 'failed']].sort(),
    );
    const auditKeysWritten = await keysOf(s3, sourceBucket, `${PREFIX}_audit/retention/`);
    expect(auditKeysWritten.map((k) => k.split('.').slice(-3).join('.'))).toEqual(
      expect.arrayContaining([`source.${alpha}.jsonl`, `source.${bravo}.jsonl`]),
    );
    expect(auditKeysWritten.filter((k) => k.includes('.vault.'))).toEqual([]);
    const bravoSnapshots = auditKeysWritten.find((k) => k.includes('-snapshots.source.'))!;
    expect((await readJsonLines<SnapshotAuditLine>(s3, sourceBucket, bravoSnapshots)).map((l) => [l.snapshotId, l.outcome]).sort()).toEqual([
      [snapshotIds[0], 'deleted'],
      [snapshotIds[1], 'deleted'],
    ]);
    const vaultAudit = (await keysOf(vaultS3, vaultBucket, `${PREFIX}_audit/retention/`)).find((k) => k.endsWith(`.vault.${bravo}.jsonl`))!;
    expect((await readJsonLines<AuditLine>(vaultS3, vaultBucket, vaultAudit)).map((l) => [l.backupId, l.outcome])).toEqual([[vaultStored[bravo]![1]!.id, 'deleted']]);

    // Assess: the run's summary stays small: each target's status, in the order of the targets; each target ran as its own execution.
    const summary = run.events.find((e) => e.type === 'StateExited' && e.state?.name === 'SummariseRun')!.state!.output as { results: string[] };
    expect(input.targets.map((t, i) => [t.databaseId, t.location, summary.results[i]])).toEqual([
      [alpha, 'source', 'partial'],
      [bravo, 'source', 'succeeded'],
    ]);
    expect(JSON.stringify(summary).length).toBeLessThan(1_000);
    expect(run.stats.childExecutions).toBe(2);
    expect(vaultRun.stats.childExecutions).toBe(2);
  });

  it('retries a throttled target, alerts a target that cannot run at all, and carries on with the rest', async () => {
    // Prepare: the first call for bravo is throttled (the function reports ThrottledError, as it does when RDS or S3 throttle it past the SDK's retries); "ghost" is not in the plan.
    const inbox = await alertInbox();
    const deployed = await deploy(inbox.topicArn);
    const retentionFunction = deployed.lambdas.RetentionFunctionArn!.asTask();
    let throttled = 0;
    const retention = async (event: unknown) => {
      if ((event as { databaseId: string }).databaseId === bravo && throttled++ === 0) throw new ThrottledError('RDS throttled DescribeDBSnapshots.');
      return retentionFunction(event);
    };

    // Act
    const run = await deployed.run(
      'retention',
      { planId: 'nightly', maxConcurrency: 1, targets: [{ databaseId: 'ghost', location: 'source' }, { databaseId: bravo, location: 'source' }] },
      { resources: { [deployed.functionArns.RetentionFunctionArn!]: retention } },
    );
    const alerts = await inbox.receiveAll();

    // Assess
    expect(run).toMatchObject({ status: 'FAILED', error: 'RetentionIncomplete' });
    expect(throttled).toBe(2);
    expect(alerts.map((a) => a.subject)).toEqual(['[lifeboat] Retention failed: database ghost, plan nightly: RetentionInputError']);
    expect(alerts[0]!.message).toMatch(/Database "ghost" is not in plan "nightly"/);
    const summary = run.events.find((e) => e.type === 'StateExited' && e.state?.name === 'SummariseRun')!.state!.output as { results: string[] };
    expect(summary.results).toEqual(['failed', 'succeeded']);
  });

  it('keeps every real vault copy and alerts when manifests forged through the copier are dated into past periods', async () => {
    // Prepare: as the copier role (what production may assume), plant backups of bravo in the vault: new keys,
    // If-None-Match, all the copier may do, with manifests dated three days, a week, a month and a year back.
    const copier = createS3Client({ credentials: await credentialsFor(VAULT, vaultNames({ name, vault: { account: VAULT, region: REGION } }).copierRoleName) });
    const forged: string[] = [];
    for (const days of [3, 7, 31, 365]) {
      const time = new Date(NOW.getTime() - days * DAY);
      const id = newBackupId(time, randomBytes(3).toString('hex'));
      await putBackup(copier, { bucket: vaultBucket, prefix: PREFIX, databaseId: bravo }, id, time);
      forged.push(id);
    }
    const vaultS3 = createS3Client({ credentials: vaultCredentials });
    const before = await keysOf(vaultS3, vaultBucket, `${PREFIX}${bravo}/`);
    const vault = await deployVault();
    const alertCalls: unknown[] = [];
    const alertFunction = vault.lambdas.AlertFunctionArn!.asTask();

    // Act: the vault's own retention, as its schedule starts it.
    const run = await vault.run('vault-retention', { planId: 'nightly', maxConcurrency: 1, targets: [{ databaseId: bravo, location: 'vault' }] }, {
      resources: { [vault.functionArns.AlertFunctionArn!]: async (event: unknown) => (alertCalls.push(event), alertFunction(event)) },
    });

    // Assess: the real newest copy (what keepLast 1 keeps) and every forged backup are still there: the forged
    // are left alone and not counted, so they push nothing out.
    const after = await keysOf(vaultS3, vaultBucket, `${PREFIX}${bravo}/`);
    expect(after).toEqual(expect.arrayContaining([vaultStored[bravo]![0]!.keys.data, vaultStored[bravo]![0]!.keys.manifest]));
    expect(forged.every((id) => after.some((k) => k.includes(`/${id}/manifest.json`)) && after.some((k) => k.includes(`/${id}/dump.enc`)))).toBe(true);
    expect(before.length).toBeGreaterThanOrEqual(after.length);
    // Assess: the target is partial, and its alert names the forged manifests and what to do.
    expect(run).toMatchObject({ status: 'FAILED', error: 'RetentionIncomplete' });
    expect(vault.children.at(-1)!.output).toMatchObject({ databaseId: bravo, location: 'vault', status: 'partial', failedCount: 0 });
    expect(alertCalls).toHaveLength(1);
    const alert = alertCalls[0] as { kind: string; error: { Error: string; Cause: string } };
    expect(alert).toMatchObject({ kind: 'retention-failed', error: { Error: 'RetentionSuspiciousBackups' } });
    expect(alert.error.Cause).toMatch(/^4 backup\(s\) of database \S+ at vault look forged: 4 whose dates contradict when they were copied in \(first: /);
    expect(alert.error.Cause).toMatch(/does not fit when S3 wrote the manifest/);
    expect(alert.error.Cause).toContain('rotate the credentials that could assume the copier role');
    expect(forged.some((id) => alert.error.Cause.includes(id))).toBe(true);
  });

  it('keeps a day that holds more copies than the schedule makes (fresh forgeries, each newer than the real copy) as one, and alerts', async () => {
    // Prepare: as the copier, plant six fresh backups of bravo, dated seconds after its newest real copy (so each
    // passes the date check and would be the newest of the day): with the real one, 7 on a day the every-4-hours
    // schedule fills with at most 6.
    const copier = createS3Client({ credentials: await credentialsFor(VAULT, vaultNames({ name, vault: { account: VAULT, region: REGION } }).copierRoleName) });
    const real = vaultStored[bravo]![0]!;
    const forged: string[] = [];
    for (let k = 1; k <= 6; k++) {
      const time = new Date(real.time.getTime() + k * 1000);
      const id = newBackupId(time, randomBytes(3).toString('hex'));
      await putBackup(copier, { bucket: vaultBucket, prefix: PREFIX, databaseId: bravo }, id, time);
      forged.push(id);
    }
    const vaultS3 = createS3Client({ credentials: vaultCredentials });
    const vault = await deployVault();
    const alertCalls: unknown[] = [];
    const alertFunction = vault.lambdas.AlertFunctionArn!.asTask();

    // Act
    await vault.run('vault-retention', { planId: 'nightly', maxConcurrency: 1, targets: [{ databaseId: bravo, location: 'vault' }] }, {
      resources: { [vault.functionArns.AlertFunctionArn!]: async (event: unknown) => (alertCalls.push(event), alertFunction(event)) },
    });

    // Assess: the day is the newest, so keepLast 1 keeps it: the real copy and every forgery with it (the
    // forgeries count once, with the real copy); the alert names the crowded day and the schedule's limit.
    const after = await keysOf(vaultS3, vaultBucket, `${PREFIX}${bravo}/`);
    expect(after).toEqual(expect.arrayContaining([real.keys.data, real.keys.manifest]));
    expect(forged.every((id) => after.some((k) => k.includes(`/${id}/manifest.json`)))).toBe(true);
    expect(vault.children.at(-1)!.output).toMatchObject({ databaseId: bravo, location: 'vault', status: 'partial', failedCount: 0 });
    const alert = alertCalls[0] as { kind: string; error: { Error: string; Cause: string } };
    expect(alert).toMatchObject({ kind: 'retention-failed', error: { Error: 'RetentionSuspiciousBackups' } });
    expect(alert.error.Cause).toMatch(/ on days holding more copies than the plan's schedule makes \(first: \S+: \d+ backups of plan nightly are dated \d{4}-\d{2}-\d{2} \(Europe\/Berlin\), and its schedule makes at most 6 a day/);
  });
});
