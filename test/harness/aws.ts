import { CreateBucketCommand, PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { randomBytes } from 'node:crypto';
import { createAwsClients } from '../../functions/lib/aws/clients.ts';
import { createKeyringKmsClient } from '../../functions/lib/backup/encryption.ts';

/** Clients pointed at the suite's moto_server (AWS_ENDPOINT_URL is set in setup-env). */
export function testClients() {
  return { ...createAwsClients(), keyringKms: createKeyringKmsClient() };
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export async function createTestBucket(options: { versioned?: boolean; objectLock?: boolean } = {}): Promise<string> {
  const { s3 } = testClients();
  const bucket = uniqueName('lifeboat-test');
  await s3.send(
    new CreateBucketCommand({
      Bucket: bucket,
      CreateBucketConfiguration: { LocationConstraint: process.env.AWS_REGION as 'eu-west-1' },
      ObjectLockEnabledForBucket: options.objectLock,
    }),
  );
  if (options.versioned ?? true) {
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  }
  return bucket;
}

export async function createTestKey(): Promise<string> {
  const { kms } = testClients();
  const out = await kms.send(new CreateKeyCommand({ Description: 'lifeboat test key' }));
  return out.KeyMetadata!.Arn!;
}

export async function createTestSecret(value: Record<string, unknown>): Promise<string> {
  const { secrets } = testClients();
  const out = await secrets.send(new CreateSecretCommand({ Name: uniqueName('lifeboat/test'), SecretString: JSON.stringify(value) }));
  return out.ARN!;
}

/**
 * What AWS gives a function's process here: the region, the caller's
 * credentials (the process's, e.g. after actAsAccount) and the local endpoint.
 * Tracing is off locally: there is no X-Ray daemon (docs/aws-fidelity.md).
 */
export function localAwsEnvironment(overrides: Record<string, string> = {}): Record<string, string> {
  const env = process.env;
  return {
    AWS_REGION: env.AWS_REGION ?? 'eu-west-1',
    AWS_DEFAULT_REGION: env.AWS_REGION ?? 'eu-west-1',
    AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID ?? 'testing',
    AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY ?? 'testing',
    ...(env.AWS_SESSION_TOKEN ? { AWS_SESSION_TOKEN: env.AWS_SESSION_TOKEN } : {}),
    AWS_ENDPOINT_URL: env.AWS_ENDPOINT_URL ?? '',
    POWERTOOLS_TRACE_ENABLED: 'false',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...(env.LIFEBOAT_PG_BIN ? { LIFEBOAT_PG_BIN: env.LIFEBOAT_PG_BIN } : {}),
    ...overrides,
  };
}
