import { describe, expect, it } from 'vitest';
import { DescribeDBClustersCommand, DescribeDBInstanceAutomatedBackupsCommand, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import { pointInTimeAdvice } from '../../functions/lib/restore/point-in-time.ts';

/** What RDS answers, per call: the shape of the calls pointInTimeAdvice makes is what this checks. */
function rdsAnswering(answers: { instance?: object; automated?: object[] | Error; cluster?: object }): RDSClient {
  return {
    send: async (command: unknown) => {
      if (command instanceof DescribeDBInstancesCommand) return { DBInstances: [answers.instance] };
      if (command instanceof DescribeDBInstanceAutomatedBackupsCommand) {
        if (answers.automated instanceof Error) throw answers.automated;
        return { DBInstanceAutomatedBackups: answers.automated ?? [] };
      }
      if (command instanceof DescribeDBClustersCommand) return { DBClusters: [answers.cluster] };
      throw new Error(`unexpected ${(command as object).constructor.name}`);
    },
  } as unknown as RDSClient;
}

const at = (iso: string) => new Date(iso);

describe('point-in-time advice for recover', () => {
  it("uses the automated backup's restore window, and covers a moment inside it", async () => {
    // Prepare
    const rds = rdsAnswering({
      instance: { BackupRetentionPeriod: 7, LatestRestorableTime: at('2026-12-07T10:55:00Z') },
      automated: [{ Status: 'active', RestoreWindow: { EarliestTime: at('2026-12-01T03:00:00Z'), LatestTime: at('2026-12-07T10:55:00Z') } }],
    });

    // Act
    const advice = await pointInTimeAdvice(rds, { instanceIdentifier: 'orders' }, at('2026-12-07T09:12:00.500Z'));

    // Assess
    expect(advice.covers).toBe(true);
    expect(advice.window).toEqual({ kind: 'instance', identifier: 'orders', retentionDays: 7, earliest: '2026-12-01T03:00:00.000Z', latest: '2026-12-07T10:55:00.000Z' });
    expect(advice.command).toMatch(/^aws rds restore-db-instance-to-point-in-time --source-db-instance-identifier orders --target-db-instance-identifier orders-pitr --restore-time 2026-12-07T09:12:00Z --db-subnet-group-name <group> --vpc-security-group-ids <sg> --no-publicly-accessible \(add the source's parameter group/);
  });

  it('does not cover a moment before the window or after the newest restorable time (logs not shipped yet)', async () => {
    // Prepare
    const rds = rdsAnswering({ instance: { BackupRetentionPeriod: 1, LatestRestorableTime: at('2026-12-07T10:55:00Z') }, automated: [{ Status: 'active', RestoreWindow: { EarliestTime: at('2026-12-06T11:00:00Z') } }] });

    // Act
    const before = await pointInTimeAdvice(rds, { instanceIdentifier: 'orders' }, at('2026-12-06T10:59:59Z'), { now: at('2026-12-08T00:00:00Z') });
    const after = await pointInTimeAdvice(rds, { instanceIdentifier: 'orders' }, at('2026-12-07T10:58:00Z'), { now: at('2026-12-08T00:00:00Z') });

    // Assess
    expect([before.covers, after.covers]).toEqual([false, false]);
    expect(before.summary).toBe('does not reach 2026-12-06T10:59:59Z: the window of orders is 2026-12-06T11:00:00.000Z to 2026-12-07T10:55:00.000Z');
    expect(after.command).toBeUndefined();
  });

  it('never counts an estimated window as cover: "probably available", with the reason RDS gave none', async () => {
    // Prepare
    const created = new Date(Date.now() - 5 * 86_400_000);
    const rds = rdsAnswering({ instance: { BackupRetentionPeriod: 7, LatestRestorableTime: new Date(), InstanceCreateTime: created }, automated: Object.assign(new Error('denied'), { name: 'AccessDenied' }) });

    // Act
    const inside = await pointInTimeAdvice(rds, { instanceIdentifier: 'orders' }, new Date(Date.now() - 2 * 86_400_000));
    const tooOld = await pointInTimeAdvice(rds, { instanceIdentifier: 'orders' }, new Date(Date.now() - 4.5 * 86_400_000));

    // Assess: conservative (the first day after creation has no backup yet)
    expect(inside).toMatchObject({ covers: false, likely: true, window: { earliestEstimated: 'DescribeDBInstanceAutomatedBackups failed: AccessDenied' } });
    expect(inside.summary).toMatch(/^probably available: .* as estimated from its retention period .*check with aws rds describe-db-instance-automated-backups/);
    expect(inside.command).toMatch(/^aws rds restore-db-instance-to-point-in-time /);
    expect(tooOld.covers).toBe(false);
    expect(tooOld.summary).toMatch(/^does not reach /);
  });

  it("reads only the instance's own active automated backup, not a retained one of a deleted namesake", async () => {
    // Prepare
    const rds = rdsAnswering({
      instance: { BackupRetentionPeriod: 7, DbiResourceId: 'db-NEW', LatestRestorableTime: at('2026-12-07T10:55:00Z') },
      automated: [
        { Status: 'retained', DbiResourceId: 'db-OLD', RestoreWindow: { EarliestTime: at('2026-11-01T00:00:00Z') } },
        { Status: 'active', DbiResourceId: 'db-NEW', RestoreWindow: { EarliestTime: at('2026-12-06T00:00:00Z') } },
      ],
    });

    // Act
    const advice = await pointInTimeAdvice(rds, { instanceIdentifier: 'orders' }, at('2026-12-02T00:00:00Z'));

    // Assess
    expect(advice.covers).toBe(false);
    expect(advice.window?.earliest).toBe('2026-12-06T00:00:00.000Z');
  });

  it('says "not yet", with --use-latest-restorable-time, for a moment the shipped logs have not reached', async () => {
    // Prepare
    const now = at('2026-12-07T11:00:00Z');
    const rds = rdsAnswering({ instance: { BackupRetentionPeriod: 7, LatestRestorableTime: at('2026-12-07T10:55:00Z') }, automated: [{ Status: 'active', RestoreWindow: { EarliestTime: at('2026-12-01T00:00:00Z') } }] });

    // Act
    const advice = await pointInTimeAdvice(rds, { instanceIdentifier: 'orders' }, at('2026-12-07T10:58:00Z'), { now, region: 'eu-central-1' });

    // Assess
    expect(advice).toMatchObject({ covers: false, likely: true });
    expect(advice.summary).toMatch(/^not yet: the newest restorable moment of orders is 2026-12-07T10:55:00.000Z \(RDS ships logs about every 5 minutes/);
    expect(advice.command).toMatch(/^aws rds restore-db-instance-to-point-in-time --region eu-central-1 --source-db-instance-identifier orders --target-db-instance-identifier orders-pitr --use-latest-restorable-time /);
  });

  it('restores a Multi-AZ DB cluster, or an instance that belongs to a cluster, through the cluster', async () => {
    // Prepare
    const multiAz = rdsAnswering({ instance: { DBClusterIdentifier: 'ledger', BackupRetentionPeriod: 7 }, cluster: { Engine: 'postgres', BackupRetentionPeriod: 7, EarliestRestorableTime: at('2026-12-01T00:00:00Z'), LatestRestorableTime: at('2026-12-07T10:55:00Z') } });

    // Act
    const advice = await pointInTimeAdvice(multiAz, { instanceIdentifier: 'ledger-instance-1' }, at('2026-12-06T00:00:00Z'));

    // Assess
    expect(advice).toMatchObject({ covers: true, window: { kind: 'multi-az-cluster', identifier: 'ledger' } });
    expect(advice.command).toMatch(/^aws rds restore-db-cluster-to-point-in-time --source-db-cluster-identifier ledger --db-cluster-identifier ledger-pitr --restore-to-time 2026-12-06T00:00:00Z --db-cluster-instance-class <class> /);
    expect(advice.command).not.toContain('create-db-instance');
  });

  it('gives the Aurora commands for a cluster (a restored cluster needs an instance)', async () => {
    // Prepare
    const rds = rdsAnswering({ cluster: { Engine: 'aurora-postgresql', BackupRetentionPeriod: 3, EarliestRestorableTime: at('2026-12-05T00:00:00Z'), LatestRestorableTime: at('2026-12-07T10:55:00Z') } });

    // Act
    const advice = await pointInTimeAdvice(rds, { clusterIdentifier: 'ledger' }, at('2026-12-06T00:00:00Z'));

    // Assess
    expect(advice.covers).toBe(true);
    expect(advice.command).toMatch(/^aws rds restore-db-cluster-to-point-in-time --source-db-cluster-identifier ledger --db-cluster-identifier ledger-pitr --restore-to-time 2026-12-06T00:00:00Z .*, then aws rds create-db-instance --db-cluster-identifier ledger-pitr /);
  });
});
