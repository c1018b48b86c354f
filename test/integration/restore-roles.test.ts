import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startFaultProxy } from '../../local/fault-proxy.ts';
import { runDumpBackup, type DumpBackupResult } from '../../functions/lib/backup/dump-pipeline.ts';
import { dumpSettingsSchema } from '../../functions/lib/config/schema.ts';
import { ChecksumMismatchError, RestoreFailedError } from '../../functions/lib/errors.ts';
import { startLocalPostgres, type LocalPostgresCluster } from '../../functions/lib/pg/postgres-cluster.ts';
import type { ResolvedConnection } from '../../functions/lib/pg/connection.ts';
import { tableChecksums, diffTableChecksums } from '../../functions/lib/pg/table-checksums.ts';
import { fetchGlobals, readManifest } from '../../functions/lib/restore/fetch.ts';
import { restoreBackup, verifyRestoredDatabase } from '../../functions/lib/restore/restore.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';

/**
 * Issue 12, must-shows 1, 2 and 11: a backup carries the cluster's roles, and a
 * restore into a fresh cluster that has none of them brings back a working
 * service: the roles (without passwords), their memberships and attributes,
 * owners, grants, column grants, default privileges and RLS policies, verified
 * against the manifest's privileges fingerprint, also as an RDS-like master
 * user that is no superuser.
 */
const clients = testClients();
const deps = { s3: clients.s3, kms: clients.keyringKms, secrets: clients.secrets };
const APP_PASSWORD = 'app-rw-Secret-7431';
let bucket: string;
let keyArn: string;
let source: LocalPostgresCluster;
const clusters: LocalPostgresCluster[] = [];
let backup: DumpBackupResult;

async function sql(cluster: { host: string; port: number }, user: string, password: string, database: string, text: string): Promise<pg.QueryResult[]> {
  const client = new pg.Client({ host: cluster.host, port: cluster.port, user, password, database });
  await client.connect();
  try {
    // One statement at a time, in one session (CREATE DATABASE refuses a multi-statement query).
    const results: pg.QueryResult[] = [];
    for (const statement of text.split(/;\s*(?:\n|$)/).map((t) => t.trim()).filter(Boolean)) results.push(await client.query(statement));
    return results;
  } finally {
    await client.end();
  }
}
const asSuper = (c: LocalPostgresCluster, database: string, text: string) => sql(c, c.superuser, c.password, database, text);

async function one<T>(c: { host: string; port: number }, user: string, password: string, database: string, text: string): Promise<T> {
  const results = await sql(c, user, password, database, text);
  return results[results.length - 1]!.rows[0] as T;
}

const SOURCE_ROLES = `
  CREATE ROLE app_owner NOLOGIN;
  CREATE ROLE readers NOLOGIN;
  CREATE ROLE writers NOLOGIN;
  CREATE ROLE app_rw LOGIN PASSWORD '${APP_PASSWORD}' CONNECTION LIMIT 20 IN ROLE readers, writers;
  CREATE ROLE reporting LOGIN PASSWORD 'reporting-pw-1' IN ROLE readers;
  CREATE ROLE auditor NOLOGIN BYPASSRLS;
  CREATE ROLE unrelated_team LOGIN PASSWORD 'unrelated-pw-1';
  CREATE ROLE rds_iam NOLOGIN;
  GRANT rds_iam TO app_rw;
  ALTER ROLE app_rw SET statement_timeout = '5s';
  ALTER ROLE app_rw SET search_path = app, public;
  ALTER ROLE reporting SET role = 'app_owner';
  GRANT pg_read_all_data TO reporting;
  CREATE ROLE ops_admin LOGIN CREATEROLE IN ROLE readers;
  COMMENT ON ROLE app_rw IS 'the application''s login';
  CREATE DATABASE shop OWNER app_owner;
`;

const SOURCE_SCHEMA = `
  SET ROLE app_owner;
  CREATE SCHEMA app;
  GRANT USAGE ON SCHEMA app TO readers, writers;
  ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO readers;
  ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT INSERT, UPDATE, DELETE ON TABLES TO writers;
  ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT USAGE ON SEQUENCES TO writers;
  CREATE TABLE app.customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant text NOT NULL, name text, secret_note text);
  CREATE TABLE app.orders (id serial PRIMARY KEY, customer_id bigint REFERENCES app.customers, total numeric(12,2));
  CREATE VIEW app.order_totals AS SELECT customer_id, sum(total) AS total FROM app.orders GROUP BY 1;
  REVOKE SELECT ON app.customers FROM readers;
  GRANT SELECT (id, tenant, name) ON app.customers TO readers;
  ALTER TABLE app.customers ENABLE ROW LEVEL SECURITY;
  CREATE POLICY tenant_isolation ON app.customers TO readers USING (tenant = current_setting('app.tenant', true));
  CREATE FUNCTION app.order_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM app.orders';
  REVOKE EXECUTE ON FUNCTION app.order_count() FROM PUBLIC;
  GRANT EXECUTE ON FUNCTION app.order_count() TO reporting;
  INSERT INTO app.customers (tenant, name, secret_note) SELECT CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END, 'customer ' || g, 'note ' || g FROM generate_series(1, 300) g;
  INSERT INTO app.orders (customer_id, total) SELECT 1 + g % 300, g * 1.25 FROM generate_series(1, 900) g;
  RESET ROLE;
  GRANT SELECT ON app.orders TO auditor;
  REVOKE CONNECT ON DATABASE shop FROM PUBLIC;
  GRANT CONNECT ON DATABASE shop TO readers, writers;
`;

async function checksums(c: { host: string; port: number }, user: string, password: string, database: string) {
  const client = new pg.Client({ host: c.host, port: c.port, user, password, database });
  await client.connect();
  try {
    return await tableChecksums(client);
  } finally {
    await client.end();
  }
}

const targetOf = (c: LocalPostgresCluster, database: string, user = c.superuser, password = c.password): ResolvedConnection => ({
  host: c.host,
  port: c.port,
  database,
  user,
  password,
  sslMode: 'disable',
  connectTimeoutSeconds: 5,
});

async function freshCluster(superuser: string): Promise<LocalPostgresCluster> {
  const c = await startLocalPostgres({ superuser });
  clusters.push(c);
  return c;
}

async function dumpOf(cluster: LocalPostgresCluster, database: string, databaseId: string): Promise<DumpBackupResult> {
  const secretArn = await createTestSecret({ username: cluster.superuser, password: cluster.password, host: cluster.host, port: cluster.port });
  return runDumpBackup(
    {
      databaseId,
      connection: { database, secretArn, sslMode: 'disable', passwordAuth: 'scram-sha-256', connectTimeoutSeconds: 5 },
      settings: dumpSettingsSchema.parse({}),
      target: { bucket, prefix: 'backups/', kmsKeyArn: keyArn },
    },
    deps,
  );
}

beforeAll(async () => {
  bucket = await createTestBucket();
  keyArn = await createTestKey();
  source = await freshCluster('prod_admin');
  await asSuper(source, 'postgres', SOURCE_ROLES);
  await asSuper(source, 'shop', SOURCE_SCHEMA);
  backup = await dumpOf(source, 'shop', 'shop');
}, 180_000);

afterAll(async () => {
  for (const c of clusters) await c.stop();
});

describe('globals: every backup carries the roles', () => {
  it('stores the roles, memberships and attributes encrypted beside the dump, referenced from the manifest, without any password', async () => {
    // Prepare
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const stored = await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `backups/shop/${backup.backupId}/` }));

    // Act
    const globals = await fetchGlobals(manifest, deps);

    // Assess: referenced and checksummed like the dump
    expect(stored.Contents!.map((o) => o.Key!.split('/').pop()).sort()).toEqual(['dump.enc', 'globals.enc', 'manifest.json']);
    expect(manifest.globals!.key).toBe(`backups/shop/${backup.backupId}/globals.enc`);
    expect(manifest.globals!.encryptionContext['lifeboat:object']).toBe('globals');
    expect(manifest.globals!.roles).toEqual(expect.arrayContaining(['app_owner', 'readers', 'writers', 'app_rw', 'reporting', 'auditor', 'unrelated_team', 'prod_admin']));
    expect(manifest.globals!.tablespacesUsed).toEqual([]);
    // ... with attributes and memberships
    const appRw = globals.roles.find((r) => r.name === 'app_rw')!;
    expect(appRw).toMatchObject({ canLogin: true, connectionLimit: 20, superuser: false, comment: "the application's login" });
    expect(globals.roles.find((r) => r.name === 'auditor')).toMatchObject({ bypassRls: true, canLogin: false });
    expect(globals.memberships).toEqual(expect.arrayContaining([expect.objectContaining({ role: 'readers', member: 'app_rw' }), expect.objectContaining({ role: 'rds_iam', member: 'app_rw' })]));
    expect(globals.roleSettings).toContainEqual({ role: 'app_rw', setting: 'statement_timeout=5s' });
    expect(globals.pgDumpall.sql).toMatch(/CREATE ROLE app_rw;/);
    expect(globals.pgDumpall.versionOutput).toMatch(/^pg_dumpall \(PostgreSQL\) \d+/);
    // ... and never a password or its hash
    const everything = JSON.stringify({ manifest, globals });
    expect(everything).not.toContain(APP_PASSWORD);
    expect(everything).not.toMatch(/SCRAM-SHA-256\$|md5[0-9a-f]{32}/);
    // The ownership-and-privileges fingerprint names every role the database uses.
    expect(manifest.inventory.privileges!.roles).toEqual(expect.arrayContaining(['app_owner', 'readers', 'writers', 'reporting', 'auditor']));
    expect(manifest.inventory.privileges!.roles).not.toContain('unrelated_team');
  });
});

describe('restore into a fresh cluster that has none of the roles', () => {
  it('brings back a working service: roles without passwords, memberships, owners, grants, default privileges and RLS, all verified', async () => {
    // Prepare
    const target = await freshCluster('dr_admin');
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const before = await checksums(source, source.superuser, source.password, 'shop');

    // Act
    const result = await restoreBackup(manifest, targetOf(target, 'shop'), deps, { createDatabase: true });

    // Assess: every check passed, the privileges fingerprint among them
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
    expect(result.checks.find((c) => c.name === 'owners and privileges')).toMatchObject({ ok: true });
    expect(result.fidelity).toMatchObject({ owners: true, privileges: true, dropped: [] });
    // ... the data is the same
    expect(diffTableChecksums(before, await checksums(target, target.superuser, target.password, 'shop'))).toEqual([]);
    // ... the roles the database uses came back, the unrelated one did not, the login roles need a password
    expect(result.roles.created.sort()).toEqual(['app_owner', 'app_rw', 'auditor', 'readers', 'reporting', 'writers']);
    expect(result.roles.needPassword.sort()).toEqual(['app_rw', 'reporting']);
    expect(result.roles.memberships).toEqual(expect.arrayContaining(['readers TO app_rw', 'writers TO app_rw', 'readers TO reporting']));
    // ... and nothing that hands out power: no predefined or managed-service membership, no administrator pulled in through a group, no setting that changes who a session is
    const skipped = result.roles.skipped.join('\n');
    expect(skipped).toMatch(/GRANT rds_iam TO app_rw: rds_iam grants more than access to data/);
    expect(skipped).toMatch(/GRANT pg_read_all_data TO reporting: pg_read_all_data grants more than access to data/);
    expect(skipped).toMatch(/ALTER ROLE reporting SET role: refused/);
    expect(result.roles.created).not.toContain('ops_admin');
    const roles = await sql(target, target.superuser, target.password, 'postgres', `SELECT a.rolname, a.rolpassword IS NULL AS no_password, a.rolbypassrls, a.rolconnlimit, r.rolconfig FROM pg_authid a JOIN pg_roles r ON r.oid = a.oid WHERE a.rolname IN ('app_rw', 'auditor', 'unrelated_team') ORDER BY 1`);
    expect(roles[0]!.rows).toEqual([
      { rolname: 'app_rw', no_password: true, rolbypassrls: false, rolconnlimit: 20, rolconfig: ['search_path=app, public', 'statement_timeout=5s'] },
      { rolname: 'auditor', no_password: true, rolbypassrls: true, rolconnlimit: -1, rolconfig: null },
    ]);
    expect(result.databaseState.restored).toEqual(expect.arrayContaining(['owner app_owner']));

    // Assess, as the application would: once given a password, app_rw logs in and works within its grants and policies.
    await asSuper(target, 'postgres', `ALTER ROLE app_rw PASSWORD 'new-app-pw';\nALTER ROLE reporting PASSWORD 'new-rep-pw'`);
    const visible = await one<{ n: number }>(target, 'app_rw', 'new-app-pw', 'shop', `SET app.tenant = 'acme';\nSELECT count(*)::int AS n FROM app.customers`);
    expect(visible.n).toBe(150);
    const inserted = await one<{ id: number }>(target, 'app_rw', 'new-app-pw', 'shop', `INSERT INTO app.orders (customer_id, total) VALUES (2, 9.99) RETURNING id`);
    expect(inserted.id).toBe(901);
    await expect(sql(target, 'app_rw', 'new-app-pw', 'shop', 'SELECT secret_note FROM app.customers')).rejects.toThrow(/permission denied/);
    const count = await one<{ n: string }>(target, 'reporting', 'new-rep-pw', 'shop', 'SELECT app.order_count()::text AS n');
    expect(count.n).toBe('901');
    await expect(sql(target, 'reporting', 'new-rep-pw', 'shop', 'DELETE FROM app.orders')).rejects.toThrow(/permission denied/);
    const owner = await one<{ owner: string }>(target, target.superuser, target.password, 'shop', `SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = 'app.orders'::regclass`);
    expect(owner.owner).toBe('app_owner');
    // The default privileges came back too: a new table of app_owner's is readable by readers.
    await asSuper(target, 'shop', `SET ROLE app_owner;\nCREATE TABLE app.refunds (id int);\nINSERT INTO app.refunds VALUES (1)`);
    expect((await one<{ n: number }>(target, 'app_rw', 'new-app-pw', 'shop', 'SELECT count(*)::int AS n FROM app.refunds')).n).toBe(1);

    // And the check can fail: a grant lost after the restore is named, object and grantee.
    await asSuper(target, 'shop', 'REVOKE SELECT ON app.orders FROM auditor');
    const privileges = (await verifyRestoredDatabase(manifest, targetOf(target, 'shop'))).find((c) => c.name === 'owners and privileges')!;
    expect(privileges.ok).toBe(false);
    expect(privileges.differences.join('\n')).toMatch(/in the backup, not in the restore: table "app"\."orders" owner="app_owner" acl=.*"auditor"=SELECT/);
  }, 120_000);

  it('restores as an RDS-like master user (CREATEROLE, no superuser): drops what it may not give, and still verifies', async () => {
    // Prepare: the target's admin is no superuser, like RDS's master user; rds_iam exists there.
    const target = await freshCluster('cluster_admin');
    await asSuper(target, 'postgres', `CREATE ROLE master LOGIN PASSWORD 'master-pw-1' CREATEROLE CREATEDB;\nCREATE ROLE rds_iam NOLOGIN;\nGRANT rds_iam TO master WITH ADMIN OPTION`);
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);

    // Act
    const result = await restoreBackup(manifest, targetOf(target, 'shop', 'master', 'master-pw-1'), deps, { createDatabase: true });

    // Assess
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
    expect(result.roles.created).toContain('app_owner');
    expect(result.roles.grantedToRestoringUser).toEqual(expect.arrayContaining(['app_owner']));
    expect(result.roles.memberships).not.toContain('rds_iam TO app_rw');
    expect(result.roles.skipped.join('\n')).toMatch(/role auditor: created without BYPASSRLS \(the restoring user may not give it/);
    // It gave itself the roles only to hand them objects, and took them back.
    const member = await one<{ m: boolean }>(target, target.superuser, target.password, 'postgres', `SELECT pg_has_role('master', 'app_owner', 'MEMBER') AS m`);
    expect(member.m).toBe(false);
    const owner = await one<{ owner: string }>(target, target.superuser, target.password, 'shop', `SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = 'app.customers'::regclass`);
    expect(owner.owner).toBe('app_owner');
  }, 120_000);

  it('refuses before downloading when the restoring user may not create the missing roles, and says how to proceed', async () => {
    // Prepare
    const target = await freshCluster('plain_admin');
    await asSuper(target, 'postgres', `CREATE ROLE deployer LOGIN PASSWORD 'deployer-pw-1' CREATEDB`);
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const deployer = targetOf(target, 'shop', 'deployer', 'deployer-pw-1');

    // Act
    const refused = await restoreBackup(manifest, deployer, deps, { createDatabase: true }).catch((e: unknown) => e);
    const refusedPlain = await restoreBackup(manifest, deployer, deps, { createDatabase: true, noOwner: true, noPrivileges: true }).catch((e: unknown) => e);
    await asSuper(target, 'postgres', 'CREATE ROLE readers NOLOGIN');
    const plain = await restoreBackup(manifest, { ...deployer, database: 'shop_plain' }, deps, { createDatabase: true, noOwner: true, noPrivileges: true });

    // Assess: refused, naming the roles and the ways forward, with nothing created
    expect(refused).toBeInstanceOf(RestoreFailedError);
    expect((refused as Error).message).toMatch(/names roles that shop on .* lacks \(app_owner, .*readers.*\), and deployer may not create roles; nothing was downloaded/);
    expect((refused as RestoreFailedError).nextStep).toMatch(/CREATEROLE.*--no-owner --no-privileges/);
    const dbs = await sql(target, target.superuser, target.password, 'postgres', `SELECT count(*)::int AS n FROM pg_database WHERE datname = 'shop'`);
    expect(dbs[0]!.rows[0].n).toBe(0);
    // Without owners and grants, the roles RLS policies name are still needed: only readers here.
    expect((refusedPlain as Error).message).toMatch(/lacks \(readers\), and deployer may not create roles/);
    expect((refusedPlain as RestoreFailedError).nextStep).toMatch(/row-level security policies name them/);
    // Once it exists, --no-owner --no-privileges restores, says what it left out, and creates no role.
    expect(plain.checks.filter((c) => !c.ok)).toEqual([]);
    expect(plain.checks.map((c) => c.name)).not.toContain('owners and privileges');
    expect(plain.roles.created).toEqual([]);
    expect(plain.fidelity.dropped.join('\n')).toMatch(/owners \(--no-owner\): every object is owned by deployer[\s\S]*privileges \(--no-privileges\)/);
  }, 120_000);

  it('drops the roles it created and the database when pg_restore fails after them', async () => {
    // Prepare: a pg_restore that reports its version, then fails like a real one would midway.
    const target = await freshCluster('fail_admin');
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const fake = join(dirname(target.dataDir), 'pg_restore');
    writeFileSync(fake, `#!/bin/sh\nif [ "$1" = "--version" ]; then echo "pg_restore (PostgreSQL) ${manifest.dump.toolMajor}.0"; exit 0; fi\necho "pg_restore: error: could not execute query: server closed the connection" >&2\nexit 1\n`);
    chmodSync(fake, 0o755);

    // Act
    const error = await restoreBackup(manifest, targetOf(target, 'shop'), { ...deps, pgRestorePath: fake }, { createDatabase: true }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(RestoreFailedError);
    const left = await sql(target, target.superuser, target.password, 'postgres', `SELECT (SELECT count(*)::int FROM pg_roles WHERE rolname IN ('app_owner', 'app_rw', 'readers')) AS roles, (SELECT count(*)::int FROM pg_database WHERE datname = 'shop') AS dbs`);
    expect(left[0]!.rows[0]).toEqual({ roles: 0, dbs: 0 });
  }, 120_000);
});

/** The backup's manifest, pointing at a copy of its globals with one byte flipped (stored as `name` beside the original). */
async function withDamagedGlobals(name: string) {
  const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
  const got = await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifest.globals!.key }));
  const bytes = Buffer.from(await got.Body!.transformToByteArray());
  bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
  const key = manifest.globals!.key.replace(/globals\.enc$/, name);
  await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
  return { ...manifest, globals: { ...manifest.globals!, key } };
}

describe('a damaged globals object', () => {
  it('fails the restore naming the globals, and leaves no role or database behind', async () => {
    // Prepare: the backup's globals with one flipped byte, beside the original.
    const damaged = await withDamagedGlobals('globals-damaged.enc');
    const target = await freshCluster('damaged_admin');

    // Act
    const error = await restoreBackup(damaged, targetOf(target, 'shop'), deps, { createDatabase: true }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect((error as Error).message).toMatch(/the globals \(roles, tablespaces\) of backup \S+ of database "shop" .*globals-damaged\.enc.* has sha256 [0-9a-f]{64}, the manifest says/);
    const left = await sql(target, target.superuser, target.password, 'postgres', `SELECT (SELECT count(*)::int FROM pg_roles WHERE rolname IN ('app_owner', 'app_rw')) AS roles, (SELECT count(*)::int FROM pg_database WHERE datname = 'shop') AS dbs`);
    expect(left[0]!.rows[0]).toEqual({ roles: 0, dbs: 0 });
  }, 120_000);
});

describe('a failure beside the download', () => {
  it('stops the download at once: a damaged globals object fails the restore without waiting for a slow dump download', async () => {
    // Prepare: the globals damaged as above, and S3 answering GETs of the dump only after 40 s
    const manifest = await withDamagedGlobals('globals-damaged-2.enc');
    const proxy = await startFaultProxy(inject('motoEndpoint'));
    proxy.addRule(async (req) => {
      if (req.method === 'GET' && decodeURIComponent(req.url).includes(manifest.object.key)) await sleep(40_000);
      return undefined;
    });
    const slowS3 = new S3Client({ endpoint: proxy.endpoint, forcePathStyle: true });
    const target = await freshCluster('failfast_admin');

    // Act
    const started = Date.now();
    const error = await restoreBackup(manifest, targetOf(target, 'shop'), { ...deps, s3: slowS3 }, { createDatabase: true }).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    slowS3.destroy();
    await proxy.stop();

    // Assess
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect((error as Error).message).toMatch(/the globals \(roles, tablespaces\)/);
    expect(elapsed).toBeLessThan(20_000);
    const left = await sql(target, target.superuser, target.password, 'postgres', `SELECT count(*)::int AS dbs FROM pg_database WHERE datname = 'shop'`);
    expect(left[0]!.rows[0]).toEqual({ dbs: 0 });
  }, 120_000);
});

describe('a damaged dump object', () => {
  it('fails the restore naming the dump, and drops what it made beside the download (the database, the roles) and the plaintext', async () => {
    // Prepare: the dump object with one flipped byte near its end; the database and the roles are made while it downloads.
    const manifest = await readManifest(clients.s3, bucket, backup.manifestKey);
    const got = await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifest.object.key }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    bytes[bytes.length - 200]! ^= 0xff;
    const key = manifest.object.key.replace(/\.enc$/, '-damaged.enc');
    await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    const damaged = { ...manifest, object: { ...manifest.object, key } };
    const target = await freshCluster('dmgdump_admin');
    const staging = mkdtempSync(join(tmpdir(), 'lifeboat-test-staging-'));

    // Act
    const error = await restoreBackup(damaged, targetOf(target, 'shop'), { ...deps, workDir: staging }, { createDatabase: true }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect((error as Error).message).toMatch(/backup \S+ of database "shop" \(s3:\/\/\S+-damaged\.enc\) has sha256 [0-9a-f]{64}, the manifest says/);
    const left = await sql(target, target.superuser, target.password, 'postgres', `SELECT (SELECT count(*)::int FROM pg_roles WHERE rolname IN ('app_owner', 'app_rw')) AS roles, (SELECT count(*)::int FROM pg_database WHERE datname = 'shop') AS dbs`);
    expect(left[0]!.rows[0]).toEqual({ roles: 0, dbs: 0 });
    expect(readdirSync(staging)).toEqual([]);
    rmSync(staging, { recursive: true, force: true });
  }, 120_000);
});

describe('grants made through WITH GRANT OPTION', () => {
  it('refuses, before downloading, to restore them as a user who is no superuser (pg_restore replays them with SET SESSION AUTHORIZATION)', async () => {
    // Prepare
    await asSuper(source, 'postgres', 'CREATE DATABASE delegated');
    await asSuper(source, 'delegated', `CREATE TABLE t (id int);\nGRANT SELECT ON t TO writers WITH GRANT OPTION;\nSET ROLE writers;\nGRANT SELECT ON t TO readers`);
    const delegated = await dumpOf(source, 'delegated', 'delegated');
    const manifest = await readManifest(clients.s3, bucket, delegated.manifestKey);
    const target = await freshCluster('deleg_admin');
    await asSuper(target, 'postgres', `CREATE ROLE master LOGIN PASSWORD 'master-pw-2' CREATEROLE CREATEDB`);

    // Act
    const refused = await restoreBackup(manifest, targetOf(target, 'delegated', 'master', 'master-pw-2'), deps, { createDatabase: true }).catch((e: unknown) => e);
    const bySuperuser = await restoreBackup(manifest, targetOf(target, 'delegated'), deps, { createDatabase: true });

    // Assess
    expect(manifest.inventory.privileges!.delegatedGrants).toBe(1);
    expect((refused as Error).message).toMatch(/holds 1 grant\(s\) made by roles other than the objects' owners .* master on delegated on .* is none\. Nothing was downloaded/);
    expect(bySuperuser.checks.filter((c) => !c.ok)).toEqual([]);
  }, 120_000);
});

describe('tablespaces', () => {
  it('refuses a backup whose tables live in a tablespace the target lacks, before downloading, and restores with --no-tablespaces saying so', async () => {
    // Prepare: a source whose table lives in its own tablespace.
    const dir = join(dirname(source.dataDir), 'fastdisk');
    mkdirSync(dir, { mode: 0o700 });
    const owner = statSync(source.dataDir);
    chownSync(dir, owner.uid, owner.gid);
    await asSuper(source, 'postgres', `CREATE TABLESPACE fastdisk LOCATION '${dir}';\nCREATE DATABASE spaced`);
    await asSuper(source, 'spaced', `CREATE TABLE hot (id int) TABLESPACE fastdisk;\nINSERT INTO hot SELECT generate_series(1, 50)`);
    const spaced = await dumpOf(source, 'spaced', 'spaced');
    const manifest = await readManifest(clients.s3, bucket, spaced.manifestKey);
    const target = clusters[1]!;

    // Act
    const refused = await restoreBackup(manifest, targetOf(target, 'spaced'), deps, { createDatabase: true }).catch((e: unknown) => e);
    const restored = await restoreBackup(manifest, targetOf(target, 'spaced'), deps, { createDatabase: true, noTablespaces: true });

    // Assess
    expect(manifest.globals!.tablespacesUsed).toEqual(['fastdisk']);
    expect(manifest.globals!.tablespaces).toEqual(['fastdisk']);
    expect(refused).toBeInstanceOf(RestoreFailedError);
    expect((refused as Error).message).toMatch(/relations in tablespace\(s\) fastdisk, which spaced on .* does not have; nothing was downloaded/);
    expect((refused as RestoreFailedError).nextStep).toMatch(/--no-tablespaces/);
    expect(restored.checks.filter((c) => !c.ok)).toEqual([]);
    expect(restored.fidelity.dropped.join('\n')).toMatch(/tablespaces \(--no-tablespaces\): relations that lived in fastdisk are in the target's default tablespace/);
  }, 120_000);
});
