import { SecretRegistry } from '../../functions/lib/redact.ts';

/**
 * Everything the smoke test prints goes through here, its own lines and the
 * output of the `cdk` child processes alike: values it knows to be secret
 * (database passwords it read, the AWS credentials it resolved) are replaced,
 * and so is anything shaped like an AWS credential or a password assignment.
 */
const REDACTED = '[REDACTED]';

/** AWS access key ids: long-term (AKIA) and temporary (ASIA). Not secret alone, but half a credential. */
const ACCESS_KEY_ID = /\b((?:AKIA|ASIA)[A-Z0-9]{4})[A-Z0-9]{12}\b/g;
/** Secret keys and session tokens as they appear in env dumps, credential files, SDK objects and JSON. */
const CREDENTIAL_ASSIGNMENT =
  /((?:aws_secret_access_key|aws_session_token|secretAccessKey|sessionToken|SecretAccessKey|SessionToken|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN)["']?\s*[=:]\s*["']?)([A-Za-z0-9/+=]{16,})/g;

export function redactCredentials(text: string): string {
  return text.replace(ACCESS_KEY_ID, `$1${REDACTED}`).replace(CREDENTIAL_ASSIGNMENT, `$1${REDACTED}`);
}

export class SmokeOutput {
  readonly #secrets = new SecretRegistry();
  readonly #write: (text: string) => void;

  constructor(write: (text: string) => void = (text) => process.stdout.write(text)) {
    this.#write = write;
  }

  /** Remembers a value that must never be printed. */
  addSecret(value: string | undefined | null): void {
    this.#secrets.add(value);
  }

  /** The secrets known so far (for checks that an alert or report carries none). */
  secretValues(): string[] {
    return this.#secrets.values();
  }

  redact(text: string): string {
    return redactCredentials(this.#secrets.redact(text));
  }

  line(text = ''): void {
    this.#write(`${this.redact(text)}\n`);
  }

  /** A line-splitting sink for a child process's output, each line prefixed and redacted. */
  childSink(prefix: string): { write(chunk: Buffer | string): void; end(): void } {
    let pending = '';
    return {
      write: (chunk) => {
        pending += chunk.toString();
        const lines = pending.split(/\r?\n/);
        pending = lines.pop() ?? '';
        for (const l of lines) this.line(`${prefix}${l}`);
      },
      end: () => {
        if (pending) this.line(`${prefix}${pending}`);
        pending = '';
      },
    };
  }
}

/** Credentials from the environment that must never be printed, even by a child process. */
export function environmentSecrets(env: NodeJS.ProcessEnv): string[] {
  return [env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN, env.PGPASSWORD].filter((v): v is string => Boolean(v));
}

/** Registers the credentials an SDK client resolved (profile, SSO or role), so they are redacted too. */
export async function registerClientCredentials(
  output: SmokeOutput,
  client: { config: { credentials: () => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string }> } },
): Promise<void> {
  const credentials = await client.config.credentials();
  output.addSecret(credentials.secretAccessKey);
  output.addSecret(credentials.sessionToken);
}
