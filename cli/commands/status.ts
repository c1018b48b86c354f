import { writeFileSync } from 'node:fs';
import { ConfigError } from '../../functions/lib/errors.ts';
import { collectStatus, type StatusSources } from '../../functions/lib/status/model.ts';
import { renderStatusHtml } from '../../functions/lib/status/render-html.ts';
import { renderStatusText } from '../../functions/lib/status/render-text.ts';
import { backupsFromBucket, drillsFromBucket } from '../../functions/lib/status/s3-sources.ts';
import { cliClients, loadCliConfig, storageLocation } from '../context.ts';
import type { CommandResult } from '../main.ts';

export const statusUsage = `lifeboat status [--config <file>] [--bucket <name>] [--json] [--html <out.html>]
  Are we safe? Per database: newest backup (source and vault), newest drill and its result,
  measured RTO/RPO against target, snapshot quota, and what is late or failing.
  Exits 1 when anything is failing.`;

export async function statusCommand(flags: Record<string, string | boolean | undefined>): Promise<CommandResult> {
  const config = loadCliConfig(flags.config as string | undefined);
  if (!config) throw new ConfigError('command line', ['--config: required (or LIFEBOAT_CONFIG, or ./lifeboat.config.json)']);
  const storage = storageLocation(flags as never, config);
  const { s3 } = cliClients();
  const sources: StatusSources = {
    backups: (databaseId) => backupsFromBucket(s3, storage.bucket, storage.prefix, databaseId),
    drills: (databaseId) => drillsFromBucket(s3, storage.bucket, storage.prefix, databaseId),
  };
  const status = await collectStatus(config, sources);
  if (typeof flags.html === 'string') writeFileSync(flags.html, renderStatusHtml(status));
  const text = renderStatusText(status, Boolean(process.stdout.isTTY) && !process.env.NO_COLOR);
  const result = { json: status, text: typeof flags.html === 'string' ? `${text}\n\nwrote ${flags.html}` : text };
  if (status.severity === 'failing') throw Object.assign(new Error(flags.json ? JSON.stringify(status, null, 2) : text), { name: 'NotSafe', printed: true });
  return result;
}
