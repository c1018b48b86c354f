import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newBackupId } from '../../functions/lib/backup/manifest.ts';
import { selectBackup } from '../../functions/lib/drill/select.ts';
import { drillRequestSchema } from '../../functions/lib/drill/types.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import { backUp } from './drill-harness.ts';

const { s3 } = testClients();
const second = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
// Backup ids have one-second resolution; these two share it, and the older one's id sorts last.
const older = newBackupId(second, 'ffffff');
const newer = newBackupId(second, '000000');
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let bucket: string;

beforeAll(async () => {
  db = await createTestDatabase('lbsamesec');
  await withClient(db.name, (c) => c.query('CREATE TABLE t (id int)'));
  const [keyArn, b] = await Promise.all([createTestKey(), createTestBucket()]);
  bucket = b;
  const s = pgServer();
  const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  await backUp('orders', db.name, { bucket, kmsKeyArn: keyArn, secretArn }, older);
  await backUp('orders', db.name, { bucket, kmsKeyArn: keyArn, secretArn }, newer);
});
afterAll(async () => {
  await db?.drop();
});

describe('drill selection of two dumps taken in the same second', () => {
  it('drills the one whose data is newer, not the one whose id sorts first', async () => {
    const request = drillRequestSchema.parse({ databaseId: 'orders', planId: 'nightly', targets: { rpoMinutes: 60, rtoMinutes: 60 } });
    const chosen = await selectBackup(request, { storage: { source: { s3, bucket, prefix: 'backups/' } }, now: new Date(), random: () => 0 });
    expect(chosen.backup.backupId).toBe(newer);
    expect(chosen.newestConsistentAt).toBe(chosen.backup.consistentAt);
  });
});
