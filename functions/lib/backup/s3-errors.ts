import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { EncryptionKeyError, StorageError, ThrottledError } from '../errors.ts';

const THROTTLING = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded', 'ServiceUnavailable']);

/** A clear, named error for an S3 failure on `bucket`/`key`, or undefined if it is not one. */
export function classifyS3Error(error: unknown, action: string, bucket: string, key?: string): Error | undefined {
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  if (!e || !e.$metadata) return undefined;
  const where = key ? `s3://${bucket}/${key}` : `bucket ${bucket}`;
  const name = e.name ?? 'UnknownError';
  if (THROTTLING.has(name) || e.$metadata.httpStatusCode === 503) {
    return new ThrottledError(`S3 throttled ${action} on ${where}: ${name}`, { cause: error });
  }
  if (/^KMS\./.test(name) || /kms/i.test(e.message ?? '')) {
    return new EncryptionKeyError(`S3 could not use the bucket's KMS key while ${action} on ${where}: ${name}: ${e.message}`, {
      cause: error,
      nextStep: "check that the bucket's default encryption key is enabled and usable by this role.",
    });
  }
  if (name === 'NoSuchBucket' || (name === 'NotFound' && !key)) {
    return new StorageError(`Bucket ${bucket} does not exist (while ${action}).`, {
      cause: error,
      nextStep: 'create the bucket (the source stack does) or fix storage.bucketName / BACKUP_BUCKET.',
    });
  }
  if (name === 'AccessDenied' || name === 'Forbidden' || e.$metadata.httpStatusCode === 403) {
    return new StorageError(`Access denied while ${action} on ${where}.`, {
      cause: error,
      nextStep: 'check the role policy and the bucket policy for this action.',
    });
  }
  return new StorageError(`S3 ${action} failed on ${where}: ${name}: ${e.message}`, { cause: error });
}

/** Aborts every unfinished multipart upload under `key`, so no parts are left billing. */
export async function abortStaleMultipartUploads(s3: S3Client, bucket: string, key: string): Promise<number> {
  let aborted = 0;
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  do {
    const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
    for (const upload of page.Uploads ?? []) {
      if (upload.Key !== key || !upload.UploadId) continue;
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: upload.UploadId }));
      aborted++;
    }
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
  } while (keyMarker);
  return aborted;
}
