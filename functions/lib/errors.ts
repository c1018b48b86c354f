/**
 * Named errors. Each class name doubles as a Step Functions `ErrorEquals` value:
 * a Lambda that throws one surfaces `errorType` = the class name, so the state
 * machines can retry or route on it without parsing messages.
 *
 * Every message says what failed, where (database or backup), and what to do next.
 */
export abstract class LifeboatError extends Error {
  /** What the operator should do about it. Appended to the message. */
  readonly nextStep: string | undefined;
  /** Whether retrying the same call later may succeed (throttling, timeouts). */
  readonly retryable: boolean = false;

  constructor(message: string, options: { cause?: unknown; nextStep?: string } = {}) {
    super(options.nextStep ? `${message} Next step: ${options.nextStep}` : message, { cause: options.cause });
    this.name = new.target.name;
    this.nextStep = options.nextStep;
  }
}

/** The config (file, stack props or payload) does not match the schema. */
export class ConfigError extends LifeboatError {
  constructor(
    readonly source: string,
    readonly issues: readonly string[],
  ) {
    super(`Invalid lifeboat config in ${source}:\n  - ${issues.join('\n  - ')}`, {
      nextStep: 'fix the fields listed above; docs/config.md describes each one.',
    });
  }
}

/** Could not connect to or authenticate against the database. */
export class DatabaseConnectionError extends LifeboatError {}

/** pg_dump failed, died, or reported an error. */
export class DumpFailedError extends LifeboatError {}

/** pg_dump or pg_restore is older than the server or archive it has to handle. */
export class ToolVersionError extends LifeboatError {}

/** KMS refused to generate or decrypt a data key (disabled, missing, no grant). */
export class EncryptionKeyError extends LifeboatError {}

/** S3 refused the write or read (missing bucket, access denied). */
export class StorageError extends LifeboatError {}

/** An AWS API throttled us; Step Functions retries this with backoff. */
export class ThrottledError extends LifeboatError {
  override readonly retryable = true;
}

/** The stored object's sha256 is not the one in the manifest. */
export class ChecksumMismatchError extends LifeboatError {}

/** The encrypted stream failed authentication or its context is not the manifest's. */
export class DecryptionError extends LifeboatError {}

/** A backup or its manifest is missing or unreadable. */
export class BackupNotFoundError extends LifeboatError {}

/** pg_restore failed or reported errors. */
export class RestoreFailedError extends LifeboatError {}

/** The restored database does not match the manifest. */
export class ManifestMismatchError extends LifeboatError {
  constructor(
    message: string,
    readonly differences: readonly string[],
    options: { nextStep?: string } = {},
  ) {
    super(`${message}:\n  - ${differences.join('\n  - ')}`, {
      nextStep: options.nextStep ?? 'treat this backup as unproven; inspect the differences and run a fresh backup.',
    });
  }
}

/** A required local binary (pg_dump, initdb, moto_server ...) is not installed. */
export class MissingToolError extends LifeboatError {}

/** A restore drill ran, but the restored data failed one or more checks. */
export class DrillVerificationError extends LifeboatError {}

/** The throwaway instance is not ready for this step yet; Step Functions retries it. */
export class InstanceNotReadyError extends LifeboatError {
  override readonly retryable = true;
}

/** The throwaway instance did not become available within the drill's restore timeout. */
export class RestoreTimeoutError extends LifeboatError {}

/** Creating the throwaway instance failed, or it entered a failed state. */
export class DrillProvisioningError extends LifeboatError {}

/** Drill resources are still being deleted (an instance in `deleting` holds its subnet group); retried. */
export class TeardownIncompleteError extends LifeboatError {
  override readonly retryable = true;
}

/** A snapshot or snapshot copy ended in a failed (or otherwise terminal, unusable) state. */
export class SnapshotFailedError extends LifeboatError {}

/** A snapshot or copy did not become available within the configured wait (snapshots.maxWaitMinutes). */
export class SnapshotWaitTimeoutError extends LifeboatError {}

/** The manual snapshot quota of the account and region is used up. */
export class SnapshotQuotaExceededError extends LifeboatError {}

/** The RDS instance or Aurora cluster named in the config does not exist. */
export class SourceDatabaseNotFoundError extends LifeboatError {}

/** The snapshot to share is encrypted with the AWS managed key aws/rds, which RDS cannot share. */
export class DefaultKeyNotShareableError extends LifeboatError {}

/** The database is not encrypted and the config does not allow unencrypted snapshots. */
export class UnencryptedSnapshotRefusedError extends LifeboatError {}

/** The vault account cannot use the KMS key of the shared snapshot (its key policy does not grant the vault account). */
export class SnapshotKeyNotSharedError extends LifeboatError {}

/** The vault copier role could not be assumed, or refused the call. */
export class VaultAccessError extends LifeboatError {}

/** A copy in the vault does not match its manifest; it was marked as quarantined and not committed. */
export class VaultCopyVerificationError extends LifeboatError {}

/**
 * The source instance or cluster is busy (RDS InvalidDBInstanceState /
 * InvalidDBClusterStateFault: its backup window, a modification, a reboot), so it
 * cannot be snapshotted right now; Step Functions retries with backoff.
 */
export class SourceDatabaseBusyError extends LifeboatError {
  override readonly retryable = true;
}

/**
 * The deployment's config object (written by `cdk deploy`, named in the
 * function's environment with its sha256) is missing, unreadable, or not the
 * one this function was deployed with.
 */
export class DeploymentConfigError extends LifeboatError {}

/** `lifeboat recover --into-rds`: the new instance could not be created, did not become available, or was refused. */
export class RecoveryInstanceError extends LifeboatError {}

/** An execution named a database, plan or drill the deployed config does not have. */
export class UnknownTargetError extends LifeboatError {}

/** The operator interrupted the work (SIGINT, SIGTERM); what it had created was cleaned up. */
export class InterruptedError extends LifeboatError {
  constructor(readonly signal: 'SIGINT' | 'SIGTERM') {
    super(`Interrupted by ${signal}.`, { nextStep: 'nothing half-done was kept (staging files deleted, a database the restore created dropped); run the command again when ready.' });
  }
}
