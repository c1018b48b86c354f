import { DescribeKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { EncryptionKeyError, ThrottledError } from '../errors.ts';
import { awsErrorName, isThrottling } from './rds-errors.ts';

export type KmsApi = Pick<KMSClient, 'send'>;

export interface KeyInfo {
  readonly arn: string;
  /** `AWS` for AWS managed keys such as aws/rds, which RDS cannot share with another account. */
  readonly manager: 'AWS' | 'CUSTOMER';
  readonly state?: string;
}

/** DescribeKey on the key that encrypts a snapshot, in the snapshot's region. */
export async function describeSnapshotKey(kms: KmsApi, keyId: string, what: string): Promise<KeyInfo> {
  try {
    const out = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    const meta = out.KeyMetadata;
    return { arn: meta?.Arn ?? keyId, manager: meta?.KeyManager === 'AWS' ? 'AWS' : 'CUSTOMER', state: meta?.KeyState };
  } catch (error) {
    if (isThrottling(error)) throw new ThrottledError(`KMS throttled DescribeKey on ${keyId}: ${awsErrorName(error)}.`, { cause: error });
    throw new EncryptionKeyError(`Could not describe KMS key ${keyId} of ${what}: ${awsErrorName(error)}: ${(error as Error).message}`, {
      cause: error,
      nextStep: 'grant the snapshot function kms:DescribeKey on the key, or check that the key still exists.',
    });
  }
}
