import { CfnOutput, CliCredentialsStackSynthesizer, Duration, Stack, Tags, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import type { LifeboatConfig } from '../functions/lib/config/schema.ts';
import { ConfigError } from '../functions/lib/errors.ts';
import { vaultNameIssues, vaultNames, type VaultNames } from '../functions/lib/vault/names.ts';
import { acknowledge } from './nag.ts';

export interface VaultAccessStackProps extends StackProps {
  /** A parsed config with a vault section. */
  readonly config: LifeboatConfig;
  /**
   * The longest an MFA sign-in may be old when the break-glass role is assumed.
   * @default 1 hour
   */
  readonly maxMfaAge?: Duration;
}

/**
 * The vault's break-glass role, in a stack of its own that is deployed first
 * (by a vault-account administrator's own credentials).
 *
 * The vault's bucket and key policies exempt no deployment role: only this
 * role (and `vault.adminRoleArns`) may change the vault's protections. The
 * vault stack is deployed with the caller's own credentials (no CDK roles), so
 * a deploy that changes a protection must run as this role, which can only be
 * assumed from the vault account with a recent MFA sign-in, for an hour at
 * most; the vault stack alerts on every assumption (BreakGlassWatch).
 */
export class VaultAccessStack extends Stack {
  public readonly names: VaultNames;
  /** Changes the vault's protections (and deploys the vault stack); assumed with MFA only. */
  public readonly breakGlassRole: iam.Role;

  constructor(scope: Construct, id: string, props: VaultAccessStackProps) {
    const { config, maxMfaAge, ...stackProps } = props;
    const vault = config.vault;
    if (!vault) throw new Error(`${id}: the vault access stack needs a config with a vault section.`);
    const issues = vaultNameIssues(config.name);
    if (issues.length > 0) throw new ConfigError(`the config given to stack "${id}"`, issues);
    const names = vaultNames({ name: config.name, vault });
    super(scope, id, {
      stackName: names.accessStackName,
      description: `lifeboat ${config.name}: the vault's break-glass role (MFA, alerted), the only principal that may change the vault's protections.`,
      terminationProtection: true,
      // Deployed with the caller's credentials: the vault never depends on the CDK bootstrap's roles or their trust.
      synthesizer: new CliCredentialsStackSynthesizer(),
      ...stackProps,
      env: { account: vault.account, region: vault.region },
    });
    this.names = names;
    Tags.of(this).add('lifeboat:deployment', config.name);
    Tags.of(this).add('lifeboat:role', 'vault-break-glass');

    this.breakGlassRole = new iam.Role(this, 'BreakGlassRole', {
      roleName: names.breakGlassRoleName,
      description: `lifeboat ${config.name}: changes the vault's protections and deploys the vault stack. Assumed from the vault account with MFA only; every use is alerted.`,
      assumedBy: new iam.AccountPrincipal(vault.account).withConditions({
        Bool: { 'aws:MultiFactorAuthPresent': 'true' },
        NumericLessThanEquals: { 'aws:MultiFactorAuthAge': String((maxMfaAge ?? Duration.hours(1)).toSeconds()) },
      }),
      maxSessionDuration: Duration.hours(1),
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AdministratorAccess')],
    });
    acknowledge(
      this.breakGlassRole,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AdministratorAccess]',
      'The break-glass role deploys the whole vault stack (IAM, KMS, S3, Lambda, Step Functions, EventBridge, SNS) and changes its protections; it is assumed with MFA only, for an hour at most, and every use is alerted.',
    );
    new CfnOutput(this, 'BreakGlassRoleArn', { value: this.breakGlassRole.roleArn, description: 'Assume with MFA to deploy the vault stack or change its protections; every use is alerted.' });
  }
}
