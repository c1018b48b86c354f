import { createWriteStream, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import type { KMS } from '@aws-sdk/client-kms';
import type { Manifest } from '../backup/manifest.ts';
import { ManifestMismatchError, RestoreFailedError } from '../errors.ts';
import { connect, describeTarget, libpqEnv, type ResolvedConnection } from '../pg/connection.ts';
import { applyDatabaseState, NOT_CARRIED_BY_PG_DUMP, type AppliedDatabaseState } from '../pg/database-state.ts';
import { quoteIdent, takeInventory, unpackSchemaLines } from '../pg/inventory.ts';
import { ownersIn, privilegesUnknownTo } from '../pg/privileges.ts';
import { createMissingRoles, dropCreatedRoles, isManagedServiceRole, isPredefinedRole, readTargetRoles, releaseClaimedRoles, type RolesReport } from '../pg/roles.ts';
import { restoreClientFor, type ArchiveOrigin, type ChosenClient } from '../pg/tools.ts';
import { redact, redactError, SecretRegistry } from '../redact.ts';
import { compareInventories, compareSelection, type ComparisonCheck, type RestoredSelection } from './compare.ts';
import { readArchiveToc } from './archive-toc.ts';
import { selectEntries, useListFile, type Selection, type SelectionRequest } from './selection.ts';
import { fetchAndDecrypt, fetchGlobals, type FetchResult } from './fetch.ts';
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
  /** Parallel ranged GETs of the download (see ranged-get.ts). @default 4 × 16 MiB; concurrency 1 with a part size past the object is one GET */
  download?: { partSize?: number; concurrency?: number };
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
  /** pg_restore --no-owner: every object is owned by the restoring user. @default false (owners are kept) */
  noOwner?: boolean;
  /** pg_restore --no-privileges: no GRANTs, no default privileges. @default false (ACLs are kept) */
  noPrivileges?: boolean;
  /**
   * pg_restore --no-tablespaces: everything goes to the target's default
   * tablespace. Without it, a backup whose relations live in tablespaces the
   * target lacks is refused before the download. @default false
   */
  noTablespaces?: boolean;
  /**
   * Restore only these schemas and tables, each with what belongs to it
   * (sequences, indexes, constraints, triggers, policies, grants) and as
   * structure what it needs (see selection.ts); verified against the manifest
   * for exactly what was restored. @default everything
   */
  select?: SelectionRequest;
}

/** What a restore brings back of ownership, grants and tablespaces, and what it was asked (or had) to leave out. */
export interface RestoreFidelity {
  owners: boolean;
  privileges: boolean;
  tablespaces: boolean;
  /** Each with why, e.g. `owners (--no-owner): every object is owned by restorer`. */
  dropped: string[];
}

/** What a restore keeps: owners and ACLs unless told otherwise, or when the backup predates their recording. */
export function fidelityFor(manifest: Manifest, options: Pick<RestoreOptions, 'noOwner' | 'noPrivileges' | 'noTablespaces'>, restoringUser: string): RestoreFidelity {
  const recorded = Boolean(manifest.inventory.privileges && manifest.globals);
  const dropped: string[] = [];
  if (!recorded) dropped.push(`owners and privileges: backup ${manifest.backupId} predates their recording (and the roles'), so it is restored with --no-owner --no-privileges; every object is owned by ${restoringUser}`);
  else {
    if (options.noOwner) dropped.push(`owners (--no-owner): every object is owned by ${restoringUser}`);
    if (options.noPrivileges) dropped.push('privileges (--no-privileges): no GRANTs and no default privileges were restored; only owners can use the objects');
  }
  const used = manifest.globals?.tablespacesUsed ?? [];
  if (options.noTablespaces && used.length > 0) dropped.push(`tablespaces (--no-tablespaces): relations that lived in ${used.join(', ')} are in the target's default tablespace`);
  return { owners: recorded && !options.noOwner, privileges: recorded && !options.noPrivileges, tablespaces: !options.noTablespaces, dropped };
}


/** Roles the restore needs on the target: every owner and grantee the backup names, unless it leaves both out. */
function rolesNeeded(manifest: Manifest, fidelity: RestoreFidelity): string[] {
  const recorded = manifest.inventory.privileges;
  if (!recorded) return [];
  // Policies name their roles whatever pg_restore is told about owners and grants.
  const policies = recorded.policyRoles ?? [];
  if (!fidelity.owners && !fidelity.privileges) return policies;
  const named = fidelity.privileges ? recorded.roles : [...ownersIn(unpackSchemaLines(recorded.lines)), ...policies];
  // The database's own owner and settings' roles (its ACL's grantees with the privileges), applied after the restore.
  const state = manifest.database.state;
  const stateRoles = state
    ? [
        ...(fidelity.owners ? [state.owner] : []),
        ...state.settings.flatMap((x) => (x.role ? [x.role] : [])),
        ...(fidelity.privileges ? (state.acl ?? []).map((item) => item.slice(0, item.indexOf('=')).replace(/^"(.*)"$/, '$1').replace(/""/g, '"')).filter(Boolean) : []),
      ]
    : [];
  return [...new Set([...named, ...stateRoles])].filter((r) => !isPredefinedRole(r)).sort();
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
  /** Owners, privileges and tablespaces: what was kept and what was left out. */
  fidelity: RestoreFidelity;
  /** Roles created for this restore (none when every role existed). */
  roles: RolesReport;
  /** What a selective restore brought back, and what it left out. Absent for a full restore. */
  selection?: Omit<Selection, 'ids'> & { entries: number };
  timings: { downloadMs: number; restoreMs: number; verifyMs: number; totalMs: number };
}

async function withClient<T>(databaseId: string, target: ResolvedConnection, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(databaseId, target, 'lifeboat-restore');
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates the target database from template0 (preflight checked that it did not exist). */
async function createTargetDatabase(databaseId: string, target: ResolvedConnection): Promise<void> {
  const admin = await connect(databaseId, { ...target, database: 'postgres' }, 'lifeboat-restore');
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(target.database)} TEMPLATE template0 ENCODING 'UTF8'`);
  } catch (error) {
    if ((error as { code?: string }).code !== '42P04') throw error;
    throw new RestoreFailedError(`Target database "${target.database}" on ${target.host}:${target.port} was created by someone else after the checks before the download.`, {
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
async function preflight(manifest: Manifest, target: ResolvedConnection, create: boolean, stagingParent: string, fidelity: RestoreFidelity, select?: SelectionRequest): Promise<void> {
  const where = `${target.database} on ${target.host}:${target.port}`;
  const client = await connect(manifest.database.id, create ? { ...target, database: 'postgres' } : target, 'lifeboat-restore');
  try {
    await preflightRoles(client, manifest, fidelity, where);
    if (select) preflightSelection(manifest, select);
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

/**
 * The roles and tablespaces the restore needs: every role the backup names
 * exists or can be created (the restoring user has CREATEROLE), every owner
 * can be given objects by the restoring user, and the tablespaces its
 * relations use exist (or --no-tablespaces).
 */
async function preflightRoles(client: pg.Client, manifest: Manifest, fidelity: RestoreFidelity, where: string): Promise<void> {
  const target = await readTargetRoles(client);
  const needed = rolesNeeded(manifest, fidelity);
  const missing = needed.filter((r) => !target.existing.has(r));
  const policyOnly = !fidelity.owners && !fidelity.privileges;
  const escape = policyOnly
    ? 'or create them yourself (row-level security policies name them, so pg_restore needs them even with --no-owner --no-privileges)'
    : 'or restore with --no-owner --no-privileges (every object then belongs to the restoring user; grant access yourself; roles that RLS policies name are still needed)';
  if (missing.length > 0 && !target.superuser && !target.createRole) {
    throw new RestoreFailedError(
      `Backup ${manifest.backupId} names roles that ${where} lacks (${missing.join(', ')}), and ${target.currentUser} may not create roles; nothing was downloaded.`,
      { nextStep: `restore as a user with CREATEROLE (on RDS, the master user), create those roles first, ${escape}.` },
    );
  }
  const unrecorded = missing.filter((r) => !manifest.globals!.roles.includes(r) && !isManagedServiceRole(r));
  if (unrecorded.length > 0) {
    throw new RestoreFailedError(`Backup ${manifest.backupId} names roles its globals do not record (${unrecorded.join(', ')}), which ${where} lacks; nothing was downloaded.`, {
      nextStep: `create them on the target first, ${escape}.`,
    });
  }
  if (fidelity.privileges && !target.superuser && (manifest.inventory.privileges?.delegatedGrants ?? 0) > 0) {
    throw new RestoreFailedError(
      `Backup ${manifest.backupId} holds ${manifest.inventory.privileges!.delegatedGrants} grant(s) made by roles other than the objects' owners (WITH GRANT OPTION); pg_restore replays them with SET SESSION AUTHORIZATION, which only a superuser may run, and ${target.currentUser} on ${where} is none. Nothing was downloaded.`,
      { nextStep: 'restore as a superuser, or with --no-privileges and grant access yourself.' },
    );
  }
  if (fidelity.owners && !target.superuser) {
    const owners = ownersIn(unpackSchemaLines(manifest.inventory.privileges!.lines));
    // Predefined owners (pg_database_owner owns the public schema) come with the server, not from the restore.
    // PostgreSQL 16+ needs SET on an owner role (membership alone may be administration only).
    const foreign = owners.filter((o) => target.existing.has(o) && !target.canSet.has(o) && !isPredefinedRole(o));
    if (foreign.length > 0) {
      throw new RestoreFailedError(
        `${target.currentUser} cannot give objects to the existing role(s) ${foreign.join(', ')} on ${where} (it is not a member of them and no superuser); nothing was downloaded.`,
        { nextStep: `GRANT ${foreign.join(', ')} TO ${target.currentUser}, restore as a superuser, ${escape.replace('--no-owner --no-privileges', '--no-owner')}.` },
      );
    }
  }
  const used = manifest.globals?.tablespacesUsed ?? [];
  if (used.length > 0 && fidelity.tablespaces) {
    const { rows } = await client.query<{ name: string }>('SELECT spcname AS name FROM pg_catalog.pg_tablespace WHERE spcname = ANY($1)', [used]);
    const absent = used.filter((t) => !rows.some((r) => r.name === t));
    if (absent.length > 0) {
      throw new RestoreFailedError(`Backup ${manifest.backupId} has relations in tablespace(s) ${absent.join(', ')}, which ${where} does not have; nothing was downloaded.`, {
        nextStep: 'create them on the target (CREATE TABLESPACE ... LOCATION ...), or restore with --no-tablespaces to put everything in the default tablespace.',
      });
    }
  }
}

/**
 * The tables and schemas a selective restore names exist in the backup, by
 * the manifest (before anything is downloaded); the archive itself decides
 * the rest once it is here.
 */
function preflightSelection(manifest: Manifest, select: SelectionRequest): void {
  const where = `Backup ${manifest.backupId} of database "${manifest.database.id}"`;
  const hint = '`lifeboat restore --list` shows what the backup holds; nothing was downloaded.';
  if (select.schemas.length === 0 && select.tables.length === 0) throw new RestoreFailedError('A selective restore needs at least one --schema or --table.');
  const schemaLines = manifest.inventory.schemaLines ? unpackSchemaLines(manifest.inventory.schemaLines) : [];
  // Every relation the schema describes (partitioned tables, views and foreign tables too), else the row-counted tables.
  const relations = schemaLines.flatMap((line) => {
    const m = /^rel ((?:"(?:[^"]|"")*"|[^."\s]+))\.((?:"(?:[^"]|"")*"|[^."\s]+)) kind=/.exec(line);
    const unquote = (x: string) => (x.startsWith('"') ? x.slice(1, -1).replace(/""/g, '"') : x);
    return m ? [{ schema: unquote(m[1]!), name: unquote(m[2]!) }] : [];
  });
  const tables = relations.length > 0 ? relations : manifest.inventory.tables;
  for (const wanted of select.tables) {
    const matches = tables.filter((t) => `${t.schema}.${t.name}` === wanted || t.name === wanted);
    if (matches.length === 0) throw new RestoreFailedError(`${where} has no table ${wanted}.`, { nextStep: hint });
    if (matches.length > 1 && !matches.some((t) => `${t.schema}.${t.name}` === wanted)) {
      throw new RestoreFailedError(`--table ${wanted} is ambiguous in ${where}: ${matches.map((t) => `${t.schema}.${t.name}`).join(', ')}.`, { nextStep: 'name it with its schema, e.g. --table app.orders; nothing was downloaded.' });
    }
  }
  for (const schema of select.schemas) {
    const known = tables.some((t) => t.schema === schema) || schemaLines.includes(`schema ${quoteIdentIfNeeded(schema)}`);
    if (!known) throw new RestoreFailedError(`${where} has no schema ${schema}.`, { nextStep: hint });
  }
}

/** quote_ident's rule: quoted unless a plain lower-case identifier. */
function quoteIdentIfNeeded(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : quoteIdent(name);
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

async function restoreDatabaseState(manifest: Manifest, target: ResolvedConnection, fidelity: RestoreFidelity): Promise<AppliedDatabaseState> {
  const state = manifest.database.state;
  if (!state) {
    return { restored: [], notRestored: ['database settings, owner and ACL: this backup predates their recording in the manifest'], notCarried: NOT_CARRIED_BY_PG_DUMP };
  }
  // --no-owner and --no-privileges leave the database's own owner and ACL as they are too.
  const left = [
    ...(fidelity.owners ? [] : [`owner ${state.owner}: left out (--no-owner); the database stays owned by ${target.user}`]),
    ...(fidelity.privileges || !state.acl ? [] : [`database privileges ${state.acl.join(', ')}: left out (--no-privileges)`]),
  ];
  const client = await connect(manifest.database.id, target, 'lifeboat-restore');
  try {
    const applied = await applyDatabaseState(client, { ...state, owner: fidelity.owners ? state.owner : target.user, acl: fidelity.privileges ? state.acl : null });
    return { ...applied, restored: applied.restored.filter((r) => fidelity.owners || !r.startsWith('owner ')), notRestored: [...left, ...applied.notRestored] };
  } finally {
    await client.end();
  }
}

/** Reads the restored database's inventory and compares it with the manifest. */
export async function verifyRestoredDatabase(
  manifest: Manifest,
  target: ResolvedConnection,
  fidelity: Pick<RestoreFidelity, 'owners' | 'privileges'> = fidelityFor(manifest, {}, target.user),
  selection?: RestoredSelection,
): Promise<ComparisonCheck[]> {
  const client = await connect(manifest.database.id, target, 'lifeboat-verify');
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // In the form the manifest's fingerprint was taken in.
    const actual = await takeInventory(client, { fingerprintVersion: manifest.inventory.schemaFingerprintVersion ?? 1 });
    await client.query('COMMIT');
    const keep = { owners: fidelity.owners, acls: fidelity.privileges, unknownPrivileges: privilegesUnknownTo(manifest.database.serverVersionNum) };
    return selection ? compareSelection(manifest.inventory, actual, selection, keep) : compareInventories(manifest.inventory, actual, keep);
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

  const fidelity = fidelityFor(manifest, options, target.user);
  // Everything that can be known before a byte is downloaded: the target as it must be, the roles, the extensions, the room.
  await preflight(manifest, target, options.createDatabase ?? false, deps.workDir ?? tmpdir(), fidelity, options.select);
  deps.signal?.throwIfAborted();
  const stagingDir = createStagingDir(deps.workDir);
  const archive = join(stagingDir, 'dump.pgc');
  let created = false;
  /** The restore verified: the database and the roles it created stay, whatever happens after. */
  let verifiedKept = false;
  let roles: RolesReport = { created: [], needPassword: [], placeholders: [], memberships: [], skipped: [], grantedToRestoringUser: [] };
  try {
    const needed = rolesNeeded(manifest, fidelity);
    // The download, sha256 and authentication of the dump run beside what needs none of its bytes: the
    // (separately authenticated) globals, the new database and the missing roles. Not one statement of
    // the archive runs before the whole object has been checked: pg_restore starts after both.
    // A failure beside the download (CREATE DATABASE refused, a role it may not create) stops the download at once.
    const beside = new AbortController();
    const stopOnInterrupt = () => beside.abort(deps.signal!.reason);
    deps.signal?.addEventListener('abort', stopOnInterrupt, { once: true });
    const download = fetchAndDecrypt(manifest, createWriteStream(archive, { mode: 0o600 }), { ...deps, signal: beside.signal }, options.bucket);
    const globals = needed.length > 0 ? fetchGlobals(manifest, deps, options.bucket) : undefined;
    globals?.catch(() => undefined); // awaited below, once the database exists
    const prepare = (async () => {
      if (options.createDatabase) {
        await createTargetDatabase(manifest.database.id, target);
        created = true;
      }
      if (globals) {
        const document = await globals;
        deps.signal?.throwIfAborted();
        roles = await withClient(manifest.database.id, target, (client) => createMissingRoles(client, document, needed));
      }
    })();
    prepare.catch((error: unknown) => beside.abort(error));
    // Both settle before anything is decided, so the cleanup below sees everything either of them created.
    const [fetchedOutcome, prepared] = await Promise.allSettled([download, prepare]).finally(() => deps.signal?.removeEventListener('abort', stopOnInterrupt));
    if (prepared.status === 'rejected') throw prepared.reason;
    if (fetchedOutcome.status === 'rejected') throw fetchedOutcome.reason;
    const fetched = fetchedOutcome.value;
    deps.signal?.throwIfAborted();
    const downloaded = Date.now();
    let selection: Selection | undefined;
    const listFile = join(stagingDir, 'restore.list');
    if (options.select) {
      selection = selectEntries(readArchiveToc(archive, `backup ${manifest.backupId}`).entries, options.select, `backup ${manifest.backupId} of database "${manifest.database.id}"`);
      writeFileSync(listFile, useListFile(selection), { mode: 0o600 });
    }
    const jobs = Math.max(1, options.jobs ?? 1);
    const args = [
      '--exit-on-error',
      ...(fidelity.owners ? [] : ['--no-owner']),
      ...(fidelity.privileges ? [] : ['--no-privileges']),
      ...(fidelity.tablespaces ? [] : ['--no-tablespaces']),
      ...(selection ? [`--use-list=${listFile}`] : []),
      `--dbname=${target.database}`,
      ...(jobs > 1 ? [`--jobs=${jobs}`] : ['--single-transaction']),
      archive,
    ];
    await runPgRestore(chosen.path, args, libpqEnv(target, 'lifeboat-pg_restore'), `${what} (pg_restore ${chosen.version})`, registry, undefined, deps.signal);
    deps.signal?.throwIfAborted();
    const restored = Date.now();

    const checks = await verifyRestoredDatabase(manifest, target, fidelity, selection);
    const verified = Date.now();
    const failed = checks.filter((c) => !c.ok);
    if (failed.length > 0) {
      const differences = failed.flatMap((c) => c.differences);
      const how = created ? (options.onMismatch ?? 'rename') : 'keep';
      const where = await settleMismatch(manifest, target, how, differences);
      created = false; // settled: never dropped on the way out
      // Roles stay with a kept database (it needs them); with a dropped one they go on the way out.
      if (how !== 'drop') roles = { ...roles, created: [], placeholders: [] };
      throw new ManifestMismatchError(`Restored ${what} does not match its manifest`, differences, {
        nextStep: where
          ? `the restored database is kept as ${where} (not dropped: it may be the only working copy, and the check may be what is wrong). Inspect the differences above in it; if the data is right, rename it and use it (ALTER DATABASE ... RENAME TO ...), otherwise drop it. Treat this backup as unproven until a restore passes.`
          : 'the restored database was dropped (--drop-on-mismatch). Treat this backup as unproven; inspect the differences and run a fresh backup.',
      });
    }
    // Verified: from here on nothing is dropped, whatever fails; what does is reported with the result.
    created = false;
    verifiedKept = true;
    // The restoring user gave itself the roles it created only to hand them objects: take that back.
    if (roles.grantedToRestoringUser.length > 0) {
      const left = await withClient(manifest.database.id, target, (c) => releaseClaimedRoles(c, roles)).catch((e: Error) => [`${roles.grantedToRestoringUser.join(', ')} (${redact(e.message, registry.values())})`]);
      roles = { ...roles, skipped: [...roles.skipped, ...left.map((l) => `revoking from the restoring user the role ${l}`)] };
    }
    // After the verification: settings such as statement_timeout or default_transaction_read_only apply from here on.
    // A selective restore brings objects back beside others, not the database: its settings stay as they are.
    const databaseState: AppliedDatabaseState = selection
      ? { restored: [], notRestored: ['database settings, owner and ACL: not applied by a selective restore (--schema/--table)'], notCarried: NOT_CARRIED_BY_PG_DUMP }
      : await restoreDatabaseState(manifest, target, fidelity).catch((e: Error) => ({
          restored: [],
          notRestored: [`database settings, owner and ACL: not applied (${redact(e.message, registry.values())}); the restored data is verified and kept`],
          notCarried: NOT_CARRIED_BY_PG_DUMP,
        }));
    return {
      backupId: manifest.backupId,
      databaseId: manifest.database.id,
      target: `${target.database} on ${target.host}:${target.port}`,
      client: restoreTool,
      fetch: fetched,
      checks,
      databaseState,
      fidelity,
      roles,
      ...(selection ? { selection: { tables: selection.tables, structureOnly: selection.structureOnly, leftOut: selection.leftOut, entries: selection.ids.length } } : {}),
      timings: { downloadMs: downloaded - started, restoreMs: restored - downloaded, verifyMs: verified - restored, totalMs: verified - started },
    };
  } catch (error) {
    // The plaintext goes first, before the (slower) drop: an impatient second Ctrl-C must not leave it behind.
    rmSync(stagingDir, { recursive: true, force: true });
    if (created) await dropDatabase(manifest.database.id, target).catch(() => undefined);
    // Roles this restore created go too, once nothing of theirs is left (a restore into an existing database
    // may have left objects behind: those roles stay, and the error says so).
    const createdRoles = verifiedKept ? [] : [...roles.created, ...roles.placeholders];
    if (createdRoles.length > 0) {
      const left = await withClient(manifest.database.id, { ...target, database: created || options.createDatabase ? 'postgres' : target.database }, (c) => dropCreatedRoles(c, createdRoles)).catch((e: Error) => [`all of ${createdRoles.join(', ')} (${e.message})`]);
      if (left.length > 0 && error instanceof Error) error.message += ` Roles this restore created and could not drop: ${left.join('; ')}.`;
    }
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

export interface BackupContents {
  backupId: string;
  databaseId: string;
  consistentAt: string;
  archive: { version: string; pgDumpVersion: string; serverVersion: string };
  /** Every entry of the archive's table of contents, in restore order. */
  entries: { dumpId: number; kind: string; schema: string | null; name: string; owner: string | null }[];
  /** Row counts from the manifest, per `schema.table`. */
  rows: Record<string, number>;
  roles: string[];
  tablespacesUsed: string[];
}

/**
 * What a backup holds (`lifeboat restore --list`): downloaded and proven like
 * any restore (sha256, authenticated decryption) into the private staging
 * area, its table of contents read, the plaintext deleted again.
 */
export async function listBackupContents(manifest: Manifest, deps: RestoreDeps, options: { bucket?: string } = {}): Promise<BackupContents> {
  const registry = deps.secretRegistry ?? new SecretRegistry();
  const stagingDir = createStagingDir(deps.workDir);
  try {
    const archive = join(stagingDir, 'dump.pgc');
    await fetchAndDecrypt(manifest, createWriteStream(archive, { mode: 0o600 }), deps, options.bucket);
    deps.signal?.throwIfAborted();
    const toc = readArchiveToc(archive, `backup ${manifest.backupId}`);
    return {
      backupId: manifest.backupId,
      databaseId: manifest.database.id,
      consistentAt: manifest.consistentAt,
      archive: { version: toc.version, pgDumpVersion: toc.pgDumpVersion, serverVersion: toc.serverVersion },
      entries: toc.entries.map((e) => ({ dumpId: e.dumpId, kind: e.desc, schema: e.namespace, name: e.tag, owner: e.owner })),
      rows: Object.fromEntries(manifest.inventory.tables.map((t) => [`${t.schema}.${t.name}`, t.rows])),
      roles: manifest.globals?.roles ?? [],
      tablespacesUsed: manifest.globals?.tablespacesUsed ?? [],
    };
  } catch (error) {
    throw redactError(deps.signal?.aborted ? deps.signal.reason : error, registry.values());
  } finally {
    rmSync(stagingDir, { recursive: true, force: true });
  }
}
