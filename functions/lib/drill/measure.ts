import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { formatSeconds } from './verify.ts';
import type { DrillState, Measurement } from './types.ts';

/** What the drill needs of Powertools Metrics (a no-op stands in for the CLI). */
export interface DrillMetrics {
  singleMetric(): { addDimension(name: string, value: string): unknown; addMetric(name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number): unknown };
}

/**
 * RTO: from drill start (the moment the drill began selecting a backup) to the
 * first successful verification query against the restored database.
 * RPO: drill start minus the drilled backup's consistent point. With a random
 * (older) backup, the RPO objective is judged on the newest backup's age instead:
 * that is the data a disaster at drill time would lose.
 */
export function measureDrill(state: DrillState, reportLocation: string): Measurement {
  const { request } = state;
  const selection = state.selection!;
  const checks = state.verification?.checks ?? [];
  const emulated = state.verification?.emulated ?? false;
  const failed = checks.filter((c) => c.status === 'failed');
  const verdict = failed.length > 0 ? 'failed' : emulated ? 'emulated' : 'passed';
  const startedAt = Date.parse(selection.startedAt);
  const what = `Drill ${selection.drillId} of database "${request.databaseId}" (backup ${selection.backup.backupId})`;

  const rtoTarget = request.targets.rtoMinutes * 60;
  const rtoEnd = state.verification?.firstVerificationQueryAt;
  const rtoSeconds = rtoEnd && !emulated ? (Date.parse(rtoEnd) - startedAt) / 1000 : null;
  const rto = {
    seconds: rtoSeconds,
    targetSeconds: rtoTarget,
    met: rtoSeconds === null ? null : rtoSeconds <= rtoTarget,
    note: rtoSeconds === null
      ? 'not measured: the emulated instance answers no queries'
      : 'drill start to the first successful verification query on the restored database',
  };

  const rpoTarget = request.targets.rpoMinutes * 60;
  const rpoSeconds = (startedAt - Date.parse(selection.backup.consistentAt)) / 1000;
  const newestAge = (startedAt - Date.parse(selection.newestConsistentAt)) / 1000;
  // A point-in-time drill: the RPO a disaster at drill start would cost is how far back RDS's newest restorable moment was.
  const pitr = selection.backup.kind === 'pitr';
  const basis = pitr ? ('latest-restorable' as const) : selection.backup.consistentAt === selection.newestConsistentAt ? ('drilled-backup' as const) : ('newest-backup' as const);
  const judged = basis === 'drilled-backup' ? rpoSeconds : newestAge;
  const newestRowAt = state.verification?.newestRowAt;
  const rpo = {
    seconds: pitr ? newestAge : rpoSeconds,
    dataLagSeconds: newestRowAt ? (Date.parse(selection.backup.consistentAt) - Date.parse(newestRowAt)) / 1000 : null,
    targetSeconds: rpoTarget,
    met: judged <= rpoTarget,
    basis,
    note: pitr
      ? `drill start minus the newest restorable moment (LatestRestorableTime ${selection.newestConsistentAt}); the drill restored to ${selection.backup.consistentAt}${request.freshness ? '; dataLagSeconds is that moment minus the newest row found' : ''}`
      : basis === 'drilled-backup'
        ? "drill start minus the drilled backup's consistent point"
        : `drill start minus the drilled backup's consistent point; the objective is judged on the newest backup (${formatSeconds(newestAge)} old)`,
  };

  const misses = [
    rto.met === false ? `measured RTO ${formatSeconds(rtoSeconds!)} exceeds the target ${formatSeconds(rtoTarget)}` : undefined,
    rpo.met === false ? `${basis === 'drilled-backup' ? 'measured RPO' : basis === 'latest-restorable' ? 'the PITR RPO (newest restorable moment\'s lag)' : 'the newest backup\'s age'} ${formatSeconds(judged)} exceeds the target ${formatSeconds(rpoTarget)}` : undefined,
  ].filter((m): m is string => m !== undefined);

  const summary =
    verdict === 'failed'
      ? `${what} failed ${failed.length} of ${checks.length} checks: ${failed.map((c) => `${c.name}: ${c.differences[0] ?? c.detail}`).join('; ')}. ` +
        `Next step: treat backup ${selection.backup.backupId} as unproven; read the drill report at ${reportLocation} and take a fresh backup.`
      : verdict === 'emulated'
        ? `${what} ran against an emulated instance: ${checks.filter((c) => c.status === 'not-performed').length} data checks were not performed.`
        : `${what} passed ${checks.filter((c) => c.status === 'passed').length} checks.`;
  const objectiveSummary = misses.length
    ? `${what}: ${misses.join('; ')}. Next step: find where the time went in the drill report at ${reportLocation}, then speed up restores or revisit plan "${request.planId}"'s targets.`
    : 'objectives met';
  return { verdict, summary, rto, rpo, objectivesMet: misses.length === 0, objectiveSummary };
}

/** One metric per call, each with the database dimension (drills of several databases run concurrently). */
export function recordMetric(metrics: DrillMetrics | undefined, databaseId: string, name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number): void {
  if (!metrics) return;
  const single = metrics.singleMetric();
  single.addDimension('database', databaseId);
  single.addMetric(name, unit, value);
}

export function publishMeasurement(metrics: DrillMetrics | undefined, databaseId: string, m: Measurement): void {
  if (m.rto.seconds !== null) recordMetric(metrics, databaseId, 'DrillRtoSeconds', MetricUnit.Seconds, m.rto.seconds);
  if (m.rpo.seconds !== null) recordMetric(metrics, databaseId, 'DrillRpoSeconds', MetricUnit.Seconds, m.rpo.seconds);
  recordMetric(metrics, databaseId, 'DrillObjectiveMissed', MetricUnit.Count, m.objectivesMet ? 0 : 1);
}
