import { DescribeDBInstanceAutomatedBackupsCommand, StartDBInstanceAutomatedBackupsReplicationCommand, type DBInstanceAutomatedBackup, type RDSClient } from '@aws-sdk/client-rds';
import type { LifeboatConfig, PitrConfig } from '../config/schema.ts';
import { errorName } from '../drill/provisioner.ts';
import { readPitrWindow, type PitrWindow, type RdsRef } from '../restore/point-in-time.ts';

/**
 * The point-in-time recovery posture of a plan's RDS instances and Aurora
 * clusters (plans with a `pitr` section): is the window RDS keeps as long as
 * the plan wants, how far behind now is the newest restorable moment (the
 * PITR RPO), and, for instances with `pitr.copyRegion`, are their automated
 * backups replicated to the copy region, kept as long, under the configured
 * key. With `pitr.manage` a missing replication is started.
 *
 * The window itself is read by readPitrWindow (functions/lib/restore/point-in-time.ts),
 * the same reader `lifeboat recover` uses. A read that fails is a problem of
 * its own (status `unreadable`), never a crash of the whole check and never
 * "ok". Results are small and JSON-serialisable: they travel in Step
 * Functions payloads (at most MAX_PROBLEMS problems of at most
 * MAX_PROBLEM_CHARS characters per database).
 */

export const MAX_PROBLEMS = 4;
export const MAX_PROBLEM_CHARS = 600;

/** One database of one pitr plan, as the check sees it. */
export interface PitrTarget {
  databaseId: string;
  planId: string;
  ref: RdsRef;
  /** The region of the database's source. */
  region: string;
  pitr: PitrConfig;
  /** The copy region and its key (snapshots.copy), when the config has one. */
  copy?: { region: string; kmsKeyArn: string };
}

export type PostureStatus = 'ok' | 'drift' | 'unreadable';

/** Replication of automated backups to the copy region, as found (or started). */
export interface CopyRegionPosture {
  region: string;
  /**
   * `replicating`: an active replication of this instance's backups is there (retention and key as wanted, else a problem says so);
   * `starting`: RDS is creating it; `started`: this check started it (manage); `missing`; `unreadable`;
   * `not-available`: Aurora and Multi-AZ DB clusters have no automated-backup replication.
   */
  state: 'replicating' | 'starting' | 'started' | 'missing' | 'unreadable' | 'not-available';
  retentionDays?: number;
  kmsKeyArn?: string;
  /** The replica's newest restorable moment (its RestoreWindow.LatestTime), when `replicating`. */
  latest?: string;
  /** now - latest: how far the copy region's window trails now (the PITR RPO if the source region is lost). */
  lagSeconds?: number;
}

/**
 * Lag the copy region's replica may have beyond pitr.maxLagMinutes. AWS gives
 * no figure for how far replicated automated backups trail their source (the
 * RDS User Guide, "Replicating automated backups to another AWS Region", says
 * only that RDS starts copying snapshots and transaction logs once they are
 * ready on the instance), so there is no allowance: the replica is held to
 * maxLagMinutes like the source. Docs: docs/config.md (pitr), docs/runbooks.md.
 */
export const REPLICA_LAG_ALLOWANCE_MINUTES = 0;

/** The most the copy region's newest restorable moment may trail now, in seconds (check and pitr-replica-lag alarm alike). */
export const replicaMaxLagSeconds = (pitr: Pick<PitrConfig, 'maxLagMinutes'>): number => (pitr.maxLagMinutes + REPLICA_LAG_ALLOWANCE_MINUTES) * 60;

export interface DatabasePosture {
  databaseId: string;
  planId: string;
  kind?: PitrWindow['kind'];
  identifier: string;
  region: string;
  status: PostureStatus;
  /** Wanted: pitr.windowDays. */
  windowDays: number;
  /** Found: BackupRetentionPeriod. */
  retentionDays?: number;
  earliest?: string;
  /** The oldest moment is lifeboat's estimate (RDS gave none). */
  earliestEstimated?: boolean;
  latest?: string;
  /** now - LatestRestorableTime: the current PITR RPO. */
  lagSeconds?: number;
  maxLagMinutes: number;
  /** Only for plans with copyRegion, or clusters (where it is not available). */
  copyRegion?: CopyRegionPosture;
  /** One clear sentence each: database, instance/cluster, region, found, wanted, fix. */
  problems: string[];
  /** What the check changed (manage). */
  actions?: string[];
}

export interface PostureDeps {
  /** An RDS client of a region (the source's, the copy region's). */
  rds: (region: string) => RDSClient;
  now?: () => Date;
}

export interface PostureOptions {
  /** `full` (backup runs, the CLI): everything, starting replication with manage. `lag` (the frequent watch): the window and lag only, nothing changed. @default 'full' */
  mode?: 'full' | 'lag';
}

/** The plans' pitr databases, narrowed to a plan and/or database; the region is the database's source's. */
export function pitrTargets(config: LifeboatConfig, filter: { planId?: string; databaseId?: string } = {}): PitrTarget[] {
  const copy = config.snapshots?.copy ? { region: config.snapshots.copy.region, kmsKeyArn: config.snapshots.copy.kmsKeyArn } : undefined;
  return config.plans
    .filter((plan) => plan.pitr && (filter.planId === undefined || plan.id === filter.planId))
    .flatMap((plan) =>
      plan.databases
        .filter((id) => filter.databaseId === undefined || id === filter.databaseId)
        .flatMap((id) => {
          const database = config.databases.find((d) => d.id === id);
          if (!database?.rds) return [];
          const region = database.source && database.source !== config.source.id ? (config.additionalSources.find((s) => s.id === database.source)?.region ?? config.source.region) : config.source.region;
          return [{ databaseId: id, planId: plan.id, ref: database.rds, region, pitr: plan.pitr!, ...(copy ? { copy } : {}) }];
        }),
    );
}

const clip = (text: string) => (text.length <= MAX_PROBLEM_CHARS ? text : `${text.slice(0, MAX_PROBLEM_CHARS - 3)}...`);
const minutes = (seconds: number) => `${Math.round(seconds / 60)} min`;

function describeFailure(error: unknown): string {
  const name = errorName(error) || 'Error';
  const message = (error as Error)?.message ?? '';
  return clip(message && message !== name ? `${name}: ${message.split('\n')[0]}` : name);
}

/** The fix for a failed read, by what failed. */
function readFix(error: unknown, what: string, region: string, identifier: string, instance: boolean): string {
  const name = errorName(error);
  if (/NotFound/.test(name)) return `check rds.${instance ? 'instanceIdentifier' : 'clusterIdentifier'} "${identifier}" and the database's source region (${region})`;
  if (/AccessDenied|UnauthorizedOperation|NotAuthorized/.test(name)) return `grant ${what} to the role running the check (redeploy the source stack, which grants it to the posture function; for the CLI, your own credentials)`;
  if (/Throttl|TooManyRequests|RequestLimitExceeded/.test(name)) return 'RDS throttled the reads even after retries: the next run reads again; if it persists, raise the RDS API quota or spread the plans';
  return 'check the RDS API in that region and the role\'s permissions, then run `lifeboat pitr status` again';
}

/** The replicated backups of this instance in the copy region (its DbiResourceId), newest status first. */
export function replicationOf(backups: readonly DBInstanceAutomatedBackup[], window: Pick<PitrWindow, 'resourceId' | 'identifier'>, sourceRegion: string): DBInstanceAutomatedBackup | undefined {
  // The source's DbiResourceId is unique (a deleted namesake had another); its identifier and Region must agree too.
  const mine = backups.filter(
    (b) => (!window.resourceId || b.DbiResourceId === window.resourceId) && (!b.DBInstanceIdentifier || b.DBInstanceIdentifier === window.identifier) && (!b.Region || b.Region === sourceRegion),
  );
  const rank = (s: string | undefined) => (s === 'replicating' || s === 'active' ? 0 : s === 'creating' || s === 'pending' ? 1 : 2);
  return mine.sort((a, b) => rank(a.Status) - rank(b.Status))[0];
}

/** Key ARNs and ids compare by their key id (RDS may answer either form). */
const sameKey = (a: string | undefined, b: string) => a !== undefined && (a === b || a.split('/').pop() === b.split('/').pop());

/** The posture of one database; never throws. */
export async function checkDatabasePosture(deps: PostureDeps, target: PitrTarget, options: PostureOptions = {}): Promise<DatabasePosture> {
  const mode = options.mode ?? 'full';
  const now = (deps.now ?? (() => new Date()))();
  const instance = 'instanceIdentifier' in target.ref;
  const identifier = instance ? (target.ref as { instanceIdentifier: string }).instanceIdentifier : (target.ref as { clusterIdentifier: string }).clusterIdentifier;
  const { pitr, region, databaseId } = target;
  const problems: string[] = [];
  const actions: string[] = [];
  const noun = instance ? 'instance' : 'cluster';
  const base = { databaseId, planId: target.planId, identifier, region, windowDays: pitr.windowDays, maxLagMinutes: pitr.maxLagMinutes };
  const about = `Database "${databaseId}" (${noun} ${identifier}, ${region})`;
  let unreadable = false;

  let window: PitrWindow;
  try {
    window = await readPitrWindow(deps.rds(region), target.ref);
  } catch (error) {
    const read = instance ? 'rds:DescribeDBInstances' : 'rds:DescribeDBClusters';
    return {
      ...base,
      status: 'unreadable',
      problems: [clip(`${about}: its point-in-time window could not be read (${describeFailure(error)}); the posture is unknown, not ok. Fix: ${readFix(error, read, region, identifier, instance)}.`)],
    };
  }
  const cluster = window.kind !== 'instance';
  const modify = cluster
    ? `aws rds modify-db-cluster --region ${region} --db-cluster-identifier ${window.identifier} --backup-retention-period ${pitr.windowDays} --apply-immediately`
    : `aws rds modify-db-instance --region ${region} --db-instance-identifier ${window.identifier} --backup-retention-period ${pitr.windowDays} --apply-immediately`;
  const through = window.identifier !== identifier ? ` (through its cluster ${window.identifier})` : '';

  if (window.retentionDays === 0) {
    problems.push(`${about}${through} keeps no automated backups (BackupRetentionPeriod 0), so it has no point-in-time window; wanted ${pitr.windowDays} days. Fix: ${modify}.`);
  } else if (window.retentionDays < pitr.windowDays) {
    problems.push(`${about}${through} keeps automated backups for ${window.retentionDays} days; the plan "${target.planId}" wants a point-in-time window of ${pitr.windowDays} days. Fix: ${modify}.`);
  }
  if (window.earliestEstimated) {
    const failed = window.earliestEstimated.startsWith('DescribeDBInstanceAutomatedBackups failed');
    if (failed) unreadable = true;
    if (window.retentionDays > 0) {
      problems.push(
        failed
          ? `${about}: its automated backups could not be listed (${window.earliestEstimated}), so the oldest restorable moment is unconfirmed. Fix: grant rds:DescribeDBInstanceAutomatedBackups on the instance to the role running the check.`
          : `${about}: RDS lists no active automated backup of the instance although BackupRetentionPeriod is ${window.retentionDays}, so its window is unconfirmed. Fix: check aws rds describe-db-instance-automated-backups --region ${region} --db-instance-identifier ${identifier}; a new instance gets one after its first backup.`,
      );
    }
  }
  const latest = window.latest;
  const lagSeconds = latest ? Math.max(0, Math.round((now.getTime() - latest.getTime()) / 1000)) : undefined;
  if (window.retentionDays > 0 && lagSeconds === undefined) {
    problems.push(`${about}${through}: RDS reports no newest restorable moment (LatestRestorableTime), so the PITR RPO is unknown; wanted at most ${pitr.maxLagMinutes} min behind now. Fix: check the ${noun}'s status and its RDS events (aws rds describe-events --region ${region} --source-identifier ${window.identifier}).`);
  } else if (lagSeconds !== undefined && lagSeconds > pitr.maxLagMinutes * 60) {
    const stopped = window.status === 'stopped';
    problems.push(
      `${about}${through}: the newest restorable moment is ${latest!.toISOString()}, ${minutes(lagSeconds)} behind now (the PITR RPO); wanted at most ${pitr.maxLagMinutes} min (pitr.maxLagMinutes). Fix: ${
        stopped
          ? `the ${noun} is stopped, so nothing newer is restorable: start it (aws rds start-db-${cluster ? 'cluster' : 'instance'} --region ${region} --${cluster ? 'db-cluster' : 'db-instance'}-identifier ${window.identifier}) or take it out of the plan`
          : `RDS is not shipping transaction logs: check the ${noun}'s status (${window.status ?? 'unknown'}), storage and RDS events (aws rds describe-events --region ${region} --source-identifier ${window.identifier})`
      }.`,
    );
  }

  let copyRegion: CopyRegionPosture | undefined;
  if (cluster) {
    copyRegion = { region: target.copy?.region ?? '-', state: 'not-available' };
    if (pitr.copyRegion) {
      problems.push(
        `${about}: ${window.kind === 'aurora' ? 'Aurora' : 'a Multi-AZ DB cluster'} has no automated-backup replication, so pitr.copyRegion cannot hold for ${window.identifier}; its copies in ${target.copy?.region ?? 'the copy region'} rely on snapshot copies. Fix: move the database to a plan without pitr.copyRegion and take snapshots (snapshot: true with snapshots.copy).`,
      );
    }
  } else if (pitr.copyRegion && mode === 'full') {
    const copy = target.copy;
    if (!copy) {
      copyRegion = { region: '-', state: 'missing' };
      problems.push(`${about}: pitr.copyRegion is on but the config has no snapshots.copy (region and kmsKeyArn). Fix: set snapshots.copy.region and its customer managed kmsKeyArn.`);
    } else {
      copyRegion = await checkReplication(deps, target, window, copy, problems, actions, about, now);
      if (copyRegion.state === 'unreadable') unreadable = true;
    }
  }

  const status: PostureStatus = unreadable ? 'unreadable' : problems.length > 0 ? 'drift' : 'ok';
  return {
    ...base,
    kind: window.kind,
    status,
    retentionDays: window.retentionDays,
    ...(window.earliest ? { earliest: window.earliest.toISOString() } : {}),
    ...(window.earliestEstimated ? { earliestEstimated: true } : {}),
    ...(latest ? { latest: latest.toISOString() } : {}),
    ...(lagSeconds !== undefined ? { lagSeconds } : {}),
    ...(copyRegion ? { copyRegion } : {}),
    problems: capProblems(problems.map(clip)),
    ...(actions.length > 0 ? { actions: actions.map(clip) } : {}),
  };
}

function capProblems(problems: string[]): string[] {
  if (problems.length <= MAX_PROBLEMS) return problems;
  return [...problems.slice(0, MAX_PROBLEMS - 1), `... and ${problems.length - MAX_PROBLEMS + 1} more problems: run \`lifeboat pitr status\` for all of them.`];
}

/** A replicated backup's newest restorable moment and how far it trails `now`; undefined without a RestoreWindow.LatestTime. */
export function replicaLag(backup: Pick<DBInstanceAutomatedBackup, 'RestoreWindow'>, now: Date): { latest: string; lagSeconds: number } | undefined {
  const latest = backup.RestoreWindow?.LatestTime;
  if (!latest) return undefined;
  return { latest: latest.toISOString(), lagSeconds: Math.max(0, Math.round((now.getTime() - latest.getTime()) / 1000)) };
}

function replicaFix(copyRegion: string, sourceRegion: string, identifier: string, kmsKeyArn: string): string {
  return (
    `if the source's own newest restorable moment lags too, fix that first; otherwise the replication is stalled: read the RDS events of ${identifier} in both regions ` +
    `(aws rds describe-events --region ${sourceRegion} --source-identifier ${identifier} --source-type db-instance, and the same with --region ${copyRegion}), ` +
    `check that the copy key ${kmsKeyArn} is enabled and RDS may use it, and see docs/runbooks.md, "PITR posture drift"`
  );
}

async function checkReplication(
  deps: PostureDeps,
  target: PitrTarget,
  window: PitrWindow,
  copy: { region: string; kmsKeyArn: string },
  problems: string[],
  actions: string[],
  about: string,
  now: Date,
): Promise<CopyRegionPosture> {
  const { pitr, region } = target;
  const copyRds = deps.rds(copy.region);
  const sourceArn = window.arn ?? `the instance's ARN`;
  const start = `aws rds start-db-instance-automated-backups-replication --region ${copy.region} --source-db-instance-arn ${sourceArn} --backup-retention-period ${pitr.windowDays} --kms-key-id ${copy.kmsKeyArn}`;
  const stop = `aws rds stop-db-instance-automated-backups-replication --region ${copy.region} --source-db-instance-arn ${sourceArn}`;
  let found: DBInstanceAutomatedBackup | undefined;
  try {
    const backups: DBInstanceAutomatedBackup[] = [];
    let marker: string | undefined;
    do {
      const page = await copyRds.send(
        new DescribeDBInstanceAutomatedBackupsCommand(window.resourceId ? { DbiResourceId: window.resourceId, Marker: marker } : { Marker: marker }),
      );
      backups.push(...(page.DBInstanceAutomatedBackups ?? []));
      marker = page.Marker;
    } while (marker);
    found = replicationOf(backups, window, region);
  } catch (error) {
    // Filtered by DbiResourceId, RDS answers DBInstanceAutomatedBackupNotFound(Fault) when the region holds none: no replica, not an unreadable one.
    if (!/^DBInstanceAutomatedBackupNotFound/.test(errorName(error))) return unreadableReplication(error);
  }
  return replicationState();

  function unreadableReplication(error: unknown): CopyRegionPosture {
    problems.push(
      `${about}: its replicated automated backups in ${copy.region} could not be read (${describeFailure(error)}); the copy-region window is unknown, not ok. Fix: ${readFix(error, `rds:DescribeDBInstanceAutomatedBackups in ${copy.region}`, copy.region, window.identifier, true)}.`,
    );
    return { region: copy.region, state: 'unreadable' };
  }

  async function replicationState(): Promise<CopyRegionPosture> {
  if (found && ['replicating', 'active', 'creating', 'pending'].includes(found.Status ?? '')) {
    const state = found.Status === 'creating' || found.Status === 'pending' ? 'starting' : 'replicating';
    const retentionDays = found.BackupRetentionPeriod;
    if (retentionDays !== undefined && retentionDays < pitr.windowDays) {
      problems.push(
        `${about}: its automated backups replicated to ${copy.region} are kept ${retentionDays} days; wanted ${pitr.windowDays} (pitr.windowDays). Fix: replace the replication (this drops the replica's window): ${stop}, then ${start}.`,
      );
    }
    if (!sameKey(found.KmsKeyId, copy.kmsKeyArn)) {
      problems.push(
        `${about}: its automated backups replicated to ${copy.region} are encrypted with ${found.KmsKeyId ?? 'no customer managed key'}; wanted ${copy.kmsKeyArn} (snapshots.copy.kmsKeyArn). Fix: replace the replication: ${stop}, then ${start}.`,
      );
    }
    const replica = state === 'replicating' ? replicaLag(found, now) : undefined;
    if (state === 'replicating' && !replica) {
      problems.push(
        `${about}: its automated backups replicated to ${copy.region} show no newest restorable moment (RestoreWindow.LatestTime), so how much the copy region could restore is unknown; wanted at most ${pitr.maxLagMinutes} min behind now. Fix: ${replicaFix(copy.region, region, window.identifier, copy.kmsKeyArn)}.`,
      );
    } else if (replica && replica.lagSeconds > replicaMaxLagSeconds(pitr)) {
      problems.push(
        `${about}: the newest restorable moment of its automated backups replicated to ${copy.region} is ${replica.latest}, ${minutes(replica.lagSeconds)} behind now; wanted at most ${pitr.maxLagMinutes} min (pitr.maxLagMinutes), as that is all ${copy.region} can restore if ${region} is lost. Fix: ${replicaFix(copy.region, region, window.identifier, copy.kmsKeyArn)}.`,
      );
    }
    return {
      region: copy.region,
      state,
      ...(retentionDays !== undefined ? { retentionDays } : {}),
      ...(found.KmsKeyId ? { kmsKeyArn: found.KmsKeyId } : {}),
      ...(replica ? { latest: replica.latest, lagSeconds: replica.lagSeconds } : {}),
    };
  }
  const seen = found ? ` (RDS lists one with status ${found.Status ?? 'unknown'})` : '';
  if (!pitr.manage) {
    problems.push(`${about}: its automated backups are not replicated to ${copy.region}${seen}; wanted replicated for ${pitr.windowDays} days under ${copy.kmsKeyArn}. Fix: ${start} (or set pitr.manage: true and lifeboat starts it).`);
    return { region: copy.region, state: 'missing' };
  }
  if (!window.arn) {
    problems.push(`${about}: its automated backups are not replicated to ${copy.region}${seen}, and RDS gave no instance ARN to start the replication from. Fix: ${start}.`);
    return { region: copy.region, state: 'missing' };
  }
  try {
    const out = await copyRds.send(new StartDBInstanceAutomatedBackupsReplicationCommand({ SourceDBInstanceArn: window.arn, BackupRetentionPeriod: pitr.windowDays, KmsKeyId: copy.kmsKeyArn }));
    actions.push(`started replicating the automated backups of ${window.identifier} (${region}) to ${copy.region}: ${pitr.windowDays} days under ${copy.kmsKeyArn}${out.DBInstanceAutomatedBackup?.Status ? ` (status ${out.DBInstanceAutomatedBackup.Status})` : ''}`);
    return { region: copy.region, state: 'started', retentionDays: pitr.windowDays, kmsKeyArn: copy.kmsKeyArn };
  } catch (error) {
    problems.push(
      `${about}: its automated backups are not replicated to ${copy.region}, and starting the replication failed (${describeFailure(error)}). Fix: ${
        /KMS|Kms/.test(errorName(error)) ? `let the role and RDS use the key ${copy.kmsKeyArn} (kms:CreateGrant, kms:DescribeKey), then ` : /AccessDenied/.test(errorName(error)) ? 'grant rds:StartDBInstanceAutomatedBackupsReplication (redeploy with pitr.manage), or ' : ''
      }${start}.`,
    );
    return { region: copy.region, state: 'missing' };
  }
  }
}

export interface PlanPosture {
  checked: number;
  ok: number;
  drifting: number;
  unreadable: number;
  databases: DatabasePosture[];
}

export interface CheckPostureOptions extends PostureOptions {
  /** Databases read at once. @default 4 */
  concurrency?: number;
  /** Each database's posture as soon as it is known (e.g. to publish its metrics before a time limit). */
  onResult?: (posture: DatabasePosture) => void;
  /**
   * Aborted (e.g. shortly before the function's timeout): no further database
   * is started; those not started are `unreadable` ("not checked in time"),
   * so the run still returns what it has instead of timing out with nothing.
   */
  signal?: AbortSignal;
}

/** Checks each target, a few at a time (RDS throttles bursts); never throws. */
export async function checkPosture(deps: PostureDeps, targets: readonly PitrTarget[], options: CheckPostureOptions = {}): Promise<PlanPosture> {
  const results: DatabasePosture[] = new Array(targets.length);
  let next = 0;
  const worker = async () => {
    while (next < targets.length) {
      const i = next++;
      const target = targets[i]!;
      results[i] = options.signal?.aborted ? notCheckedInTime(target) : await checkDatabasePosture(deps, target, options);
      options.onResult?.(results[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 4, targets.length) }, worker));
  return {
    checked: results.length,
    ok: results.filter((r) => r.status === 'ok').length,
    drifting: results.filter((r) => r.status === 'drift').length,
    unreadable: results.filter((r) => r.status === 'unreadable').length,
    databases: results,
  };
}

/** A database the check had no time left for: unknown, so never ok. */
function notCheckedInTime(target: PitrTarget): DatabasePosture {
  const instance = 'instanceIdentifier' in target.ref;
  const identifier = 'instanceIdentifier' in target.ref ? target.ref.instanceIdentifier : target.ref.clusterIdentifier;
  return {
    databaseId: target.databaseId,
    planId: target.planId,
    identifier,
    region: target.region,
    status: 'unreadable',
    windowDays: target.pitr.windowDays,
    maxLagMinutes: target.pitr.maxLagMinutes,
    problems: [
      `Database "${target.databaseId}" (${instance ? 'instance' : 'cluster'} ${identifier}, ${target.region}): not checked, the posture check ran out of time before reaching it (RDS slow or throttling); the posture is unknown, not ok. Fix: run \`lifeboat pitr status --database ${target.databaseId}\`; if it keeps happening, spread the databases over more plans.`,
    ],
  };
}

/** Databases named in a workflow payload or alert: at most this many. */
export const MAX_LISTED_DATABASES = 20;

export interface PostureSummary {
  planId: string;
  checked: number;
  ok: number;
  drifting: number;
  unreadable: number;
  /** drifting + unreadable: whether the run raises the pitr-posture alert. */
  notInPosture: number;
  /** The first problem of each database not in posture, capped at MAX_LISTED_DATABASES. */
  problems: Array<{ databaseId: string; status: PostureStatus; problem: string }>;
  /** Replications this check started (database ids, capped). */
  started: string[];
  /** For the alert task: `{ Error, Cause }` as a state machine's Catch would pass, present when not every database is in posture. */
  alert?: { Error: string; Cause: string };
}

/** The run's short account (Step Functions payload): counts and capped lists, plus the alert's text when something drifts. */
export function summarisePosture(planId: string, posture: PlanPosture): PostureSummary {
  const bad = posture.databases.filter((d) => d.status !== 'ok');
  const problems = bad.slice(0, MAX_LISTED_DATABASES).map((d) => ({ databaseId: d.databaseId, status: d.status, problem: d.problems[0] ?? d.status }));
  const started = posture.databases.filter((d) => d.copyRegion?.state === 'started').map((d) => d.databaseId).slice(0, MAX_LISTED_DATABASES);
  const summary: PostureSummary = { planId, checked: posture.checked, ok: posture.ok, drifting: posture.drifting, unreadable: posture.unreadable, notInPosture: bad.length, problems, started };
  if (bad.length > 0) summary.alert = postureAlertText(planId, posture);
  return summary;
}

/** The pitr-posture alert's failure and text: which databases, their first problem (capped), and the next step. */
export function postureAlertText(planId: string, posture: PlanPosture): { Error: string; Cause: string } {
  const bad = posture.databases.filter((d) => d.status !== 'ok');
  const listed = bad.slice(0, 10).map((d) => `- ${d.databaseId}: ${d.problems[0] ?? d.status}`);
  const more = bad.length > listed.length ? [`- ... and ${bad.length - listed.length} more`] : [];
  const counts = [posture.drifting && `${posture.drifting} drifting`, posture.unreadable && `${posture.unreadable} unreadable`].filter(Boolean).join(', ');
  const what = `${bad.length} of ${posture.checked} databases of plan "${planId}" are not in their point-in-time recovery posture (${counts}):\n${[...listed, ...more].join('\n')}`;
  const next = `run \`lifeboat pitr status --plan ${planId}\` for every problem and its fix, apply the fixes (docs/runbooks.md, "PITR posture drift"), then run it again until it exits 0.`;
  return { Error: posture.unreadable > 0 && posture.drifting === 0 ? 'PitrPostureUnreadable' : 'PitrPostureDrift', Cause: `${what}\nNext step: ${next}` };
}
