import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CreateKeyCommand, PutKeyPolicyCommand } from '@aws-sdk/client-kms';
import { CreateDBClusterCommand, CreateDBInstanceCommand, DescribeDBClusterSnapshotsCommand, DescribeDBSnapshotsCommand } from '@aws-sdk/client-rds';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { STSClient } from '@aws-sdk/client-sts';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createKmsClient, createRdsClient, createS3Client, createStsClient } from '../../functions/lib/aws/clients.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { resolveSnapshotSettings, type LifeboatConfig, type LifeboatConfigInput, type SnapshotSettings } from '../../functions/lib/config/schema.ts';
import { actAsAccount, credentialsFor, failRds, snapshotStatus, throttleRds, type QuotaScript } from '../../local/moto-rds-compat.ts';
import {
  backupDatabaseSubstitutions,
  backupFunctionArns as arns,
  backupSubstitutions,
  backupTaskResources,
  createAlertInbox,
  createLocalVault,
  LOCAL_ACCOUNTS,
  LOCAL_REGIONS,
  snapshotCopyKeyPolicy,
  startMotoCompatProxy,
  type AlertInbox,
  type MotoCompatProxy,
} from '../../local/nightly-environment.ts';
import { waitUntilAvailable } from '../../local/strict-rds.ts';
import { LOCAL_TIME_SCALE, localStateMachineArn, runLocalStateMachine, type LocalRunResult } from '../../local/state-machine-runner.ts';
import { capturingOutput } from '../harness/capture.ts';
import { synthesizedDefinition } from '../harness/synthesized.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients, uniqueName } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

/**
 * The backup state machine with its snapshot and copy steps, executed on
 * aws-local-stepfunctions, as synthesized into the source stack, with the real
 * handlers against moto: production
 * account 333333333333 (eu-west-1, copy region eu-central-1), vault account
 * 222222222222 (eu-central-1). The fault proxy supplies what moto lacks and
 * the scripted faults (see local/moto-rds-compat.ts); the
 * accounts, vault and handler wiring are the demo's (nightly-environment.ts).
 */
const PROD = LOCAL_ACCOUNTS.production;
const VAULT = LOCAL_ACCOUNTS.vault;
const SOURCE_REGION = LOCAL_REGIONS.source;
const VAULT_REGION = LOCAL_REGIONS.vault;
type DatabaseInput = LifeboatConfigInput['databases'][number];
const COPIER_ROLE = `arn:aws:iam::${VAULT}:role/acme-lifeboat-vault-copier`;

/** Exactly what the source stack deploys (the synthesized templates' definitions), with local ARNs: the plan's run and the per-database child it starts. */
const CHILD_ARN = localStateMachineArn('acme-lifeboat-backup-database', SOURCE_REGION, PROD);
const definition = () => synthesizedDefinition('backup', backupSubstitutions(CHILD_ARN));
const stateMachines = () => ({ [CHILD_ARN]: { definition: synthesizedDefinition('backup-database', backupDatabaseSubstitutions) } });

/**
 * Runs one scheduled backup of the given plan (the execution input names the
 * plan only, as the schedule does), with those databases deployed; each
 * database's result is its child execution's output.
 */
async function runBackup(plan: { id: string; dump: boolean; snapshot: boolean; maxConcurrency: number }, databases: DatabaseInput[], resources: ReturnType<typeof handlers>['resources']) {
  const children: LocalRunResult[] = [];
  const run = await runLocalStateMachine(
    definition(),
    { planId: plan.id },
    { resources: resources(databases, plan), stateMachines: stateMachines(), timeScale: LOCAL_TIME_SCALE, account: PROD, onChildExecution: (c) => children.push(c) },
  );
  return { run, children };
}

let proxy: MotoCompatProxy;
let upstream: string;
const quota: QuotaScript = { max: () => 100 };
const faults = { on: false };
let inbox: AlertInbox;
let bucket: string;
let envelopeKey: string;
let vaultBucket: string;
let copyKey: string;
let vaultKey: string;
let secretArn: string;
const pgDatabases: Awaited<ReturnType<typeof createTestDatabase>>[] = [];
const rdsIds: Record<string, string> = {};
/** Every credential STS handed out to the handlers: none may appear in any output. */
const issued: string[] = [];

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

  // The vault account's side, as its stack would create it.
  const vault = await createLocalVault({ bucket: uniqueName('acme-lifeboat-vault'), retentionDays: 1, productionAccounts: [PROD] });
  vaultKey = vault.snapshotKeyArn;
  vaultBucket = vault.bucket;
});
afterAll(async () => {
  for (const db of pgDatabases) await db.drop();
  await proxy?.stop();
});

/** STS that records the credentials it hands out, so the test can look for them everywhere. */
function recordingSts(): Pick<STSClient, 'send'> {
  const sts = createStsClient({ region: SOURCE_REGION });
  return {
    send: (async (command: never) => {
      const out = (await sts.send(command)) as { Credentials?: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string } };
      if (out.Credentials) issued.push(out.Credentials.AccessKeyId!, out.Credentials.SecretAccessKey!, out.Credentials.SessionToken!);
      return out;
    }) as STSClient['send'],
  };
}

function handlers(settings: Partial<SnapshotSettings> = {}) {
  const creates: string[] = [];
  const resources = (databases: DatabaseInput[], plan: { id: string; dump: boolean; snapshot: boolean; maxConcurrency: number }) => {
  const tasks = backupTaskResources({
    config: deployedConfig(databases, plan),
    clients: testClients(),
    dumpTarget: { bucket, prefix: 'backups/', kmsKeyArn: envelopeKey },
    vaultDump: { account: VAULT, region: VAULT_REGION, bucket: vaultBucket, copierRoleArn: COPIER_ROLE },
    snapshot: {
      rds: (region, credentials) => createRdsClient({ region, credentials, maxAttempts: 3 }),
      sourceRegion: SOURCE_REGION,
      settings: { ...resolveSnapshotSettings({ copy: { region: VAULT_REGION, kmsKeyArn: copyKey } }), ...settings },
      vault: { account: VAULT, region: VAULT_REGION, copierRoleArn: COPIER_ROLE, snapshotKmsKeyId: vaultKey },
    },
    sts: recordingSts(),
    topicArn: inbox.topicArn,
    logger: new Logger({ serviceName: 'lifeboat-test' }),
    metrics: new Metrics({ namespace: 'lifeboat-test', serviceName: 'lifeboat-test' }),
  });
  const snapshotTask = tasks[arns.SnapshotFunctionArn]!;
  tasks[arns.SnapshotFunctionArn] = async (input: unknown) => {
    const i = input as { action: string; databaseId: string };
    if (i.action === 'create') creates.push(i.databaseId);
    return snapshotTask(input);
  };
  return tasks;
  };
  return { creates, resources };
}

function database(id: string, rds?: DatabaseInput['rds'], pgName?: string): DatabaseInput {
  return { id, connection: { database: pgName ?? 'unused', secretArn, sslMode: 'disable', connectTimeoutSeconds: 3 }, ...(rds ? { rds } : {}) };
}

/** The deployed config: these databases in one plan, parsed by the real schema. */
function deployedConfig(databases: DatabaseInput[], plan: { id: string; dump: boolean; snapshot: boolean; maxConcurrency: number }): LifeboatConfig {
  return parseConfig(
    {
      name: 'acme',
      source: { region: SOURCE_REGION },
      databases,
      plans: [{ id: plan.id, schedule: { cron: 'cron(0 3 * * ? *)' }, databases: databases.map((d) => d.id), rpoMinutes: 1440, rtoMinutes: 60, dump: plan.dump, snapshot: plan.snapshot, maxConcurrency: plan.maxConcurrency }],
    },
    'test config',
  );
}

const drainAlerts = (expected: number) => inbox.drain(expected);

type Result = { databaseId: string; status: string; snapshot: { status: string; backupId?: string; error?: string; snapshot?: { id: string }; copy?: { poll?: { ref: { id: string } } }; vault?: { vault?: { poll: { ref: { id: string; kmsKeyId: string; account: string } } } } }; dump: { status: string; vault?: string } };
/** Each database's result, in the plan's order: the output of its child execution. */
const resultsOf = (children: LocalRunResult[]) => children.map((c) => c.output as Result).sort((a, b) => a.databaseId.localeCompare(b.databaseId));
const failedResultsOf = (children: LocalRunResult[]) => resultsOf(children).filter((r) => r.status === 'failed');

describe('the backup state machine with snapshot and copy steps (local engine, moto, two accounts, two regions)', () => {
  it('dumps and snapshots each database, copies both into the vault, warns on the quota, retries throttling, and leaks no credential', async () => {
    // Prepare: this snapshot fills the quota (warning), and alpha's first CreateDBSnapshot attempts are throttled.
    quota.max = (used) => used + 1;
    const throttle = throttleRds('CreateDBSnapshot', 4, (r) => r.params.get('DBInstanceIdentifier') === rdsIds.alpha);
    proxy.addRule(throttle);
    const { resources, creates } = handlers();
    const databases = [database('alpha', { instanceIdentifier: rdsIds.alpha! }, pgDatabases[0]!.name), database('bravo', { clusterIdentifier: rdsIds.bravo! }, pgDatabases[1]!.name)];

    // Act
    const { result: { run, children }, output } = await capturingOutput(() => runBackup({ id: 'nightly', maxConcurrency: 2, dump: true, snapshot: true }, databases, resources));
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
    expect(throttle.count()).toBe(5);
    expect(creates.filter((d) => d === 'alpha')).toHaveLength(2);
    // Assess: bravo's cluster was still being created: RDS refused the snapshot (busy), the create step retried until it was available.
    expect(creates.filter((d) => d === 'bravo').length).toBeGreaterThan(1);

    // Assess: the dumps' data and manifests are in the vault bucket.
    const vaultAdmin = await credentialsFor(VAULT, 'vault-admin');
    const listed = await createS3Client({ region: VAULT_REGION, credentials: vaultAdmin }).send(new ListObjectsV2Command({ Bucket: vaultBucket, Prefix: 'backups/' }));
    const keys = (listed.Contents ?? []).map((o) => o.Key!);
    for (const db of ['alpha', 'bravo']) {
      expect(keys.filter((k) => k.startsWith(`backups/${db}/`)).map((k) => k.split('/').pop()).sort()).toEqual(['dump.enc', 'manifest.json']);
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
    const everything = JSON.stringify({ output, events: [run.events, children.map((c) => c.events)], result: [run.output, children.map((c) => c.output)], alerts });
    for (const secret of issued) expect(everything).not.toContain(secret);
  });

  it('alerts clearly on each bad path, and the next run starts clean', async () => {
    // Prepare: scripted faults on, and the copy key's policy no longer grants the vault account.
    faults.on = true;
    const kms = createKmsClient({ region: VAULT_REGION });
    await kms.send(new PutKeyPolicyCommand({ KeyId: copyKey, PolicyName: 'default', Policy: keyPolicy(false) }));
    const names = ['ghost', 'flaky', 'stuck', 'full', 'unshared'] as const;
    const hourly = { id: 'hourly', maxConcurrency: 5, dump: false, snapshot: true };
    const failing = handlers({ maxWaitMinutes: 0.02 });
    const dbs = names.map((n) => database(n, { instanceIdentifier: n === 'ghost' ? 'no-such-instance' : rdsIds[n]! }));

    // Act
    const { run, children } = await runBackup(hourly, dbs, failing.resources);

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

    // Prepare: the faults are fixed (ghost's config too: it is left out).
    faults.on = false;
    await kms.send(new PutKeyPolicyCommand({ KeyId: copyKey, PolicyName: 'default', Policy: keyPolicy(true) }));

    // Act: the next scheduled run.
    const { run: next, children: nextChildren } = await runBackup(hourly, dbs.slice(1), handlers().resources);

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
