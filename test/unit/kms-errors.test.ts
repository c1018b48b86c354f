import { describe, expect, it } from 'vitest';
import { classifyKmsError } from '../../functions/lib/backup/encryption.ts';
import { DecryptionError, EncryptionKeyError } from '../../functions/lib/errors.ts';

const KEY = 'arn:aws:kms:eu-west-1:111111111111:key/11111111-2222-3333-4444-555555555555';
/** An error as the AWS SDK throws it (the Encryption SDK wraps it as its cause). */
const sdkError = (name: string, message: string) => Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 } });
/** The Encryption SDK's report when no key could unwrap the data key. */
const aggregated = (...errors: string[]) => new Error(`Unable to decrypt data key and one or more KMS CMKs had an error.\n ${errors.map((e, i) => `Error #${i + 1} \n ${e}\n    at stack (line)`).join('\n')}`);

describe('KMS failures are named by their cause', () => {
  it('calls an unwrappable data key a damaged object, not a key or permission problem', () => {
    // Act
    const direct = classifyKmsError({ cause: sdkError('InvalidCiphertextException', 'The ciphertext is invalid.') }, 'to decrypt backup b1 of database "orders"', KEY);
    const everyKey = classifyKmsError(aggregated('InvalidCiphertextException: bad', 'InvalidCiphertextException: bad too'), 'to decrypt backup b1 of database "orders"', KEY);

    // Assess
    for (const error of [direct, everyKey]) {
      expect(error).toBeInstanceOf(DecryptionError);
      expect((error as DecryptionError).nextStep).toMatch(/^the encrypted data key in the object's header is corrupt \(the key itself answered\): the object or its header is damaged/);
    }
    expect(direct!.message).toMatch(/^KMS could not unwrap the data key of backup b1 of database "orders" with key arn:aws:kms:.*: InvalidCiphertextException: The ciphertext is invalid\./);
  });

  it('still calls a disabled or forbidden key a key problem, also when another key saw a bad ciphertext', () => {
    const disabled = classifyKmsError({ cause: sdkError('DisabledException', 'key is disabled') }, 'to decrypt x', KEY);
    const mixed = classifyKmsError(aggregated('DisabledException: key is disabled', 'InvalidCiphertextException: bad'), 'to decrypt x', KEY);
    expect(disabled).toBeInstanceOf(EncryptionKeyError);
    expect(mixed).toBeInstanceOf(EncryptionKeyError);
    expect(mixed!.message).toContain('DisabledException: key is disabled; InvalidCiphertextException: bad');
  });
});
