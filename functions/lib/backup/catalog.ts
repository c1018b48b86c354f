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
 * What a backup is, for everything that lists them (the CLI, status, drills,
 * recover and retention): the objects under `<prefix><databaseId>/<backupId>/`
 * form one backup directory, and the directory is a committed backup exactly
 * when its manifest (written last) is there. Objects directly under the
 * database's prefix belong to no backup (`strays`).
 */
export function groupBackupDirectories<T extends { key: string }>(objects: Iterable<T>, prefix: string, databaseId: string): { dirs: Map<string, T[]>; strays: T[] } {
  const base = `${prefix}${databaseId}/`;
  const dirs = new Map<string, T[]>();
  const strays: T[] = [];
  for (const o of objects) {
    const rest = o.key.slice(base.length);
    const slash = rest.indexOf('/');
    if (!o.key.startsWith(base) || slash <= 0) {
      strays.push(o);
      continue;
    }
    const id = rest.slice(0, slash);
    let list = dirs.get(id);
    if (!list) dirs.set(id, (list = []));
    list.push(o);
  }
  return { dirs, strays };
}

/** Whether a backup directory's objects include its manifest, the commit marker. */
export function isCommitted(objects: readonly { key: string }[], prefix: string, databaseId: string, backupId: string): boolean {
  const manifest = backupKeys(prefix, databaseId, backupId).manifest;
  return objects.some((o) => o.key === manifest);
}

/**
 * The one backup catalog of the CLI, status, drills and recover: every backup
 * directory under `<prefix><databaseId>/`, split by whether its manifest
 * exists, from one paginated listing (no request per backup). Retention reads
 * object versions instead and groups them with the same rules.
 */
export async function listBackups(s3: S3Client, bucket: string, prefix: string, databaseId: string): Promise<BackupListing> {
  const objects: { key: string; lastModified?: Date }[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}${databaseId}/`, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) objects.push({ key: o.Key, lastModified: o.LastModified });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const { dirs } = groupBackupDirectories(objects, prefix, databaseId);
  const ids = [...dirs.keys()].sort().reverse();
  const lastWrite = (list: { lastModified?: Date }[]) => list.reduce<Date | undefined>((at, o) => (o.lastModified && (!at || o.lastModified > at) ? o.lastModified : at), undefined);
  return {
    committed: ids.filter((id) => isCommitted(dirs.get(id)!, prefix, databaseId, id)).map((id) => {
      const keys = backupKeys(prefix, databaseId, id);
      return { backupId: id, manifestKey: keys.manifest, dataKey: keys.data };
    }),
    uncommitted: ids
      .filter((id) => !isCommitted(dirs.get(id)!, prefix, databaseId, id))
      .map((id) => {
        const at = lastWrite(dirs.get(id)!);
        return { backupId: id, objects: dirs.get(id)!.length, ...(at ? { lastWrite: at } : {}) };
      }),
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
