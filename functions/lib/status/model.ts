import type { LifeboatConfig } from '../config/schema.ts';

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
}

export type Severity = 'ok' | 'warning' | 'failing';

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

export async function collectStatus(
  config: LifeboatConfig,
  sources: StatusSources,
  now = new Date(),
  /** Problems found while gathering (e.g. the vault could not be read). */
  gatheringProblems: DeploymentStatus['problems'] = [],
): Promise<DeploymentStatus> {
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
