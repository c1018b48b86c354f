import { DescribeDBClustersCommand, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import { DatabaseConnectionError } from '../errors.ts';

/**
 * The endpoint of an RDS instance or Aurora cluster, for secrets that hold no
 * host: RDS-managed master user secrets (ManageMasterUserPassword) contain only
 * `username` and `password`. The CDK app grants `rds:DescribeDBInstances` or
 * `rds:DescribeDBClusters` on exactly that instance or cluster.
 */
export type RdsReference = { readonly instanceIdentifier: string } | { readonly clusterIdentifier: string };

export interface RdsEndpoint {
  readonly host: string;
  readonly port: number;
}

export async function lookupRdsEndpoint(rds: Pick<RDSClient, 'send'>, databaseId: string, ref: RdsReference): Promise<RdsEndpoint> {
  const what = 'instanceIdentifier' in ref ? `RDS instance "${ref.instanceIdentifier}"` : `Aurora cluster "${ref.clusterIdentifier}"`;
  let endpoint: { Address?: string; Port?: number } | undefined;
  try {
    if ('instanceIdentifier' in ref) {
      const out = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: ref.instanceIdentifier }));
      endpoint = out.DBInstances?.[0]?.Endpoint;
    } else {
      const out = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: ref.clusterIdentifier }));
      const cluster = out.DBClusters?.[0];
      endpoint = cluster?.Endpoint ? { Address: cluster.Endpoint, Port: cluster.Port } : undefined;
    }
  } catch (error) {
    throw new DatabaseConnectionError(`Could not look up the endpoint of ${what} for database "${databaseId}": ${(error as Error).name}: ${(error as Error).message}`, {
      cause: error,
      nextStep: 'set connection.host in the config, or check the rds identifier and that the runner may describe it.',
    });
  }
  if (!endpoint?.Address) {
    throw new DatabaseConnectionError(`${what} of database "${databaseId}" has no endpoint yet (is it still being created?).`, {
      nextStep: 'wait until it is available, or set connection.host in the config.',
    });
  }
  return { host: endpoint.Address, port: endpoint.Port ?? 5432 };
}
