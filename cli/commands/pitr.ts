import type { RDSClient } from '@aws-sdk/client-rds';
import { createRdsClient } from '../../functions/lib/aws/clients.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import { checkPosture, pitrTargets, type DatabasePosture, type PlanPosture } from '../../functions/lib/pitr/posture.ts';
import { loadCliConfig } from '../context.ts';
import type { CommandResult } from '../main.ts';

export const pitrUsage = `lifeboat pitr status [--config <file>] [--plan <id>] [--database <id>] [--json]
  Point-in-time recovery posture of the databases of plans with a pitr section: the window RDS keeps
  (BackupRetentionPeriod against pitr.windowDays), the oldest and newest restorable moments, the lag
  behind now (the PITR RPO, against pitr.maxLagMinutes) and, with pitr.copyRegion, the replication of
  automated backups to the copy region (started here when pitr.manage is on). Each problem names its fix.
  Exits 0 when every database is in posture, 1 on drift or an unreadable database, 2 on usage or config errors.`;

type Flags = Record<string, string | boolean | string[] | undefined>;

function duration(seconds: number | undefined): string {
  if (seconds === undefined) return '-';
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

const shortTime = (iso: string | undefined) => (iso ? iso.replace(/:\d\d\.\d{3}Z$/, 'Z').replace('T', ' ') : '-');

function copyColumn(d: DatabasePosture): string {
  const c = d.copyRegion;
  if (!c) return '-';
  if (c.state === 'not-available') return 'n/a (snapshot copies)';
  return `${c.region}: ${c.state}${c.retentionDays !== undefined ? ` ${c.retentionDays} d` : ''}${c.lagSeconds !== undefined ? `, lag ${duration(c.lagSeconds)}` : ''}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export function renderPitrText(posture: PlanPosture): string {
  const header = ['DATABASE', 'PLAN', 'RDS', 'REGION', 'WINDOW (KEPT/WANTED)', 'EARLIEST', 'LATEST', 'LAG (PITR RPO)', 'COPY REGION', 'STATUS'];
  const rows = posture.databases.map((d) => [
    d.databaseId,
    d.planId,
    d.identifier,
    d.region,
    `${d.retentionDays ?? '?'} d / ${d.windowDays} d`,
    `${shortTime(d.earliest)}${d.earliestEstimated ? ' (est.)' : ''}`,
    shortTime(d.latest),
    `${duration(d.lagSeconds)} / max ${d.maxLagMinutes} min`,
    copyColumn(d),
    d.status.toUpperCase(),
  ]);
  const lines = [table([header, ...rows])];
  const problems = posture.databases.flatMap((d) => d.problems.map((p) => `- ${p}`));
  const actions = posture.databases.flatMap((d) => (d.actions ?? []).map((a) => `- ${d.databaseId}: ${a}`));
  if (actions.length > 0) lines.push('', 'Changed:', ...actions);
  if (problems.length > 0) lines.push('', 'Problems:', ...problems);
  const bad = posture.drifting + posture.unreadable;
  lines.push(
    '',
    bad === 0
      ? `IN POSTURE: ${posture.checked} of ${posture.checked} databases.`
      : `NOT IN POSTURE: ${bad} of ${posture.checked} databases (${posture.drifting} drifting, ${posture.unreadable} unreadable). docs/runbooks.md, "PITR posture drift", explains each fix.`,
  );
  return lines.join('\n');
}

export async function pitrCommand(flags: Flags, positionals: string[]): Promise<CommandResult> {
  const [sub, ...rest] = positionals;
  if (sub !== 'status' || rest.length > 0) throw new ConfigError('command line', [`lifeboat pitr: expected "status"${sub ? `, not "${[sub, ...rest].join(' ')}"` : ''}\n\n${pitrUsage}`]);
  const config = loadCliConfig(flags.config as string | undefined);
  if (!config) throw new ConfigError('command line', ['--config: required (or LIFEBOAT_CONFIG, or ./lifeboat.config.json)']);
  const planId = flags.plan as string | undefined;
  const databaseId = flags.database as string | undefined;
  if (planId !== undefined) {
    const plan = config.plans.find((p) => p.id === planId);
    if (!plan) throw new ConfigError('command line', [`--plan: no plan "${planId}" in the config (plans: ${config.plans.map((p) => p.id).join(', ')})`]);
    if (!plan.pitr) throw new ConfigError('command line', [`--plan: plan "${planId}" has no pitr section, so nothing checks its point-in-time posture (docs/config.md, "pitr")`]);
  }
  const targets = pitrTargets(config, { planId, databaseId });
  if (targets.length === 0) {
    const scope = [planId && `plan "${planId}"`, databaseId && `database "${databaseId}"`].filter(Boolean).join(' and ');
    throw new ConfigError('command line', [
      scope ? `${databaseId ? '--database' : '--plan'}: no database of a plan with a pitr section matches ${scope}` : 'no plan of the config has a pitr section (docs/config.md, "pitr")',
    ]);
  }
  const clients = new Map<string, RDSClient>();
  const rds = (region: string) => {
    let client = clients.get(region);
    if (!client) clients.set(region, (client = createRdsClient({ region })));
    return client;
  };
  const posture = await checkPosture({ rds }, targets, { mode: 'full' });
  const text = renderPitrText(posture);
  const json = { inPosture: posture.drifting + posture.unreadable === 0, ...posture };
  if (!json.inPosture) throw Object.assign(new Error(flags.json ? JSON.stringify(json, null, 2) : text), { name: 'PitrPostureDrift', printed: true });
  return { json, text };
}
