import { existsSync, mkdtempSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import pg from 'pg';
import { CreateDBInstanceCommand, DescribeDBInstancesCommand } from '@aws-sdk/client-rds';
import { DescribeSecretCommand, ListSecretsCommand } from '@aws-sdk/client-secrets-manager';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { runDumpBackup } from '../../functions/lib/backup/dump-pipeline.ts';
import { databaseSchema } from '../../functions/lib/config/schema.ts';
import { drillSecretName } from '../../functions/lib/drill/credentials.ts';
import type { DrillReport } from '../../functions/lib/drill/report.ts';
import { createLocalCertificateAuthority, drillPostgres, type DrillPostgres, type LocalCertificateAuthority } from '../../local/drill-postgres.ts';
import { rdsRequest } from '../../local/moto-rds-compat.ts';
import { startMotoCompatProxy, type MotoCompatProxy } from '../../local/nightly-environment.ts';
import { startPitrSource, type PitrSource } from '../../local/pitr-postgres.ts';
import { waitUntilAvailable, type InstanceInfo } from '../../local/strict-rds.ts';
import { createRdsClient } from '../../functions/lib/aws/clients.ts';
import { testClients, uniqueName } from '../harness/aws.ts';

/** Shared by the drill tests: alerts over SNS→SQS, backups and teardown proofs. */
export { capturingOutput } from '../harness/capture.ts';

export interface ReceivedAlert {
  subject: string;
  message: string;
  details: Record<string, unknown> & { kind: string; databaseId?: string; failure: string; details: Record<string, unknown> };
}

/** An SNS topic with an SQS subscription, as an on-call inbox. */
export async function alertInbox() {
  const { sns } = testClients();
  // The queue URL names moto's own port; keep every call on the configured endpoint (a test's proxy, if any).
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  const topicArn = (await sns.send(new CreateTopicCommand({ Name: uniqueName('lifeboat-drill-alerts') }))).TopicArn!;
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('drill-oncall') }))).QueueUrl!;
  const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn }));
  return {
    sns,
    topicArn,
    /** Drains the queue: every alert published so far. */
    async receiveAll(): Promise<ReceivedAlert[]> {
      const out: ReceivedAlert[] = [];
      for (;;) {
        const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: out.length ? 0 : 1 }));
        if (!got.Messages?.length) return out;
        for (const m of got.Messages) {
          const envelope = JSON.parse(m.Body!) as { Subject: string; Message: string };
          out.push({ subject: envelope.Subject, message: envelope.Message, details: JSON.parse(envelope.Message.split('--- details (JSON) ---')[1]!) });
        }
      }
    },
  };
}

/** Dumps a database of the suite's cluster as `databaseId` into `bucket` (credentials via a moto secret). */
export async function backUp(databaseId: string, database: string, target: { bucket: string; kmsKeyArn: string; secretArn: string; prefix?: string }, backupId?: string) {
  const clients = testClients();
  const db = databaseSchema.parse({ id: databaseId, connection: { database, secretArn: target.secretArn, sslMode: 'disable' } });
  return runDumpBackup(
    { databaseId, planId: 'nightly', connection: db.connection, settings: db.dump, target: { bucket: target.bucket, prefix: target.prefix ?? 'backups/', kmsKeyArn: target.kmsKeyArn }, backupId },
    { s3: clients.s3, kms: clients.keyringKms, secrets: clients.secrets },
  );
}

/** True once nothing listens on the port any more. */
export async function portClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

export async function secretExists(drillId: string): Promise<boolean> {
  try {
    await testClients().secrets.send(new DescribeSecretCommand({ SecretId: drillSecretName(drillId) }));
    return true;
  } catch (error) {
    if ((error as Error).name === 'ResourceNotFoundException') return false;
    throw error;
  }
}

/** Proof that a local drill left nothing behind: port closed, data directory and secret gone. */
export async function teardownProven(report: DrillReport): Promise<{ portClosed: boolean; dataDirGone: boolean; secretGone: boolean; status: string }> {
  return {
    portClosed: report.instance?.endpoint ? await portClosed(report.instance.endpoint.port) : true,
    dataDirGone: report.instance?.dataDir ? !existsSync(report.instance.dataDir) : true,
    secretGone: !(await secretExists(report.drillId)),
    status: report.teardown.status,
  };
}

export function tempRegistry(): string {
  return mkdtempSync(join(tmpdir(), 'lifeboat-drill-registry-'));
}

/** One EC2 query API call to moto: the values of the first group of `pattern` in its answer. */
async function ec2Query(action: string, pattern: RegExp, params: Record<string, string> = {}): Promise<string[]> {
  const response = await fetch(inject('motoEndpoint'), {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'AWS4-HMAC-SHA256 Credential=testing/20240101/eu-west-1/ec2/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: new URLSearchParams({ Action: action, Version: '2016-11-15', ...params }).toString(),
  });
  return [...(await response.text()).matchAll(pattern)].map((m) => m[1]!);
}

/** A new security group in a VPC of moto's (as a stack would create one): its id. */
export async function createSecurityGroup(vpcId: string, name: string): Promise<string> {
  const [id] = await ec2Query('CreateSecurityGroup', /<groupId>([^<]+)</g, { GroupName: name, GroupDescription: name, VpcId: vpcId });
  if (!id) throw new Error(`moto created no security group ${name}`);
  return id;
}

/** moto's default VPC: its subnets and security group, through the EC2 query API. */
export async function defaultNetwork(): Promise<{ vpcId: string; subnets: string[]; securityGroup: string }> {
  const query = ec2Query;
  const subnets = await query('DescribeSubnets', /<subnetId>([^<]+)</g);
  const groups = await query('DescribeSecurityGroups', /<groupId>([^<]+)</g);
  const [vpcId] = await query('DescribeVpcs', /<vpcId>([^<]+)</g);
  return { vpcId: vpcId!, subnets: subnets.slice(0, 2), securityGroup: groups[0]! };
}

/**
 * Strict RDS in front of moto with real PostgreSQL servers behind the instances `backs` picks (a local CA signs
 * their certificates), pointed at by AWS_ENDPOINT_URL; every master password sent to RDS is collected in
 * `passwords`, so a test can prove none of them reaches an output.
 */
export async function rdsWithServers(motoEndpoint: string, backs?: (instance: InstanceInfo) => boolean): Promise<{ proxy: MotoCompatProxy; servers: DrillPostgres; ca: LocalCertificateAuthority; passwords: string[] }> {
  const ca = createLocalCertificateAuthority();
  const servers = drillPostgres({ tls: ca.server, ...(backs ? { backs } : {}) });
  const proxy = await startMotoCompatProxy(motoEndpoint, { max: () => 100 }, { instances: servers });
  process.env.AWS_ENDPOINT_URL = proxy.endpoint;
  const passwords: string[] = [];
  proxy.addRule((req) => {
    const password = rdsRequest(req)?.params.get('MasterUserPassword');
    if (password) passwords.push(password);
    return undefined;
  });
  return { proxy, servers, ca, passwords };
}

/**
 * "Production" for point-in-time tests: a PostgreSQL that archives its WAL
 * (local/pitr-postgres.ts) holding `database` (set up by `setupSql`), behind an
 * RDS instance of the strict layer with a 7-day window. Point-in-time restores
 * of the instance recover that server for real (`servers`, from rdsWithServers).
 */
export async function pitrProduction(
  servers: DrillPostgres,
  ca: LocalCertificateAuthority,
  options: { instanceId: string; database: string; masterUsername: string; setupSql: string },
): Promise<{ source: PitrSource; sql: (text: string) => Promise<void> }> {
  const source = await startPitrSource({ tls: ca.server, masterUsername: options.masterUsername });
  const sql = async (text: string, database = options.database) => {
    const client = new pg.Client({ host: source.host, port: source.port, user: source.masterUsername, password: source.masterPassword, database });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  };
  await sql(`CREATE DATABASE ${options.database}`, 'postgres');
  await sql(options.setupSql);
  const rds = createRdsClient();
  const created = await rds.send(
    new CreateDBInstanceCommand({ DBInstanceIdentifier: options.instanceId, Engine: 'postgres', DBInstanceClass: 'db.r6g.large', AllocatedStorage: 100, MasterUsername: options.masterUsername, MasterUserPassword: source.masterPassword, BackupRetentionPeriod: 7 }),
  );
  // RDS reports a window once the instance is up (no LatestRestorableTime while it is created).
  await waitUntilAvailable(rds, { instances: [options.instanceId] });
  const arn = created.DBInstance!.DBInstanceArn!.split(':');
  servers.registerSource({ account: arn[4]!, region: arn[3]!, id: options.instanceId }, source);
  return { source, sql: (text) => sql(text) };
}

/** The RDS instance as RDS describes it now, or undefined once it is gone. */
export async function describedInstance(id: string) {
  try {
    return (await createRdsClient().send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances?.[0];
  } catch (error) {
    if ((error as Error).name === 'DBInstanceNotFoundFault') return undefined;
    throw error;
  }
}

/** Whether a Secrets Manager secret of exactly this name exists. */
export async function secretNamed(name: string): Promise<boolean> {
  const page = await testClients().secrets.send(new ListSecretsCommand({ Filters: [{ Key: 'name', Values: [name] }] }));
  return (page.SecretList ?? []).some((s) => s.Name === name);
}
