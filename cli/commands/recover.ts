import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { DescribeDBInstancesCommand } from '@aws-sdk/client-rds';
import { createRdsClient } from '../../functions/lib/aws/clients.ts';
import { BackupNotFoundError, ConfigError, ManifestMismatchError, RecoveryInstanceError } from '../../functions/lib/errors.ts';
import { checkTablesAtMoment, pointInTimeAdvice } from '../../functions/lib/restore/point-in-time.ts';
import { chooseRecoveryPoint, parseMoment } from '../../functions/lib/restore/recover.ts';
import { restoreBackup, type RestoreResult } from '../../functions/lib/restore/restore.ts';
import {
  applyRecoveryPassword,
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
                 [--wait-minutes N (default 60)] [--poll-seconds N (default 30)] [--method pitr|dump]
  Brings a database back as it was before <time> (ISO 8601 with a zone, e.g. 2026-12-07T09:12:00Z, or "30m ago"):
  picks the newest committed backup consistent before it, preferring one a restore drill proved (--newest takes the
  newest regardless), says what is lost, asks for confirmation (--yes for scripts), restores into a NEW database,
  verifies it and prints how to connect. With --target the password comes from PGPASSWORD.
  With --into-rds it first creates a new RDS for PostgreSQL instance (class, network, storage and parameter group
  like the database's own rds.instanceIdentifier from the config, or from the flags), its master password generated
  into the Secrets Manager secret lifeboat/recovered/<id>; restores into it over TLS (verify-full, PGSSLROOTCERT
  names the RDS CA bundle), verifies, then turns deletion protection on. If the instance or the restore fails, or
  Ctrl-C interrupts, the instance and its secret are deleted; a restore that completes but does not match the
  manifest is kept like any unverified restore (database renamed <name>_unverified), without deletion protection.
  With --into-rds, where the database's own RDS instance (rds.instanceIdentifier) keeps a point-in-time window
  that covers the moment, recover restores THAT instance to the moment itself instead (RestoreDBInstanceToPointInTime:
  nothing before it is lost), sets the generated master password, checks the database against the newest dump
  before the moment and turns deletion protection on. --method dump restores the dump instead; --method pitr
  refuses to fall back to a dump.`;

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
  const method = flags.method as string | undefined;
  if (method !== undefined && method !== 'pitr' && method !== 'dump') throw new ConfigError('command line', [`--method: "${method}" is not pitr or dump`]);
  if (method === 'pitr' && intoRds === undefined) throw new ConfigError('command line', ['--method pitr: a point-in-time restore makes a new RDS instance: give --into-rds <new-instance-id>']);
  const clients = cliClients(config);
  let target = intoRds === undefined ? parseTarget(requireFlag(flags.target as string | undefined, 'target'), registry) : undefined;

  const own = config?.databases.find((d) => d.id === databaseId);
  const ownInstance = own?.rds;
  // Point-in-time recovery reaches the moment itself where the database has it: said first, with the command,
  // read in the region of the source that holds the database.
  const sourceRegion = own?.source && own.source !== config?.source.id ? config?.additionalSources.find((s) => s.id === own.source)?.region : config?.source.region;
  const sourceRds = sourceRegion ? createRdsClient({ region: sourceRegion }) : clients.rds;
  const pointInTime = await pointInTimeAdvice(sourceRds, ownInstance, before, { region: sourceRegion });
  // The moment itself, where RDS's own window covers it and recover makes the instance: nothing before it is lost.
  const pitrSource = intoRds !== undefined && pointInTime.covers && pointInTime.window?.kind === 'instance' && ownInstance && 'instanceIdentifier' in ownInstance ? ownInstance.instanceIdentifier : undefined;
  const usePitr = pitrSource !== undefined && method !== 'dump';
  if (method === 'pitr' && !usePitr) {
    throw new ConfigError('command line', [
      `--method pitr: the point-in-time window of database "${databaseId}" cannot restore this moment here (${pointInTime.window && pointInTime.window.kind !== 'instance' ? `lifeboat restores RDS instances to a moment; ${pointInTime.window.identifier} is a ${pointInTime.window.kind}: ` : ''}${pointInTime.summary})`,
    ]);
  }
  if (usePitr && flags['database-name'] !== undefined) {
    throw new ConfigError('command line', ['--database-name: a point-in-time restore brings the instance back with its databases under their own names; use --method dump to restore the dump under another name']);
  }
  // The restored moment, to the second (rounded down), as the window was checked.
  const restoreTime = new Date(Math.floor(before.getTime() / 1000) * 1000);
  // The newest dump before the moment: what a dump restore brings back, and what a point-in-time restore is checked against.
  let found: Awaited<ReturnType<typeof chooseRecoveryPoint>> | undefined;
  try {
    found = await chooseRecoveryPoint(clients.s3, storage.bucket, storage.prefix, databaseId, before, { newest: Boolean(flags.newest) });
  } catch (error) {
    // No dump before the moment: a point-in-time restore still reaches it.
    if (!(usePitr && error instanceof BackupNotFoundError)) throw error;
  }
  if (usePitr && intoRds !== undefined) {
    // A restore to a moment keeps the source's engine version: its parameter group (shared_preload_libraries,
    // rds.force_ssl, ...) must come along whatever version the newest dump was taken from.
    const sourceVersion = await sourceRds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: pitrSource })).then(
      (out) => out.DBInstances?.[0]?.EngineVersion,
      (error: Error) => {
        throw new RecoveryInstanceError(`Reading instance ${pitrSource}${sourceRegion ? ` in ${sourceRegion}` : ''} failed: ${error.name}: ${error.message}. Nothing was created.`, {
          cause: error,
          nextStep: 'check these credentials may rds:DescribeDBInstances on it, then run recover again (or --method dump).',
        });
      },
    );
    const sourceMajor = Number(sourceVersion?.split('.')[0]);
    const spec = await planRecoveryInstance(sourceRds, intoRds, { serverMajor: Number.isFinite(sourceMajor) ? sourceMajor : 0, sizeBytes: found?.manifest.database.sizeBytes ?? 0 }, {
      instanceClass: flags['instance-class'] as string | undefined,
      subnetGroup: flags['subnet-group'] as string | undefined,
      securityGroups: many(flags['security-group']),
      like: pitrSource,
      storageGiB,
    });
    const ca = process.env.PGSSLROOTCERT;
    if (!ca || !existsSync(ca)) throw new ConfigError('command line', [ca ? `PGSSLROOTCERT: ${ca} does not exist` : 'PGSSLROOTCERT: not set; recover connects to the restored instance with verify-full and needs the RDS CA bundle (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)']);
    return recoverToMoment({ flags, context, databaseId, before, restoreTime, pitrSource: pitrSource!, spec, databaseName: found?.manifest.database.name ?? own!.connection.database, pointInTime, choice: found, rds: sourceRds, secrets: clients.secrets, registry, wait });
  }
  const choice = found!;
  const manifest = choice.manifest;
  const databaseName = (flags['database-name'] as string | undefined) ?? manifest.database.name;
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
    `  point-in-time recovery: ${pointInTime.summary}${pitrSource !== undefined && method === 'dump' ? ' (not used: --method dump)' : ''}`,
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

interface MomentRecovery {
  flags: Flags;
  context?: CommandContext;
  databaseId: string;
  before: Date;
  restoreTime: Date;
  pitrSource: string;
  spec: NonNullable<Awaited<ReturnType<typeof planRecoveryInstance>>>;
  databaseName: string;
  pointInTime: Awaited<ReturnType<typeof pointInTimeAdvice>>;
  /** The newest dump before the moment, if any: the restored database is checked against its tables. */
  choice?: Awaited<ReturnType<typeof chooseRecoveryPoint>>;
  rds: ReturnType<typeof createRdsClient>;
  secrets: ReturnType<typeof cliClients>['secrets'];
  registry: SecretRegistry;
  wait: { pollMs: number; timeoutMs: number };
}

/**
 * `recover --into-rds` where RDS's own window covers the moment: the database's
 * instance restored to the moment itself. Same guarantees as the dump path:
 * the instance is lifeboat's to delete until it is checked, then protected.
 */
async function recoverToMoment(r: MomentRecovery): Promise<CommandResult> {
  const { spec, rds, secrets, registry, wait, context } = r;
  const moment = r.restoreTime.toISOString();
  const plan = [
    `Recovering database "${r.databaseId}" to before ${r.before.toISOString()}`,
    `  point-in-time recovery: ${r.pointInTime.summary.replace(/ \(lifeboat recover --into-rds <new-id> does it for you\); by hand: .*$/, '')}`,
    `  USING IT: RDS restores instance ${r.pitrSource} to ${moment} (RestoreDBInstanceToPointInTime); nothing committed before that moment is lost`,
    r.choice
      ? `  (the newest dump before it, ${r.choice.chosen.backupId} consistent at ${r.choice.chosen.consistentAt}, would lose ${formatDuration(r.choice.loss.seconds * 1000)}: --method dump restores it instead)`
      : '  (no committed dump is older than the moment: only point-in-time recovery reaches it)',
    ...describeSpec(spec).map((l, i) => (i === 0 ? `  as a new instance ${l}` : `  ${l}`)),
    `    its master password replaced by a generated one; checked${r.choice ? " against the dump's tables" : ' to answer'}; deleted again if anything fails before that`,
  ];
  process.stderr.write(`${plan.join('\n')}\n`);
  if (!r.flags.yes && !(await confirm('Restore the instance to that moment? [y/N] ', context?.signal))) {
    return { json: { databaseId: r.databaseId, before: r.before.toISOString(), method: 'pitr', pointInTime: r.pointInTime, restored: false }, text: 'Not restored: nothing was changed.' };
  }
  const manifest = r.choice?.manifest;
  let created: CreatedInstance | undefined;
  let endpoint: { host: string; port: number };
  let tables: { expected: number; found: number; missing: string[] };
  try {
    created = await createRecoveryInstance(rds, secrets, spec, { 'lifeboat:recovered-database': r.databaseId, 'lifeboat:recovered-moment': moment }, registry, context?.signal, {
      sourceIdentifier: r.pitrSource,
      restoreTime: r.restoreTime,
    });
    const started = Date.now();
    let last = '';
    const onStatus = (status: string) => {
      if (status !== last) process.stderr.write(`instance ${spec.identifier}: ${status} (${formatDuration(Date.now() - started)})\n`);
      last = status;
    };
    await waitForInstance(rds, spec.identifier, { ...wait, signal: context?.signal, onStatus });
    endpoint = await applyRecoveryPassword(rds, created, { ...wait, signal: context?.signal, onStatus, sourceIdentifier: r.pitrSource });
    await recordEndpoint(secrets, created, endpoint);
    tables = await checkTablesAtMoment(manifest, r.databaseId, {
      ...endpoint,
      database: r.databaseName,
      user: created.masterUsername,
      password: created.password,
      sslMode: 'verify-full',
      sslRootCert: process.env.PGSSLROOTCERT,
      connectTimeoutSeconds: 10,
    }, context?.signal);
  } catch (error) {
    const failure = context?.signal?.aborted ? context.signal.reason : error;
    if (created) {
      process.stderr.write(`deleting the new instance ${created.identifier} and its secret (it was not checked); if this is cut short: ${deleteCommands(created)}\n`);
      const left = await discardRecoveryInstance(rds, secrets, created, { pollMs: wait.pollMs, timeoutMs: 15 * 60_000 });
      if (failure instanceof Error) failure.message += left.length === 0 ? ` The new instance ${created.identifier} and its secret were deleted.` : ` Left behind, delete by hand: ${left.join('; ')}.`;
    }
    throw failure;
  }
  const unprotected = await protectRecoveryInstance(rds, spec.identifier, { pollMs: wait.pollMs, timeoutMs: 10 * 60_000 });
  const connect = `psql "host=${endpoint.host} port=${endpoint.port} dbname=${r.databaseName} user=${created.masterUsername} sslmode=verify-full"`;
  const tableLine = !manifest
    ? `  checked: database ${r.databaseName} answers over verify-full TLS (${tables.found} tables; no dump before the moment to compare with)`
    : tables.missing.length === 0
      ? `  checked: database ${r.databaseName} answers over verify-full TLS and holds all ${tables.expected} tables of dump ${manifest.backupId}`
      : `  checked: database ${r.databaseName} answers, but ${tables.missing.length} of the ${tables.expected} tables of dump ${manifest.backupId} are not there (dropped between the dump and the moment?): ${tables.missing.slice(0, 10).join(', ')}${tables.missing.length > 10 ? ', ...' : ''}`;
  return {
    json: {
      databaseId: r.databaseId,
      before: r.before.toISOString(),
      method: 'pitr',
      restoredTo: moment,
      pointInTime: r.pointInTime,
      restored: true,
      tables,
      connect: { host: endpoint.host, port: endpoint.port, database: r.databaseName, user: created.masterUsername, instance: spec.identifier, secretArn: created.secretArn, deletionProtection: !unprotected },
    },
    text: [
      ...plan,
      `Restored: instance ${spec.identifier} holds ${r.pitrSource} as it was at ${moment}.`,
      tableLine,
      `Connect: ${connect} (the master password is in the secret ${created.secretArn}: aws secretsmanager get-secret-value --secret-id ${created.secretArn}; ${unprotected ? `deletion protection could NOT be turned on (${unprotected}): aws rds modify-db-instance --db-instance-identifier ${spec.identifier} --deletion-protection --apply-immediately` : 'deletion protection is on'})`,
      'Roles and their passwords are the source instance\'s as of that moment; only the master password is new.',
    ].join('\n'),
  };
}
