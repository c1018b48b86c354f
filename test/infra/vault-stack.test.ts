import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import { vaultNames } from '../../functions/lib/vault/names.ts';
import { retentionPlansOf } from '../../functions/lib/retention/environment.ts';
import { DeploymentConfigObject } from '../../infra/constructs/deployment-config.ts';
import { addNagChecks, MIN_ACKNOWLEDGEMENT_REASON_LENGTH } from '../../infra/nag.ts';
import { VAULT_BUCKET_PROTECTED_ACTIONS, VAULT_KEY_PROTECTED_ACTIONS, VAULT_SNAPSHOT_PROTECTED_ACTIONS, VaultStack } from '../../infra/vault-stack.ts';
import { SourceStack } from '../../infra/source-stack.ts';
import { cdkJsonContext, exampleConfigJson, synthApp } from './helpers/app.ts';
import { prebundledCode } from './helpers/bundles.ts';
import { actionMatches, describeGrants, findGrants, statementCoversAction, statementsForRole, type CfnTemplateJson, type Grant } from './helpers/iam-walker.ts';

const PROTECTED = [...VAULT_BUCKET_PROTECTED_ACTIONS, ...VAULT_KEY_PROTECTED_ACTIONS, ...VAULT_SNAPSHOT_PROTECTED_ACTIONS];
const config = () => parseConfig(exampleConfigJson(), 'example');
const names = vaultNames({ name: 'acme', vault: { account: '222222222222', region: 'eu-central-1' } });

function synthVault(raw: unknown = exampleConfigJson(), nag = false) {
  const app = new App({ context: cdkJsonContext(), outdir: mkdtempSync(join(tmpdir(), 'lifeboat-vault-')) });
  if (nag) addNagChecks(app);
  const code = prebundledCode();
  const stack = new VaultStack(app, 'Vault', { config: raw as never, code: { retention: code.retention, alert: code.alert } });
  app.synth();
  return { app, stack, template: Template.fromStack(stack) };
}

/** The example config with a vault retention policy: the vault stack then prunes itself. */
function withVaultRetention(): Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const raw = exampleConfigJson() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  raw.plans[0].retention.vault = { keepLast: 3, daily: 30, weekly: 8, monthly: 12 };
  return raw;
}

let vault: ReturnType<typeof synthVault>;
beforeAll(() => {
  vault = synthVault(exampleConfigJson(), true);
});

const logicalId = (stack: Stack, construct: { node: { defaultChild?: unknown } }) => stack.getLogicalId(construct.node.defaultChild as never);

describe('the vault bucket', () => {
  it('is versioned, Object-Locked in compliance mode for the configured days, SSE-KMS under the vault key, TLS-only and private', () => {
    vault.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: names.bucketName,
      ObjectLockEnabled: true,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 35 } } },
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [logicalId(vault.stack, vault.stack.bucketKey), 'Arn'] } } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
    vault.template.hasResource('AWS::S3::Bucket', { Properties: { BucketName: names.bucketName }, DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });

  it('takes the retention days from the config', () => {
    const raw = exampleConfigJson() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    raw.vault.retentionDays = 400;
    synthVault(raw).template.hasResourceProperties('AWS::S3::Bucket', { ObjectLockConfiguration: { Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 400 } } } });
  });

  it('has a policy that denies deletes, unlocking, retention and policy changes, and overwriting writes to all but the break-glass role (no deployment role)', () => {
    const admins = ['arn:aws:iam::222222222222:role/acme-lifeboat-vault-break-glass'];
    const policy = Object.values(vault.template.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: { Ref: logicalId(vault.stack, vault.stack.bucket) } } }))[0]!;
    const statements = policy.Properties.PolicyDocument.Statement as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const denied = statements.filter((s) => s.Effect === 'Deny' && s.Principal?.AWS === '*' && s.Condition?.ArnNotLike);
    expect(denied.flatMap((s) => s.Action as string[]).sort()).toEqual(expect.arrayContaining([...VAULT_BUCKET_PROTECTED_ACTIONS].sort()));
    for (const s of denied) expect(s.Condition.ArnNotLike['aws:PrincipalArn']).toEqual(admins);
    expect(statements).toContainEqual(
      expect.objectContaining({ Sid: 'DenyOverwritingWrites', Effect: 'Deny', Action: 's3:PutObject', Condition: { Null: { 's3:if-none-match': 'true' }, Bool: { 's3:ObjectCreationOperation': 'true' }, ArnNotLike: { 'aws:PrincipalArn': admins } } }),
    );
    expect(statements).toContainEqual(expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
  });
});

describe('the vault keys', () => {
  it('rotate, are retained, and deny deletion, disabling and policy changes to all but the vault admins', () => {
    // The bucket, snapshot and recovery keys (the fourth encrypts the vault's alert topic).
    const all = vault.template.toJSON().Resources as Record<string, { Properties: { KeyPolicy: { Statement: unknown[] }; EnableKeyRotation: boolean }; DeletionPolicy: string }>;
    const keys = [vault.stack.bucketKey, vault.stack.snapshotKey, vault.stack.recoveryKey].map((k) => all[logicalId(vault.stack, k)]!);
    expect(Object.keys(vault.template.findResources('AWS::KMS::Key'))).toHaveLength(4);
    for (const key of keys) {
      expect(key.Properties.EnableKeyRotation).toBe(true);
      expect(key.DeletionPolicy).toBe('Retain');
      expect(key.Properties.KeyPolicy.Statement).toContainEqual(
        expect.objectContaining({ Sid: 'DenyKeyDestructionToAllButVaultAdmins', Effect: 'Deny', Principal: { AWS: '*' }, Action: [...VAULT_KEY_PROTECTED_ACTIONS].sort() }),
      );
    }
  });

  it('let production only encrypt to the recovery key', () => {
    const recovery = vault.template.toJSON().Resources[logicalId(vault.stack, vault.stack.recoveryKey)].Properties.KeyPolicy.Statement as Array<Record<string, unknown>>;
    const forProduction = recovery.filter((s) => JSON.stringify(s.Principal).includes('111111111111'));
    expect(forProduction).toEqual([expect.objectContaining({ Effect: 'Allow', Action: ['kms:DescribeKey', 'kms:Encrypt'] })]);
  });
});

describe('the copier role', () => {
  const copierId = () => logicalId(vault.stack, vault.stack.copierRole);

  it('is named from the config and may be assumed only by the production source stacks\' roles', () => {
    vault.template.hasResourceProperties('AWS::IAM::Role', {
      RoleName: names.copierRoleName,
      MaxSessionDuration: 3600,
      AssumeRolePolicyDocument: {
        Statement: [
          { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111111111111:root' }, Condition: { ArnLike: { 'aws:PrincipalArn': ['arn:aws:iam::111111111111:role/acme-lifeboat-source-*'] } } },
        ],
      },
    });
  });

  it('can add objects and copy snapshots in, and is granted no delete, overwrite-bypass, lock, retention or key-destruction action anywhere', () => {
    const template = vault.template.toJSON() as CfnTemplateJson;
    const grants = findGrants(template, copierId(), { actions: PROTECTED });
    expect(grants, describeGrants(grants)).toEqual([]);
    for (const action of ['s3:PutObject', 'rds:CopyDBSnapshot', 'rds:CopyDBClusterSnapshot', 'kms:CreateGrant', 'rds:DescribeAccountAttributes']) {
      expect(findGrants(template, copierId(), { actions: [action] }).length, action).toBeGreaterThan(0);
    }
    const deny = statementsForRole(template, copierId()).find((s) => s.statement.Effect === 'Deny' && s.statement.Resource === '*' && s.source.includes('CopierRole'));
    for (const action of PROTECTED) expect(deny && statementCoversAction(deny.statement, action), action).toBe(true);
  });
});

/**
 * The production side: every role in the source stack(s), and the copier role
 * production may assume. None may delete, unlock, shorten retention or destroy
 * keys on anything that could be a vault resource, and the only way into the
 * vault account is the copier role.
 */
describe('production-side credentials', () => {
  const vaultArns = [
    `arn:aws:s3:::${names.bucketName}`,
    `arn:aws:s3:::${names.bucketName}/backups/orders/20261121T093600Z-1a2b3c/dump.enc`,
    'arn:aws:kms:eu-central-1:222222222222:key/0b1c2d3e-0000-4000-8000-000000000000',
    names.snapshotKeyAliasArn,
    'arn:aws:rds:eu-central-1:222222222222:snapshot:lifeboat-orders-20261121t093600z-1a2b3c',
    'arn:aws:rds:eu-central-1:222222222222:cluster-snapshot:lifeboat-billing-20261121t093600z-1a2b3c',
  ];
  const glob = (pattern: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');

  /** A Resource entry rendered with the stack's own account, region and partition. */
  function render(value: unknown, stack: Stack): string {
    if (typeof value === 'string') return value;
    if (typeof value !== 'object' || value === null) return '*';
    const v = value as Record<string, unknown>;
    const pseudo: Record<string, string> = { 'AWS::AccountId': stack.account, 'AWS::Region': stack.region, 'AWS::Partition': 'aws', 'AWS::URLSuffix': 'amazonaws.com' };
    if (typeof v.Ref === 'string') return pseudo[v.Ref] ?? `\${${v.Ref}}`;
    if (Array.isArray(v['Fn::GetAtt'])) return `\${${String(v['Fn::GetAtt'][0])}}`;
    const join = v['Fn::Join'];
    if (Array.isArray(join) && Array.isArray(join[1])) return (join[1] as unknown[]).map((p) => render(p, stack)).join(String(join[0]));
    return '*';
  }
  const mayBeVault = (resource: string) => resource === '*' || (!resource.includes('${') && vaultArns.some((arn) => glob(resource).test(arn)));

  /** Grants of protected actions on anything that may be a vault resource, and every role ARN the stacks may assume. */
  function productionGrants(stacks: readonly Stack[]): { violations: string[]; assumable: string[] } {
    const violations: string[] = [];
    const assumable: string[] = [];
    for (const stack of stacks) {
      const template = Template.fromStack(stack).toJSON() as CfnTemplateJson;
      for (const [roleId, role] of Object.entries(template.Resources)) {
        if (role.Type !== 'AWS::IAM::Role') continue;
        for (const { statement, source } of statementsForRole(template, roleId)) {
          // Resource policies in this template govern production resources, not the vault's.
          if (statement.Effect !== 'Allow' || /\(AWS::(KMS::Key|S3::BucketPolicy|SNS::TopicPolicy|SQS::QueuePolicy)/.test(source)) continue;
          const resources = [statement.Resource ?? '*'].flat().map((r) => render(r, stack));
          for (const action of PROTECTED) {
            if (statementCoversAction(statement, action) && resources.some(mayBeVault)) violations.push(`${stack.stackName} ${roleId}: ${action} on ${resources.join(', ')} via ${source}`);
          }
          if ([statement.Action ?? []].flat().some((a) => actionMatches(a, 'sts:AssumeRole') || actionMatches('sts:*', a))) assumable.push(...resources);
        }
      }
    }
    return { violations, assumable: [...new Set(assumable)] };
  }

  let sources: Stack[];
  beforeAll(() => {
    // A deployment that snapshots and copies into the vault's region: the closest production gets to the vault.
    const raw = exampleConfigJson() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    raw.plans[0].snapshot = true;
    raw.snapshots = { copy: { region: 'eu-central-1', kmsKeyArn: 'arn:aws:kms:eu-central-1:111111111111:key/0b1c2d3e-0000-4000-8000-000000000001' } };
    // The production side only: the source stacks (the vault stack is the vault account's own).
    sources = synthApp({ config: raw }).app.node.children.filter((c): c is Stack => c instanceof SourceStack);
  });

  it('no source-stack role or policy grants delete or lock changes on vault resources, and the only way in is the copier role', () => {
    expect(sources.length).toBeGreaterThan(0);
    const { violations, assumable } = productionGrants(sources);
    expect(violations).toEqual([]);
    expect(assumable).toContain(names.copierRoleArn);
    expect(assumable.filter((r) => r.includes(':role/') || r === '*')).toEqual([names.copierRoleArn]);
  });

  it('the check is live: a production role that could delete vault object versions is reported', () => {
    const stack = new Stack(new App(), 'Careless', { env: { account: '111111111111', region: 'eu-west-1' } });
    const role = new Role(stack, 'Careless', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    role.addToPrincipalPolicy(new PolicyStatement({ actions: ['s3:DeleteObjectVersion'], resources: ['arn:aws:s3:::acme-lifeboat-vault-*/*'] }));
    role.addToPrincipalPolicy(new PolicyStatement({ actions: ['kms:*'], resources: ['*'] }));
    const { violations } = productionGrants([stack]);
    expect(violations.some((v) => v.includes('s3:DeleteObjectVersion'))).toBe(true);
    expect(violations.some((v) => v.includes('kms:ScheduleKeyDeletion'))).toBe(true);
  });

  it('the copier role, which production may assume, grants none of it either (checked above on the vault template)', () => {
    const grants: Grant[] = findGrants(vault.template.toJSON() as CfnTemplateJson, logicalId(vault.stack, vault.stack.copierRole), { actions: PROTECTED });
    expect(grants).toEqual([]);
  });
});

describe('vault-side retention (a plan with a vault policy)', () => {
  let pruning: ReturnType<typeof synthVault>;
  let json: CfnTemplateJson;
  const id = (construct: { node: { defaultChild?: unknown } }) => logicalId(pruning.stack, construct);
  beforeAll(() => {
    pruning = synthVault(withVaultRetention(), true);
    json = pruning.template.toJSON() as CfnTemplateJson;
  });

  it('has none without a vault policy: the example vault holds only bucket, keys, copier and its own alerting', () => {
    expect(vault.stack.retention).toBeUndefined();
    vault.template.resourceCountIs('AWS::Lambda::Function', 1);
    vault.template.resourceCountIs('AWS::StepFunctions::StateMachine', 0);
    expect(Object.keys(vault.template.findResources('AWS::Lambda::Function'))).toEqual([logicalId(vault.stack, vault.stack.alertFunction.function)]);
  });

  it('runs the retention state machine on its own schedule, for the vault location only, with routed alarms and its own alert topic', () => {
    const retention = pruning.stack.retention!;
    pruning.template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineName: 'acme-lifeboat-vault-retention', TracingConfiguration: { Enabled: true } });
    const schedules = Object.values(pruning.template.findResources('AWS::Scheduler::Schedule'));
    expect(schedules).toHaveLength(1);
    expect(schedules[0]!.Properties.Target.Arn).toEqual({ Ref: id(retention.stateMachine.stateMachine) });
    expect(JSON.parse(schedules[0]!.Properties.Target.Input as string)).toEqual({
      planId: 'nightly',
      maxConcurrency: 4,
      targets: [
        { databaseId: 'orders', location: 'vault' },
        { databaseId: 'billing', location: 'vault' },
      ],
    });
    pruning.template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'lifeboat/acme/retention-failed/vault-retention-executions' });
    pruning.template.hasResourceProperties('AWS::Events::Rule', { EventPattern: Match.objectLike({ detail: { alarmName: [{ prefix: 'lifeboat/acme/' }], state: { value: ['ALARM'] } } }) });
    pruning.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
    // The function prunes the vault bucket with the vault as its only target (no copy region).
    const env = pruning.template.findResources('AWS::Lambda::Function')[id(retention.function.function)]!.Properties.Environment.Variables as Record<string, unknown>;
    expect(env).toMatchObject({ BACKUP_BUCKET: { Ref: id(pruning.stack.bucket) }, BACKUP_PREFIX: 'backups/', VAULT_BUCKET: names.bucketName, VAULT_RETENTION_ROLE_ARN: 'arn:aws:iam::222222222222:role/acme-lifeboat-vault-retention' });
    expect(env.SNAPSHOT_COPY_REGION).toBeUndefined();
    // Its plans come from the vault stack's own config object (what the vault deployer published), hash-checked.
    expect(env.LIFEBOAT_CONFIG_SHA256).toBe(retention.config.sha256);
    expect(env.LIFEBOAT_CONFIG_BUCKET).toEqual(pruning.stack.resolve(retention.config.asset.s3BucketName));
    expect(JSON.stringify(env)).not.toContain('RETENTION_PLANS');
  });

  it('publishes a config object the vault retention function accepts, also for a plan that snapshots (stripped of its snapshot settings it was refused)', () => {
    // Prepare: a snapshot plan copied into the vault's region, with vault retention.
    const raw = withVaultRetention();
    raw.plans[0].snapshot = true;
    raw.snapshots = { copy: { region: 'eu-central-1', kmsKeyArn: 'arn:aws:kms:eu-central-1:111111111111:key/0b1c2d3e-0000-4000-8000-000000000001' } };

    // Act
    const synthesized = synthVault(raw);
    const object = synthesized.stack.retention!.config;
    const bytes = readFileSync(join(synthesized.app.outdir, object.asset.assetPath));

    // Assess: the bytes parse as the function parses them, with their hash, and hold the plans.
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(object.sha256);
    const parsed = parseConfig(JSON.parse(bytes.toString('utf8')), 'the vault config object');
    expect(retentionPlansOf(parsed).nightly!.retention.vault).toMatchObject({ keepLast: 3, daily: 30 });
  });

  it('refuses at synth a config object the functions would refuse', () => {
    const stack = new Stack(new App(), 'Broken', { env: { account: '111111111111', region: 'eu-west-1' } });
    const config = { ...parseConfig(withVaultRetention()), plans: [] } as never;
    expect(() => new DeploymentConfigObject(stack, 'Config', { config })).toThrow(/deployed config object of Broken\/Config[\s\S]*plans/);
  });

  it('deletes through the vault retention role, which only the vault retention function may assume', () => {
    const retention = pruning.stack.retention!;
    pruning.template.hasResourceProperties('AWS::IAM::Role', {
      RoleName: 'acme-lifeboat-vault-retention',
      AssumeRolePolicyDocument: { Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { AWS: { 'Fn::GetAtt': [id(retention.function.role), 'Arn'] } } }] },
    });
    // The function itself cannot delete; it may assume that role and nothing else.
    const functionRole = id(retention.function.role);
    expect(findGrants(json, functionRole, { actions: PROTECTED })).toEqual([]);
    const assumes = findGrants(json, functionRole, { actions: ['sts:AssumeRole'] });
    expect(assumes.map((g) => g.statement.Resource)).toEqual([{ 'Fn::GetAtt': [id(retention.retentionRole), 'Arn'] }]);
    // The role deletes backup versions under the prefix and lifeboat snapshots of the vault, never audit logs or drill reports, never keys or locks.
    const role = id(retention.retentionRole);
    const deletes = findGrants(json, role, { actions: ['s3:DeleteObjectVersion'] });
    expect(deletes.map((g) => g.statement.Resource)).toEqual([{ 'Fn::Join': ['', [{ 'Fn::GetAtt': [id(pruning.stack.bucket), 'Arn'] }, '/backups/*']] }]);
    const denied = statementsForRole(json, role).filter((s) => s.statement.Effect === 'Deny' && s.source.includes('RetentionRole'));
    expect(denied.map((d) => [d.statement.Action, d.statement.Resource])).toEqual([
      [['s3:DeleteObject', 's3:DeleteObjectVersion'], { 'Fn::Join': ['', [{ 'Fn::GetAtt': [id(pruning.stack.bucket), 'Arn'] }, '/backups/_*']] }],
    ]);
    const snapshots = findGrants(json, role, { actions: ['rds:DeleteDBSnapshot'] });
    expect(snapshots.flatMap((g) => [g.statement.Resource].flat())).toEqual([
      'arn:aws:rds:eu-central-1:222222222222:cluster-snapshot:lifeboat-*',
      'arn:aws:rds:eu-central-1:222222222222:snapshot:lifeboat-*',
    ]);
    const destructive = [...VAULT_KEY_PROTECTED_ACTIONS, 's3:PutObjectRetention', 's3:PutObjectLegalHold', 's3:BypassGovernanceRetention', 's3:PutBucketPolicy', 's3:PutLifecycleConfiguration', 's3:PutObject'];
    expect(findGrants(json, role, { actions: destructive })).toEqual([]);
  });

  it('lets the bucket policy exempt the retention role from the delete deny, and the function only for plain writes of its audit logs', () => {
    const policy = Object.values(pruning.template.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: { Ref: id(pruning.stack.bucket) } } }))[0]!;
    const statements = policy.Properties.PolicyDocument.Statement as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const admin = 'arn:aws:iam::222222222222:role/acme-lifeboat-vault-break-glass';
    const functionRole = { 'Fn::GetAtt': [id(pruning.stack.retention!.function.role), 'Arn'] };
    expect(statements.find((st) => st.Sid === 'DenyDeletesToAllButVaultAdminsAndRetention')!.Condition).toEqual({
      ArnNotLike: { 'aws:PrincipalArn': [admin, 'arn:aws:iam::222222222222:role/acme-lifeboat-vault-retention'] },
    });
    expect(statements.find((st) => st.Sid === 'DenyDeleteUnlockAndPolicyChangesToAllButVaultAdmins')!.Condition).toEqual({ ArnNotLike: { 'aws:PrincipalArn': [admin] } });
    expect(statements.find((st) => st.Sid === 'DenyOverwritingWrites')!.Condition.ArnNotLike).toEqual({ 'aws:PrincipalArn': [admin, functionRole] });
    expect(statements.find((st) => st.Sid === 'VaultRetentionWritesOnlyItsAuditLogs')).toEqual({
      Sid: 'VaultRetentionWritesOnlyItsAuditLogs',
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 's3:PutObject',
      NotResource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [id(pruning.stack.bucket), 'Arn'] }, '/backups/_audit/retention/*']] },
      Condition: { ArnEquals: { 'aws:PrincipalArn': [functionRole] } },
    });
  });

  it('passes cdk-nag and cfn-lint', () => {
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(pruning.app);
    expect(report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
    const file = join(mkdtempSync(join(tmpdir(), 'lifeboat-vault-lint-')), 'vault.template.json');
    writeFileSync(file, JSON.stringify(json));
    const result = spawnSync('cfn-lint', ['--format', 'parseable', '--include-checks', 'I', '--regions', 'eu-central-1', '--ignore-checks', 'I1022', 'W3005', '--', file], { encoding: 'utf8', timeout: 120_000 });
    expect(result.stdout.trim()).toBe('');
    expect(result.status).toBe(0);
  });
});

describe('synth checks', () => {
  it('passes cdk-nag AwsSolutions, with a reason on every acknowledgement', () => {
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(vault.app);
    expect(report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
    const acks = vault.app.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY).flatMap((m) => Object.values(m.data as Record<string, unknown>)));
    expect(acks.length).toBeGreaterThan(0);
    for (const reason of acks) expect(String(reason).trim().length).toBeGreaterThanOrEqual(MIN_ACKNOWLEDGEMENT_REASON_LENGTH);
  });

  it('is cfn-lint clean', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'lifeboat-vault-lint-')), 'vault.template.json');
    writeFileSync(file, JSON.stringify(vault.template.toJSON()));
    // W3005: see IGNORED_RULES in cfn-lint.test.ts (the vault's alert function, like every function CDK makes, DependsOn its role).
    const result = spawnSync('cfn-lint', ['--format', 'parseable', '--include-checks', 'I', '--regions', 'eu-central-1', '--ignore-checks', 'I1022', 'W3005', '--', file], { encoding: 'utf8', timeout: 120_000 });
    if (result.error) throw new Error(`cfn-lint could not run: ${result.error.message}; install it with pip install cfn-lint`);
    expect(result.stdout.trim()).toBe('');
    expect(result.status).toBe(0);
  });

  it('rejects a config without a vault, without a production account, or with the vault in the production account', () => {
    const noVault = exampleConfigJson() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    delete noVault.vault;
    expect(() => synthVault(noVault)).toThrow(ConfigError);
    const noAccount = exampleConfigJson() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    delete noAccount.source.account;
    expect(() => synthVault(noAccount)).toThrow(/source\.account: the vault stack needs the production account id/);
    const same = exampleConfigJson() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    same.vault.account = same.source.account;
    expect(() => synthVault(same)).toThrow(/source\.account: must differ from vault\.account/);
    const long = exampleConfigJson() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    long.name = 'a'.repeat(38);
    expect(() => synthVault(long)).toThrow(/name: at most 37 characters with a vault/);
  });

  it('is deployed to the vault account and region, named from the config', () => {
    expect(vault.stack.account).toBe('222222222222');
    expect(vault.stack.region).toBe('eu-central-1');
    expect(vault.stack.stackName).toBe(`${config().name}-lifeboat-vault`);
    vault.template.hasOutput('CopierRoleArn', Match.anyValue());
  });
});

describe('the vault access stack (break-glass role) and how the vault is deployed', () => {
  let synthesized: ReturnType<typeof synthApp>;
  beforeAll(() => {
    synthesized = synthApp({ config: exampleConfigJson() });
  }, 120_000);

  it('holds only the break-glass role: named from the config, assumable from the vault account with MFA, for an hour', () => {
    // Prepare
    const access = synthesized.vaultAccess!;
    const template = Template.fromStack(access);

    // Assess
    expect(access.stackName).toBe(names.accessStackName);
    expect({ account: access.account, region: access.region }).toEqual({ account: '222222222222', region: 'eu-central-1' });
    expect(Object.values(template.toJSON().Resources as Record<string, { Type: string }>).map((r) => r.Type)).toEqual(['AWS::IAM::Role']);
    template.hasResourceProperties('AWS::IAM::Role', {
      RoleName: 'acme-lifeboat-vault-break-glass',
      MaxSessionDuration: 3600,
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Action: 'sts:AssumeRole',
            Effect: 'Allow',
            Principal: { AWS: Match.stringLikeRegexp('^arn:aws:iam::222222222222:root$') },
            Condition: { Bool: { 'aws:MultiFactorAuthPresent': 'true' }, NumericLessThanEquals: { 'aws:MultiFactorAuthAge': '3600' } },
          }),
        ],
      },
    });
    template.hasOutput('BreakGlassRoleArn', Match.anyValue());
  });

  it('deploys the vault and its access stack with the caller\'s own credentials, never through the CDK bootstrap roles', () => {
    // Prepare
    const manifest = JSON.parse(readFileSync(join(synthesized.outdir, 'manifest.json'), 'utf8')) as { artifacts: Record<string, { type: string; properties?: { assumeRoleArn?: string; cloudFormationExecutionRoleArn?: string } }> };
    const stackArtifact = (name: string) => manifest.artifacts[name]!;

    // Assess: a CloudFormation call made with the caller's credentials acts as the caller (the break-glass role for
    // a protection change); the source stack keeps the bootstrap's roles.
    for (const name of [names.stackName, names.accessStackName]) {
      expect(stackArtifact(name).properties?.assumeRoleArn, name).toBeUndefined();
      expect(stackArtifact(name).properties?.cloudFormationExecutionRoleArn, name).toBeUndefined();
    }
    expect(stackArtifact('acme-lifeboat-source').properties?.cloudFormationExecutionRoleArn).toMatch(/cfn-exec-role/);
  });
});
