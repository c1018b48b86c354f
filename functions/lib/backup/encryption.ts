import { KMS } from '@aws-sdk/client-kms';
import { buildClient, CommitmentPolicy, KmsKeyringNode } from '@aws-crypto/client-node';
import type { Duplex } from 'node:stream';
import { DecryptionError, EncryptionKeyError, ThrottledError } from '../errors.ts';

/**
 * Envelope encryption with the AWS Encryption SDK and a KMS keyring: KMS issues a
 * data key per backup, the SDK encrypts in authenticated frames, and the message
 * carries the encrypted data key, so the object alone (plus KMS Decrypt) restores.
 *
 * The default algorithm suite commits to the key and signs the message (ECDSA
 * P-384), so a reader can tell that nobody altered or truncated it. Writers only
 * need kms:GenerateDataKey; reading needs kms:Decrypt, which writers don't get.
 */
const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

/** 64 KiB frames: framing overhead stays well below 0.1 % and memory per frame small. */
export const FRAME_LENGTH = 64 * 1024;

export function createKeyringKmsClient(options: { region?: string; endpoint?: string } = {}): KMS {
  return new KMS({ ...options, maxAttempts: 6, retryMode: 'adaptive' });
}

export function encryptionContextFor(databaseId: string, backupId: string): Record<string, string> {
  return { 'lifeboat:database': databaseId, 'lifeboat:backup-id': backupId };
}

export function createEncryptStream(kms: KMS, keyArn: string, context: Record<string, string>): Duplex {
  const keyring = new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: () => kms });
  return esdk.encryptStream(keyring, { encryptionContext: context, frameLength: FRAME_LENGTH });
}

/**
 * A decrypting stream that refuses a message whose encryption context is not the
 * one the manifest recorded, so one backup's object can't be passed off as another's.
 */
export function createDecryptStream(kms: KMS, keyArn: string, expectedContext: Record<string, string>): Duplex {
  const keyring = new KmsKeyringNode({ keyIds: [keyArn], clientProvider: () => kms });
  const stream = esdk.decryptStream(keyring);
  stream.once('MessageHeader', (header: { encryptionContext: Record<string, string> }) => {
    for (const [k, v] of Object.entries(expectedContext)) {
      if (header.encryptionContext[k] !== v) {
        stream.destroy(
          new DecryptionError(`Encryption context mismatch: ${k} is "${header.encryptionContext[k] ?? '(missing)'}", the manifest says "${v}".`, {
            nextStep: 'this object does not belong to this backup; do not restore it.',
          }),
        );
        return;
      }
    }
  });
  return stream;
}

const KEY_ERRORS = new Set([
  'DisabledException',
  'NotFoundException',
  'KMSInvalidStateException',
  'AccessDeniedException',
  'InvalidKeyUsageException',
  'KeyUnavailableException',
  'IncorrectKeyException',
  'InvalidCiphertextException',
]);

/** Finds the AWS SDK error inside whatever the Encryption SDK wrapped it in. */
function awsErrorIn(error: unknown): { name: string; message: string } | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    const e = current as { name?: string; message?: string; cause?: unknown; $metadata?: unknown };
    if (e.$metadata && e.name) return { name: e.name, message: e.message ?? '' };
    current = e.cause;
  }
  return undefined;
}

/** Turns a KMS failure seen by the Encryption SDK into a clear, named error, or undefined. */
export function classifyKmsError(error: unknown, what: string, keyArn: string): Error | undefined {
  if (error instanceof EncryptionKeyError || error instanceof DecryptionError) return error;
  const aws = awsErrorIn(error);
  if (aws && (aws.name === 'ThrottlingException' || aws.name === 'LimitExceededException')) {
    return new ThrottledError(`KMS throttled ${what} with key ${keyArn}: ${aws.message}`, { cause: error });
  }
  if (aws && (KEY_ERRORS.has(aws.name) || /kms/i.test(aws.message))) {
    const hint =
      aws.name === 'DisabledException' || aws.name === 'KMSInvalidStateException'
        ? 'the key is disabled or pending deletion: re-enable it (aws kms enable-key / cancel-key-deletion).'
        : aws.name === 'NotFoundException'
          ? 'the key does not exist in this account and region: fix storage.kmsKeyArn.'
          : 'check that the key exists, is enabled, and that the role may use it.';
    return new EncryptionKeyError(`KMS key ${keyArn} refused ${what}: ${aws.name}: ${aws.message}`, { cause: error, nextStep: hint });
  }
  return undefined;
}
