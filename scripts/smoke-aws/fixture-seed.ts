/**
 * The smoke fixture's seeding function: a CloudFormation custom resource
 * (through the CDK Provider framework) that runs inside the VPC, reads the RDS
 * master secret and writes the sample data. The instance has no public access,
 * so this is how data gets in without opening it to the operator's machine.
 * Not part of lifeboat: only the smoke fixture stack deploys it.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { seedSampleData } from './sample-data.ts';

const secrets = new SecretsManagerClient({});

interface CustomResourceEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  PhysicalResourceId?: string;
  ResourceProperties: { SecretArn: string; DatabaseName: string };
}

export async function handler(event: CustomResourceEvent): Promise<{ PhysicalResourceId: string; Data?: Record<string, string> }> {
  const physicalId = event.PhysicalResourceId ?? `smoke-sample-data-${event.ResourceProperties.DatabaseName}`;
  if (event.RequestType === 'Delete') return { PhysicalResourceId: physicalId };
  const secret = await secrets.send(new GetSecretValueCommand({ SecretId: event.ResourceProperties.SecretArn }));
  const value = JSON.parse(secret.SecretString ?? '{}') as { host: string; port: number; username: string; password: string };
  const client = new pg.Client({
    host: value.host,
    port: Number(value.port),
    user: value.username,
    password: value.password,
    database: event.ResourceProperties.DatabaseName,
    // The RDS CA bundle of the Lambda runtime (NODE_EXTRA_CA_CERTS=/var/runtime/ca-cert.pem); host name checked.
    ssl: { rejectUnauthorized: true, servername: value.host },
    connectionTimeoutMillis: 15_000,
  });
  await client.connect();
  try {
    const counts = await seedSampleData(client);
    return { PhysicalResourceId: physicalId, Data: { Rows: JSON.stringify(counts) } };
  } finally {
    await client.end();
  }
}
