import type { DrillReport } from './report.ts';
import { formatSeconds } from './verify.ts';

/**
 * A drill report as text: a header with the verdict, the checks as a table,
 * and the measured RTO and RPO against their targets. `lifeboat drill` prints
 * it; the demo and `lifeboat status` can too.
 */
export function formatDrillReport(report: DrillReport, options: { color?: boolean; locations?: readonly string[] } = {}): string {
  const color = options.color ?? false;
  const paint = (text: string, code: string) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const status = (s: string) => (s === 'passed' ? paint(s, '32') : s === 'failed' ? paint(s, '31') : paint(s, '33'));
  const verdict = report.verdict === 'passed' ? paint('PASSED', '32') : report.verdict === 'failed' ? paint('FAILED', '31') : paint('EMULATED (no data checks performed)', '33');
  const lines = [`Drill ${report.drillId} of database ${report.databaseId}: ${verdict}`];
  if (report.backup) lines.push(`  backup    ${report.backup.id} (${report.backup.kind}, ${report.backup.from}, ${report.backup.choice}), consistent at ${report.backup.consistentAt}`);
  if (report.instance) lines.push(`  instance  ${report.instance.provider} ${report.instance.identifier}${report.instance.emulated ? ' (emulated)' : ''}, teardown ${report.teardown.status}`);
  const width = Math.max(5, ...report.checks.map((c) => c.name.length));
  lines.push('', `  ${'CHECK'.padEnd(width)}  ${'RESULT'.padEnd(13)}  DETAIL`);
  for (const c of report.checks) {
    lines.push(`  ${c.name.padEnd(width)}  ${status(c.status)}${' '.repeat(Math.max(1, 13 - c.status.length))}  ${c.detail}`);
    for (const d of c.differences.slice(0, 5)) lines.push(`  ${' '.repeat(width)}  ${' '.repeat(13)}  - ${d}`);
  }
  const objective = (label: string, o: DrillReport['rto']) => {
    if (!o) return `  ${label}  not measured`;
    const measured = o.seconds === null ? 'not measured' : formatSeconds(o.seconds);
    const met = o.met === null ? '' : o.met ? paint('met', '32') : paint('MISSED', '31');
    return `  ${label}  ${measured.padEnd(12)} target ${formatSeconds(o.targetSeconds).padEnd(8)} ${met}  (${o.note})`;
  };
  lines.push('', objective('RTO', report.rto), objective('RPO', report.rpo));
  if (report.error) lines.push('', `  error     ${report.error.name}: ${report.error.message}`);
  for (const location of options.locations ?? []) lines.push(`  report    ${location}`);
  return lines.join('\n');
}
