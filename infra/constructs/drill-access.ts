import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { DRILL_NAME_PREFIX, DRILL_TAG } from '../../functions/lib/drill/provisioner.ts';
import { acknowledgeWildcardResources } from '../nag.ts';

/**
 * What the drill steps and the janitor need on RDS, Secrets Manager and KMS
 * (functions/lib/drill). Every throwaway is named `lifeboat-drill-<drill id>`
 * and its credentials live in the secret `lifeboat/drill/<drill id>`, so the
 * create, modify and delete rights stop at those names.
 */

/** `lifeboat/drill/*`: the throwaways' credentials (functions/lib/drill/credentials.ts). */
export const DRILL_SECRET_PATTERN = 'lifeboat/drill/*';

function rdsArn(stack: Stack, resource: string, name: string, region?: string): string {
  return stack.formatArn({ service: 'rds', resource, resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME, ...(region ? { region } : {}) });
}

function drillArns(stack: Stack, region?: string) {
  const name = `${DRILL_NAME_PREFIX}*`;
  return {
    instances: rdsArn(stack, 'db', name, region),
    clusters: rdsArn(stack, 'cluster', name, region),
    subnetGroups: rdsArn(stack, 'subgrp', name, region),
    snapshots: rdsArn(stack, 'snapshot', name, region),
    secrets: stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: DRILL_SECRET_PATTERN, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
  };
}

const DRILL_NAMES_REASON =
  'Drill resources are named per drill (lifeboat-drill-<drill id>, secret lifeboat/drill/<drill id>); the role may create, change and delete only those.';

export interface DrillProvisioningProps {
  /** An existing DB subnet group the throwaways use (`drills.subnetGroupName`). */
  readonly subnetGroupName?: string;
  /** The instance classes a throwaway may have (`drills.instanceClass`, `drills.auroraInstanceClass`). @default any */
  readonly instanceClasses?: readonly string[];
  /**
   * PITR drills: the RDS instances and Aurora clusters whose automated backups a
   * drill may restore to a moment (plans with `pitr`), and for drills from the
   * copy region, that region and the subnet group there (`drills.copyRegionNetwork`).
   * @default - no point-in-time restores
   */
  readonly pointInTime?: {
    readonly instances: readonly string[];
    readonly clusters: readonly string[];
    readonly copyRegion?: string;
    readonly copyRegionSubnetGroupName?: string;
  };
}

/** A drill resource carries the drill tag: the rights to change or delete stop at resources lifeboat's drills made. */
const taggedAsDrill = { Null: { [`aws:ResourceTag/${DRILL_TAG.drill}`]: 'false' } };

/**
 * The drill steps that provision and tear down (select, provision, poll,
 * credentials, teardown): create a throwaway from a lifeboat snapshot or empty
 * for a dump, tag it, set its password, delete it and its subnet group; keep
 * its credentials in a drill secret; let RDS use the snapshot's KMS key.
 */
export function grantDrillProvisioning(role: iam.Role, props: DrillProvisioningProps = {}): void {
  const stack = Stack.of(role);
  const drill = drillArns(stack);
  const lifeboatSnapshots = [rdsArn(stack, 'snapshot', 'lifeboat-*'), rdsArn(stack, 'cluster-snapshot', 'lifeboat-*')];
  // Creating or restoring an instance is authorized on every resource it uses:
  // the new instance or cluster (drill names only), the source snapshot
  // (lifeboat's), the subnet group, and the (default) parameter and option groups.
  const groups = [rdsArn(stack, 'og', '*'), rdsArn(stack, 'pg', '*'), rdsArn(stack, 'cluster-pg', '*')];
  const subnetGroups = [drill.subnetGroups, ...(props.subnetGroupName ? [rdsArn(stack, 'subgrp', props.subnetGroupName)] : [])];
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'CreateDrillThrowaways',
      actions: ['rds:CreateDBInstance', 'rds:RestoreDBInstanceFromDBSnapshot', 'rds:RestoreDBClusterFromSnapshot', 'rds:CreateDBSubnetGroup', 'rds:AddTagsToResource'],
      resources: [drill.instances, drill.clusters, ...subnetGroups, ...lifeboatSnapshots, ...groups],
    }),
  );
  // Every throwaway is created with the drill tag, and only in the configured classes.
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'ThrowawaysCarryTheDrillTag',
      effect: iam.Effect.DENY,
      actions: ['rds:CreateDBInstance', 'rds:RestoreDBInstanceFromDBSnapshot', 'rds:RestoreDBClusterFromSnapshot', 'rds:CreateDBSubnetGroup'],
      resources: [drill.instances, drill.clusters, drill.subnetGroups],
      conditions: { Null: { [`aws:RequestTag/${DRILL_TAG.drill}`]: 'true' } },
    }),
  );
  if (props.instanceClasses?.length) {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ThrowawaysOnlyInConfiguredClasses',
        effect: iam.Effect.DENY,
        actions: ['rds:CreateDBInstance', 'rds:RestoreDBInstanceFromDBSnapshot', 'rds:RestoreDBInstanceToPointInTime'],
        resources: [drill.instances, ...(props.pointInTime?.copyRegion ? [drillArns(stack, props.pointInTime.copyRegion).instances] : [])],
        conditions: { StringNotEquals: { 'rds:DatabaseClass': [...props.instanceClasses] } },
      }),
    );
  }
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'DescribeDrillThrowaways', actions: ['rds:DescribeDBInstances', 'rds:DescribeDBClusters'], resources: [drill.instances, drill.clusters] }));
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'ManageDrillThrowaways',
      actions: ['rds:ModifyDBInstance', 'rds:ModifyDBCluster', 'rds:DeleteDBInstance', 'rds:DeleteDBCluster', 'rds:DeleteDBSubnetGroup'],
      resources: [drill.instances, drill.clusters, drill.subnetGroups],
      conditions: taggedAsDrill,
    }),
  );
  // Snapshot selection lists the manual snapshots of a database (no resource-level permission for a listing).
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['rds:DescribeDBSnapshots', 'rds:DescribeDBClusterSnapshots'], resources: ['*'] }));
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'DrillSecrets',
      actions: ['secretsmanager:CreateSecret', 'secretsmanager:PutSecretValue', 'secretsmanager:DescribeSecret', 'secretsmanager:DeleteSecret', 'secretsmanager:TagResource'],
      resources: [drill.secrets],
    }),
  );
  // RDS uses the caller's KMS rights to restore an encrypted snapshot or create an encrypted instance.
  const keys = stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:DescribeKey'], resources: [keys] }));
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['kms:CreateGrant'],
      resources: [keys],
      conditions: { Bool: { 'kms:GrantIsForAWSResource': 'true' }, StringEquals: { 'kms:ViaService': `rds.${stack.region}.amazonaws.com` } },
    }),
  );
  if (props.pointInTime) grantPointInTimeDrills(role, props.pointInTime, { subnetGroups, groups });
  acknowledgeWildcardResources(role, [drill.instances, drill.clusters, drill.subnetGroups, drill.secrets], DRILL_NAMES_REASON);
  acknowledgeWildcardResources(
    role,
    lifeboatSnapshots,
    'A drill restores the lifeboat snapshot it selected; snapshot identifiers are generated per backup under the lifeboat- prefix.',
  );
  acknowledgeWildcardResources(
    role,
    groups,
    'CreateDBInstance and the restores are authorized on the (default) option and parameter groups they use; the new instance itself is limited to lifeboat-drill-* names.',
  );
  acknowledgeWildcardResources(
    role,
    [keys],
    "The KMS key of a snapshot (the database's storage key) is only known at run time; DescribeKey reads metadata and CreateGrant is limited to grants for RDS (kms:GrantIsForAWSResource, kms:ViaService rds).",
  );
}

const PITR_RESTORES = ['rds:RestoreDBInstanceToPointInTime', 'rds:RestoreDBClusterToPointInTime'];

/**
 * Point-in-time restores into drill throwaways: authorized on the source (the
 * configured instances and clusters only, or in the copy region their
 * replicated automated backups), the new instance or cluster (drill names
 * only, with the drill tag), its subnet group and the default groups. Reading
 * the window needs Describe on the sources; a drill from the copy region
 * manages, and the janitor deletes, its throwaway there.
 */
function grantPointInTimeDrills(role: iam.Role, pitr: NonNullable<DrillProvisioningProps['pointInTime']>, source: { subnetGroups: string[]; groups: string[] }): void {
  const stack = Stack.of(role);
  const drill = drillArns(stack);
  const sources = [...pitr.instances.map((id) => rdsArn(stack, 'db', id)), ...pitr.clusters.map((id) => rdsArn(stack, 'cluster', id))];
  const resources = [...sources, drill.instances, drill.clusters, ...source.subnetGroups, ...source.groups];
  const targets = [drill.instances, drill.clusters];
  if (pitr.copyRegion) {
    const copy = drillArns(stack, pitr.copyRegion);
    // The replicated automated backups' ARN (auto-backup:ab-...) is only known at run time.
    resources.push(rdsArn(stack, 'auto-backup', '*', pitr.copyRegion), copy.instances, rdsArn(stack, 'og', '*', pitr.copyRegion), rdsArn(stack, 'pg', '*', pitr.copyRegion));
    if (pitr.copyRegionSubnetGroupName) resources.push(rdsArn(stack, 'subgrp', pitr.copyRegionSubnetGroupName, pitr.copyRegion));
    targets.push(copy.instances);
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'DescribeCopyRegionDrillThrowaways', actions: ['rds:DescribeDBInstances'], resources: [copy.instances] }));
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ManageCopyRegionDrillThrowaways',
        actions: ['rds:ModifyDBInstance', 'rds:DeleteDBInstance', 'rds:AddTagsToResource'],
        resources: [copy.instances],
        conditions: taggedAsDrill,
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['kms:CreateGrant'],
        resources: [stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*', region: pitr.copyRegion })],
        conditions: { Bool: { 'kms:GrantIsForAWSResource': 'true' }, StringEquals: { 'kms:ViaService': `rds.${pitr.copyRegion}.amazonaws.com` } },
      }),
    );
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:DescribeKey'], resources: [stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*', region: pitr.copyRegion })] }));
  }
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'RestoreDrillsToPointInTime', actions: [...PITR_RESTORES, 'rds:AddTagsToResource'], resources }));
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'PointInTimeThrowawaysCarryTheDrillTag', effect: iam.Effect.DENY, actions: PITR_RESTORES, resources: targets, conditions: { Null: { [`aws:RequestTag/${DRILL_TAG.drill}`]: 'true' } } }),
  );
  if (sources.length) role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadPointInTimeWindows', actions: ['rds:DescribeDBInstances', 'rds:DescribeDBClusters'], resources: sources }));
  // DescribeDBInstanceAutomatedBackups lists (no resource-level permission for a listing).
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['rds:DescribeDBInstanceAutomatedBackups'], resources: ['*'] }));
  acknowledgeWildcardResources(role, resources, 'PITR drills restore the configured instances and clusters only, into lifeboat-drill-* throwaways; the replicated automated backups and the default groups are only known by ARN at run time.');
}

/** Read a drill's credentials (restore and verify connect to the throwaway with them). */
export function grantReadDrillSecrets(role: iam.Role): void {
  const { secrets } = drillArns(Stack.of(role));
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [secrets] }));
  acknowledgeWildcardResources(role, [secrets], DRILL_NAMES_REASON);
}

/**
 * The janitor: list RDS instances, clusters, snapshots and subnet groups and
 * drill secrets (listings have no resource-level permissions), read the tags of
 * drill subnet groups, and delete drill resources only.
 */
export function grantJanitor(role: iam.Role, options: { copyRegion?: string } = {}): void {
  const stack = Stack.of(role);
  const drill = drillArns(stack);
  // PITR drills from the copy region leave throwaways there if anything goes wrong.
  const copy = options.copyRegion ? drillArns(stack, options.copyRegion) : undefined;
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['rds:DescribeDBInstances', 'rds:DescribeDBClusters', 'rds:DescribeDBSnapshots', 'rds:DescribeDBSubnetGroups', 'secretsmanager:ListSecrets'],
      resources: ['*'],
    }),
  );
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['rds:ListTagsForResource'], resources: [drill.subnetGroups] }));
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'DeleteExpiredDrillResources',
      actions: ['rds:DeleteDBInstance', 'rds:DeleteDBCluster', 'rds:DeleteDBSubnetGroup', 'rds:DeleteDBSnapshot'],
      resources: [drill.instances, drill.clusters, drill.subnetGroups, drill.snapshots, ...(copy ? [copy.instances] : [])],
      // Named like a drill is not enough: the resource must carry the drill tag a drill gave it.
      conditions: taggedAsDrill,
    }),
  );
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['secretsmanager:DeleteSecret'], resources: [drill.secrets] }));
  acknowledgeWildcardResources(role, [drill.instances, drill.clusters, drill.subnetGroups, drill.snapshots, drill.secrets, ...(copy ? [copy.instances] : [])], DRILL_NAMES_REASON);
}

/** PostgreSQL's port: a throwaway created for a dump drill listens on it (a restored snapshot keeps its source's port). */
export const POSTGRES_PORT = 5432;

export interface DrillSecurityGroupProps {
  /** The source VPC (source.network.vpcId), where the throwaways' subnets are. */
  readonly vpc: ec2.IVpc;
  /** The runners' security groups (source.network.securityGroupIds): the only sources admitted. */
  readonly runnerSecurityGroupIds: readonly string[];
  /** Ports the throwaways listen on. @default [POSTGRES_PORT] */
  readonly ports?: readonly number[];
}

/**
 * The security group every drill throwaway joins: its only ingress is
 * PostgreSQL from the runners' security groups (the drill restore and verify
 * steps run there), and it has no egress (a database answers, it never calls out).
 * RDS attaches it with its own service-linked role, so the drill role needs no
 * EC2 permission for it.
 */
export function createDrillSecurityGroup(scope: Construct, id: string, props: DrillSecurityGroupProps): ec2.SecurityGroup {
  const group = new ec2.SecurityGroup(scope, id, {
    vpc: props.vpc,
    description: 'lifeboat: restore drill throwaways, PostgreSQL from the lifeboat runners only',
    allowAllOutbound: false,
  });
  const ports = [...new Set(props.ports ?? [POSTGRES_PORT])].sort((a, b) => a - b);
  for (const sg of props.runnerSecurityGroupIds) {
    for (const port of ports) group.addIngressRule(ec2.Peer.securityGroupId(sg), ec2.Port.tcp(port), `PostgreSQL from lifeboat runners in ${sg}`);
  }
  return group;
}
