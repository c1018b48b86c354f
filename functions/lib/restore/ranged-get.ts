import { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { classifyS3Error } from '../backup/s3-errors.ts';
import { ChecksumMismatchError } from '../errors.ts';

/**
 * Reads an S3 object as a stream of in-order chunks fetched by parallel
 * ranged GETs: one connection to S3 tops out well below what a restore host
 * can take in, several together do not. At most `concurrency` parts are in
 * flight or waiting to be read, so memory stays at `concurrency × partSize`
 * however large the object. Every range after the first is asked for with the
 * first response's ETag (If-Match), so an object replaced mid-download fails
 * the download instead of splicing two versions together.
 *
 * The AWS SDK for JavaScript v3 has no ranged, parallel download (lib-storage
 * uploads only); this is the small piece that fills that gap.
 */
export interface RangedGetOptions {
  /** Bytes per ranged GET. @default 16 MiB */
  partSize?: number;
  /** Ranged GETs in flight (and parts buffered). @default 4 */
  concurrency?: number;
  /** Stops every request at once. */
  signal?: AbortSignal;
  /** The object's version, when the caller knows it. */
  versionId?: string;
}

export const DEFAULT_RANGE_PART_SIZE = 16 * 1024 * 1024;
export const DEFAULT_RANGE_CONCURRENCY = 4;
/** The first range is at most this long. */
export const FIRST_RANGE_SIZE = 1024 * 1024;

export function rangedObjectStream(s3: S3Client, bucket: string, key: string, size: number, options: RangedGetOptions = {}): Readable {
  const partSize = options.partSize ?? DEFAULT_RANGE_PART_SIZE;
  if (!Number.isInteger(partSize) || partSize < 1) throw new RangeError(`partSize must be a positive integer, got ${partSize}`);
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_RANGE_CONCURRENCY);
  let next = 0;
  let etag: string | undefined;
  let first: Promise<void> | undefined;
  const queue: Promise<Buffer>[] = [];
  let pumping = false;

  const fetchRange = async (start: number, end: number): Promise<Buffer> => {
    // Later ranges wait for the first, whose ETag pins the version.
    if (first && start > 0) await first;
    try {
      const out = await s3.send(
        new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end}`, VersionId: options.versionId, IfMatch: start > 0 ? etag : undefined }),
        { abortSignal: options.signal },
      );
      if (start === 0) etag = out.ETag;
      const bytes = Buffer.from(await out.Body!.transformToByteArray());
      if (bytes.length !== end - start + 1) {
        throw new ChecksumMismatchError(`s3://${bucket}/${key} returned ${bytes.length} bytes for bytes ${start}-${end}: the object is shorter than its manifest says.`);
      }
      return bytes;
    } catch (error) {
      const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'PreconditionFailed' || e.$metadata?.httpStatusCode === 412) {
        throw new ChecksumMismatchError(`s3://${bucket}/${key} changed while it was being downloaded (its ETag no longer matches): nothing downloaded so far can be trusted.`, {
          cause: error,
          nextStep: 'find out what writes to the backup bucket (nothing should), then restore again or from the vault copy.',
        });
      }
      if (e.name === 'InvalidRange' || e.$metadata?.httpStatusCode === 416) {
        throw new ChecksumMismatchError(`s3://${bucket}/${key} has no bytes ${start}-${end}: the object is shorter than its manifest says.`, { cause: error });
      }
      if (error instanceof ChecksumMismatchError) throw error;
      throw classifyS3Error(error, 'reading the backup', bucket, key) ?? error;
    }
  };

  const enqueue = () => {
    while (queue.length < concurrency && next < size) {
      const start = next;
      // A short first range: the hashing and decryption downstream start after one round trip, not after a whole part.
      const end = Math.min(size, start + (start === 0 ? Math.min(partSize, FIRST_RANGE_SIZE) : partSize)) - 1;
      next = end + 1;
      const part = fetchRange(start, end);
      part.catch(() => undefined); // awaited in order below; a part read after a failure is dropped
      if (start === 0) first = part.then(() => undefined, () => undefined);
      queue.push(part);
    }
  };

  const stream = new Readable({
    highWaterMark: partSize,
    read() {
      if (pumping) return;
      pumping = true;
      void (async () => {
        try {
          for (;;) {
            enqueue();
            const part = queue.shift();
            if (!part) {
              stream.push(null);
              return;
            }
            const bytes = await part;
            if (stream.destroyed) return;
            enqueue();
            if (!stream.push(bytes)) return;
          }
        } catch (error) {
          stream.destroy(error as Error);
        } finally {
          pumping = false;
        }
      })();
    },
  });
  return stream;
}
