import type { LifeboatConfig } from '../config/schema.ts';
import { errorName } from '../drill/provisioner.ts';
import { pitrTargets, type DatabasePosture, type PitrTarget, type PostureStatus } from '../pitr/posture.ts';

/**
 * What `lifeboat status` knows about one database: its newest backups (source
 * and vault), its drills with measured RTO/RPO against the plan's targets,
 * snapshot quota use, and a verdict that names everything late or failing.
 */
export interface BackupPoint {
  backupId: string;
  /** The data's point in time (the dump's snapshot). */
  consistentAt: string;
  storedBytes: number;
}

export interface DrillPoint {
  drillId: string;
  finishedAt: string;
  backupId?: string;
  passed: boolean;
  rtoSeconds?: number;
  rpoSeconds?: number;
  /** Checks that ran on emulated infrastructure and prove nothing about data. */
  emulated?: boolean;
  failures?: string[];
}

export interface QuotaUse {
  used: number;
  limit: number;
}

/** Where status reads from; each source is optional so partial deployments still report. */
export interface StatusSources {
  backups(databaseId: string): Promise<BackupPoint[]>;
  vaultBackups?(databaseId: string): Promise<BackupPoint[]>;
  drills?(databaseId: string): Promise<DrillPoint[]>;
  snapshotQuota?(): Promise<QuotaUse | undefined>;
  /**
   * The PITR posture of the databases of plans with `pitr`, one result per
   * target in any order: checkPosture (functions/lib/pitr/posture.ts) with
   * `now` as its clock. The targets come with `pitr.manage` off, so the status
   * changes nothing. It should not throw; if it does, every target is shown
   * as unreadable with the error, and the status carries on.
   */
  pitrPosture?(targets: readonly PitrTarget[], now: Date): Promise<DatabasePosture[]>;
}

export type Severity = 'ok' | 'warning' | 'failing';

/**
 * A database of plans with `pitr`: the point-in-time window RDS keeps and the
 * current PITR RPO (now - LatestRestorableTime), against the tightest targets
 * of those plans (the longest windowDays, the shortest maxLagMinutes: the
 * pitr-lag alarm's threshold).
 */
/** The posture check's figures for one database (functions/lib/pitr/posture.ts), as the status shows them. */
export type PitrStatus = Pick<DatabasePosture, 'identifier' | 'region' | 'windowDays' | 'retentionDays' | 'earliest' | 'earliestEstimated' | 'latest' | 'lagSeconds' | 'maxLagMinutes' | 'copyRegion' | 'problems'> & {
  planIds: string[];
  /** The posture check's verdict: `unreadable` when RDS could not be read (the posture is unknown, not ok). */
  state: PostureStatus;
  inPosture: boolean;
  /** `failing` when the PITR RPO is over maxLagMinutes or nothing is restorable; `warning` for other drift and an unreadable posture. */
  severity: Severity;
  /** Why the posture is unreadable (the posture check's sentence, with its fix). */
  unreadable?: string;
};

export interface DatabaseStatus {
  databaseId: string;
  planIds: string[];
  rpoTargetMinutes: number;
  rtoTargetMinutes: number;
  newestBackup?: BackupPoint & { ageMinutes: number };
  newestVaultBackup?: BackupPoint & { ageMinutes: number };
  newestDrill?: DrillPoint;
  newestProvenRestore?: DrillPoint & { ageMinutes: number };
  /** Oldest first, for charts. */
  backupHistory: BackupPoint[];
  drillHistory: DrillPoint[];
  /** Only for databases of plans with `pitr` (when the status could ask RDS). */
  pitr?: PitrStatus;
  problems: { severity: Exclude<Severity, 'ok'>; message: string }[];
  severity: Severity;
}

export interface DeploymentStatus {
  name: string;
  generatedAt: string;
  databases: DatabaseStatus[];
  snapshotQuota?: QuotaUse & { ratio: number };
  problems: { severity: Exclude<Severity, 'ok'>; message: string }[];
  severity: Severity;
}

const minutesBetween = (from: string, to: Date) => Math.max(0, (to.getTime() - new Date(from).getTime()) / 60_000);

function worst(list: { severity: Exclude<Severity, 'ok'> }[]): Severity {
  if (list.some((p) => p.severity === 'failing')) return 'failing';
  return list.length ? 'warning' : 'ok';
}

/** The tightest targets of the plans that back a database up. */
function targetsFor(config: LifeboatConfig, databaseId: string) {
  const plans = config.plans.filter((p) => p.databases.includes(databaseId));
  return {
    planIds: plans.map((p) => p.id),
    rpo: Math.min(...plans.map((p) => p.rpoMinutes), Number.POSITIVE_INFINITY),
    rto: Math.min(...plans.map((p) => p.rtoMinutes), Number.POSITIVE_INFINITY),
  };
}

/**
 * One posture target per database of the pitr plans, with the tightest
 * targets of those plans: the longest windowDays, the shortest maxLagMinutes,
 * copy-region replication if any plan wants it. `manage` is off: the status
 * reads, it never starts a replication.
 */
export function statusPitrTargets(config: LifeboatConfig): Map<string, { target: PitrTarget; planIds: string[] }> {
  const byDatabase = new Map<string, { target: PitrTarget; planIds: string[] }>();
  for (const t of pitrTargets(config)) {
    const seen = byDatabase.get(t.databaseId);
    if (!seen) {
      byDatabase.set(t.databaseId, { target: { ...t, pitr: { ...t.pitr, manage: false } }, planIds: [t.planId] });
      continue;
    }
    const longer = t.pitr.windowDays > seen.target.pitr.windowDays;
    seen.planIds.push(t.planId);
    seen.target = {
      ...seen.target,
      // The plan named in a short-window problem is the one that wants the longest window.
      planId: longer ? t.planId : seen.target.planId,
      pitr: {
        ...seen.target.pitr,
        windowDays: Math.max(seen.target.pitr.windowDays, t.pitr.windowDays),
        maxLagMinutes: Math.min(seen.target.pitr.maxLagMinutes, t.pitr.maxLagMinutes),
        copyRegion: seen.target.pitr.copyRegion || t.pitr.copyRegion,
      },
    };
  }
  return byDatabase;
}

/** The PITR posture of every pitr database, by id; a source that throws makes each of them unreadable, never the status fail. */
async function readPitrPostures(
  targets: Map<string, { target: PitrTarget; planIds: string[] }>,
  source: NonNullable<StatusSources['pitrPosture']>,
  now: Date,
): Promise<Map<string, DatabasePosture>> {
  const list = [...targets.values()].map((t) => t.target);
  if (list.length === 0) return new Map();
  let postures: DatabasePosture[];
  try {
    postures = await source(list, now);
  } catch (error) {
    const why = `${errorName(error) || 'Error'}: ${((error as Error)?.message ?? String(error)).split('\n')[0]}`;
    postures = [];
    for (const t of list) {
      const identifier = 'instanceIdentifier' in t.ref ? t.ref.instanceIdentifier : t.ref.clusterIdentifier;
      postures.push({
        databaseId: t.databaseId,
        planId: t.planId,
        identifier,
        region: t.region,
        status: 'unreadable',
        windowDays: t.pitr.windowDays,
        maxLagMinutes: t.pitr.maxLagMinutes,
        problems: [`Database "${t.databaseId}" (${identifier}, ${t.region}): its point-in-time posture could not be read (${why}); the posture is unknown, not ok. Fix: run \`lifeboat pitr status --database ${t.databaseId}\` with credentials that may read it.`],
      });
    }
  }
  return new Map(postures.map((p) => [p.databaseId, p]));
}

/**
 * The PITR part of a database's status and its problems. A PITR RPO over
 * maxLagMinutes, or a readable window with no restorable moment at all, fails
 * the database (its point-in-time RPO is broken); any other drift, and an
 * unreadable posture, is a warning. Every problem of the posture check is
 * listed, each with its fix, at that one severity.
 */
function pitrPart(posture: DatabasePosture | undefined, planIds: string[], target: PitrTarget): { pitr: PitrStatus; problems: DatabaseStatus['problems'] } {
  if (!posture) {
    // The source answered for other databases but not this one: unknown, not ok.
    posture = {
      databaseId: target.databaseId,
      planId: target.planId,
      identifier: 'instanceIdentifier' in target.ref ? target.ref.instanceIdentifier : target.ref.clusterIdentifier,
      region: target.region,
      status: 'unreadable',
      windowDays: target.pitr.windowDays,
      maxLagMinutes: target.pitr.maxLagMinutes,
      problems: [`Database "${target.databaseId}": the posture check gave no result for it; the posture is unknown, not ok. Fix: run \`lifeboat pitr status --database ${target.databaseId}\`.`],
    };
  }
  const pitr: PitrStatus = {
    planIds,
    identifier: posture.identifier,
    region: posture.region,
    state: posture.status,
    inPosture: posture.status === 'ok',
    severity: 'ok',
    ...(posture.status === 'unreadable' ? { unreadable: posture.problems.find((p) => /could not be (read|listed)/.test(p)) ?? posture.problems[0] ?? 'the posture check gave no reason' } : {}),
    windowDays: posture.windowDays,
    ...(posture.retentionDays !== undefined ? { retentionDays: posture.retentionDays } : {}),
    ...(posture.earliest ? { earliest: posture.earliest } : {}),
    ...(posture.earliestEstimated ? { earliestEstimated: true } : {}),
    ...(posture.latest ? { latest: posture.latest } : {}),
    ...(posture.lagSeconds !== undefined ? { lagSeconds: posture.lagSeconds } : {}),
    maxLagMinutes: posture.maxLagMinutes,
    ...(posture.copyRegion ? { copyRegion: posture.copyRegion } : {}),
    problems: posture.problems,
  };
  if (pitr.inPosture) return { pitr, problems: [] };
  const windowRead = posture.kind !== undefined;
  const lagOver = pitr.lagSeconds !== undefined && pitr.lagSeconds > pitr.maxLagMinutes * 60;
  const noMoment = windowRead && pitr.lagSeconds === undefined;
  const severity = lagOver || noMoment ? 'failing' : 'warning';
  pitr.severity = severity;
  const label = posture.status === 'unreadable' ? 'PITR unreadable' : 'PITR';
  const problems = (posture.problems.length > 0 ? posture.problems : [`the posture is ${posture.status}`]).map((message) => ({ severity, message: `${label}: ${message}` }) as const);
  return { pitr, problems };
}

export async function collectStatus(
  config: LifeboatConfig,
  sources: StatusSources,
  now = new Date(),
  /** Problems found while gathering (e.g. the vault could not be read). */
  gatheringProblems: DeploymentStatus['problems'] = [],
): Promise<DeploymentStatus> {
  const pitrTargetsById = sources.pitrPosture ? statusPitrTargets(config) : new Map<string, { target: PitrTarget; planIds: string[] }>();
  const postures = sources.pitrPosture ? await readPitrPostures(pitrTargetsById, sources.pitrPosture, now) : new Map<string, DatabasePosture>();
  const databases = await Promise.all(
    config.databases.map(async (db): Promise<DatabaseStatus> => {
      const targets = targetsFor(config, db.id);
      const [backups, vault, drills] = await Promise.all([
        sources.backups(db.id),
        sources.vaultBackups ? sources.vaultBackups(db.id) : Promise.resolve(undefined),
        sources.drills ? sources.drills(db.id) : Promise.resolve(undefined),
      ]);
      const byTime = (a: { consistentAt: string }, b: { consistentAt: string }) => a.consistentAt.localeCompare(b.consistentAt);
      const backupHistory = [...backups].sort(byTime);
      const drillHistory = [...(drills ?? [])].sort((a, b) => a.finishedAt.localeCompare(b.finishedAt));
      const newest = backupHistory.at(-1);
      const newestVault = vault?.length ? [...vault].sort(byTime).at(-1) : undefined;
      const newestDrill = drillHistory.at(-1);
      const proven = [...drillHistory].reverse().find((d) => d.passed && !d.emulated);
      const problems: DatabaseStatus['problems'] = [];
      const newestBackup = newest ? { ...newest, ageMinutes: minutesBetween(newest.consistentAt, now) } : undefined;
      if (targets.planIds.length === 0) problems.push({ severity: 'warning', message: 'no plan backs this database up' });
      if (!newestBackup) problems.push({ severity: 'failing', message: 'no committed backup' });
      else if (newestBackup.ageMinutes > targets.rpo) {
        problems.push({ severity: 'failing', message: `newest backup is ${Math.round(newestBackup.ageMinutes)} min old, RPO target ${targets.rpo} min` });
      }
      const newestVaultBackup = newestVault ? { ...newestVault, ageMinutes: minutesBetween(newestVault.consistentAt, now) } : undefined;
      if (vault !== undefined) {
        if (!newestVaultBackup) problems.push({ severity: 'failing', message: 'no backup in the vault' });
        else if (newestVaultBackup.ageMinutes > targets.rpo) {
          problems.push({ severity: 'warning', message: `newest vault copy is ${Math.round(newestVaultBackup.ageMinutes)} min old, RPO target ${targets.rpo} min` });
        }
      }
      if (drills !== undefined) {
        if (!newestDrill) problems.push({ severity: 'warning', message: 'never restored by a drill: this database has no proven backup' });
        else if (!newestDrill.passed) problems.push({ severity: 'failing', message: `last drill failed: ${(newestDrill.failures ?? []).join('; ') || 'see its report'}` });
        else {
          if (newestDrill.rtoSeconds !== undefined && newestDrill.rtoSeconds > targets.rto * 60) {
            problems.push({ severity: 'failing', message: `measured RTO ${Math.round(newestDrill.rtoSeconds / 60)} min exceeds target ${targets.rto} min` });
          }
          if (newestDrill.rpoSeconds !== undefined && newestDrill.rpoSeconds > targets.rpo * 60) {
            problems.push({ severity: 'failing', message: `measured RPO ${Math.round(newestDrill.rpoSeconds / 60)} min exceeds target ${targets.rpo} min` });
          }
        }
      }
      const pitrTarget = pitrTargetsById.get(db.id);
      const pitr = pitrTarget ? pitrPart(postures.get(db.id), pitrTarget.planIds, pitrTarget.target) : undefined;
      if (pitr) problems.push(...pitr.problems);
      return {
        databaseId: db.id,
        planIds: targets.planIds,
        rpoTargetMinutes: targets.rpo,
        rtoTargetMinutes: targets.rto,
        newestBackup,
        newestVaultBackup,
        newestDrill,
        newestProvenRestore: proven ? { ...proven, ageMinutes: minutesBetween(proven.finishedAt, now) } : undefined,
        backupHistory,
        drillHistory,
        ...(pitr ? { pitr: pitr.pitr } : {}),
        problems,
        severity: worst(problems),
      };
    }),
  );
  const quota = sources.snapshotQuota ? await sources.snapshotQuota() : undefined;
  const problems: DeploymentStatus['problems'] = [...gatheringProblems];
  const snapshotQuota = quota ? { ...quota, ratio: quota.limit > 0 ? quota.used / quota.limit : 1 } : undefined;
  if (snapshotQuota && snapshotQuota.ratio >= 0.9) {
    problems.push({ severity: snapshotQuota.ratio >= 1 ? 'failing' : 'warning', message: `manual snapshot quota ${snapshotQuota.used}/${snapshotQuota.limit} used` });
  }
  return {
    name: config.name,
    generatedAt: now.toISOString(),
    databases,
    snapshotQuota,
    problems,
    severity: worst([...problems, ...databases.flatMap((d) => d.problems)]),
  };
}
