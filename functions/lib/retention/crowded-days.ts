import { localDate } from './planner.ts';

/**
 * In the vault, production (through the copier) decides which copies arrive.
 * A forger who adds one copy after each real one would be the newest of every
 * day, and GFS keeps the newest of a period: the real copies would be pushed
 * out once their locks lapse. So a day (in the plan's time zone) that holds
 * more of a plan's copies than its schedule can make is *crowded*: its copies
 * are planned as one, kept or dropped together, and count once, so none of
 * them can push another copy out. A crowded day is alerted while it is recent
 * (a copy lands within 48 h of its date, so a day can become crowded only in
 * the first few days after it); later runs treat it the same way, silently.
 */

/** How long after its end a crowded day is still alerted. */
export const CROWDED_DAY_ALERT_MS = 72 * 3_600_000;

export interface CrowdedDay {
  /** `YYYY-MM-DD` in the plan's time zone. */
  readonly day: string;
  /** Every copy of the day, newest first. */
  readonly ids: readonly string[];
  /** The copy that stands for the day in planning (the newest). */
  readonly representative: string;
  readonly reason: string;
  /** Still alerted (see CROWDED_DAY_ALERT_MS). */
  readonly recent: boolean;
}

export interface CollapsedDays<T> {
  /** What the planner sees: every copy of an ordinary day, one representative per crowded day. */
  readonly items: T[];
  /** A representative's id → every copy of its day (itself included). */
  readonly membersOf: ReadonlyMap<string, readonly T[]>;
  readonly crowded: readonly CrowdedDay[];
}

export function collapseCrowdedDays<T extends { id: string; time: Date }>(
  items: readonly T[],
  options: { maxPerDay: number; timeZone: string; now: Date; planId: string; what: 'backups' | 'snapshots' },
): CollapsedDays<T> {
  const byDay = new Map<string, T[]>();
  for (const item of items) {
    const d = localDate(item.time, options.timeZone);
    const day = `${d.year}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
    byDay.set(day, [...(byDay.get(day) ?? []), item]);
  }
  const out: T[] = [];
  const membersOf = new Map<string, readonly T[]>();
  const crowded: CrowdedDay[] = [];
  for (const [day, members] of byDay) {
    if (members.length <= options.maxPerDay) {
      out.push(...members);
      continue;
    }
    const sorted = [...members].sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : -1));
    const representative = sorted[0]!;
    out.push(representative);
    membersOf.set(representative.id, sorted);
    crowded.push({
      day,
      ids: sorted.map((m) => m.id),
      representative: representative.id,
      reason: `${members.length} ${options.what} of plan ${options.planId} are dated ${day} (${options.timeZone}), and its schedule makes at most ${options.maxPerDay} a day: one may be forged (or a backup was run by hand that day, or a run was pushed past midnight); the day's ${options.what} are kept or dropped together and count once, so none can push another out`,
      recent: options.now.getTime() - representative.time.getTime() < CROWDED_DAY_ALERT_MS,
    });
  }
  return { items: out, membersOf, crowded };
}

/** Every copy of a representative's day, or just the item itself on an ordinary day. */
export function membersOfDay<T extends { id: string }>(collapsed: CollapsedDays<T> | undefined, item: T): readonly T[] {
  return collapsed?.membersOf.get(item.id) ?? [item];
}

/**
 * Gives each decision about a day's representative to every copy of that day
 * (naming the day in its reasons), newest copy first; on an ordinary day the
 * decision stays with its own copy.
 */
export function decideForEachCopy<T extends { id: string; time: Date }, D extends { id: string; time: Date; reasons: string[] }>(
  collapsed: CollapsedDays<T> | undefined,
  decisions: readonly D[],
  byId: ReadonlyMap<string, T>,
  what: 'backups' | 'snapshots',
): Array<D & { copy: T; representative: string }> {
  const crowdedOf = new Map((collapsed?.crowded ?? []).map((c) => [c.representative, c]));
  return decisions
    .flatMap((d) => {
      const day = crowdedOf.get(d.id);
      return membersOfDay(collapsed, byId.get(d.id)!).map((copy) => ({
        ...d,
        id: copy.id,
        time: copy.time,
        reasons: day ? [...d.reasons, `crowded day ${day.day}: ${day.ids.length} ${what} kept or dropped together`] : d.reasons,
        copy,
        representative: d.id,
      }));
    })
    .sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}
