import { App } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/lib/errors.ts';
import { SourceStack } from '../../infra/source-stack.ts';
import { cdkJsonContext, exampleConfigJson, logicalIdOf, synthApp, type Synthesized } from './helpers/app.ts';
import { PRODUCTION, productionConfigJson } from './helpers/configs.ts';
import { findGrants, type CfnTemplateJson } from './helpers/iam-walker.ts';

// Drill networking (issue 10, defect 6): a deployed drill provisions an RDS
// throwaway that the drill restore function (in the runners' VPC) must reach.
// Without a DB subnet group RDS picks the account's default one, which the
// drill role may not use; without a security group admitting the runners the
// verification times out. The stack creates that group; the config must name
// the subnets.

function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the action to throw');
}

/** The issues a source stack reports for a config, before anything is synthesized. */
function synthIssues(config: unknown): string[] {
  const error = thrownBy(() => new SourceStack(new App({ context: cdkJsonContext() }), 'Source', { config: config as never }));
  expect(error).toBeInstanceOf(ConfigError);
  return [...(error as ConfigError).issues];
}

describe('drill networking at synth time', () => {
  it('refuses scheduled drills without source.network: the drill functions could not reach a private throwaway', () => {
    // Prepare
    const config = exampleConfigJson();
    config.drills = { subnetGroupName: 'isolated-drills' };

    // Act
    const issues = synthIssues(config);

    // Assess
    expect(issues).toEqual([expect.stringMatching(/^source\.network: deployed drills restore into RDS instances in private subnets.*set source\.network \(vpcId, subnetIds, securityGroupIds\) for source "primary"/)]);
  });

  it('refuses scheduled drills without a subnet group or subnets, naming both ways to fix it', () => {
    // Prepare
    const config = productionConfigJson() as Record<string, unknown> & { drills: Record<string, unknown> };
    delete config.drills.subnetIds;

    // Act
    const issues = synthIssues(config);

    // Assess
    expect(issues).toEqual([
      expect.stringMatching(/^drills\.subnetGroupName: deployed drills create RDS throwaways.*default DB subnet group.*set drills\.subnetGroupName .* or drills\.subnetIds/),
    ]);
  });
});

describe('drill networking in the deployed stack', () => {
  let synthesized: Synthesized;
  let template: Template;
  let json: CfnTemplateJson;
  beforeAll(() => {
    // cdk-nag on: the drill security group must pass it like everything else.
    synthesized = synthApp({ config: productionConfigJson(), nag: true });
    template = synthesized.template;
    json = template.toJSON() as CfnTemplateJson;
  });

  const drillGroup = () => synthesized.stack.drillSecurityGroup!;

  it('creates a drill security group in the source VPC whose only ingress is PostgreSQL from the runners, and no egress', () => {
    // Act
    const group = json.Resources[logicalIdOf(drillGroup())]!;

    // Assess
    expect(group.Type).toBe('AWS::EC2::SecurityGroup');
    expect(group.Properties).toMatchObject({ VpcId: PRODUCTION.vpcId });
    expect(group.Properties!.SecurityGroupIngress).toEqual(
      PRODUCTION.securityGroupIds.map((sg) => ({ IpProtocol: 'tcp', FromPort: 5432, ToPort: 5432, SourceSecurityGroupId: sg, Description: expect.stringContaining(sg) })),
    );
    // CDK's placeholder for "no egress": a rule that matches no traffic.
    expect(group.Properties!.SecurityGroupEgress).toEqual([expect.objectContaining({ CidrIp: '255.255.255.255/32', IpProtocol: 'icmp' })]);
    const otherRules = Object.values(json.Resources).filter((r) => r.Type === 'AWS::EC2::SecurityGroupIngress' && JSON.stringify(r.Properties).includes(logicalIdOf(drillGroup())));
    expect(otherRules).toEqual([]);
  });

  it('gives the group to the drill steps that provision, so every throwaway admits the runners', () => {
    // Act
    const env = (json.Resources[logicalIdOf(synthesized.stack.drillFunction.function)]!.Properties!.Environment as { Variables: Record<string, unknown> }).Variables;

    // Assess
    expect(env.DRILL_SECURITY_GROUP_IDS).toEqual({ 'Fn::GetAtt': [logicalIdOf(drillGroup()), 'GroupId'] });
  });

  it('gives the drill function the drills config\'s placement, which every request must match (a hand-made one is refused)', () => {
    // Act
    const env = (json.Resources[logicalIdOf(synthesized.stack.drillFunction.function)]!.Properties!.Environment as { Variables: Record<string, unknown> }).Variables;
    const drills = synthesized.stack.config.drills!;

    // Assess
    expect(JSON.parse(env.DRILL_NETWORK as string)).toEqual({
      ...(drills.subnetGroupName ? { subnetGroupName: drills.subnetGroupName } : {}),
      ...(drills.subnetIds ? { subnetIds: drills.subnetIds } : {}),
      securityGroupIds: drills.securityGroupIds,
    });
    expect(drills.subnetGroupName ?? drills.subnetIds).toBeDefined();
  });

  it('runs the restore and verify steps, which connect to the throwaway, in the runners\' security groups the group admits', () => {
    // Act
    const vpcConfig = json.Resources[logicalIdOf(synthesized.stack.drillRestoreFunction.function)]!.Properties!.VpcConfig as { SecurityGroupIds: unknown[]; SubnetIds: unknown[] };

    // Assess
    expect(vpcConfig.SecurityGroupIds).toEqual([...PRODUCTION.securityGroupIds]);
    expect(vpcConfig.SubnetIds).toEqual([...PRODUCTION.subnetIds]);
  });

  it('lets the drill role create throwaways only in the drill\'s subnet groups, never the default or any other', () => {
    // Prepare
    const role = logicalIdOf(synthesized.stack.drillFunction.role);
    const creates = ['rds:CreateDBInstance', 'rds:RestoreDBInstanceFromDBSnapshot', 'rds:RestoreDBClusterFromSnapshot', 'rds:CreateDBSubnetGroup'];

    // Act
    const subnetGroups = findGrants(json, role, { actions: creates })
      .flatMap((g) => [g.statement.Resource].flat() as string[])
      .filter((r) => r.includes(':subgrp:'));

    // Assess: drills.subnetIds, so a group per drill named lifeboat-drill-<id>.
    expect(new Set(subnetGroups)).toEqual(new Set(['arn:aws:rds:eu-west-1:111111111111:subgrp:lifeboat-drill-*']));
  });
});
