import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import {
  CreateDBClusterCommand,
  DescribeDBClustersCommand,
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  RDSClient,
  type DBCluster,
  type DBInstance,
  type DBInstanceAutomatedBackup,
} from '@aws-sdk/client-rds';
import { failRds, rdsError, rdsRequest } from '../../local/moto-rds-compat.ts';
import { startMotoCompatProxy, type MotoCompatProxy } from '../../local/nightly-environment.ts';
import { localLambdaContext } from '../../functions/shared/lambda-context.ts';
import { DeploymentConfig } from '../../functions/lib/config/deployment.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { MAX_DATABASES_PER_PLAN } from '../../functions/lib/config/schema.ts';
import { METRIC_NAMES } from '../../functions/lib/metrics/names.ts';
import type { PitrTarget } from '../../functions/lib/pitr/posture.ts';
import { PAGE_ATTEMPTS, watchPitrLag, type WatchSink } from '../../functions/lib/pitr/watch.ts';
import { createPitrHandler, WATCH_SAFETY_MS } from '../../functions/pitr/handler.ts';
import { uniqueName } from '../harness/aws.ts';
import { createPitrInstance, ScriptedAutomatedBackups } from '../harness/pitr-rds.ts';

/**
 * The PITR lag watch at fleet scale: it reads region-wide listings (a few
 * pages per region, not calls per database), publishes each database's lag as
 * soon as its page arrives, survives a failing or throttled page, and stops
 * before the function's timeout with what it has, so one slow RDS never
 * silences every pitr-lag alarm at once. Against moto behind the fault proxy
 * (hundreds of instances; automated backups scripted in RDS's shapes), and
 * against scripted pages for the 1,000 databases a plan may hold.
 */
const REGION = 'sa-east-1';
const COPY = 'us-east-2';
const CMK = 'arn:aws:kms:us-east-2:123456789012:key/11111111-2222-3333-4444-555555555555';
const INSTANCES = 250;
const REPLICATED = 40;

let proxy: MotoCompatProxy;
let backups: ScriptedAutomatedBackups;
const clients = new Map<string, RDSClient>();
/** One attempt per call, so every request the proxy sees is one the watch made. */
const rds = (region: string) => {
  let client = clients.get(region);
  if (!client) clients.set(region, (client = new RDSClient({ region, endpoint: proxy.endpoint, maxAttempts: 1 })));
  return client;
};
const instanceIds: string[] = [];
const clusterIds: string[] = [];

const pitr = (extra: Partial<PitrTarget['pitr']> = {}): PitrTarget['pitr'] => ({ windowDays: 7, copyRegion: false, manage: false, maxLagMinutes: 15, ...extra });
const instanceTarget = (id: string, i: number): PitrTarget => ({
  databaseId: `db-${i}`,
  planId: 'fleet',
  ref: { instanceIdentifier: id },
  region: REGION,
  pitr: pitr({ copyRegion: i < REPLICATED }),
  copy: { region: COPY, kmsKeyArn: CMK },
});

/** What a watch handed over, by metric. */
function recorder() {
  const got = { lag: new Map<string, number>(), window: new Map<string, number>(), replicaLag: new Map<string, number>() };
  const sink: WatchSink = { lag: (d, s) => got.lag.set(d, s), window: (d, s) => got.window.set(d, s), replicaLag: (d, s) => got.replicaLag.set(d, s) };
  return { got, sink };
}

const callsSince = (from: number) => proxy.seen.slice(from).map((req) => rdsRequest(req)).filter((r) => r !== undefined);

/** Pages a listing of `count` items takes at 100 a page (at least one). */
const pagesOf = (count: number) => Math.max(1, Math.ceil(count / 100));

beforeAll(async () => {
  proxy = await startMotoCompatProxy(inject('motoEndpoint'), undefined, false);
  backups = new ScriptedAutomatedBackups();
  proxy.addRule(backups.rule());
  const source = new RDSClient({ region: REGION, endpoint: proxy.endpoint });
  for (let start = 0; start < INSTANCES; start += 25) {
    const batch = Array.from({ length: Math.min(25, INSTANCES - start) }, (_, k) => uniqueName(`watch-${start + k}`));
    await Promise.all(batch.map((id) => createPitrInstance(source, backups, id, 7, REGION)));
    instanceIds.push(...batch);
  }
  // The first REPLICATED instances replicate to the copy region; one of them has stalled 40 minutes ago.
  for (const [i, id] of instanceIds.slice(0, REPLICATED).entries()) backups.replicate(id, COPY, 7, CMK, 'replicating', i === 1 ? new Date(Date.now() - 40 * 60_000) : undefined);
  for (let k = 0; k < 3; k++) {
    const id = uniqueName(`watch-aurora-${k}`);
    await source.send(new CreateDBClusterCommand({ DBClusterIdentifier: id, Engine: 'aurora-postgresql', MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1', BackupRetentionPeriod: 7 }));
    clusterIds.push(id);
  }
}, 240_000);

afterAll(async () => {
  await proxy?.stop();
});

function fleetTargets(): PitrTarget[] {
  return [
    ...instanceIds.map(instanceTarget),
    ...clusterIds.map((id, k): PitrTarget => ({ databaseId: `aurora-${k}`, planId: 'fleet', ref: { clusterIdentifier: id }, region: REGION, pitr: pitr() })),
    // In the config, gone from RDS.
    { databaseId: 'ghost', planId: 'fleet', ref: { instanceIdentifier: uniqueName('watch-ghost') }, region: REGION, pitr: pitr() },
  ];
}

describe('PITR lag watch against moto (hundreds of databases)', () => {
  it('reads a few pages per region, not calls per database, and publishes every lag, window and replica lag', async () => {
    // Prepare: what the region holds (other tests may add instances to moto, never to this region).
    const listed = await rds(REGION).send(new DescribeDBInstancesCommand({ MaxRecords: 100 }));
    expect(listed.Marker).toBeDefined();
    const from = proxy.seen.length;
    const { got, sink } = recorder();

    // Act
    const report = await watchPitrLag({ rds }, fleetTargets(), sink);

    // Assess: every listing paged, nothing read per database.
    const calls = callsSince(from);
    const count = (action: string, region: string) => calls.filter((c) => c.action === action && c.region === region).length;
    expect(count('DescribeDBInstances', REGION)).toBe(pagesOf(INSTANCES));
    expect(count('DescribeDBClusters', REGION)).toBe(1);
    expect(count('DescribeDBInstanceAutomatedBackups', COPY)).toBe(pagesOf(REPLICATED));
    expect(count('DescribeDBInstanceAutomatedBackups', REGION)).toBe(pagesOf(INSTANCES));
    expect(calls.every((c) => !c.params.has('DBInstanceIdentifier') && !c.params.has('DBClusterIdentifier') && !c.params.has('DbiResourceId'))).toBe(true);
    expect(report.rdsCalls).toBe(calls.length);
    // 3 + 1 + 1 + 3 = 8 calls for 254 databases (the per-database check takes about 2 each: 500+).
    expect(report.rdsCalls).toBe(8);

    expect(report).toMatchObject({ checked: INSTANCES + 4, published: INSTANCES + 3, replicaWatched: REPLICATED, replicaPublished: REPLICATED, stoppedEarly: false, failedListings: [] });
    expect(got.lag.size).toBe(INSTANCES + 3);
    for (const [, seconds] of got.lag) expect(seconds).toBeLessThan(120);
    expect(got.window.size).toBe(INSTANCES + 3);
    expect(got.window.get('db-7')).toBeGreaterThan(6.9 * 86_400);
    expect(got.replicaLag.size).toBe(REPLICATED);
    expect(got.replicaLag.get('db-0')).toBeLessThan(60);
    expect(got.replicaLag.get('db-1')).toBeGreaterThanOrEqual(40 * 60 - 5);
    // The one database RDS does not show is reported, so its own alarm (missing data) is the only one that fires.
    expect(report.unpublished).toEqual([{ databaseId: 'ghost', metric: 'lag', reason: expect.stringMatching(/^instance watch-ghost-\S+ not in the region's DescribeDBInstances listing \(sa-east-1\)/) }]);
  });

  it('asks a throttled page again and still publishes every database', async () => {
    // Prepare: page 2 of the instances is throttled once.
    let throttled = 0;
    proxy.addRule((req) => {
      const r = rdsRequest(req);
      if (r?.action !== 'DescribeDBInstances' || r.region !== REGION || !r.params.get('Marker') || throttled > 0) return undefined;
      throttled += 1;
      return rdsError('Throttling', 'Rate exceeded', 400);
    });
    const from = proxy.seen.length;
    const { got, sink } = recorder();

    // Act
    const report = await watchPitrLag({ rds, retryPauseMs: () => 10 }, fleetTargets(), sink);

    // Assess
    expect(throttled).toBe(1);
    expect(callsSince(from).filter((c) => c.action === 'DescribeDBInstances')).toHaveLength(pagesOf(INSTANCES) + 1);
    expect(report).toMatchObject({ published: INSTANCES + 3, replicaPublished: REPLICATED, failedListings: [], stoppedEarly: false });
    expect(got.lag.size).toBe(INSTANCES + 3);
  });

  it('when a page keeps failing, publishes the databases of the other pages at once and reads the rest one by one', async () => {
    // Prepare: every page after the first fails (access denied to the listing past page 1, say).
    const rule = failRds('DescribeDBInstances', 'InternalFailure', 'page unavailable', (r) => r.region === REGION && r.params.get('Marker') !== null);
    proxy.addRule(rule);
    const from = proxy.seen.length;
    const { got, sink } = recorder();

    // Act
    const report = await watchPitrLag({ rds, retryPauseMs: () => 10 }, fleetTargets(), sink);

    // Assess
    const calls = callsSince(from);
    const singles = calls.filter((c) => c.action === 'DescribeDBInstances' && c.params.has('DBInstanceIdentifier'));
    expect(calls.filter((c) => c.action === 'DescribeDBInstances' && c.params.has('Marker'))).toHaveLength(PAGE_ATTEMPTS);
    expect(report.failedListings).toEqual([{ region: REGION, action: 'DescribeDBInstances', error: 'InternalFailure: page unavailable' }]);
    // Page 1 held 100 of the region's instances; the others (and the ghost) are read one by one.
    expect(singles.length).toBe(INSTANCES - 100 + 1);
    expect(report).toMatchObject({ published: INSTANCES + 3, replicaPublished: REPLICATED, stoppedEarly: false });
    expect(got.lag.size).toBe(INSTANCES + 3);
    expect(report.unpublished).toEqual([{ databaseId: 'ghost', metric: 'lag', reason: expect.stringMatching(/^its window could not be read \(DBInstanceNotFound/) }]);
  });
});

/**
 * Scripted pages in RDS's shapes: `instances` instances (the first `replicated`
 * replicating to COPY), 100 a page, and hooks to fail or stall a page.
 */
function scriptedFleet(instances: number, replicated: number, hooks: { stallInstancePage?: number; failCopyListing?: boolean } = {}) {
  const now = Date.now();
  const all: DBInstance[] = Array.from({ length: instances }, (_, i) => ({
    DBInstanceIdentifier: `fleet-${i}`,
    DBInstanceArn: `arn:aws:rds:${REGION}:123456789012:db:fleet-${i}`,
    DbiResourceId: `db-RES${i}`,
    BackupRetentionPeriod: 7,
    LatestRestorableTime: new Date(now - 120_000),
    DBInstanceStatus: 'available',
  }));
  const replicas: DBInstanceAutomatedBackup[] = all.slice(0, replicated).map((i) => ({
    DBInstanceIdentifier: i.DBInstanceIdentifier,
    DbiResourceId: i.DbiResourceId,
    Region: REGION,
    Status: 'replicating',
    RestoreWindow: { EarliestTime: new Date(now - 86_400_000), LatestTime: new Date(now - 300_000) },
  }));
  const own: DBInstanceAutomatedBackup[] = all.map((i) => ({ DBInstanceIdentifier: i.DBInstanceIdentifier, DbiResourceId: i.DbiResourceId, Region: REGION, Status: 'active', RestoreWindow: { EarliestTime: new Date(now - 7 * 86_400_000) } }));
  const calls: Array<{ region: string; action: string; marker?: string; single: boolean }> = [];
  const page = <T>(items: T[], input: { MaxRecords?: number; Marker?: string }) => {
    const from = Number(input.Marker ?? 0);
    const size = input.MaxRecords ?? 100;
    return { items: items.slice(from, from + size), marker: from + size < items.length ? String(from + size) : undefined };
  };
  const client = (region: string) =>
    ({
      send: async (command: unknown, options?: { abortSignal?: AbortSignal }) => {
        if (command instanceof DescribeDBInstancesCommand) {
          const input = command.input;
          calls.push({ region, action: 'DescribeDBInstances', marker: input.Marker, single: Boolean(input.DBInstanceIdentifier) });
          if (input.DBInstanceIdentifier) return { DBInstances: all.filter((i) => i.DBInstanceIdentifier === input.DBInstanceIdentifier) };
          const p = page(all, input);
          if (hooks.stallInstancePage !== undefined && Number(input.Marker ?? 0) / 100 + 1 === hooks.stallInstancePage) {
            // RDS never answers this page: only the abort ends the wait.
            await new Promise((_, reject) => options?.abortSignal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }))));
          }
          return { DBInstances: p.items, Marker: p.marker };
        }
        if (command instanceof DescribeDBClustersCommand) {
          calls.push({ region, action: 'DescribeDBClusters', single: Boolean(command.input.DBClusterIdentifier) });
          return { DBClusters: [] as DBCluster[] };
        }
        if (command instanceof DescribeDBInstanceAutomatedBackupsCommand) {
          const input = command.input;
          calls.push({ region, action: 'DescribeDBInstanceAutomatedBackups', marker: input.Marker, single: Boolean(input.DbiResourceId) });
          if (region === COPY && hooks.failCopyListing && !input.DbiResourceId) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
          const items = region === COPY ? replicas.filter((r) => !input.DbiResourceId || r.DbiResourceId === input.DbiResourceId) : own;
          const p = page(items, input);
          return { DBInstanceAutomatedBackups: p.items, Marker: p.marker };
        }
        throw new Error(`unexpected command ${String(command)}`);
      },
    }) as unknown as RDSClient;
  return { client, calls };
}

function fleetConfig(databases: number, replicated: number): DeploymentConfig {
  const ids = Array.from({ length: databases }, (_, i) => `fleet-${i}`);
  const connection = (database: string) => ({ host: 'db.invalid', database, username: 'lifeboat', passwordEnv: 'UNUSED' });
  const plan = (id: string, dbs: string[], copyRegion: boolean) => ({ id, schedule: { cron: 'cron(0 3 * * ? *)' }, databases: dbs, rpoMinutes: 1440, rtoMinutes: 60, pitr: { windowDays: 7, copyRegion, maxLagMinutes: 15 } });
  return new DeploymentConfig(
    parseConfig({
      name: 'fleet',
      source: { region: REGION },
      databases: ids.map((id) => ({ id, connection: connection(id), rds: { instanceIdentifier: id } })),
      plans: [plan('replicated', ids.slice(0, replicated), true), plan('local', ids.slice(replicated), false)],
      storage: { bucketName: 'fleet-unused', kmsKeyArn: `arn:aws:kms:${REGION}:123456789012:key/00000000-0000-0000-0000-000000000000` },
      snapshots: { copy: { region: COPY, kmsKeyArn: CMK } },
    }),
  );
}

/** Metrics as the handler publishes them: one single metric per figure, recorded with its database. */
function capturedMetrics() {
  const published: Array<{ name: string; databaseId: string; value: number }> = [];
  const metrics = {
    singleMetric: () => {
      let databaseId = '';
      return {
        addDimension: (_name: string, value: string) => void (databaseId = value),
        addMetric: (name: string, _unit: string, value: number) => void published.push({ name, databaseId, value }),
      };
    },
  } as unknown as Pick<Metrics, 'singleMetric'>;
  return { published, metrics };
}

const logger = new Logger({ serviceName: 'pitr-watch-test', logLevel: 'ERROR' });

describe('PITR lag watch handler at the proven plan size (1,000 databases, scripted pages)', () => {
  it('publishes all 1,000 lags (and 100 replica lags) from 21 pages: 10 of instances, 1 of replicas, 10 of automated backups', async () => {
    // Prepare
    expect(MAX_DATABASES_PER_PLAN).toBe(1000);
    const fleet = scriptedFleet(1000, 100);
    const { published, metrics } = capturedMetrics();
    const handler = createPitrHandler({ rds: fleet.client, config: async () => fleetConfig(1000, 100), logger, metrics });

    // Act
    const report = (await handler({ action: 'watch' }, localLambdaContext('pitr', 240_000))) as Awaited<ReturnType<typeof watchPitrLag>>;

    // Assess: 10 instance pages, 1 replica page, 10 source automated-backup pages; nothing per database.
    expect(fleet.calls.filter((c) => c.single)).toEqual([]);
    expect(fleet.calls.filter((c) => c.action === 'DescribeDBInstances')).toHaveLength(10);
    expect(fleet.calls.filter((c) => c.action === 'DescribeDBInstanceAutomatedBackups' && c.region === COPY)).toHaveLength(1);
    expect(fleet.calls.filter((c) => c.action === 'DescribeDBInstanceAutomatedBackups' && c.region === REGION)).toHaveLength(10);
    expect(report).toMatchObject({ checked: 1000, published: 1000, replicaWatched: 100, replicaPublished: 100, rdsCalls: 21, unpublishedCount: 0, stoppedEarly: false });
    const byName = (name: string) => published.filter((p) => p.name === name);
    expect(new Set(byName(METRIC_NAMES.pitrRestorableLagSeconds).map((p) => p.databaseId)).size).toBe(1000);
    expect(byName(METRIC_NAMES.pitrWindowSeconds)).toHaveLength(1000);
    expect(byName(METRIC_NAMES.pitrReplicaLagSeconds)).toHaveLength(100);
    expect(byName(METRIC_NAMES.pitrReplicaLagSeconds).every((p) => p.value >= 295 && p.value < 400)).toBe(true);
  });

  it('stops before the function times out with what it has: a stalled page costs only the databases it holds and after', async () => {
    // Prepare: page 3 of the instances never answers; the invocation has WATCH_SAFETY_MS + 0.5 s left.
    const fleet = scriptedFleet(1000, 100, { stallInstancePage: 3 });
    const { published, metrics } = capturedMetrics();
    const handler = createPitrHandler({ rds: fleet.client, config: async () => fleetConfig(1000, 100), logger, metrics });
    const started = Date.now();

    // Act
    const report = (await handler({ action: 'watch' }, localLambdaContext('pitr', WATCH_SAFETY_MS + 500))) as Awaited<ReturnType<typeof watchPitrLag>>;

    // Assess: returned at the deadline, pages 1-2 (200 databases) published, the rest reported.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(report.stoppedEarly).toBe(true);
    expect(report.published).toBe(200);
    expect(new Set(published.filter((p) => p.name === METRIC_NAMES.pitrRestorableLagSeconds).map((p) => p.databaseId))).toEqual(new Set(Array.from({ length: 200 }, (_, i) => `fleet-${i}`)));
    expect(report.unpublishedCount).toBe(800 + 100);
    expect(report.unpublished[0]).toEqual({ databaseId: expect.stringMatching(/^fleet-/), metric: expect.any(String), reason: 'not read: the watch stopped before its time limit' });
  });

  it('when the copy region cannot be listed, still publishes every source lag and reads the replicas one by one', async () => {
    // Prepare
    const fleet = scriptedFleet(300, 20, { failCopyListing: true });
    const { published, metrics } = capturedMetrics();
    const handler = createPitrHandler({ rds: fleet.client, config: async () => fleetConfig(300, 20), logger, metrics });

    // Act
    const report = (await handler({ action: 'watch' }, localLambdaContext('pitr', 240_000))) as Awaited<ReturnType<typeof watchPitrLag>>;

    // Assess
    expect(report).toMatchObject({ published: 300, replicaPublished: 20, failedListings: [{ region: COPY, action: 'DescribeDBInstanceAutomatedBackups', error: 'ThrottlingException: Rate exceeded' }] });
    expect(fleet.calls.filter((c) => c.region === COPY && c.single)).toHaveLength(20);
    expect(published.filter((p) => p.name === METRIC_NAMES.pitrReplicaLagSeconds)).toHaveLength(20);
  }, 30_000);
});
