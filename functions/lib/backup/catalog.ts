import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { BackupNotFoundError } from '../errors.ts';
import { backupKeys } from './manifest.ts';

export interface CatalogEntry {
  backupId: string;
  manifestKey: string;
  dataKey: string;
}

/** Backup ids under `<prefix><databaseId>/`, newest first (ids sort by time). */
export async function listBackupIds(s3: S3Client, bucket: string, prefix: string, databaseId: string): Promise<string[]> {
  const ids: string[] = [];
  let token: string | undefined;
  const base = `${prefix}${databaseId}/`;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: base, Delimiter: '/', ContinuationToken: token }));
    for (const p of page.CommonPrefixes ?? []) if (p.Prefix) ids.push(p.Prefix.slice(base.length, -1));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return ids.sort().reverse();
}

async function exists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}

/**
 * Finds a committed backup (one with a manifest): a given id, or the newest.
 * Directories without a manifest are failed or in-flight dumps and are skipped.
 */
export async function findBackup(s3: S3Client, bucket: string, prefix: string, databaseId: string, backupId: string | 'latest' = 'latest'): Promise<CatalogEntry> {
  const candidates = backupId === 'latest' ? await listBackupIds(s3, bucket, prefix, databaseId) : [backupId];
  for (const id of candidates) {
    const keys = backupKeys(prefix, databaseId, id);
    if (await exists(s3, bucket, keys.manifest)) return { backupId: id, manifestKey: keys.manifest, dataKey: keys.data };
  }
  throw new BackupNotFoundError(
    backupId === 'latest'
      ? `No committed backup of database "${databaseId}" in s3://${bucket}/${prefix}${databaseId}/.`
      : `Backup ${backupId} of database "${databaseId}" has no manifest in s3://${bucket}/${prefix}${databaseId}/${backupId}/: it is not a committed backup.`,
    { nextStep: 'run `lifeboat backups --database <id>` to list committed backups.' },
  );
}
