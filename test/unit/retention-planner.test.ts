import fc from 'fast-check';
import { policyArb } from './retention-arbitraries.ts';
import { describe, expect, it } from 'vitest';
import type { RetentionPolicy } from '../../functions/lib/config/schema.ts';
import { RetentionInputError } from '../../functions/lib/retention/errors.ts';
import {
  planRetention,
  planRetentionByLocation,
  type RetentionBackup,
  type RetentionDecision,
} from '../../functions/lib/retention/planner.ts';

const DAY = 86_400_000;
const MINUTE = 60_000;

// ---------------------------------------------------------------------------
// An independent reference model: brute force over the whole set (O(n^2)),
// local dates and weekdays from Intl.formatToParts in another locale, ISO weeks
// from the Intl weekday and the day of year of that week's Thursday, and periods
// compared as zero-padded labels. It shares no code with the planner.
// ---------------------------------------------------------------------------

interface RefDate {
  y: number;
  m: number;
  d: number;
  /** 1 = Monday .. 7 = Sunday, from Intl. */
  isoDow: number;
}

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

function refLocalDate(ms: number, timeZone: string): RefDate {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    weekday: 'short',
  }).formatToParts(new Date(ms));
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  return { y: Number(get('year')), m: Number(get('month')), d: Number(get('day')), isoDow: WEEKDAYS.indexOf(get('weekday')) + 1 };
}

const p2 = (n: number) => String(n).padStart(2, '0');

function refPeriodLabel(rule: string, ld: RefDate): string {
  switch (rule) {
    case 'daily':
      return `${ld.y}-${p2(ld.m)}-${p2(ld.d)}`;
    case 'monthly':
      return `${ld.y}-${p2(ld.m)}`;
    case 'yearly':
      return String(ld.y);
    default: {
      // The ISO week belongs to the year of its Thursday; its number is that
      // Thursday's day of year, divided by 7, rounded up.
      const thursday = new Date(Date.UTC(ld.y, ld.m - 1, ld.d + (4 - ld.isoDow)));
      const dayOfYear = Math.round((thursday.getTime() - Date.UTC(thursday.getUTCFullYear(), 0, 1)) / DAY) + 1;
      return `${thursday.getUTCFullYear()}-W${p2(Math.ceil(dayOfYear / 7))}`;
    }
  }
}

/** Expected reasons per id (without the free-text future-dated reason, which is checked by prefix). */
function referencePlan(
  backups: readonly RetentionBackup[],
  policy: RetentionPolicy,
  now: Date,
  timeZone: string,
): Map<string, { future: boolean; reasons: string[] }> {
  const nowMs = now.getTime();
  const eligible = backups.filter((b) => b.time.getTime() <= nowMs);
  const newer = (a: RetentionBackup, b: RetentionBackup) =>
    a.time.getTime() > b.time.getTime() || (a.time.getTime() === b.time.getTime() && a.id > b.id);
  const labels = new Map<string, Record<string, string>>();
  for (const b of eligible) {
    const ld = refLocalDate(b.time.getTime(), timeZone);
    labels.set(b.id, Object.fromEntries(['daily', 'weekly', 'monthly', 'yearly'].map((r) => [r, refPeriodLabel(r, ld)])));
  }
  const out = new Map<string, { future: boolean; reasons: string[] }>();
  for (const b of backups) {
    const reasons: string[] = [];
    const future = b.time.getTime() > nowMs;
    if (!future) {
      if (!eligible.some((c) => newer(c, b))) reasons.push('newest backup');
      if (b.verifiedByDrill && !eligible.some((c) => c.verifiedByDrill && newer(c, b))) {
        reasons.push('newest backup proven by a drill');
      }
      if (eligible.filter((c) => newer(c, b)).length < policy.keepLast) reasons.push(`last ${policy.keepLast}`);
      for (const rule of ['daily', 'weekly', 'monthly', 'yearly'] as const) {
        if (policy[rule] === 0) continue;
        const mine = labels.get(b.id)![rule]!;
        const newestInPeriod = !eligible.some((c) => labels.get(c.id)![rule] === mine && newer(c, b));
        const laterPeriods = new Set(eligible.map((c) => labels.get(c.id)![rule]!).filter((l) => l > mine));
        if (newestInPeriod && laterPeriods.size < policy[rule]) reasons.push(`${rule} ${mine}`);
      }
    }
    if (b.lockedUntil && b.lockedUntil.getTime() > nowMs) reasons.push(`under Object Lock until ${b.lockedUntil.toISOString()}`);
    if (b.legalHold) reasons.push('under an Object Lock legal hold');
    if (!future && nowMs - b.time.getTime() < policy.minAgeDays * DAY) {
      reasons.push(`younger than minimum age (${policy.minAgeDays} d)`);
    }
    out.set(b.id, { future, reasons });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------

const ZONES = [
  'UTC',
  'Pacific/Auckland', // +12/+13, local date usually ahead of UTC
  'America/Los_Angeles', // -8/-7, local date usually behind UTC
  'Pacific/Chatham', // +12:45/+13:45
  'Asia/Kathmandu', // +5:45, no DST
  'Australia/Lord_Howe', // 30-minute DST shift
  'America/Santiago', // DST ends at local midnight
  'America/St_Johns', // -3:30/-2:30
  'Pacific/Kiritimati', // +14
  'Pacific/Pago_Pago', // -11
  'Europe/Berlin',
  'Etc/GMT-14', // +14, no DST
  'Etc/GMT+12', // -12, no DST
];



/** A scenario: `now`, a time zone, and backups (unique ids) around `now`. */
const scenarioArb = fc
  .record({
    now: fc.date({ min: new Date('2024-01-01T00:00:00Z'), max: new Date('2027-12-31T00:00:00Z'), noInvalidDate: true }),
    timeZone: fc.constantFrom(...ZONES),
    policy: policyArb,
    // minutes before now: negative = future-dated. Four shapes: sparse over three
    // years, dense over three weeks, on a coarse hourly grid so that equal times
    // (ties) are common, and within 30 hours of a UTC month (or year) start, where
    // local and UTC months, years and ISO weeks disagree.
    specs: fc.uniqueArray(
      fc.record({
        id: fc.stringMatching(/^[a-f0-9]{1,4}$/),
        minutesAgo: fc.oneof(
          fc.integer({ min: -3 * 1440, max: 3 * 365 * 1440 }),
          fc.integer({ min: -60, max: 21 * 1440 }),
          fc.integer({ min: -2, max: 400 }).map((h) => h * 60),
          fc.tuple(fc.integer({ min: 0, max: 26 }), fc.integer({ min: -1800, max: 1800 })).map(([m, x]) => ({ monthsBack: m, minutes: x })),
        ),
        verifiedByDrill: fc.boolean(),
        lockedDaysFromNow: fc.option(fc.integer({ min: -30, max: 30 }), { freq: 4 }),
        legalHold: fc.integer({ min: 0, max: 19 }).map((x) => x === 0),
      }),
      { selector: (s) => s.id, maxLength: 45 },
    ),
  })
  .map(({ now, timeZone, policy, specs }) => ({
    now,
    timeZone,
    policy,
    backups: specs.map(
      (s): RetentionBackup => ({
        id: s.id,
        time:
          typeof s.minutesAgo === 'number'
            ? new Date(now.getTime() - s.minutesAgo * MINUTE)
            : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - s.minutesAgo.monthsBack, 1) + s.minutesAgo.minutes * MINUTE),
        location: 'vault',
        verifiedByDrill: s.verifiedByDrill,
        ...(s.lockedDaysFromNow === null ? {} : { lockedUntil: new Date(now.getTime() + s.lockedDaysFromNow * DAY) }),
        ...(s.legalHold ? { legalHold: true } : {}),
      }),
    ),
  }));

function byId(decisions: readonly RetentionDecision[]): Map<string, RetentionDecision> {
  return new Map(decisions.map((d) => [d.id, d]));
}

function newestOf(backups: readonly RetentionBackup[]): RetentionBackup | undefined {
  let best: RetentionBackup | undefined;
  for (const b of backups) {
    if (!best || b.time > best.time || (b.time.getTime() === best.time.getTime() && b.id > best.id)) best = b;
  }
  return best;
}

const RUNS = { numRuns: 300 };

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

describe('retention planner properties', () => {
  it('decides every backup exactly once and gives every decision at least one reason', () => {
    fc.assert(
      fc.property(scenarioArb, ({ backups, policy, now, timeZone }) => {
        const decisions = planRetention(backups, policy, now, timeZone);
        expect(decisions.map((d) => d.id).sort()).toEqual(backups.map((b) => b.id).sort());
        for (const d of decisions) {
          expect(d.reasons.length).toBeGreaterThan(0);
          expect(d.location).toBe('vault');
          if (d.action === 'delete') expect(d.reasons).toEqual(['beyond policy']);
        }
      }),
      RUNS,
    );
  });

  it('never deletes the newest backup, the newest drill-proven one, a locked one, or one younger than the minimum age', () => {
    fc.assert(
      fc.property(scenarioArb, ({ backups, policy, now, timeZone }) => {
        const decisions = byId(planRetention(backups, policy, now, timeZone));
        const mustKeep = new Set<string>();
        const newest = newestOf(backups);
        if (newest) mustKeep.add(newest.id);
        const newestProven = newestOf(backups.filter((b) => b.verifiedByDrill));
        if (newestProven) mustKeep.add(newestProven.id);
        const pastOnly = backups.filter((b) => b.time <= now);
        const newestPast = newestOf(pastOnly);
        if (newestPast) mustKeep.add(newestPast.id);
        const newestPastProven = newestOf(pastOnly.filter((b) => b.verifiedByDrill));
        if (newestPastProven) mustKeep.add(newestPastProven.id);
        for (const b of backups) {
          if (b.lockedUntil && b.lockedUntil > now) mustKeep.add(b.id);
          if (b.legalHold) mustKeep.add(b.id);
          if (now.getTime() - b.time.getTime() < policy.minAgeDays * DAY) mustKeep.add(b.id); // includes future-dated
        }
        for (const id of mustKeep) expect(decisions.get(id)!.action, id).toBe('keep');
      }),
      RUNS,
    );
  });

  it('keeps future-dated backups and says why', () => {
    fc.assert(
      fc.property(scenarioArb, ({ backups, policy, now, timeZone }) => {
        const decisions = byId(planRetention(backups, policy, now, timeZone));
        for (const b of backups.filter((x) => x.time > now)) {
          const d = decisions.get(b.id)!;
          expect(d.action).toBe('keep');
          expect(d.reasons[0]).toMatch(/^dated in the future/);
        }
      }),
      RUNS,
    );
  });

  it('is idempotent: planning only the kept set deletes nothing', () => {
    fc.assert(
      fc.property(scenarioArb, ({ backups, policy, now, timeZone }) => {
        const first = planRetention(backups, policy, now, timeZone);
        const kept = new Set(first.filter((d) => d.action === 'keep').map((d) => d.id));
        const second = planRetention(
          backups.filter((b) => kept.has(b.id)),
          policy,
          now,
          timeZone,
        );
        expect(second.filter((d) => d.action === 'delete').map((d) => d.id)).toEqual([]);
      }),
      RUNS,
    );
  });

  it('is monotone: removing backups never turns a keep of a remaining backup into a delete', () => {
    fc.assert(
      fc.property(scenarioArb, fc.gen(), ({ backups, policy, now, timeZone }, gen) => {
        const full = byId(planRetention(backups, policy, now, timeZone));
        // Indices, not the backups: fc.gen caches arbitraries by a structural compare
        // of their arguments that sees all Dates as equal, so a Date-bearing argument
        // can be answered with another run's values.
        const subset = gen(fc.subarray, backups.map((_, i) => i), {}).map((i) => backups[i]!);
        for (const d of planRetention(subset, policy, now, timeZone)) {
          if (full.get(d.id)!.action === 'keep') expect(d.action, d.id).toBe('keep');
        }
      }),
      RUNS,
    );
  });

  it('is deterministic: any shuffle of the input gives the same decisions in the same order', () => {
    fc.assert(
      fc.property(scenarioArb, fc.gen(), ({ backups, policy, now, timeZone }, gen) => {
        const n = backups.length;
        const shuffled = gen(fc.shuffledSubarray, backups.map((_, i) => i), { minLength: n, maxLength: n }).map((i) => backups[i]!);
        expect(shuffled.map((x) => x.id).sort()).toEqual(backups.map((x) => x.id).sort());
        expect(planRetention(shuffled, policy, now, timeZone)).toEqual(planRetention(backups, policy, now, timeZone));
      }),
      RUNS,
    );
  });

  it('matches the brute-force reference model exactly (GFS buckets in the time zone, keepLast, safety rules)', () => {
    fc.assert(
      fc.property(scenarioArb, ({ backups, policy, now, timeZone }) => {
        const expected = referencePlan(backups, policy, now, timeZone);
        for (const d of planRetention(backups, policy, now, timeZone)) {
          const e = expected.get(d.id)!;
          const reasons = e.future ? d.reasons.slice(1) : d.reasons;
          if (e.future) expect(d.reasons[0]).toMatch(/^dated in the future/);
          if (e.reasons.length === 0 && !e.future) {
            expect(d).toMatchObject({ action: 'delete', reasons: ['beyond policy'] });
          } else {
            expect(d.action, d.id).toBe('keep');
            expect(reasons, d.id).toEqual(e.reasons);
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('keeps, for each GFS rule, exactly the newest backup of each of the N latest periods that have one', () => {
    // A second, narrower oracle: per rule, group by period label and pick the
    // newest with a sort, instead of the pairwise comparison above.
    fc.assert(
      fc.property(scenarioArb, ({ backups, policy, now, timeZone }) => {
        const decisions = planRetention(backups, policy, now, timeZone);
        const eligible = backups.filter((b) => b.time <= now);
        for (const rule of ['daily', 'weekly', 'monthly', 'yearly'] as const) {
          const groups = new Map<string, RetentionBackup[]>();
          for (const b of eligible) {
            const label = refPeriodLabel(rule, refLocalDate(b.time.getTime(), timeZone));
            groups.set(label, [...(groups.get(label) ?? []), b]);
          }
          const expected = [...groups.keys()]
            .sort()
            .reverse()
            .slice(0, policy[rule])
            .map((label) => `${newestOf(groups.get(label)!)!.id} ${rule} ${label}`)
            .sort();
          const actual = decisions
            .flatMap((d) => d.reasons.filter((r) => r.startsWith(`${rule} `)).map((r) => `${d.id} ${r}`))
            .sort();
          expect(actual, rule).toEqual(expected);
        }
      }),
      RUNS,
    );
  });
});

// ---------------------------------------------------------------------------
// Examples with explicit dates
// ---------------------------------------------------------------------------

const ONLY: RetentionPolicy = { keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 0 };

function b(id: string, iso: string, extra: Partial<RetentionBackup> = {}): RetentionBackup {
  return { id, time: new Date(iso), location: 'source', verifiedByDrill: false, ...extra };
}

function summary(decisions: readonly RetentionDecision[]): Record<string, string> {
  return Object.fromEntries(decisions.map((d) => [d.id, `${d.action}: ${d.reasons.join(', ')}`]));
}

describe('retention planner examples', () => {
  it('buckets days on the Auckland wall clock, where the local date is ahead of UTC', () => {
    // 2026-11-20T11:30Z is 2026-11-21 00:30 NZDT (+13); the other two are still Nov 20 locally.
    const backups = [
      b('a', '2026-11-20T09:00:00Z'), // 22:00 Nov 20
      b('b', '2026-11-20T10:30:00Z'), // 23:30 Nov 20
      b('c', '2026-11-20T11:30:00Z'), // 00:30 Nov 21
    ];
    const now = new Date('2026-11-25T00:00:00Z');
    const policy = { ...ONLY, daily: 2 };
    expect(summary(planRetention(backups, policy, now, 'Pacific/Auckland'))).toEqual({
      c: 'keep: newest backup, daily 2026-11-21',
      b: 'keep: daily 2026-11-20',
      a: 'delete: beyond policy',
    });
    // In UTC all three fall on Nov 20, so only the newest survives.
    expect(summary(planRetention(backups, policy, now, 'UTC'))).toEqual({
      c: 'keep: newest backup, daily 2026-11-20',
      b: 'delete: beyond policy',
      a: 'delete: beyond policy',
    });
  });

  it('keeps one backup for the 25-hour day when Los Angeles falls back (2026-11-01)', () => {
    const backups = [
      b('1', '2026-11-01T07:30:00Z'), // 00:30 PDT Nov 1
      b('2', '2026-11-01T08:30:00Z'), // 01:30 PDT
      b('3', '2026-11-01T09:30:00Z'), // 01:30 PST, the repeated hour
      b('4', '2026-11-02T07:30:00Z'), // 23:30 PST Nov 1 (Nov 2 in UTC)
      b('5', '2026-11-02T08:30:00Z'), // 00:30 PST Nov 2
      b('0', '2026-10-31T06:59:00Z'), // 23:59 PDT Oct 30
    ];
    const decisions = planRetention(backups, { ...ONLY, daily: 3 }, new Date('2026-11-10T00:00:00Z'), 'America/Los_Angeles');
    expect(summary(decisions)).toEqual({
      '5': 'keep: newest backup, daily 2026-11-02',
      '4': 'keep: daily 2026-11-01',
      '3': 'delete: beyond policy',
      '2': 'delete: beyond policy',
      '1': 'delete: beyond policy',
      '0': 'keep: daily 2026-10-30',
    });
    // Output is newest first.
    expect(decisions.map((d) => d.id)).toEqual(['5', '4', '3', '2', '1', '0']);
  });

  it('handles the 23-hour day when Los Angeles springs forward (2026-03-08)', () => {
    const backups = [
      b('x', '2026-03-08T09:59:00Z'), // 01:59 PST Mar 8
      b('y', '2026-03-08T10:00:00Z'), // 03:00 PDT Mar 8
      b('z', '2026-03-09T06:59:00Z'), // 23:59 PDT Mar 8
      b('n', '2026-03-09T07:00:00Z'), // 00:00 PDT Mar 9
    ];
    expect(summary(planRetention(backups, { ...ONLY, daily: 5 }, new Date('2026-04-01T00:00:00Z'), 'America/Los_Angeles'))).toEqual({
      n: 'keep: newest backup, daily 2026-03-09',
      z: 'keep: daily 2026-03-08',
      y: 'delete: beyond policy',
      x: 'delete: beyond policy',
    });
  });

  it('uses ISO weeks and years on the local wall clock (2026 has a week 53)', () => {
    const backups = [
      b('w52', '2026-12-27T12:00:00Z'), // Sun 2026-12-27 in UTC (2026-W52); Mon 12-28 01:00 NZDT (2026-W53)
      b('w53', '2027-01-03T10:00:00Z'), // Sun 2027-01-03 23:00 NZDT -> 2026-W53, but month 2027-01
      b('w01', '2027-01-03T11:30:00Z'), // Monday 2027-01-04 00:30 NZDT -> 2027-W01; UTC: 2026-W53
      b('ny', '2025-12-31T11:30:00Z'), // 2026-01-01 00:30 NZDT; UTC: 2025-12-31
      b('old', '2025-12-31T10:30:00Z'), // 2025-12-31 23:30 NZDT
    ];
    const policy = { ...ONLY, weekly: 3, monthly: 2, yearly: 3 };
    const now = new Date('2027-02-01T00:00:00Z');
    expect(summary(planRetention(backups, policy, now, 'Pacific/Auckland'))).toEqual({
      w01: 'keep: newest backup, weekly 2027-W01, monthly 2027-01, yearly 2027',
      w53: 'keep: weekly 2026-W53', // newest of 2026-W53; 2027-01 is w01's
      w52: 'keep: monthly 2026-12, yearly 2026', // older than w53 in 2026-W53, newest of Dec 2026
      ny: 'keep: weekly 2026-W01',
      old: 'keep: yearly 2025',
    });
    expect(summary(planRetention(backups, policy, now, 'UTC'))).toEqual({
      w01: 'keep: newest backup, weekly 2026-W53, monthly 2027-01, yearly 2027',
      w53: 'delete: beyond policy',
      w52: 'keep: weekly 2026-W52, monthly 2026-12, yearly 2026',
      ny: 'keep: weekly 2026-W01, yearly 2025',
      old: 'delete: beyond policy',
    });
  });

  it('ranks periods by the calendar where local dates run backwards (Sitka, Alaska purchase, 1867)', () => {
    // On 1867-10-18 Sitka moved from +14:58:47 to -09:01:13: the wall clock went from
    // Oct 19 back to Oct 18. The newest backup is in an earlier local day than an older one.
    const backups = [
      b('after', '1867-10-19T03:00:00Z'), // Oct 18 17:58 local
      b('before', '1867-10-18T21:00:00Z'), // Oct 19 11:58 local
      b('earlier', '1867-10-18T03:00:00Z'), // Oct 18 17:58 local (first Oct 18)
    ];
    expect(summary(planRetention(backups, { ...ONLY, daily: 1 }, new Date('1867-10-25T00:00:00Z'), 'America/Sitka'))).toEqual({
      after: 'keep: newest backup',
      before: 'keep: daily 1867-10-19',
      earlier: 'delete: beyond policy',
    });
  });

  it('counts only periods that have a backup (a gap does not use up the count)', () => {
    const backups = [b('d20', '2026-11-20T12:00:00Z'), b('d10', '2026-11-10T12:00:00Z'), b('d01', '2026-11-01T12:00:00Z')];
    const decisions = planRetention(backups, { ...ONLY, daily: 2 }, new Date('2026-11-21T00:00:00Z'), 'UTC');
    expect(summary(decisions)).toEqual({
      d20: 'keep: newest backup, daily 2026-11-20',
      d10: 'keep: daily 2026-11-10',
      d01: 'delete: beyond policy',
    });
  });

  it('protects the newest drill-proven, locked, held, young and future-dated backups whatever the counts say', () => {
    const now = new Date('2026-11-21T12:00:00Z');
    const backups = [
      b('future', '2026-11-21T12:05:00Z'),
      b('newest', '2026-11-21T03:00:00Z'),
      b('young', '2026-11-20T13:00:00Z'),
      b('proven', '2026-10-01T03:00:00Z', { verifiedByDrill: true }),
      b('proven-older', '2026-09-01T03:00:00Z', { verifiedByDrill: true }),
      b('locked', '2026-08-01T03:00:00Z', { lockedUntil: new Date('2027-01-01T00:00:00Z') }),
      b('lock-expired', '2026-07-01T03:00:00Z', { lockedUntil: new Date('2026-11-01T00:00:00Z') }),
      b('held', '2026-06-01T03:00:00Z', { legalHold: true }),
      b('old', '2026-05-01T03:00:00Z'),
    ];
    expect(summary(planRetention(backups, { ...ONLY, keepLast: 1, minAgeDays: 1 }, now, 'Europe/Berlin'))).toEqual({
      future: 'keep: dated in the future (2026-11-21T12:05:00.000Z, now 2026-11-21T12:00:00.000Z): kept, clock skew?',
      newest: 'keep: newest backup, last 1, younger than minimum age (1 d)',
      young: 'keep: younger than minimum age (1 d)',
      proven: 'keep: newest backup proven by a drill',
      'proven-older': 'delete: beyond policy',
      locked: 'keep: under Object Lock until 2027-01-01T00:00:00.000Z',
      'lock-expired': 'delete: beyond policy',
      held: 'keep: under an Object Lock legal hold',
      old: 'delete: beyond policy',
    });
  });

  it('keeps the last N with the reason "last N" and breaks equal times by id', () => {
    const t = '2026-11-20T00:00:00Z';
    const backups = [b('b', t), b('c', t), b('a', t), b('d', '2026-11-19T00:00:00Z')];
    const decisions = planRetention(backups, { ...ONLY, keepLast: 3 }, new Date('2026-12-01T00:00:00Z'), 'UTC');
    expect(summary(decisions)).toEqual({
      c: 'keep: newest backup, last 3',
      b: 'keep: last 3',
      a: 'keep: last 3',
      d: 'delete: beyond policy',
    });
    expect(decisions.map((d) => d.id)).toEqual(['c', 'b', 'a', 'd']);
  });

  it('a backup exactly minAgeDays old may be deleted; one a millisecond younger may not', () => {
    const now = new Date('2026-11-21T00:00:00Z');
    const backups = [b('new', '2026-11-20T23:00:00Z'), b('edge', '2026-11-19T00:00:00Z'), b('inside', '2026-11-19T00:00:00.001Z')];
    expect(summary(planRetention(backups, { ...ONLY, keepLast: 1, minAgeDays: 2 }, now, 'UTC'))).toEqual({
      new: 'keep: newest backup, last 1, younger than minimum age (2 d)',
      inside: 'keep: younger than minimum age (2 d)',
      edge: 'delete: beyond policy',
    });
  });

  it('plans several locations independently, each with its own policy', () => {
    const now = new Date('2026-11-21T00:00:00Z');
    const at = (location: string, id: string, iso: string): RetentionBackup => ({ ...b(id, iso), location });
    const backups = [
      at('vault', 'v1', '2026-11-20T00:00:00Z'),
      at('source', 's1', '2026-11-20T00:00:00Z'),
      at('vault', 'v0', '2026-11-19T00:00:00Z'),
      at('source', 's0', '2026-11-19T00:00:00Z'),
      at('copy', 'c0', '2026-01-01T00:00:00Z'),
      at('copy', 'c1', '2026-02-01T00:00:00Z'),
    ];
    const plans = planRetentionByLocation(backups, { source: { ...ONLY, keepLast: 1 }, vault: { ...ONLY, keepLast: 2 } }, now, 'UTC');
    expect(plans.map((p) => [p.location, summary(p.decisions)])).toEqual([
      ['copy', { c1: 'keep: no retention policy for this location', c0: 'keep: no retention policy for this location' }],
      ['source', { s1: 'keep: newest backup, last 1', s0: 'delete: beyond policy' }],
      ['vault', { v1: 'keep: newest backup, last 2', v0: 'keep: last 2' }],
    ]);
  });

  it('rejects input it cannot plan safely, naming the problem', () => {
    const now = new Date('2026-11-21T00:00:00Z');
    const policy = { ...ONLY, keepLast: 1 };
    expect(() => planRetention([b('a', '2026-11-20T00:00:00Z'), b('a', '2026-11-19T00:00:00Z')], policy, now, 'UTC')).toThrow(
      /Backup id a appears twice/,
    );
    expect(() =>
      planRetention([b('a', '2026-11-20T00:00:00Z'), { ...b('b', '2026-11-19T00:00:00Z'), location: 'vault' }], policy, now, 'UTC'),
    ).toThrow(RetentionInputError);
    expect(() => planRetention([b('a', 'not a date')], policy, now, 'UTC')).toThrow(/invalid time/);
    expect(() => planRetention([b('a', '2026-11-20T00:00:00Z')], policy, now, 'Mars/Olympus_Mons')).toThrow(/Unknown time zone/);
    expect(() => planRetention([b('a', '2026-11-20T00:00:00Z')], ONLY, now, 'UTC')).toThrow(/keeps nothing/);
    expect(planRetention([], policy, now, 'UTC')).toEqual([]);
  });
});
