import type { App } from 'aws-cdk-lib';
import { addLifeboatStacks, type LifeboatAppOptions, type LifeboatStacks } from '../../infra/lifeboat-app.ts';

/**
 * lifeboat's stacks exactly as infra/app.ts builds them, except that the vault
 * stack is not termination-protected. The smoke test deploys the real app, and
 * redeploys the vault stack from this one only to lift the protection before
 * `cdk destroy` (the CDK CLI applies a changed protection flag even when the
 * template is unchanged). The vault's bucket and keys are RETAIN either way.
 */
export function addLifeboatStacksForTeardown(app: App, options: LifeboatAppOptions = {}): LifeboatStacks {
  const stacks = addLifeboatStacks(app, options);
  if (stacks.vault) stacks.vault.terminationProtection = false;
  return stacks;
}
