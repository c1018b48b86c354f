import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { SendTaskFailureCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { runFargateTask, TASK_INPUT_ENV, TASK_TOKEN_ENV, type TaskRunner } from '../../functions/dump/fargate-task.ts';
import { deployedConfig } from '../harness/config.ts';
import { createDumpHandler, type DumpTaskOutput } from '../../functions/dump/handler.ts';
import { manifestSchema } from '../../functions/lib/backup/manifest.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

// The Fargate entrypoint with the real dump handler against the suite's
// PostgreSQL and moto; only the Step Functions callback is captured.

const clients = testClients();
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let bucket: string;
let keyArn: string;
let goodSecret: string;
let badSecret: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await withClient(db.name, async (c) => {
    await c.query(`CREATE TABLE orders (id serial PRIMARY KEY, total numeric NOT NULL)`);
    await c.query(`INSERT INTO orders (total) SELECT g * 1.5 FROM generate_series(1, 500) g`);
  });
  [bucket, keyArn] = await Promise.all([createTestBucket(), createTestKey()]);
  const s = pgServer();
  goodSecret = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  badSecret = await createTestSecret({ username: s.user, password: 'Wr0ng-fargate-pw-77', host: s.host, port: s.port });
});
afterAll(async () => {
  await db?.drop();
});

function capturingSfn() {
  const sent: Array<SendTaskSuccessCommand | SendTaskFailureCommand> = [];
  return { sent, client: { send: async (command: SendTaskSuccessCommand | SendTaskFailureCommand) => (sent.push(command), {}) } as never };
}

function handler(secretArn = goodSecret): TaskRunner {
  return createDumpHandler({
    clients: { s3: clients.s3, secrets: clients.secrets, keyringKms: clients.keyringKms },
    target: { bucket, prefix: 'backups/', kmsKeyArn: keyArn },
    config: deployedConfig([{ id: 'orders', connection: { database: db.name, secretArn, sslMode: 'disable', connectTimeoutSeconds: 5 }, dump: { runner: 'fargate' } }]),
    logger: new Logger({ serviceName: 'lifeboat-dump', logLevel: 'CRITICAL' }),
    metrics: new Metrics({ namespace: 'lifeboat-test', serviceName: 'lifeboat-dump' }),
  }) as unknown as TaskRunner;
}

function taskEnv(): NodeJS.ProcessEnv {
  const input = { planId: 'nightly', databaseId: 'orders', executionId: 'arn:aws:states:eu-west-1:111111111111:execution:acme-lifeboat-backup:run-1' };
  return { [TASK_INPUT_ENV]: JSON.stringify(input), [TASK_TOKEN_ENV]: 'token-fargate-1', POWERTOOLS_SERVICE_NAME: 'lifeboat-dump' };
}

describe('Fargate dump task with the real dump handler', () => {
  it('commits a backup and reports the same output the Lambda returns', async () => {
    // Prepare
    const sfn = capturingSfn();

    // Act
    const outcome = await runFargateTask({ sfn: sfn.client, handler: handler(goodSecret), env: taskEnv(), log: () => undefined });

    // Assess: one SendTaskSuccess whose output names a committed backup.
    expect(outcome.status).toBe('succeeded');
    expect(sfn.sent).toHaveLength(1);
    const success = sfn.sent[0] as SendTaskSuccessCommand;
    expect(success).toBeInstanceOf(SendTaskSuccessCommand);
    expect(success.input.taskToken).toBe('token-fargate-1');
    const output = JSON.parse(success.input.output!) as DumpTaskOutput;
    expect(output).toMatchObject({ databaseId: 'orders', bucket });
    const manifest = manifestSchema.parse(
      JSON.parse(await (await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: output.manifestKey }))).Body!.transformToString()),
    );
    expect(manifest.object.sha256).toBe(output.sha256);
    expect(manifest.inventory.tables).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'orders', rows: 500 })]));
  });

  it('reports a rejected password as the handler\'s error class, with Lambda-shaped cause and no secret', async () => {
    // Prepare
    const sfn = capturingSfn();

    // Act
    const outcome = await runFargateTask({ sfn: sfn.client, handler: handler(badSecret), env: taskEnv(), log: () => undefined });

    // Assess
    expect(outcome.status).toBe('failed');
    const failure = sfn.sent[0] as SendTaskFailureCommand;
    expect(failure).toBeInstanceOf(SendTaskFailureCommand);
    expect(failure.input.error).toBe('DatabaseConnectionError');
    const cause = JSON.parse(failure.input.cause!) as { errorType: string; errorMessage: string };
    expect(cause.errorType).toBe('DatabaseConnectionError');
    expect(cause.errorMessage).toMatch(/orders/);
    expect(failure.input.cause).not.toContain('Wr0ng-fargate-pw-77');
  });
});
