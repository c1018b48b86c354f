import { randomBytes } from 'node:crypto';
import type { KMS } from '@aws-sdk/client-kms';
import type { RDSClient } from '@aws-sdk/client-rds';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { newBackupId } from '../backup/manifest.ts';
import type { ConnectionConfig } from '../config/schema.ts';
import { DatabaseConnectionError, DrillProvisioningError, InstanceNotReadyError, ManifestMismatchError, RestoreTimeoutError, TeardownIncompleteError } from '../errors.ts';
import { connect, isTlsTrustFailure, resolveConnection, type ResolvedConnection } from '../pg/connection.ts';
import { quoteIdent } from '../pg/inventory.ts';
import type { SecretRegistry } from '../redact.ts';
import { readManifest } from '../restore/fetch.ts';
import { restoreBackup, verifyRestoredDatabase } from '../restore/restore.ts';
import { deleteDrillSecret, drillSecretName, generateDrillPassword, storeDrillSecret } from './credentials.ts';
import { METRIC_NAMES } from '../metrics/names.ts';
import { measureDrill, publishMeasurement, recordMetric, type DrillMetrics } from './measure.ts';
import type { DrillTags, Provisioner } from './provisioner.ts';
import { buildDrillReport, drillReportKey, writeDrillReport } from './report.ts';
import { selectBackup, type BackupLocation } from './select.ts';
import type { DrillCheck, DrillState, DrillTeardown, InstanceRef, Measurement, ProviderName, RestoreOutcome, Selection, Verification } from './types.ts';
import { backupAgeCheck, compareWithDumpAtMoment, fromComparison, MANIFEST_CHECKS, notPerformed, restoreChecks, runVerificationSuite, skipped } from './verify.ts';

/** Everything the drill steps need; the handler builds it once per cold start. */
export interface DrillDeps {
  storage: { source: BackupLocation; vault?: BackupLocation };
  /** Aggregated KMS client for decryption (the Encryption SDK keyring's). */
  kms: KMS;
  secrets: SecretsManagerClient;
  provisioners: Partial<Record<ProviderName, Provisioner>>;
  /** Who provides throwaways for dump drills: `rds` in AWS, `local` on a workstation. */
  dumpProvider: ProviderName;
  /** Security groups every throwaway joins (the deployment's drill group, admitting the runners), before the request's own. */
  drillSecurityGroupIds?: readonly string[];
  /**
   * Where throwaways go, from the deployed config (`drills.subnetGroupName` or
   * `subnetIds`, and `securityGroupIds`): a request that names anything else
   * was not built from the deployed config and is refused.
   * @default - the request's own (local runs, which have no deployed config)
   */
  drillNetwork?: DrillNetwork;
  /**
   * Where PITR drills from the copy region place their throwaway (drills.copyRegionNetwork,
   * deploy time): a subnet group and security groups there. The source region's
   * drill security groups do not exist in the copy region.
   * @default - RDS's defaults in the copy region (local runs)
   */
  drillCopyNetwork?: { readonly subnetGroupName: string; readonly securityGroupIds: readonly string[] };
  /** RDS clients for snapshot and point-in-time selection (the copy region's for PITR drills from replicated automated backups). */
  rds?: { source: RDSClient; vault?: RDSClient; copy?: RDSClient };
  metrics?: DrillMetrics;
  now?: () => Date;
  random?: () => number;
  generatePassword?: () => string;
  pgRestorePath?: string;
  workDir?: string;
}

export const DRILL_ACTIONS = ['select', 'provision', 'poll', 'credentials', 'restore', 'verify', 'measure', 'teardown', 'report'] as const;
export type DrillAction = (typeof DRILL_ACTIONS)[number];

const nowOf = (deps: DrillDeps) => deps.now?.() ?? new Date();

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`drill state has no ${what}: the state machine ran a step out of order`);
  return value;
}

function provisionerFor(deps: DrillDeps, provider: ProviderName): Provisioner {
  const p = deps.provisioners[provider];
  if (!p) throw new DrillProvisioningError(`No ${provider} provisioner is configured for drills.`, { nextStep: 'set DRILL_DUMP_PROVISIONER or pass the provisioner in.' });
  return p;
}

/** The provisioner a drill uses: RDS for snapshots, the configured one for dumps. */
function provisionerOf(state: DrillState, deps: DrillDeps): Provisioner {
  return provisionerFor(deps, state.instance?.provider ?? (state.request.backupKind === 'dump' ? deps.dumpProvider : 'rds'));
}

function tagsOf(state: DrillState): DrillTags {
  const selection = need(state.selection, 'selection');
  return { drillId: selection.drillId, databaseId: state.request.databaseId, executionId: state.executionId ?? 'local', expiresAt: selection.expiresAt };
}

function reportLocation(state: DrillState, deps: DrillDeps, drillId: string): string {
  return `s3://${deps.storage.source.bucket}/${drillReportKey(deps.storage.source.prefix, state.request.databaseId, drillId)}`;
}

async function select(state: DrillState, deps: DrillDeps): Promise<Selection> {
  const now = nowOf(deps);
  const chosen = await selectBackup(state.request, { storage: deps.storage, rds: deps.rds, now, random: deps.random ?? Math.random });
  return {
    drillId: newBackupId(now, randomBytes(3).toString('hex')),
    startedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + state.request.expiresAfterMinutes * 60_000).toISOString(),
    ...chosen,
  };
}

/** Where a deployment places its throwaways (drills config, deploy time). */
export interface DrillNetwork {
  readonly subnetGroupName?: string;
  readonly subnetIds?: readonly string[];
  readonly securityGroupIds: readonly string[];
}

async function provision(state: DrillState, deps: DrillDeps): Promise<InstanceRef> {
  const selection = need(state.selection, 'selection');
  const { instance } = state.request;
  if (deps.drillNetwork) {
    const deployed = deps.drillNetwork;
    const show = (n: { subnetGroupName?: string; subnetIds?: readonly string[]; securityGroupIds: readonly string[] }) =>
      JSON.stringify({ subnetGroupName: n.subnetGroupName ?? null, subnetIds: [...(n.subnetIds ?? [])].sort(), securityGroupIds: [...n.securityGroupIds].sort() });
    if (show(instance) !== show(deployed)) {
      throw new DrillProvisioningError(
        `The drill request of database "${state.request.databaseId}" places its throwaway at ${show(instance)}, but this deployment places throwaways at ${show(deployed)} (drills config, deploy time): refusing, the request was not built from the deployed config.`,
        { nextStep: 'start drills through the drill state machine (lifeboat run drill), never by invoking the drill function with a hand-made request; find out who did.' },
      );
    }
  }
  if (selection.backup.kind === 'pitr' && selection.backup.from === 'copy-region') {
    const copy = deps.drillCopyNetwork;
    const placed = { instanceClass: instance.instanceClass, ...(copy ? { subnetGroupName: copy.subnetGroupName } : {}), securityGroupIds: [...(copy?.securityGroupIds ?? [])] };
    return provisionerOf(state, deps).provision({ tags: tagsOf(state), backup: selection.backup, instance: placed });
  }
  const securityGroupIds = [...new Set([...(deps.drillSecurityGroupIds ?? []), ...instance.securityGroupIds])];
  return provisionerOf(state, deps).provision({ tags: tagsOf(state), backup: selection.backup, instance: { ...instance, securityGroupIds } });
}

async function poll(state: DrillState, deps: DrillDeps): Promise<{ ready: boolean; status: string }> {
  const ref = need(state.instance, 'instance');
  const status = await provisionerOf(state, deps).status(ref);
  const what = `throwaway ${ref.identifier} for the drill of database "${state.request.databaseId}"`;
  if (status.state === 'failed') {
    throw new DrillProvisioningError(`The ${what} is in state "${status.detail}".`, { nextStep: 'read the RDS events of the instance; the janitor removes it once its expiry passes.' });
  }
  if (status.state === 'available') return { ready: true, status: status.detail };
  const waited = (nowOf(deps).getTime() - Date.parse(ref.createdAt)) / 1000;
  if (waited > state.request.restoreTimeoutSeconds) {
    throw new RestoreTimeoutError(`The ${what} did not become available within ${state.request.restoreTimeoutSeconds}s (still "${status.detail}" after ${Math.round(waited)}s).`, {
      nextStep: 'check the RDS events of the instance (KMS grants, subnet group, quota); for large snapshots raise drills.restoreTimeoutMinutes.',
    });
  }
  return { ready: false, status: status.detail };
}

/** A fresh password, stored in a new secret first, then applied: the payload carries only the ARN. */
async function credentials(state: DrillState, deps: DrillDeps, registry: SecretRegistry): Promise<{ secretArn: string; setAt: string }> {
  const ref = need(state.instance, 'instance');
  const provisioner = provisionerOf(state, deps);
  const status = await provisioner.status(ref);
  if (status.state !== 'available' || !status.endpoint) {
    throw new InstanceNotReadyError(`Throwaway ${ref.identifier} is "${status.detail}", not available for new credentials yet.`);
  }
  const password = (deps.generatePassword ?? generateDrillPassword)();
  registry.add(password);
  const secretArn = await storeDrillSecret(deps.secrets, tagsOf(state), {
    engine: 'postgres',
    username: status.masterUsername ?? 'postgres',
    password,
    host: status.endpoint.host,
    port: status.endpoint.port,
  });
  await provisioner.applyPassword(ref, password);
  return { secretArn, setAt: nowOf(deps).toISOString() };
}

async function throwaway(state: DrillState, deps: DrillDeps, registry: SecretRegistry, database: string): Promise<ResolvedConnection> {
  const creds = need(state.credentials, 'credentials');
  const connection = { secretArn: creds.secretArn, database, sslMode: provisionerOf(state, deps).sslMode, connectTimeoutSeconds: 10 } satisfies Partial<ConnectionConfig>;
  return resolveConnection(state.request.databaseId, connection as ConnectionConfig, { secrets: deps.secrets, registry });
}

/**
 * A throwaway that refuses connections right after "available" is not ready yet: Step Functions retries.
 * A certificate the runner does not trust is no such wait: it fails the drill at once, with its own next step.
 */
async function whenReachable<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof DatabaseConnectionError && !isTlsTrustFailure(error)) throw new InstanceNotReadyError(`${what}: ${error.message}`, { cause: error });
    throw error;
  }
}

async function restore(state: DrillState, deps: DrillDeps, registry: SecretRegistry): Promise<RestoreOutcome> {
  const backup = need(state.selection, 'selection').backup;
  // Snapshots and point-in-time restores bring their data with them: verify reads it.
  if (backup.kind !== 'dump') return { kind: backup.kind, database: state.request.databaseName ?? 'postgres', checks: [] };
  // An emulated instance (moto) holds no data and accepts no connections: verify reports the checks as not performed.
  if (need(state.instance, 'instance').emulated) return { kind: 'dump', database: backup.databaseName, checks: [] };
  const location = need(deps.storage[backup.from], `${backup.from} storage`);
  const manifest = await readManifest(location.s3, backup.bucket, backup.manifestKey);
  const name = manifest.database.name;
  const admin = await throwaway(state, deps, registry, 'postgres');
  await whenReachable(`The drill's throwaway does not accept connections yet`, async () => {
    if (name === 'postgres') return;
    const client = await connect(state.request.databaseId, admin, 'lifeboat-drill');
    try {
      await client.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0 ENCODING 'UTF8'`);
    } finally {
      await client.end();
    }
  });
  const target = { ...admin, database: name };
  const started = Date.now();
  try {
    const result = await restoreBackup(manifest, target, { s3: location.s3, kms: deps.kms, secretRegistry: registry, pgRestorePath: deps.pgRestorePath, workDir: deps.workDir }, { bucket: backup.bucket, onMismatch: 'keep', noTablespaces: true });
    const t = result.timings;
    const client = {
      pgRestore: { version: result.client.version, major: result.client.major },
      pgDump: result.client.pgDump,
      targetServerVersion: result.client.targetServerVersion ?? 'unknown',
    };
    return {
      kind: 'dump',
      database: name,
      client,
      checks: [...restoreChecks(result.fetch, client), ...result.checks.map(fromComparison)],
      // restoreBackup compares with the manifest right after pg_restore: that is the first verification query.
      firstVerificationQueryAt: new Date(started + t.downloadMs + t.restoreMs).toISOString(),
      timings: { downloadMs: t.downloadMs, restoreMs: t.restoreMs, verifyMs: t.verifyMs },
    };
  } catch (error) {
    if (!(error instanceof ManifestMismatchError)) throw error;
    // Restored, but not what the manifest says: read each check on its own for the report.
    const verifyStarted = new Date();
    const checks = await verifyRestoredDatabase(manifest, target);
    return { kind: 'dump', database: name, checks: [...restoreChecks({ sha256: manifest.object.sha256 }), ...checks.map(fromComparison)], firstVerificationQueryAt: verifyStarted.toISOString() };
  }
}

async function verify(state: DrillState, deps: DrillDeps, registry: SecretRegistry): Promise<Verification> {
  const ref = need(state.instance, 'instance');
  const selection = need(state.selection, 'selection');
  const outcome = need(state.restore, 'restore outcome');
  const { request } = state;
  const rpoSeconds = request.targets.rpoMinutes * 60;
  const age = backupAgeCheck(selection.newestConsistentAt, selection.startedAt, rpoSeconds, selection.backup.kind === 'pitr');
  if (ref.emulated) {
    const why = 'emulated: the RDS API is served by an emulator (moto) whose instances hold no data, so no query ran';
    const names = [
      ...(outcome.kind === 'dump' ? ['sha256', 'decryption', 'pg_restore', ...MANIFEST_CHECKS] : ['restored data readable']),
      ...(selection.backup.kind === 'pitr' && selection.backup.dump ? MANIFEST_CHECKS : []),
      ...request.assertions.map((a) => `assertion: ${a.name}`),
      ...(request.freshness ? ['freshness: newest row'] : []),
      'amcheck',
    ];
    return { emulated: true, checks: [...names.map((n) => notPerformed(n, why)), age] };
  }
  const target = await throwaway(state, deps, registry, outcome.database);
  const manifestChecks = await manifestChecksOf(state, deps, target);
  const suite = await whenReachable(`The drill's throwaway does not accept connections`, () =>
    runVerificationSuite(target, {
      databaseId: request.databaseId,
      amcheck: request.amcheck,
      assertions: request.assertions,
      freshness: request.freshness,
      consistentAt: selection.backup.consistentAt,
      rpoSeconds,
      registry,
    }),
  );
  return {
    emulated: false,
    checks: [...manifestChecks, ...suite.checks, age],
    firstVerificationQueryAt: outcome.firstVerificationQueryAt ?? suite.firstVerificationQueryAt,
    ...(suite.newestRowAt ? { newestRowAt: suite.newestRowAt } : {}),
  };
}

/**
 * The comparison with a manifest: a dump drill's restore ran it; a point-in-time
 * restore to a dump's consistent point is compared with that dump's manifest
 * here (exact and in-flight checks told apart); a snapshot or another moment has
 * no manifest to compare with.
 */
async function manifestChecksOf(state: DrillState, deps: DrillDeps, target: ResolvedConnection): Promise<DrillCheck[]> {
  const outcome = need(state.restore, 'restore outcome');
  const backup = need(state.selection, 'selection').backup;
  if (outcome.kind === 'dump') return outcome.checks;
  if (backup.kind !== 'pitr') return MANIFEST_CHECKS.map((n) => skipped(n, 'a snapshot carries no manifest inventory; dump drills compare it'));
  if (!backup.dump) {
    return MANIFEST_CHECKS.map((n) => skipped(n, `the moment ${backup.consistentAt}${backup.moment === 'latest' ? ' (the newest restorable one)' : ''} is no dump's consistent point, so there is no manifest to compare with; pitr.drill.moment "dump" compares`));
  }
  const location = need(deps.storage[backup.dump.from], `${backup.dump.from} storage`);
  const manifest = await readManifest(location.s3, backup.dump.bucket, backup.dump.manifestKey);
  const pitr = state.request.pitr;
  return whenReachable(`The drill's throwaway does not accept connections`, () =>
    compareWithDumpAtMoment(manifest, target, { inFlightRows: pitr?.inFlightRows, excludeSchemas: pitr?.excludeSchemas }),
  );
}

async function measure(state: DrillState, deps: DrillDeps): Promise<Measurement> {
  const selection = need(state.selection, 'selection');
  const m = measureDrill(state, reportLocation(state, deps, selection.drillId));
  publishMeasurement(deps.metrics, state.request.databaseId, m);
  return m;
}

async function teardown(state: DrillState, deps: DrillDeps): Promise<DrillTeardown> {
  if (!state.selection) return { completedAt: nowOf(deps).toISOString(), items: [] };
  const { drillId } = state.selection;
  const items = [await deleteDrillSecret(deps.secrets, drillSecretName(drillId))];
  // Without an instance ref (provisioning failed midway), look where the drill would have created it.
  const from = state.request.backupKind === 'pitr' && state.request.pitr?.from === 'copy-region' ? 'copy-region' : state.request.from;
  items.push(...(await provisionerOf(state, deps).teardown(drillId, from, state.instance)));
  const pending = items.filter((i) => i.outcome === 'pending' || i.outcome === 'failed');
  if (pending.length > 0) {
    throw new TeardownIncompleteError(`Teardown of drill ${drillId} (database "${state.request.databaseId}") is still waiting for ${pending.map((i) => `${i.type} ${i.id} (${i.detail ?? i.outcome})`).join(', ')}.`, {
      nextStep: 'the state machine retries; anything left is deleted by the janitor once its lifeboat:expires-at tag passes.',
    });
  }
  return { completedAt: nowOf(deps).toISOString(), items };
}

export interface ReportResult {
  written: boolean;
  locations: string[];
  verdict: string;
  alertDetails: Record<string, unknown>;
  writeError?: string;
}

async function report(state: DrillState, deps: DrillDeps): Promise<ReportResult> {
  const now = nowOf(deps);
  const drillId = state.selection?.drillId ?? newBackupId(now, randomBytes(3).toString('hex'));
  const built = buildDrillReport(state, drillId, now);
  const targets = [deps.storage.source, deps.storage.vault].filter((t): t is BackupLocation => t !== undefined);
  let locations: string[] = [];
  let writeError: string | undefined;
  try {
    locations = await writeDrillReport(built, targets);
  } catch (error) {
    // On the failure path the alert matters more than the report: say so and go on.
    if (!state.error) throw error;
    writeError = `${(error as Error).name}: ${(error as Error).message}`;
  }
  recordMetric(deps.metrics, state.request.databaseId, built.verdict === 'passed' ? 'DrillSucceeded' : built.verdict === 'failed' ? 'DrillFailed' : 'DrillEmulated', MetricUnit.Count, 1);
  // Whatever the verdict: the drill staleness alarm (a stopped drill schedule) watches this.
  recordMetric(deps.metrics, state.request.databaseId, METRIC_NAMES.drillCompleted, MetricUnit.Count, 1);
  return {
    written: writeError === undefined,
    locations,
    verdict: built.verdict,
    writeError,
    alertDetails: {
      drillId,
      backupId: built.backup?.id,
      report: locations[0] ?? reportLocation(state, deps, drillId),
      failedChecks: built.checks.filter((c) => c.status === 'failed').map((c) => c.name),
      rtoSeconds: built.rto?.seconds ?? null,
      rpoSeconds: built.rpo?.seconds ?? null,
      teardown: built.teardown.status,
    },
  };
}

/** Runs one step of a drill. The handler parses the state; this knows nothing of Lambda. */
export async function runDrillAction(action: DrillAction, state: DrillState, deps: DrillDeps, registry: SecretRegistry): Promise<unknown> {
  switch (action) {
    case 'select':
      return select(state, deps);
    case 'provision':
      return provision(state, deps);
    case 'poll':
      return poll(state, deps);
    case 'credentials':
      return credentials(state, deps, registry);
    case 'restore':
      return restore(state, deps, registry);
    case 'verify':
      return verify(state, deps, registry);
    case 'measure':
      return measure(state, deps);
    case 'teardown':
      return teardown(state, deps);
    case 'report':
      return report(state, deps);
  }
}
