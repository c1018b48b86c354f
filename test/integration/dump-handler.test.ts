import { describe, expect, it } from 'vitest';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createDumpHandler } from '../../functions/dump/handler.ts';
import { ConfigError, UnknownTargetError } from '../../functions/lib/errors.ts';
import { deployedConfig } from '../harness/config.ts';
import { localLambdaContext } from '../../functions/shared/lambda-context.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { capturingOutput } from '../harness/capture.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

describe('dump handler', () => {
  const clients = testClients();
  const handlerFor = (config: ReturnType<typeof deployedConfig>) =>
    createDumpHandler({
      clients: { s3: clients.s3, secrets: clients.secrets, keyringKms: clients.keyringKms },
      target: { bucket: 'unused', prefix: 'backups/', kmsKeyArn: 'arn:aws:kms:eu-west-1:000000000000:key/x' },
      config,
      logger: new Logger({ serviceName: 'test', logLevel: 'CRITICAL' }),
      metrics: new Metrics({ namespace: 'test' }),
    });

  it('rejects an invalid payload at run time naming every bad field', async () => {
    const handler = handlerFor(deployedConfig([{ id: 'orders', connection: { database: 'x', host: 'h', passwordEnv: 'PW' } }]));
    const error = await handler({ planId: '', databaseId: 7 } as never, localLambdaContext('dump')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual(expect.arrayContaining([expect.stringMatching(/^planId: /), expect.stringMatching(/^databaseId: /)]));
    expect((error as Error).name).toBe('ConfigError');
  });

  it('refuses connection details in the input: hosts, ports and secrets come only from the deployed config', async () => {
    // Prepare: an input that tries to point the runner (and its password) at another host.
    const handler = handlerFor(deployedConfig([{ id: 'orders', connection: { database: 'x', host: 'h', passwordEnv: 'PW' } }]));
    const steering = { planId: 'nightly', databaseId: 'orders', database: { id: 'orders', connection: { host: 'attacker.example', sslMode: 'disable' } } };
    // Act
    const error = await handler(steering as never, localLambdaContext('dump')).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.join('\n')).toMatch(/Unrecognized key.*database/);
  });

  it('names the known databases when the input names one the deployed config does not have', async () => {
    const handler = handlerFor(deployedConfig([{ id: 'orders', connection: { database: 'x', host: 'h', passwordEnv: 'PW' } }]));
    const error = await handler({ planId: 'nightly', databaseId: 'billing' } as never, localLambdaContext('dump')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownTargetError);
    expect((error as Error).message).toMatch(/no database "billing" \(known: orders\)/);
  });

  it('refuses to start without its environment, naming the missing variables', async () => {
    const saved = { ...process.env };
    delete process.env.BACKUP_BUCKET;
    delete process.env.BACKUP_KMS_KEY_ARN;
    try {
      const handler = createDumpHandler();
      const error = await handler({} as never, localLambdaContext('dump')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.join('\n')).toMatch(/BACKUP_BUCKET[\s\S]*BACKUP_KMS_KEY_ARN/);
    } finally {
      process.env = saved;
    }
  });

  it('puts the database and the backup id on every log line, failure lines included', async () => {
    // Prepare
    const db = await createTestDatabase('lblogs');
    await withClient(db.name, (c) => c.query('CREATE TABLE t (id int); INSERT INTO t VALUES (1)'));
    const [bucket, kmsKeyArn] = await Promise.all([createTestBucket(), createTestKey()]);
    const s = pgServer();
    const good = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
    const bad = await createTestSecret({ username: s.user, password: 'not-it', host: s.host, port: s.port });
    const clients = testClients();
    const handler = createDumpHandler({
      clients: { s3: clients.s3, secrets: clients.secrets, keyringKms: clients.keyringKms },
      target: { bucket, prefix: 'backups/', kmsKeyArn },
      config: deployedConfig([
        { id: 'logged', connection: { database: db.name, secretArn: good, sslMode: 'disable' } },
        { id: 'logged-bad', connection: { database: db.name, secretArn: bad, sslMode: 'disable' } },
      ]),
      logger: new Logger({ serviceName: 'lifeboat-logs', logLevel: 'INFO' }),
      metrics: new Metrics({ namespace: 'test' }),
    });
    const event = (databaseId: string) => ({ planId: 'nightly', databaseId });

    // Act
    const { result, output } = await capturingOutput(async () => {
      const ok = await handler(event('logged') as never, localLambdaContext('dump'));
      await handler(event('logged-bad') as never, localLambdaContext('dump')).catch(() => undefined);
      return ok;
    });
    await db.drop();

    // Assess
    const lines = output.flatMap((chunk) => chunk.split('\n')).filter((l) => l.includes('"service":"lifeboat-logs"') && l.includes('"level"'));
    const records = lines.map((l) => JSON.parse(l) as { message: string; databaseId?: string; backupId?: string });
    expect(records.map((r) => r.message)).toEqual(expect.arrayContaining(['Backup committed', 'Backup failed']));
    for (const r of records) {
      expect(r.databaseId).toMatch(/^logged(-bad)?$/);
      expect(r.backupId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    }
    expect(records.find((r) => r.message === 'Backup committed')!.backupId).toBe(result.backupId);
  });
});
