import { runDumpBackup } from '../../functions/lib/backup/dump-pipeline.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import { cliClients, loadCliConfig, requireFlag, storageLocation } from '../context.ts';
import { createProgress, formatBytes, formatDuration } from '../progress.ts';
import type { CommandResult } from '../main.ts';

export const backupUsage = `lifeboat backup --database <id> [--config <file>] [--bucket <name>] [--kms-key <arn>] [--prefix <p>] [--plan <id>] [--json]
  Dumps one configured database now: pg_dump → encryption → S3, manifest last.`;

export async function backupCommand(flags: Record<string, string | boolean | string[] | undefined>): Promise<CommandResult> {
  const config = loadCliConfig(flags.config as string | undefined);
  if (!config) throw new ConfigError('command line', ['--config: required (or LIFEBOAT_CONFIG, or ./lifeboat.config.json)']);
  const databaseId = requireFlag(flags.database as string | undefined, 'database');
  const database = config.databases.find((d) => d.id === databaseId);
  if (!database) throw new ConfigError('command line', [`--database: "${databaseId}" is not in the config (known: ${config.databases.map((d) => d.id).join(', ')})`]);
  const storage = storageLocation(flags as never, config);
  const kmsKeyArn = requireFlag(storage.kmsKeyArn, 'kms-key', 'or LIFEBOAT_KMS_KEY_ARN, or storage.kmsKeyArn');
  const clients = cliClients(config);
  const progress = createProgress(`backup ${databaseId}`);
  const result = await runDumpBackup(
    {
      databaseId,
      planId: flags.plan as string | undefined,
      connection: database.connection,
      settings: database.dump,
      target: { bucket: storage.bucket, prefix: storage.prefix, kmsKeyArn },
    },
    { s3: clients.s3, kms: clients.keyringKms, secrets: clients.secrets, onProgress: (p) => progress.update(p.rawBytes, p.estimatedBytes) },
  );
  const m = result.manifest;
  const elapsed = new Date(m.finishedAt).getTime() - new Date(m.startedAt).getTime();
  progress.finish(`backup ${databaseId}: committed ${result.backupId} in ${formatDuration(elapsed)}`);
  return {
    json: { backupId: result.backupId, databaseId, bucket: result.bucket, manifestKey: result.manifestKey, rawBytes: result.rawBytes, storedBytes: result.storedBytes, sha256: result.sha256 },
    text: [
      `Backup ${result.backupId} of ${databaseId} committed`,
      `  manifest   s3://${result.bucket}/${result.manifestKey}`,
      `  dump       ${formatBytes(result.rawBytes)} from pg_dump ${m.dump.toolVersion} (${m.dump.compression}), ${formatBytes(result.storedBytes)} stored encrypted`,
      `  sha256     ${result.sha256}`,
      `  tables     ${m.inventory.tables.length} (${m.inventory.tables.reduce((n, t) => n + t.rows, 0)} rows), ${m.inventory.sequences.length} sequences, ${m.inventory.largeObjects} large objects`,
      `  consistent ${m.consistentAt}`,
    ].join('\n'),
  };
}
