import fc from 'fast-check';
import type { RetentionPolicy } from '../../functions/lib/config/schema.ts';

/** Any retention policy the config accepts (one that keeps something), for the planners' property tests. */
export const policyArb: fc.Arbitrary<RetentionPolicy> = fc
  .record({
    keepLast: fc.integer({ min: 0, max: 5 }),
    daily: fc.integer({ min: 0, max: 6 }),
    weekly: fc.integer({ min: 0, max: 5 }),
    monthly: fc.integer({ min: 0, max: 4 }),
    yearly: fc.integer({ min: 0, max: 3 }),
    minAgeDays: fc.integer({ min: 0, max: 3 }),
  })
  .filter((p) => p.keepLast + p.daily + p.weekly + p.monthly + p.yearly > 0);
