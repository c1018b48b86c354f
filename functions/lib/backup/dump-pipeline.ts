import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import { HeadBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { KMS } from '@aws-sdk/client-kms';
import { Upload } from '@aws-sdk/lib-storage';
import type pg from 'pg';
import type { RDSClient } from '@aws-sdk/client-rds';
import type { IamAuthTokenSigner } from '../pg/iam-auth.ts';
import { lookupRdsEndpoint, type RdsReference } from '../pg/rds-endpoint.ts';
import type { ConnectionConfig, DumpSettings } from '../config/schema.ts';
import { DumpFailedError, LifeboatError, StorageError } from '../errors.ts';
import { redactError, SecretRegistry } from '../redact.ts';
import { connect, describeTarget, libpqEnv, resolveConnection, type ResolvedConnection } from '../pg/connection.ts';
import { readDatabaseState } from '../pg/database-state.ts';
import { countRows, readCatalog, readSequences } from '../pg/inventory.ts';
import { readPrivileges } from '../pg/privileges.ts';
import { readGlobals, tablespacesUsed } from '../pg/roles.ts';
import { runPgDumpallGlobals, storeGlobals } from './globals.ts';
import { chooseCompression, dumpClientFor } from '../pg/tools.ts';
import { classifyKmsError, createEncryptStream, encryptionContextFor, FRAME_LENGTH } from './encryption.ts';
import { backupKeys, MANIFEST_FORMAT_VERSION, manifestSchema, newBackupId, type Inventory, type Manifest } from './manifest.ts';
import { planPartSize } from './part-size.ts';
import { abortStaleMultipartUploads, classifyS3Error } from './s3-errors.ts';

export interface DumpTarget {
  bucket: string;
  /** Key prefix, empty or ending in '/'. */
  prefix: string;
  /** KMS key for the envelope encryption. */
  kmsKeyArn: string;
  /**
   * Keys that also wrap each backup's data key (kms:Encrypt only), e.g. the
   * vault's recovery key, so vault copies decrypt without this account.
   * @default []
   */
  recoveryKmsKeyArns?: string[];
}

export interface DumpBackupRequest {
  databaseId: string;
  planId?: string;
  connection: ConnectionConfig;
  settings: DumpSettings;
  target: DumpTarget;
  /** Normally generated; fixed by callers that need a known id. */
  backupId?: string;
  /** The RDS instance or cluster behind the database, to find its endpoint when no host is configured. */
  rds?: RdsReference;
}

export interface DumpProgress {
  databaseId: string;
  backupId: string;
  rawBytes: number;
  storedBytes: number;
  elapsedMs: number;
  /** The database size, a rough upper bound for the dump (for ETA). */
  estimatedBytes: number;
}

export interface DumpBackupDeps {
  s3: S3Client;
  /** Aggregated KMS client, as the Encryption SDK's keyring needs. */
  kms: KMS;
  secrets?: SecretsManagerClient;
  /** Collects the secrets this run sees so every message can be redacted. */
  secretRegistry?: SecretRegistry;
  /** @default the lowest installed pg_dump at or above the server's major (see dumpClientFor) */
  pgDumpPath?: string;
  /** Concurrent part uploads; memory is about (queueSize + 1) × part size. @default 2 */
  queueSize?: number;
  now?: () => Date;
  env?: NodeJS.ProcessEnv;
  onProgress?: (progress: DumpProgress) => void;
  /** Called with pg_dump's pid once it runs (tests use it to kill pg_dump midway). */
  onDumpStarted?: (pid: number) => void;
  /** Signs RDS IAM auth tokens, for connections with `iamAuth`. */
  iamAuthToken?: IamAuthTokenSigner;
  /** RDS client, to look up the endpoint of `request.rds` when the config names no host. */
  rds?: Pick<RDSClient, 'send'>;
}

export interface DumpBackupResult {
  databaseId: string;
  backupId: string;
  bucket: string;
  dataKey: string;
  manifestKey: string;
  rawBytes: number;
  storedBytes: number;
  sha256: string;
  manifest: Manifest;
}

interface SnapshotInfo {
  snapshotId: string;
  consistentAt: Date;
  serverVersion: string;
  serverVersionNum: number;
  sizeBytes: number;
  systemIdentifier?: string;
}

async function exportSnapshot(client: pg.Client): Promise<SnapshotInfo> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  const { rows } = await client.query<{
    snapshot_id: string;
    consistent_at: Date;
    server_version: string;
    server_version_num: string;
    size: string;
    can_read_control: boolean;
  }>(
    `SELECT pg_export_snapshot() AS snapshot_id, clock_timestamp() AS consistent_at,
            current_setting('server_version') AS server_version, current_setting('server_version_num') AS server_version_num,
            pg_database_size(current_database())::text AS size,
            has_function_privilege('pg_control_system()', 'EXECUTE') AS can_read_control`,
  );
  const row = rows[0]!;
  let systemIdentifier: string | undefined;
  if (row.can_read_control) {
    const sys = await client.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
    systemIdentifier = sys.rows[0]?.id;
  }
  return {
    snapshotId: row.snapshot_id,
    consistentAt: row.consistent_at,
    serverVersion: row.server_version,
    serverVersionNum: Number(row.server_version_num),
    sizeBytes: Number(row.size),
    systemIdentifier,
  };
}

/** pg_dump reports errors on stderr; some (e.g. on large objects) come with exit code 0 on old versions. */
function stderrErrorLine(stderr: string): string | undefined {
  return stderr.split('\n').find((line) => /(^|:\s)(error|fatal|panic):/i.test(line));
}

/**
 * Dumps one database into S3: pg_dump (custom format, its own compression) →
 * AWS Encryption SDK (KMS data key) → sha256 → S3 multipart upload, all streamed.
 *
 * The upload can only complete after pg_dump has exited 0 with a clean stderr:
 * the last stage holds back end-of-stream until then, and any failure errors the
 * stream, which makes lib-storage abort the multipart upload. The manifest is
 * written last, as the commit marker.
 */
export async function runDumpBackup(request: DumpBackupRequest, deps: DumpBackupDeps): Promise<DumpBackupResult> {
  const registry = deps.secretRegistry ?? new SecretRegistry();
  try {
    return await dumpBackup(request, deps, registry);
  } catch (error) {
    throw redactError(withDatabase(error, request.databaseId), registry.values());
  }
}

async function dumpBackup(request: DumpBackupRequest, deps: DumpBackupDeps, registry: SecretRegistry): Promise<DumpBackupResult> {
  const now = deps.now ?? (() => new Date());
  const startedAt = now();
  const { databaseId, target } = request;
  const backupId = request.backupId ?? newBackupId(startedAt, randomBytes(3).toString('hex'));
  const keys = backupKeys(target.prefix, databaseId, backupId);

  const rdsRef = request.rds;
  const rds = deps.rds;
  const conn = await resolveConnection(databaseId, request.connection, {
    secrets: deps.secrets,
    env: deps.env,
    registry,
    iamAuthToken: deps.iamAuthToken,
    endpoint: rds && rdsRef ? () => lookupRdsEndpoint(rds, databaseId, rdsRef) : undefined,
  });
  const where = describeTarget(databaseId, conn);

  // Fail in seconds, not after an hour of dumping, when the bucket is missing.
  try {
    await deps.s3.send(new HeadBucketCommand({ Bucket: target.bucket }));
  } catch (error) {
    throw withDatabase(classifyS3Error(error, 'checking the backup bucket', target.bucket) ?? error, databaseId);
  }

  const client = await connect(databaseId, conn, 'lifeboat-snapshot');
  try {
    const snapshot = await exportSnapshot(client);
    // Row counts wait for table locks like pg_dump does; give up as pg_dump would.
    await client.query(`SET LOCAL lock_timeout = '${request.settings.lockWaitTimeoutSeconds}s'`);
    // The client of the server's major, so that a target of that major can
    // restore the archive; a server newer than every client fails here.
    const dumpTool = await dumpClientFor(
      databaseId,
      { versionNum: snapshot.serverVersionNum, version: snapshot.serverVersion },
      { path: deps.pgDumpPath, codec: request.settings.compression.codec },
    );
    const compression = chooseCompression(request.settings.compression, dumpTool.major);
    const exclude = request.settings.excludeSchemas;
    // Sequences are not transactional: read them before pg_dump does, so a
    // restored value is never below the manifest's.
    const sequences = await readSequences(client, exclude);
    const plan = planPartSize(snapshot.sizeBytes);
    const context = encryptionContextFor(databaseId, backupId);

    // The catalog queries are quick and run before pg_dump starts; a failure
    // here would end the exported snapshot and surface as a confusing pg_dump error.
    const catalog = await readCatalog(client, exclude);
    const privileges = await readPrivileges(client, exclude);
    const databaseState = await readDatabaseState(client);
    // The roles and tablespaces (cluster-wide, not in the dump): read before the dump starts, so that a
    // failure here costs seconds; stored once the dump succeeded, so that a failed dump leaves nothing.
    const globalsDocument = { ...(await readGlobals(client)), pgDumpall: await runPgDumpallGlobals(conn, dumpTool.path, where, registry) };
    const usedTablespaces = await tablespacesUsed(client);
    // Exact counts scan every table: run them beside pg_dump, in the same snapshot.
    const inventoryPromise = countRows(client, exclude).then((tables): Inventory => ({ tables, sequences, ...catalog, privileges }));
    // The row counts, and the snapshot pg_dump imports, live on this connection: if it dies midway, the upload
    // stops at once, naming it, instead of storing the whole dump and failing vaguely at the end.
    const snapshotLost = new AbortController();
    const backendPid = (client as unknown as { processID?: number }).processID;
    const lose = (why: string) => {
      if (snapshotLost.signal.aborted) return;
      snapshotLost.abort(
        new DumpFailedError(`The connection that holds the dump's snapshot of ${where} (application lifeboat-snapshot, server process ${backendPid ?? 'unknown'}) was lost midway: ${why}. The upload was stopped at once; nothing was stored.`, {
          nextStep: 'find out what ended that connection (pg_terminate_backend, idle_in_transaction_session_timeout, a failover, a network drop) and rerun the backup.',
        }),
      );
    };
    client.on('error', (error: Error) => lose(error.message));
    client.on('end', () => lose('the server closed it'));
    // Settled later; this keeps an early rejection from being reported as unhandled, and stops the upload.
    inventoryPromise.catch((error: unknown) => lose(`reading the row counts failed: ${(error as Error).message}`));

    const args = [
      '--format=custom',
      compression.arg,
      `--snapshot=${snapshot.snapshotId}`,
      `--lock-wait-timeout=${request.settings.lockWaitTimeoutSeconds}s`,
      '--no-password',
      ...exclude.map((s) => `--exclude-schema=${s}`),
    ];
    const streamed = await streamDumpToS3({
      deps,
      conn,
      where,
      databaseId,
      backupId,
      args,
      pgDumpPath: dumpTool.path,
      bucket: target.bucket,
      key: keys.data,
      kmsKeyArn: target.kmsKeyArn,
      recoveryKmsKeyArns: target.recoveryKmsKeyArns ?? [],
      context,
      partSize: plan.partSize,
      maxBytes: plan.maxBytes,
      estimatedBytes: snapshot.sizeBytes,
      registry,
      signal: snapshotLost.signal,
    });

    let inventory: Inventory;
    try {
      inventory = await inventoryPromise;
    } catch (error) {
      throw new DumpFailedError(`Reading the inventory of ${where} failed: ${(error as Error).message}`, { cause: error });
    }
    await client.query('COMMIT');
    const globals = await storeGlobals({
      s3: deps.s3,
      kms: deps.kms,
      bucket: target.bucket,
      key: keys.globals,
      kmsKeyArn: target.kmsKeyArn,
      recoveryKmsKeyArns: target.recoveryKmsKeyArns ?? [],
      context,
      document: globalsDocument,
      tablespacesUsed: usedTablespaces,
    });

    const manifest: Manifest = manifestSchema.parse({
      formatVersion: MANIFEST_FORMAT_VERSION,
      backupId,
      kind: 'pg_dump',
      planId: request.planId,
      database: {
        id: databaseId,
        name: conn.database,
        host: conn.host,
        port: conn.port,
        serverVersion: snapshot.serverVersion,
        serverVersionNum: snapshot.serverVersionNum,
        systemIdentifier: snapshot.systemIdentifier,
        sizeBytes: snapshot.sizeBytes,
        state: databaseState,
      },
      dump: {
        tool: 'pg_dump',
        toolVersion: dumpTool.version,
        toolMajor: dumpTool.major,
        format: 'custom',
        compression: compression.label,
        snapshotId: snapshot.snapshotId,
        client: { versionOutput: dumpTool.banner, installedMajors: dumpTool.installedMajors, reason: dumpTool.reason },
      },
      startedAt: startedAt.toISOString(),
      consistentAt: snapshot.consistentAt.toISOString(),
      finishedAt: now().toISOString(),
      object: {
        bucket: target.bucket,
        key: keys.data,
        rawBytes: streamed.rawBytes,
        storedBytes: streamed.storedBytes,
        sha256: streamed.sha256,
        partSizeBytes: plan.partSize,
        versionId: streamed.versionId,
      },
      encryption: {
        sdk: 'aws-encryption-sdk',
        kmsKeyArn: target.kmsKeyArn,
        recoveryKmsKeyArns: target.recoveryKmsKeyArns ?? [],
        encryptionContext: context,
        frameLength: FRAME_LENGTH,
      },
      inventory,
      globals,
    } satisfies Manifest);

    try {
      await deps.s3.send(
        new PutObjectCommand({
          Bucket: target.bucket,
          Key: keys.manifest,
          Body: JSON.stringify(manifest, null, 2),
          ContentType: 'application/json',
        }),
      );
    } catch (error) {
      const cause = classifyS3Error(error, 'writing the manifest', target.bucket, keys.manifest) ?? error;
      throw new StorageError(
        `The dump of ${where} was uploaded but its manifest could not be written, so backup ${backupId} is NOT committed: ${(cause as Error).message}`,
        { cause, nextStep: 'rerun the backup; retention removes the data object left without a manifest.' },
      );
    }

    return {
      databaseId,
      backupId,
      bucket: target.bucket,
      dataKey: keys.data,
      manifestKey: keys.manifest,
      rawBytes: streamed.rawBytes,
      storedBytes: streamed.storedBytes,
      sha256: streamed.sha256,
      manifest,
    };
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}

/** Every error leaving a backup names its database. */
function withDatabase(error: unknown, databaseId: string): Error {
  if (!(error instanceof LifeboatError)) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return new DumpFailedError(`Backup of database "${databaseId}" failed: ${message}`, { cause: error });
  }
  if (!error.message.includes(`"${databaseId}"`)) error.message = `Backup of database "${databaseId}" failed: ${error.message}`;
  return error;
}

interface StreamJob {
  deps: DumpBackupDeps;
  conn: ResolvedConnection;
  where: string;
  databaseId: string;
  backupId: string;
  args: string[];
  pgDumpPath: string;
  bucket: string;
  key: string;
  kmsKeyArn: string;
  recoveryKmsKeyArns: string[];
  context: Record<string, string>;
  partSize: number;
  maxBytes: number;
  estimatedBytes: number;
  registry: SecretRegistry;
  /** Aborts the upload at once with the signal's reason (the snapshot connection was lost). */
  signal?: AbortSignal;
}

async function streamDumpToS3(job: StreamJob): Promise<{ rawBytes: number; storedBytes: number; sha256: string; versionId?: string }> {
  const { deps, where } = job;
  const started = Date.now();
  let rawBytes = 0;
  let storedBytes = 0;
  let failure: unknown;
  let stopping = false;
  const fail = (error: unknown) => {
    if (failure === undefined) failure = error;
  };

  const child = spawn(job.pgDumpPath, job.args, { env: libpqEnv(job.conn, 'lifeboat-pg_dump'), stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) deps.onDumpStarted?.(child.pid);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderr = (stderr + text).slice(-16_384);
  });

  const dumpOutcome = new Promise<void>((resolve, reject) => {
    child.once('error', (error) => {
      reject(new DumpFailedError(`Could not start pg_dump for ${where}: ${error.message}`, { cause: error }));
    });
    child.once('close', (code, signal) => {
      const tail = job.registry.redact(stderr.trim()).split('\n').slice(-5).join('\n');
      if (signal) {
        reject(
          new DumpFailedError(`pg_dump for ${where} was killed by ${signal} midway, after ${rawBytes} bytes. ${tail}`.trim(), {
            nextStep: 'nothing was stored; check the runner for memory or time limits and rerun the backup.',
          }),
        );
      } else if (code !== 0) {
        reject(
          new DumpFailedError(`pg_dump for ${where} exited with code ${code}: ${tail || '(no output)'}`, {
            nextStep: 'nothing was stored; fix the cause above and rerun the backup.',
          }),
        );
      } else if (stderrErrorLine(stderr)) {
        reject(new DumpFailedError(`pg_dump for ${where} reported an error: ${job.registry.redact(stderrErrorLine(stderr)!)}`));
      } else {
        resolve();
      }
    });
  });
  dumpOutcome.catch(() => undefined);

  // Counted by a listener rather than another stream stage: each stage costs CPU per chunk.
  child.stdout.on('data', (chunk: Buffer) => {
    rawBytes += chunk.length;
  });
  const encrypt = createEncryptStream(deps.kms, job.kmsKeyArn, job.context, job.recoveryKmsKeyArns);
  const hash = createHash('sha256');
  let lastProgressAt = 0;
  let lastProgressBytes = 0;
  // The gate: counts and hashes what is stored, and holds back end-of-stream
  // until pg_dump has exited cleanly, so S3 never completes a failed dump.
  const gate = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, callback) {
      storedBytes += chunk.length;
      if (storedBytes > job.maxBytes) {
        callback(
          new DumpFailedError(`The dump of ${where} grew past ${job.maxBytes} bytes, the most 10,000 parts of ${job.partSize} bytes can hold; nothing was stored.`, {
            nextStep:
              'if the database grew sharply during the dump, rerun it (part size follows the database size); past 240 GiB compressed, split the database across plans with dump.excludeSchemas or rely on snapshots for it (see docs/limits.md).',
          }),
        );
        return;
      }
      hash.update(chunk);
      const nowMs = Date.now();
      if (deps.onProgress && (nowMs - lastProgressAt > 250 || storedBytes - lastProgressBytes >= 4 * 1024 * 1024)) {
        lastProgressAt = nowMs;
        lastProgressBytes = storedBytes;
        deps.onProgress({ databaseId: job.databaseId, backupId: job.backupId, rawBytes, storedBytes, elapsedMs: nowMs - started, estimatedBytes: job.estimatedBytes });
      }
      callback(null, chunk);
    },
    flush(callback) {
      dumpOutcome.then(
        () => callback(),
        (error: unknown) => callback(error as Error),
      );
    },
  });

  // An abort or premature close means the consumer (the upload) stopped reading;
  // the upload's own error says why, so these are used only if nothing better is known.
  let consumerStopped: unknown;
  // Piped by hand rather than with pipeline(): pipeline() destroys every stage on
  // an error, and destroying the Encryption SDK's stream mid-message makes its
  // own internal pipeline throw "Premature close" as an uncaught exception,
  // which would crash the Lambda. Here only our gate is destroyed; the SDK
  // stream is unpiped and left to end when pg_dump is stopped.
  const stageFailed = (error: unknown) => {
    if (!stopping) {
      const code = (error as { code?: string }).code;
      if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ABORT_ERR') consumerStopped = error;
      else fail(classifyKmsError(error, 'to generate a data key', job.kmsKeyArn) ?? error);
    }
    if (!gate.destroyed) gate.destroy(error as Error);
  };
  child.stdout.on('error', stageFailed);
  encrypt.on('error', stageFailed);
  gate.on('error', stageFailed);
  child.stdout.pipe(encrypt).pipe(gate);
  const body = gate;

  const upload = new Upload({
    client: deps.s3,
    params: {
      Bucket: job.bucket,
      Key: job.key,
      Body: body,
      ContentType: 'application/octet-stream',
      Metadata: { 'lifeboat-backup-id': job.backupId, 'lifeboat-database': job.databaseId },
    },
    partSize: job.partSize,
    queueSize: deps.queueSize ?? 2,
    leavePartsOnError: false,
  });

  // The snapshot connection died: nothing this upload holds can be committed, so stop it now.
  const onAbort = () => {
    fail(job.signal!.reason);
    void upload.abort();
  };
  if (job.signal?.aborted) onAbort();
  else job.signal?.addEventListener('abort', onAbort, { once: true });
  let versionId: string | undefined;
  try {
    const result = await upload.done();
    versionId = (result as { VersionId?: string }).VersionId;
  } catch (error) {
    fail(classifyS3Error(error, 'uploading the dump', job.bucket, job.key) ?? error);
  }
  job.signal?.removeEventListener('abort', onAbort);
  if (failure === undefined && consumerStopped !== undefined) fail(consumerStopped);
  if (failure !== undefined) {
    // Stop pg_dump if S3 gave up first, so it doesn't block on a full pipe.
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    // Drop pg_dump's unread output so its stdio can close; the SDK stream is
    // unpiped rather than destroyed (see above).
    child.stdout.unpipe();
    child.stdout.destroy();
    body.destroy();
  }
  try {
    await dumpOutcome;
  } catch (error) {
    // pg_dump's own failure is the cause unless we stopped it ourselves.
    if (!stopping || failure === undefined) fail(error);
  }
  if (failure !== undefined) {
    await abortStaleMultipartUploads(deps.s3, job.bucket, job.key).catch(() => undefined);
    throw withDatabase(failure, job.databaseId);
  }
  deps.onProgress?.({ databaseId: job.databaseId, backupId: job.backupId, rawBytes, storedBytes, elapsedMs: Date.now() - started, estimatedBytes: job.estimatedBytes });
  return { rawBytes, storedBytes, sha256: hash.digest('hex'), versionId };
}
