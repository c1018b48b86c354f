import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { collectStatus, type StatusSources } from '../../functions/lib/status/model.ts';
import { renderStatusText } from '../../functions/lib/status/render-text.ts';

const config = parseConfig({
  name: 'acme',
  source: { region: 'eu-west-1' },
  databases: ['orders', 'billing'].map((id) => ({ id, connection: { database: id, host: 'db', passwordEnv: 'PW' } })),
  plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['orders', 'billing'], rpoMinutes: 1440, rtoMinutes: 30 }],
});
const now = new Date('2026-11-21T12:00:00Z');
const escape = (s: string) => s.replace(/[[\]\\^$.|?*+()]/g, '\\$&');
const hoursAgo = (h: number) => new Date(now.getTime() - h * 3600_000).toISOString();

function sources(overrides: Partial<Record<'orders' | 'billing', { backupsAgo?: number[]; drills?: { passed: boolean; rtoMinutes?: number; emulated?: boolean }[] }>>): StatusSources {
  return {
    backups: async (db) => (overrides[db as 'orders']?.backupsAgo ?? [2]).map((h, i) => ({ backupId: `b${i}`, consistentAt: hoursAgo(h), storedBytes: 1000 })),
    drills: async (db) =>
      (overrides[db as 'orders']?.drills ?? [{ passed: true, rtoMinutes: 10 }]).map((d, i) => ({
        drillId: `d${i}`,
        finishedAt: hoursAgo(1 + i),
        passed: d.passed,
        emulated: d.emulated,
        rtoSeconds: (d.rtoMinutes ?? 10) * 60,
        rpoSeconds: 3600,
        failures: d.passed ? [] : ['row counts: orders has 9 rows, the manifest says 10'],
      })),
  };
}

describe('status', () => {
  it('says SAFE when every database has a fresh backup proven by a passing drill', async () => {
    const status = await collectStatus(config, sources({}), now);
    expect(status.severity).toBe('ok');
    expect(status.databases.map((d) => d.newestBackup?.ageMinutes)).toEqual([120, 120]);
    expect(renderStatusText(status, false)).toMatch(/verdict: SAFE/);
  });

  it('flags a backup older than the RPO as failing and paints the row red on a terminal', async () => {
    const status = await collectStatus(config, sources({ billing: { backupsAgo: [30, 55] } }), now);
    const billing = status.databases.find((d) => d.databaseId === 'billing')!;
    expect(billing.severity).toBe('failing');
    expect(billing.problems[0]!.message).toBe('newest backup is 1800 min old, RPO target 1440 min');
    const text = renderStatusText(status, true);
    const RED = '\u001b[31m';
    expect(text).toMatch(new RegExp(`${escape(RED)}billing\\s+FAILING`));
    expect(text).not.toContain(`${RED}orders`);
    expect(text).toContain(`verdict: ${RED}NOT SAFE`);
  });

  it('reports a failed last drill and an RTO over target, but never counts an emulated drill as a proven restore', async () => {
    const status = await collectStatus(
      config,
      sources({ orders: { drills: [{ passed: false }] }, billing: { drills: [{ passed: true, rtoMinutes: 45, emulated: true }] } }),
      now,
    );
    const [orders, billing] = status.databases;
    expect(orders!.problems.map((p) => p.message)).toEqual(['last drill failed: row counts: orders has 9 rows, the manifest says 10']);
    expect(billing!.problems.map((p) => p.message)).toEqual(['measured RTO 45 min exceeds target 30 min']);
    expect(billing!.newestProvenRestore).toBeUndefined();
  });

  it('warns when a database has never been restored by a drill, and at 90 % snapshot quota', async () => {
    const status = await collectStatus(config, { ...sources({}), drills: async () => [], snapshotQuota: async () => ({ used: 91, limit: 100 }) }, now);
    expect(status.severity).toBe('warning');
    expect(status.problems).toEqual([{ severity: 'warning', message: 'manual snapshot quota 91/100 used' }]);
    expect(status.databases[0]!.problems[0]!.message).toMatch(/never restored by a drill/);
  });
});
