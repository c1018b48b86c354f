import { createWriteStream, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { KMS } from '@aws-sdk/client-kms';
import type { Manifest } from '../backup/manifest.ts';
import { ManifestMismatchError, RestoreFailedError } from '../errors.ts';
import { connect, describeTarget, libpqEnv, type ResolvedConnection } from '../pg/connection.ts';
import { applyDatabaseState, NOT_CARRIED_BY_PG_DUMP, type AppliedDatabaseState } from '../pg/database-state.ts';
import { quoteIdent, takeInventory } from '../pg/inventory.ts';
import { restoreClientFor, type ArchiveOrigin, type ChosenClient } from '../pg/tools.ts';
import { redactError, SecretRegistry } from '../redact.ts';
import { compareInventories, type ComparisonCheck } from './compare.ts';
import { fetchAndDecrypt, type FetchResult } from './fetch.ts';
import { createStagingDir } from './staging.ts';
import { forgivingStdinSink, runPgRestore } from './pg-restore.ts';

export interface RestoreDeps {
  s3: S3Client;
  kms: KMS;
  secretRegistry?: SecretRegistry;
  /** @default chosen per archive and target among the installed majors (see restoreClientFor) */
  pgRestorePath?: string;
  /** Where the decrypted archive is staged (it must be seekable for -j). @default os.tmpdir() */
  workDir?: string;
  onProgress?: (p: { storedBytes: number; totalBytes: number }) => void;
  /**
   * Aborts the restore (the CLI's SIGINT/SIGTERM): the download and pg_restore
   * stop, the staging directory is deleted and a database this restore created
   * is dropped, then the restore rejects with the signal's reason.
   */
  signal?: AbortSignal;
}

export interface RestoreOptions {
  /** Create the target database from template0; it must not exist. @default false */
  createDatabase?: boolean;
  /** Parallel pg_restore jobs; 1 restores in a single transaction. @default 1 */
  jobs?: number;
  /** Read the backup from this bucket instead of the manifest's (e.g. the vault copy). */
  bucket?: string;
  /**
   * What happens to a database this restore created when it does not match
   * its manifest. `rename`: kept, renamed `<name>_unverified` and commented as
   * such (it may be the only working copy; the check may be what is wrong).
   * `keep`: kept under its name (drills, whose throwaway goes anyway). `drop`:
   * dropped (`--drop-on-mismatch`, for scripts). A database that existed
   * before the restore is never dropped or renamed.
   * @default 'rename'
   */
  onMismatch?: 'rename' | 'keep' | 'drop';
}

/** The pg_restore a restore ran, and the versions it was chosen for. */
export interface RestoreClient {
  tool: 'pg_restore';
  version: string;
  major: number;
  /** `pg_restore --version`. */
  versionOutput: string;
  installedMajors: number[];
  reason: string;
  /** The pg_dump that wrote the archive (from the manifest). */
  pgDump: { version: string; major: number };
  /** The server restored into (absent when only the archive was read). */
  targetServerVersion?: string;
}

export interface RestoreResult {
  backupId: string;
  databaseId: string;
  target: string;
  client: RestoreClient;
  fetch: FetchResult;
  checks: ComparisonCheck[];
  /** The database's own settings, owner and ACL, applied once verified; what was not, and why; what no dump carries. */
  databaseState: AppliedDatabaseState;
  timings: { downloadMs: number; restoreMs: number; verifyMs: number; totalMs: number };
}

/** Creates the target database from template0 (preflight checked that it did not exist). */
async function createTargetDatabase(databaseId: string, target: ResolvedConnection): Promise<void> {
  const admin = await connect(databaseId, { ...target, database: 'postgres' }, 'lifeboat-restore');
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(target.database)} TEMPLATE template0 ENCODING 'UTF8'`);
  } catch (error) {
    if ((error as { code?: string }).code !== '42P04') throw error;
    throw new RestoreFailedError(`Target database "${target.database}" on ${target.host}:${target.port} was created by someone else while the backup downloaded.`, {
      nextStep: 'restore into a new database name, or drop that database first if it is truly disposable.',
    });
  } finally {
    await admin.end();
  }
}

/**
 * Keeps (renamed `<name>_unverified` and commented), keeps as is, or drops a
 * restored database that failed its verification. Returns where it is kept,
 * or undefined when dropped.
 */
async function settleMismatch(manifest: Manifest, target: ResolvedConnection, how: 'rename' | 'keep' | 'drop', differences: readonly string[]): Promise<string | undefined> {
  const at = (name: string) => `"${name}" on ${target.host}:${target.port}`;
  if (how === 'drop') {
    await dropDatabase(manifest.database.id, target);
    return undefined;
  }
  const admin = await connect(manifest.database.id, { ...target, database: 'postgres' }, 'lifeboat-restore');
  try {
    let name = target.database;
    if (how === 'rename') {
      const unverified = `${target.database.slice(0, 63 - '_unverified'.length)}_unverified`;
      const taken = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [unverified]);
      if (!taken.rowCount) {
        await admin.query(`ALTER DATABASE ${quoteIdent(target.database)} RENAME TO ${quoteIdent(unverified)}`);
        name = unverified;
      }
    }
    const note = `lifeboat: UNVERIFIED restore of backup ${manifest.backupId} of database "${manifest.database.id}": ${differences.length} difference(s) from its manifest, first: ${differences[0] ?? ''}`;
    await admin.query(`COMMENT ON DATABASE ${quoteIdent(name)} IS ${quoteLiteral(note.slice(0, 1000))}`);
    return at(name);
  } finally {
    await admin.end();
  }
}

function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

async function dropDatabase(databaseId: string, target: ResolvedConnection): Promise<void> {
  const admin = await connect(databaseId, { ...target, database: 'postgres' }, 'lifeboat-restore');
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(target.database)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

function archiveOf(manifest: Manifest): ArchiveOrigin {
  return { backupId: manifest.backupId, databaseId: manifest.database.id, pgDumpMajor: manifest.dump.toolMajor, pgDumpVersion: manifest.dump.toolVersion };
}

function describeClient(manifest: Manifest, chosen: ChosenClient, targetServerVersion?: string): RestoreClient {
  return {
    tool: 'pg_restore',
    version: chosen.version,
    major: chosen.major,
    versionOutput: chosen.banner,
    installedMajors: chosen.installedMajors,
    reason: chosen.reason,
    pgDump: { version: manifest.dump.toolVersion, major: manifest.dump.toolMajor },
    targetServerVersion,
  };
}

/** Room the staging needs beyond the archive itself. */
const STAGING_HEADROOM_BYTES = 64 * 1024 * 1024;

/**
 * Checks before any download: the database to create does not exist yet (or
 * the target is empty), the server offers every extension the backup uses,
 * and the staging area has room for the decrypted archive.
 */
async function preflight(manifest: Manifest, target: ResolvedConnection, create: boolean, stagingParent: string): Promise<void> {
  const where = `${target.database} on ${target.host}:${target.port}`;
  const client = await connect(manifest.database.id, create ? { ...target, database: 'postgres' } : target, 'lifeboat-restore');
  try {
    if (create) {
      const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [target.database]);
      if (exists.rowCount) {
        throw new RestoreFailedError(`Target database "${target.database}" on ${target.host}:${target.port} already exists; nothing was downloaded.`, {
          nextStep: 'restore into a new database name, or drop that database first if it is truly disposable.',
        });
      }
    } else {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'm', 'v', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`,
      );
      if (Number(rows[0]!.n) > 0) {
        throw new RestoreFailedError(`Target ${describeTarget(manifest.database.id, target)} is not empty (${rows[0]!.n} relations); lifeboat restores only into empty databases. Nothing was downloaded.`, {
          nextStep: 'restore into a new database (--create) and switch over once it is verified.',
        });
      }
    }
    const wanted = manifest.inventory.extensions;
    const { rows: available } = await client.query<{ name: string }>('SELECT name FROM pg_available_extensions WHERE name = ANY($1)', [wanted]);
    const missing = wanted.filter((e) => !available.some((a) => a.name === e));
    if (missing.length > 0) {
      throw new RestoreFailedError(`The server of ${where} does not offer the extension(s) ${missing.join(', ')}, which backup ${manifest.backupId} uses; nothing was downloaded.`, {
        nextStep: 'install them on that server (on RDS: a supported engine version and, for some, shared_preload_libraries in the parameter group), or restore to a server that has them.',
      });
    }
  } finally {
    await client.end();
  }
  const needed = manifest.object.rawBytes + STAGING_HEADROOM_BYTES;
  const stats = statfsSync(stagingParent);
  const free = stats.bavail * stats.bsize;
  if (free < needed) {
    throw new RestoreFailedError(`The decrypted archive of backup ${manifest.backupId} needs ${needed} bytes in ${stagingParent}, which has ${free} free; nothing was downloaded.`, {
      nextStep: 'point TMPDIR (the CLI) or workDir at a disk with room, or free space there.',
    });
  }
}

/** The target's PostgreSQL version, read before anything is downloaded (to choose pg_restore). */
async function targetServerVersion(databaseId: string, target: ResolvedConnection, create: boolean): Promise<{ versionNum: number; version: string }> {
  const client = await connect(databaseId, create ? { ...target, database: 'postgres' } : target, 'lifeboat-restore');
  try {
    const { rows } = await client.query<{ num: string; version: string }>(
      `SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version`,
    );
    return { versionNum: Number(rows[0]!.num), version: rows[0]!.version.split(' ')[0]! };
  } finally {
    await client.end();
  }
}

async function restoreDatabaseState(manifest: Manifest, target: ResolvedConnection): Promise<AppliedDatabaseState> {
  if (!manifest.database.state) {
    return { restored: [], notRestored: ['database settings, owner and ACL: this backup predates their recording in the manifest'], notCarried: NOT_CARRIED_BY_PG_DUMP };
  }
  const client = await connect(manifest.database.id, target, 'lifeboat-restore');
  try {
    return await applyDatabaseState(client, manifest.database.state);
  } finally {
    await client.end();
  }
}

/** Reads the restored database's inventory and compares it with the manifest. */
export async function verifyRestoredDatabase(manifest: Manifest, target: ResolvedConnection): Promise<ComparisonCheck[]> {
  const client = await connect(manifest.database.id, target, 'lifeboat-verify');
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // In the form the manifest's fingerprint was taken in.
    const actual = await takeInventory(client, { fingerprintVersion: manifest.inventory.schemaFingerprintVersion ?? 1 });
    await client.query('COMMIT');
    return compareInventories(manifest.inventory, actual);
  } finally {
    await client.end();
  }
}

/**
 * Restores a backup into an empty database: download through sha256 and
 * decryption into a private staging file, then (only once both passed)
 * pg_restore --exit-on-error, then compare the result with the manifest.
 * A database this call created is dropped again if the restore itself fails;
 * if it restored but does not match the manifest, see `onMismatch`.
 */
export async function restoreBackup(manifest: Manifest, target: ResolvedConnection, deps: RestoreDeps, options: RestoreOptions = {}): Promise<RestoreResult> {
  const registry = deps.secretRegistry ?? new SecretRegistry();
  registry.add(target.password);
  try {
    return await restore(manifest, target, deps, options, registry);
  } catch (error) {
    throw redactError(error, registry.values());
  }
}

async function restore(manifest: Manifest, target: ResolvedConnection, deps: RestoreDeps, options: RestoreOptions, registry: SecretRegistry): Promise<RestoreResult> {
  const started = Date.now();
  const what = `backup ${manifest.backupId} of database "${manifest.database.id}" into ${target.database} on ${target.host}:${target.port}`;
  // A pg_restore the archive and the target both accept, or a clear error now,
  // before the download and before any database is created.
  const server = await targetServerVersion(manifest.database.id, target, options.createDatabase ?? false);
  const chosen = await restoreClientFor(archiveOf(manifest), { ...server, where: `${target.database} on ${target.host}:${target.port}` }, { path: deps.pgRestorePath });
  const restoreTool = describeClient(manifest, chosen, server.version);

  // Everything that can be known before a byte is downloaded: the target as it must be, the extensions, the room.
  await preflight(manifest, target, options.createDatabase ?? false, deps.workDir ?? tmpdir());
  deps.signal?.throwIfAborted();
  const stagingDir = createStagingDir(deps.workDir);
  const archive = join(stagingDir, 'dump.pgc');
  let created = false;
  try {
    const fetched = await fetchAndDecrypt(manifest, createWriteStream(archive, { mode: 0o600 }), deps, options.bucket);
    deps.signal?.throwIfAborted();
    const downloaded = Date.now();

    if (options.createDatabase) {
      await createTargetDatabase(manifest.database.id, target);
      created = true;
    }
    const jobs = Math.max(1, options.jobs ?? 1);
    const args = ['--exit-on-error', '--no-owner', '--no-privileges', `--dbname=${target.database}`, ...(jobs > 1 ? [`--jobs=${jobs}`] : ['--single-transaction']), archive];
    await runPgRestore(chosen.path, args, libpqEnv(target, 'lifeboat-pg_restore'), `${what} (pg_restore ${chosen.version})`, registry, undefined, deps.signal);
    deps.signal?.throwIfAborted();
    const restored = Date.now();

    const checks = await verifyRestoredDatabase(manifest, target);
    const verified = Date.now();
    const failed = checks.filter((c) => !c.ok);
    if (failed.length > 0) {
      const differences = failed.flatMap((c) => c.differences);
      const where = await settleMismatch(manifest, target, created ? (options.onMismatch ?? 'rename') : 'keep', differences);
      created = false; // settled: never dropped on the way out
      throw new ManifestMismatchError(`Restored ${what} does not match its manifest`, differences, {
        nextStep: where
          ? `the restored database is kept as ${where} (not dropped: it may be the only working copy, and the check may be what is wrong). Inspect the differences above in it; if the data is right, rename it and use it (ALTER DATABASE ... RENAME TO ...), otherwise drop it. Treat this backup as unproven until a restore passes.`
          : 'the restored database was dropped (--drop-on-mismatch). Treat this backup as unproven; inspect the differences and run a fresh backup.',
      });
    }
    // After the verification: settings such as statement_timeout or default_transaction_read_only apply from here on.
    const databaseState = await restoreDatabaseState(manifest, target);
    return {
      backupId: manifest.backupId,
      databaseId: manifest.database.id,
      target: `${target.database} on ${target.host}:${target.port}`,
      client: restoreTool,
      fetch: fetched,
      checks,
      databaseState,
      timings: { downloadMs: downloaded - started, restoreMs: restored - downloaded, verifyMs: verified - restored, totalMs: verified - started },
    };
  } catch (error) {
    // The plaintext goes first, before the (slower) drop: an impatient second Ctrl-C must not leave it behind.
    rmSync(stagingDir, { recursive: true, force: true });
    if (created) await dropDatabase(manifest.database.id, target).catch(() => undefined);
    throw deps.signal?.aborted ? deps.signal.reason : error;
  } finally {
    rmSync(stagingDir, { recursive: true, force: true });
  }
}

export interface VerifyResult {
  backupId: string;
  databaseId: string;
  client: RestoreClient;
  fetch: FetchResult;
  tocEntries: number;
  checks: { name: string; ok: boolean; detail: string }[];
}

/**
 * Proves a backup is readable without restoring it: the stored bytes match the
 * manifest's sha256, the message decrypts and authenticates, and pg_restore can
 * read the archive's table of contents.
 */
export async function verifyBackup(manifest: Manifest, deps: RestoreDeps, options: { bucket?: string } = {}): Promise<VerifyResult> {
  const registry = deps.secretRegistry ?? new SecretRegistry();
  const chosen = await restoreClientFor(archiveOf(manifest), undefined, { path: deps.pgRestorePath });
  const what = `backup ${manifest.backupId} of database "${manifest.database.id}"`;
  let fetched: FetchResult | undefined;
  const listing = await runPgRestore(chosen.path, ['--list'], { PATH: process.env.PATH }, what, registry, async (stdin) => {
    fetched = await fetchAndDecrypt(manifest, forgivingStdinSink(stdin), deps, options.bucket);
  });
  const tocEntries = listing.stdout.split('\n').filter((l) => /^\d+;/.test(l)).length;
  if (tocEntries === 0) throw new RestoreFailedError(`pg_restore --list found no entries in ${what}.`);
  return {
    backupId: manifest.backupId,
    databaseId: manifest.database.id,
    client: describeClient(manifest, chosen),
    fetch: fetched!,
    tocEntries,
    checks: [
      { name: 'sha256', ok: true, detail: fetched!.sha256 },
      { name: 'decryption', ok: true, detail: `${fetched!.plaintextBytes} bytes authenticated` },
      { name: 'pg_restore --list', ok: true, detail: `${tocEntries} TOC entries (pg_restore ${chosen.version})` },
    ],
  };
}
