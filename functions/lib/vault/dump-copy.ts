import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { manifestSchema, type Manifest } from '../backup/manifest.ts';
import { MAX_PARTS, MIB, MIN_PART_SIZE } from '../backup/part-size.ts';
import { classifyS3Error } from '../backup/s3-errors.ts';
import { BackupNotFoundError, ChecksumMismatchError, LifeboatError, VaultCopyVerificationError } from '../errors.ts';

/**
 * Copies one committed dump (data object and globals, then manifest) into the vault bucket.
 *
 * Why an explicit step and not S3 replication: replication is asynchronous
 * and unordered, so the vault could hold a manifest (the commit marker) before
 * its data, and nothing in the backup run could verify the copy or alert on
 * it. Here the run itself streams the object across accounts, checks its
 * sha256 against the manifest on the way in and again by reading the stored
 * object back, writes the manifest last, and fails the run (with an alert)
 * when any of that does not hold. It also needs no replication role in
 * production with rights on the vault, and it runs unchanged against moto.
 *
 * The copier can add objects but never delete or overwrite them (versioning,
 * Object Lock in compliance mode, If-None-Match on every write, and a bucket
 * policy that requires it). So a copy that fails verification cannot be
 * removed: it is marked with a `<key>.quarantine.json` object beside it, its
 * manifest is not written (without a manifest it is not a backup), and the
 * run fails with VaultCopyVerificationError, which raises an alert.
 */
export interface VaultDumpCopyRequest {
  readonly sourceBucket: string;
  readonly manifestKey: string;
  readonly databaseId: string;
  readonly executionId?: string;
}

export interface VaultDumpCopyDeps {
  /** Production credentials: reads the source backup. */
  readonly sourceS3: S3Client;
  /** Vault copier credentials: writes (and reads back) the vault copy. */
  readonly vaultS3: S3Client;
  readonly vaultBucket: string;
  /** Parts uploaded at once. @default 4 */
  readonly concurrency?: number;
  /** Multipart part size in bytes (S3's minimum is 5 MiB). @default from the object's size, at least 8 MiB */
  readonly partSize?: number;
  readonly now?: () => Date;
}

export interface VaultDumpCopyResult {
  readonly status: 'copied' | 'already-in-vault';
  readonly vaultBucket: string;
  readonly dataKey: string;
  readonly manifestKey: string;
  readonly dataVersionId?: string;
  readonly manifestVersionId?: string;
  readonly sha256: string;
  readonly storedBytes: number;
}

export function quarantineKey(key: string): string {
  return `${key}.quarantine.json`;
}

const isMissing = (error: unknown) => {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
};
const isPreconditionFailed = (error: unknown) => {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'PreconditionFailed' || e?.$metadata?.httpStatusCode === 412;
};

async function head(s3: S3Client, bucket: string, key: string): Promise<{ versionId?: string; size?: number } | undefined> {
  try {
    const out = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { versionId: out.VersionId, size: out.ContentLength };
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw classifyS3Error(error, 'checking the vault copy', bucket, key) ?? error;
  }
}

/** sha256 of an object, streamed (no temp file, constant memory). */
async function sha256Of(s3: S3Client, bucket: string, key: string, versionId?: string): Promise<{ sha256: string; bytes: number }> {
  let body: Readable;
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    body = out.Body as Readable;
  } catch (error) {
    throw classifyS3Error(error, 'reading back the vault copy', bucket, key) ?? error;
  }
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of body) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Marks a vault object that failed verification; the copier cannot delete it. */
async function quarantine(deps: VaultDumpCopyDeps, key: string, details: Record<string, unknown>): Promise<string> {
  const marker = quarantineKey(key);
  const body = JSON.stringify({ lifeboatQuarantine: 1, key, ...details, detectedAt: (deps.now?.() ?? new Date()).toISOString() }, null, 2);
  try {
    await deps.vaultS3.send(new PutObjectCommand({ Bucket: deps.vaultBucket, Key: marker, Body: body, ContentType: 'application/json', IfNoneMatch: '*' }));
  } catch (error) {
    // An earlier attempt already marked it.
    if (!isPreconditionFailed(error)) throw classifyS3Error(error, 'writing the quarantine marker', deps.vaultBucket, marker) ?? error;
  }
  return marker;
}

/** An object of a backup the manifest checksums: the dump, or its globals. */
interface BackupPart {
  key: string;
  sha256: string;
  storedBytes: number;
}

/** The objects a vault copy must hold before its manifest: the dump and, when recorded, the globals. */
function partsOf(manifest: Manifest): BackupPart[] {
  return [manifest.object, ...(manifest.globals ? [manifest.globals] : [])];
}

async function verifyStored(deps: VaultDumpCopyDeps, manifest: Manifest, part: BackupPart, versionId: string | undefined, request: VaultDumpCopyRequest): Promise<void> {
  const key = part.key;
  const stored = await sha256Of(deps.vaultS3, deps.vaultBucket, key, versionId);
  if (stored.sha256 === part.sha256 && stored.bytes === part.storedBytes) return;
  const marker = await quarantine(deps, key, {
    versionId,
    expectedSha256: part.sha256,
    actualSha256: stored.sha256,
    expectedBytes: part.storedBytes,
    actualBytes: stored.bytes,
    backupId: manifest.backupId,
    databaseId: request.databaseId,
    executionId: request.executionId,
    reason: 'the stored object does not match the sha256 in its manifest',
  });
  throw new VaultCopyVerificationError(
    `The vault copy s3://${deps.vaultBucket}/${key}${versionId ? ` (version ${versionId})` : ''} of backup ${manifest.backupId} (database "${request.databaseId}") has sha256 ${stored.sha256} and ${stored.bytes} bytes; its manifest says ${part.sha256} and ${part.storedBytes}. It cannot be deleted (Object Lock), so it is marked by s3://${deps.vaultBucket}/${marker} and its manifest was not copied: it is not a vault backup.`,
    { nextStep: 'check the vault bucket and the network path; the next run copies a fresh backup under a new key. Restore tools skip keys without a manifest.' },
  );
}

function partSizeFor(bytes: number): number {
  return Math.max(MIN_PART_SIZE, Math.ceil(bytes / (MAX_PARTS - 1000) / MIB) * MIB);
}

/**
 * Streams the source object into the vault: one PutObject for small objects,
 * a multipart upload otherwise, every write with If-None-Match: *. The bytes
 * are hashed on the way; if they do not match the manifest the upload is
 * aborted before it completes, so nothing is stored.
 */
async function streamIntoVault(deps: VaultDumpCopyDeps, manifest: Manifest, part: BackupPart, request: VaultDumpCopyRequest): Promise<string | undefined> {
  const key = part.key;
  let body: Readable;
  try {
    const out = await deps.sourceS3.send(new GetObjectCommand({ Bucket: request.sourceBucket, Key: key }));
    body = out.Body as Readable;
  } catch (error) {
    throw classifyS3Error(error, 'reading the backup for the vault copy', request.sourceBucket, key) ?? error;
  }
  const expected = part;
  const partSize = deps.partSize ?? partSizeFor(expected.storedBytes);
  const hash = createHash('sha256');
  const mismatch = (actual: string, bytes: number) =>
    new ChecksumMismatchError(
      `The source object s3://${request.sourceBucket}/${key} of backup ${manifest.backupId} (database "${request.databaseId}") has sha256 ${actual} and ${bytes} bytes; its manifest says ${expected.sha256} and ${expected.storedBytes}. Nothing was stored in the vault.`,
      { nextStep: 'treat this backup as corrupt: run `lifeboat verify` on it and take a fresh backup.' },
    );

  if (expected.storedBytes <= partSize) {
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      if (bytes > partSize) break;
    }
    const data = Buffer.concat(chunks);
    const digest = hash.update(data).digest();
    if (digest.toString('hex') !== expected.sha256 || bytes !== expected.storedBytes) throw mismatch(digest.toString('hex'), bytes);
    try {
      const out = await deps.vaultS3.send(
        new PutObjectCommand({ Bucket: deps.vaultBucket, Key: key, Body: data, IfNoneMatch: '*', ChecksumAlgorithm: 'SHA256', ChecksumSHA256: digest.toString('base64'), ContentType: 'application/octet-stream' }),
      );
      return out.VersionId;
    } catch (error) {
      throw classifyS3Error(error, 'writing the vault copy', deps.vaultBucket, key) ?? error;
    }
  }

  let uploadId: string | undefined;
  try {
    const created = await deps.vaultS3.send(new CreateMultipartUploadCommand({ Bucket: deps.vaultBucket, Key: key, ContentType: 'application/octet-stream' }));
    uploadId = created.UploadId!;
    const parts: CompletedPart[] = [];
    const inFlight = new Set<Promise<void>>();
    const concurrency = deps.concurrency ?? 4;
    let failure: unknown;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let partNumber = 0;
    let bytes = 0;
    const flush = async () => {
      const data = Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      const number = ++partNumber;
      const tracked: Promise<void> = deps.vaultS3
        .send(new UploadPartCommand({ Bucket: deps.vaultBucket, Key: key, UploadId: uploadId, PartNumber: number, Body: data }))
        .then(
          (out) => void parts.push({ PartNumber: number, ETag: out.ETag }),
          (error: unknown) => void (failure ??= error),
        )
        .finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
      if (failure) throw failure;
    };
    for await (const chunk of body) {
      const buffer = chunk as Buffer;
      hash.update(buffer);
      bytes += buffer.length;
      pending.push(buffer);
      pendingBytes += buffer.length;
      if (pendingBytes >= partSize) await flush();
    }
    if (pendingBytes > 0 || partNumber === 0) await flush();
    await Promise.all(inFlight);
    if (failure) throw failure;
    const actual = hash.digest('hex');
    if (actual !== expected.sha256 || bytes !== expected.storedBytes) throw mismatch(actual, bytes);
    const done = await deps.vaultS3.send(
      new CompleteMultipartUploadCommand({
        Bucket: deps.vaultBucket,
        Key: key,
        UploadId: uploadId,
        IfNoneMatch: '*',
        MultipartUpload: { Parts: parts.sort((a, b) => a.PartNumber! - b.PartNumber!) },
      }),
    );
    uploadId = undefined;
    return done.VersionId;
  } catch (error) {
    if (uploadId) await deps.vaultS3.send(new AbortMultipartUploadCommand({ Bucket: deps.vaultBucket, Key: key, UploadId: uploadId })).catch(() => undefined);
    if (error instanceof LifeboatError) throw error;
    throw classifyS3Error(error, 'writing the vault copy', deps.vaultBucket, key) ?? error;
  }
}

async function readSourceManifest(s3: S3Client, bucket: string, key: string): Promise<{ text: string; manifest: Manifest }> {
  let text: string;
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    text = await out.Body!.transformToString();
  } catch (error) {
    if (isMissing(error)) {
      throw new BackupNotFoundError(`No manifest at s3://${bucket}/${key}: there is no committed backup to copy to the vault.`, {
        cause: error,
        nextStep: 'the dump did not commit; see its own alert.',
      });
    }
    throw classifyS3Error(error, 'reading the manifest for the vault copy', bucket, key) ?? error;
  }
  const parsed = manifestSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new BackupNotFoundError(`The manifest at s3://${bucket}/${key} is not a valid lifeboat manifest: ${parsed.error.issues[0]?.message}`);
  return { text, manifest: parsed.data };
}

/** Writes the manifest (the commit marker) last, byte for byte, and checks what was stored. */
async function copyManifest(deps: VaultDumpCopyDeps, key: string, text: string): Promise<string | undefined> {
  const digest = createHash('sha256').update(text).digest();
  let versionId: string | undefined;
  try {
    const out = await deps.vaultS3.send(
      new PutObjectCommand({ Bucket: deps.vaultBucket, Key: key, Body: text, ContentType: 'application/json', IfNoneMatch: '*', ChecksumAlgorithm: 'SHA256', ChecksumSHA256: digest.toString('base64') }),
    );
    versionId = out.VersionId;
  } catch (error) {
    throw classifyS3Error(error, 'writing the manifest to the vault', deps.vaultBucket, key) ?? error;
  }
  const stored = await sha256Of(deps.vaultS3, deps.vaultBucket, key, versionId);
  if (stored.sha256 !== digest.toString('hex')) {
    const marker = await quarantine(deps, key, { versionId, expectedSha256: digest.toString('hex'), actualSha256: stored.sha256, reason: 'the stored manifest differs from the source manifest' });
    throw new VaultCopyVerificationError(`The manifest stored at s3://${deps.vaultBucket}/${key} differs from the source manifest; it is marked by s3://${deps.vaultBucket}/${marker}.`, {
      nextStep: 'check the vault bucket; restore tools must treat this backup as unverified.',
    });
  }
  return versionId;
}

export async function copyDumpToVault(request: VaultDumpCopyRequest, deps: VaultDumpCopyDeps): Promise<VaultDumpCopyResult> {
  const { text, manifest } = await readSourceManifest(deps.sourceS3, request.sourceBucket, request.manifestKey);
  const dataKey = manifest.object.key;
  const base = { vaultBucket: deps.vaultBucket, dataKey, manifestKey: request.manifestKey, sha256: manifest.object.sha256, storedBytes: manifest.object.storedBytes };

  // A retried step may find its own earlier work: verify it rather than write again.
  const parts = partsOf(manifest);
  const [vaultManifest, ...vaultParts] = await Promise.all([head(deps.vaultS3, deps.vaultBucket, request.manifestKey), ...parts.map((p) => head(deps.vaultS3, deps.vaultBucket, p.key))]);
  if (vaultManifest && vaultParts.every(Boolean)) {
    for (const [i, part] of parts.entries()) await verifyStored(deps, manifest, part, vaultParts[i]!.versionId, request);
    return { status: 'already-in-vault', ...base, dataVersionId: vaultParts[0]!.versionId, manifestVersionId: vaultManifest.versionId };
  }
  const versionIds: (string | undefined)[] = [];
  for (const [i, part] of parts.entries()) {
    let versionId = vaultParts[i]?.versionId;
    if (!vaultParts[i]) {
      try {
        versionId = await streamIntoVault(deps, manifest, part, request);
      } catch (error) {
        // Another attempt won the race for the key: fall through to verifying what it stored.
        if (!isPreconditionFailed((error as { cause?: unknown }).cause ?? error)) throw error;
        versionId = (await head(deps.vaultS3, deps.vaultBucket, part.key))?.versionId;
      }
    }
    await verifyStored(deps, manifest, part, versionId, request);
    versionIds.push(versionId);
  }
  const manifestVersionId = await copyManifest(deps, request.manifestKey, text);
  return { status: 'copied', ...base, dataVersionId: versionIds[0], manifestVersionId };
}
