import { createInterface } from 'node:readline/promises';
import { ConfigError } from '../../functions/lib/errors.ts';
import { chooseRecoveryPoint, parseMoment } from '../../functions/lib/restore/recover.ts';
import { restoreBackup } from '../../functions/lib/restore/restore.ts';
import { removeAbandonedStaging } from '../../functions/lib/restore/staging.ts';
import { SecretRegistry } from '../../functions/lib/redact.ts';
import { cliClients, loadCliConfig, requireFlag, storageLocation } from '../context.ts';
import { createProgress, formatDuration } from '../progress.ts';
import type { CommandContext, CommandResult } from '../main.ts';
import { parseTarget, restoreReportLines } from './restore.ts';

type Flags = Record<string, string | boolean | string[] | undefined>;

export const recoverUsage = `lifeboat recover --database <id> --before <time> --target postgres://user@host:port/newdb [--newest] [--yes]
                 [--jobs N] [--no-owner] [--no-privileges] [--no-tablespaces] [--bucket <name>] [--prefix <p>] [--json]
  Brings a database back as it was before <time> (ISO 8601 with a zone, e.g. 2026-12-07T09:12:00Z, or "30m ago"):
  picks the newest committed backup consistent before it, preferring one a restore drill proved (--newest takes the
  newest regardless), says what is lost, asks for confirmation (--yes for scripts), restores into a NEW database,
  verifies it and prints how to connect. The password comes from PGPASSWORD.`;

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
  const target = parseTarget(requireFlag(flags.target as string | undefined, 'target', 'a NEW database, e.g. postgres://admin@host:5432/orders_recovered'), registry);
  const clients = cliClients(config);

  const choice = await chooseRecoveryPoint(clients.s3, storage.bucket, storage.prefix, databaseId, before, { newest: Boolean(flags.newest) });
  const lost = formatDuration(choice.loss.seconds * 1000);
  const plan = [
    `Recovering database "${databaseId}" to before ${before.toISOString()}`,
    `  point-in-time recovery: ${choice.pointInTime}`,
    `  backup ${choice.chosen.backupId}, consistent at ${choice.chosen.consistentAt}: ${choice.reason}`,
    ...(choice.newerUnproven ? [`  a newer backup, ${choice.newerUnproven.backupId} (consistent at ${choice.newerUnproven.consistentAt}), is unproven: --newest takes it`] : []),
    ...choice.unreadable.map((u) => `  passed over, its manifest is unreadable: ${u}`),
    `  LOST in this copy: every write from ${choice.loss.from} to ${choice.loss.to} (${lost})`,
    `  into a new database ${target.database} on ${target.host}:${target.port}, verified against the backup's manifest`,
  ];
  process.stderr.write(`${plan.join('\n')}\n`);
  if (!flags.yes && !(await confirm('Restore it? [y/N] ', context?.signal))) {
    return { json: { databaseId, before: before.toISOString(), choice: { ...choice, manifest: undefined }, restored: false }, text: 'Not restored: nothing was changed.' };
  }
  const progress = createProgress(`download ${choice.chosen.backupId}`);
  const result = await restoreBackup(
    choice.manifest,
    target,
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
  const connect = `psql "host=${target.host} port=${target.port} dbname=${target.database} user=${target.user}${target.sslMode === 'disable' ? '' : ` sslmode=${target.sslMode}`}"`;
  return {
    json: {
      databaseId,
      before: before.toISOString(),
      choice: { chosen: choice.chosen, reason: choice.reason, loss: choice.loss, newerUnproven: choice.newerUnproven, pointInTime: choice.pointInTime },
      restored: true,
      result,
      connect: { host: target.host, port: target.port, database: target.database, user: target.user },
    },
    text: [
      ...plan,
      ...restoreReportLines(choice.manifest, result),
      `Connect: ${connect} (password: the restoring user's; roles created by the restore have none yet)`,
      `Writes after ${choice.chosen.consistentAt} are not in it (${lost} up to the moment asked for).`,
    ].join('\n'),
  };
}
