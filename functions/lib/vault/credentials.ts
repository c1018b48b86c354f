import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentials } from '../aws/clients.ts';
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
