import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from '../nag.ts';

export interface BackupStorageProps {
  /** Prefix for KMS alias names, e.g. the deployment name. */
  readonly aliasPrefix: string;
  /** Key prefix the backups are written under (empty or ending in `/`). */
  readonly prefix: string;
  /** An existing KMS key for envelope encryption. @default - a new key with rotation on */
  readonly envelopeKeyArn?: string;
  /** How long S3 keeps the parts of an unfinished multipart upload. @default Duration.days(1) */
  readonly abortIncompleteUploadsAfter?: Duration;
  /** How long S3 server access logs are kept. @default Duration.days(365) */
  readonly accessLogsExpiration?: Duration;
  /** @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Where backups live: the backup bucket, its access-log bucket and two KMS keys.
 *
 * Two keys, because "writers can't read" and S3 multipart uploads under SSE-KMS
 * do not mix on one key:
 *
 * - The **envelope key** wraps the data keys of the AWS Encryption SDK messages
 *   the dump writes. The dump (writer) may only `kms:GenerateDataKey`; only the
 *   restore and drill roles may `kms:Decrypt`. This layer is what keeps a writer
 *   from reading a backup.
 * - The **bucket key** is the bucket's SSE-KMS key (encryption at rest). A
 *   multipart upload under SSE-KMS needs `kms:Decrypt` as well as
 *   `kms:GenerateDataKey` on that key: S3 decrypts the upload's data key to
 *   encrypt each further part and to assemble the object (AWS re:Post knowledge
 *   center, "s3-large-file-encryption-kms-key" and "s3-multipart-kms-decrypt").
 *   So the writer gets both on this key, and only via S3 (`kms:ViaService`). That
 *   reveals nothing: the writer has no `s3:GetObject`, and the objects are
 *   envelope-encrypted ciphertext anyway.
 */
export class BackupStorage extends Construct {
  /** The backup bucket: SSE-KMS, versioned, public access blocked, TLS only. */
  public readonly bucket: s3.Bucket;
  /** Receives the backup bucket's S3 server access logs (SSE-S3: log delivery cannot use SSE-KMS). */
  public readonly accessLogsBucket: s3.Bucket;
  /** The bucket's SSE-KMS key (at-rest layer). */
  public readonly bucketKey: kms.Key;
  /** The envelope-encryption key (writers: GenerateDataKey only). */
  public readonly envelopeKey: kms.IKey;
  /** Key prefix the backups are written under. */
  public readonly prefix: string;

  constructor(scope: Construct, id: string, props: BackupStorageProps) {
    super(scope, id);
    this.prefix = props.prefix;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.envelopeKey = props.envelopeKeyArn
      ? kms.Key.fromKeyArn(this, 'EnvelopeKey', props.envelopeKeyArn)
      : new kms.Key(this, 'EnvelopeKey', {
          description: `lifeboat ${props.aliasPrefix}: envelope encryption of backups. Writers may only GenerateDataKey; restore and drill roles Decrypt.`,
          enableKeyRotation: true,
          alias: `alias/${props.aliasPrefix}/backup-envelope`,
          removalPolicy,
        });

    this.bucketKey = new kms.Key(this, 'BucketKey', {
      description: `lifeboat ${props.aliasPrefix}: SSE-KMS (at rest) of the backup bucket.`,
      enableKeyRotation: true,
      alias: `alias/${props.aliasPrefix}/backup-bucket`,
      removalPolicy,
    });

    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogsBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        {
          id: 'expire-access-logs',
          expiration: props.accessLogsExpiration ?? Duration.days(365),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy,
    });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.bucketKey,
      bucketKeyEnabled: true,
      versioned: true,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'backup-bucket/',
      lifecycleRules: [
        {
          id: 'abort-incomplete-multipart-uploads',
          abortIncompleteMultipartUploadAfter: props.abortIncompleteUploadsAfter ?? Duration.days(1),
        },
      ],
      removalPolicy,
    });
  }

  /**
   * What a backup writer needs on the bucket: create, upload parts, complete and
   * abort multipart uploads under the backup prefix, list it, and use the bucket
   * key through S3. No read, no delete.
   */
  public grantWriteBackups(grantee: iam.IGrantable): void {
    const objects = this.bucket.arnForObjects(`${this.prefix}*`);
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
      resourceArns: [objects],
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
      conditions: this.prefix ? { StringLike: { 's3:prefix': [`${this.prefix}*`] } } : undefined,
    });
    // See the class comment: Decrypt on the *bucket* key is needed for multipart
    // uploads under SSE-KMS; ViaService keeps it to S3's own use of the key.
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resourceArns: [this.bucketKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
    });
    if (grantee.grantPrincipal instanceof iam.Role) {
      acknowledge(
        grantee.grantPrincipal,
        `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${this.prefix}*]`,
        'Backup object keys are generated per run (database, backup id); the writer may create objects only under the backup prefix.',
      );
    }
  }

  /**
   * Read committed backup objects as stored (envelope-encrypted ciphertext),
   * e.g. to copy them into the vault: `s3:GetObject` under the backup prefix and
   * the bucket key through S3. Not the envelope key: the reader cannot decrypt.
   */
  public grantReadBackupObjects(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObject'], resourceArns: [this.bucket.arnForObjects(`${this.prefix}*`)] });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:Decrypt'],
      resourceArns: [this.bucketKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
    });
    if (grantee.grantPrincipal instanceof iam.Role) {
      acknowledge(
        grantee.grantPrincipal,
        `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${this.prefix}*]`,
        'Backup object keys are generated per run (database, backup id); the reader may read only objects under the backup prefix, as ciphertext.',
      );
    }
  }

  /** Envelope encryption for a writer: generate data keys, never decrypt them. */
  public grantEnvelopeEncrypt(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:GenerateDataKey'],
      resourceArns: [this.envelopeKey.keyArn],
    });
  }
}
