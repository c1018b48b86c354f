import { z } from 'zod';
import { resolveSnapshotSettings, snapshotSettingsSchema, type LifeboatConfig, type SnapshotSettings } from '../config/schema.ts';
import { vaultNames } from '../vault/names.ts';
import type { VaultSnapshotTarget } from './workflow.ts';

/**
 * The snapshot function's environment, built from the config by the CDK app and
 * read back (validated) by the handler. No secrets: names and settings only.
 *
 * - `SNAPSHOT_SETTINGS`: the resolved `snapshots` section as JSON.
 * - `VAULT_ACCOUNT`, `VAULT_REGION`, `VAULT_COPIER_ROLE_ARN`,
 *   `VAULT_SNAPSHOT_KMS_KEY_ID`: where snapshots are copied in; all or none.
 */
export function snapshotFunctionEnvironment(config: Pick<LifeboatConfig, 'name' | 'vault' | 'snapshots'>, partition = 'aws'): Record<string, string> {
  const env: Record<string, string> = { SNAPSHOT_SETTINGS: JSON.stringify(resolveSnapshotSettings(config.snapshots)) };
  if (config.vault) {
    const names = vaultNames({ name: config.name, vault: config.vault }, partition);
    env.VAULT_ACCOUNT = config.vault.account;
    env.VAULT_REGION = config.vault.region;
    env.VAULT_COPIER_ROLE_ARN = names.copierRoleArn;
    env.VAULT_SNAPSHOT_KMS_KEY_ID = names.snapshotKeyAliasArn;
  }
  return env;
}

const envSchema = z
  .object({
    SNAPSHOT_SETTINGS: z
      .string()
      .default('{}')
      .transform((text, ctx) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be JSON' });
          return z.NEVER;
        }
      })
      .pipe(snapshotSettingsSchema),
    AWS_REGION: z.string().min(1),
    VAULT_ACCOUNT: z.string().regex(/^\d{12}$/).optional(),
    VAULT_REGION: z.string().min(1).optional(),
    VAULT_COPIER_ROLE_ARN: z.string().startsWith('arn:').optional(),
    VAULT_SNAPSHOT_KMS_KEY_ID: z.string().min(1).optional(),
  })
  .refine((e) => [e.VAULT_ACCOUNT, e.VAULT_REGION, e.VAULT_COPIER_ROLE_ARN, e.VAULT_SNAPSHOT_KMS_KEY_ID].every((v) => v === undefined) || [e.VAULT_ACCOUNT, e.VAULT_REGION, e.VAULT_COPIER_ROLE_ARN, e.VAULT_SNAPSHOT_KMS_KEY_ID].every((v) => v !== undefined), {
    message: 'set all of VAULT_ACCOUNT, VAULT_REGION, VAULT_COPIER_ROLE_ARN and VAULT_SNAPSHOT_KMS_KEY_ID, or none',
    path: ['VAULT_ACCOUNT'],
  });
export const snapshotEnvSchema = envSchema;

export interface SnapshotEnvironment {
  readonly sourceRegion: string;
  readonly settings: SnapshotSettings;
  readonly vault?: VaultSnapshotTarget;
}

export function snapshotEnvironmentFrom(env: z.infer<typeof envSchema>): SnapshotEnvironment {
  return {
    sourceRegion: env.AWS_REGION,
    settings: env.SNAPSHOT_SETTINGS,
    vault:
      env.VAULT_ACCOUNT && env.VAULT_REGION && env.VAULT_COPIER_ROLE_ARN && env.VAULT_SNAPSHOT_KMS_KEY_ID
        ? { account: env.VAULT_ACCOUNT, region: env.VAULT_REGION, copierRoleArn: env.VAULT_COPIER_ROLE_ARN, snapshotKmsKeyId: env.VAULT_SNAPSHOT_KMS_KEY_ID }
        : undefined,
  };
}
