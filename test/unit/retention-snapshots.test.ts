import { describe, expect, it } from 'vitest';
import {
  DeleteDBSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  ListTagsForResourceCommand,
  type DBSnapshot,
} from '@aws-sdk/client-rds';
import type { RdsApi } from '../../functions/lib/snapshots/rds.ts';
import { RetentionListingError } from '../../functions/lib/retention/errors.ts';
import { executeSnapshotPrune, listRetentionSnapshots, planSnapshotPrune } from '../../functions/lib/retention/snapshot-executor.ts';

/** Call shapes only (moto serves neither RDS pagination nor snapshots without a TagList): a fake RDS `send`. */
const tags = (plan: string, db: string, backup: string) => [
  { Key: 'lifeboat:backup-id', Value: backup },
  { Key: 'lifeboat:plan', Value: plan },
  { Key: 'lifeboat:database', Value: db },
];

function snapshot(id: string, extra: Partial<DBSnapshot> = {}): DBSnapshot {
  return {
    DBSnapshotIdentifier: id,
    DBSnapshotArn: `arn:aws:rds:eu-west-1:111111111111:snapshot:${id}`,
    Status: 'available',
    SnapshotType: 'manual',
    SnapshotCreateTime: new Date('2027-01-01T00:00:00Z'),
    TagList: tags('nightly', 'orders', `b-${id}`),
    ...extra,
  };
}

function fakeRds(pages: DBSnapshot[][], options: { tagsByArn?: Record<string, { Key: string; Value: string }[]>; failDescribe?: Error } = {}) {
  const calls: { name: string; input: Record<string, unknown> }[] = [];
  const rds: RdsApi = {
    send: (async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      calls.push({ name: command.constructor.name, input: command.input });
      if (command instanceof DescribeDBSnapshotsCommand) {
        if (options.failDescribe) throw options.failDescribe;
        const i = command.input.Marker ? Number(command.input.Marker) : 0;
        return { DBSnapshots: pages[i] ?? [], Marker: i + 1 < pages.length ? String(i + 1) : undefined };
      }
      if (command instanceof DescribeDBClusterSnapshotsCommand) return { DBClusterSnapshots: [] };
      if (command instanceof ListTagsForResourceCommand) return { TagList: options.tagsByArn?.[command.input.ResourceName as string] ?? [] };
      if (command instanceof DeleteDBSnapshotCommand) return {};
      throw new Error(`unexpected ${command.constructor.name}`);
    }) as RdsApi['send'],
  };
  return { rds, calls };
}

const target = { location: 'source', region: 'eu-west-1', planId: 'nightly', databaseId: 'orders' };

describe('snapshot listing call shapes', () => {
  it('pages through manual snapshots only, reads missing tag lists, and keeps out anything not manual', async () => {
    const noTags = snapshot('s3', { TagList: undefined });
    const { rds, calls } = fakeRds([[snapshot('s1'), snapshot('auto', { SnapshotType: 'automated' })], [snapshot('shared', { SnapshotType: 'shared' }), noTags]], {
      tagsByArn: { [noTags.DBSnapshotArn!]: tags('nightly', 'orders', 'b-s3') },
    });

    const inventory = await listRetentionSnapshots(rds, target, { pageSize: 20 });

    expect(inventory.snapshots.map((s) => [s.id, s.backupId])).toEqual([
      ['s1', 'b-s1'],
      ['s3', 'b-s3'],
    ]);
    const describes = calls.filter((c) => c.name === 'DescribeDBSnapshotsCommand').map((c) => c.input);
    expect(describes).toEqual([
      { SnapshotType: 'manual', MaxRecords: 20, Marker: undefined },
      { SnapshotType: 'manual', MaxRecords: 20, Marker: '1' },
    ]);
    expect(calls.filter((c) => c.name === 'ListTagsForResourceCommand').map((c) => c.input)).toEqual([{ ResourceName: noTags.DBSnapshotArn }]);
    expect(calls.some((c) => c.name === 'DescribeDBClusterSnapshotsCommand' && c.input.SnapshotType === 'manual')).toBe(true);
  });

  it('tells same-region originals from their -cmk copies', async () => {
    const { rds } = fakeRds([[snapshot('lifeboat-orders-1'), snapshot('lifeboat-orders-1-cmk')]]);
    const originals = await listRetentionSnapshots(rds, { ...target, select: 'originals' });
    const copies = await listRetentionSnapshots(rds, { ...target, location: 'copy-region', select: 'same-region-copies' });
    expect(originals.snapshots.map((s) => s.id)).toEqual(['lifeboat-orders-1']);
    expect(copies.snapshots.map((s) => s.id)).toEqual(['lifeboat-orders-1-cmk']);
  });

  it('uses the original creation time of a copy, and a throttled listing is a retryable RetentionListingError', async () => {
    const copy = snapshot('c', { SnapshotCreateTime: new Date('2027-01-05T00:00:00Z'), OriginalSnapshotCreateTime: new Date('2027-01-01T00:00:00Z') });
    const { rds } = fakeRds([[copy]]);
    expect((await listRetentionSnapshots(rds, target)).snapshots[0]!.createdAt).toEqual(new Date('2027-01-01T00:00:00Z'));

    const throttled = fakeRds([], { failDescribe: Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }) });
    const error = await listRetentionSnapshots(throttled.rds, target).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetentionListingError);
    expect(error).toMatchObject({ retryable: true, message: expect.stringContaining('database orders (plan nightly) at source') });
  });

  it('writes no audit and deletes nothing when nothing is planned for deletion, and refuses to delete before the intent is recorded', async () => {
    const { rds, calls } = fakeRds([[snapshot('s1'), snapshot('s2', { SnapshotCreateTime: new Date('2026-01-01T00:00:00Z') })]]);
    const plan = await planSnapshotPrune({ rds, target, policy: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 1 }, timeZone: 'UTC', now: new Date('2027-06-01T00:00:00Z') });
    expect(plan.decisions.map((d) => [d.id, d.action])).toEqual([
      ['s1', 'keep'],
      ['s2', 'delete'],
    ]);
    const failingAudit = { bucket: 'b', s3: { send: async () => Promise.reject(Object.assign(new Error('denied'), { name: 'AccessDenied' })) } } as never;
    await expect(executeSnapshotPrune(plan, { rds, audit: failingAudit, prefix: 'backups/' })).rejects.toMatchObject({ name: 'RetentionAuditError', message: expect.stringContaining('Nothing was deleted') });
    expect(calls.some((c) => c.name === 'DeleteDBSnapshotCommand')).toBe(false);
  });
});
