import type { DatabaseStatus, DeploymentStatus, PitrStatus } from './model.ts';

/**
 * `lifeboat status --html`: one self-contained page (inline CSS and SVG, no
 * scripts or external requests) with the drill RTO trend against target and the
 * backup age against RPO for every database, and for databases of plans with
 * `pitr` their point-in-time window and PITR RPO against maxLagMinutes. Chart
 * and PITR table elements carry data-*
 * attributes with the values they draw, so a test can check the charts.
 */
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const W = 640;
const H = 220;
const PAD = { l: 52, r: 16, t: 16, b: 36 };

function rtoChart(d: DatabaseStatus): string {
  const points = d.drillHistory.filter((p) => p.rtoSeconds !== undefined);
  const target = d.rtoTargetMinutes;
  const maxY = Math.max(target * 1.25, ...points.map((p) => (p.rtoSeconds ?? 0) / 60), 1);
  const x = (i: number) => PAD.l + (points.length <= 1 ? (W - PAD.l - PAD.r) / 2 : (i * (W - PAD.l - PAD.r)) / (points.length - 1));
  const y = (minutes: number) => H - PAD.b - (minutes / maxY) * (H - PAD.t - PAD.b);
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y((p.rtoSeconds ?? 0) / 60).toFixed(1)}`).join(' ');
  const circles = points
    .map((p, i) => {
      const minutes = (p.rtoSeconds ?? 0) / 60;
      const over = minutes > target;
      return `<circle class="point ${p.passed ? 'passed' : 'failed'}${over ? ' over' : ''}" data-series="rto" data-drill="${esc(p.drillId)}" data-value-minutes="${minutes.toFixed(3)}" cx="${x(i).toFixed(1)}" cy="${y(minutes).toFixed(1)}" r="4"><title>${esc(p.finishedAt)}: RTO ${minutes.toFixed(1)} min${p.passed ? '' : ' (failed)'}</title></circle>`;
    })
    .join('');
  const labels = points.length ? `<text x="${PAD.l}" y="${H - 10}" class="axis">${esc(points[0]!.finishedAt.slice(0, 10))}</text><text x="${W - PAD.r}" y="${H - 10}" class="axis" text-anchor="end">${esc(points.at(-1)!.finishedAt.slice(0, 10))}</text>` : `<text x="${W / 2}" y="${H / 2}" class="empty" text-anchor="middle">no drills yet</text>`;
  return `<svg class="chart rto" data-database="${esc(d.databaseId)}" data-points="${points.length}" viewBox="0 0 ${W} ${H}" role="img" aria-label="Drill RTO trend for ${esc(d.databaseId)}">
  <line class="target" data-target-minutes="${target}" x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(target).toFixed(1)}" y2="${y(target).toFixed(1)}"/>
  <text class="axis" x="${PAD.l - 6}" y="${(y(target) + 4).toFixed(1)}" text-anchor="end">${target}m</text>
  <text class="axis" x="${PAD.l - 6}" y="${H - PAD.b + 4}" text-anchor="end">0</text>
  <path class="line" d="${path}"/>${circles}${labels}
</svg>`;
}

interface MinutesBar {
  databaseId: string;
  /** undefined: not known (a full-width bar, past the target). */
  minutes?: number;
  targetMinutes: number;
  /** The bar's tooltip. */
  title: string;
}

/**
 * One bar per database: a figure in minutes against its own target (a vertical
 * line). Over the target, or unknown, the bar is marked `late`.
 */
function minutesBarChart(rows: readonly MinutesBar[], options: { series: string; label: string; unknownClass?: boolean }): string {
  const rowH = 28;
  const height = PAD.t + rows.length * rowH + 24;
  const maxX = Math.max(1, ...rows.map((r) => Math.max(r.minutes ?? r.targetMinutes * 1.5, r.targetMinutes)));
  const scale = (m: number) => ((W - 150 - PAD.r) * Math.min(m, maxX)) / maxX;
  const bars = rows
    .map((r, i) => {
      const yTop = PAD.t + i * rowH;
      const late = r.minutes === undefined || r.minutes > r.targetMinutes;
      const width = r.minutes === undefined ? W - 150 - PAD.r : scale(r.minutes);
      const at = (150 + scale(r.targetMinutes)).toFixed(1);
      return `<g class="row" data-database="${esc(r.databaseId)}">
    <text x="140" y="${yTop + 17}" text-anchor="end" class="label">${esc(r.databaseId)}</text>
    <rect class="bar${late ? ' late' : ''}${options.unknownClass && r.minutes === undefined ? ' unknown' : ''}" data-series="${options.series}" data-database="${esc(r.databaseId)}" data-value-minutes="${r.minutes === undefined ? 'none' : r.minutes.toFixed(1)}" x="150" y="${yTop + 4}" width="${width.toFixed(1)}" height="${rowH - 10}"><title>${esc(r.title)}</title></rect>
    <line class="target" data-target-minutes="${r.targetMinutes}" x1="${at}" x2="${at}" y1="${yTop}" y2="${yTop + rowH}"/>
  </g>`;
    })
    .join('\n');
  return `<svg class="chart ${options.series}" data-points="${rows.length}" viewBox="0 0 ${W} ${height}" role="img" aria-label="${esc(options.label)}">
  ${bars}
  <text class="axis" x="150" y="${height - 6}">0</text><text class="axis" x="${W - PAD.r}" y="${height - 6}" text-anchor="end">${Math.round(maxX)} min</text>
</svg>`;
}

function ageChart(status: DeploymentStatus): string {
  return minutesBarChart(
    status.databases.map((d) => {
      const minutes = d.newestBackup?.ageMinutes;
      return { databaseId: d.databaseId, minutes, targetMinutes: d.rpoTargetMinutes, title: minutes === undefined ? 'no backup' : `${minutes.toFixed(0)} min old` };
    }),
    { series: 'backup-age', label: 'Age of the newest backup against the RPO target' },
  );
}

type PitrDatabase = DatabaseStatus & { pitr: PitrStatus };

const minutesText = (seconds: number) => (seconds < 120 ? `${seconds} s` : `${(seconds / 60).toFixed(1)} min`);

/** One row per pitr database: its window, kept against wanted, the PITR RPO against maxLagMinutes, and the posture (or why it is unreadable). */
function pitrTable(rows: readonly PitrDatabase[]): string {
  const body = rows
    .map(({ databaseId, pitr: p }) => {
      const state = p.state === 'ok' ? 'in posture' : p.state === 'drift' ? 'drift' : 'unreadable';
      const window = p.earliest || p.latest ? `${esc(p.earliest ?? '?')}${p.earliestEstimated ? ' (estimated)' : ''} to ${esc(p.latest ?? '?')}` : '-';
      const detail = p.state === 'unreadable' ? `unreadable: ${esc(p.unreadable ?? '')}` : p.problems.map(esc).join('<br>') || '-';
      return `<tr class="pitr ${p.severity}" data-database="${esc(databaseId)}" data-state="${p.state}" data-in-posture="${p.inPosture}" data-retention-days="${p.retentionDays ?? 'none'}" data-window-days="${p.windowDays}" data-earliest="${esc(p.earliest ?? 'none')}" data-latest="${esc(p.latest ?? 'none')}" data-lag-seconds="${p.lagSeconds ?? 'none'}" data-max-lag-minutes="${p.maxLagMinutes}"><td>${esc(databaseId)}</td><td>${esc(p.identifier)} (${esc(p.region)})</td><td>${state}</td><td>${window}</td><td>${p.retentionDays ?? '?'} d (wanted ${p.windowDays} d)</td><td>${p.lagSeconds === undefined ? '?' : minutesText(p.lagSeconds)} (max ${p.maxLagMinutes} min)</td><td>${detail}</td></tr>`;
    })
    .join('\n');
  return `<table class="pitr"><thead><tr><th>database</th><th>RDS</th><th>posture</th><th>window (earliest to latest restorable)</th><th>kept (wanted)</th><th>PITR RPO (max)</th><th>problems</th></tr></thead><tbody>
${body}
</tbody></table>`;
}

/** The PITR RPO of each pitr database as a bar against its maxLagMinutes; an unknown lag is a full-width bar marked unknown. */
function pitrLagChart(rows: readonly PitrDatabase[]): string {
  return minutesBarChart(
    rows.map(({ databaseId, pitr: p }) => {
      const minutes = p.lagSeconds === undefined ? undefined : p.lagSeconds / 60;
      return { databaseId, minutes, targetMinutes: p.maxLagMinutes, title: minutes === undefined ? `unknown (${p.state})` : `${minutes.toFixed(1)} min behind now` };
    }),
    { series: 'pitr-lag', label: 'PITR RPO (newest restorable moment behind now) against maxLagMinutes', unknownClass: true },
  );
}

function pitrSection(status: DeploymentStatus): string {
  const rows = status.databases.filter((d): d is PitrDatabase => d.pitr !== undefined);
  if (rows.length === 0) return '';
  return `<h2>Point-in-time recovery: window and PITR RPO</h2>
${pitrTable(rows)}
<figure>${pitrLagChart(rows)}</figure>
`;
}

export function renderStatusHtml(status: DeploymentStatus): string {
  const verdict = status.severity === 'ok' ? 'SAFE' : status.severity === 'warning' ? 'AT RISK' : 'NOT SAFE';
  const rows = status.databases
    .map(
      (d) => `<tr class="${d.severity}"><td>${esc(d.databaseId)}</td><td>${d.severity}</td><td>${d.newestBackup ? esc(d.newestBackup.backupId) : 'none'}</td><td>${d.newestDrill ? (d.newestDrill.passed ? 'passed' : 'failed') : 'never'}</td><td>${d.problems.map((p) => esc(p.message)).join('<br>') || '-'}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lifeboat status: ${esc(status.name)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2430;background:#fff}
h1{font-size:20px;margin:0 0 4px} .verdict{font-weight:700;padding:2px 8px;border-radius:4px}
.verdict.ok{background:#d9f2e0;color:#17602c}.verdict.warning{background:#fff1cc;color:#7a5600}.verdict.failing{background:#fde0e0;color:#9b1c1c}
table{border-collapse:collapse;margin:16px 0;width:100%} td,th{border-bottom:1px solid #e3e6eb;padding:6px 8px;text-align:left;vertical-align:top}
tr.failing td{color:#9b1c1c} tr.warning td{color:#7a5600} .bar.late.unknown{fill:#9aa3ae}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:16px}
figure{margin:0;border:1px solid #e3e6eb;border-radius:6px;padding:8px} figcaption{font-weight:600;margin-bottom:4px}
.chart{width:100%;height:auto} .line{fill:none;stroke:#2f6fd6;stroke-width:2} .point.passed{fill:#2f6fd6} .point.failed{fill:#d23b3b} .point.over{stroke:#d23b3b;stroke-width:2}
.target{stroke:#d23b3b;stroke-dasharray:4 3;stroke-width:1.5} .bar{fill:#3d9a5b} .bar.late{fill:#d23b3b} .axis,.label,.empty{font-size:11px;fill:#5b6472}
</style></head><body>
<h1>lifeboat status: ${esc(status.name)}</h1>
<p>Generated ${esc(status.generatedAt)}. Verdict: <span class="verdict ${status.severity}">${verdict}</span></p>
<table><thead><tr><th>database</th><th>state</th><th>newest backup</th><th>last drill</th><th>problems</th></tr></thead><tbody>
${rows}
</tbody></table>
${pitrSection(status)}<h2>Age of the newest backup against the RPO target</h2>
<figure>${ageChart(status)}</figure>
<h2>Drill RTO trend against target</h2>
<div class="charts">
${status.databases.map((d) => `<figure><figcaption>${esc(d.databaseId)}</figcaption>${rtoChart(d)}</figure>`).join('\n')}
</div>
</body></html>
`;
}
