import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { runDumpBackup, type DumpBackupResult } from '../../functions/lib/backup/dump-pipeline.ts';
import { dumpSettingsSchema } from '../../functions/lib/config/schema.ts';
import { drillReportSchema } from '../../functions/lib/drill/report.ts';
import { ToolVersionError } from '../../functions/lib/errors.ts';
import { postgresBinary, PG_CLIENTS_ENV } from '../../functions/lib/pg/binaries.ts';
import { libpqEnv } from '../../functions/lib/pg/connection.ts';
import { readManifest } from '../../functions/lib/restore/fetch.ts';
import { restoreBackup, verifyBackup } from '../../functions/lib/restore/restore.ts';
import { createTestBucket, createTestKey, testClients } from '../harness/aws.ts';
import { lifeboat as cli } from '../harness/cli.ts';
import { createFakeClients, type FakeClients } from '../harness/fake-pg-clients.ts';
import { adminClient, createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

/**
 * The client choice end to end, on the one PostgreSQL this machine runs (15):
 * fake installs of majors 15 to 18 (`<root>/<major>/bin`) each report their own
 * version and exec the real 15 binaries, so a dump or restore really happens
 * whichever is chosen, and the log of each fake shows which one ran. The fakes
 * of 17 and 18 send `SET transaction_timeout = 0` before restoring, as the real
 * pg_restore 17+ does, so choosing one for a PostgreSQL 15 target fails exactly
 * as it does on AWS.
 */

const execFileAsync = promisify(execFile);
const PASSWORD_ENV = 'PGCLIENTS_DB_PASSWORD';
const clients = testClients();
const deps = { s3: clients.s3, kms: clients.keyringKms, secrets: clients.secrets };
const saved = { ...process.env };

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let fakes: FakeClients;
let bucket: string;
let keyArn: string;
let dir: string;
let configPath: string;
let backup: DumpBackupResult;
const dropAfter: string[] = [];

function connection() {
  const s = pgServer();
  return { host: s.host, port: s.port, database: db.name, username: s.user, passwordEnv: PASSWORD_ENV, sslMode: 'disable' as const, passwordAuth: 'scram-sha-256' as const, connectTimeoutSeconds: 5 };
}

function target(database: string) {
  const s = pgServer();
  return { host: s.host, port: s.port, database, user: s.user, password: s.password, sslMode: 'disable' as const, connectTimeoutSeconds: 5 };
}

/** The `lifeboat` bin with only the fake clients to choose from. */
const lifeboat = (args: string[], env: Record<string, string> = {}) =>
  cli(args, { [PG_CLIENTS_ENV]: fakes.root, LIFEBOAT_LOCAL_DRILL_DIR: join(dir, 'drills'), PGPASSWORD: pgServer().password, [PASSWORD_ENV]: pgServer().password, ...env });

async function dumpWithFakes(databaseId: string, withFakes: FakeClients): Promise<DumpBackupResult> {
  process.env[PG_CLIENTS_ENV] = withFakes.root;
  try {
    return await runDumpBackup(
      { databaseId, connection: connection(), settings: dumpSettingsSchema.parse({}), target: { bucket, prefix: 'backups/', kmsKeyArn: keyArn } },
      { ...deps, env: { [PASSWORD_ENV]: pgServer().password } },
    );
  } finally {
    process.env = { ...saved };
  }
}

beforeAll(async () => {
  db = await createTestDatabase('lbclients');
  await withClient(db.name, (c) => c.query(`CREATE TABLE notes (id serial PRIMARY KEY, body text); INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 123) g`));
  [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  const real = { pg_dump: postgresBinary('pg_dump'), pg_restore: postgresBinary('pg_restore') };
  const psql = postgresBinary('psql');
  fakes = createFakeClients(
    [15, 16, 17, 18].map((major) => ({ major, wrap: real, ...(major >= 17 ? { sendsTransactionTimeout: { psql } } : {}) })),
  );
  dir = mkdtempSync(join(tmpdir(), 'lifeboat-pg-clients-'));
  configPath = join(dir, 'lifeboat.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      name: 'pgclients',
      source: { region: 'eu-west-1' },
      databases: [{ id: 'notes', connection: connection() }],
      plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['notes'], rpoMinutes: 1440, rtoMinutes: 60 }],
      storage: { bucketName: bucket, kmsKeyArn: keyArn },
      drills: { databases: [{ id: 'notes' }] },
    }),
  );
  backup = await dumpWithFakes('notes', fakes);
}, 120_000);

afterAll(async () => {
  process.env = { ...saved };
  await db?.drop();
  const admin = await adminClient();
  for (const name of dropAfter) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.end();
  fakes?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('dumping with the client of the server major', () => {
  it('dumps a PostgreSQL 15 server with pg_dump 15 when 15 to 18 are installed, and the manifest records the client', async () => {
    // Prepare: beforeAll dumped with fakes of 15, 16, 17 and 18 installed.
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);

    // Assess
    expect(manifest.database.serverVersionNum).toBeGreaterThanOrEqual(150_000);
    expect(manifest.database.serverVersionNum).toBeLessThan(160_000);
    expect(manifest.dump).toMatchObject({ toolVersion: '15.90', toolMajor: 15 });
    expect(manifest.dump.client).toMatchObject({ versionOutput: 'pg_dump (PostgreSQL) 15.90', installedMajors: [15, 16, 17, 18] });
    expect(fakes.work(15, 'pg_dump')).toHaveLength(1);
    for (const m of [16, 17, 18]) expect(fakes.work(m, 'pg_dump')).toEqual([]);
  });

  it('refuses, before anything is stored, a server newer than every installed pg_dump', async () => {
    // Prepare: only 13 and 14, older than the suite's PostgreSQL 15.
    const old = createFakeClients([13, 14].map((major) => ({ major, wrap: { pg_dump: postgresBinary('pg_dump') } })));
    try {
      // Act
      const error = await dumpWithFakes('too-new', old).catch((e: unknown) => e);

      // Assess
      expect(error).toBeInstanceOf(ToolVersionError);
      expect((error as Error).message).toMatch(/"too-new".*PostgreSQL 15\.\d+.*pg_dump 14\.90/);
      const stored = await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'backups/too-new/' }));
      expect(stored.KeyCount).toBe(0);
      expect(old.work(13, 'pg_dump')).toEqual([]);
      expect(old.work(14, 'pg_dump')).toEqual([]);
    } finally {
      old.cleanup();
    }
  });
});

describe('restoring with a client the target accepts', () => {
  it('the fake pg_restore 18 fails against PostgreSQL 15 as the real one does (unrecognized transaction_timeout)', async () => {
    // Prepare: a throwaway database to restore into.
    const name = `lbclients_tt_${Date.now()}`;
    dropAfter.push(name);
    await withClient('postgres', (c) => c.query(`CREATE DATABASE ${name} TEMPLATE template0`));

    // Act: pg_restore 18 into PostgreSQL 15, as lifeboat ran it before choosing by target.
    const run = await execFileAsync(join(fakes.root, '18', 'bin', 'pg_restore'), ['--exit-on-error', `--dbname=${name}`, '/dev/null'], {
      env: libpqEnv(target(name)),
    }).catch((e: unknown) => e as { code: number; stderr: string });

    // Assess
    expect((run as { code: number }).code).toBe(1);
    expect((run as { stderr: string }).stderr).toContain('unrecognized configuration parameter "transaction_timeout"');
  });

  it('lifeboat restore into PostgreSQL 15 runs pg_restore 15 when 15 to 18 are installed, and says which', async () => {
    // Prepare
    const name = `lbclients_restored_${Date.now()}`;
    dropAfter.push(name);
    const s = pgServer();
    const before = { 16: fakes.work(16, 'pg_restore').length, 17: fakes.work(17, 'pg_restore').length, 18: fakes.work(18, 'pg_restore').length };

    // Act
    const out = await lifeboat(['restore', '--config', configPath, '--database', 'notes', '--target', `postgres://${s.user}@${s.host}:${s.port}/${name}?sslmode=disable`, '--create']);

    // Assess
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/pg_restore 15\.90 .*PostgreSQL 15\.\d+.*pg_dump 15\.90/);
    expect(fakes.work(15, 'pg_restore').some((c) => c.includes('--exit-on-error') && c.includes(`--dbname=${name}`))).toBe(true);
    expect({ 16: fakes.work(16, 'pg_restore').length, 17: fakes.work(17, 'pg_restore').length, 18: fakes.work(18, 'pg_restore').length }).toEqual(before);
    expect(await withClient(name, async (c) => (await c.query('SELECT count(*)::int AS n FROM notes')).rows[0].n)).toBe(123);
  });

  it('refuses, before downloading or creating anything, an archive of pg_dump 17 for a PostgreSQL 15 target, naming both', async () => {
    // Prepare: the manifest of a backup written by pg_dump 17, whose data is not even there.
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const from17 = { ...manifest, dump: { ...manifest.dump, toolVersion: '17.4', toolMajor: 17 }, object: { ...manifest.object, key: 'backups/notes/missing/dump.enc' } };
    const name = `lbclients_refused_${Date.now()}`;
    dropAfter.push(name);
    process.env[PG_CLIENTS_ENV] = fakes.root;

    // Act
    let downloaded = 0;
    const error = await restoreBackup(from17, target(name), { ...deps, onProgress: () => (downloaded += 1) }, { createDatabase: true })
      .catch((e: unknown) => e)
      .finally(() => (process.env = { ...saved }));

    // Assess
    expect(error).toBeInstanceOf(ToolVersionError);
    expect((error as Error).message).toMatch(/pg_dump 17\.4.*PostgreSQL 15\.\d+.*transaction_timeout/);
    expect(downloaded).toBe(0);
    const exists = await withClient('postgres', async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount);
    expect(exists).toBe(0);
  });

  it('verifies an archive of pg_dump 15 with pg_restore 15 --list', async () => {
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    process.env[PG_CLIENTS_ENV] = fakes.root;

    const result = await verifyBackup(manifest, deps).finally(() => (process.env = { ...saved }));

    expect(result.client).toMatchObject({ major: 15, version: '15.90' });
    expect(fakes.work(15, 'pg_restore')).toContain('--list');
  });
});

describe('drill report', () => {
  it('lifeboat drill restores with pg_restore 15 and its report names the client and the target server', async () => {
    const out = await lifeboat(['drill', '--config', configPath, '--database', 'notes', '--json']);

    expect(out.code, out.stderr).toBe(0);
    const report = drillReportSchema.parse(JSON.parse(out.stdout));
    expect(report.verdict).toBe('passed');
    expect(report.restore).toMatchObject({ pgRestore: { version: '15.90', major: 15 }, pgDump: { version: '15.90', major: 15 } });
    expect(report.restore?.targetServerVersion).toMatch(/^15\./);
    expect(report.checks).toContainEqual(expect.objectContaining({ name: 'pg_restore', status: 'passed', detail: expect.stringContaining('pg_restore 15.90') }));
  });
});
