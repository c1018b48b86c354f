import type { DatabaseStatus, DeploymentStatus, PitrStatus, Severity } from './model.ts';

const COLORS: Record<Severity, [string, string]> = { ok: ['\x1b[32m', '\x1b[0m'], warning: ['\x1b[33m', '\x1b[0m'], failing: ['\x1b[31m', '\x1b[0m'] };

function age(minutes: number | undefined): string {
  if (minutes === undefined) return '-';
  if (minutes < 90) return `${Math.round(minutes)}m`;
  if (minutes < 48 * 60) return `${(minutes / 60).toFixed(1)}h`;
  return `${(minutes / 1440).toFixed(1)}d`;
}

const secondsAsMinutes = (s: number | undefined) => (s === undefined ? '-' : `${(s / 60).toFixed(1)}m`);

const moment = (iso: string | undefined) => (iso ? iso.replace(/:\d\d(\.\d+)?Z$/, 'Z').replace('T', ' ') : '?');

/** The PITR RPO in minutes (a lag under 2 minutes in seconds). */
function lag(seconds: number | undefined): string {
  if (seconds === undefined) return '?';
  return seconds < 120 ? `${seconds}s` : age(seconds / 60);
}

function pitrRow(d: DatabaseStatus & { pitr: PitrStatus }): string[] {
  const p = d.pitr;
  const window = p.state === 'unreadable' && p.retentionDays === undefined ? '-' : `${moment(p.earliest)}${p.earliestEstimated ? ' (est.)' : ''} to ${moment(p.latest)}`;
  return [
    d.databaseId,
    p.state === 'ok' ? 'IN POSTURE' : p.state === 'drift' ? 'DRIFT' : 'UNREADABLE',
    `${p.identifier} (${p.region})`,
    window,
    `${p.retentionDays ?? '?'}d (${p.windowDays}d)`,
    `${lag(p.lagSeconds)} (${p.maxLagMinutes}m)`,
  ];
}

/** The status as a terminal table; late or failing rows in red when `color`. */
export function renderStatusText(status: DeploymentStatus, color: boolean): string {
  const paint = (sev: Severity, text: string) => (color && sev !== 'ok' ? `${COLORS[sev][0]}${text}${COLORS[sev][1]}` : text);
  const header = ['database', 'state', 'backup age', 'vault age', 'last drill', 'RTO (target)', 'RPO (target)', 'proven restore'];
  const rows = status.databases.map((d) => [
    d.databaseId,
    d.severity.toUpperCase(),
    age(d.newestBackup?.ageMinutes),
    age(d.newestVaultBackup?.ageMinutes),
    d.newestDrill ? `${d.newestDrill.passed ? 'passed' : 'FAILED'}${d.newestDrill.emulated ? ' (emulated)' : ''}` : 'never',
    `${secondsAsMinutes(d.newestDrill?.rtoSeconds)} (${d.rtoTargetMinutes}m)`,
    `${secondsAsMinutes(d.newestDrill?.rpoSeconds)} (${d.rpoTargetMinutes}m)`,
    d.newestProvenRestore ? `${age(d.newestProvenRestore.ageMinutes)} ago` : 'never',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  const out = [`lifeboat status: ${status.name} at ${status.generatedAt}`, '', line(header), line(widths.map((w) => '-'.repeat(w)))];
  status.databases.forEach((d, i) => out.push(paint(d.severity, line(rows[i]!))));
  const pitr = status.databases.filter((d): d is DatabaseStatus & { pitr: PitrStatus } => d.pitr !== undefined);
  if (pitr.length > 0) {
    const pitrHeader = ['database', 'PITR posture', 'RDS', 'window (earliest to latest)', 'kept (wanted)', 'PITR RPO (max)'];
    const pitrRows = pitr.map(pitrRow);
    const pitrWidths = pitrHeader.map((h, i) => Math.max(h.length, ...pitrRows.map((r) => r[i]!.length)));
    const pitrLine = (cells: string[]) => cells.map((c, i) => c.padEnd(pitrWidths[i]!)).join('  ').trimEnd();
    out.push('', 'point-in-time recovery (RDS automated backups):', pitrLine(pitrHeader), pitrLine(pitrWidths.map((w) => '-'.repeat(w))));
    pitr.forEach((d, i) => out.push(paint(d.pitr.severity, pitrLine(pitrRows[i]!))));
  }
  if (status.snapshotQuota) out.push('', `manual snapshot quota: ${status.snapshotQuota.used}/${status.snapshotQuota.limit} (${Math.round(status.snapshotQuota.ratio * 100)}%)`);
  const problems = [...status.problems.map((p) => ({ ...p, where: 'deployment' })), ...status.databases.flatMap((d) => d.problems.map((p) => ({ ...p, where: d.databaseId })))];
  out.push('');
  if (problems.length === 0) out.push(paint('ok', 'All databases are backed up within their RPO and proven by their last drill.'));
  for (const p of problems) out.push(paint(p.severity, `${p.severity === 'failing' ? 'FAILING' : 'WARNING'} ${p.where}: ${p.message}`));
  out.push('', `verdict: ${paint(status.severity, status.severity === 'ok' ? 'SAFE' : status.severity === 'warning' ? 'AT RISK' : 'NOT SAFE')}`);
  return out.join('\n');
}
