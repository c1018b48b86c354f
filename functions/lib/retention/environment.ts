import { z } from 'zod';
import { retentionPolicySchema, timeZone, type LifeboatConfig, type RetentionPolicy } from '../config/schema.ts';
import { vaultNames } from '../vault/names.ts';

/**
 * What the retention function (and `lifeboat prune`) needs from the config:
 * each plan's time zone, databases and policies, and where each location is.
 * The CDK app puts it in the function's environment with
 * {@link retentionFunctionEnvironment}; policies never travel in a payload, so
 * whoever can start the state machine cannot bring their own policy.
 */

export const RETENTION_LOCATIONS = ['source', 'copy-region', 'vault'] as const;
export type RetentionLocation = (typeof RETENTION_LOCATIONS)[number];

/** Config key under `plans[].retention` for each location. */
export const POLICY_KEY = { source: 'source', 'copy-region': 'copyRegion', vault: 'vault' } as const satisfies Record<RetentionLocation, string>;

const planRetentionSchema = z.object({
  timeZone,
  databases: z.array(z.string().min(1)),
  retention: z
    .object({ source: retentionPolicySchema.optional(), copyRegion: retentionPolicySchema.optional(), vault: retentionPolicySchema.optional() })
    .strict(),
});
export type PlanRetention = z.infer<typeof planRetentionSchema>;
export const retentionPlansSchema = z.record(z.string(), planRetentionSchema);

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
    plans[plan.id] = { timeZone: plan.schedule.timezone, databases: [...plan.databases], retention: { ...plan.retention } };
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
 * bucket (`BACKUP_BUCKET`, `BACKUP_PREFIX`), which the stack knows: `RETENTION_PLANS`
 * (JSON), `SNAPSHOT_COPY_REGION`, and `VAULT_ACCOUNT`, `VAULT_REGION`,
 * `VAULT_BUCKET`, `VAULT_RETENTION_ROLE_ARN` (all or none). Lambda caps the
 * whole environment at 4 KB; RETENTION_PLANS is about 250 bytes a plan.
 */
export function retentionFunctionEnvironment(config: Pick<LifeboatConfig, 'name' | 'plans' | 'vault' | 'snapshots'>, partition = 'aws'): Record<string, string> {
  const env: Record<string, string> = { RETENTION_PLANS: JSON.stringify(retentionPlansOf(config)) };
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

/** An environment variable holding JSON that must match `schema`. */
export function jsonEnv<S extends z.ZodType>(schema: S) {
  const parse = (text: string, ctx: z.RefinementCtx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be JSON' });
      return z.NEVER;
    }
  };
  return z.string().transform(parse).pipe(schema);
}

export const retentionEnvSchema = z
  .object({
    BACKUP_BUCKET: z.string().min(3),
    BACKUP_PREFIX: z.string().default('backups/'),
    AWS_REGION: z.string().min(1),
    RETENTION_PLANS: jsonEnv(retentionPlansSchema),
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

export function retentionSettingsFromEnv(env: z.infer<typeof retentionEnvSchema>): RetentionSettings {
  return {
    plans: env.RETENTION_PLANS,
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
