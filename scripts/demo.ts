/**
 * `npm run demo`: lifeboat's whole nightly cycle on this machine, with no AWS
 * account. A throwaway PostgreSQL holds the sample database; moto_server, behind
 * a loopback proxy that answers as AWS does where moto falls short
 * (local/moto-rds-compat.ts), stands in for a production and a
 * vault account. The real state machine definitions run on a local Step
 * Functions API stand-in with the real handlers, followed state by state as
 * `lifeboat run` follows them:
 *
 *   backup (dumps + snapshots) → vault copy (and a break-glass restore from the
 *   vault with the vault's key alone) → retention → restore drill → status
 *
 * Everything it starts is stopped and every temp dir removed, whatever happens
 * (Ctrl-C included), except the status page it writes. Exit code 0 only when
 * every stage did what it should.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeDBSnapshotsCommand } from '@aws-sdk/client-rds';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, GetExecutionHistoryCommand, SFNClient, StartExecutionCommand, type HistoryEvent } from '@aws-sdk/client-sfn';
import pg from 'pg';

// Before the handlers load: quiet Powertools, no EMF metrics on stdout, no Node 20 notice.
Object.assign(process.env, {
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
  POWERTOOLS_TRACE_ENABLED: 'false',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});

const { Logger } = await import('@aws-lambda-powertools/logger');
const { createS3Client, createRdsClient } = await import('../functions/lib/aws/clients.ts');
const { backupKeys, parseBackupIdTime } = await import('../functions/lib/backup/manifest.ts');
const { readManifest } = await import('../functions/lib/restore/fetch.ts');
const { startLocalPostgres } = await import('../functions/lib/pg/postgres-cluster.ts');
const { startMotoServer } = await import('../local/moto-server.ts');
const { startReaper } = await import('../local/reaper.ts');
const { createSampleDatabase } = await import('../local/sample-data.ts');
const { startLocalStepFunctions, toHistoryEvent } = await import('../local/sfn-server.ts');
const { createNightlyEnvironment, LOCAL_ACCOUNTS, LOCAL_REGIONS } = await import('../local/nightly-environment.ts');
const { runLocalDrill } = await import('../cli/local-drill.ts');
const { drillRequestsFromConfig } = await import('../functions/lib/drill/plan.ts');
const { formatDrillReport } = await import('../functions/lib/drill/format.ts');
const { isSkipped, runRetentionParts } = await import('../functions/lib/retention/run.ts');
const { collectStatus } = await import('../functions/lib/status/model.ts');
const { renderStatusText } = await import('../functions/lib/status/render-text.ts');
const { renderStatusHtml } = await import('../functions/lib/status/render-html.ts');
const { diffTableChecksums, tableChecksums } = await import('../functions/lib/pg/table-checksums.ts');
const { backupRunInput, retentionRunInput } = await import('../events/schedules.ts');
const { describeEvent } = await import('../cli/commands/run.ts');
const { stateMachineFiles } = await import('../state-machines/definitions.ts');
const { formatBytes } = await import('../cli/progress.ts');

type Env = Awaited<ReturnType<typeof createNightlyEnvironment>>;
type Sfn = Awaited<ReturnType<typeof startLocalStepFunctions>>;

const NAME = 'demo';
const PLAN = 'nightly';
const SAMPLE_ORDERS = 2000;
const LIFEBOAT_BIN = new URL('../bin/lifeboat.mjs', import.meta.url).pathname;

// ---------------------------------------------------------------------------
// Output: numbered steps with indented detail, a ticker on long steps
// ---------------------------------------------------------------------------

const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const paint = (code: string) => (text: string) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
const green = paint('32');
const red = paint('31');
const dim = paint('2');
const bold = paint('1');
const t0 = Date.now();
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
let interrupted = false;
const write = (text: string) => {
  // After Ctrl-C only the interrupt handler speaks; the steps it cut short fail quietly.
  if (!interrupted) process.stdout.write(text);
};
const INDENT = '         ';

interface Step {
  line(text: string): void;
}

let stepNo = 0;
async function step<T>(title: string, fn: (s: Step) => Promise<T>): Promise<T> {
  stepNo++;
  const started = Date.now();
  let open = true;
  let lastOutput = Date.now();
  write(`${dim(`[${seconds(started - t0).padStart(6)}]`)} ${stepNo}. ${title} ...`);
  const line = (text: string) => {
    if (open) write('\n');
    open = false;
    lastOutput = Date.now();
    for (const l of text.split('\n')) write(`${INDENT}${l}\n`);
  };
  // Progress on long steps: a line whenever nothing was printed for 5 s.
  const ticker = setInterval(() => {
    if (Date.now() - lastOutput >= 5000) line(dim(`… still working (${seconds(Date.now() - started)})`));
  }, 1000);
  try {
    const result = await fn({ line });
    write(`${open ? ' ' : INDENT}${green('ok')} ${dim(`(${seconds(Date.now() - started)})`)}\n`);
    return result;
  } catch (error) {
    write(`${open ? ' ' : INDENT}${red('FAILED')}\n`);
    throw error;
  } finally {
    clearInterval(ticker);
  }
}

const verdicts: { stage: string; summary: string }[] = [];
let currentStage = 'setup';
function stage(name: string, what: string) {
  currentStage = name;
  write(`\n${bold(`== ${name.toUpperCase()}: ${what}`)}\n`);
}
function passed(summary: string) {
  verdicts.push({ stage: currentStage, summary });
  write(`${green(`PASS ${currentStage}`)}: ${summary}\n`);
}
function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

// ---------------------------------------------------------------------------
// Cleanup: everything started is stopped, on success, error or signal
// ---------------------------------------------------------------------------

// If this process dies before it cleans up (SIGKILL, or tsx cutting a Ctrl-C short), a detached watcher does.
const reaper = startReaper();
const cleanups: { name: string; fn: () => Promise<unknown>; onSignal: boolean }[] = [];
const onExit = (name: string, fn: () => Promise<unknown>, onSignal = true) => cleanups.push({ name, fn, onSignal });
/** Everything the demo writes to disk but the status page: its clusters, the drill registry, the CLI's staging. */
const workDir = mkdtempSync(join(tmpdir(), 'lifeboat-demo-'));
chmodSync(workDir, 0o755); // the clusters run as the postgres user when the demo runs as root
reaper.workDir(workDir);
onExit('work dir', async () => rmSync(workDir, { recursive: true, force: true }));
let cleaning: Promise<void> | undefined;
function cleanup(signal = false): Promise<void> {
  cleaning ??= (async () => {
    for (const c of cleanups.reverse()) {
      if (signal && !c.onSignal) continue;
      await Promise.race([c.fn().catch(() => undefined), new Promise((r) => setTimeout(r, 10_000).unref())]);
    }
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stdout.write(`\n${red(`Interrupted (${signal})`)}: stopping everything the demo started ...\n`);
    process.once(signal, () => process.exit(130));
    // The watcher stays: it reaps, after this process exits, whatever a step still in flight starts meanwhile.
    void cleanup(true).finally(() => {
      process.stdout.write(`Stopped: no cluster, moto_server, proxy or temp dir is left. ${red(bold(`Demo INTERRUPTED after ${seconds(Date.now() - t0)}.`))}\n`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  });
}

// ---------------------------------------------------------------------------
// Following an execution through the Step Functions API, as `lifeboat run` does
// ---------------------------------------------------------------------------

/** The database (and retention location) a state works on, from its input or output. */
function databaseOf(json: string | undefined): string | undefined {
  if (!json) return undefined;
  try {
    const v = JSON.parse(json) as { database?: { id?: string }; databaseId?: string; location?: string; request?: { databaseId?: string }; drill?: { request?: { databaseId?: string } } };
    const id = v.database?.id ?? v.databaseId ?? v.request?.databaseId ?? v.drill?.request?.databaseId;
    return id && v.location ? `${id} @ ${v.location}` : id;
  } catch {
    return undefined;
  }
}

/** Fail states of every definition: their failure is the execution's, printed once as such. */
const failStates = new Set<string>();
(function walk(states: Record<string, { Type: string; ItemProcessor?: { States: never }; Branches?: { States: never }[] }>) {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === 'Fail') failStates.add(name);
    if (state.ItemProcessor) walk(state.ItemProcessor.States);
    for (const branch of state.Branches ?? []) walk(branch.States);
  }
})(Object.assign({}, ...Object.values(stateMachineFiles).map((file) => (JSON.parse(readFileSync(file, 'utf8')) as { States: object }).States)));

/**
 * `lifeboat run`'s line for an event (describeEvent), for Tasks, Maps, failures
 * and the execution, with the database it concerns. A Task that exits after
 * failing is shown as handled (its Catch or Retry took over), not as ok.
 */
function eventPrinter(print: (line: string) => void) {
  const failed = new Map<string, number>();
  return (event: HistoryEvent) => {
    if (/^(Choice|Pass|Wait|Parallel|Succeed|Fail)State/.test(event.type ?? '')) return;
    const failure = event.taskFailedEventDetails;
    if (failure?.resource && failStates.has(failure.resource)) return;
    let line = describeEvent(event);
    if (!line) return;
    if (failure?.resource) failed.set(failure.resource, (failed.get(failure.resource) ?? 0) + 1);
    const exited = event.stateExitedEventDetails?.name;
    if (exited && failed.get(exited)) {
      failed.set(exited, failed.get(exited)! - 1);
      line = line.replace(` ok ${exited}`, ` handled ${exited} (its Catch/Retry took over)`);
    }
    const who = databaseOf(event.stateEnteredEventDetails?.input ?? event.stateExitedEventDetails?.output);
    const text = who ? `${line.padEnd(36)} ${dim(who)}` : line;
    print(/FAILED/.test(line) ? red(text) : text);
  };
}

interface Followed {
  status: string;
  error?: string;
  output?: unknown;
  events: HistoryEvent[];
  executionArn: string;
}

let executions = 0;
async function runWorkflow(sfn: Sfn, client: SFNClient, workflow: 'backup' | 'retention', input: unknown, print?: (line: string) => void): Promise<Followed> {
  const { executionArn } = await client.send(
    new StartExecutionCommand({ stateMachineArn: sfn.arnOf(`${NAME}-lifeboat-${workflow}`), input: JSON.stringify(input), name: `demo-${workflow}-${++executions}` }),
  );
  const events: HistoryEvent[] = [];
  const printEvent = print && eventPrinter(print);
  for (;;) {
    const description = await client.send(new DescribeExecutionCommand({ executionArn }));
    let nextToken: string | undefined;
    let all: HistoryEvent[] = [];
    do {
      const page = await client.send(new GetExecutionHistoryCommand({ executionArn, nextToken, maxResults: 100 }));
      all = all.concat(page.events ?? []);
      nextToken = page.nextToken;
    } while (nextToken);
    for (const event of all.slice(events.length)) {
      events.push(event);
      printEvent?.(event);
    }
    if (description.status !== 'RUNNING') {
      return { status: description.status!, error: description.error, output: description.output ? JSON.parse(description.output) : undefined, events, executionArn: executionArn! };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface BackupResult {
  databaseId: string;
  status: string;
  dump: { status: string; backupId?: string; manifestKey?: string; storedBytes?: number; vault?: string; error?: string };
  snapshot: {
    status: string;
    backupId?: string;
    error?: string;
    snapshot?: { id: string; region: string };
    copy?: { poll?: { ref?: { id: string; region: string } } };
    vault?: { vault?: { poll: { ref: { id: string; account: string; region: string; kmsKeyId?: string } } } };
  };
}
/** Each database's result: the output of its child execution (backup-database). */
const backupResults = (sfn: Sfn, run: Followed) => sfn.childExecutions(run.executionArn).map((c) => c.output as BackupResult).filter(Boolean);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

type Admin = { host: string; port: number; user: string; password: string };

/** Per-relation content checksums of two databases, computed in PostgreSQL. */
async function compareContent(admin: Admin, a: string, b: string) {
  const sums = async (database: string) => {
    const client = new pg.Client({ ...admin, database });
    await client.connect();
    try {
      return await tableChecksums(client);
    } finally {
      await client.end();
    }
  };
  const [left, right] = await Promise.all([sums(a), sums(b)]);
  const differences = diffTableChecksums(left, right);
  return { relations: left.size, differences };
}

let child: ChildProcess | undefined;
/** Runs the real `lifeboat` CLI in a child process with exactly the given environment. */
function lifeboatCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [LIFEBOAT_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    if (proc.pid) reaper.process(proc.pid);
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.on('error', reject);
    proc.on('close', (code) => {
      child = undefined;
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}
onExit('lifeboat CLI child', async () => child?.kill('SIGKILL'));

/** Process environment with nothing of this process's AWS identity in it. */
function baseEnv(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'LIFEBOAT_PG_BIN', 'LIFEBOAT_PG_OS_USER'];
  return Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]!]));
}

const short = (id: string) => (id.length > 40 ? `${id.slice(0, 37)}...` : id);

// ---------------------------------------------------------------------------
// The cycle
// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  write(bold('lifeboat demo: the nightly cycle (backup, vault copy, retention, restore drill, status) on this machine.\n'));
  write(dim('Real: PostgreSQL, pg_dump/pg_restore, the AWS Encryption SDK, the handlers and the state machine definitions.\n'));
  write(dim('Emulated: AWS APIs (moto_server, plus a loopback proxy for what moto lacks: cross-account KMS and snapshot copies, RDS quota,\n'));
  write(dim('disabled keys), RDS snapshots (API only, no data), Lambda (handlers in-process), Step Functions (aws-local-stepfunctions).\n'));

  // ------------------------------------------------------------------ setup
  stage('setup', 'a production account, a vault account and a database');
  const [cluster, moto] = await step('start a throwaway PostgreSQL cluster and moto_server on loopback', async (s) => {
    const [pgStarted, motoStarted] = await Promise.allSettled([startLocalPostgres({ parentDir: workDir }), startMotoServer()]);
    if (pgStarted.status === 'fulfilled') {
      onExit('PostgreSQL cluster', () => pgStarted.value.stop());
    }
    if (motoStarted.status === 'fulfilled') {
      reaper.process(motoStarted.value.pid);
      onExit('moto_server', () => motoStarted.value.stop());
    }
    if (pgStarted.status === 'rejected') throw pgStarted.reason;
    if (motoStarted.status === 'rejected') throw motoStarted.reason;
    s.line(`PostgreSQL on ${pgStarted.value.host}:${pgStarted.value.port} (data in ${pgStarted.value.dataDir}), moto_server on ${motoStarted.value.endpoint}`);
    return [pgStarted.value, motoStarted.value] as const;
  });
  const admin: Admin = { host: cluster.host, port: cluster.port, user: cluster.superuser, password: cluster.password };
  await step(`load the sample database "shop" (${SAMPLE_ORDERS} orders; jsonb, bytea, TOAST, partitions, large objects, citext)`, async (s) => {
    const sample = await createSampleDatabase({ ...admin, database: 'shop' }, { rows: SAMPLE_ORDERS });
    s.line(`${formatBytes(sample.bytes)} on disk`);
  });
  const env: Env = await step('create both accounts on moto, behind the AWS emulation proxy', async (s) => {
    const created = await createNightlyEnvironment({
      name: NAME,
      motoEndpoint: moto.endpoint,
      postgres: admin,
      databases: [
        { id: 'shop', database: 'shop' },
        { id: 'legacy', database: 'postgres', wrongPassword: true },
      ],
      plan: {
        id: PLAN,
        timezone: 'Europe/Berlin',
        rpoMinutes: 1440,
        rtoMinutes: 60,
        retention: {
          source: { keepLast: 2, daily: 7, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 0 },
          copyRegion: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 0 },
          vault: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 0 },
        },
      },
      vaultRetentionDays: 30,
      drills: { databases: [{ id: 'shop', assertions: [{ name: 'every order restored', sql: `SELECT count(*) = ${SAMPLE_ORDERS} FROM sales.orders` }] }] },
    });
    onExit('proxy', () => created.stop());
    s.line(`production ${LOCAL_ACCOUNTS.production} (${LOCAL_REGIONS.source}): bucket ${created.storage.bucket}, envelope key, secrets, RDS instances ${Object.values(created.instances).join(', ')}`);
    s.line(`            snapshot copies in ${LOCAL_REGIONS.vault} under a customer managed key shared with the vault; alert topic → SQS on-call queue`);
    s.line(`vault      ${LOCAL_ACCOUNTS.vault} (${LOCAL_REGIONS.vault}): bucket ${created.vault.bucket} (Object Lock, compliance, ${created.vault.retentionDays} days), snapshot key, recovery key`);
    s.line(`databases  shop (secret with the right password), legacy (its secret holds a wrong password: its dumps must fail and alert)`);
    return created;
  });
  const { config } = env;
  const sfn = await step('start the Step Functions API stand-in with the backup and retention state machines', async (s) => {
    const started = await startLocalStepFunctions(env.machines, { region: LOCAL_REGIONS.source, account: LOCAL_ACCOUNTS.production });
    onExit('Step Functions stand-in', () => started.stop(), false);
    s.line(`${started.endpoint}: ${env.machines.map((m) => m.name).join(', ')} (the definitions in state-machines/, as CDK deploys them)`);
    return started;
  });
  const sfnClient = new SFNClient({ region: LOCAL_REGIONS.source, endpoint: sfn.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });

  // ----------------------------------------------------------------- backup
  stage('backup', `plan "${PLAN}": a dump and an RDS snapshot of each database, as its 03:00 run starts it (it also runs at 11:00 and 19:00)`);
  const input = backupRunInput(config, PLAN);
  const run = await step(`run the backup state machine (what \`lifeboat run backup --plan ${PLAN}\` prints)`, (s) => runWorkflow(sfn, sfnClient, 'backup', input, s.line));
  const results = backupResults(sfn, run);
  const shop = results.find((r) => r.databaseId === 'shop');
  const legacy = results.find((r) => r.databaseId === 'legacy');
  expect(run.status === 'FAILED' && run.error === 'BackupIncomplete', `the run should fail with BackupIncomplete because of legacy, but ended ${run.status} ${run.error ?? ''}`);
  expect(shop?.status === 'succeeded' && shop.dump.manifestKey, `shop did not back up: ${JSON.stringify(shop)}`);
  expect(shop.dump.vault === 'copied', `shop's dump was not copied to the vault: ${shop.dump.vault}`);
  expect(shop.snapshot.status === 'succeeded' && shop.snapshot.vault?.vault?.poll?.ref, `shop's snapshot did not reach the vault: ${JSON.stringify(shop.snapshot)}`);
  expect(legacy?.dump.status === 'failed' && legacy.snapshot.status === 'succeeded', `legacy should fail its dump only: ${JSON.stringify(legacy)}`);
  const alerts = await step('read the on-call queue (SNS → SQS)', async (s) => {
    const received = await env.inbox.drain(1);
    for (const a of received) s.line(a.subject);
    return received;
  });
  expect(alerts.length === 1 && alerts[0]!.subject.includes('database legacy'), `expected exactly one alert, for legacy; got ${JSON.stringify(alerts.map((a) => a.subject))}`);
  const manifest = await readManifest(env.clients.s3, env.storage.bucket, shop.dump.manifestKey);
  write(`${INDENT}shop   dump ${manifest.backupId}: ${formatBytes(manifest.object.rawBytes)} pg_dump (${manifest.dump.compression}), ${formatBytes(manifest.object.storedBytes)} encrypted; snapshot ${shop.snapshot.snapshot?.id}\n`);
  write(`${INDENT}legacy dump ${legacy.dump.error}, snapshot ${legacy.snapshot.status}: the run ends BackupIncomplete, as it must\n`);
  passed(`shop dumped (${formatBytes(manifest.object.storedBytes)}) and snapshotted; legacy's dump failed as intended and its alert arrived`);

  // ------------------------------------------------------------- vault copy
  stage('vault copy', `what reached the vault account ${LOCAL_ACCOUNTS.vault}, and a restore from it alone`);
  const keys = backupKeys(config.storage.prefix, 'shop', manifest.backupId);
  const vaultS3 = createS3Client({ region: env.vault.region, credentials: env.vault.credentials });
  await step('inspect the vault as the vault account', async (s) => {
    const listed = await vaultS3.send(new ListObjectsV2Command({ Bucket: env.vault.bucket, Prefix: `${config.storage.prefix}shop/${manifest.backupId}/` }));
    const names = (listed.Contents ?? []).map((o) => o.Key!.split('/').pop()).sort();
    expect(JSON.stringify(names) === JSON.stringify(['dump.enc', 'globals.enc', 'manifest.json']), `vault holds ${JSON.stringify(names)} for ${manifest.backupId}`);
    const writes = env.proxy.seen.filter((r) => r.method === 'PUT' && r.url.startsWith(`/${env.vault.bucket}/${config.storage.prefix}shop/${manifest.backupId}/`)).map((r) => r.url.split('?')[0]!.split('/').pop());
    expect(writes.at(-1) === 'manifest.json' && writes.includes('dump.enc'), `the manifest was not written last: ${writes.join(', ')}`);
    s.line(`dump:     s3://${env.vault.bucket}/${keys.data} and manifest.json, written in this order: ${writes.join(', ')} (the manifest, the commit marker, last)`);
    const head = await vaultS3.send(new HeadObjectCommand({ Bucket: env.vault.bucket, Key: keys.data }));
    expect(head.ObjectLockMode === 'COMPLIANCE' && head.ObjectLockRetainUntilDate, `the vault copy is not under Object Lock: ${head.ObjectLockMode}`);
    s.line(`          Object Lock ${head.ObjectLockMode} until ${head.ObjectLockRetainUntilDate.toISOString()}: nobody can delete or overwrite it before`);
    const vaultRef = shop.snapshot.vault!.vault!.poll.ref;
    const vaultRds = createRdsClient({ region: env.vault.region, credentials: env.vault.credentials });
    const [snapshot] = (await vaultRds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: vaultRef.id }))).DBSnapshots ?? [];
    expect(snapshot?.Status === 'available' && snapshot.DBSnapshotArn?.includes(`:${LOCAL_ACCOUNTS.vault}:`), `no available snapshot ${vaultRef.id} in the vault account`);
    s.line(`snapshot: ${snapshot.DBSnapshotIdentifier} in ${LOCAL_ACCOUNTS.vault}/${env.vault.region}, ${snapshot.Status}, under the vault's key`);
    s.line(`          (source snapshot in ${LOCAL_REGIONS.source} → copy in ${shop.snapshot.copy?.poll?.ref?.region} under the shared key → shared → copied in by the vault's copier role)`);
  });
  expect(manifest.encryption.recoveryKmsKeyArns?.includes(env.vault.recoveryKeyArn), 'the dump is not wrapped under the vault recovery key');
  const restoredFromVault = await step('break glass: restore the vault copy with the vault\'s credentials only, production\'s key disabled', async (s) => {
    s.line(`the dump's data key is wrapped under production's key and the vault's recovery key ${short(env.vault.recoveryKeyArn.split('/').pop()!)}`);
    await env.setProductionKeyEnabled(false);
    s.line('production key disabled (as if production were lost); running, in a separate process with the vault account\'s credentials only:');
    s.line(`  lifeboat restore --bucket ${env.vault.bucket} --manifest ${keys.manifest} --target postgres://${admin.user}@${admin.host}:${admin.port}/shop_from_vault --create`);
    const firstRequest = env.proxy.seen.length;
    let out;
    try {
      out = await lifeboatCli(
        ['restore', '--bucket', env.vault.bucket, '--manifest', keys.manifest, '--target', `postgres://${admin.user}@${admin.host}:${admin.port}/shop_from_vault?sslmode=disable`, '--create'],
        { ...baseEnv(), ...env.vaultProcessEnv(), TMPDIR: workDir, PGPASSWORD: admin.password, NO_COLOR: '1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      );
    } finally {
      await env.setProductionKeyEnabled(true);
    }
    expect(out.code === 0, `lifeboat restore from the vault failed (exit ${out.code}): ${out.stderr || out.stdout}`);
    for (const l of out.stdout.trim().split('\n')) s.line(`  ${l}`);
    const decrypts = env.proxy.seen.slice(firstRequest).filter((r) => r.headers['x-amz-target'] === 'TrentService.Decrypt');
    const keyOf = (r: (typeof decrypts)[number]) => (JSON.parse(r.body.toString()) as { KeyId?: string }).KeyId ?? '';
    expect(decrypts.some((r) => keyOf(r) === env.vault.recoveryKeyArn), 'the vault process never asked the recovery key to decrypt');
    s.line(`KMS Decrypt requests from that process: ${decrypts.map((r) => (keyOf(r) === env.vault.recoveryKeyArn ? 'the vault recovery key (unwrapped the data key)' : 'production key (refused)')).join(', then ')}`);
    s.line('production key enabled again');
    return compareContent(admin, 'shop', 'shop_from_vault');
  });
  expect(restoredFromVault.differences.length === 0, `the vault restore differs from shop: ${restoredFromVault.differences.join('; ')}`);
  write(`${INDENT}row by row: all ${restoredFromVault.relations} relations (tables, sequences, large objects) of shop_from_vault are identical to shop\n`);
  passed(`dump (manifest last, Object Lock) and snapshot are in the vault account; restored from the vault with the vault's key alone, identical row by row`);

  // -------------------------------------------------------------- retention
  stage('retention', 'three runs of the plan, pruned by its policies');
  const newest = await step('take two more backups of shop (the plan\'s 11:00 and 19:00 runs), so retention has a history', async (s) => {
    let backupId = manifest.backupId;
    for (let night = 2; night <= 3; night++) {
      // Backup ids name the second a dump started, and the drill's "latest" goes by id: one backup per second.
      const previous = parseBackupIdTime(backupId)!.getTime();
      while (Date.now() < previous + 1000) await new Promise((r) => setTimeout(r, 50));
      const started = Date.now();
      const more = await runWorkflow(sfn, sfnClient, 'backup', backupRunInput(config, PLAN, ['shop']));
      const r = backupResults(sfn, more)[0];
      expect(more.status === 'SUCCEEDED' && r?.dump.vault === 'copied' && r.snapshot.status === 'succeeded', `backup ${night} of shop ended ${more.status} ${more.error ?? ''}`);
      s.line(`backup ${night}: ${more.status} in ${seconds(Date.now() - started)}: dump ${r.dump.backupId} (copied to the vault), snapshot ${r.snapshot.snapshot?.id}`);
      backupId = r.dump.backupId!;
    }
    return backupId;
  });
  const retentionInput = retentionRunInput(config, PLAN);
  const planned = await step('plan it first, as `lifeboat prune` (a dry run) shows it: every backup, kept or deleted, and why', async (s) => {
    const policies = config.plans[0]!.retention;
    const policy = (p: typeof policies.source) => (p ? `keepLast ${p.keepLast}, daily ${p.daily}, minAgeDays ${p.minAgeDays}` : 'none');
    s.line(`policies: source ${policy(policies.source)}; copy-region ${policy(policies.copyRegion)}; vault ${policy(policies.vault)}`);
    s.line(dim('(minAgeDays 0 lets minutes-old backups fall out here; a deployment keeps it at 1 or more)'));
    let deletes = 0;
    const ctx = env.retentionContext();
    for (const target of retentionInput.targets) {
      const result = await runRetentionParts({ planId: PLAN, databaseId: target.databaseId, location: target.location, dryRun: true }, ctx);
      expect(result.errors.length === 0, `planning ${target.databaseId} at ${target.location} failed: ${result.errors.map((e) => e.message).join('; ')}`);
      const rows = [
        ...(isSkipped(result.dumps) ? [] : result.dumps.plan.decisions.map((d) => ({ ...d, part: 'dump' }))),
        ...(isSkipped(result.snapshots) ? [] : result.snapshots.plan.decisions.map((d) => ({ ...d, part: 'snapshot' }))),
      ];
      s.line(`${bold(`${target.databaseId} at ${target.location}`)}${rows.length ? '' : ': nothing stored'}`);
      for (const d of rows) {
        deletes += d.action === 'delete' ? 1 : 0;
        const action = d.action === 'delete' ? red('DELETE') : 'keep  ';
        s.line(`  ${action}  ${d.part.padEnd(8)}  ${short(d.id).padEnd(40)}  ${d.reasons.join(', ')}`);
      }
    }
    return deletes;
  });
  const pruned = await step('run the retention state machine (for real: what the 05:30 schedule does)', (s) => runWorkflow(sfn, sfnClient, 'retention', retentionInput, s.line));
  // Each target is pruned by its own child execution; its output says what it did.
  const targets = sfn.childExecutions(pruned.executionArn).map((c) => c.output as { databaseId: string; location: string; status: string; deleted?: number }).filter(Boolean);
  expect(pruned.status === 'SUCCEEDED', `retention ended ${pruned.status} ${pruned.error ?? ''}`);
  const deleted = targets.reduce((n, r) => n + (r.deleted ?? 0), 0);
  expect(deleted === planned && planned > 0, `retention deleted ${deleted} backups, the plan said ${planned}`);
  const sourceDumps = await env.clients.s3.send(new ListObjectsV2Command({ Bucket: env.storage.bucket, Prefix: `${config.storage.prefix}shop/` }));
  const vaultDumps = await vaultS3.send(new ListObjectsV2Command({ Bucket: env.vault.bucket, Prefix: `${config.storage.prefix}shop/` }));
  const count = (l: typeof sourceDumps) => (l.Contents ?? []).filter((o) => o.Key!.endsWith('/manifest.json')).length;
  expect(count(sourceDumps) === 2 && count(vaultDumps) === 3, `expected 2 dumps of shop at the source and 3 in the vault, found ${count(sourceDumps)} and ${count(vaultDumps)}`);
  write(`${INDENT}${targets.map((r) => `${r.databaseId}@${r.location}: ${r.status}, ${r.deleted ?? 0} deleted`).join('; ')}\n`);
  write(`${INDENT}audit log of every deletion: s3://${env.storage.bucket}/${config.storage.prefix}_audit/retention/\n`);
  passed(`deleted exactly the ${planned} backups the planner marked; shop keeps 2 dumps at the source, all 3 vault copies stay under Object Lock`);

  // ------------------------------------------------------------------ drill
  stage('drill', 'restore the newest dump of shop into a throwaway cluster and prove it');
  const drillDeps = env.drillDeps(workDir);
  onExit('drill clusters', async () => {
    const provisioner = drillDeps.provisioners.local;
    for (const r of (await provisioner?.listDrillResources()) ?? []) await provisioner!.deleteResource(r);
  });
  const drill = await step('run the drill state machine (what `lifeboat drill --database shop` runs)', (s) => {
    const printEvent = eventPrinter(s.line);
    return runLocalDrill({
      requests: drillRequestsFromConfig(config, { databaseId: 'shop' }),
      deps: drillDeps,
      alert: { sns: env.clients.sns, topicArn: env.inbox.topicArn },
      logger: new Logger({ serviceName: 'lifeboat-demo', logLevel: 'SILENT' }),
      onEvent: (event) => {
        const mapped = toHistoryEvent(event);
        if (mapped) printEvent({ ...mapped, timestamp: new Date(mapped.timestamp * 1000) } as HistoryEvent);
      },
    });
  });
  const report = drill.reports[0];
  expect(report, `the drill wrote no report: ${drill.run.error ?? ''} ${String(drill.run.cause ?? '')}`);
  write(`\n${formatDrillReport(report, { color, locations: drill.items[0]?.report }).replace(/^/gm, INDENT)}\n\n`);
  expect(report.verdict === 'passed' && report.objectivesMet, `the drill ${report.verdict}: ${report.summary}`);
  expect(report.backup?.id === newest, `the drill restored ${report.backup?.id}, not the newest backup ${newest}`);
  expect(report.teardown.status === 'complete', `the drill's teardown is ${report.teardown.status}`);
  passed(`${report.checks.filter((c) => c.status === 'passed').length} checks passed on backup ${report.backup?.id}; RTO ${report.rto?.seconds?.toFixed(1)}s, RPO ${report.rpo?.seconds?.toFixed(1)}s, both within target; throwaway torn down`);

  // ----------------------------------------------------------------- status
  stage('status', '`lifeboat status`: are we safe?');
  const status = await step('collect status from both accounts (backups, vault copies, drill reports, snapshot quota)', () => collectStatus(config, env.statusSources()));
  write(`\n${renderStatusText(status, color).replace(/^/gm, INDENT)}\n\n`);
  const htmlDir = mkdtempSync(join(tmpdir(), 'lifeboat-demo-status-'));
  const htmlPath = join(htmlDir, 'status.html');
  writeFileSync(htmlPath, renderStatusHtml(status));
  write(`${INDENT}lifeboat status --html: ${htmlPath} ${dim('(kept for you to open; the only thing the demo leaves behind)')}\n`);
  const byId = Object.fromEntries(status.databases.map((d) => [d.databaseId, d]));
  expect(byId.shop?.severity === 'ok' && byId.shop.newestVaultBackup && byId.shop.newestDrill?.passed, `shop should be safe: ${JSON.stringify(byId.shop?.problems)}`);
  expect(byId.legacy?.severity === 'failing' && byId.legacy.problems.some((p) => p.message === 'no committed backup'), `legacy should be failing: ${JSON.stringify(byId.legacy?.problems)}`);
  passed('shop is safe (backup and vault copy within RPO, proven by its drill); legacy is flagged NOT SAFE, as it should be');
}

let failure: unknown;
try {
  await main();
} catch (error) {
  failure = error;
}
write('\n');
await step('stop everything the demo started (clusters, moto_server, proxy, stand-in, temp dirs)', () => cleanup());
// After a failure a step may still be in flight; the watcher reaps whatever it starts once this process exits.
if (!failure) reaper.done();
write(`\n${bold('Verdict')}\n`);
for (const v of verdicts) write(`  ${green('PASS')}  ${v.stage.padEnd(10)}  ${v.summary}\n`);
const total = seconds(Date.now() - t0);
if (failure) {
  write(`  ${red('FAIL')}  ${currentStage.padEnd(10)}  ${(failure as Error).message}\n`);
  write(`\n${red(bold(`Demo FAILED after ${total}.`))}\n`);
  if (process.env.LIFEBOAT_DEMO_DEBUG) console.error(failure);
  process.exitCode = 1;
} else {
  write(`\n${green(bold(`Demo PASSED in ${total}: every stage of the nightly cycle did what it should, and nothing is left running.`))}\n`);
}
