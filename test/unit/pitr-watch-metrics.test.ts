import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { beforeAll, describe, expect, it } from 'vitest';
import { createPitrHandler } from '../../functions/pitr/handler.ts';
import { DeploymentConfig } from '../../functions/lib/config/deployment.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { DIMENSIONS, METRICS_NAMESPACE, METRIC_NAMES, SERVICE_NAMES } from '../../functions/lib/metrics/names.ts';
import { localLambdaContext } from '../../functions/shared/lambda-context.ts';
import { capturingOutput } from '../harness/capture.ts';
import { emfMetrics } from '../harness/emf.ts';
import { scriptedRds, type ScriptedInstance } from '../harness/scripted-rds.ts';

/**
 * The posture function's `watch` action (every 5 minutes) publishes the
 * metrics the pitr-lag alarms and the dashboards read: PitrRestorableLagSeconds
 * and PitrWindowSeconds per database, in namespace `lifeboat`, with exactly
 * the dimension set [service=lifeboat-pitr, database]. A real Powertools
 * Metrics configured as the deployed function is (POWERTOOLS_SERVICE_NAME,
 * POWERTOOLS_METRICS_NAMESPACE) writes the EMF records read back here.
 */
const now = new Date('2026-11-21T12:00:00Z');
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000);
const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000);
const logger = new Logger({ serviceName: SERVICE_NAMES.pitr, logLevel: 'CRITICAL' });

const ids = ['orders', 'billing', 'ledger', 'fresh', 'plain'];
const deployed = new DeploymentConfig(
  parseConfig({
    name: 'acme',
    source: { region: 'eu-west-1' },
    databases: ids.map((id) => ({ id, connection: { database: id, host: 'db', passwordEnv: 'PW' }, rds: { instanceIdentifier: `${id}-db` } })),
    plans: [
      { id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ids, rpoMinutes: 1440, rtoMinutes: 60 },
      { id: 'pitr', schedule: { cron: 'cron(30 3 * * ? *)' }, databases: ['orders', 'billing', 'ledger', 'fresh'], rpoMinutes: 1440, rtoMinutes: 60, pitr: { windowDays: 7, maxLagMinutes: 15 } },
      // orders is in a second pitr plan: the watch still reads and publishes it once.
      { id: 'pitr-strict', schedule: { cron: 'cron(45 3 * * ? *)' }, databases: ['orders'], rpoMinutes: 1440, rtoMinutes: 60, pitr: { windowDays: 14, maxLagMinutes: 10 } },
    ],
  }),
);

const fleet: Record<string, ScriptedInstance> = {
  orders: { retentionDays: 7, earliest: daysAgo(7), latest: minutesAgo(3) },
  billing: { retentionDays: 7, earliest: daysAgo(6), latest: minutesAgo(40) },
  // AccessDenied: nothing published, so the alarm's missing data breaches.
  ledger: { retentionDays: 7, deny: true },
  // No automated backup listed yet: the oldest moment is only estimated, so no window is published.
  fresh: { retentionDays: 7, noAutomatedBackup: true, latest: minutesAgo(2) },
  plain: { retentionDays: 7, earliest: daysAgo(7), latest: minutesAgo(1) },
};

async function watch() {
  const { rds, calls } = scriptedRds(Object.fromEntries(Object.entries(fleet).map(([id, db]) => [`${id}-db`, db])));
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAMES.pitr });
  const handler = createPitrHandler({ rds, config: async () => deployed, logger, metrics, now: () => now });
  const { result, output } = await capturingOutput(() => handler({ action: 'watch' }, localLambdaContext('lifeboat-pitr')));
  return { result, emitted: emfMetrics(output), calls };
}

// One watch for the whole file (the denied instance makes the region-wide listing fail, so it is asked again with pauses).
let run: Awaited<ReturnType<typeof watch>>;
beforeAll(async () => {
  run = await watch();
});

const dims = (database: string): Array<[string, string]> => [
  [DIMENSIONS.service, SERVICE_NAMES.pitr],
  [DIMENSIONS.database, database],
];

describe('the PITR posture function, action watch', () => {
  it('emits PitrRestorableLagSeconds and PitrWindowSeconds per database with exactly the dimensions [service, database], and nothing else', async () => {
    const { result, emitted } = run;

    expect(result).toMatchObject({ checked: 4, published: 3 });
    const sorted = [...emitted].sort((a, b) => `${a.dimensions[1]?.[1]}/${a.name}`.localeCompare(`${b.dimensions[1]?.[1]}/${b.name}`));
    expect(sorted).toEqual([
      { namespace: METRICS_NAMESPACE, name: METRIC_NAMES.pitrRestorableLagSeconds, unit: 'Seconds', dimensions: dims('billing'), value: 2400 },
      { namespace: METRICS_NAMESPACE, name: METRIC_NAMES.pitrWindowSeconds, unit: 'Seconds', dimensions: dims('billing'), value: 6 * 86_400 - 40 * 60 },
      { namespace: METRICS_NAMESPACE, name: METRIC_NAMES.pitrRestorableLagSeconds, unit: 'Seconds', dimensions: dims('fresh'), value: 120 },
      { namespace: METRICS_NAMESPACE, name: METRIC_NAMES.pitrRestorableLagSeconds, unit: 'Seconds', dimensions: dims('orders'), value: 180 },
      { namespace: METRICS_NAMESPACE, name: METRIC_NAMES.pitrWindowSeconds, unit: 'Seconds', dimensions: dims('orders'), value: 7 * 86_400 - 3 * 60 },
    ]);
  });

  it('changes nothing: it only reads', async () => {
    const { calls } = run;
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.filter((c) => !/^Describe/.test(c.command))).toEqual([]);
  });
});
