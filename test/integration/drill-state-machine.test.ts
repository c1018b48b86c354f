import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, rmSync } from 'node:fs';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { LOCAL_FARGATE_PLACEHOLDERS, localDrillDeps, runLocalDrill, type LocalDrillResult } from '../../cli/local-drill.ts';
import type { DrillDeps } from '../../functions/lib/drill/steps.ts';
import { localFunctionArn, localStateMachineArn } from '../../local/state-machine-runner.ts';
import { loadDefinition } from '../../state-machines/definitions.ts';
import { synthesizedDefinition } from '../harness/synthesized.ts';
import { listDrillReports } from '../../functions/lib/drill/report.ts';
import type { DrillReport } from '../../functions/lib/drill/report.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import { alertInbox, backUp, capturingOutput, teardownProven, tempRegistry, type ReceivedAlert } from './drill-harness.ts';

const clients = testClients();
const SENTINEL = 'S3NTINEL-drill-pw';
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let bucket: string;
let vaultBucket: string;
let registryDir: string;
let drill: LocalDrillResult;
let output: string[];
let alerts: ReceivedAlert[];
const passwords: string[] = [];
let deps: DrillDeps;

function report(databaseId: string): DrillReport {
  const found = drill.reports.find((r) => r.databaseId === databaseId);
  if (!found) throw new Error(`no report for ${databaseId}: ${JSON.stringify(drill.items)} ${String(drill.run.cause)}`);
  return found;
}

beforeAll(async () => {
  db = await createTestDatabase('lbdrill');
  await withClient(db.name, (c) =>
    c.query(`CREATE TABLE orders (id serial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), amount int NOT NULL);
             CREATE INDEX orders_created ON orders (created_at);
             INSERT INTO orders (amount) SELECT g FROM generate_series(1, 500) g;`),
  );
  const [keyArn, b, v] = await Promise.all([createTestKey(), createTestBucket(), createTestBucket()]);
  [bucket, vaultBucket] = [b, v];
  const s = pgServer();
  const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  // The same database backed up as two ids: alpha meets its targets, bravo's RTO target is impossible.
  await backUp('alpha', db.name, { bucket, kmsKeyArn: keyArn, secretArn });
  await backUp('bravo', db.name, { bucket, kmsKeyArn: keyArn, secretArn });
  registryDir = tempRegistry();
  const inbox = await alertInbox();
  deps = {
    ...localDrillDeps({
      clients,
      storage: { bucket, prefix: 'backups/' },
      vault: { bucket: vaultBucket, prefix: 'backups/' },
      registryDir,
      metrics: new Metrics({ namespace: 'lifeboat-test', serviceName: 'lifeboat-test' }),
    }),
    generatePassword: () => {
      passwords.push(`${SENTINEL}-${passwords.length}-${Math.random().toString(36).slice(2)}`);
      return passwords.at(-1)!;
    },
  };
  const common = {
    planId: 'nightly',
    pollIntervalSeconds: 30,
    amcheck: 'heapallindexed' as const,
    assertions: [{ name: 'all orders restored', sql: 'SELECT count(*) = 500 FROM orders' }],
    freshness: { table: 'public.orders', column: 'created_at' },
  };
  ({ result: drill, output } = await capturingOutput(() =>
    runLocalDrill({
      requests: [
        { ...common, databaseId: 'alpha', targets: { rpoMinutes: 60, rtoMinutes: 10 } },
        { ...common, databaseId: 'bravo', targets: { rpoMinutes: 60, rtoMinutes: 0.0001 } },
      ],
      deps,
      alert: { sns: inbox.sns, topicArn: inbox.topicArn },
      logger: new Logger({ serviceName: 'lifeboat-test' }),
    }),
  ));
  alerts = await inbox.receiveAll();
}, 120_000);

afterAll(async () => {
  await db?.drop();
  if (registryDir) rmSync(registryDir, { recursive: true, force: true });
});

describe('drill state machine, executed locally with the real handlers and a local throwaway cluster', () => {
  it('restores the latest backup, proves it check by check and measures RTO and RPO', () => {
    expect(drill.run.status, String(drill.run.cause)).toBe('SUCCEEDED');
    const alpha = report('alpha');
    expect(alpha.verdict).toBe('passed');
    expect(Object.fromEntries(alpha.checks.map((c) => [c.name, c.status]))).toEqual({
      sha256: 'passed',
      decryption: 'passed',
      pg_restore: 'passed',
      tables: 'passed',
      'row counts': 'passed',
      sequences: 'passed',
      'schema fingerprint': 'passed',
      'large objects': 'passed',
      extensions: 'passed',
      'owners and privileges': 'passed',
      'assertion: all orders restored': 'passed',
      'freshness: newest row': 'passed',
      amcheck: 'passed',
      'freshness: backup age': 'passed',
    });
    expect(alpha.checks.find((c) => c.name === 'amcheck')?.detail).toMatch(/2 btree indexes checked with bt_index_check \(heapallindexed\)/);
    expect(alpha.checks.find((c) => c.name === 'row counts')?.detail).toBe('500 rows in 1 tables');
    expect(alpha.backup).toMatchObject({ kind: 'dump', from: 'source', choice: 'latest' });
    // RTO: drill start → first verification query; RPO: drill start − the backup's consistent point.
    expect(alpha.rto?.seconds).toBeGreaterThan(0);
    expect(alpha.rto).toMatchObject({ targetSeconds: 600, met: true });
    const expectedRpo = (Date.parse(alpha.startedAt) - Date.parse(alpha.backup!.consistentAt)) / 1000;
    expect(alpha.rpo).toMatchObject({ seconds: expectedRpo, targetSeconds: 3600, met: true, basis: 'drilled-backup' });
    expect(alpha.objectivesMet).toBe(true);
  });

  it('publishes RTO and RPO as metrics per database', () => {
    const emf = output.filter((l) => l.includes('"_aws"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const rto = emf.filter((m) => 'DrillRtoSeconds' in m);
    expect(rto.map((m) => m.database).sort()).toEqual(['alpha', 'bravo']);
    expect(emf.find((m) => 'DrillRpoSeconds' in m && m.database === 'alpha')?.DrillRpoSeconds).toBe(report('alpha').rpo?.seconds);
    expect(JSON.stringify(rto[0])).toMatch(/"Dimensions":\[\["service","database"\]\]|"Dimensions":\[\["database"/);
  });

  it('alerts objective-missed for the drill that missed its RTO target, and only for it', () => {
    expect(drill.items.find((i) => i.databaseId === 'bravo')).toMatchObject({ status: 'passed', objectivesMet: false });
    expect(alerts).toHaveLength(1);
    const [missed] = alerts;
    expect(missed!.subject).toBe('[lifeboat] RTO/RPO target missed: database bravo, plan nightly: ObjectiveMissed');
    expect(missed!.message).toMatch(/measured RTO \d+\.\ds exceeds the target 0\.0s/);
    expect(missed!.message).toContain(drill.run.executionArn);
    expect(missed!.details).toMatchObject({ kind: 'objective-missed', databaseId: 'bravo', details: { drillId: report('bravo').drillId, failedChecks: [] } });
  });

  it('writes the report to the source bucket and the vault, readable with listDrillReports', async () => {
    const alpha = await listDrillReports(clients.s3, bucket, 'backups/', { databaseId: 'alpha' });
    expect(alpha.map((r) => r.key)).toEqual([`backups/_drills/alpha/${report('alpha').drillId}.json`]);
    expect(alpha[0]!.report).toEqual(report('alpha'));
    const all = await listDrillReports(clients.s3, vaultBucket, 'backups/');
    expect(all.map((r) => r.report.databaseId).sort()).toEqual(['alpha', 'bravo']);
    expect(await listDrillReports(clients.s3, bucket, 'backups/', { limit: 1 })).toHaveLength(1);
  });

  it('tears the throwaway down: port closed, data directory, secret and marker gone', async () => {
    for (const id of ['alpha', 'bravo']) {
      expect(await teardownProven(report(id))).toEqual({ portClosed: true, dataDirGone: true, secretGone: true, status: 'complete' });
      expect(report(id).teardown.items.map((i) => `${i.type}:${i.outcome}`)).toEqual(['secret:deleted', 'local-cluster:deleted']);
    }
    expect(readdirSync(registryDir)).toEqual([]);
  });

  it('sets fresh credentials after the instance is up and before the restore, and never logs them', () => {
    const entered = drill.events
      .filter((e) => e.type === 'StateEntered' && (e.state?.input as { request?: { databaseId?: string } })?.request?.databaseId === 'alpha')
      .map((e) => e.state!.name);
    const at = (name: string) => entered.indexOf(name);
    expect(at('ProvisionInstance')).toBeLessThan(at('CheckInstance'));
    expect(at('CheckInstance')).toBeLessThan(at('SetCredentials'));
    expect(at('SetCredentials')).toBeLessThan(at('RestoreBackup'));
    expect(entered.slice(at('RestoreBackup'))).toEqual(['RestoreBackup', 'VerifyRestore', 'MeasureDrill', 'TeardownInstance', 'WriteReport', 'DrillVerdict', 'DrillProven']);
    expect(passwords).toHaveLength(2);
    const everything = JSON.stringify({ output, events: drill.events, reports: drill.reports, alerts, items: drill.items });
    expect(everything).toContain('secretArn');
    for (const p of passwords) expect(everything).not.toContain(p);
    expect(everything).not.toContain(SENTINEL);
  });
});

// The deployed drill itself runs from the shipped bundles in drill-deployed.test.ts.
describe('the drill definitions the source stack deploys', () => {
  const CHILD = localStateMachineArn('acme-lifeboat-drill-database');
  const arns = { PlanFunctionArn: localFunctionArn('plan'), AlertFunctionArn: localFunctionArn('alert'), DrillDatabaseStateMachineArn: CHILD };
  const childArns = { PlanFunctionArn: localFunctionArn('plan'), DrillFunctionArn: localFunctionArn('drill'), DrillRestoreFunctionArn: localFunctionArn('drill-restore'), AlertFunctionArn: localFunctionArn('alert'), ...LOCAL_FARGATE_PLACEHOLDERS };

  it('are the ones the local runs execute (runLocalDrill, lifeboat drill), with the execution timeouts added', () => {
    const { TimeoutSeconds, ...deployed } = synthesizedDefinition('drill', arns);
    expect(TimeoutSeconds).toBeGreaterThan(3600);
    expect(deployed).toEqual(loadDefinition('drill', arns));
    const { TimeoutSeconds: childTimeout, ...child } = synthesizedDefinition('drill-database', childArns);
    expect(childTimeout).toBeGreaterThan(3600);
    expect(child).toEqual(loadDefinition('drill-database', childArns));
  });
});
