/**
 * `npm run demo`: the nightly cycle on this machine, with no AWS account.
 * A throwaway PostgreSQL with sample data and moto_server stand in for RDS and
 * AWS; the backup state machine runs on aws-local-stepfunctions with the real
 * handlers. Everything it starts is stopped, whatever happens.
 */
import { CreateBucketCommand, PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import pg from 'pg';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { createAwsClients } = await import('../functions/lib/aws/clients.ts');
const { createKeyringKmsClient } = await import('../functions/lib/backup/encryption.ts');
const { startLocalPostgres } = await import('../functions/lib/local/postgres-cluster.ts');
const { startMotoServer } = await import('../functions/lib/local/moto-server.ts');
const { createSampleDatabase } = await import('../functions/lib/local/sample-data.ts');
const { runLocalStateMachine, localFunctionArn } = await import('../functions/lib/local/state-machine-runner.ts');
const { asLocalTask } = await import('../functions/lib/local/lambda-context.ts');
const { loadDefinition } = await import('../state-machines/definitions.ts');
const { createDumpHandler } = await import('../functions/dump/handler.ts');
const { createAlertHandler } = await import('../functions/alert/handler.ts');
const { databaseSchema } = await import('../functions/lib/config/schema.ts');
const { readManifest } = await import('../functions/lib/restore/fetch.ts');
const { restoreBackup, verifyBackup } = await import('../functions/lib/restore/restore.ts');
const { formatBytes, formatDuration } = await import('../cli/progress.ts');
const { diffTableChecksums, tableChecksums } = await import('../functions/lib/pg/table-checksums.ts');

const color = process.stdout.isTTY ? { ok: '\x1b[32m', bad: '\x1b[31m', dim: '\x1b[2m', off: '\x1b[0m' } : { ok: '', bad: '', dim: '', off: '' };
const t0 = Date.now();
let stepNo = 0;
async function step<T>(title: string, fn: () => Promise<T>): Promise<T> {
  stepNo++;
  const started = Date.now();
  process.stdout.write(`${color.dim}[${formatDuration(Date.now() - t0).padStart(5)}]${color.off} ${stepNo}. ${title} ...`);
  try {
    const result = await fn();
    process.stdout.write(` ${color.ok}ok${color.off} ${color.dim}(${((Date.now() - started) / 1000).toFixed(1)}s)${color.off}\n`);
    return result;
  } catch (error) {
    process.stdout.write(` ${color.bad}FAILED${color.off}\n`);
    throw error;
  }
}

const cleanups: (() => Promise<unknown>)[] = [];
async function cleanup() {
  for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
}
process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

async function main(): Promise<void> {
  console.log('lifeboat demo: backup, verify and restore a sample database, all on this machine.\n');
  const [pgCluster, moto] = await step('start a throwaway PostgreSQL and moto_server on loopback', async () => {
    const started = await Promise.all([startLocalPostgres(), startMotoServer()]);
    cleanups.push(() => started[0].stop(), () => started[1].stop());
    return started;
  });
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'demo',
    AWS_SECRET_ACCESS_KEY: 'demo',
    POWERTOOLS_LOG_LEVEL: 'CRITICAL',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
  const clients = { ...createAwsClients(), keyringKms: createKeyringKmsClient() };
  const admin = { host: pgCluster.host, port: pgCluster.port, user: pgCluster.superuser, password: pgCluster.password };

  const sample = await step('load the sample database (schemas, jsonb, bytea, TOAST, partitions, large objects, citext)', () =>
    createSampleDatabase({ ...admin, database: 'shop' }, { rows: 2000 }),
  );

  const aws = await step('create the bucket, KMS key, credentials secret and alert topic on moto', async () => {
    const bucket = 'lifeboat-demo-backups';
    await clients.s3.send(new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } }));
    await clients.s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    const keyArn = (await clients.kms.send(new CreateKeyCommand({ Description: 'lifeboat demo' }))).KeyMetadata!.Arn!;
    const secretArn = (await clients.secrets.send(new CreateSecretCommand({ Name: 'lifeboat/shop', SecretString: JSON.stringify({ username: admin.user, password: admin.password, host: admin.host, port: admin.port }) }))).ARN!;
    const badSecretArn = (await clients.secrets.send(new CreateSecretCommand({ Name: 'lifeboat/legacy', SecretString: JSON.stringify({ username: admin.user, password: 'not-the-password', host: admin.host, port: admin.port }) }))).ARN!;
    const topicArn = (await clients.sns.send(new CreateTopicCommand({ Name: 'lifeboat-alerts' }))).TopicArn!;
    const sqs = new SQSClient({});
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'oncall' }))).QueueUrl!;
    const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    await clients.sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn }));
    return { bucket, keyArn, secretArn, badSecretArn, topicArn, sqs, queueUrl };
  });

  const run = await step('run the backup state machine (shop, plus "legacy" whose secret holds a wrong password)', async () => {
    const dumpArn = localFunctionArn('dump');
    const alertArn = localFunctionArn('alert');
    const quiet = new Logger({ serviceName: 'lifeboat-demo', logLevel: 'CRITICAL' });
    const dump = createDumpHandler({
      clients: { s3: clients.s3, secrets: clients.secrets, keyringKms: clients.keyringKms },
      target: { bucket: aws.bucket, prefix: 'backups/', kmsKeyArn: aws.keyArn },
      logger: quiet,
      metrics: new Metrics({ namespace: 'lifeboat-demo' }),
    });
    const alert = createAlertHandler({ sns: clients.sns, topicArn: aws.topicArn, logger: quiet });
    return runLocalStateMachine(
      loadDefinition('backup', { DumpFunctionArn: dumpArn, AlertFunctionArn: alertArn }),
      {
        planId: 'nightly',
        maxConcurrency: 2,
        databases: [
          databaseSchema.parse({ id: 'shop', connection: { database: 'shop', secretArn: aws.secretArn, sslMode: 'disable' } }),
          databaseSchema.parse({ id: 'legacy', connection: { database: 'postgres', secretArn: aws.badSecretArn, sslMode: 'disable', connectTimeoutSeconds: 3 } }),
        ],
      },
      { resources: { [dumpArn]: asLocalTask('dump', dump), [alertArn]: asLocalTask('alert', alert) }, retryIntervalOverrides: { DumpDatabase: 0, AlertDumpFailed: 0 } },
    );
  });
  const results = (run.events.find((e) => e.type === 'StateExited' && e.state?.name === 'BackupEachDatabase')?.state?.output as { results?: { databaseId: string; status: string; manifestKey?: string }[] })?.results ?? [];
  const shop = results.find((r) => r.databaseId === 'shop');
  if (shop?.status !== "succeeded" || !shop.manifestKey) {
    const failures = run.events.filter((e) => e.type === "StateFailed").map((e) => `${e.state?.name}: ${e.Error}: ${String(e.Cause)}`);
    throw new Error(`the shop backup did not succeed: ${failures.join("; ")}`);
  }

  const alertMessage = await step('check that the failed database raised an alert (SNS → SQS)', async () => {
    const received = await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: aws.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2 }));
    const subjects = (received.Messages ?? []).map((m) => (JSON.parse(m.Body!) as { Subject: string }).Subject);
    if (!subjects.some((s) => s.includes('legacy'))) throw new Error(`no alert for legacy; got ${JSON.stringify(subjects)}`);
    return subjects[0]!;
  });

  const manifest = await readManifest(clients.s3, aws.bucket, shop.manifestKey);
  const verifyStarted = Date.now();
  const verified = await step('verify the backup without restoring (sha256, decryption, pg_restore --list)', () =>
    verifyBackup(manifest, { s3: clients.s3, kms: clients.keyringKms }),
  );
  const verifyMs = Date.now() - verifyStarted;
  const restored = await step('restore into a fresh database and compare it with the manifest', () =>
    restoreBackup(manifest, { ...admin, database: 'shop_restored', sslMode: 'disable', connectTimeoutSeconds: 5 }, { s3: clients.s3, kms: clients.keyringKms }, { createDatabase: true }),
  );
  const contentCheck = await step('compare every table row by row (ordered content checksums)', async () => compareContent(admin, 'shop', 'shop_restored'));

  const rows = manifest.inventory.tables.reduce((n, t) => n + t.rows, 0);
  console.log(`
Report
  database          shop: ${formatBytes(sample.bytes)} on disk, PostgreSQL ${manifest.database.serverVersion}
  backup            ${manifest.backupId} (pg_dump ${manifest.dump.toolVersion}, ${manifest.dump.compression})
  sizes             ${formatBytes(manifest.object.rawBytes)} dump, ${formatBytes(manifest.object.storedBytes)} stored encrypted
  sha256            ${manifest.object.sha256}
  times             backup run ${formatDuration(new Date(manifest.finishedAt).getTime() - new Date(manifest.startedAt).getTime())}, verify ${formatDuration(verifyMs)}, restore ${formatDuration(restored.timings.totalMs)}
  verify            ${verified.checks.map((c) => `${c.name} ${c.ok ? 'ok' : 'FAILED'}`).join(', ')}
  restore checks    ${restored.checks.map((c) => `${c.name} ${c.ok ? 'ok' : 'FAILED'}`).join(', ')}
  rows compared     ${rows} rows in ${manifest.inventory.tables.length} tables; ${contentCheck.tables} relations identical row by row (tables, sequences, large objects), ${manifest.inventory.largeObjects} large objects
  alert             ${alertMessage}
  run               ${run.status === 'FAILED' ? `failed as expected (${run.error}): legacy alerted, shop backed up` : run.status}
`);
  if (contentCheck.differences.length > 0) throw new Error(`restored content differs: ${contentCheck.differences.join('; ')}`);
}

/** Per-table content checksums of both databases, computed in PostgreSQL. */
async function compareContent(admin: { host: string; port: number; user: string; password: string }, a: string, b: string) {
  const sums = async (database: string) => {
    const client = new pg.Client({ ...admin, database });
    await client.connect();
    try {
      return await tableChecksums(client);
    } finally {
      await client.end();
    }
  };
  const [left, right] = await Promise.all([sums(a), sums(b)]);
  const differences = diffTableChecksums(left, right);
  return { tables: left.size - differences.length, differences };
}

try {
  await main();
  await step('stop everything the demo started', cleanup);
  console.log(`${color.ok}Demo finished: every check passed in ${formatDuration(Date.now() - t0)}.${color.off}`);
} catch (error) {
  console.error(`\n${color.bad}Demo failed:${color.off} ${(error as Error).message}`);
  await cleanup();
  process.exitCode = 1;
}
