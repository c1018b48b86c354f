import { describe, expect, it } from 'vitest';
import { measureDrill } from '../../functions/lib/drill/measure.ts';
import { drillRequestSchema, type DrillCheck, type DrillState } from '../../functions/lib/drill/types.ts';

const started = '2026-03-01T04:00:00.000Z';
const at = (secondsAfterStart: number) => new Date(Date.parse(started) + secondsAfterStart * 1000).toISOString();
const passed = (name: string): DrillCheck => ({ name, status: 'passed', detail: 'ok', differences: [] });

function state(options: { checks?: DrillCheck[]; emulated?: boolean; firstQuery?: number; consistent?: number; newest?: number; rtoMinutes?: number; rpoMinutes?: number }): DrillState {
  const consistentAt = at(options.consistent ?? -600);
  return {
    request: drillRequestSchema.parse({ databaseId: 'orders', planId: 'nightly', targets: { rpoMinutes: options.rpoMinutes ?? 60, rtoMinutes: options.rtoMinutes ?? 30 } }),
    selection: {
      drillId: '20260301T040000Z-abcdef',
      startedAt: started,
      expiresAt: at(6 * 3600),
      choice: 'latest',
      candidates: 3,
      newestConsistentAt: at(options.newest ?? options.consistent ?? -600),
      backup: { kind: 'dump', backupId: 'b1', from: 'source', bucket: 'b', prefix: 'backups/', manifestKey: 'k', consistentAt, databaseName: 'orders', serverMajor: 15, sizeBytes: 1 },
    },
    verification: { checks: options.checks ?? [passed('tables'), passed('row counts')], emulated: options.emulated ?? false, firstVerificationQueryAt: options.emulated ? undefined : at(options.firstQuery ?? 300) },
  };
}

describe('measureDrill', () => {
  it('measures RTO from drill start to the first verification query, and RPO from the consistent point', () => {
    const m = measureDrill(state({ firstQuery: 300, consistent: -600 }), 's3://b/r.json');
    expect(m.verdict).toBe('passed');
    expect(m.rto).toMatchObject({ seconds: 300, targetSeconds: 1800, met: true });
    expect(m.rpo).toMatchObject({ seconds: 600, targetSeconds: 3600, met: true, basis: 'drilled-backup' });
    expect(m.objectivesMet).toBe(true);
  });

  it('flags a missed RTO or RPO with the measured values', () => {
    const m = measureDrill(state({ firstQuery: 2400, consistent: -7200 }), 's3://b/r.json');
    expect(m.verdict).toBe('passed');
    expect(m.objectivesMet).toBe(false);
    expect(m.objectiveSummary).toMatch(/measured RTO 40\.0m exceeds the target 30\.0m; measured RPO 2\.0h exceeds the target 1\.0h\. Next step: /);
  });

  it('judges the RPO objective on the newest backup when an older one was drilled at random', () => {
    const m = measureDrill(state({ consistent: -5 * 86_400, newest: -600 }), 's3://b/r.json');
    expect(m.rpo).toMatchObject({ seconds: 5 * 86_400, met: true, basis: 'newest-backup' });
  });

  it('fails on any failed check and names each one', () => {
    const failed: DrillCheck = { name: 'row counts', status: 'failed', detail: '10 rows', differences: ['table "public"."t" has 9 rows, the manifest says 10'] };
    const m = measureDrill(state({ checks: [passed('tables'), failed] }), 's3://b/r.json');
    expect(m.verdict).toBe('failed');
    expect(m.summary).toMatch(/failed 1 of 2 checks: row counts: table "public"\."t" has 9 rows, the manifest says 10\. Next step: treat backup b1 as unproven; read the drill report at s3:\/\/b\/r\.json/);
  });

  it('never turns an emulated drill into a pass, and does not invent an RTO for it', () => {
    const m = measureDrill(state({ emulated: true, checks: [{ name: 'tables', status: 'not-performed', detail: 'emulated', differences: [] }] }), 's3://b/r.json');
    expect(m.verdict).toBe('emulated');
    expect(m.rto).toMatchObject({ seconds: null, met: null });
    expect(m.objectivesMet).toBe(true);
  });
});
