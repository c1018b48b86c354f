import { retentionPolicySchema, type RetentionPolicy } from '../config/schema.ts';
import { RetentionInputError } from './errors.ts';

/**
 * The pure retention planner: given the backups at ONE location, a grandfather-
 * father-son policy, the current time and the plan's time zone, decide for every
 * backup whether to keep or delete it, and why.
 *
 * Pure: no I/O, no clock (`now` is an argument), and the result depends only on
 * the set of backups, never on their order (ties on time are broken by id).
 *
 * ## Semantics
 *
 * Backups dated after `now` (clock skew) are always kept and take no part in the
 * rules below, so a bogus far-future backup can never take a slot (or the
 * "newest" title) away from a real one. Everything else is "eligible", and a
 * backup is kept when at least one of these holds (each adds a reason):
 *
 * - `newest backup`: the newest eligible backup.
 * - `newest backup proven by a drill`: the newest eligible backup with
 *   `verifiedByDrill`.
 * - `last N`: among the N newest eligible backups (`keepLast`).
 * - `daily|weekly|monthly|yearly <period>`: GFS buckets, computed on the wall
 *   clock of `timeZone` (weeks are ISO 8601 weeks, Monday first, labelled with the
 *   ISO week-year, e.g. `2027-W53`). For each rule with count N, take the calendar
 *   periods that contain at least one eligible backup, and keep the newest backup
 *   of each of the N latest such periods. Periods without a backup do not use up
 *   the count (restic/borg "keep-daily N" semantics, not "the last N calendar
 *   days"). The rules are independent: a backup kept by one rule still counts as
 *   the representative of its period for the others (restic's semantics; borg
 *   instead skips archives already kept by an earlier rule).
 *   "Latest" periods are by calendar order of the period, not by the order in
 *   which backups were seen, so the result is well defined even where a
 *   time-zone transition moves the local date backwards.
 * - `under Object Lock until <iso>` / `under an Object Lock legal hold`: S3 would
 *   refuse the delete anyway, so it is never planned.
 * - `younger than minimum age (N d)`: `now - time < minAgeDays * 24 h`.
 *
 * Otherwise the decision is `delete` with the single reason `beyond policy`.
 *
 * Removing backups from the input never turns a keep into a delete for the
 * backups that remain (every rule is monotone), which makes the plan idempotent:
 * planning only the kept set deletes nothing. The property tests check both.
 */

export interface RetentionBackup {
  /** Backup id, unique within the location. */
  id: string;
  /** The consistent point of the backup (manifest `consistentAt`). */
  time: Date;
  /** Where the backup is stored, e.g. `source`, `copy`, `vault`. */
  location: string;
  /** A restore drill has proven this backup. */
  verifiedByDrill: boolean;
  /** Latest Object Lock retain-until date over the backup's objects. */
  lockedUntil?: Date;
  /** Any of the backup's objects has an Object Lock legal hold. */
  legalHold?: boolean;
}

export type RetentionAction = 'keep' | 'delete';

export interface RetentionDecision {
  id: string;
  location: string;
  time: Date;
  action: RetentionAction;
  /** Why; never empty. */
  reasons: string[];
}

export type GfsRule = 'daily' | 'weekly' | 'monthly' | 'yearly';
export const GFS_RULES: readonly GfsRule[] = ['daily', 'weekly', 'monthly', 'yearly'];

const DAY_MS = 86_400_000;
/** Planner accepts times in years 1000..9999 (four-digit years on every wall clock). */
const MIN_TIME = Date.UTC(1000, 0, 2);
const MAX_TIME = Date.UTC(9999, 11, 30);

// ---------------------------------------------------------------------------
// Wall-clock calendar in a time zone
// ---------------------------------------------------------------------------

export interface LocalDate {
  year: number;
  month: number;
  day: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function dateFormatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        calendar: 'gregory',
        numberingSystem: 'latn',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
      });
    } catch (cause) {
      throw new RetentionInputError(`Unknown time zone "${timeZone}" for retention planning.`, {
        cause,
        nextStep: 'set plan.schedule.timezone to an IANA time zone such as Europe/Berlin.',
      });
    }
    formatters.set(timeZone, f);
  }
  return f;
}

const US_DATE = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/;

/** Wall-clock date of `ms` in the formatter's time zone. */
function localDateOf(f: Intl.DateTimeFormat, ms: number): LocalDate {
  // `format` + a fixed pattern is about twice as fast as `formatToParts`; fall back
  // to the parts if a future ICU ever changes the en-US short date shape.
  const m = US_DATE.exec(f.format(ms));
  if (m) return { year: +m[3]!, month: +m[1]!, day: +m[2]! };
  let year = NaN;
  let month = NaN;
  let day = NaN;
  for (const p of f.formatToParts(ms)) {
    if (p.type === 'year') year = +p.value;
    else if (p.type === 'month') month = +p.value;
    else if (p.type === 'day') day = +p.value;
  }
  return { year, month, day };
}

/** The wall-clock date of `time` in `timeZone`. */
export function localDate(time: Date, timeZone: string): LocalDate {
  return localDateOf(dateFormatter(timeZone), time.getTime());
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** ISO 8601 week-year and week of a calendar date. */
export function isoWeek(d: LocalDate): { year: number; week: number } {
  const dayNum = Math.floor(Date.UTC(d.year, d.month - 1, d.day) / DAY_MS);
  const mondayBased = (((dayNum + 3) % 7) + 7) % 7; // 1970-01-01 was a Thursday (3)
  // The ISO week belongs to the year of its Thursday, which is at most 3 days away.
  const thursday = dayNum - mondayBased + 3;
  let year = d.year;
  let jan1 = Math.floor(Date.UTC(year, 0, 1) / DAY_MS);
  if (thursday < jan1) {
    year -= 1;
    jan1 = Math.floor(Date.UTC(year, 0, 1) / DAY_MS);
  } else {
    const nextJan1 = Math.floor(Date.UTC(year + 1, 0, 1) / DAY_MS);
    if (thursday >= nextJan1) {
      year += 1;
      jan1 = nextJan1;
    }
  }
  return { year, week: Math.floor((thursday - jan1) / 7) + 1 };
}

/** Sortable numeric key of the period containing a wall-clock date. */
function periodKey(rule: GfsRule, d: LocalDate): number {
  switch (rule) {
    case 'daily':
      return d.year * 10_000 + d.month * 100 + d.day;
    case 'weekly': {
      const w = isoWeek(d);
      return w.year * 100 + w.week;
    }
    case 'monthly':
      return d.year * 100 + d.month;
    case 'yearly':
      return d.year;
  }
}

/** Label of a period key: `2026-11-20`, `2026-W47`, `2026-09`, `2025`. */
function periodLabel(rule: GfsRule, key: number): string {
  switch (rule) {
    case 'daily':
      return `${Math.floor(key / 10_000)}-${pad(Math.floor(key / 100) % 100)}-${pad(key % 100)}`;
    case 'weekly':
      return `${Math.floor(key / 100)}-W${pad(key % 100)}`;
    case 'monthly':
      return `${Math.floor(key / 100)}-${pad(key % 100)}`;
    case 'yearly':
      return String(key);
  }
}

/** Sortable numeric key and label of the period containing a wall-clock date. */
export function periodOf(rule: GfsRule, d: LocalDate): { key: number; label: string } {
  const key = periodKey(rule, d);
  return { key, label: periodLabel(rule, key) };
}

/**
 * Bound on |UTC offset| of any IANA zone at any time (the widest are +14:00 today
 * and about ±16 h of local mean time before 1900), with margin.
 */
const MAX_OFFSET_MS = 26 * 3_600_000;

function utcDateOf(ms: number): LocalDate {
  const d = new Date(ms);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

function utcPeriodKey(rule: GfsRule, ms: number): number {
  return periodKey(rule, utcDateOf(ms));
}

/**
 * The period of instant `ms` on the zone's wall clock. The wall-clock time is
 * `ms + offset` with |offset| < MAX_OFFSET_MS, and UTC period keys never decrease
 * with time, so when `ms ± MAX_OFFSET_MS` fall in the same UTC period, that is the
 * local period too. Only near a period boundary (always, for days) ask Intl.
 */
function localPeriodKey(rule: GfsRule, ms: number, wallDate: () => LocalDate): number {
  const low = utcPeriodKey(rule, ms - MAX_OFFSET_MS);
  if (rule !== 'daily' && low === utcPeriodKey(rule, ms + MAX_OFFSET_MS)) return low;
  return periodKey(rule, wallDate());
}

/** Inserts `key` into a descending array of distinct keys, keeping at most `limit`. */
function insertDescending(list: number[], key: number, limit: number): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! > key) lo = mid + 1;
    else hi = mid;
  }
  if (lo >= limit) return;
  list.splice(lo, 0, key);
  if (list.length > limit) list.pop();
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

function validPolicy(policy: RetentionPolicy, location: string): RetentionPolicy {
  const parsed = retentionPolicySchema.safeParse(policy);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(policy)'}: ${i.message}`);
    throw new RetentionInputError(`Invalid retention policy for location "${location}": ${issues.join('; ')}.`, {
      nextStep: 'fix the plan.retention entry for this location in the lifeboat config.',
    });
  }
  return parsed.data;
}

function validDate(value: unknown): value is Date {
  return value instanceof Date && !Number.isNaN(value.getTime());
}

function validateBackups(backups: readonly RetentionBackup[]): string {
  const location = backups[0]!.location;
  const seen = new Set<string>();
  for (const b of backups) {
    if (typeof b.id !== 'string' || b.id.length === 0) {
      throw new RetentionInputError(`A backup at location "${location}" has an empty id.`, {
        nextStep: 'this is a bug in the caller; every backup needs its id.',
      });
    }
    if (b.location !== location) {
      throw new RetentionInputError(
        `Backups from two locations ("${location}" and "${b.location}", backup ${b.id}) were passed to one retention plan.`,
        { nextStep: 'plan each location separately, e.g. with planRetentionByLocation.' },
      );
    }
    if (seen.has(b.id)) {
      throw new RetentionInputError(`Backup id ${b.id} appears twice at location "${location}".`, {
        nextStep: 'list each backup once; a duplicate usually means two listings were merged.',
      });
    }
    seen.add(b.id);
    if (!validDate(b.time) || b.time.getTime() < MIN_TIME || b.time.getTime() > MAX_TIME) {
      throw new RetentionInputError(
        `Backup ${b.id} at location "${location}" has an invalid time (${String(b.time)}).`,
        { nextStep: "check the backup's manifest consistentAt; retention did not run for this location." },
      );
    }
    if (b.lockedUntil !== undefined && !validDate(b.lockedUntil)) {
      throw new RetentionInputError(`Backup ${b.id} at location "${location}" has an invalid lockedUntil.`, {
        nextStep: "check the object's Object Lock retention; retention did not run for this location.",
      });
    }
  }
  return location;
}

// ---------------------------------------------------------------------------
// Planner
// ---------------------------------------------------------------------------

/**
 * Plans retention for the backups at one location. Returns one decision per
 * backup, newest first (ties: larger id first).
 */
export function planRetention(
  backups: readonly RetentionBackup[],
  policy: RetentionPolicy,
  now: Date,
  timeZone: string,
): RetentionDecision[] {
  if (!validDate(now)) {
    throw new RetentionInputError('Retention planning needs a valid "now".', { nextStep: 'pass the current time.' });
  }
  const fmt = dateFormatter(timeZone);
  if (backups.length === 0) return [];
  const location = validateBackups(backups);
  const p = validPolicy(policy, location);
  const nowMs = now.getTime();

  const n = backups.length;
  const times = new Float64Array(n);
  for (let i = 0; i < n; i++) times[i] = backups[i]!.time.getTime();
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => {
    const dt = times[b]! - times[a]!;
    if (dt !== 0) return dt;
    const ia = backups[a]!.id;
    const ib = backups[b]!.id;
    return ia < ib ? 1 : ia > ib ? -1 : 0;
  });

  // reasons[k] belongs to order[k]; most backups get none, so allocate lazily.
  const reasons: (string[] | undefined)[] = Array.from({ length: n }, () => undefined);
  const reasonsAt = (k: number): string[] => (reasons[k] ??= []);
  const eligible: number[] = []; // positions in `order`, newest first
  for (let k = 0; k < n; k++) {
    const t = times[order[k]!]!;
    if (t > nowMs) {
      reasonsAt(k).push(
        `dated in the future (${new Date(t).toISOString()}, now ${now.toISOString()}): kept, clock skew?`,
      );
    } else {
      eligible.push(k);
    }
  }

  if (eligible.length > 0) reasonsAt(eligible[0]!).push('newest backup');
  for (const k of eligible) {
    if (backups[order[k]!]!.verifiedByDrill) {
      reasonsAt(k).push('newest backup proven by a drill');
      break;
    }
  }
  if (p.keepLast > 0) {
    const label = `last ${p.keepLast}`;
    for (let j = 0; j < Math.min(p.keepLast, eligible.length); j++) reasonsAt(eligible[j]!).push(label);
  }

  const activeRules = GFS_RULES.filter((r) => p[r] > 0);
  if (activeRules.length > 0 && eligible.length > 0) {
    // Wall-clock dates cost an Intl call each (the bulk of planning time), so they
    // are computed lazily and only where the UTC calendar cannot answer (see
    // localPeriodKey), and each rule stops walking once no older backup can still
    // reach its N latest periods.
    const dates: (LocalDate | undefined)[] = Array.from({ length: eligible.length }, () => undefined);
    const dateAt = (j: number): LocalDate => (dates[j] ??= localDateOf(fmt, times[order[eligible[j]!]!]!));
    for (const rule of activeRules) {
      const count = p[rule];
      // First sighting in newest-first order is the newest backup of that period.
      const newestOf = new Map<number, number>();
      const latest: number[] = []; // distinct keys seen, descending, at most `count`
      for (let j = 0; j < eligible.length; j++) {
        const t = times[order[eligible[j]!]!]!;
        // Every backup from here on is this old or older, so its period is at most
        // the UTC period of t + MAX_OFFSET: once that is below the count-th latest
        // period seen, nothing further can change the result.
        if (latest.length === count && utcPeriodKey(rule, t + MAX_OFFSET_MS) < latest[count - 1]!) break;
        const key = localPeriodKey(rule, t, () => dateAt(j));
        if (newestOf.has(key)) continue;
        newestOf.set(key, eligible[j]!);
        insertDescending(latest, key, count);
      }
      for (const key of latest) reasonsAt(newestOf.get(key)!).push(`${rule} ${periodLabel(rule, key)}`);
    }
  }

  const minAgeMs = p.minAgeDays * DAY_MS;
  for (let k = 0; k < n; k++) {
    const b = backups[order[k]!]!;
    if (b.lockedUntil !== undefined && b.lockedUntil.getTime() > nowMs) {
      reasonsAt(k).push(`under Object Lock until ${b.lockedUntil.toISOString()}`);
    }
    if (b.legalHold) reasonsAt(k).push('under an Object Lock legal hold');
    const t = times[order[k]!]!;
    if (t <= nowMs && nowMs - t < minAgeMs) reasonsAt(k).push(`younger than minimum age (${p.minAgeDays} d)`);
  }

  return order.map((i, k) => {
    const b = backups[i]!;
    const why = reasons[k];
    return why !== undefined
      ? { id: b.id, location, time: b.time, action: 'keep' as const, reasons: why }
      : { id: b.id, location, time: b.time, action: 'delete' as const, reasons: ['beyond policy'] };
  });
}

export interface LocationPlan {
  location: string;
  /** Undefined when the config sets no policy for this location: everything is kept. */
  policy: RetentionPolicy | undefined;
  decisions: RetentionDecision[];
}

/**
 * Plans several locations independently (each with its own policy). A location
 * without a policy keeps everything, with the reason saying so. Locations are
 * returned sorted by name.
 */
export function planRetentionByLocation(
  backups: readonly RetentionBackup[],
  policies: Readonly<Record<string, RetentionPolicy | undefined>> | ReadonlyMap<string, RetentionPolicy | undefined>,
  now: Date,
  timeZone: string,
): LocationPlan[] {
  const policyOf = (location: string): RetentionPolicy | undefined =>
    policies instanceof Map
      ? policies.get(location)
      : Object.prototype.hasOwnProperty.call(policies, location)
        ? (policies as Readonly<Record<string, RetentionPolicy | undefined>>)[location]
        : undefined;
  const byLocation = new Map<string, RetentionBackup[]>();
  for (const b of backups) {
    let list = byLocation.get(b.location);
    if (!list) byLocation.set(b.location, (list = []));
    list.push(b);
  }
  const locations = [...byLocation.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return locations.map((location) => {
    const list = byLocation.get(location)!;
    const policy = policyOf(location);
    if (policy === undefined) {
      // Still validate the input, so a bad listing fails the same way everywhere.
      const decisions = planRetention(list, { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 0 }, now, timeZone).map(
        (d) => ({ ...d, action: 'keep' as const, reasons: ['no retention policy for this location'] }),
      );
      return { location, policy, decisions };
    }
    return { location, policy, decisions: planRetention(list, policy, now, timeZone) };
  });
}

/** Counts of a plan, for summaries. */
export function countDecisions(decisions: readonly RetentionDecision[]): { keep: number; delete: number } {
  let keep = 0;
  for (const d of decisions) if (d.action === 'keep') keep++;
  return { keep, delete: decisions.length - keep };
}
