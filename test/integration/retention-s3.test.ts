import { randomBytes } from 'node:crypto';
import {
  DeleteObjectCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { createS3Client } from '../../functions/lib/aws/clients.ts';
import { backupKeys, newBackupId } from '../../functions/lib/backup/manifest.ts';
import type { RetentionPolicy } from '../../functions/lib/config/schema.ts';
import { planRetention } from '../../functions/lib/retention/planner.ts';
import {
  executeS3Prune,
  planS3Prune,
  pruneS3Backups,
  renderPrunePlan,
  type AuditLine,
  type S3RetentionTarget,
} from '../../functions/lib/retention/s3-executor.ts';
import { createRetentionBucket, putBackup as putStoredBackup, readJsonLines } from './retention-fixtures.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const PREFIX = 'backups/';
const DB = 'orders';

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const putBackup = (s3: S3Client, bucket: string, id: string, consistentAt: Date) => putStoredBackup(s3, { bucket, prefix: PREFIX, databaseId: DB }, id, consistentAt);

async function listKeys(s3: S3Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  return keys.sort();
}

/** Every version and delete marker under a prefix, as `key@versionId` (markers flagged). */
async function listVersions(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const out = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix }));
  return [
    ...(out.Versions ?? []).map((v) => `${v.Key}@${v.VersionId}`),
    ...(out.DeleteMarkers ?? []).map((m) => `${m.Key}@${m.VersionId} (delete marker)`),
  ].sort();
}

const readAudit = (s3: S3Client, bucket: string, key: string) => readJsonLines<AuditLine>(s3, bucket, key);

interface CapturedCall {
  command: string;
  input: Record<string, unknown>;
}

/** Records every command sent through the client, in order (call shapes only; S3 is still moto). */
function capture(s3: S3Client): CapturedCall[] {
  const calls: CapturedCall[] = [];
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      calls.push({ command: context.commandName ?? '?', input: structuredClone(args.input as Record<string, unknown>) });
      return next(args);
    },
    { step: 'initialize', name: 'retentionTestCapture' },
  );
  return calls;
}

function deleteCalls(calls: readonly CapturedCall[]): { Key: string; VersionId?: string }[][] {
  return calls
    .filter((c) => c.command === 'DeleteObjectsCommand')
    .map((c) => (c.input.Delete as { Objects: { Key: string; VersionId?: string }[] }).Objects);
}

// ---------------------------------------------------------------------------

describe('S3 retention executor against moto', () => {
  // Each test makes its own client, so the middleware it adds stays with it.

  it('dry run deletes nothing; a real run deletes exactly the plan, manifests first, with an audit log', async () => {
    const s3 = createS3Client();
    const bucket = await createRetentionBucket(s3, false);
    const target: S3RetentionTarget = { location: 'source', bucket, prefix: PREFIX, databaseId: DB };
    // Plan "now" is a month ahead of moto's clock, so objects written now are old.
    const now = new Date(Date.now() + 30 * DAY);
    const policy: RetentionPolicy = { keepLast: 2, daily: 3, weekly: 2, monthly: 0, yearly: 0, minAgeDays: 1 };
    const timeZone = 'Pacific/Auckland';

    // 24 backups, one every 13 hours, the newest 3 hours ago.
    const backups: { id: string; time: Date }[] = [];
    for (let i = 0; i < 24; i++) {
      const time = new Date(now.getTime() - 3 * HOUR - i * 13 * HOUR);
      const id = newBackupId(time, randomBytes(3).toString('hex'));
      backups.push({ id, time });
      await putBackup(s3, bucket, id, time);
    }
    const proven = backups[20]!.id; // an old backup a drill restored
    // An old leftover of a dump that died (data, no manifest) and a fresh one that may be in progress.
    const deadId = newBackupId(new Date(now.getTime() - 20 * DAY), 'dead00');
    const freshId = newBackupId(new Date(now.getTime() - 2 * HOUR), 'fresh0');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: backupKeys(PREFIX, DB, deadId).data, Body: 'partial' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: backupKeys(PREFIX, DB, freshId).data, Body: 'partial' }));
    // A manifest in a format this code does not understand: reported, never touched.
    const oddId = newBackupId(new Date(now.getTime() - 25 * DAY), 'odd000');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: backupKeys(PREFIX, DB, oddId).manifest, Body: '{"formatVersion": 2}' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: backupKeys(PREFIX, DB, oddId).data, Body: 'x' }));

    const before = await listKeys(s3, bucket);
    const options = { s3, target, policy, timeZone, now, provenBackupIds: [proven], pageSize: 5 };

    // Dry run.
    const dry = await pruneS3Backups({ ...options, dryRun: true });
    expect(await listKeys(s3, bucket)).toEqual(before);
    expect(dry.dryRun).toBe(true);
    expect(dry.auditKey).toBeUndefined();
    expect(dry.plan.unreadable.map((u) => u.id)).toEqual([oddId]);
    expect(dry.plan.incomplete.map((d) => [d.id, d.action, d.reasons[0]])).toEqual([
      [freshId, 'keep', 'incomplete backup written within 1 d: may still be in progress'],
      [deadId, 'delete', 'incomplete backup (no manifest)'],
    ]);
    // The S3 plan is the pure planner's plan over what is stored (the planner itself is property-tested).
    const expected = planRetention(
      backups.map((b) => ({ id: b.id, time: b.time, location: 'source', verifiedByDrill: b.id === proven })),
      policy,
      now,
      timeZone,
    );
    expect(dry.plan.decisions.map(({ id, action, reasons }) => ({ id, action, reasons }))).toEqual(
      expected.map(({ id, action, reasons }) => ({ id, action, reasons })),
    );
    const planned = expected.filter((d) => d.action === 'delete').map((d) => d.id);
    expect(planned.length).toBeGreaterThan(5);
    expect(dry.plan.decisions.find((d) => d.id === proven)!.reasons).toContain('newest backup proven by a drill');
    expect(dry.deleted).toBe(planned.length);
    expect(dry.kept).toBe(24 - planned.length);

    const table = renderPrunePlan(dry.plan);
    expect(table).toMatch(/^ACTION +BACKUP +TIME \(Pacific\/Auckland\) +REASONS$/m);
    expect(table).toContain(`delete  ${planned[0]}`);
    expect(table).toContain(`${deadId} (incomplete)`);
    expect(table).toContain('24 backups: ');

    // Real run, in batches of 4 keys so that ordering spans several calls.
    const calls = capture(s3);
    const runAt = new Date();
    const summary = await executeS3Prune(dry.plan, { s3, runId: 'run-1', batchSize: 4, clock: () => runAt });
    expect(summary.failed).toEqual([]);
    expect(summary.deletedIds.sort()).toEqual([...planned].sort());
    expect(summary.incomplete).toEqual({ found: 2, deleted: 1 });
    expect(summary.skippedLocked).toBe(0);

    const gone = new Set(planned.flatMap((id) => [backupKeys(PREFIX, DB, id).data, backupKeys(PREFIX, DB, id).manifest]));
    gone.add(backupKeys(PREFIX, DB, deadId).data);
    const auditKey = `${PREFIX}_audit/retention/${runAt.toISOString().slice(0, 10).replace(/-/g, '/')}/run-1.source.${DB}.jsonl`;
    expect(summary.auditKey).toBe(auditKey);
    expect(await listKeys(s3, bucket)).toEqual([...before.filter((k) => !gone.has(k)), auditKey].sort());

    // Manifests first: every DeleteObjects call with a manifest comes before any call with data.
    const batches = deleteCalls(calls);
    expect(batches.length).toBeGreaterThan(2);
    expect(batches.every((b) => b.length <= 4)).toBe(true);
    const kinds = batches.map((b) => [...new Set(b.map((o) => (o.Key.endsWith('/manifest.json') ? 'manifest' : 'data')))].join());
    const lastManifest = kinds.lastIndexOf('manifest');
    expect(kinds.slice(0, lastManifest + 1).every((k) => k === 'manifest')).toBe(true);
    expect(kinds.slice(lastManifest + 1).every((k) => k === 'data')).toBe(true);
    expect(batches.flat().map((o) => o.Key).sort()).toEqual([...gone].sort());
    // No version ids in a bucket that never had versioning.
    expect(batches.flat().every((o) => o.VersionId === undefined)).toBe(true);
    // The audit intent was written before the first delete.
    const firstPut = calls.findIndex((c) => c.command === 'PutObjectCommand');
    const firstDelete = calls.findIndex((c) => c.command === 'DeleteObjectsCommand');
    expect(firstPut).toBeGreaterThanOrEqual(0);
    expect(firstPut).toBeLessThan(firstDelete);

    const audit = await readAudit(s3, bucket, auditKey);
    expect(audit.map((l) => l.backupId).sort()).toEqual([...planned, deadId].sort());
    for (const l of audit) {
      expect(l).toMatchObject({ runId: 'run-1', location: 'source', bucket, databaseId: DB, outcome: 'deleted', time: runAt.toISOString() });
      expect(l.reasons.length).toBeGreaterThan(0);
      expect(l.versionIds).toHaveLength(l.keys.length);
      if (l.kind === 'backup') {
        expect(l.keys.sort()).toEqual([backupKeys(PREFIX, DB, l.backupId).data, backupKeys(PREFIX, DB, l.backupId).manifest]);
        expect(l.reasons).toEqual(['beyond policy']);
      } else {
        expect(l).toMatchObject({ backupId: deadId, reasons: ['incomplete backup (no manifest)'] });
      }
    }

    // Idempotent: a second run with the same clock deletes nothing and writes no audit.
    const again = await pruneS3Backups({ ...options, dryRun: false });
    expect(again.deleted).toBe(0);
    expect(again.failed).toEqual([]);
    expect(again.auditKey).toBeUndefined();
  });

  it('versioned + Object Lock: removes every version, never touches locked ones, reports denied deletes and proceeds', async () => {
    const s3 = createS3Client();
    const bucket = await createRetentionBucket(s3, true);
    const target: S3RetentionTarget = { location: 'vault', bucket, prefix: PREFIX, databaseId: DB };
    const now = new Date(Date.now() + 30 * DAY);
    const policy: RetentionPolicy = { keepLast: 2, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 1 };

    const ids: string[] = [];
    const keys: { data: string; manifest: string }[] = [];
    for (let i = 0; i < 9; i++) {
      const time = new Date(now.getTime() - (i + 2) * DAY);
      const id = newBackupId(time, `b${i}`.padEnd(6, '0'));
      ids.push(id);
      keys.push(await putBackup(s3, bucket, id, time));
    }
    // ids[0..1] are kept by "last 2"; ids[2..8] are beyond policy.
    const [, , rewritten, locked, held, denyManifest, denyData, plain, plain2] = ids.map((id, i) => ({ id, keys: keys[i]! }));
    // A second manifest version: both versions must go.
    await putBackup(s3, bucket, rewritten!.id, new Date(now.getTime() - 4 * DAY));
    // Compliance retention beyond the plan's "now" on the data of one, a legal hold on the manifest of another.
    await s3.send(
      new PutObjectRetentionCommand({
        Bucket: bucket,
        Key: locked!.keys.data,
        Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(Date.now() + 60 * DAY) },
      }),
    );
    await s3.send(new PutObjectLegalHoldCommand({ Bucket: bucket, Key: held!.keys.manifest, LegalHold: { Status: 'ON' } }));
    // A backup whose manifest someone "deleted" with a plain DeleteObject: only a delete marker.
    const markedId = newBackupId(new Date(now.getTime() - 15 * DAY), 'mark00');
    const marked = await putBackup(s3, bucket, markedId, new Date(now.getTime() - 15 * DAY));
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: marked.manifest }));

    const plan = await planS3Prune({ s3, target, policy, timeZone: 'America/Los_Angeles', now, pageSize: 4 });
    expect(plan.versioned).toBe(true);
    const action = (id: string) => plan.decisions.find((d) => d.id === id)!;
    expect(action(locked!.id)).toMatchObject({ action: 'keep', reasons: [expect.stringMatching(/^under Object Lock until /)] });
    expect(action(held!.id)).toMatchObject({ action: 'keep', reasons: ['under an Object Lock legal hold'] });
    expect(plan.skippedLocked.sort()).toEqual([locked!.id, held!.id].sort());
    expect(plan.incomplete.map((d) => [d.id, d.action])).toEqual([[markedId, 'delete']]);
    const toDelete = plan.decisions.filter((d) => d.action === 'delete').map((d) => d.id);
    expect(toDelete.sort()).toEqual([rewritten!.id, denyManifest!.id, denyData!.id, plain!.id, plain2!.id].sort());

    // After planning, holds appear that the plan does not know about: S3 must deny these.
    await s3.send(new PutObjectLegalHoldCommand({ Bucket: bucket, Key: denyManifest!.keys.manifest, LegalHold: { Status: 'ON' } }));
    await s3.send(new PutObjectLegalHoldCommand({ Bucket: bucket, Key: denyData!.keys.data, LegalHold: { Status: 'ON' } }));

    const versionsBefore = await listVersions(s3, bucket, `${PREFIX}${DB}/`);
    const calls = capture(s3);
    const summary = await executeS3Prune(plan, { s3, runId: 'run-2', batchSize: 3 });

    expect(summary.failed.map((f) => f.id).sort()).toEqual([denyManifest!.id, denyData!.id].sort());
    for (const f of summary.failed) expect(f.error).toMatch(/AccessDenied/);
    expect(summary.failed.find((f) => f.id === denyManifest!.id)!.error).toMatch(/data was left in place/);
    expect(summary.deletedIds.sort()).toEqual([rewritten!.id, plain!.id, plain2!.id].sort());
    expect(summary).toMatchObject({ skippedLocked: 2, incomplete: { found: 1, deleted: 1 } });

    // Deleted backups are really gone: no versions, no delete markers.
    for (const id of [rewritten!.id, plain!.id, plain2!.id, markedId]) {
      expect(await listVersions(s3, bucket, backupKeys(PREFIX, DB, id).base)).toEqual([]);
    }
    // Locked and held backups were never sent to S3 and are intact.
    const sent = deleteCalls(calls).flat();
    for (const b of [locked!, held!]) {
      expect(sent.filter((o) => o.Key.startsWith(backupKeys(PREFIX, DB, b.id).base))).toEqual([]);
      const base = backupKeys(PREFIX, DB, b.id).base;
      expect(await listVersions(s3, bucket, base)).toEqual(versionsBefore.filter((v) => v.startsWith(base)));
    }
    // Every object sent carries its version id (the rewritten manifest: two of them).
    expect(sent.every((o) => typeof o.VersionId === 'string' && o.VersionId.length > 0)).toBe(true);
    expect(sent.filter((o) => o.Key === rewritten!.keys.manifest)).toHaveLength(2);
    // Manifest before data, per backup, across batches.
    const batches = deleteCalls(calls);
    for (const id of [rewritten!.id, plain!.id, plain2!.id]) {
      const k = backupKeys(PREFIX, DB, id);
      const lastManifest = Math.max(...batches.flatMap((b, i) => (b.some((o) => o.Key === k.manifest) ? [i] : [])));
      const firstData = Math.min(...batches.flatMap((b, i) => (b.some((o) => o.Key === k.data) ? [i] : [])));
      expect(lastManifest).toBeLessThan(firstData);
    }
    // The denied manifest kept its backup whole: the data was never attempted.
    expect(sent.some((o) => o.Key === denyManifest!.keys.data)).toBe(false);
    const remaining = await listKeys(s3, bucket);
    expect(remaining).toEqual(expect.arrayContaining([denyManifest!.keys.manifest, denyManifest!.keys.data, denyData!.keys.data]));
    expect(remaining).not.toContain(denyData!.keys.manifest);

    // Audit: one line per attempted deletion with version ids, failures included.
    const audit = await readAudit(s3, bucket, summary.auditKey!);
    expect(audit.map((l) => [l.backupId, l.outcome]).sort()).toEqual(
      [
        [rewritten!.id, 'deleted'],
        [plain!.id, 'deleted'],
        [plain2!.id, 'deleted'],
        [markedId, 'deleted'],
        [denyManifest!.id, 'failed'],
        [denyData!.id, 'failed'],
      ].sort(),
    );
    const markedLine = audit.find((l) => l.backupId === markedId)!;
    expect(markedLine.objects.filter((o) => o.deleteMarker)).toHaveLength(1);
    expect(audit.find((l) => l.backupId === rewritten!.id)!.versionIds).toHaveLength(4); // 2 manifests + 2 data
    for (const l of audit) expect(l.versionIds.every((v) => typeof v === 'string')).toBe(true);

    // The next plan sees the half-deleted backup as incomplete, and the denied one still as a backup.
    const next = await planS3Prune({ s3, target, policy, timeZone: 'UTC', now });
    expect(next.incomplete.map((d) => d.id)).toEqual([denyData!.id]);
    expect(next.incomplete[0]!).toMatchObject({ action: 'keep', reasons: ['under an Object Lock legal hold'] });
    expect(next.decisions.map((d) => d.id)).toContain(denyManifest!.id);
  });

  it('retries throttled keys and throttled requests, then deletes everything', async () => {
    const s3 = createS3Client();
    const bucket = await createRetentionBucket(s3, false);
    const target: S3RetentionTarget = { location: 'source', bucket, prefix: PREFIX, databaseId: DB };
    const now = new Date(Date.now() + 30 * DAY);
    for (let i = 0; i < 4; i++) {
      const time = new Date(now.getTime() - (i + 2) * DAY);
      await putBackup(s3, bucket, newBackupId(time, `t${i}`.padEnd(6, '0')), time);
    }
    const plan = await planS3Prune({ s3, target, policy: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 1 }, timeZone: 'UTC', now });
    expect(plan.decisions.filter((d) => d.action === 'delete')).toHaveLength(3);

    // Simulated S3 throttling: the first DeleteObjects request fails with 503 SlowDown
    // (as after the SDK's own retries); the next one has one key rejected with a
    // per-key SlowDown (that key is held back, as S3 would not have deleted it).
    let n = 0;
    const sent: number[] = [];
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'DeleteObjectsCommand') return next(args);
        n++;
        const input = args.input as { Delete: { Objects: { Key: string }[] } };
        sent.push(input.Delete.Objects.length);
        if (n === 1) {
          throw Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
        }
        if (n === 2) {
          const [held, ...rest] = input.Delete.Objects;
          const result = await next({ ...args, input: { ...args.input, Delete: { ...input.Delete, Objects: rest } } as typeof args.input });
          (result.output as { Errors?: unknown[] }).Errors = [{ Key: held!.Key, Code: 'SlowDown', Message: 'Please reduce your request rate.' }];
          return result;
        }
        return next(args);
      },
      { step: 'initialize', name: 'retentionTestThrottle' },
    );
    const sleeps: number[] = [];
    const summary = await executeS3Prune(plan, {
      s3,
      retry: { attempts: 4, baseDelayMs: 100, sleep: async (ms) => void sleeps.push(ms) },
    });
    expect(summary.failed).toEqual([]);
    expect(summary.deleted).toBe(3);
    // Phase 1 (3 manifests): 503, then 2 of 3 + SlowDown for 1, then the 1. Phase 2: 3 data keys.
    expect(sent).toEqual([3, 3, 1, 3]);
    expect(sleeps).toHaveLength(2);
    expect(sleeps.every((ms) => ms >= 0 && ms < 200)).toBe(true);
    const left = await listKeys(s3, bucket);
    expect(left.filter((k) => k.startsWith(`${PREFIX}${DB}/`))).toHaveLength(2);
  });

  it('gives up on a key that stays throttled and reports it, leaving its data in place', async () => {
    const s3 = createS3Client();
    const bucket = await createRetentionBucket(s3, false);
    const target: S3RetentionTarget = { location: 'source', bucket, prefix: PREFIX, databaseId: DB };
    const now = new Date(Date.now() + 30 * DAY);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const time = new Date(now.getTime() - (i + 2) * DAY);
      ids.push(newBackupId(time, `s${i}`.padEnd(6, '0')));
      await putBackup(s3, bucket, ids[i]!, time);
    }
    const plan = await planS3Prune({ s3, target, policy: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 1 }, timeZone: 'UTC', now });
    const stuck = backupKeys(PREFIX, DB, ids[2]!).manifest;
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'DeleteObjectsCommand') return next(args);
        const input = args.input as { Delete: { Objects: { Key: string }[] } };
        const rest = input.Delete.Objects.filter((o) => o.Key !== stuck);
        if (rest.length === input.Delete.Objects.length) return next(args);
        const result = rest.length > 0 ? await next({ ...args, input: { ...args.input, Delete: { ...input.Delete, Objects: rest } } as typeof args.input }) : { output: { $metadata: {} }, response: {} };
        (result.output as { Errors?: unknown[] }).Errors = [{ Key: stuck, Code: 'SlowDown', Message: 'Please reduce your request rate.' }];
        return result;
      },
      { step: 'initialize', name: 'retentionTestStuck' },
    );
    const summary = await executeS3Prune(plan, { s3, retry: { attempts: 3, sleep: async () => {} } });
    expect(summary.deletedIds).toEqual([ids[1]]);
    expect(summary.failed).toEqual([{ id: ids[2], error: expect.stringMatching(/SlowDown.*data was left in place/) }]);
    const left = await listKeys(s3, bucket);
    expect(left).toEqual(expect.arrayContaining([stuck, backupKeys(PREFIX, DB, ids[2]!).data]));
  });
});
