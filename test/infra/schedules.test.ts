import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { backupRunInput, backupSchedules } from '../../events/schedules.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { databaseSchema } from '../../functions/lib/config/schema.ts';
import { exampleConfigJson } from './helpers/app.ts';

const example = () => parseConfig(exampleConfigJson(), 'example');

describe('backup schedules from config', () => {
  it('builds the run input from the plan: id, max concurrency and its databases in plan order, defaults filled', () => {
    // Prepare
    const raw = exampleConfigJson() as Record<string, unknown> & { plans: Array<Record<string, unknown>> };
    raw.plans[0]!.databases = ['billing', 'orders'];
    raw.plans[0]!.maxConcurrency = 2;

    // Act
    const input = backupRunInput(parseConfig(raw), 'nightly');

    // Assess
    expect(input.planId).toBe('nightly');
    expect(input.maxConcurrency).toBe(2);
    expect(input.databases.map((d) => d.id)).toEqual(['billing', 'orders']);
    expect(input.databases[1]?.connection.sslMode).toBe('verify-full');
    for (const database of input.databases) expect(databaseSchema.parse(database)).toEqual(database);
  });

  it('carries no secrets, only secret ARNs', () => {
    const text = JSON.stringify(backupRunInput(example(), 'nightly'));
    expect(text).not.toMatch(/password/i);
    expect(text).toContain('arn:aws:secretsmanager:');
  });

  it('names the known plans when asked for an unknown one', () => {
    expect(() => backupRunInput(example(), 'hourly')).toThrow(/Unknown plan "hourly".*"nightly"/);
  });

  it('schedules every plan that dumps, with its cron, time zone and flexible window', () => {
    expect(backupSchedules(example())).toEqual([
      {
        planId: 'nightly',
        expression: 'cron(0 3 * * ? *)',
        timeZone: 'Europe/Berlin',
        flexibleWindowMinutes: 15,
        input: backupRunInput(example(), 'nightly'),
      },
    ]);
  });

  it('leaves snapshot-only plans out of the dump schedules', () => {
    // Prepare
    const raw = exampleConfigJson() as Record<string, unknown> & { plans: Array<Record<string, unknown>> };
    raw.plans.push({ ...raw.plans[0], id: 'snapshots', dump: false, snapshot: true });
    raw.snapshots = { copy: { region: 'eu-central-1', kmsKeyArn: 'arn:aws:kms:eu-central-1:111111111111:key/11111111-2222-3333-4444-555555555555' } };

    // Act
    const planIds = backupSchedules(parseConfig(raw)).map((s) => s.planId);

    // Assess
    expect(planIds).toEqual(['nightly']);
  });

  it('keeps events/backup-run.sample.json equal to the input built from the example config', () => {
    const sample: unknown = JSON.parse(readFileSync(new URL('../../events/backup-run.sample.json', import.meta.url), 'utf8'));
    expect(sample).toEqual(backupRunInput(example(), 'nightly'));
  });
});
