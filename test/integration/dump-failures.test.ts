import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DisableKeyCommand } from '@aws-sdk/client-kms';
import { runDumpBackup, type DumpBackupDeps, type DumpBackupRequest } from '../../functions/lib/backup/dump-pipeline.ts';
import { dumpSettingsSchema } from '../../functions/lib/config/schema.ts';
import { DatabaseConnectionError, DumpFailedError, EncryptionKeyError, StorageError, ThrottledError } from '../../functions/lib/errors.ts';
import { freePort } from '../../functions/lib/pg/ports.ts';
import { createKeyringKmsClient } from '../../functions/lib/backup/encryption.ts';
import { enforceKmsKeyState, startFaultProxy } from '../../local/fault-proxy.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { adminClient, createTestDatabase, pgServer, withClient } from '../harness/pg.ts';

const clients = testClients();

/**
 * An impostor PostgreSQL server: answers any startup message with an
 * authentication request (3: cleartext password, 5: MD5 with a salt) and keeps
 * every byte the client sends after it, then hangs up after a second.
 */
async function startPasswordAskingServer(code: 3 | 5, options: { thenOk?: boolean } = {}): Promise<{ port: number; received(): Buffer; stop(): Promise<void> }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let asked = false;
    socket.on('data', (data) => {
      if (asked) {
        chunks.push(Buffer.from(data));
        return;
      }
      asked = true;
      const request = Buffer.alloc(code === 5 ? 13 : 9);
      request.write('R', 0, 'latin1');
      request.writeInt32BE(code === 5 ? 12 : 8, 1);
      request.writeInt32BE(code, 5);
      if (code === 5) request.write('salt', 9, 'latin1');
      // thenOk: the ask, then "authentication ok" and "ready for query" in the same packet, as if no answer were needed.
      const ok = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0, 0x5a, 0, 0, 0, 5, 0x49]);
      socket.write(options.thenOk ? Buffer.concat([request, ok]) : request);
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received: () => Buffer.concat(chunks),
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let goodSecretArn: string;
let keyArn: string;

beforeAll(async () => {
  db = await createTestDatabase('lbfail');
  // About 35 MB uncompressed: big enough to span several 8 MiB parts.
  await withClient(db.name, async (c) => {
    await c.query(`CREATE TABLE events (id bigint PRIMARY KEY, a text, b text)`);
    await c.query(`INSERT INTO events SELECT g, md5(g::text) || md5((g * 7)::text), md5((g * 13)::text) FROM generate_series(1, 400000) g`);
  });
  const s = pgServer();
  goodSecretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  keyArn = await createTestKey();
});
afterAll(async () => {
  await db?.drop();
});

/** Counts S3 commands by name, to prove a multipart upload really was started. */
function countingS3(): { s3: S3Client; calls: Map<string, number> } {
  const { s3 } = testClients();
  const calls = new Map<string, number>();
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      calls.set(context.commandName!, (calls.get(context.commandName!) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: 'countCommands' },
  );
  return { s3, calls };
}

async function assertNothingStored(bucket: string): Promise<void> {
  const objects = await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  const uploads = await clients.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  expect(objects.Contents ?? []).toEqual([]);
  expect(uploads.Uploads ?? []).toEqual([]);
}

function request(bucket: string, overrides: Partial<DumpBackupRequest> = {}): DumpBackupRequest {
  return {
    databaseId: 'events-db',
    connection: { database: db.name, secretArn: goodSecretArn, sslMode: 'disable', passwordAuth: 'scram-sha-256', connectTimeoutSeconds: 3 },
    settings: dumpSettingsSchema.parse({ compression: { codec: 'none' } }),
    target: { bucket, prefix: 'backups/', kmsKeyArn: keyArn },
    ...overrides,
  };
}

async function failure(req: DumpBackupRequest, deps: Partial<DumpBackupDeps> = {}): Promise<Error> {
  const outcome = await runDumpBackup(req, { s3: clients.s3, kms: clients.keyringKms, secrets: clients.secrets, ...deps }).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (!outcome) throw new Error('the backup was expected to fail but succeeded');
  return outcome;
}

describe('a dump that fails is never stored as a backup', () => {
  it('pg_dump killed midway: aborts the multipart upload it had started and names the database', async () => {
    // Prepare
    const bucket = await createTestBucket();
    const { s3, calls } = countingS3();
    let pid: number | undefined;
    let killed = false;

    // Act
    const error = await failure(request(bucket), {
      s3,
      onDumpStarted: (p) => {
        pid = p;
      },
      onProgress: (p) => {
        if (!killed && p.storedBytes > 18 * 1024 * 1024 && pid) {
          killed = true;
          process.kill(pid, 'SIGKILL');
        }
      },
    });

    // Assess
    expect(killed).toBe(true);
    expect(calls.get('CreateMultipartUploadCommand')).toBe(1);
    expect(calls.get('CompleteMultipartUploadCommand')).toBeUndefined();
    expect(error).toBeInstanceOf(DumpFailedError);
    expect(error.message).toMatch(/database "events-db".*killed by SIGKILL midway/s);
    await assertNothingStored(bucket);
  });

  it('the connection holding the snapshot is terminated midway: the upload stops at once, naming that connection, nothing stored', async () => {
    // Prepare
    const bucket = await createTestBucket();
    const { s3, calls } = countingS3();
    let terminated = false;
    let storedAtTermination = 0;
    let storedAtEnd = 0;

    // Act: once the upload is under way, an administrator ends the lifeboat-snapshot session.
    const error = await failure(request(bucket), {
      s3,
      onProgress: (p) => {
        storedAtEnd = p.storedBytes;
        if (!terminated && p.storedBytes > 4 * 1024 * 1024) {
          terminated = true;
          storedAtTermination = p.storedBytes;
          void withClient('postgres', (c) => c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lifeboat-snapshot' AND datname = $1`, [db.name]));
        }
      },
    });

    // Assess: stopped well before the end of the ~35 MB dump, never completed, and the message says which connection.
    expect(terminated).toBe(true);
    expect(error).toBeInstanceOf(DumpFailedError);
    expect(error.message).toMatch(/The connection that holds the dump's snapshot of database "events-db" .*\(application lifeboat-snapshot, server process \d+\) was lost midway: .*terminating connection due to administrator command.*The upload was stopped at once; nothing was stored\./s);
    expect(calls.get('CompleteMultipartUploadCommand')).toBeUndefined();
    expect(storedAtEnd - storedAtTermination).toBeLessThan(20 * 1024 * 1024);
    await assertNothingStored(bucket);
  });

  it('non-zero pg_dump exit (lock wait timeout): fails with pg_dump stderr and stores nothing', async () => {
    const bucket = await createTestBucket();
    const locker = await adminClient(db.name);
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
    try {
      const settings = dumpSettingsSchema.parse({ compression: { codec: 'none' }, lockWaitTimeoutSeconds: 1 });
      const error = await failure(request(bucket, { settings }));
      expect(error).toBeInstanceOf(DumpFailedError);
      expect(error.message).toMatch(/events-db.*(exited with code 1|lock)/s);
      expect(error.message).toMatch(/lock/);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    await assertNothingStored(bucket);
  });

  it('wrong password: a DatabaseConnectionError that names the database and never the password', async () => {
    const bucket = await createTestBucket();
    const s = pgServer();
    const sentinel = 'S3NTINEL-wrong-pass-7f3a9c';
    const secretArn = await createTestSecret({ username: s.user, password: sentinel, host: s.host, port: s.port });
    const error = await failure(request(bucket, { connection: { database: db.name, secretArn, sslMode: 'disable', passwordAuth: 'scram-sha-256', connectTimeoutSeconds: 3 } }));
    expect(error).toBeInstanceOf(DatabaseConnectionError);
    expect(error.message).toMatch(/database "events-db".*password authentication failed/s);
    expect(JSON.stringify({ m: error.message, s: error.stack, c: String((error as { cause?: unknown }).cause) })).not.toContain(sentinel);
    await assertNothingStored(bucket);
  });

  it('a server that asks for the password in cleartext or as MD5 (even one that then claims success) receives nothing: the dump fails naming the ask, nothing stored', async () => {
    // Prepare: an impostor that answers the startup message with a cleartext (or MD5) password request and
    // records everything the client sends after it; the secret's password is a sentinel.
    const sentinel = 'S3NTINEL-scram-only-51c2';
    const impostors = await Promise.all([startPasswordAskingServer(3), startPasswordAskingServer(5), startPasswordAskingServer(3, { thenOk: true })]);
    try {
      const dumps = async (passwordAuth: 'scram-sha-256' | 'any', server: (typeof impostors)[number]) => {
        const bucket = await createTestBucket();
        const secretArn = await createTestSecret({ username: 'app', password: sentinel, host: '127.0.0.1', port: server.port });
        const error = await failure(request(bucket, { connection: { database: db.name, secretArn, sslMode: 'disable', passwordAuth, connectTimeoutSeconds: 3 } }));
        await assertNothingStored(bucket);
        return error;
      };

      // Act
      const refused = [await dumps('scram-sha-256', impostors[0]!), await dumps('scram-sha-256', impostors[1]!), await dumps('scram-sha-256', impostors[2]!)];
      const receivedWhenRefused = impostors.map((i) => i.received());
      const allowed = await dumps('any', impostors[0]!);

      // Assess: nothing after the ask (no password message at all); with passwordAuth "any" the password goes out.
      expect(refused.map((e) => e.name)).toEqual(['DatabaseConnectionError', 'DatabaseConnectionError', 'DatabaseConnectionError']);
      expect(refused[2]!.message).toMatch(/the server asked for a cleartext password, and lifeboat sends/);
      expect(refused[0]!.message).toMatch(/database "events-db" .*: the server asked for a cleartext password, and lifeboat sends this database's password only through SCRAM .*; nothing was sent\./);
      expect(refused[1]!.message).toMatch(/the server asked for an MD5 password/);
      expect((refused[0] as DatabaseConnectionError & { nextStep?: string }).nextStep).toMatch(/password_encryption = 'scram-sha-256'.*connection\.passwordAuth/);
      expect(receivedWhenRefused).toEqual([Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)]);
      expect(allowed).toBeInstanceOf(DatabaseConnectionError);
      expect(impostors[0]!.received().toString('latin1')).toContain(sentinel);
    } finally {
      await Promise.all(impostors.map((i) => i.stop()));
    }
  });

  it('unreachable host: fails fast with where it tried to connect', async () => {
    const bucket = await createTestBucket();
    const port = await freePort();
    const started = Date.now();
    const error = await failure(
      request(bucket, { connection: { host: '127.0.0.1', port, database: db.name, secretArn: goodSecretArn, sslMode: 'disable', passwordAuth: 'scram-sha-256', connectTimeoutSeconds: 3 } }),
    );
    expect(error).toBeInstanceOf(DatabaseConnectionError);
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).toMatch(/did not accept connections/);
    expect(Date.now() - started).toBeLessThan(10_000);
    await assertNothingStored(bucket);
  });

  it('disabled KMS key: an EncryptionKeyError naming the key and the database, nothing stored', async () => {
    // Prepare: moto keeps using a disabled key, so a loopback proxy enforces the state as KMS does.
    const bucket = await createTestBucket();
    const disabledKey = await createTestKey();
    await clients.kms.send(new DisableKeyCommand({ KeyId: disabledKey.split('/').pop() }));
    const moto = process.env.AWS_ENDPOINT_URL!;
    const proxy = await startFaultProxy(moto);
    proxy.addRule(enforceKmsKeyState(moto));

    // Act
    const error = await failure(request(bucket, { target: { bucket, prefix: 'backups/', kmsKeyArn: disabledKey } }), {
      kms: createKeyringKmsClient({ endpoint: proxy.endpoint }),
    }).finally(() => proxy.stop());

    // Assess
    expect(error).toBeInstanceOf(EncryptionKeyError);
    expect(error.message).toContain(disabledKey);
    expect(error.message).toMatch(/events-db/);
    expect(error.message).toMatch(/Disabled/);
    await assertNothingStored(bucket);
  });

  it('missing KMS key: an EncryptionKeyError saying the key does not exist', async () => {
    const bucket = await createTestBucket();
    const missingKey = 'arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000';
    const error = await failure(request(bucket, { target: { bucket, prefix: 'backups/', kmsKeyArn: missingKey } }));
    expect(error).toBeInstanceOf(EncryptionKeyError);
    expect(error.message).toContain(missingKey);
    await assertNothingStored(bucket);
  });

  it('missing bucket: a StorageError naming the bucket before pg_dump even starts', async () => {
    let started = false;
    const error = await failure(request('lifeboat-no-such-bucket'), { onDumpStarted: () => (started = true) });
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toMatch(/lifeboat-no-such-bucket does not exist/);
    expect(error.message).toMatch(/events-db/);
    expect(started).toBe(false);
  });

  it('S3 throttling that outlasts the retries: a retryable ThrottledError, the upload aborted, nothing stored', async () => {
    // Prepare: every UploadPart answers 503 SlowDown, as S3 does under load.
    const bucket = await createTestBucket();
    const proxy = await startFaultProxy(process.env.AWS_ENDPOINT_URL!);
    let throttled = 0;
    proxy.addRule((req) => {
      if (req.method !== 'PUT' || !/[?&]partNumber=/.test(req.url)) return undefined;
      throttled++;
      return { status: 503, headers: { 'content-type': 'application/xml' }, body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>' };
    });
    const throughProxy = new S3Client({ endpoint: proxy.endpoint, forcePathStyle: true, maxAttempts: 2 });

    // Act
    const error = await failure(request(bucket), { s3: throughProxy }).finally(() => proxy.stop());

    // Assess
    expect(throttled).toBeGreaterThanOrEqual(2);
    expect(error).toBeInstanceOf(ThrottledError);
    expect((error as ThrottledError).retryable).toBe(true);
    expect(error.message).toMatch(/events-db.*S3 throttled uploading the dump.*SlowDown/s);
    await assertNothingStored(bucket);
  });
});
