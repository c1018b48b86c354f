import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DEFAULT_HEADROOM, MAX_PARTS, MEMORY_SAFE_PART_SIZE, MIN_PART_SIZE, planPartSize } from '../../functions/lib/backup/part-size.ts';

const TiB = 1024 ** 4;

describe('multipart part size', () => {
  it('never needs more than 10,000 parts for a dump up to the headroom over the database size, up to the memory cap', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 12 * TiB }), fc.double({ min: 0, max: 1, noNaN: true }), (dbBytes, fraction) => {
        const plan = planPartSize(dbBytes);
        const dumpBytes = Math.min(Math.floor(dbBytes * DEFAULT_HEADROOM * fraction), plan.maxBytes);
        expect(Math.ceil(dumpBytes / plan.partSize)).toBeLessThanOrEqual(MAX_PARTS);
        expect(plan.maxBytes).toBe(plan.partSize * MAX_PARTS);
      }),
    );
  });

  it('never plans parts above the memory-safe size, whatever the database size (peak RSS stays flat)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 * TiB }), (dbBytes) => {
        expect(planPartSize(dbBytes).partSize).toBeLessThanOrEqual(MEMORY_SAFE_PART_SIZE);
      }),
    );
    expect(MEMORY_SAFE_PART_SIZE).toBe(24 * 1024 * 1024);
    expect(planPartSize(100 * 1024 ** 3).maxBytes).toBe(24 * 1024 * 1024 * MAX_PARTS);
  });

  it('stays within S3 part limits and whole MiB', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 * TiB }), (dbBytes) => {
        const { partSize } = planPartSize(dbBytes);
        expect(partSize).toBeGreaterThanOrEqual(MIN_PART_SIZE);
        expect(partSize).toBeLessThanOrEqual(MEMORY_SAFE_PART_SIZE);
        expect(partSize % (1024 * 1024)).toBe(0);
      }),
    );
  });

  it('keeps small databases at the minimum part size, so memory stays low', () => {
    expect(planPartSize(1024 ** 3).partSize).toBe(MIN_PART_SIZE);
    expect(planPartSize(40 * 1024 ** 3).partSize).toBe(19 * 1024 * 1024);
    expect(planPartSize(200 * 1024 ** 3).partSize).toBe(MEMORY_SAFE_PART_SIZE);
  });
});
