import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminClient, createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createTestBucket, createTestKey, testClients } from '../harness/aws.ts';
import { lifeboat } from '../harness/cli.ts';

const SENTINEL = 'S3NTINEL-cli-pass-42ab';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let dir: string;
let configPath: string;
let bucket: string;
let keyArn: string;
const restoredName = `lbcli_restored_${Date.now()}`;

beforeAll(async () => {
  db = await createTestDatabase('lbcli');
  const s = pgServer();
  // A login role whose password is the sentinel: it must never be printed.
  await withClient('postgres', async (c) => {
    await c.query(`DROP ROLE IF EXISTS lifeboat_cli`);
    await c.query(`CREATE ROLE lifeboat_cli LOGIN SUPERUSER PASSWORD '${SENTINEL}'`);
  });
  await withClient(db.name, (c) => c.query(`CREATE TABLE notes (id serial PRIMARY KEY, body text); INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 321) g`));
  [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  dir = mkdtempSync(join(tmpdir(), 'lifeboat-cli-'));
  configPath = join(dir, 'lifeboat.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      name: 'clitest',
      source: { region: 'eu-west-1' },
      databases: [{ id: 'notes', connection: { host: s.host, port: s.port, database: db.name, username: 'lifeboat_cli', passwordEnv: 'NOTES_DB_PASSWORD', sslMode: 'disable' } }],
      plans: [{ id: 'adhoc', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['notes'], rpoMinutes: 1440, rtoMinutes: 60 }],
      storage: { bucketName: bucket, kmsKeyArn: keyArn },
    }),
  );
});
afterAll(async () => {
  await db?.drop();
  const admin = await adminClient();
  await admin.query(`DROP DATABASE IF EXISTS ${restoredName} WITH (FORCE)`);
  await admin.query(`DROP DATABASE IF EXISTS ${restoredName}_part WITH (FORCE)`);
  await admin.end();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lifeboat CLI', () => {
  it('backs up, lists, verifies and restores, printing structured results and never the password', async () => {
    // Act
    const backup = await lifeboat(['backup', '--config', configPath, '--database', 'notes', '--json'], { NOTES_DB_PASSWORD: SENTINEL });
    // A newer directory without a manifest (a dump that died before committing): never listed or chosen as a backup.
    const leftover = '20991231T000000Z-dead00';
    await testClients().s3.send(new PutObjectCommand({ Bucket: bucket, Key: `backups/notes/${leftover}/dump.enc`, Body: 'partial' }));
    const listed = await lifeboat(['backups', '--config', configPath, '--database', 'notes', '--json']);
    const listedAll = await lifeboat(['backups', '--config', configPath, '--database', 'notes', '--uncommitted']);
    const verify = await lifeboat(['verify', '--config', configPath, '--database', 'notes']);
    const s = pgServer();
    const restore = await lifeboat(['restore', '--config', configPath, '--database', 'notes', '--target', `postgres://lifeboat_cli@${s.host}:${s.port}/${restoredName}?sslmode=disable`, '--create'], {
      PGPASSWORD: SENTINEL,
    });

    // Assess
    expect(backup.code, backup.stderr).toBe(0);
    const result = JSON.parse(backup.stdout);
    expect(result).toMatchObject({ databaseId: 'notes', bucket });
    expect(JSON.parse(listed.stdout)).toEqual({ databaseId: 'notes', backups: [result.backupId] });
    expect(listedAll.stdout.trim().split('\n')).toEqual([
      result.backupId,
      expect.stringMatching(new RegExp(`^${leftover}  UNCOMMITTED: 1 object\\(s\\) and no manifest, last written \\S+ ago \\(a failed or running dump, not a backup; retention removes it\\)$`)),
    ]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/ok\s+sha256/);
    expect(verify.stdout).toMatch(/ok\s+pg_restore --list/);
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stdout).toMatch(/ok\s+row counts\s+321 rows/);
    const status = await lifeboat(['status', '--config', configPath, '--json']);
    expect(status.code, status.stderr).toBe(0);
    const notes = JSON.parse(status.stdout).databases[0];
    expect(notes.newestBackup.backupId).toBe(result.backupId);
    expect(notes.problems.map((p: { message: string }) => p.message)).toEqual(['never restored by a drill: this database has no proven backup']);
    for (const r of [backup, listed, verify, restore, status]) expect(r.stdout + r.stderr).not.toContain(SENTINEL);
    const count = await withClient(restoredName, async (c) => (await c.query('SELECT count(*)::int AS n FROM notes')).rows[0].n);
    expect(count).toBe(321);

    // And a part of it: --list names what the backup holds, --table restores one table and says so.
    const contents = await lifeboat(['restore', '--config', configPath, '--database', 'notes', '--list']);
    const part = await lifeboat(['restore', '--config', configPath, '--database', 'notes', '--table', 'public.notes', '--target', `postgres://lifeboat_cli@${s.host}:${s.port}/${restoredName}_part?sslmode=disable`, '--create'], {
      PGPASSWORD: SENTINEL,
    });
    expect(contents.code, contents.stderr).toBe(0);
    expect(contents.stdout).toMatch(/^\s+table\s+public\.notes\s+321 rows$/m);
    expect(contents.stdout).toMatch(/^\s+sequence\s+public\.notes_id_seq$/m);
    expect(part.code, part.stderr).toBe(0);
    expect(part.stdout).toMatch(/restored only public\.notes \(\d+ archive entries\)/);
    expect(part.stdout).toMatch(/ok\s+row counts\s+321 rows in the chosen tables/);
    for (const r of [contents, part]) expect(r.stdout + r.stderr).not.toContain(SENTINEL);
  });

  it('rejects a bad config naming the field, with exit code 2', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ name: 'Bad Name', source: { region: 'eu-west-1' }, databases: [], plans: [] }));
    const out = await lifeboat(['backup', '--config', bad, '--database', 'notes']);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/name: must be lowercase/);
    expect(out.stderr).toMatch(/databases: /);
  });

  it('fails a backup with the wrong password with exit code 1 and a redacted message', async () => {
    const out = await lifeboat(['backup', '--config', configPath, '--database', 'notes'], { NOTES_DB_PASSWORD: `${SENTINEL}-wrong` });
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/DatabaseConnectionError: .*database "notes".*password authentication failed/);
    expect(out.stderr).not.toContain(SENTINEL);
  });
});
