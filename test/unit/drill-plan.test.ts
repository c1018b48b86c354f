import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/lib/errors.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { drillRequestsFromConfig } from '../../functions/lib/drill/plan.ts';

const base = {
  name: 'acme',
  source: { region: 'eu-west-1' },
  databases: [
    { id: 'orders', connection: { host: 'db', database: 'orders', passwordEnv: 'PW' }, rds: { instanceIdentifier: 'orders-prod' } },
    { id: 'billing', connection: { host: 'db', database: 'billing', passwordEnv: 'PW' } },
  ],
  plans: [
    { id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: ['orders', 'billing'], rpoMinutes: 1440, rtoMinutes: 120 },
    { id: 'hourly', schedule: { cron: 'cron(0 * * * ? *)' }, databases: ['orders'], rpoMinutes: 60, rtoMinutes: 240, dump: false, snapshot: true },
  ],
};

function issues(input: unknown): string[] {
  try {
    parseConfig(input, 'test');
  } catch (error) {
    if (error instanceof ConfigError) return [...error.issues];
    throw error;
  }
  return [];
}

describe('drill requests from config', () => {
  it('drills every planned database with defaults when drills is present but empty', () => {
    const config = parseConfig({ ...base, drills: {} });
    expect(config.drills?.schedule).toEqual({ cron: 'cron(0 4 * * ? *)', timezone: 'UTC', flexibleWindowMinutes: 0 });
    const requests = drillRequestsFromConfig(config);
    expect(requests.map((r) => r.databaseId)).toEqual(['orders', 'billing']);
    expect(requests[0]).toMatchObject({
      planId: 'hourly',
      // The strictest targets of all plans holding the database.
      targets: { rpoMinutes: 60, rtoMinutes: 120 },
      backupKind: 'dump',
      selection: 'latest',
      from: 'source',
      instance: { instanceClass: 'db.t4g.micro', securityGroupIds: [] },
      restoreTimeoutSeconds: 3600,
      pollIntervalSeconds: 30,
      amcheck: 'indexes',
      databaseName: 'orders',
      rds: { instanceIdentifier: 'orders-prod' },
    });
  });

  it('lets database overrides win over plan overrides over the defaults', () => {
    const config = parseConfig({
      ...base,
      drills: {
        selection: { randomWithinDays: 30 },
        subnetIds: ['subnet-0a', 'subnet-0b'],
        plans: [{ id: 'hourly', backupKind: 'snapshot', selection: 'latest' }],
        databases: [{ id: 'orders', selection: { randomWithinDays: 7 }, assertions: [{ name: 'x', sql: 'SELECT true' }], freshness: { table: 'orders', column: 'created_at' } }],
      },
    });
    const [orders] = drillRequestsFromConfig(config, { databaseId: 'orders', backupId: '20260301T000000Z-abcdef' });
    expect(orders).toMatchObject({
      backupKind: 'snapshot',
      selection: { randomWithinDays: 7 },
      backupId: '20260301T000000Z-abcdef',
      assertions: [{ name: 'x', sql: 'SELECT true' }],
      freshness: { table: 'orders', column: 'created_at' },
      instance: { subnetIds: ['subnet-0a', 'subnet-0b'] },
    });
    expect(drillRequestsFromConfig(config).map((r) => r.databaseId)).toEqual(['orders']);
  });

  it('rejects drills naming unknown databases or plans, snapshots without RDS, and vault drills without a vault', () => {
    expect(
      issues({
        ...base,
        drills: {
          from: 'vault',
          subnetGroupName: 'g',
          subnetIds: ['subnet-0a', 'subnet-0b'],
          plans: [{ id: 'weekly' }],
          databases: [{ id: 'nope' }, { id: 'billing', backupKind: 'snapshot' }],
        },
      }),
    ).toEqual(
      expect.arrayContaining([
        'drills.subnetIds: set subnetGroupName or subnetIds, not both',
        'drills.from: drills from the vault need a vault section',
        'drills.plans[0].id: unknown plan "weekly"',
        'drills.databases[0].id: unknown database "nope"',
        expect.stringMatching(/^drills\.databases\[1\]\.backupKind: snapshot drills need rds/),
      ]),
    );
    expect(() => drillRequestsFromConfig(parseConfig(base), { databaseId: 'ghost' })).toThrow(/--database: "ghost" is not in the config/);
  });
});
