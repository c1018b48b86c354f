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
      automated: [{ RestoreWindow: { EarliestTime: at('2026-12-01T03:00:00Z'), LatestTime: at('2026-12-07T10:55:00Z') } }],
    });

    // Act
    const advice = await pointInTimeAdvice(rds, { instanceIdentifier: 'orders' }, at('2026-12-07T09:12:00.500Z'));

    // Assess
    expect(advice.covers).toBe(true);
    expect(advice.window).toEqual({ kind: 'instance', identifier: 'orders', retentionDays: 7, earliest: '2026-12-01T03:00:00.000Z', latest: '2026-12-07T10:55:00.000Z' });
    expect(advice.command).toBe('aws rds restore-db-instance-to-point-in-time --source-db-instance-identifier orders --target-db-instance-identifier orders-pitr --restore-time 2026-12-07T09:12:00Z --db-subnet-group-name <group> --vpc-security-group-ids <sg> --no-publicly-accessible');
  });

  it('does not cover a moment before the window or after the newest restorable time (logs not shipped yet)', async () => {
    // Prepare
    const rds = rdsAnswering({ instance: { BackupRetentionPeriod: 1, LatestRestorableTime: at('2026-12-07T10:55:00Z') }, automated: [{ RestoreWindow: { EarliestTime: at('2026-12-06T11:00:00Z') } }] });

    // Act
    const before = await pointInTimeAdvice(rds, { instanceIdentifier: 'orders' }, at('2026-12-06T10:59:59Z'));
    const after = await pointInTimeAdvice(rds, { instanceIdentifier: 'orders' }, at('2026-12-07T10:58:00Z'));

    // Assess
    expect([before.covers, after.covers]).toEqual([false, false]);
    expect(before.summary).toBe('does not reach 2026-12-06T10:59:59.000Z: the window of orders is 2026-12-06T11:00:00.000Z to 2026-12-07T10:55:00.000Z');
    expect(after.command).toBeUndefined();
  });

  it('estimates the oldest moment from the retention period when RDS does not say, and labels it so', async () => {
    // Prepare
    const created = new Date(Date.now() - 3 * 86_400_000);
    const rds = rdsAnswering({ instance: { BackupRetentionPeriod: 7, LatestRestorableTime: new Date(), InstanceCreateTime: created }, automated: Object.assign(new Error('denied'), { name: 'AccessDenied' }) });

    // Act
    const advice = await pointInTimeAdvice(rds, { instanceIdentifier: 'orders' }, new Date(Date.now() - 2 * 86_400_000));

    // Assess: not older than the instance itself
    expect(advice.covers).toBe(true);
    expect(advice.window).toMatchObject({ earliest: created.toISOString(), earliestEstimated: true });
    expect(advice.summary).toContain('(estimated from the retention period)');
  });

  it('gives the Aurora commands for a cluster (a restored cluster needs an instance)', async () => {
    // Prepare
    const rds = rdsAnswering({ cluster: { BackupRetentionPeriod: 3, EarliestRestorableTime: at('2026-12-05T00:00:00Z'), LatestRestorableTime: at('2026-12-07T10:55:00Z') } });

    // Act
    const advice = await pointInTimeAdvice(rds, { clusterIdentifier: 'ledger' }, at('2026-12-06T00:00:00Z'));

    // Assess
    expect(advice.covers).toBe(true);
    expect(advice.command).toMatch(/^aws rds restore-db-cluster-to-point-in-time --source-db-cluster-identifier ledger --db-cluster-identifier ledger-pitr --restore-to-time 2026-12-06T00:00:00Z .*, then aws rds create-db-instance --db-cluster-identifier ledger-pitr /);
  });
});
