import { describe, expect, it } from 'vitest';
import { diffTableChecksums, relationKey, type TableChecksums } from '../../functions/lib/pg/table-checksums.ts';

describe('relationKey', () => {
  it('always double-quotes both parts and doubles embedded quotes', () => {
    expect(relationKey('public', 'orders')).toBe('"public"."orders"');
    expect(relationKey('Audit Log', 'Kunden Ü')).toBe('"Audit Log"."Kunden Ü"');
    expect(relationKey('a"b', 'c.d')).toBe('"a""b"."c.d"');
  });
});

describe('diffTableChecksums', () => {
  const base: TableChecksums = new Map([
    ['"public"."a"', { rows: 2, sha256: 'aa' }],
    ['"public"."b"', { rows: 3, sha256: 'bb' }],
    ['large object 7', { rows: 10, sha256: 'cc' }],
  ]);

  it('is empty for equal maps, whatever their insertion order', () => {
    expect(diffTableChecksums(base, new Map([...base].reverse()))).toEqual([]);
  });

  it('names every missing, unexpected, recounted and changed key, sorted', () => {
    const actual: TableChecksums = new Map([
      ['"public"."b"', { rows: 4, sha256: 'bb' }],
      ['"public"."c"', { rows: 0, sha256: 'dd' }],
      ['large object 7', { rows: 10, sha256: 'ee' }],
    ]);
    expect(diffTableChecksums(base, actual)).toEqual([
      '"public"."a": missing (expected 2 rows)',
      '"public"."b": 3 rows expected, 4 found',
      '"public"."c": unexpected (0 rows)',
      'large object 7: same 10 rows, different content',
    ]);
  });
});
