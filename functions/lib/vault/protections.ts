/**
 * Actions that would delete, overwrite, unlock or shorten the retention of what
 * is in the vault, or take away the keys it is encrypted with. The copier role
 * gets none of them, and the bucket and key policies deny them to every
 * principal but the vault account's own admin roles.
 */
export const VAULT_BUCKET_PROTECTED_ACTIONS = [
  's3:DeleteObject',
  's3:DeleteObjectVersion',
  's3:DeleteObjectTagging',
  's3:DeleteObjectVersionTagging',
  's3:PutObjectRetention',
  's3:PutObjectLegalHold',
  's3:BypassGovernanceRetention',
  's3:PutBucketObjectLockConfiguration',
  's3:PutLifecycleConfiguration',
  's3:PutBucketVersioning',
  's3:PutBucketPolicy',
  's3:DeleteBucketPolicy',
  's3:DeleteBucket',
  's3:PutEncryptionConfiguration',
  's3:PutReplicationConfiguration',
  's3:PutBucketOwnershipControls',
  // Switching off the access logs (the trail of who read or wrote what), public access and ACLs.
  's3:PutBucketLogging',
  's3:PutBucketPublicAccessBlock',
  's3:PutBucketAcl',
  's3:PutObjectAcl',
] as const;

export const VAULT_KEY_PROTECTED_ACTIONS = [
  'kms:ScheduleKeyDeletion',
  'kms:DisableKey',
  'kms:PutKeyPolicy',
  'kms:DisableKeyRotation',
  'kms:DeleteImportedKeyMaterial',
  'kms:DeleteAlias',
  'kms:UpdateAlias',
  // Revoking the grants RDS and S3 hold, and the tags that ABAC policies may key on.
  'kms:RevokeGrant',
  'kms:TagResource',
  'kms:UntagResource',
] as const;

/** Snapshot actions the copier must never have: deleting, re-sharing (exfiltration) or untagging vault copies. */
export const VAULT_SNAPSHOT_PROTECTED_ACTIONS = [
  'rds:DeleteDBSnapshot',
  'rds:DeleteDBClusterSnapshot',
  'rds:ModifyDBSnapshotAttribute',
  'rds:ModifyDBClusterSnapshotAttribute',
  'rds:ModifyDBSnapshot',
  'rds:RemoveTagsFromResource',
] as const;
