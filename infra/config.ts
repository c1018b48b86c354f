import { resolve } from 'node:path';
import type { IConstruct } from 'constructs';
import { loadConfigFile } from '../functions/lib/config/load.ts';
import type { LifeboatConfig } from '../functions/lib/config/schema.ts';
import { ConfigError } from '../functions/lib/errors.ts';

/** CDK context key naming the config file (`cdk synth -c config=path/to/lifeboat.config.json`). */
export const CONFIG_CONTEXT_KEY = 'config';
/** Config file used when the context names none; relative to the working directory (the repo root for the CLI). */
export const DEFAULT_CONFIG_PATH = 'lifeboat.config.example.json';

/** The config file the CDK context names, as an absolute path. */
export function configPathFromContext(scope: IConstruct, cwd: string = process.cwd()): string {
  const fromContext: unknown = scope.node.tryGetContext(CONFIG_CONTEXT_KEY);
  if (fromContext !== undefined && (typeof fromContext !== 'string' || fromContext.trim() === '')) {
    throw new ConfigError(`CDK context "${CONFIG_CONTEXT_KEY}"`, ['must be the path of a lifeboat config JSON file']);
  }
  return resolve(cwd, (fromContext as string | undefined) ?? DEFAULT_CONFIG_PATH);
}

/** Loads and validates the config file the CDK context names; throws ConfigError naming every bad field. */
export function loadConfigFromContext(scope: IConstruct, cwd?: string): LifeboatConfig {
  return loadConfigFile(configPathFromContext(scope, cwd));
}

/**
 * Checks what the schema allows but the source stack cannot deploy yet, naming
 * the field's path like any other config error.
 */
export function checkSourceStackSupport(config: LifeboatConfig, source: string): void {
  const issues: string[] = [];
  if (config.storage.bucketName !== undefined) {
    issues.push(
      'storage.bucketName: bringing your own bucket is not supported by the source stack yet; remove it and the stack creates an SSE-KMS, versioned, TLS-only bucket',
    );
  }
  const dumped = new Set(config.plans.filter((plan) => plan.dump).flatMap((plan) => plan.databases));
  config.databases.forEach((database, index) => {
    if (dumped.has(database.id) && database.connection.secretArn === undefined) {
      issues.push(
        `databases[${index}].connection.secretArn: a deployed dump reads its credentials from Secrets Manager; passwordEnv is for the CLI and local runs only`,
      );
    }
  });
  if (issues.length > 0) throw new ConfigError(source, issues);
}
