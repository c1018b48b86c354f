import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestBucket, createTestKey } from '../harness/aws.ts';
import { lifeboat } from '../harness/cli.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

/**
 * A local drill interrupted leaves nothing behind (issue 12, must-show 6):
 * Ctrl-C or SIGTERM stops and removes the throwaway cluster (it holds a
 * restored copy of production) and the decrypted staging, exit 130/143; a
 * drill killed outright (SIGKILL) leaves them, and the next `lifeboat drill`
 * removes them before it starts. The real bin runs in a child process.
 */
const BIN = new URL('../../bin/lifeboat.mjs', import.meta.url).pathname;
const SENTINEL = 'S3NTINEL-drill-interrupt-5';
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let dir: string;
let workDir: string;
let registryDir: string;
let configPath: string;

beforeAll(async () => {
  // Big enough (about 40 MB) that the drill's download and pg_restore take a moment.
  db = await createTestDatabase('lbdrillint');
  await withClient(db.name, async (c) => {
    await c.query(`CREATE TABLE blobs (id bigint PRIMARY KEY, a text, b text)`);
    await c.query(`INSERT INTO blobs SELECT g, md5(g::text) || md5((g * 3)::text), md5((g * 7)::text) || md5((g * 11)::text) FROM generate_series(1, 400000) g`);
  });
  await withClient('postgres', (c) => c.query(`DROP ROLE IF EXISTS lifeboat_drill_int; CREATE ROLE lifeboat_drill_int LOGIN SUPERUSER PASSWORD '${SENTINEL}'`));
  const [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  dir = mkdtempSync(join(tmpdir(), 'lifeboat-drill-int-'));
  // As root, the throwaway clusters run as the postgres OS user, which must reach their directories.
  chmodSync(dir, 0o755);
  workDir = join(dir, 'tmp');
  registryDir = join(dir, 'drills');
  configPath = join(dir, 'lifeboat.config.json');
  const s = pgServer();
  writeFileSync(
    configPath,
    JSON.stringify({
      name: 'drillint',
      source: { region: 'eu-west-1' },
      databases: [{ id: 'blobs', connection: { host: s.host, port: s.port, database: db.name, username: 'lifeboat_drill_int', passwordEnv: 'DB_PASSWORD', sslMode: 'disable' }, dump: { compression: { codec: 'none' } } }],
      plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['blobs'], rpoMinutes: 1440, rtoMinutes: 60 }],
      storage: { bucketName: bucket, kmsKeyArn: keyArn },
    }),
  );
  const backup = await lifeboat(['backup', '--config', configPath, '--database', 'blobs'], { DB_PASSWORD: SENTINEL });
  if (backup.code !== 0) throw new Error(backup.stderr);
}, 180_000);

afterAll(async () => {
  await db?.drop();
  await withClient('postgres', (c) => c.query('DROP ROLE IF EXISTS lifeboat_drill_int'));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function startDrill(): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  // The drill's staging and throwaway clusters live under this test's own TMPDIR.
  mkdirSync(workDir, { recursive: true, mode: 0o755 });
  const child = spawn(process.execPath, [BIN, 'drill', '--config', configPath, '--database', 'blobs'], {
    env: { ...process.env, DB_PASSWORD: SENTINEL, TMPDIR: workDir, LIFEBOAT_LOCAL_DRILL_DIR: registryDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  debug = () => `stdout: ${stdout.slice(-3000).replace(/\n/g, " | ")} stderr: ${stderr.slice(-2000)}`;
  return { child, done: new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stderr }))) };
}

let debug = () => '';
const markers = () => (existsSync(registryDir) ? readdirSync(registryDir).filter((f) => f.endsWith('.json')) : []);
const clusterDirs = () => (existsSync(workDir) ? readdirSync(workDir).filter((n) => n.startsWith('lifeboat-pg-')) : []);
const stagingDirs = () => (existsSync(workDir) ? readdirSync(workDir).filter((n) => n.startsWith('lifeboat-restore-')) : []);
const staged = () => stagingDirs().some((d) => existsSync(join(workDir, d, 'dump.pgc')));

async function until(what: string, condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting until ${what}: markers ${markers().join(',')}; in TMPDIR ${existsSync(workDir) ? readdirSync(workDir).join(',') : '(none)'}; ${debug()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The postmaster of a left cluster, from its marker, if it still runs. */
function postmasterAlive(marker: string): boolean {
  const { dataDir } = JSON.parse(readFileSync(join(registryDir, marker), 'utf8')) as { dataDir: string };
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return false;
  try {
    process.kill(Number(readFileSync(pidFile, 'utf8').split('\n')[0]), 0);
    return true;
  } catch {
    return false;
  }
}

describe('an interrupted drill leaves nothing behind', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s during the restore: exit %i, the throwaway cluster and the staging removed', async (signal, exitCode) => {
    // Prepare
    const { child, done } = startDrill();
    await until('the throwaway cluster is up and the backup is staged', () => markers().length === 1 && staged());

    // Act
    child.kill(signal);
    const out = await done;

    // Assess
    expect(out.code, out.stderr).toBe(exitCode);
    expect(out.stderr).toMatch(/interrupted; removed local-cluster lifeboat-drill-\S+/);
    expect(markers()).toEqual([]);
    expect(clusterDirs()).toEqual([]);
    expect(stagingDirs()).toEqual([]);
    expect(out.stderr).not.toContain(SENTINEL);
  }, 120_000);

  it('killed outright (SIGKILL): the next drill removes the cluster and staging it left, before it starts', async () => {
    // Prepare
    const { child, done } = startDrill();
    await until('the throwaway cluster is up and the backup is staged', () => markers().length === 1 && staged());
    child.kill('SIGKILL');
    await done;
    const [left] = markers();
    expect(postmasterAlive(left!)).toBe(true);
    expect(stagingDirs()).not.toEqual([]);

    // Act: the next drill (of a backup that does not exist, so it ends quickly)
    const next = await lifeboat(['drill', '--config', configPath, '--database', 'blobs', '--backup', '20200101T000000Z-000000'], { DB_PASSWORD: SENTINEL, TMPDIR: workDir, LIFEBOAT_LOCAL_DRILL_DIR: registryDir });

    // Assess
    expect(next.stderr).toMatch(/removed local-cluster lifeboat-drill-\S+, left by a drill that was killed/);
    expect(next.stderr).toMatch(/removed \S+lifeboat-restore-\d+-\S+, the decrypted staging of a restore that was killed/);
    expect(markers()).toEqual([]);
    expect(clusterDirs()).toEqual([]);
    expect(stagingDirs()).toEqual([]);
  }, 120_000);
});
