import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { CreateDBSubnetGroupCommand, DeleteDBInstanceCommand, ModifyDBInstanceCommand, RDSClient } from '@aws-sdk/client-rds';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { createRdsClient } from '../../functions/lib/aws/clients.ts';
import type { DrillPostgres, LocalCertificateAuthority } from '../../local/drill-postgres.ts';
import { rdsError, rdsRequest } from '../../local/moto-rds-compat.ts';
import type { MotoCompatProxy } from '../../local/nightly-environment.ts';
import type { PitrSource } from '../../local/pitr-postgres.ts';
import { createTestBucket, createTestKey, testClients, uniqueName } from '../harness/aws.ts';
import { lifeboat as cli } from '../harness/cli.ts';
import { defaultNetwork, describedInstance, pitrProduction, rdsWithServers, secretNamed } from './drill-harness.ts';

/**
 * Issue 13, must-show 8: `lifeboat recover --before <moment> --into-rds <id>`
 * chooses point-in-time recovery when the database's own RDS instance keeps a
 * window that covers the moment: RDS restores the instance to the moment
 * itself (strict RDS emulation; behind it a real PostgreSQL archive recovery
 * of the production server's WAL), so the rows written after the last dump
 * and before the incident come back, and the incident does not. Through the
 * real `lifeboat` bin.
 */
let proxy: MotoCompatProxy;
let servers: DrillPostgres;
let ca: LocalCertificateAuthority;
let source: PitrSource;
let rds: RDSClient;
let dir: string;
let configPath: string;
let subnetGroup: string;
let securityGroup: string;
/** Just before the incident (every note was deleted right after it). */
let moment: string;
let passwords: string[] = [];
const sourceInstance = uniqueName('notes-prod').replace(/[^a-z0-9-]/g, '');
const { secrets } = testClients();

const lifeboat = (args: string[], env: Record<string, string> = {}) =>
  cli(['recover', '--config', configPath, '--database', 'notes', '--poll-seconds', '0.2', '--yes', '--json', ...args], { PGSSLROOTCERT: ca.caPath, NOTES_DB_PASSWORD: source.masterPassword, ...env });
const network = () => ['--instance-class', 'db.t4g.micro', '--subnet-group', subnetGroup, '--security-group', securityGroup];

let onSource: (sql: string) => Promise<void>;

const instance = describedInstance;


beforeAll(async () => {
  ({ ca, proxy, servers, passwords } = await rdsWithServers(inject('motoEndpoint'), () => false));
  rds = createRdsClient();
  const net = await defaultNetwork();
  securityGroup = net.securityGroup;
  subnetGroup = uniqueName('lbrecpitr-subnets');
  await rds.send(new CreateDBSubnetGroupCommand({ DBSubnetGroupName: subnetGroup, DBSubnetGroupDescription: 'recover pitr test', SubnetIds: net.subnets }));

  // Production: PostgreSQL archiving its WAL, behind an RDS instance with a 7-day window.
  ({ source, sql: onSource } = await pitrProduction(servers, ca, {
    instanceId: sourceInstance,
    database: 'notes',
    masterUsername: 'notes_admin',
    setupSql: `CREATE TABLE notes (id serial PRIMARY KEY, body text); INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 120) g`,
  }));

  const [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  dir = mkdtempSync(join(tmpdir(), 'lifeboat-recover-pitr-'));
  configPath = join(dir, 'lifeboat.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      name: 'recoverpitr',
      source: { region: 'eu-west-1' },
      databases: [
        {
          id: 'notes',
          connection: { host: source.host, port: source.port, database: 'notes', username: source.masterUsername, passwordEnv: 'NOTES_DB_PASSWORD', sslMode: 'disable' },
          rds: { instanceIdentifier: sourceInstance },
        },
      ],
      plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['notes'], rpoMinutes: 1440, rtoMinutes: 60 }],
      storage: { bucketName: bucket, kmsKeyArn: keyArn },
    }),
  );
  // The nightly dump; 30 notes written after it; the moment; then the incident deletes every note; RDS ships the logs.
  const made = await cli(['backup', '--config', configPath, '--database', 'notes', '--json'], { NOTES_DB_PASSWORD: source.masterPassword });
  if (made.code !== 0) throw new Error(made.stderr);
  await onSource(`INSERT INTO notes (body) SELECT 'late note ' || g FROM generate_series(1, 30) g`);
  await sleep(1100);
  moment = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString();
  await sleep(1100);
  await onSource('DELETE FROM notes');
  await source.switchWal();
}, 180_000);

afterAll(async () => {
  await rds?.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: sourceInstance, SkipFinalSnapshot: true })).catch(() => undefined);
  await proxy?.stop();
  ca?.remove();
  process.env.AWS_ENDPOINT_URL = inject('motoEndpoint');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lifeboat recover --before choosing point-in-time recovery', () => {
  it('restores the instance to the moment itself: the notes written after the dump are back, the incident is not, deletion protection is on', async () => {
    // Prepare
    const target = uniqueName('lbrecpitr').replace(/[^a-z0-9-]/g, '');
    const seenBefore = proxy.seen.length;

    // Act
    const run = await lifeboat(['--before', moment, '--into-rds', target, ...network()]);

    // Assess: PITR was chosen and said so; RDS was asked for exactly the moment, from the database's own instance.
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(new RegExp(`USING IT: RDS restores instance ${sourceInstance} to ${moment.replace(/\./g, '\\.')}`));
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({ method: 'pitr', restoredTo: moment, restored: true, tables: { expected: 1, missing: [] }, connect: { instance: target, database: 'notes', deletionProtection: true } });
    const restores = proxy.seen.slice(seenBefore).map(rdsRequest).filter((r) => r?.action === 'RestoreDBInstanceToPointInTime');
    expect(restores).toHaveLength(1);
    expect(restores[0]!.params.get('SourceDBInstanceIdentifier')).toBe(sourceInstance);
    expect(restores[0]!.params.get('TargetDBInstanceIdentifier')).toBe(target);
    expect(Date.parse(restores[0]!.params.get('RestoreTime')!)).toBe(Date.parse(moment));
    expect(restores[0]!.params.get('PubliclyAccessible')).toBe('false');
    expect(proxy.seen.slice(seenBefore).map(rdsRequest).filter((r) => r?.action === 'CreateDBInstance')).toEqual([]);

    // Assess: the data of the moment, through the secret's credentials over verify-full.
    const secret = JSON.parse((await secrets.send(new GetSecretValueCommand({ SecretId: `lifeboat/recovered/${target}` }))).SecretString!);
    const client = new pg.Client({ host: secret.host, port: secret.port, user: secret.username, password: secret.password, database: 'notes', ssl: { ca: (await import('node:fs')).readFileSync(ca.caPath, 'utf8'), servername: 'localhost' } });
    await client.connect();
    const counts = await client.query<{ all: string; late: string }>(`SELECT count(*) AS all, count(*) FILTER (WHERE body LIKE 'late note %') AS late FROM notes`);
    await client.end();
    expect(counts.rows[0]).toEqual({ all: '150', late: '30' });
    expect((await instance(target))?.DeletionProtection).toBe(true);

    // Assess: no password reaches the output.
    for (const password of [...passwords, secret.password]) {
      expect(run.stdout).not.toContain(password);
      expect(run.stderr).not.toContain(password);
    }

    // Cleanup: the recovered instance is protected by design.
    await rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: target, DeletionProtection: false, ApplyImmediately: true }));
    await sleep(300);
    await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: target, SkipFinalSnapshot: true })).catch(() => undefined);
  });

  it('deletes the restored instance and its secret when the new master password cannot be set, naming why', async () => {
    // Prepare
    const target = uniqueName('lbrecpitr').replace(/[^a-z0-9-]/g, '');
    let active = true;
    proxy.addRule((req) => {
      const r = rdsRequest(req);
      return active && r?.action === 'ModifyDBInstance' && r.params.get('DBInstanceIdentifier') === target && r.params.has('MasterUserPassword')
        ? rdsError('AccessDenied', 'User is not authorized to perform: rds:ModifyDBInstance', 403)
        : undefined;
    });

    // Act
    const run = await lifeboat(['--before', moment, '--into-rds', target, ...network()]);
    active = false;

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`Setting the new master password of ${target} failed: AccessDenied`));
    expect(run.stderr).toMatch(new RegExp(`The new instance ${target} and its secret were deleted`));
    const left = await instance(target);
    expect(left === undefined || left.DBInstanceStatus === 'deleting').toBe(true);
    expect(await secretNamed(`lifeboat/recovered/${target}`)).toBe(false);
  });

  it('refuses --method pitr for a moment outside the window, and an unknown method, before creating anything', async () => {
    // Prepare
    const target = uniqueName('lbrecpitr').replace(/[^a-z0-9-]/g, '');
    const seenBefore = proxy.seen.length;
    const longAgo = new Date(Date.now() + 60_000 - 3 * 86_400_000).toISOString();

    // Act
    const outside = await lifeboat(['--before', longAgo, '--into-rds', target, '--method', 'pitr', ...network()]);
    const wrongMethod = await lifeboat(['--before', moment, '--into-rds', target, '--method', 'snapshot', ...network()]);

    // Assess
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/--method pitr: the point-in-time window of database "notes" cannot restore this moment here/);
    expect(wrongMethod.code).toBe(2);
    expect(wrongMethod.stderr).toMatch(/--method: "snapshot" is not pitr or dump/);
    const calls = proxy.seen.slice(seenBefore).map(rdsRequest).filter((r) => r && ['RestoreDBInstanceToPointInTime', 'CreateDBInstance'].includes(r.action));
    expect(calls).toEqual([]);
    expect(await instance(target)).toBeUndefined();
  });
});
