import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { DumpSettings } from '../config/schema.ts';
import { ConfigError, ToolVersionError } from '../errors.ts';
import { clientBinaryCandidates, missingClientError, postgresBinary, SUPPORTED_CLIENT_MAJORS } from './binaries.ts';

const execFileAsync = promisify(execFile);

export interface ToolVersion {
  path: string;
  version: string;
  major: number;
  /** The first line of `--version`, e.g. `pg_dump (PostgreSQL) 16.8`. */
  banner: string;
}

const versionCache = new Map<string, ToolVersion>();

/** `pg_dump (PostgreSQL) 15.18 (Debian ...)` → { version: '15.18', major: 15 }. */
export function parseToolVersion(output: string): { version: string; major: number } {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(output);
  if (!m) throw new Error(`cannot parse a PostgreSQL version from "${output.trim()}"`);
  return { version: m[2] ? `${m[1]}.${m[2]}` : m[1]!, major: Number(m[1]) };
}

export async function toolVersion(tool: 'pg_dump' | 'pg_restore', path = postgresBinary(tool)): Promise<ToolVersion> {
  const cached = versionCache.get(path);
  if (cached) return cached;
  const { stdout } = await execFileAsync(path, ['--version']);
  const parsed = { path, ...parseToolVersion(stdout), banner: stdout.trim().split('\n')[0]! };
  versionCache.set(path, parsed);
  return parsed;
}

/**
 * The installed copies of a client tool, by major (oldest first; of two with
 * the same major, the one found first). A candidate that does not answer
 * --version (a broken install) is left out; none at all is a MissingToolError.
 */
export async function installedClients(tool: 'pg_dump' | 'pg_restore', env: NodeJS.ProcessEnv = process.env): Promise<ToolVersion[]> {
  const probed = await Promise.all(clientBinaryCandidates(tool, env).map((path) => toolVersion(tool, path).catch(() => undefined)));
  const found = probed.filter((t): t is ToolVersion => t !== undefined);
  if (found.length === 0) throw missingClientError(tool);
  const byMajor = new Map<number, ToolVersion>();
  for (const t of found) if (!byMajor.has(t.major)) byMajor.set(t.major, t);
  return [...byMajor.values()].sort((a, b) => a.major - b.major);
}

/** pg_restore 17 and newer send `SET transaction_timeout = 0`, which servers 16 and older reject. */
export const FIRST_MAJOR_SENDING_TRANSACTION_TIMEOUT = 17;

/** The client chosen for one dump or restore, and why (for manifests, reports and output). */
export interface ChosenClient extends ToolVersion {
  /** Majors of the tool that were installed when it was chosen. */
  installedMajors: number[];
  reason: string;
}

const majorsOf = (clients: readonly ToolVersion[]) => clients.map((c) => c.major);
const listOf = (clients: readonly ToolVersion[]) => majorsOf(clients).join(', ');

/** zstd and lz4 need pg_dump 16 or newer. */
function codecMinimumMajor(codec: string | undefined): number {
  return codec === 'zstd' || codec === 'lz4' ? 16 : 0;
}

/**
 * The pg_dump for a server: the lowest installed client at or above the
 * server's major (pg_dump refuses newer servers, and an archive from a newer
 * pg_dump needs an equally new pg_restore, which a target of the source's major
 * may reject). An explicit zstd or lz4 codec raises the floor to 16.
 * A server newer than every client fails here, before anything is dumped.
 */
export async function dumpClientFor(
  databaseId: string,
  server: { versionNum: number; version: string },
  options: { path?: string; codec?: string } = {},
): Promise<ChosenClient> {
  const clients = options.path ? [await toolVersion('pg_dump', options.path)] : await installedClients('pg_dump');
  const serverMajor = Math.floor(server.versionNum / 10_000);
  const floor = Math.max(serverMajor, codecMinimumMajor(options.codec));
  const chosen = clients.find((c) => c.major >= floor);
  if (!chosen) {
    const newest = clients[clients.length - 1]!;
    const tooOld = newest.major < serverMajor;
    throw new ToolVersionError(
      tooOld
        ? `No installed pg_dump can dump database "${databaseId}": its server is PostgreSQL ${server.version} and the newest pg_dump here is pg_dump ${newest.version} (installed majors: ${listOf(clients)}); pg_dump refuses servers newer than itself.`
        : `No installed pg_dump ${floor} or newer for database "${databaseId}" (server PostgreSQL ${server.version}): dump.compression.codec ${options.codec} needs pg_dump 16 or newer, and the newest here is pg_dump ${newest.version} (installed majors: ${listOf(clients)}).`,
      {
        nextStep: tooOld
          ? `deploy a runner image with PostgreSQL ${serverMajor} clients: add ${serverMajor} to PG_MAJORS in the Dockerfile and to SUPPORTED_CLIENT_MAJORS in functions/lib/pg/binaries.ts (once Amazon Linux 2023 packages postgresql${serverMajor}); elsewhere install pg_dump ${serverMajor} under LIFEBOAT_PG_CLIENTS/<major>/bin.`
          : 'set dump.compression.codec to "auto" or "gzip", or install pg_dump 16 or newer.',
      },
    );
  }
  const reason =
    chosen.major === serverMajor
      ? `the server's major (PostgreSQL ${server.version})`
      : floor > serverMajor && chosen.major === floor
        ? `the lowest at or above ${floor}, which ${options.codec} needs (server PostgreSQL ${server.version})`
        : `the lowest installed at or above the server's major (PostgreSQL ${server.version})`;
  return { ...chosen, installedMajors: majorsOf(clients), reason };
}

/** What a restore needs to know of the archive: the manifest's backup, database and pg_dump. */
export interface ArchiveOrigin {
  backupId: string;
  databaseId: string;
  pgDumpMajor: number;
  pgDumpVersion: string;
}

/** The server a restore goes into; none for reading an archive alone (pg_restore --list). */
export interface RestoreTargetVersion {
  versionNum: number;
  version: string;
  /** e.g. `orders_restored on db.internal:5432`. */
  where: string;
}

/**
 * The pg_restore for an archive and a target. It must be at least the major of
 * the pg_dump that wrote the archive. Into PostgreSQL 16 and older it must be
 * below 17 (17+ sends `SET transaction_timeout`, which those servers reject and
 * --exit-on-error turns into a failed restore); if no installed client is both,
 * this fails here, before anything is downloaded. Among the rest, the lowest at
 * or above the target's major, else the newest.
 */
export async function restoreClientFor(archive: ArchiveOrigin, target?: RestoreTargetVersion, options: { path?: string } = {}): Promise<ChosenClient> {
  const clients = options.path ? [await toolVersion('pg_restore', options.path)] : await installedClients('pg_restore');
  const backup = `backup ${archive.backupId} of database "${archive.databaseId}"`;
  const readers = clients.filter((c) => c.major >= archive.pgDumpMajor);
  if (readers.length === 0) {
    const newest = clients[clients.length - 1]!;
    throw new ToolVersionError(
      `No installed pg_restore can read ${backup}: it was written by pg_dump ${archive.pgDumpVersion}, and the newest here is pg_restore ${newest.version} (installed majors: ${listOf(clients)}).`,
      { nextStep: `run the restore where pg_restore ${archive.pgDumpMajor} or newer is installed (the lifeboat runner image ships majors ${SUPPORTED_CLIENT_MAJORS.join(', ')}).` },
    );
  }
  if (!target) {
    const chosen = readers[0]!;
    return { ...chosen, installedMajors: majorsOf(clients), reason: `the lowest that reads an archive of pg_dump ${archive.pgDumpVersion}` };
  }
  const targetMajor = Math.floor(target.versionNum / 10_000);
  const oldTarget = targetMajor < FIRST_MAJOR_SENDING_TRANSACTION_TIMEOUT;
  const pool = oldTarget ? readers.filter((c) => c.major < FIRST_MAJOR_SENDING_TRANSACTION_TIMEOUT) : readers;
  if (pool.length === 0) {
    throw new ToolVersionError(
      `Cannot restore ${backup} into ${target.where}: the archive was written by pg_dump ${archive.pgDumpVersion}, so it needs pg_restore ${archive.pgDumpMajor} or newer, but the target runs PostgreSQL ${target.version}, and pg_restore ${FIRST_MAJOR_SENDING_TRANSACTION_TIMEOUT} and newer send SET transaction_timeout, which PostgreSQL ${FIRST_MAJOR_SENDING_TRANSACTION_TIMEOUT - 1} and older reject.`,
      {
        nextStep: `restore into PostgreSQL ${archive.pgDumpMajor} or newer, or restore a backup written by pg_dump ${FIRST_MAJOR_SENDING_TRANSACTION_TIMEOUT - 1} or older (lifeboat dumps each server with the client of its own major; backups taken before it did were written by the newest pg_dump).`,
      },
    );
  }
  const chosen = pool.find((c) => c.major >= targetMajor) ?? pool[pool.length - 1]!;
  const reason = oldTarget
    ? `reads an archive of pg_dump ${archive.pgDumpVersion} and sends no transaction_timeout, which PostgreSQL ${target.version} would reject`
    : `reads an archive of pg_dump ${archive.pgDumpVersion}; the lowest at or above the target's PostgreSQL ${target.version}`;
  return { ...chosen, installedMajors: majorsOf(clients), reason };
}

export interface CompressionChoice {
  /** The pg_dump argument. */
  arg: string;
  /** What the manifest records, e.g. `zstd:3` or `gzip:6`. */
  label: string;
}

/** zstd where pg_dump supports it (16+), otherwise pg_dump's own gzip. */
export function chooseCompression(settings: DumpSettings['compression'], pgDumpMajor: number): CompressionChoice {
  const modern = pgDumpMajor >= 16;
  const codec = settings.codec === 'auto' ? (modern ? 'zstd' : 'gzip') : settings.codec;
  if ((codec === 'zstd' || codec === 'lz4') && !modern) {
    throw new ConfigError('dump settings', [
      `dump.compression.codec: ${codec} needs pg_dump 16 or newer, this runner has pg_dump ${pgDumpMajor}; use "auto" or "gzip"`,
    ]);
  }
  if (codec === 'none') return { arg: '--compress=0', label: 'none' };
  const level = settings.level ?? (codec === 'zstd' ? 3 : codec === 'lz4' ? 1 : 6);
  if (codec === 'gzip' && level > 9) throw new ConfigError('dump settings', [`dump.compression.level: gzip levels are 0-9, got ${level}`]);
  // pg_dump 15 only knows a bare gzip level.
  return { arg: modern ? `--compress=${codec}:${level}` : `--compress=${level}`, label: `${codec}:${level}` };
}
