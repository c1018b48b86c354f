import {
  DescribeDBClustersCommand,
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  type DBCluster,
  type DBInstance,
  type DBInstanceAutomatedBackup,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorName } from '../drill/provisioner.ts';
import { replicaLag, replicationOf, type PitrTarget } from './posture.ts';

/**
 * The PITR lag watch (every 5 minutes, functions/pitr/handler.ts action
 * `watch`), built for fleets: it reads windows from region-wide listings, not
 * per database. Per region of the databases' sources:
 *
 * 1. DescribeDBInstances, paginated (100 a page): LatestRestorableTime, BackupRetentionPeriod,
 *    DbiResourceId of every instance; each watched database's lag is handed to
 *    the sink as soon as its page arrives.
 * 2. DescribeDBClusters, paginated, when a watched database is a cluster or a
 *    cluster member: LatestRestorableTime and EarliestRestorableTime.
 * 3. Per copy region (plans with `pitr.copyRegion`): DescribeDBInstanceAutomatedBackups,
 *    paginated: each replica's RestoreWindow.LatestTime, matched to its source
 *    by DbiResourceId, handed over as the replica lag.
 * 4. DescribeDBInstanceAutomatedBackups in the source region, paginated: the
 *    oldest restorable moment of instances, for PitrWindowSeconds (not alarmed:
 *    last, and skipped if it fails).
 *
 * So a watch costs a few pages per region however many databases it covers.
 * A page that fails is asked again (PAGE_ATTEMPTS, on top of the SDK's own
 * retries); a listing that still fails falls back to one read per database it
 * did not reach, a few at a time. When the signal aborts (shortly before the
 * function's timeout) everything stops: what was handed over stays published.
 * A database not published (not listed, not readable, no time left) is
 * reported, and its own alarm fires on the missing data: that one only.
 */

/** Where each figure goes as soon as it is known (the handler publishes it as a metric). */
export interface WatchSink {
  /** now - LatestRestorableTime (the PITR RPO). */
  lag(databaseId: string, seconds: number): void;
  /** LatestRestorableTime - the oldest restorable moment, both RDS's own. */
  window(databaseId: string, seconds: number): void;
  /** now - the copy region's RestoreWindow.LatestTime. */
  replicaLag(databaseId: string, seconds: number): void;
}

export interface WatchDeps {
  rds: (region: string) => RDSClient;
  now?: () => Date;
  /** Aborts every read in flight and stops the watch (the handler sets it from the function's remaining time). */
  signal?: AbortSignal;
  /** MaxRecords of each page (RDS allows 20-100). @default 100 */
  pageSize?: number;
  /** Reads at once when a listing failed and databases are read one by one. @default 4 */
  fallbackConcurrency?: number;
  /** Pause before asking for a failed page again, by attempt (1, 2, ...). @default 1 s, 2 s, ... */
  retryPauseMs?: (attempt: number) => number;
}

/** Attempts per page before a listing is given up (each with the SDK's own retries). */
export const PAGE_ATTEMPTS = 3;
/** At most this many unpublished databases are named in the report (the counts are exact). */
export const MAX_REPORTED = 50;

export type WatchMetric = 'lag' | 'replica-lag';

export interface WatchReport {
  /** Databases watched. */
  checked: number;
  /** Databases whose lag was handed over. */
  published: number;
  /** Databases of plans with copyRegion, and how many of their replica lags were handed over. */
  replicaWatched: number;
  replicaPublished: number;
  windowsPublished: number;
  /** RDS requests made (pages and single reads; the SDK's own retries not counted). */
  rdsCalls: number;
  /** The signal aborted before everything was read. */
  stoppedEarly: boolean;
  /** How many databases were left without each alarmed metric. */
  unpublishedCount: number;
  /** Why, for the first MAX_REPORTED of them. */
  unpublished: Array<{ databaseId: string; metric: WatchMetric; reason: string }>;
  /** Listings that failed after their attempts (their databases were then read one by one, as time allowed). */
  failedListings: Array<{ region: string; action: string; error: string }>;
}

const describeError = (error: unknown) => {
  const name = errorName(error) || 'Error';
  const message = ((error as Error)?.message ?? '').split('\n')[0]!;
  return (message && message !== name ? `${name}: ${message}` : name).slice(0, 300);
};
const lower = (s: string) => s.toLowerCase();
const secondsBetween = (later: Date, earlier: Date) => Math.max(0, Math.round((later.getTime() - earlier.getTime()) / 1000));

type ReadCommand = DescribeDBInstancesCommand | DescribeDBClustersCommand | DescribeDBInstanceAutomatedBackupsCommand;

class Stopped extends Error {
  override name = 'WatchStopped';
}

/** The figures of one database's source, however they were read. */
interface SourceWindow {
  kind: 'instance' | 'cluster';
  identifier: string;
  retentionDays: number;
  latest?: Date;
  /** Clusters only (instances: from their automated backups). */
  earliest?: Date;
  resourceId?: string;
}

/** Watches the lag of each target (one per database) and hands each figure to the sink as soon as it is known; never throws. */
export async function watchPitrLag(deps: WatchDeps, targets: readonly PitrTarget[], sink: WatchSink): Promise<WatchReport> {
  const now = deps.now ?? (() => new Date());
  const pageSize = deps.pageSize ?? 100;
  const pause = deps.retryPauseMs ?? ((attempt: number) => attempt * 1000);
  const report: WatchReport = { checked: targets.length, published: 0, replicaWatched: 0, replicaPublished: 0, windowsPublished: 0, rdsCalls: 0, stoppedEarly: false, unpublishedCount: 0, unpublished: [], failedListings: [] };
  const lagDone = new Set<string>();
  const replicaDone = new Set<string>();
  const failures = new Map<string, { metric: WatchMetric; reason: string }>();

  const send = async <T>(region: string, command: ReadCommand): Promise<T> => {
    if (deps.signal?.aborted) throw new Stopped('stopped');
    report.rdsCalls += 1;
    try {
      const client = deps.rds(region) as unknown as { send(command: ReadCommand, options?: { abortSignal?: AbortSignal }): Promise<unknown> };
      return (await client.send(command, deps.signal ? { abortSignal: deps.signal } : undefined)) as T;
    } catch (error) {
      if (deps.signal?.aborted) throw new Stopped('stopped');
      throw error;
    }
  };

  /** Every page of a listing, each handed to onPage; a page is asked again PAGE_ATTEMPTS times. Returns the error that ended it early, if any. */
  const listAll = async <T>(region: string, action: string, page: (marker: string | undefined) => ReadCommand, items: (out: T) => { items: unknown[]; marker?: string }, onPage: (items: unknown[]) => void): Promise<unknown> => {
    let marker: string | undefined;
    do {
      let out: T | undefined;
      for (let attempt = 1; out === undefined; attempt++) {
        try {
          out = await send<T>(region, page(marker));
        } catch (error) {
          if (error instanceof Stopped) throw error;
          if (attempt >= PAGE_ATTEMPTS) {
            report.failedListings.push({ region, action, error: describeError(error) });
            return error;
          }
          try {
            await sleep(pause(attempt), undefined, { signal: deps.signal });
          } catch {
            throw new Stopped('stopped');
          }
        }
      }
      const { items: found, marker: next } = items(out);
      onPage(found);
      marker = next;
    } while (marker);
    return undefined;
  };

  /** Why a database's metric is not published (the first reason, unless `replace`: a later, more precise one). */
  const fail = (databaseId: string, metric: WatchMetric, reason: string, replace = false) => {
    if (replace || !failures.has(`${metric}:${databaseId}`)) failures.set(`${metric}:${databaseId}`, { metric, reason });
  };

  const publishLag = (target: PitrTarget, source: SourceWindow) => {
    const noun = `${source.kind} ${source.identifier}`;
    if (source.retentionDays === 0) return fail(target.databaseId, 'lag', `${noun} keeps no automated backups (BackupRetentionPeriod 0)`);
    if (!source.latest) return fail(target.databaseId, 'lag', `RDS reports no LatestRestorableTime for ${noun}`);
    if (lagDone.has(target.databaseId)) return;
    lagDone.add(target.databaseId);
    failures.delete(`lag:${target.databaseId}`);
    sink.lag(target.databaseId, secondsBetween(now(), source.latest));
    if (source.kind === 'cluster' && source.earliest) {
      sink.window(target.databaseId, secondsBetween(source.latest, source.earliest));
      report.windowsPublished += 1;
    }
  };

  const instanceWindow = (i: DBInstance, identifier: string): SourceWindow => ({
    kind: 'instance',
    identifier,
    retentionDays: i.BackupRetentionPeriod ?? 0,
    ...(i.LatestRestorableTime ? { latest: i.LatestRestorableTime } : {}),
    ...(i.DbiResourceId ? { resourceId: i.DbiResourceId } : {}),
  });
  const clusterWindow = (c: DBCluster, identifier: string): SourceWindow => ({
    kind: 'cluster',
    identifier,
    retentionDays: c.BackupRetentionPeriod ?? 0,
    ...(c.LatestRestorableTime ? { latest: c.LatestRestorableTime } : {}),
    ...(c.EarliestRestorableTime ? { earliest: c.EarliestRestorableTime } : {}),
  });

  const byRegion = new Map<string, PitrTarget[]>();
  for (const t of targets) byRegion.set(t.region, [...(byRegion.get(t.region) ?? []), t]);
  /** Instances (not cluster members) whose lag was read, for their replica and window: target → what was read. */
  const instancesRead = new Map<PitrTarget, SourceWindow>();

  try {
    for (const [region, regionTargets] of byRegion) {
      const instanceTargets = new Map<string, PitrTarget[]>();
      const clusterTargets = new Map<string, PitrTarget[]>();
      for (const t of regionTargets) {
        const [map, id] = 'instanceIdentifier' in t.ref ? [instanceTargets, t.ref.instanceIdentifier] : [clusterTargets, t.ref.clusterIdentifier];
        map.set(lower(id), [...(map.get(lower(id)) ?? []), t]);
      }
      /** Instance targets that turned out to be cluster members: cluster id → targets. */
      const members = new Map<string, PitrTarget[]>();
      const seenInstances = new Set<string>();
      const onInstance = (i: DBInstance) => {
        const id = lower(i.DBInstanceIdentifier ?? '');
        const watched = instanceTargets.get(id);
        if (!watched) return;
        seenInstances.add(id);
        if (i.DBClusterIdentifier) {
          const cluster = lower(i.DBClusterIdentifier);
          members.set(cluster, [...(members.get(cluster) ?? []), ...watched]);
          return;
        }
        const window = instanceWindow(i, i.DBInstanceIdentifier!);
        for (const t of watched) {
          instancesRead.set(t, window);
          publishLag(t, window);
        }
      };
      const clusters = new Map<string, DBCluster>();
      const onCluster = (c: DBCluster) => {
        const id = lower(c.DBClusterIdentifier ?? '');
        clusters.set(id, c);
        for (const t of [...(clusterTargets.get(id) ?? []), ...(members.get(id) ?? [])]) publishLag(t, clusterWindow(c, c.DBClusterIdentifier!));
      };

      // 1. Instances.
      let instancesFailed: unknown;
      if (instanceTargets.size > 0) {
        instancesFailed = await listAll<{ DBInstances?: DBInstance[]; Marker?: string }>(
          region,
          'DescribeDBInstances',
          (marker) => new DescribeDBInstancesCommand({ MaxRecords: pageSize, ...(marker ? { Marker: marker } : {}) }),
          (out) => ({ items: out.DBInstances ?? [], marker: out.Marker }),
          (items) => (items as DBInstance[]).forEach(onInstance),
        );
      }
      // 2. Clusters, when a watched database is one or belongs to one.
      let clustersFailed: unknown;
      if (clusterTargets.size > 0 || members.size > 0) {
        clustersFailed = await listAll<{ DBClusters?: DBCluster[]; Marker?: string }>(
          region,
          'DescribeDBClusters',
          (marker) => new DescribeDBClustersCommand({ MaxRecords: pageSize, ...(marker ? { Marker: marker } : {}) }),
          (out) => ({ items: out.DBClusters ?? [], marker: out.Marker }),
          (items) => (items as DBCluster[]).forEach(onCluster),
        );
      }
      const notListed = (listing: string) => `not in the region's ${listing} listing (${region}): check rds.* of the database and its source region`;
      for (const [id, watched] of instanceTargets) if (!instancesFailed && !seenInstances.has(id)) for (const t of watched) fail(t.databaseId, 'lag', `instance ${id} ${notListed('DescribeDBInstances')}`);
      for (const [id, watched] of [...clusterTargets, ...members]) if (!clustersFailed && !clusters.has(id)) for (const t of watched) fail(t.databaseId, 'lag', `cluster ${id} ${notListed('DescribeDBClusters')}`);

      // A listing that failed: the databases it did not reach, one by one, while time allows.
      const unread: Array<{ kind: 'instance' | 'cluster'; id: string; watched: PitrTarget[]; cause: unknown }> = [
        ...(instancesFailed ? [...instanceTargets].filter(([id]) => !seenInstances.has(id)).map(([id, watched]) => ({ kind: 'instance' as const, id, watched, cause: instancesFailed })) : []),
        ...(clustersFailed ? [...clusterTargets, ...members].filter(([id]) => !clusters.has(id)).map(([id, watched]) => ({ kind: 'cluster' as const, id, watched, cause: clustersFailed })) : []),
      ];
      const failedReason = (error: unknown) => `its window could not be read (${describeError(error)})`;
      for (const { watched, cause } of unread) for (const t of watched) fail(t.databaseId, 'lag', failedReason(cause));
      await eachLimited(unread, deps.fallbackConcurrency ?? 4, async ({ kind, id, watched }) => {
        try {
          if (kind === 'instance') {
            const i = (await send<{ DBInstances?: DBInstance[] }>(region, new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances?.[0];
            if (!i) return;
            if (!i.DBClusterIdentifier) return onInstance(i);
            const clusterId = lower(i.DBClusterIdentifier);
            const cluster = clusters.get(clusterId) ?? (await send<{ DBClusters?: DBCluster[] }>(region, new DescribeDBClustersCommand({ DBClusterIdentifier: clusterId }))).DBClusters?.[0];
            if (cluster) for (const t of watched) publishLag(t, clusterWindow(cluster, cluster.DBClusterIdentifier ?? clusterId));
            return;
          }
          const cluster = (await send<{ DBClusters?: DBCluster[] }>(region, new DescribeDBClustersCommand({ DBClusterIdentifier: id }))).DBClusters?.[0];
          if (cluster) onCluster(cluster);
        } catch (error) {
          if (error instanceof Stopped) throw error;
          for (const t of watched) fail(t.databaseId, 'lag', failedReason(error), true);
        }
      });
    }

    // 3. The copy region's replicas of the instances of plans with copyRegion.
    const replicated = targets.filter((t) => t.pitr.copyRegion && 'instanceIdentifier' in t.ref);
    report.replicaWatched = replicated.length;
    const byCopyRegion = new Map<string, PitrTarget[]>();
    for (const t of replicated) {
      if (!t.copy) fail(t.databaseId, 'replica-lag', 'the config has no snapshots.copy region');
      else if (!instancesRead.has(t)) fail(t.databaseId, 'replica-lag', 'its source instance was not read (or is an Aurora cluster member, which has no automated-backup replication), so no replica could be matched');
      else byCopyRegion.set(t.copy.region, [...(byCopyRegion.get(t.copy.region) ?? []), t]);
    }
    for (const [copyRegion, watched] of byCopyRegion) {
      const backups: DBInstanceAutomatedBackup[] = [];
      const failed = await listAll<{ DBInstanceAutomatedBackups?: DBInstanceAutomatedBackup[]; Marker?: string }>(
        copyRegion,
        'DescribeDBInstanceAutomatedBackups',
        (marker) => new DescribeDBInstanceAutomatedBackupsCommand({ MaxRecords: pageSize, ...(marker ? { Marker: marker } : {}) }),
        (out) => ({ items: out.DBInstanceAutomatedBackups ?? [], marker: out.Marker }),
        (items) => backups.push(...(items as DBInstanceAutomatedBackup[])),
      );
      const judge = (t: PitrTarget, found: readonly DBInstanceAutomatedBackup[]) => {
        const source = instancesRead.get(t)!;
        const replica = replicationOf(found, { identifier: source.identifier, resourceId: source.resourceId }, t.region);
        if (!replica) return fail(t.databaseId, 'replica-lag', `no replicated automated backups of instance ${source.identifier} in ${copyRegion}`, true);
        if (replica.Status !== 'replicating' && replica.Status !== 'active') return fail(t.databaseId, 'replica-lag', `its replica in ${copyRegion} is ${replica.Status ?? 'of unknown status'}, not replicating`, true);
        const lag = replicaLag(replica, now());
        if (!lag) return fail(t.databaseId, 'replica-lag', `its replica in ${copyRegion} shows no RestoreWindow.LatestTime`, true);
        if (replicaDone.has(t.databaseId)) return;
        replicaDone.add(t.databaseId);
        failures.delete(`replica-lag:${t.databaseId}`);
        sink.replicaLag(t.databaseId, lag.lagSeconds);
      };
      if (!failed) {
        for (const t of watched) judge(t, backups);
        continue;
      }
      for (const t of watched) fail(t.databaseId, 'replica-lag', `the replicas in ${copyRegion} could not be listed (${describeError(failed)})`);
      await eachLimited(watched, deps.fallbackConcurrency ?? 4, async (t) => {
        const resourceId = instancesRead.get(t)!.resourceId;
        if (!resourceId) return;
        try {
          const out = await send<{ DBInstanceAutomatedBackups?: DBInstanceAutomatedBackup[] }>(copyRegion, new DescribeDBInstanceAutomatedBackupsCommand({ DbiResourceId: resourceId }));
          judge(t, out.DBInstanceAutomatedBackups ?? []);
        } catch (error) {
          if (error instanceof Stopped) throw error;
          if (/^DBInstanceAutomatedBackupNotFound/.test(errorName(error))) judge(t, []);
          else fail(t.databaseId, 'replica-lag', `its replica in ${copyRegion} could not be read (${describeError(error)})`, true);
        }
      });
    }

    // 4. The oldest restorable moment of instances (PitrWindowSeconds): not alarmed, so last and best effort.
    const windowsByRegion = new Map<string, Array<[PitrTarget, SourceWindow]>>();
    for (const [t, w] of instancesRead) if (w.latest && w.resourceId) windowsByRegion.set(t.region, [...(windowsByRegion.get(t.region) ?? []), [t, w]]);
    for (const [region, watched] of windowsByRegion) {
      const earliest = new Map<string, Date>();
      await listAll<{ DBInstanceAutomatedBackups?: DBInstanceAutomatedBackup[]; Marker?: string }>(
        region,
        'DescribeDBInstanceAutomatedBackups',
        (marker) => new DescribeDBInstanceAutomatedBackupsCommand({ MaxRecords: pageSize, ...(marker ? { Marker: marker } : {}) }),
        (out) => ({ items: out.DBInstanceAutomatedBackups ?? [], marker: out.Marker }),
        (items) => {
          for (const b of items as DBInstanceAutomatedBackup[]) if (b.Status === 'active' && b.DbiResourceId && b.RestoreWindow?.EarliestTime) earliest.set(b.DbiResourceId, b.RestoreWindow.EarliestTime);
        },
      );
      for (const [t, w] of watched) {
        const from = earliest.get(w.resourceId!);
        if (!from) continue;
        sink.window(t.databaseId, secondsBetween(w.latest!, from));
        report.windowsPublished += 1;
      }
    }
  } catch (error) {
    if (!(error instanceof Stopped)) throw error;
    report.stoppedEarly = true;
  }

  report.published = lagDone.size;
  report.replicaPublished = replicaDone.size;
  const missing: WatchReport['unpublished'] = [];
  for (const t of targets) {
    if (!lagDone.has(t.databaseId)) missing.push({ databaseId: t.databaseId, metric: 'lag', reason: failures.get(`lag:${t.databaseId}`)?.reason ?? 'not read: the watch stopped before its time limit' });
    if (t.pitr.copyRegion && 'instanceIdentifier' in t.ref && !replicaDone.has(t.databaseId)) {
      missing.push({ databaseId: t.databaseId, metric: 'replica-lag', reason: failures.get(`replica-lag:${t.databaseId}`)?.reason ?? 'not read: the watch stopped before its time limit' });
    }
  }
  report.unpublishedCount = missing.length;
  report.unpublished = missing.slice(0, MAX_REPORTED);
  return report;
}

/** Runs `fn` over the items, `limit` at a time; the first Stopped ends it (the others finish their current item). */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let stopped: unknown;
  const worker = async () => {
    while (next < items.length && !stopped) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        stopped = error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (stopped) throw stopped;
}
