import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ChecksumMismatchError } from '../../functions/lib/errors.ts';
import { rangedObjectStream } from '../../functions/lib/restore/ranged-get.ts';
import { createTestBucket, testClients } from '../harness/aws.ts';

/** Issue 12, must-show 10: the restore's download by parallel ranged GETs (against moto on loopback). */
const { s3 } = testClients();
const MIB = 1024 * 1024;

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('ranged, parallel download', () => {
  it('returns the object byte for byte, in order, whatever the part size and concurrency', async () => {
    // Prepare
    const bucket = await createTestBucket();
    const data = randomBytes(23 * MIB + 12345);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'big', Body: data }));

    // Act
    const got = await collect(rangedObjectStream(s3, bucket, 'big', data.length, { partSize: 5 * MIB, concurrency: 3 }));
    const one = await collect(rangedObjectStream(s3, bucket, 'big', data.length, { partSize: 4 * MIB, concurrency: 1 }));

    // Assess
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(got.length).toBe(data.length);
    expect(sha(got)).toBe(sha(data));
    expect(sha(one)).toBe(sha(data));
  });

  it('fails, naming the object, when it is replaced midway (If-Match on every later range)', async () => {
    // Prepare
    const bucket = await createTestBucket();
    // Five ranges: read-ahead may have fetched the next one or two before the replacement, never all of them.
    const data = randomBytes(25 * MIB);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'moving', Body: data }));
    const stream = rangedObjectStream(s3, bucket, 'moving', data.length, { partSize: 5 * MIB, concurrency: 1 });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next(); // the first range, which pins the version

    // Act
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'moving', Body: randomBytes(25 * MIB) }));
    const rest = (async () => {
      for (let r = await iterator.next(); !r.done; r = await iterator.next());
    })();

    // Assess
    await expect(rest).rejects.toBeInstanceOf(ChecksumMismatchError);
    await expect(rest).rejects.toThrow(/s3:\/\/\S+\/moving changed while it was being downloaded/);
  });

  it('fails when the object is shorter than the size it was asked for', async () => {
    // Prepare
    const bucket = await createTestBucket();
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'short', Body: randomBytes(6 * MIB) }));

    // Act: ranges 0-1 MiB, 1-6 MiB (which the object has) and 6-8 MiB (which it does not); then 1-4 MiB, 4-7 MiB (cut short)
    // (each settled into its error at once: two pending rejections must not go unhandled while the first is awaited)
    const failure = (size: number, partSize: number) => collect(rangedObjectStream(s3, bucket, 'short', size, { partSize, concurrency: 2 })).then(() => undefined, (e: unknown) => e);
    const [beyond, cut] = await Promise.all([failure(8 * MIB, 5 * MIB), failure(7 * MIB, 3 * MIB)]);

    // Assess
    expect(beyond).toBeInstanceOf(ChecksumMismatchError);
    expect((beyond as Error).message).toMatch(/s3:\/\/\S+\/short has no bytes 6291456-8388607: the object is shorter than its manifest says/);
    expect(cut).toBeInstanceOf(ChecksumMismatchError);
    expect((cut as Error).message).toMatch(/returned \d+ bytes for bytes 4194304-7340031: the object is shorter than its manifest says/);
  });

  it('asks for a short first range, so that hashing and decryption start after one small round trip', async () => {
    // Prepare
    const bucket = await createTestBucket();
    const data = randomBytes(12 * MIB);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'first', Body: data }));
    const iterator = rangedObjectStream(s3, bucket, 'first', data.length, { partSize: 8 * MIB, concurrency: 2 })[Symbol.asyncIterator]();

    // Act
    const first = (await iterator.next()).value as Buffer;
    const second = (await iterator.next()).value as Buffer;
    await iterator.return?.();

    // Assess
    expect(first.length).toBe(MIB);
    expect(second.length).toBe(8 * MIB);
    expect(Buffer.concat([first, second]).equals(data.subarray(0, 9 * MIB))).toBe(true);
  });
});
