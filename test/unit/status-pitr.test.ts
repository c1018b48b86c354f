import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { collectStatus, statusPitrTargets, type StatusSources } from '../../functions/lib/status/model.ts';
import { pitrPostureFromRds } from '../../functions/lib/status/rds-sources.ts';
import { renderStatusHtml } from '../../functions/lib/status/render-html.ts';
import { renderStatusText } from '../../functions/lib/status/render-text.ts';
import { scriptedRds, type ScriptedInstance } from '../harness/scripted-rds.ts';

/**
 * Issue 13, must-show 2: `lifeboat status` shows the point-in-time window and
 * the PITR RPO (now - LatestRestorableTime) of every database of a plan with
 * `pitr`, read by the posture check (functions/lib/pitr/posture.ts) through
 * the status's PITR source. RDS is a scripted client (test/harness/scripted-rds.ts): orders is in posture, billing's newest restorable moment lags 40
 * minutes, ledger cannot be read (AccessDenied), reports is in no pitr plan.
 */
const now = new Date('2026-11-21T12:00:00Z');
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000);
const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000);
const connection = (database: string) => ({ database, host: 'db', passwordEnv: 'PW' });

function configWith(plans: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}) {
  return parseConfig({
    name: 'acme',
    source: { region: 'eu-west-1' },
    databases: ['orders', 'billing', 'ledger', 'reports'].map((id) => ({ id, connection: connection(id), rds: { instanceIdentifier: `${id}-db` } })),
    plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['orders', 'billing', 'ledger', 'reports'], rpoMinutes: 1440, rtoMinutes: 30 }, ...plans],
    ...extra,
  });
}
const pitrPlan = (id: string, databases: string[], pitr: Record<string, unknown>) => ({ id, schedule: { cron: 'cron(30 3 * * ? *)' }, databases, rpoMinutes: 1440, rtoMinutes: 60, pitr });
const config = configWith([pitrPlan('pitr', ['orders', 'billing', 'ledger'], { windowDays: 7, maxLagMinutes: 15 })]);

/** Instances by database id (instance `<id>-db`). */
const byInstance = (byDatabase: Record<string, ScriptedInstance>) => Object.fromEntries(Object.entries(byDatabase).map(([id, db]) => [`${id}-db`, db]));
const fleet = (): Record<string, ScriptedInstance> => ({
  orders: { retentionDays: 7, earliest: daysAgo(7), latest: minutesAgo(3) },
  billing: { retentionDays: 7, earliest: daysAgo(7), latest: minutesAgo(40) },
  ledger: { retentionDays: 7, deny: true },
  reports: { retentionDays: 7, earliest: daysAgo(7), latest: minutesAgo(1) },
});

/** Fresh backups and passing drills everywhere, so only PITR can make a database late. */
function sources(pitrPosture?: StatusSources['pitrPosture']): StatusSources {
  return {
    backups: async () => [{ backupId: 'b0', consistentAt: minutesAgo(60).toISOString(), storedBytes: 1000 }],
    drills: async () => [{ drillId: 'd0', finishedAt: minutesAgo(30).toISOString(), passed: true, rtoSeconds: 600, rpoSeconds: 3600 }],
    ...(pitrPosture ? { pitrPosture } : {}),
  };
}

const byId = <T extends { databaseId: string }>(list: T[], id: string) => list.find((d) => d.databaseId === id)!;

describe('lifeboat status: point-in-time recovery', () => {
  it('shows the window and the PITR RPO of each pitr database: in posture, lagging (failing), unreadable (a warning, never a crash)', async () => {
    // Prepare
    const { rds } = scriptedRds(byInstance(fleet()));

    // Act
    const status = await collectStatus(config, sources(pitrPostureFromRds(rds)), now);

    // Assess: orders is in posture, with RDS's own window and a 3-minute PITR RPO.
    const orders = byId(status.databases, 'orders');
    expect(orders.pitr).toEqual({
      planIds: ['pitr'],
      identifier: 'orders-db',
      region: 'eu-west-1',
      state: 'ok',
      inPosture: true,
      severity: 'ok',
      windowDays: 7,
      retentionDays: 7,
      earliest: daysAgo(7).toISOString(),
      latest: minutesAgo(3).toISOString(),
      lagSeconds: 180,
      maxLagMinutes: 15,
      problems: [],
    });
    expect(orders.severity).toBe('ok');
    expect(orders.problems).toEqual([]);

    // billing's newest restorable moment is 40 minutes old: over its 15-minute target, so the database fails.
    const billing = byId(status.databases, 'billing');
    expect(billing.pitr).toMatchObject({ state: 'drift', inPosture: false, severity: 'failing', lagSeconds: 2400, maxLagMinutes: 15, latest: minutesAgo(40).toISOString(), retentionDays: 7 });
    expect(billing.severity).toBe('failing');
    expect(billing.problems).toEqual([{ severity: 'failing', message: expect.stringMatching(/^PITR: Database "billing" \(instance billing-db, eu-west-1\): the newest restorable moment is 2026-11-21T11:20:00\.000Z, 40 min behind now \(the PITR RPO\); wanted at most 15 min/) }]);

    // ledger cannot be read: unreadable with the reason and the fix, a warning, no window invented.
    const ledger = byId(status.databases, 'ledger');
    expect(ledger.pitr).toMatchObject({ state: 'unreadable', inPosture: false, severity: 'warning', windowDays: 7, maxLagMinutes: 15 });
    expect(ledger.pitr!.unreadable).toMatch(/could not be read \(AccessDenied: User: .* is not authorized to perform: rds:DescribeDBInstances/);
    expect(ledger.pitr!.unreadable).toMatch(/Fix: grant rds:DescribeDBInstances/);
    expect(ledger.pitr).not.toHaveProperty('lagSeconds');
    expect(ledger.pitr).not.toHaveProperty('latest');
    expect(ledger.problems).toEqual([{ severity: 'warning', message: `PITR unreadable: ${ledger.pitr!.unreadable}` }]);
    expect(ledger.severity).toBe('warning');

    // reports is in no pitr plan: no PITR part at all.
    expect(byId(status.databases, 'reports')).not.toHaveProperty('pitr');
    expect(status.severity).toBe('failing');

    // The JSON output (what --json prints) carries it.
    const json = JSON.parse(JSON.stringify(status)) as typeof status;
    expect(byId(json.databases, 'billing').pitr).toEqual(billing.pitr);
  });

  it('renders the PITR part as text: window, kept against wanted, PITR RPO against its maximum, posture', async () => {
    const { rds } = scriptedRds(byInstance(fleet()));
    const status = await collectStatus(config, sources(pitrPostureFromRds(rds)), now);

    const text = renderStatusText(status, false);

    const lines = text.split('\n');
    const start = lines.indexOf('point-in-time recovery (RDS automated backups):');
    expect(start).toBeGreaterThan(0);
    expect(lines[start + 1]).toMatch(/^database\s+PITR posture\s+RDS\s+window \(earliest to latest\)\s+kept \(wanted\)\s+PITR RPO \(max\)$/);
    const row = (id: string) => lines.slice(start + 3, start + 6).find((l) => l.startsWith(`${id} `));
    expect(row('orders')).toMatch(/^orders\s+IN POSTURE\s+orders-db \(eu-west-1\)\s+2026-11-14 12:00Z to 2026-11-21 11:57Z\s+7d \(7d\)\s+3m \(15m\)$/);
    expect(row('billing')).toMatch(/^billing\s+DRIFT\s+billing-db \(eu-west-1\)\s+2026-11-14 12:00Z to 2026-11-21 11:20Z\s+7d \(7d\)\s+40m \(15m\)$/);
    expect(row('ledger')).toMatch(/^ledger\s+UNREADABLE\s+ledger-db \(eu-west-1\)\s+-\s+\?d \(7d\)\s+\? \(15m\)$/);
    expect(lines.slice(start).some((l) => l.startsWith('reports'))).toBe(false);
    expect(text).toMatch(/^FAILING billing: PITR: Database "billing" .*40 min behind now/m);
    expect(text).toMatch(/^WARNING ledger: PITR unreadable: Database "ledger" .*could not be read \(AccessDenied/m);
    expect(text).toMatch(/verdict: NOT SAFE$/);

    // On a terminal the lagging row is red, the unreadable one yellow, the one in posture plain.
    const colored = renderStatusText(status, true).split('\n');
    expect(colored).toContain(`\u001b[31m${row('billing')}\u001b[0m`);
    expect(colored).toContain(`\u001b[33m${row('ledger')}\u001b[0m`);
    expect(colored).toContain(row('orders'));
  });

  it('renders the PITR part as HTML: a row per pitr database with its values, and the PITR RPO against maxLagMinutes', async () => {
    const { rds } = scriptedRds(byInstance(fleet()));
    const status = await collectStatus(config, sources(pitrPostureFromRds(rds)), now);

    const html = renderStatusHtml(status);

    const rows = [...html.matchAll(/<tr class="pitr (\w+)" ([^>]*)>(.*?)<\/tr>/g)].map(([, severity, attributes, cells]) => ({
      severity,
      ...Object.fromEntries([...attributes!.matchAll(/data-([\w-]+)="([^"]*)"/g)].map(([, k, v]) => [k, v])),
      cells,
    }));
    expect(rows.map(({ cells: _cells, ...r }) => r)).toEqual([
      { severity: 'ok', database: 'orders', state: 'ok', 'in-posture': 'true', 'retention-days': '7', 'window-days': '7', earliest: daysAgo(7).toISOString(), latest: minutesAgo(3).toISOString(), 'lag-seconds': '180', 'max-lag-minutes': '15' },
      { severity: 'failing', database: 'billing', state: 'drift', 'in-posture': 'false', 'retention-days': '7', 'window-days': '7', earliest: daysAgo(7).toISOString(), latest: minutesAgo(40).toISOString(), 'lag-seconds': '2400', 'max-lag-minutes': '15' },
      { severity: 'warning', database: 'ledger', state: 'unreadable', 'in-posture': 'false', 'retention-days': 'none', 'window-days': '7', earliest: 'none', latest: 'none', 'lag-seconds': 'none', 'max-lag-minutes': '15' },
    ]);
    expect(rows[1]!.cells).toContain('40.0 min (max 15 min)');
    expect(rows[2]!.cells).toMatch(/unreadable: Database &quot;ledger&quot; .*could not be read \(AccessDenied/);
    const bars = [...html.matchAll(/<rect class="bar([^"]*)" data-series="pitr-lag" data-database="(\w+)" data-value-minutes="([^"]+)"/g)].map(([, cls, db, minutes]) => ({ db, minutes, late: cls!.includes('late') }));
    expect(bars).toEqual([
      { db: 'orders', minutes: '3.0', late: false },
      { db: 'billing', minutes: '40.0', late: true },
      { db: 'ledger', minutes: 'none', late: true },
    ]);
    expect(html.match(/<svg class="chart pitr-lag"[\s\S]*?<\/svg>/)![0].match(/data-target-minutes="15"/g)).toHaveLength(3);
  });

  it('judges each database against the tightest targets of its pitr plans, and never starts a replication even with pitr.manage', async () => {
    // Prepare: billing is also in a plan wanting 14 days, 10 minutes and its backups replicated (manage on), reports only in that one; nothing replicates them yet.
    const strict = configWith(
      [pitrPlan('pitr', ['orders', 'billing', 'ledger'], { windowDays: 7, maxLagMinutes: 15 }), pitrPlan('pitr-strict', ['reports', 'billing'], { windowDays: 14, maxLagMinutes: 10, copyRegion: true, manage: true })],
      { snapshots: { copy: { region: 'eu-central-1', kmsKeyArn: 'arn:aws:kms:eu-central-1:111111111111:key/11111111-2222-3333-4444-555555555555' } } },
    );
    const scripted = fleet();
    scripted.billing = { retentionDays: 7, earliest: daysAgo(7), latest: minutesAgo(12) };
    const { rds, calls } = scriptedRds(byInstance(scripted));

    // Act
    const status = await collectStatus(strict, sources(pitrPostureFromRds(rds)), now);

    // Assess
    expect(statusPitrTargets(strict).get('billing')).toMatchObject({ planIds: ['pitr', 'pitr-strict'], target: { planId: 'pitr-strict', pitr: { windowDays: 14, maxLagMinutes: 10, copyRegion: true, manage: false } } });
    const billing = byId(status.databases, 'billing');
    expect(billing.pitr).toMatchObject({ planIds: ['pitr', 'pitr-strict'], state: 'drift', severity: 'failing', windowDays: 14, retentionDays: 7, maxLagMinutes: 10, lagSeconds: 720, copyRegion: { region: 'eu-central-1', state: 'missing' } });
    expect(billing.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/^PITR: .*keeps automated backups for 7 days; the plan "pitr-strict" wants a point-in-time window of 14 days/),
      expect.stringMatching(/^PITR: .*12 min behind now \(the PITR RPO\); wanted at most 10 min/),
      expect.stringMatching(/^PITR: .*not replicated to eu-central-1/),
    ]);
    expect(byId(status.databases, 'reports').pitr).toMatchObject({ planIds: ['pitr-strict'], state: 'drift', severity: 'warning', windowDays: 14, retentionDays: 7, copyRegion: { region: 'eu-central-1', state: 'missing' } });
    // The copy region was read for both, and nothing was started there or anywhere.
    expect(calls.filter((c) => c.region === 'eu-central-1').map((c) => c.command)).toEqual(['DescribeDBInstanceAutomatedBackupsCommand', 'DescribeDBInstanceAutomatedBackupsCommand']);
    expect(calls.map((c) => c.command)).not.toContain('StartDBInstanceAutomatedBackupsReplicationCommand');
    // orders keeps its own plan's targets.
    expect(byId(status.databases, 'orders').pitr).toMatchObject({ planIds: ['pitr'], windowDays: 7, maxLagMinutes: 15, state: 'ok' });
  });

  it('marks a shortened window a warning, not a failure, when the PITR RPO is within target', async () => {
    const scripted = fleet();
    scripted.orders = { retentionDays: 3, earliest: daysAgo(3), latest: minutesAgo(2) };
    delete scripted.ledger!.deny;
    Object.assign(scripted.ledger!, { earliest: daysAgo(7), latest: minutesAgo(4) });
    scripted.billing = { retentionDays: 7, earliest: daysAgo(7), latest: minutesAgo(5) };
    const { rds } = scriptedRds(byInstance(scripted));

    const status = await collectStatus(config, sources(pitrPostureFromRds(rds)), now);

    const orders = byId(status.databases, 'orders');
    expect(orders.pitr).toMatchObject({ state: 'drift', severity: 'warning', retentionDays: 3, windowDays: 7, lagSeconds: 120 });
    expect(orders.problems).toEqual([{ severity: 'warning', message: expect.stringMatching(/^PITR: .*keeps automated backups for 3 days; the plan "pitr" wants a point-in-time window of 7 days/) }]);
    expect(status.severity).toBe('warning');
  });

  it('keeps going when the PITR source itself throws: every pitr database is unreadable with the error, the rest of the status is intact', async () => {
    const status = await collectStatus(
      config,
      sources(async () => {
        throw Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
      }),
      now,
    );

    for (const id of ['orders', 'billing', 'ledger']) {
      const d = byId(status.databases, id);
      expect(d.pitr, id).toMatchObject({ state: 'unreadable', severity: 'warning', unreadable: expect.stringContaining('(CredentialsProviderError: Could not load credentials from any providers)') });
      expect(d.newestBackup?.backupId, id).toBe('b0');
    }
    expect(byId(status.databases, 'reports')).not.toHaveProperty('pitr');
    expect(status.severity).toBe('warning');
  });

  it('leaves PITR out when the status has no PITR source', async () => {
    const status = await collectStatus(config, sources(), now);
    expect(status.databases.filter((d) => d.pitr !== undefined)).toEqual([]);
    expect(renderStatusText(status, false)).not.toContain('point-in-time recovery');
    expect(renderStatusHtml(status)).not.toContain('pitr-lag');
  });
});
