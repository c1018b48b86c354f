import { LifeboatError } from '../errors.ts';

/**
 * Retention-specific errors. Like the shared ones in `../errors.ts`, each class
 * name doubles as a Step Functions `ErrorEquals` value.
 */

/** The planner was given input it cannot plan safely (duplicate ids, mixed locations, bad dates, bad time zone). */
export class RetentionInputError extends LifeboatError {}

/**
 * Listing or reading the backups at a location failed, so no plan was made and
 * nothing was deleted.
 */
export class RetentionListingError extends LifeboatError {
  override readonly retryable: boolean;

  constructor(
    message: string,
    options: { cause?: unknown; nextStep?: string; retryable?: boolean } = {},
  ) {
    super(message, options);
    this.retryable = options.retryable ?? false;
  }
}

/**
 * The audit log could not be written. When it is raised before any deletion
 * (the intent record), nothing was deleted; `summary` is set when it is raised
 * after deletions already happened.
 */
export class RetentionAuditError extends LifeboatError {
  constructor(
    message: string,
    readonly summary: unknown,
    options: { cause?: unknown; nextStep?: string } = {},
  ) {
    super(message, options);
  }
}
