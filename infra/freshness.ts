import type { DrillsConfig, LifeboatConfig, PlanConfig } from '../functions/lib/config/schema.ts';
import { resolveSnapshotSettings } from '../functions/lib/config/schema.ts';

/**
 * How long each staleness alarm waits for its success metric before it
 * alarms. The dump's dead man's switch waits the RPO; the others watch steps
 * whose success lags the backup itself:
 *
 * - a snapshot is a success once it is `available`, which may take up to
 *   `snapshots.maxWaitMinutes` after it was taken; every further copy (the
 *   copy region, the vault) gets a wait of its own;
 * - a dump reaches the vault minutes after it is committed (same run);
 * - a drill reports once a day (or as the schedule says), some time into the
 *   drill run.
 */

/** The alarms beyond the dump's dead man's switch, by what they watch. */
export type FreshnessKind = 'snapshot' | 'vault-dump' | 'vault-snapshot' | 'drill';

export interface FreshnessWatch {
  readonly kind: FreshnessKind;
  /** The plans whose runs produce the success (the first is named in the alert's next step). */
  readonly planIds: readonly string[];
  /** No success for this long alarms. */
  readonly windowMinutes: number;
  /** What the window is made of, for the alarm's description. */
  readonly basis: string;
}

/** What a drill run spends around its restore (select, provision, verify, teardown, report), as DRILL_OVERHEAD in source-stack.ts. */
export const DRILL_RUN_ALLOWANCE_MINUTES = 120;

/** Whether an EventBridge `cron(min hour day-of-month month day-of-week year)` fires on every day (at least once). */
export function runsEveryDay(cron: string): boolean {
  const fields = cron.replace(/^cron\(|\)$/g, '').split(' ');
  const [, , dayOfMonth, month, dayOfWeek, year] = fields;
  const any = (field: string | undefined) => field === '*' || field === '?';
  return fields.length === 6 && any(dayOfMonth) && month === '*' && any(dayOfWeek) && year === '*';
}

/**
 * The drill staleness window in minutes: `drills.lateAfterHours`, else, for a
 * schedule that runs every day, a day plus the flexible window, the restore
 * timeout and the steps around it. `off` when lateAfterHours is false;
 * `unknown` when the schedule is not daily and nothing says how late is late.
 */
export function drillLateMinutes(drills: DrillsConfig): number | 'off' | 'unknown' {
  if (drills.lateAfterHours === false) return 'off';
  if (typeof drills.lateAfterHours === 'number') return drills.lateAfterHours * 60;
  if (!runsEveryDay(drills.schedule.cron)) return 'unknown';
  return 24 * 60 + drills.schedule.flexibleWindowMinutes + drills.restoreTimeoutMinutes + DRILL_RUN_ALLOWANCE_MINUTES;
}

/** How many `snapshots.maxWaitMinutes` waits come before a snapshot success: the source snapshot, then each copy. */
export function snapshotWaits(config: LifeboatConfig, kind: 'snapshot' | 'vault-snapshot'): number {
  return kind === 'snapshot' ? 1 : 1 + (config.snapshots?.copy ? 1 : 0) + 1;
}

/** The windows a plan's runs imply per kind (before taking the tightest over a database's plans). */
export function planFreshnessWindows(config: LifeboatConfig, plan: PlanConfig): Array<{ kind: Exclude<FreshnessKind, 'drill'>; minutes: number; waits: number }> {
  if (!plan.backupAgeAlarm) return [];
  const maxWait = Math.ceil(resolveSnapshotSettings(config.snapshots).maxWaitMinutes);
  const windows: Array<{ kind: Exclude<FreshnessKind, 'drill'>; minutes: number; waits: number }> = [];
  if (plan.snapshot) {
    const waits = snapshotWaits(config, 'snapshot');
    windows.push({ kind: 'snapshot', minutes: plan.rpoMinutes + waits * maxWait, waits });
  }
  if (config.vault && plan.dump) windows.push({ kind: 'vault-dump', minutes: plan.rpoMinutes, waits: 0 });
  if (config.vault && plan.snapshot) {
    const waits = snapshotWaits(config, 'vault-snapshot');
    windows.push({ kind: 'vault-snapshot', minutes: plan.rpoMinutes + waits * maxWait, waits });
  }
  return windows;
}

/**
 * A database's staleness watches: per kind, the tightest window over the plans
 * that produce that success (with their backup-age alarms on), and the drill's
 * when the database is drilled on a schedule.
 */
export function freshnessWatches(config: LifeboatConfig, databaseId: string, drilled: boolean): FreshnessWatch[] {
  const maxWait = Math.ceil(resolveSnapshotSettings(config.snapshots).maxWaitMinutes);
  const byKind = new Map<FreshnessKind, { planIds: string[]; windowMinutes: number; basis: string }>();
  for (const plan of config.plans.filter((p) => p.databases.includes(databaseId))) {
    for (const window of planFreshnessWindows(config, plan)) {
      const seen = byKind.get(window.kind);
      const basis = window.waits > 0 ? `RPO ${plan.rpoMinutes} min plus ${window.waits} × snapshots.maxWaitMinutes (${maxWait} min)` : `RPO ${plan.rpoMinutes} min`;
      if (!seen) byKind.set(window.kind, { planIds: [plan.id], windowMinutes: window.minutes, basis });
      else {
        seen.planIds.push(plan.id);
        if (window.minutes < seen.windowMinutes) Object.assign(seen, { windowMinutes: window.minutes, basis });
      }
    }
  }
  const drillMinutes = config.drills && drilled ? drillLateMinutes(config.drills) : 'off';
  if (typeof drillMinutes === 'number') {
    const planIds = config.plans.filter((p) => p.databases.includes(databaseId)).map((p) => p.id);
    byKind.set('drill', { planIds, windowMinutes: drillMinutes, basis: `drill schedule ${config.drills!.schedule.cron}` });
  }
  return [...byKind].map(([kind, w]) => ({ kind, ...w }));
}
