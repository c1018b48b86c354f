import type { App } from 'aws-cdk-lib';
import type { LifeboatConfig } from '../functions/lib/config/schema.ts';
import { loadConfigFromContext } from './config.ts';
import { addNagChecks } from './nag.ts';
import { SourceStack, sourceStackName, type SourceStackCode } from './source-stack.ts';

export interface LifeboatAppOptions {
  /** @default - the file named by the `config` context (see infra/config.ts) */
  readonly config?: LifeboatConfig;
  /** Run the cdk-nag AwsSolutions pack as a synth-time validation plugin. @default true */
  readonly nag?: boolean;
  /** @default - production sources */
  readonly code?: SourceStackCode;
  /** Account when the config names none. @default - environment-agnostic */
  readonly defaultAccount?: string;
}

export interface LifeboatStacks {
  readonly config: LifeboatConfig;
  readonly source: SourceStack;
  // The vault stack (another account and region) joins here in a later issue.
}

/**
 * Adds lifeboat's stacks to an app. The config is validated first, so a bad one
 * fails synth with a ConfigError naming every bad field's path.
 */
export function addLifeboatStacks(app: App, options: LifeboatAppOptions = {}): LifeboatStacks {
  const config = options.config ?? loadConfigFromContext(app);
  if (options.nag ?? true) addNagChecks(app);
  const source = new SourceStack(app, sourceStackName(config), {
    config,
    code: options.code,
    env: options.defaultAccount ? { account: options.defaultAccount } : undefined,
  });
  return { config, source };
}
