import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { createTestBucket, createTestKey } from '../harness/aws.ts';
import { lifeboat as cli } from '../harness/cli.ts';
import { adminClient, createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

/**
 * Issue 12, must-show 4: `lifeboat recover --database X --before <time>` picks
 * the newest committed backup consistent before the moment, preferring one a
 * drill proved (saying so), says what is lost, asks for confirmation unless
 * --yes, restores into a new database, verifies it and says how to connect.
 */
const SENTINEL = 'S3NTINEL-recover-cli-77';
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let dir: string;
let registryDir: string;
let configPath: string;
const ids: Record<'proven' | 'unproven' | 'after', string> = { proven: '', unproven: '', after: '' };
let moment: string;
const restored: string[] = [];

const lifeboat = (args: string[], env: Record<string, string> = {}) => cli(args, { LIFEBOAT_LOCAL_DRILL_DIR: registryDir, NOTES_DB_PASSWORD: SENTINEL, PGPASSWORD: SENTINEL, ...env });
const targetUri = (name: string) => {
  restored.push(name);
  const s = pgServer();
  return `postgres://lifeboat_recover_cli@${s.host}:${s.port}/${name}?sslmode=disable`;
};
const rows = (database: string) => withClient(database, async (c) => (await c.query('SELECT count(*)::int AS n FROM notes')).rows[0].n as number);

async function backUp(): Promise<string> {
  const out = await lifeboat(['backup', '--config', configPath, '--database', 'notes', '--json']);
  if (out.code !== 0) throw new Error(out.stderr);
  await sleep(1100); // backup ids have second precision
  return JSON.parse(out.stdout).backupId as string;
}

beforeAll(async () => {
  db = await createTestDatabase('lbrecover');
  const s = pgServer();
  await withClient('postgres', (c) => c.query(`DROP ROLE IF EXISTS lifeboat_recover_cli; CREATE ROLE lifeboat_recover_cli LOGIN SUPERUSER PASSWORD '${SENTINEL}'`));
  await withClient(db.name, (c) => c.query(`CREATE TABLE notes (id serial PRIMARY KEY, body text); INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 100) g`));
  const [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  dir = mkdtempSync(join(tmpdir(), 'lifeboat-recover-cli-'));
  registryDir = join(dir, 'drills');
  configPath = join(dir, 'lifeboat.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      name: 'recovercli',
      source: { region: 'eu-west-1' },
      databases: [{ id: 'notes', connection: { host: s.host, port: s.port, database: db.name, username: 'lifeboat_recover_cli', passwordEnv: 'NOTES_DB_PASSWORD', sslMode: 'disable' } }],
      plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['notes'], rpoMinutes: 1440, rtoMinutes: 60 }],
      storage: { bucketName: bucket, kmsKeyArn: keyArn },
    }),
  );
  ids.proven = await backUp();
  const drill = await lifeboat(['drill', '--config', configPath, '--database', 'notes', '--backup', ids.proven]);
  if (drill.code !== 0) throw new Error(drill.stdout + drill.stderr);
  await withClient(db.name, (c) => c.query(`INSERT INTO notes (body) SELECT 'later ' || g FROM generate_series(1, 50) g`));
  ids.unproven = await backUp();
  moment = new Date().toISOString();
  await sleep(1100);
  await withClient(db.name, (c) => c.query(`DELETE FROM notes WHERE id > 25`)); // the incident
  ids.after = await backUp();
}, 120_000);

afterAll(async () => {
  await db?.drop();
  const admin = await adminClient();
  for (const name of restored) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query('DROP ROLE IF EXISTS lifeboat_recover_cli');
  await admin.end();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lifeboat recover', () => {
  it('restores the newest drill-proven backup before the moment, says what is lost and that a newer unproven one exists, and how to connect', async () => {
    // Act
    const out = await lifeboat(['recover', '--config', configPath, '--database', 'notes', '--before', moment, '--target', targetUri('lbrecover_proven'), '--yes']);

    // Assess
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`backup ${ids.proven}, consistent at \\S+: the newest backup before ${moment} that a restore drill proved`));
    expect(out.stdout).toMatch(new RegExp(`a newer backup, ${ids.unproven} .* is unproven: --newest takes it`));
    expect(out.stdout).toMatch(/LOST in this copy: every write from \S+ to \S+ \(\d/);
    expect(out.stdout).toMatch(/point-in-time recovery: not available: the config names no RDS instance or Aurora cluster for this database/);
    expect(out.stdout).toMatch(/ok\s+row counts\s+100 rows/);
    expect(out.stdout).toMatch(/^Connect: psql "host=\S+ port=\d+ dbname=lbrecover_proven user=lifeboat_recover_cli"/m);
    expect(out.stdout + out.stderr).not.toContain(SENTINEL);
    expect(await rows('lbrecover_proven')).toBe(100);
  });

  it('takes the newest backup before the moment with --newest, never one from after it', async () => {
    // Act
    const out = await lifeboat(['recover', '--config', configPath, '--database', 'notes', '--before', moment, '--newest', '--target', targetUri('lbrecover_newest'), '--yes', '--json']);

    // Assess
    expect(out.code, out.stderr).toBe(0);
    const result = JSON.parse(out.stdout);
    expect(result.choice.chosen.backupId).toBe(ids.unproven);
    expect(result.choice.reason).toMatch(/no drill has restored it yet, the newest proven one is/);
    expect(result.connect).toEqual({ host: pgServer().host, port: pgServer().port, database: 'lbrecover_newest', user: 'lifeboat_recover_cli' });
    expect(await rows('lbrecover_newest')).toBe(150);
  });

  it('on a terminal, shows the plan and asks; "n" restores nothing', async () => {
    // Prepare: a real pseudo-terminal (util-linux script), answered "n".
    const bin = new URL('../../bin/lifeboat.mjs', import.meta.url).pathname;
    const args = ['recover', '--config', configPath, '--database', 'notes', '--before', moment, '--target', targetUri('lbrecover_declined')];
    const command = [process.execPath, bin, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');

    // Act
    const out = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, LIFEBOAT_LOCAL_DRILL_DIR: registryDir, PGPASSWORD: SENTINEL } });
      let output = '';
      child.stdout.on('data', (d: Buffer) => {
        output += d.toString();
        if (output.includes('Restore it? [y/N]')) child.stdin.write('n\n');
      });
      child.on('close', (code) => resolve({ code, output }));
    });

    // Assess
    expect(out.output).toMatch(/LOST in this copy/);
    expect(out.output).toMatch(/Not restored: nothing was changed\./);
    expect(out.code).toBe(0);
    const admin = await adminClient();
    const { rows: dbs } = await admin.query(`SELECT datname FROM pg_database WHERE datname = 'lbrecover_declined'`);
    await admin.end();
    expect(dbs).toEqual([]);
  });

  it('asks for --yes when not on a terminal, and refuses moments it cannot use, creating nothing', async () => {
    // Act
    const unconfirmed = await lifeboat(['recover', '--config', configPath, '--database', 'notes', '--before', moment, '--target', targetUri('lbrecover_unconfirmed')]);
    const tooEarly = await lifeboat(['recover', '--config', configPath, '--database', 'notes', '--before', '2001-01-01T00:00:00Z', '--target', targetUri('lbrecover_early'), '--yes']);
    const vague = await lifeboat(['recover', '--config', configPath, '--database', 'notes', '--before', 'yesterday', '--target', targetUri('lbrecover_vague'), '--yes']);

    // Assess
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/--yes: required when not on a terminal/);
    expect(tooEarly.code).toBe(1);
    expect(tooEarly.stderr).toMatch(/BackupNotFoundError: No committed backup of database "notes" .* is consistent before 2001-01-01T00:00:00\.000Z/);
    expect(vague.code).toBe(2);
    expect(vague.stderr).toMatch(/--before: "yesterday" is not a time with a zone/);
    const admin = await adminClient();
    const { rows: dbs } = await admin.query(`SELECT datname FROM pg_database WHERE datname IN ('lbrecover_unconfirmed', 'lbrecover_early', 'lbrecover_vague')`);
    await admin.end();
    expect(dbs).toEqual([]);
  });
});
