import { Fn, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { NetworkConfig } from '../../functions/lib/config/schema.ts';

/** AWS services the runners call, by VPC endpoint service suffix (`com.amazonaws.<region>.<suffix>`). */
export const INTERFACE_ENDPOINT_SERVICES = {
  Kms: 'kms',
  SecretsManager: 'secretsmanager',
  Sns: 'sns',
  Sts: 'sts',
  Rds: 'rds',
  StepFunctions: 'states',
  CloudWatch: 'monitoring',
  Logs: 'logs',
} as const;

/** What a Fargate task in a private subnet also needs: pulling its image from ECR. */
export const FARGATE_ENDPOINT_SERVICES = {
  EcrApi: 'ecr.api',
  EcrDocker: 'ecr.dkr',
} as const;

export interface RunnerNetworkProps {
  /** The source's network section of the config. */
  readonly network: NetworkConfig;
  /** Add the ECR endpoints a Fargate task needs to pull its image. @default false */
  readonly fargate?: boolean;
}

/** The VPC placement a ProjectFunction or Fargate task takes. */
export interface RunnerPlacement {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.ISubnet[];
  readonly securityGroups: ec2.ISecurityGroup[];
}

/**
 * The configured VPC, subnets and security groups of the runners, imported by
 * id (no lookups, so `cdk synth` stays offline), and, with egress
 * `vpc-endpoints`, the endpoints that let them reach AWS without a NAT: an S3
 * gateway endpoint on the given route tables and interface endpoints with
 * private DNS, reachable on 443 only from the runners' security groups.
 *
 * Interface endpoints take one subnet per availability zone: list subnets in
 * distinct zones (docs/deployment.md).
 */
export class RunnerNetwork extends Construct implements RunnerPlacement {
  public readonly vpc: ec2.IVpc;
  public readonly subnets: ec2.ISubnet[];
  public readonly securityGroups: ec2.ISecurityGroup[];
  public readonly egress: NetworkConfig['egress'];
  /** Guards the interface endpoints (ingress 443 from the runners only). Absent with user-managed egress. */
  public readonly endpointSecurityGroup?: ec2.SecurityGroup;
  /** Endpoint name → the endpoint (empty with user-managed egress). */
  public readonly endpoints = new Map<string, ec2.CfnVPCEndpoint>();

  constructor(scope: Construct, id: string, props: RunnerNetworkProps) {
    super(scope, id);
    const { network } = props;
    const region = Stack.of(this).region;
    this.egress = network.egress;
    // Subnets are selected explicitly by id; the VPC's zone list is never used, so it is not looked up.
    this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', { vpcId: network.vpcId, availabilityZones: Fn.getAzs() });
    this.subnets = network.subnetIds.map((subnetId) => ec2.Subnet.fromSubnetId(this, `Subnet-${subnetId}`, subnetId));
    this.securityGroups = network.securityGroupIds.map((sg) =>
      ec2.SecurityGroup.fromSecurityGroupId(this, `SecurityGroup-${sg}`, sg, { mutable: false }),
    );
    if (network.egress !== 'vpc-endpoints') return;

    this.endpoints.set(
      'S3',
      new ec2.CfnVPCEndpoint(this, 'S3Endpoint', {
        vpcId: network.vpcId,
        serviceName: `com.amazonaws.${region}.s3`,
        vpcEndpointType: 'Gateway',
        routeTableIds: [...network.routeTableIds],
      }),
    );
    const endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc: this.vpc,
      description: 'lifeboat: interface VPC endpoints, HTTPS from the lifeboat runners only',
      allowAllOutbound: false,
    });
    for (const sg of network.securityGroupIds) {
      endpointSecurityGroup.addIngressRule(ec2.Peer.securityGroupId(sg), ec2.Port.tcp(443), `HTTPS from lifeboat runners in ${sg}`);
    }
    this.endpointSecurityGroup = endpointSecurityGroup;
    const services: Record<string, string> = { ...INTERFACE_ENDPOINT_SERVICES, ...(props.fargate ? FARGATE_ENDPOINT_SERVICES : {}) };
    for (const [name, suffix] of Object.entries(services)) {
      this.endpoints.set(
        name,
        new ec2.CfnVPCEndpoint(this, `${name}Endpoint`, {
          vpcId: network.vpcId,
          serviceName: `com.amazonaws.${region}.${suffix}`,
          vpcEndpointType: 'Interface',
          privateDnsEnabled: true,
          subnetIds: [...network.subnetIds],
          securityGroupIds: [endpointSecurityGroup.securityGroupId],
        }),
      );
    }
  }

  /**
   * What a function or task in the VPC needs to attach its network interfaces
   * (the actions of AWSLambdaVPCAccessExecutionRole, without its log grants).
   * EC2 supports no resource-level permissions for the Describe actions, and
   * Lambda creates the interfaces before the function exists, so "*".
   */
  public static grantNetworkInterfaces(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: [
        'ec2:CreateNetworkInterface',
        'ec2:DescribeNetworkInterfaces',
        'ec2:DescribeSubnets',
        'ec2:DeleteNetworkInterface',
        'ec2:AssignPrivateIpAddresses',
        'ec2:UnassignPrivateIpAddresses',
      ],
      resourceArns: ['*'],
    });
  }
}
