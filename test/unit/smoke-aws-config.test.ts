import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import { runInput } from '../../cli/commands/run.ts';
import { backupSchedules, drillRunInput, retentionSchedules, SOURCE_RETENTION_LOCATIONS } from '../../events/schedules.ts';
import { drillRequestsFromConfig } from '../../functions/lib/drill/plan.ts';
import { checkSourceStackSupport } from '../../infra/config.ts';
import { BROKEN_PLAN_ID, NEVER_CRON, SMOKE_PLAN_ID, retentionSafeTimeZone, smokeConfig, vaultAdminPatterns, VAULT_RETENTION_DAYS } from '../../scripts/smoke-aws/config.ts';
import { quietWindows, readFixtureOutputs } from '../../scripts/smoke-aws/fixture-stack.ts';
import { describePlan } from '../../scripts/smoke-aws/plan.ts';
import { copyKeyPolicy } from '../../scripts/smoke-aws/run.ts';
import { SAMPLE_TABLES } from '../../scripts/smoke-aws/sample-data.ts';
import { FIXTURE, smokeConfigInput } from './smoke-aws-fixtures.ts';

/** Minutes from `at` until the wall clock of `timeZone` next shows 05:30. */
function minutesUntilRetention(at: Date, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(at);
  const local = Number(parts.find((p) => p.type === 'hour')!.value) * 60 + Number(parts.find((p) => p.type === 'minute')!.value);
  return (((5 * 60 + 30 - local) % 1440) + 1440) % 1440;
}

describe('smoke:aws lifeboat config', () => {
  it('validates with the project schema and the source stack\'s own checks', () => {
    // Act
    const config = parseConfig(smokeConfig(smokeConfigInput('arn:aws:kms:eu-central-1:222222222222:key/0a1b2c3d-0000-4000-8000-000000000002')), 'smoke config');

    // Assess
    expect(() => checkSourceStackSupport(config, 'smoke config')).not.toThrow();
    expect(config.plans.map((p) => [p.id, p.dump, p.snapshot])).toEqual([['smoke', true, true], ['broken', true, false]]);
    expect(config.vault).toMatchObject({ retentionDays: 1, recoveryKmsKeyArn: expect.stringContaining(':key/') });
    expect(config.snapshots?.copy?.region).toBe('eu-central-1');
    expect(config.alerts.subscribers).toEqual([{ protocol: 'sqs', endpoint: FIXTURE.alertQueueArn }]);
    expect(config.drills?.databases[0]?.assertions.map((a) => a.sql)).toEqual(SAMPLE_TABLES.map((t) => `SELECT count(*) = ${t.rows} FROM smoke.${t.name}`));
  });

  it('uses the shortest Object Lock retention the schema allows', () => {
    // Prepare
    const shorter = smokeConfig(smokeConfigInput()) as { vault: { retentionDays: number } };
    shorter.vault.retentionDays = VAULT_RETENTION_DAYS - 1;

    // Act
    const attempt = () => parseConfig(shorter, 'shorter');

    // Assess
    expect(VAULT_RETENTION_DAYS).toBe(1);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/vault\.retentionDays/);
  });

  it('starts each workflow with exactly what its schedule sends: both backup plans, the drill and source retention', () => {
    // Prepare
    const config = parseConfig(smokeConfig(smokeConfigInput()), 'smoke config');
    const scheduled = (planId: string) => backupSchedules(config).find((s) => s.planId === planId)?.input;

    // Act
    const backup = runInput('backup', config, { plan: SMOKE_PLAN_ID });
    const broken = runInput('backup', config, { plan: BROKEN_PLAN_ID });
    const drill = runInput('drill', config, {});
    const retention = runInput('retention', config, { plan: SMOKE_PLAN_ID });

    // Assess
    expect(backup).toEqual(scheduled(SMOKE_PLAN_ID));
    expect(broken).toEqual(scheduled(BROKEN_PLAN_ID));
    expect(broken).not.toEqual(backup);
    expect(drill).toEqual(drillRunInput());
    expect(drillRequestsFromConfig(config).map((d) => [d.databaseId, d.instance.subnetGroupName])).toEqual([['smoke', FIXTURE.subnetGroupName]]);
    expect(retention).toEqual(retentionSchedules(config, { locations: SOURCE_RETENTION_LOCATIONS }).find((s) => s.planId === SMOKE_PLAN_ID)?.input);
    expect((retention as { targets: { location: string }[] }).targets.map((t) => t.location)).toEqual(['source', 'copy-region']);
    expect(JSON.stringify([backup, broken, drill, retention])).not.toMatch(/password/i);
  });

  it('keeps every schedule from firing during a run: backups and drills never, retention about twelve hours away', () => {
    // Prepare
    const starts = Array.from({ length: 96 }, (_, i) => new Date(Date.UTC(2026, 11, 3, 0, i * 15)));

    // Act
    const gaps = starts.map((at) => ({ at, zone: retentionSafeTimeZone(at), minutes: minutesUntilRetention(at, retentionSafeTimeZone(at)) }));
    const config = smokeConfig(smokeConfigInput()) as { plans: { schedule: { cron: string } }[]; drills: { schedule: { cron: string } } };

    // Assess
    expect(gaps.filter((g) => g.minutes < 600)).toEqual([]);
    expect(config.plans.every((p) => p.schedule.cron === NEVER_CRON)).toBe(true);
    expect(config.drills.schedule.cron).toBe(NEVER_CRON);
  });

  it('lets the operator\'s vault principal administer what the run made in the vault, with and without a role path', () => {
    // Act
    const role = vaultAdminPatterns('arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Admin_0123/jane@example.com');
    const user = vaultAdminPatterns('arn:aws:iam::222222222222:user/smoke');

    // Assess
    expect(role).toEqual(['arn:aws:iam::222222222222:role/AWSReservedSSO_Admin_0123', 'arn:aws:iam::222222222222:role/*/AWSReservedSSO_Admin_0123']);
    expect(user).toEqual(['arn:aws:iam::222222222222:user/smoke']);
    expect(() => vaultAdminPatterns('arn:aws:iam::222222222222:group/g')).toThrow(/cannot tell which principal/);
  });

  it('shares the snapshot-copy key with the vault account for exactly what a cross-account copy needs', () => {
    // Act
    const policy = JSON.parse(copyKeyPolicy('111111111111', '222222222222')) as { Statement: { Principal: { AWS: string }; Action: string | string[] }[] };

    // Assess
    expect(policy.Statement.map((s) => [s.Principal.AWS, s.Action])).toEqual([
      ['arn:aws:iam::111111111111:root', 'kms:*'],
      ['arn:aws:iam::222222222222:root', ['kms:CreateGrant', 'kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey*', 'kms:ReEncrypt*']],
    ]);
  });

  it('puts the RDS backup and maintenance windows away from the run and apart from each other', () => {
    // Act
    const late = quietWindows(new Date('2026-12-03T23:40:00Z'));
    const early = quietWindows(new Date('2026-12-05T02:10:00Z'));

    // Assess
    expect(late).toEqual({ backupWindow: '11:00-11:30', maintenanceWindow: 'sun:12:00-sun:12:30' });
    expect(early).toEqual({ backupWindow: '14:00-14:30', maintenanceWindow: 'tue:15:00-tue:15:30' });
  });

  it('reads the fixture stack\'s outputs, naming any that are missing', () => {
    // Prepare
    const outputs = {
      'smoke-test-smoke-fixture': {
        VpcId: FIXTURE.vpcId,
        PrivateSubnetIds: FIXTURE.privateSubnetIds.join(','),
        RunnerSecurityGroupId: FIXTURE.runnerSecurityGroupId,
        DatabaseSecurityGroupId: FIXTURE.databaseSecurityGroupId,
        SubnetGroupName: FIXTURE.subnetGroupName,
        InstanceIdentifier: FIXTURE.instanceIdentifier,
        DatabaseName: FIXTURE.databaseName,
        MasterSecretArn: FIXTURE.masterSecretArn,
        WrongSecretArn: FIXTURE.wrongSecretArn,
        AlertQueueArn: FIXTURE.alertQueueArn,
        AlertQueueUrl: FIXTURE.alertQueueUrl,
        SampleRows: JSON.stringify(FIXTURE.sampleRows),
      },
    };
    const { AlertQueueUrl: _dropped, ...incomplete } = outputs['smoke-test-smoke-fixture'];

    // Act
    const fixture = readFixtureOutputs(outputs, 'smoke-test-smoke-fixture');
    const missing = () => readFixtureOutputs({ 'smoke-test-smoke-fixture': incomplete }, 'smoke-test-smoke-fixture');

    // Assess
    expect(fixture).toEqual(FIXTURE);
    expect(missing).toThrow(/missing outputs AlertQueueUrl/);
  });

  it('says before anything is created what it will create, where, for how long and roughly at what cost', () => {
    // Prepare
    const options = {
      name: 'smoke-test',
      source: { profile: 'prod', region: 'eu-west-1', credentialSource: 'profile "prod"' },
      vault: { profile: 'vault', region: 'eu-central-1', credentialSource: 'profile "vault"' },
      engineMajor: 17,
      executionTimeoutMinutes: 180,
      alertTimeoutMinutes: 15,
      yes: false,
    };

    // Act
    const text = describePlan(options, { sourceAccount: '111111111111', vaultAccount: '222222222222' }).join('\n');

    // Assess
    expect(text).toMatch(/account 111111111111, eu-west-1, credentials: profile "prod"/);
    expect(text).toMatch(/account 222222222222, eu-central-1, credentials: profile "vault"/);
    expect(text).toMatch(/smoke-test-smoke-fixture[\s\S]*db\.t4g\.micro, gp3 20 GiB, no public access, no deletion protection, backups 1 day/);
    expect(text).toMatch(/smoke-test-lifeboat-source/);
    expect(text).toMatch(/smoke-test-lifeboat-vault-222222222222-eu-central-1 \(Object Lock, compliance, 1 day\)/);
    expect(text).toMatch(/about \$\d+\.\d\d for a 2-hour run/);
    expect(text).toMatch(/Duration: about 2 hours/);
  });
});
