import { describe, expect, it } from 'vitest';
import type { TocEntry } from '../../functions/lib/restore/archive-toc.ts';
import { selectEntries } from '../../functions/lib/restore/selection.ts';

/**
 * Issue 12, must-show 3: the closure of a selective restore over an archive's
 * dependency graph (the shape pg_dump 15 writes; see restore-selective.test.ts
 * for the same on real archives).
 */
const e = (dumpId: number, desc: string, namespace: string | null, tag: string, dependencies: number[] = []): TocEntry => ({ dumpId, desc, namespace, tag, owner: 'o', section: 2, defn: '', dependencies });

const toc: TocEntry[] = [
  e(1, 'ENCODING', null, 'ENCODING'),
  e(2, 'SCHEMA', null, 'app'),
  e(3, 'ACL', null, 'SCHEMA app', [2]),
  e(4, 'TYPE', 'app', 'status', [2]),
  e(5, 'FUNCTION', 'app', 'touch()', [2]),
  e(10, 'TABLE', 'app', 'customers', [2]),
  e(11, 'TABLE', 'app', 'orders', [2, 4]),
  e(12, 'SEQUENCE', 'app', 'orders_id_seq', [2, 11]),
  e(13, 'SEQUENCE OWNED BY', 'app', 'orders_id_seq', [12]),
  e(14, 'DEFAULT', 'app', 'orders id', [12, 11]),
  e(20, 'TABLE DATA', 'app', 'customers', [10]),
  e(21, 'TABLE DATA', 'app', 'orders', [11]),
  e(22, 'SEQUENCE SET', 'app', 'orders_id_seq', [12]),
  e(30, 'CONSTRAINT', 'app', 'customers customers_pkey', [10]),
  e(31, 'CONSTRAINT', 'app', 'orders orders_pkey', [11]),
  e(32, 'INDEX', 'app', 'orders_status_idx', [11]),
  e(33, 'TRIGGER', 'app', 'orders orders_touch', [11, 5]),
  // The referenced table's key first, then the referenced table, then the referencing one: the tag names the owner.
  e(34, 'FK CONSTRAINT', 'app', 'orders orders_customer_id_fkey', [30, 10, 11]),
  e(35, 'ACL', 'app', 'TABLE orders', [11]),
  e(36, 'ACL', 'app', 'TABLE customers', [10]),
];

describe('selective restore closure', () => {
  it('brings a table whole, what it needs as structure, and leaves out a foreign key to a table it does not restore', () => {
    // Act
    const s = selectEntries(toc, { schemas: [], tables: ['app.orders'] }, 'backup x');

    // Assess
    expect(s.ids).toEqual([1, 2, 3, 4, 5, 11, 12, 13, 14, 21, 22, 31, 32, 33, 35]);
    expect(s.tables).toEqual([{ schema: 'app', name: 'orders' }]);
    expect(s.leftOut).toEqual(['FK CONSTRAINT app.orders orders_customer_id_fkey: needs CONSTRAINT app.customers customers_pkey, TABLE app.customers, which is not restored']);
  });

  it('keeps the foreign key when both of its tables are restored', () => {
    // Act
    const s = selectEntries(toc, { schemas: [], tables: ['orders', 'app.customers'] }, 'backup x');

    // Assess
    expect(s.ids).toContain(34);
    expect(s.leftOut).toEqual([]);
    expect(s.tables.map((t) => t.name).sort()).toEqual(['customers', 'orders']);
  });

  it('refuses a table it does not have, naming it', () => {
    expect(() => selectEntries(toc, { schemas: [], tables: ['app.refunds'] }, 'backup x')).toThrow(/backup x has no table app\.refunds/);
  });
});

import { projectPrivilegeLines } from '../../functions/lib/pg/privileges.ts';

describe('privileges comparison across majors', () => {
  it('leaves out privileges the source server did not know (MAINTAIN before 17), and nothing else', () => {
    // Prepare: a PostgreSQL 15 backup's line, and the same table restored into 17 (acldefault adds MAINTAIN).
    const backup = ['table\t"app"."t"\towner="app_owner"\tacl=OWNER=DELETE,INSERT,REFERENCES,SELECT,TRIGGER,TRUNCATE,UPDATE "readers"=SELECT'];
    const restored = ['table\t"app"."t"\towner="app_owner"\tacl=OWNER=DELETE,INSERT,MAINTAIN,REFERENCES,SELECT,TRIGGER,TRUNCATE,UPDATE "readers"=SELECT'];
    const lost = ['table\t"app"."t"\towner="app_owner"\tacl=OWNER=DELETE,INSERT,MAINTAIN,REFERENCES,SELECT,TRIGGER,TRUNCATE,UPDATE'];

    // Act
    const keep = { owners: true, acls: true, unknownPrivileges: ['MAINTAIN'] };

    // Assess
    expect(projectPrivilegeLines(restored, keep)).toEqual(projectPrivilegeLines(backup, keep));
    expect(projectPrivilegeLines(restored, { owners: true, acls: true })).not.toEqual(projectPrivilegeLines(backup, { owners: true, acls: true }));
    expect(projectPrivilegeLines(lost, keep)).not.toEqual(projectPrivilegeLines(backup, keep));
  });
});
