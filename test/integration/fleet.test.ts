import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DRILL_ACTIONS } from '../../functions/lib/drill/steps.ts';
import { measureDrill } from '../../functions/lib/drill/measure.ts';
import { MANIFEST_CHECKS } from '../../functions/lib/drill/verify.ts';
import {
  drillStateSchema,
  instanceRefSchema,
  restoreOutcomeSchema,
  selectionSchema,
  teardownSchema,
  verificationSchema,
  type DrillState,
} from '../../functions/lib/drill/types.ts';
import type { DumpTaskOutput } from '../../functions/dump/handler.ts';
import type { VaultDumpCopyResult } from '../../functions/lib/vault/dump-copy.ts';
import type { QuotaCheck } from '../../functions/lib/snapshots/quota.ts';
import type { RetentionTaskOutput } from '../../functions/lib/retention/run.ts';
import { retentionRunInput } from '../../events/schedules.ts';
import { pollWaitSeconds, type CopyResult, type CreateResult, type ShareResult, type SnapshotPoll, type SnapshotRef, type VaultCopyResult } from '../../functions/lib/snapshots/workflow.ts';
import { AWS_STEP_FUNCTIONS_LIMITS, type LocalRunResult, type TaskHandler } from '../../local/state-machine-runner.ts';
import { createTestBucket, localAwsEnvironment, uniqueName } from '../harness/aws.ts';
import { deployForTest, type TestDeployment } from '../harness/deployed.ts';

/**
 * Fleet size on the strict engine (issue: execution history and payload limits).
 *
 * What is real here: the synthesized backup, backup-database, drill and
 * drill-database definitions, run on the local engine with AWS's limits (256 KiB
 * payloads, 25,000 history events per execution, each child execution with its
 * own history), and the plan function's shipped bundle, which resolves the
 * plan and builds every drill request from the deployed config object in S3.
 *
 * What stands in: the per-database steps (dump, vault copy, snapshot, drill,
 * restore). They answer with results of the real types (zod-validated where the
 * handlers validate them), sized as a real database's would be, and they take
 * realistic time: each snapshot and copy becomes available only after its
 * simulated duration has passed in the Waits the definition asked for (the
 * real `pollWaitSeconds` decides every wait), and some databases are throttled
 * once. Those handlers are proven from their bundles, against PostgreSQL and
 * moto, by the other integration tests; this test is about the definitions at
 * fleet size.
 */

const BACKUP_FLEET = 1000;
const DRILL_FLEET = 200;
const VAULT = { account: '222222222222', region: 'eu-central-1' };
const SOURCE = { account: '123456789012', region: 'eu-west-1' };
/** Waits and retries: an hour of RDS time passes in 72 ms. */
const TIME_SCALE = 0.00002;
/** Simulated minutes each RDS resource takes (a mid-sized database). */
const MINUTES = { snapshot: 20, copy: 45, vaultCopy: 45, drillInstance: 12, credentials: 2 } as const;

const ids = (n: number) => Array.from({ length: n }, (_, i) => `db-${String(i).padStart(4, '0')}`);

function fleetConfig() {
  const databases = ids(BACKUP_FLEET);
  return {
    name: uniqueName('fleet'),
    source: {
      ...SOURCE,
      network: { vpcId: 'vpc-0a1b2c3d4e5f60718', subnetIds: ['subnet-0aaa1111bbbb2222c', 'subnet-0ddd3333eeee4444f'], securityGroupIds: ['sg-0123456789abcdef0'], egress: 'user-managed' },
    },
    databases: databases.map((id, i) => ({
      id,
      connection: {
        host: `${id}.abcdefghijkl.eu-west-1.rds.amazonaws.com`,
        database: `app_${i}`,
        secretArn: `arn:aws:secretsmanager:eu-west-1:${SOURCE.account}:secret:lifeboat/${id}-AbCdEf`,
      },
      rds: { instanceIdentifier: `${id}-production-postgres` },
    })),
    plans: [
      {
        id: 'nightly',
        schedule: { cron: 'cron(0 3 * * ? *)', timezone: 'Europe/Berlin' },
        databases,
        rpoMinutes: 1500,
        rtoMinutes: 240,
        dump: true,
        snapshot: true,
        maxConcurrency: 19,
        retention: { source: { keepLast: 7 }, copyRegion: { keepLast: 3 } },
      },
    ],
    storage: { prefix: 'backups/' },
    snapshots: { copy: { region: VAULT.region, kmsKeyArn: `arn:aws:kms:${VAULT.region}:${SOURCE.account}:key/11111111-2222-3333-4444-555555555555` } },
    vault: { ...VAULT, retentionDays: 35, recoveryKmsKeyArn: `arn:aws:kms:${VAULT.region}:${VAULT.account}:key/99999999-8888-7777-6666-555555555555` },
    drills: {
      subnetIds: ['subnet-0eee5555ffff6666a', 'subnet-0fff7777aaaa8888b'],
      securityGroupIds: ['sg-0fedcba9876543210'],
      maxConcurrency: 19,
      databases: databases.slice(0, DRILL_FLEET).map((id) => ({ id, assertions: [{ name: 'orders are not empty', sql: 'SELECT count(*) > 0 FROM billing.orders' }] })),
    },
    alerts: { subscribers: [{ protocol: 'email', endpoint: 'oncall@example.com' }] },
  };
}

/** A simulated RDS resource: available once the Waits before its checks add up to its duration. */
class SimulatedResources {
  readonly #waited = new Map<string, { seconds: number; lastWait: number; duration: number }>();
  polls = 0;

  start(id: string, minutes: number, firstWait: number): void {
    this.#waited.set(id, { seconds: 0, lastWait: firstWait, duration: minutes * 60 });
  }

  /** One check: the Wait before it has passed. Returns the seconds waited so far and whether it is done. */
  check(id: string): { waited: number; done: boolean } {
    const r = this.#waited.get(id);
    if (!r) throw new Error(`no simulated resource ${id}`);
    this.polls++;
    r.seconds += r.lastWait;
    return { waited: r.seconds, done: r.seconds >= r.duration };
  }

  nextWait(id: string, wait: number): void {
    this.#waited.get(id)!.lastWait = wait;
  }
}

const T0 = Date.parse('2026-12-07T02:00:00Z');
const iso = (secondsAfterT0: number) => new Date(T0 + secondsAfterT0 * 1000).toISOString();
const quota = (location: 'source' | 'copy' | 'vault', region: string, account: string): QuotaCheck => ({
  quotaName: 'ManualSnapshots',
  used: 41,
  max: 100,
  percentAfter: 42,
  source: 'DescribeAccountAttributes',
  warn: false,
  region,
  account,
  location,
});

/** The backup steps of one database, in the shapes the snapshot, dump and vault-copy functions return. */
function backupStandIns(resources: SimulatedResources, throttledOnce: Set<string>, alerts: unknown[]): Record<string, TaskHandler> {
  const poll = (ref: SnapshotRef, waited: number, done: boolean): SnapshotPoll => {
    if (done) return { ready: true, waitSeconds: 0, ref: { ...ref, status: 'available' } };
    const wait = pollWaitSeconds(ref, new Date(Date.parse(ref.startedAt) + waited * 1000));
    resources.nextWait(`${ref.location}:${ref.id}`, wait);
    return { ready: false, waitSeconds: wait, ref: { ...ref, status: ref.location === 'source' ? 'creating' : 'copying' } };
  };
  const ref = (location: SnapshotRef['location'], databaseId: string, backupId: string, region: string, account: string): SnapshotRef => {
    const id = `lifeboat-${databaseId}-${backupId.toLowerCase()}`;
    return {
      location,
      kind: 'instance',
      account,
      region,
      id,
      arn: `arn:aws:rds:${region}:${account}:snapshot:${id}`,
      status: 'creating',
      encrypted: true,
      kmsKeyId: `arn:aws:kms:${region}:${account}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0`,
      startedAt: iso(0),
      deadline: iso(240 * 60),
    };
  };
  const started = (r: SnapshotRef, minutes: number): SnapshotPoll => {
    const wait = pollWaitSeconds(r, new Date(Date.parse(r.startedAt)));
    resources.start(`${r.location}:${r.id}`, minutes, wait);
    return { ready: false, waitSeconds: wait, ref: r };
  };
  const snapshot: TaskHandler = async (raw) => {
    const input = raw as { action: string; databaseId: string; backupId?: string; ref?: SnapshotRef; source?: SnapshotRef; shared?: SnapshotRef };
    const backupId = input.backupId ?? '20261207T020000Z-a1b2c3';
    switch (input.action) {
      case 'create':
        return { backupId, quota: quota('source', SOURCE.region, SOURCE.account), poll: started(ref('source', input.databaseId, backupId, SOURCE.region, SOURCE.account), MINUTES.snapshot) } satisfies CreateResult;
      case 'status': {
        const r = input.ref!;
        if (throttledOnce.delete(`${input.databaseId}:${r.location}`)) throw Object.assign(new Error('Rate exceeded (DescribeDBSnapshots)'), { name: 'ThrottledError' });
        const { waited, done } = resources.check(`${r.location}:${r.id}`);
        return poll(r, waited, done);
      }
      case 'copy':
        return { started: true, quota: quota('copy', VAULT.region, SOURCE.account), poll: started(ref('copy', input.databaseId, backupId, VAULT.region, SOURCE.account), MINUTES.copy) } satisfies CopyResult;
      case 'share':
        return { shared: true, ref: { ...input.source!, location: 'copy', region: VAULT.region, arn: input.source!.arn.replace(SOURCE.region, VAULT.region), status: 'available' } } satisfies ShareResult;
      case 'vault-copy':
        return { quota: quota('vault', VAULT.region, VAULT.account), poll: started(ref('vault', input.databaseId, backupId, VAULT.region, VAULT.account), MINUTES.vaultCopy) } satisfies VaultCopyResult;
      default:
        throw new Error(`unexpected snapshot action ${input.action}`);
    }
  };
  const dump: TaskHandler = async (raw) => {
    const { databaseId } = raw as { databaseId: string };
    const backupId = '20261207T020000Z-a1b2c3';
    const prefix = `backups/${databaseId}/${backupId}`;
    return {
      databaseId,
      backupId,
      bucket: 'acme-lifeboat-source-backupbucket-0123456789ab',
      dataKey: `${prefix}/dump.enc`,
      manifestKey: `${prefix}/manifest.json`,
      rawBytes: 48_318_382_080,
      storedBytes: 9_663_676_416,
      sha256: 'a'.repeat(64),
      consistentAt: iso(3),
    } satisfies DumpTaskOutput;
  };
  const vaultCopy: TaskHandler = async (raw) => {
    const { manifestKey } = raw as { manifestKey: string };
    return {
      status: 'copied',
      vaultBucket: `acme-lifeboat-vault-${VAULT.account}-${VAULT.region}`,
      dataKey: manifestKey.replace('manifest.json', 'dump.enc'),
      manifestKey,
      dataVersionId: 'v'.repeat(32),
      manifestVersionId: 'w'.repeat(32),
      sha256: 'a'.repeat(64),
      storedBytes: 9_663_676_416,
    } satisfies VaultDumpCopyResult;
  };
  const alert: TaskHandler = async (input) => {
    alerts.push(input);
    return { published: true };
  };
  return { SnapshotFunctionArn: snapshot, DumpFunctionArn: dump, VaultCopyFunctionArn: vaultCopy, AlertFunctionArn: alert };
}

/** The drill steps of one database, in the shapes (and through the schemas) of the drill functions. */
function drillStandIns(resources: SimulatedResources, alerts: unknown[]): Record<string, TaskHandler> {
  const parse = (raw: unknown): { action: (typeof DRILL_ACTIONS)[number]; drill: DrillState } => {
    const { action, drill } = raw as { action: (typeof DRILL_ACTIONS)[number]; drill: unknown };
    if (!DRILL_ACTIONS.includes(action)) throw new Error(`unexpected drill action ${action}`);
    return { action, drill: drillStateSchema.parse(drill) };
  };
  const check = (name: string, detail: string) => ({ name, status: 'passed' as const, detail, differences: [] });
  const drill: TaskHandler = async (raw) => {
    const { action, drill: state } = parse(raw);
    const { databaseId } = state.request;
    const drillId = `20261207T040000Z-${databaseId}`;
    switch (action) {
      case 'select':
        return selectionSchema.parse({
          drillId,
          startedAt: iso(7200),
          expiresAt: iso(7200 + 360 * 60),
          choice: 'latest',
          candidates: 7,
          newestConsistentAt: iso(3),
          backup: {
            kind: 'dump',
            backupId: '20261207T020000Z-a1b2c3',
            from: 'source',
            bucket: 'acme-lifeboat-source-backupbucket-0123456789ab',
            prefix: `backups/${databaseId}/20261207T020000Z-a1b2c3/`,
            manifestKey: `backups/${databaseId}/20261207T020000Z-a1b2c3/manifest.json`,
            consistentAt: iso(3),
            databaseName: `app_${Number(databaseId.slice(3))}`,
            serverMajor: 16,
            sizeBytes: 48_318_382_080,
          },
        });
      case 'provision':
        resources.start(`drill:${drillId}`, MINUTES.drillInstance, state.request.pollIntervalSeconds);
        return instanceRefSchema.parse({
          provider: 'rds',
          drillId,
          identifier: `lifeboat-drill-${drillId.toLowerCase()}`,
          createdSubnetGroup: `lifeboat-drill-${drillId.toLowerCase()}`,
          from: 'source',
          emulated: false,
          createdAt: iso(7210),
        });
      case 'poll': {
        const id = state.credentials ? `credentials:${drillId}` : `drill:${drillId}`;
        const { done } = resources.check(id);
        return done
          ? { ready: true, status: 'available' }
          : { ready: false, status: `${state.credentials ? 'resetting-master-credentials' : 'creating'} (endpoint lifeboat-drill-${drillId.toLowerCase()}.abcdefghijkl.eu-west-1.rds.amazonaws.com)` };
      }
      case 'credentials':
        resources.start(`credentials:${drillId}`, MINUTES.credentials, state.request.pollIntervalSeconds);
        return { secretArn: `arn:aws:secretsmanager:eu-west-1:${SOURCE.account}:secret:lifeboat-drill/${drillId}-Ab12Cd`, setAt: iso(7900) };
      case 'measure':
        // The real measurement, from the state the definition built.
        return measureDrill(state, `s3://acme-lifeboat-source-backupbucket-0123456789ab/backups/_drills/${databaseId}/${drillId}.json`);
      case 'teardown':
        return teardownSchema.parse({
          completedAt: iso(9000),
          items: [
            { type: 'secret', id: `lifeboat-drill/${drillId}`, outcome: 'deleted' },
            { type: 'db-instance', id: `lifeboat-drill-${drillId.toLowerCase()}`, outcome: 'deleted' },
            { type: 'db-subnet-group', id: `lifeboat-drill-${drillId.toLowerCase()}`, outcome: 'deleted' },
          ],
        });
      case 'report':
        return {
          written: true,
          locations: [`s3://acme-lifeboat-source-backupbucket-0123456789ab/backups/_drills/${databaseId}/${drillId}.json`],
          verdict: state.measurement?.verdict ?? 'failed',
          alertDetails: { drillId, backupId: state.selection?.backup.backupId, report: `backups/_drills/${databaseId}/${drillId}.json`, failedChecks: [], rtoSeconds: state.measurement?.rto.seconds ?? null, rpoSeconds: state.measurement?.rpo.seconds ?? null, teardown: 'complete' },
        };
      default:
        throw new Error(`the drill function does not run ${action}`);
    }
  };
  const restore: TaskHandler = async (raw) => {
    const { action, drill: state } = parse(raw);
    const table = (n: number) => `billing.orders_${String(n).padStart(3, '0')}`;
    if (action === 'restore') {
      return restoreOutcomeSchema.parse({
        kind: 'dump',
        database: state.selection!.backup.kind === 'dump' ? state.selection!.backup.databaseName : 'postgres',
        client: { pgRestore: { version: '16.6', major: 16 }, pgDump: { version: '16.6', major: 16 }, targetServerVersion: '16.6' },
        checks: [
          check('sha256', `sha256 ${'a'.repeat(64)} matches the manifest (9663676416 bytes)`),
          check('decryption', 'authenticated decryption with the KMS data key of the backup'),
          check('pg_restore', 'pg_restore 16.6 --exit-on-error into PostgreSQL 16.6: exit 0'),
          ...MANIFEST_CHECKS.map((name) => check(name, `${name}: 240 of 240 match the manifest (${Array.from({ length: 5 }, (_, i) => table(i)).join(', ')}, ...)`)),
        ],
        firstVerificationQueryAt: iso(8400),
        timings: { downloadMs: 120_000, restoreMs: 360_000, verifyMs: 30_000 },
      });
    }
    if (action === 'verify') {
      return verificationSchema.parse({
        emulated: false,
        checks: [
          ...state.restore!.checks,
          check('amcheck', 'bt_index_check on 612 btree indexes: no corruption'),
          ...state.request.assertions.map((a) => check(`assertion: ${a.name}`, 'returned true')),
          check('backup age', 'the newest backup is 2 hours old (RPO 1500 minutes)'),
        ],
        firstVerificationQueryAt: iso(8400),
      });
    }
    throw new Error(`the drill restore function does not run ${action}`);
  };
  const alert: TaskHandler = async (input) => {
    alerts.push(input);
    return { published: true };
  };
  return { DrillFunctionArn: drill, DrillRestoreFunctionArn: restore, AlertFunctionArn: alert };
}

/** The figures the issue asks for: peak history and payload per execution, parent and children. */
function figures(run: LocalRunResult, children: LocalRunResult[]) {
  const peak = (rs: LocalRunResult[], f: (r: LocalRunResult) => number) => Math.max(...rs.map(f));
  return {
    parent: { historyEvents: run.stats.historyEvents, peakPayloadBytes: run.stats.peakPayloadBytes, peakPayloadAt: run.stats.peakPayloadAt, childExecutions: run.stats.childExecutions },
    children: {
      count: children.length,
      peakHistoryEvents: peak(children, (c) => c.stats.historyEvents),
      peakPayloadBytes: peak(children, (c) => c.stats.peakPayloadBytes),
      totalHistoryEvents: children.reduce((sum, c) => sum + c.stats.historyEvents, 0),
    },
  };
}

let deployment: TestDeployment | undefined;
beforeAll(async () => {
  const bucket = await createTestBucket();
  deployment = await deployForTest({
    config: fleetConfig(),
    values: { BACKUP_BUCKET: bucket, BACKUP_KMS_KEY_ARN: `arn:aws:kms:eu-west-1:${SOURCE.account}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0`, ALERT_TOPIC_ARN: `arn:aws:sns:eu-west-1:${SOURCE.account}:fleet-alerts`, DRILL_SECURITY_GROUP_IDS: 'sg-0aaaaaaaaaaaaaaaa' },
    awsEnvironment: localAwsEnvironment(),
    onLog: () => undefined,
  });
}, 240_000);
afterAll(async () => {
  await deployment?.stop();
});

/** Stand-ins by placeholder → by the ARNs the deployed definitions name. */
const byArn = (standIns: Record<string, TaskHandler>) => Object.fromEntries(Object.entries(standIns).map(([placeholder, handler]) => [deployment!.functionArns[placeholder]!, handler]));

/** The retention step of one (database, location), in the shape the retention function returns. */
function retentionStandIn(calls: string[], alerts: unknown[]): Record<string, TaskHandler> {
  const retention: TaskHandler = async (raw) => {
    const { planId, databaseId, location } = raw as { planId: string; databaseId: string; location: RetentionTaskOutput['location'] };
    calls.push(`${databaseId}@${location}`);
    // The worst night: the copy region cannot be listed at all (an outage, a broken role), for every database.
    if (location === 'copy-region') throw Object.assign(new Error('RDS in eu-central-1 did not answer DescribeDBSnapshots.'), { name: 'RetentionListingError' });
    const deletedIds = ['20261130T020000Z-0a1b2c'];
    return {
      runId: `20261207T053000Z-${databaseId}`,
      planId,
      databaseId,
      location,
      dryRun: false,
      status: 'succeeded',
      kept: 7,
      deleted: deletedIds.length,
      deletedIds,
      deletedIdsOmitted: 0,
      failedCount: 0,
      failed: [],
      skippedLocked: 0,
      dumps: { kept: 7, deleted: 1, failed: 0, skippedLocked: 0, incomplete: { found: 0, deleted: 0 }, unreadable: 0, suspicious: 0, auditKey: `backups/_audit/retention/2026/12/07/20261207T053000Z-${databaseId}-${location}-dumps.jsonl` },
      snapshots: { kept: 7, deleted: 0, failed: 0, untouchable: 0, auditKey: `backups/_audit/retention/2026/12/07/20261207T053000Z-${databaseId}-${location}-snapshots.jsonl` },
      auditBucket: 'acme-lifeboat-source-backupbucket-0123456789ab',
      auditKeys: [`backups/_audit/retention/2026/12/07/20261207T053000Z-${databaseId}-${location}-dumps.jsonl`, `backups/_audit/retention/2026/12/07/20261207T053000Z-${databaseId}-${location}-snapshots.jsonl`],
    } satisfies RetentionTaskOutput;
  };
  return { RetentionFunctionArn: retention, AlertFunctionArn: async (input) => (alerts.push(input), { published: true }) };
}

describe('the deployed workflows at fleet size, on the strict engine', () => {
  it(`backs up ${BACKUP_FLEET} databases (dump, snapshot, copy, vault copy) in one run, each in its own child execution, within every Step Functions limit`, async () => {
    // Prepare: realistic waits for every snapshot and copy, and every 50th database throttled once.
    const resources = new SimulatedResources();
    const throttled = new Set(ids(BACKUP_FLEET).filter((_, i) => i % 50 === 0).map((id) => `${id}:source`));
    const alerts: unknown[] = [];
    const children: LocalRunResult[] = [];

    // Act: what the plan's schedule sends.
    const run = await deployment!.run('backup', { planId: 'nightly' }, { timeScale: TIME_SCALE, recordEvents: false, resources: byArn(backupStandIns(resources, throttled, alerts)), onChildExecution: (c) => children.push(c) });

    // Assess: every database backed up, none alerted, every throttled check retried.
    expect(run.status, JSON.stringify({ error: run.error, cause: run.cause })).toBe('SUCCEEDED');
    const output = run.output as { planId: string; anyFailed: boolean; results: Array<{ databaseId: string; status: string }> };
    expect(output.anyFailed).toBe(false);
    expect(output.results).toHaveLength(BACKUP_FLEET);
    expect(output.results.every((r) => r.status === 'succeeded')).toBe(true);
    expect(children).toHaveLength(BACKUP_FLEET);
    expect(alerts).toEqual([]);
    expect(throttled.size).toBe(0);
    const outcome = children[0]!.output as { snapshot: { status: string; vault: { shared: boolean } }; dump: { status: string; vault: string } };
    expect(outcome).toMatchObject({ dump: { status: 'succeeded', vault: 'copied' }, snapshot: { status: 'succeeded', vault: { shared: true } } });

    // Assess: realistic poll counts (the definition's waits, not one check each), and the limits.
    const f = figures(run, children);
    console.log(`[fleet] backup of ${BACKUP_FLEET} databases: ${JSON.stringify({ ...f, snapshotStatusChecks: resources.polls })}`);
    expect(resources.polls / BACKUP_FLEET).toBeGreaterThan(30);
    expect(f.parent.childExecutions).toBe(BACKUP_FLEET);
    expect(f.parent.historyEvents).toBeLessThan(AWS_STEP_FUNCTIONS_LIMITS.historyEvents);
    expect(f.parent.peakPayloadBytes).toBeLessThan(AWS_STEP_FUNCTIONS_LIMITS.payloadBytes / 2);
    expect(f.children.peakHistoryEvents).toBeLessThan(AWS_STEP_FUNCTIONS_LIMITS.historyEvents / 10);
    expect(f.children.peakPayloadBytes).toBeLessThan(AWS_STEP_FUNCTIONS_LIMITS.payloadBytes / 10);
    // One execution for the whole plan (an inline Map, as before) would have needed all of it in one history.
    expect(f.children.totalHistoryEvents).toBeGreaterThan(AWS_STEP_FUNCTIONS_LIMITS.historyEvents * 10);
  }, 300_000);

  it(`drills ${DRILL_FLEET} databases in one run, each in its own child execution, within every Step Functions limit`, async () => {
    // Prepare
    const resources = new SimulatedResources();
    const alerts: unknown[] = [];
    const children: LocalRunResult[] = [];

    // Act: what the drill schedule sends.
    const run = await deployment!.run('drill', {}, { timeScale: TIME_SCALE, recordEvents: false, resources: byArn(drillStandIns(resources, alerts)), onChildExecution: (c) => children.push(c) });

    // Assess: every database drilled and proven, the throwaways torn down, no alert.
    expect(run.status, JSON.stringify({ error: run.error, cause: run.cause })).toBe('SUCCEEDED');
    expect(children).toHaveLength(DRILL_FLEET);
    const outputs = children.map((c) => c.output as { databaseId: string; status: string; rtoSeconds: number | null });
    expect(outputs.map((o) => o.databaseId).sort()).toEqual(ids(DRILL_FLEET));
    expect(outputs.every((o) => o.status === 'passed')).toBe(true);
    expect(alerts).toEqual([]);

    // Assess: the limits, with every poll of the throwaway's creation and credential reset.
    const f = figures(run, children);
    console.log(`[fleet] drill of ${DRILL_FLEET} databases: ${JSON.stringify({ ...f, instanceChecks: resources.polls })}`);
    expect(resources.polls / DRILL_FLEET).toBeGreaterThan(20);
    expect(f.parent.historyEvents).toBeLessThan(AWS_STEP_FUNCTIONS_LIMITS.historyEvents);
    expect(f.parent.peakPayloadBytes).toBeLessThan(AWS_STEP_FUNCTIONS_LIMITS.payloadBytes / 2);
    expect(f.children.peakHistoryEvents).toBeLessThan(AWS_STEP_FUNCTIONS_LIMITS.historyEvents / 10);
    expect(f.children.peakPayloadBytes).toBeLessThan(AWS_STEP_FUNCTIONS_LIMITS.payloadBytes / 4);
    expect(f.children.totalHistoryEvents).toBeGreaterThan(AWS_STEP_FUNCTIONS_LIMITS.historyEvents);
  }, 300_000);

  it(`prunes ${BACKUP_FLEET} databases at the source and in the copy region in one run, each target in its own child execution, within every limit even when a whole location fails`, async () => {
    // Prepare: what the plan's retention schedule sends; every copy-region target fails after its retries.
    const input = retentionRunInput(deployment!.stack.config, 'nightly');
    const calls: string[] = [];
    const alerts: unknown[] = [];
    const children: LocalRunResult[] = [];

    // Act
    const run = await deployment!.run('retention', input, { timeScale: TIME_SCALE, recordEvents: false, resources: byArn(retentionStandIn(calls, alerts)), onChildExecution: (c) => children.push(c) });

    // Assess: the run ends incomplete, the source was pruned everywhere, each failed target retried and alerted once.
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('RetentionIncomplete');
    expect(children).toHaveLength(2 * BACKUP_FLEET);
    expect(calls.filter((c) => c.endsWith('@source'))).toHaveLength(BACKUP_FLEET);
    // The first try and its three retries (RetentionListingError is retried).
    expect(calls.filter((c) => c.endsWith('@copy-region'))).toHaveLength(4 * BACKUP_FLEET);
    expect(alerts).toHaveLength(BACKUP_FLEET);

    // Assess: the limits, with the failure path's retries and alerts in the children's histories.
    const f = figures(run, children);
    console.log(`[fleet] retention of ${BACKUP_FLEET} databases at 2 locations, the copy region failing: ${JSON.stringify(f)}`);
    expect(f.parent.historyEvents).toBeLessThan(AWS_STEP_FUNCTIONS_LIMITS.historyEvents);
    expect(f.parent.peakPayloadBytes).toBeLessThan(AWS_STEP_FUNCTIONS_LIMITS.payloadBytes);
    expect(f.children.peakHistoryEvents).toBeLessThan(100);
    // The same run as one execution would have passed the quota (what the inline Map did before).
    expect(f.children.totalHistoryEvents).toBeGreaterThan(AWS_STEP_FUNCTIONS_LIMITS.historyEvents);
  }, 300_000);
});
