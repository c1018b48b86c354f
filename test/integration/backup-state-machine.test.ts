import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { capturingOutput } from '../harness/capture.ts';
import { deployForTest, type TestDeployment } from '../harness/deployed.ts';
import { localAwsEnvironment } from '../harness/aws.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients, uniqueName } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

const clients = testClients();
const sqs = new SQSClient({});
const SENTINEL = 'S3NTINEL-bad-password-1c9e';
const dbs: Awaited<ReturnType<typeof createTestDatabase>>[] = [];
let bucket: string;
let keyArn: string;
let queueUrl: string;
let topicArn: string;
let goodSecret: string;
let badSecret: string;
let deployment: TestDeployment | undefined;

beforeAll(async () => {
  for (let i = 0; i < 3; i++) {
    const db = await createTestDatabase('lbsm');
    await withClient(db.name, (c) => c.query(`CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, ${100 * (i + 1)})`));
    dbs.push(db);
  }
  [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  const s = pgServer();
  goodSecret = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  badSecret = await createTestSecret({ username: s.user, password: SENTINEL, host: s.host, port: s.port });
  topicArn = (await clients.sns.send(new CreateTopicCommand({ Name: uniqueName('lifeboat-alerts') }))).TopicArn!;
  queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('oncall') }))).QueueUrl!;
  const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  await clients.sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn }));
});
afterAll(async () => {
  await deployment?.stop();
  for (const db of dbs) await db.drop();
});

/** A deployment whose one plan dumps three databases (one with a wrong password), no snapshots, no vault. */
function config() {
  const database = (id: string, name: string, secretArn: string) => ({ id, connection: { database: name, secretArn, sslMode: 'disable', connectTimeoutSeconds: 3 } });
  return {
    name: uniqueName('bsm'),
    source: { account: '123456789012', region: 'eu-west-1' },
    databases: [database('alpha', dbs[0]!.name, goodSecret), database('bravo', dbs[1]!.name, badSecret), database('charlie', dbs[2]!.name, goodSecret)],
    plans: [
      {
        id: 'nightly',
        schedule: { cron: 'cron(0 3 * * ? *)', timezone: 'Europe/Berlin' },
        databases: ['alpha', 'bravo', 'charlie'],
        rpoMinutes: 1500,
        rtoMinutes: 60,
        dump: true,
        snapshot: false,
        maxConcurrency: 2,
        retention: { source: { keepLast: 7 } },
      },
    ],
    storage: { prefix: 'backups/', kmsKeyArn: keyArn },
    alerts: { subscribers: [{ protocol: 'email', endpoint: 'oncall@example.com' }] },
  };
}

describe('the synthesized backup workflow, executed locally from the shipped bundles', () => {
  it('backs up every healthy database and alerts on the one with a bad password, with no secret anywhere', async () => {
    // Prepare: the source stack as synthesized, its functions run from their bundles.
    deployment = await deployForTest({
      config: config(),
      values: { BACKUP_BUCKET: bucket, ALERT_TOPIC_ARN: topicArn },
      awsEnvironment: localAwsEnvironment(),
    });

    // Act: what the plan's schedule sends.
    const { result: run, output: logLines } = await capturingOutput(() => deployment!.run('backup', { planId: 'nightly' }));

    // Assess: the run reports the failure, the healthy databases are committed backups.
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('BackupIncomplete');
    const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'backups/' }));
    const manifests = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('manifest.json'));
    expect(manifests.map((k) => k.split('/')[1]).sort()).toEqual(['alpha', 'charlie']);
    const charlie = JSON.parse(await (await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifests.find((k) => k.includes('charlie'))! }))).Body!.transformToString());
    expect(charlie.inventory.tables).toEqual([{ schema: 'public', name: 't', kind: 'r', rows: 300 }]);

    // Assess: exactly one alert, for bravo, readable by a human and a machine.
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    expect(received.Messages).toHaveLength(1);
    const envelope = JSON.parse(received.Messages![0]!.Body!);
    expect(envelope.Subject).toBe('[lifeboat] Backup failed: database bravo, plan nightly: DatabaseConnectionError');
    expect(envelope.Message).toMatch(/password authentication failed/);
    expect(envelope.Message).toMatch(/Next step: the password or user was rejected/);
    expect(envelope.Message).toContain(run.executionArn);
    const details = JSON.parse(envelope.Message.split('--- details (JSON) ---')[1]);
    expect(details).toMatchObject({ kind: 'backup-failed', databaseId: 'bravo', planId: 'nightly', failure: 'DatabaseConnectionError' });

    // Assess: the sentinel password is nowhere: logs, events, payloads, alerts, outputs.
    const children = deployment.children.map((c) => ({ events: c.events, output: c.output }));
    const functionLogs = Object.values(deployment.lambdas).flatMap((l) => l.logs);
    const everything = JSON.stringify({ logLines, functionLogs, events: run.events, children, output: run.output, cause: run.cause, alert: received.Messages });
    expect(deployment.children).toHaveLength(3);
    expect(functionLogs.join('')).toMatch(/Backup failed.*bravo|bravo.*Backup failed/);
    expect(everything).toContain('bravo');
    expect(everything).not.toContain(SENTINEL);
  });
});
