import type { S3Client } from '@aws-sdk/client-s3';
import { listDrillReports } from '../drill/report.ts';
import { RetentionListingError } from './errors.ts';

/**
 * Which backups a restore drill has proven, from the drill reports at
 * `<prefix>_drills/<databaseId>/*.json` (lib/drill/report.ts). A report counts
 * when its verdict is `passed` and its instance was not an emulation; dump
 * drills name the backup id, snapshot drills the snapshot identifier, so the
 * snapshot set holds identifiers (the snapshot executor also matches backup
 * ids). A proof counts at every location: the copies carry the same backup id
 * and are verified against the same manifest or snapshot.
 *
 * If any report cannot be read or parsed, nothing is guessed: retention for the
 * database stops with RetentionListingError (a missed proof could let the
 * newest proven backup be deleted).
 */
export interface DrillProofs {
  dump: Set<string>;
  snapshot: Set<string>;
  /** Reports read. */
  reports: number;
}

export async function readDrillProofs(s3: S3Client, bucket: string, prefix: string, databaseId: string): Promise<DrillProofs> {
  let reports;
  try {
    reports = await listDrillReports(s3, bucket, prefix, { databaseId });
  } catch (cause) {
    const name = (cause as Error | undefined)?.name ?? 'Error';
    const status = (cause as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
    throw new RetentionListingError(
      `Retention could not read the drill reports of database ${databaseId} at s3://${bucket}/${prefix}_drills/${databaseId}/ (${name}: ${(cause as Error | undefined)?.message ?? String(cause)}), so it cannot tell which backups a drill proved. Nothing was deleted.`,
      {
        cause,
        retryable: status === 503 || name === 'SlowDown',
        nextStep:
          name === 'ZodError' || name === 'SyntaxError'
            ? 'a drill report there does not match the report format; fix or move it, then run retention again.'
            : 'grant the retention role s3:ListBucket and s3:GetObject on the drill reports, then run retention again.',
      },
    );
  }
  const proofs: DrillProofs = { dump: new Set(), snapshot: new Set(), reports: reports.length };
  for (const { report } of reports) {
    if (report.verdict !== 'passed' || report.instance?.emulated !== false || !report.backup) continue;
    if (report.databaseId !== databaseId) continue;
    // A point-in-time restore proves RDS's automated backups, none of lifeboat's backups (not even the dump whose moment it restored to).
    if (report.backup.kind === 'pitr') continue;
    proofs[report.backup.kind].add(report.backup.id);
  }
  return proofs;
}
