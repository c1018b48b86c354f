import type { S3Client } from '@aws-sdk/client-s3';
import { listBackupIds } from '../backup/catalog.ts';
import { backupKeys } from '../backup/manifest.ts';
import { readManifest } from '../restore/fetch.ts';
import type { BackupPoint } from './model.ts';

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
