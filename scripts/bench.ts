/**
 * `npm run bench [-- --size 1[,4]] [--reps 3] [--jobs N] [--out docs/benchmarks.md]`
 *
 * A benchmark, not a test: on a throwaway local cluster with the sample database
 * grown to each size, it measures side by side, in one run,
 *   1. raw pg_dump → /dev/null vs the lifeboat dump handler → a null S3 (and → moto),
 *   2. raw pg_restore -j N vs lifeboat's restoreBackup,
 *   3. the dump handler's peak RSS at several sizes (in its own process),
 *   4. the chosen codec vs gzip levels and no compression,
 *   5. the retention planner on 1k/10k/100k backups,
 * and writes a markdown report to docs/benchmarks.md. Everything it starts is
 * stopped and removed, on success, on error and on Ctrl-C. A missed target is
 * reported loudly but is not a failure; only a crash exits non-zero.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import pg from 'pg';
import { formatBytes, formatDuration } from '../cli/progress.ts';
import { createKeyringKmsClient } from '../functions/lib/backup/encryption.ts';
import { planPartSize } from '../functions/lib/backup/part-size.ts';
import { deploymentConfigBytes, deploymentConfigEnvironment, sha256Hex } from '../functions/lib/config/deployment.ts';
import { parseConfig } from '../functions/lib/config/load.ts';
import { startLocalPostgres } from '../functions/lib/pg/postgres-cluster.ts';
import { startMotoServer } from '../local/moto-server.ts';
import { createSampleDatabase, growSampleDatabase } from '../local/sample-data.ts';
import { chooseCompression, toolVersion } from '../functions/lib/pg/tools.ts';
import { readManifest } from '../functions/lib/restore/fetch.ts';
import { restoreBackup } from '../functions/lib/restore/restore.ts';
import type { DumpChildResult } from './bench/dump-child.ts';
import { activeChildren, killActiveChildren, measure, median, runCommand, type CpuProbe } from './bench/measure.ts';
import { startNullS3 } from './bench/null-s3.ts';
import {
  dumpRatio,
  renderMarkdown,
  restoreRatio,
  TARGETS,
  verdicts,
  type BenchResults as Report,
  type CompressionRow,
  type DumpRun,
  type RestoreRun,
  type SizeResult,
} from './bench/report.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const execFileAsync = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const REGION = 'eu-west-1';
const CREDENTIALS = { accessKeyId: 'bench', secretAccessKey: 'bench' };
/** Database sizes whose part plan the memory section simulates on the largest real size. */
const SIMULATED_PART_PLANS_GIB = [50, 100];

// ---------------------------------------------------------------------------
// Options

interface Options {
  sizesGiB: number[];
  reps: number;
  jobs: number;
  out: string;
  /** Also save the measurements as JSON here. */
  json?: string;
  /** Render a saved JSON file instead of measuring. */
  render?: string;
}

const USAGE = `Usage: npm run bench -- [--size <GiB>[,<GiB>...]] [--reps <n>] [--jobs <n>] [--out <file>]

  --size   database sizes to build and measure, in GiB (default 1; e.g. 0.2 for a quick run, 1,4 for two)
  --reps   timed repetitions per measurement, after one warm-up (default 3)
  --jobs   pg_restore --jobs for both restores (default: the number of cores)
  --out    where to write the markdown report (default docs/benchmarks.md; "-" to only print it)
  --json   also save the raw measurements as JSON to this file
  --render re-render the report from a JSON file saved with --json, without measuring`;

function defaultJobs(): number {
  return Math.max(1, Math.min(8, os.cpus().length));
}

function parseOptions(argv: string[]): Options {
  const options: Options = { sizesGiB: [1], reps: 3, jobs: defaultJobs(), out: join(REPO, 'docs/benchmarks.md') };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--size':
      case '--sizes': {
        const sizes = value().split(',').map((x) => Number(x.trim()));
        if (sizes.some((x) => !Number.isFinite(x) || x <= 0 || x > 1024)) throw new UsageError(`--size takes positive numbers of GiB, got "${argv[i]}"`);
        options.sizesGiB = [...new Set(sizes)].sort((a, b) => a - b);
        break;
      }
      case '--reps':
        options.reps = Number(value());
        if (!Number.isInteger(options.reps) || options.reps < 1 || options.reps > 20) throw new UsageError('--reps takes an integer from 1 to 20');
        break;
      case '--jobs':
        options.jobs = Number(value());
        if (!Number.isInteger(options.jobs) || options.jobs < 1 || options.jobs > 64) throw new UsageError('--jobs takes an integer from 1 to 64');
        break;
      case '--out':
        options.out = value();
        break;
      case '--json':
        options.json = value();
        break;
      case '--render':
        options.render = value();
        break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new UsageError(`unknown option ${arg}`);
    }
  }
  return options;
}

class UsageError extends Error {}

// ---------------------------------------------------------------------------
// Output

const tty = process.stdout.isTTY;
const color = tty ? { ok: '\x1b[32m', bad: '\x1b[31;1m', dim: '\x1b[2m', bold: '\x1b[1m', off: '\x1b[0m' } : { ok: '', bad: '', dim: '', bold: '', off: '' };
const t0 = Date.now();
const stamp = () => `${color.dim}[${formatDuration(Date.now() - t0).padStart(6)}]${color.off}`;
const clearLine = () => tty && process.stdout.write('\r\x1b[2K');
const log = (message: string) => {
  clearLine();
  console.log(`${stamp()} ${message}`);
};
/** On a terminal, a live "label … 12s" line while a run is under way. */
let current: { label: string; since: number } | undefined;
if (tty) {
  setInterval(() => {
    if (current) process.stdout.write(`\r\x1b[2K${stamp()} ${current.label} … ${formatDuration(Date.now() - current.since)}`);
  }, 1000).unref();
}
async function running<T>(label: string, fn: () => Promise<T>): Promise<T> {
  current = { label, since: Date.now() };
  try {
    return await fn();
  } finally {
    current = undefined;
    clearLine();
  }
}
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const rate = (bytes: number, ms: number) => `${(bytes / MiB / (ms / 1000)).toFixed(1)} MiB/s`;
const otherLoad = (run: { cpu: { foreignMs: number }; wallMs: number }) => `other load ${(run.cpu.foreignMs / Math.max(1, run.wallMs)).toFixed(2)} cores`;

// ---------------------------------------------------------------------------
// Cleanup: everything started is registered here and undone in reverse order.

const cleanups: { name: string; fn: () => Promise<unknown> | unknown }[] = [];
let cleaningUp: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaningUp ??= (async () => {
    killActiveChildren();
    for (const { fn } of cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // keep going: every other resource still has to go
      }
    }
    cleanups.length = 0;
  })();
  return cleaningUp;
}
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    interrupted = true;
    console.error(`\n${color.bad}${signal}: stopping everything the benchmark started ...${color.off}`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

// ---------------------------------------------------------------------------
// Machine

async function describeMachine(): Promise<Report['machine']> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const flags = new Set((/^flags\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));
  const moto = await execFileAsync('python3', ['-c', 'import moto; print(moto.__version__)'])
    .then((r) => r.stdout.trim())
    .catch(() => 'unknown version');
  const dump = await toolVersion('pg_dump');
  const restore = await toolVersion('pg_restore');
  return {
    cpuModel: model,
    cores: os.cpus().length,
    cpuFlags: ['aes', 'sha_ni', 'avx2', 'avx512f'].filter((f) => flags.has(f)),
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    node: process.version,
    pgDump: `pg_dump ${dump.version}`,
    pgRestore: `pg_restore ${restore.version}`,
    server: 'unknown',
    moto,
    loadAvgStart: os.loadavg(),
  };
}

// ---------------------------------------------------------------------------
// The benchmark

async function main(options: Options): Promise<void> {
  const startedAt = new Date();
  const flags = [
    ...(options.sizesGiB.join(',') !== '1' ? [`--size ${options.sizesGiB.join(',')}`] : []),
    ...(options.reps !== 3 ? [`--reps ${options.reps}`] : []),
    ...(options.jobs !== defaultJobs() ? [`--jobs ${options.jobs}`] : []),
  ];
  const command = `npm run bench${flags.length ? ` -- ${flags.join(' ')}` : ''}`;
  console.log(`${color.bold}lifeboat benchmark${color.off}: sizes ${options.sizesGiB.map((x) => `${x} GiB`).join(', ')}, ${options.reps} timed runs per figure after a warm-up, pg_restore --jobs=${options.jobs}.`);
  console.log(`${color.dim}Everything runs on loopback and is removed at the end (Ctrl-C is safe).${color.off}\n`);

  const machine = await describeMachine();
  log(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${formatBytes(machine.memoryBytes)}, Node ${machine.node}, ${machine.pgDump}; load average ${machine.loadAvgStart.map((x) => x.toFixed(2)).join(' ')}`);
  const warnings: string[] = [];
  if (machine.loadAvgStart[0]! > machine.cores * 0.5) {
    const w = `the machine was already busy when the benchmark started (load average ${machine.loadAvgStart[0]!.toFixed(2)} on ${machine.cores} cores): wall-clock figures are noisier than on an idle machine; the CPU-seconds columns much less so.`;
    warnings.push(w);
    log(`${color.bad}warning:${color.off} ${w}`);
  }

  // 5. Retention planner first: pure CPU, quickest while nothing else of ours runs.
  let retention: Report['retention'];
  try {
    // Issue 4 item 6: the planner's own benchmark lives in scripts/bench/retention.ts.
    const { benchRetentionPlanner } = await import('./bench/retention.ts');
    retention = await benchRetentionPlanner();
    log(`retention planner: ${retention.map((r) => `${r.backups.toLocaleString('en-US')} backups in ${r.millis} ms`).join(', ')}`);
  } catch (error) {
    retention = { error: (error as Error).message };
    log(`${color.bad}retention planner benchmark failed:${color.off} ${(error as Error).message}`);
  }

  // Infrastructure -----------------------------------------------------------
  const work = mkdtempSync(join(os.tmpdir(), 'lifeboat-bench-'));
  cleanups.push({ name: 'temp dir', fn: () => rmSync(work, { recursive: true, force: true }) });
  // The bundle must sit under the repo's node_modules so its external packages resolve.
  const bundleDir = join(REPO, 'node_modules', '.cache', `lifeboat-bench-${process.pid}`);
  cleanups.push({ name: 'bundle', fn: () => rmSync(bundleDir, { recursive: true, force: true }) });
  const childBundle = join(bundleDir, 'dump-child.mjs');
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [join(REPO, 'scripts/bench/dump-child.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node.split('.')[0]}`,
    packages: 'external',
    outfile: childBundle,
    logLevel: 'silent',
  });
  await esbuild.stop(); // its service process would otherwise idle beside the runs
  log(`bundled the dump handler with esbuild (${relative(REPO, childBundle)})`);

  const [cluster, moto, sink] = await Promise.all([startLocalPostgres(), startMotoServer(), startNullS3()]);
  cleanups.push({ name: 'PostgreSQL', fn: () => cluster.stop() }, { name: 'moto', fn: () => moto.stop() }, { name: 'null S3', fn: () => sink.stop() });
  const postmasterPid = Number(readFileSync(join(cluster.dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0]);
  const probe: CpuProbe = { postmasterPid };
  log(`started PostgreSQL on 127.0.0.1:${cluster.port}, moto on ${moto.endpoint}, null S3 on ${sink.endpoint}`);

  const s3Moto = new S3Client({ region: REGION, endpoint: moto.endpoint, forcePathStyle: true, credentials: CREDENTIALS });
  const kmsKeyArn = (await new KMSClient({ region: REGION, endpoint: moto.endpoint, credentials: CREDENTIALS }).send(new CreateKeyCommand({ Description: 'lifeboat bench' })))
    .KeyMetadata!.Arn!;
  const bucket = 'lifeboat-bench';
  await s3Moto.send(new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: REGION } }));
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey, AWS_REGION: REGION });
  const keyringKms = createKeyringKmsClient({ region: REGION, endpoint: moto.endpoint });

  const database = 'shop';
  const admin = { host: cluster.host, port: cluster.port, user: cluster.superuser, password: cluster.password };
  await createSampleDatabase({ ...admin, database });
  const client = new pg.Client({ ...admin, database });
  await client.connect();
  cleanups.push({ name: 'pg client', fn: () => client.end() });
  const adminClient = new pg.Client({ ...admin, database: 'postgres' });
  await adminClient.connect();
  cleanups.push({ name: 'pg admin client', fn: () => adminClient.end() });
  machine.server = (await client.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v.replace(/ on .*/, '').replace(/^PostgreSQL /, '');

  const dumpTool = await toolVersion('pg_dump');
  const restoreTool = await toolVersion('pg_restore');
  const chosen = chooseCompression({ codec: 'auto' }, dumpTool.major);
  const pgDumpArgs = ['--format=custom', chosen.arg, '--lock-wait-timeout=300s', '--no-password'];
  const libpq = {
    PATH: process.env.PATH,
    PGHOST: cluster.host,
    PGPORT: String(cluster.port),
    PGUSER: cluster.superuser,
    PGPASSWORD: cluster.password,
    PGDATABASE: database,
    PGSSLMODE: 'disable',
    PGAPPNAME: 'lifeboat-bench',
  };

  const dbBytes = async () => Number((await client.query<{ b: string }>('SELECT pg_database_size(current_database())::text AS b')).rows[0]!.b);
  const settle = async () => {
    await client.query('VACUUM (FREEZE, ANALYZE)');
    await client.query('CHECKPOINT');
  };

  // Runners -------------------------------------------------------------------
  const rawDump = async (stdout: 'devnull' | { file: string }, label = 'raw pg_dump'): Promise<DumpRun> => {
    const { wallMs, cpu, result } = await measure(
      probe,
      () => running(label, () => runCommand(dumpTool.path, [...pgDumpArgs, `--dbname=${database}`], { env: libpq, stdout, watchRss: true })),
      (d) => ({ toolsMs: d.reapedMs, nodeMs: 0, harnessMs: d.selfMs + d.liveChildrenMs }),
    );
    return { wallMs, cpu, rawBytes: 0, pgDumpPeakRssKiB: result.peakRssKiB };
  };

  // The handler reads the database's connection from the deployed config (ids-only task input), as deployed:
  // published once, on moto and served by the null S3, named by bucket, key and sha256.
  const benchConfig = parseConfig(
    {
      name: 'bench',
      source: { region: REGION },
      databases: [{ id: database, connection: { host: cluster.host, port: cluster.port, database, username: cluster.superuser, passwordEnv: 'BENCH_PGPASSWORD', sslMode: 'disable' } }],
      plans: [{ id: 'bench', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: [database], rpoMinutes: 1440, rtoMinutes: 60 }],
      storage: { bucketName: bucket, kmsKeyArn },
    },
    'the bench config',
  );
  const configBytes = deploymentConfigBytes(benchConfig);
  const configKey = 'config/bench.json';
  await s3Moto.send(new PutObjectCommand({ Bucket: bucket, Key: configKey, Body: configBytes }));
  sink.serve(bucket, configKey, configBytes);
  const configEnv = deploymentConfigEnvironment({ bucket, key: configKey, sha256: sha256Hex(configBytes) });
  const handlerEvent = { planId: 'bench', databaseId: database };
  let childNo = 0;
  const pipelineDump = async (target: 'null' | 'moto', label = `lifeboat handler → ${target === 'null' ? 'null S3' : 'S3 on moto'}`): Promise<DumpRun & { manifestKey: string }> => {
    const resultFile = join(work, `dump-${++childNo}.json`);
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...(process.env.LIFEBOAT_PG_BIN ? { LIFEBOAT_PG_BIN: process.env.LIFEBOAT_PG_BIN } : {}),
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_REGION: REGION,
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_ENDPOINT_URL_S3: target === 'null' ? sink.endpoint : moto.endpoint,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      BACKUP_BUCKET: bucket,
      BACKUP_PREFIX: 'bench/',
      BACKUP_KMS_KEY_ARN: kmsKeyArn,
      BENCH_PGPASSWORD: cluster.password,
      BENCH_DUMP_EVENT: JSON.stringify(handlerEvent),
      ...configEnv,
      POWERTOOLS_SERVICE_NAME: 'lifeboat-bench',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_TRACE_ENABLED: 'false',
    };
    sink.reset();
    let child: DumpChildResult | undefined;
    const { wallMs, cpu } = await measure(
      probe,
      async () => {
        await running(label, () => runCommand(process.execPath, [childBundle, resultFile], { env, stdout: 'devnull' }));
        child = JSON.parse(readFileSync(resultFile, 'utf8')) as DumpChildResult;
        return child;
      },
      (d, c) => ({ toolsMs: c.pgDumpCpuMs, nodeMs: c.nodeCpuMs, harnessMs: d.selfMs + d.liveChildrenMs + Math.max(0, d.reapedMs - c.pgDumpCpuMs - c.nodeCpuMs) }),
    );
    if (!child?.ok || !child.output) throw new Error(`the dump handler failed: ${child?.error ?? 'no result'}`);
    if (target === 'null' && sink.stats.bodyBytes < child.output.storedBytes) {
      throw new Error(`the null S3 received ${sink.stats.bodyBytes} bytes, less than the ${child.output.storedBytes} bytes the handler stored`);
    }
    return {
      wallMs: child.wallMs,
      processWallMs: wallMs,
      cpu,
      rawBytes: child.output.rawBytes,
      storedBytes: child.output.storedBytes,
      maxRssKiB: child.maxRssKiB,
      pgDumpPeakRssKiB: child.pgDumpPeakRssKiB,
      rssBeforeInvokeKiB: Math.round(child.rssBeforeInvoke / 1024),
      arrayBuffersPeakBytes: child.memoryPeaks.arrayBuffers,
      gcPauseMs: child.gcPauseMs,
      majorGcs: child.majorGcs,
      manifestKey: child.output.manifestKey,
    };
  };

  let restoreNo = 0;
  const rawRestore = async (archive: string): Promise<RestoreRun> => {
    const target = `bench_raw_${++restoreNo}`;
    await client.query('CHECKPOINT');
    const { wallMs, cpu } = await measure(
      probe,
      () =>
        running(`raw pg_restore -j ${options.jobs}`, async () => {
          await adminClient.query(`CREATE DATABASE ${pg.escapeIdentifier(target)} TEMPLATE template0 ENCODING 'UTF8'`);
          await runCommand(restoreTool.path, ['--exit-on-error', '--no-owner', '--no-privileges', `--dbname=${target}`, `--jobs=${options.jobs}`, archive], {
            env: libpq,
            stdout: 'devnull',
          });
        }),
      (d) => ({ toolsMs: d.reapedMs, nodeMs: 0, harnessMs: d.selfMs + d.liveChildrenMs }),
    );
    await adminClient.query(`DROP DATABASE ${pg.escapeIdentifier(target)} WITH (FORCE)`);
    return { wallMs, cpu };
  };

  /**
   * Copies the stored objects of a backup from moto into files and starts a loopback S3 in its own process
   * (scripts/bench/object-server.ts) that serves them from memory.
   */
  const serveFromSink = async (manifestKey: string): Promise<{ s3: S3Client; stop: () => Promise<void> }> => {
    const manifest = await readManifest(s3Moto, bucket, manifestKey);
    const specs: string[] = [];
    for (const key of [manifestKey, manifest.object.key, ...(manifest.globals ? [manifest.globals.key] : [])]) {
      const out = await s3Moto.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const file = join(work, `served-${specs.length}`);
      writeFileSync(file, await out.Body!.transformToByteArray());
      specs.push(`${key}=${file}`);
    }
    const server = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'scripts/bench/object-server.ts'), bucket, ...specs], { stdio: ['pipe', 'pipe', 'inherit'] });
    const stop = () => new Promise<void>((resolve) => (server.exitCode !== null ? resolve() : (server.once('exit', () => resolve()), server.stdin!.end())));
    cleanups.push({ name: 'object server', fn: stop });
    const line = await new Promise<string>((resolve, reject) => {
      let text = '';
      server.stdout!.setEncoding('utf8').on('data', (t: string) => {
        text += t;
        if (text.includes('\n')) resolve(text.split('\n', 1)[0]!);
      });
      server.once('exit', (code) => reject(new Error(`the object server exited (${code}) before it listened`)));
      setTimeout(() => reject(new Error('the object server did not listen within 30 s')), 30_000).unref();
    });
    return { s3: new S3Client({ region: REGION, endpoint: (JSON.parse(line) as { endpoint: string }).endpoint, forcePathStyle: true, credentials: CREDENTIALS }), stop };
  };
  const lifeboatRestore = async (manifestKey: string, s3: S3Client): Promise<RestoreRun> => {
    const target = `bench_lifeboat_${++restoreNo}`;
    const manifest = await readManifest(s3, bucket, manifestKey);
    await client.query('CHECKPOINT');
    try {
      const { wallMs, cpu, result } = await measure(
        probe,
        () =>
          running('lifeboat restoreBackup', () =>
            restoreBackup(
              manifest,
              { ...admin, database: target, sslMode: 'disable', connectTimeoutSeconds: 10 },
              { s3, kms: keyringKms, pgRestorePath: restoreTool.path, workDir: work },
              { jobs: options.jobs, createDatabase: true },
            ),
          ),
        (d) => ({ toolsMs: d.reapedMs, nodeMs: d.selfMs, harnessMs: d.liveChildrenMs }),
      );
      const failed = result.checks.filter((c) => !c.ok);
      if (failed.length > 0) throw new Error(`the restored database does not match its manifest: ${failed.map((c) => c.name).join(', ')}`);
      return { wallMs, cpu, downloadMs: result.timings.downloadMs, pgRestoreMs: result.timings.restoreMs, verifyMs: result.timings.verifyMs };
    } finally {
      await adminClient.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(target)} WITH (FORCE)`);
    }
  };

  /** Runs `a` and `b` alternately (A B, B A, ...) after one warm-up of each. */
  const alternate = async <A, B>(reps: number, a: () => Promise<A>, b: () => Promise<B>): Promise<{ a: A[]; b: B[] }> => {
    const as: A[] = [];
    const bs: B[] = [];
    for (let i = 0; i < reps; i++) {
      if (i % 2 === 0) {
        as.push(await a());
        bs.push(await b());
      } else {
        bs.push(await b());
        as.push(await a());
      }
    }
    return { a: as, b: bs };
  };

  const grow = async (targetBytes: number) => {
    const label = formatBytes(targetBytes);
    let lastPrint = 0;
    const result = await growSampleDatabase(client, targetBytes, {
      onProgress: (p) => {
        const line = `growing the sample database to ${label}: ${formatBytes(p.bytes)} (${Math.min(100, (p.bytes / p.targetBytes) * 100).toFixed(0)}%)`;
        if (tty) process.stdout.write(`\r\x1b[2K${stamp()} ${line}`);
        else if (Date.now() - lastPrint > 5000) {
          lastPrint = Date.now();
          log(line);
        }
      },
    });
    if (tty) process.stdout.write('\r\x1b[2K');
    if (result.rowsAdded > 0) log(`grew the sample database to ${formatBytes(result.bytes)} in ${result.seconds.toFixed(1)} s`);
    const settleStarted = Date.now();
    await settle();
    log(`VACUUM (FREEZE, ANALYZE) and CHECKPOINT in ${secs(Date.now() - settleStarted)}: ${formatBytes(await dbBytes())}`);
  };

  const results: Report = {
    command,
    startedAt,
    finishedAt: startedAt,
    machine,
    reps: options.reps,
    jobs: options.jobs,
    codec: chosen.label,
    pgDumpArgs,
    memory: [],
    sizes: [],
    retention,
    warnings,
  };

  // Unsized sample: fixed cost per backup, and the smallest memory point ------
  await settle();
  const tinyBytes = await dbBytes();
  log(`unsized sample database: ${formatBytes(tinyBytes)}; measuring the fixed cost per backup`);
  await rawDump('devnull');
  await pipelineDump('null');
  const tiny = await alternate(options.reps, () => rawDump('devnull'), () => pipelineDump('null'));
  results.tiny = { dbBytes: tinyBytes, raw: tiny.a, pipeline: tiny.b };
  results.memory.push({ label: 'unsized sample', dbBytes: tinyBytes, sink: 'null S3', runs: tiny.b });
  log(`  raw pg_dump ${secs(median(tiny.a.map((r) => r.wallMs)))}, lifeboat ${secs(median(tiny.b.map((r) => r.wallMs)))}; handler peak RSS ${tiny.b.map((r) => `${((r.maxRssKiB ?? 0) / 1024).toFixed(0)}`).join(', ')} MiB`);

  // A memory point at a tenth of the largest size.
  const largest = options.sizesGiB.at(-1)!;
  const probeGiB = Math.round(largest * 10) / 100;
  if (probeGiB * GiB > tinyBytes * 4 && probeGiB < options.sizesGiB[0]!) {
    await grow(probeGiB * GiB);
    const bytes = await dbBytes();
    const runs: DumpRun[] = [];
    for (let i = 0; i < options.reps; i++) {
      const run = await pipelineDump('null');
      runs.push(run);
      log(`  memory point ${probeGiB} GiB #${i + 1}: handler peak RSS ${((run.maxRssKiB ?? 0) / 1024).toFixed(0)} MiB, ${secs(run.wallMs)}`);
    }
    results.memory.push({ label: `${probeGiB} GiB`, dbBytes: bytes, sink: 'null S3', runs });
  }

  for (const sizeGiB of options.sizesGiB) {
    console.log('');
    log(`${color.bold}== ${sizeGiB} GiB ==${color.off}`);
    await grow(sizeGiB * GiB);
    const bytes = await dbBytes();

    // 1. Dump ----------------------------------------------------------------
    const archive = join(work, `raw-${sizeGiB}.pgc`);
    log('dump: warm-up (raw pg_dump into an archive file for the restore, then the lifeboat handler)');
    const warm = await rawDump({ file: archive });
    const rawArchiveBytes = statSync(archive).size;
    log(`  raw pg_dump → file ${secs(warm.wallMs)}: ${formatBytes(rawArchiveBytes)} archive`);
    const warmPipe = await pipelineDump('null');
    log(`  lifeboat → null S3 ${secs(warmPipe.wallMs)}: ${formatBytes(warmPipe.rawBytes)} dump, ${formatBytes(warmPipe.storedBytes ?? 0)} stored`);
    const withBytes = (run: DumpRun): DumpRun => ({ ...run, rawBytes: rawArchiveBytes });
    let n = 0;
    const dumps = await alternate(
      options.reps,
      async () => {
        const run = withBytes(await rawDump('devnull'));
        log(`  raw pg_dump → /dev/null        #${Math.floor(n++ / 2) + 1}: ${secs(run.wallMs)}  ${rate(run.rawBytes, run.wallMs)}  (${otherLoad(run)})`);
        return run;
      },
      async () => {
        const run = await pipelineDump('null');
        log(`  lifeboat handler → null S3     #${Math.floor(n++ / 2) + 1}: ${secs(run.wallMs)}  ${rate(run.rawBytes, run.wallMs)}  peak RSS ${((run.maxRssKiB ?? 0) / 1024).toFixed(0)} MiB  (${otherLoad(run)})`);
        return run;
      },
    );
    const size: SizeResult = {
      targetGiB: sizeGiB,
      dbBytes: bytes,
      rawArchiveBytes,
      dumpRaw: dumps.a,
      dumpPipeline: dumps.b,
      restoreRaw: [],
      restoreLifeboat: [],
      compression: [],
    };
    results.sizes.push(size);
    const ratio = dumpRatio(size);
    log(`  ${ratio >= TARGETS.dumpRatio ? color.ok : color.bad}dump ratio lifeboat/raw = ${ratio.toFixed(2)} (target ≥ ${TARGETS.dumpRatio})${color.off}`);
    if (dumps.b.some((r) => r.rawBytes !== rawArchiveBytes)) {
      warnings.push(`at ${sizeGiB} GiB the lifeboat dump was ${dumps.b.map((r) => r.rawBytes).join('/')} bytes and the raw archive ${rawArchiveBytes}; throughput uses each side's own size.`);
    }

    const motoRun = await pipelineDump('moto');
    size.dumpMoto = motoRun;
    log(`  lifeboat handler → S3 on moto    : ${secs(motoRun.wallMs)}  ${rate(motoRun.rawBytes, motoRun.wallMs)}  (moto's speed, not S3's)`);
    results.memory.push({ label: `${sizeGiB} GiB`, dbBytes: bytes, sink: 'null S3', runs: [warmPipe, ...dumps.b] }, { label: `${sizeGiB} GiB`, dbBytes: bytes, sink: 'moto', runs: [motoRun] });

    // 2. Restore -------------------------------------------------------------
    log(`restore: warm-up (raw pg_restore -j ${options.jobs}, then lifeboat restoreBackup from the loopback S3)`);
    const served = await serveFromSink(motoRun.manifestKey);
    const wr = await rawRestore(archive);
    log(`  raw ${secs(wr.wallMs)}`);
    const wl = await lifeboatRestore(motoRun.manifestKey, served.s3);
    log(`  lifeboat ${secs(wl.wallMs)}`);
    n = 0;
    const restores = await alternate(
      options.reps,
      async () => {
        const run = await rawRestore(archive);
        log(`  raw pg_restore -j ${options.jobs}              #${Math.floor(n++ / 2) + 1}: ${secs(run.wallMs)}  (${otherLoad(run)})`);
        return run;
      },
      async () => {
        const run = await lifeboatRestore(motoRun.manifestKey, served.s3);
        log(
          `  lifeboat restore                #${Math.floor(n++ / 2) + 1}: ${secs(run.wallMs)} = download+decrypt ${secs(run.downloadMs ?? 0)} + pg_restore ${secs(run.pgRestoreMs ?? 0)} + verify ${secs(run.verifyMs ?? 0)}  (${otherLoad(run)})`,
        );
        return run;
      },
    );
    size.restoreRaw = restores.a;
    size.restoreLifeboat = restores.b;
    log(`  restore ratio raw/lifeboat = ${restoreRatio(size).toFixed(2)}`);
    await served.stop();
    size.restoreMoto = await lifeboatRestore(motoRun.manifestKey, s3Moto);
    log(`  lifeboat restore from moto      : ${secs(size.restoreMoto.wallMs)} = download+decrypt ${secs(size.restoreMoto.downloadMs ?? 0)} (moto's speed, not S3's)`);

    // 4. Compression ---------------------------------------------------------
    size.compression.push({ label: chosen.label, how: 'pg_dump', bytes: rawArchiveBytes, runs: dumps.a });
    const variants: { label: string; how: 'pg_dump' | 'estimate'; cmd: string; args: string[] }[] = [];
    const pgVariant = (label: string, arg: string) => ({ label, how: 'pg_dump' as const, cmd: dumpTool.path, args: ['--format=custom', arg, '--lock-wait-timeout=300s', '--no-password', `--dbname=${database}`] });
    const candidates = dumpTool.major >= 16
      ? [{ codec: 'zstd', level: 3 }, { codec: 'lz4', level: 1 }, { codec: 'gzip', level: 6 }, { codec: 'gzip', level: 1 }, { codec: 'none' }]
      : [{ codec: 'gzip', level: 6 }, { codec: 'gzip', level: 1 }, { codec: 'none' }];
    for (const c of candidates) {
      const choice = chooseCompression(c as Parameters<typeof chooseCompression>[0], dumpTool.major);
      if (choice.label !== chosen.label) variants.push(pgVariant(choice.label, choice.arg));
    }
    if (dumpTool.major < 16) {
      for (const [label, tool, toolArgs] of [
        ['zstd:3', 'zstd', '-3 -T1 -q -c'],
        ['lz4:1', 'lz4', '-1 -q -c'],
      ] as const) {
        const found = await execFileAsync('sh', ['-c', `command -v ${tool}`]).then(() => true, () => false);
        if (!found) continue;
        variants.push({
          label,
          how: 'estimate',
          cmd: 'bash',
          args: ['-c', `set -o pipefail; "$@" | ${tool} ${toolArgs}`, 'bench', dumpTool.path, '--format=custom', '--compress=0', '--lock-wait-timeout=300s', '--no-password', `--dbname=${database}`],
        });
      }
    }
    log(`compression: ${chosen.label} (chosen) vs ${variants.map((v) => v.label + (v.how === 'estimate' ? ' (estimate)' : '')).join(', ')}`);
    for (const v of variants) {
      const sized = await running(`${v.label}: measuring the size`, () => runCommand(v.cmd, v.args, { env: libpq, stdout: 'count' }));
      const runs = [];
      for (let i = 0; i < options.reps; i++) {
        const { wallMs, cpu } = await measure(
          probe,
          () => running(`${v.label} #${i + 1}`, () => runCommand(v.cmd, v.args, { env: libpq, stdout: 'devnull' })),
          (d) => ({ toolsMs: d.reapedMs, nodeMs: 0, harnessMs: d.selfMs + d.liveChildrenMs }),
        );
        runs.push({ wallMs, cpu });
      }
      const row: CompressionRow = { label: v.label, how: v.how, bytes: sized.bytes ?? 0, runs };
      size.compression.push(row);
      log(`  ${v.label.padEnd(7)}${v.how === 'estimate' ? ' (estimate)' : '           '}: ${formatBytes(row.bytes)}, ${secs(median(runs.map((r) => r.wallMs)))} median (${runs.map((r) => (r.wallMs / 1000).toFixed(1)).join(', ')})`);
    }
    rmSync(archive, { force: true });
  }

  // Memory at the part size of a much larger database --------------------------
  // The pipeline sizes its parts from pg_database_size(); a sparse file in the
  // database's directory makes that report a large database without the disk,
  // so the handler runs with that database's part plan on the same data.
  const lastSize = results.sizes.at(-1);
  if (lastSize) {
    const oid = (await client.query<{ oid: string }>('SELECT oid::text FROM pg_database WHERE datname = current_database()')).rows[0]!.oid;
    const sparse = join(cluster.dataDir, 'base', oid, 'lifeboat-bench-sparse');
    cleanups.push({ name: 'sparse file', fn: () => rmSync(sparse, { force: true }) });
    console.log('');
    for (const simulatedGiB of SIMULATED_PART_PLANS_GIB) {
      const partSize = planPartSize(simulatedGiB * GiB).partSize;
      const stored = lastSize.dumpPipeline[0]?.storedBytes ?? 0;
      // At least two full parts in flight and a third filling, or the run would not hold what a large dump holds.
      if (stored < 2.5 * partSize) {
        log(`(skipping the ${simulatedGiB} GiB part plan: its ${formatBytes(partSize)} parts need a dump of at least ${formatBytes(2.5 * partSize)}, this one is ${formatBytes(stored)})`);
        continue;
      }
      writeFileSync(sparse, '');
      truncateSync(sparse, Math.max(0, simulatedGiB * GiB - lastSize.dbBytes));
      const bytes = await dbBytes();
      log(`memory at the part plan of a ${simulatedGiB} GiB database (pg_database_size inflated with a sparse file; the data is still ${lastSize.targetGiB} GiB)`);
      const runs: DumpRun[] = [];
      for (let i = 0; i < Math.min(2, options.reps); i++) {
        const run = await pipelineDump('null', `lifeboat handler, ${simulatedGiB} GiB part plan #${i + 1}`);
        runs.push(run);
        log(`  #${i + 1}: handler peak RSS ${((run.maxRssKiB ?? 0) / 1024).toFixed(0)} MiB, ${secs(run.wallMs)}  ${rate(run.rawBytes, run.wallMs)}`);
      }
      results.memory.push({ label: `${simulatedGiB} GiB part plan, simulated`, note: `${lastSize.targetGiB} GiB of data`, dbBytes: bytes, sink: 'null S3', runs });
    }
    rmSync(sparse, { force: true });
  }

  // Wrap up -----------------------------------------------------------------
  machine.loadAvgEnd = os.loadavg();
  const foreign = results.sizes.flatMap((x) => [...x.dumpRaw, ...x.dumpPipeline]).map((r) => r.cpu.foreignMs / r.wallMs);
  if (median(foreign) > 0.25) {
    warnings.push(
      `other processes on this machine used a median ${median(foreign).toFixed(2)} of its ${machine.cores} cores during the dump runs, so wall-clock ratios carry that noise (see the "other load" columns).`,
    );
  }
  console.log('');
  log('stopping PostgreSQL, moto and the null S3, removing temp files');
  await cleanup();
  results.finishedAt = new Date();

  if (options.json) {
    writeFileSync(options.json, `${JSON.stringify(results, null, 2)}\n`);
    log(`saved the measurements to ${options.json}`);
  }
  report(results, options);
}

/** Writes the markdown and prints the verdicts, loudly when a target is missed. */
function report(results: Report, options: Options): void {
  const markdown = renderMarkdown(results);
  if (options.out === '-') {
    console.log(`\n${markdown}`);
  } else {
    mkdirSync(dirname(options.out), { recursive: true });
    writeFileSync(options.out, markdown);
    log(`wrote ${relative(process.cwd(), options.out) || options.out}`);
  }

  const v = verdicts(results);
  console.log(`\n${color.bold}Targets${color.off}`);
  for (const x of v) console.log(`  ${x.pass ? `${color.ok}PASS${color.off}` : `${color.bad}FAIL${color.off}`}  ${x.name}: ${x.figure}`);
  const missed = v.filter((x) => !x.pass);
  if (missed.length > 0) {
    const banner = `${missed.length} TARGET${missed.length > 1 ? 'S' : ''} MISSED: ${missed.map((x) => `${x.name} (${x.figure})`).join('; ')}`;
    console.error(`\n${color.bad}${'!'.repeat(Math.min(100, banner.length))}\n${banner}\n${'!'.repeat(Math.min(100, banner.length))}${color.off}`);
    console.error('A missed target is a finding, not a crash: the report says what was measured. Exit status stays 0.');
  } else {
    console.log(`\n${color.ok}All targets met.${color.off}`);
  }
}

try {
  const options = parseOptions(process.argv.slice(2));
  if (options.render) {
    const saved = JSON.parse(readFileSync(options.render, 'utf8')) as Report;
    report({ ...saved, startedAt: new Date(saved.startedAt), finishedAt: new Date(saved.finishedAt) }, options);
  } else {
    await main(options);
  }
} catch (error) {
  if (!interrupted) {
    if (error instanceof UsageError) {
      console.error(`${error.message}\n\n${USAGE}`);
    } else {
      console.error(`\n${color.bad}Benchmark crashed:${color.off} ${(error as Error).stack ?? String(error)}`);
    }
    process.exitCode = error instanceof UsageError ? 2 : 1;
  }
  await cleanup();
} finally {
  if (activeChildren.size > 0) killActiveChildren();
}
// Nothing of ours is left running; don't wait for idle keep-alive sockets.
process.exit(process.exitCode ?? 0);
