import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { CreateKeyCommand, PutKeyPolicyCommand } from '@aws-sdk/client-kms';
import { CreateDBClusterCommand, CreateDBInstanceCommand, DescribeDBClusterSnapshotsCommand, DescribeDBSnapshotsCommand } from '@aws-sdk/client-rds';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createKmsClient, createRdsClient, createS3Client } from '../../functions/lib/aws/clients.ts';
import type { LifeboatConfigInput } from '../../functions/lib/config/schema.ts';
import { vaultNames } from '../../functions/lib/vault/names.ts';
import { actAsAccount, credentialsFor, failRds, snapshotStatus, throttleRds, type QuotaScript } from '../../local/moto-rds-compat.ts';
import { createAlertInbox, createLocalVault, LOCAL_ACCOUNTS, LOCAL_REGIONS, snapshotCopyKeyPolicy, startMotoCompatProxy, type AlertInbox, type MotoCompatProxy } from '../../local/nightly-environment.ts';
import { waitUntilAvailable } from '../../local/strict-rds.ts';
import type { LocalRunResult } from '../../local/state-machine-runner.ts';
import { capturingOutput } from '../harness/capture.ts';
import { deployForTest, type TestDeployment } from '../harness/deployed.ts';
import { createTestBucket, createTestKey, createTestSecret, localAwsEnvironment, testClients, uniqueName } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

/**
 * The backup state machine with its snapshot and copy steps, as synthesized
 * into the source stack and run from what ships: every Lambda task is the
 * bundle CDK deploys, in its own processes, with the template's environment
 * (deployForTest), against moto behind the strict RDS layer. Production
 * account 333333333333 (eu-west-1, copy region eu-central-1), vault account
 * 222222222222 (eu-central-1), created as the vault stack names its
 * resources (vaultNames). The fault proxy supplies what moto lacks and the
 * scripted faults (see local/moto-rds-compat.ts).
 */
const PROD = LOCAL_ACCOUNTS.production;
const VAULT = LOCAL_ACCOUNTS.vault;
const SOURCE_REGION = LOCAL_REGIONS.source;
const VAULT_REGION = LOCAL_REGIONS.vault;
type DatabaseInput = LifeboatConfigInput['databases'][number];
type Plan = { id: string; dump: boolean; snapshot: boolean; maxConcurrency: number };
/** The deployment's name: the vault's bucket, copier role and key aliases are named after it. */
const NAME = uniqueName('snapsm').replace(/[^a-z0-9-]/g, '');
const names = vaultNames({ name: NAME, vault: { account: VAULT, region: VAULT_REGION } });

let proxy: MotoCompatProxy;
let upstream: string;
const quota: QuotaScript = { max: () => 100 };
const faults = { on: false };
let inbox: AlertInbox;
let bucket: string;
let envelopeKey: string;
let copyKey: string;
let vaultKey: string;
let secretArn: string;
const pgDatabases: Awaited<ReturnType<typeof createTestDatabase>>[] = [];
const rdsIds: Record<string, string> = {};
/** Every credential STS handed out (seen on the wire, as the functions run in their own processes): none may appear in any output. */
const issued: string[] = [];
let deployment: TestDeployment | undefined;

const keyPolicy = (sharedWithVault: boolean) => snapshotCopyKeyPolicy(PROD, VAULT, sharedWithVault);

beforeAll(async () => {
  upstream = inject('motoEndpoint');
  proxy = await startMotoCompatProxy(upstream, quota);
  process.env.AWS_ENDPOINT_URL = proxy.endpoint;
  await actAsAccount(PROD);
  const prodKey = process.env.AWS_ACCESS_KEY_ID;
  const isProd = (accessKey: string) => accessKey === prodKey;
  // Scripted faults, on only while `faults.on`: by the database id inside lifeboat's snapshot names.
  const named = (db: string) => (id: string) => faults.on && id.startsWith(`lifeboat-${db}-`);
  proxy.addRule(snapshotStatus(upstream, (id, r) => named('flaky')(id) && r.region === SOURCE_REGION, (n) => (n === 0 ? 'creating' : 'failed')));
  proxy.addRule(snapshotStatus(upstream, (id, r) => named('stuck')(id) && r.region === VAULT_REGION && isProd(r.accessKey), () => 'copying'));
  proxy.addRule(failRds('CreateDBSnapshot', 'SnapshotQuotaExceeded', 'Cannot create more than 100 manual snapshots', (r) => faults.on && r.params.get('DBInstanceIdentifier') === rdsIds.full));
  // The credentials STS issues, read from its answers (AssumeRole in the copy steps).
  proxy.addLayer({
    handles: (req) => req.body.toString('utf8').includes('Action=AssumeRole'),
    handle: async (_req, next) => {
      const answer = await next();
      for (const tag of ['AccessKeyId', 'SecretAccessKey', 'SessionToken']) {
        const value = new RegExp(`<${tag}>([^<]+)</${tag}>`).exec(answer.body)?.[1];
        if (value) issued.push(value);
      }
      return answer;
    },
  });

  inbox = await createAlertInbox(testClients().sns, { topic: uniqueName('lifeboat-alerts'), queue: uniqueName('oncall') });

  // Dumps: two real databases, a backup bucket and envelope key in production.
  for (let i = 0; i < 2; i++) {
    const db = await createTestDatabase('lbsnap');
    await withClient(db.name, (c) => c.query(`CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, ${50 * (i + 1)})`));
    pgDatabases.push(db);
  }
  [bucket, envelopeKey] = await Promise.all([createTestBucket(), createTestKey()]);
  const s = pgServer();
  secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });

  // Snapshots: an encrypted instance and cluster per scenario, and the keys.
  const sourceKey = (await createKmsClient({ region: SOURCE_REGION }).send(new CreateKeyCommand({ Description: 'database key' }))).KeyMetadata!.Arn!;
  copyKey = (await createKmsClient({ region: VAULT_REGION }).send(new CreateKeyCommand({ Description: 'copy key', Policy: keyPolicy(true) }))).KeyMetadata!.Arn!;
  const rds = createRdsClient({ region: SOURCE_REGION });
  for (const name of ['alpha', 'flaky', 'stuck', 'full', 'unshared']) {
    rdsIds[name] = uniqueName(name);
    await rds.send(
      new CreateDBInstanceCommand({ DBInstanceIdentifier: rdsIds[name], Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1', StorageEncrypted: true, KmsKeyId: sourceKey }),
    );
  }
  rdsIds.bravo = uniqueName('bravo');
  await rds.send(new CreateDBClusterCommand({ DBClusterIdentifier: rdsIds.bravo, Engine: 'aurora-postgresql', MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1', StorageEncrypted: true, KmsKeyId: sourceKey }));
  // The instances are available before the runs (the strict RDS layer makes them wait); the cluster is still being created when the first run snapshots it.
  await waitUntilAvailable(rds, { instances: Object.values(rdsIds).filter((id) => id !== rdsIds.bravo) });

  // The vault account's side, as its stack creates it, under the names the source stack derives.
  const vault = await createLocalVault({
    bucket: names.bucketName,
    retentionDays: 1,
    productionAccounts: [PROD],
    aliases: { snapshotKey: names.snapshotKeyAlias, recoveryKey: names.recoveryKeyAlias },
  });
  vaultKey = vault.snapshotKeyArn;
});
afterEach(async () => {
  await deployment?.stop();
  deployment = undefined;
});
afterAll(async () => {
  for (const db of pgDatabases) await db.drop();
  await proxy?.stop();
});

function database(id: string, rds?: DatabaseInput['rds'], pgName?: string): DatabaseInput {
  return { id, connection: { database: pgName ?? 'unused', secretArn, sslMode: 'disable', connectTimeoutSeconds: 3 }, ...(rds ? { rds } : {}) };
}

/** The config a user would deploy: these databases in one plan, a vault, copies into the vault's region. */
function config(databases: DatabaseInput[], plan: Plan, snapshots: { maxWaitMinutes?: number } = {}) {
  return {
    name: NAME,
    source: { account: PROD, region: SOURCE_REGION },
    databases,
    plans: [{ id: plan.id, schedule: { cron: 'cron(0 3 * * ? *)' }, databases: databases.map((d) => d.id), rpoMinutes: 1440, rtoMinutes: 60, dump: plan.dump, snapshot: plan.snapshot, maxConcurrency: plan.maxConcurrency }],
    storage: { prefix: 'backups/', kmsKeyArn: envelopeKey },
    snapshots: { copy: { region: VAULT_REGION, kmsKeyArn: copyKey }, ...snapshots },
    vault: { account: VAULT, region: VAULT_REGION, retentionDays: 1 },
    alerts: { subscribers: [{ protocol: 'email', endpoint: 'oncall@example.com' }] },
  };
}

/**
 * Synthesizes the source stack for this plan and runs one scheduled backup
 * (the execution input names the plan only, as the schedule does). Each
 * database's result is its child execution's output; `creates` lists the
 * snapshot function's `create` invocations by database.
 */
async function runBackup(plan: Plan, databases: DatabaseInput[], snapshots: { maxWaitMinutes?: number } = {}) {
  deployment = await deployForTest({ config: config(databases, plan, snapshots), values: { BACKUP_BUCKET: bucket, ALERT_TOPIC_ARN: inbox.topicArn }, awsEnvironment: localAwsEnvironment(), onLog: () => {} });
  const creates: string[] = [];
  const snapshotFunction = deployment.lambdas.SnapshotFunctionArn!.asTask();
  const counting = async (input: unknown) => {
    const i = input as { action: string; databaseId: string };
    if (i.action === 'create') creates.push(i.databaseId);
    return snapshotFunction(input);
  };
  const children: LocalRunResult[] = [];
  const run = await deployment.run('backup', { planId: plan.id }, { resources: { [deployment.functionArns.SnapshotFunctionArn!]: counting }, onChildExecution: (c) => children.push(c) });
  const logs = Object.values(deployment.lambdas).flatMap((l) => l.logs);
  return { run, children, creates, logs };
}

const drainAlerts = (expected: number) => inbox.drain(expected);

type Result = { databaseId: string; status: string; snapshot: { status: string; backupId?: string; error?: string; snapshot?: { id: string }; copy?: { poll?: { ref: { id: string } } }; vault?: { vault?: { poll: { ref: { id: string; kmsKeyId: string; account: string } } } } }; dump: { status: string; vault?: string } };
/** Each database's result, in the plan's order: the output of its child execution. */
const resultsOf = (children: LocalRunResult[]) => children.map((c) => c.output as Result).sort((a, b) => a.databaseId.localeCompare(b.databaseId));
const failedResultsOf = (children: LocalRunResult[]) => resultsOf(children).filter((r) => r.status === 'failed');

describe('the backup state machine with snapshot and copy steps (local engine, moto, two accounts, two regions)', () => {
  it('dumps and snapshots each database, copies both into the vault, warns on the quota, retries throttling, and leaks no credential', async () => {
    // Prepare: this snapshot fills the quota (warning), and alpha's first CreateDBSnapshot attempts are throttled:
    // more than the shipped SDK's six attempts (functions/lib/aws/clients.ts), so the state machine's Retry is needed too.
    quota.max = (used) => used + 1;
    const throttle = throttleRds('CreateDBSnapshot', 7, (r) => r.params.get('DBInstanceIdentifier') === rdsIds.alpha);
    proxy.addRule(throttle);
    const databases = [database('alpha', { instanceIdentifier: rdsIds.alpha! }, pgDatabases[0]!.name), database('bravo', { clusterIdentifier: rdsIds.bravo! }, pgDatabases[1]!.name)];

    // Act
    const { result: { run, children, creates, logs }, output } = await capturingOutput(() => runBackup({ id: 'nightly', maxConcurrency: 2, dump: true, snapshot: true }, databases));
    quota.max = () => 100;

    // Assess: the run succeeded for both databases, both ways, each in its own child execution.
    expect(run.status, JSON.stringify(run.cause)).toBe('SUCCEEDED');
    expect(run.output).toEqual({ planId: 'nightly', anyFailed: false, results: [{ databaseId: 'alpha', status: 'succeeded' }, { databaseId: 'bravo', status: 'succeeded' }] });
    const results = resultsOf(children);
    // Assess: each child's output stays small with the three quota checks in it (its payload budget is its own).
    for (const child of children) expect(JSON.stringify(child.output).length).toBeLessThan(4096);
    expect(results.map((r) => [r.databaseId, r.status, r.dump.status, r.dump.vault, r.snapshot.status])).toEqual([
      ['alpha', 'succeeded', 'succeeded', 'copied', 'succeeded'],
      ['bravo', 'succeeded', 'succeeded', 'copied', 'succeeded'],
    ]);

    // Assess: throttling was retried by the SDK and then by the state machine's Retry (a second Lambda attempt).
    expect(throttle.count()).toBe(8);
    expect(creates.filter((d) => d === 'alpha')).toHaveLength(2);
    // Assess: bravo's cluster was still being created: RDS refused the snapshot (busy), the create step retried until it was available.
    expect(creates.filter((d) => d === 'bravo').length).toBeGreaterThan(1);

    // Assess: the dumps' data and manifests are in the vault bucket.
    const vaultAdmin = await credentialsFor(VAULT, 'vault-admin');
    const listed = await createS3Client({ region: VAULT_REGION, credentials: vaultAdmin }).send(new ListObjectsV2Command({ Bucket: names.bucketName, Prefix: 'backups/' }));
    const keys = (listed.Contents ?? []).map((o) => o.Key!);
    for (const db of ['alpha', 'bravo']) {
      expect(keys.filter((k) => k.startsWith(`backups/${db}/`)).map((k) => k.split('/').pop()).sort()).toEqual(['dump.enc', 'globals.enc', 'manifest.json']);
    }

    // Assess: the snapshots are in the copy region (production) and in the vault account under the vault key.
    const alpha = results[0]!.snapshot;
    const bravo = results[1]!.snapshot;
    expect(alpha.vault!.vault!.poll.ref).toMatchObject({ account: VAULT, kmsKeyId: vaultKey });
    const vaultRds = createRdsClient({ region: VAULT_REGION, credentials: vaultAdmin });
    const [inVault] = (await vaultRds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: alpha.vault!.vault!.poll.ref.id }))).DBSnapshots!;
    expect(inVault).toMatchObject({ DBSnapshotArn: expect.stringContaining(`:${VAULT}:snapshot:`), KmsKeyId: vaultKey, Status: 'available' });
    expect(inVault!.TagList).toEqual(expect.arrayContaining([{ Key: 'lifeboat:backup-id', Value: alpha.backupId }, { Key: 'lifeboat:plan', Value: 'nightly' }, { Key: 'lifeboat:database', Value: 'alpha' }]));
    const clusterInVault = (await vaultRds.send(new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: bravo.vault!.vault!.poll.ref.id }))).DBClusterSnapshots!;
    expect(clusterInVault[0]).toMatchObject({ KmsKeyId: vaultKey, Status: 'available' });
    const [copied] = (await createRdsClient({ region: VAULT_REGION }).send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: alpha.copy!.poll!.ref.id }))).DBSnapshots!;
    expect(copied).toMatchObject({ KmsKeyId: copyKey, DBSnapshotArn: expect.stringContaining(`:${PROD}:snapshot:`) });

    // Assess: one quota warning per database and destination (the source, the copy region, the vault: each
    // quota is full after its snapshot), through the alert handler and SNS, and no failure alert.
    const alerts = await drainAlerts(6);
    expect(alerts.map((a) => a.subject).sort()).toEqual([
      ...Array<string>(3).fill('[lifeboat] Quota nearly used up: database alpha, plan nightly: ManualSnapshotQuotaNearlyUsed'),
      ...Array<string>(3).fill('[lifeboat] Quota nearly used up: database bravo, plan nightly: ManualSnapshotQuotaNearlyUsed'),
    ]);
    const alphaWarnings = alerts.filter((a) => a.subject.includes('alpha')).map((a) => a.message);
    expect(alphaWarnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/Manual DB instance snapshots in account 333333333333, eu-west-1: \d+ of \d+ used after this snapshot \(100%, warning at 90%\)/),
        expect.stringMatching(/Manual DB instance snapshots in the copy region \(account 333333333333, eu-central-1\): \d+ of \d+ used after this copy \(100%, warning at 90%\)/),
        expect.stringMatching(/Manual DB instance snapshots in the vault \(account 222222222222, eu-central-1\): \d+ of \d+ used after this copy \(100%, warning at 90%\)/),
      ]),
    );
    expect(alerts.filter((a) => a.subject.includes('bravo')).map((a) => a.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/Manual DB cluster snapshots in the vault \(account 222222222222, eu-central-1\): /)]),
    );
    expect(alerts.map((a) => (a.details.details as { location?: string }).location).sort()).toEqual(['copy', 'copy', 'source', 'source', 'vault', 'vault']);
    for (const alert of alerts) expect(alert.details).toMatchObject({ kind: 'quota-warning', details: { warn: true, source: 'DescribeAccountAttributes' } });

    // Assess: the vault role's temporary credentials are nowhere: logs, events, output, alerts.
    expect(issued.length).toBeGreaterThanOrEqual(6);
    const everything = JSON.stringify({ output, logs, events: [run.events, children.map((c) => c.events)], result: [run.output, children.map((c) => c.output)], alerts });
    for (const secret of issued) expect(everything).not.toContain(secret);
  });

  it('alerts clearly on each bad path, and the next run starts clean', async () => {
    // Prepare: scripted faults on, and the copy key's policy no longer grants the vault account.
    faults.on = true;
    const kms = createKmsClient({ region: VAULT_REGION });
    await kms.send(new PutKeyPolicyCommand({ KeyId: copyKey, PolicyName: 'default', Policy: keyPolicy(false) }));
    const names = ['ghost', 'flaky', 'stuck', 'full', 'unshared'] as const;
    const hourly = { id: 'hourly', maxConcurrency: 5, dump: false, snapshot: true };
    const dbs = names.map((n) => database(n, { instanceIdentifier: n === 'ghost' ? 'no-such-instance' : rdsIds[n]! }));

    // Act
    const { run, children, logs } = await runBackup(hourly, dbs, { maxWaitMinutes: 0.02 });

    // Assess: the run fails at the end, every database failed with its own named error and alert.
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('BackupIncomplete');
    const failed = Object.fromEntries(failedResultsOf(children).map((r) => [r.databaseId, r.snapshot.error]));
    expect(failed).toEqual({
      ghost: 'SourceDatabaseNotFoundError',
      flaky: 'SnapshotFailedError',
      stuck: 'SnapshotWaitTimeoutError',
      full: 'SnapshotQuotaExceededError',
      unshared: 'SnapshotKeyNotSharedError',
    });
    const alerts = await drainAlerts(5);
    expect(alerts).toHaveLength(5);
    const bySubject = Object.fromEntries(alerts.map((a) => [String(a.details.databaseId), a]));
    expect(Object.keys(bySubject).sort()).toEqual([...names].sort());
    for (const name of names) {
      expect(bySubject[name]!.subject).toBe(`[lifeboat] Backup failed: database ${name}, plan hourly: ${failed[name]}`);
      expect(bySubject[name]!.message).toMatch(/Next step: \S/);
      expect(bySubject[name]!.details).toMatchObject({ kind: 'backup-failed', details: { backup: 'snapshot' } });
    }
    expect(bySubject.ghost!.message).toContain('"no-such-instance" (database "ghost", eu-west-1) does not exist');
    expect(bySubject.flaky!.message).toMatch(/ended in status 'failed'\. lifeboat deleted it, so the next run starts clean/);
    expect(bySubject.stuck!.message).toMatch(/cross-region copy lifeboat-stuck-\S+ \(eu-central-1\) of database "stuck" is still 'copying' after \d+ seconds; the limit is 0.02 minutes/);
    // Assess: the abandoned copy was cancelled, not left running: RDS (the strict layer) no longer has it.
    expect(bySubject.stuck!.message).toContain('lifeboat cancelled the copy (DeleteDBSnapshot), so it no longer takes a copy slot or counts toward the manual snapshot quota.');
    const stuckCopy = /cross-region copy (lifeboat-stuck-\S+) \(eu-central-1\)/.exec(bySubject.stuck!.message)![1]!;
    expect(proxy.rds!.statusOf({ account: PROD, region: VAULT_REGION, kind: 'snapshot', id: stuckCopy })).toBeUndefined();
    const abandoned = await createRdsClient({ region: VAULT_REGION }).send(new DescribeDBSnapshotsCommand({ DBInstanceIdentifier: rdsIds.stuck, SnapshotType: 'manual' }));
    expect(abandoned.DBSnapshots!.map((s) => s.DBSnapshotIdentifier)).toEqual([]);
    expect(bySubject.full!.message).toContain('manual snapshot quota of the account and region is used up');
    expect(bySubject.unshared!.message).toContain(`cannot use the KMS key ${copyKey}`);
    // Assess: the functions' own logs name the failures, and no issued credential is in them or in the alerts.
    expect(logs.join('\n')).toContain('SnapshotKeyNotSharedError');
    for (const secret of issued) expect(JSON.stringify({ logs, alerts })).not.toContain(secret);

    // Prepare: the faults are fixed (ghost's config too: it is left out).
    faults.on = false;
    await kms.send(new PutKeyPolicyCommand({ KeyId: copyKey, PolicyName: 'default', Policy: keyPolicy(true) }));

    // Act: the next scheduled run.
    const { run: next, children: nextChildren } = await runBackup(hourly, dbs.slice(1));

    // Assess: it succeeds with fresh snapshots, and the failed run left nothing behind in production.
    expect(next.status, JSON.stringify(next.cause)).toBe('SUCCEEDED');
    expect(nextChildren).toHaveLength(4);
    expect(resultsOf(nextChildren).every((r) => r.status === 'succeeded' && r.snapshot.vault?.vault?.poll.ref.account === VAULT)).toBe(true);
    expect(await drainAlerts(0)).toEqual([]);
    const source = await createRdsClient({ region: SOURCE_REGION }).send(new DescribeDBSnapshotsCommand({ DBInstanceIdentifier: rdsIds.flaky, SnapshotType: 'manual' }));
    expect(source.DBSnapshots!.map((s) => s.Status)).toEqual(['available']);
    const copies = await createRdsClient({ region: VAULT_REGION }).send(new DescribeDBSnapshotsCommand({ DBInstanceIdentifier: rdsIds.stuck, SnapshotType: 'manual' }));
    expect(copies.DBSnapshots!.map((s) => s.Status)).toEqual(['available']);
  });
});
