import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentials, AwsCredentialsProvider } from '../aws/clients.ts';
import { ThrottledError, VaultAccessError } from '../errors.ts';
import { awsErrorName, isThrottling } from '../snapshots/rds-errors.ts';

export type StsApi = Pick<STSClient, 'send'>;

/**
 * Production code reaches the vault only through the vault account's copier
 * role, which can add copies but never delete, overwrite or shorten anything.
 * The temporary credentials live in memory for one invocation: they are never
 * returned in a payload, logged, or put into an error message.
 */
export interface VaultRole {
  readonly roleArn: string;
  /** The vault account; the assumed identity must belong to it. */
  readonly account: string;
}

/** 64 characters of `[\w+=,.@-]`, as STS requires. */
export function roleSessionName(...parts: string[]): string {
  return ['lifeboat', ...parts]
    .join('-')
    .replace(/[^\w+=,.@-]/g, '-')
    .slice(0, 64);
}

export async function assumeVaultRole(sts: StsApi, role: VaultRole, sessionName: string): Promise<AwsCredentials> {
  let out;
  try {
    out = await sts.send(new AssumeRoleCommand({ RoleArn: role.roleArn, RoleSessionName: roleSessionName(sessionName), DurationSeconds: 1800 }));
  } catch (error) {
    if (isThrottling(error)) throw new ThrottledError(`STS throttled AssumeRole on the vault copier role ${role.roleArn}.`, { cause: error });
    throw new VaultAccessError(`Could not assume the vault copier role ${role.roleArn}: ${awsErrorName(error) ?? 'error'}.`, {
      cause: error,
      nextStep: "deploy the vault stack in the vault account and check that its copier role's trust policy names this production account and role.",
    });
  }
  const credentials = out.Credentials;
  const assumedAccount = out.AssumedRoleUser?.Arn?.split(':')[4];
  if (!credentials?.AccessKeyId || !credentials.SecretAccessKey) {
    throw new VaultAccessError(`AssumeRole on ${role.roleArn} returned no credentials.`);
  }
  if (assumedAccount && assumedAccount !== role.account) {
    throw new VaultAccessError(`The vault copier role ${role.roleArn} belongs to account ${assumedAccount}, not the vault account ${role.account}.`, {
      nextStep: 'fix vault.account in the config or the copier role ARN.',
    });
  }
  return {
    accessKeyId: credentials.AccessKeyId,
    secretAccessKey: credentials.SecretAccessKey,
    sessionToken: credentials.SessionToken,
    expiration: credentials.Expiration,
  };
}

/** Renew assumed credentials this long before they expire (the SDK's own margin is 5 minutes). */
export const RENEW_BEFORE_EXPIRY_MS = 10 * 60_000;

/**
 * The vault role's credentials for work that may outlast one session (a
 * vault copy on Fargate runs for hours; an assumed role's session lasts at
 * most an hour, and lifeboat asks for 30 minutes): assumes the role now, so
 * a denied role fails at once with VaultAccessError, then hands the SDK a
 * provider that assumes it again shortly before each session expires.
 */
export async function renewingVaultCredentials(sts: StsApi, role: VaultRole, sessionName: string, now: () => number = Date.now): Promise<AwsCredentialsProvider> {
  let current = await assumeVaultRole(sts, role, sessionName);
  let renewing: Promise<AwsCredentials> | undefined;
  return async () => {
    const expires = current.expiration?.getTime();
    if (expires === undefined || expires - now() > RENEW_BEFORE_EXPIRY_MS) return current;
    renewing ??= assumeVaultRole(sts, role, sessionName).then(
      (fresh) => ((current = fresh), (renewing = undefined), fresh),
      (error: unknown) => {
        renewing = undefined;
        throw error;
      },
    );
    return renewing;
  };
}
