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

/** IAM's limit on role names, which the vault derives from the deployment name. */
const MAX_ROLE_NAME = 64;

/**
 * Config problems with the vault's derived names: the longest role name
 * (`<name>-lifeboat-vault-break-glass`) must fit IAM's 64 characters, or the
 * copier, retention and break-glass roles would be cut to the same name.
 */
export function vaultNameIssues(name: string): string[] {
  const longest = `${name}-lifeboat-vault-break-glass`;
  return longest.length > MAX_ROLE_NAME
    ? [`name: at most ${MAX_ROLE_NAME - (longest.length - name.length)} characters with a vault (role names such as "${longest.slice(0, 40)}..." must fit IAM's ${MAX_ROLE_NAME})`]
    : [];
}

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
