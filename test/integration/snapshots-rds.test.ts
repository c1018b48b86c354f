import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotAttributesCommand,
  DescribeDBSnapshotsCommand,
} from '@aws-sdk/client-rds';
import { createKmsClient, createRdsClient, createStsClient } from '../../functions/lib/aws/clients.ts';
import { resolveSnapshotSettings, type SnapshotSettings } from '../../functions/lib/config/schema.ts';
import {
  DefaultKeyNotShareableError,
  SnapshotFailedError,
  SnapshotKeyNotSharedError,
  SnapshotQuotaExceededError,
  SnapshotWaitTimeoutError,
  SourceDatabaseNotFoundError,
  ThrottledError,
  UnencryptedSnapshotRefusedError,
} from '../../functions/lib/errors.ts';
import {
  checkSnapshot,
  copyIntoVault,
  copyToCopyRegion,
  createSourceSnapshot,
  shareWithVault,
  type SnapshotContext,
  type SnapshotJob,
  type SnapshotPoll,
  type SnapshotRef,
} from '../../functions/lib/snapshots/workflow.ts';
import { startFaultProxy, type FaultProxy } from '../../local/fault-proxy.ts';
import { uniqueName } from '../harness/aws.ts';
import {
  accountQuotas,
  actAsAccount,
  awsManagedKeys,
  credentialsFor,
  crossAccountSnapshotCopy,
  failRds,
  rdsRequest,
  snapshotStatus,
  throttleRds,
  type QuotaScript,
} from '../../local/moto-rds-compat.ts';

/**
 * The snapshot workflow against moto, two accounts and two regions: production
 * (111111111111) in eu-west-1 with a copy region eu-central-1, the vault
 * (222222222222) in eu-central-1. The fault proxy in front of moto adds what
 * moto lacks (see local/moto-rds-compat.ts) and the scripted faults.
 */
const PROD = '111111111111';
const VAULT = '222222222222';
const SOURCE_REGION = 'eu-west-1';
const VAULT_REGION = 'eu-central-1';
const COPIER_ROLE = `arn:aws:iam::${VAULT}:role/acme-lifeboat-vault-copier`;

let proxy: FaultProxy;
const quota: QuotaScript = { max: () => 100 };
let sourceKey: string;
let sharedCopyKey: string;
let unsharedCopyKey: string;
let vaultKey: string;
const db = { instance: '', cluster: '', plain: '', defaultKey: '' };

const vaultPolicy = (account: string) =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Owner', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${PROD}:root` }, Action: 'kms:*', Resource: '*' },
      {
        Sid: 'VaultMayCopySharedSnapshots',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${account}:root` },
        Action: ['kms:CreateGrant', 'kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'],
        Resource: '*',
      },
    ],
  });

beforeAll(async () => {
  const upstream = inject('motoEndpoint');
  proxy = await startFaultProxy(upstream);
  process.env.AWS_ENDPOINT_URL = proxy.endpoint;
  proxy.addRule(accountQuotas(upstream, quota));
  proxy.addRule(crossAccountSnapshotCopy(upstream));
  proxy.addRule(awsManagedKeys(upstream));
  await actAsAccount(PROD);

  const kmsSource = createKmsClient({ region: SOURCE_REGION });
  const kmsCopy = createKmsClient({ region: VAULT_REGION });
  sourceKey = (await kmsSource.send(new CreateKeyCommand({ Description: 'production database key' }))).KeyMetadata!.Arn!;
  sharedCopyKey = (await kmsCopy.send(new CreateKeyCommand({ Description: 'copy key shared with the vault', Policy: vaultPolicy(VAULT) }))).KeyMetadata!.Arn!;
  unsharedCopyKey = (await kmsCopy.send(new CreateKeyCommand({ Description: 'copy key not shared with the vault' }))).KeyMetadata!.Arn!;
  const vaultKms = createKmsClient({ region: VAULT_REGION, credentials: await credentialsFor(VAULT, 'vault-admin') });
  vaultKey = (await vaultKms.send(new CreateKeyCommand({ Description: 'vault snapshot key' }))).KeyMetadata!.Arn!;

  const rds = createRdsClient({ region: SOURCE_REGION });
  const instance = (id: string, extra: Record<string, unknown>) =>
    rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: id, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1', ...extra }));
  db.instance = uniqueName('orders');
  db.plain = uniqueName('plain');
  db.defaultKey = uniqueName('legacy');
  db.cluster = uniqueName('billing');
  await instance(db.instance, { StorageEncrypted: true, KmsKeyId: sourceKey });
  await instance(db.plain, { StorageEncrypted: false });
  await instance(db.defaultKey, { StorageEncrypted: true, KmsKeyId: 'alias/aws/rds' });
  await rds.send(new CreateDBClusterCommand({ DBClusterIdentifier: db.cluster, Engine: 'aurora-postgresql', MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1', StorageEncrypted: true, KmsKeyId: sourceKey }));
});
afterAll(async () => {
  await proxy?.stop();
});

function context(overrides: { settings?: Partial<SnapshotSettings>; vault?: Partial<NonNullable<SnapshotContext['vault']>> | null; now?: () => Date; maxAttempts?: number } = {}): SnapshotContext {
  return {
    rds: (region, credentials) => createRdsClient({ region, credentials, maxAttempts: overrides.maxAttempts ?? 3 }),
    kms: (region) => createKmsClient({ region }),
    sts: createStsClient({ region: SOURCE_REGION }),
    sourceRegion: SOURCE_REGION,
    settings: { ...resolveSnapshotSettings({ copy: { region: VAULT_REGION, kmsKeyArn: sharedCopyKey } }), ...overrides.settings },
    vault: overrides.vault === null ? undefined : { account: VAULT, region: VAULT_REGION, copierRoleArn: COPIER_ROLE, snapshotKmsKeyId: vaultKey, ...overrides.vault },
    now: overrides.now,
  };
}

let executions = 0;
function job(databaseId: string, rds: { instanceIdentifier: string } | { clusterIdentifier: string }): SnapshotJob {
  executions++;
  return {
    planId: 'nightly',
    database: { id: databaseId, rds },
    executionId: `arn:aws:states:${SOURCE_REGION}:${PROD}:execution:acme-lifeboat-backup:run-${executions}-${Date.now()}`,
    executionStartTime: new Date().toISOString(),
  };
}

/** Checks a snapshot until it is available, as the state machine's Wait and Choice loop does (without the waits). */
async function untilReady(j: SnapshotJob, poll: SnapshotPoll, ctx: SnapshotContext, backupId: string, polls = 50): Promise<SnapshotRef> {
  let current = poll;
  for (let i = 0; i < polls && !current.ready; i++) current = await checkSnapshot(j, current.ref, ctx, backupId);
  if (!current.ready) throw new Error(`${current.ref.id} still '${current.ref.status}' after ${polls} polls`);
  return current.ref;
}

/** Runs the whole chain the state machine runs. */
async function backUp(j: SnapshotJob, ctx: SnapshotContext) {
  const created = await createSourceSnapshot(j, ctx);
  const source = await untilReady(j, created.poll, ctx, created.backupId);
  const copy = await copyToCopyRegion(j, source, ctx, created.backupId);
  const copied = copy.started ? { started: true as const, poll: { ready: true, waitSeconds: 0, ref: await untilReady(j, copy.poll, ctx, created.backupId) } } : copy;
  const share = await shareWithVault(j, source, copied, ctx);
  if (!share.shared) return { created, source, copy: copied, share };
  const vaultCopy = await copyIntoVault(j, share.ref, source, ctx, created.backupId);
  const vault = await untilReady(j, vaultCopy.poll, ctx, created.backupId);
  return { created, source, copy: copied, share, vaultCopy, vault };
}

const vaultRds = async () => createRdsClient({ region: VAULT_REGION, credentials: await credentialsFor(VAULT, 'vault-admin') });
const actions = (name: string) => proxy.seen.map(rdsRequest).filter((r) => r?.action === name);

describe('RDS instance snapshots into the vault', () => {
  it('snapshots, copies cross-region under the copy key with tags, shares, and the vault role copies it in under the vault key', async () => {
    // Act
    const result = await backUp(job('orders', { instanceIdentifier: db.instance }), context());

    // Assess: the source snapshot is tagged with backup id, plan and database.
    const { created, copy, vault } = result;
    expect(created.poll.ref).toMatchObject({ location: 'source', kind: 'instance', region: SOURCE_REGION, encrypted: true, kmsKeyId: sourceKey });
    const rds = createRdsClient({ region: SOURCE_REGION });
    const [source] = (await rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: created.poll.ref.id }))).DBSnapshots!;
    expect(source!.TagList).toEqual(expect.arrayContaining([
      { Key: 'lifeboat:backup-id', Value: created.backupId },
      { Key: 'lifeboat:plan', Value: 'nightly' },
      { Key: 'lifeboat:database', Value: 'orders' },
    ]));

    // Assess: the cross-region copy is under the copy key, with the tags copied.
    expect(copy.started).toBe(true);
    const copyRef = (copy as { poll: SnapshotPoll }).poll.ref;
    expect(copyRef).toMatchObject({ location: 'copy', region: VAULT_REGION, kmsKeyId: sharedCopyKey, status: 'available' });
    const copyRds = createRdsClient({ region: VAULT_REGION });
    const [copied] = (await copyRds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: copyRef.id }))).DBSnapshots!;
    expect(copied!.TagList).toEqual(source!.TagList);
    const shared = await copyRds.send(new DescribeDBSnapshotAttributesCommand({ DBSnapshotIdentifier: copyRef.id }));
    expect(shared.DBSnapshotAttributesResult!.DBSnapshotAttributes).toEqual([{ AttributeName: 'restore', AttributeValues: [VAULT] }]);

    // Assess: the vault account owns a copy under its own key that describes itself.
    expect(vault).toMatchObject({ location: 'vault', account: VAULT, region: VAULT_REGION, status: 'available', kmsKeyId: vaultKey });
    const [inVault] = (await (await vaultRds()).send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: vault!.id }))).DBSnapshots!;
    expect(inVault!.DBSnapshotArn).toBe(`arn:aws:rds:${VAULT_REGION}:${VAULT}:snapshot:${vault!.id}`);
    expect(inVault!.KmsKeyId).toBe(vaultKey);
    expect(inVault!.TagList).toEqual(expect.arrayContaining([
      { Key: 'lifeboat:backup-id', Value: created.backupId },
      { Key: 'lifeboat:database', Value: 'orders' },
      { Key: 'lifeboat:source-account', Value: PROD },
      { Key: 'lifeboat:source-region', Value: SOURCE_REGION },
      { Key: 'lifeboat:source-snapshot', Value: created.poll.ref.arn },
      { Key: 'lifeboat:source-database', Value: db.instance },
    ]));
  });

  it('does the same for an Aurora cluster', async () => {
    const { vault, created } = await backUp(job('billing', { clusterIdentifier: db.cluster }), context());
    expect(vault).toMatchObject({ kind: 'cluster', account: VAULT, status: 'available', kmsKeyId: vaultKey });
    const inVault = (await (await vaultRds()).send(new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: vault!.id }))).DBClusterSnapshots!;
    expect(inVault[0]!.TagList).toEqual(expect.arrayContaining([{ Key: 'lifeboat:backup-id', Value: created.backupId }, { Key: 'lifeboat:source-database', Value: db.cluster }]));
  });

  it('finds its own snapshot when a step is retried instead of making a second one', async () => {
    const j = job('orders', { instanceIdentifier: db.instance });
    const first = await createSourceSnapshot(j, context({ vault: null }));
    const again = await createSourceSnapshot(j, context({ vault: null }));
    expect(again.poll.ref.id).toBe(first.poll.ref.id);
    expect(again.backupId).toBe(first.backupId);
  });
});

describe('the manual snapshot quota', () => {
  it('is checked before snapshotting, from DescribeAccountAttributes, and warns at 90%', async () => {
    // Prepare: the quota is one more than what is used, so this snapshot fills it.
    quota.max = (used) => used + 1;
    try {
      // Act
      const { quota: checked } = await createSourceSnapshot(job('orders', { instanceIdentifier: db.instance }), context({ vault: null }));

      // Assess
      expect(checked).toMatchObject({ quotaName: 'ManualSnapshots', source: 'DescribeAccountAttributes', percentAfter: 100, warn: true });
      expect(checked.alert?.Error).toBe('ManualSnapshotQuotaNearlyUsed');
      expect(checked).toMatchObject({ location: 'source', account: PROD, region: SOURCE_REGION });
      expect(checked.alert?.Cause).toMatch(/Manual DB instance snapshots in account 111111111111, eu-west-1: \d+ of \d+ used after this snapshot \(100%, warning at 90%\)\. .*Next step: /);
    } finally {
      quota.max = () => 100;
    }
  });

  it('refuses to snapshot when the quota is used up, before calling CreateDBSnapshot', async () => {
    quota.max = (used) => used;
    const before = actions('CreateDBSnapshot').length;
    try {
      await expect(createSourceSnapshot(job('orders', { instanceIdentifier: db.instance }), context())).rejects.toSatisfy(
        (e: Error) => e instanceof SnapshotQuotaExceededError && /No room for another manual snapshot in account 111111111111, eu-west-1: (\d+) of \1 Manual DB instance snapshots are used/.test(e.message) && /Next step: delete manual snapshots/.test(e.message),
      );
    } finally {
      quota.max = () => 100;
    }
    expect(actions('CreateDBSnapshot').length).toBe(before);
  });

  it('counts manual snapshots itself against snapshots.manualSnapshotQuota when DescribeAccountAttributes is unavailable, and says so', async () => {
    quota.deny = true;
    try {
      const manual = (await createRdsClient({ region: SOURCE_REGION }).send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual' }))).DBSnapshots!.length;
      const { quota: checked } = await createSourceSnapshot(job('orders', { instanceIdentifier: db.instance }), context({ vault: null, settings: { manualSnapshotQuota: manual + 1 } }));
      expect(checked).toMatchObject({ source: 'counted', used: manual, max: manual + 1, warn: true });
      expect(checked.note).toMatch(/DescribeAccountAttributes failed \(AccessDenied\); counted \d+ manual snapshots and assumed a quota of \d+ \(snapshots.manualSnapshotQuota\)/);
    } finally {
      quota.deny = false;
    }
  });

  it('turns RDS SnapshotQuotaExceeded into a clear error', async () => {
    const id = uniqueName('quota');
    await createRdsClient({ region: SOURCE_REGION }).send(
      new CreateDBInstanceCommand({ DBInstanceIdentifier: id, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'u', MasterUserPassword: 'not-a-real-secret-1', StorageEncrypted: true, KmsKeyId: sourceKey }),
    );
    proxy.addRule(failRds('CreateDBSnapshot', 'SnapshotQuotaExceeded', 'Cannot create more than 100 manual snapshots', (r) => r.params.get('DBInstanceIdentifier') === id));
    await expect(createSourceSnapshot(job('quota', { instanceIdentifier: id }), context())).rejects.toSatisfy(
      (e: Error) => e instanceof SnapshotQuotaExceededError && /manual snapshot quota of the account and region is used up \(SnapshotQuotaExceeded(Fault)?\)/.test(e.message) && /Service Quotas/.test(e.message),
    );
  });
});

describe('the manual snapshot quota of each destination', () => {
  /** A context that remembers the access keys of the vault copier role's credentials (the vault account's, in moto). */
  function recordingVaultKeys(base: SnapshotContext): { ctx: SnapshotContext; vaultKeys: Set<string> } {
    const vaultKeys = new Set<string>();
    return {
      vaultKeys,
      ctx: {
        ...base,
        rds: (region, credentials) => {
          if (credentials) vaultKeys.add(credentials.accessKeyId);
          return base.rds(region, credentials);
        },
      },
    };
  }
  const copyRequests = () => proxy.seen.map(rdsRequest).filter((r) => r?.action === 'CopyDBSnapshot');

  it('the vault region is full: SnapshotQuotaExceededError naming the vault account and region, before any copy into the vault is requested', async () => {
    // Prepare: a snapshot shared with the vault; then the vault account's manual snapshot quota in its region is used up.
    const { ctx, vaultKeys } = recordingVaultKeys(context());
    const j = job('orders', { instanceIdentifier: db.instance });
    const created = await createSourceSnapshot(j, ctx);
    const source = await untilReady(j, created.poll, ctx, created.backupId);
    const copy = await copyToCopyRegion(j, source, ctx, created.backupId);
    if (!copy.started) throw new Error('expected a copy');
    const copied = { started: true as const, poll: { ready: true, waitSeconds: 0, ref: await untilReady(j, copy.poll, ctx, created.backupId) } };
    const share = await shareWithVault(j, source, copied, ctx);
    if (!share.shared) throw new Error('expected a share');
    quota.max = (used, scope) => (vaultKeys.has(scope.accessKey) ? used : 100);
    const copiesBefore = copyRequests().length;
    try {
      // Act
      const error = await copyIntoVault(j, share.ref, source, ctx, created.backupId).catch((e: unknown) => e);

      // Assess: refused with the vault's account and region named, and no CopyDBSnapshot was sent.
      expect(error).toBeInstanceOf(SnapshotQuotaExceededError);
      expect((error as Error).message).toMatch(/^No room for another manual snapshot in the vault \(account 222222222222, eu-central-1\): (\d+) of \1 Manual DB instance snapshots are used \(DescribeAccountAttributes\)\./);
      expect((error as Error).message).toMatch(/Next step: .*vault account 222222222222/);
      expect(vaultKeys.size).toBeGreaterThan(0);
      expect(copyRequests().length).toBe(copiesBefore);
    } finally {
      quota.max = () => 100;
    }
    const inVault = (await (await vaultRds()).send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual' }))).DBSnapshots!;
    expect(inVault.map((s) => s.DBSnapshotIdentifier)).not.toContain(created.poll.ref.id);
  });

  it('the copy region is full: SnapshotQuotaExceededError naming the production account and the copy region, before CopyDBSnapshot', async () => {
    // Prepare: an available source snapshot; then the production account's quota in the copy region is used up.
    const ctx = context();
    const j = job('orders', { instanceIdentifier: db.instance });
    const created = await createSourceSnapshot(j, ctx);
    const source = await untilReady(j, created.poll, ctx, created.backupId);
    const production = process.env.AWS_ACCESS_KEY_ID;
    quota.max = (used, scope) => (scope.region === VAULT_REGION && scope.accessKey === production ? used : 100);
    const copiesBefore = copyRequests().length;
    try {
      // Act
      const error = await copyToCopyRegion(j, source, ctx, created.backupId).catch((e: unknown) => e);

      // Assess
      expect(error).toBeInstanceOf(SnapshotQuotaExceededError);
      expect((error as Error).message).toMatch(/^No room for another manual snapshot in the copy region \(account 111111111111, eu-central-1\): (\d+) of \1 Manual DB instance snapshots are used/);
      expect(copyRequests().length).toBe(copiesBefore);
    } finally {
      quota.max = () => 100;
    }
  });
});

describe('throttling', () => {
  it('is retried with backoff by the SDK', async () => {
    const id = uniqueName('throttled');
    await createRdsClient({ region: SOURCE_REGION }).send(
      new CreateDBInstanceCommand({ DBInstanceIdentifier: id, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'u', MasterUserPassword: 'not-a-real-secret-1', StorageEncrypted: true, KmsKeyId: sourceKey }),
    );
    const throttle = throttleRds('CreateDBSnapshot', 1, (r) => r.params.get('DBInstanceIdentifier') === id);
    proxy.addRule(throttle);
    const { poll } = await createSourceSnapshot(job('throttled', { instanceIdentifier: id }), context());
    expect(poll.ref.id).toMatch(/^lifeboat-throttled-/);
    expect(throttle.count()).toBe(2);
  });

  it('that outlasts the SDK retries becomes a retryable ThrottledError for the state machine', async () => {
    const j = job('orders', { instanceIdentifier: db.instance });
    const { poll: { ref }, backupId } = await createSourceSnapshot(j, context({ vault: null }));
    const throttle = throttleRds('DescribeDBSnapshots', 2, (r) => r.params.get('DBSnapshotIdentifier') === ref.id);
    proxy.addRule(throttle);
    const error = await checkSnapshot(j, ref, context({ maxAttempts: 2 }), backupId).catch((e: unknown) => e);
    expect(throttle.count()).toBe(2);
    expect(error).toBeInstanceOf(ThrottledError);
    expect((error as ThrottledError).retryable).toBe(true);
    await expect(untilReady(j, { ready: false, ref, waitSeconds: 0 }, context(), backupId)).resolves.toMatchObject({ status: 'available' });
  });
});

describe('bad paths', () => {
  it('a snapshot that ends failed: clear error, and the failed snapshot is deleted so the next run starts clean', async () => {
    const j = job('orders', { instanceIdentifier: db.instance });
    const { poll: { ref }, backupId } = await createSourceSnapshot(j, context());
    proxy.addRule(snapshotStatus(inject('motoEndpoint'), (id) => id === ref.id, (n) => (n === 0 ? 'creating' : n === 1 ? 'failed' : undefined)));

    await expect(checkSnapshot(j, ref, context(), backupId)).resolves.toMatchObject({ ready: false, ref: { status: 'creating' } });
    await expect(checkSnapshot(j, ref, context(), backupId)).rejects.toSatisfy(
      (e: Error) => e instanceof SnapshotFailedError && e.message.includes(`DB snapshot ${ref.id} (eu-west-1) of database "orders" ended in status 'failed'. lifeboat deleted it`) && /describe-events/.test(e.message),
    );
    const left = (await createRdsClient({ region: SOURCE_REGION }).send(new DescribeDBSnapshotsCommand({ DBInstanceIdentifier: db.instance, SnapshotType: 'manual' }))).DBSnapshots!;
    expect(left.map((s) => s.DBSnapshotIdentifier)).not.toContain(ref.id);
  });

  it('a copy that never completes: not ready until the deadline, then a timeout that cancels the copy', async () => {
    const j = job('orders', { instanceIdentifier: db.instance });
    const ctx = context({ settings: { maxWaitMinutes: 30 } });
    const { poll: { ref: source }, backupId } = await createSourceSnapshot(j, ctx);
    const ref = await untilReady(j, { ready: false, ref: source, waitSeconds: 0 }, ctx, backupId);
    const copy = await copyToCopyRegion(j, ref, ctx, backupId);
    if (!copy.started) throw new Error('expected a copy');
    const copyRef = copy.poll.ref;
    proxy.addRule(snapshotStatus(inject('motoEndpoint'), (id, r) => id === copyRef.id && r.region === VAULT_REGION, () => 'copying'));

    // Before the deadline: not ready, with a wait that stays within it.
    const early = await checkSnapshot(j, copyRef, ctx, backupId);
    expect(early).toMatchObject({ ready: false, ref: { status: 'copying' } });
    expect(early.waitSeconds).toBeGreaterThanOrEqual(30);
    expect(early.waitSeconds).toBeLessThanOrEqual(30 * 60 + 1);
    const later = context({ settings: { maxWaitMinutes: 30 }, now: () => new Date(Date.now() + 31 * 60_000) });
    await expect(checkSnapshot(j, copyRef, later, backupId)).rejects.toSatisfy(
      (e: Error) => e instanceof SnapshotWaitTimeoutError && /cross-region copy .* is still 'copying' after 31 minutes; the limit is 30 minutes \(snapshots.maxWaitMinutes\)\. lifeboat cancelled the copy \(DeleteDBSnapshot\)/.test(e.message),
    );
    const remaining = (await createRdsClient({ region: VAULT_REGION }).send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual' }))).DBSnapshots!;
    expect(remaining.map((s) => s.DBSnapshotIdentifier)).not.toContain(copyRef.id);
  });

  it('a source snapshot that never becomes available: a timeout that deletes it, so it does not hold a place in the quota', async () => {
    // Prepare: a snapshot that stays 'creating'.
    const j = job('orders', { instanceIdentifier: db.instance });
    const ctx = context({ settings: { maxWaitMinutes: 30 } });
    const { poll: { ref }, backupId } = await createSourceSnapshot(j, ctx);
    proxy.addRule(snapshotStatus(inject('motoEndpoint'), (id, r) => id === ref.id && r.region === SOURCE_REGION, () => 'creating'));
    const later = context({ settings: { maxWaitMinutes: 30 }, now: () => new Date(Date.now() + 31 * 60_000) });

    // Act
    const error = await checkSnapshot(j, ref, later, backupId).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(SnapshotWaitTimeoutError);
    expect((error as Error).message).toMatch(/DB snapshot \S+ \(eu-west-1\) of database "orders" is still 'creating' after 31 minutes; .*lifeboat deleted it \(DeleteDBSnapshot\)/);
    const left = (await createRdsClient({ region: SOURCE_REGION }).send(new DescribeDBSnapshotsCommand({ DBInstanceIdentifier: db.instance, SnapshotType: 'manual' }))).DBSnapshots!;
    expect(left.map((s) => s.DBSnapshotIdentifier)).not.toContain(ref.id);
  });

  it('the copy key is not shared with the vault account: the vault copy fails naming the key and the policy to add', async () => {
    const ctx = context({ settings: { copy: { region: VAULT_REGION, kmsKeyArn: unsharedCopyKey } } });
    const error = await backUp(job('orders', { instanceIdentifier: db.instance }), ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapshotKeyNotSharedError);
    expect((error as Error).message).toContain(`The vault account ${VAULT} cannot use the KMS key ${unsharedCopyKey}`);
    expect((error as Error).message).toMatch(/Next step: add to that key's policy a statement allowing arn:aws:iam::222222222222:root kms:CreateGrant, kms:Decrypt/);
  });

  it('the source instance does not exist: a clear error and no snapshot', async () => {
    const before = actions('CreateDBSnapshot').length;
    await expect(createSourceSnapshot(job('ghost', { instanceIdentifier: 'no-such-instance' }), context())).rejects.toSatisfy(
      (e: Error) => e instanceof SourceDatabaseNotFoundError && e.message === 'The RDS instance "no-such-instance" (database "ghost", eu-west-1) does not exist, so no snapshot was taken. Next step: fix rds.instanceIdentifier of database "ghost" in the config (or the region the source stack is deployed to).',
    );
    await expect(createSourceSnapshot(job('ghost', { clusterIdentifier: 'no-such-cluster' }), context())).rejects.toBeInstanceOf(SourceDatabaseNotFoundError);
    expect(actions('CreateDBSnapshot').length).toBe(before);
  });

  it('an unencrypted database is refused unless the config allows it', async () => {
    await expect(createSourceSnapshot(job('plain', { instanceIdentifier: db.plain }), context())).rejects.toSatisfy(
      (e: Error) => e instanceof UnencryptedSnapshotRefusedError && /is not encrypted, so lifeboat refused to snapshot it/.test(e.message) && /snapshots.allowUnencrypted: true/.test(e.message),
    );
    const allowed = await backUp(job('plain', { instanceIdentifier: db.plain }), context({ settings: { allowUnencrypted: true } }));
    expect(allowed.created.poll.ref.encrypted).toBe(false);
    // An instance snapshot copied with a KMS key is encrypted from then on.
    expect(allowed.vault).toMatchObject({ encrypted: true, kmsKeyId: vaultKey });
  });

  it('a snapshot under the default aws/rds key is not shared: the error says exactly what to configure', async () => {
    // Prepare: vault in the source region and no re-encrypting copy, so the source snapshot itself would be shared.
    const ctx = context({ settings: { copy: undefined }, vault: { region: SOURCE_REGION } });
    const before = actions('ModifyDBSnapshotAttribute').length;

    // Act
    const error = await backUp(job('legacy', { instanceIdentifier: db.defaultKey }), ctx).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(DefaultKeyNotShareableError);
    expect((error as Error).message).toMatch(/is encrypted with the AWS managed key aws\/rds \(arn:aws:kms:eu-west-1:111111111111:key\/[0-9a-f-]+\), which RDS cannot share with the vault account 222222222222; nothing was shared\./);
    expect((error as Error).message).toContain('Next step: set snapshots.copy to { "region": "eu-west-1", "kmsKeyArn": "<a customer managed key in eu-west-1>" }');
    expect(actions('ModifyDBSnapshotAttribute').length).toBe(before);
  });

  it('with snapshots.copy set, a database under aws/rds reaches the vault through the re-encrypted copy', async () => {
    const { share, vault } = await backUp(job('legacy', { instanceIdentifier: db.defaultKey }), context());
    expect(share).toMatchObject({ shared: true, ref: { location: 'copy', kmsKeyId: sharedCopyKey } });
    expect(vault).toMatchObject({ status: 'available', kmsKeyId: vaultKey });
  });
});
