import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import type { LifeboatConfig } from '../../functions/lib/config/schema.ts';
import { vaultNames } from '../../functions/lib/vault/names.ts';
import { checkSourceStackSupport } from '../../infra/config.ts';
import { sourceStackName } from '../../infra/source-stack.ts';
import { deployedWorkflowNames } from '../../state-machines/definitions.ts';
import { sideClients, type SideClients } from './aws.ts';
import { runCdk, stopRunningChildren } from './cdk.ts';
import {
  checkDrillReport,
  checkDumpPair,
  checkNoSecrets,
  checkRetentionAudit,
  checkSampleInventory,
  checkSnapshot,
  failed,
  guarded,
  lingeringDrillInstances,
  listCommittedBackupIds,
  manifestExists,
  passed,
  snapshotsOfExecution,
  waitForAlert,
  type BucketRef,
  type CheckResult,
  type ReceivedAlert,
} from './checks.ts';
import { CleanupRegistry, runWithCleanup, SIGNAL_EXIT_CODES, type CleanupAction, type CleanupEntry } from './cleanup.ts';
import { BROKEN_DATABASE_ID, BROKEN_PLAN_ID, SMOKE_DATABASE_ID, SMOKE_PLAN_ID, smokeConfig, vaultAdminPatterns } from './config.ts';
import { followExecution, startWorkflow, stopExecutionIfRunning, type FollowedExecution, type Workflow } from './executions.ts';
import { fixtureStackName, quietWindows, readFixtureOutputs, type SmokeFixture, type SmokeFixtureProps } from './fixture-stack.ts';
import type { SmokeOptions } from './options.ts';
import { registerClientCredentials, type SmokeOutput } from './output.ts';
import { describePlan } from './plan.ts';
import { finalReport } from './report.ts';
import {
  backupBucketOf,
  bucketOutcome,
  deleteDrillLeftovers,
  deleteSnapshotsOfExecutions,
  emptyAndDeleteBucket,
  findDeploymentKeys,
  findRetainedBuckets,
  forceDeleteSecret,
  scheduleKeyDeletion,
} from './resources.ts';
import { SAMPLE_TABLES } from './sample-data.ts';

/**
 * The smoke test, step by step (see docs/deployment.md, "Smoke test on real AWS"):
 * preflight, plan and confirmation, fixture, vault stack, source stack, runs,
 * checks, cleanup, final table. Everything it creates is recorded in the
 * cleanup registry before it exists.
 */
export interface SmokeIo {
  readonly output: SmokeOutput;
  readonly env: NodeJS.ProcessEnv;
  /** The repository root: cdk.json, infra/app.ts, the Dockerfile. */
  readonly repoRoot: string;
  readonly confirm: (question: string) => Promise<string>;
  readonly isInteractive: boolean;
}

/** Facts a resumed cleanup needs; names and regions only, never credentials. */
interface SmokeMeta {
  name: string;
  sourceProfile?: string;
  vaultProfile?: string;
  sourceRegion: string;
  vaultRegion: string;
  sourceAccount: string;
  vaultAccount: string;
  partition: string;
}

const ORDER = {
  execution: 10,
  drillLeftovers: 20,
  sourceStack: 30,
  sourceBuckets: 32,
  sourceKeys: 34,
  sourceLogs: 35,
  snapshots: 40,
  vaultStack: 50,
  vaultBucket: 52,
  vaultLogsBucket: 53,
  vaultKeys: 54,
  vaultLogs: 55,
  fixtureStack: 60,
  secrets: 62,
  copyKey: 70,
} as const;

const FIXTURE_APP = 'npx tsx scripts/smoke-aws/fixture-app.ts';
const TEARDOWN_APP = 'npx tsx scripts/smoke-aws/teardown-app.ts';

function stamp(): string {
  return new Date().toISOString().slice(11, 19);
}

/** The KMS key policy of the production account's snapshot-copy key: its own account administers it, the vault may use it (FACTS: sharing). */
export function copyKeyPolicy(sourceAccount: string, vaultAccount: string, partition = 'aws'): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'ProductionAccountAdministers', Effect: 'Allow', Principal: { AWS: `arn:${partition}:iam::${sourceAccount}:root` }, Action: 'kms:*', Resource: '*' },
      {
        Sid: 'VaultAccountCopiesSharedSnapshots',
        Effect: 'Allow',
        Principal: { AWS: `arn:${partition}:iam::${vaultAccount}:root` },
        Action: ['kms:CreateGrant', 'kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'],
        Resource: '*',
      },
    ],
  });
}

/** The cleanup actions, bound to the two sides' clients and the repo (used by a run and by `--cleanup`). */
export function cleanupActions(ctx: { meta: SmokeMeta; source: SideClients; vault: SideClients; io: SmokeIo; sleepMs?: number }): Record<string, CleanupAction> {
  const side = (entry: CleanupEntry) => (entry.params.side === 'vault' ? ctx.vault : ctx.source);
  const region = (entry: CleanupEntry) => String(entry.params.region);
  const profileOf = (entry: CleanupEntry) => (entry.params.side === 'vault' ? ctx.meta.vaultProfile : ctx.meta.sourceProfile);
  const cdkOptions = { cwd: ctx.io.repoRoot, env: ctx.io.env, output: ctx.io.output };
  return {
    execution: async (entry) => {
      const result = await stopExecutionIfRunning(side(entry).sfn(region(entry)), String(entry.params.executionArn));
      return { status: 'done', detail: result };
    },
    'drill-leftovers': async (entry) => deleteDrillLeftovers(side(entry).rds(region(entry)), side(entry).secrets(region(entry)), String(entry.params.executionArnPrefix)),
    'cdk-stack': async (entry) => {
      const p = entry.params as { stack: string; app?: string; context: Record<string, string>; outdir: string; retries?: number; retryWaitMs?: number; unprotectApp?: string };
      const base = { stacks: [p.stack], app: p.app, context: p.context, profile: profileOf(entry), outdir: p.outdir };
      const attempts = p.retries ?? 1;
      for (let attempt = 1; ; attempt++) {
        try {
          await runCdk({ action: 'destroy', ...base }, cdkOptions);
          return { status: 'done', detail: `stack ${p.stack} destroyed` };
        } catch (error) {
          if (p.unprotectApp && attempt === 1) {
            // The vault is termination-protected: redeploy it unprotected (same template), then destroy.
            ctx.io.output.line(`[${stamp()}] ${p.stack} is termination-protected; lifting the protection before destroying it`);
            await runCdk({ action: 'deploy', ...base, app: p.unprotectApp }, cdkOptions);
            continue;
          }
          if (attempt >= attempts) throw error;
          const waitMs = p.retryWaitMs ?? 300_000;
          ctx.io.output.line(`[${stamp()}] destroying ${p.stack} failed (attempt ${attempt} of ${attempts}); Lambda network interfaces can take a while to go, retrying in ${Math.round(waitMs / 60_000)} min`);
          await new Promise((r) => setTimeout(r, ctx.sleepMs ?? waitMs));
        }
      }
    },
    'retained-buckets': async (entry) => {
      const s3 = side(entry).s3(region(entry));
      const buckets = await findRetainedBuckets(s3, region(entry), String(entry.params.stackName), String(entry.params.deployment));
      // The backup bucket first: emptying it writes access logs into the other.
      const backup = await backupBucketOf(s3, buckets).catch(() => undefined);
      const ordered = [...buckets].sort((a, b) => (a === backup ? -1 : b === backup ? 1 : 0));
      const outcomes = [];
      for (const bucket of ordered) outcomes.push(bucketOutcome(bucket, await emptyAndDeleteBucket(s3, bucket)));
      if (outcomes.length === 0) return { status: 'done', detail: 'no retained bucket found' };
      const status = outcomes.some((o) => o.status === 'left') ? 'left' : outcomes.some((o) => o.status === 'kept') ? 'kept' : 'done';
      return { status, detail: outcomes.map((o) => o.detail).join('; ') };
    },
    bucket: async (entry) => {
      const bucket = String(entry.params.bucket);
      return bucketOutcome(bucket, await emptyAndDeleteBucket(side(entry).s3(region(entry)), bucket));
    },
    'retained-keys': async (entry) => {
      const kms = side(entry).kms(region(entry));
      const keys = await findDeploymentKeys(kms, String(entry.params.deployment));
      for (const key of keys) await scheduleKeyDeletion(kms, key);
      return { status: 'done', detail: keys.length ? `${keys.length} key(s) scheduled for deletion in 7 days` : 'no key left to schedule' };
    },
    'kms-key': async (entry) => {
      const outcome = await scheduleKeyDeletion(side(entry).kms(region(entry)), String(entry.params.keyId));
      return { status: 'done', detail: outcome === 'scheduled' ? 'scheduled for deletion in 7 days' : 'already pending deletion or gone' };
    },
    snapshots: async (entry) => deleteSnapshotsOfExecutions(side(entry).rds(region(entry)), String(entry.params.executionArnPrefix)),
    secret: async (entry) => forceDeleteSecret(side(entry).secrets(region(entry)), String(entry.params.secretId)),
    'log-groups': async (entry) => ({ status: 'kept', detail: String(entry.params.note) }),
  };
}

function recordLogGroups(registry: CleanupRegistry, meta: SmokeMeta, which: 'source' | 'vault'): void {
  const region = which === 'source' ? meta.sourceRegion : meta.vaultRegion;
  const stack = which === 'source' ? sourceStackName({ name: meta.name }) : vaultNames({ name: meta.name, vault: { account: meta.vaultAccount, region: meta.vaultRegion } }).stackName;
  const states = which === 'source' ? ` and ${deployedWorkflowNames(meta.name, '*').logGroupName}` : '';
  registry.record({
    id: `log-groups/${which}`,
    kind: 'log-groups',
    order: which === 'source' ? ORDER.sourceLogs : ORDER.vaultLogs,
    description: `log groups of ${stack} (${region})`,
    params: {
      side: which,
      region,
      // Nothing a later --cleanup could do about them.
      final: true,
      note: `kept by the stack (RETAIN, 3-month retention): /aws/lambda/${stack}-*${states}. This script has no CloudWatch Logs client; delete them in the console if you like (they cost only their few KB)`,
    },
  });
}

async function confirmRun(options: SmokeOptions, io: SmokeIo): Promise<boolean> {
  if (options.yes) return true;
  if (!io.isInteractive) {
    io.output.line('Not a terminal, so nobody can confirm: pass --yes to create these resources without asking.');
    return false;
  }
  const answer = await io.confirm(`Type the deployment name (${options.name}) to create all this, anything else to stop: `);
  return answer.trim() === options.name;
}

function dockerAvailable(): boolean {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore', timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/** The whole run. Returns the exit code; the final table is printed either way. */
export async function runSmoke(options: SmokeOptions, io: SmokeIo): Promise<number> {
  const { output } = io;
  const source = sideClients(options.source);
  const vault = sideClients(options.vault);

  // Preflight: who are we, in which accounts? Nothing is created yet.
  let sourceArn: string;
  let vaultArn: string;
  let sourceAccount: string;
  let vaultAccount: string;
  try {
    await registerClientCredentials(output, source.sts());
    const id = await source.sts().send(new GetCallerIdentityCommand({}));
    sourceArn = id.Arn!;
    sourceAccount = id.Account!;
  } catch (error) {
    output.line(`Cannot use the production (source) credentials (${options.source.credentialSource}): ${(error as Error).message}. Nothing was created.`);
    return 2;
  }
  try {
    await registerClientCredentials(output, vault.sts());
    const id = await vault.sts().send(new GetCallerIdentityCommand({}));
    vaultArn = id.Arn!;
    vaultAccount = id.Account!;
  } catch (error) {
    output.line(`Cannot use the vault credentials (${options.vault.credentialSource}): ${(error as Error).message}. Nothing was created.`);
    return 2;
  }
  if (sourceAccount === vaultAccount) {
    output.line(`The source and vault credentials are both account ${sourceAccount}: the vault must be another AWS account. Nothing was created.`);
    return 2;
  }
  let adminPatterns: string[];
  try {
    adminPatterns = vaultAdminPatterns(vaultArn);
  } catch (error) {
    output.line(`${(error as Error).message}. Nothing was created.`);
    return 2;
  }
  if (!dockerAvailable()) {
    output.line('Docker is not running (docker info failed): deploying the source stack builds the linux/arm64 runner image. Start Docker and try again. Nothing was created.');
    return 2;
  }
  const partition = sourceArn.split(':')[1] ?? 'aws';
  output.line(`source credentials: ${sourceArn}`);
  output.line(`vault credentials:  ${vaultArn}`);
  for (const line of describePlan(options, { sourceAccount, vaultAccount })) output.line(line);
  if (!(await confirmRun(options, io))) {
    output.line('Stopped before creating anything.');
    return 2;
  }

  const workDir = mkdtempSync(join(tmpdir(), `lifeboat-smoke-${options.name}-`));
  const meta: SmokeMeta = {
    name: options.name,
    sourceProfile: options.source.profile,
    vaultProfile: options.vault.profile,
    sourceRegion: options.source.region,
    vaultRegion: options.vault.region,
    sourceAccount,
    vaultAccount,
    partition,
  };
  const registry = new CleanupRegistry({
    journalPath: join(workDir, 'journal.json'),
    meta: { ...meta },
    actions: cleanupActions({ meta, source, vault, io }),
    log: (line) => output.line(`[${stamp()}] ${line}`),
  });
  output.line(`work dir (config, journal; kept if anything is left): ${workDir}`);

  const checks: CheckResult[] = [];
  const run = await runWithCleanup(registry, (signal) => smokeMain({ options, io, source, vault, meta, registry, workDir, adminPatterns, checks }, signal), {
    log: (line) => output.line(line),
    abandon: (signal) => {
      output.line(`\n${signal} again: abandoning the cleanup. What is left is in ${join(workDir, 'journal.json')}; finish with: npm run smoke:aws -- --cleanup ${workDir}`);
      stopRunningChildren();
      process.exit(SIGNAL_EXIT_CODES[signal] ?? 1);
    },
  });
  const verdict = finalReport({
    checks,
    cleanup: run.cleanup,
    runError: run.error && !run.interrupted ? `${(run.error as Error).name}: ${(run.error as Error).message}` : undefined,
    interrupted: run.interrupted,
    interruptedExitCode: run.interrupted ? SIGNAL_EXIT_CODES[run.interrupted] : undefined,
    workDir,
  });
  for (const line of verdict.lines) output.line(line);
  finishWorkDir(workDir, registry);
  return verdict.exitCode;
}

/**
 * Removes the work dir when a later `--cleanup` has nothing left to do (every
 * entry done, or kept for good, like the log groups); otherwise keeps the
 * journal and config for it, and drops only the cloud assemblies.
 */
function finishWorkDir(workDir: string, registry: CleanupRegistry): void {
  if (registry.entries().every((e) => e.status === 'done' || (e.status === 'kept' && e.params.final === true))) {
    rmSync(workDir, { recursive: true, force: true });
    return;
  }
  for (const name of readdirSync(workDir)) if (name.startsWith('cdk.out')) rmSync(join(workDir, name), { recursive: true, force: true });
}

interface MainContext {
  readonly options: SmokeOptions;
  readonly io: SmokeIo;
  readonly source: SideClients;
  readonly vault: SideClients;
  readonly meta: SmokeMeta;
  readonly registry: CleanupRegistry;
  readonly workDir: string;
  readonly adminPatterns: string[];
  readonly checks: CheckResult[];
}

function readOutputs(file: string): Record<string, Record<string, string>> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, string>>;
}

async function smokeMain(ctx: MainContext, signal: AbortSignal): Promise<void> {
  const { options, io, source, vault, meta, registry, workDir, checks } = ctx;
  const { output } = io;
  const step = (text: string) => output.line(`\n[${stamp()}] == ${text}`);
  const name = options.name;
  const srcRegion = options.source.region;
  const vaultRegion = options.vault.region;
  const cdk = { cwd: io.repoRoot, env: io.env, output };
  const throwIfAborted = () => {
    if (signal.aborted) throw signal.reason;
  };

  // 1. The production account's key for the snapshot copy in the vault region.
  step(`KMS key for the snapshot copy (${meta.sourceAccount}, ${vaultRegion})`);
  const key = await source.kms(vaultRegion).send(
    new CreateKeyCommand({
      Description: `lifeboat smoke ${name}: snapshot copies shared with the vault account ${meta.vaultAccount}. Deleted by the smoke test.`,
      Policy: copyKeyPolicy(meta.sourceAccount, meta.vaultAccount, meta.partition),
      Tags: [{ TagKey: 'lifeboat:smoke', TagValue: name }],
    }),
  );
  const copyKeyArn = key.KeyMetadata!.Arn!;
  registry.record({ id: 'copy-key', kind: 'kms-key', order: ORDER.copyKey, description: `KMS key ${copyKeyArn}`, params: { side: 'source', region: vaultRegion, keyId: copyKeyArn } });
  throwIfAborted();

  // 2. The fixture: VPC, RDS, secrets, sample data, alert queue.
  step(`fixture stack ${fixtureStackName(name)} (VPC, RDS PostgreSQL ${options.engineMajor}, secrets, sample data, alert queue): about 15 min`);
  const propsFile = join(workDir, 'fixture-props.json');
  const windows = quietWindows(new Date());
  const fixtureProps: SmokeFixtureProps = { name, region: srcRegion, engineMajor: options.engineMajor, sourceStackName: sourceStackName({ name }), ...windows };
  writeFileSync(propsFile, `${JSON.stringify(fixtureProps, null, 2)}\n`);
  const fixtureOut = join(workDir, 'cdk.out-fixture');
  registry.record({
    id: 'stack/fixture',
    kind: 'cdk-stack',
    order: ORDER.fixtureStack,
    description: `stack ${fixtureStackName(name)} (VPC, RDS instance, secrets, queue)`,
    params: { side: 'source', stack: fixtureStackName(name), app: FIXTURE_APP, context: { smokeFixture: propsFile }, outdir: fixtureOut, retries: 8, retryWaitMs: 300_000 },
  });
  for (const which of ['master', 'wrong-password']) {
    const secretId = `lifeboat-smoke/${name}/${which}`;
    registry.record({ id: `secret/${which}`, kind: 'secret', order: ORDER.secrets, description: `secret ${secretId}`, params: { side: 'source', region: srcRegion, secretId } });
  }
  const fixtureOutputs = join(workDir, 'outputs-fixture.json');
  await runCdk({ action: 'deploy', stacks: [fixtureStackName(name)], app: FIXTURE_APP, context: { smokeFixture: propsFile }, profile: options.source.profile, outdir: fixtureOut, outputsFile: fixtureOutputs }, cdk);
  const fixture: SmokeFixture = readFixtureOutputs(readOutputs(fixtureOutputs), fixtureStackName(name));
  // Known from here on, so never printed: the passwords of both secrets.
  for (const secretArn of [fixture.masterSecretArn, fixture.wrongSecretArn]) {
    const value = await source.secrets(srcRegion).send(new GetSecretValueCommand({ SecretId: secretArn }));
    const parsed = JSON.parse(value.SecretString ?? '{}') as { password?: string };
    output.addSecret(parsed.password);
  }
  const seeded = SAMPLE_TABLES.map((t) => `${t.name}=${fixture.sampleRows[t.name]}`).join(', ');
  const seededOk = SAMPLE_TABLES.every((t) => fixture.sampleRows[t.name] === t.rows);
  checks.push(seededOk ? passed('sample data seeded with its known row counts', seeded) : failed('sample data seeded with its known row counts', `counted ${seeded}`));
  throwIfAborted();

  // 3. The vault stack, with vault credentials.
  const configFile = join(workDir, 'lifeboat.config.json');
  const writeConfig = (recoveryKmsKeyArn?: string): LifeboatConfig => {
    const raw = smokeConfig({
      name,
      source: { account: meta.sourceAccount, region: srcRegion },
      vault: { account: meta.vaultAccount, region: vaultRegion, adminPrincipalArns: ctx.adminPatterns, recoveryKmsKeyArn },
      copyKeyArn,
      fixture,
      now: new Date(),
    });
    const config = parseConfig(raw, configFile);
    checkSourceStackSupport(config, configFile);
    writeFileSync(configFile, `${JSON.stringify(raw, null, 2)}\n`);
    return config;
  };
  writeConfig();
  const names = vaultNames({ name, vault: { account: meta.vaultAccount, region: vaultRegion } }, meta.partition);
  const vaultOut = join(workDir, 'cdk.out-vault');
  const lifeboatContext = { config: configFile };
  // Each side is synthesized alone and deployed with its own account's credentials only (docs/deployment.md).
  const vaultContext = { ...lifeboatContext, deploy: 'vault' };
  const sourceContext = { ...lifeboatContext, deploy: 'source' };
  registry.record({
    id: 'stack/vault',
    kind: 'cdk-stack',
    order: ORDER.vaultStack,
    description: `stack ${names.stackName} (vault account)`,
    params: { side: 'vault', stack: names.stackName, context: vaultContext, outdir: vaultOut, retries: 3, retryWaitMs: 120_000, unprotectApp: TEARDOWN_APP },
  });
  registry.record({ id: 'bucket/vault', kind: 'bucket', order: ORDER.vaultBucket, description: `vault bucket ${names.bucketName}`, params: { side: 'vault', region: vaultRegion, bucket: names.bucketName } });
  registry.record({ id: 'bucket/vault-logs', kind: 'bucket', order: ORDER.vaultLogsBucket, description: `vault access-log bucket ${names.accessLogsBucketName}`, params: { side: 'vault', region: vaultRegion, bucket: names.accessLogsBucketName } });
  registry.record({ id: 'keys/vault', kind: 'retained-keys', order: ORDER.vaultKeys, description: `vault KMS keys (${vaultRegion})`, params: { side: 'vault', region: vaultRegion, deployment: name } });
  recordLogGroups(registry, meta, 'vault');
  step(`vault stack ${names.stackName} (account ${meta.vaultAccount}, ${vaultRegion})`);
  const vaultOutputs = join(workDir, 'outputs-vault.json');
  await runCdk({ action: 'deploy', stacks: [names.stackName], context: vaultContext, profile: options.vault.profile, outdir: vaultOut, outputsFile: vaultOutputs }, cdk);
  const vaultValues = readOutputs(vaultOutputs)[names.stackName] ?? {};
  const recoveryKeyArn = vaultValues.RecoveryKeyArn;
  const vaultSnapshotKeyArn = vaultValues.SnapshotKeyArn;
  if (!recoveryKeyArn || !vaultSnapshotKeyArn) throw new Error(`the vault stack has no RecoveryKeyArn/SnapshotKeyArn output (got ${Object.keys(vaultValues).join(', ') || 'none'})`);
  throwIfAborted();

  // 4. The source stack, with the recovery key, with production credentials.
  const config = writeConfig(recoveryKeyArn);
  const stackName = sourceStackName({ name });
  // Every execution of this deployment's state machines (`<name>-lifeboat-<workflow>`): the name is the run's own.
  const executionPrefix = `arn:${meta.partition}:states:${srcRegion}:${meta.sourceAccount}:execution:${name}-lifeboat-`;
  registry.record({
    id: 'stack/source',
    kind: 'cdk-stack',
    order: ORDER.sourceStack,
    description: `stack ${stackName}`,
    params: { side: 'source', stack: stackName, context: sourceContext, outdir: join(workDir, 'cdk.out-source'), retries: 2, retryWaitMs: 120_000 },
  });
  registry.record({ id: 'buckets/source', kind: 'retained-buckets', order: ORDER.sourceBuckets, description: `backup and access-log buckets of ${stackName}`, params: { side: 'source', region: srcRegion, stackName, deployment: name } });
  registry.record({ id: 'keys/source', kind: 'retained-keys', order: ORDER.sourceKeys, description: `KMS keys of ${stackName} (${srcRegion})`, params: { side: 'source', region: srcRegion, deployment: name } });
  recordLogGroups(registry, meta, 'source');
  registry.record({ id: 'drill-leftovers', kind: 'drill-leftovers', order: ORDER.drillLeftovers, description: 'drill throwaways (instances, secrets) of this run', params: { side: 'source', region: srcRegion, executionArnPrefix: executionPrefix } });
  for (const [which, sideName, region] of [['source', 'source', srcRegion], ['copy', 'source', vaultRegion], ['vault', 'vault', vaultRegion]] as const) {
    registry.record({
      id: `snapshots/${which}`,
      kind: 'snapshots',
      order: ORDER.snapshots,
      description: `RDS snapshots of this run (${which === 'vault' ? `vault account ${meta.vaultAccount}` : meta.sourceAccount}, ${region})`,
      params: { side: sideName, region, executionArnPrefix: executionPrefix },
    });
  }
  step(`source stack ${stackName} (builds the arm64 runner image with Docker): about 15 min`);
  await runCdk({ action: 'deploy', stacks: [stackName], context: sourceContext, profile: options.source.profile, outdir: join(workDir, 'cdk.out-source') }, cdk);
  const retained = await findRetainedBuckets(source.s3(srcRegion), srcRegion, stackName, name);
  const backupBucket = await backupBucketOf(source.s3(srcRegion), retained);
  if (!backupBucket) throw new Error(`cannot find the backup bucket of ${stackName} (buckets found: ${retained.join(', ') || 'none'})`);
  output.line(`backup bucket: ${backupBucket}; vault bucket: ${names.bucketName}`);
  throwIfAborted();

  // 5. The runs, started as the schedules start them.
  const sfn = source.sfn(srcRegion);
  const where = { partition: meta.partition, region: srcRegion, account: meta.sourceAccount };
  const timeoutMs = options.executionTimeoutMinutes * 60_000;
  let runNo = 0;
  const runWorkflow = async (workflow: Workflow, flags: { plan?: string }, label: string): Promise<FollowedExecution> => {
    const started = await startWorkflow(sfn, config, workflow, flags, where, `smoke-${workflow}-${++runNo}-${Date.now()}`);
    registry.record({ id: `execution/${started.executionArn}`, kind: 'execution', order: ORDER.execution, description: `execution ${label}`, params: { side: 'source', region: srcRegion, executionArn: started.executionArn } });
    output.line(`[${stamp()}] started ${label}: ${started.executionArn}`);
    const result = await followExecution(sfn, started.executionArn, { print: (l) => output.line(l), timeoutMs, signal, label: `[${label}]` });
    if (!result.gaveUp) registry.resolve(`execution/${started.executionArn}`, `ended ${result.status}`);
    return result;
  };
  const succeeded = (label: string, r: FollowedExecution) =>
    r.status === 'SUCCEEDED' ? passed(`${label} SUCCEEDED`, r.executionArn) : failed(`${label} SUCCEEDED`, `${r.gaveUp ? `still running after ${options.executionTimeoutMinutes} min` : r.status}${r.error ? ` ${r.error}` : ''}${r.cause ? `: ${r.cause.slice(0, 300)}` : ''}`);

  const sourceBucket: BucketRef = { s3: source.s3(srcRegion), bucket: backupBucket };
  const vaultBucket: BucketRef = { s3: vault.s3(vaultRegion), bucket: names.bucketName };
  const prefix = config.storage.prefix;

  step(`backup run 1 (plan ${SMOKE_PLAN_ID}: dump, snapshot, copies) and the broken run (plan ${BROKEN_PLAN_ID}, wrong password)`);
  let alert: { found?: ReceivedAlert; seen: ReceivedAlert[] } | undefined;
  const brokenRun = async () => {
    const r = await runWorkflow('backup', { plan: BROKEN_PLAN_ID }, 'broken backup');
    checks.push(
      r.status === 'FAILED'
        ? passed(`broken backup (database "${BROKEN_DATABASE_ID}") ends FAILED`, `${r.error ?? ''} ${r.executionArn}`.trim())
        : failed(`broken backup (database "${BROKEN_DATABASE_ID}") ends FAILED`, `ended ${r.status}`),
    );
    alert = await waitForAlert(source.sqs(srcRegion), fixture.alertQueueUrl, (a) => a.kind === 'backup-failed' && a.databaseId === BROKEN_DATABASE_ID, {
      timeoutMs: options.alertTimeoutMinutes * 60_000,
      signal,
    });
  };
  // Both run at once; neither failure goes unobserved.
  const [brokenOutcome, firstOutcome] = await Promise.allSettled([brokenRun(), runWorkflow('backup', { plan: SMOKE_PLAN_ID }, 'backup 1')]);
  if (firstOutcome.status === 'rejected') throw firstOutcome.reason;
  if (brokenOutcome.status === 'rejected') throw brokenOutcome.reason;
  const first = firstOutcome.value;
  checks.push(succeeded('backup run 1', first));
  const alertName = `backup-failed alert for "${BROKEN_DATABASE_ID}" arrives in SQS through SNS`;
  checks.push(
    alert?.found
      ? passed(alertName, alert.found.subject ?? alert.found.kind)
      : failed(alertName, `not within ${options.alertTimeoutMinutes} min; arrived: ${alert?.seen.map((a) => `${a.kind}/${a.databaseId ?? '-'}`).join(', ') || 'nothing'}`),
  );
  checks.push(checkNoSecrets('alerts carry no password or credential', (alert?.seen ?? []).map((a) => a.text).join('\n'), output.secretValues()));
  if (first.status !== 'SUCCEEDED') throw new Error('backup run 1 did not succeed, so the runs that need it were skipped');
  const [backup1] = await listCommittedBackupIds(sourceBucket, prefix, SMOKE_DATABASE_ID);
  if (!backup1) throw new Error(`backup run 1 succeeded but no manifest is under s3://${backupBucket}/${prefix}${SMOKE_DATABASE_ID}/`);

  step('backup run 2 (gives retention an older backup to prune)');
  const second = await runWorkflow('backup', { plan: SMOKE_PLAN_ID }, 'backup 2');
  checks.push(succeeded('backup run 2', second));
  if (second.status !== 'SUCCEEDED') throw new Error('backup run 2 did not succeed, so the drill and retention were skipped');
  const backup2 = (await listCommittedBackupIds(sourceBucket, prefix, SMOKE_DATABASE_ID)).filter((id) => id !== backup1).pop();

  step('drill (restores the newest dump into a throwaway RDS instance): about 30 min');
  const drill = await runWorkflow('drill', {}, 'drill');
  checks.push(succeeded('drill run', drill));

  step('retention (keeps only the newest backup at the source and in the copy region)');
  const retentionStart = new Date();
  const retention = await runWorkflow('retention', { plan: SMOKE_PLAN_ID }, 'retention');
  checks.push(succeeded('retention run', retention));

  // 6. What the runs left behind.
  step('checks');
  if (backup2) {
    const pair = await checkDumpPair(sourceBucket, vaultBucket, prefix, SMOKE_DATABASE_ID, backup2);
    checks.push(...pair.checks, checkSampleInventory(pair.manifest));
  } else {
    checks.push(failed('dump of backup run 2 in the source bucket', `no second manifest under s3://${backupBucket}/${prefix}${SMOKE_DATABASE_ID}/`));
  }
  checks.push(
    ...(await guarded('snapshot of backup run 2 available with lifeboat tags (source)', async () => {
      const ours = (await snapshotsOfExecution(source.rds(srcRegion), second.executionArn)).filter((s) => s.DBInstanceIdentifier === fixture.instanceIdentifier && !s.DBSnapshotIdentifier?.endsWith('-cmk'));
      return checkSnapshot('snapshot of backup run 2 available with lifeboat tags (source)', ours, { planId: SMOKE_PLAN_ID, databaseId: SMOKE_DATABASE_ID });
    })),
  );
  checks.push(
    ...(await guarded('vault copy of that snapshot available with lifeboat tags, under the vault key', async () =>
      checkSnapshot('vault copy of that snapshot available with lifeboat tags, under the vault key', await snapshotsOfExecution(vault.rds(vaultRegion), second.executionArn), {
        planId: SMOKE_PLAN_ID,
        databaseId: SMOKE_DATABASE_ID,
        kmsKeyArn: vaultSnapshotKeyArn,
      }),
    )),
  );
  checks.push(...(await guarded('drill report', () => checkDrillReport(sourceBucket, prefix, SMOKE_DATABASE_ID, { backupId: backup2, executionArn: drill.executionArn }))));
  checks.push(
    ...(await guarded('the drill left no throwaway instance running', async () => {
      const lingering = await lingeringDrillInstances(source.rds(srcRegion), drill.executionArn);
      return lingering.length
        ? failed('the drill left no throwaway instance running', lingering.map((i) => `${i.id} (${i.status})`).join(', '))
        : passed('the drill left no throwaway instance running', 'every drill instance is gone or deleting');
    })),
  );
  checks.push(...(await guarded('retention audit log', () => checkRetentionAudit(sourceBucket, prefix, { databaseId: SMOKE_DATABASE_ID, backupId: backup1, since: retentionStart }))));
  checks.push(
    ...(await guarded(`retention removed backup ${backup1} at the source; the vault keeps its copy`, async () => {
      const atSource = await manifestExists(sourceBucket, prefix, SMOKE_DATABASE_ID, backup1);
      const inVault = await manifestExists(vaultBucket, prefix, SMOKE_DATABASE_ID, backup1);
      const name = `retention removed backup ${backup1} at the source; the vault keeps its copy`;
      return !atSource && inVault ? passed(name, 'source manifest gone, vault manifest present') : failed(name, `source manifest ${atSource ? 'still there' : 'gone'}, vault manifest ${inVault ? 'present' : 'missing'}`);
    })),
  );
  checks.push(
    ...(await guarded("retention deleted backup run 1's snapshot at the source", async () => {
      const left = (await snapshotsOfExecution(source.rds(srcRegion), first.executionArn)).filter((s) => s.Status !== 'deleting');
      const name = "retention deleted backup run 1's snapshot at the source";
      return left.length ? failed(name, `still there: ${left.map((s) => `${s.DBSnapshotIdentifier} (${s.Status})`).join(', ')}`) : passed(name, 'gone or deleting');
    })),
  );
}

/** `--cleanup <work dir>`: runs what a previous run's journal still lists. */
export async function runCleanupOnly(workDir: string, io: SmokeIo): Promise<number> {
  const journalPath = join(workDir, 'journal.json');
  let registry: CleanupRegistry;
  const log = (line: string) => io.output.line(`[${stamp()}] ${line}`);
  try {
    // The actions need the journal's meta, so the registry is loaded twice: once to read it.
    const peek = CleanupRegistry.load(journalPath, { actions: {} });
    const meta = peek.meta as unknown as SmokeMeta;
    const source = sideClients({ profile: meta.sourceProfile, region: meta.sourceRegion });
    const vault = sideClients({ profile: meta.vaultProfile, region: meta.vaultRegion });
    registry = CleanupRegistry.load(journalPath, { actions: cleanupActions({ meta, source, vault, io }), log });
  } catch (error) {
    io.output.line(`Cannot read the cleanup journal ${journalPath}: ${(error as Error).message}`);
    return 2;
  }
  const run = await runWithCleanup(registry, async () => undefined, {
    log: (line) => io.output.line(line),
    abandon: (signal) => {
      io.output.line(`\n${signal} again: abandoning; run npm run smoke:aws -- --cleanup ${workDir} to go on`);
      stopRunningChildren();
      process.exit(SIGNAL_EXIT_CODES[signal] ?? 1);
    },
  });
  const verdict = finalReport({ checks: [], cleanup: run.cleanup, interrupted: run.interrupted, interruptedExitCode: run.interrupted ? SIGNAL_EXIT_CODES[run.interrupted] : undefined, workDir, cleanupOnly: true });
  for (const line of verdict.lines) io.output.line(line);
  finishWorkDir(workDir, registry);
  return verdict.exitCode;
}

/** A readline prompt on the terminal. */
export async function askOnTerminal(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}
