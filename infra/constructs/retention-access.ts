import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { acknowledgeWildcardResources } from '../nag.ts';

/**
 * What retention (functions/lib/retention) needs, as grants on one backup
 * bucket and on the lifeboat snapshots of an account. The source stack gives
 * all of it to its retention function (source bucket, source and copy region);
 * the vault stack splits it: the vault retention function reads drill reports
 * and writes its audit logs, the vault retention role it assumes deletes.
 */
export interface BackupBucketScope {
  readonly bucket: s3.IBucket;
  /** The bucket's SSE-KMS key, used only through S3. */
  readonly bucketKeyArn: string;
  /** Key prefix of the backups (`storage.prefix`, empty or ending in `/`). */
  readonly prefix: string;
}

/** S3 actions retention takes on backup objects: read (manifests, retention and legal hold) and delete versions. */
export const PRUNE_OBJECT_ACTIONS = [
  's3:GetObject',
  's3:GetObjectVersion',
  's3:GetObjectRetention',
  's3:GetObjectLegalHold',
  's3:DeleteObject',
  's3:DeleteObjectVersion',
] as const;

function bucketKeyThroughS3(role: iam.Role, scope: BackupBucketScope, actions: string[]): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions,
      resources: [scope.bucketKeyArn],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(role).region}.amazonaws.com` } },
    }),
  );
}

/**
 * Plan and delete dumps: list the prefix (current objects and versions), read
 * the bucket's versioning, read and delete the objects under the prefix. The
 * `<prefix>_*` keys (audit logs `_audit/`, drill reports `_drills/`) are never
 * deletable: database ids start with a letter, so nothing else starts with `_`.
 *
 * Why one prefix grant rather than one per database: each per-database ARN
 * costs about 90 characters of the role's 10,240-character inline policy
 * budget, which a fleet of about 100 databases would use up.
 */
export function grantPruneBackups(role: iam.Role, scope: BackupBucketScope): void {
  const { bucket, prefix } = scope;
  const objects = bucket.arnForObjects(`${prefix}*`);
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['s3:ListBucket', 's3:ListBucketVersions'],
      resources: [bucket.bucketArn],
      conditions: prefix ? { StringLike: { 's3:prefix': [`${prefix}*`] } } : undefined,
    }),
  );
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetBucketVersioning'], resources: [bucket.bucketArn] }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: [...PRUNE_OBJECT_ACTIONS], resources: [objects] }));
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'NeverDeleteAuditLogsOrDrillReports',
      effect: iam.Effect.DENY,
      actions: ['s3:DeleteObject', 's3:DeleteObjectVersion'],
      resources: [bucket.arnForObjects(`${prefix}_*`)],
    }),
  );
  bucketKeyThroughS3(role, scope, ['kms:Decrypt']);
  acknowledgeWildcardResources(
    role,
    [objects],
    'Retention plans and deletes the backups of every database of the plan under the backup prefix (keys are generated per run); deleting audit logs and drill reports (`<prefix>_*`) is denied outright.',
  );
}

/** Read the drill reports (`<prefix>_drills/`): the proofs retention never deletes past. */
export function grantReadDrillReports(role: iam.Role, scope: BackupBucketScope): void {
  const { bucket, prefix } = scope;
  const reports = bucket.arnForObjects(`${prefix}_drills/*`);
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn], conditions: { StringLike: { 's3:prefix': [`${prefix}_drills/*`] } } }),
  );
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [reports] }));
  bucketKeyThroughS3(role, scope, ['kms:Decrypt']);
  acknowledgeWildcardResources(role, [reports], 'Drill reports are named per database and drill id; retention reads them all to learn which backups a drill proved.');
}

/** Write retention audit logs (`<prefix>_audit/retention/`), one object per run, database and part. */
export function grantWriteRetentionAudit(role: iam.Role, scope: BackupBucketScope): void {
  const audit = scope.bucket.arnForObjects(`${scope.prefix}_audit/retention/*`);
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [audit] }));
  bucketKeyThroughS3(role, scope, ['kms:GenerateDataKey']);
  acknowledgeWildcardResources(role, [audit], 'Audit log keys carry the date, run id, location and database; retention only adds them under the audit prefix.');
}

/**
 * Prune lifeboat's RDS and Aurora snapshots in these regions of one account:
 * list manual snapshots (no resource-level permission for a listing), read
 * their tags, and delete only `lifeboat-*` ones.
 */
export function grantPruneSnapshots(role: iam.Role, regions: readonly string[], account?: string): void {
  const stack = Stack.of(role);
  const arn = (resource: string, region: string) =>
    stack.formatArn({ service: 'rds', resource, resourceName: 'lifeboat-*', region, account: account ?? stack.account, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
  const own = [...new Set(regions)].flatMap((region) => [arn('snapshot', region), arn('cluster-snapshot', region)]);
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['rds:DescribeDBSnapshots', 'rds:DescribeDBClusterSnapshots'], resources: ['*'] }));
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['rds:ListTagsForResource', 'rds:DeleteDBSnapshot', 'rds:DeleteDBClusterSnapshot'], resources: own }),
  );
  acknowledgeWildcardResources(
    role,
    own,
    'Snapshot identifiers are generated per backup under the lifeboat- prefix; retention reads their tags and deletes only those its policy (and no drill proof) lets go.',
  );
}
