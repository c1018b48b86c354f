import { findBackup, listBackups } from '../../functions/lib/backup/catalog.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import type { ResolvedConnection } from '../../functions/lib/pg/connection.ts';
import { readManifest } from '../../functions/lib/restore/fetch.ts';
import { listBackupContents, restoreBackup, verifyBackup, type RestoreResult } from '../../functions/lib/restore/restore.ts';
import type { Manifest } from '../../functions/lib/backup/manifest.ts';
import { removeAbandonedStaging } from '../../functions/lib/restore/staging.ts';
import { SecretRegistry } from '../../functions/lib/redact.ts';
import type { RolesReport } from '../../functions/lib/pg/roles.ts';
import { cliClients, loadCliConfig, requireFlag, storageLocation } from '../context.ts';
import { createProgress, formatBytes, formatDuration } from '../progress.ts';
import type { CommandContext, CommandResult } from '../main.ts';

type Flags = Record<string, string | boolean | string[] | undefined>;

export const verifyUsage = `lifeboat verify (--database <id> [--backup <id>|latest] | --manifest <key>) [--bucket <name>] [--prefix <p>] [--json]
  Checks a backup without restoring it: sha256, authenticated decryption, pg_restore --list.`;
export const restoreUsage = `lifeboat restore (--database <id> [--backup <id>|latest] | --manifest <key>) --target postgres://user@host:port/dbname
                 [--create] [--jobs N] [--drop-on-mismatch] [--no-owner] [--no-privileges] [--no-tablespaces]
                 [--schema <name>]... [--table <schema.table>]... [--bucket <name>] [--prefix <p>] [--json]
lifeboat restore (--database <id> [--backup <id>|latest] | --manifest <key>) --list [--json]
  --list shows what the backup holds. --schema and --table (repeatable) restore only those, each table with its
  sequences, indexes, constraints, triggers, policies and grants, and verify exactly what was restored.
  Verifies, decrypts and restores a backup into an EMPTY database, then compares it with the manifest.
  Owners, grants and default privileges are kept and verified; roles the target lacks are created from the
  backup's globals (without passwords: the report names the login roles that need one).
  A created database that does not match is kept as <dbname>_unverified (--drop-on-mismatch drops it).
  The target password comes from PGPASSWORD, never from the command line.`;
export const backupsUsage = `lifeboat backups --database <id> [--uncommitted] [--bucket <name>] [--prefix <p>] [--json]
  Lists the committed backups of a database, newest first (--uncommitted also lists failed or running dumps, with their age).`;

async function selectManifest(flags: Flags) {
  const config = loadCliConfig(flags.config as string | undefined);
  const storage = storageLocation(flags as never, config);
  const clients = cliClients(config);
  const manifestKey =
    (flags.manifest as string | undefined) ??
    (await findBackup(clients.s3, storage.bucket, storage.prefix, requireFlag(flags.database as string | undefined, 'database', 'or --manifest'), (flags.backup as string | undefined) ?? 'latest')).manifestKey;
  const manifest = await readManifest(clients.s3, storage.bucket, manifestKey);
  return { clients, storage, manifest };
}

export async function verifyCommand(flags: Flags): Promise<CommandResult> {
  const { clients, storage, manifest } = await selectManifest(flags);
  const progress = createProgress(`verify ${manifest.backupId}`);
  const result = await verifyBackup(manifest, { s3: clients.s3, kms: clients.keyringKms, onProgress: (p) => progress.update(p.storedBytes, p.totalBytes) }, { bucket: storage.bucket });
  progress.finish(`verify ${manifest.backupId}: ok`);
  return {
    json: result,
    text: [`Backup ${manifest.backupId} of ${manifest.database.id} is readable`, ...result.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(18)} ${c.detail}`)].join('\n'),
  };
}

/** Parses a libpq URI; a password in it is accepted but PGPASSWORD is preferred. */
export function parseTarget(uri: string, registry: SecretRegistry): ResolvedConnection {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new ConfigError('command line', ['--target: must be a URI like postgres://user@host:5432/dbname']);
  }
  if (!/^postgres(ql)?:$/.test(url.protocol)) throw new ConfigError('command line', ['--target: must start with postgres://']);
  const password = decodeURIComponent(url.password) || process.env.PGPASSWORD;
  registry.add(password);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  const issues: string[] = [];
  if (!database) issues.push('--target: needs a database name, e.g. postgres://user@host:5432/restored');
  if (!url.username) issues.push('--target: needs a user, e.g. postgres://user@host:5432/restored');
  if (!password) issues.push('--target: no password: set PGPASSWORD');
  if (issues.length) throw new ConfigError('command line', issues);
  const sslMode = (url.searchParams.get('sslmode') ?? 'prefer') as string;
  return {
    host: url.hostname || '127.0.0.1',
    port: Number(url.port || 5432),
    database,
    user: decodeURIComponent(url.username),
    password: password!,
    sslMode: (['disable', 'require', 'verify-ca', 'verify-full'].includes(sslMode) ? sslMode : 'require') as ResolvedConnection['sslMode'],
    connectTimeoutSeconds: 10,
    sslRootCert: url.searchParams.get('sslrootcert') ?? process.env.PGSSLROOTCERT,
  };
}

/** A repeatable option's values (parseArgs gives an array, or nothing). */
export function many(value: Flags[string]): string[] {
  return Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
}

async function listCommand(flags: Flags, context?: CommandContext): Promise<CommandResult> {
  const { clients, storage, manifest } = await selectManifest(flags);
  const progress = createProgress(`download ${manifest.backupId}`);
  const contents = await listBackupContents(manifest, { s3: clients.s3, kms: clients.keyringKms, onProgress: (p) => progress.update(p.storedBytes, p.totalBytes), signal: context?.signal }, { bucket: storage.bucket });
  progress.finish(`download ${manifest.backupId}: verified and decrypted, table of contents read, plaintext deleted`);
  const LABELS: Record<string, string> = { SCHEMA: 'schema', TABLE: 'table', VIEW: 'view', 'MATERIALIZED VIEW': 'matview', 'FOREIGN TABLE': 'foreign table', SEQUENCE: 'sequence', FUNCTION: 'function', PROCEDURE: 'procedure', AGGREGATE: 'aggregate', TYPE: 'type', DOMAIN: 'domain', EXTENSION: 'extension' };
  const objects = contents.entries.filter((e) => LABELS[e.kind]);
  const others = new Map<string, number>();
  for (const e of contents.entries) if (!LABELS[e.kind] && !['ENCODING', 'STDSTRINGS', 'SEARCHPATH', 'DATABASE'].includes(e.kind)) others.set(e.kind, (others.get(e.kind) ?? 0) + 1);
  const nameOf = (e: (typeof objects)[number]) => (e.schema ? `${e.schema}.${e.name}` : e.name);
  const width = Math.max(10, ...objects.map((e) => nameOf(e).length));
  return {
    json: contents,
    text: [
      `Backup ${contents.backupId} of ${contents.databaseId}, consistent at ${contents.consistentAt} (pg_dump ${contents.archive.pgDumpVersion}, archive ${contents.archive.version}, ${contents.entries.length} entries)`,
      ...objects.map((e) => {
        const rows = e.kind === 'TABLE' && contents.rows[nameOf(e)] !== undefined ? `${contents.rows[nameOf(e)]} rows` : '';
        return `  ${LABELS[e.kind]!.padEnd(13)} ${nameOf(e).padEnd(width)} ${rows}`.trimEnd();
      }),
      `  and ${[...others.entries()].map(([k, n]) => `${n} ${k.toLowerCase()}`).join(', ') || 'nothing else'}`,
      `Roles recorded: ${contents.roles.length ? contents.roles.join(', ') : 'none (this backup predates their recording)'}; tablespaces used: ${contents.tablespacesUsed.join(', ') || 'none'}`,
      'Restore a part with --schema <name> or --table <schema.table> (repeatable).',
    ].join('\n'),
  };
}

export async function restoreCommand(flags: Flags, _positionals: string[] = [], context?: CommandContext): Promise<CommandResult> {
  // Plaintext left by a restore that was killed outright (SIGKILL, power loss) goes first.
  for (const path of removeAbandonedStaging()) process.stderr.write(`lifeboat restore: removed ${path}, the decrypted staging of a restore that was killed\n`);
  if (flags.list) return listCommand(flags, context);
  const schemas = many(flags.schema);
  const tables = many(flags.table);
  const registry = new SecretRegistry();
  const target = parseTarget(requireFlag(flags.target as string | undefined, 'target'), registry);
  const { clients, storage, manifest } = await selectManifest(flags);
  const progress = createProgress(`download ${manifest.backupId}`);
  const result = await restoreBackup(
    manifest,
    target,
    { s3: clients.s3, kms: clients.keyringKms, secretRegistry: registry, onProgress: (p) => progress.update(p.storedBytes, p.totalBytes), signal: context?.signal },
    {
      createDatabase: Boolean(flags.create),
      jobs: flags.jobs ? Number(flags.jobs) : 1,
      bucket: storage.bucket,
      onMismatch: flags['drop-on-mismatch'] ? 'drop' : 'rename',
      noOwner: Boolean(flags['no-owner']),
      noPrivileges: Boolean(flags['no-privileges']),
      noTablespaces: Boolean(flags['no-tablespaces']),
      ...(schemas.length || tables.length ? { select: { schemas, tables } } : {}),
    },
  );
  progress.finish(`download ${manifest.backupId}: ${formatBytes(result.fetch.storedBytes)} verified and decrypted`);
  return { json: result, text: restoreReportLines(manifest, result).join('\n') };
}

/** What a restore did, line by line, for people (restore and recover print it). */
export function restoreReportLines(manifest: Manifest, result: RestoreResult): string[] {
  const t = result.timings;
  return [
    `Restored ${manifest.backupId} of ${manifest.database.id} into ${result.target} in ${formatDuration(t.totalMs)}`,
    `  pg_restore ${result.client.version} into PostgreSQL ${result.client.targetServerVersion}, for an archive of pg_dump ${result.client.pgDump.version} (installed: ${result.client.installedMajors.join(', ')})`,
    `  download+decrypt ${formatDuration(t.downloadMs)}, pg_restore ${formatDuration(t.restoreMs)}, verify ${formatDuration(t.verifyMs)}`,
    ...result.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(18)} ${c.detail}`),
    ...(result.selection
      ? [
          `  restored only ${result.selection.tables.map((t) => `${t.schema}.${t.name}`).join(', ')} (${result.selection.entries} archive entries)${result.selection.structureOnly.length ? `; as structure only: ${result.selection.structureOnly.map((t) => `${t.schema}.${t.name}`).join(', ')}` : ''}`,
          ...result.selection.leftOut.map((l) => `  left out  ${l}`),
        ]
      : []),
    ...rolesLines(result.roles),
    ...result.fidelity.dropped.map((d) => `  left out  ${d}`),
    ...result.databaseState.restored.map((r) => `  restored  ${r}`),
    ...result.databaseState.notRestored.map((r) => `  NOT restored  ${r}`),
    `  not in any pg_dump archive: ${result.databaseState.notCarried.join('; ')}`,
  ];
}

function rolesLines(roles: RolesReport): string[] {
  return [
    ...(roles.created.length ? [`  created role(s) ${roles.created.join(', ')} (from the backup's globals)`] : []),
    ...(roles.placeholders.length ? [`  created NOLOGIN placeholder(s) for managed-service role(s) ${roles.placeholders.join(', ')}`] : []),
    ...(roles.memberships.length ? [`  granted ${roles.memberships.join('; ')}`] : []),
    ...(roles.grantedToRestoringUser.length ? [`  granted ${roles.grantedToRestoringUser.join(', ')} to the restoring user, so it could give them objects`] : []),
    ...roles.skipped.map((s) => `  NOT restored  ${s}`),
    ...(roles.needPassword.length
      ? [`  NEEDS A PASSWORD before the application can log in: ${roles.needPassword.join(', ')} (ALTER ROLE ... PASSWORD '...'; on RDS with IAM auth, GRANT rds_iam instead)`]
      : []),
  ];
}

export async function backupsCommand(flags: Flags): Promise<CommandResult> {
  const config = loadCliConfig(flags.config as string | undefined);
  const storage = storageLocation(flags as never, config);
  const databaseId = requireFlag(flags.database as string | undefined, 'database');
  const listing = await listBackups(cliClients(config).s3, storage.bucket, storage.prefix, databaseId);
  const ids = listing.committed.map((c) => c.backupId);
  // Directories without a manifest (failed or running dumps) only when asked for, with their age.
  const uncommitted = flags.uncommitted ? listing.uncommitted : [];
  const age = (at?: Date) => (at ? `last written ${formatDuration(Date.now() - at.getTime())} ago` : 'no write time');
  const lines = [
    ...(ids.length ? ids : [`no committed backups of ${databaseId} in s3://${storage.bucket}/${storage.prefix}`]),
    ...uncommitted.map((u) => `${u.backupId}  UNCOMMITTED: ${u.objects} object(s) and no manifest, ${age(u.lastWrite)} (a failed or running dump, not a backup; retention removes it)`),
  ];
  return {
    json: { databaseId, backups: ids, ...(flags.uncommitted ? { uncommitted: uncommitted.map((u) => ({ backupId: u.backupId, objects: u.objects, lastWrite: u.lastWrite?.toISOString() })) } : {}) },
    text: lines.join('\n'),
  };
}
