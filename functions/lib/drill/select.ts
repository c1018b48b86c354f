import type { S3Client } from '@aws-sdk/client-s3';
import { DescribeDBClusterSnapshotsCommand, DescribeDBSnapshotsCommand, type RDSClient } from '@aws-sdk/client-rds';
import { findBackup, listBackupIds } from '../backup/catalog.ts';
import { backupKeys, parseBackupIdTime } from '../backup/manifest.ts';
import { BackupNotFoundError, ConfigError } from '../errors.ts';
import { readManifest } from '../restore/fetch.ts';
import type { DrillRequest, Selection } from './types.ts';

/** A bucket and prefix holding dump backups (the source bucket, or the vault's copy). */
export interface BackupLocation {
  s3: S3Client;
  bucket: string;
  prefix: string;
}

export interface SelectionDeps {
  storage: { source: BackupLocation; vault?: BackupLocation };
  rds?: { source: RDSClient; vault?: RDSClient };
  now: Date;
  /** [0, 1), injectable for tests. */
  random: () => number;
}

type Chosen = Omit<Selection, 'drillId' | 'startedAt' | 'expiresAt'>;

interface Candidate<T> {
  id: string;
  at: Date;
  item: T;
}

/**
 * Picks one candidate: the newest, a random one from the last `days`, or an
 * explicit id. `usable` filters lazily (a dump directory without a manifest is
 * not a backup), so only the candidates actually considered are inspected.
 */
async function choose<T>(
  candidates: Candidate<T>[],
  request: DrillRequest,
  deps: SelectionDeps,
  usable: (c: Candidate<T>) => Promise<boolean>,
  matches: (c: Candidate<T>, id: string) => boolean,
  what: string,
): Promise<{ chosen: Candidate<T>; newest: Candidate<T>; choice: Chosen['choice'] }> {
  const sorted = [...candidates].sort((a, b) => b.at.getTime() - a.at.getTime());
  let newest: Candidate<T> | undefined;
  for (const c of sorted) {
    if (await usable(c)) {
      newest = c;
      break;
    }
  }
  if (!newest) throw new BackupNotFoundError(`No usable ${what} to drill.`, { nextStep: 'run a backup first (`lifeboat backup`), then drill again.' });
  if (request.backupId) {
    const explicit = sorted.find((c) => matches(c, request.backupId!));
    if (!explicit || !(await usable(explicit))) {
      throw new BackupNotFoundError(`Backup ${request.backupId} is not a usable ${what}.`, { nextStep: 'list the backups (`lifeboat backups`) and pick a committed one.' });
    }
    return { chosen: explicit, newest, choice: 'explicit' };
  }
  if (request.selection === 'latest') return { chosen: newest, newest, choice: 'latest' };
  const since = deps.now.getTime() - request.selection.randomWithinDays * 86_400_000;
  const pool = sorted.filter((c) => c.at.getTime() >= since);
  // Fisher-Yates with the injected random source, then the first usable one.
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(deps.random() * (i + 1));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  for (const c of pool) if (await usable(c)) return { chosen: c, newest, choice: 'random' };
  throw new BackupNotFoundError(`No usable ${what} from the last ${request.selection.randomWithinDays} days.`, {
    nextStep: 'check that backups are running, or widen drills.selection.randomWithinDays.',
  });
}

function location<T>(map: { source: T; vault?: T } | undefined, from: DrillRequest['from'], what: string): T {
  const found = map?.[from];
  if (!found) throw new ConfigError('drill deployment', [`${what}: drilling from the ${from} needs its ${from === 'vault' ? 'VAULT_BUCKET/VAULT_REGION' : 'BACKUP_BUCKET'} to be configured`]);
  return found;
}

/**
 * Backup ids have one-second resolution. Where several share a second, their
 * order comes from the manifests' consistent point instead, so "latest" is the
 * newest data, not the id that happens to sort first. Only such ties cost a read.
 */
async function refineSameSecond(candidates: Candidate<string>[], manifestOf: (id: string) => Promise<{ consistentAt: string }>): Promise<void> {
  const bySecond = new Map<number, Candidate<string>[]>();
  for (const c of candidates) bySecond.set(c.at.getTime(), [...(bySecond.get(c.at.getTime()) ?? []), c]);
  for (const group of bySecond.values()) {
    if (group.length < 2) continue;
    for (const c of group) {
      const manifest = await manifestOf(c.id).catch(() => undefined);
      if (manifest) c.at = new Date(manifest.consistentAt);
    }
  }
}

async function selectDump(request: DrillRequest, deps: SelectionDeps): Promise<Chosen> {
  const loc = location(deps.storage, request.from, 'storage');
  const where = `dump backup of database "${request.databaseId}" in s3://${loc.bucket}/${loc.prefix}${request.databaseId}/`;
  const ids = await listBackupIds(loc.s3, loc.bucket, loc.prefix, request.databaseId);
  const candidates = ids.flatMap((id) => {
    const at = parseBackupIdTime(id);
    return at ? [{ id, at, item: id }] : [];
  });
  await refineSameSecond(candidates, (id) => readManifest(loc.s3, loc.bucket, backupKeys(loc.prefix, request.databaseId, id).manifest));
  const committed = new Map<string, boolean>();
  const usable = async (c: Candidate<string>) => {
    if (!committed.has(c.id)) {
      committed.set(c.id, await findBackup(loc.s3, loc.bucket, loc.prefix, request.databaseId, c.id).then(() => true, () => false));
    }
    return committed.get(c.id)!;
  };
  const { chosen, newest, choice } = await choose(candidates, request, deps, usable, (c, id) => c.id === id, where);
  const manifestKey = backupKeys(loc.prefix, request.databaseId, chosen.id).manifest;
  const manifest = await readManifest(loc.s3, loc.bucket, manifestKey);
  const newestManifest = newest.id === chosen.id ? manifest : await readManifest(loc.s3, loc.bucket, backupKeys(loc.prefix, request.databaseId, newest.id).manifest);
  return {
    choice,
    candidates: candidates.length,
    newestConsistentAt: newestManifest.consistentAt,
    backup: {
      kind: 'dump',
      backupId: manifest.backupId,
      from: request.from,
      bucket: loc.bucket,
      prefix: loc.prefix,
      manifestKey,
      consistentAt: manifest.consistentAt,
      databaseName: manifest.database.name,
      serverMajor: Math.floor(manifest.database.serverVersionNum / 10_000),
      sizeBytes: manifest.database.sizeBytes,
    },
  };
}

interface SnapshotItem {
  identifier: string;
  arn: string;
  status: string;
  engine: string;
}

async function listSnapshots(rds: RDSClient, request: DrillRequest): Promise<Candidate<SnapshotItem>[]> {
  const out: Candidate<SnapshotItem>[] = [];
  let marker: string | undefined;
  const rdsRef = request.rds!;
  do {
    if ('clusterIdentifier' in rdsRef) {
      const page = await rds.send(new DescribeDBClusterSnapshotsCommand({ DBClusterIdentifier: rdsRef.clusterIdentifier, SnapshotType: 'manual', Marker: marker }));
      for (const s of page.DBClusterSnapshots ?? []) {
        if (s.DBClusterSnapshotIdentifier && s.DBClusterSnapshotArn && s.SnapshotCreateTime) {
          out.push({ id: s.DBClusterSnapshotIdentifier, at: s.SnapshotCreateTime, item: { identifier: s.DBClusterSnapshotIdentifier, arn: s.DBClusterSnapshotArn, status: s.Status ?? '', engine: s.Engine ?? 'aurora-postgresql' } });
        }
      }
      marker = page.Marker;
    } else {
      const page = await rds.send(new DescribeDBSnapshotsCommand({ DBInstanceIdentifier: rdsRef.instanceIdentifier, SnapshotType: 'manual', Marker: marker }));
      for (const s of page.DBSnapshots ?? []) {
        if (s.DBSnapshotIdentifier && s.DBSnapshotArn && s.SnapshotCreateTime) {
          out.push({ id: s.DBSnapshotIdentifier, at: s.SnapshotCreateTime, item: { identifier: s.DBSnapshotIdentifier, arn: s.DBSnapshotArn, status: s.Status ?? '', engine: s.Engine ?? 'postgres' } });
        }
      }
      marker = page.Marker;
    }
  } while (marker);
  return out;
}

async function selectSnapshot(request: DrillRequest, deps: SelectionDeps): Promise<Chosen> {
  if (!request.rds) throw new ConfigError('drill request', [`rds: database "${request.databaseId}" is drilled from snapshots but names no RDS instance or cluster`]);
  const rds = location(deps.rds, request.from, 'rds');
  const isCluster = 'clusterIdentifier' in request.rds;
  const source = 'clusterIdentifier' in request.rds ? request.rds.clusterIdentifier : request.rds.instanceIdentifier;
  const candidates = await listSnapshots(rds, request);
  const where = `available manual snapshot of ${isCluster ? 'cluster' : 'instance'} ${source} (database "${request.databaseId}", ${request.from})`;
  const { chosen, newest, choice } = await choose(
    candidates,
    request,
    deps,
    async (c) => c.item.status === 'available',
    (c, id) => c.id === id || c.item.arn === id,
    where,
  );
  return {
    choice,
    candidates: candidates.length,
    newestConsistentAt: newest.at.toISOString(),
    backup: {
      kind: 'snapshot',
      backupId: chosen.item.identifier,
      snapshotArn: chosen.item.arn,
      from: request.from,
      isCluster,
      sourceIdentifier: source,
      engine: chosen.item.engine,
      consistentAt: chosen.at.toISOString(),
    },
  };
}

/** Chooses the backup a drill restores, with the newest backup's consistent point for the age check. */
export async function selectBackup(request: DrillRequest, deps: SelectionDeps): Promise<Chosen> {
  return request.backupKind === 'snapshot' ? selectSnapshot(request, deps) : selectDump(request, deps);
}
