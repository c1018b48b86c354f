import { createHash } from 'node:crypto';

/**
 * Names of the vault's resources, derived from the config alone, so the vault
 * stack (deployed in the vault account) and the production side (which only
 * needs to address them) agree without any cross-account lookup.
 */
export interface VaultNamesInput {
  /** Deployment name (`config.name`). */
  readonly name: string;
  readonly vault: { readonly account: string; readonly region: string };
}

export interface VaultNames {
  readonly stackName: string;
  /** The stack that holds the break-glass role, deployed before the vault stack. */
  readonly accessStackName: string;
  /**
   * The role that alone (with vault.adminRoleArns) may change the vault's
   * protections; it is assumed with MFA, and every assumption is alerted.
   */
  readonly breakGlassRoleName: string;
  readonly breakGlassRoleArn: string;
  readonly bucketName: string;
  readonly accessLogsBucketName: string;
  readonly copierRoleName: string;
  readonly copierRoleArn: string;
  /** Alias of the KMS key that encrypts the vault's snapshot copies. */
  readonly snapshotKeyAlias: string;
  /** Alias ARN; RDS CopyDBSnapshot accepts it as KmsKeyId. */
  readonly snapshotKeyAliasArn: string;
  readonly bucketKeyAlias: string;
  readonly recoveryKeyAlias: string;
  readonly recoveryKeyAliasArn: string;
}

const MAX_BUCKET_NAME = 63;

function bucketName(base: string, account: string, region: string): string {
  const full = `${base}-${account}-${region}`;
  if (full.length <= MAX_BUCKET_NAME) return full;
  const hash = createHash('sha256').update(base).digest('hex').slice(0, 8);
  return `lifeboat-${hash}-${account}-${region}`.slice(0, MAX_BUCKET_NAME);
}

export function vaultNames(config: VaultNamesInput, partition = 'aws'): VaultNames {
  const { account, region } = config.vault;
  const copierRoleName = `${config.name}-lifeboat-vault-copier`.slice(0, 64);
  const breakGlassRoleName = `${config.name}-lifeboat-vault-break-glass`.slice(0, 64);
  const snapshotKeyAlias = `alias/lifeboat/${config.name}/vault-snapshots`;
  const recoveryKeyAlias = `alias/lifeboat/${config.name}/vault-recovery`;
  return {
    stackName: `${config.name}-lifeboat-vault`,
    accessStackName: `${config.name}-lifeboat-vault-access`,
    breakGlassRoleName,
    breakGlassRoleArn: `arn:${partition}:iam::${account}:role/${breakGlassRoleName}`,
    bucketName: bucketName(`${config.name}-lifeboat-vault`, account, region),
    accessLogsBucketName: bucketName(`${config.name}-lifeboat-vault-logs`, account, region),
    copierRoleName,
    copierRoleArn: `arn:${partition}:iam::${account}:role/${copierRoleName}`,
    snapshotKeyAlias,
    snapshotKeyAliasArn: `arn:${partition}:kms:${region}:${account}:${snapshotKeyAlias}`,
    bucketKeyAlias: `alias/lifeboat/${config.name}/vault-bucket`,
    recoveryKeyAlias,
    recoveryKeyAliasArn: `arn:${partition}:kms:${region}:${account}:${recoveryKeyAlias}`,
  };
}
