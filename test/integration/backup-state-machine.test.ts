import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createDumpHandler } from '../../functions/dump/handler.ts';
import { createAlertHandler } from '../../functions/alert/handler.ts';
import { createSnapshotHandler } from '../../functions/snapshot/handler.ts';
import { createVaultCopyHandler } from '../../functions/vault-copy/handler.ts';
import { createKmsClient, createRdsClient, createS3Client, createStsClient } from '../../functions/lib/aws/clients.ts';
import { databaseSchema, resolveSnapshotSettings } from '../../functions/lib/config/schema.ts';
import { asLocalTask } from '../../local/lambda-task.ts';
import { LOCAL_TIME_SCALE, localFunctionArn, runLocalStateMachine } from '../../local/state-machine-runner.ts';
import { synthesizedDefinition } from '../harness/synthesized.ts';
import { capturingOutput } from '../harness/capture.ts';
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
  for (const db of dbs) await db.drop();
});

describe('the synthesized backup state machine, executed locally with the real handlers', () => {
  it('backs up every healthy database and alerts on the one with a bad password, with no secret anywhere', async () => {
    // Prepare
    const logger = new Logger({ serviceName: 'lifeboat-test' });
    const dumpArn = localFunctionArn('dump');
    const alertArn = localFunctionArn('alert');
    const snapshotArn = localFunctionArn('snapshot');
    const vaultCopyArn = localFunctionArn('vault-copy');
    const definition = synthesizedDefinition('backup', { DumpFunctionArn: dumpArn, AlertFunctionArn: alertArn, SnapshotFunctionArn: snapshotArn, VaultCopyFunctionArn: vaultCopyArn });
    const metrics = new Metrics({ namespace: 'lifeboat-test', serviceName: 'lifeboat-test' });
    // This plan takes no snapshots and the deployment has no vault: the snapshot steps are skipped, the vault copy reports `skipped`.
    const snapshot = createSnapshotHandler({
      context: { rds: (region) => createRdsClient({ region }), kms: (region) => createKmsClient({ region }), sts: createStsClient(), sourceRegion: 'eu-west-1', settings: resolveSnapshotSettings(undefined) },
      logger,
      metrics,
    });
    const vaultCopy = createVaultCopyHandler({ sourceS3: clients.s3, sts: createStsClient(), vaultS3: (region, credentials) => createS3Client({ region, credentials }), logger, metrics });
    const dump = createDumpHandler({
      clients: { s3: clients.s3, secrets: clients.secrets, keyringKms: clients.keyringKms },
      target: { bucket, prefix: 'backups/', kmsKeyArn: keyArn },
      logger,
      metrics: new Metrics({ namespace: 'lifeboat-test', serviceName: 'lifeboat-test' }),
    });
    const alert = createAlertHandler({ sns: clients.sns, topicArn, logger });
    const database = (id: string, name: string, secretArn: string) =>
      databaseSchema.parse({ id, connection: { database: name, secretArn, sslMode: 'disable', connectTimeoutSeconds: 3 } });
    const input = {
      planId: 'nightly',
      maxConcurrency: 2,
      dump: true,
      snapshot: false,
      databases: [database('alpha', dbs[0]!.name, goodSecret), database('bravo', dbs[1]!.name, badSecret), database('charlie', dbs[2]!.name, goodSecret)],
    };

    // Act
    const { result: run, output: logLines } = await capturingOutput(() =>
      runLocalStateMachine(definition, input, {
        resources: {
          [dumpArn]: asLocalTask('dump', dump),
          [alertArn]: asLocalTask('alert', alert),
          [snapshotArn]: asLocalTask('snapshot', snapshot),
          [vaultCopyArn]: asLocalTask('vault-copy', vaultCopy),
        },
        timeScale: LOCAL_TIME_SCALE,
      }),
    );

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
    const everything = JSON.stringify({ logLines, events: run.events, output: run.output, cause: run.cause, alert: received.Messages });
    expect(logLines.join('')).toMatch(/Backup failed.*bravo|bravo.*Backup failed/);
    expect(everything).toContain('bravo');
    expect(everything).not.toContain(SENTINEL);
  });
});
