import { z } from 'zod';
import { auroraInstanceClassProblem, drillAssertionSchema, drillSelectionSchema } from '../config/schema.ts';

/**
 * The drill's state-machine payload, piece by piece. Every piece is plain JSON
 * without secrets: the throwaway's password lives only in its Secrets Manager
 * secret, and the payload carries that secret's ARN.
 */

const isoTime = z.iso.datetime();

/** What one drill of one database should do; built from config by `drillRequestsFromConfig`. */
export const drillRequestSchema = z
  .object({
    databaseId: z.string().min(1),
    planId: z.string().min(1),
    /** Database to verify inside a restored snapshot; dump drills use the manifest's name. */
    databaseName: z.string().min(1).optional(),
    backupKind: z.enum(['dump', 'snapshot', 'pitr']).default('dump'),
    /**
     * PITR drills (`backupKind: 'pitr'`): the moment restored to, and from where
     * (the source region's automated backups, or their replica in the copy region).
     */
    pitr: z
      .object({
        moment: z.enum(['latest', 'random', 'dump']),
        from: z.enum(['source', 'copy-region']).default('source'),
        /** The copy region (`snapshots.copy.region`), for drills from it. */
        copyRegion: z.string().min(1).optional(),
        /** Rows a table may differ from the dump's manifest at its moment (pitr.drill.inFlightRows). */
        inFlightRows: z.number().int().min(0).default(10),
        /** The schemas the database's dumps leave out (dump.excludeSchemas): a restored instance has them, the manifest does not. */
        excludeSchemas: z.array(z.string()).default([]),
      })
      .strict()
      .optional(),
    selection: drillSelectionSchema.default('latest'),
    from: z.enum(['source', 'vault']).default('source'),
    /** A specific backup id (dumps) or snapshot identifier/ARN instead of `selection`. */
    backupId: z.string().min(1).optional(),
    /** The RDS instance or Aurora cluster whose snapshots are drilled. */
    rds: z
      .union([z.object({ instanceIdentifier: z.string().min(1) }).strict(), z.object({ clusterIdentifier: z.string().min(1) }).strict()])
      .optional(),
    /** The plan's objectives; fractions allowed (tests use tiny targets). */
    targets: z.object({ rpoMinutes: z.number().positive(), rtoMinutes: z.number().positive() }).strict(),
    assertions: z.array(drillAssertionSchema).default([]),
    freshness: z.object({ table: z.string().min(1), column: z.string().min(1) }).strict().optional(),
    amcheck: z.enum(['off', 'indexes', 'heapallindexed']).default('indexes'),
    instance: z
      .object({
        instanceClass: z.string().default('db.t4g.micro'),
        subnetGroupName: z.string().optional(),
        subnetIds: z.array(z.string()).optional(),
        securityGroupIds: z.array(z.string()).default([]),
      })
      .strict()
      .default({ instanceClass: 'db.t4g.micro', securityGroupIds: [] }),
    restoreTimeoutSeconds: z.number().int().positive().default(3600),
    /**
     * Where a dump drill's restore runs: on Fargate for a database dumped on
     * Fargate (its restore outlasts Lambda's 15 minutes as its dump does).
     */
    restoreRunner: z.enum(['lambda', 'fargate']).default('lambda'),
    /** Wait between availability polls (a Wait state, not a sleeping Lambda). */
    pollIntervalSeconds: z.number().int().min(0).default(30),
    expiresAfterMinutes: z.number().positive().default(360),
  })
  .strict()
  .superRefine((request, ctx) => {
    if (request.backupKind === 'pitr') {
      if (!request.rds) ctx.addIssue({ code: 'custom', message: `database "${request.databaseId}" is drilled to a point in time but names no RDS instance or Aurora cluster`, path: ['rds'] });
      if (!request.pitr) ctx.addIssue({ code: 'custom', message: `database "${request.databaseId}" is drilled to a point in time but its request has no pitr settings`, path: ['pitr'] });
      if (request.pitr?.from === 'copy-region' && !request.pitr.copyRegion) ctx.addIssue({ code: 'custom', message: 'a PITR drill from the copy region needs the copy region', path: ['pitr', 'copyRegion'] });
      if (request.pitr?.from === 'copy-region' && request.rds && 'clusterIdentifier' in request.rds) {
        ctx.addIssue({ code: 'custom', message: `database "${request.databaseId}" is an Aurora cluster: Aurora has no automated-backup replication to drill from the copy region`, path: ['pitr', 'from'] });
      }
    }
    // A restored Aurora cluster needs an instance of a class Aurora offers (RDS would refuse it only after the restore).
    if (request.backupKind === 'dump' || !request.rds || !('clusterIdentifier' in request.rds)) return;
    const problem = auroraInstanceClassProblem(request.instance.instanceClass);
    if (problem) ctx.addIssue({ code: 'custom', message: `database "${request.databaseId}" is an Aurora cluster: ${problem} (drills.auroraInstanceClass)`, path: ['instance', 'instanceClass'] });
  });
export type DrillRequest = z.infer<typeof drillRequestSchema>;
export type DrillRequestInput = z.input<typeof drillRequestSchema>;

export const dumpBackupSchema = z.object({
  kind: z.literal('dump'),
  backupId: z.string(),
  from: z.enum(['source', 'vault']),
  bucket: z.string(),
  prefix: z.string(),
  manifestKey: z.string(),
  consistentAt: isoTime,
  databaseName: z.string(),
  serverMajor: z.number().int(),
  sizeBytes: z.number().int().nonnegative(),
});

export const snapshotBackupSchema = z.object({
  kind: z.literal('snapshot'),
  backupId: z.string(),
  snapshotArn: z.string(),
  from: z.enum(['source', 'vault']),
  isCluster: z.boolean(),
  sourceIdentifier: z.string(),
  engine: z.string(),
  consistentAt: isoTime,
});

/**
 * A moment inside an RDS instance's or Aurora cluster's point-in-time window.
 * `consistentAt` is exactly the RestoreTime sent to RDS (for `latest`, RDS's
 * newest restorable moment when the drill selected it: an explicit time, so the
 * report says what was restored, not "whatever was newest at the call").
 */
export const pitrBackupSchema = z.object({
  kind: z.literal('pitr'),
  /** `<source>@<moment>`, or `<source>@latest`. */
  backupId: z.string(),
  from: z.enum(['source', 'copy-region']),
  /** The region restored in (the copy region for drills from it). */
  region: z.string().optional(),
  isCluster: z.boolean(),
  sourceIdentifier: z.string(),
  /** The replicated automated backups in the copy region (SourceDBInstanceAutomatedBackupsArn). */
  automatedBackupsArn: z.string().optional(),
  engine: z.string(),
  moment: z.enum(['latest', 'random', 'dump']),
  consistentAt: isoTime,
  window: z.object({ earliest: isoTime, latest: isoTime, retentionDays: z.number().int() }),
  /** For `moment: 'dump'`: the dump whose consistent point is the moment; the restored database is compared with its manifest. */
  dump: z.object({ backupId: z.string(), bucket: z.string(), manifestKey: z.string(), from: z.enum(['source', 'vault']), consistentAt: isoTime }).optional(),
});
export type PitrBackup = z.infer<typeof pitrBackupSchema>;

export const selectionSchema = z.object({
  drillId: z.string(),
  startedAt: isoTime,
  expiresAt: isoTime,
  choice: z.enum(['latest', 'random', 'explicit']),
  candidates: z.number().int().nonnegative(),
  /** Consistent point of the newest committed backup (for the backup-age check). */
  newestConsistentAt: isoTime,
  backup: z.discriminatedUnion('kind', [dumpBackupSchema, snapshotBackupSchema, pitrBackupSchema]),
});
export type Selection = z.infer<typeof selectionSchema>;
export type SelectedBackup = Selection['backup'];

export const instanceRefSchema = z.object({
  provider: z.enum(['local', 'rds']),
  drillId: z.string(),
  identifier: z.string(),
  clusterIdentifier: z.string().optional(),
  createdSubnetGroup: z.string().optional(),
  /** Where the throwaway lives: the source region, the vault's, or (PITR drills from replicated backups) the copy region. */
  from: z.enum(['source', 'vault', 'copy-region']),
  /** True where the instance is an API-level emulation (moto) that holds no data. */
  emulated: z.boolean(),
  /** The production instance or cluster a PITR throwaway was restored from (same region): never to be touched. */
  source: z.object({ identifier: z.string(), cluster: z.boolean() }).optional(),
  endpoint: z.object({ host: z.string(), port: z.number().int() }).optional(),
  /** Local clusters only: where the data directory lives (gone after teardown). */
  dataDir: z.string().optional(),
  createdAt: isoTime,
});
export type InstanceRef = z.infer<typeof instanceRefSchema>;
export type ProviderName = InstanceRef['provider'];

/**
 * `inexact`: a comparison that cannot be exact by nature and found a difference
 * within what that allows (a point-in-time restore to a dump's consistent point
 * differs from the dump by the transactions in flight at that instant). It is
 * reported with its differences and does not fail the drill.
 */
export const checkStatus = z.enum(['passed', 'failed', 'skipped', 'not-performed', 'inexact']);
export const drillCheckSchema = z.object({
  name: z.string(),
  status: checkStatus,
  detail: z.string(),
  differences: z.array(z.string()).default([]),
});
export type DrillCheck = z.infer<typeof drillCheckSchema>;

const versionSchema = z.object({ version: z.string(), major: z.number().int() });
/** Which pg_restore a dump drill ran, for which archive and into which server. */
export const restoreClientSchema = z.object({
  pgRestore: versionSchema,
  /** The pg_dump that wrote the archive. */
  pgDump: versionSchema,
  targetServerVersion: z.string(),
});
export type RestoreClientRecord = z.infer<typeof restoreClientSchema>;

export const restoreOutcomeSchema = z.object({
  kind: z.enum(['dump', 'snapshot', 'pitr']),
  database: z.string(),
  /** Dump drills: the client that restored (absent for snapshots and emulated instances). */
  client: restoreClientSchema.optional(),
  /** Checks the restore itself proved (sha256, decryption, pg_restore) and the manifest comparison. */
  checks: z.array(drillCheckSchema),
  firstVerificationQueryAt: isoTime.optional(),
  timings: z.object({ downloadMs: z.number(), restoreMs: z.number(), verifyMs: z.number() }).optional(),
});
export type RestoreOutcome = z.infer<typeof restoreOutcomeSchema>;

export const verificationSchema = z.object({
  checks: z.array(drillCheckSchema),
  firstVerificationQueryAt: isoTime.optional(),
  /** The newest value of the freshness column found in the restored database (drills with `freshness`). */
  newestRowAt: isoTime.optional(),
  emulated: z.boolean(),
});
export type Verification = z.infer<typeof verificationSchema>;

const objective = z.object({
  seconds: z.number().nullable(),
  targetSeconds: z.number(),
  /** null: not measured (emulated, or the drill failed before the point that ends it). */
  met: z.boolean().nullable(),
  note: z.string(),
});
export const measurementSchema = z.object({
  verdict: z.enum(['passed', 'failed', 'emulated']),
  summary: z.string(),
  rto: objective,
  rpo: objective.extend({
    basis: z.enum(['drilled-backup', 'newest-backup', 'latest-restorable']),
    /** The data's own RPO: the restored moment (or backup's consistent point) minus the newest row found (drills with `freshness`). */
    dataLagSeconds: z.number().nullable().optional(),
  }),
  objectivesMet: z.boolean(),
  objectiveSummary: z.string(),
});
export type Measurement = z.infer<typeof measurementSchema>;

export const teardownItemSchema = z.object({
  type: z.string(),
  id: z.string(),
  outcome: z.enum(['deleted', 'absent', 'pending', 'kept', 'failed']),
  detail: z.string().optional(),
});
export type TeardownItem = z.infer<typeof teardownItemSchema>;
export const teardownSchema = z.object({ completedAt: isoTime, items: z.array(teardownItemSchema) });
export type DrillTeardown = z.infer<typeof teardownSchema>;

/** Step Functions' Catch output. */
const caughtSchema = z.object({ Error: z.string().optional(), Cause: z.string().optional() });

export const drillStateSchema = z.object({
  request: drillRequestSchema,
  executionId: z.string().optional(),
  selection: selectionSchema.optional(),
  instance: instanceRefSchema.optional(),
  readiness: z.unknown().optional(),
  credentials: z.object({ secretArn: z.string(), setAt: isoTime }).optional(),
  restore: restoreOutcomeSchema.optional(),
  verification: verificationSchema.optional(),
  measurement: measurementSchema.optional(),
  teardown: teardownSchema.optional(),
  error: caughtSchema.optional(),
  teardownError: caughtSchema.optional(),
});
export type DrillState = z.infer<typeof drillStateSchema>;
export type DrillStateInput = z.input<typeof drillStateSchema>;

/** At most this many differences per check travel in payloads and reports. */
export const MAX_DIFFERENCES = 20;
export function capDifferences(differences: readonly string[]): string[] {
  if (differences.length <= MAX_DIFFERENCES) return [...differences];
  return [...differences.slice(0, MAX_DIFFERENCES), `... and ${differences.length - MAX_DIFFERENCES} more`];
}
