import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runDumpBackup, type DumpBackupResult } from '../../functions/lib/backup/dump-pipeline.ts';
import { dumpSettingsSchema } from '../../functions/lib/config/schema.ts';
import { startLocalPostgres, type LocalPostgresCluster } from '../../functions/lib/pg/postgres-cluster.ts';
import type { ResolvedConnection } from '../../functions/lib/pg/connection.ts';
import { readManifest } from '../../functions/lib/restore/fetch.ts';
import { restoreBackup, verifyRestoredDatabase } from '../../functions/lib/restore/restore.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

/**
 * Verification never rejects a faithful restore (issue 18): databases whose
 * history pg_dump legitimately rewrites (inheritance children whose parent
 * gained a column later, and the rest of the corpus below) back up, restore
 * into a fresh cluster and pass their own verification, while a restore that
 * really differs still fails, naming the objects, and is kept, not dropped.
 */
const clients = testClients();
const deps = { s3: clients.s3, kms: clients.keyringKms, secrets: clients.secrets };
let bucket: string;
let keyArn: string;
let fresh: LocalPostgresCluster;
const sources: { drop(): Promise<void> }[] = [];

beforeAll(async () => {
  bucket = await createTestBucket();
  keyArn = await createTestKey();
  fresh = await startLocalPostgres();
}, 120_000);
afterAll(async () => {
  for (const s of sources) await s.drop();
  await fresh?.stop();
});

/** A source database built by `sql`, backed up with lifeboat. */
async function backUp(prefix: string, sql: string): Promise<DumpBackupResult> {
  const db = await createTestDatabase(prefix);
  sources.push(db);
  await withClient(db.name, async (c) => {
    await c.query(sql);
  });
  const s = pgServer();
  const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  return runDumpBackup(
    {
      databaseId: prefix,
      connection: { database: db.name, secretArn, sslMode: 'disable', passwordAuth: 'scram-sha-256', connectTimeoutSeconds: 5 },
      settings: dumpSettingsSchema.parse({}),
      target: { bucket, prefix: 'backups/', kmsKeyArn: keyArn },
    },
    deps,
  );
}

/** The fresh cluster, as a restore target. */
function freshTarget(database: string): ResolvedConnection {
  return { host: fresh.host, port: fresh.port, database, user: fresh.superuser, password: fresh.password, sslMode: 'disable', connectTimeoutSeconds: 5 };
}

async function onFresh<T>(database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ host: fresh.host, port: fresh.port, user: fresh.superuser, password: fresh.password, database });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe('a faithful restore passes its verification', () => {
  it('of an inheritance child whose parent gained a column later (pg_dump puts inherited columns first)', async () => {
    // Prepare
    const backup = await backUp('lbinherit', `
      CREATE TABLE a_star (class char, aa int);
      CREATE TABLE b_star (bb text) INHERITS (a_star);
      ALTER TABLE a_star ADD COLUMN a text;
      INSERT INTO b_star (class, aa, bb, a) VALUES ('b', 2, 'two', 'x');`);
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);

    // Act
    const result = await restoreBackup(manifest, freshTarget('inherit_restored'), deps, { createDatabase: true });

    // Assess
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
    const order = await onFresh('inherit_restored', async (c) => (await c.query(`SELECT string_agg(attname, ',' ORDER BY attnum) AS cols FROM pg_attribute WHERE attrelid = 'b_star'::regclass AND attnum > 0`)).rows[0].cols);
    expect(order).toBe('class,aa,a,bb');
  });
});

describe('a broad corpus round-trips into a fresh cluster', () => {
  let corpus: DumpBackupResult;
  beforeAll(async () => {
    corpus = await backUp('lbcorpus', readFileSync(new URL('./restore-corpus.sql', import.meta.url), 'utf8'));
  }, 120_000);

  it('restores and passes its own verification, every check', async () => {
    // Prepare
    const manifest = await readManifest(clients.s3, bucket, corpus.manifestKey);

    // Act
    const result = await restoreBackup(manifest, freshTarget('corpus_restored'), deps, { createDatabase: true, jobs: 2 });

    // Assess
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
    expect(manifest.inventory).toMatchObject({ schemaFingerprintVersion: 2, largeObjects: 2, extensions: ['btree_gist', 'citext', 'hstore'] });
    expect(manifest.inventory.tables.find((t) => t.name === 'events_2027')?.rows).toBeGreaterThan(0);
    const sample = await onFresh('corpus_restored', async (c) => (await c.query(`SELECT count(*)::int AS n, sum(total)::int AS total FROM app.things`)).rows[0]);
    expect(sample).toEqual({ n: 50, total: 2550 });
  });

  it('still fails a restore that really differs, naming each object that differs', async () => {
    // Prepare: a faithful restore, then real differences made in it.
    const manifest = await readManifest(clients.s3, bucket, corpus.manifestKey);
    await restoreBackup(manifest, freshTarget('corpus_altered'), deps, { createDatabase: true });
    await onFresh('corpus_altered', async (c) => {
      await c.query(`ALTER TABLE app.things DROP COLUMN code`);
      await c.query(`ALTER TABLE app.things ALTER COLUMN mood SET DEFAULT 'sad'`);
      await c.query(`DROP POLICY no_empty ON app.secrets`);
      await c.query(`ALTER TABLE app.b_star ALTER COLUMN bb TYPE varchar(10)`);
    });

    // Act
    const checks = await verifyRestoredDatabase(manifest, freshTarget('corpus_altered'));

    // Assess
    const schema = checks.find((c) => c.name === 'schema fingerprint')!;
    expect(schema.ok).toBe(false);
    const lines = schema.differences.join('\n');
    expect(lines).toMatch(/in the backup, not in the restore: col app\.things #\d+ code text collate=app\.c_bytes/);
    expect(lines).toMatch(/in the backup, not in the restore: col app\.things #\d+ mood app\.mood default='ok'::app\.mood/);
    expect(lines).toMatch(/in the restore, not in the backup: col app\.things #\d+ mood app\.mood default='sad'::app\.mood/);
    expect(lines).toMatch(/in the backup, not in the restore: policy app\.secrets no_empty cmd=a permissive=false/);
    expect(lines).toMatch(/in the restore, not in the backup: col app\.b_star inherits bb character varying\(10\)/);
  });
});

describe("the database's own state", () => {
  const reader = `lb_reader_${Date.now()}`;
  afterAll(async () => {
    await withClient('postgres', async (c) => {
      for (const s of sources.splice(0)) await s.drop();
      await c.query(`DROP ROLE IF EXISTS ${reader}`);
    });
  });

  it('brings back ALTER DATABASE settings, owner and ACL after a verified restore (creating the roles they name), and says what it could not and what no dump carries', async () => {
    // Prepare: settings (one a list), a role-in-database setting for a role the fresh cluster has, and a grant and
    // a setting for a role it lacks.
    await withClient('postgres', async (c) => void (await c.query(`CREATE ROLE ${reader}`)));
    const db = await createTestDatabase('lbstate');
    sources.push(db);
    const s = pgServer();
    await withClient(db.name, async (c) => {
      await c.query(`CREATE TABLE t (id int); INSERT INTO t VALUES (1)`);
      await c.query(`ALTER DATABASE ${db.name} SET work_mem = '8MB'`);
      await c.query(`ALTER DATABASE ${db.name} SET search_path = app, "My Schema", public`);
      await c.query(`ALTER ROLE ${s.user} IN DATABASE ${db.name} SET statement_timeout = '5min'`);
      await c.query(`ALTER ROLE ${reader} IN DATABASE ${db.name} SET work_mem = '4MB'`);
      await c.query(`REVOKE ALL ON DATABASE ${db.name} FROM PUBLIC; GRANT CONNECT ON DATABASE ${db.name} TO ${reader}`);
    });
    const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
    const backup = await runDumpBackup(
      { databaseId: 'lbstate', connection: { database: db.name, secretArn, sslMode: 'disable', passwordAuth: 'scram-sha-256', connectTimeoutSeconds: 5 }, settings: dumpSettingsSchema.parse({}), target: { bucket, prefix: 'backups/', kmsKeyArn: keyArn } },
      deps,
    );
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);

    // Act: first without owners and grants (no role is created: what needs one is named), then in full.
    const plain = await restoreBackup(manifest, freshTarget('state_plain'), deps, { createDatabase: true, noOwner: true, noPrivileges: true });
    const result = await restoreBackup(manifest, freshTarget('state_restored'), deps, { createDatabase: true });

    // Assess: the manifest recorded it; the plain restore applied the settings the fresh cluster can take and named the rest.
    expect(manifest.database.state).toMatchObject({ owner: s.user, acl: expect.arrayContaining([`${reader}=c/${s.user}`]) });
    expect(plain.roles.created).toEqual([]);
    expect(plain.databaseState.notRestored).toEqual(expect.arrayContaining([
      `ALTER ROLE ${reader} IN DATABASE SET work_mem=4MB: role "${reader}" does not exist on the target`,
      expect.stringMatching(/^database privileges .*: left out \(--no-privileges\)$/),
      expect.stringMatching(/^owner \S+: left out \(--no-owner\)/),
    ]));
    // ... the full restore created the role and applied everything.
    expect(result.roles.created).toContain(reader);
    expect(result.databaseState.restored).toEqual(expect.arrayContaining([
      'ALTER DATABASE SET work_mem=8MB',
      'ALTER DATABASE SET search_path=app, "My Schema", public',
      `ALTER ROLE ${s.user} IN DATABASE SET statement_timeout=5min`,
      `ALTER ROLE ${reader} IN DATABASE SET work_mem=4MB`,
      'REVOKE ALL ON DATABASE FROM PUBLIC (the recorded ACL replaces the defaults)',
      `GRANT CONNECT ON DATABASE TO ${reader}`,
    ]));
    expect(result.databaseState.notRestored).toEqual([]);
    expect(result.databaseState.notCarried).toEqual(expect.arrayContaining([expect.stringMatching(/^planner statistics/)]));
    const applied = await onFresh('postgres', async (c) => (await c.query(`SELECT unnest(setconfig) AS s FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = 'state_restored') ORDER BY 1`)).rows.map((r) => r.s));
    expect(applied).toEqual(['search_path=app, "My Schema", public', 'statement_timeout=5min', 'work_mem=4MB', 'work_mem=8MB']);
    const publicConnect = await onFresh('postgres', async (c) => (await c.query(`SELECT has_database_privilege('public', 'state_restored', 'CONNECT') AS ok`)).rows[0].ok);
    expect(publicConnect).toBe(false);
  });
});
