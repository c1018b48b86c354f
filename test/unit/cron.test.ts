import { describe, expect, it } from 'vitest';
import { maxRunsPerDay } from '../../functions/lib/config/cron.ts';

describe('the most runs an EventBridge cron makes in a day', () => {
  it('multiplies the values its minute and hour fields select, whatever the day fields say', () => {
    expect(maxRunsPerDay('cron(0 3 * * ? *)')).toBe(1);
    expect(maxRunsPerDay('cron(0 3 ? * MON-FRI *)')).toBe(1);
    expect(maxRunsPerDay('cron(0 */4 * * ? *)')).toBe(6);
    expect(maxRunsPerDay('cron(0/30 * * * ? *)')).toBe(48);
    expect(maxRunsPerDay('cron(15,45 2,14 * * ? *)')).toBe(4);
    expect(maxRunsPerDay('cron(0-10/5 8-9 * * ? *)')).toBe(6);
    expect(maxRunsPerDay('cron(* * * * ? *)')).toBe(1440);
    expect(maxRunsPerDay('cron(0,0,0 3 * * ? *)')).toBe(1);
  });

  it('refuses what it cannot read, naming the expression', () => {
    expect(() => maxRunsPerDay('cron(0 3 * * ?)')).toThrow(/cron\(0 3 \* \* \?\): not an EventBridge cron/);
    expect(() => maxRunsPerDay('cron(L 3 * * ? *)')).toThrow(/cannot read the field "L"/);
    expect(() => maxRunsPerDay('cron(0 24 * * ? *)')).toThrow(/"24" is outside 0-23/);
  });
});
