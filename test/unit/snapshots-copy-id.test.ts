import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sameRegionCopyId } from '../../functions/lib/snapshots/ids.ts';

describe('same-region copy id', () => {
  it('differs from its source, fits RDS limits and ends in -cmk, even for a 63-character source id', () => {
    // RDS identifiers: a letter, then letters, digits and single hyphens, no trailing hyphen, ≤ 63.
    const rdsId = fc
      .stringMatching(/^[a-z](-?[a-z0-9]){0,31}$/)
      .map((s) => s.padEnd(63, 'z').slice(0, 1 + Math.floor(s.length * 1.9)))
      .filter((s) => s.length <= 63 && !/--|-$/.test(s));
    fc.assert(
      fc.property(rdsId, (id) => {
        const copy = sameRegionCopyId(id);
        expect(copy).not.toBe(id);
        expect(copy.length).toBeLessThanOrEqual(63);
        expect(copy).toMatch(/^[a-z][a-z0-9-]*-cmk$/);
        expect(copy).not.toMatch(/--/);
      }),
    );
    expect(sameRegionCopyId(`lifeboat-${'x'.repeat(54)}`)).not.toBe(`lifeboat-${'x'.repeat(54)}`);
  });
});
