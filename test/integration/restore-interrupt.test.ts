import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDumpBackup, type DumpBackupResult } from '../../functions/lib/backup/dump-pipeline.ts';
import { dumpSettingsSchema } from '../../functions/lib/config/schema.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

/**
 * A restore interrupted at any point leaves nothing behind (issue 12,
 * must-show 6): Ctrl-C (SIGINT) or SIGTERM during the download or during
 * pg_restore deletes the decrypted staging and drops the database the restore
 * created; a restore killed outright (SIGKILL) leaves its staging, which the
 * next run removes. The real `lifeboat` bin runs in a child process.
 */
const BIN = new URL('../../bin/lifeboat.mjs', import.meta.url).pathname;
const clients = testClients();
let backup: DumpBackupResult;
let bucket: string;
let workDir: string;
let source: Awaited<ReturnType<typeof createTestDatabase>>;

beforeAll(async () => {
  // Large enough (about 60 MB, little of it compressible) that the download and pg_restore each take a moment.
  source = await createTestDatabase('lbinterrupt');
  await withClient(source.name, async (c) => {
    await c.query(`CREATE TABLE blobs (id bigint PRIMARY KEY, a text, b text, c text)`);
    await c.query(`INSERT INTO blobs SELECT g, md5(g::text) || md5((g * 3)::text), md5((g * 7)::text) || md5((g * 11)::text), md5((g * 13)::text) FROM generate_series(1, 500000) g`);
  });
  bucket = await createTestBucket();
  const s = pgServer();
  const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  backup = await runDumpBackup(
    {
      databaseId: 'blobs',
      connection: { database: source.name, secretArn, sslMode: 'disable', passwordAuth: 'scram-sha-256', connectTimeoutSeconds: 5 },
      settings: dumpSettingsSchema.parse({ compression: { codec: 'none' } }),
      target: { bucket, prefix: 'backups/', kmsKeyArn: await createTestKey() },
    },
    { s3: clients.s3, kms: clients.keyringKms, secrets: clients.secrets },
  );
  workDir = mkdtempSync(join(tmpdir(), 'lifeboat-interrupt-'));
}, 180_000);
afterAll(async () => {
  await source?.drop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** `lifeboat restore` of the backup into a new database, staging under this test's own TMPDIR. */
function startRestore(database: string): { child: ChildProcess; done: Promise<{ code: number | null; stderr: string }> } {
  const s = pgServer();
  const child = spawn(process.execPath, [BIN, 'restore', '--bucket', bucket, '--manifest', backup.manifestKey, '--target', `postgres://${s.user}@${s.host}:${s.port}/${database}?sslmode=disable`, '--create'], {
    env: { ...process.env, PGPASSWORD: s.password, TMPDIR: workDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  child.stdout!.resume();
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code, stderr })));
  return { child, done };
}

const staged = () => readdirSync(workDir).filter((n) => n.startsWith('lifeboat-restore-'));
const stagedArchive = () => staged().some((d) => readdirSync(join(workDir, d)).includes('dump.pgc'));

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const databaseExists = (name: string) => withClient('postgres', async (c) => ((await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount ?? 0) > 0);
const pgRestoreRunning = () => withClient('postgres', async (c) => ((await c.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'lifeboat-pg_restore'`)).rowCount ?? 0) > 0);

describe('an interrupted restore leaves nothing behind', () => {
  it('Ctrl-C during the download: exit 130, the plaintext staging deleted, nothing created', async () => {
    // Prepare
    const name = `lbint_dl_${Date.now()}`;
    const { child, done } = startRestore(name);
    await until('the decrypted archive is being written', stagedArchive);
    const dir = join(workDir, staged()[0]!);
    const modes = { dir: statSync(dir).mode & 0o777, archive: statSync(join(dir, 'dump.pgc')).mode & 0o777 };

    // Act
    child.kill('SIGINT');
    const { code, stderr } = await done;

    // Assess
    expect(modes).toEqual({ dir: 0o700, archive: 0o600 });
    expect(code).toBe(130);
    expect(stderr).toMatch(/lifeboat restore: InterruptedError: Interrupted by SIGINT\. Next step: nothing half-done was kept/);
    expect(staged()).toEqual([]);
    expect(await databaseExists(name)).toBe(false);
  });

  it('SIGTERM during pg_restore: exit 143, pg_restore stopped, the created database dropped, the staging deleted', async () => {
    // Prepare
    const name = `lbint_pr_${Date.now()}`;
    const { child, done } = startRestore(name);
    await until('pg_restore is running', pgRestoreRunning);

    // Act
    child.kill('SIGTERM');
    const { code } = await done;

    // Assess
    expect(code).toBe(143);
    expect(staged()).toEqual([]);
    expect(await databaseExists(name)).toBe(false);
    expect(await pgRestoreRunning()).toBe(false);
  });

  it('a restore killed outright (SIGKILL) leaves its staging, which the next run removes and names', async () => {
    // Prepare: killed while the plaintext is on disk.
    const name = `lbint_kill_${Date.now()}`;
    const first = startRestore(name);
    await until('the decrypted archive is being written', stagedArchive);
    first.child.kill('SIGKILL');
    await first.done;
    const left = staged();
    expect(left).toHaveLength(1);

    // Act: the next restore (here one that fails at once, on a manifest that does not exist).
    const s = pgServer();
    const next = spawn(process.execPath, [BIN, 'restore', '--bucket', bucket, '--manifest', 'backups/blobs/none/manifest.json', '--target', `postgres://${s.user}@${s.host}:${s.port}/${name}`], {
      env: { ...process.env, PGPASSWORD: s.password, TMPDIR: workDir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    next.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    await new Promise((r) => next.once('close', r));

    // Assess
    expect(staged()).toEqual([]);
    expect(stderr).toContain(`lifeboat restore: removed ${join(workDir, left[0]!)}, the decrypted staging of a restore that was killed`);
    // The killed run had created its database; it is empty and named, not a backup: the operator drops it.
    if (await databaseExists(name)) await withClient('postgres', async (c) => void (await c.query(`DROP DATABASE "${name}" WITH (FORCE)`)));
  });
});
