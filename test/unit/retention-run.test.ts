import { describe, expect, it } from 'vitest';
import { retentionRunInput, retentionSchedules } from '../../events/schedules.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { retentionEnvSchema, retentionFunctionEnvironment, retentionSettingsFromEnv } from '../../functions/lib/retention/environment.ts';
import { MAX_IDS_IN_OUTPUT, summariseRetention, type RetentionRunResult } from '../../functions/lib/retention/run.ts';
import { retentionTaskInputSchema } from '../../functions/retention/handler.ts';

const policy = { keepLast: 3 };
const config = (extra: Record<string, unknown> = {}) =>
  parseConfig({
    name: 'acme',
    source: { region: 'eu-west-1' },
    databases: ['orders', 'billing'].map((id) => ({ id, connection: { host: 'h', database: id, passwordEnv: 'P' } })),
    plans: [
      { id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)', timezone: 'Europe/Berlin' }, databases: ['orders', 'billing'], rpoMinutes: 60, rtoMinutes: 60, maxConcurrency: 3, retention: { source: policy, copyRegion: policy, vault: policy } },
      { id: 'weekly', schedule: { cron: 'cron(0 3 ? * SUN *)' }, databases: ['orders'], rpoMinutes: 60, rtoMinutes: 60 },
    ],
    ...extra,
  });

describe('retention run input and environment', () => {
  it('targets each database once per location that has a policy and exists, and schedules only plans with targets', () => {
    expect(retentionRunInput(config(), 'nightly')).toEqual({
      planId: 'nightly',
      maxConcurrency: 3,
      targets: [
        { databaseId: 'orders', location: 'source' },
        { databaseId: 'billing', location: 'source' },
      ],
    });
    const full = config({ vault: { account: '222222222222', region: 'eu-central-1', retentionDays: 30 }, snapshots: { copy: { region: 'eu-central-1', kmsKeyArn: 'arn:aws:kms:eu-central-1:111111111111:key/k' } } });
    expect(retentionRunInput(full, 'nightly').targets.map((t) => `${t.databaseId}@${t.location}`)).toEqual(['orders@source', 'orders@copy-region', 'orders@vault', 'billing@source', 'billing@copy-region', 'billing@vault']);
    expect(retentionRunInput(full, 'nightly', { locations: ['vault'] }).targets.map((t) => t.location)).toEqual(['vault', 'vault']);
    expect(retentionSchedules(full).map((s) => [s.planId, s.expression, s.timeZone])).toEqual([['nightly', 'cron(30 5 * * ? *)', 'Europe/Berlin']]);
    expect(() => retentionRunInput(full, 'nope')).toThrow(/Unknown plan "nope"/);
  });

  it('builds the settings from the function environment (locations) and the deployed config (plans), with the vault retention role and never a policy in the payload', () => {
    const full = config({ vault: { account: '222222222222', region: 'eu-central-1', retentionDays: 30 } });
    const env = retentionFunctionEnvironment(full);
    expect(env.VAULT_RETENTION_ROLE_ARN).toBe('arn:aws:iam::222222222222:role/acme-lifeboat-vault-retention');
    // Nothing in the environment grows with the plans or the fleet.
    expect(Object.keys(env).sort()).toEqual(['VAULT_ACCOUNT', 'VAULT_BUCKET', 'VAULT_REGION', 'VAULT_RETENTION_ROLE_ARN']);
    const settings = retentionSettingsFromEnv(retentionEnvSchema.parse({ ...env, BACKUP_BUCKET: 'bucket', AWS_REGION: 'eu-west-1' }), full);
    expect(settings.plans.nightly!.retention.vault).toMatchObject({ keepLast: 3, daily: 7, minAgeDays: 1 });
    expect(settings.plans.nightly!.databases).toEqual(['orders', 'billing']);
    expect(settings.vault).toMatchObject({ account: '222222222222', region: 'eu-central-1' });
    expect(retentionEnvSchema.safeParse({ ...env, VAULT_BUCKET: undefined, BACKUP_BUCKET: 'bucket', AWS_REGION: 'eu-west-1' }).success).toBe(false);
    expect(retentionTaskInputSchema.safeParse({ planId: 'nightly', databaseId: 'orders', location: 'vault', policy: { keepLast: 0 } }).success).toBe(false);
  });

  it('keeps the task output small whatever was deleted, and raises an alert for failed deletions', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => `20260101T000000Z-${String(i).padStart(6, '0')}`);
    const result = {
      runId: 'r',
      planId: 'nightly',
      databaseId: 'orders',
      location: 'source',
      dryRun: false,
      timeZone: 'UTC',
      dumps: { runId: 'r', location: 'source', databaseId: 'orders', dryRun: false, kept: 7, deleted: ids.length, deletedIds: ids, failed: ids.slice(0, 300).map((id) => ({ id, error: 'AccessDenied: '.padEnd(5000, 'x') })), skippedLocked: 0, incomplete: { found: 0, deleted: 0 }, unreadable: 0, auditKey: 'a.jsonl', plan: { unreadable: [], crowded: [] } },
      snapshots: { skipped: 'none' },
      auditBucket: 'bucket',
      errors: [],
    } as unknown as RetentionRunResult;
    const out = summariseRetention(result);
    expect(out.deletedIds).toHaveLength(MAX_IDS_IN_OUTPUT);
    expect(out.deletedIdsOmitted).toBe(ids.length - MAX_IDS_IN_OUTPUT);
    expect(out).toMatchObject({ status: 'partial', failedCount: 300, auditKeys: ['a.jsonl'], alert: { Error: 'RetentionPartialFailure' } });
    expect(out.alert!.Cause).toMatch(/Next step: /);
    expect(JSON.stringify(out).length).toBeLessThan(16_000);
  });
});
