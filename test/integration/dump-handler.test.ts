import { describe, expect, it } from 'vitest';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createDumpHandler } from '../../functions/dump/handler.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import { localLambdaContext } from '../../functions/shared/lambda-context.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { capturingOutput } from '../harness/capture.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

describe('dump handler', () => {
  it('rejects an invalid payload at run time naming every bad field', async () => {
    const clients = testClients();
    const handler = createDumpHandler({
      clients: { s3: clients.s3, secrets: clients.secrets, keyringKms: clients.keyringKms },
      target: { bucket: 'unused', prefix: 'backups/', kmsKeyArn: 'arn:aws:kms:eu-west-1:000000000000:key/x' },
      logger: new Logger({ serviceName: 'test', logLevel: 'CRITICAL' }),
      metrics: new Metrics({ namespace: 'test' }),
    });
    const error = await handler({ planId: 'nightly', database: { id: 'Bad Id', connection: { database: 'x', port: 'x', passwordEnv: 'PW', host: 'h' } } } as never, localLambdaContext('dump')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual(
      expect.arrayContaining([expect.stringMatching(/^database\.id: /), expect.stringMatching(/^database\.connection\.port: /)]),
    );
    expect((error as Error).name).toBe('ConfigError');
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
      logger: new Logger({ serviceName: 'lifeboat-logs', logLevel: 'INFO' }),
      metrics: new Metrics({ namespace: 'test' }),
    });
    const event = (secretArn: string) => ({ planId: 'nightly', database: { id: 'logged', connection: { database: db.name, secretArn, sslMode: 'disable' } } });

    // Act
    const { result, output } = await capturingOutput(async () => {
      const ok = await handler(event(good) as never, localLambdaContext('dump'));
      await handler(event(bad) as never, localLambdaContext('dump')).catch(() => undefined);
      return ok;
    });
    await db.drop();

    // Assess
    const lines = output.flatMap((chunk) => chunk.split('\n')).filter((l) => l.includes('"service":"lifeboat-logs"') && l.includes('"level"'));
    const records = lines.map((l) => JSON.parse(l) as { message: string; databaseId?: string; backupId?: string });
    expect(records.map((r) => r.message)).toEqual(expect.arrayContaining(['Backup committed', 'Backup failed']));
    for (const r of records) {
      expect(r.databaseId).toBe('logged');
      expect(r.backupId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    }
    expect(records.find((r) => r.message === 'Backup committed')!.backupId).toBe(result.backupId);
  });
});
