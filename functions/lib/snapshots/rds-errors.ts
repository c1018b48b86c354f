import { LifeboatError, SnapshotFailedError, SnapshotQuotaExceededError, SourceDatabaseBusyError, ThrottledError } from '../errors.ts';

/**
 * RDS error names as the SDK reports them. awsQuery services put the short
 * code (`SnapshotQuotaExceeded`) on the wire and the SDK names the exception
 * class (`SnapshotQuotaExceededFault`); both spellings are matched.
 */
const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'PriorRequestNotComplete',
]);

/** The SDK error's name or wire code, e.g. `DBInstanceNotFoundFault`. */
export function awsErrorName(error: unknown): string | undefined {
  const e = error as { name?: string; Code?: string; Error?: { Code?: string } } | undefined;
  return e?.Error?.Code ?? e?.Code ?? e?.name;
}

/** Whether the error is an AWS service error with one of these names (with or without the `Fault` suffix). */
export function isAwsError(error: unknown, ...names: string[]): boolean {
  const e = error as { name?: string; Code?: string; Error?: { Code?: string } } | undefined;
  const seen = [e?.name, e?.Code, e?.Error?.Code].filter((n): n is string => typeof n === 'string').map((n) => n.replace(/(Fault|Exception)$/, ''));
  return names.some((name) => seen.includes(name.replace(/(Fault|Exception)$/, '')));
}

export function isThrottling(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const name = awsErrorName(error);
  return (name !== undefined && THROTTLING.has(name)) || e?.$metadata?.httpStatusCode === 429;
}

/**
 * The common RDS failures as named lifeboat errors: throttling (retried by Step
 * Functions), a busy source instance or cluster (RDS refuses a snapshot during
 * its automated backup, a modification or a reboot: retried with a longer
 * backoff on the create step) and a full snapshot quota. Anything else becomes a
 * SnapshotFailedError naming the action and the resource, unless it already is
 * a lifeboat error.
 */
export function classifyRdsError(error: unknown, action: string, where: string): LifeboatError {
  if (error instanceof LifeboatError) return error;
  const name = awsErrorName(error) ?? 'UnknownError';
  const message = (error as Error | undefined)?.message ?? String(error);
  if (isThrottling(error)) {
    return new ThrottledError(`RDS throttled ${action} on ${where}: ${name}.`, { cause: error });
  }
  if (isAwsError(error, 'InvalidDBInstanceState', 'InvalidDBClusterState', 'InvalidDBClusterStateFault')) {
    return new SourceDatabaseBusyError(`${where} is busy and refused ${action} (${name}): ${message}`, {
      cause: error,
      nextStep: 'nothing, if it is the automated backup window or a short maintenance: the step retries for up to an hour. If it keeps failing, check the instance or cluster status in the RDS console.',
    });
  }
  if (isAwsError(error, 'SnapshotQuotaExceeded')) {
    return new SnapshotQuotaExceededError(`RDS refused ${action} on ${where}: the manual snapshot quota of the account and region is used up (${name}).`, {
      cause: error,
      nextStep:
        "delete manual snapshots that retention no longer needs, or raise the quota ('Manual DB instance snapshots' / 'Manual DB cluster snapshots' in Service Quotas) and set snapshots.manualSnapshotQuota to match.",
    });
  }
  if (isAwsError(error, 'AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation')) {
    return new SnapshotFailedError(`Access denied while ${action} on ${where}: ${message}`, {
      cause: error,
      nextStep: 'check the IAM policy of the role making the call (the source stack grants the snapshot function its RDS and KMS actions).',
    });
  }
  return new SnapshotFailedError(`RDS ${action} failed on ${where}: ${name}: ${message}`, { cause: error });
}
