import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { describeCaughtError, executionUrl, formatAlert } from '../../functions/lib/alerts/format.ts';
import { redact, redactError, SecretRegistry } from '../../functions/lib/redact.ts';

describe('redaction', () => {
  it('removes every registered secret wherever it appears', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 4, maxLength: 40 }).filter((s) => s.trim().length >= 4), fc.string(), fc.string(), (secret, before, after) => {
        const registry = new SecretRegistry();
        registry.add(secret);
        expect(registry.redact(`${before}${secret}${after}${secret}`)).not.toContain(secret);
      }),
    );
  });

  it('removes passwords from connection URIs and password assignments even when unregistered', () => {
    expect(redact('postgres://app:hunter2hunter2@db:5432/x')).toBe('postgres://app:[REDACTED]@db:5432/x');
    expect(redact('PGPASSWORD=s3cr3t-value host=db')).toBe('PGPASSWORD=[REDACTED] host=db');
    expect(redact('password: "quoted secret"')).toBe('password: [REDACTED]');
  });

  it('redacts an error message, stack and cause chain', () => {
    const error = new Error('failed with pw sentinel-123', { cause: new Error('inner sentinel-123') });
    const redacted = redactError(error, ['sentinel-123']);
    expect(`${redacted.message}${redacted.stack}${(redacted.cause as Error).message}`).not.toContain('sentinel-123');
  });
});

describe('alert format', () => {
  it('has a short ASCII subject naming what, where and which plan, and a JSON details block', () => {
    const alert = formatAlert({
      kind: 'backup-failed',
      databaseId: 'orders-ü',
      planId: 'nightly',
      failure: 'DumpFailedError',
      what: 'pg_dump exited with code 1',
      nextStep: 'rerun',
      executionArn: 'arn:aws:states:eu-west-1:111111111111:execution:acme-lifeboat-backup:abc',
      details: { x: 1 },
    });
    expect(alert.subject).toBe('[lifeboat] Backup failed: database orders-?, plan nightly: DumpFailedError');
    expect(alert.subject.length).toBeLessThanOrEqual(100);
    expect(alert.message).toContain('Next step: rerun');
    expect(alert.message).toContain('https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:aws:states');
    expect(JSON.parse(alert.message.split('--- details (JSON) ---')[1]!)).toMatchObject({ kind: 'backup-failed', databaseId: 'orders-ü', details: { x: 1 } });
    expect(alert.attributes).toEqual({ kind: 'backup-failed', databaseId: 'orders-ü', planId: 'nightly' });
  });

  it('truncates long subjects to SNS limits and redacts anything that looks like a password', () => {
    const alert = formatAlert({ kind: 'drill-failed', databaseId: 'x'.repeat(200), failure: 'E', what: 'postgres://u:topsecretpw@h/db', nextStep: 'n' });
    expect(alert.subject.length).toBe(100);
    expect(alert.message).not.toContain('topsecretpw');
  });

  it('reads Lambda-shaped and plain Step Functions causes and splits the next step out', () => {
    const lambda = describeCaughtError({ Error: 'DumpFailedError', Cause: JSON.stringify({ errorType: 'DumpFailedError', errorMessage: 'pg_dump died. Next step: rerun it.' }) });
    expect(lambda).toEqual({ failure: 'DumpFailedError', what: 'pg_dump died.', nextStep: 'rerun it.' });
    expect(describeCaughtError({ Error: 'States.Timeout', Cause: 'Task timed out' })).toEqual({ failure: 'States.Timeout', what: 'Task timed out', nextStep: undefined });
    expect(executionUrl('not-an-arn')).toBeUndefined();
  });
});
