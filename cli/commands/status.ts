import { writeFileSync } from 'node:fs';
import type { RDSClient } from '@aws-sdk/client-rds';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { createRdsClient, createS3Client } from '../../functions/lib/aws/clients.ts';
import { resolveSnapshotSettings } from '../../functions/lib/config/schema.ts';
import { checkSnapshotQuota } from '../../functions/lib/snapshots/quota.ts';
import { vaultNames } from '../../functions/lib/vault/names.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import { collectStatus, type StatusSources } from '../../functions/lib/status/model.ts';
import { renderStatusHtml } from '../../functions/lib/status/render-html.ts';
import { renderStatusText } from '../../functions/lib/status/render-text.ts';
import { pitrPostureFromRds } from '../../functions/lib/status/rds-sources.ts';
import { backupsFromBucket, drillsFromBucket } from '../../functions/lib/status/s3-sources.ts';
import { cliClients, loadCliConfig, storageLocation } from '../context.ts';
import type { CommandResult } from '../main.ts';

export const statusUsage = `lifeboat status [--config <file>] [--bucket <name>] [--no-vault] [--json] [--html <out.html>]
  Are we safe? Per database: newest backup (source and vault), newest drill and its result,
  measured RTO/RPO against target, snapshot quota, and what is late or failing. For databases of
  plans with pitr: the point-in-time window RDS keeps and the PITR RPO (now - LatestRestorableTime)
  against pitr.windowDays and pitr.maxLagMinutes, read with your credentials (changing nothing).
  Exits 1 when anything is failing.`;

export async function statusCommand(flags: Record<string, string | boolean | string[] | undefined>): Promise<CommandResult> {
  const config = loadCliConfig(flags.config as string | undefined);
  if (!config) throw new ConfigError('command line', ['--config: required (or LIFEBOAT_CONFIG, or ./lifeboat.config.json)']);
  const storage = storageLocation(flags as never, config);
  const { s3 } = cliClients(config);
  const problems: { severity: 'warning'; message: string }[] = [];
  const sources: StatusSources = {
    backups: (databaseId) => backupsFromBucket(s3, storage.bucket, storage.prefix, databaseId),
    drills: (databaseId) => drillsFromBucket(s3, storage.bucket, storage.prefix, databaseId),
  };
  if (config.vault && !flags['no-vault']) {
    // The vault is read with the caller's own credentials (vault-account read access).
    const vaultBucket = vaultNames({ name: config.name, vault: config.vault }).bucketName;
    const vaultS3 = createS3Client({ region: config.vault.region });
    try {
      await vaultS3.send(new HeadBucketCommand({ Bucket: vaultBucket }));
      sources.vaultBackups = (databaseId) => backupsFromBucket(vaultS3, vaultBucket, storage.prefix, databaseId);
    } catch (error) {
      problems.push({ severity: 'warning', message: `could not read the vault bucket ${vaultBucket} (${(error as Error).name}): use credentials with vault read access, or --no-vault` });
    }
  }
  if (config.plans.some((p) => p.snapshot)) {
    const rds = createRdsClient({ region: config.source.region });
    const settings = resolveSnapshotSettings(config.snapshots);
    sources.snapshotQuota = async () => {
      try {
        const check = await checkSnapshotQuota(rds, 'instance', config.source.region, settings);
        return { used: check.used, limit: check.max };
      } catch (error) {
        problems.push({ severity: 'warning', message: `could not read the manual snapshot quota (${(error as Error).name})` });
        return undefined;
      }
    };
  }
  if (config.plans.some((p) => p.pitr)) {
    // The same check as `lifeboat pitr status`, with pitr.manage off (collectStatus's targets): it only reads, with the caller's credentials.
    const clients = new Map<string, RDSClient>();
    const rds = (region: string) => {
      let client = clients.get(region);
      if (!client) clients.set(region, (client = createRdsClient({ region })));
      return client;
    };
    sources.pitrPosture = pitrPostureFromRds(rds);
  }
  const status = await collectStatus(config, sources, new Date(), problems);
  if (typeof flags.html === 'string') writeFileSync(flags.html, renderStatusHtml(status));
  const text = renderStatusText(status, Boolean(process.stdout.isTTY) && !process.env.NO_COLOR);
  const result = { json: status, text: typeof flags.html === 'string' ? `${text}\n\nwrote ${flags.html}` : text };
  if (status.severity === 'failing') throw Object.assign(new Error(flags.json ? JSON.stringify(status, null, 2) : text), { name: 'NotSafe', printed: true });
  return result;
}
