import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CreateDBInstanceCommand,
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  RDSClient,
  RestoreDBInstanceToPointInTimeCommand,
  type DBInstance,
} from '@aws-sdk/client-rds';
import { credentialsFor } from '../../local/moto-rds-compat.ts';
import { startMotoCompatProxy } from '../../local/nightly-environment.ts';
import { createLocalCertificateAuthority, drillPostgres, type DrillPostgres, type LocalCertificateAuthority } from '../../local/drill-postgres.ts';
import { startPitrSource, type PitrSource } from '../../local/pitr-postgres.ts';
import type { InstanceInfo } from '../../local/strict-rds.ts';
import { uniqueName } from '../harness/aws.ts';
import { portClosed } from './drill-harness.ts';

/**
 * Real point-in-time recovery behind the strict RDS layer's instance hooks, called directly
 * (as the layer calls them for RestoreDBInstanceToPointInTime): a source archiving its WAL,
 * recovered to a moment by PostgreSQL's own archive recovery into a new TLS server.
 */

const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';
const instance = (id: string): InstanceInfo => ({ arn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${id}`, account: ACCOUNT, region: REGION, id });
const SOURCE = { account: ACCOUNT, region: REGION, id: 'prod-orders' };
const MASTER = 'orders_admin';
const MASTER_PASSWORD = 'source-master-pw';

let parent: string;
let ca: LocalCertificateAuthority;
let hooks: DrillPostgres;
let source: PitrSource;
let firstLatest: Date;

async function connect(at: { host: string; port: number }, user: string, password: string, database = 'postgres', tls = false): Promise<pg.Client> {
  const client = new pg.Client({
    host: at.host,
    port: at.port,
    user,
    password,
    database,
    // verify-full against the local CA, as a drill connects to an RDS endpoint.
    ...(tls ? { ssl: { ca: readFileSync(ca.caPath, 'utf8'), rejectUnauthorized: true } } : {}),
  });
  await client.connect();
  return client;
}

async function query<T extends pg.QueryResultRow>(at: { host: string; port: number }, user: string, password: string, database: string, sql: string, tls = false): Promise<T[]> {
  const client = await connect(at, user, password, database, tls);
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Polls the hook as the strict layer does, until the instance may become available. */
async function untilReady(info: InstanceInfo, timeoutMs = 90_000): Promise<number> {
  const begun = Date.now();
  while (!hooks.ready!(info)) {
    if (Date.now() - begun > timeoutMs) throw new Error(`${info.id} not ready after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Date.now() - begun;
}

/** Server processes whose command line names the directory (a postmaster runs as `postgres -D <dir>`). */
function processesUsing(dir: string): string[] {
  return execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(dir));
}

beforeAll(async () => {
  parent = mkdtempSync(join(tmpdir(), 'lifeboat-pitr-test-'));
  // As /tmp: the clusters run as the postgres OS user when the tests run as root.
  chmodSync(parent, 0o1777);
  ca = createLocalCertificateAuthority(parent);
  hooks = drillPostgres({ tls: ca.server, parentDir: parent, recoveryTimeoutSeconds: 60 });
  source = await startPitrSource({ tls: ca.server, masterUsername: MASTER, masterPassword: MASTER_PASSWORD, parentDir: parent });
  hooks.registerSource(SOURCE, source);
  firstLatest = hooks.latestRestorable!(SOURCE)!;
});

afterAll(async () => {
  await hooks?.stop();
  ca?.remove();
  if (parent) rmSync(parent, { recursive: true, force: true });
});

describe('point-in-time recovery behind emulated RDS instances', () => {
  const recovered: { id: string; port: number; dataDir: string }[] = [];
  let t1: Date;
  let t2: Date;

  it('reports the source as restorable from its base backup on, up to its last archived WAL, and moves forward with switchWal', async () => {
    expect(firstLatest).toBeInstanceOf(Date);
    expect(firstLatest.getTime()).toBeGreaterThanOrEqual(source.earliestRestorable.getTime());
    expect(hooks.latestRestorable!({ ...SOURCE, id: 'not-registered' })).toBeUndefined();
    // The source instance's endpoint is the source cluster (what lifeboat dumps from).
    expect(hooks.endpoint(instance(SOURCE.id))).toEqual({ host: '127.0.0.1', port: source.port });

    await query(source, MASTER, MASTER_PASSWORD, 'postgres', 'CREATE DATABASE shop');
    await query(source, MASTER, MASTER_PASSWORD, 'shop', `CREATE TABLE orders (id int PRIMARY KEY, phase text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`);
    await query(source, MASTER, MASTER_PASSWORD, 'shop', `INSERT INTO orders (id, phase) SELECT g, 't1' FROM generate_series(1, 50) g`);
    t1 = await source.switchWal();
    expect(t1.getTime()).toBeGreaterThan(firstLatest.getTime());
    expect(hooks.latestRestorable!(SOURCE)).toEqual(t1);

    await query(source, MASTER, MASTER_PASSWORD, 'shop', `INSERT INTO orders (id, phase) SELECT g, 't2' FROM generate_series(51, 80) g`);
    t2 = await source.switchWal();
    expect(t2.getTime()).toBeGreaterThan(t1.getTime());
    expect(hooks.latestRestorable!(SOURCE)).toEqual(t2);

    // The moment recovered to below lies between the two commits.
    const [bounds] = await query<{ t1_last: Date; t2_first: Date }>(source, MASTER, MASTER_PASSWORD, 'shop',
      `SELECT max(at) FILTER (WHERE phase = 't1') AS t1_last, min(at) FILTER (WHERE phase = 't2') AS t2_first FROM orders`);
    expect(bounds!.t1_last.getTime()).toBeLessThanOrEqual(t1.getTime());
    expect(bounds!.t2_first.getTime()).toBeGreaterThan(t1.getTime());
  });

  it('recovers to a moment: rows committed before it are there, rows committed after it are not', async () => {
    const between = instance('lifeboat-drill-pitr-between');
    const latest = instance('lifeboat-drill-pitr-latest');
    hooks.created(between, undefined, { source: SOURCE, restoreTime: t1 });
    hooks.created(latest, undefined, { source: SOURCE, restoreTime: t2 });
    // Not available (no endpoint) while recovering.
    expect(hooks.ready!(between)).toBe(false);
    expect(hooks.endpoint(between)).toBeUndefined();
    const waited = await Promise.all([untilReady(between), untilReady(latest)]);
    expect(hooks.failures).toEqual([]);
    console.log(`recovered two instances in parallel in ${Math.max(...waited)} ms (${hooks.recoveries.map((r) => `${r.id}: ${r.millis} ms`).join(', ')})`);

    const atBetween = hooks.endpoint(between)!;
    const atLatest = hooks.endpoint(latest)!;
    expect(atBetween.host).toBe('127.0.0.1');
    expect(new Set([atBetween.port, atLatest.port, source.port]).size).toBe(3);
    // The master user is the source's, with the source's password until one is set; TLS verifies against the local CA.
    const rows = (at: { host: string; port: number }) =>
      query<{ phase: string; n: number }>(at, MASTER, MASTER_PASSWORD, 'shop', `SELECT phase, count(*)::int AS n FROM orders GROUP BY phase ORDER BY phase`, true);
    expect(await rows(atBetween)).toEqual([{ phase: 't1', n: 50 }]);
    expect(await rows(atLatest)).toEqual([{ phase: 't1', n: 50 }, { phase: 't2', n: 30 }]);
    for (const at of [atBetween, atLatest]) {
      const [state] = await query<{ recovering: boolean; ssl: boolean }>(at, MASTER, MASTER_PASSWORD, 'postgres',
        'SELECT pg_is_in_recovery() AS recovering, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()', true);
      expect(state).toEqual({ recovering: false, ssl: true });
    }
    // A recovered server takes writes, and they stay its own.
    await query(atBetween, MASTER, MASTER_PASSWORD, 'shop', `INSERT INTO orders (id, phase) VALUES (1000, 'restored')`, true);
    expect(await query(source, MASTER, MASTER_PASSWORD, 'shop', `SELECT id FROM orders WHERE id = 1000`)).toEqual([]);

    // ModifyDBInstance's new master password, applied when resetting-master-credentials ends.
    await hooks.passwordApplied(between, 'drill-new-pw');
    expect(await query(atBetween, MASTER, 'drill-new-pw', 'postgres', 'SELECT 1 AS one', true)).toEqual([{ one: 1 }]);
    await expect(query(atBetween, MASTER, MASTER_PASSWORD, 'postgres', 'SELECT 1', true)).rejects.toThrow(/password authentication failed/);
    // The source keeps its own.
    expect(await query(source, MASTER, MASTER_PASSWORD, 'postgres', 'SELECT 1 AS one')).toEqual([{ one: 1 }]);

    recovered.push(...hooks.running().filter((r) => r.id === between.id || r.id === latest.id));
    expect(recovered.map((r) => r.id).sort()).toEqual([between.id, latest.id].sort());

    // DeleteDBInstance: the server stops and its directory goes.
    const gone = recovered.find((r) => r.id === between.id)!;
    await hooks.deleted(between);
    expect(await portClosed(gone.port)).toBe(true);
    expect(existsSync(gone.dataDir)).toBe(false);
    expect(processesUsing(gone.dataDir)).toEqual([]);
    expect(hooks.running().map((r) => r.id)).toEqual([latest.id]);
  });

  it('fails clearly, and at once, for a moment before the base backup or after the newest archived WAL', async () => {
    const early = instance('lifeboat-drill-pitr-early');
    const late = instance('lifeboat-drill-pitr-late');
    hooks.created(early, undefined, { source: SOURCE, restoreTime: new Date(source.earliestRestorable.getTime() - 60_000) });
    hooks.created(late, undefined, { source: SOURCE, restoreTime: new Date(source.latestRestorable().getTime() + 60_000) });
    await untilReady(early, 10_000);
    await untilReady(late, 10_000);
    expect(hooks.failures.find((f) => f.id === early.id)?.error).toMatch(/before the earliest restorable time .* \(the end of the source's base backup\)/);
    expect(hooks.failures.find((f) => f.id === late.id)?.error).toMatch(/after the latest restorable time/);
    expect(hooks.endpoint(early)).toBeUndefined();
    expect(hooks.endpoint(late)).toBeUndefined();
    expect(hooks.started.map((s) => s.id)).not.toContain(early.id);
    await hooks.deleted(early);
    await hooks.deleted(late);
  });

  it('surfaces a recovery PostgreSQL cannot finish (its archived WAL is missing) as a failure, leaving nothing running', async () => {
    const lossy = await startPitrSource({ tls: ca.server, masterUsername: MASTER, masterPassword: MASTER_PASSWORD, parentDir: parent });
    const lossyAt = { ...SOURCE, id: 'prod-lossy' };
    hooks.registerSource(lossyAt, lossy);
    await query(lossy, MASTER, MASTER_PASSWORD, 'postgres', 'CREATE TABLE t AS SELECT 1 AS v');
    const moment = await lossy.switchWal();
    // Every archived segment lost: only the WAL inside the base backup remains.
    const segments = readdirSync(lossy.archiveDir);
    expect(segments.length).toBeGreaterThan(0);
    for (const f of segments) rmSync(join(lossy.archiveDir, f));

    const target = instance('lifeboat-drill-pitr-lossy');
    hooks.created(target, undefined, { source: lossyAt, restoreTime: moment });
    const waited = await untilReady(target);
    const failure = hooks.failures.find((f) => f.id === target.id);
    expect(failure?.error).toMatch(/recovery to .* failed/);
    // What PostgreSQL said about it, from the server log.
    expect(failure?.error).toMatch(/recovery ended before configured recovery target was reached/);
    expect(waited).toBeLessThan(60_000);
    expect(hooks.endpoint(target)).toBeUndefined();
    expect(hooks.started.map((s) => s.id)).not.toContain(target.id);
    // No server left behind: only the two sources' clusters (and the one recovered server still up) run from this test's directory.
    expect(processesUsing(parent).filter((p) => /postgres.* -D /.test(p))).toHaveLength(3);
  });

  it('behind the strict RDS layer: LatestRestorableTime is the source\'s, RestoreDBInstanceToPointInTime brings up a server recovered to the moment at the Endpoint', async () => {
    const account = '454545454545';
    const upstream = inject('motoEndpoint');
    const creds = await credentialsFor(account, 'pitr-postgres');
    // The layer drives the same hooks; the last test stops them (and proves nothing is left).
    const proxy = await startMotoCompatProxy(upstream, { max: () => 100 }, { instances: { ...hooks, stop: async () => undefined } });
    const rds = new RDSClient({ endpoint: proxy.endpoint, region: REGION, credentials: creds, maxAttempts: 1 });
    const sourceId = uniqueName('lbpitr-src');
    const targetId = uniqueName('lifeboat-drill-pitr-rds');
    const describe1 = async (id: string): Promise<DBInstance> => (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances![0]!;
    const until = async (id: string, status: string): Promise<DBInstance> => {
      const begun = Date.now();
      for (;;) {
        const db = await describe1(id);
        if (db.DBInstanceStatus === status) return db;
        if (Date.now() - begun > 90_000) throw new Error(`${id} still ${db.DBInstanceStatus}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    try {
      await rds.send(new CreateDBInstanceCommand({
        DBInstanceIdentifier: sourceId, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20,
        MasterUsername: MASTER, MasterUserPassword: MASTER_PASSWORD, BackupRetentionPeriod: 7,
      }));
      await until(sourceId, 'available');
      hooks.registerSource({ account, region: REGION, id: sourceId }, source);

      await query(source, MASTER, MASTER_PASSWORD, 'shop', `INSERT INTO orders (id, phase) VALUES (101, 't3')`);
      const t3 = await source.switchWal();
      await query(source, MASTER, MASTER_PASSWORD, 'shop', `INSERT INTO orders (id, phase) VALUES (102, 't4')`);
      const t4 = await source.switchWal();
      const src = await describe1(sourceId);
      expect(src.LatestRestorableTime).toEqual(t4);
      expect(src.Endpoint).toMatchObject({ Address: '127.0.0.1', Port: source.port });

      const begun = Date.now();
      await rds.send(new RestoreDBInstanceToPointInTimeCommand({ SourceDBInstanceIdentifier: sourceId, TargetDBInstanceIdentifier: targetId, RestoreTime: t3 }));
      const restored = await until(targetId, 'available');
      console.log(`RestoreDBInstanceToPointInTime to available in ${Date.now() - begun} ms`);
      expect(hooks.recoveries.find((r) => r.id === targetId)).toMatchObject({ source: sourceId, restoreTime: t3 });
      expect(restored.Endpoint).toMatchObject({ Address: '127.0.0.1' });
      const at = { host: restored.Endpoint!.Address!, port: restored.Endpoint!.Port! };
      expect(at.port).not.toBe(source.port);
      expect(hooks.endpoint({ ...instance(targetId), account })).toEqual(at);

      // The drill sets its own master password, as on AWS.
      await rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: targetId, MasterUserPassword: 'drill-pw-2', ApplyImmediately: true }));
      await until(targetId, 'available');
      const phases = await query<{ phase: string }>(at, MASTER, 'drill-pw-2', 'shop', `SELECT DISTINCT phase FROM orders ORDER BY phase`, true);
      expect(phases.map((r) => r.phase)).toEqual(['t1', 't2', 't3']);

      await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: targetId, SkipFinalSnapshot: true }));
      const dataDir = hooks.started.find((r) => r.id === targetId)!.dataDir;
      for (let i = 0; i < 50 && hooks.running().some((r) => r.id === targetId); i++) {
        await rds.send(new DescribeDBInstancesCommand({})).catch(() => undefined);
      }
      expect(hooks.running().map((r) => r.id)).not.toContain(targetId);
      expect(await portClosed(at.port)).toBe(true);
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      await proxy.stop();
      const moto = new RDSClient({ endpoint: upstream, region: REGION, credentials: creds, maxAttempts: 1 });
      for (const id of [sourceId, targetId]) await moto.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true })).catch(() => undefined);
    }
  });

  it('serves drill throwaways through the same hooks, and stop() leaves no process, port or directory behind', async () => {
    const throwaway = instance('lifeboat-drill-plain');
    hooks.created({ ...throwaway, masterUsername: 'drill_admin' }, 'throwaway-pw');
    await untilReady(throwaway);
    const at = hooks.endpoint(throwaway)!;
    expect(await query(at, 'drill_admin', 'throwaway-pw', 'postgres', 'SELECT current_user AS u', true)).toEqual([{ u: 'drill_admin' }]);
    // Not a point-in-time restore of a registered source: an unregistered one holds no data here.
    hooks.created(instance('lifeboat-drill-unregistered'), undefined, { source: { ...SOURCE, id: 'unknown' }, restoreTime: new Date() });
    expect(hooks.endpoint(instance('lifeboat-drill-unregistered'))).toBeUndefined();

    const servers = [...hooks.started, { id: 'source', port: source.port, dataDir: source.dataDir }];
    expect(servers.length).toBeGreaterThanOrEqual(4);
    await hooks.stop();
    for (const s of servers) {
      expect(await portClosed(s.port), `${s.id} port`).toBe(true);
      expect(existsSync(s.dataDir), `${s.id} data`).toBe(false);
    }
    expect(existsSync(source.root)).toBe(false);
    expect(hooks.running()).toEqual([]);
    expect(processesUsing(parent)).toEqual([]);
    ca.remove();
    expect(readdirSync(parent)).toEqual([]);
  });
});
