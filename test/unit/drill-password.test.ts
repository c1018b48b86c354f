import { describe, expect, it } from 'vitest';
import type { RDSClient } from '@aws-sdk/client-rds';
import { RdsProvisioner } from '../../functions/lib/drill/rds-provisioner.ts';
import type { InstanceRef } from '../../functions/lib/drill/types.ts';

/**
 * The drill's new master password on a throwaway restored from a source whose
 * master password RDS manages in Secrets Manager: RDS accepts a password there
 * only with the management turned off in the same call (ModifyDBInstance /
 * ModifyDBCluster, "you must specify MasterUserPassword"). Call shapes only.
 */
/** RDS answering with a managed master secret per resource (`own`), the source's the same or another. */
function fakeRds(managed: boolean, sourceSecret = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:rds!db-production') {
  const sent: { command: string; input: Record<string, unknown> }[] = [];
  const secretOf = (id: unknown) => (managed ? { MasterUserSecret: { SecretArn: id === 'orders-prod' ? sourceSecret : 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:rds!db-throwaway', SecretStatus: 'active' } } : {});
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      sent.push({ command: command.constructor.name, input: command.input });
      if (command.constructor.name === 'DescribeDBInstancesCommand') return { DBInstances: [{ DBInstanceIdentifier: command.input.DBInstanceIdentifier, ...secretOf(command.input.DBInstanceIdentifier) }] };
      if (command.constructor.name === 'DescribeDBClustersCommand') return { DBClusters: [{ DBClusterIdentifier: command.input.DBClusterIdentifier, ...secretOf(command.input.DBClusterIdentifier) }] };
      return {};
    },
  } as unknown as RDSClient;
  return { client, sent };
}

const ref = (cluster: boolean): InstanceRef => ({
  provider: 'rds',
  drillId: 'd',
  identifier: cluster ? 'lifeboat-drill-x-1' : 'lifeboat-drill-x',
  ...(cluster ? { clusterIdentifier: 'lifeboat-drill-x' } : {}),
  from: 'source',
  emulated: false,
  createdAt: new Date().toISOString(),
});

describe('the drill password on a restored throwaway', () => {
  it.each([
    ['instance', false, 'ModifyDBInstanceCommand'],
    ['cluster', true, 'ModifyDBClusterCommand'],
  ])('turns Secrets Manager management off with the password when the %s has a managed master secret', async (_what, cluster, modify) => {
    // Prepare
    const { client, sent } = fakeRds(true);

    // Act
    await new RdsProvisioner({ clients: { source: client } }).applyPassword(ref(cluster), 'pw-1');

    // Assess
    expect(sent.find((s) => s.command === modify)?.input).toMatchObject({ MasterUserPassword: 'pw-1', ApplyImmediately: true, ManageMasterUserPassword: false });
  });

  it("refuses, sending nothing, when the throwaway reports production's own managed secret (turning management off would delete it)", async () => {
    // Prepare
    const { client, sent } = fakeRds(true, 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:rds!db-throwaway');
    const restored = { ...ref(false), source: { identifier: 'orders-prod', cluster: false } };

    // Act
    const attempt = new RdsProvisioner({ clients: { source: client } }).applyPassword(restored, 'pw-3');

    // Assess
    await expect(attempt).rejects.toThrow(/reports the master secret of orders-prod .*would make RDS delete production's secret\. Refused\./);
    expect(sent.filter((s) => s.command.startsWith('Modify'))).toEqual([]);
  });

  it("turns management off when the throwaway's secret is its own, not production's", async () => {
    // Prepare
    const { client, sent } = fakeRds(true);
    const restored = { ...ref(false), source: { identifier: 'orders-prod', cluster: false } };

    // Act
    await new RdsProvisioner({ clients: { source: client } }).applyPassword(restored, 'pw-4');

    // Assess
    expect(sent.find((s) => s.command === 'ModifyDBInstanceCommand')?.input).toMatchObject({ ManageMasterUserPassword: false, MasterUserPassword: 'pw-4' });
  });

  it('sends only the password when RDS does not manage it', async () => {
    // Prepare
    const { client, sent } = fakeRds(false);

    // Act
    await new RdsProvisioner({ clients: { source: client } }).applyPassword(ref(false), 'pw-2');

    // Assess
    const modify = sent.find((s) => s.command === 'ModifyDBInstanceCommand')!.input;
    expect(modify).toMatchObject({ MasterUserPassword: 'pw-2' });
    expect('ManageMasterUserPassword' in modify).toBe(false);
  });
});
