import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { createRdsClient } from '../../functions/lib/aws/clients.ts';
import { ConfigError, ManifestMismatchError } from '../../functions/lib/errors.ts';
import { pointInTimeAdvice } from '../../functions/lib/restore/point-in-time.ts';
import { chooseRecoveryPoint, parseMoment } from '../../functions/lib/restore/recover.ts';
import { restoreBackup, type RestoreResult } from '../../functions/lib/restore/restore.ts';
import {
  createRecoveryInstance,
  deleteCommands,
  describeSpec,
  discardRecoveryInstance,
  planRecoveryInstance,
  protectRecoveryInstance,
  recordEndpoint,
  waitForInstance,
  type CreatedInstance,
} from '../../functions/lib/restore/rds-target.ts';
import { removeAbandonedStaging } from '../../functions/lib/restore/staging.ts';
import { SecretRegistry } from '../../functions/lib/redact.ts';
import { cliClients, loadCliConfig, requireFlag, storageLocation } from '../context.ts';
import { createProgress, formatDuration } from '../progress.ts';
import type { CommandContext, CommandResult } from '../main.ts';
import { many, parseTarget, restoreReportLines } from './restore.ts';

type Flags = Record<string, string | boolean | string[] | undefined>;

export const recoverUsage = `lifeboat recover --database <id> --before <time> (--target postgres://user@host:port/newdb | --into-rds <new-instance-id>)
                 [--newest] [--yes] [--jobs N] [--no-owner] [--no-privileges] [--no-tablespaces] [--bucket <name>] [--prefix <p>] [--json]
                 [--instance-class <class>] [--subnet-group <name>] [--security-group <sg-id>]... [--storage-gib N] [--database-name <name>]
                 [--wait-minutes N (default 60)] [--poll-seconds N (default 30)]
  Brings a database back as it was before <time> (ISO 8601 with a zone, e.g. 2026-12-07T09:12:00Z, or "30m ago"):
  picks the newest committed backup consistent before it, preferring one a restore drill proved (--newest takes the
  newest regardless), says what is lost, asks for confirmation (--yes for scripts), restores into a NEW database,
  verifies it and prints how to connect. With --target the password comes from PGPASSWORD.
  With --into-rds it first creates a new RDS for PostgreSQL instance (class, network, storage and parameter group
  like the database's own rds.instanceIdentifier from the config, or from the flags), its master password generated
  into the Secrets Manager secret lifeboat/recovered/<id>; restores into it over TLS (verify-full, PGSSLROOTCERT
  names the RDS CA bundle), verifies, then turns deletion protection on. If the instance or the restore fails, or
  Ctrl-C interrupts, the instance and its secret are deleted; a restore that completes but does not match the
  manifest is kept like any unverified restore (database renamed <name>_unverified), without deletion protection.`;

async function confirm(question: string, signal?: AbortSignal): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(question, { signal });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export async function recoverCommand(flags: Flags, _positionals: string[] = [], context?: CommandContext): Promise<CommandResult> {
  for (const path of removeAbandonedStaging()) process.stderr.write(`lifeboat recover: removed ${path}, the decrypted staging of a restore that was killed\n`);
  const config = loadCliConfig(flags.config as string | undefined);
  const storage = storageLocation(flags as never, config);
  const databaseId = requireFlag(flags.database as string | undefined, 'database');
  const beforeText = requireFlag(flags.before as string | undefined, 'before', 'e.g. 2026-12-07T09:12:00Z or "30m ago"');
  const before = parseMoment(beforeText);
  if (!before) throw new ConfigError('command line', [`--before: "${beforeText}" is not a time with a zone (e.g. 2026-12-07T09:12:00Z, 2026-12-07T10:12:00+01:00) or "<n>m|h|d ago"`]);
  if (before.getTime() > Date.now() + 60_000) throw new ConfigError('command line', [`--before: ${before.toISOString()} is in the future`]);
  const interactive = Boolean(process.stdin.isTTY);
  if (!flags.yes && !interactive) throw new ConfigError('command line', ['--yes: required when not on a terminal (recover asks for confirmation before it restores)']);
  const registry = new SecretRegistry();
  const intoRds = flags['into-rds'] as string | undefined;
  if (intoRds !== undefined && flags.target !== undefined) throw new ConfigError('command line', ['--target and --into-rds: give one (a new database on a server you name, or a new RDS instance lifeboat creates)']);
  if (intoRds === undefined && flags.target === undefined) {
    throw new ConfigError('command line', ['--target: required (a NEW database, e.g. postgres://admin@host:5432/orders_recovered), or --into-rds <new-instance-id> for a new RDS instance']);
  }
  const number = (flag: string, fallback: number, min: number) => {
    const text = flags[flag] as string | undefined;
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < min) throw new ConfigError('command line', [`--${flag}: "${text}" is not a number ≥ ${min}`]);
    return value;
  };
  const wait = { pollMs: number('poll-seconds', 30, 0.1) * 1000, timeoutMs: number('wait-minutes', 60, 1) * 60_000 };
  const storageGiB = flags['storage-gib'] === undefined ? undefined : number('storage-gib', 20, 20);
  const clients = cliClients(config);
  let target = intoRds === undefined ? parseTarget(requireFlag(flags.target as string | undefined, 'target'), registry) : undefined;

  const choice = await chooseRecoveryPoint(clients.s3, storage.bucket, storage.prefix, databaseId, before, { newest: Boolean(flags.newest) });
  const manifest = choice.manifest;
  const databaseName = (flags['database-name'] as string | undefined) ?? manifest.database.name;
  const own = config?.databases.find((d) => d.id === databaseId);
  const ownInstance = own?.rds;
  // Point-in-time recovery reaches the moment itself where the database has it: said first, with the command,
  // read in the region of the source that holds the database.
  const sourceRegion = own?.source && own.source !== config?.source.id ? config?.additionalSources.find((s) => s.id === own.source)?.region : config?.source.region;
  const pointInTime = await pointInTimeAdvice(sourceRegion ? createRdsClient({ region: sourceRegion }) : clients.rds, ownInstance, before, { region: sourceRegion });
  const spec =
    intoRds === undefined
      ? undefined
      : await planRecoveryInstance(clients.rds, intoRds, { serverMajor: Math.floor(manifest.database.serverVersionNum / 10000), sizeBytes: manifest.database.sizeBytes }, {
          instanceClass: flags['instance-class'] as string | undefined,
          subnetGroup: flags['subnet-group'] as string | undefined,
          securityGroups: many(flags['security-group']),
          like: ownInstance && 'instanceIdentifier' in ownInstance ? ownInstance.instanceIdentifier : undefined,
          storageGiB,
        });
  if (spec) {
    // What would fail only after paying for an instance and waiting for it, refused now.
    const issues: string[] = [];
    if (['postgres', 'template0', 'template1', 'rdsadmin'].includes(databaseName)) issues.push(`--database-name: "${databaseName}" exists on every RDS instance; name the recovered database (e.g. --database-name ${databaseId.replace(/[^a-z0-9_]/gi, '_')})`);
    const ca = process.env.PGSSLROOTCERT;
    if (!ca) issues.push('PGSSLROOTCERT: not set; the restore connects with verify-full and needs the RDS CA bundle (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)');
    else if (!existsSync(ca)) issues.push(`PGSSLROOTCERT: ${ca} does not exist`);
    if (issues.length > 0) throw new ConfigError('command line', issues);
  }
  const lost = formatDuration(choice.loss.seconds * 1000);
  const plan = [
    `Recovering database "${databaseId}" to before ${before.toISOString()}`,
    `  point-in-time recovery: ${pointInTime.summary}`,
    `  backup ${choice.chosen.backupId}, consistent at ${choice.chosen.consistentAt}: ${choice.reason}`,
    ...(choice.newerUnproven ? [`  a newer backup, ${choice.newerUnproven.backupId} (consistent at ${choice.newerUnproven.consistentAt}), is unproven: --newest takes it`] : []),
    ...choice.unreadable.map((u) => `  passed over, its manifest is unreadable: ${u}`),
    `  LOST in this copy: every write from ${choice.loss.from} to ${choice.loss.to} (${lost})`,
    ...(spec
      ? [...describeSpec(spec).map((l, i) => (i === 0 ? `  into a new database ${databaseName} on ${l}` : `  ${l}`)), '    verified against the backup\'s manifest; deleted again if it or the restore fails (kept, unprotected, if it restores but does not verify)']
      : [`  into a new database ${target!.database} on ${target!.host}:${target!.port}, verified against the backup's manifest`]),
  ];
  process.stderr.write(`${plan.join('\n')}\n`);
  if (!flags.yes && !(await confirm(spec ? 'Create the instance and restore into it? [y/N] ' : 'Restore it? [y/N] ', context?.signal))) {
    return { json: { databaseId, before: before.toISOString(), choice: { ...choice, manifest: undefined }, pointInTime, restored: false }, text: 'Not restored: nothing was changed.' };
  }

  let instance: { identifier: string; secretArn: string; endpoint: { host: string; port: number } } | undefined;
  let created: CreatedInstance | undefined;
  let result: RestoreResult;
  try {
    if (spec) {
      created = await createRecoveryInstance(clients.rds, clients.secrets, spec, { 'lifeboat:recovered-database': databaseId, 'lifeboat:recovered-backup': manifest.backupId }, registry, context?.signal);
      const started = Date.now();
      let last = '';
      const endpoint = await waitForInstance(clients.rds, spec.identifier, {
        ...wait,
        signal: context?.signal,
        onStatus: (status) => {
          if (status !== last) process.stderr.write(`instance ${spec.identifier}: ${status} (${formatDuration(Date.now() - started)})\n`);
          last = status;
        },
      });
      await recordEndpoint(clients.secrets, created, endpoint);
      instance = { identifier: spec.identifier, secretArn: created.secretArn, endpoint };
      target = {
        ...endpoint,
        database: databaseName,
        user: created.masterUsername,
        password: created.password,
        sslMode: 'verify-full',
        sslRootCert: process.env.PGSSLROOTCERT,
        connectTimeoutSeconds: 10,
      };
    }
    const progress = createProgress(`download ${choice.chosen.backupId}`);
    result = await restoreBackup(
      manifest,
      target!,
      { s3: clients.s3, kms: clients.keyringKms, secretRegistry: registry, onProgress: (p) => progress.update(p.storedBytes, p.totalBytes), signal: context?.signal },
      {
        createDatabase: true,
        jobs: flags.jobs ? Number(flags.jobs) : 1,
        bucket: storage.bucket,
        noOwner: Boolean(flags['no-owner']),
        noPrivileges: Boolean(flags['no-privileges']),
        noTablespaces: Boolean(flags['no-tablespaces']),
      },
    );
    progress.finish(`download ${choice.chosen.backupId}: verified and decrypted`);
  } catch (error) {
    const failure = context?.signal?.aborted ? context.signal.reason : error;
    if (created && failure instanceof ManifestMismatchError && !context?.signal?.aborted) {
      // Restored but not verified: kept like any unverified restore (it may be the only working copy), unprotected.
      failure.message += ` The new instance ${created.identifier} is kept with it (deletion protection off); its master password is in the secret ${created.secretArn}. When done with it: ${deleteCommands(created)}`;
    } else if (created) {
      process.stderr.write(`deleting the new instance ${created.identifier} and its secret (nothing verified was restored into it); if this is cut short: ${deleteCommands(created)}\n`);
      const left = await discardRecoveryInstance(clients.rds, clients.secrets, created, { pollMs: wait.pollMs, timeoutMs: 15 * 60_000 });
      if (failure instanceof Error) {
        failure.message += left.length === 0 ? ` The new instance ${created.identifier} and its secret were deleted.` : ` Left behind, delete by hand: ${left.join('; ')}.`;
      }
    }
    throw failure;
  }
  // Verified: from here on the instance is the recovered service and is never deleted by lifeboat.
  const unprotected = spec ? await protectRecoveryInstance(clients.rds, spec.identifier, { pollMs: wait.pollMs, timeoutMs: 10 * 60_000 }) : undefined;
  const to = target!;
  const connect = `psql "host=${to.host} port=${to.port} dbname=${to.database} user=${to.user}${to.sslMode === 'disable' ? '' : ` sslmode=${to.sslMode}`}"`;
  return {
    json: {
      databaseId,
      before: before.toISOString(),
      choice: { chosen: choice.chosen, reason: choice.reason, loss: choice.loss, newerUnproven: choice.newerUnproven },
      pointInTime,
      restored: true,
      result,
      connect: { host: to.host, port: to.port, database: to.database, user: to.user, ...(instance ? { instance: instance.identifier, secretArn: instance.secretArn, deletionProtection: !unprotected } : {}) },
    },
    text: [
      ...plan,
      ...restoreReportLines(manifest, result),
      instance
        ? `Connect: ${connect} (the master password is in the secret ${instance.secretArn}: aws secretsmanager get-secret-value --secret-id ${instance.secretArn}; ${unprotected ? `deletion protection could NOT be turned on (${unprotected}): aws rds modify-db-instance --db-instance-identifier ${instance.identifier} --deletion-protection --apply-immediately` : 'deletion protection is on'})`
        : `Connect: ${connect} (password: the restoring user's; roles created by the restore have none yet)`,
      `Writes after ${choice.chosen.consistentAt} are not in it (${lost} up to the moment asked for).`,
    ].join('\n'),
  };
}
