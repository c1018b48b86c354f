import type { LifeboatConfig } from '../functions/lib/config/schema.ts';
import { vaultRetentionRoleArn } from '../functions/lib/retention/environment.ts';
import { TAG } from '../functions/lib/snapshots/ids.ts';
import { VAULT_BUCKET_PROTECTED_ACTIONS, VAULT_SNAPSHOT_PROTECTED_ACTIONS } from '../functions/lib/vault/protections.ts';
import { vaultNames } from '../functions/lib/vault/names.ts';

/** AWS Organizations' limit on one service control policy, in characters. */
export const SCP_MAX_CHARACTERS = 5120;

export interface PolicyDocument {
  readonly Version: '2012-10-17';
  readonly Statement: readonly Record<string, unknown>[];
}

/**
 * A service control policy for the vault account (attach it to the account or
 * its OU from the organization's management account; `lifeboat vault-scp`
 * prints it). The vault's bucket and key policies already refuse every
 * principal but the break-glass role and vault.adminRoleArns; an SCP binds
 * what those policies cannot: the account's root user (who may always rewrite
 * a bucket policy), RDS snapshot copies (which have no resource policy), the
 * vault's roles, functions and alerting (by the deployment's tag), the
 * break-glass role itself (MFA, the vault region's STS endpoint), new IAM
 * users and MFA devices, the deploy assets, the trail, and leaving the
 * organization (which would drop the SCP).
 */
export function vaultAccountScp(config: Pick<LifeboatConfig, 'name' | 'vault'>, partition = 'aws'): PolicyDocument {
  const vault = config.vault;
  if (!vault) throw new Error('vault-scp: the config has no vault section.');
  const names = vaultNames({ name: config.name, vault }, partition);
  const admins = [names.breakGlassRoleArn, ...(vault.adminRoleArns ?? [])];
  const notAdmin = { ArnNotLike: { 'aws:PrincipalArn': admins } };
  const retention = vaultRetentionRoleArn(config, partition)!;
  const buckets = [names.bucketName, names.accessLogsBucketName].map((b) => `arn:${partition}:s3:::${b}`);
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'VaultBucketSettingsOnlyByBreakGlass',
        Effect: 'Deny',
        Action: VAULT_BUCKET_PROTECTED_ACTIONS.filter((a) => a.startsWith('s3:PutBucket') || a.startsWith('s3:DeleteBucket') || /Configuration$/.test(a)),
        Resource: buckets,
        Condition: notAdmin,
      },
      {
        Sid: 'VaultSnapshotsOnlyByBreakGlassOrRetention',
        Effect: 'Deny',
        Action: [...VAULT_SNAPSHOT_PROTECTED_ACTIONS, 'rds:AddTagsToResource'],
        Resource: [`arn:${partition}:rds:*:${vault.account}:snapshot:*`, `arn:${partition}:rds:*:${vault.account}:cluster-snapshot:*`],
        Condition: { StringEquals: { [`aws:ResourceTag/${TAG.managed}`]: 'true' }, ArnNotLike: { 'aws:PrincipalArn': [...admins, retention] } },
      },
      {
        // Everything the vault stacks create carries the deployment's tag (roles, functions, state machines, rules,
        // topics, queues, log groups): only the break-glass role may change, pass, untag or delete it. Tags, not
        // names: CloudFormation shortens generated names.
        Sid: 'VaultResourcesOnlyByBreakGlass',
        Effect: 'Deny',
        Action: [
          'iam:UpdateAssumeRolePolicy', 'iam:AttachRolePolicy', 'iam:DetachRolePolicy', 'iam:PutRolePolicy', 'iam:DeleteRolePolicy', 'iam:DeleteRole',
          'iam:UpdateRole', 'iam:PutRolePermissionsBoundary', 'iam:DeleteRolePermissionsBoundary', 'iam:TagRole', 'iam:UntagRole', 'iam:PassRole',
          'lambda:Update*', 'lambda:Delete*', 'lambda:Put*', 'lambda:AddPermission', 'lambda:RemovePermission', 'lambda:TagResource', 'lambda:UntagResource',
          'states:UpdateStateMachine', 'states:DeleteStateMachine', 'states:TagResource', 'states:UntagResource',
          'events:DeleteRule', 'events:DisableRule', 'events:PutRule', 'events:PutTargets', 'events:RemoveTargets', 'events:TagResource', 'events:UntagResource',
          'sns:DeleteTopic', 'sns:SetTopicAttributes', 'sns:AddPermission', 'sns:RemovePermission', 'sns:TagResource', 'sns:UntagResource',
          'sqs:DeleteQueue', 'sqs:PurgeQueue', 'sqs:SetQueueAttributes', 'sqs:TagQueue', 'sqs:UntagQueue',
          'logs:DeleteLogGroup', 'logs:PutRetentionPolicy', 'logs:UntagResource',
        ],
        Resource: '*',
        Condition: { StringEquals: { 'aws:ResourceTag/lifeboat:deployment': config.name }, ...notAdmin },
      },
      {
        Sid: 'BreakGlassOnlyWithMfa',
        Effect: 'Deny',
        Action: 'sts:AssumeRole',
        Resource: admins,
        Condition: { BoolIfExists: { 'aws:MultiFactorAuthPresent': 'false' } },
      },
      {
        // Through the vault region's STS endpoint only, where CloudTrail records it for the break-glass watch.
        Sid: 'BreakGlassOnlyInTheVaultRegion',
        Effect: 'Deny',
        Action: 'sts:AssumeRole',
        Resource: admins,
        Condition: { StringNotEquals: { 'aws:RequestedRegion': vault.region } },
      },
      {
        // No new IAM users, keys or MFA devices: a vault administrator could otherwise make an MFA user of their own.
        Sid: 'NoNewIdentitiesButByBreakGlass',
        Effect: 'Deny',
        Action: ['iam:CreateUser', 'iam:CreateAccessKey', 'iam:CreateLoginProfile', 'iam:UpdateLoginProfile', 'iam:CreateVirtualMFADevice', 'iam:EnableMFADevice'],
        Resource: '*',
        Condition: notAdmin,
      },
      {
        // The code the break-glass role deploys comes from the bootstrap's asset bucket.
        Sid: 'DeployAssetsOnlyByBreakGlass',
        Effect: 'Deny',
        Action: ['s3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion'],
        Resource: `arn:${partition}:s3:::cdk-*-assets-${vault.account}-${vault.region}/*`,
        Condition: notAdmin,
      },
      {
        Sid: 'KeepTheTrail',
        Effect: 'Deny',
        Action: ['cloudtrail:StopLogging', 'cloudtrail:DeleteTrail', 'cloudtrail:UpdateTrail', 'cloudtrail:PutEventSelectors'],
        Resource: '*',
        Condition: notAdmin,
      },
      { Sid: 'StayInTheOrganization', Effect: 'Deny', Action: 'organizations:LeaveOrganization', Resource: '*' },
    ],
  };
}
