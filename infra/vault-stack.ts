import { CfnOutput, CliCredentialsStackSynthesizer, Duration, RemovalPolicy, Stack, Tags, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { parseConfig } from '../functions/lib/config/load.ts';
import type { LifeboatConfig, LifeboatConfigInput } from '../functions/lib/config/schema.ts';
import { ConfigError } from '../functions/lib/errors.ts';
import { retentionSchedules } from '../events/schedules.ts';
import { vaultRetentionRoleArn } from '../functions/lib/retention/environment.ts';
import { TAG } from '../functions/lib/snapshots/ids.ts';
import { vaultNameIssues, vaultNames, type VaultNames } from '../functions/lib/vault/names.ts';
import { ProjectFunction, type ProjectFunctionSource } from './constructs/project-function.ts';
import { AlarmRouting } from './constructs/alarm-routing.ts';
import { Alerts } from './constructs/alerts.ts';
import { BreakGlassWatch } from './constructs/break-glass-watch.ts';
import { KeyWatch } from './constructs/key-watch.ts';
import { METRICS_NAMESPACE, SERVICE_NAMES } from '../functions/lib/metrics/names.ts';
import { VaultRetention } from './constructs/vault-retention.ts';
import { acknowledge } from './nag.ts';
import { REPO_ROOT, sourceStackName } from './source-stack.ts';

import { VAULT_BUCKET_PROTECTED_ACTIONS, VAULT_KEY_PROTECTED_ACTIONS, VAULT_SNAPSHOT_PROTECTED_ACTIONS } from '../functions/lib/vault/protections.ts';

export { VAULT_BUCKET_PROTECTED_ACTIONS, VAULT_KEY_PROTECTED_ACTIONS, VAULT_SNAPSHOT_PROTECTED_ACTIONS };

export interface VaultStackProps extends StackProps {
  /** The lifeboat config; needs `vault` and `source.account`. Validated again here. */
  readonly config: LifeboatConfigInput | LifeboatConfig;
  /**
   * Production principals allowed to assume the copier role (ArnLike patterns).
   * @default - the roles of the production source stack: `arn:aws:iam::<source.account>:role/<name>-lifeboat-source-*`
   */
  readonly copierPrincipalPatterns?: readonly string[];
  /**
   * Further vault-account roles that may still delete expired versions, besides
   * the stack's own vault retention role; Object Lock keeps refusing anything still locked.
   * @default []
   */
  readonly retentionRoleArns?: readonly string[];
  /** Code of the vault retention and alert functions. @default - the handlers bundled with the local esbuild */
  readonly code?: { readonly retention?: ProjectFunctionSource; readonly alert?: ProjectFunctionSource };
}

/**
 * The vault, in its own account and region: a versioned bucket with Object
 * Lock in compliance mode and SSE-KMS under a vault key, a KMS key for snapshot
 * copies, a recovery key production may encrypt to (never decrypt with), and
 * the copier role that production assumes to add copies, which can never
 * delete, overwrite, unlock or shorten anything. With a `retention.vault`
 * policy in any plan, also vault-side retention (VaultRetention), run by the
 * vault account alone.
 */
export class VaultStack extends Stack {
  public readonly config: LifeboatConfig;
  public readonly names: VaultNames;
  public readonly bucket: s3.Bucket;
  public readonly accessLogsBucket: s3.Bucket;
  /** SSE-KMS key of the vault bucket. */
  public readonly bucketKey: kms.Key;
  /** Encrypts the vault's snapshot copies (RDS CopyDBSnapshot KmsKeyId). */
  public readonly snapshotKey: kms.Key;
  /**
   * A second wrapping key for the dumps' data keys, owned by the vault:
   * production may only kms:Encrypt to it, so dumps that also wrap their data
   * key under it stay decryptable from the vault alone (principle 5).
   */
  public readonly recoveryKey: kms.Key;
  /** Assumed by production to copy in; no delete, overwrite, lock or key rights. */
  public readonly copierRole: iam.Role;
  /** The vault's alert topic (config.alerts.subscribers), independent of production's. */
  public readonly alerts: Alerts;
  /** Publishes the vault's alerts in the one alert format. */
  public readonly alertFunction: ProjectFunction;
  /** Routes the vault's alarms through the alert function. */
  public readonly alarmRouting: AlarmRouting;
  /** Alerts on ScheduleKeyDeletion, DisableKey, PutKeyPolicy (and tries) on the three vault keys. */
  public readonly keyWatch: KeyWatch;
  /** Alerts on every assumption of the break-glass role (and every refused try). */
  public readonly breakGlassWatch: BreakGlassWatch;
  /** Roles exempt from the bucket's and keys' deny statements: the break-glass role, then vault.adminRoleArns. */
  public readonly adminRoleArns: readonly string[];
  /**
   * Vault-side retention (present when a plan has a `retention.vault` policy):
   * its own function, role, state machine, schedules and alerts, run by the
   * vault account alone.
   */
  public readonly retention?: VaultRetention;

  constructor(scope: Construct, id: string, props: VaultStackProps) {
    const { config: input, copierPrincipalPatterns, retentionRoleArns, code, ...stackProps } = props;
    const source = `the config given to stack "${id}"`;
    const config = parseConfig(input, source);
    const vault = config.vault;
    const issues: string[] = [];
    if (!vault) issues.push('vault: the vault stack needs a vault section (account, region, retentionDays)');
    issues.push(...vaultNameIssues(config.name));
    // Every account holding databases may copy in; each must be named, and none may be the vault's.
    const sources = [
      { path: 'source', id: undefined as string | undefined, account: config.source.account },
      ...config.additionalSources.map((s, i) => ({ path: `additionalSources[${i}]`, id: s.id as string | undefined, account: s.account })),
    ];
    for (const s of sources) {
      if (!s.account) issues.push(`${s.path}.account: the vault stack needs the production account id, to let it (and only it) assume the copier role`);
      else if (vault && s.account === vault.account) issues.push(`${s.path}.account: must differ from vault.account, or the vault shares the production blast radius`);
    }
    if (!vault || issues.length > 0) throw new ConfigError(source, issues);
    const productionAccounts = [...new Set(sources.map((s) => s.account!))];

    const names = vaultNames({ name: config.name, vault });
    super(scope, id, {
      stackName: names.stackName,
      description: `lifeboat ${config.name}: the off-site vault (Object Lock, vault-owned keys, copy-in-only role) for production account(s) ${productionAccounts.join(', ')}.`,
      terminationProtection: true,
      // Deployed with the caller's own credentials, not the CDK bootstrap's roles: CloudFormation acts as the
      // deployer, so a deploy that changes a protection succeeds only as the break-glass role.
      synthesizer: new CliCredentialsStackSynthesizer(),
      ...stackProps,
      env: { account: vault.account, region: vault.region },
    });
    this.config = config;
    this.names = names;
    Tags.of(this).add('lifeboat:deployment', config.name);
    Tags.of(this).add('lifeboat:role', 'vault');

    // No deployment role is exempt from the vault's Deny statements: only the break-glass role (VaultAccessStack,
    // assumed with MFA, every use alerted) and the admins the config names may change the vault's protections.
    this.adminRoleArns = [names.breakGlassRoleArn, ...(vault.adminRoleArns ?? [])];
    const retentionRuns = retentionSchedules(config, { locations: ['vault'] });
    const ownRetentionRole = retentionRuns.length > 0 ? [vaultRetentionRoleArn(config, this.partition)!] : [];
    const deleters = [...this.adminRoleArns, ...ownRetentionRole, ...(retentionRoleArns ?? [])];

    const protectKey = (key: kms.Key) => {
      key.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'DenyKeyDestructionToAllButVaultAdmins',
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: [...VAULT_KEY_PROTECTED_ACTIONS],
          resources: ['*'],
          conditions: { ArnNotLike: { 'aws:PrincipalArn': [...this.adminRoleArns] } },
        }),
      );
      // A grant is how RDS uses the snapshot key for a copy; anyone else's grant would hand the key out.
      key.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'DenyGrantsNotForAwsServicesToAllButVaultAdmins',
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: ['kms:CreateGrant'],
          resources: ['*'],
          conditions: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false' }, ArnNotLike: { 'aws:PrincipalArn': [...this.adminRoleArns] } },
        }),
      );
    };
    const newKey = (keyId: string, alias: string, description: string) => {
      const key = new kms.Key(this, keyId, { description, alias, enableKeyRotation: true, removalPolicy: RemovalPolicy.RETAIN, pendingWindow: Duration.days(30) });
      protectKey(key);
      return key;
    };
    this.bucketKey = newKey('BucketKey', names.bucketKeyAlias, `lifeboat ${config.name} vault: SSE-KMS of the vault bucket.`);
    this.snapshotKey = newKey('SnapshotKey', names.snapshotKeyAlias, `lifeboat ${config.name} vault: encrypts the vault's RDS and Aurora snapshot copies.`);
    this.recoveryKey = newKey('RecoveryKey', names.recoveryKeyAlias, `lifeboat ${config.name} vault: recovery wrapping key for dump data keys; production may only encrypt.`);
    this.recoveryKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'ProductionMayOnlyEncrypt',
        principals: productionAccounts.map((a) => new iam.AccountPrincipal(a)),
        actions: ['kms:Encrypt', 'kms:DescribeKey'],
        resources: ['*'],
      }),
    );

    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogsBucket', {
      bucketName: names.accessLogsBucketName,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      lifecycleRules: [
        {
          id: 'expire-access-logs',
          expiration: Duration.days(Math.max(400, vault.retentionDays)),
          noncurrentVersionExpiration: Duration.days(Math.max(30, vault.retentionDays)),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // The access logs are the record of who touched the vault: the same protections as the vault bucket.
    this.accessLogsBucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyDeletesAndPolicyChangesToAllButVaultAdmins',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: [...VAULT_BUCKET_PROTECTED_ACTIONS],
        resources: [this.accessLogsBucket.bucketArn, this.accessLogsBucket.arnForObjects('*')],
        conditions: { ArnNotLike: { 'aws:PrincipalArn': [...this.adminRoleArns] } },
      }),
    );
    // Only S3's log delivery (and the vault admins) writes logs: nobody else may add or overwrite one.
    this.accessLogsBucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'OnlyLogDeliveryWrites',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject'],
        resources: [this.accessLogsBucket.arnForObjects('*')],
        conditions: { StringNotEqualsIfExists: { 'aws:PrincipalServiceName': 'logging.s3.amazonaws.com' }, ArnNotLike: { 'aws:PrincipalArn': [...this.adminRoleArns] } },
      }),
    );
    acknowledge(this.accessLogsBucket, 'AwsSolutions-S1', 'This bucket receives the vault bucket\'s server access logs; logging the log bucket itself would recurse.');

    this.bucket = new s3.Bucket(this, 'Bucket', {
      bucketName: names.bucketName,
      versioned: true,
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(vault.retentionDays)),
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.bucketKey,
      bucketKeyEnabled: true,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'vault-bucket/',
      lifecycleRules: [{ id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyDeleteUnlockAndPolicyChangesToAllButVaultAdmins',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: VAULT_BUCKET_PROTECTED_ACTIONS.filter((a) => !a.startsWith('s3:DeleteObject')),
        resources: [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
        conditions: { ArnNotLike: { 'aws:PrincipalArn': [...this.adminRoleArns] } },
      }),
    );
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyDeletesToAllButVaultAdminsAndRetention',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: VAULT_BUCKET_PROTECTED_ACTIONS.filter((a) => a.startsWith('s3:DeleteObject')),
        resources: [this.bucket.arnForObjects('*')],
        conditions: { ArnNotLike: { 'aws:PrincipalArn': deleters } },
      }),
    );
    // The vault's own alerting, which works without production: its topic, alert function and alarm routing,
    // and a watch on its keys (deletion, disabling, policy changes, and attempts at them).
    this.alerts = new Alerts(this, 'Alerts', { aliasPrefix: `lifeboat/${config.name}/vault`, subscribers: config.alerts.subscribers });
    this.alertFunction = new ProjectFunction(this, 'AlertFunction', {
      source: code?.alert ?? { kind: 'nodejs', entry: `${REPO_ROOT}/functions/alert/handler.ts`, handler: 'handler', projectRoot: REPO_ROOT },
      description: `lifeboat ${config.name} vault: publish vault alerts to SNS.`,
      serviceName: SERVICE_NAMES.alert,
      metricsNamespace: METRICS_NAMESPACE,
      timeout: Duration.seconds(30),
      memorySize: 256,
    });
    this.alertFunction.addResourceEnvironment('ALERT_TOPIC_ARN', this.alerts.topic.topicArn, (g) => this.alerts.grantPublish(g));
    this.alarmRouting = new AlarmRouting(this, 'AlarmRouting', { deploymentName: config.name, alertFunction: this.alertFunction.function, topic: this.alerts.topic });
    // Disabling the topic's key would silence every vault alert, this watch's included.
    protectKey(this.alerts.key);
    this.keyWatch = new KeyWatch(this, 'KeyWatch', {
      deploymentName: config.name,
      keyArns: [this.bucketKey.keyArn, this.snapshotKey.keyArn, this.recoveryKey.keyArn, this.alerts.key.keyArn],
      alertFunction: this.alertFunction.function,
      deadLetterQueue: this.alarmRouting.deadLetterQueue,
    });
    this.breakGlassWatch = new BreakGlassWatch(this, 'BreakGlassWatch', {
      deploymentName: config.name,
      roleArns: [...this.adminRoleArns],
      alertFunction: this.alertFunction.function,
      deadLetterQueue: this.alarmRouting.deadLetterQueue,
    });
    if (retentionRuns.length > 0) {
      const alerting = { alerts: this.alerts, alertFunction: this.alertFunction, alarmRouting: this.alarmRouting };
      this.retention = new VaultRetention(this, 'Retention', { config, bucket: this.bucket, bucketKey: this.bucketKey, runs: retentionRuns, code, projectRoot: REPO_ROOT, alerting });
    }
    // Writes must be If-None-Match: * (PutObject and CompleteMultipartUpload), so
    // nothing can be put on top of an existing key. The parts of a multipart
    // upload carry no condition header and are exempt (s3:ObjectCreationOperation false).
    // The vault retention function writes plain PUTs, and only its audit logs.
    const auditWriter = this.retention ? [this.retention.function.role.roleArn] : [];
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyOverwritingWrites',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects('*')],
        conditions: {
          Null: { 's3:if-none-match': 'true' },
          Bool: { 's3:ObjectCreationOperation': 'true' },
          ArnNotLike: { 'aws:PrincipalArn': [...this.adminRoleArns, ...auditWriter] },
        },
      }),
    );
    if (this.retention) {
      this.bucket.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'VaultRetentionWritesOnlyItsAuditLogs',
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: ['s3:PutObject'],
          notResources: [this.bucket.arnForObjects(`${config.storage.prefix}_audit/retention/*`)],
          conditions: { ArnEquals: { 'aws:PrincipalArn': auditWriter } },
        }),
      );
    }

    // What is written into the vault: STANDARD storage (a DEEP_ARCHIVE copy takes 12 hours or more to read
    // back), under the vault's bucket key only (no SSE-S3, SSE-C or another key): denied to all but the vault
    // admins when the request names anything else (absent headers mean the bucket's defaults). The proofs
    // vault retention trusts are never the copier's: `<prefix>_*` is closed to it, and the audit logs are
    // written by vault retention alone.
    const objects = this.bucket.arnForObjects('*');
    const notAdmin = { ArnNotLike: { 'aws:PrincipalArn': [...this.adminRoleArns] } };
    const present = (key: string) => ({ Null: { [key]: 'false' } });
    const writeDenies: Array<{ sid: string; conditions: Record<string, Record<string, string | string[]>>; resources?: string[] }> = [
      { sid: 'WritesOnlyStandardStorage', conditions: { ...present('s3:x-amz-storage-class'), StringNotEquals: { 's3:x-amz-storage-class': 'STANDARD' }, ...notAdmin } },
      { sid: 'WritesOnlySseKms', conditions: { ...present('s3:x-amz-server-side-encryption'), StringNotEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' }, ...notAdmin } },
      { sid: 'WritesNoSseC', conditions: { ...present('s3:x-amz-server-side-encryption-customer-algorithm'), ...notAdmin } },
      {
        sid: 'WritesOnlyUnderTheBucketKey',
        conditions: { ...present('s3:x-amz-server-side-encryption-aws-kms-key-id'), StringNotEquals: { 's3:x-amz-server-side-encryption-aws-kms-key-id': this.bucketKey.keyArn }, ...notAdmin },
      },
      { sid: 'CopierNeverWritesProofs', conditions: { ArnEquals: { 'aws:PrincipalArn': names.copierRoleArn } }, resources: [this.bucket.arnForObjects(`${config.storage.prefix}_*`)] },
      {
        sid: 'DrillReportsOnlyByVaultAdmins',
        conditions: { ArnNotLike: { 'aws:PrincipalArn': [...this.adminRoleArns] } },
        resources: [this.bucket.arnForObjects(`${config.storage.prefix}_drills/*`)],
      },
      {
        sid: 'AuditLogsOnlyByVaultRetention',
        conditions: { ArnNotLike: { 'aws:PrincipalArn': [...this.adminRoleArns, ...auditWriter] } },
        resources: [this.bucket.arnForObjects(`${config.storage.prefix}_audit/*`)],
      },
    ];
    for (const { sid, conditions, resources } of writeDenies) {
      this.bucket.addToResourcePolicy(new iam.PolicyStatement({ sid, effect: iam.Effect.DENY, principals: [new iam.AnyPrincipal()], actions: ['s3:PutObject'], resources: resources ?? [objects], conditions }));
    }

    const patterns =
      copierPrincipalPatterns ?? sources.map((s) => `arn:${this.partition}:iam::${s.account}:role/${sourceStackName(config, s.id)}-*`);
    this.copierRole = new iam.Role(this, 'CopierRole', {
      roleName: names.copierRoleName,
      description: `lifeboat ${config.name}: production copies dumps and snapshots into the vault. No delete, overwrite, lock or key rights.`,
      assumedBy: new iam.CompositePrincipal(...productionAccounts.map((a) => new iam.AccountPrincipal(a))).withConditions({ ArnLike: { 'aws:PrincipalArn': [...patterns] } }),
      maxSessionDuration: Duration.hours(1),
    });
    this.grantCopyIn(this.copierRole, productionAccounts);
    this.copierRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'NeverDeleteUnlockOrReshare',
        effect: iam.Effect.DENY,
        actions: [...VAULT_BUCKET_PROTECTED_ACTIONS, ...VAULT_KEY_PROTECTED_ACTIONS, ...VAULT_SNAPSHOT_PROTECTED_ACTIONS],
        resources: ['*'],
      }),
    );

    new CfnOutput(this, 'VaultBucketName', { value: this.bucket.bucketName, description: 'The vault bucket (Object Lock, compliance mode).' });
    new CfnOutput(this, 'CopierRoleArn', { value: this.copierRole.roleArn, description: 'Role production assumes to copy into the vault.' });
    new CfnOutput(this, 'SnapshotKeyArn', { value: this.snapshotKey.keyArn, description: 'KMS key of the vault snapshot copies.' });
    if (this.retention) {
      new CfnOutput(this, 'RetentionStateMachineArn', { value: this.retention.stateMachine.stateMachine.stateMachineArn, description: 'Vault-side retention (run by the vault account only).' });
    }
    new CfnOutput(this, 'RecoveryKeyArn', { value: this.recoveryKey.keyArn, description: 'Vault-owned wrapping key production may encrypt to.' });
  }

  /** What the copier needs: add (and read back) objects, copy shared snapshots in under the snapshot key. */
  private grantCopyIn(role: iam.Role, productionAccounts: readonly string[]): void {
    const { region, account, partition } = this;
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'AddObjects',
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts', 's3:GetObject', 's3:GetObjectVersion'],
        resources: [this.bucket.arnForObjects('*')],
      }),
    );
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ListVault', actions: ['s3:ListBucket', 's3:ListBucketVersions'], resources: [this.bucket.bucketArn] }));
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'BucketKeyThroughS3',
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [this.bucketKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${region}.amazonaws.com` } },
      }),
    );
    const vaultSnapshots = [`arn:${partition}:rds:${region}:${account}:snapshot:lifeboat-*`, `arn:${partition}:rds:${region}:${account}:cluster-snapshot:lifeboat-*`];
    const sharedSnapshots = productionAccounts.flatMap((a) => [`arn:${partition}:rds:${region}:${a}:snapshot:lifeboat-*`, `arn:${partition}:rds:${region}:${a}:cluster-snapshot:lifeboat-*`]);
    const productionKeys = productionAccounts.map((a) => `arn:${partition}:kms:${region}:${a}:key/*`);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'CopySharedSnapshotsIn',
        actions: ['rds:CopyDBSnapshot', 'rds:CopyDBClusterSnapshot', 'rds:AddTagsToResource', 'rds:DescribeDBSnapshots', 'rds:DescribeDBClusterSnapshots'],
        resources: [...vaultSnapshots, ...sharedSnapshots],
      }),
    );
    // A copy's lifeboat tags (its backup, plan and database: what vault retention groups by) are set when it is
    // created, never changed after: tagging a snapshot that already carries lifeboat:managed is denied.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'TagVaultCopiesOnlyOnCreate',
        effect: iam.Effect.DENY,
        actions: ['rds:AddTagsToResource'],
        resources: vaultSnapshots,
        conditions: { Null: { [`aws:ResourceTag/${TAG.managed}`]: 'false' } },
      }),
    );
    // Copies come in from production only: copying a vault copy would make a new one with the old one's
    // creation time and any tags the copier likes.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'NeverCopyVaultCopies',
        effect: iam.Effect.DENY,
        actions: ['rds:CopyDBSnapshot', 'rds:CopyDBClusterSnapshot'],
        resources: vaultSnapshots,
        conditions: { Null: { [`aws:ResourceTag/${TAG.managed}`]: 'false' } },
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SnapshotKeyForRdsCopies',
        actions: ['kms:CreateGrant', 'kms:DescribeKey'],
        resources: [this.snapshotKey.keyArn],
        conditions: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
      }),
    );
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'DescribeSnapshotKey', actions: ['kms:DescribeKey'], resources: [this.snapshotKey.keyArn] }));
    // The vault's manual snapshot quota is checked before each copy in (a read of the account's attributes).
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadSnapshotQuota', actions: ['rds:DescribeAccountAttributes'], resources: ['*'] }));
    acknowledge(role, 'AwsSolutions-IAM5[Resource::*]', 'rds:DescribeAccountAttributes has no resource-level permissions; it only reads the account\'s RDS quotas, for the manual snapshot quota check before each copy into the vault.');
    // The shared snapshot is encrypted under a production key (its policy grants
    // this account); RDS uses it on the copier's behalf only.
    const why: Array<[string, string]> = [
      [`Resource::<${this.getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/*`, 'Backup object keys are generated per run; the copier may add objects anywhere in the vault bucket but the bucket policy denies deletes, overwrites and lock changes.'],
      ...[...vaultSnapshots, ...sharedSnapshots].map((arn): [string, string] => [`Resource::${arn}`, 'Snapshot names are generated per backup (lifeboat-<database>-<backup id>); the pattern keeps the copier to lifeboat snapshots of the vault and production accounts in this region.']),
      ...productionKeys.map((arn): [string, string] => [`Resource::${arn}`, 'The production key ids are not known to the vault stack; the grant is limited to the production account, this region, and use through RDS (kms:ViaService).']),
    ];
    for (const [finding, reason] of why) acknowledge(role, `AwsSolutions-IAM5[${finding}]`, reason);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ProductionSnapshotKeysThroughRds',
        actions: ['kms:CreateGrant', 'kms:Decrypt', 'kms:DescribeKey', 'kms:ReEncryptFrom', 'kms:GenerateDataKeyWithoutPlaintext'],
        resources: productionKeys,
        conditions: { StringEquals: { 'kms:ViaService': `rds.${region}.amazonaws.com` } },
      }),
    );
  }
}
