import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { vaultNames } from '../../functions/lib/vault/names.ts';
import { VaultStack } from '../../infra/vault-stack.ts';
import { smokeConfig } from '../../scripts/smoke-aws/config.ts';
import { addSmokeFixture, quietWindows } from '../../scripts/smoke-aws/fixture-stack.ts';
import { addLifeboatStacksForTeardown } from '../../scripts/smoke-aws/teardown-stacks.ts';
import { smokeConfigInput, FIXTURE } from '../unit/smoke-aws-fixtures.ts';
import { cdkJsonContext, synthApp, type Synthesized } from './helpers/app.ts';
import { prebundledCode } from './helpers/bundles.ts';

/**
 * What `npm run smoke:aws` deploys, synthesized offline: lifeboat's own stacks
 * from the config the smoke test writes (with cdk-nag, as `cdk deploy` runs
 * it), the vault as the cleanup redeploys it (termination protection lifted,
 * nothing else changed), and the smoke-only fixture stack.
 */
const RECOVERY_KEY = 'arn:aws:kms:eu-central-1:222222222222:key/0a1b2c3d-0000-4000-8000-000000000002';
const outdirs: string[] = [];
let lifeboat: Synthesized;
let vault: Template;
let vaultStack: VaultStack;

beforeAll(() => {
  // nag: true registers AwsSolutionsChecks as infra/app.ts does: synth throws on any unacknowledged finding.
  lifeboat = synthApp({ config: smokeConfig(smokeConfigInput(RECOVERY_KEY)), nag: true });
  outdirs.push(lifeboat.outdir);
  vaultStack = lifeboat.app.node.children.find((c): c is VaultStack => c instanceof VaultStack)!;
  vault = Template.fromStack(vaultStack);
});

afterAll(() => {
  for (const d of outdirs) rmSync(d, { recursive: true, force: true });
});

describe('smoke:aws lifeboat stacks', () => {
  it('synthesize offline from the smoke config with cdk-nag, a source stack and a termination-protected vault', () => {
    // Act
    const assembly = lifeboat.app.synth();

    // Assess
    expect(lifeboat.stack.stackName).toBe('smoke-test-lifeboat-source');
    expect(vaultStack.stackName).toBe('smoke-test-lifeboat-vault');
    expect(assembly.getStackByName('smoke-test-lifeboat-vault').terminationProtection).toBe(true);
  });

  it('subscribe the smoke queue to the alert topic', () => {
    // Assess
    lifeboat.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'sqs', Endpoint: FIXTURE.alertQueueArn });
  });

  it('let the operator\'s vault principal past the vault\'s delete denials, so cleanup can remove what the run made', () => {
    // Prepare
    const exempt = Match.arrayWith(['arn:aws:iam::222222222222:role/VaultAdmin', 'arn:aws:iam::222222222222:role/*/VaultAdmin']);

    // Assess
    vault.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Sid: 'DenyDeleteUnlockAndPolicyChangesToAllButVaultAdmins', Condition: { ArnNotLike: { 'aws:PrincipalArn': exempt } } })]) },
    });
    vault.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: { Statement: Match.arrayWith([Match.objectLike({ Sid: 'DenyKeyDestructionToAllButVaultAdmins', Condition: { ArnNotLike: { 'aws:PrincipalArn': exempt } } })]) },
    });
    vault.hasResourceProperties('AWS::S3::Bucket', { BucketName: vaultNames({ name: 'smoke-test', vault: { account: '222222222222', region: 'eu-central-1' } }).bucketName, ObjectLockConfiguration: { Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 1 } } } });
  });

  it('redeploy the vault for teardown with only its termination protection lifted', () => {
    // Prepare
    const outdir = mkdtempSync(join(tmpdir(), 'lifeboat-smoke-teardown-'));
    outdirs.push(outdir);
    const app = new App({ outdir, context: cdkJsonContext(), builtinCloudFormationValidation: false });
    const config = parseConfig(smokeConfig(smokeConfigInput(RECOVERY_KEY)), 'smoke config');

    // Act
    const stacks = addLifeboatStacksForTeardown(app, { config, nag: false, code: prebundledCode() });
    const assembly = app.synth();

    // Assess
    expect(assembly.getStackByName('smoke-test-lifeboat-vault').terminationProtection).toBe(false);
    const strip = (t: Template) => JSON.stringify(t.toJSON()).replace(/[0-9a-f]{64}\.zip/g, 'asset.zip');
    expect(strip(Template.fromStack(stacks.vault!))).toBe(strip(vault));
  });
});

describe('smoke:aws fixture stack', () => {
  let template: Template;
  let stack: Stack;
  let missingContext: unknown;
  let outdir: string;

  beforeAll(() => {
    outdir = mkdtempSync(join(tmpdir(), 'lifeboat-smoke-fixture-'));
    outdirs.push(outdir);
    const app = new App({ outdir, context: cdkJsonContext() });
    stack = addSmokeFixture(app, { name: 'smoke-test', region: 'eu-west-1', engineMajor: 17, sourceStackName: 'smoke-test-lifeboat-source', ...quietWindows(new Date('2026-12-03T10:00:00Z')) });
    missingContext = app.synth().manifest.missing;
    template = Template.fromStack(stack);
  });

  it('creates a tiny encrypted private RDS PostgreSQL that CloudFormation deletes outright', () => {
    // Assess
    template.hasResource('AWS::RDS::DBInstance', {
      DeletionPolicy: 'Delete',
      Properties: Match.objectLike({
        DBInstanceIdentifier: 'smoke-test-db',
        Engine: 'postgres',
        EngineVersion: '17',
        DBInstanceClass: 'db.t4g.micro',
        AllocatedStorage: '20',
        StorageType: 'gp3',
        StorageEncrypted: true,
        PubliclyAccessible: false,
        DeletionProtection: false,
        BackupRetentionPeriod: 1,
        DeleteAutomatedBackups: true,
        MultiAZ: false,
        PreferredBackupWindow: '22:00-22:30',
      }),
    });
    template.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'lifeboat-smoke/smoke-test/master' });
    template.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'lifeboat-smoke/smoke-test/wrong-password', GenerateSecretString: Match.objectLike({ GenerateStringKey: 'password' }) });
  });

  it('lets only the lifeboat source stack\'s topics send to the alert queue', () => {
    // Assess
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'LifeboatAlertTopicMaySend',
            Principal: { Service: 'sns.amazonaws.com' },
            Action: 'sqs:SendMessage',
            Condition: { ArnLike: { 'aws:SourceArn': { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp(':smoke-test-lifeboat-source-\\*$')])] } } },
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'smoke-test-smoke-alerts', SqsManagedSseEnabled: true, MessageRetentionPeriod: 86400 });
  });

  it('admits PostgreSQL to the database only from the runners\' security group', () => {
    // Assess
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { IpProtocol: 'tcp', FromPort: 5432, ToPort: 5432, SourceSecurityGroupId: Match.anyValue() });
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 1);
    template.resourceCountIs('AWS::EC2::NatGateway', 1);
  });

  it('seeds from inside the VPC with the RDS CA bundle, and synthesizes without any AWS lookup', () => {
    // Assess
    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem' }) }, VpcConfig: Match.anyValue() });
    template.resourceCountIs('Custom::AWSCDK-CloudFormation-CustomResource', 0);
    expect(Object.keys(template.findResources('AWS::CloudFormation::CustomResource'))).toHaveLength(1);
    expect(missingContext).toBeUndefined();
    // CDK's CloudFormation validation is on in this app (it caught an apostrophe AWS refuses in a description).
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as { pluginReports: { violations?: unknown[] }[] };
    expect(report.pluginReports.flatMap((r) => r.violations ?? [])).toEqual([]);
    expect(stack.resolve(stack.availabilityZones)).toEqual([{ 'Fn::Select': [0, { 'Fn::GetAZs': '' }] }, { 'Fn::Select': [1, { 'Fn::GetAZs': '' }] }]);
  });
});
