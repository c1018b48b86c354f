import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateDBInstanceCommand, CreateDBSnapshotCommand, DeleteDBInstanceCommand, RDSClient } from '@aws-sdk/client-rds';
import { newBackupId } from '../../functions/lib/backup/manifest.ts';
import { BackupNotFoundError } from '../../functions/lib/errors.ts';
import { selectBackup } from '../../functions/lib/drill/select.ts';
import { drillRequestSchema } from '../../functions/lib/drill/types.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients, uniqueName } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import { backUp } from './drill-harness.ts';

const { s3 } = testClients();
const rds = new RDSClient({});
const day = 86_400_000;
const now = new Date();
const ids = {
  old: newBackupId(new Date(now.getTime() - 20 * day), 'aaaaaa'),
  midweek: newBackupId(new Date(now.getTime() - 5 * day), 'bbbbbb'),
  yesterday: newBackupId(new Date(now.getTime() - 1 * day), 'cccccc'),
  // A dump that died: data, no manifest. Never a candidate.
  incomplete: newBackupId(new Date(now.getTime() - 60_000), 'dddddd'),
};
const instance = uniqueName('sel-src');
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let bucket: string;

const request = (extra: Record<string, unknown> = {}) => drillRequestSchema.parse({ databaseId: 'orders', planId: 'nightly', targets: { rpoMinutes: 60, rtoMinutes: 60 }, ...extra });
const deps = (random = () => 0) => ({ storage: { source: { s3, bucket, prefix: 'backups/' } }, rds: { source: rds }, now, random });

beforeAll(async () => {
  db = await createTestDatabase('lbdrillsel');
  await withClient(db.name, (c) => c.query('CREATE TABLE t (id int)'));
  const [keyArn, b] = await Promise.all([createTestKey(), createTestBucket()]);
  bucket = b;
  const s = pgServer();
  const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  for (const id of [ids.old, ids.midweek, ids.yesterday]) await backUp('orders', db.name, { bucket, kmsKeyArn: keyArn, secretArn }, id);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `backups/orders/${ids.incomplete}/dump.enc`, Body: 'partial' }));
  await rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: instance, DBInstanceClass: 'db.t4g.micro', Engine: 'postgres', MasterUsername: 'x', MasterUserPassword: 'irrelevant-pw', AllocatedStorage: 20 }));
  await rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: `${instance}-a` }));
  await rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: `${instance}-b` }));
}, 60_000);

afterAll(async () => {
  await db?.drop();
  await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: instance, SkipFinalSnapshot: true })).catch(() => undefined);
});

describe('drill backup selection', () => {
  it('picks the newest committed dump; one without a manifest is not even a candidate', async () => {
    const chosen = await selectBackup(request(), deps());
    expect(chosen).toMatchObject({ choice: 'latest', candidates: 3, backup: { kind: 'dump', backupId: ids.yesterday, manifestKey: `backups/orders/${ids.yesterday}/manifest.json` } });
    expect(chosen.newestConsistentAt).toBe(chosen.backup.consistentAt);
  });

  it('picks a random committed dump from the window only, and records the newest for the age check', async () => {
    const picked = new Set<string>();
    for (const r of [0, 0.3, 0.6, 0.99]) {
      const chosen = await selectBackup(request({ selection: { randomWithinDays: 7 } }), deps(() => r));
      picked.add(chosen.backup.backupId);
      expect(chosen.choice).toBe('random');
      expect(chosen.newestConsistentAt).toBe((await selectBackup(request(), deps())).backup.consistentAt);
    }
    expect([...picked].sort()).toEqual([ids.midweek, ids.yesterday]);
  });

  it('takes an explicit backup id, and refuses one that is not a committed backup', async () => {
    expect((await selectBackup(request({ backupId: ids.old }), deps())).backup.backupId).toBe(ids.old);
    await expect(selectBackup(request({ backupId: ids.incomplete }), deps())).rejects.toThrow(BackupNotFoundError);
    await expect(selectBackup(request({ databaseId: 'nothing-here' }), deps())).rejects.toThrow(/No usable dump backup of database "nothing-here"/);
  });

  it('selects instance snapshots the same way', async () => {
    const chosen = await selectBackup(request({ backupKind: 'snapshot', rds: { instanceIdentifier: instance } }), deps());
    expect(chosen).toMatchObject({ choice: 'latest', candidates: 2, backup: { kind: 'snapshot', isCluster: false, sourceIdentifier: instance, engine: 'postgres' } });
    expect([`${instance}-a`, `${instance}-b`]).toContain(chosen.backup.backupId);
    expect(chosen.backup.kind === 'snapshot' && chosen.backup.snapshotArn).toMatch(/^arn:aws:rds:eu-west-1:\d{12}:snapshot:/);
    const explicit = await selectBackup(request({ backupKind: 'snapshot', rds: { instanceIdentifier: instance }, backupId: `${instance}-a` }), deps());
    expect(explicit.backup.backupId).toBe(`${instance}-a`);
  });
});
