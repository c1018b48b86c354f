import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { resolveSnapshotSettings } from '../../functions/lib/config/schema.ts';
import { SnapshotFailedError, SnapshotQuotaExceededError, SourceDatabaseBusyError, ThrottledError } from '../../functions/lib/errors.ts';
import { snapshotFunctionEnvironment, snapshotEnvironmentFrom, snapshotEnvSchema } from '../../functions/lib/snapshots/environment.ts';
import { snapshotBackupId, snapshotIdentifier } from '../../functions/lib/snapshots/ids.ts';
import { checkSnapshotQuota } from '../../functions/lib/snapshots/quota.ts';
import { classifyRdsError } from '../../functions/lib/snapshots/rds-errors.ts';
import { pollWaitSeconds } from '../../functions/lib/snapshots/workflow.ts';
import type { RdsApi } from '../../functions/lib/snapshots/rds.ts';
import { vaultCopyEnvSchema, vaultCopyFunctionEnvironment, vaultDumpTargetFrom } from '../../functions/lib/vault/environment.ts';
import { roleSessionName } from '../../functions/lib/vault/credentials.ts';
import { vaultNames } from '../../functions/lib/vault/names.ts';
import { placeholders } from '../../state-machines/definitions.ts';

/** A fake RDS client: answers by command name (call shapes only; the behaviour is tested against moto). */
function fakeRds(answers: Record<string, (input: Record<string, unknown>) => unknown>): RdsApi & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    send: (async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name.replace(/Command$/, '');
      calls.push(name);
      const answer = answers[name];
      if (!answer) throw new Error(`unexpected ${name}`);
      return answer(command.input);
    }) as unknown as RdsApi['send'],
  };
}
const awsError = (name: string, status = 400) => Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status } });
const settings = { manualSnapshotQuota: 100, quotaWarningPercent: 90 };

describe('snapshot names and ids', () => {
  it('gives one backup id per execution and database, the same on every retry', () => {
    const job = { planId: 'p', databaseId: 'orders', executionId: 'arn:aws:states:eu-west-1:1:execution:m:run-1', executionStartTime: '2026-11-21T09:36:00.000Z' };
    expect(snapshotBackupId(job, new Date())).toBe(snapshotBackupId(job, new Date(0)));
    expect(snapshotBackupId(job, new Date())).toMatch(/^20261121T093600Z-[0-9a-f]{6}$/);
    expect(snapshotBackupId({ ...job, databaseId: 'billing' }, new Date())).not.toBe(snapshotBackupId(job, new Date()));
    expect(snapshotBackupId({ ...job, executionId: `${job.executionId}x` }, new Date())).not.toBe(snapshotBackupId(job, new Date()));
  });

  it('makes identifiers RDS accepts for instance and cluster snapshots (63 characters at most)', () => {
    const long = snapshotIdentifier(`a${'-b'.repeat(23)}c`, '20261121T093600Z-1a2b3c');
    for (const id of [snapshotIdentifier('orders', '20261121T093600Z-1a2b3c'), long]) {
      expect(id.length).toBeLessThanOrEqual(63);
      expect(id).toMatch(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/);
    }
    expect(snapshotIdentifier('orders', '20261121T093600Z-1a2b3c')).toBe('lifeboat-orders-20261121t093600z-1a2b3c');
  });

  it('names the vault resources from the config alone', () => {
    const names = vaultNames({ name: 'acme', vault: { account: '222222222222', region: 'eu-central-1' } });
    expect(names).toMatchObject({
      bucketName: 'acme-lifeboat-vault-222222222222-eu-central-1',
      copierRoleArn: 'arn:aws:iam::222222222222:role/acme-lifeboat-vault-copier',
      snapshotKeyAliasArn: 'arn:aws:kms:eu-central-1:222222222222:alias/lifeboat/acme/vault-snapshots',
    });
    const longName = vaultNames({ name: 'a'.repeat(48), vault: { account: '222222222222', region: 'ap-southeast-2' } });
    expect(longName.bucketName.length).toBeLessThanOrEqual(63);
    expect(roleSessionName('orders', 'x'.repeat(100)).length).toBe(64);
  });
});

describe('the manual snapshot quota check', () => {
  const quotas = (used: number, max: number) => fakeRds({ DescribeAccountAttributes: () => ({ AccountQuotas: [{ AccountQuotaName: 'ManualSnapshots', Used: used, Max: max }] }) });

  it('warns when the new snapshot reaches 90% and not before', async () => {
    expect(await checkSnapshotQuota(quotas(88, 100), 'instance', 'eu-west-1', settings)).toMatchObject({ percentAfter: 89, warn: false });
    const at90 = await checkSnapshotQuota(quotas(89, 100), 'instance', 'eu-west-1', settings);
    expect(at90).toMatchObject({ percentAfter: 90, warn: true, alert: { Error: 'ManualSnapshotQuotaNearlyUsed' } });
  });

  it('refuses when nothing is left', async () => {
    await expect(checkSnapshotQuota(quotas(100, 100), 'instance', 'eu-west-1', settings)).rejects.toBeInstanceOf(SnapshotQuotaExceededError);
  });

  it('counts manual snapshots page by page when DescribeAccountAttributes fails, against the configured quota', async () => {
    const rds = fakeRds({
      DescribeAccountAttributes: () => Promise.reject(awsError('InternalFailure', 500)),
      DescribeDBClusterSnapshots: (input) => (input.Marker ? { DBClusterSnapshots: [{}, {}] } : { DBClusterSnapshots: Array.from({ length: 100 }, () => ({})), Marker: 'next' }),
    });
    const checked = await checkSnapshotQuota(rds, 'cluster', 'eu-west-1', { manualSnapshotQuota: 500, quotaWarningPercent: 90 });
    expect(checked).toMatchObject({ quotaName: 'ManualClusterSnapshots', used: 102, max: 500, source: 'counted', warn: false });
    expect(rds.calls).toEqual(['DescribeAccountAttributes', 'DescribeDBClusterSnapshots', 'DescribeDBClusterSnapshots']);
  });

  it('passes throttling on instead of guessing', async () => {
    const rds = fakeRds({ DescribeAccountAttributes: () => Promise.reject(awsError('Throttling')) });
    await expect(checkSnapshotQuota(rds, 'instance', 'eu-west-1', settings)).rejects.toBeInstanceOf(ThrottledError);
  });
});

describe('RDS error classification', () => {
  it('names throttling, quota and the rest', () => {
    expect(classifyRdsError(awsError('ThrottlingException'), 'x', 'y')).toBeInstanceOf(ThrottledError);
    expect(classifyRdsError(awsError('RequestLimitExceeded'), 'x', 'y')).toBeInstanceOf(ThrottledError);
    expect(classifyRdsError(awsError('SnapshotQuotaExceededFault'), 'x', 'y')).toBeInstanceOf(SnapshotQuotaExceededError);
    const other = classifyRdsError(awsError('DBInstanceNotFoundFault'), 'creating a snapshot', 'RDS instance "a"');
    expect(other).toBeInstanceOf(SnapshotFailedError);
    expect(other.message).toBe('RDS creating a snapshot failed on RDS instance "a": DBInstanceNotFoundFault: DBInstanceNotFoundFault happened');
  });

  it('names a busy instance or cluster (backup window, modification, reboot) SourceDatabaseBusyError, which the create step retries', () => {
    // Prepare: both spellings RDS uses on the wire and in the SDK, for instances and clusters.
    const refusals = ['InvalidDBInstanceState', 'InvalidDBInstanceStateFault', 'InvalidDBClusterStateFault', 'InvalidDBClusterState'];
    for (const code of refusals) {
      // Act
      const busy = classifyRdsError(awsError(code), 'creating a snapshot', 'RDS instance "a"');
      // Assess
      expect(busy, code).toBeInstanceOf(SourceDatabaseBusyError);
      expect(busy.name).toBe('SourceDatabaseBusyError');
      expect(busy.message).toMatch(/^RDS instance "a" is busy and refused creating a snapshot \(Invalid\w+\): /);
    }
    // Assess: a busy snapshot (a copy in progress) is not a busy source database.
    expect(classifyRdsError(awsError('InvalidDBSnapshotStateFault'), 'sharing a snapshot', 'snapshot "s"')).toBeInstanceOf(SnapshotFailedError);
  });
});

describe('config and function environment', () => {
  const example = () => JSON.parse(readFileSync(new URL('../../lifeboat.config.example.json', import.meta.url), 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

  it('requires a copy in the vault region when snapshots go to a vault in another region', () => {
    const raw = example();
    raw.plans[0].snapshot = true;
    expect(() => parseConfig(raw)).toThrow(/snapshots\.copy: snapshots reach the vault \(eu-central-1\) by sharing a copy in that region: set snapshots\.copy\.region to "eu-central-1"/);
    raw.snapshots = { copy: { region: 'eu-central-1', kmsKeyArn: 'arn:aws:kms:eu-west-1:111111111111:key/abc' } };
    expect(() => parseConfig(raw)).toThrow(/snapshots\.copy\.kmsKeyArn: the key must be in the copy region eu-central-1, not eu-west-1/);
    raw.snapshots.copy.kmsKeyArn = 'arn:aws:kms:eu-central-1:111111111111:key/abc';
    expect(parseConfig(raw).snapshots?.copy?.region).toBe('eu-central-1');
  });

  it('round-trips the snapshot and vault-copy settings through the function environment', () => {
    const raw = example();
    raw.snapshots = { copy: { region: 'eu-central-1', kmsKeyArn: 'arn:aws:kms:eu-central-1:111111111111:key/abc' }, maxWaitMinutes: 90 };
    const config = parseConfig(raw);
    const env = snapshotEnvironmentFrom(snapshotEnvSchema.parse({ ...snapshotFunctionEnvironment(config), AWS_REGION: 'eu-west-1' }));
    expect(env.settings).toEqual(resolveSnapshotSettings(raw.snapshots));
    expect(env.vault).toEqual({
      account: '222222222222',
      region: 'eu-central-1',
      copierRoleArn: 'arn:aws:iam::222222222222:role/acme-lifeboat-vault-copier',
      snapshotKmsKeyId: 'arn:aws:kms:eu-central-1:222222222222:alias/lifeboat/acme/vault-snapshots',
    });
    expect(vaultDumpTargetFrom(vaultCopyEnvSchema.parse(vaultCopyFunctionEnvironment(config)))).toEqual({
      account: '222222222222',
      region: 'eu-central-1',
      bucket: 'acme-lifeboat-vault-222222222222-eu-central-1',
      copierRoleArn: 'arn:aws:iam::222222222222:role/acme-lifeboat-vault-copier',
    });
    expect(() => snapshotEnvSchema.parse({ AWS_REGION: 'eu-west-1', VAULT_ACCOUNT: '222222222222' })).toThrow(/set all of VAULT_ACCOUNT/);
  });
});

describe('the backup state machine definitions', () => {
  interface State { Type: string; Resource?: string; SecondsPath?: string; Next?: string; Default?: string; Choices?: Array<{ Variable: string; Next: string }>; Retry?: Array<{ ErrorEquals: string[]; MaxDelaySeconds?: number; MaxAttempts?: number }>; Catch?: Array<{ Next: string }>; Branches?: Array<{ States: Record<string, State> }>; ItemProcessor?: { States: Record<string, State> }; MaxConcurrencyPath?: string }
  const load = (file: string) => JSON.parse(readFileSync(new URL(`../../state-machines/${file}`, import.meta.url), 'utf8')) as { States: Record<string, State> };
  const parent = load('backup.asl.json');
  const child = load('backup-database.asl.json');
  const all = (states: Record<string, State>): Array<[string, State]> =>
    Object.entries(states).flatMap(([name, s]) => [[name, s] as [string, State], ...(s.ItemProcessor ? all(s.ItemProcessor.States) : []), ...(s.Branches ?? []).flatMap((b) => all(b.States))]);

  it('keeps concurrent copies under the per-region limit: MaxConcurrencyPath from the resolved plan, and the schema caps it at 19', () => {
    expect(parent.States.BackupEachDatabase!.MaxConcurrencyPath).toBe('$.plan.maxConcurrency');
    const raw = JSON.parse(readFileSync(new URL('../../lifeboat.config.example.json', import.meta.url), 'utf8')) as { plans: Array<Record<string, unknown>> };
    raw.plans[0]!.maxConcurrency = 20;
    expect(() => parseConfig(raw)).toThrow(/plans\[0\]\.maxConcurrency/);
  });

  it('resolves the plan, then starts one child execution per database and nothing else', () => {
    expect(placeholders('backup')).toEqual(['AlertFunctionArn', 'BackupDatabaseStateMachineArn', 'PlanFunctionArn']);
    const item = parent.States.BackupEachDatabase!.ItemProcessor!.States;
    expect(item.BackupDatabase).toMatchObject({ Type: 'Task', Resource: 'arn:aws:states:::states:startExecution.sync:2' });
    expect(item.BackupDatabase!.Catch?.[0]?.Next).toBe('AlertDatabaseRunFailed');
  });

  it('has unique state names, a Catch to an alert on every task, and deadline-driven polling instead of retry budgets', () => {
    const states = all(child.States);
    expect(new Set(states.map(([n]) => n)).size).toBe(states.length);
    expect(placeholders('backup-database')).toEqual([
      'AlertFunctionArn',
      'DumpClusterArn',
      'DumpFunctionArn',
      'DumpSecurityGroupIds',
      'DumpSubnetIds',
      'DumpTaskDefinitionArn',
      'SnapshotFunctionArn',
      'VaultCopyFunctionArn',
    ]);
    for (const [name, state] of states.filter(([, s]) => s.Type === 'Task' && s.Resource !== '${AlertFunctionArn}')) {
      expect(state.Catch?.[0]?.Next, name).toMatch(/^Alert(Dump|Snapshot)Failed$/);
      expect(state.Retry?.some((r) => r.ErrorEquals.includes('ThrottledError')), name).toBe(true);
    }
    // Each wait: Wait (as long as the last check asked) -> Check -> Choice (ready, or wait again). The
    // deadline is the check's: past snapshots.maxWaitMinutes it throws, and the Catch alerts.
    for (const phase of ['Snapshot', 'Copy', 'VaultCopy']) {
      const byName = Object.fromEntries(states);
      const wait = byName[`WaitFor${phase}`]!;
      const check = byName[`Check${phase}`]!;
      const choice = byName[`Is${phase}Ready`]!;
      expect(wait.Type).toBe('Wait');
      expect(wait.SecondsPath).toMatch(/\.poll\.waitSeconds$/);
      expect(wait.Next).toBe(`Check${phase}`);
      expect(check.Retry!.flatMap((r) => r.ErrorEquals)).not.toContain('SnapshotNotReadyError');
      expect(check.Next).toBe(`Is${phase}Ready`);
      expect(choice.Default).toBe(`WaitFor${phase}`);
      expect(choice.Choices![0]!.Variable).toMatch(/\.poll\.ready$/);
    }
  });
});

describe('snapshot poll intervals', () => {
  const at = (iso: string) => new Date(iso);
  const ref = { startedAt: '2026-12-03T00:00:00.000Z', deadline: '2026-12-03T04:00:00.000Z' };

  it('starts at 30 s, stretches to a quarter of the time waited, and never passes 10 minutes', () => {
    expect(pollWaitSeconds(ref, at('2026-12-03T00:00:10Z'))).toBe(30);
    expect(pollWaitSeconds(ref, at('2026-12-03T00:20:00Z'))).toBe(300);
    expect(pollWaitSeconds(ref, at('2026-12-03T02:00:00Z'))).toBe(600);
  });

  it('waits no longer than one second past the deadline, so the last check sees that it was missed', () => {
    expect(pollWaitSeconds(ref, at('2026-12-03T03:59:00Z'))).toBe(61);
    expect(pollWaitSeconds(ref, at('2026-12-03T05:00:00Z'))).toBe(1);
  });
});
