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
 *
 * A backup adds a manual snapshot in up to three places, each with its own
 * quota: the source account and region, the copy region (same account,
 * `snapshots.copy.region`) and the vault account's region. Each is checked
 * before the snapshot or copy is requested there, with the credentials that
 * will make it (the vault's with the vault copier role's).
 */
export interface QuotaCheck {
  readonly quotaName: 'ManualSnapshots' | 'ManualClusterSnapshots';
  /** Manual snapshots before this one. */
  readonly used: number;
  readonly max: number;
  /** Usage after the snapshot about to be taken, in percent of `max` (rounded down). */
  readonly percentAfter: number;
  /** `unknown`: the caller may not read the quota (see {@link unreadableQuota}); `used` and `max` are 0 then. */
  readonly source: 'DescribeAccountAttributes' | 'counted' | 'unknown';
  readonly note?: string;
  /** True when `percentAfter` reaches the warning threshold. */
  readonly warn: boolean;
  readonly region: string;
  /** The account whose quota this is, when known. */
  readonly account?: string;
  /** Which of the backup's snapshots this check is for. */
  readonly location?: QuotaLocation;
  /** Step Functions-style `{ Error, Cause }` for the quota-warning alert (present when `warn`). */
  readonly alert?: { readonly Error: string; readonly Cause: string };
}

export type QuotaLocation = 'source' | 'copy' | 'vault';

/** Where the snapshot goes, for the check's messages, and whether it already exists (a retried step). */
export interface QuotaTarget {
  readonly account?: string;
  readonly location?: QuotaLocation;
  /** The snapshot is already there (a retried step found its own): it is counted in `used`, and never refused. */
  readonly alreadyCounted?: boolean;
}

/** `the vault (account 222222222222, eu-central-1)`, `account 111111111111, eu-west-1`, or just the region. */
function placeOf(region: string, target: QuotaTarget): string {
  const at = target.account ? `account ${target.account}, ${region}` : region;
  if (target.location === 'copy') return `the copy region (${at})`;
  if (target.location === 'vault') return `the vault (${at})`;
  return at;
}

export interface QuotaSettings {
  readonly manualSnapshotQuota: number;
  readonly quotaWarningPercent: number;
}

const QUOTA_NAMES = { instance: 'ManualSnapshots', cluster: 'ManualClusterSnapshots' } as const;
const SERVICE_QUOTA_NAMES = { instance: 'Manual DB instance snapshots', cluster: 'Manual DB cluster snapshots' } as const;

const isDenied = (error: unknown) => ['AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation'].includes(awsErrorName(error) ?? '');

async function fromAccountAttributes(rds: RdsApi, kind: SnapshotKind): Promise<{ used: number; max: number } | { unavailable: string; denied?: string }> {
  try {
    const out = await rds.send(new DescribeAccountAttributesCommand({}));
    const quota = out.AccountQuotas?.find((q) => q.AccountQuotaName === QUOTA_NAMES[kind]);
    if (quota?.Used === undefined || quota.Max === undefined) return { unavailable: `DescribeAccountAttributes has no ${QUOTA_NAMES[kind]} quota` };
    return { used: quota.Used, max: quota.Max };
  } catch (error) {
    if (isThrottling(error)) throw new ThrottledError(`RDS throttled DescribeAccountAttributes: ${awsErrorName(error)}.`, { cause: error });
    return { unavailable: `DescribeAccountAttributes failed (${awsErrorName(error) ?? 'error'})`, ...(isDenied(error) ? { denied: awsErrorName(error)! } : {}) };
  }
}

/**
 * Checks the quota before a snapshot or copy is made. Throws
 * SnapshotQuotaExceededError when no room is left (nothing is created then),
 * naming the account and region when `target` gives them; returns the usage
 * otherwise, with `warn` set at the configured threshold.
 */
export async function checkSnapshotQuota(rds: RdsApi, kind: SnapshotKind, region: string, settings: QuotaSettings, target: QuotaTarget = {}): Promise<QuotaCheck> {
  const quotaName = QUOTA_NAMES[kind];
  const reported = await fromAccountAttributes(rds, kind);
  let used: number;
  let max: number;
  let source: QuotaCheck['source'];
  let note: string | undefined;
  if ('unavailable' in reported && target.location === 'vault' && reported.denied) {
    // The vault's copier role could not read it: counting with it would compare the vault account's
    // snapshots with production's setting. Copy anyway and say so (unreadableQuota).
    return unreadableQuota(kind, region, target, `the vault copier role may not read it: ${reported.denied}`, VAULT_QUOTA_NEXT_STEP);
  }
  if ('unavailable' in reported) {
    try {
      used = await countManualSnapshots(rds, kind);
    } catch (error) {
      if (target.location === 'vault' && isDenied(error)) return unreadableQuota(kind, region, target, `the vault copier role may not count its snapshots: ${awsErrorName(error)}`, VAULT_QUOTA_NEXT_STEP);
      throw error;
    }
    max = settings.manualSnapshotQuota;
    source = 'counted';
    note = `${reported.unavailable}; counted ${used} manual snapshots and assumed a quota of ${max} (snapshots.manualSnapshotQuota).`;
  } else {
    ({ used, max } = reported);
    source = 'DescribeAccountAttributes';
  }
  const place = placeOf(region, target);
  const serviceQuota = SERVICE_QUOTA_NAMES[kind];
  const inVault = target.location === 'vault';
  if (used >= max && !target.alreadyCounted) {
    const unchanged = target.location === 'copy' ? ' Nothing was copied; the source snapshot stays.' : inVault ? ' Nothing was copied into the vault; the production snapshots stay.' : '';
    throw new SnapshotQuotaExceededError(`No room for another manual snapshot in ${place}: ${used} of ${max} ${serviceQuota} are used (${source}).${note ? ` ${note}` : ''}${unchanged}`, {
      nextStep: inVault
        ? `in the vault account${target.account ? ` ${target.account}` : ''} (${region}), a vault admin deletes manual snapshots that vault retention no longer needs, or raises '${serviceQuota}' in that account's Service Quotas (and snapshots.manualSnapshotQuota if lifeboat counts).`
        : `delete manual snapshots that retention no longer needs, or raise '${serviceQuota}' in Service Quotas${target.location === 'copy' ? ` for ${region}` : ''} (and snapshots.manualSnapshotQuota if lifeboat counts).`,
    });
  }
  const after = target.alreadyCounted ? used : used + 1;
  const percentAfter = Math.floor((after * 100) / max);
  const warn = percentAfter >= settings.quotaWarningPercent;
  const check: QuotaCheck = { quotaName, used, max, percentAfter, source, note, warn, region, ...(target.account ? { account: target.account } : {}), ...(target.location ? { location: target.location } : {}) };
  if (!warn) return check;
  const what = target.location === 'copy' || inVault ? 'copy' : 'snapshot';
  return {
    ...check,
    alert: {
      Error: 'ManualSnapshotQuotaNearlyUsed',
      Cause:
        `${serviceQuota} in ${place}: ${after} of ${max} used after this ${what} (${percentAfter}%, warning at ${settings.quotaWarningPercent}%).` +
        `${note ? ` ${note}` : ''} Next step: ${inVault ? `a vault admin tightens vault retention or raises '${serviceQuota}' in the vault account's Service Quotas` : `tighten snapshot retention or raise '${serviceQuota}' in Service Quotas`} before ${what === 'copy' ? 'copies' : 'snapshots'} start failing.`,
    },
  };
}

/** What a vault admin does when the copier role may not read the vault's quota. */
const VAULT_QUOTA_NEXT_STEP = 'a vault admin redeploys the vault stack, whose copier role grants rds:DescribeAccountAttributes for this check.';

/**
 * A quota the caller may not read (the vault copier role of a vault stack
 * deployed before it was granted rds:DescribeAccountAttributes). The copy goes
 * ahead: RDS refuses a copy past the quota itself (SnapshotQuotaExceeded,
 * reported as SnapshotQuotaExceededError), and a vault deployed by another
 * team must not stop production's copies until it is redeployed. The check
 * comes back with a warning that says so, for the quota-warning alert.
 */
function unreadableQuota(kind: SnapshotKind, region: string, target: QuotaTarget, reason: string, nextStep: string): QuotaCheck {
  const place = placeOf(region, target);
  return {
    quotaName: QUOTA_NAMES[kind],
    used: 0,
    max: 0,
    percentAfter: 0,
    source: 'unknown',
    note: reason,
    warn: true,
    region,
    ...(target.account ? { account: target.account } : {}),
    ...(target.location ? { location: target.location } : {}),
    alert: {
      Error: 'ManualSnapshotQuotaUnknown',
      Cause: `lifeboat could not check the ${SERVICE_QUOTA_NAMES[kind]} quota in ${place} (${reason}) and copied anyway; RDS refuses a copy past the quota itself. Next step: ${nextStep}`,
    },
  };
}
