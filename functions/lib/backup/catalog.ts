import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { BackupNotFoundError } from '../errors.ts';
import { backupKeys } from './manifest.ts';

export interface CatalogEntry {
  backupId: string;
  manifestKey: string;
  dataKey: string;
}

/** A backup directory without a manifest: a dump that failed or is still running, never a backup. */
export interface UncommittedEntry {
  backupId: string;
  /** Its objects (keys under the directory). */
  objects: number;
  /** When S3 last wrote one of them. */
  lastWrite?: Date;
}

export interface BackupListing {
  /** Committed backups (a manifest, written last, is the commit marker), newest first. */
  committed: CatalogEntry[];
  /** Directories without a manifest, newest first: listed only when asked for. */
  uncommitted: UncommittedEntry[];
}

/**
 * The one backup catalog of the CLI, status and drills: every backup directory
 * under `<prefix><databaseId>/`, split by whether its manifest exists, from one
 * paginated listing (no request per backup).
 */
export async function listBackups(s3: S3Client, bucket: string, prefix: string, databaseId: string): Promise<BackupListing> {
  const base = `${prefix}${databaseId}/`;
  const dirs = new Map<string, { manifest: boolean; objects: number; lastWrite?: Date }>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: base, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const rest = o.Key?.slice(base.length) ?? '';
      const slash = rest.indexOf('/');
      if (slash <= 0) continue;
      const id = rest.slice(0, slash);
      const dir = dirs.get(id) ?? { manifest: false, objects: 0 };
      dir.objects += 1;
      if (rest.slice(slash + 1) === 'manifest.json') dir.manifest = true;
      if (o.LastModified && (!dir.lastWrite || o.LastModified > dir.lastWrite)) dir.lastWrite = o.LastModified;
      dirs.set(id, dir);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const ids = [...dirs.keys()].sort().reverse();
  return {
    committed: ids.filter((id) => dirs.get(id)!.manifest).map((id) => {
      const keys = backupKeys(prefix, databaseId, id);
      return { backupId: id, manifestKey: keys.manifest, dataKey: keys.data };
    }),
    uncommitted: ids.filter((id) => !dirs.get(id)!.manifest).map((id) => ({ backupId: id, objects: dirs.get(id)!.objects, ...(dirs.get(id)!.lastWrite ? { lastWrite: dirs.get(id)!.lastWrite } : {}) })),
  };
}

/** Ids of the committed backups under `<prefix><databaseId>/`, newest first (ids sort by time). */
export async function listBackupIds(s3: S3Client, bucket: string, prefix: string, databaseId: string): Promise<string[]> {
  return (await listBackups(s3, bucket, prefix, databaseId)).committed.map((c) => c.backupId);
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
  if (backupId === 'latest') {
    const newest = (await listBackups(s3, bucket, prefix, databaseId)).committed[0];
    if (newest) return newest;
  } else {
    const keys = backupKeys(prefix, databaseId, backupId);
    if (await exists(s3, bucket, keys.manifest)) return { backupId, manifestKey: keys.manifest, dataKey: keys.data };
  }
  throw new BackupNotFoundError(
    backupId === 'latest'
      ? `No committed backup of database "${databaseId}" in s3://${bucket}/${prefix}${databaseId}/.`
      : `Backup ${backupId} of database "${databaseId}" has no manifest in s3://${bucket}/${prefix}${databaseId}/${backupId}/: it is not a committed backup.`,
    { nextStep: 'run `lifeboat backups --database <id>` to list committed backups.' },
  );
}
