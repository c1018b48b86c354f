import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createS3Client } from '../../functions/lib/aws/clients.ts';
import { newBackupId } from '../../functions/lib/backup/manifest.ts';
import type { AuditLine } from '../../functions/lib/retention/s3-executor.ts';
import { lifeboat } from '../harness/cli.ts';
import { uniqueName } from '../harness/aws.ts';
import { createRetentionBucket, putBackup, readJsonLines } from './retention-fixtures.ts';

const DAY = 86_400_000;
const PREFIX = 'backups/';
const s3 = createS3Client();
const db = uniqueName('notes');
let dir: string;
let configPath: string;
let bucket: string;
const ids: string[] = [];
let otherPlanId: string;

async function keys(prefix = `${PREFIX}${db}/`): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

beforeAll(async () => {
  bucket = await createRetentionBucket(s3, false);
  // Five nightly dumps 2..6 days old, and an old one of another plan that nightly's policy must not count or touch.
  for (let i = 0; i < 5; i++) {
    const time = new Date(Date.now() - (i + 2) * DAY);
    ids.push(newBackupId(time, randomBytes(3).toString('hex')));
    await putBackup(s3, { bucket, prefix: PREFIX, databaseId: db }, ids[i]!, time);
  }
  const old = new Date(Date.now() - 40 * DAY);
  otherPlanId = newBackupId(old, 'hourly');
  await putBackup(s3, { bucket, prefix: PREFIX, databaseId: db, planId: 'hourly' }, otherPlanId, old);
  dir = mkdtempSync(join(tmpdir(), 'lifeboat-prune-'));
  configPath = join(dir, 'lifeboat.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      name: 'prunetest',
      source: { region: 'eu-west-1' },
      databases: [{ id: db, connection: { host: 'localhost', database: 'notes', username: 'u', passwordEnv: 'UNUSED_PASSWORD', sslMode: 'disable' } }],
      plans: [
        {
          id: 'nightly',
          schedule: { cron: 'cron(0 3 * * ? *)', timezone: 'Europe/Berlin' },
          databases: [db],
          rpoMinutes: 1440,
          rtoMinutes: 60,
          retention: { source: { keepLast: 2, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 1 } },
        },
      ],
      storage: { bucketName: bucket },
    }),
  );
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lifeboat prune', () => {
  it('is a dry run by default: prints the plan as a table and deletes nothing', async () => {
    // Prepare
    const before = await keys();

    // Act
    const [out, json] = await Promise.all([lifeboat(['prune', '--config', configPath]), lifeboat(['prune', '--config', configPath, '--dry-run', '--json'])]);

    // Assess
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain(`== plan nightly, database ${db}, source ==`);
    expect(out.stdout).toMatch(/^ACTION +BACKUP +TIME \(Europe\/Berlin\) +REASONS$/m);
    for (const id of ids.slice(0, 2)) expect(out.stdout).toMatch(new RegExp(`^keep +${id} `, 'm'));
    for (const id of ids.slice(2)) expect(out.stdout).toMatch(new RegExp(`^delete +${id} +.*beyond policy$`, 'm'));
    expect(out.stdout).not.toContain(otherPlanId);
    expect(out.stdout).toContain('1 backup(s) of other plans (or of none) left alone');
    expect(out.stdout).toContain(`No lifeboat snapshots of database ${db} (plan nightly) at source (eu-west-1).`);
    expect(out.stdout).toContain('Dry run: nothing was deleted. 3 backups would be deleted; run again with --execute to delete them.');
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout);
    expect(parsed.dryRun).toBe(true);
    expect(parsed.results[0]).toMatchObject({ databaseId: db, location: 'source', dryRun: true, deleted: 3, auditKeys: [] });
    expect(parsed.results[0].decisions.dumps.filter((d: { action: string }) => d.action === 'delete').map((d: { id: string }) => d.id).sort()).toEqual(ids.slice(2).sort());
    expect(await keys()).toEqual(before);
    expect(await keys(`${PREFIX}_audit/`)).toEqual([]);
  });

  it('rejects contradictory or unknown flags with exit code 2, naming the flag', async () => {
    const [both, location, database] = await Promise.all([
      lifeboat(['prune', '--config', configPath, '--dry-run', '--execute']),
      lifeboat(['prune', '--config', configPath, '--location', 'moon']),
      lifeboat(['prune', '--config', configPath, '--database', 'nope']),
    ]);
    expect(both).toMatchObject({ code: 2, stderr: expect.stringContaining('--dry-run and --execute: choose one') });
    expect(location).toMatchObject({ code: 2, stderr: expect.stringContaining('--location: must be one of source, copy-region, vault') });
    expect(database).toMatchObject({ code: 2, stderr: expect.stringContaining('--database: "nope" is in no plan') });
  });

  it('deletes with --execute, only what the plan says, and writes the audit log', async () => {
    // Act
    const out = await lifeboat(['prune', '--config', configPath, '--database', db, '--location', 'source', '--execute']);

    // Assess
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/Deleted 3 \(0 failed\)\. Audit log: s3:\/\/\S+\/backups\/_audit\/retention\//);
    const left = await keys();
    expect(left.map((k) => k.split('/')[2]).filter((v, i, a) => a.indexOf(v) === i).sort()).toEqual([...ids.slice(0, 2), otherPlanId].sort());
    const [auditKey] = await keys(`${PREFIX}_audit/retention/`);
    const audit = await readJsonLines<AuditLine>(s3, bucket, auditKey!);
    expect(audit.map((l) => [l.backupId, l.outcome]).sort()).toEqual(ids.slice(2).map((id) => [id, 'deleted']).sort());
  });
});
