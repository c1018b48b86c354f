import type { S3Client } from '@aws-sdk/client-s3';
import { listBackups } from '../backup/catalog.ts';
import { parseBackupIdTime, type Manifest } from '../backup/manifest.ts';
import { listDrillReports } from '../drill/report.ts';
import { BackupNotFoundError } from '../errors.ts';
import { readManifest } from './fetch.ts';

/**
 * `lifeboat recover --before <time>`: the backup to bring a database back
 * from when something went wrong at a known moment. The newest committed
 * backup whose consistent point is before that moment, preferring one a
 * restore drill proved; what the choice loses (the window between its
 * consistent point and the moment) is said before anything is restored.
 */
export interface RecoveryPoint {
  backupId: string;
  manifestKey: string;
  consistentAt: string;
  /** The passed drill that restored and verified this backup, if any. */
  provenBy?: { drillId: string; finishedAt: string };
}

export interface RecoveryChoice {
  chosen: RecoveryPoint;
  manifest: Manifest;
  /** Why this one, in a sentence. */
  reason: string;
  /** Writes between the chosen backup's consistent point and `before` are not in it. */
  loss: { from: string; to: string; seconds: number };
  /** A newer backup before the moment that no drill proved, when the proven one was preferred. */
  newerUnproven?: RecoveryPoint;
  /** Newer backups passed over because their manifest could not be read, each with why. */
  unreadable: string[];
}

export interface RecoveryOptions {
  /** Take the newest backup before the moment even when no drill proved it. @default false */
  newest?: boolean;
  /** How many drill reports to read for proofs. @default 200 */
  drillReports?: number;
}

export async function chooseRecoveryPoint(s3: S3Client, bucket: string, prefix: string, databaseId: string, before: Date, options: RecoveryOptions = {}): Promise<RecoveryChoice> {
  const where = `s3://${bucket}/${prefix}${databaseId}/`;
  // Ids carry the dump's start, which precedes its consistent point: later ids cannot qualify.
  const committed = (await listBackups(s3, bucket, prefix, databaseId)).committed.filter((c) => (parseBackupIdTime(c.backupId)?.getTime() ?? Infinity) < before.getTime());
  const proofs = new Map<string, { drillId: string; finishedAt: string }>();
  for (const { report } of await listDrillReports(s3, bucket, prefix, { databaseId, limit: options.drillReports ?? 200 })) {
    if (report.verdict === 'passed' && report.backup?.kind === 'dump' && !proofs.has(report.backup.id)) proofs.set(report.backup.id, { drillId: report.drillId, finishedAt: report.finishedAt });
  }
  // Newest first, a second at a time (ids of one second do not sort by time): read manifests until the newest
  // qualifying one, and the newest proven one if that is older.
  let newest: { point: RecoveryPoint; manifest: Manifest } | undefined;
  let proven: { point: RecoveryPoint; manifest: Manifest } | undefined;
  const unreadable: string[] = [];
  const seconds = new Map<string, typeof committed>();
  for (const c of committed) seconds.set(c.backupId.slice(0, 16), [...(seconds.get(c.backupId.slice(0, 16)) ?? []), c]);
  for (const group of seconds.values()) {
    if (newest && proven) break;
    const wanted = newest ? group.filter((c) => proofs.has(c.backupId)) : group;
    const read: { point: RecoveryPoint; manifest: Manifest }[] = [];
    for (const c of wanted) {
      let manifest: Manifest;
      try {
        manifest = await readManifest(s3, bucket, c.manifestKey);
      } catch (error) {
        // A corrupt or forged manifest must not stand between the operator and an older good backup.
        if (!(error instanceof BackupNotFoundError) && !(error instanceof SyntaxError)) throw error;
        unreadable.push(`${c.backupId}: ${(error as Error).message}`);
        continue;
      }
      if (Date.parse(manifest.consistentAt) >= before.getTime()) continue;
      read.push({ point: { backupId: c.backupId, manifestKey: c.manifestKey, consistentAt: manifest.consistentAt, ...(proofs.has(c.backupId) ? { provenBy: proofs.get(c.backupId)! } : {}) }, manifest });
    }
    read.sort((a, b) => Date.parse(b.point.consistentAt) - Date.parse(a.point.consistentAt));
    newest ??= read[0];
    proven ??= read.find((r) => r.point.provenBy);
  }
  if (!newest) {
    throw new BackupNotFoundError(`No committed backup of database "${databaseId}" in ${where} is consistent before ${before.toISOString()}${unreadable.length ? ` (${unreadable.length} unreadable: ${unreadable.join('; ')})` : ''}.`, {
      nextStep: '`lifeboat backups --database <id>` lists what there is; a later --before, or the vault copy (--bucket), may have one.',
    });
  }
  const pick = !options.newest && proven ? proven : newest;
  const reason =
    pick.point.provenBy && pick === newest
      ? `the newest backup consistent before ${before.toISOString()}, and a restore drill proved it (drill ${pick.point.provenBy.drillId})`
      : pick.point.provenBy
        ? `the newest backup before ${before.toISOString()} that a restore drill proved (drill ${pick.point.provenBy.drillId}); a newer one exists but no drill has restored it (--newest takes it)`
        : options.newest && proven
          ? `the newest backup consistent before ${before.toISOString()} (--newest); no drill has restored it yet, the newest proven one is ${proven.point.backupId}`
          : `the newest backup consistent before ${before.toISOString()}; no drill has restored any backup of this database before that moment, so this one is unproven until the restore below verifies it`;
  return {
    chosen: pick.point,
    manifest: pick.manifest,
    reason,
    loss: { from: pick.point.consistentAt, to: before.toISOString(), seconds: Math.round((before.getTime() - Date.parse(pick.point.consistentAt)) / 1000) },
    ...(pick !== newest ? { newerUnproven: newest.point } : {}),
    unreadable,
  };
}

/** Reads `--before`: an ISO 8601 time with a zone (`2026-12-07T09:12:00Z`, `...+01:00`), or `<n>m|h|d ago`. */
export function parseMoment(text: string, now = new Date()): Date | undefined {
  const ago = /^(\d+)\s*(m|min|h|d)\s+ago$/i.exec(text.trim());
  if (ago) return new Date(now.getTime() - Number(ago[1]) * { m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 }[ago[2]!.toLowerCase() as 'm' | 'min' | 'h' | 'd']);
  // Strict ISO 8601 only: JavaScript's Date reads "12/07/2026" US-style and rolls 30 February into March.
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})$/.exec(text.trim());
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  const wall = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (wall.getUTCFullYear() !== year || wall.getUTCMonth() !== month - 1 || wall.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) return undefined;
  const zone = m[8]!;
  const offsetMinutes = zone === 'Z' ? 0 : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(-2)));
  if (Math.abs(offsetMinutes) > 14 * 60) return undefined;
  const fraction = m[7] ? Number(`0.${m[7]}`) * 1000 : 0;
  return new Date(wall.getTime() - offsetMinutes * 60_000 + Math.floor(fraction));
}
