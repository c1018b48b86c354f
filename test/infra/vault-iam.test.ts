import { beforeAll, describe, expect, it } from 'vitest';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { VAULT_BUCKET_PROTECTED_ACTIONS, VAULT_KEY_PROTECTED_ACTIONS, VAULT_SNAPSHOT_PROTECTED_ACTIONS } from '../../infra/vault-stack.ts';
import { SCP_MAX_CHARACTERS, vaultAccountScp } from '../../infra/vault-scp.ts';
import { logicalIdOf, synthApp, type Synthesized } from './helpers/app.ts';
import { PRODUCTION, productionConfigJson } from './helpers/configs.ts';
import { evaluate, resourcePoliciesOf, rolesOf, TemplateResolver, type CfnTemplate, type DeployedTemplate, type EvaluatedResourcePolicy, type EvaluatedRole } from './helpers/iam-evaluator.ts';

/**
 * The vault's promise, evaluated: every dangerous action by every production
 * principal on every vault resource is denied by the policies the templates
 * deploy (identity policies, bucket and key policies, evaluated by an IAM
 * policy simulator, not walked), and the paths lifeboat needs are allowed, so
 * the table can fail both ways.
 */
const PROD = '111111111111';
const US = PRODUCTION.usAccount;
const VAULT = '222222222222';
const VAULT_REGION = 'eu-central-1';
const ADMIN = { name: 'AdministratorAccess', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] } };

let synth: Synthesized;
let sourceRoles: EvaluatedRole[];
let vaultRoles: EvaluatedRole[];
let vaultPolicies: EvaluatedResourcePolicy[];
const vaultResources: { bucket: string; logs: string; keys: Record<'bucket' | 'snapshot' | 'recovery', string> } = { bucket: '', logs: '', keys: { bucket: '', snapshot: '', recovery: '' } };

const deployedOf = (stack: Stack, physicalIds?: Record<string, string>): DeployedTemplate => ({
  template: Template.fromStack(stack).toJSON() as CfnTemplate,
  stackName: stack.stackName,
  account: stack.account,
  region: stack.region,
  physicalIds,
});

beforeAll(() => {
  synth = synthApp({ config: productionConfigJson() });
  const vault = synth.vault!;
  // The recovery key is the one the config names (deployed first, then set in the config).
  const vaultDeployed = deployedOf(vault, { [logicalIdOf(vault.recoveryKey)]: PRODUCTION.recoveryKeyArn.split('/').pop()! });
  sourceRoles = synth.stacks.flatMap((s) => rolesOf(deployedOf(s)));
  vaultRoles = rolesOf(vaultDeployed);
  vaultPolicies = resourcePoliciesOf(vaultDeployed);
  vaultResources.bucket = `arn:aws:s3:::${vault.names.bucketName}`;
  vaultResources.logs = `arn:aws:s3:::${vault.names.accessLogsBucketName}`;
  const resolver = new TemplateResolver(vaultDeployed);
  vaultResources.keys = {
    bucket: resolver.getAtt(logicalIdOf(vault.bucketKey), 'Arn'),
    snapshot: resolver.getAtt(logicalIdOf(vault.snapshotKey), 'Arn'),
    recovery: resolver.getAtt(logicalIdOf(vault.recoveryKey), 'Arn'),
  };
}, 120_000);

/** The break-glass role (the access stack's), as a session assumed with MFA uses it. */
function breakGlass(): EvaluatedRole {
  const access = synth.vaultAccess!;
  return { stack: access.stackName, logicalId: 'BreakGlassRole', arn: access.names.breakGlassRoleArn, identityPolicies: [ADMIN], managedPolicyArns: [] };
}

/** The resource policy that governs an ARN (bucket policies cover the bucket and its objects). */
function policyFor(arn: string): unknown {
  const matches = (pattern: string) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(arn);
  return vaultPolicies.find((p) => p.arns.some(matches))?.policy;
}

/** Production's principals: every role of every source stack, its CDK deployment role and an account administrator, and the copier role as production assumes it. */
function productionPrincipals() {
  const admins = [PROD, US].flatMap((account) => [
    { name: `cdk-cfn-exec-role (${account})`, arn: `arn:aws:iam::${account}:role/cdk-hnb659fds-cfn-exec-role-${account}-eu-west-1`, identityPolicies: [ADMIN] },
    { name: `account administrator (${account})`, arn: `arn:aws:iam::${account}:role/OrganizationAccountAccessRole`, identityPolicies: [ADMIN] },
  ]);
  const copier = vaultRoles.find((r) => r.logicalId.startsWith('CopierRole'))!;
  return [
    ...sourceRoles.map((r) => ({ name: `${r.stack}/${r.logicalId}`, arn: r.arn, identityPolicies: r.identityPolicies })),
    ...admins,
    { name: 'vault copier role (assumed by production)', arn: copier.arn, identityPolicies: copier.identityPolicies },
  ];
}

const OBJECT_ACTION = /^s3:(DeleteObject|PutObject|BypassGovernanceRetention|GetObject|RestoreObject)/;
const s3Target = (bucketArn: string, action: string) => (OBJECT_ACTION.test(action) ? `${bucketArn}/backups/orders/20261207T030000Z-abc123/dump.enc` : bucketArn);
/** A new object, written as lifeboat writes: If-None-Match: * on a creating call. */
const NEW_OBJECT = { 's3:if-none-match': '*', 's3:ObjectCreationOperation': 'true' };
const vaultSnapshot = `arn:aws:rds:${VAULT_REGION}:${VAULT}:snapshot:lifeboat-orders-20261207t030000z-abc123`;
const vaultClusterSnapshot = `arn:aws:rds:${VAULT_REGION}:${VAULT}:cluster-snapshot:lifeboat-ledger-20261207t030000z-abc123`;
const snapshotTarget = (action: string) => (/Cluster/.test(action) ? vaultClusterSnapshot : vaultSnapshot);

/** Every dangerous request on a vault resource. */
function dangerousRequests(): { action: string; resource: string; context?: Record<string, string | string[]> }[] {
  const bucketActions = [...VAULT_BUCKET_PROTECTED_ACTIONS];
  // (RetireGrant is decided by the grant itself, not by policies: KMS lets only its retiring or grantee principal retire it.)
  const keyActions = [...VAULT_KEY_PROTECTED_ACTIONS, 'kms:CreateGrant'];
  return [
    ...bucketActions.flatMap((action) => [vaultResources.bucket, vaultResources.logs].map((b) => ({ action, resource: s3Target(b, action) }))),
    // Overwriting an existing key (a PUT without If-None-Match).
    { action: 's3:PutObject', resource: s3Target(vaultResources.bucket, 's3:PutObject'), context: { 's3:ObjectCreationOperation': 'true' } },
    // New objects that wreck the RTO, escape the vault's key, or forge the proofs vault retention trusts.
    ...[
      { 's3:x-amz-storage-class': 'DEEP_ARCHIVE' },
      { 's3:x-amz-storage-class': 'GLACIER' },
      { 's3:x-amz-server-side-encryption': 'AES256' },
      { 's3:x-amz-server-side-encryption-customer-algorithm': 'AES256' },
      { 's3:x-amz-server-side-encryption': 'aws:kms', 's3:x-amz-server-side-encryption-aws-kms-key-id': `arn:aws:kms:${VAULT_REGION}:${PROD}:key/11111111-2222-3333-4444-555555555555` },
    ].map((headers) => ({ action: 's3:PutObject', resource: s3Target(vaultResources.bucket, 's3:PutObject'), context: { ...NEW_OBJECT, ...headers } })),
    ...['backups/_drills/orders/20261207T040000Z-abc123.json', 'backups/_audit/retention/2026/12/07/x.vault.orders.jsonl'].map((key) => ({ action: 's3:PutObject', resource: `${vaultResources.bucket}/${key}`, context: NEW_OBJECT })),
    // Adding to (or overwriting) the access logs, the record of who touched the vault.
    { action: 's3:PutObject', resource: `${vaultResources.logs}/vault-bucket/2026-12-07-03-14-00-ABCDEF`, context: NEW_OBJECT },
    // A multipart upload's first call (CreateMultipartUpload carries the headers, not If-None-Match).
    { action: 's3:PutObject', resource: s3Target(vaultResources.bucket, 's3:PutObject'), context: { 's3:ObjectCreationOperation': 'false', 's3:x-amz-storage-class': 'DEEP_ARCHIVE' } },
    ...keyActions.flatMap((action) => Object.values(vaultResources.keys).map((resource) => ({ action, resource }))),
    // Reading what the recovery key protects.
    { action: 'kms:Decrypt', resource: vaultResources.keys.recovery },
    ...VAULT_SNAPSHOT_PROTECTED_ACTIONS.flatMap((action) => (action === 'rds:RemoveTagsFromResource' ? [vaultSnapshot, vaultClusterSnapshot] : [snapshotTarget(action)]).map((resource) => ({ action, resource }))),
    // Copying an existing vault copy (a new copy with the old one's creation time and any tags).
    ...[['rds:CopyDBSnapshot', vaultSnapshot], ['rds:CopyDBClusterSnapshot', vaultClusterSnapshot]].map(([action, resource]) => ({ action: action!, resource: resource!, context: { 'aws:ResourceTag/lifeboat:managed': 'true' } })),
    // Changing the membership of an existing vault copy (its lifeboat tags).
    ...[vaultSnapshot, vaultClusterSnapshot].map((resource) => ({ action: 'rds:AddTagsToResource', resource, context: { 'aws:ResourceTag/lifeboat:managed': 'true', 'aws:ResourceTag/lifeboat:backup-id': '20261207T030000Z-abc123' } })),
  ];
}

describe('the vault against every production principal (IAM policy simulator over the synthesized templates)', () => {
  it('denies every dangerous action on every vault resource to every production principal', async () => {
    // Act
    const allowed: string[] = [];
    const principals = productionPrincipals();
    for (const principal of principals) {
      for (const request of dangerousRequests()) {
        const account = request.resource.startsWith('arn:aws:s3') ? VAULT : request.resource.split(':')[4]!;
        const decision = await evaluate({ principal, action: request.action, resource: request.resource, resourceAccount: account, resourcePolicy: policyFor(request.resource), context: request.context });
        if (decision === 'Allowed') allowed.push(`${principal.name}: ${request.action} on ${request.resource}${request.context ? ` ${JSON.stringify(request.context)}` : ''}`);
      }
    }

    // Assess
    expect(principals.length).toBeGreaterThan(20);
    expect(allowed).toEqual([]);
  });

  it('allows what lifeboat needs: the copier adds objects and snapshot copies, production wraps keys to the recovery key, vault retention deletes', async () => {
    // Prepare
    const copier = vaultRoles.find((r) => r.logicalId.startsWith('CopierRole'))!;
    const retention = vaultRoles.find((r) => r.logicalId.startsWith('RetentionRetentionRole'))!;
    const dumpRole = sourceRoles.find((r) => r.stack.endsWith('-lifeboat-source') && r.logicalId.startsWith('DumpFunction'))!;
    const vaultAdmin = breakGlass();
    const object = s3Target(vaultResources.bucket, 's3:PutObject');
    const cases: { who: EvaluatedRole; action: string; resource: string; context?: Record<string, string | string[]> }[] = [
      { who: copier, action: 's3:PutObject', resource: object, context: NEW_OBJECT },
      // The same with the headers spelled out as the defaults they are.
      { who: copier, action: 's3:PutObject', resource: object, context: { ...NEW_OBJECT, 's3:x-amz-storage-class': 'STANDARD', 's3:x-amz-server-side-encryption': 'aws:kms', 's3:x-amz-server-side-encryption-aws-kms-key-id': vaultResources.keys.bucket } },
      // A multipart upload's parts carry no headers.
      { who: copier, action: 's3:PutObject', resource: object, context: { 's3:ObjectCreationOperation': 'false' } },
      { who: copier, action: 'rds:CopyDBSnapshot', resource: vaultSnapshot },
      // Tags set with the copy: the new snapshot has no tags yet.
      { who: copier, action: 'rds:AddTagsToResource', resource: vaultSnapshot, context: { 'aws:RequestTag/lifeboat:managed': 'true', 'aws:TagKeys': ['lifeboat:managed', 'lifeboat:backup-id'] } },
      { who: copier, action: 'kms:CreateGrant', resource: vaultResources.keys.snapshot, context: { 'kms:GrantIsForAWSResource': 'true' } },
      { who: retention, action: 's3:DeleteObjectVersion', resource: object },
      // S3 delivers the vault bucket's access logs.
      { who: { stack: 'aws', logicalId: 'S3 log delivery', arn: 'logging.s3.amazonaws.com', identityPolicies: [], managedPolicyArns: [] }, action: 's3:PutObject', resource: `${vaultResources.logs}/vault-bucket/2026-12-07-03-14-00-ABCDEF`, context: { 'aws:SourceArn': vaultResources.bucket, 'aws:SourceAccount': VAULT } },
      // A vault admin (the break-glass role) writes a vault drill report (lifeboat drill with vault credentials),
      // and changes the vault's protections (a vault deploy runs as it).
      { who: vaultAdmin, action: 's3:PutObject', resource: `${vaultResources.bucket}/backups/_drills/orders/20261207T040000Z-abc123.json`, context: NEW_OBJECT },
      { who: vaultAdmin, action: 's3:PutBucketPolicy', resource: vaultResources.bucket },
      ...Object.values(vaultResources.keys).map((resource) => ({ who: vaultAdmin, action: 'kms:PutKeyPolicy', resource })),
      { who: dumpRole, action: 'kms:Encrypt', resource: vaultResources.keys.recovery },
    ];
    expect(cases.every((c) => c.who !== undefined)).toBe(true);

    // Act
    const decisions = [];
    for (const c of cases) {
      const account = c.resource.startsWith('arn:aws:s3') ? VAULT : c.resource.split(':')[4]!;
      decisions.push(`${c.who.logicalId}: ${c.action} ${await evaluate({ principal: c.who, action: c.action, resource: c.resource, resourceAccount: account, resourcePolicy: policyFor(c.resource), context: c.context })}`);
    }

    // Assess
    expect(decisions).toEqual(cases.map((c) => `${c.who.logicalId}: ${c.action} Allowed`));
  });

  it("denies the vault's protections to every vault-account principal but the break-glass role and its named admins: its own roles, the CDK deployment roles and an account administrator", async () => {
    // Prepare: the vault stack's roles (retention may delete expired objects: that is its job) and an in-account administrator.
    const principals = [
      ...vaultRoles.map((r) => ({
        name: `${r.stack}/${r.logicalId}`,
        arn: r.arn,
        identityPolicies: r.identityPolicies,
        deletes: r.logicalId.startsWith('RetentionRetentionRole'),
        writesAudit: r.logicalId.startsWith('RetentionFunctionRole'),
      })),
      { name: 'vault-account administrator (not a vault admin)', arn: `arn:aws:iam::${VAULT}:role/PlatformAdmin`, identityPolicies: [ADMIN], deletes: false, writesAudit: false },
      // The vault account's CDK roles (if it was bootstrapped) are exempt from nothing: deploys run as the break-glass role.
      ...['cfn-exec-role', 'deploy-role'].map((role) => ({ name: `vault CDK ${role}`, arn: `arn:aws:iam::${VAULT}:role/cdk-hnb659fds-${role}-${VAULT}-${VAULT_REGION}`, identityPolicies: [ADMIN], deletes: false, writesAudit: false })),
    ];
    // Bucket and key protections (resource policies govern them; RDS snapshots have none, see docs/security.md).
    const requests = dangerousRequests().filter((r) => !r.resource.startsWith('arn:aws:rds') && !(r.action === 'kms:Decrypt'));

    // Act
    const allowed: string[] = [];
    for (const principal of principals) {
      for (const request of requests) {
        if (principal.deletes && /^s3:DeleteObject(Version)?$/.test(request.action) && request.resource.startsWith(vaultResources.bucket + '/')) continue;
        // Vault retention writes its audit logs (drill reports in the vault are written by vault admins only).
        if (principal.writesAudit && request.resource.includes('/backups/_audit/')) continue;
        const decision = await evaluate({ principal, action: request.action, resource: request.resource, resourceAccount: VAULT, resourcePolicy: policyFor(request.resource), context: request.context });
        if (decision === 'Allowed') allowed.push(`${principal.name}: ${request.action} on ${request.resource}`);
      }
    }

    // Assess
    expect(principals.length).toBeGreaterThan(5);
    expect(allowed).toEqual([]);
  });
});

describe('drill and janitor isolation in production (IAM policy simulator)', () => {
  const ACCOUNT = PROD;
  const REGION = 'eu-west-1';
  const rds = (type: string, name: string) => `arn:aws:rds:${REGION}:${ACCOUNT}:${type}:${name}`;
  const role = (prefix: string) => sourceRoles.find((r) => r.stack === 'acme-lifeboat-source' && r.logicalId.startsWith(prefix))!;
  const drillTag = { 'aws:ResourceTag/lifeboat:drill': '20261207T040000Z-abc123' };
  const run = (who: EvaluatedRole, action: string, resource: string, context?: Record<string, string | string[]>) =>
    evaluate({ principal: who, action, resource, resourceAccount: ACCOUNT, context });

  it('lets the drill function create tagged throwaways in the configured classes and change only tagged drill resources', async () => {
    // Prepare
    const drill = role('DrillFunction');
    const throwaway = rds('db', 'lifeboat-drill-20261207t040000z-abc123');
    const create = { 'aws:RequestTag/lifeboat:drill': '20261207T040000Z-abc123', 'aws:TagKeys': ['lifeboat:drill'] };

    // Act
    const decisions = {
      createTagged: await run(drill, 'rds:CreateDBInstance', throwaway, { ...create, 'rds:DatabaseClass': 'db.t4g.micro' }),
      createUntagged: await run(drill, 'rds:CreateDBInstance', throwaway, { 'rds:DatabaseClass': 'db.t4g.micro' }),
      createHugeClass: await run(drill, 'rds:CreateDBInstance', throwaway, { ...create, 'rds:DatabaseClass': 'db.r6g.16xlarge' }),
      modifyTagged: await run(drill, 'rds:ModifyDBInstance', throwaway, drillTag),
      modifyUntaggedLookalike: await run(drill, 'rds:ModifyDBInstance', throwaway),
      deleteTagged: await run(drill, 'rds:DeleteDBInstance', throwaway, drillTag),
      deleteProduction: await run(drill, 'rds:DeleteDBInstance', rds('db', 'orders-prod'), drillTag),
    };

    // Assess
    expect(decisions).toEqual({
      createTagged: 'Allowed',
      createUntagged: 'ExplicitlyDenied',
      createHugeClass: 'ExplicitlyDenied',
      modifyTagged: 'Allowed',
      modifyUntaggedLookalike: 'ImplicitlyDenied',
      deleteTagged: 'Allowed',
      deleteProduction: 'ImplicitlyDenied',
    });
  });

  it('lets the janitor delete only what carries the drill tag, never a backup named like a throwaway', async () => {
    // Prepare
    const janitor = role('JanitorFunction');
    const lookalike = rds('snapshot', 'lifeboat-drill-orders-20261207t030000z-abc123');

    // Act
    const decisions = {
      taggedInstance: await run(janitor, 'rds:DeleteDBInstance', rds('db', 'lifeboat-drill-20261207t040000z-abc123'), drillTag),
      lookalikeBackup: await run(janitor, 'rds:DeleteDBSnapshot', lookalike, { 'aws:ResourceTag/lifeboat:backup-id': '20261207T030000Z-abc123' }),
      production: await run(janitor, 'rds:DeleteDBInstance', rds('db', 'orders-prod'), drillTag),
    };

    // Assess
    expect(decisions).toEqual({ taggedInstance: 'Allowed', lookalikeBackup: 'ImplicitlyDenied', production: 'ImplicitlyDenied' });
  });
});

describe('the break-glass role and the vault account SCP (IAM policy simulator)', () => {
  const scp = () => vaultAccountScp(synth.vault!.config);
  const platformAdmin: EvaluatedRole = { stack: 'vault account', logicalId: 'PlatformAdmin', arn: `arn:aws:iam::${VAULT}:role/PlatformAdmin`, identityPolicies: [ADMIN], managedPolicyArns: [] };
  const trustPolicy = () => {
    const access = synth.vaultAccess!;
    const role = Template.fromStack(access).toJSON().Resources[logicalIdOf(access.breakGlassRole)] as { Properties: { AssumeRolePolicyDocument: unknown; MaxSessionDuration: number } };
    return role.Properties;
  };
  const assume = (who: { arn: string; identityPolicies: EvaluatedRole['identityPolicies'] }, context: Record<string, string>, withScp = false) =>
    evaluate({
      principal: who,
      action: 'sts:AssumeRole',
      resource: synth.vaultAccess!.names.breakGlassRoleArn,
      resourceAccount: VAULT,
      resourcePolicy: new TemplateResolver({ template: Template.fromStack(synth.vaultAccess!).toJSON() as CfnTemplate, stackName: synth.vaultAccess!.stackName, account: VAULT, region: VAULT_REGION }).resolve(trustPolicy().AssumeRolePolicyDocument),
      context,
      serviceControlPolicy: withScp ? scp() : undefined,
    });

  it('can be assumed only from the vault account, with a sign-in verified by MFA within the hour, for an hour at most', async () => {
    // Prepare
    const productionAdmin = { arn: `arn:aws:iam::${PROD}:role/OrganizationAccountAccessRole`, identityPolicies: [ADMIN] };
    const recentMfa = { 'aws:MultiFactorAuthPresent': 'true', 'aws:MultiFactorAuthAge': '600' };

    // Act
    const decisions = {
      vaultAdminWithMfa: await assume(platformAdmin, recentMfa),
      vaultAdminWithoutMfa: await assume(platformAdmin, { 'aws:MultiFactorAuthPresent': 'false' }),
      vaultAdminNoMfaContext: await assume(platformAdmin, {}),
      vaultAdminMfaTwoHoursOld: await assume(platformAdmin, { 'aws:MultiFactorAuthPresent': 'true', 'aws:MultiFactorAuthAge': '7200' }),
      productionAdminWithMfa: await assume(productionAdmin, recentMfa),
    };

    // Assess
    expect(decisions).toEqual({
      vaultAdminWithMfa: 'Allowed',
      vaultAdminWithoutMfa: 'ImplicitlyDenied',
      vaultAdminNoMfaContext: 'ImplicitlyDenied',
      vaultAdminMfaTwoHoursOld: 'ImplicitlyDenied',
      productionAdminWithMfa: 'ImplicitlyDenied',
    });
    expect(trustPolicy().MaxSessionDuration).toBe(3600);
  });

  it('binds vault-account administrators where no resource policy can: snapshot copies, the vault roles, the watch, the trail; the break-glass role and vault retention keep their paths', async () => {
    // Prepare
    const retention = vaultRoles.find((r) => r.logicalId.startsWith('RetentionRetentionRole'))!;
    const copier = vaultRoles.find((r) => r.logicalId.startsWith('CopierRole'))!;
    const managed = { 'aws:ResourceTag/lifeboat:managed': 'true' };
    const copierRole = synth.vault!.names.copierRoleArn;
    const watchRule = `arn:aws:events:${VAULT_REGION}:${VAULT}:rule/${synth.vault!.stackName}-BreakGlassWatchAssumeRoleCalls-ABC123`;
    const tagged = { 'aws:ResourceTag/lifeboat:deployment': 'acme' };
    const retentionFunction = `arn:aws:lambda:${VAULT_REGION}:${VAULT}:function:acme-lifeboat-vault-RetentionFunction-ABC123`;
    const retentionFunctionRole = `arn:aws:iam::${VAULT}:role/acme-lifeboat-vault-RetentionFunctionRole-ABC123`;
    const cases: { name: string; who: EvaluatedRole; action: string; resource: string; context?: Record<string, string | string[]> }[] = [
      { name: 'admin deletes a vault snapshot copy', who: platformAdmin, action: 'rds:DeleteDBSnapshot', resource: vaultSnapshot, context: managed },
      { name: 'admin deletes a vault cluster snapshot copy', who: platformAdmin, action: 'rds:DeleteDBClusterSnapshot', resource: vaultClusterSnapshot, context: managed },
      { name: 'admin re-shares a vault snapshot copy', who: platformAdmin, action: 'rds:ModifyDBSnapshotAttribute', resource: vaultSnapshot, context: managed },
      { name: 'admin retags a vault snapshot copy', who: platformAdmin, action: 'rds:AddTagsToResource', resource: vaultSnapshot, context: managed },
      { name: 'admin widens the copier role trust', who: platformAdmin, action: 'iam:UpdateAssumeRolePolicy', resource: copierRole, context: tagged },
      { name: 'admin attaches a policy to the break-glass role', who: platformAdmin, action: 'iam:AttachRolePolicy', resource: synth.vaultAccess!.names.breakGlassRoleArn, context: tagged },
      { name: 'admin passes the retention function role to a function of their own', who: platformAdmin, action: 'iam:PassRole', resource: retentionFunctionRole, context: tagged },
      { name: 'admin replaces the retention function code', who: platformAdmin, action: 'lambda:UpdateFunctionCode', resource: retentionFunction, context: tagged },
      { name: 'admin disables the break-glass watch', who: platformAdmin, action: 'events:DisableRule', resource: watchRule, context: tagged },
      { name: 'admin creates an IAM user (to give it an MFA device)', who: platformAdmin, action: 'iam:CreateUser', resource: `arn:aws:iam::${VAULT}:user/mallory` },
      { name: 'admin plants a deploy asset', who: platformAdmin, action: 's3:PutObject', resource: `arn:aws:s3:::cdk-hnb659fds-assets-${VAULT}-${VAULT_REGION}/0123abcd.zip` },
      { name: 'admin stops the trail', who: platformAdmin, action: 'cloudtrail:StopLogging', resource: `arn:aws:cloudtrail:${VAULT_REGION}:${VAULT}:trail/org` },
      { name: 'admin deletes the vault bucket policy (root could, whatever the policy says)', who: platformAdmin, action: 's3:DeleteBucketPolicy', resource: vaultResources.bucket },
      { name: 'admin takes the vault account out of the organization', who: platformAdmin, action: 'organizations:LeaveOrganization', resource: '*' },
    ];
    const allowedPaths: typeof cases = [
      { name: 'break-glass deletes a vault snapshot copy', who: breakGlass(), action: 'rds:DeleteDBSnapshot', resource: vaultSnapshot, context: managed },
      { name: 'break-glass updates the copier role trust', who: breakGlass(), action: 'iam:UpdateAssumeRolePolicy', resource: copierRole, context: tagged },
      { name: 'break-glass deploys new function code', who: breakGlass(), action: 'lambda:UpdateFunctionCode', resource: retentionFunction, context: tagged },
      { name: 'break-glass redeploys the watch', who: breakGlass(), action: 'events:PutRule', resource: watchRule, context: tagged },
      { name: 'vault retention deletes an expired snapshot copy', who: retention, action: 'rds:DeleteDBSnapshot', resource: vaultSnapshot, context: managed },
      { name: 'the copier copies a snapshot in', who: copier, action: 'rds:CopyDBSnapshot', resource: vaultSnapshot },
      { name: 'the copier tags its new copy', who: copier, action: 'rds:AddTagsToResource', resource: vaultSnapshot, context: { 'aws:RequestTag/lifeboat:managed': 'true', 'aws:TagKeys': ['lifeboat:managed'] } },
      { name: 'an admin updates a function of another application', who: platformAdmin, action: 'lambda:UpdateFunctionCode', resource: `arn:aws:lambda:${VAULT_REGION}:${VAULT}:function:billing-api`, context: { 'aws:ResourceTag/app': 'billing' } },
    ];
    const run = async (c: (typeof cases)[number], withScp: boolean) =>
      evaluate({ principal: c.who, action: c.action, resource: c.resource, resourceAccount: VAULT, context: c.context, serviceControlPolicy: withScp ? scp() : undefined });

    // Act
    const without = Object.fromEntries(await Promise.all(cases.map(async (c) => [c.name, await run(c, false)])));
    const withScp = Object.fromEntries(await Promise.all(cases.map(async (c) => [c.name, await run(c, true)])));
    const paths = Object.fromEntries(await Promise.all(allowedPaths.map(async (c) => [c.name, await run(c, true)])));

    // Assess: without the SCP an administrator can do each of these (the bucket policy case aside, which only root
    // could force); with it, none; lifeboat's own paths stay open.
    expect(without).toEqual(Object.fromEntries(cases.map((c) => [c.name, 'Allowed'])));
    expect(withScp).toEqual(Object.fromEntries(cases.map((c) => [c.name, 'ExplicitlyDenied'])));
    expect(paths).toEqual(Object.fromEntries(allowedPaths.map((c) => [c.name, 'Allowed'])));
  });

  it('refuses to assume the break-glass role without MFA or outside the vault region (where the watch would not see it) at the caller too, and fits the SCP size limit', async () => {
    // Act
    const assumeAs = (context: Record<string, string>) =>
      evaluate({ principal: platformAdmin, action: 'sts:AssumeRole', resource: synth.vaultAccess!.names.breakGlassRoleArn, resourceAccount: VAULT, context, serviceControlPolicy: scp() });
    const decisions = {
      noMfa: await assumeAs({ 'aws:MultiFactorAuthPresent': 'false', 'aws:RequestedRegion': VAULT_REGION }),
      globalEndpoint: await assumeAs({ 'aws:MultiFactorAuthPresent': 'true', 'aws:RequestedRegion': 'us-east-1' }),
      withMfaInTheVaultRegion: await assumeAs({ 'aws:MultiFactorAuthPresent': 'true', 'aws:RequestedRegion': VAULT_REGION }),
    };

    // Assess
    expect(decisions).toEqual({ noMfa: 'ExplicitlyDenied', globalEndpoint: 'ExplicitlyDenied', withMfaInTheVaultRegion: 'Allowed' });
    expect(JSON.stringify(scp()).length).toBeLessThanOrEqual(SCP_MAX_CHARACTERS);
  });
});
