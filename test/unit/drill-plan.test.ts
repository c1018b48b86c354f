import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/lib/errors.ts';
import { parseConfig, parseWith } from '../../functions/lib/config/load.ts';
import { drillRequestsFromConfig } from '../../functions/lib/drill/plan.ts';
import { drillRequestSchema } from '../../functions/lib/drill/types.ts';
import { drillTaskInputSchema } from '../../functions/drill/handler.ts';

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

describe('drill instance classes for Aurora clusters', () => {
  const aurora = {
    ...base,
    databases: [...base.databases, { id: 'ledger', connection: { host: 'db', database: 'ledger', passwordEnv: 'PW' }, rds: { clusterIdentifier: 'ledger-prod' } }],
    plans: [
      ...base.plans,
      { id: 'ledger-snapshots', schedule: { cron: 'cron(0 2 * * ? *)' }, databases: ['ledger'], rpoMinutes: 1440, rtoMinutes: 120, dump: false, snapshot: true },
    ],
  };

  it('restores an Aurora cluster snapshot on an Aurora class (db.t4g.medium by default) and dumps on drills.instanceClass', () => {
    // Prepare
    const config = parseConfig({ ...aurora, drills: { databases: [{ id: 'ledger' }, { id: 'billing' }] } });

    // Act
    const [ledger, billing] = drillRequestsFromConfig(config);

    // Assess
    expect(ledger).toMatchObject({ databaseId: 'ledger', backupKind: 'snapshot', instance: { instanceClass: 'db.t4g.medium' } });
    expect(billing).toMatchObject({ databaseId: 'billing', backupKind: 'dump', instance: { instanceClass: 'db.t4g.micro' } });
  });

  it('uses drills.auroraInstanceClass for Aurora snapshot drills, leaving instanceClass to RDS instances', () => {
    // Prepare
    const config = parseConfig({ ...aurora, drills: { instanceClass: 'db.t4g.small', auroraInstanceClass: 'db.r6g.large' } });

    // Act
    const requests = drillRequestsFromConfig(config);

    // Assess
    expect(requests.find((r) => r.databaseId === 'ledger')?.instance.instanceClass).toBe('db.r6g.large');
    expect(requests.find((r) => r.databaseId === 'orders')?.instance.instanceClass).toBe('db.t4g.small');
  });

  it('rejects a class Aurora PostgreSQL does not offer, naming drills.auroraInstanceClass and a valid class', () => {
    for (const bad of ['db.t4g.micro', 'db.t3.small', 'db.m5.large', 'db.t2.medium']) {
      expect(issues({ ...aurora, drills: { auroraInstanceClass: bad } }), bad).toEqual([
        expect.stringMatching(new RegExp(`^drills\\.auroraInstanceClass: ${bad.replace(/\./g, '\\.')} is not an Aurora PostgreSQL instance class.*db\\.t4g\\.medium`)),
      ]);
    }
  });

  it('rejects db.serverless, which needs a Serverless v2 scaling configuration the drill does not set', () => {
    expect(issues({ ...aurora, drills: { auroraInstanceClass: 'db.serverless' } })).toEqual([
      expect.stringMatching(/^drills\.auroraInstanceClass: db\.serverless needs a Serverless v2 scaling configuration/),
    ]);
  });

  it('accepts the Aurora PostgreSQL classes from medium (T) and large (R, X)', () => {
    for (const good of ['db.t3.medium', 'db.t4g.large', 'db.r5.large', 'db.r6g.2xlarge', 'db.r6id.xlarge', 'db.r8g.large', 'db.x2g.16xlarge']) {
      expect(issues({ ...aurora, drills: { auroraInstanceClass: good } }), good).toEqual([]);
    }
  });

  it('refuses at run time a drill request that restores an Aurora cluster on a class Aurora does not offer, naming the field', () => {
    // Prepare
    const request = {
      databaseId: 'ledger',
      planId: 'nightly',
      backupKind: 'snapshot',
      rds: { clusterIdentifier: 'ledger-prod' },
      targets: { rpoMinutes: 60, rtoMinutes: 60 },
      instance: { instanceClass: 'db.t4g.micro', securityGroupIds: [] },
    };

    // Act
    const refused = thrown(() => parseWith(drillTaskInputSchema, { action: 'provision', drill: { request } }, 'drill task input'));
    const defaulted = thrown(() => parseWith(drillTaskInputSchema, { action: 'provision', drill: { request: { ...request, instance: undefined } } }, 'drill task input'));
    const accepted = drillRequestSchema.parse({ ...request, instance: { instanceClass: 'db.t4g.medium' } });
    const instanceSnapshot = drillRequestSchema.parse({ ...request, rds: { instanceIdentifier: 'orders-prod' } });

    // Assess
    for (const error of [refused, defaulted]) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues).toEqual([expect.stringMatching(/^drill\.request\.instance\.instanceClass: database "ledger" is an Aurora cluster: db\.t4g\.micro is not an Aurora PostgreSQL instance class/)]);
    }
    expect(accepted.instance.instanceClass).toBe('db.t4g.medium');
    expect(instanceSnapshot.instance.instanceClass).toBe('db.t4g.micro');
  });
});

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return undefined;
}
