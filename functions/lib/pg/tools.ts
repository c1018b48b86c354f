import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { DumpSettings } from '../config/schema.ts';
import { ConfigError, ToolVersionError } from '../errors.ts';
import { postgresBinary } from './binaries.ts';

const execFileAsync = promisify(execFile);

export interface ToolVersion {
  path: string;
  version: string;
  major: number;
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
  const parsed = { path, ...parseToolVersion(stdout) };
  versionCache.set(path, parsed);
  return parsed;
}

/** pg_dump refuses servers newer than itself; say so before it starts. */
export function assertDumpCanRead(databaseId: string, dump: ToolVersion, serverVersionNum: number): void {
  const serverMajor = Math.floor(serverVersionNum / 10_000);
  if (dump.major < serverMajor) {
    throw new ToolVersionError(
      `pg_dump ${dump.version} cannot dump database "${databaseId}": its server is PostgreSQL ${serverMajor}.`,
      { nextStep: `use a runner image with pg_dump ${serverMajor} or newer.` },
    );
  }
}

/** pg_restore must be at least as new as the pg_dump that wrote the archive. */
export function assertRestoreCanRead(backupId: string, restore: ToolVersion, dumpMajor: number): void {
  if (restore.major < dumpMajor) {
    throw new ToolVersionError(
      `pg_restore ${restore.version} cannot read backup ${backupId}: it was written by pg_dump ${dumpMajor}.`,
      { nextStep: `run the restore with pg_restore ${dumpMajor} or newer (the lifeboat runner image ships the newest).` },
    );
  }
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
