import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { parseConfig } from '../../../functions/lib/config/load.ts';
import type { LifeboatConfigInput } from '../../../functions/lib/config/schema.ts';
import { addLifeboatStacks, type LifeboatAppOptions } from '../../../infra/lifeboat-app.ts';
import type { SourceStack } from '../../../infra/source-stack.ts';
import type { VaultAccessStack } from '../../../infra/vault-access-stack.ts';
import type { VaultStack } from '../../../infra/vault-stack.ts';
import { prebundledCode } from './bundles.ts';

export const repoRoot = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');

/** The feature flags and context from cdk.json, so in-process apps synthesize like `cdk synth`. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(repoRoot, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  return { ...cdkJson.context };
}

/** The example config as raw JSON (a fresh copy, safe to mutate). */
export function exampleConfigJson(): LifeboatConfigInput & Record<string, unknown> {
  return JSON.parse(readFileSync(join(repoRoot, 'lifeboat.config.example.json'), 'utf8'));
}

export interface SynthOptions extends Omit<LifeboatAppOptions, 'config'> {
  /** Raw config (validated by the stack). @default the example config */
  readonly config?: unknown;
  /** Extra CDK context on top of cdk.json's. */
  readonly context?: Record<string, unknown>;
  /**
   * Bundle the Node.js functions with CDK's NodejsFunction, exactly as `cdk synth`
   * does (about 0.7 s a function). Otherwise they are prebundled once per test
   * process (helpers/bundles.ts) and the templates differ only in their Code.
   * @default false
   */
  readonly realBundling?: boolean;
}

export interface Synthesized {
  readonly app: App;
  /** The primary source stack. */
  readonly stack: SourceStack;
  /** Every source stack, the primary first. */
  readonly stacks: readonly SourceStack[];
  readonly template: Template;
  /** The vault stack, when the config has a vault. */
  readonly vault?: VaultStack;
  /** The vault's break-glass role stack, with the vault. */
  readonly vaultAccess?: VaultAccessStack;
  readonly outdir: string;
}

/**
 * Builds the app in-process the way infra/app.ts does and synthesizes it into a
 * temp dir. CDK's built-in CloudFormation validation is off here (it costs
 * seconds per synth); the cfn-lint test covers the template instead.
 */
export function synthApp(options: SynthOptions = {}): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), 'lifeboat-cdk-'));
  const app = new App({
    outdir,
    context: { ...cdkJsonContext(), ...options.context },
    builtinCloudFormationValidation: false,
  });
  const config = parseConfig(options.config ?? exampleConfigJson(), 'test config');
  const code = options.code ?? (options.realBundling ? undefined : prebundledCode());
  const { source, sources, vault, vaultAccess } = addLifeboatStacks(app, { ...options, code, config, nag: options.nag ?? false });
  if (!source) throw new Error('synthApp builds the source stacks (deploy "all" or "source")');
  app.synth();
  return { app, stack: source, stacks: sources, template: Template.fromStack(source), vault, vaultAccess, outdir };
}

/** Logical id of a construct's CloudFormation resource (its default child). */
export function logicalIdOf(construct: IConstruct): string {
  const resource = construct.node.defaultChild ?? construct;
  return Stack.of(construct).getLogicalId(resource as CfnElement);
}
