import { z } from 'zod';

/**
 * The one lifeboat config. The CDK app validates it at synth time, the Lambdas
 * validate the parts they receive at run time, and the CLI validates it on load,
 * all with this schema.
 */

const identifier = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,47}$/, 'must be lowercase letters, digits and dashes, starting with a letter (max 48)');

const arn = z.string().regex(/^arn:aws[a-z-]*:[a-z0-9-]+:/, 'must be an ARN');
const awsAccount = z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id');
const awsRegion = z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'must be an AWS region such as eu-west-1');

function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
export const timeZone = z.string().refine(isValidTimeZone, 'must be an IANA time zone such as Europe/Berlin');

export const connectionSchema = z
  .object({
    /** Host name; may come from the secret instead (RDS secrets carry it). */
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    /** Database name to dump. */
    database: z.string().min(1),
    username: z.string().min(1).optional(),
    /** Secrets Manager secret holding `password` (and optionally username, host, port, dbname). */
    secretArn: arn.optional(),
    /** CLI and local use only: the environment variable that holds the password. */
    passwordEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name').optional(),
    /**
     * RDS IAM database authentication instead of a password: the runner signs a
     * short-lived token with its own role (`rds-db:connect` on this resource and
     * `username`). Needs `host` and `username`, and TLS.
     * @default - password authentication (secretArn or passwordEnv)
     */
    iamAuth: z
      .object({
        /** The instance's DbiResourceId (`db-...`) or the Aurora cluster's DbClusterResourceId (`cluster-...`), as in the rds-db ARN. */
        resourceId: z.string().regex(/^(db|cluster)-[A-Z0-9]+$/, 'must be a DbiResourceId (db-...) or DbClusterResourceId (cluster-...)'),
      })
      .strict()
      .optional(),
    /**
     * The customer managed KMS key that encrypts `secretArn`, when it is not the
     * default `aws/secretsmanager` key (RDS-managed master secrets often use one).
     * The runner gets `kms:Decrypt` on it, only through Secrets Manager.
     * @default - the secret uses the aws/secretsmanager key, which needs no grant
     */
    secretKmsKeyArn: arn.optional(),
    /**
     * libpq sslmode. `verify-full` checks the server certificate against the RDS CA
     * bundle shipped in the container image.
     * @default 'verify-full'
     */
    sslMode: z.enum(['disable', 'require', 'verify-ca', 'verify-full']).default('verify-full'),
    /**
     * How the server may ask for a password (`secretArn`, `passwordEnv`). With
     * `scram-sha-256` lifeboat sends the password only through a SCRAM exchange,
     * never as cleartext or MD5, so a server (or an impostor) never receives it;
     * a server that asks otherwise is refused before anything is sent. `any` also
     * allows MD5 and cleartext (over TLS). RDS IAM tokens are always sent as the
     * protocol requires (cleartext, over TLS).
     * @default 'scram-sha-256'
     */
    passwordAuth: z.enum(['scram-sha-256', 'any']).default('scram-sha-256'),
    /** @default 10 */
    connectTimeoutSeconds: z.number().int().min(1).max(300).default(10),
  })
  .strict()
  .superRefine((c, ctx) => {
    const sources = [c.secretArn, c.passwordEnv, c.iamAuth].filter((s) => s !== undefined).length;
    if (sources !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: 'set exactly one credential source: secretArn (deployed), iamAuth (deployed, RDS IAM authentication) or passwordEnv (CLI/local)',
        path: ['secretArn'],
      });
    }
    if (c.iamAuth && !c.username) ctx.addIssue({ code: 'custom', message: 'RDS IAM authentication signs a token for a database user: set username', path: ['username'] });
    if (c.iamAuth && !c.host) ctx.addIssue({ code: 'custom', message: 'RDS IAM authentication needs the endpoint host name (the token is signed for it)', path: ['host'] });
    if (c.iamAuth && c.sslMode === 'disable') ctx.addIssue({ code: 'custom', message: 'RDS IAM authentication requires TLS: use verify-full', path: ['sslMode'] });
    if (c.secretKmsKeyArn && !c.secretArn) ctx.addIssue({ code: 'custom', message: 'secretKmsKeyArn is the key of secretArn: set secretArn or remove it', path: ['secretKmsKeyArn'] });
    if (!c.secretArn && !c.host && !c.iamAuth) {
      ctx.addIssue({ code: 'custom', message: 'host is required unless the secret provides it', path: ['host'] });
    }
  });
export type ConnectionConfig = z.infer<typeof connectionSchema>;

export const compressionSchema = z
  .object({
    /**
     * `auto` picks zstd when pg_dump supports it (16+), otherwise pg_dump's gzip.
     * @default 'auto'
     */
    codec: z.enum(['auto', 'zstd', 'lz4', 'gzip', 'none']).default('auto'),
    /** Codec level; low zstd levels give the best time/size trade-off. */
    level: z.number().int().min(0).max(22).optional(),
  })
  .strict();

export const dumpSettingsSchema = z
  .object({
    /** @default { codec: 'auto' } */
    compression: compressionSchema.default({ codec: 'auto' }),
    /** pg_dump --lock-wait-timeout: fail instead of queueing behind a long lock. @default 300 */
    lockWaitTimeoutSeconds: z.number().int().min(1).max(86_400).default(300),
    /** Schemas passed to pg_dump --exclude-schema. @default [] */
    excludeSchemas: z.array(z.string().min(1)).default([]),
    /** Where the dump runs: Lambda (15 min cap) or Fargate from the same image. @default 'lambda' */
    runner: z.enum(['lambda', 'fargate']).default('lambda'),
  })
  .strict();
export type DumpSettings = z.infer<typeof dumpSettingsSchema>;

/**
 * A database id whose snapshots would be named like a drill's throwaway
 * (`lifeboat-drill-*`) would put real backups in reach of the janitor's rights.
 */
const databaseId = identifier.refine((id) => id !== 'drill' && !id.startsWith('drill-'), 'must not be "drill" or start with "drill-": its snapshots would be named like drill throwaways (lifeboat-drill-*)');

export const databaseSchema = z
  .object({
    id: databaseId,
    /**
     * Which source (account and region) holds this database: `source.id` or an
     * `additionalSources[].id`. Its source stack dumps it.
     * @default - the primary `source`
     */
    source: identifier.optional(),
    connection: connectionSchema,
    /** RDS instance or Aurora cluster behind this database, for snapshots. */
    rds: z
      .union([
        z.object({ instanceIdentifier: z.string().min(1) }).strict(),
        z.object({ clusterIdentifier: z.string().min(1) }).strict(),
      ])
      .optional(),
    /** @default {} */
    dump: dumpSettingsSchema.default({
      compression: { codec: 'auto' },
      lockWaitTimeoutSeconds: 300,
      excludeSchemas: [],
      runner: 'lambda',
    }),
  })
  .strict();
export type DatabaseConfig = z.infer<typeof databaseSchema>;

/** Grandfather-father-son retention at one location. */
export const retentionPolicySchema = z
  .object({
    /** Keep the newest N regardless of age. @default 7 */
    keepLast: z.number().int().min(0).max(10_000).default(7),
    daily: z.number().int().min(0).max(10_000).default(7),
    weekly: z.number().int().min(0).max(10_000).default(4),
    monthly: z.number().int().min(0).max(10_000).default(12),
    yearly: z.number().int().min(0).max(1_000).default(0),
    /** Nothing younger than this is ever deleted, whatever the counts say. @default 1 */
    minAgeDays: z.number().int().min(0).max(36_500).default(1),
  })
  .strict()
  .refine((p) => p.keepLast + p.daily + p.weekly + p.monthly + p.yearly > 0, {
    message: 'this policy keeps nothing: set keepLast or at least one of daily/weekly/monthly/yearly above 0',
  });
export type RetentionPolicy = z.infer<typeof retentionPolicySchema>;

/**
 * Databases in one plan: the size at which every run is proven inside Step
 * Functions' limits, failures included (test/integration/fleet.test.ts). Each
 * run starts a child execution per database (retention: per database and
 * location) and keeps 8 history events and a short result per child: at 1,000
 * databases the backup run takes 8,017 events and 112 KB, the retention run
 * (two locations, one of them failing everywhere) 16,013 events and 116 KB,
 * and its schedule input lists 2,000 targets (at most 176 KB with 48-character
 * ids, under EventBridge Scheduler's 256 KB).
 */
export const MAX_DATABASES_PER_PLAN = 1000;

export const scheduleSchema = z
  .object({
    /** EventBridge Scheduler cron expression, e.g. `cron(0 3 * * ? *)`. */
    cron: z.string().regex(/^cron\(\S+ \S+ \S+ \S+ \S+ \S+\)$/, 'must be an EventBridge cron(...) expression with six fields'),
    timezone: timeZone.default('UTC'),
    /** Flexible time window; 0 runs exactly on time. @default 0 */
    flexibleWindowMinutes: z.number().int().min(0).max(1440).default(0),
  })
  .strict();

/** RDS keeps automated backups (the point-in-time window) for 1 to 35 days; Aurora the same. */
export const PITR_WINDOW_DAYS = { min: 1, max: 35 } as const;

/**
 * Point-in-time recovery of a plan's RDS instances and Aurora clusters: the
 * window RDS keeps (automated backups and WAL, BackupRetentionPeriod), checked
 * on every backup run and by `lifeboat pitr status`, optionally replicated to
 * the copy region (`snapshots.copy.region`), and drilled.
 */
export const pitrSchema = z
  .object({
    /** The window every database of the plan must keep: BackupRetentionPeriod at least this (RDS allows 1 to 35). */
    windowDays: z.number().int().min(PITR_WINDOW_DAYS.min, `RDS keeps automated backups for ${PITR_WINDOW_DAYS.min} to ${PITR_WINDOW_DAYS.max} days`).max(PITR_WINDOW_DAYS.max, `RDS keeps automated backups for ${PITR_WINDOW_DAYS.min} to ${PITR_WINDOW_DAYS.max} days`),
    /**
     * RDS instances replicate their automated backups to the copy region
     * (`snapshots.copy.region`, encrypted there with `snapshots.copy.kmsKeyArn`),
     * so the window survives the loss of the source region. Aurora has no
     * automated-backup replication: its databases rely on snapshot copies.
     * @default false
     */
    copyRegion: z.boolean().default(false),
    /**
     * lifeboat starts the copy region's replication where it is missing
     * (StartDBInstanceAutomatedBackupsReplication, in the copy region). Off, it only reports.
     * @default false
     */
    manage: z.boolean().default(false),
    /**
     * PITR RPO: the newest restorable moment (LatestRestorableTime) may lag this far
     * behind now before the freshness alarm fires. RDS ships logs about every 5 minutes.
     * @default 15
     */
    maxLagMinutes: z.number().int().min(6, 'RDS ships logs about every 5 minutes: a lag under 6 minutes would alarm on normal operation').max(1440).default(15),
    /**
     * PITR drills (drill kind `pitr`, the default drill of the plan's databases when set):
     * `moment` is the newest restorable moment (`latest`), a random moment inside the
     * window (`random`), or the consistent point of the newest dump inside the window
     * (`dump`: the restored database is then compared with that dump's manifest).
     * `from`: the source region, or the replicated automated backups in the copy region.
     * @default - no PITR drills
     */
    drill: z
      .object({
        /** @default 'dump' when the plan dumps, else 'latest' */
        moment: z.enum(['latest', 'random', 'dump']).optional(),
        /** @default 'source' */
        from: z.enum(['source', 'copy-region']).default('source'),
        /**
         * With `moment: 'dump'`: how many rows (and large objects) a table of the restored
         * database may differ from the dump's manifest before the row-count check fails.
         * A restore to the dump's consistent point differs from the dump's snapshot only
         * by the transactions committing at that instant;
         * raise it for tables written in large batches.
         * @default 10
         */
        inFlightRows: z.number().int().min(0).max(1_000_000).default(10),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((p) => p.drill?.from !== 'copy-region' || p.copyRegion, { message: 'PITR drills from the copy region restore its replicated automated backups: set copyRegion: true', path: ['drill', 'from'] });
export type PitrConfig = z.infer<typeof pitrSchema>;

export const planSchema = z
  .object({
    id: identifier,
    schedule: scheduleSchema,
    /**
     * Database ids this plan backs up: at most {@link MAX_DATABASES_PER_PLAN}, the
     * size at which one run of each workflow is proven to stay inside Step
     * Functions' limits (test/integration/fleet.test.ts, docs/limits.md "Fleet size").
     */
    databases: z
      .array(identifier)
      .min(1)
      .max(MAX_DATABASES_PER_PLAN, `at most ${MAX_DATABASES_PER_PLAN} databases per plan, the size proven to run inside Step Functions' history and payload limits (docs/limits.md, "Fleet size"). Split the databases over several plans (each runs as its own executions)`),
    /** Recovery point objective: the newest backup must never be older than this. */
    rpoMinutes: z.number().int().min(1),
    /** Recovery time objective: a drill must restore within this. */
    rtoMinutes: z.number().int().min(1),
    /**
     * Dead man's switch: a CloudWatch alarm per database that fires when no dump
     * succeeded within the RPO (missing data counts as late). Only turn it off
     * knowingly; see docs/limits.md for RPOs over 167 hours.
     * @default true
     */
    backupAgeAlarm: z.boolean().default(true),
    /** @default true */
    dump: z.boolean().default(true),
    /** @default false */
    snapshot: z.boolean().default(false),
    /** @default 4 */
    maxConcurrency: z.number().int().min(1).max(19).default(4),
    /** Point-in-time recovery posture and drills of the plan's RDS instances and Aurora clusters. @default - not checked */
    pitr: pitrSchema.optional(),
    retention: z
      .object({
        source: retentionPolicySchema.optional(),
        copyRegion: retentionPolicySchema.optional(),
        vault: retentionPolicySchema.optional(),
      })
      .strict()
      .default({}),
  })
  .strict()
  .refine((p) => p.dump || p.snapshot, { message: 'a plan must take a dump, a snapshot, or both', path: ['dump'] });
export type PlanConfig = z.infer<typeof planSchema>;

export const storageSchema = z
  .object({
    /** Existing bucket to write to; when absent the source stack creates one. */
    bucketName: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name').optional(),
    /** KMS key ARN for envelope encryption; when absent the source stack creates one. */
    kmsKeyArn: arn.optional(),
    /** @default 'backups/' */
    prefix: z
      .string()
      .regex(/^([a-zA-Z0-9!_.'()-]+\/)*$/, 'must be empty or end with / and use S3-safe characters (no *: the vault\'s policies name keys under it)')
      .default('backups/'),
  })
  .strict();

/** The VPC the runners (Lambda functions, Fargate dump tasks) use in one source account and region. */
export const networkSchema = z
  .object({
    vpcId: z.string().regex(/^vpc-[0-9a-f]+$/, 'must be a VPC id'),
    /** Private subnets for the functions and Fargate tasks; two or more availability zones recommended. */
    subnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, 'must be a subnet id')).min(1),
    /** Security groups of the runners; they must allow egress to the databases (and 443 to AWS). */
    securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]+$/, 'must be a security group id')).min(1),
    /**
     * How the runners reach AWS APIs. `vpc-endpoints`: the source stack creates an
     * S3 gateway endpoint and interface endpoints (KMS, Secrets Manager, SNS, STS,
     * RDS, Step Functions, CloudWatch, Logs; ECR too when a dump runs on Fargate).
     * `user-managed`: the VPC already reaches them (NAT gateway or your own endpoints).
     * @default 'vpc-endpoints'
     */
    egress: z.enum(['vpc-endpoints', 'user-managed']).default('vpc-endpoints'),
    /** Route tables of the subnets, for the S3 gateway endpoint (egress `vpc-endpoints`). @default [] */
    routeTableIds: z.array(z.string().regex(/^rtb-[0-9a-f]+$/, 'must be a route table id')).default([]),
  })
  .strict()
  .refine((n) => n.egress !== 'vpc-endpoints' || n.routeTableIds.length > 0, {
    message: 'the S3 gateway endpoint is added to route tables: list the subnets\' routeTableIds, or set egress to "user-managed"',
    path: ['routeTableIds'],
  });
export type NetworkConfig = z.infer<typeof networkSchema>;

const sourceShape = {
  account: awsAccount.optional(),
  region: awsRegion,
  /** @default - functions run outside any VPC (Fargate dumps need a network) */
  network: networkSchema.optional(),
};
/** An account and region holding databases; one source stack each. */
export const sourceSchema = z
  .object({
    /** Names this source in `databases[].source`. @default 'primary' */
    id: identifier.default('primary'),
    ...sourceShape,
  })
  .strict();
export const additionalSourceSchema = z.object({ id: identifier, ...sourceShape }).strict();
export type SourceConfig = z.infer<typeof sourceSchema>;

export const subscriberSchema = z.discriminatedUnion('protocol', [
  z.object({ protocol: z.literal('email'), endpoint: z.email() }).strict(),
  z.object({ protocol: z.literal('https'), endpoint: z.url({ protocol: /^https$/ }) }).strict(),
  z.object({ protocol: z.literal('sqs'), endpoint: arn }).strict(),
  z.object({ protocol: z.literal('lambda'), endpoint: arn }).strict(),
]);

export const vaultSchema = z
  .object({
    account: awsAccount,
    region: awsRegion,
    /** Object Lock compliance-mode retention for every object in the vault. */
    retentionDays: z.number().int().min(1).max(36_500),
    /**
     * Vault-account roles that may still change the vault's lock configuration,
     * policies and keys, or delete expired copies; the vault's bucket and key
     * policies deny that to everyone else. The vault account's CDK deployment
     * role is always included. Never name a role the production account can assume.
     * @default []
     */
    adminRoleArns: z.array(arn).optional(),
    /**
     * The vault stack's RecoveryKey (its output). Every dump's data key is also
     * wrapped under it (production may only kms:Encrypt with it), so vault copies
     * decrypt with vault-account access alone, even if production is gone.
     * Deploy the vault first, then set this. Without it, vault copies need the
     * production key to decrypt.
     */
    recoveryKmsKeyArn: arn.optional(),
  })
  .strict()
  .superRefine((vault, ctx) => {
    // The vault's own key, by key ARN: a production key or an alias would defeat the point.
    if (vault.recoveryKmsKeyArn === undefined) return;
    const m = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):key\/[0-9a-f-]{36}$/.exec(vault.recoveryKmsKeyArn);
    if (!m || m[1] !== vault.region || m[2] !== vault.account) {
      ctx.addIssue({
        code: 'custom',
        path: ['recoveryKmsKeyArn'],
        message: `must be the key ARN (not an alias) of the vault stack's RecoveryKey, in the vault account ${vault.account} and region ${vault.region}: its RecoveryKeyArn output`,
      });
    }
  });

/**
 * RDS/Aurora snapshot settings for plans with `snapshot: true`. The whole
 * section is optional; `resolveSnapshotSettings` fills the defaults.
 */
export const snapshotSettingsSchema = z
  .object({
    /**
     * A copy in the production account under a customer managed key, normally
     * in another region (a cross-region copy). When its region is the vault's,
     * this re-encrypted copy is the one shared with the vault account, so a
     * database encrypted with the default `aws/rds` key can still reach the vault.
     */
    copy: z.object({ region: awsRegion, kmsKeyArn: arn }).strict().optional(),
    /** Snapshot databases whose storage is not encrypted. @default false */
    allowUnencrypted: z.boolean().default(false),
    /** Manual snapshot quota assumed when RDS DescribeAccountAttributes is unavailable. @default 100 */
    manualSnapshotQuota: z.number().int().min(1).max(100_000).default(100),
    /** Alert (kind `quota-warning`) when a new snapshot brings usage to this share of the quota. @default 90 */
    quotaWarningPercent: z.number().int().min(1).max(100).default(90),
    /** Longest wait for one snapshot or copy to become available before the run alerts; fractions allowed. @default 240 */
    maxWaitMinutes: z.number().positive().max(10_080).default(240),
  })
  .strict();
export type SnapshotSettings = z.infer<typeof snapshotSettingsSchema>;

/** The snapshot settings with defaults filled (the config section is optional). */
export function resolveSnapshotSettings(settings: z.input<typeof snapshotSettingsSchema> | undefined): SnapshotSettings {
  return snapshotSettingsSchema.parse(settings ?? {});
}

/** Which backup a drill restores: the newest, or a random one from the last N days. */
export const drillSelectionSchema = z.union([
  z.literal('latest'),
  z.object({ randomWithinDays: z.number().int().min(1).max(3650) }).strict(),
]);
export type DrillSelection = z.infer<typeof drillSelectionSchema>;

/** Per-plan or per-database drill overrides (the database's win, then the plan's, then `drills`'). */
const drillOverrides = {
  /** @default drills.selection */
  selection: drillSelectionSchema.optional(),
  /** Drill from the source bucket/region or from the vault copy. @default drills.from */
  from: z.enum(['source', 'vault']).optional(),
  /** Which kind of backup to drill. @default 'dump' when the plan dumps, else 'snapshot' */
  backupKind: z.enum(['dump', 'snapshot', 'pitr']).optional(),
};

/**
 * The classes Aurora PostgreSQL offers a provisioned instance: burstable T
 * classes from medium (db.t3.medium, db.t4g.medium, and large), memory-optimized
 * R and X classes from large (db.r6g.large, db.x2g.16xlarge, ...). No micro or
 * small, no M classes (AWS, "Supported DB engines for DB instance classes").
 */
const AURORA_POSTGRES_INSTANCE_CLASS = /^db\.(t3|t4g)\.(medium|large)$|^db\.[rx]\d+[a-z]*\.(large|\d*xlarge)$/;

/** Why Aurora PostgreSQL would refuse `instanceClass` for a restored cluster's instance, or undefined when it is one Aurora offers. */
export function auroraInstanceClassProblem(instanceClass: string): string | undefined {
  if (instanceClass === 'db.serverless') {
    return 'db.serverless needs a Serverless v2 scaling configuration on the restored cluster, which the drill does not set: use a provisioned class such as db.t4g.medium or db.r6g.large';
  }
  if (AURORA_POSTGRES_INSTANCE_CLASS.test(instanceClass)) return undefined;
  return `${instanceClass} is not an Aurora PostgreSQL instance class (Aurora starts at db.t3.medium / db.t4g.medium and offers R and X classes from large): use db.t4g.medium or, for large clusters, e.g. db.r6g.large`;
}

export const drillAssertionSchema = z
  .object({
    name: z.string().min(1).max(100),
    /** Must return exactly one row with one column that is `true`; runs read-only. */
    sql: z.string().min(1),
  })
  .strict();

export const drillsSchema = z
  .object({
    /** @default { cron: 'cron(0 4 * * ? *)', timezone: 'UTC' } */
    schedule: scheduleSchema.default({ cron: 'cron(0 4 * * ? *)', timezone: 'UTC', flexibleWindowMinutes: 0 }),
    /** @default 'latest' */
    selection: drillSelectionSchema.default('latest'),
    /** @default 'source' */
    from: z.enum(['source', 'vault']).default('source'),
    /** Instance class of the throwaway RDS instance. @default 'db.t4g.micro' */
    instanceClass: z.string().regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, 'must be an RDS instance class such as db.t4g.micro').default('db.t4g.micro'),
    /**
     * Instance class of the instance created in a restored Aurora cluster (snapshot
     * drills of `rds.clusterIdentifier` databases). Aurora PostgreSQL has no micro or
     * small classes; dump drills of Aurora databases restore into an RDS instance
     * of `instanceClass`.
     * @default 'db.t4g.medium'
     */
    auroraInstanceClass: z
      .string()
      .superRefine((value, ctx) => {
        const problem = auroraInstanceClassProblem(value);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .default('db.t4g.medium'),
    /** Isolated subnets for the throwaway: an existing DB subnet group, or subnet ids (a group is created per drill). */
    subnetGroupName: z.string().min(1).optional(),
    subnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, 'must be a subnet id')).min(2).optional(),
    /** @default [] */
    securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]+$/, 'must be a security group id')).default([]),
    /**
     * Where PITR drills from the copy region (`pitr.drill.from: 'copy-region'`) place
     * their throwaway: an existing DB subnet group and security groups in the copy
     * region. The drill's runners (in the source region) verify it over your
     * inter-region network (VPC peering or Transit Gateway) on its port.
     * @default - required when a plan drills from the copy region
     */
    copyRegionNetwork: z
      .object({
        subnetGroupName: z.string().min(1),
        /** @default [] */
        securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]+$/, 'must be a security group id')).default([]),
      })
      .strict()
      .optional(),
    /** Longest wait for the throwaway to become available before the drill fails. @default 60 */
    restoreTimeoutMinutes: z.number().int().min(1).max(1440).default(60),
    /** @default 30 */
    pollIntervalSeconds: z.number().int().min(5).max(600).default(30),
    /** Expiry tag on drill resources; the janitor deletes them after it. @default 360 */
    expiresAfterMinutes: z.number().int().min(30).max(10_080).default(360),
    /** amcheck on btree indexes: off, bt_index_check, or with heapallindexed. @default 'indexes' */
    amcheck: z.enum(['off', 'indexes', 'heapallindexed']).default('indexes'),
    /** Databases drilled at once. @default 2 */
    maxConcurrency: z.number().int().min(1).max(19).default(2),
    /**
     * The drill staleness alarm (`drill-late`): it fires when no drill of a
     * database has reported a result for this many hours (a stopped schedule, a
     * broken workflow). `false` turns it off.
     * @default - for a schedule that runs every day: 24 h plus the flexible window, restoreTimeoutMinutes and 2 h; required for other schedules
     */
    lateAfterHours: z.union([z.number().int().min(1).max(167), z.literal(false)]).optional(),
    /** @default [] */
    plans: z.array(z.object({ id: identifier, ...drillOverrides }).strict()).default([]),
    /** Databases to drill; when empty, every database of every plan. @default [] */
    databases: z
      .array(
        z
          .object({
            id: identifier,
            ...drillOverrides,
            /** @default [] */
            assertions: z.array(drillAssertionSchema).default([]),
            /** Newest row timestamp must lie within the plan's RPO before the backup's consistent point. */
            freshness: z.object({ table: z.string().min(1), column: z.string().min(1) }).strict().optional(),
          })
          .strict(),
      )
      .default([]),
  })
  .strict()
  .refine((d) => !(d.subnetGroupName && d.subnetIds), { message: 'set subnetGroupName or subnetIds, not both', path: ['subnetIds'] })
  .refine((d) => d.expiresAfterMinutes > d.restoreTimeoutMinutes, { message: 'must be longer than restoreTimeoutMinutes', path: ['expiresAfterMinutes'] });
export type DrillsConfig = z.infer<typeof drillsSchema>;

export const lifeboatConfigSchema = z
  .object({
    /** Deployment name; prefixes stacks and resources. */
    name: identifier,
    /** The primary account and region holding databases. */
    source: sourceSchema,
    /**
     * More accounts or regions holding databases, each with its own source stack;
     * `databases[].source` names one. Each (account, region) pair at most once.
     * @default []
     */
    additionalSources: z.array(additionalSourceSchema).default([]),
    databases: z.array(databaseSchema).min(1),
    plans: z.array(planSchema).min(1),
    storage: storageSchema.default({ prefix: 'backups/' }),
    alerts: z.object({ subscribers: z.array(subscriberSchema).default([]) }).strict().default({ subscribers: [] }),
    vault: vaultSchema.optional(),
    /** Snapshot settings (cross-region copy, quota, waits); defaults apply when absent. */
    snapshots: snapshotSettingsSchema.optional(),
    /** Nightly restore drills; absent means no scheduled drills (`lifeboat drill` still works). */
    drills: drillsSchema.optional(),
  })
  .strict()
  // Cross-references run even when other fields are bad (`when`), so one run
  // reports every problem; the value may therefore be partly malformed.
  .superRefine((value, ctx) => checkCrossReferences(value as unknown as LooseConfig, ctx), { when: () => true });

/** Concurrent Aurora cluster snapshot copies per region pair (FACTS: about 5). */
export const AURORA_COPY_CONCURRENCY = 5;

interface LooseConfig {
  databases?: Array<{ id?: unknown; rds?: unknown; source?: unknown } | undefined>;
  additionalSources?: Array<{ id?: unknown; account?: unknown; region?: unknown } | undefined>;
  plans?: Array<{ id?: unknown; databases?: unknown[]; snapshot?: unknown; pitr?: { copyRegion?: unknown; drill?: unknown } } | undefined>;
  vault?: unknown;
  source?: { region?: unknown };
  snapshots?: { copy?: { region?: unknown; kmsKeyArn?: unknown } };
  drills?: { plans?: Array<{ id?: unknown; from?: unknown } | undefined>; databases?: Array<{ id?: unknown; backupKind?: unknown; from?: unknown } | undefined>; from?: unknown };
}

function checkCrossReferences(cfg: LooseConfig, ctx: z.RefinementCtx): void {
  const databases = Array.isArray(cfg?.databases) ? cfg.databases : [];
  const plans = Array.isArray(cfg?.plans) ? cfg.plans : [];
  const ids = new Set<unknown>();
  databases.forEach((db, i) => {
    if (ids.has(db?.id)) ctx.addIssue({ code: 'custom', message: `duplicate database id "${String(db?.id)}"`, path: ['databases', i, 'id'] });
    ids.add(db?.id);
  });
  const planIds = new Set<unknown>();
  plans.forEach((plan, i) => {
    if (planIds.has(plan?.id)) ctx.addIssue({ code: 'custom', message: `duplicate plan id "${String(plan?.id)}"`, path: ['plans', i, 'id'] });
    planIds.add(plan?.id);
    const planDatabases = Array.isArray(plan?.databases) ? plan.databases : [];
    planDatabases.forEach((dbId, j) => {
      const db = databases.find((d) => d?.id === dbId);
      if (!db) {
        ctx.addIssue({ code: 'custom', message: `unknown database "${String(dbId)}"`, path: ['plans', i, 'databases', j] });
      } else if (plan?.snapshot === true && !db.rds) {
        ctx.addIssue({
          code: 'custom',
          message: `plan takes snapshots but database "${String(dbId)}" has no rds.instanceIdentifier or rds.clusterIdentifier`,
          path: ['plans', i, 'databases', j],
        });
      }
    });
    // Aurora allows only about 5 concurrent cluster snapshot copies per region pair.
    const maxConcurrency = (plan as { maxConcurrency?: unknown } | undefined)?.maxConcurrency;
    const copiesClusters =
      plan?.snapshot === true &&
      planDatabases.some((dbId) => {
        const rds = databases.find((d) => d?.id === dbId)?.rds as { clusterIdentifier?: unknown } | undefined;
        return rds?.clusterIdentifier !== undefined;
      });
    if (copiesClusters && typeof maxConcurrency === 'number' && maxConcurrency > AURORA_COPY_CONCURRENCY) {
      ctx.addIssue({
        code: 'custom',
        message: `this plan copies Aurora cluster snapshots, which AWS limits to about ${AURORA_COPY_CONCURRENCY} concurrent copies per region pair: set maxConcurrency to ${AURORA_COPY_CONCURRENCY} or less`,
        path: ['plans', i, 'maxConcurrency'],
      });
    }
  });
  checkDrillReferences(cfg, databases, plans, ctx);
  checkPitr(cfg, databases, plans, ctx);
  checkSourceReferences(cfg, databases, ctx);
  checkSnapshotSettings(cfg, plans, ctx);
}

/**
 * PITR needs an RDS instance or Aurora cluster behind every database of the
 * plan; replication to the copy region needs that region (and its key), and
 * exists for RDS instances only (Aurora has no automated-backup replication).
 */
function checkPitr(cfg: LooseConfig, databases: NonNullable<LooseConfig['databases']>, plans: NonNullable<LooseConfig['plans']>, ctx: z.RefinementCtx): void {
  plans.forEach((plan, i) => {
    const pitr = plan?.pitr;
    if (!pitr || typeof pitr !== 'object') return;
    const planDatabases = Array.isArray(plan?.databases) ? plan.databases : [];
    planDatabases.forEach((dbId, j) => {
      const rds = databases.find((d) => d?.id === dbId)?.rds as { clusterIdentifier?: unknown; instanceIdentifier?: unknown } | undefined;
      if (databases.some((d) => d?.id === dbId) && !rds) {
        ctx.addIssue({ code: 'custom', message: `point-in-time recovery is RDS's and Aurora's: database "${String(dbId)}" has no rds.instanceIdentifier or rds.clusterIdentifier`, path: ['plans', i, 'databases', j] });
      } else if (pitr.copyRegion === true && rds?.clusterIdentifier !== undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `database "${String(dbId)}" is an Aurora cluster, and Aurora has no automated-backup replication: turn pitr.copyRegion off for this plan (move the database to a plan without it) and rely on snapshot copies (snapshot: true with snapshots.copy) in the copy region`,
          path: ['plans', i, 'pitr', 'copyRegion'],
        });
      }
    });
    const drillFrom = (pitr.drill as { from?: unknown } | undefined)?.from;
    if (drillFrom === 'copy-region' && cfg?.drills && !(cfg.drills as { copyRegionNetwork?: unknown }).copyRegionNetwork) {
      ctx.addIssue({ code: 'custom', message: 'PITR drills from the copy region need a place there: set drills.copyRegionNetwork (a DB subnet group in the copy region, and security groups admitting the runners)', path: ['plans', i, 'pitr', 'drill', 'from'] });
    }
    if (pitr.copyRegion === true && !cfg?.snapshots?.copy?.region) {
      ctx.addIssue({ code: 'custom', message: 'pitr.copyRegion replicates automated backups to the copy region: set snapshots.copy.region (and its customer managed kmsKeyArn, which encrypts the replica)', path: ['plans', i, 'pitr', 'copyRegion'] });
    } else if (pitr.copyRegion === true && cfg?.snapshots?.copy?.region === cfg?.source?.region) {
      ctx.addIssue({ code: 'custom', message: 'pitr.copyRegion needs a copy region other than the source region: a replica in the same region does not survive its loss', path: ['plans', i, 'pitr', 'copyRegion'] });
    }
  });
}

/**
 * A snapshot reaches the vault by being shared from the production account in
 * the vault's region (a shared encrypted snapshot cannot change region), so that
 * region must be the source region or the copy region.
 */
function checkSnapshotSettings(cfg: LooseConfig, plans: NonNullable<LooseConfig['plans']>, ctx: z.RefinementCtx): void {
  const copy = cfg?.snapshots?.copy;
  if (copy && typeof copy.kmsKeyArn === 'string' && typeof copy.region === 'string') {
    const keyRegion = copy.kmsKeyArn.split(':')[3];
    if (keyRegion && keyRegion !== copy.region) {
      ctx.addIssue({ code: 'custom', message: `the key must be in the copy region ${copy.region}, not ${keyRegion}`, path: ['snapshots', 'copy', 'kmsKeyArn'] });
    }
  }
  const vaultRegion = (cfg?.vault as { region?: unknown } | undefined)?.region;
  if (!vaultRegion || !plans.some((plan) => plan?.snapshot === true)) return;
  if (vaultRegion !== cfg?.source?.region && vaultRegion !== copy?.region) {
    ctx.addIssue({
      code: 'custom',
      message: `snapshots reach the vault (${String(vaultRegion)}) by sharing a copy in that region: set snapshots.copy.region to "${String(vaultRegion)}" (with a customer managed kmsKeyArn there)`,
      path: ['snapshots', 'copy'],
    });
  }
}

/** Source ids are unique, each (account, region) pair holds one source stack, and databases name known sources. */
function checkSourceReferences(cfg: LooseConfig, databases: NonNullable<LooseConfig['databases']>, ctx: z.RefinementCtx): void {
  const primary = cfg?.source as { id?: unknown; account?: unknown; region?: unknown } | undefined;
  const extra = Array.isArray(cfg?.additionalSources) ? cfg.additionalSources : [];
  const ids = new Set<unknown>([primary?.id ?? 'primary']);
  const places = new Set<string>([`${String(primary?.account ?? '')}/${String(primary?.region)}`]);
  extra.forEach((s, i) => {
    if (ids.has(s?.id)) ctx.addIssue({ code: 'custom', message: `duplicate source id "${String(s?.id)}"`, path: ['additionalSources', i, 'id'] });
    ids.add(s?.id);
    const place = `${String(s?.account ?? '')}/${String(s?.region)}`;
    if (places.has(place)) {
      ctx.addIssue({ code: 'custom', message: `another source already uses account ${String(s?.account ?? '(default)')} in ${String(s?.region)}: one source stack per account and region`, path: ['additionalSources', i, 'region'] });
    }
    places.add(place);
  });
  databases.forEach((db, i) => {
    if (db?.source !== undefined && !ids.has(db.source)) {
      ctx.addIssue({ code: 'custom', message: `unknown source "${String(db.source)}"; known: ${[...ids].map((id) => `"${String(id)}"`).join(', ')}`, path: ['databases', i, 'source'] });
    }
  });
}

function checkDrillReferences(cfg: LooseConfig, databases: NonNullable<LooseConfig['databases']>, plans: NonNullable<LooseConfig['plans']>, ctx: z.RefinementCtx): void {
  const drills = cfg?.drills;
  if (drills?.from === 'vault' && !cfg.vault) ctx.addIssue({ code: 'custom', message: 'drills from the vault need a vault section', path: ['drills', 'from'] });
  (Array.isArray(drills?.plans) ? drills.plans : []).forEach((p, i) => {
    if (!plans.some((plan) => plan?.id === p?.id)) ctx.addIssue({ code: 'custom', message: `unknown plan "${String(p?.id)}"`, path: ['drills', 'plans', i, 'id'] });
    if (p?.from === 'vault' && !cfg.vault) ctx.addIssue({ code: 'custom', message: 'drills from the vault need a vault section', path: ['drills', 'plans', i, 'from'] });
    const backupKind = (p as { backupKind?: unknown } | undefined)?.backupKind;
    if (backupKind === 'pitr' && !plans.some((plan) => plan?.id === p?.id && plan?.pitr)) {
      ctx.addIssue({ code: 'custom', message: `PITR drills need plan "${String(p?.id)}" to have a pitr section`, path: ['drills', 'plans', i, 'backupKind'] });
    }
  });
  (Array.isArray(drills?.databases) ? drills.databases : []).forEach((d, i) => {
    const db = databases.find((x) => x?.id === d?.id);
    if (!db) ctx.addIssue({ code: 'custom', message: `unknown database "${String(d?.id)}"`, path: ['drills', 'databases', i, 'id'] });
    else if ((d?.backupKind === 'snapshot' || d?.backupKind === 'pitr') && !db.rds) {
      ctx.addIssue({ code: 'custom', message: `${String(d?.backupKind)} drills need rds.instanceIdentifier or rds.clusterIdentifier on database "${String(d?.id)}"`, path: ['drills', 'databases', i, 'backupKind'] });
    } else if (d?.backupKind === 'pitr' && !plans.some((p) => p?.pitr && Array.isArray(p.databases) && p.databases.includes(d?.id))) {
      ctx.addIssue({ code: 'custom', message: `PITR drills need a plan with a pitr section that holds database "${String(d?.id)}"`, path: ['drills', 'databases', i, 'backupKind'] });
    }
    if (d?.from === 'vault' && !cfg.vault) ctx.addIssue({ code: 'custom', message: 'drills from the vault need a vault section', path: ['drills', 'databases', i, 'from'] });
  });
}

export type LifeboatConfig = z.infer<typeof lifeboatConfigSchema>;
export type LifeboatConfigInput = z.input<typeof lifeboatConfigSchema>;
