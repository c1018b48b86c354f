import * as shared from '../lib/errors.ts';
import * as retention from '../lib/retention/errors.ts';

/**
 * Every named lifeboat error class. Each handler module re-exports this list so
 * that a test can load the bundle CDK deploys and check, for every name in a
 * definition's `ErrorEquals`, that the bundled class still carries it (Lambda
 * reports `error.name` as `errorType`; a minifier that renamed the class would
 * silently disable the Retry or Catch).
 */
type ErrorClass = abstract new (...args: never[]) => Error;
const candidates: unknown[] = Object.values({ ...shared, ...retention });
export const errorClasses: readonly ErrorClass[] = candidates.filter(
  (value): value is ErrorClass => typeof value === 'function' && (value as { prototype?: unknown }).prototype instanceof Error,
);
