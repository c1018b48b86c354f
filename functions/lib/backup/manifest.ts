import { z } from 'zod';
import { databaseStateSchema } from '../pg/database-state.ts';
import { privilegesInventorySchema } from '../pg/privileges.ts';
import { globalsReferenceSchema } from './globals.ts';

/**
 * The manifest is the commit marker of a backup: it is written last, beside the
 * data, and an object without one is not a backup. It also carries everything a
 * restore needs to find, verify and decrypt the data with vault access only.
 */
export const MANIFEST_FORMAT_VERSION = 1;

export const tableInventorySchema = z.object({
  schema: z.string(),
  name: z.string(),
  /** r = table or partition, m = materialized view (its contents are recomputed on restore). */
  kind: z.enum(['r', 'm']),
  rows: z.number().int().nonnegative(),
});
export type TableInventory = z.infer<typeof tableInventorySchema>;

export const sequenceInventorySchema = z.object({
  schema: z.string(),
  name: z.string(),
  lastValue: z.string(),
  isCalled: z.boolean(),
});
export type SequenceInventory = z.infer<typeof sequenceInventorySchema>;

export const inventorySchema = z.object({
  tables: z.array(tableInventorySchema),
  sequences: z.array(sequenceInventorySchema),
  largeObjects: z.number().int().nonnegative(),
  /** sha256 over a canonical description of the schema (owners and grants excluded). */
  schemaFingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  /** The description's form (functions/lib/pg/inventory.ts SCHEMA_FINGERPRINT_VERSION). @default 1 (older manifests) */
  schemaFingerprintVersion: z.number().int().min(1).optional(),
  /** The description's lines, gzip and base64, so a mismatch names the objects that differ. @default absent (older manifests) */
  schemaLines: z.string().optional(),
  extensions: z.array(z.string()),
  /** Owners and ACLs (functions/lib/pg/privileges.ts). @default absent (older manifests: restored with --no-owner --no-privileges) */
  privileges: privilegesInventorySchema.optional(),
});
export type Inventory = z.infer<typeof inventorySchema>;

export const manifestSchema = z.object({
  formatVersion: z.literal(MANIFEST_FORMAT_VERSION),
  backupId: z.string(),
  kind: z.literal('pg_dump'),
  planId: z.string().optional(),
  database: z.object({
    id: z.string(),
    name: z.string(),
    host: z.string(),
    port: z.number().int(),
    serverVersion: z.string(),
    serverVersionNum: z.number().int(),
    systemIdentifier: z.string().optional(),
    sizeBytes: z.number().int().nonnegative(),
    /** Settings, owner and ACL of the database itself (pg_dump without --create carries none). @default absent (older manifests) */
    state: databaseStateSchema.optional(),
  }),
  dump: z.object({
    tool: z.literal('pg_dump'),
    toolVersion: z.string(),
    toolMajor: z.number().int(),
    format: z.literal('custom'),
    compression: z.string(),
    snapshotId: z.string(),
    /**
     * The client that wrote the archive, as chosen among the installed majors
     * (the lowest at or above the server's). A restore needs pg_restore of at
     * least `toolMajor`; into PostgreSQL 16 or older, also below 17. Absent in
     * manifests written before lifeboat chose clients per server.
     */
    client: z
      .object({
        /** `pg_dump --version`, e.g. `pg_dump (PostgreSQL) 16.8`. */
        versionOutput: z.string(),
        /** The pg_dump majors the runner had. */
        installedMajors: z.array(z.number().int()),
        /** Why this one, e.g. `the server's major (PostgreSQL 16.8)`. */
        reason: z.string(),
      })
      .optional(),
  }),
  startedAt: z.iso.datetime(),
  /** When the exported snapshot was taken: the point in time the data reflects (for RPO). */
  consistentAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  object: z.object({
    bucket: z.string(),
    key: z.string(),
    rawBytes: z.number().int().nonnegative(),
    storedBytes: z.number().int().nonnegative(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    partSizeBytes: z.number().int().positive(),
    versionId: z.string().optional(),
  }),
  encryption: z.object({
    sdk: z.literal('aws-encryption-sdk'),
    kmsKeyArn: z.string(),
    /** Keys that also wrap the data key (e.g. the vault's recovery key); any one decrypts. */
    recoveryKmsKeyArns: z.array(z.string()).optional(),
    /** The context we asked for; the SDK adds its own `aws-crypto-public-key` entry. */
    encryptionContext: z.record(z.string(), z.string()),
    frameLength: z.number().int().positive(),
  }),
  inventory: inventorySchema,
  /** The cluster's roles and tablespaces, in their own object (`globals.enc`). @default absent (older manifests) */
  globals: globalsReferenceSchema.optional(),
});
export type Manifest = z.infer<typeof manifestSchema>;

/** S3 layout: `<prefix><databaseId>/<backupId>/{dump.enc,globals.enc,manifest.json}`. */
export function backupKeys(prefix: string, databaseId: string, backupId: string) {
  const base = `${prefix}${databaseId}/${backupId}/`;
  return { base, data: `${base}dump.enc`, globals: `${base}globals.enc`, manifest: `${base}manifest.json` };
}

/** Backup ids sort by time: `20261121T093600Z-1a2b3c`. */
export function newBackupId(at: Date, random: string): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${random}`;
}

export function parseBackupIdTime(backupId: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(backupId);
  if (!m) return undefined;
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}
