import { Logger } from '@aws-lambda-powertools/logger';
import { RDSClient } from '@aws-sdk/client-rds';
import { ConfigError } from '../../functions/lib/errors.ts';
import { formatDrillReport } from '../../functions/lib/drill/format.ts';
import { localDrillDeps, runLocalDrill } from '../local-drill.ts';
import { drillRequestsFromConfig } from '../../functions/lib/drill/plan.ts';
import { cliClients, loadCliConfig, requireFlag, storageLocation } from '../context.ts';
import type { CommandContext, CommandResult } from '../main.ts';
import { LocalPostgresProvisioner } from '../../functions/lib/drill/local-provisioner.ts';
import { removeAbandonedStaging, removeOwnStaging } from '../../functions/lib/restore/staging.ts';

export const drillUsage = `lifeboat drill --database <id> [--backup <id>|latest] [--config <file>] [--bucket <name>] [--prefix <p>] [--json]
  Runs one restore drill now, on the drill state machine: restores the backup into a throwaway (a local
  PostgreSQL cluster for dumps, RDS for snapshots), proves it check by check, prints the checks with the
  measured RTO and RPO, writes the drill report, and tears the throwaway down. Exit code 1 if the drill failed.
  Alerts go to LIFEBOAT_ALERT_TOPIC_ARN when set; drills from the vault read LIFEBOAT_VAULT_BUCKET.`;

export async function drillCommand(flags: Record<string, string | boolean | string[] | undefined>, _positionals: string[] = [], context?: CommandContext): Promise<CommandResult> {
  const config = loadCliConfig(flags.config as string | undefined);
  if (!config) throw new ConfigError('command line', ['--config: required (or LIFEBOAT_CONFIG, or ./lifeboat.config.json)']);
  const databaseId = requireFlag(flags.database as string | undefined, 'database');
  const requests = drillRequestsFromConfig(config, { databaseId, backupId: flags.backup as string | undefined });
  const storage = storageLocation(flags as never, config);
  const vaultBucket = process.env.LIFEBOAT_VAULT_BUCKET;
  if (requests.some((r) => r.from === 'vault') && !vaultBucket) throw new ConfigError('command line', ['LIFEBOAT_VAULT_BUCKET: required to drill from the vault']);
  const clients = cliClients(config);
  const topicArn = process.env.LIFEBOAT_ALERT_TOPIC_ARN;
  // What a drill killed outright left (a throwaway cluster holding restored data, decrypted staging) goes first.
  const local = new LocalPostgresProvisioner();
  for (const item of await local.sweepAbandoned()) process.stderr.write(`lifeboat drill: removed ${item.type} ${item.id}, left by a drill that was killed (${item.detail ?? item.outcome})\n`);
  for (const path of removeAbandonedStaging()) process.stderr.write(`lifeboat drill: removed ${path}, the decrypted staging of a restore that was killed\n`);
  const drilled = runLocalDrill({
    requests,
    deps: localDrillDeps({
      localProvisioner: local,
      clients: { ...clients, rds: new RDSClient({}) },
      storage: { bucket: storage.bucket, prefix: storage.prefix },
      vault: vaultBucket ? { bucket: vaultBucket, prefix: process.env.LIFEBOAT_VAULT_PREFIX ?? storage.prefix } : undefined,
      rdsEmulated: process.env.LIFEBOAT_RDS_EMULATED === 'true',
      ...(config.snapshots?.copy?.region ? { copyRds: new RDSClient({ region: config.snapshots.copy.region }) } : {}),
    }),
    alert: topicArn ? { sns: clients.sns, topicArn } : undefined,
    // The CLI prints the report; the handlers' JSON logs stay quiet.
    logger: new Logger({ serviceName: 'lifeboat-cli', logLevel: 'SILENT' }),
    // A local cluster is up at once; a real RDS restore takes minutes, so keep the definition's waits and retries.
    realTimings: requests.some((r) => r.backupKind !== 'dump') && process.env.LIFEBOAT_RDS_EMULATED !== 'true',
  });
  // Ctrl-C or SIGTERM: stop and remove the throwaway clusters and the staging now, then stop (the bin exits at once).
  const signal = context?.signal;
  const interrupted = new Promise<never>((_, reject) => {
    if (!signal) return;
    const onAbort = async () => {
      // The plaintext first (a second Ctrl-C exits at once), then the slower cluster stop.
      removeOwnStaging();
      const released = await local.releaseAll().catch(() => []);
      for (const item of released) process.stderr.write(`lifeboat drill: interrupted; removed ${item.type} ${item.id} (${item.detail ?? item.outcome})\n`);
      reject(signal.reason);
    };
    if (signal.aborted) void onAbort();
    else signal.addEventListener('abort', () => void onAbort(), { once: true });
  });
  drilled.catch(() => undefined);
  const { run, reports, items } = await Promise.race([drilled, interrupted]);
  // Interrupted, even if the drill finished first (its restore failing fast once the cluster went): the answer is the
  // interruption, once the cleanup is done, not the failed verdict the interruption caused.
  if (signal?.aborted) await interrupted;
  const report = reports[0];
  if (!report) throw new Error(`the drill of ${databaseId} wrote no report: ${run.error ?? ''} ${String(run.cause ?? '')}`);
  const text = formatDrillReport(report, { color: Boolean(process.stdout.isTTY), locations: items[0]?.report });
  // A failed drill is a verdict, not a crash: print the report and exit 1.
  if (report.verdict === 'failed') throw Object.assign(new Error(flags.json ? JSON.stringify(report, null, 2) : text), { name: 'DrillFailed', printed: true });
  return { json: report, text };
}
