/**
 * Secrets must never reach logs, errors, events or alerts. Everything that leaves
 * the process as text passes through `redact` with the secrets known to the
 * operation, plus a generic pass for connection URIs and password assignments.
 */
const REDACTED = '[REDACTED]';

const URI_PASSWORD = /(postgres(?:ql)?:\/\/[^:/@\s]+:)([^@\s]+)(@)/gi;
const PASSWORD_ASSIGNMENT = /((?:password|passwd|pwd|PGPASSWORD)\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&"']+)/gi;

export class SecretRegistry {
  private readonly secrets = new Set<string>();

  add(secret: string | undefined | null): void {
    // Very short values would redact ordinary words; real secrets are longer.
    if (secret && secret.length >= 4) this.secrets.add(secret);
  }

  redact(text: string): string {
    return redact(text, [...this.secrets]);
  }

  values(): string[] {
    return [...this.secrets];
  }
}

export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret) out = out.split(secret).join(REDACTED);
  }
  return out.replace(URI_PASSWORD, `$1${REDACTED}$3`).replace(PASSWORD_ASSIGNMENT, `$1${REDACTED}`);
}

/** Redacts an error's message, stack and cause chain in place-safe copies. */
export function redactError(error: unknown, secrets: readonly string[]): Error {
  if (!(error instanceof Error)) return new Error(redact(String(error), secrets));
  error.message = redact(error.message, secrets);
  if (error.stack) error.stack = redact(error.stack, secrets);
  if (error.cause !== undefined) error.cause = redactError(error.cause, secrets);
  return error;
}
