import { z } from 'zod';
import type { LifeboatConfig } from '../config/schema.ts';
import { vaultNames } from './names.ts';

/**
 * The vault-copy function's environment, built from the config by the CDK app:
 * `VAULT_ACCOUNT`, `VAULT_REGION`, `VAULT_BUCKET`, `VAULT_COPIER_ROLE_ARN`, all
 * or none. With none, the function reports `skipped` (no vault configured).
 */
export function vaultCopyFunctionEnvironment(config: Pick<LifeboatConfig, 'name' | 'vault'>, partition = 'aws'): Record<string, string> {
  if (!config.vault) return {};
  const names = vaultNames({ name: config.name, vault: config.vault }, partition);
  return {
    VAULT_ACCOUNT: config.vault.account,
    VAULT_REGION: config.vault.region,
    VAULT_BUCKET: names.bucketName,
    VAULT_COPIER_ROLE_ARN: names.copierRoleArn,
  };
}

export const vaultCopyEnvSchema = z
  .object({
    VAULT_ACCOUNT: z.string().regex(/^\d{12}$/).optional(),
    VAULT_REGION: z.string().min(1).optional(),
    VAULT_BUCKET: z.string().min(3).optional(),
    VAULT_COPIER_ROLE_ARN: z.string().startsWith('arn:').optional(),
  })
  .refine((e) => {
    const set = [e.VAULT_ACCOUNT, e.VAULT_REGION, e.VAULT_BUCKET, e.VAULT_COPIER_ROLE_ARN].filter((v) => v !== undefined).length;
    return set === 0 || set === 4;
  }, { message: 'set all of VAULT_ACCOUNT, VAULT_REGION, VAULT_BUCKET and VAULT_COPIER_ROLE_ARN, or none', path: ['VAULT_ACCOUNT'] });

export interface VaultDumpTarget {
  readonly account: string;
  readonly region: string;
  readonly bucket: string;
  readonly copierRoleArn: string;
}

export function vaultDumpTargetFrom(env: z.infer<typeof vaultCopyEnvSchema>): VaultDumpTarget | undefined {
  if (!env.VAULT_ACCOUNT || !env.VAULT_REGION || !env.VAULT_BUCKET || !env.VAULT_COPIER_ROLE_ARN) return undefined;
  return { account: env.VAULT_ACCOUNT, region: env.VAULT_REGION, bucket: env.VAULT_BUCKET, copierRoleArn: env.VAULT_COPIER_ROLE_ARN };
}
