import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestBucket, createTestKey } from '../harness/aws.ts';
import { lifeboat as cli } from '../harness/cli.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

const SENTINEL = 'S3NTINEL-drill-cli-42';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let dir: string;
let registryDir: string;
let configPath: string;

/** The real bin, with the local drill clusters' markers in this test's directory. */
const lifeboat = (args: string[], env: Record<string, string> = {}) => cli(args, { LIFEBOAT_LOCAL_DRILL_DIR: registryDir, ...env });

beforeAll(async () => {
  db = await createTestDatabase('lbdrillcli');
  await withClient(db.name, (c) => c.query(`CREATE TABLE notes (id serial PRIMARY KEY, body text); INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 321) g`));
  const [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  dir = mkdtempSync(join(tmpdir(), 'lifeboat-drill-cli-'));
  registryDir = join(dir, 'drills');
  configPath = join(dir, 'lifeboat.config.json');
  const s = pgServer();
  await withClient('postgres', (c) => c.query(`DROP ROLE IF EXISTS lifeboat_drill_cli; CREATE ROLE lifeboat_drill_cli LOGIN SUPERUSER PASSWORD '${SENTINEL}'`));
  writeFileSync(
    configPath,
    JSON.stringify({
      name: 'drillcli',
      source: { region: 'eu-west-1' },
      databases: [{ id: 'notes', connection: { host: s.host, port: s.port, database: db.name, username: 'lifeboat_drill_cli', passwordEnv: 'NOTES_DB_PASSWORD', sslMode: 'disable' } }],
      plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['notes'], rpoMinutes: 1440, rtoMinutes: 60 }],
      storage: { bucketName: bucket, kmsKeyArn: keyArn },
      drills: { databases: [{ id: 'notes', assertions: [{ name: 'every note', sql: 'SELECT count(*) = 321 FROM notes' }] }] },
    }),
  );
  const backup = await lifeboat(['backup', '--config', configPath, '--database', 'notes'], { NOTES_DB_PASSWORD: SENTINEL });
  if (backup.code !== 0) throw new Error(backup.stderr);
}, 60_000);

afterAll(async () => {
  await db?.drop();
  await withClient('postgres', (c) => c.query(`DROP ROLE IF EXISTS lifeboat_drill_cli`));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lifeboat drill', () => {
  it('runs one drill and prints the checks as a table with the measured RTO and RPO', async () => {
    const out = await lifeboat(['drill', '--config', configPath, '--database', 'notes'], { NOTES_DB_PASSWORD: SENTINEL });

    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^Drill \S+ of database notes: PASSED$/m);
    expect(out.stdout).toMatch(/^\s+CHECK\s+RESULT\s+DETAIL$/m);
    expect(out.stdout).toMatch(/^\s+row counts\s+passed\s+321 rows in 1 tables$/m);
    expect(out.stdout).toMatch(/^\s+assertion: every note\s+passed\s+returned true$/m);
    expect(out.stdout).toMatch(/^\s+amcheck\s+passed\s+1 btree indexes checked/m);
    expect(out.stdout).toMatch(/^\s+RTO\s+\d+\.\ds\s+target 1\.0h\s+met/m);
    expect(out.stdout).toMatch(/^\s+RPO\s+\d+\.\ds\s+target 24\.0h\s+met/m);
    expect(out.stdout).toMatch(/instance\s+local lifeboat-drill-\S+, teardown complete/);
    expect(out.stdout).toMatch(/report\s+s3:\/\/\S+\/backups\/_drills\/notes\/\S+\.json/);
    expect(out.stdout + out.stderr).not.toContain(SENTINEL);
    expect(readdirSync(registryDir)).toEqual([]);
  });

  it('exits 1 and prints the failed check when the drill fails', async () => {
    const out = await lifeboat(['drill', '--config', configPath, '--database', 'notes', '--backup', '20200101T000000Z-000000', '--json']);

    expect(out.code).toBe(1);
    const report = JSON.parse(out.stdout);
    expect(report).toMatchObject({ databaseId: 'notes', verdict: 'failed', error: { name: 'BackupNotFoundError' } });
    expect(report.checks).toEqual([expect.objectContaining({ name: 'backup selected', status: 'failed' })]);
  });
});
