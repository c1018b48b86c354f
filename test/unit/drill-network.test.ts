import { describe, expect, it } from 'vitest';
import { drillDepsFromEnvironment } from '../../functions/lib/drill/environment.ts';
import type { Provisioner, ProvisionRequest } from '../../functions/lib/drill/provisioner.ts';
import { runDrillAction, type DrillDeps } from '../../functions/lib/drill/steps.ts';
import { drillStateSchema, type InstanceRef } from '../../functions/lib/drill/types.ts';
import { SecretRegistry } from '../../functions/lib/redact.ts';

// The stack's drill security group (ingress from the runners only) reaches the
// provisioner through the drill function's environment, not the execution
// input: every throwaway gets it, whoever started the drill.

function recordingProvisioner(): { provisioner: Provisioner; requests: ProvisionRequest[] } {
  const requests: ProvisionRequest[] = [];
  const provisioner = {
    provider: 'rds',
    async provision(request: ProvisionRequest): Promise<InstanceRef> {
      requests.push(request);
      return { provider: 'rds', drillId: request.tags.drillId, identifier: `lifeboat-drill-${request.tags.drillId}`, from: 'source', emulated: false, createdAt: new Date().toISOString() };
    },
  } as unknown as Provisioner;
  return { provisioner, requests };
}

function stateWith(securityGroupIds: string[], placement: { subnetGroupName?: string; subnetIds?: string[] } = { subnetGroupName: 'isolated-drills' }) {
  return drillStateSchema.parse({
    request: {
      databaseId: 'orders',
      planId: 'nightly',
      targets: { rpoMinutes: 60, rtoMinutes: 60 },
      instance: { instanceClass: 'db.t4g.micro', ...placement, securityGroupIds },
    },
    selection: {
      drillId: '20260301T040000Z-abcdef',
      startedAt: '2026-03-01T04:00:00.000Z',
      expiresAt: '2026-03-01T10:00:00.000Z',
      choice: 'latest',
      candidates: 1,
      newestConsistentAt: '2026-03-01T03:00:00.000Z',
      backup: {
        kind: 'dump', backupId: 'b1', from: 'source', bucket: 'bucket', prefix: 'backups/', manifestKey: 'backups/orders/b1/manifest.json',
        consistentAt: '2026-03-01T03:00:00.000Z', databaseName: 'orders', serverMajor: 16, sizeBytes: 1024,
      },
    },
  });
}

function depsWith(provisioner: Provisioner, drillSecurityGroupIds?: string[], drillNetwork?: DrillDeps['drillNetwork']): DrillDeps {
  return { storage: { source: { bucket: 'bucket', prefix: 'backups/' } }, provisioners: { rds: provisioner }, dumpProvider: 'rds', drillSecurityGroupIds, drillNetwork } as unknown as DrillDeps;
}

describe('drill security groups', () => {
  it('provisions every throwaway in the deployment\'s drill security group, before the request\'s own groups', async () => {
    // Prepare
    const { provisioner, requests } = recordingProvisioner();

    // Act
    await runDrillAction('provision', stateWith(['sg-0user']), depsWith(provisioner, ['sg-0stack']), new SecretRegistry());

    // Assess
    expect(requests.map((r) => r.instance)).toEqual([{ instanceClass: 'db.t4g.micro', subnetGroupName: 'isolated-drills', securityGroupIds: ['sg-0stack', 'sg-0user'] }]);
  });

  it('keeps the request\'s groups alone when the deployment names none, and never lists a group twice', async () => {
    // Prepare
    const { provisioner, requests } = recordingProvisioner();

    // Act
    await runDrillAction('provision', stateWith(['sg-0user']), depsWith(provisioner), new SecretRegistry());
    await runDrillAction('provision', stateWith(['sg-0stack']), depsWith(provisioner, ['sg-0stack']), new SecretRegistry());

    // Assess
    expect(requests.map((r) => r.instance.securityGroupIds)).toEqual([['sg-0user'], ['sg-0stack']]);
  });

  it('reads the deployment\'s drill security groups from DRILL_SECURITY_GROUP_IDS', () => {
    // Act
    const listed = drillDepsFromEnvironment({ BACKUP_BUCKET: 'bucket', DRILL_SECURITY_GROUP_IDS: 'sg-0aaa, sg-0bbb' });
    const unset = drillDepsFromEnvironment({ BACKUP_BUCKET: 'bucket' });

    // Assess
    expect(listed.drillSecurityGroupIds).toEqual(['sg-0aaa', 'sg-0bbb']);
    expect(unset.drillSecurityGroupIds).toEqual([]);
  });
});

describe('drill network placement comes from the deployed config', () => {
  const deployed = { subnetIds: ['subnet-0aaa', 'subnet-0bbb'], securityGroupIds: ['sg-0abc'] };

  it('provisions a request built from the deployed config where the config says', async () => {
    // Prepare
    const { provisioner, requests } = recordingProvisioner();

    // Act
    await runDrillAction('provision', stateWith(['sg-0abc'], { subnetIds: ['subnet-0bbb', 'subnet-0aaa'] }), depsWith(provisioner, ['sg-0stack'], deployed), new SecretRegistry());

    // Assess
    expect(requests.map((r) => r.instance)).toEqual([{ instanceClass: 'db.t4g.micro', subnetIds: ['subnet-0bbb', 'subnet-0aaa'], securityGroupIds: ['sg-0stack', 'sg-0abc'] }]);
  });

  it('refuses a hand-made request that names other subnets, another subnet group or other security groups, and provisions nothing', async () => {
    // Prepare
    const { provisioner, requests } = recordingProvisioner();
    const attempts = [
      stateWith(['sg-0abc'], { subnetIds: ['subnet-0aaa', 'subnet-0public'] }),
      stateWith(['sg-0abc'], { subnetGroupName: 'default' }),
      stateWith(['sg-0abc', 'sg-0open'], { subnetIds: ['subnet-0aaa', 'subnet-0bbb'] }),
    ];

    // Act
    const errors = [];
    for (const state of attempts) errors.push(await runDrillAction('provision', state, depsWith(provisioner, ['sg-0stack'], deployed), new SecretRegistry()).then(() => undefined, (e: Error) => e));

    // Assess
    expect(errors.map((e) => e?.name)).toEqual(['DrillProvisioningError', 'DrillProvisioningError', 'DrillProvisioningError']);
    expect(errors[0]!.message).toMatch(/^The drill request of database "orders" places its throwaway at .*subnet-0public.*, but this deployment places throwaways at .*subnet-0bbb.* \(drills config, deploy time\): refusing/);
    expect(requests).toEqual([]);
  });

  it('reads the placement from DRILL_NETWORK, and refuses a malformed one naming the variable', () => {
    // Act
    const deps = drillDepsFromEnvironment({ BACKUP_BUCKET: 'bucket', DRILL_NETWORK: JSON.stringify(deployed) });

    // Assess
    expect(deps.drillNetwork).toEqual(deployed);
    expect(drillDepsFromEnvironment({ BACKUP_BUCKET: 'bucket' }).drillNetwork).toBeUndefined();
    expect(() => drillDepsFromEnvironment({ BACKUP_BUCKET: 'bucket', DRILL_NETWORK: '{"subnetIds":["nope"],"securityGroupIds":[]}' })).toThrow(/DRILL_NETWORK/);
    expect(() => drillDepsFromEnvironment({ BACKUP_BUCKET: 'bucket', DRILL_NETWORK: 'not json' })).toThrow(/DRILL_NETWORK/);
  });
});
