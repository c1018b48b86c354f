import type { S3Client } from '@aws-sdk/client-s3';
import { DescribeDBClusterSnapshotsCommand, DescribeDBInstanceAutomatedBackupsCommand, DescribeDBSnapshotsCommand, type DBInstanceAutomatedBackup, type RDSClient } from '@aws-sdk/client-rds';
import { findBackup, listBackupIds } from '../backup/catalog.ts';
import { backupKeys, parseBackupIdTime } from '../backup/manifest.ts';
import { BackupNotFoundError, ConfigError } from '../errors.ts';
import { readManifest } from '../restore/fetch.ts';
import { readPitrWindow } from '../restore/point-in-time.ts';
import { errorName } from './provisioner.ts';
import type { DrillRequest, PitrBackup, Selection } from './types.ts';

/** A bucket and prefix holding dump backups (the source bucket, or the vault's copy). */
export interface BackupLocation {
  s3: S3Client;
  bucket: string;
  prefix: string;
}

export interface SelectionDeps {
  storage: { source: BackupLocation; vault?: BackupLocation };
  /** RDS clients: the source region, the vault's, and the copy region's (PITR drills from replicated automated backups). */
  rds?: { source: RDSClient; vault?: RDSClient; copy?: RDSClient };
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

interface PitrSpan {
  earliest: Date;
  latest: Date;
  retentionDays: number;
  engine: string;
  automatedBackupsArn?: string;
}

/** The window of the source's own automated backups (source region). */
async function sourceSpan(rds: RDSClient, request: DrillRequest, source: string): Promise<PitrSpan> {
  const where = `${source} (database "${request.databaseId}", source region)`;
  let window;
  try {
    window = await readPitrWindow(rds, request.rds!);
  } catch (error) {
    throw new BackupNotFoundError(`The point-in-time window of ${where} could not be read: ${errorName(error)}: ${(error as Error).message}`, {
      nextStep: "check that the instance or cluster exists and the drill role may describe it (rds:DescribeDBInstances, DescribeDBClusters, DescribeDBInstanceAutomatedBackups).",
    });
  }
  if (window.kind === 'aurora' && 'instanceIdentifier' in request.rds!) {
    throw new BackupNotFoundError(`${where} is an instance of Aurora cluster ${window.identifier}: Aurora restores to a moment through its cluster.`, {
      nextStep: `set rds.clusterIdentifier: "${window.identifier}" on database "${request.databaseId}" instead of rds.instanceIdentifier (the drill role is granted the restore on the configured cluster).`,
    });
  }
  if (window.kind === 'multi-az-cluster') {
    throw new BackupNotFoundError(`${where} is an RDS Multi-AZ DB cluster: lifeboat's PITR drills restore RDS instances and Aurora clusters only.`, {
      nextStep: 'drill this database from dumps or snapshots (drills.databases[].backupKind), and restore it to a moment with aws rds restore-db-cluster-to-point-in-time.',
    });
  }
  if (window.retentionDays === 0 || !window.latest || !window.earliest) {
    throw new BackupNotFoundError(
      `${where} has no point-in-time window (BackupRetentionPeriod ${window.retentionDays}${window.latest ? '' : ', no LatestRestorableTime'}).`,
      { nextStep: `turn automated backups on (aws rds modify-db-${'clusterIdentifier' in request.rds! ? 'cluster --db-cluster-identifier' : 'instance --db-instance-identifier'} ${source} --backup-retention-period <days> --apply-immediately); lifeboat pitr status shows the posture.` },
    );
  }
  return { earliest: window.earliest, latest: window.latest, retentionDays: window.retentionDays, engine: window.engine ?? (window.kind === 'aurora' ? 'aurora-postgresql' : 'postgres') };
}

/**
 * The window of the source's automated backups as replicated into the copy
 * region, found there by the source's identifier alone: a drill from the copy
 * region must work without the source region.
 */
async function replicaSpan(rds: RDSClient, request: DrillRequest, source: string): Promise<PitrSpan> {
  const region = request.pitr?.copyRegion ?? 'the copy region';
  const where = `the replicated automated backups of ${source} in ${region} (database "${request.databaseId}")`;
  const found: DBInstanceAutomatedBackup[] = [];
  try {
    let marker: string | undefined;
    do {
      const page = await rds.send(new DescribeDBInstanceAutomatedBackupsCommand({ Marker: marker }));
      found.push(...(page.DBInstanceAutomatedBackups ?? []).filter((b) => b.DBInstanceIdentifier === source && b.Region !== request.pitr?.copyRegion));
      marker = page.Marker;
    } while (marker);
  } catch (error) {
    throw new BackupNotFoundError(`${where} could not be listed: ${errorName(error)}: ${(error as Error).message}`, {
      nextStep: `check the drill role's rds:DescribeDBInstanceAutomatedBackups in ${region}.`,
    });
  }
  // A replica that RDS keeps up to date reads `replicating` in the copy region (`active` is the source region's word).
  const active = found.find((b) => (b.Status === 'replicating' || b.Status === 'active') && b.RestoreWindow?.EarliestTime && b.RestoreWindow.LatestTime && b.DBInstanceAutomatedBackupsArn);
  if (!active) {
    const seen = found.map((b) => b.Status ?? 'unknown').join(', ');
    throw new BackupNotFoundError(`No replica of ${source}'s automated backups with a restore window in ${region}${seen ? ` (found: ${seen})` : ''}: there is nothing to restore there.`, {
      nextStep: 'lifeboat pitr status shows the replication; start it with pitr.manage: true or aws rds start-db-instance-automated-backups-replication (in the copy region).',
    });
  }
  return {
    earliest: active.RestoreWindow!.EarliestTime!,
    latest: active.RestoreWindow!.LatestTime!,
    retentionDays: active.BackupRetentionPeriod ?? 0,
    engine: active.Engine ?? 'postgres',
    automatedBackupsArn: active.DBInstanceAutomatedBackupsArn!,
  };
}

/** The newest committed dump whose consistent point lies inside [earliest, latest]. */
async function dumpInside(request: DrillRequest, deps: SelectionDeps, span: PitrSpan): Promise<{ id: string; manifestKey: string; consistentAt: Date; bucket: string } | undefined> {
  const loc = deps.storage.source;
  const ids = (await listBackupIds(loc.s3, loc.bucket, loc.prefix, request.databaseId)).sort().reverse();
  for (const id of ids) {
    const at = parseBackupIdTime(id);
    // Ids carry the start of the dump, a little before its consistent point.
    if (!at || at.getTime() > span.latest.getTime()) continue;
    if (at.getTime() < span.earliest.getTime() - 3_600_000) break;
    const committed = await findBackup(loc.s3, loc.bucket, loc.prefix, request.databaseId, id).then(() => true, () => false);
    if (!committed) continue;
    const manifestKey = backupKeys(loc.prefix, request.databaseId, id).manifest;
    const consistentAt = new Date((await readManifest(loc.s3, loc.bucket, manifestKey)).consistentAt);
    if (consistentAt >= span.earliest && consistentAt <= span.latest) return { id, manifestKey, consistentAt, bucket: loc.bucket };
  }
  return undefined;
}

/** A moment a little inside the window: its oldest edge moves on while the drill runs. */
const EARLIEST_MARGIN_MS = 15 * 60_000;

/**
 * Chooses the moment a PITR drill restores to: RDS's newest restorable moment,
 * a random second inside the window, or the consistent point of the newest
 * lifeboat dump inside it (so the restore can be compared with its manifest).
 */
async function selectPitr(request: DrillRequest, deps: SelectionDeps): Promise<Chosen> {
  const pitr = request.pitr;
  if (!request.rds || !pitr) throw new ConfigError('drill request', [`pitr: database "${request.databaseId}" is drilled to a point in time but names no RDS instance or cluster, or no pitr settings`]);
  const isCluster = 'clusterIdentifier' in request.rds;
  const source = 'clusterIdentifier' in request.rds ? request.rds.clusterIdentifier : request.rds.instanceIdentifier;
  const fromCopy = pitr.from === 'copy-region';
  const rds = fromCopy ? deps.rds?.copy : deps.rds?.source;
  if (!rds) throw new ConfigError('drill deployment', [`rds: a PITR drill from the ${fromCopy ? 'copy region' : 'source region'} needs an RDS client there${fromCopy ? ' (COPY_REGION)' : ''}`]);
  const span = fromCopy ? await replicaSpan(rds, request, source) : await sourceSpan(rds, request, source);
  let moment: Date;
  let dump: PitrBackup['dump'];
  if (pitr.moment === 'latest') {
    // RDS's own figure, a second before it where the window allows: the API wants a time "before the latest restorable time".
    moment = span.latest.getTime() - 1000 >= span.earliest.getTime() ? new Date(span.latest.getTime() - 1000) : span.latest;
  } else if (pitr.moment === 'random') {
    const width = span.latest.getTime() - span.earliest.getTime();
    const from = span.earliest.getTime() + Math.min(EARLIEST_MARGIN_MS, width / 10);
    moment = new Date(Math.floor((from + deps.random() * (span.latest.getTime() - from)) / 1000) * 1000);
  } else {
    const found = await dumpInside(request, deps, span);
    if (!found) {
      throw new BackupNotFoundError(`No committed dump of database "${request.databaseId}" has its consistent point inside the point-in-time window of ${source} (${span.earliest.toISOString()} to ${span.latest.toISOString()}).`, {
        nextStep: 'run a dump (lifeboat backup) and drill again once RDS has shipped the logs past it (about 5 minutes), or set pitr.drill.moment to latest or random.',
      });
    }
    // The dump's consistent point to the millisecond: rounding it to the second would add or drop up to a second
    // of commits, which on a busy table is more than the row-count check may forgive (docs/aws-fidelity.md: a
    // real account must confirm RDS honours the fraction).
    moment = found.consistentAt;
    dump = { backupId: found.id, bucket: found.bucket, manifestKey: found.manifestKey, from: 'source', consistentAt: found.consistentAt.toISOString() };
  }
  return {
    choice: pitr.moment === 'random' ? 'random' : 'latest',
    candidates: 1,
    // The PITR RPO: how far back the newest restorable moment is when the drill starts.
    newestConsistentAt: span.latest.toISOString(),
    backup: {
      kind: 'pitr',
      backupId: `${source}@${moment.toISOString()}`,
      from: pitr.from,
      ...(fromCopy && pitr.copyRegion ? { region: pitr.copyRegion } : {}),
      isCluster,
      sourceIdentifier: source,
      ...(span.automatedBackupsArn ? { automatedBackupsArn: span.automatedBackupsArn } : {}),
      engine: span.engine,
      moment: pitr.moment,
      consistentAt: moment.toISOString(),
      window: { earliest: span.earliest.toISOString(), latest: span.latest.toISOString(), retentionDays: span.retentionDays },
      ...(dump ? { dump } : {}),
    },
  };
}

/** Chooses the backup a drill restores, with the newest backup's consistent point for the age check. */
export async function selectBackup(request: DrillRequest, deps: SelectionDeps): Promise<Chosen> {
  if (request.backupKind === 'pitr') return selectPitr(request, deps);
  return request.backupKind === 'snapshot' ? selectSnapshot(request, deps) : selectDump(request, deps);
}
