import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { collapseCrowdedDays, decideForEachCopy } from '../../functions/lib/retention/crowded-days.ts';
import { localDate, planRetention } from '../../functions/lib/retention/planner.ts';
import { policyArb } from './retention-arbitraries.ts';
import type { RetentionPolicy } from '../../functions/lib/config/schema.ts';

const NOW = new Date('2027-03-15T12:00:00Z');
const HOUR = 3_600_000;
const TZ = 'Europe/Berlin';

/** The vault's planning: crowded days collapsed, each copy getting its day's decision. */
function planVault(copies: { id: string; time: Date }[], policy: RetentionPolicy, maxPerDay: number): Map<string, 'keep' | 'delete'> {
  const collapsed = collapseCrowdedDays(copies, { maxPerDay, timeZone: TZ, now: NOW, planId: 'nightly', what: 'backups' });
  const decisions = planRetention(collapsed.items.map((c) => ({ id: c.id, time: c.time, location: 'vault', verifiedByDrill: false })), policy, NOW, TZ);
  return new Map(decideForEachCopy(collapsed, decisions, new Map(copies.map((c) => [c.id, c])), 'backups').map((d) => [d.id, d.action] as const));
}

describe('crowded days in the vault', () => {
  it('stands a crowded day for by its newest copy, says why, and alerts it only while it is recent', () => {
    // Prepare: three copies today (Berlin), one yesterday, two a week ago.
    const at = (hoursAgo: number, id: string) => ({ id, time: new Date(NOW.getTime() - hoursAgo * HOUR) });
    const copies = [at(5, 'a'), at(4, 'b'), at(3, 'c'), at(30, 'd'), at(180, 'e'), at(180.1, 'f')];

    // Act
    const collapsed = collapseCrowdedDays(copies, { maxPerDay: 1, timeZone: TZ, now: NOW, planId: 'nightly', what: 'backups' });

    // Assess
    expect(collapsed.items.map((c) => c.id).sort()).toEqual(['c', 'd', 'e']);
    expect(collapsed.crowded.map((c) => ({ day: c.day, ids: c.ids, representative: c.representative, recent: c.recent }))).toEqual([
      { day: '2027-03-15', ids: ['c', 'b', 'a'], representative: 'c', recent: true },
      { day: '2027-03-08', ids: ['e', 'f'], representative: 'e', recent: false },
    ]);
    expect(collapsed.crowded[0]!.reason).toBe(
      "3 backups of plan nightly are dated 2027-03-15 (Europe/Berlin), and its schedule makes at most 1 a day: one may be forged (or a backup was run by hand that day, or a run was pushed past midnight); the day's backups are kept or dropped together and count once, so none can push another out",
    );
  });

  it('never lets copies added to the days of real copies push out a real copy the policy would have kept without them (any policy, any such forgeries)', () => {
    fc.assert(
      fc.property(
        policyArb,
        // The real copies: one a day (a once-a-day schedule), at a random hour, over up to 60 days.
        fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 23 }),
        // Forgeries: any number, at any time of the day of a real copy (a forger writes what it likes; a copy on a
        // day with no real copy is indistinguishable from a real one: docs/security.md).
        fc.array(fc.record({ of: fc.nat(), offsetMinutes: fc.integer({ min: -24 * 60, max: 24 * 60 }) }), { maxLength: 30 }),
        (policy, days, hour, forgeries) => {
          const real = days.map((d) => ({ id: `real-${d}`, time: new Date(NOW.getTime() - d * 24 * HOUR - hour * HOUR) }));
          const dayOf = (t: Date) => JSON.stringify(localDate(t, TZ));
          const forged = forgeries
            .map((f, i) => {
              const target = real[f.of % real.length]!;
              return { id: `forged-${i}`, time: new Date(Math.min(NOW.getTime(), target.time.getTime() + f.offsetMinutes * 60_000)), day: dayOf(target.time) };
            })
            .filter((f) => dayOf(f.time) === f.day)
            .map(({ id, time }) => ({ id, time }));
          const alone = planVault(real, policy, 1);
          const attacked = planVault([...real, ...forged], policy, 1);
          for (const r of real) {
            if (alone.get(r.id) === 'keep') expect(attacked.get(r.id), `${r.id} with ${JSON.stringify(policy)}`).toBe('keep');
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
