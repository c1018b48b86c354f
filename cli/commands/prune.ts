import { retentionRunInput, type RetentionTarget } from '../../events/schedules.ts';
import { createRdsClient, createS3Client, createStsClient } from '../../functions/lib/aws/clients.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import { RETENTION_LOCATIONS, retentionSettingsFromConfig, type RetentionLocation } from '../../functions/lib/retention/environment.ts';
import { isSkipped, runRetentionParts, summariseRetention, type RetentionContext, type RetentionRunResult } from '../../functions/lib/retention/run.ts';
import { renderPrunePlan } from '../../functions/lib/retention/s3-executor.ts';
import { renderSnapshotPrunePlan } from '../../functions/lib/retention/snapshot-executor.ts';
import { loadCliConfig, storageLocation } from '../context.ts';
import type { CommandResult } from '../main.ts';

export const pruneUsage = `lifeboat prune [--plan <id>] [--database <id>] [--location source|copy-region|vault] [--dry-run | --execute] [--config <file>] [--bucket <name>] [--prefix <p>] [--json]
  Applies the plans' retention policies to dumps and snapshots. DRY RUN BY DEFAULT: prints each plan as a table and deletes
  nothing. --execute deletes what the plan says and writes the audit log (<prefix>_audit/retention/ in the source bucket).`;

type Flags = Record<string, string | boolean | string[] | undefined>;

interface Job {
  planId: string;
  target: RetentionTarget;
}

function jobsFor(flags: Flags, config: NonNullable<ReturnType<typeof loadCliConfig>>): Job[] {
  const location = flags.location as string | undefined;
  if (location !== undefined && !RETENTION_LOCATIONS.includes(location as RetentionLocation)) {
    throw new ConfigError('command line', [`--location: must be one of ${RETENTION_LOCATIONS.join(', ')} (got "${location}")`]);
  }
  const planId = flags.plan as string | undefined;
  const databaseId = flags.database as string | undefined;
  if (planId !== undefined && !config.plans.some((p) => p.id === planId)) {
    throw new ConfigError('command line', [`--plan: "${planId}" is not in the config (known: ${config.plans.map((p) => p.id).join(', ')})`]);
  }
  if (databaseId !== undefined && !config.plans.some((p) => (planId === undefined || p.id === planId) && p.databases.includes(databaseId))) {
    throw new ConfigError('command line', [`--database: "${databaseId}" is in no ${planId ? `database list of plan "${planId}"` : 'plan'} of the config`]);
  }
  return config.plans
    .filter((p) => planId === undefined || p.id === planId)
    .flatMap((p) =>
      retentionRunInput(config, p.id, location ? { locations: [location as RetentionLocation] } : {})
        .targets.filter((t) => databaseId === undefined || t.databaseId === databaseId)
        .map((target) => ({ planId: p.id, target })),
    );
}

function renderResult(result: RetentionRunResult): string {
  const out = [`== plan ${result.planId}, database ${result.databaseId}, ${result.location} ==`, ''];
  const { dumps, snapshots } = result;
  out.push(isSkipped(dumps) ? `dumps: skipped (${dumps.skipped})` : renderPrunePlan(dumps.plan).trimEnd(), '');
  out.push(isSkipped(snapshots) ? `snapshots: skipped (${snapshots.skipped})` : renderSnapshotPrunePlan(snapshots.plan).trimEnd());
  if (!result.dryRun) {
    const s = summariseRetention(result);
    out.push(`Deleted ${s.deleted} (${s.failedCount} failed).${s.auditKeys.length ? ` Audit log: ${s.auditKeys.map((k) => `s3://${s.auditBucket}/${k}`).join(', ')}` : ''}`);
    for (const f of s.failed) out.push(`  FAILED ${f.backup} ${f.id}: ${f.error}`);
  }
  for (const e of result.errors) out.push(`ERROR ${e.name}: ${e.message}`);
  return out.join('\n');
}

/** Decisions for --json: what each backup gets and why (the table's content). */
function decisionsOf(result: RetentionRunResult) {
  const row = (d: { id: string; action: string; time: Date; reasons: string[] }) => ({ id: d.id, action: d.action, time: d.time.toISOString(), reasons: d.reasons });
  return {
    dumps: isSkipped(result.dumps) ? [] : [...result.dumps.plan.decisions, ...result.dumps.plan.incomplete].map(row),
    snapshots: isSkipped(result.snapshots) ? [] : result.snapshots.plan.decisions.map(row),
  };
}

export async function pruneCommand(flags: Flags): Promise<CommandResult> {
  const config = loadCliConfig(flags.config as string | undefined);
  if (!config) throw new ConfigError('command line', ['--config: required (or LIFEBOAT_CONFIG, or ./lifeboat.config.json): the retention policies live there']);
  if (flags['dry-run'] && flags.execute) throw new ConfigError('command line', ['--dry-run and --execute: choose one (the default is a dry run)']);
  const dryRun = !flags.execute;
  const jobs = jobsFor(flags, config);
  const storage = storageLocation(flags as never, config);
  const settings = retentionSettingsFromConfig(config, { bucket: storage.bucket, prefix: storage.prefix });
  if (jobs.length === 0) {
    const text = 'Nothing to prune: no matching plan, database and location has a retention policy (plans[].retention in the config).';
    return { json: { dryRun, results: [] }, text };
  }
  const ctx: RetentionContext = {
    settings,
    s3: createS3Client({ region: settings.sourceRegion }),
    s3With: (region, credentials) => createS3Client({ region, credentials }),
    rds: (region, credentials) => createRdsClient({ region, credentials }),
    sts: createStsClient({ region: settings.sourceRegion }),
  };

  const results: RetentionRunResult[] = [];
  for (const job of jobs) {
    try {
      results.push(await runRetentionParts({ planId: job.planId, databaseId: job.target.databaseId, location: job.target.location, dryRun }, ctx));
    } catch (error) {
      results.push({
        runId: '',
        planId: job.planId,
        databaseId: job.target.databaseId,
        location: job.target.location,
        dryRun,
        timeZone: 'UTC',
        dumps: { skipped: 'not run' },
        snapshots: { skipped: 'not run' },
        auditBucket: storage.bucket,
        errors: [error as Error],
      });
    }
  }

  const summaries = results.map((r) => ({ ...summariseRetention(r), errors: r.errors.map((e) => ({ name: e.name, message: e.message })), decisions: decisionsOf(r) }));
  const planned = summaries.reduce((n, s) => n + s.deleted, 0);
  const failed = summaries.reduce((n, s) => n + s.failedCount + s.errors.length, 0);
  const footer = dryRun
    ? `Dry run: nothing was deleted. ${planned} backups would be deleted; run again with --execute to delete them.`
    : `Deleted ${planned} backups; ${failed} failures.`;
  const text = [...results.map(renderResult), footer].join('\n\n');
  const json = { dryRun, results: summaries };
  if (failed > 0) throw Object.assign(new Error(flags.json ? JSON.stringify(json, null, 2) : text), { name: 'PruneIncomplete', printed: true });
  return { json, text };
}
