import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { KMS } from '@aws-sdk/client-kms';
import { z } from 'zod';
import { DumpFailedError } from '../errors.ts';
import { libpqEnv, type ResolvedConnection } from '../pg/connection.ts';
import { postgresBinary } from '../pg/binaries.ts';
import { globalsDocumentSchema, type GlobalsDocument } from '../pg/roles.ts';
import type { SecretRegistry } from '../redact.ts';
import { classifyKmsError, createEncryptStream } from './encryption.ts';
import { classifyS3Error } from './s3-errors.ts';

/**
 * The manifest's reference to a backup's globals object (`globals.enc`): the
 * roles and tablespaces of the cluster, encrypted and checksummed like the
 * dump, under the same encryption context plus `lifeboat:object: globals`, so
 * neither object can be passed off as the other.
 */
export const globalsReferenceSchema = z.object({
  key: z.string(),
  rawBytes: z.number().int().nonnegative(),
  storedBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  encryptionContext: z.record(z.string(), z.string()),
  /** Names of the roles recorded (predefined pg_* roles aside), so a restore's preflight can tell what it must create. */
  roles: z.array(z.string()),
  /** Tablespaces of the source cluster other than pg_default and pg_global. */
  tablespaces: z.array(z.string()),
  /** The tablespaces this database's relations live in: a target must have them, or the restore is told to use its default. */
  tablespacesUsed: z.array(z.string()),
});
export type GlobalsReference = z.infer<typeof globalsReferenceSchema>;

export function globalsEncryptionContext(context: Record<string, string>): Record<string, string> {
  return { ...context, 'lifeboat:object': 'globals' };
}

/** pg_dumpall of the same major as the chosen pg_dump, from its directory; else the default one. */
function pgDumpallBeside(pgDumpPath: string): string {
  const beside = join(dirname(pgDumpPath), 'pg_dumpall');
  return existsSync(beside) ? beside : postgresBinary('pg_dumpall');
}

/** `pg_dumpall --globals-only --no-role-passwords`: reads pg_roles, not pg_authid, so it works on RDS and Aurora. */
export async function runPgDumpallGlobals(conn: ResolvedConnection, pgDumpPath: string, where: string, registry: SecretRegistry): Promise<{ versionOutput: string; sql: string }> {
  const path = pgDumpallBeside(pgDumpPath);
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(path, args, { env: libpqEnv(conn, 'lifeboat-pg_dumpall'), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
      child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr = (stderr + t).slice(-8192)));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });
  let version: Awaited<ReturnType<typeof run>>;
  let out: Awaited<ReturnType<typeof run>>;
  try {
    version = await run(['--version']);
    out = await run(['--globals-only', '--no-role-passwords', `--database=${conn.database}`, '--no-password']);
  } catch (error) {
    throw new DumpFailedError(`Could not start pg_dumpall for ${where}: ${(error as Error).message}`, { cause: error });
  }
  if (out.code !== 0) {
    throw new DumpFailedError(`pg_dumpall --globals-only for ${where} exited with code ${out.code}: ${registry.redact(out.stderr.trim()) || '(no output)'}`, {
      nextStep: 'nothing was stored; the backup user must be able to read pg_roles and pg_tablespace (every role can by default). Fix the cause above and rerun the backup.',
    });
  }
  return { versionOutput: version.stdout.trim(), sql: out.stdout };
}

/** Encrypts a small document in memory (the globals are kilobytes) and returns the message. */
async function encryptBuffer(kms: KMS, keyArn: string, context: Record<string, string>, recoveryKeyArns: readonly string[], plaintext: Buffer): Promise<Buffer> {
  const stream = createEncryptStream(kms, keyArn, context, recoveryKeyArns);
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  stream.end(plaintext);
  try {
    await done;
  } catch (error) {
    throw classifyKmsError(error, 'to generate a data key', keyArn) ?? error;
  }
  return Buffer.concat(chunks);
}

export interface StoreGlobalsJob {
  s3: S3Client;
  kms: KMS;
  bucket: string;
  key: string;
  kmsKeyArn: string;
  recoveryKmsKeyArns: readonly string[];
  /** The backup's encryption context; `lifeboat:object: globals` is added. */
  context: Record<string, string>;
  document: GlobalsDocument;
  tablespacesUsed: string[];
}

/** Writes `globals.enc` and returns the manifest's reference to it. */
export async function storeGlobals(job: StoreGlobalsJob): Promise<GlobalsReference> {
  const document = globalsDocumentSchema.parse(job.document);
  const plaintext = Buffer.from(JSON.stringify(document), 'utf8');
  const encryptionContext = globalsEncryptionContext(job.context);
  const stored = await encryptBuffer(job.kms, job.kmsKeyArn, encryptionContext, job.recoveryKmsKeyArns, plaintext);
  const digest = createHash('sha256').update(stored).digest();
  try {
    await job.s3.send(
      new PutObjectCommand({
        Bucket: job.bucket,
        Key: job.key,
        Body: stored,
        ContentType: 'application/octet-stream',
        ChecksumAlgorithm: 'SHA256',
        ChecksumSHA256: digest.toString('base64'),
      }),
    );
  } catch (error) {
    throw classifyS3Error(error, 'writing the globals (roles, tablespaces)', job.bucket, job.key) ?? error;
  }
  return {
    key: job.key,
    rawBytes: plaintext.length,
    storedBytes: stored.length,
    sha256: digest.toString('hex'),
    encryptionContext,
    roles: document.roles.map((r) => r.name),
    tablespaces: document.tablespaces.map((t) => t.name),
    tablespacesUsed: job.tablespacesUsed,
  };
}
