import { describe, expect, it } from 'vitest';
import { parseMoment } from '../../functions/lib/restore/recover.ts';

/** `lifeboat recover --before`: a moment is read exactly, or refused; never guessed. */
describe('recover --before', () => {
  it('reads ISO 8601 times with a zone, and "<n>m|h|d ago"', () => {
    const now = new Date('2026-12-07T12:00:00Z');
    expect(parseMoment('2026-12-07T09:12:00Z')?.toISOString()).toBe('2026-12-07T09:12:00.000Z');
    expect(parseMoment('2026-12-07T10:12:00+01:00')?.toISOString()).toBe('2026-12-07T09:12:00.000Z');
    expect(parseMoment('2026-12-07 04:12:30.250-0500')?.toISOString()).toBe('2026-12-07T09:12:30.250Z');
    expect(parseMoment('30m ago', now)?.toISOString()).toBe('2026-12-07T11:30:00.000Z');
    expect(parseMoment('2 d ago', now)?.toISOString()).toBe('2026-12-05T12:00:00.000Z');
  });

  it('refuses what JavaScript would guess at: impossible dates, US-style dates, no zone', () => {
    for (const text of ['2026-02-30T09:12:00Z', '12/07/2026 09:12 +01:00', '2026-12-07T09:12:00', '2026-12-07T24:00:00Z', 'yesterday', '2026-12-07T09:12:00+15:00']) {
      expect(parseMoment(text), text).toBeUndefined();
    }
  });
});
