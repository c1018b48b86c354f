import { describe, expect, it } from 'vitest';
import { DrillProvisioningError } from '../../functions/lib/errors.ts';
import { sweepExpiredDrillResources, type JanitorProvisioner } from '../../functions/lib/drill/janitor.ts';
import { describeCaughtError } from '../../functions/lib/alerts/format.ts';

const past = new Date(Date.now() - 3_600_000).toISOString();

describe('the janitor sweep summary', () => {
  it("gives the janitor's next step, not the provisioning step of the error it caught", async () => {
    // Prepare: a provisioner whose delete fails with an error that carries a drill-provisioning next step.
    const provisioner: JanitorProvisioner = {
      provider: 'rds',
      listDrillResources: async () => [{ provider: 'rds', type: 'rds-instance', id: 'lifeboat-drill-x', tags: { 'lifeboat:drill': 'x', 'lifeboat:expires-at': past } }],
      deleteResource: async () => {
        throw new DrillProvisioningError('DeleteDBInstance lifeboat-drill-x failed: AccessDenied: not authorized.', { nextStep: "check the drill role's RDS permissions." });
      },
    };

    // Act
    const result = await sweepExpiredDrillResources({ provisioners: [provisioner] });
    const described = describeCaughtError({ Error: 'JanitorIncomplete', Cause: result.summary });

    // Assess: one next step, the janitor's; what failed keeps the error's name and message.
    expect(result.summary.match(/Next step:/g)).toHaveLength(1);
    expect(described.what).toContain('rds-instance lifeboat-drill-x: DrillProvisioningError: DeleteDBInstance lifeboat-drill-x failed: AccessDenied: not authorized.');
    expect(described.nextStep).toBe("check the janitor role's permissions and delete these by hand if needed.");
    expect(result.summary).not.toContain('..');
  });
});
