import type { DatabaseConfig, LifeboatConfig, PlanConfig } from '../functions/lib/config/schema.ts';

/**
 * Schedule definitions derived from the config: what EventBridge Scheduler sends
 * to the backup state machine for each plan. The CDK source stack, the sample
 * payload in this directory and local runs all build the input here, so the
 * state machine sees the same shape everywhere.
 */

/** The backup state machine's execution input (see state-machines/backup.asl.json). */
export interface BackupRunInput {
  readonly planId: string;
  /** Read by the Map state's `MaxConcurrencyPath`. */
  readonly maxConcurrency: number;
  /** The plan's databases, in the plan's order, as parsed (defaults filled) by the config schema. */
  readonly databases: DatabaseConfig[];
}

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

/**
 * The execution input for one run of a plan's backup. Payloads carry no secrets:
 * a database's credentials stay in Secrets Manager and only the secret's ARN travels.
 */
export function backupRunInput(config: LifeboatConfig, planId: string): BackupRunInput {
  const plan = findPlan(config, planId);
  const databases = plan.databases.map((databaseId, index) => {
    const database = config.databases.find((d) => d.id === databaseId);
    if (!database) {
      throw new Error(
        `Plan "${plan.id}" lists unknown database "${databaseId}" (plans[].databases[${index}]); validate the config with parseConfig first.`,
      );
    }
    return database;
  });
  return { planId: plan.id, maxConcurrency: plan.maxConcurrency, databases };
}

/**
 * The schedules the source stack creates: one per plan that takes dumps.
 * Snapshot-only plans get no dump schedule (snapshots are a later workflow).
 */
export function backupSchedules(config: LifeboatConfig): BackupSchedule[] {
  return config.plans
    .filter((plan) => plan.dump)
    .map((plan) => ({
      planId: plan.id,
      expression: plan.schedule.cron,
      timeZone: plan.schedule.timezone,
      flexibleWindowMinutes: plan.schedule.flexibleWindowMinutes,
      input: backupRunInput(config, plan.id),
    }));
}
