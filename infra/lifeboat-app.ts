import { Annotations, type App, type Size } from 'aws-cdk-lib';
import { ConfigError } from '../functions/lib/errors.ts';
import type { LifeboatConfig } from '../functions/lib/config/schema.ts';
import { configForSource, loadConfigFromContext, sourcesOf, type DeployTarget } from './config.ts';
import { addNagChecks } from './nag.ts';
import { SourceStack, sourceStackName, type SourceStackCode } from './source-stack.ts';
import { VaultAccessStack } from './vault-access-stack.ts';
import { VaultStack } from './vault-stack.ts';
import { vaultNames } from '../functions/lib/vault/names.ts';

export interface LifeboatAppOptions {
  /** @default - the file named by the `config` context (see infra/config.ts) */
  readonly config?: LifeboatConfig;
  /** Run the cdk-nag AwsSolutions pack as a synth-time validation plugin. @default true */
  readonly nag?: boolean;
  /** @default - production sources */
  readonly code?: SourceStackCode;
  /** Account when the config names none. @default - environment-agnostic */
  readonly defaultAccount?: string;
  /** See SourceStackProps.drillRestoreStorage. @default 10 GiB */
  readonly drillRestoreStorage?: Size;
  /**
   * Which side to synthesize: the vault (deployed with vault-account
   * credentials), the source stacks (production's), or both for synth and review.
   * @default 'all'
   */
  readonly deploy?: DeployTarget;
}

export interface LifeboatStacks {
  readonly config: LifeboatConfig;
  /** The primary source's stack (`config.source`); absent with `deploy: 'vault'`. */
  readonly source?: SourceStack;
  /** Every source stack: the primary first, then one per `additionalSources` entry (none with `deploy: 'vault'`). */
  readonly sources: readonly SourceStack[];
  /** The vault stack (the vault account and region), when the config has a vault. */
  readonly vault?: VaultStack;
  /** The vault's break-glass role, deployed before the vault stack (with the vault). */
  readonly vaultAccess?: VaultAccessStack;
}

/**
 * Adds lifeboat's stacks to an app: one source stack per account and region
 * holding databases (the primary `source` and each of `additionalSources`).
 * The config is validated first, so a bad one fails synth with a ConfigError
 * naming every bad field's path.
 */
export function addLifeboatStacks(app: App, options: LifeboatAppOptions = {}): LifeboatStacks {
  const config = options.config ?? loadConfigFromContext(app);
  const deploy = options.deploy ?? 'all';
  if (deploy === 'vault' && !config.vault) throw new ConfigError('the config', ['vault: "-c deploy=vault" needs a vault section (account, region, retentionDays)']);
  // Without the vault's recovery key, vault copies decrypt only with production's envelope key, which
  // production can schedule for deletion: the source side is not deployed without it.
  const noRecoveryKey = config.vault && !config.vault.recoveryKmsKeyArn;
  if (deploy === 'source' && noRecoveryKey) {
    throw new ConfigError('the config', [
      'vault.recoveryKmsKeyArn: deploy the vault first ("-c deploy=vault" with vault-account credentials) and set this to its RecoveryKeyArn output; without it vault copies can be decrypted only with the production envelope key, which production can delete',
    ]);
  }
  if (options.nag ?? true) addNagChecks(app);
  const sources = (deploy === 'vault' ? [] : sourcesOf(config)).map((source, index) => {
    const additional = index > 0;
    return new SourceStack(app, sourceStackName(config, additional ? source.id : undefined), {
      config: configForSource(config, source.id),
      additional,
      code: options.code,
      drillRestoreStorage: options.drillRestoreStorage,
      env: options.defaultAccount ? { account: options.defaultAccount } : undefined,
    });
  });
  // The vault trusts the production account(s); an environment-agnostic source gets the deploying account.
  const names = config.vault && vaultNames({ name: config.name, vault: config.vault });
  const vaultAccess = names && deploy !== 'source' ? new VaultAccessStack(app, names.accessStackName, { config }) : undefined;
  const vault = names && deploy !== 'source'
    ? new VaultStack(app, names.stackName, {
        config: config.source.account || !options.defaultAccount ? config : { ...config, source: { ...config.source, account: options.defaultAccount } },
        code: options.code && { retention: options.code.retention, alert: options.code.alert },
      })
    : undefined;
  // The vault is deployed as the break-glass role, which the access stack creates first.
  if (vault && vaultAccess) vault.addStackDependency(vaultAccess, 'the vault is deployed as the break-glass role of the access stack');
  if (noRecoveryKey && sources[0]) {
    Annotations.of(sources[0]).addWarning(
      'vault.recoveryKmsKeyArn is not set: vault copies can be decrypted only with the production envelope key. Deploy the vault first (-c deploy=vault, vault credentials) and set it to the RecoveryKeyArn output; "-c deploy=source" refuses to deploy without it.',
    );
  }
  return { config, source: sources[0], sources, vault, vaultAccess };
}
