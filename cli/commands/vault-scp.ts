import { ConfigError } from '../../functions/lib/errors.ts';
import { SCP_MAX_CHARACTERS, vaultAccountScp } from '../../infra/vault-scp.ts';
import { loadCliConfig } from '../context.ts';
import type { CommandResult } from '../main.ts';

export const vaultScpUsage = `lifeboat vault-scp [--config <file>]
    Prints the service control policy for the vault account (attach it to the account or its OU
    from the organization's management account; see docs/deployment.md).`;

export async function vaultScpCommand(flags: Record<string, string | boolean | string[] | undefined>): Promise<CommandResult> {
  const config = loadCliConfig(flags.config as string | undefined);
  if (!config) throw new ConfigError('command line', ['--config: required (or LIFEBOAT_CONFIG, or ./lifeboat.config.json)']);
  if (!config.vault) throw new ConfigError('the config', ['vault: the vault-scp command needs a vault section (account, region, retentionDays)']);
  const policy = vaultAccountScp(config);
  const text = JSON.stringify(policy);
  if (text.length > SCP_MAX_CHARACTERS) {
    throw new ConfigError('the config', [`vault.adminRoleArns: the vault SCP would be ${text.length} characters, over AWS Organizations' ${SCP_MAX_CHARACTERS}; name fewer admin roles`]);
  }
  // Compact, as `aws organizations create-policy --content` takes it (the limit counts whitespace too).
  return { json: policy, text };
}
