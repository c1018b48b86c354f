import { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { createDumpHandler } from '../../functions/dump/handler.ts';
import { createSnapshotHandler, type SnapshotHandlerDeps } from '../../functions/snapshot/handler.ts';
import { createVaultCopyHandler } from '../../functions/vault-copy/handler.ts';
import { runDumpBackup } from '../../functions/lib/backup/dump-pipeline.ts';
import { DeploymentConfig } from '../../functions/lib/config/deployment.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { runDrillAction, type DrillDeps } from '../../functions/lib/drill/steps.ts';
import { drillStateSchema } from '../../functions/lib/drill/types.ts';
import { METRIC_NAMES } from '../../functions/lib/metrics/names.ts';
import { SecretRegistry } from '../../functions/lib/redact.ts';
import { checkSnapshot } from '../../functions/lib/snapshots/workflow.ts';
import { renewingVaultCredentials } from '../../functions/lib/vault/credentials.ts';
import { copyDumpToVault } from '../../functions/lib/vault/dump-copy.ts';
import { localLambdaContext } from '../../functions/shared/lambda-context.ts';
import { exampleConfigJson } from '../infra/helpers/app.ts';

// The staleness alarms (infra/constructs/database-alarms.ts) watch the metric
// each step emits when it succeeds: no data point for a window means no
// success. So each success must emit it, and no failure may.

vi.mock('../../functions/lib/backup/dump-pipeline.ts', async (original) => ({ ...(await original<object>()), runDumpBackup: vi.fn() }));
vi.mock('../../functions/lib/snapshots/workflow.ts', async (original) => ({ ...(await original<object>()), checkSnapshot: vi.fn() }));
vi.mock('../../functions/lib/vault/credentials.ts', async (original) => ({ ...(await original<object>()), renewingVaultCredentials: vi.fn() }));
vi.mock('../../functions/lib/vault/dump-copy.ts', async (original) => ({ ...(await original<object>()), copyDumpToVault: vi.fn() }));

interface Emitted {
  name: string;
  dimensions: Record<string, string>;
  value: number;
}

/** What the handler's singleMetric() calls publish (the EMF lines' content). */
function recordingMetrics(): { metrics: Metrics; emitted: Emitted[]; names: () => string[] } {
  const emitted: Emitted[] = [];
  const metrics = {
    singleMetric() {
      const dimensions: Record<string, string> = {};
      return {
        addDimension: (name: string, value: string) => void (dimensions[name] = value),
        addMetric: (name: string, _unit: string, value: number) => void emitted.push({ name, dimensions: { ...dimensions }, value }),
      };
    },
  } as unknown as Metrics;
  return { metrics, emitted, names: () => emitted.map((e) => e.name) };
}

const logger = new Logger({ serviceName: 'lifeboat-test', logLevel: 'CRITICAL' });
const deployed = async () => new DeploymentConfig(parseConfig(exampleConfigJson()));
const failure = Object.assign(new Error('RDS said no'), { name: 'SnapshotFailedError' });

beforeEach(() => {
  vi.mocked(runDumpBackup).mockReset();
  vi.mocked(checkSnapshot).mockReset();
  vi.mocked(renewingVaultCredentials).mockReset();
  vi.mocked(copyDumpToVault).mockReset();
});

describe('the snapshot handler', () => {
  const ref = (location: 'source' | 'copy' | 'vault', status: string) => ({
    location,
    kind: 'instance' as const,
    region: 'eu-west-1',
    id: 'lifeboat-orders-20260301t030000z',
    arn: 'arn:aws:rds:eu-west-1:111111111111:snapshot:lifeboat-orders-20260301t030000z',
    status,
    encrypted: true,
    startedAt: '2026-03-01T03:00:00.000Z',
    deadline: '2026-03-01T07:00:00.000Z',
  });
  const status = (location: 'source' | 'copy' | 'vault') => ({ action: 'status', planId: 'nightly', databaseId: 'orders', backupId: '20260301T030000Z-abcdef', ref: ref(location, 'creating') });
  const handlerWith = (metrics: Metrics) => createSnapshotHandler({ context: {} as SnapshotHandlerDeps['context'], config: deployed, logger, metrics });

  it('emits SnapshotSucceeded for the database once its source snapshot is available', async () => {
    // Prepare
    const { metrics, emitted } = recordingMetrics();
    vi.mocked(checkSnapshot).mockResolvedValue({ ready: true, ref: ref('source', 'available'), waitSeconds: 0 } as never);

    // Act
    await handlerWith(metrics)(status('source') as never, localLambdaContext('snapshot'));

    // Assess
    expect(emitted).toEqual([{ name: METRIC_NAMES.snapshotSucceeded, dimensions: { database: 'orders' }, value: 1 }]);
  });

  it('emits VaultSnapshotCopied (and no SnapshotSucceeded) once the vault copy is available', async () => {
    // Prepare
    const { metrics, names } = recordingMetrics();
    vi.mocked(checkSnapshot).mockResolvedValue({ ready: true, ref: ref('vault', 'available'), waitSeconds: 0 } as never);

    // Act
    await handlerWith(metrics)(status('vault') as never, localLambdaContext('snapshot'));

    // Assess
    expect(names()).toEqual([METRIC_NAMES.vaultSnapshotCopied]);
  });

  it('emits no success while a snapshot or a copy is still being made', async () => {
    // Prepare
    const { metrics, names } = recordingMetrics();
    for (const location of ['source', 'copy', 'vault'] as const) vi.mocked(checkSnapshot).mockResolvedValueOnce({ ready: false, ref: ref(location, 'creating'), waitSeconds: 30 } as never);

    // Act
    for (const location of ['source', 'copy', 'vault'] as const) await handlerWith(metrics)(status(location) as never, localLambdaContext('snapshot'));

    // Assess
    expect(names()).toEqual([]);
  });

  it('emits no success when the check fails, only SnapshotStepFailed', async () => {
    // Prepare
    const { metrics, names } = recordingMetrics();
    vi.mocked(checkSnapshot).mockRejectedValue(failure);

    // Act
    const errors = [];
    for (const location of ['source', 'vault'] as const) errors.push(await handlerWith(metrics)(status(location) as never, localLambdaContext('snapshot')).catch((e: unknown) => e));

    // Assess
    expect(errors).toEqual([failure, failure]);
    expect(names()).toEqual(['SnapshotStepFailed', 'SnapshotStepFailed']);
  });
});

describe('the vault-copy handler', () => {
  const input = { planId: 'nightly', databaseId: 'orders', bucket: 'acme-backups', manifestKey: 'backups/orders/b1/manifest.json' };
  const handlerWith = (metrics: Metrics) =>
    createVaultCopyHandler({
      sourceS3: {} as never,
      sts: {} as never,
      vaultS3: () => ({}) as never,
      vault: { account: '222222222222', region: 'eu-central-1', bucket: 'acme-lifeboat-vault', copierRoleArn: 'arn:aws:iam::222222222222:role/acme-lifeboat-vault-copier' } as never,
      logger,
      metrics,
    });

  it('emits VaultCopySucceeded for the database when the dump is copied and verified', async () => {
    // Prepare
    const { metrics, emitted } = recordingMetrics();
    vi.mocked(renewingVaultCredentials).mockResolvedValue(async () => ({ accessKeyId: 'a', secretAccessKey: 's', sessionToken: 't' }));
    vi.mocked(copyDumpToVault).mockResolvedValue({ status: 'copied', vaultBucket: 'acme-lifeboat-vault', manifestKey: input.manifestKey, sha256: 'x', storedBytes: 1 } as never);

    // Act
    await handlerWith(metrics)(input as never, localLambdaContext('vault-copy'));

    // Assess
    expect(emitted.filter((e) => e.name === METRIC_NAMES.vaultCopySucceeded)).toEqual([{ name: METRIC_NAMES.vaultCopySucceeded, dimensions: { database: 'orders' }, value: 1 }]);
  });

  it('emits no VaultCopySucceeded when the copy fails, only VaultCopyFailed', async () => {
    // Prepare
    const { metrics, names } = recordingMetrics();
    vi.mocked(renewingVaultCredentials).mockResolvedValue(async () => ({ accessKeyId: 'a', secretAccessKey: 's', sessionToken: 't' }));
    vi.mocked(copyDumpToVault).mockRejectedValue(Object.assign(new Error('checksum differs'), { name: 'VaultCopyVerificationError' }));

    // Act
    const error = await handlerWith(metrics)(input as never, localLambdaContext('vault-copy')).catch((e: unknown) => e);

    // Assess
    expect((error as Error).name).toBe('VaultCopyVerificationError');
    expect(names()).toEqual(['VaultCopyFailed']);
  });
});

describe('the dump handler', () => {
  const handlerWith = (metrics: Metrics) =>
    createDumpHandler({
      clients: { s3: {} as never, secrets: {} as never, keyringKms: {} as never },
      target: { bucket: 'acme-backups', prefix: 'backups/', kmsKeyArn: 'arn:aws:kms:eu-west-1:111111111111:key/x' },
      config: deployed,
      logger,
      metrics,
    });

  it('emits BackupSucceeded for the database when the dump is committed', async () => {
    // Prepare
    const { metrics, emitted } = recordingMetrics();
    vi.mocked(runDumpBackup).mockResolvedValue({ manifest: { consistentAt: '2026-03-01T03:00:00.000Z' }, manifestKey: 'k', storedBytes: 10, rawBytes: 20, sha256: 'x' } as never);

    // Act
    await handlerWith(metrics)({ planId: 'nightly', databaseId: 'orders' } as never, localLambdaContext('dump'));

    // Assess
    expect(emitted.filter((e) => e.name === METRIC_NAMES.backupSucceeded)).toEqual([{ name: METRIC_NAMES.backupSucceeded, dimensions: { database: 'orders' }, value: 1 }]);
  });

  it('emits no BackupSucceeded when the dump fails, only BackupFailed', async () => {
    // Prepare
    const { metrics, names } = recordingMetrics();
    vi.mocked(runDumpBackup).mockRejectedValue(Object.assign(new Error('pg_dump exited 1'), { name: 'DumpFailedError' }));

    // Act
    const error = await handlerWith(metrics)({ planId: 'nightly', databaseId: 'orders' } as never, localLambdaContext('dump')).catch((e: unknown) => e);

    // Assess
    expect((error as Error).name).toBe('DumpFailedError');
    expect(names()).toEqual([METRIC_NAMES.backupFailed]);
  });
});

describe('the drill report step', () => {
  const state = (extra: Record<string, unknown> = {}) =>
    drillStateSchema.parse({
      request: { databaseId: 'orders', planId: 'nightly', targets: { rpoMinutes: 60, rtoMinutes: 60 } },
      selection: {
        drillId: '20260301T040000Z-abcdef',
        startedAt: '2026-03-01T04:00:00.000Z',
        expiresAt: '2026-03-01T10:00:00.000Z',
        choice: 'latest',
        candidates: 1,
        newestConsistentAt: '2026-03-01T03:00:00.000Z',
        backup: {
          kind: 'dump', backupId: 'b1', from: 'source', bucket: 'acme-backups', prefix: 'backups/', manifestKey: 'backups/orders/b1/manifest.json',
          consistentAt: '2026-03-01T03:00:00.000Z', databaseName: 'orders', serverMajor: 16, sizeBytes: 1024,
        },
      },
      ...extra,
    });
  const depsWith = (metrics: Metrics, put: () => Promise<unknown>): DrillDeps =>
    ({ storage: { source: { s3: { send: put }, bucket: 'acme-backups', prefix: 'backups/' } }, provisioners: {}, dumpProvider: 'rds', metrics, now: () => new Date('2026-03-01T05:00:00.000Z') }) as unknown as DrillDeps;

  it('emits DrillCompleted for every drill that reports a result, passed or failed', async () => {
    // Prepare
    const { metrics, emitted } = recordingMetrics();
    const failed = state({ error: { Error: 'RestoreTimeoutError', Cause: 'the throwaway never came up' } });

    // Act
    await runDrillAction('report', state(), depsWith(metrics, async () => ({})), new SecretRegistry());
    await runDrillAction('report', failed, depsWith(metrics, async () => ({})), new SecretRegistry());

    // Assess
    expect(emitted.filter((e) => e.name === METRIC_NAMES.drillCompleted)).toEqual([
      { name: METRIC_NAMES.drillCompleted, dimensions: { database: 'orders' }, value: 1 },
      { name: METRIC_NAMES.drillCompleted, dimensions: { database: 'orders' }, value: 1 },
    ]);
  });

  it('emits no DrillCompleted when the report of a drill cannot be written (the state machine then reports the failure)', async () => {
    // Prepare
    const { metrics, names } = recordingMetrics();
    const denied = Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });

    // Act
    const error = await runDrillAction('report', state(), depsWith(metrics, async () => Promise.reject(denied)), new SecretRegistry()).catch((e: unknown) => e);

    // Assess
    expect(error).toBe(denied);
    expect(names()).toEqual([]);
  });
});
