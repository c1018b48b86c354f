import { RDSClient } from '@aws-sdk/client-rds';
import { z } from 'zod';
import { createAwsClients, createS3Client, RDS_REQUEST_TIMEOUTS } from '../aws/clients.ts';
import { createKeyringKmsClient } from '../backup/encryption.ts';
import { parseWith } from '../config/load.ts';
import { LocalPostgresProvisioner } from './local-provisioner.ts';
import { RdsProvisioner } from './rds-provisioner.ts';
import type { JanitorDeps } from './janitor.ts';
import type { DrillDeps } from './steps.ts';

/** An optional environment variable holding JSON of `shape`. */
function jsonVariable<T extends z.ZodType>(shape: T) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      try {
        return JSON.parse(v) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be JSON' });
        return z.NEVER;
      }
    })
    .pipe(shape.optional());
}

/**
 * The drill and janitor functions' environment. Set by the CDK function
 * construct; the local runner and tests build their deps directly instead.
 */
export const drillEnvSchema = z.object({
  BACKUP_BUCKET: z.string().min(3),
  BACKUP_PREFIX: z.string().default('backups/'),
  /** The vault's bucket (reports are written there too; vault drills read from it). */
  VAULT_BUCKET: z.string().min(3).optional(),
  VAULT_PREFIX: z.string().default('backups/'),
  VAULT_REGION: z.string().optional(),
  /** The copy region (snapshots.copy.region): PITR drills from the automated backups replicated there. */
  COPY_REGION: z.string().optional(),
  /** `rds` in AWS; `local` starts clusters in-process (workstations only). */
  DRILL_DUMP_PROVISIONER: z.enum(['rds', 'local']).default('rds'),
  /** `true` only against moto: RDS instances hold no data there. */
  LIFEBOAT_RDS_EMULATED: z.enum(['true', 'false']).default('false'),
  LIFEBOAT_LOCAL_DRILL_DIR: z.string().optional(),
  /**
   * Comma-separated security groups every throwaway joins: the stack's drill
   * group, whose only ingress is PostgreSQL from the runners. Deploy-time, so no
   * execution input can leave a throwaway unreachable.
   */
  DRILL_SECURITY_GROUP_IDS: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^sg-[0-9a-f]+$/, 'must be security group ids (sg-...)'))),
  /**
   * Where throwaways go (JSON: subnetGroupName or subnetIds, securityGroupIds), from the drills config at
   * deploy time; a drill request that names other subnets or groups is refused.
   */
  DRILL_NETWORK: jsonVariable(
    z
      .object({
        subnetGroupName: z.string().min(1).optional(),
        subnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, 'must be subnet ids (subnet-...)')).optional(),
        securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]+$/, 'must be security group ids (sg-...)')),
      })
      .strict(),
  ),
  /** Where PITR drills from the copy region place their throwaway (JSON: subnetGroupName, securityGroupIds), from drills.copyRegionNetwork. */
  DRILL_COPY_NETWORK: jsonVariable(
    z.object({ subnetGroupName: z.string().min(1), securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]+$/, 'must be security group ids (sg-...)')) }).strict(),
  ),
});

/** The DRILL_NETWORK value for a drills config section. */
export function drillNetworkEnvironment(drills: { subnetGroupName?: string; subnetIds?: readonly string[]; securityGroupIds: readonly string[] }): string {
  return JSON.stringify({ ...(drills.subnetGroupName ? { subnetGroupName: drills.subnetGroupName } : {}), ...(drills.subnetIds ? { subnetIds: drills.subnetIds } : {}), securityGroupIds: drills.securityGroupIds });
}

const rdsClient = (region?: string) => new RDSClient({ region, maxAttempts: 6, retryMode: 'adaptive', requestHandler: RDS_REQUEST_TIMEOUTS });

function rdsClients(vaultRegion: string | undefined, copyRegion?: string) {
  return { source: rdsClient(), vault: vaultRegion ? rdsClient(vaultRegion) : undefined, ...(copyRegion ? { copy: rdsClient(copyRegion) } : {}) };
}

export function drillDepsFromEnvironment(raw: NodeJS.ProcessEnv = process.env): DrillDeps {
  const env = parseWith(drillEnvSchema, raw, 'the function environment');
  const aws = createAwsClients();
  const rds = rdsClients(env.VAULT_REGION, env.COPY_REGION);
  return {
    storage: {
      source: { s3: aws.s3, bucket: env.BACKUP_BUCKET, prefix: env.BACKUP_PREFIX },
      vault: env.VAULT_BUCKET ? { s3: createS3Client({ region: env.VAULT_REGION }), bucket: env.VAULT_BUCKET, prefix: env.VAULT_PREFIX } : undefined,
    },
    kms: createKeyringKmsClient(),
    secrets: aws.secrets,
    provisioners: {
      rds: new RdsProvisioner({ clients: rds, emulated: env.LIFEBOAT_RDS_EMULATED === 'true' }),
      local: env.DRILL_DUMP_PROVISIONER === 'local' ? new LocalPostgresProvisioner({ registryDir: env.LIFEBOAT_LOCAL_DRILL_DIR }) : undefined,
    },
    dumpProvider: env.DRILL_DUMP_PROVISIONER,
    drillSecurityGroupIds: env.DRILL_SECURITY_GROUP_IDS,
    ...(env.DRILL_NETWORK ? { drillNetwork: env.DRILL_NETWORK } : {}),
    ...(env.DRILL_COPY_NETWORK ? { drillCopyNetwork: env.DRILL_COPY_NETWORK } : {}),
    rds,
  };
}

export const janitorEnvSchema = drillEnvSchema.pick({ VAULT_REGION: true, COPY_REGION: true, LIFEBOAT_RDS_EMULATED: true, LIFEBOAT_LOCAL_DRILL_DIR: true });

export function janitorDepsFromEnvironment(raw: NodeJS.ProcessEnv = process.env): JanitorDeps {
  const env = parseWith(janitorEnvSchema, raw, 'the function environment');
  const provisioners = [new RdsProvisioner({ clients: rdsClients(env.VAULT_REGION, env.COPY_REGION), emulated: env.LIFEBOAT_RDS_EMULATED === 'true' })];
  return {
    provisioners: env.LIFEBOAT_LOCAL_DRILL_DIR ? [...provisioners, new LocalPostgresProvisioner({ registryDir: env.LIFEBOAT_LOCAL_DRILL_DIR })] : provisioners,
    secrets: createAwsClients().secrets,
  };
}
