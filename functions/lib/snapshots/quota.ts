import { DescribeAccountAttributesCommand } from '@aws-sdk/client-rds';
import { SnapshotQuotaExceededError, ThrottledError } from '../errors.ts';
import { awsErrorName, isThrottling } from './rds-errors.ts';
import { countManualSnapshots, type RdsApi, type SnapshotKind } from './rds.ts';

/**
 * The manual snapshot quota (100 instance and 100 cluster snapshots per region
 * by default, adjustable). RDS reports usage and limit in
 * DescribeAccountAttributes (`ManualSnapshots`, `ManualClusterSnapshots`). When
 * that call is unavailable (denied, or an emulator that lacks it), lifeboat
 * counts the manual snapshots itself and compares with the configured quota,
 * and says so in `source` and `note`.
 */
export interface QuotaCheck {
  readonly quotaName: 'ManualSnapshots' | 'ManualClusterSnapshots';
  /** Manual snapshots before this one. */
  readonly used: number;
  readonly max: number;
  /** Usage after the snapshot about to be taken, in percent of `max` (rounded down). */
  readonly percentAfter: number;
  readonly source: 'DescribeAccountAttributes' | 'counted';
  readonly note?: string;
  /** True when `percentAfter` reaches the warning threshold. */
  readonly warn: boolean;
  readonly region: string;
  /** Step Functions-style `{ Error, Cause }` for the quota-warning alert (present when `warn`). */
  readonly alert?: { readonly Error: string; readonly Cause: string };
}

export interface QuotaSettings {
  readonly manualSnapshotQuota: number;
  readonly quotaWarningPercent: number;
}

const QUOTA_NAMES = { instance: 'ManualSnapshots', cluster: 'ManualClusterSnapshots' } as const;
const SERVICE_QUOTA_NAMES = { instance: 'Manual DB instance snapshots', cluster: 'Manual DB cluster snapshots' } as const;

async function fromAccountAttributes(rds: RdsApi, kind: SnapshotKind): Promise<{ used: number; max: number } | { unavailable: string }> {
  try {
    const out = await rds.send(new DescribeAccountAttributesCommand({}));
    const quota = out.AccountQuotas?.find((q) => q.AccountQuotaName === QUOTA_NAMES[kind]);
    if (quota?.Used === undefined || quota.Max === undefined) return { unavailable: `DescribeAccountAttributes has no ${QUOTA_NAMES[kind]} quota` };
    return { used: quota.Used, max: quota.Max };
  } catch (error) {
    if (isThrottling(error)) throw new ThrottledError(`RDS throttled DescribeAccountAttributes: ${awsErrorName(error)}.`, { cause: error });
    return { unavailable: `DescribeAccountAttributes failed (${awsErrorName(error) ?? 'error'})` };
  }
}

/**
 * Checks the quota before a snapshot is taken. Throws SnapshotQuotaExceededError
 * when no room is left (nothing is created then); returns the usage otherwise,
 * with `warn` set at the configured threshold.
 */
export async function checkSnapshotQuota(rds: RdsApi, kind: SnapshotKind, region: string, settings: QuotaSettings): Promise<QuotaCheck> {
  const quotaName = QUOTA_NAMES[kind];
  const reported = await fromAccountAttributes(rds, kind);
  let used: number;
  let max: number;
  let source: QuotaCheck['source'];
  let note: string | undefined;
  if ('unavailable' in reported) {
    used = await countManualSnapshots(rds, kind);
    max = settings.manualSnapshotQuota;
    source = 'counted';
    note = `${reported.unavailable}; counted ${used} manual snapshots and assumed a quota of ${max} (snapshots.manualSnapshotQuota).`;
  } else {
    ({ used, max } = reported);
    source = 'DescribeAccountAttributes';
  }
  if (used >= max) {
    throw new SnapshotQuotaExceededError(
      `No room for another manual snapshot in ${region}: ${used} of ${max} ${SERVICE_QUOTA_NAMES[kind]} are used (${source}).${note ? ` ${note}` : ''}`,
      {
        nextStep: `delete manual snapshots that retention no longer needs, or raise '${SERVICE_QUOTA_NAMES[kind]}' in Service Quotas (and snapshots.manualSnapshotQuota if lifeboat counts).`,
      },
    );
  }
  const percentAfter = Math.floor(((used + 1) * 100) / max);
  const warn = percentAfter >= settings.quotaWarningPercent;
  const check: QuotaCheck = { quotaName, used, max, percentAfter, source, note, warn, region };
  if (!warn) return check;
  return {
    ...check,
    alert: {
      Error: 'ManualSnapshotQuotaNearlyUsed',
      Cause:
        `${SERVICE_QUOTA_NAMES[kind]} in ${region}: ${used + 1} of ${max} used after this snapshot (${percentAfter}%, warning at ${settings.quotaWarningPercent}%).` +
        `${note ? ` ${note}` : ''} Next step: tighten snapshot retention or raise '${SERVICE_QUOTA_NAMES[kind]}' in Service Quotas before snapshots start failing.`,
    },
  };
}
