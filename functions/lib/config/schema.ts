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
     * libpq sslmode. `verify-full` checks the server certificate against the RDS CA
     * bundle shipped in the container image.
     * @default 'verify-full'
     */
    sslMode: z.enum(['disable', 'require', 'verify-ca', 'verify-full']).default('verify-full'),
    /** @default 10 */
    connectTimeoutSeconds: z.number().int().min(1).max(300).default(10),
  })
  .strict()
  .superRefine((c, ctx) => {
    const sources = [c.secretArn, c.passwordEnv].filter((s) => s !== undefined).length;
    if (sources !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: 'set exactly one credential source: secretArn (deployed) or passwordEnv (CLI/local)',
        path: ['secretArn'],
      });
    }
    if (!c.secretArn && !c.host) {
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

export const databaseSchema = z
  .object({
    id: identifier,
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

export const scheduleSchema = z
  .object({
    /** EventBridge Scheduler cron expression, e.g. `cron(0 3 * * ? *)`. */
    cron: z.string().regex(/^cron\(\S+ \S+ \S+ \S+ \S+ \S+\)$/, 'must be an EventBridge cron(...) expression with six fields'),
    timezone: timeZone.default('UTC'),
    /** Flexible time window; 0 runs exactly on time. @default 0 */
    flexibleWindowMinutes: z.number().int().min(0).max(1440).default(0),
  })
  .strict();

export const planSchema = z
  .object({
    id: identifier,
    schedule: scheduleSchema,
    /** Database ids this plan backs up. */
    databases: z.array(identifier).min(1),
    /** Recovery point objective: the newest backup must never be older than this. */
    rpoMinutes: z.number().int().min(1),
    /** Recovery time objective: a drill must restore within this. */
    rtoMinutes: z.number().int().min(1),
    /** @default true */
    dump: z.boolean().default(true),
    /** @default false */
    snapshot: z.boolean().default(false),
    /** @default 4 */
    maxConcurrency: z.number().int().min(1).max(19).default(4),
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
      .regex(/^([a-zA-Z0-9!_.*'()-]+\/)*$/, 'must be empty or end with / and use S3-safe characters')
      .default('backups/'),
  })
  .strict();

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
  })
  .strict();

export const lifeboatConfigSchema = z
  .object({
    /** Deployment name; prefixes stacks and resources. */
    name: identifier,
    source: z.object({ account: awsAccount.optional(), region: awsRegion }).strict(),
    databases: z.array(databaseSchema).min(1),
    plans: z.array(planSchema).min(1),
    storage: storageSchema.default({ prefix: 'backups/' }),
    alerts: z.object({ subscribers: z.array(subscriberSchema).default([]) }).strict().default({ subscribers: [] }),
    vault: vaultSchema.optional(),
  })
  .strict()
  // Cross-references run even when other fields are bad (`when`), so one run
  // reports every problem; the value may therefore be partly malformed.
  .superRefine((value, ctx) => checkCrossReferences(value as unknown as LooseConfig, ctx), { when: () => true });

interface LooseConfig {
  databases?: Array<{ id?: unknown; rds?: unknown } | undefined>;
  plans?: Array<{ id?: unknown; databases?: unknown[]; snapshot?: unknown } | undefined>;
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
  });
}

export type LifeboatConfig = z.infer<typeof lifeboatConfigSchema>;
export type LifeboatConfigInput = z.input<typeof lifeboatConfigSchema>;
