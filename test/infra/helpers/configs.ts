import { exampleConfigJson } from './app.ts';

/**
 * Test configs. `production` turns on everything a real deployment may use:
 * a VPC with endpoints the stack creates, a Fargate dump, RDS IAM auth, an
 * RDS-managed master secret under a customer key (no host: looked up in RDS),
 * a snapshot plan with a vault, a second source account/region with its
 * own egress, retention at every location (the vault's in the vault stack)
 * and scheduled drills.
 */
export const PRODUCTION = {
  vpcId: 'vpc-0a1b2c3d4e5f60718',
  subnetIds: ['subnet-0aaa1111bbbb2222c', 'subnet-0ddd3333eeee4444f'],
  securityGroupIds: ['sg-0123456789abcdef0'],
  routeTableIds: ['rtb-0aaa1111bbbb2222c', 'rtb-0ddd3333eeee4444f'],
  secretKeyArn: 'arn:aws:kms:eu-west-1:111111111111:key/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
  rdsManagedSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:rds!db-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d-AbCdEf',
  ledgerResourceId: 'db-ABCDEFGHIJKLMNOPQRSTUVWXY0',
  usAccount: '333333333333',
  recoveryKeyArn: 'arn:aws:kms:eu-central-1:222222222222:key/99999999-8888-7777-6666-555555555555',
  drillSubnetIds: ['subnet-0eee5555ffff6666a', 'subnet-0fff7777aaaa8888b'],
  drillSecurityGroupId: 'sg-0fedcba9876543210',
} as const;

export function productionConfigJson(): Record<string, unknown> {
  const config = exampleConfigJson() as Record<string, unknown> & { databases: Array<Record<string, unknown>>; plans: Array<Record<string, unknown>> };
  config.source = {
    account: '111111111111',
    region: 'eu-west-1',
    network: {
      vpcId: PRODUCTION.vpcId,
      subnetIds: [...PRODUCTION.subnetIds],
      securityGroupIds: [...PRODUCTION.securityGroupIds],
      egress: 'vpc-endpoints',
      routeTableIds: [...PRODUCTION.routeTableIds],
    },
  };
  config.additionalSources = [
    {
      id: 'us',
      account: PRODUCTION.usAccount,
      region: 'us-east-1',
      network: { vpcId: 'vpc-0b1b2c3d4e5f60718', subnetIds: ['subnet-0bbb1111bbbb2222c'], securityGroupIds: ['sg-0b23456789abcdef0'], egress: 'user-managed' },
    },
  ];
  // orders: long dump on Fargate.
  config.databases[0]!.dump = { runner: 'fargate' };
  config.databases.push(
    {
      id: 'ledger',
      connection: {
        host: 'ledger.abcdefghijkl.eu-west-1.rds.amazonaws.com',
        database: 'ledger',
        username: 'lifeboat_backup',
        iamAuth: { resourceId: PRODUCTION.ledgerResourceId },
      },
    },
    {
      id: 'reports',
      connection: { database: 'reports', secretArn: PRODUCTION.rdsManagedSecretArn, secretKmsKeyArn: PRODUCTION.secretKeyArn },
      rds: { instanceIdentifier: 'reports-prod' },
    },
    {
      id: 'us-orders',
      source: 'us',
      connection: { host: 'orders.us.example.internal', database: 'orders', secretArn: `arn:aws:secretsmanager:us-east-1:${PRODUCTION.usAccount}:secret:lifeboat/us-orders-XyZ123` },
    },
  );
  config.plans[0]!.databases = ['orders', 'billing', 'ledger', 'reports', 'us-orders'];
  config.plans.push({
    id: 'hourly',
    schedule: { cron: 'cron(15 * * * ? *)', timezone: 'UTC' },
    databases: ['ledger'],
    rpoMinutes: 90,
    rtoMinutes: 30,
  });
  config.plans.push({
    id: 'snapshots',
    schedule: { cron: 'cron(0 2 * * ? *)', timezone: 'UTC' },
    databases: ['orders'],
    rpoMinutes: 1500,
    rtoMinutes: 120,
    dump: false,
    snapshot: true,
  });
  config.vault = { ...(config.vault as object), recoveryKmsKeyArn: PRODUCTION.recoveryKeyArn };
  config.snapshots = { copy: { region: 'eu-central-1', kmsKeyArn: 'arn:aws:kms:eu-central-1:111111111111:key/11111111-2222-3333-4444-555555555555' } };
  // Retention everywhere (the vault's runs in the vault account), and nightly drills in isolated subnets.
  const retention = config.plans[0]!.retention as Record<string, unknown>;
  config.plans[0]!.retention = { ...retention, vault: { keepLast: 3, daily: 30, weekly: 8, monthly: 12 } };
  config.plans[2]!.retention = { source: { keepLast: 2, daily: 7 }, copyRegion: { keepLast: 2, daily: 7 }, vault: { keepLast: 2, daily: 30 } };
  config.drills = {
    schedule: { cron: 'cron(0 4 * * ? *)', timezone: 'Europe/Berlin' },
    subnetIds: [...PRODUCTION.drillSubnetIds],
    securityGroupIds: [PRODUCTION.drillSecurityGroupId],
    restoreTimeoutMinutes: 90,
    maxConcurrency: 2,
  };
  return config;
}

/** The example config with `count` databases in one plan (fleet scale). */
export function fleetConfigJson(count: number, maxConcurrency = 10): Record<string, unknown> {
  const config = exampleConfigJson() as Record<string, unknown> & { plans: Array<Record<string, unknown>> };
  const ids = Array.from({ length: count }, (_, i) => `db-${String(i).padStart(3, '0')}`);
  config.databases = ids.map((id, i) => ({
    id,
    connection: {
      host: `${id}.cluster-abcdefghijkl.eu-west-1.rds.amazonaws.com`,
      port: 5432,
      database: `app_${i}`,
      secretArn: `arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/${id}-AbCdEf`,
    },
    rds: { clusterIdentifier: `${id}-prod` },
  }));
  config.plans[0]!.databases = ids;
  config.plans[0]!.maxConcurrency = maxConcurrency;
  return config;
}
