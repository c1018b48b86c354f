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
