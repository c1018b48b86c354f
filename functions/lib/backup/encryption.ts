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

/**
 * 256 KiB frames: per-frame work (a cipher, a tag, buffer copies) is what the
 * Node side of the pipeline spends its CPU on, and a reader holds only one
 * frame in memory at a time.
 */
export const FRAME_LENGTH = 256 * 1024;

export function createKeyringKmsClient(options: { region?: string | (() => Promise<string>); endpoint?: string } = {}): KMS {
  return new KMS({ ...options, maxAttempts: 6, retryMode: 'adaptive' });
}

export function encryptionContextFor(databaseId: string, backupId: string): Record<string, string> {
  return { 'lifeboat:database': databaseId, 'lifeboat:backup-id': backupId };
}

function regionOfKey(keyArn: string): string | undefined {
  return keyArn.startsWith('arn:') ? keyArn.split(':')[3] : undefined;
}

/**
 * The keyring asks for a client per key region. Keys in the injected client's
 * region (or without one) use it; keys elsewhere, such as the vault's recovery
 * key, get a client for their region built from the standard environment.
 */
function clientProviderFor(kms: KMS, homeRegion: string | undefined) {
  const others = new Map<string, KMS>();
  return (region: string) => {
    if (!region || !homeRegion || region === homeRegion) return kms;
    let client = others.get(region);
    if (!client) others.set(region, (client = createKeyringKmsClient({ region })));
    return client;
  };
}

/**
 * Encrypts under a data key from `keyArn` (the writer needs only
 * kms:GenerateDataKey) and also wraps that data key under each recovery key
 * (kms:Encrypt only), typically the vault account's own key, so the vault can
 * decrypt its copies even if this account and its key are gone.
 */
export function createEncryptStream(kms: KMS, keyArn: string, context: Record<string, string>, recoveryKeyArns: readonly string[] = []): Duplex {
  const keyring = new KmsKeyringNode({
    generatorKeyId: keyArn,
    keyIds: [...recoveryKeyArns],
    clientProvider: clientProviderFor(kms, regionOfKey(keyArn)),
  });
  return esdk.encryptStream(keyring, { encryptionContext: context, frameLength: FRAME_LENGTH });
}

/**
 * A decrypting stream that refuses a message whose encryption context is not the
 * one the manifest recorded, so one backup's object can't be passed off as another's.
 */
export function createDecryptStream(kms: KMS, keyArns: string | readonly string[], expectedContext: Record<string, string>): Duplex {
  const keyIds = typeof keyArns === 'string' ? [keyArns] : [...keyArns];
  // Any one of the keys unwraps the data key: the primary, or a recovery key.
  const keyring = new KmsKeyringNode({ keyIds, clientProvider: clientProviderFor(kms, regionOfKey(keyIds[0] ?? '')) });
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

/**
 * When no key could unwrap the data key, the Encryption SDK reports every KMS
 * error as text in one message ("Error #1 \n DisabledException: ..."); pick
 * them out, without their stack lines.
 */
function aggregatedKmsError(error: unknown): { name: string; message: string } | undefined {
  const message = (error as { message?: string })?.message ?? '';
  if (!/Unable to (decrypt|generate|encrypt) data key/i.test(message)) return undefined;
  const found = [...message.matchAll(/\b([A-Z][A-Za-z]+(?:Exception|Error)): ([^\n]*)/g)].map((m) => ({ name: m[1]!, message: m[2]!.trim() }));
  if (found.length === 0) return { name: 'KMSError', message: message.split('\n')[0]! };
  return { name: found[0]!.name, message: found.map((f) => `${f.name}: ${f.message}`).join('; ') };
}

/** Every key that was tried refused the ciphertext itself (not the caller, not the key's state). */
function isOnlyInvalidCiphertext(aws: { name: string; message: string }): boolean {
  const names = [aws.name, ...[...aws.message.matchAll(/\b([A-Z][A-Za-z]+(?:Exception|Error)):/g)].map((m) => m[1]!)];
  return names.every((n) => n === 'InvalidCiphertextException');
}

/** Turns a KMS failure seen by the Encryption SDK into a clear, named error, or undefined. */
export function classifyKmsError(error: unknown, what: string, keyArn: string): Error | undefined {
  if (error instanceof EncryptionKeyError || error instanceof DecryptionError) return error;
  const aws = awsErrorIn(error) ?? aggregatedKmsError(error);
  if (aws && (aws.name === 'ThrottlingException' || aws.name === 'LimitExceededException')) {
    return new ThrottledError(`KMS throttled ${what} with key ${keyArn}: ${aws.message}`, { cause: error });
  }
  // KMS could use the key but not the ciphertext: the wrapped data key in the object's header is damaged.
  if (aws && isOnlyInvalidCiphertext(aws)) {
    return new DecryptionError(`KMS could not unwrap the data key of ${what.replace(/^to (decrypt|generate|encrypt) /, '')} with key ${keyArn}: ${aws.name}: ${aws.message}`, {
      cause: error,
      nextStep: 'the encrypted data key in the object\'s header is corrupt (the key itself answered): the object or its header is damaged; restore from another backup or the vault copy.',
    });
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
