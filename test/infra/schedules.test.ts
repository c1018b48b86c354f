import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { backupRunInput, backupSchedules } from '../../events/schedules.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { exampleConfigJson } from './helpers/app.ts';

const example = () => parseConfig(exampleConfigJson(), 'example');

describe('backup schedules from config', () => {
  it('names only the plan (and optionally some of its databases): the deployed config says the rest', () => {
    expect(backupRunInput(example(), 'nightly')).toEqual({ planId: 'nightly' });
    expect(backupRunInput(example(), 'nightly', ['orders'])).toEqual({ planId: 'nightly', databaseIds: ['orders'] });
  });

  it('carries no secret, no secret ARN and no host', () => {
    const text = JSON.stringify(backupSchedules(example()));
    expect(text).not.toMatch(/password|secretsmanager|amazonaws\.com/i);
  });

  it('names the known plans when asked for an unknown one', () => {
    expect(() => backupRunInput(example(), 'hourly')).toThrow(/Unknown plan "hourly".*"nightly"/);
  });

  it('schedules every plan, with its cron, time zone and flexible window', () => {
    expect(backupSchedules(example())).toEqual([
      {
        planId: 'nightly',
        expression: 'cron(0 3 * * ? *)',
        timeZone: 'Europe/Berlin',
        flexibleWindowMinutes: 15,
        input: { planId: 'nightly' },
      },
    ]);
  });

  it('schedules snapshot-only plans too (they used to be left out, so they never ran)', () => {
    // Prepare
    const raw = exampleConfigJson() as Record<string, unknown> & { plans: Array<Record<string, unknown>> };
    raw.plans.push({ ...raw.plans[0], id: 'snapshots', dump: false, snapshot: true });
    raw.snapshots = { copy: { region: 'eu-central-1', kmsKeyArn: 'arn:aws:kms:eu-central-1:111111111111:key/11111111-2222-3333-4444-555555555555' } };

    // Act
    const planIds = backupSchedules(parseConfig(raw)).map((s) => s.planId);

    // Assess
    expect(planIds).toEqual(['nightly', 'snapshots']);
  });

  it('keeps events/backup-run.sample.json equal to the input built from the example config', () => {
    const sample: unknown = JSON.parse(readFileSync(new URL('../../events/backup-run.sample.json', import.meta.url), 'utf8'));
    expect(sample).toEqual(backupRunInput(example(), 'nightly'));
  });
});
