import type { BackupRunInput, DrillRunInput } from '../functions/lib/config/targets.ts';
import type { LifeboatConfig, PlanConfig } from '../functions/lib/config/schema.ts';
import { RETENTION_LOCATIONS, type RetentionLocation } from '../functions/lib/retention/environment.ts';

/**
 * Schedule definitions derived from the config: what EventBridge Scheduler sends
 * to the backup state machine for each plan. The CDK source stack, the sample
 * payload in this directory and local runs all build the input here, so the
 * state machine sees the same shape everywhere.
 */

/**
 * The backup state machine's execution input: the plan's id, nothing else
 * (see functions/lib/config/targets.ts). What the plan covers, and every
 * host, secret and setting, come from the deployed config.
 */
export type { BackupRunInput } from '../functions/lib/config/targets.ts';

/** One EventBridge Scheduler schedule that starts the backup state machine for a plan. */
export interface BackupSchedule {
  readonly planId: string;
  /** EventBridge Scheduler expression, e.g. `cron(0 3 * * ? *)`. */
  readonly expression: string;
  /** IANA time zone the expression is evaluated in. */
  readonly timeZone: string;
  /** Flexible time window in minutes; 0 means the schedule fires exactly on time. */
  readonly flexibleWindowMinutes: number;
  readonly input: BackupRunInput;
}

function findPlan(config: LifeboatConfig, planId: string): PlanConfig {
  const plan = config.plans.find((p) => p.id === planId);
  if (!plan) {
    const known = config.plans.map((p) => `"${p.id}"`).join(', ');
    throw new Error(`Unknown plan "${planId}" in config "${config.name}"; known plans: ${known}.`);
  }
  return plan;
}

/** The execution input for one run of a plan's backup (optionally of some of its databases). */
export function backupRunInput(config: LifeboatConfig, planId: string, databaseIds?: readonly string[]): BackupRunInput {
  const plan = findPlan(config, planId);
  return databaseIds && databaseIds.length > 0 ? { planId: plan.id, databaseIds: [...databaseIds] } : { planId: plan.id };
}

/**
 * The drill run's execution input: names only (the plan function builds each
 * database's request from the deployed config). Empty: every database the
 * drills section covers, which is what the drill schedule starts.
 */
export function drillRunInput(options: { databaseIds?: readonly string[]; backupId?: string } = {}): DrillRunInput {
  return {
    ...(options.databaseIds && options.databaseIds.length > 0 ? { databaseIds: [...options.databaseIds] } : {}),
    ...(options.backupId ? { backupId: options.backupId } : {}),
  };
}

/** The schedules the source stack creates: one per plan that takes dumps, snapshots or both. */
export function backupSchedules(config: LifeboatConfig): BackupSchedule[] {
  return config.plans
    .filter((plan) => plan.dump || plan.snapshot)
    .map((plan) => ({
      planId: plan.id,
      expression: plan.schedule.cron,
      timeZone: plan.schedule.timezone,
      flexibleWindowMinutes: plan.schedule.flexibleWindowMinutes,
      input: backupRunInput(config, plan.id),
    }));
}

/** Where retention runs for one database (see functions/lib/retention/run.ts). */
export interface RetentionTarget {
  readonly databaseId: string;
  readonly location: RetentionLocation;
}

/** The retention state machine's execution input (see state-machines/retention.asl.json). */
export interface RetentionRunInput {
  readonly planId: string;
  /** Read by the Map state's `MaxConcurrencyPath`. */
  readonly maxConcurrency: number;
  /** Each (database, location) once: one prune per target at a time. */
  readonly targets: RetentionTarget[];
}

/**
 * The execution input for one retention run of a plan: every database of the
 * plan at every location that has a policy and exists (a copy region only with
 * `snapshots.copy`, the vault only with `vault`). `locations` narrows it, e.g.
 * to run the vault from its own schedule. The policies are not in the input:
 * the retention function reads them from its environment.
 */
export function retentionRunInput(
  config: LifeboatConfig,
  planId: string,
  options: { locations?: readonly RetentionLocation[] } = {},
): RetentionRunInput {
  const plan = findPlan(config, planId);
  const exists: Record<RetentionLocation, boolean> = {
    source: plan.retention.source !== undefined,
    'copy-region': plan.retention.copyRegion !== undefined && config.snapshots?.copy !== undefined,
    vault: plan.retention.vault !== undefined && config.vault !== undefined,
  };
  const locations = RETENTION_LOCATIONS.filter((l) => exists[l] && (options.locations?.includes(l) ?? true));
  const targets = [...new Set(plan.databases)].flatMap((databaseId) => locations.map((location) => ({ databaseId, location })));
  return { planId: plan.id, maxConcurrency: plan.maxConcurrency, targets };
}

/** When retention runs unless told otherwise: daily at 05:30 in the plan's time zone, after the default 04:00 drills. */
export const DEFAULT_RETENTION_CRON = 'cron(30 5 * * ? *)';

export interface RetentionSchedule {
  readonly planId: string;
  readonly expression: string;
  readonly timeZone: string;
  readonly input: RetentionRunInput;
}

/** One retention schedule per plan that has something to prune. */
export function retentionSchedules(
  config: LifeboatConfig,
  options: { expression?: string; locations?: readonly RetentionLocation[] } = {},
): RetentionSchedule[] {
  return config.plans
    .map((plan) => ({
      planId: plan.id,
      expression: options.expression ?? DEFAULT_RETENTION_CRON,
      timeZone: plan.schedule.timezone,
      input: retentionRunInput(config, plan.id, options),
    }))
    .filter((s) => s.input.targets.length > 0);
}

/** Where the source stack prunes; the vault prunes itself (VaultStack). */
export const SOURCE_RETENTION_LOCATIONS = ['source', 'copy-region'] as const;
