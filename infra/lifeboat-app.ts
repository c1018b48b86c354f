import type { App, Size } from 'aws-cdk-lib';
import type { LifeboatConfig } from '../functions/lib/config/schema.ts';
import { configForSource, loadConfigFromContext, sourcesOf } from './config.ts';
import { addNagChecks } from './nag.ts';
import { SourceStack, sourceStackName, type SourceStackCode } from './source-stack.ts';
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
}

export interface LifeboatStacks {
  readonly config: LifeboatConfig;
  /** The primary source's stack (`config.source`). */
  readonly source: SourceStack;
  /** Every source stack: the primary first, then one per `additionalSources` entry. */
  readonly sources: readonly SourceStack[];
  /** The vault stack (the vault account and region), when the config has a vault. */
  readonly vault?: VaultStack;
}

/**
 * Adds lifeboat's stacks to an app: one source stack per account and region
 * holding databases (the primary `source` and each of `additionalSources`).
 * The config is validated first, so a bad one fails synth with a ConfigError
 * naming every bad field's path.
 */
export function addLifeboatStacks(app: App, options: LifeboatAppOptions = {}): LifeboatStacks {
  const config = options.config ?? loadConfigFromContext(app);
  if (options.nag ?? true) addNagChecks(app);
  const sources = sourcesOf(config).map((source, index) => {
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
  const vault = config.vault
    ? new VaultStack(app, vaultNames({ name: config.name, vault: config.vault }).stackName, {
        config: config.source.account || !options.defaultAccount ? config : { ...config, source: { ...config.source, account: options.defaultAccount } },
        code: options.code && { retention: options.code.retention, alert: options.code.alert },
      })
    : undefined;
  return { config, source: sources[0]!, sources, vault };
}
