import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/lib/errors.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { drillRequestsFromConfig } from '../../functions/lib/drill/plan.ts';

/** The plan's `pitr` section: validated like the rest, and turned into PITR drill requests. */
const COPY_KEY = 'arn:aws:kms:eu-central-1:111111111111:key/11111111-2222-3333-4444-555555555555';

function config(overrides: { pitr?: unknown; snapshots?: unknown; drills?: unknown; planDump?: boolean; databases?: string[] } = {}) {
  return {
    name: 'acme',
    source: { region: 'eu-west-1' },
    databases: [
      { id: 'orders', connection: { host: 'db', database: 'orders', passwordEnv: 'PW' }, rds: { instanceIdentifier: 'orders-prod' } },
      { id: 'billing', connection: { host: 'db', database: 'billing', passwordEnv: 'PW' }, rds: { clusterIdentifier: 'billing-prod' } },
      { id: 'selfhosted', connection: { host: 'db', database: 'app', passwordEnv: 'PW' } },
    ],
    plans: [
      {
        id: 'nightly',
        schedule: { cron: 'cron(0 3 * * ? *)' },
        databases: overrides.databases ?? ['orders'],
        rpoMinutes: 1440,
        rtoMinutes: 120,
        dump: overrides.planDump ?? true,
        snapshot: overrides.planDump === false,
        ...(overrides.pitr === undefined ? {} : { pitr: overrides.pitr }),
      },
    ],
    ...(overrides.snapshots ? { snapshots: overrides.snapshots } : {}),
    ...(overrides.drills ? { drills: overrides.drills } : {}),
  };
}

function issues(input: unknown): string[] {
  try {
    parseConfig(input, 'test');
  } catch (error) {
    if (error instanceof ConfigError) return [...error.issues];
    throw error;
  }
  return [];
}

describe('pitr config', () => {
  it('fills defaults for a plan that asks only for a window', () => {
    // Act
    const parsed = parseConfig(config({ pitr: { windowDays: 7 } }), 'test');

    // Assess
    expect(parsed.plans[0]!.pitr).toEqual({ windowDays: 7, copyRegion: false, manage: false, maxLagMinutes: 15 });
  });

  it("keeps windowDays within RDS's 1 to 35 days, and the lag above RDS's 5-minute log shipping", () => {
    // Act
    const tooLong = issues(config({ pitr: { windowDays: 36 } }));
    const zero = issues(config({ pitr: { windowDays: 0 } }));
    const lag = issues(config({ pitr: { windowDays: 7, maxLagMinutes: 5 } }));

    // Assess
    expect(tooLong.join('\n')).toMatch(/plans\[0\]\.pitr\.windowDays: RDS keeps automated backups for 1 to 35 days/);
    expect(zero.join('\n')).toMatch(/plans\[0\]\.pitr\.windowDays: RDS keeps automated backups for 1 to 35 days/);
    expect(lag.join('\n')).toMatch(/maxLagMinutes: RDS ships logs about every 5 minutes/);
    expect(issues(config({ pitr: { windowDays: 35, maxLagMinutes: 6 } }))).toEqual([]);
  });

  it('needs a copy region, other than the source region, to replicate the window to', () => {
    // Act
    const none = issues(config({ pitr: { windowDays: 7, copyRegion: true } }));
    const same = issues(config({ pitr: { windowDays: 7, copyRegion: true }, snapshots: { copy: { region: 'eu-west-1', kmsKeyArn: COPY_KEY.replace('eu-central-1', 'eu-west-1') } } }));
    const fine = issues(config({ pitr: { windowDays: 7, copyRegion: true }, snapshots: { copy: { region: 'eu-central-1', kmsKeyArn: COPY_KEY } } }));

    // Assess
    expect(none.join('\n')).toMatch(/plans\[0\]\.pitr\.copyRegion: .*set snapshots\.copy\.region/);
    expect(same.join('\n')).toMatch(/copy region other than the source region/);
    expect(fine).toEqual([]);
  });

  it('refuses copyRegion for an Aurora cluster, which has no automated-backup replication, naming the way out', () => {
    // Act
    const found = issues(config({ databases: ['billing'], pitr: { windowDays: 7, copyRegion: true }, snapshots: { copy: { region: 'eu-central-1', kmsKeyArn: COPY_KEY } } }));

    // Assess
    expect(found.join('\n')).toMatch(/"billing" is an Aurora cluster, and Aurora has no automated-backup replication.*snapshot copies/);
  });

  it('refuses PITR for a database without an RDS instance or Aurora cluster', () => {
    // Act
    const found = issues(config({ databases: ['orders', 'selfhosted'], pitr: { windowDays: 7 } }));

    // Assess
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/plans\[0\]\.databases\[1\]: point-in-time recovery is RDS's and Aurora's: database "selfhosted" has no rds/);
  });

  it('refuses drills from the copy region without replication, or without a place there', () => {
    // Act
    const noReplication = issues(config({ pitr: { windowDays: 7, drill: { from: 'copy-region' } } }));
    const noPlace = issues(
      config({ pitr: { windowDays: 7, copyRegion: true, drill: { from: 'copy-region' } }, snapshots: { copy: { region: 'eu-central-1', kmsKeyArn: COPY_KEY } }, drills: {} }),
    );

    // Assess
    expect(noReplication.join('\n')).toMatch(/pitr\.drill\.from: PITR drills from the copy region restore its replicated automated backups: set copyRegion: true/);
    expect(noPlace.join('\n')).toMatch(/set drills\.copyRegionNetwork/);
  });

  it('refuses a pitr drill kind for a database no pitr plan holds', () => {
    // Act
    const found = issues(config({ drills: { databases: [{ id: 'orders', backupKind: 'pitr' }] } }));

    // Assess
    expect(found.join('\n')).toMatch(/drills\.databases\[0\]\.backupKind: PITR drills need a plan with a pitr section that holds database "orders"/);
  });
});

describe('PITR drill requests', () => {
  it("drills a pitr plan's databases to a dump's consistent point when the plan dumps, held to the PITR RPO", () => {
    // Prepare
    const parsed = parseConfig(config({ pitr: { windowDays: 7, maxLagMinutes: 20, drill: {} }, drills: {} }), 'test');

    // Act
    const [request] = drillRequestsFromConfig(parsed);

    // Assess
    expect(request).toMatchObject({
      databaseId: 'orders',
      backupKind: 'pitr',
      pitr: { moment: 'dump', from: 'source' },
      rds: { instanceIdentifier: 'orders-prod' },
      targets: { rpoMinutes: 20, rtoMinutes: 120 },
      instance: { instanceClass: 'db.t4g.micro' },
    });
  });

  it('drills to the newest restorable moment when the plan takes no dumps, and gives an Aurora cluster an Aurora class', () => {
    // Prepare
    const parsed = parseConfig(config({ databases: ['billing'], planDump: false, pitr: { windowDays: 7, drill: {} }, drills: {} }), 'test');

    // Act
    const [request] = drillRequestsFromConfig(parsed);

    // Assess
    expect(request).toMatchObject({ backupKind: 'pitr', pitr: { moment: 'latest', from: 'source' }, rds: { clusterIdentifier: 'billing-prod' }, instance: { instanceClass: 'db.t4g.medium' } });
  });

  it('keeps dump drills for a pitr plan without a drill section, and for a database whose override says so', () => {
    // Prepare
    const noDrill = parseConfig(config({ pitr: { windowDays: 7 }, drills: {} }), 'test');
    const overridden = parseConfig(config({ pitr: { windowDays: 7, drill: {} }, drills: { databases: [{ id: 'orders', backupKind: 'dump' }] } }), 'test');

    // Act / Assess
    expect(drillRequestsFromConfig(noDrill)[0]).toMatchObject({ backupKind: 'dump', targets: { rpoMinutes: 1440 } });
    expect(drillRequestsFromConfig(overridden)[0]!.backupKind).toBe('dump');
    expect(drillRequestsFromConfig(overridden)[0]!.pitr).toBeUndefined();
  });

  it('carries the in-flight allowance and the schemas the dumps leave out into the request', () => {
    // Prepare
    const input = config({ pitr: { windowDays: 7, drill: { inFlightRows: 250 } }, drills: {} }) as { databases: Array<Record<string, unknown>> };
    input.databases[0]!.dump = { excludeSchemas: ['audit'] };

    // Act
    const [request] = drillRequestsFromConfig(parseConfig(input, 'test'));

    // Assess
    expect(request!.pitr).toMatchObject({ inFlightRows: 250, excludeSchemas: ['audit'] });
  });

  it('drills from the copy region with its name in the request', () => {
    // Prepare
    const parsed = parseConfig(
      config({
        pitr: { windowDays: 7, copyRegion: true, drill: { moment: 'random', from: 'copy-region' } },
        snapshots: { copy: { region: 'eu-central-1', kmsKeyArn: COPY_KEY } },
        drills: { copyRegionNetwork: { subnetGroupName: 'dr-drills' } },
      }),
      'test',
    );

    // Act
    const [request] = drillRequestsFromConfig(parsed);

    // Assess
    expect(request!.pitr).toEqual({ moment: 'random', from: 'copy-region', copyRegion: 'eu-central-1', inFlightRows: 10, excludeSchemas: [] });
  });
});
