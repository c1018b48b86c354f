import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, rmSync } from 'node:fs';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { LocalPostgresProvisioner } from '../../functions/lib/drill/local-provisioner.ts';
import { localDrillDeps, runLocalDrill, type LocalDrillResult } from '../../cli/local-drill.ts';
import type { InstanceStatus, Provisioner, ProvisionRequest, DrillResource } from '../../functions/lib/drill/provisioner.ts';
import type { DrillReport } from '../../functions/lib/drill/report.ts';
import type { InstanceRef } from '../../functions/lib/drill/types.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import { alertInbox, backUp, capturingOutput, teardownProven, tempRegistry, type ReceivedAlert } from './drill-harness.ts';

const clients = testClients();
const SENTINEL = 'S3NTINEL-failing-drill';

/** A provisioner whose instances, for some databases, never become available (a restore stuck in `creating`). */
class NeverReadyFor implements Provisioner {
  readonly provider = 'local' as const;
  readonly sslMode = 'disable' as const;
  readonly #stuck = new Set<string>();
  constructor(
    private readonly inner: LocalPostgresProvisioner,
    private readonly databases: string[],
  ) {}
  async provision(request: ProvisionRequest): Promise<InstanceRef> {
    const ref = await this.inner.provision(request);
    if (this.databases.includes(request.tags.databaseId)) this.#stuck.add(ref.identifier);
    return ref;
  }
  async status(ref: InstanceRef): Promise<InstanceStatus> {
    return this.#stuck.has(ref.identifier) ? { state: 'pending', detail: 'creating' } : this.inner.status(ref);
  }
  applyPassword(ref: InstanceRef, password: string) {
    return this.inner.applyPassword(ref, password);
  }
  teardown(drillId: string) {
    return this.inner.teardown(drillId);
  }
  listDrillResources() {
    return this.inner.listDrillResources();
  }
  deleteResource(resource: DrillResource) {
    return this.inner.deleteResource(resource);
  }
}

let plain: Awaited<ReturnType<typeof createTestDatabase>>;
let withBadCheck: Awaited<ReturnType<typeof createTestDatabase>>;
let bucket: string;
let registryDir: string;
let drill: LocalDrillResult;
let output: string[];
let alerts: ReceivedAlert[];

async function rewrite(key: string, change: (body: Buffer) => Buffer): Promise<void> {
  const got = await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const body = Buffer.from(await got.Body!.transformToByteArray());
  await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: change(body) }));
}

beforeAll(async () => {
  plain = await createTestDatabase('lbdrillbad');
  withBadCheck = await createTestDatabase('lbdrillrls');
  await withClient(plain.name, (c) => c.query(`CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 200) g`));
  // A CHECK constraint whose function reads a table without naming its schema: the database works, pg_dump
  // dumps it, and pg_restore (which empties search_path) fails loading the rows. A classic restore-only failure.
  await withClient(withBadCheck.name, (c) =>
    c.query(`CREATE TABLE lookup (v int); INSERT INTO lookup VALUES (1);
             CREATE FUNCTION allowed(x int) RETURNS boolean LANGUAGE sql AS 'SELECT EXISTS (SELECT 1 FROM lookup WHERE v = x)';
             CREATE TABLE t (id int PRIMARY KEY CHECK (allowed(id))); INSERT INTO t VALUES (1)`),
  );
  const [keyArn, b] = await Promise.all([createTestKey(), createTestBucket()]);
  bucket = b;
  const s = pgServer();
  const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  const target = { bucket, kmsKeyArn: keyArn, secretArn };
  const [corrupt, mismatch] = await Promise.all([backUp('corrupt', plain.name, target), backUp('mismatch', plain.name, target)]);
  await Promise.all([backUp('falsehood', plain.name, target), backUp('stuck', plain.name, target), backUp('stale', plain.name, target), backUp('restorefail', withBadCheck.name, target)]);

  // One flipped byte in the stored object.
  await rewrite(corrupt.dataKey, (body) => {
    body[Math.floor(body.length / 2)]! ^= 0x01;
    return body;
  });
  // A manifest that disagrees with the data: a table the data lacks, and a row count off by one.
  await rewrite(mismatch.manifestKey, (body) => {
    const manifest = JSON.parse(body.toString());
    manifest.inventory.tables.push({ schema: 'public', name: 'ghost', kind: 'r', rows: 5 });
    manifest.inventory.tables[0].rows += 1;
    return Buffer.from(JSON.stringify(manifest));
  });

  registryDir = tempRegistry();
  const inbox = await alertInbox();
  const deps = localDrillDeps({ clients, storage: { bucket, prefix: 'backups/' }, registryDir });
  deps.provisioners.local = new NeverReadyFor(deps.provisioners.local as LocalPostgresProvisioner, ['stuck']);
  let n = 0;
  deps.generatePassword = () => `${SENTINEL}-${n++}`;
  const targets = { rpoMinutes: 60, rtoMinutes: 30 };
  ({ result: drill, output } = await capturingOutput(() =>
    runLocalDrill({
      requests: [
        { databaseId: 'corrupt', planId: 'nightly', targets },
        { databaseId: 'mismatch', planId: 'nightly', targets },
        { databaseId: 'restorefail', planId: 'nightly', targets },
        { databaseId: 'falsehood', planId: 'nightly', targets, assertions: [{ name: 'a million rows', sql: 'SELECT count(*) > 1000000 FROM t' }] },
        { databaseId: 'stuck', planId: 'nightly', targets, restoreTimeoutSeconds: 1 },
        { databaseId: 'stale', planId: 'nightly', targets: { rpoMinutes: 0.001, rtoMinutes: 30 } },
      ],
      deps,
      maxConcurrency: 3,
      alert: { sns: inbox.sns, topicArn: inbox.topicArn },
      logger: new Logger({ serviceName: 'lifeboat-test' }),
    }),
  ));
  alerts = await inbox.receiveAll();
}, 120_000);

afterAll(async () => {
  await plain?.drop();
  await withBadCheck?.drop();
  if (registryDir) rmSync(registryDir, { recursive: true, force: true });
});

function reportOf(databaseId: string): DrillReport {
  const found = drill.reports.find((r) => r.databaseId === databaseId);
  if (!found) throw new Error(`no report for ${databaseId}: ${JSON.stringify(drill.items)}`);
  return found;
}

describe('drill bad paths: each alerts clearly, reports the failed check and tears down', () => {
  it('fails the run, with exactly one drill-failed alert per broken database', () => {
    expect(drill.run.status).toBe('FAILED');
    expect(drill.run.error).toBe('DrillFailed');
    expect(drill.items.map((i) => `${i.databaseId}:${i.status}`).sort()).toEqual(
      ['corrupt', 'falsehood', 'mismatch', 'restorefail', 'stale', 'stuck'].map((id) => `${id}:failed`),
    );
    expect(alerts.map((a) => a.details.databaseId).sort()).toEqual(['corrupt', 'falsehood', 'mismatch', 'restorefail', 'stale', 'stuck']);
    expect(alerts.every((a) => a.details.kind === 'drill-failed')).toBe(true);
  });

  it.each([
    ['corrupt', 'ChecksumMismatchError', 'sha256', /stored object of backup \S+ of database "corrupt" .* has sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}/],
    ['mismatch', 'DrillVerificationError', 'tables', /failed 2 of \d+ checks: tables: table "public"\."ghost" is missing; row counts: table "public"\."t" has 200 rows, the manifest says 201/],
    ['restorefail', 'RestoreFailedError', 'pg_restore', new RegExp(`pg_restore failed for backup \\S+ of database "restorefail".*relation "lookup" does not exist`, 's')],
    ['falsehood', 'DrillVerificationError', 'assertion: a million rows', /assertion: a million rows: assertion "a million rows" returned false/],
    ['stuck', 'RestoreTimeoutError', 'instance available', /did not become available within 1s \(still "creating"/],
    ['stale', 'DrillVerificationError', 'freshness: backup age', /freshness: backup age: the newest backup is older than the plan's RPO/],
  ])('%s: alerts %s naming the failed %s check, and leaves nothing behind', async (databaseId, error, checkName, message) => {
    const alert = alerts.find((a) => a.details.databaseId === databaseId)!;
    expect(alert.subject).toBe(`[lifeboat] Restore drill failed: database ${databaseId}, plan nightly: ${error}`);
    expect(alert.message).toMatch(message);
    expect(alert.message).toMatch(/Next step: /);
    expect(alert.details.details).toMatchObject({ drillId: reportOf(databaseId).drillId, teardown: 'complete' });
    expect(alert.details.details.failedChecks).toContain(checkName);

    const report = reportOf(databaseId);
    expect(report.verdict).toBe('failed');
    expect(report.checks.find((c) => c.name === checkName)?.status).toBe('failed');
    expect(report.checks.some((c) => c.status === 'passed' && c.name === checkName)).toBe(false);
    expect(await teardownProven(report)).toEqual({ portClosed: true, dataDirGone: true, secretGone: true, status: 'complete' });
  });

  it('reports the checks that still passed beside the failed ones', () => {
    const mismatch = reportOf('mismatch');
    expect(Object.fromEntries(mismatch.checks.map((c) => [c.name, c.status]))).toMatchObject({
      sha256: 'passed',
      pg_restore: 'passed',
      tables: 'failed',
      'row counts': 'failed',
      'schema fingerprint': 'passed',
      amcheck: 'passed',
    });
    expect(reportOf('stale').rpo?.met).toBe(false);
  });

  it('leaves no local cluster and never logs the throwaway credentials', () => {
    expect(readdirSync(registryDir)).toEqual([]);
    const everything = JSON.stringify({ output, events: drill.events, reports: drill.reports, alerts });
    expect(everything).not.toContain(SENTINEL);
  });
});
