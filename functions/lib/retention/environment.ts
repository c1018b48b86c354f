import { maxRunsPerDay } from '../config/cron.ts';
import { z } from 'zod';
import type { LifeboatConfig, RetentionPolicy } from '../config/schema.ts';
import { vaultNames } from '../vault/names.ts';

/**
 * What the retention function (and `lifeboat prune`) needs from the config:
 * each plan's time zone, databases and policies, and where each location is.
 * The plans come from the deployed config object (hash-checked, see
 * config/deployment.ts), the locations from the function's environment
 * ({@link retentionFunctionEnvironment}); policies never travel in a payload,
 * so whoever can start the state machine cannot bring their own policy. The
 * plans are not in the environment: they list every database, and Lambda's
 * 4 KB environment held about 450 of them.
 */

export const RETENTION_LOCATIONS = ['source', 'copy-region', 'vault'] as const;
export type RetentionLocation = (typeof RETENTION_LOCATIONS)[number];

/** Config key under `plans[].retention` for each location. */
export const POLICY_KEY = { source: 'source', 'copy-region': 'copyRegion', vault: 'vault' } as const satisfies Record<RetentionLocation, string>;

/** One plan as retention sees it: its time zone, databases and per-location policies. */
export interface PlanRetention {
  readonly timeZone: string;
  /**
   * The most backups the plan's schedule makes in a day (an upper bound from its cron). In the vault, a day
   * holding more of the plan's copies than this is contested: production wrote them, so one may be forged.
   */
  readonly maxBackupsPerDay?: number;
  readonly databases: readonly string[];
  readonly retention: { readonly source?: RetentionPolicy; readonly copyRegion?: RetentionPolicy; readonly vault?: RetentionPolicy };
}

export interface VaultRetentionTarget {
  account: string;
  region: string;
  bucket: string;
  /** A role in the vault account that may delete expired vault backups; never the copier, never a production role. */
  retentionRoleArn: string;
}

export interface RetentionSettings {
  plans: Record<string, PlanRetention>;
  /** Region of the databases, the source bucket and the originals of the snapshots. */
  sourceRegion: string;
  /** The source bucket; the drill reports and every location's audit log live here. */
  storage: { bucket: string; prefix: string };
  /** `snapshots.copy.region`, where the production account keeps its re-encrypted copies. */
  copyRegion?: string;
  vault?: VaultRetentionTarget;
}

/** The vault role retention assumes; the vault stack creates it (see the README). */
export function vaultRetentionRoleName(name: string): string {
  return `${name}-lifeboat-vault-retention`.slice(0, 64);
}

export function vaultRetentionRoleArn(config: Pick<LifeboatConfig, 'name' | 'vault'>, partition = 'aws'): string | undefined {
  return config.vault ? `arn:${partition}:iam::${config.vault.account}:role/${vaultRetentionRoleName(config.name)}` : undefined;
}

export function retentionPlansOf(config: Pick<LifeboatConfig, 'plans'>): Record<string, PlanRetention> {
  const plans: Record<string, PlanRetention> = {};
  for (const plan of config.plans) {
    plans[plan.id] = { timeZone: plan.schedule.timezone, maxBackupsPerDay: maxRunsPerDay(plan.schedule.cron), databases: [...plan.databases], retention: { ...plan.retention } };
  }
  return plans;
}

function vaultTarget(config: Pick<LifeboatConfig, 'name' | 'vault'>, partition: string): VaultRetentionTarget | undefined {
  if (!config.vault) return undefined;
  return {
    account: config.vault.account,
    region: config.vault.region,
    bucket: vaultNames({ name: config.name, vault: config.vault }, partition).bucketName,
    retentionRoleArn: vaultRetentionRoleArn(config, partition)!,
  };
}

/**
 * The retention function's environment from the config, without the source
 * bucket (`BACKUP_BUCKET`, `BACKUP_PREFIX`) and the deployed config object
 * (`LIFEBOAT_CONFIG_*`), which the stack adds: `SNAPSHOT_COPY_REGION`, and
 * `VAULT_ACCOUNT`, `VAULT_REGION`, `VAULT_BUCKET`, `VAULT_RETENTION_ROLE_ARN`
 * (all or none). Its size does not grow with the fleet.
 */
export function retentionFunctionEnvironment(config: Pick<LifeboatConfig, 'name' | 'vault' | 'snapshots'>, partition = 'aws'): Record<string, string> {
  const env: Record<string, string> = {};
  if (config.snapshots?.copy) env.SNAPSHOT_COPY_REGION = config.snapshots.copy.region;
  const vault = vaultTarget(config, partition);
  if (vault) {
    env.VAULT_ACCOUNT = vault.account;
    env.VAULT_REGION = vault.region;
    env.VAULT_BUCKET = vault.bucket;
    env.VAULT_RETENTION_ROLE_ARN = vault.retentionRoleArn;
  }
  return env;
}

export const retentionEnvSchema = z
  .object({
    BACKUP_BUCKET: z.string().min(3),
    BACKUP_PREFIX: z.string().default('backups/'),
    AWS_REGION: z.string().min(1),
    SNAPSHOT_COPY_REGION: z.string().min(1).optional(),
    VAULT_ACCOUNT: z.string().regex(/^\d{12}$/).optional(),
    VAULT_REGION: z.string().min(1).optional(),
    VAULT_BUCKET: z.string().min(3).optional(),
    VAULT_RETENTION_ROLE_ARN: z.string().startsWith('arn:').optional(),
  })
  .refine(
    (e) => {
      const set = [e.VAULT_ACCOUNT, e.VAULT_REGION, e.VAULT_BUCKET, e.VAULT_RETENTION_ROLE_ARN].filter((v) => v !== undefined).length;
      return set === 0 || set === 4;
    },
    { message: 'set all of VAULT_ACCOUNT, VAULT_REGION, VAULT_BUCKET and VAULT_RETENTION_ROLE_ARN, or none', path: ['VAULT_ACCOUNT'] },
  );

/** The settings from the function's environment and the deployed config's plans. */
export function retentionSettingsFromEnv(env: z.infer<typeof retentionEnvSchema>, config: Pick<LifeboatConfig, 'plans'>): RetentionSettings {
  return {
    plans: retentionPlansOf(config),
    sourceRegion: env.AWS_REGION,
    storage: { bucket: env.BACKUP_BUCKET, prefix: env.BACKUP_PREFIX },
    ...(env.SNAPSHOT_COPY_REGION ? { copyRegion: env.SNAPSHOT_COPY_REGION } : {}),
    ...(env.VAULT_ACCOUNT && env.VAULT_REGION && env.VAULT_BUCKET && env.VAULT_RETENTION_ROLE_ARN
      ? { vault: { account: env.VAULT_ACCOUNT, region: env.VAULT_REGION, bucket: env.VAULT_BUCKET, retentionRoleArn: env.VAULT_RETENTION_ROLE_ARN } }
      : {}),
  };
}

/** The same settings straight from a config, for the CLI. */
export function retentionSettingsFromConfig(
  config: Pick<LifeboatConfig, 'name' | 'plans' | 'vault' | 'snapshots' | 'source'>,
  storage: { bucket: string; prefix: string },
  partition = 'aws',
): RetentionSettings {
  const vault = vaultTarget(config, partition);
  return {
    plans: retentionPlansOf(config),
    sourceRegion: config.source.region,
    storage,
    ...(config.snapshots?.copy ? { copyRegion: config.snapshots.copy.region } : {}),
    ...(vault ? { vault } : {}),
  };
}

export function policyFor(plan: PlanRetention, location: RetentionLocation): RetentionPolicy | undefined {
  return plan.retention[POLICY_KEY[location]];
}
