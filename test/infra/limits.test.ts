import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import { checkSourceStackSupport, configForSource } from '../../infra/config.ts';
import { MAX_DEAD_MANS_SWITCH_RPO_MINUTES, deadMansSwitchWindow, shardOf } from '../../infra/constructs/database-alarms.ts';
import { exampleConfigJson } from './helpers/app.ts';
import { productionConfigJson } from './helpers/configs.ts';

function issuesOf(action: () => unknown): string[] {
  try {
    action();
  } catch (error) {
    if (error instanceof ConfigError) return [...error.issues];
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('dead man\'s switch window', () => {
  it('never fires before the RPO has passed, at most about two periods after, within CloudWatch\'s evaluation range', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_DEAD_MANS_SWITCH_RPO_MINUTES }), (rpoMinutes) => {
        const window = deadMansSwitchWindow(rpoMinutes)!;
        const range = window.periodSeconds * window.evaluationPeriods;
        // Even with the newest period only just begun, N-1 full periods cover the RPO.
        expect(window.periodSeconds * (window.evaluationPeriods - 1)).toBeGreaterThanOrEqual(rpoMinutes * 60);
        expect(range).toBeLessThan(rpoMinutes * 60 + 2 * window.periodSeconds);
        expect(range).toBeLessThanOrEqual(window.periodSeconds < 3600 ? 86_400 : 604_800);
        expect(window.periodSeconds % 60).toBe(0);
      }),
    );
  });

  it('picks short periods for short RPOs and stops at 167 hours', () => {
    expect(deadMansSwitchWindow(60)).toEqual({ periodSeconds: 300, evaluationPeriods: 13 });
    expect(deadMansSwitchWindow(1500)).toEqual({ periodSeconds: 3600, evaluationPeriods: 26 });
    expect(MAX_DEAD_MANS_SWITCH_RPO_MINUTES).toBe(167 * 60);
    expect(deadMansSwitchWindow(167 * 60)).toEqual({ periodSeconds: 3600, evaluationPeriods: 168 });
    expect(deadMansSwitchWindow(167 * 60 + 1)).toBeUndefined();
  });

  it('spreads databases over the alarm shards stably', () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 800; i++) counts[shardOf(`db-${i}`)]! += 1;
    expect(Math.min(...counts)).toBeGreaterThan(60);
    expect(shardOf('orders')).toBe(shardOf('orders'));
  });
});

describe('what the source stack refuses at synth time', () => {
  it('an RPO its dead man\'s switch cannot watch, unless the plan turns the switch off', () => {
    const raw = exampleConfigJson() as Record<string, unknown> & { plans: Array<Record<string, unknown>> };
    raw.plans[0]!.rpoMinutes = 8 * 24 * 60;
    expect(issuesOf(() => checkSourceStackSupport(parseConfig(raw), 'test'))).toEqual([expect.stringMatching(/^plans\[0\]\.rpoMinutes: the dead man's switch watches at most 10020 minutes/)]);
    raw.plans[0]!.backupAgeAlarm = false;
    expect(() => checkSourceStackSupport(parseConfig(raw), 'test')).not.toThrow();
  });

  it('a Fargate dump without a network to run it in', () => {
    const raw = exampleConfigJson() as Record<string, unknown> & { databases: Array<Record<string, unknown>> };
    raw.databases[1]!.dump = { runner: 'fargate' };
    expect(issuesOf(() => checkSourceStackSupport(parseConfig(raw), 'test'))).toEqual([expect.stringMatching(/^databases\[1\]\.dump\.runner: a Fargate dump runs in private subnets; set source\.network/)]);
  });

  it('VPC endpoints without the route tables the S3 gateway endpoint needs', () => {
    const raw = exampleConfigJson() as Record<string, unknown>;
    raw.source = { region: 'eu-west-1', network: { vpcId: 'vpc-0abc', subnetIds: ['subnet-0abc'], securityGroupIds: ['sg-0abc'] } };
    expect(issuesOf(() => parseConfig(raw))).toEqual([expect.stringMatching(/^source\.network\.routeTableIds: the S3 gateway endpoint is added to route tables/)]);
  });
});

describe('several sources', () => {
  it('rejects an unknown source, a duplicate id and two sources in one account and region', () => {
    const raw = productionConfigJson() as Record<string, unknown> & { databases: Array<Record<string, unknown>>; additionalSources: Array<Record<string, unknown>> };
    raw.databases[1]!.source = 'mars';
    raw.additionalSources.push({ id: 'us', account: '444444444444', region: 'us-west-2' }, { id: 'again', account: '111111111111', region: 'eu-west-1' });
    expect(issuesOf(() => parseConfig(raw))).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^databases\[1\]\.source: unknown source "mars"; known: "primary", "us"/),
        expect.stringMatching(/^additionalSources\[1\]\.id: duplicate source id "us"/),
        expect.stringMatching(/^additionalSources\[2\]\.region: another source already uses account 111111111111 in eu-west-1/),
      ]),
    );
  });

  it('gives each source stack its own databases and the plans that hold them, as a valid config', () => {
    const config = parseConfig(productionConfigJson());
    const us = configForSource(config, 'us');
    expect(us.source).toMatchObject({ id: 'us', region: 'us-east-1' });
    expect(us.databases.map((d) => d.id)).toEqual(['us-orders']);
    expect(us.plans.map((p) => [p.id, p.databases])).toEqual([['nightly', ['us-orders']]]);
    expect(() => parseConfig(us)).not.toThrow();
    expect(configForSource(config, 'primary').databases.map((d) => d.id)).toEqual(['orders', 'billing', 'ledger', 'reports']);
  });

  it('keeps a config without additionalSources exactly as before (one source stack)', () => {
    const config = parseConfig(exampleConfigJson());
    expect(config.source.id).toBe('primary');
    expect(config.additionalSources).toEqual([]);
    expect(configForSource(config, 'primary').databases).toEqual(config.databases);
  });
});
