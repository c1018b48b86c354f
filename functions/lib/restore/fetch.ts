import { createHash } from 'node:crypto';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { KMS } from '@aws-sdk/client-kms';
import { createDecryptStream, classifyKmsError } from '../backup/encryption.ts';
import { manifestSchema, type Manifest } from '../backup/manifest.ts';
import { globalsDocumentSchema, type GlobalsDocument } from '../pg/roles.ts';
import { DEFAULT_RANGE_PART_SIZE, rangedObjectStream } from './ranged-get.ts';
import { classifyS3Error } from '../backup/s3-errors.ts';
import { BackupNotFoundError, ChecksumMismatchError, DecryptionError, LifeboatError } from '../errors.ts';

export interface FetchDeps {
  s3: S3Client;
  kms: KMS;
  onProgress?: (p: { storedBytes: number; totalBytes: number }) => void;
  /** Stops the download (and the decryption) at once. */
  signal?: AbortSignal;
  /** Parallel ranged GETs for objects larger than one part. @default 4 × 16 MiB */
  download?: { partSize?: number; concurrency?: number };
}

export async function readManifest(s3: S3Client, bucket: string, key: string): Promise<Manifest> {
  let text: string;
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    text = await out.Body!.transformToString();
  } catch (error) {
    const e = error as { name?: string };
    if (e.name === 'NoSuchKey' || e.name === 'NotFound') {
      throw new BackupNotFoundError(`No manifest at s3://${bucket}/${key}: this is not a committed backup.`, {
        cause: error,
        nextStep: 'list the backups with `lifeboat backups` and pick one with a manifest.',
      });
    }
    throw classifyS3Error(error, 'reading the manifest', bucket, key) ?? error;
  }
  const parsed = manifestSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new BackupNotFoundError(`The manifest at s3://${bucket}/${key} is not a valid lifeboat manifest: ${parsed.error.issues[0]?.message}`);
  }
  return parsed.data;
}

export interface FetchResult {
  sha256: string;
  storedBytes: number;
  plaintextBytes: number;
}

/** One encrypted object of a backup, as its manifest describes it. */
interface StoredPart {
  key: string;
  sha256: string;
  storedBytes: number;
  encryptionContext: Record<string, string>;
  /** How messages name it, e.g. `backup X of database "y"`. */
  label: string;
}

function dumpPart(manifest: Manifest): StoredPart {
  return {
    key: manifest.object.key,
    sha256: manifest.object.sha256,
    storedBytes: manifest.object.storedBytes,
    encryptionContext: manifest.encryption.encryptionContext,
    label: `backup ${manifest.backupId} of database "${manifest.database.id}"`,
  };
}

/**
 * Streams a backup object from S3 through sha256 and decryption into `sink`.
 * Throws ChecksumMismatchError when the stored bytes are not the manifest's and
 * DecryptionError when authentication fails. The sink has received plaintext by
 * then, so callers must treat what it wrote as untrusted until this resolves.
 */
export async function fetchAndDecrypt(manifest: Manifest, sink: Writable, deps: FetchDeps, bucket = manifest.object.bucket): Promise<FetchResult> {
  return fetchPart(manifest, dumpPart(manifest), sink, deps, bucket);
}

/**
 * Reads a backup's globals (roles, tablespaces) from `globals.enc`, checked
 * against the manifest's sha256 and decrypted under its own encryption context.
 */
export async function fetchGlobals(manifest: Manifest, deps: FetchDeps, bucket = manifest.object.bucket): Promise<GlobalsDocument> {
  const ref = manifest.globals;
  if (!ref) throw new BackupNotFoundError(`Backup ${manifest.backupId} of database "${manifest.database.id}" predates the recording of roles; it has no globals.`);
  const part: StoredPart = { ...ref, label: `the globals (roles, tablespaces) of backup ${manifest.backupId} of database "${manifest.database.id}"` };
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  await fetchPart(manifest, part, sink, { ...deps, onProgress: undefined }, bucket);
  const parsed = globalsDocumentSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
  if (!parsed.success) throw new DecryptionError(`${part.label} decrypted but is not a lifeboat globals document: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

async function fetchPart(manifest: Manifest, part: StoredPart, sink: Writable, deps: FetchDeps, bucket: string): Promise<FetchResult> {
  const key = part.key;
  let body: Readable;
  const ranged = deps.download ?? {};
  if (part.storedBytes > (ranged.partSize ?? DEFAULT_RANGE_PART_SIZE)) {
    // Large objects: parallel ranged GETs, read in order and overlapped with the hashing and decryption below.
    body = rangedObjectStream(deps.s3, bucket, key, part.storedBytes, { ...ranged, signal: deps.signal });
  } else {
    try {
      const out = await deps.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: deps.signal });
      body = out.Body as Readable;
    } catch (error) {
      sink.destroy(); // never written to: its file descriptor goes now, not at exit
      if (deps.signal?.aborted) throw deps.signal.reason;
      throw classifyS3Error(error, 'reading the backup', bucket, key) ?? error;
    }
  }
  const hash = createHash('sha256');
  let storedBytes = 0;
  let plaintextBytes = 0;
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      storedBytes += chunk.length;
      hash.update(chunk);
      deps.onProgress?.({ storedBytes, totalBytes: part.storedBytes });
      cb(null, chunk);
    },
  });
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      plaintextBytes += chunk.length;
      cb(null, chunk);
    },
  });
  const decrypt = createDecryptStream(deps.kms, [manifest.encryption.kmsKeyArn, ...(manifest.encryption.recoveryKmsKeyArns ?? [])], part.encryptionContext);
  let streamError: unknown;
  try {
    await pipeline(body, hasher, decrypt, counter, sink, { signal: deps.signal });
  } catch (error) {
    if (deps.signal?.aborted) throw deps.signal.reason;
    streamError = error;
  }
  // A flipped byte shows up as a decryption failure mid-stream; the checksum
  // is the clearer diagnosis, so finish hashing what S3 holds before deciding.
  let sha256: string;
  if (streamError !== undefined) {
    sha256 = await hashRemaining(deps.s3, bucket, key, deps.signal);
  } else {
    sha256 = hash.digest('hex');
  }
  const where = `${part.label} (s3://${bucket}/${key})`;
  if (sha256 !== part.sha256) {
    throw new ChecksumMismatchError(`The stored object of ${where} has sha256 ${sha256}, the manifest says ${part.sha256}.`, {
      cause: streamError,
      nextStep: 'the object is corrupt or was replaced; restore from another backup or the vault copy.',
    });
  }
  if (streamError !== undefined) {
    if (streamError instanceof LifeboatError) throw streamError;
    const kms = classifyKmsError(streamError, `to decrypt ${where}`, manifest.encryption.kmsKeyArn);
    if (kms) throw kms;
    throw new DecryptionError(`Decrypting ${where} failed: ${(streamError as Error).message}`, {
      cause: streamError,
      nextStep: 'the object fails authentication; restore from another backup or the vault copy.',
    });
  }
  if (storedBytes !== part.storedBytes) {
    throw new ChecksumMismatchError(`${where} has ${storedBytes} bytes, the manifest says ${part.storedBytes}.`);
  }
  return { sha256, storedBytes, plaintextBytes };
}

async function hashRemaining(s3: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<string> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    const hash = createHash('sha256');
    for await (const chunk of out.Body as Readable) {
      signal?.throwIfAborted();
      hash.update(chunk as Buffer);
    }
    return hash.digest('hex');
  } catch (error) {
    throw signal?.aborted ? signal.reason : error;
  }
}
