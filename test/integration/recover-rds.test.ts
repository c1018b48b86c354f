import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { CreateDBInstanceCommand, CreateDBSubnetGroupCommand, ModifyDBInstanceCommand, DeleteDBInstanceCommand, RDSClient } from '@aws-sdk/client-rds';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createRdsClient } from '../../functions/lib/aws/clients.ts';
import { createLocalCertificateAuthority, type LocalCertificateAuthority } from '../../local/drill-postgres.ts';
import { rdsError, rdsRequest } from '../../local/moto-rds-compat.ts';
import type { MotoCompatProxy } from '../../local/nightly-environment.ts';
import { createTestBucket, createTestKey, testClients, uniqueName } from '../harness/aws.ts';
import { lifeboat as cli } from '../harness/cli.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import { defaultNetwork, describedInstance, rdsWithServers, secretNamed } from './drill-harness.ts';

/**
 * Issue 12, must-show 4: `lifeboat recover --into-rds <id>` restores into a NEW
 * RDS instance. The instance is emulated by the strict RDS layer (it takes
 * several polls to become available and refuses calls while busy) and backed
 * by a real PostgreSQL server serving TLS with a local CA's certificate, which
 * the CLI trusts through PGSSLROOTCERT as a workstation trusts the RDS bundle.
 * Run through the real `lifeboat` bin.
 */
const SENTINEL = 'S3NTINEL-recover-rds-31';
let proxy: MotoCompatProxy;
let ca: LocalCertificateAuthority;
let rds: RDSClient;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let dir: string;
let configPath: string;
let subnetGroup: string;
let securityGroup: string;
let moment: string;
let bucket: string;
let backup: { backupId: string; manifestKey: string };
/** Every master password sent to RDS (seen on the wire): none may appear in any output. */
let passwords: string[] = [];
const { secrets, s3 } = testClients();

const lifeboat = (args: string[], env: Record<string, string> = {}) =>
  cli(['recover', '--config', configPath, '--database', 'notes', '--before', moment, '--poll-seconds', '0.2', ...args], { PGSSLROOTCERT: ca.caPath, NOTES_DB_PASSWORD: SENTINEL, ...env });
const network = () => ['--instance-class', 'db.t4g.micro', '--subnet-group', subnetGroup, '--security-group', securityGroup];

const instance = describedInstance;

/** Gone, or on its way: strict RDS keeps an instance `deleting` for a few polls. */
async function goneOrDeleting(id: string): Promise<boolean> {
  const found = await instance(id);
  return found === undefined || found.DBInstanceStatus === 'deleting';
}


beforeAll(async () => {
  ({ ca, proxy, passwords } = await rdsWithServers(inject('motoEndpoint'), (i) => i.id.startsWith('lbrec-')));
  rds = createRdsClient();
  const net = await defaultNetwork();
  securityGroup = net.securityGroup;
  subnetGroup = uniqueName('lbrec-subnets');
  await rds.send(new CreateDBSubnetGroupCommand({ DBSubnetGroupName: subnetGroup, DBSubnetGroupDescription: 'recover test', SubnetIds: net.subnets }));

  db = await createTestDatabase('lbrecrds');
  await withClient(db.name, (c) => c.query(`CREATE TABLE notes (id serial PRIMARY KEY, body text); INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 120) g`));
  let keyArn: string;
  [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  const s = pgServer();
  dir = mkdtempSync(join(tmpdir(), 'lifeboat-recover-rds-'));
  configPath = join(dir, 'lifeboat.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      name: 'recoverrds',
      source: { region: 'eu-west-1' },
      databases: [{ id: 'notes', connection: { host: s.host, port: s.port, database: db.name, username: s.user, passwordEnv: 'NOTES_DB_PASSWORD', sslMode: 'disable' } }],
      plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['notes'], rpoMinutes: 1440, rtoMinutes: 60 }],
      storage: { bucketName: bucket, kmsKeyArn: keyArn },
    }),
  );
  const made = await cli(['backup', '--config', configPath, '--database', 'notes', '--json'], { NOTES_DB_PASSWORD: s.password });
  if (made.code !== 0) throw new Error(made.stderr);
  backup = JSON.parse(made.stdout);
  await sleep(1100);
  moment = new Date().toISOString();
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  ca?.remove();
  await db?.drop();
  process.env.AWS_ENDPOINT_URL = inject('motoEndpoint');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lifeboat recover --into-rds', () => {
  it('creates a new instance, restores into it over verify-full, verifies, turns deletion protection on, and never shows the password', async () => {
    // Prepare
    const id = uniqueName('lbrec-ok');

    // Act
    const run = await lifeboat(['--into-rds', id, ...network(), '--yes', '--json']);

    // Assess: the CLI's account of it
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.restored).toBe(true);
    expect(out.connect).toMatchObject({ instance: id, database: db.name, user: 'lifeboat_admin' });
    expect(out.result.checks.filter((c: { ok: boolean }) => !c.ok)).toEqual([]);
    expect(run.stderr).toMatch(new RegExp(`into a new database ${db.name} on a NEW RDS instance ${id}, PostgreSQL \\d+, db\\.t4g\\.micro, 20 GiB gp3 encrypted`));
    expect(run.stderr).toMatch(new RegExp(`instance ${id}: creating`));
    // ... the instance itself
    const made = await instance(id);
    expect(made).toMatchObject({ DeletionProtection: true, PubliclyAccessible: false, StorageEncrypted: true, DBInstanceClass: 'db.t4g.micro' });
    expect(made!.TagList).toEqual(expect.arrayContaining([{ Key: 'lifeboat:recovered-database', Value: 'notes' }]));
    // ... its secret, which alone is enough to connect, and the data in it
    const secret = JSON.parse((await secrets.send(new GetSecretValueCommand({ SecretId: out.connect.secretArn }))).SecretString!);
    expect(secret).toMatchObject({ engine: 'postgres', username: 'lifeboat_admin', host: out.connect.host, port: out.connect.port });
    const client = new pg.Client({ host: secret.host, port: secret.port, user: secret.username, password: secret.password, database: db.name, ssl: { ca: readFileSync(ca.caPath, 'utf8'), rejectUnauthorized: true } });
    await client.connect();
    const { rows } = await client.query('SELECT count(*)::int AS n FROM notes');
    await client.end();
    expect(rows[0].n).toBe(120);
    // ... and no password anywhere in what was printed
    expect(passwords).toContain(secret.password);
    for (const p of [...passwords, SENTINEL]) expect(run.stdout + run.stderr).not.toContain(p);

    // Cleanup: deletion protection off, then delete
    await rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: id, DeletionProtection: false, ApplyImmediately: true }));
    for (let i = 0; i < 5 && (await instance(id))?.DBInstanceStatus !== 'available'; i++);
    await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true }));
  }, 120_000);

  it("makes the instance like the database's own (rds.instanceIdentifier in the config): class, network, storage, master user", async () => {
    // Prepare: the production instance, and a config that names it
    const own = uniqueName('lbsrc-own');
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: own,
        Engine: 'postgres',
        EngineVersion: '15.4',
        DBInstanceClass: 'db.r6g.large',
        AllocatedStorage: 50,
        MasterUsername: 'appadmin',
        MasterUserPassword: 'own-instance-pw-1',
        DBSubnetGroupName: subnetGroup,
        VpcSecurityGroupIds: [securityGroup],
      }),
    );
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    config.databases[0].rds = { instanceIdentifier: own };
    const ownConfig = join(dir, 'own.config.json');
    writeFileSync(ownConfig, JSON.stringify(config));
    const id = uniqueName('lbrec-like');

    // Act: no class or network flags
    const run = await lifeboat(['--config', ownConfig, '--into-rds', id, '--yes', '--json']);

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(new RegExp(`NEW RDS instance ${id}, PostgreSQL 15, db\\.r6g\\.large, 50 GiB`));
    expect(run.stderr).toContain(`settings: class, network, port, storage and parameter group like ${own}`);
    expect(run.stderr).toContain(`subnet group ${subnetGroup}, security groups ${securityGroup}`);
    expect(await instance(id)).toMatchObject({ DBInstanceClass: 'db.r6g.large', AllocatedStorage: 50, MasterUsername: 'appadmin', DBSubnetGroup: { DBSubnetGroupName: subnetGroup } });
    expect(JSON.parse(run.stdout).connect.user).toBe('appadmin');
  }, 120_000);

  it('turns deletion protection on once RDS lets it (busy at first), and keeps a verified instance it may not protect, saying how', async () => {
    // Prepare: the first ModifyDBInstance of one instance meets a busy instance; every one of the other's is denied
    const busy = uniqueName('lbrec-busy');
    const denied = uniqueName('lbrec-denied');
    let refusedOnce = false;
    proxy.addRule((req) => {
      const r = rdsRequest(req);
      if (r?.action !== 'ModifyDBInstance' || r.params.get('DeletionProtection') !== 'true') return undefined;
      const id = r.params.get('DBInstanceIdentifier');
      if (id === busy && !refusedOnce) {
        refusedOnce = true;
        return rdsError('InvalidDBInstanceState', `Database instance is not in available state (backing-up).`);
      }
      return id === denied ? rdsError('AccessDenied', 'User is not authorized to perform: rds:ModifyDBInstance', 403) : undefined;
    });

    // Act
    const waited = await lifeboat(['--into-rds', busy, ...network(), '--yes', '--json']);
    const unprotected = await lifeboat(['--into-rds', denied, ...network(), '--yes']);

    // Assess
    expect(waited.code, waited.stderr).toBe(0);
    expect(refusedOnce).toBe(true);
    expect(JSON.parse(waited.stdout).connect.deletionProtection).toBe(true);
    expect(await instance(busy)).toMatchObject({ DeletionProtection: true });
    expect(unprotected.code, unprotected.stderr).toBe(0);
    expect(unprotected.stdout).toMatch(new RegExp(`deletion protection could NOT be turned on \\(AccessDenied: User is not authorized .*\\): aws rds modify-db-instance --db-instance-identifier ${denied} --deletion-protection --apply-immediately`));
    expect(await instance(denied)).toMatchObject({ DBInstanceStatus: 'available', DeletionProtection: false });
    expect(await secretNamed(`lifeboat/recovered/${denied}`)).toBe(true);
  }, 120_000);

  it("uses the flags when the database's own instance is gone (the incident took it), and says so", async () => {
    // Prepare
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    config.databases[0].rds = { instanceIdentifier: 'lbsrc-gone-0' };
    const goneConfig = join(dir, 'gone.config.json');
    writeFileSync(goneConfig, JSON.stringify(config));
    const id = uniqueName('lbrec-gone');

    // Act
    const withoutFlags = await lifeboat(['--config', goneConfig, '--into-rds', uniqueName('lbrec-gone'), '--yes']);
    const withFlags = await lifeboat(['--config', goneConfig, '--into-rds', id, ...network(), '--yes', '--json']);

    // Assess
    expect(withoutFlags.code).toBe(1);
    expect(withoutFlags.stderr).toMatch(/--into-rds needs --instance-class .*: the database's own instance lbsrc-gone-0 was not found \(gone with the incident\?\): nothing copied from it/);
    expect(withFlags.code, withFlags.stderr).toBe(0);
    expect(withFlags.stderr).toContain("settings: the database's own instance lbsrc-gone-0 was not found");
    expect(await instance(id)).toMatchObject({ DBInstanceClass: 'db.t4g.micro', DeletionProtection: true });
  }, 120_000);

  it("says whether the database's RDS point-in-time window covers the moment, with the command, and still restores the dump", async () => {
    // Prepare: instances with 7 days of automated backups and with none, and one the config names that does not exist
    const kept = uniqueName('lbsrc-pitr');
    const none = uniqueName('lbsrc-nobackups');
    for (const [id, days] of [[kept, 7], [none, 0]] as const) {
      await rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: id, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'x', MasterUserPassword: 'pitr-test-pw-1', BackupRetentionPeriod: days }));
    }
    // moto keeps no automated backups: answer for `kept` as RDS does, with a retained backup of a deleted namesake beside it
    const { DbiResourceId } = (await instance(kept))!;
    const day = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString();
    const backupXml = (status: string, resource: string, earliest: string) =>
      `<DBInstanceAutomatedBackup><DBInstanceIdentifier>${kept}</DBInstanceIdentifier><DbiResourceId>${resource}</DbiResourceId><Status>${status}</Status><RestoreWindow><EarliestTime>${earliest}</EarliestTime></RestoreWindow></DBInstanceAutomatedBackup>`;
    proxy.addRule((req) => {
      const r = rdsRequest(req);
      if (r?.action !== 'DescribeDBInstanceAutomatedBackups' || r.params.get('DBInstanceIdentifier') !== kept) return undefined;
      return {
        status: 200,
        headers: { 'content-type': 'text/xml' },
        body: `<DescribeDBInstanceAutomatedBackupsResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><DescribeDBInstanceAutomatedBackupsResult><DBInstanceAutomatedBackups>${backupXml('retained', 'db-OLDNAMESAKE', day(30))}${backupXml('active', DbiResourceId!, day(2))}</DBInstanceAutomatedBackups></DescribeDBInstanceAutomatedBackupsResult><ResponseMetadata><RequestId>pitr-test</RequestId></ResponseMetadata></DescribeDBInstanceAutomatedBackupsResponse>`,
      };
    });
    await sleep(1100);
    const now = new Date().toISOString();
    // The strict layer's LatestRestorableTime lags like RDS's log shipping: here the logs have reached the moment.
    const [, , , keptRegion, keptAccount] = (await instance(kept))!.DBInstanceArn!.split(':');
    proxy.rds!.setRestoreWindow({ account: keptAccount!, region: keptRegion!, kind: 'instance', id: kept }, { latest: new Date(Date.parse(now) + 1) });
    const withRds = (instanceIdentifier: string) => {
      const config = JSON.parse(readFileSync(configPath, 'utf8'));
      config.databases[0].rds = { instanceIdentifier };
      const path = join(dir, `${instanceIdentifier}.config.json`);
      writeFileSync(path, JSON.stringify(config));
      return path;
    };
    const s = pgServer();
    const target = (name: string) => `postgres://${s.user}@${s.host}:${s.port}/${name}?sslmode=disable`;
    const names = ['lbrec_pitr_a', 'lbrec_pitr_b', 'lbrec_pitr_c'].map((n) => `${n}_${Date.now() % 100000}`);

    // Act
    const covered = await lifeboat(['--config', withRds(kept), '--before', now, '--target', target(names[0]!), '--yes', '--json'], { PGPASSWORD: s.password });
    const noBackups = await lifeboat(['--config', withRds(none), '--before', now, '--target', target(names[1]!), '--yes'], { PGPASSWORD: s.password });
    const missing = await lifeboat(['--config', withRds('lbsrc-missing-0'), '--before', now, '--target', target(names[2]!), '--yes'], { PGPASSWORD: s.password });
    await withClient('postgres', async (c) => {
      for (const n of names) await c.query(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`);
    });

    // Assess
    expect(covered.code, covered.stderr).toBe(0);
    const out = JSON.parse(covered.stdout);
    expect(out.pointInTime).toMatchObject({ covers: true, window: { kind: 'instance', identifier: kept, retentionDays: 7 } });
    expect(Date.parse(out.pointInTime.window.earliest)).toBeGreaterThan(Date.now() - 3 * 86_400_000); // the active backup's, not the namesake's
    expect(out.pointInTime.window.earliestEstimated).toBeUndefined();
    expect(out.pointInTime.command).toMatch(new RegExp(`^aws rds restore-db-instance-to-point-in-time --region eu-west-1 --source-db-instance-identifier ${kept} --target-db-instance-identifier ${kept}-pitr --restore-time ${now.replace(/\.\d{3}Z$/, 'Z')} `));
    expect(covered.stderr).toMatch(/point-in-time recovery: AVAILABLE and better: the window of \S+ \(.* to .*\) covers /);
    expect(out.restored).toBe(true);
    expect(noBackups.code, noBackups.stderr).toBe(0);
    expect(noBackups.stdout).toMatch(new RegExp(`point-in-time recovery: not available: ${none} keeps no automated backups \\(BackupRetentionPeriod 0\\)`));
    expect(missing.code, missing.stderr).toBe(0);
    expect(missing.stdout).toMatch(/point-in-time recovery: unknown: the window of lbsrc-missing-0 in eu-west-1 could not be read \(DBInstanceNotFound.*--source-dbi-resource-id/);
  }, 120_000);

  it('keeps the instance, unprotected, when the restore completes but does not match the manifest, and says how to delete it', async () => {
    // Prepare: a newer backup whose manifest claims one note more than its dump holds
    const manifest = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: backup.manifestKey }))).Body!.transformToString());
    const stamp = backup.backupId.slice(0, backup.backupId.indexOf('-'));
    const second = Date.parse(stamp.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
    const forgedId = `${new Date(second + 1000).toISOString().replace(/[-:]|\.\d{3}/g, '')}${backup.backupId.slice(stamp.length)}`;
    const forgedKey = backup.manifestKey.replace(backup.backupId, forgedId);
    const notes = manifest.inventory.tables.find((t: { name: string }) => t.name === 'notes');
    notes.rows += 1;
    manifest.backupId = forgedId;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: forgedKey, Body: JSON.stringify(manifest) }));
    const id = uniqueName('lbrec-mismatch');
    const later = new Date(Date.parse(manifest.consistentAt ?? moment) + 2000).toISOString();

    // Act
    const run = await lifeboat(['--into-rds', id, ...network(), '--yes', '--before', later]).finally(() =>
      s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: forgedKey })), // the other tests recover the real backup
    );

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`backup ${forgedId}`);
    expect(run.stderr).toMatch(/ManifestMismatchError: .*table "public"\."notes" has 120 rows, the manifest says 121/s);
    expect(run.stderr).toMatch(new RegExp(`The new instance ${id} is kept with it \\(deletion protection off\\); its master password is in the secret \\S+\\. When done with it: aws rds delete-db-instance --db-instance-identifier ${id} --skip-final-snapshot --delete-automated-backups; aws secretsmanager delete-secret`));
    expect(await instance(id)).toMatchObject({ DeletionProtection: false });
    expect(await secretNamed(`lifeboat/recovered/${id}`)).toBe(true);
    for (const p of passwords) expect(run.stdout + run.stderr).not.toContain(p);
  }, 120_000);

  it('refuses before creating anything: a taken identifier, an invalid one, no network to put it in', async () => {
    // Prepare
    const taken = uniqueName('lbrec-taken');
    const create = await lifeboat(['--into-rds', taken, ...network(), '--yes', '--json']);
    expect(create.code, create.stderr).toBe(0);
    const before = passwords.length;

    // Act
    const again = await lifeboat(['--into-rds', taken, ...network(), '--yes']);
    const invalid = await lifeboat(['--into-rds', 'lbrec--bad-', ...network(), '--yes']);
    const noNetwork = await lifeboat(['--into-rds', uniqueName('lbrec-nonet'), '--instance-class', 'db.t4g.micro', '--yes']);
    const both = await lifeboat(['--into-rds', uniqueName('lbrec-both'), '--target', 'postgres://u@127.0.0.1:5432/x', '--yes']);
    const noCa = await lifeboat(['--into-rds', uniqueName('lbrec-noca'), ...network(), '--yes'], { PGSSLROOTCERT: '' });
    const postgresDb = await lifeboat(['--into-rds', uniqueName('lbrec-pgdb'), ...network(), '--database-name', 'postgres', '--yes']);

    // Assess
    expect(again.stderr).toMatch(new RegExp(`RecoveryInstanceError: --into-rds: a DB instance "${taken}" already exists; recover creates a new one and never writes into an existing instance`));
    expect(invalid.stderr).toMatch(/"lbrec--bad-" is not a valid DB instance identifier: it must not contain two hyphens in a row or end with a hyphen/);
    expect(noNetwork.stderr).toMatch(/--into-rds needs --subnet-group .*, --security-group .*: the database has no RDS instance in the config to copy them from/);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--target and --into-rds: give one/);
    expect(noCa.code).toBe(2);
    expect(noCa.stderr).toMatch(/PGSSLROOTCERT: not set; the restore connects with verify-full and needs the RDS CA bundle/);
    expect(postgresDb.code).toBe(2);
    expect(postgresDb.stderr).toMatch(/--database-name: "postgres" exists on every RDS instance/);
    for (const run of [again, invalid, noNetwork]) expect(run.code).toBe(1);
    expect(passwords.length).toBe(before); // no CreateDBInstance was sent
    expect(await secretNamed(`lifeboat/recovered/${taken}`)).toBe(true); // the first one's, untouched
  }, 120_000);

  it('deletes the new instance and its secret when the restore into it fails (its certificate is signed by a CA the CLI does not trust)', async () => {
    // Prepare
    const id = uniqueName('lbrec-noca');
    const otherCa = createLocalCertificateAuthority();

    // Act: PGSSLROOTCERT names another CA, so verify-full refuses the server
    const run = await lifeboat(['--into-rds', id, ...network(), '--yes'], { PGSSLROOTCERT: otherCa.caPath });
    otherCa.remove();

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/certificate/i);
    expect(run.stderr).toMatch(new RegExp(`The new instance ${id} and its secret were deleted\\.`));
    expect(await goneOrDeleting(id)).toBe(true);
    expect(await secretNamed(`lifeboat/recovered/${id}`)).toBe(false);
  }, 120_000);

  it('deletes the secret when RDS refuses the instance, and says nothing was created', async () => {
    // Prepare
    const id = uniqueName('lbrec-refused');
    proxy.addRule((req) => {
      const r = rdsRequest(req);
      return r?.action === 'CreateDBInstance' && r.params.get('DBInstanceIdentifier') === id
        ? rdsError('InsufficientDBInstanceCapacity', 'Cannot create a db.t4g.micro instance in the requested Availability Zone.')
        : undefined;
    });

    // Act
    const run = await lifeboat(['--into-rds', id, ...network(), '--yes']);

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`CreateDBInstance ${id} failed: InsufficientDBInstanceCapacity(Fault)?: Cannot create .*nothing was created \\(the secret made for it was deleted\\)`));
    expect(await instance(id)).toBeUndefined();
    expect(await secretNamed(`lifeboat/recovered/${id}`)).toBe(false);
  }, 120_000);

  it('deletes an instance RDS created although CreateDBInstance failed (the answer was lost), with its secret', async () => {
    // Prepare: the first CreateDBInstance creates the instance (with the request's tags) but answers a server error;
    // the SDK's retry then meets DBInstanceAlreadyExists
    const id = uniqueName('lbrec-lost');
    const upstream = new RDSClient({ endpoint: inject('motoEndpoint'), region: 'eu-west-1' });
    let answered = false;
    proxy.addRule(async (req) => {
      const r = rdsRequest(req);
      if (r?.action !== 'CreateDBInstance' || r.params.get('DBInstanceIdentifier') !== id || answered) return undefined;
      answered = true;
      const tags = [...r.params.keys()].filter((k) => /^Tags\.\w+\.\d+\.Key$/.test(k)).map((k) => ({ Key: r.params.get(k)!, Value: r.params.get(k.replace(/Key$/, 'Value'))! }));
      await upstream.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: id, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'x', MasterUserPassword: 'lost-answer-pw-1', Tags: tags }));
      return rdsError('InternalFailure', 'An internal error occurred.', 500);
    });

    // Act
    const run = await lifeboat(['--into-rds', id, ...network(), '--yes']);

    // Assess
    expect(run.code).toBe(1);
    expect(answered).toBe(true);
    expect(run.stderr).toMatch(new RegExp(`CreateDBInstance ${id} failed: DBInstanceAlreadyExists(Fault)?: .*RDS created ${id} nonetheless; it was deleted \\(the secret made for it was deleted\\)`));
    expect(await goneOrDeleting(id)).toBe(true);
    expect(await secretNamed(`lifeboat/recovered/${id}`)).toBe(false);
  }, 120_000);

  it('on Ctrl-C while the instance is being created, deletes it and its secret', async () => {
    // Prepare: slow polls, so the CLI is still waiting when interrupted
    const id = uniqueName('lbrec-int');
    const child = spawn(
      process.execPath,
      [new URL('../../bin/lifeboat.mjs', import.meta.url).pathname, 'recover', '--config', configPath, '--database', 'notes', '--before', moment, '--poll-seconds', '1', '--into-rds', id, ...network(), '--yes'],
      { env: { ...process.env, PGSSLROOTCERT: ca.caPath }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for (let i = 0; i < 300 && !stderr.includes(`instance ${id}: creating`); i++) await sleep(100);
    expect(stderr).toContain(`instance ${id}: creating`);

    // Act
    child.kill('SIGINT');
    const code = await exited;

    // Assess
    expect(code).toBe(130);
    expect(stderr).toMatch(/InterruptedError: Interrupted by SIGINT/);
    expect(stderr).toMatch(new RegExp(`The new instance ${id} and its secret were deleted\\.`));
    expect(await goneOrDeleting(id)).toBe(true);
    expect(await secretNamed(`lifeboat/recovered/${id}`)).toBe(false);
  }, 120_000);
});
