import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import type { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { synthApp, type Synthesized } from './helpers/app.ts';
import { productionConfigJson } from './helpers/configs.ts';
import { evaluate, rolesOf, type CfnTemplate, type EvaluatedRole } from './helpers/iam-evaluator.ts';

/**
 * PITR drills, evaluated with an IAM policy simulator over the synthesized
 * source stack: the drill role may restore the configured instances and
 * clusters (and, in the copy region, their replicated automated backups) to a
 * moment, into tagged lifeboat-drill-* throwaways of the configured classes,
 * and nothing else; the janitor may delete tagged throwaways in the copy region.
 */
const ACCOUNT = '111111111111';
const REGION = 'eu-west-1';
const COPY = 'eu-central-1';
const DRILL_ID = '20261207T040000Z-abc123';
const rds = (type: string, name: string, region = REGION) => `arn:aws:rds:${region}:${ACCOUNT}:${type}:${name}`;
const throwaway = (region = REGION) => rds('db', 'lifeboat-drill-20261207t040000z-abc123', region);
const requestTag = { 'aws:RequestTag/lifeboat:drill': DRILL_ID, 'aws:TagKeys': ['lifeboat:drill'] };
/** A restore into a db resource carries its class; the other resources of the call do not know that key. */
const tagged = { ...requestTag, 'rds:DatabaseClass': 'db.t4g.micro' };

let synth: Synthesized;
let roles: EvaluatedRole[];

function pitrConfig(): Record<string, unknown> {
  const config = productionConfigJson() as Record<string, unknown> & { plans: Array<Record<string, unknown>>; drills: Record<string, unknown> };
  // reports-prod (an RDS instance) drilled to a dump's consistent point in the source region;
  // orders-prod drilled from its automated backups replicated to the copy region.
  config.plans.push({
    id: 'pitr-reports',
    schedule: { cron: 'cron(30 3 * * ? *)', timezone: 'UTC' },
    databases: ['reports'],
    rpoMinutes: 1500,
    rtoMinutes: 60,
    pitr: { windowDays: 7, drill: { moment: 'dump' } },
  });
  const snapshots = config.plans.find((p) => p.id === 'snapshots')!;
  snapshots.pitr = { windowDays: 14, copyRegion: true, drill: { moment: 'latest', from: 'copy-region' } };
  config.drills.copyRegionNetwork = { subnetGroupName: 'lifeboat-drills-dr', securityGroupIds: ['sg-0aaa1111bbbb2222c'] };
  return config;
}

beforeAll(() => {
  synth = synthApp({ config: pitrConfig() });
  roles = synth.stacks.flatMap((s: Stack) =>
    rolesOf({ template: Template.fromStack(s).toJSON() as CfnTemplate, stackName: s.stackName, account: s.account, region: s.region }),
  );
}, 180_000);
afterAll(() => {
  if (synth) rmSync(synth.outdir, { recursive: true, force: true });
});

const role = (prefix: string) => roles.find((r) => r.stack === 'acme-lifeboat-source' && r.logicalId.startsWith(prefix))!;
const run = (who: EvaluatedRole, action: string, resource: string, context?: Record<string, string | string[]>) => evaluate({ principal: who, action, resource, resourceAccount: ACCOUNT, context });

describe('PITR drills (IAM policy simulator)', () => {
  it('restores the configured instance to a moment into a tagged throwaway of the configured class, and nothing else', async () => {
    // Prepare
    const drill = role('DrillFunction');

    // Act
    const decisions = {
      sourceInstance: await run(drill, 'rds:RestoreDBInstanceToPointInTime', rds('db', 'reports-prod'), tagged),
      throwaway: await run(drill, 'rds:RestoreDBInstanceToPointInTime', throwaway(), tagged),
      throwawayUntagged: await run(drill, 'rds:RestoreDBInstanceToPointInTime', throwaway(), { 'rds:DatabaseClass': 'db.t4g.micro' }),
      throwawayHugeClass: await run(drill, 'rds:RestoreDBInstanceToPointInTime', throwaway(), { ...tagged, 'rds:DatabaseClass': 'db.r6g.16xlarge' }),
      targetNamedLikeProduction: await run(drill, 'rds:RestoreDBInstanceToPointInTime', rds('db', 'reports-prod-restored'), tagged),
      unconfiguredSource: await run(drill, 'rds:RestoreDBInstanceToPointInTime', rds('db', 'payroll-prod'), tagged),
      readWindow: await run(drill, 'rds:DescribeDBInstances', rds('db', 'reports-prod')),
      readAutomatedBackups: await run(drill, 'rds:DescribeDBInstanceAutomatedBackups', rds('auto-backup', 'ab-xyz')),
      modifyProduction: await run(drill, 'rds:ModifyDBInstance', rds('db', 'reports-prod'), { 'aws:ResourceTag/lifeboat:drill': DRILL_ID }),
    };

    // Assess
    expect(decisions).toEqual({
      sourceInstance: 'Allowed',
      throwaway: 'Allowed',
      throwawayUntagged: 'ExplicitlyDenied',
      throwawayHugeClass: 'ExplicitlyDenied',
      targetNamedLikeProduction: 'ImplicitlyDenied',
      unconfiguredSource: 'ImplicitlyDenied',
      readWindow: 'Allowed',
      readAutomatedBackups: 'Allowed',
      modifyProduction: 'ImplicitlyDenied',
    });
  });

  it('restores from the replicated automated backups in the copy region into its subnet group, and manages only tagged throwaways there', async () => {
    // Prepare
    const drill = role('DrillFunction');
    const replica = rds('auto-backup', 'ab-abcdefghijklmnopqrstuvwxyz1234', COPY);

    // Act
    const decisions = {
      replica: await run(drill, 'rds:RestoreDBInstanceToPointInTime', replica, requestTag),
      copyThrowaway: await run(drill, 'rds:RestoreDBInstanceToPointInTime', throwaway(COPY), tagged),
      copyThrowawayUntagged: await run(drill, 'rds:RestoreDBInstanceToPointInTime', throwaway(COPY), { 'rds:DatabaseClass': 'db.t4g.micro' }),
      copySubnetGroup: await run(drill, 'rds:RestoreDBInstanceToPointInTime', rds('subgrp', 'lifeboat-drills-dr', COPY), requestTag),
      otherCopySubnetGroup: await run(drill, 'rds:RestoreDBInstanceToPointInTime', rds('subgrp', 'default', COPY), requestTag),
      passwordOnTagged: await run(drill, 'rds:ModifyDBInstance', throwaway(COPY), { 'aws:ResourceTag/lifeboat:drill': DRILL_ID }),
      deleteUntagged: await run(drill, 'rds:DeleteDBInstance', throwaway(COPY)),
      replicaInAnotherRegion: await run(drill, 'rds:RestoreDBInstanceToPointInTime', rds('auto-backup', 'ab-abcdefghijklmnopqrstuvwxyz1234', 'us-west-2'), requestTag),
    };

    // Assess
    expect(decisions).toEqual({
      replica: 'Allowed',
      copyThrowaway: 'Allowed',
      copyThrowawayUntagged: 'ExplicitlyDenied',
      copySubnetGroup: 'Allowed',
      otherCopySubnetGroup: 'ImplicitlyDenied',
      passwordOnTagged: 'Allowed',
      deleteUntagged: 'ImplicitlyDenied',
      replicaInAnotherRegion: 'ImplicitlyDenied',
    });
  });

  it('lets the janitor delete a tagged throwaway a copy-region drill left, and no production instance there', async () => {
    // Prepare
    const janitor = role('JanitorFunction');
    const drillTag = { 'aws:ResourceTag/lifeboat:drill': DRILL_ID };

    // Act
    const decisions = {
      taggedInCopyRegion: await run(janitor, 'rds:DeleteDBInstance', throwaway(COPY), drillTag),
      untaggedInCopyRegion: await run(janitor, 'rds:DeleteDBInstance', throwaway(COPY)),
      productionInCopyRegion: await run(janitor, 'rds:DeleteDBInstance', rds('db', 'orders-prod-replica', COPY), drillTag),
    };

    // Assess
    expect(decisions).toEqual({ taggedInCopyRegion: 'Allowed', untaggedInCopyRegion: 'ImplicitlyDenied', productionInCopyRegion: 'ImplicitlyDenied' });
  });

  it('gives the drill and janitor functions the copy region, and the drill function its placement there', () => {
    // Prepare
    const functions = Object.values(synth.template.toJSON().Resources as Record<string, { Type: string; Properties?: { Description?: string; Environment?: { Variables?: Record<string, unknown> } } }>).filter(
      (r) => r.Type === 'AWS::Lambda::Function',
    );
    const envOf = (what: RegExp) => functions.find((f) => what.test(String(f.Properties?.Description)))?.Properties?.Environment?.Variables ?? {};

    // Act
    const drill = envOf(/restore drill steps/);
    const janitor = envOf(/delete expired restore drill resources/);

    // Assess
    expect(drill.COPY_REGION).toBe(COPY);
    expect(JSON.parse(String(drill.DRILL_COPY_NETWORK))).toEqual({ subnetGroupName: 'lifeboat-drills-dr', securityGroupIds: ['sg-0aaa1111bbbb2222c'] });
    expect(janitor.COPY_REGION).toBe(COPY);
  });
});
