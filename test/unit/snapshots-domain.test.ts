import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { resolveSnapshotSettings } from '../../functions/lib/config/schema.ts';
import { SnapshotFailedError, SnapshotQuotaExceededError, SnapshotWaitTimeoutError, SourceDatabaseBusyError, ThrottledError } from '../../functions/lib/errors.ts';
import { snapshotFunctionEnvironment, snapshotEnvironmentFrom, snapshotEnvSchema } from '../../functions/lib/snapshots/environment.ts';
import { snapshotBackupId, snapshotIdentifier } from '../../functions/lib/snapshots/ids.ts';
import { checkSnapshotQuota } from '../../functions/lib/snapshots/quota.ts';
import { classifyRdsError } from '../../functions/lib/snapshots/rds-errors.ts';
import { checkSnapshot, copyIntoVault, copyToCopyRegion, pollWaitSeconds, type SnapshotContext, type SnapshotJob, type SnapshotRef } from '../../functions/lib/snapshots/workflow.ts';
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
    expect(placeholders('backup')).toEqual(['AlertFunctionArn', 'BackupDatabaseStateMachineArn', 'PitrFunctionArn', 'PlanFunctionArn']);
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
      'VaultCopyTaskDefinitionArn',
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
  it('alerts a nearly used quota in the copy region and in the vault (quota-warning), then goes on waiting for the copy', () => {
    // Prepare
    const byName = Object.fromEntries(all(child.States)) as Record<string, State & { Parameters?: Record<string, unknown> }>;
    const phases = [
      { task: 'CopySnapshot', result: '$.copy', wait: 'WaitForCopy' },
      { task: 'CopyIntoVault', result: '$.share.vault', wait: 'WaitForVaultCopy' },
    ];
    for (const { task, result, wait } of phases) {
      // Act: follow the task (past the copy-started Choice) to the quota Choice.
      const next = byName[task]!.Next!;
      const afterStart = byName[next]!.Choices?.find((c) => c.Variable === '$.copy.started')?.Next ?? next;
      const choice = byName[afterStart]!;

      // Assess: warn → a quota-warning alert with the step's own check → the wait; otherwise straight to the wait.
      expect(choice.Type, task).toBe('Choice');
      expect(choice.Choices, task).toEqual([{ Variable: `${result}.quota.warn`, BooleanEquals: true, Next: expect.any(String) }]);
      expect(choice.Default, task).toBe(wait);
      const alert = byName[choice.Choices![0]!.Next]!;
      expect(alert).toMatchObject({ Type: 'Task', Resource: '${AlertFunctionArn}', Next: wait, ResultPath: null });
      expect(alert.Parameters, task).toMatchObject({ kind: 'quota-warning', 'error.$': `${result}.quota.alert`, 'details.$': `${result}.quota` });
      expect(alert.Catch?.[0]?.Next, task).toBe(wait);
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

/**
 * The copy and vault-copy steps, and the status check past a deadline, against
 * fake RDS clients per destination: production credentials in the copy region,
 * the vault copier role's in the vault region.
 */
const PROD = '111111111111';
const VAULT = '222222222222';
const COPY_REGION = 'eu-central-1';
const BACKUP_ID = '20261203T000000Z-abc123';
const SNAPSHOT_ID = snapshotIdentifier('orders', BACKUP_ID);
const stepJob: SnapshotJob = {
  planId: 'nightly',
  database: { id: 'orders', rds: { instanceIdentifier: 'orders-db' } },
  executionId: `arn:aws:states:eu-west-1:${PROD}:execution:acme-lifeboat-backup:run-1`,
  executionStartTime: '2026-12-03T00:00:00.000Z',
};
const sourceRef: SnapshotRef = {
  location: 'source',
  kind: 'instance',
  region: 'eu-west-1',
  id: SNAPSHOT_ID,
  arn: `arn:aws:rds:eu-west-1:${PROD}:snapshot:${SNAPSHOT_ID}`,
  status: 'available',
  encrypted: true,
  kmsKeyId: `arn:aws:kms:eu-west-1:${PROD}:key/source`,
  startedAt: '2026-12-03T00:00:00.000Z',
  deadline: '2026-12-03T04:00:00.000Z',
};
const copyRef: SnapshotRef = { ...sourceRef, location: 'copy', region: COPY_REGION, arn: `arn:aws:rds:${COPY_REGION}:${PROD}:snapshot:${SNAPSHOT_ID}`, kmsKeyId: `arn:aws:kms:${COPY_REGION}:${PROD}:key/copy` };
const ownTags = [{ Key: 'lifeboat:backup-id', Value: BACKUP_ID }, { Key: 'lifeboat:plan', Value: 'nightly' }, { Key: 'lifeboat:database', Value: 'orders' }];

/** A destination account and region: its manual snapshot quota, the snapshots it holds, and CopyDBSnapshot. */
function destination(account: string, region: string, quota: { used: number; max: number }, held: Array<Record<string, unknown>> = []) {
  return fakeRds({
    DescribeAccountAttributes: () => ({ AccountQuotas: [{ AccountQuotaName: 'ManualSnapshots', Used: quota.used, Max: quota.max }] }),
    DescribeDBSnapshots: (input) => ({ DBSnapshots: held.filter((s) => s.DBSnapshotIdentifier === input.DBSnapshotIdentifier) }),
    CopyDBSnapshot: (input) => ({
      DBSnapshot: { DBSnapshotIdentifier: input.TargetDBSnapshotIdentifier, DBSnapshotArn: `arn:aws:rds:${region}:${account}:snapshot:${String(input.TargetDBSnapshotIdentifier)}`, Status: 'pending', Encrypted: true, KmsKeyId: input.KmsKeyId },
    }),
    DeleteDBSnapshot: () => ({}),
  });
}

/** A snapshot context whose RDS clients are the given fakes; `clients` records which client each step asked for. */
function stepContext(rds: { source?: RdsApi; copy?: RdsApi; vault?: RdsApi }, now = '2026-12-03T01:00:00.000Z'): SnapshotContext & { clients: string[] } {
  const clients: string[] = [];
  const pick = (client: RdsApi | undefined, name: string) => {
    if (!client) throw new Error(`unexpected RDS client ${name}`);
    clients.push(name);
    return client;
  };
  return {
    clients,
    rds: (region, credentials) => (credentials ? pick(region === COPY_REGION ? rds.vault : undefined, `vault copier:${region}`) : pick(region === COPY_REGION ? rds.copy : rds.source, `production:${region}`)),
    kms: () => {
      throw new Error('unexpected KMS client');
    },
    sts: {
      send: (async () => ({
        Credentials: { AccessKeyId: 'ASIAVAULTCOPIER', SecretAccessKey: 'not-a-secret', SessionToken: 'token' },
        AssumedRoleUser: { Arn: `arn:aws:sts::${VAULT}:assumed-role/acme-lifeboat-vault-copier/lifeboat-orders` },
      })) as unknown as SnapshotContext['sts']['send'],
    },
    sourceRegion: 'eu-west-1',
    settings: resolveSnapshotSettings({ copy: { region: COPY_REGION, kmsKeyArn: `arn:aws:kms:${COPY_REGION}:${PROD}:key/copy` } }),
    vault: { account: VAULT, region: COPY_REGION, copierRoleArn: `arn:aws:iam::${VAULT}:role/acme-lifeboat-vault-copier`, snapshotKmsKeyId: `arn:aws:kms:${COPY_REGION}:${VAULT}:key/vault` },
    now: () => new Date(now),
  };
}

describe('the manual snapshot quota of each destination, before copying into it', () => {
  it('refuses the cross-region copy when the copy region is full, naming the account and region, before CopyDBSnapshot', async () => {
    // Prepare: the production account's copy region has no room left.
    const copy = destination(PROD, COPY_REGION, { used: 100, max: 100 });
    const ctx = stepContext({ copy });

    // Act
    const error = await copyToCopyRegion(stepJob, sourceRef, ctx, BACKUP_ID).catch((e: unknown) => e);

    // Assess: checked with production credentials in the copy region, nothing copied.
    expect(error).toBeInstanceOf(SnapshotQuotaExceededError);
    expect((error as Error).message).toMatch(/^No room for another manual snapshot in the copy region \(account 111111111111, eu-central-1\): 100 of 100 Manual DB instance snapshots are used \(DescribeAccountAttributes\)\. .*Next step: delete manual snapshots/);
    expect(copy.calls).toContain('DescribeAccountAttributes');
    expect(copy.calls).not.toContain('CopyDBSnapshot');
    expect(ctx.clients.every((c) => c === 'production:eu-central-1')).toBe(true);
  });

  it('returns the copy region\'s quota check with the copy it started, with a quota-warning alert when nearly used', async () => {
    // Prepare
    const copy = destination(PROD, COPY_REGION, { used: 89, max: 100 });

    // Act
    const result = await copyToCopyRegion(stepJob, sourceRef, stepContext({ copy }), BACKUP_ID);

    // Assess: checked before the copy was requested, and reported with the copy.
    expect(copy.calls.indexOf('DescribeAccountAttributes')).toBeLessThan(copy.calls.indexOf('CopyDBSnapshot'));
    expect(result).toMatchObject({ started: true, poll: { ref: { location: 'copy', region: COPY_REGION } } });
    const quota = (result as { quota?: Record<string, unknown> }).quota;
    expect(quota).toMatchObject({ location: 'copy', account: PROD, region: COPY_REGION, used: 89, max: 100, percentAfter: 90, warn: true });
    expect(quota?.alert).toEqual({
      Error: 'ManualSnapshotQuotaNearlyUsed',
      Cause: expect.stringMatching(/^Manual DB instance snapshots in the copy region \(account 111111111111, eu-central-1\): 90 of 100 used after this copy \(90%, warning at 90%\)\. Next step: /),
    });
  });

  it('refuses the vault copy when the vault is full, checked as the vault copier role, naming the vault account and region, before CopyDBSnapshot', async () => {
    // Prepare: the vault account's region has no room left.
    const vault = destination(VAULT, COPY_REGION, { used: 100, max: 100 });
    const ctx = stepContext({ vault });

    // Act
    const error = await copyIntoVault(stepJob, copyRef, sourceRef, ctx, BACKUP_ID).catch((e: unknown) => e);

    // Assess: the vault's own quota, through the copier role's credentials; nothing copied in.
    expect(error).toBeInstanceOf(SnapshotQuotaExceededError);
    expect((error as Error).message).toMatch(/^No room for another manual snapshot in the vault \(account 222222222222, eu-central-1\): 100 of 100 Manual DB instance snapshots are used/);
    expect((error as Error).message).toMatch(/Next step: .*vault account 222222222222/);
    expect(vault.calls).toContain('DescribeAccountAttributes');
    expect(vault.calls).not.toContain('CopyDBSnapshot');
    expect(ctx.clients.every((c) => c === 'vault copier:eu-central-1')).toBe(true);
  });

  it('returns the vault\'s quota check with the vault copy, warning when nearly used', async () => {
    // Prepare
    const vault = destination(VAULT, COPY_REGION, { used: 95, max: 100 });

    // Act
    const result = (await copyIntoVault(stepJob, copyRef, sourceRef, stepContext({ vault }), BACKUP_ID)) as unknown as { poll: { ref: SnapshotRef }; quota: Record<string, unknown> };

    // Assess
    expect(result.poll.ref).toMatchObject({ location: 'vault', account: VAULT, region: COPY_REGION, id: SNAPSHOT_ID });
    expect(result.quota).toMatchObject({ location: 'vault', account: VAULT, region: COPY_REGION, percentAfter: 96, warn: true, alert: { Error: 'ManualSnapshotQuotaNearlyUsed' } });
    expect((result.quota.alert as { Cause: string }).Cause).toMatch(/^Manual DB instance snapshots in the vault \(account 222222222222, eu-central-1\): 96 of 100 used after this copy/);
  });

  it('lets a retried copy step adopt the copy its first attempt made, even when that copy filled the quota', async () => {
    // Prepare: the first attempt's copy exists (tagged with this backup id) and is the 100th of 100.
    const ours = { DBSnapshotIdentifier: SNAPSHOT_ID, DBSnapshotArn: copyRef.arn, Status: 'copying', Encrypted: true, KmsKeyId: copyRef.kmsKeyId, TagList: ownTags };
    const copy = destination(PROD, COPY_REGION, { used: 100, max: 100 }, [ours]);

    // Act
    const result = await copyToCopyRegion(stepJob, sourceRef, stepContext({ copy }), BACKUP_ID);

    // Assess: no second copy, and the usage counts the existing copy once.
    expect(result).toMatchObject({ started: true, poll: { ref: { id: SNAPSHOT_ID, status: 'copying' } }, quota: { used: 100, max: 100, percentAfter: 100, warn: true } });
    expect(copy.calls).not.toContain('CopyDBSnapshot');
  });

  it('copies into a vault whose copier role may not read its quota (a vault stack from before the check), with a warning that says to redeploy it', async () => {
    // Prepare: a vault stack from before the check: no rds:DescribeAccountAttributes, while listing the vault
    // account's manual snapshots works and finds more than production's snapshots.manualSnapshotQuota (100):
    // counting them would refuse a copy the vault has room for.
    const many = Array.from({ length: 150 }, (_, i) => ({ DBSnapshotIdentifier: `other-team-${i}`, SnapshotType: 'manual', Status: 'available' }));
    const vault = fakeRds({
      DescribeAccountAttributes: () => Promise.reject(awsError('AccessDenied', 403)),
      DescribeDBSnapshots: (input) => (input.SnapshotType === 'manual' ? { DBSnapshots: many } : { DBSnapshots: [] }),
      CopyDBSnapshot: (input) => ({ DBSnapshot: { DBSnapshotIdentifier: input.TargetDBSnapshotIdentifier, DBSnapshotArn: `arn:aws:rds:eu-central-1:222222222222:snapshot:${String(input.TargetDBSnapshotIdentifier)}`, Status: 'pending', Encrypted: true } }),
    });

    // Act
    const result = await copyIntoVault(stepJob, copyRef, sourceRef, stepContext({ vault }), BACKUP_ID);

    // Assess: the copy was requested; the quota check comes back as a warning for the quota-warning alert.
    expect(vault.calls).toContain('CopyDBSnapshot');
    expect(result.quota).toMatchObject({ source: 'unknown', warn: true, location: 'vault', account: '222222222222', alert: { Error: 'ManualSnapshotQuotaUnknown' } });
    expect(result.quota.alert!.Cause).toMatch(/could not check the Manual DB instance snapshots quota in the vault \(account 222222222222, eu-central-1\) \(the vault copier role may not read it: AccessDenied\) and copied anyway.*Next step: a vault admin redeploys the vault stack/);
  });

  it('names the account in the source quota refusal when it is known', async () => {
    // Prepare
    const full = fakeRds({ DescribeAccountAttributes: () => ({ AccountQuotas: [{ AccountQuotaName: 'ManualClusterSnapshots', Used: 40, Max: 40 }] }) });

    // Act
    const error = await checkSnapshotQuota(full, 'cluster', 'eu-west-1', settings, { account: PROD, location: 'source' }).catch((e: unknown) => e);

    // Assess
    expect((error as Error).message).toMatch(/^No room for another manual snapshot in account 111111111111, eu-west-1: 40 of 40 Manual DB cluster snapshots are used/);
  });
});

describe('what a missed deadline abandons', () => {
  const pastDeadline = '2026-12-03T04:00:10.000Z';
  const stillCopying = (overrides: Record<string, unknown> = {}) => ({ DBSnapshotIdentifier: SNAPSHOT_ID, DBSnapshotArn: copyRef.arn, Status: 'copying', PercentProgress: 40, Encrypted: true, TagList: ownTags, ...overrides });

  it('cancels a cross-region copy still in progress at its deadline (DeleteDBSnapshot), and the error says it was cancelled', async () => {
    // Prepare
    const copy = destination(PROD, COPY_REGION, { used: 1, max: 100 }, [stillCopying()]);

    // Act
    const error = await checkSnapshot(stepJob, copyRef, stepContext({ copy }, pastDeadline), BACKUP_ID).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(SnapshotWaitTimeoutError);
    expect((error as Error).message).toMatch(/cross-region copy \S+ \(eu-central-1\) of database "orders" is still 'copying' \(40%\) after 240 minutes; the limit is 240 minutes \(snapshots\.maxWaitMinutes\)\. lifeboat cancelled the copy \(DeleteDBSnapshot\), so it no longer takes a copy slot or counts toward the manual snapshot quota\./);
    expect(copy.calls).toEqual(['DescribeDBSnapshots', 'DeleteDBSnapshot']);
  });

  it('cancels an Aurora cluster snapshot copy with DeleteDBClusterSnapshot', async () => {
    // Prepare
    const copy = fakeRds({
      DescribeDBClusterSnapshots: () => ({ DBClusterSnapshots: [{ DBClusterSnapshotIdentifier: SNAPSHOT_ID, DBClusterSnapshotArn: copyRef.arn, Status: 'copying', StorageEncrypted: true, TagList: ownTags }] }),
      DeleteDBClusterSnapshot: () => ({}),
    });

    // Act
    const error = await checkSnapshot(stepJob, { ...copyRef, kind: 'cluster' }, stepContext({ copy }, pastDeadline), BACKUP_ID).catch((e: unknown) => e);

    // Assess
    expect((error as Error).message).toContain('lifeboat cancelled the copy (DeleteDBClusterSnapshot)');
    expect(copy.calls).toEqual(['DescribeDBClusterSnapshots', 'DeleteDBClusterSnapshot']);
  });

  it('deletes a source snapshot that never became available, or says how to once RDS refuses while it is being created', async () => {
    // Prepare: one RDS that lets the snapshot go, one that refuses while it is still being created (as AWS does).
    const creating = { DBSnapshotIdentifier: SNAPSHOT_ID, DBSnapshotArn: sourceRef.arn, Status: 'creating', Encrypted: true, TagList: ownTags };
    const deletes = fakeRds({ DescribeDBSnapshots: () => ({ DBSnapshots: [creating] }), DeleteDBSnapshot: () => ({}) });
    const refuses = fakeRds({ DescribeDBSnapshots: () => ({ DBSnapshots: [creating] }), DeleteDBSnapshot: () => Promise.reject(awsError('InvalidDBSnapshotState')) });

    // Act
    const deleted = await checkSnapshot(stepJob, sourceRef, stepContext({ source: deletes }, pastDeadline), BACKUP_ID).catch((e: unknown) => e);
    const refused = await checkSnapshot(stepJob, sourceRef, stepContext({ source: refuses }, pastDeadline), BACKUP_ID).catch((e: unknown) => e);

    // Assess
    expect(deletes.calls).toEqual(['DescribeDBSnapshots', 'DeleteDBSnapshot']);
    expect(deleted).toBeInstanceOf(SnapshotWaitTimeoutError);
    expect((deleted as Error).message).toMatch(/DB snapshot \S+ \(eu-west-1\) of database "orders" is still 'creating' after 240 minutes; .* lifeboat deleted it \(DeleteDBSnapshot\), so it does not count toward the manual snapshot quota\./);
    expect(refuses.calls).toEqual(['DescribeDBSnapshots', 'DeleteDBSnapshot']);
    expect((refused as Error).message).toContain(
      `RDS does not delete a snapshot while it is being created (InvalidDBSnapshotState), so lifeboat could not cancel it: once it is available, delete it (aws rds delete-db-snapshot --db-snapshot-identifier ${SNAPSHOT_ID} --region eu-west-1) or leave it to snapshot retention.`,
    );
  });

  it('cannot cancel a vault copy (the copier role may not delete): it tries nothing and the error says who can cancel it', async () => {
    // Prepare
    const vault = fakeRds({ DescribeDBSnapshots: () => ({ DBSnapshots: [stillCopying({ DBSnapshotArn: `arn:aws:rds:${COPY_REGION}:${VAULT}:snapshot:${SNAPSHOT_ID}` })] }) });
    const vaultRef: SnapshotRef = { ...copyRef, location: 'vault', account: VAULT, arn: `arn:aws:rds:${COPY_REGION}:${VAULT}:snapshot:${SNAPSHOT_ID}` };

    // Act
    const error = await checkSnapshot(stepJob, vaultRef, stepContext({ vault }, pastDeadline), BACKUP_ID).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(SnapshotWaitTimeoutError);
    expect(vault.calls).toEqual(['DescribeDBSnapshots']);
    expect((error as Error).message).toContain(
      `lifeboat did not cancel it: the vault copier role may not delete snapshots in the vault, so the copy goes on and counts toward the vault's copies in progress and manual snapshot quota. A vault admin may cancel it: aws rds delete-db-snapshot --db-snapshot-identifier ${SNAPSHOT_ID} --region eu-central-1, in account 222222222222.`,
    );
  });
});
