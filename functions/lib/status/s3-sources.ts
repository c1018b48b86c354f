import type { S3Client } from '@aws-sdk/client-s3';
import { listBackupIds } from '../backup/catalog.ts';
import { backupKeys } from '../backup/manifest.ts';
import { readManifest } from '../restore/fetch.ts';
import { listDrillReports } from '../drill/report.ts';
import type { BackupPoint, DrillPoint } from './model.ts';

/**
 * Committed backups of a database in a bucket, newest first, read from their
 * manifests. Only the newest `limit` are read: enough for the status charts
 * without a GET per backup ever taken.
 */
export async function backupsFromBucket(s3: S3Client, bucket: string, prefix: string, databaseId: string, limit = 30): Promise<BackupPoint[]> {
  const ids = await listBackupIds(s3, bucket, prefix, databaseId);
  const points: BackupPoint[] = [];
  for (const id of ids) {
    if (points.length >= limit) break;
    try {
      const manifest = await readManifest(s3, bucket, backupKeys(prefix, databaseId, id).manifest);
      points.push({ backupId: id, consistentAt: manifest.consistentAt, storedBytes: manifest.object.storedBytes });
    } catch (error) {
      // A directory without a manifest is a failed or running dump, not a backup.
      if ((error as Error).name !== 'BackupNotFoundError') throw error;
    }
  }
  return points;
}

/** Drill reports of a database as status points, newest `limit` of them. */
export async function drillsFromBucket(s3: S3Client, bucket: string, prefix: string, databaseId: string, limit = 30): Promise<DrillPoint[]> {
  const stored = await listDrillReports(s3, bucket, prefix, { databaseId, limit });
  return stored.map(({ report }) => ({
    drillId: report.drillId,
    finishedAt: report.finishedAt,
    backupId: report.backup?.id,
    passed: report.verdict === 'passed',
    emulated: report.verdict === 'emulated',
    rtoSeconds: report.rto?.seconds ?? undefined,
    rpoSeconds: report.rpo?.seconds ?? undefined,
    failures: report.checks.filter((c) => c.status === 'failed').map((c) => `${c.name}: ${c.detail}`),
  }));
}
