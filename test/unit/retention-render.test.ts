import { describe, expect, it } from 'vitest';
import { planRetention } from '../../functions/lib/retention/planner.ts';
import { auditKeyFor, renderPrunePlan, type S3PrunePlan } from '../../functions/lib/retention/s3-executor.ts';

describe('retention plan rendering', () => {
  it('renders a plain-text table in the plan time zone, with incomplete and unreadable rows and totals', () => {
    const now = new Date('2026-11-21T09:36:00Z');
    const policy = { keepLast: 1, daily: 2, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 1 };
    const decisions = planRetention(
      [
        { id: '20261121T080000Z-aaaaaa', time: new Date('2026-11-21T08:00:00Z'), location: 'vault', verifiedByDrill: false },
        { id: '20261120T080000Z-bbbbbb', time: new Date('2026-11-20T08:00:00Z'), location: 'vault', verifiedByDrill: false },
        { id: '20261119T080000Z-cccccc', time: new Date('2026-11-19T08:00:00Z'), location: 'vault', verifiedByDrill: false },
        {
          id: '20261118T080000Z-dddddd',
          time: new Date('2026-11-18T08:00:00Z'),
          location: 'vault',
          verifiedByDrill: false,
          lockedUntil: new Date('2027-01-01T00:00:00Z'),
        },
      ],
      policy,
      now,
      'Pacific/Auckland',
    );
    const plan: S3PrunePlan = {
      target: { location: 'vault', bucket: 'vault-bucket', prefix: 'backups/', databaseId: 'orders' },
      policy,
      now,
      timeZone: 'Pacific/Auckland',
      versioned: true,
      decisions: decisions.map((d) => ({ ...d, kind: 'backup' as const, objects: [] })),
      incomplete: [
        {
          id: '20261101T000000Z-dead00',
          location: 'vault',
          time: new Date('2026-11-01T00:00:00Z'),
          action: 'delete',
          reasons: ['incomplete backup (no manifest)'],
          kind: 'incomplete',
          objects: [],
        },
      ],
      unreadable: [{ id: '20261001T000000Z-odd000', base: 'x', error: 'manifest.json is not JSON', objects: [] }],
      skippedLocked: ['20261118T080000Z-dddddd'],
      crowded: [],
      warnings: ['something odd'],
    };
    expect(renderPrunePlan(plan)).toBe(
      [
        'Retention plan for database orders at vault (s3://vault-bucket/backups/orders/)',
        'now 2026-11-21T09:36:00.000Z, time zone Pacific/Auckland; policy: keepLast 1, daily 2, weekly 0, monthly 0, yearly 0, minAgeDays 1',
        '',
        'ACTION  BACKUP                                TIME (Pacific/Auckland)  REASONS',
        'keep    20261121T080000Z-aaaaaa               2026-11-21 21:00         newest backup, last 1, daily 2026-11-21, younger than minimum age (1 d)',
        'keep    20261120T080000Z-bbbbbb               2026-11-20 21:00         daily 2026-11-20',
        'delete  20261119T080000Z-cccccc               2026-11-19 21:00         beyond policy',
        'keep    20261118T080000Z-dddddd               2026-11-18 21:00         under Object Lock until 2027-01-01T00:00:00.000Z',
        'delete  20261101T000000Z-dead00 (incomplete)  2026-11-01 13:00         incomplete backup (no manifest)',
        'keep    20261001T000000Z-odd000 (unreadable)                           manifest.json is not JSON',
        '',
        '4 backups: 3 keep, 1 delete (1 beyond policy but locked); 1 incomplete (1 delete); 1 unreadable (kept)',
        'warning: something odd',
        '',
      ].join('\n'),
    );
  });

  it('puts the audit log under the UTC date of the run, one object per run, location and database', () => {
    const target = { location: 'vault', bucket: 'b', prefix: 'backups/', databaseId: 'orders' };
    expect(auditKeyFor(target, 'run-1', new Date('2026-11-21T23:30:00-05:00'))).toBe(
      'backups/_audit/retention/2026/11/22/run-1.vault.orders.jsonl',
    );
    expect(auditKeyFor(target, 'arn:aws:states:x/1', new Date('2026-01-02T00:00:00Z'), 'audit/')).toBe(
      'audit/2026/01/02/arn_aws_states_x_1.vault.orders.jsonl',
    );
  });
});
