import { describe, expect, it } from 'vitest';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createDumpHandler } from '../../functions/dump/handler.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import { localLambdaContext } from '../../functions/lib/local/lambda-context.ts';
import { testClients } from '../harness/aws.ts';

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
});
