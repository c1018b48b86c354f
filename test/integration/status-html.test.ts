import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { collectStatus } from '../../functions/lib/status/model.ts';
import { renderStatusHtml } from '../../functions/lib/status/render-html.ts';

function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean) as string[];
  for (const path of candidates) {
    try {
      execFileSync(path, ['--version'], { stdio: 'ignore' });
      return path;
    } catch {
      // try the next
    }
  }
  throw new Error('Chromium is required for this test: install it with `apt-get install chromium` (or set CHROMIUM_PATH).');
}

describe('lifeboat status --html', () => {
  it('renders a self-contained page whose charts hold the drill RTO trend and backup ages', async () => {
    // Prepare: two databases with drill histories, one late.
    const config = parseConfig({
      name: 'acme',
      source: { region: 'eu-west-1' },
      databases: ['orders', 'billing'].map((id) => ({ id, connection: { database: id, host: 'db', passwordEnv: 'PW' } })),
      plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['orders', 'billing'], rpoMinutes: 1440, rtoMinutes: 30 }],
    });
    const now = new Date('2026-11-21T12:00:00Z');
    const rto = { orders: [12, 14, 11, 35, 13], billing: [20, 22] } as Record<string, number[]>;
    const status = await collectStatus(
      config,
      {
        backups: async (db) => [{ backupId: 'b', consistentAt: new Date(now.getTime() - (db === 'billing' ? 30 : 3) * 3600_000).toISOString(), storedBytes: 1 }],
        drills: async (db) => rto[db]!.map((m, i) => ({ drillId: `${db}-${i}`, finishedAt: new Date(now.getTime() - (10 - i) * 86_400_000).toISOString(), passed: m <= 30, rtoSeconds: m * 60, rpoSeconds: 60 })),
      },
      now,
    );
    const html = renderStatusHtml(status);
    const dir = join(process.cwd(), 'test-results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'status.html');
    writeFileSync(file, html);

    // Act
    const browser = await chromium.launch({
      executablePath: chromiumPath(),
      args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(`file://${file}`);
      const charts = await page.$$eval('svg.chart.rto', (svgs) =>
        svgs.map((svg) => ({
          database: svg.getAttribute('data-database'),
          values: [...svg.querySelectorAll('circle[data-series="rto"]')].map((c) => Number(c.getAttribute('data-value-minutes'))),
          target: Number(svg.querySelector('line.target')!.getAttribute('data-target-minutes')),
          drawn: [...svg.querySelectorAll('circle')].every((c) => c.getBoundingClientRect().width > 0),
        })),
      );
      const ages = await page.$$eval('rect[data-series="backup-age"]', (rects) => rects.map((r) => ({ db: r.getAttribute('data-database'), minutes: Number(r.getAttribute('data-value-minutes')), late: r.classList.contains('late'), width: r.getBoundingClientRect().width })));
      await page.screenshot({ path: join(dir, 'status.png'), fullPage: true });

      // Assess
      expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
      expect(charts).toEqual([
        { database: 'orders', values: [12, 14, 11, 35, 13], target: 30, drawn: true },
        { database: 'billing', values: [20, 22], target: 30, drawn: true },
      ]);
      expect(ages).toEqual([
        { db: 'orders', minutes: 180, late: false, width: expect.any(Number) },
        { db: 'billing', minutes: 1800, late: true, width: expect.any(Number) },
      ]);
      expect(ages[1]!.width).toBeGreaterThan(ages[0]!.width);
      expect(await page.textContent('.verdict')).toBe('NOT SAFE');
    } finally {
      await browser.close();
    }
  });

  it('draws the PITR window and PITR RPO of each pitr database: in posture, lagging, unreadable', async () => {
    // Prepare: three databases of a pitr plan; the posture results as the posture check returns them (test/unit/status-pitr.test.ts reads them from RDS).
    const config = parseConfig({
      name: 'acme',
      source: { region: 'eu-west-1' },
      databases: ['orders', 'billing', 'ledger'].map((id) => ({ id, connection: { database: id, host: 'db', passwordEnv: 'PW' }, rds: { instanceIdentifier: `${id}-db` } })),
      plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['orders', 'billing', 'ledger'], rpoMinutes: 1440, rtoMinutes: 30, pitr: { windowDays: 7, maxLagMinutes: 15 } }],
    });
    const now = new Date('2026-11-21T12:00:00Z');
    const at = (minutesAgo: number) => new Date(now.getTime() - minutesAgo * 60_000).toISOString();
    const base = { planId: 'nightly', region: 'eu-west-1', windowDays: 7, maxLagMinutes: 15 };
    const status = await collectStatus(
      config,
      {
        backups: async () => [{ backupId: 'b', consistentAt: at(60), storedBytes: 1 }],
        pitrPosture: async () => [
          { ...base, databaseId: 'orders', identifier: 'orders-db', kind: 'instance', status: 'ok', retentionDays: 7, earliest: at(7 * 1440), latest: at(3), lagSeconds: 180, problems: [] },
          { ...base, databaseId: 'billing', identifier: 'billing-db', kind: 'instance', status: 'drift', retentionDays: 7, earliest: at(7 * 1440), latest: at(40), lagSeconds: 2400, problems: ['Database "billing": 40 min behind now (the PITR RPO)'] },
          { ...base, databaseId: 'ledger', identifier: 'ledger-db', status: 'unreadable', problems: ['Database "ledger": its point-in-time window could not be read (AccessDenied)'] },
        ],
      },
      now,
    );
    const dir = join(process.cwd(), 'test-results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'status-pitr.html');
    writeFileSync(file, renderStatusHtml(status));

    // Act
    const browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      await page.goto(`file://${file}`);
      const rows = await page.$$eval('table.pitr tbody tr', (trs) => trs.map((tr) => ({ cells: [...tr.querySelectorAll('td')].slice(0, 6).map((td) => td.textContent), shown: tr.getBoundingClientRect().height > 0 })));
      const bars = await page.$$eval('rect[data-series="pitr-lag"]', (rects) => rects.map((r) => ({ db: r.getAttribute('data-database'), width: r.getBoundingClientRect().width, fill: r.ownerDocument.defaultView!.getComputedStyle(r).fill })));
      await page.screenshot({ path: join(dir, 'status-pitr.png'), fullPage: true });

      // Assess
      expect(rows).toEqual([
        { cells: ['orders', 'orders-db (eu-west-1)', 'in posture', `${at(7 * 1440)} to ${at(3)}`, '7 d (wanted 7 d)', '3.0 min (max 15 min)'], shown: true },
        { cells: ['billing', 'billing-db (eu-west-1)', 'drift', `${at(7 * 1440)} to ${at(40)}`, '7 d (wanted 7 d)', '40.0 min (max 15 min)'], shown: true },
        { cells: ['ledger', 'ledger-db (eu-west-1)', 'unreadable', '-', '? d (wanted 7 d)', '? (max 15 min)'], shown: true },
      ]);
      expect(await page.textContent('table.pitr tr[data-database="ledger"] td:last-child')).toBe('unreadable: Database "ledger": its point-in-time window could not be read (AccessDenied)');
      expect(bars.map((b) => b.db)).toEqual(['orders', 'billing', 'ledger']);
      expect(bars[1]!.width).toBeGreaterThan(bars[0]!.width * 10);
      // In posture green, lagging red, unknown grey.
      expect(bars.map((b) => b.fill)).toEqual(['rgb(61, 154, 91)', 'rgb(210, 59, 59)', 'rgb(154, 163, 174)']);
    } finally {
      await browser.close();
    }
  });
});
