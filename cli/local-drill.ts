import type { Logger } from '@aws-lambda-powertools/logger';
import type { KMS } from '@aws-sdk/client-kms';
import type { RDSClient } from '@aws-sdk/client-rds';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import { createAlertHandler, type AlertTaskInput } from '../functions/alert/handler.ts';
import { createDrillHandler } from '../functions/drill/handler.ts';
import { createJanitorHandler } from '../functions/janitor/handler.ts';
import { loadDefinition } from '../state-machines/definitions.ts';
import { logger as sharedLogger } from '../functions/shared/powertools.ts';
import { asLocalTask } from '../local/lambda-task.ts';
import { LOCAL_TIME_SCALE, localFunctionArn, localStateMachineArn, runLocalStateMachine, type EventLog, type LocalRunResult, type TaskHandler } from '../local/state-machine-runner.ts';
import { LocalPostgresProvisioner } from '../functions/lib/drill/local-provisioner.ts';
import type { DrillMetrics } from '../functions/lib/drill/measure.ts';
import { RdsProvisioner } from '../functions/lib/drill/rds-provisioner.ts';
import { readDrillReport, type DrillReport } from '../functions/lib/drill/report.ts';
import type { JanitorDeps, SweepResult } from '../functions/lib/drill/janitor.ts';
import type { DrillDeps } from '../functions/lib/drill/steps.ts';
import { drillRequestSchema, type DrillRequest, type DrillRequestInput } from '../functions/lib/drill/types.ts';

/**
 * Runs the drill (the run and its per-database children) and janitor state machines locally on aws-local-stepfunctions
 * with the real handlers: the same definitions CDK deploys. Used by the tests,
 * `lifeboat drill` and the demo.
 */

export interface LocalDrillDepsOptions {
  clients: { s3: S3Client; secrets: SecretsManagerClient; keyringKms: KMS; rds?: RDSClient };
  storage: { bucket: string; prefix: string };
  vault?: { s3?: S3Client; bucket: string; prefix: string };
  /** Marker directory of the local clusters (the janitor's view). */
  registryDir?: string;
  /** The local clusters' provisioner, when the caller must reach it (to release clusters on Ctrl-C). @default a new one on registryDir */
  localProvisioner?: LocalPostgresProvisioner;
  /** Snapshot drills against moto: report data checks as not performed. @default true when AWS_ENDPOINT_URL is set */
  rdsEmulated?: boolean;
  metrics?: DrillMetrics;
  /** RDS in the copy region (snapshots.copy.region): PITR drills from the automated backups replicated there. */
  copyRds?: RDSClient;
}

/** Drill deps for a workstation: local clusters for dump drills, RDS (or moto) for snapshot drills. */
export function localDrillDeps(options: LocalDrillDepsOptions): DrillDeps {
  const { clients } = options;
  return {
    storage: {
      source: { s3: clients.s3, ...options.storage },
      vault: options.vault && { s3: options.vault.s3 ?? clients.s3, bucket: options.vault.bucket, prefix: options.vault.prefix },
    },
    kms: clients.keyringKms,
    secrets: clients.secrets,
    provisioners: {
      local: options.localProvisioner ?? new LocalPostgresProvisioner({ registryDir: options.registryDir }),
      rds: clients.rds && new RdsProvisioner({ clients: { source: clients.rds, ...(options.copyRds ? { copy: options.copyRds } : {}) }, emulated: options.rdsEmulated ?? Boolean(process.env.AWS_ENDPOINT_URL) }),
    },
    dumpProvider: 'local',
    rds: clients.rds && { source: clients.rds, ...(options.copyRds ? { copy: options.copyRds } : {}) },
    metrics: options.metrics,
  };
}

export interface LocalDrillOptions {
  requests: DrillRequestInput[];
  deps: DrillDeps;
  /** Publish alerts to this topic; without it they are only recorded in the result. */
  alert?: { sns: SNSClient; topicArn: string };
  logger?: Logger;
  /** @default 2 */
  maxConcurrency?: number;
  /** Scale of every Wait and Retry interval (see runLocalStateMachine). @default LOCAL_TIME_SCALE */
  timeScale?: number;
  /** Keep the definition's own Wait and Retry timings (drills against real RDS): timeScale 1. @default false */
  realTimings?: boolean;
  executionName?: string;
  onEvent?: (event: EventLog) => void;
}

export interface DrillItemResult {
  databaseId: string;
  status: 'passed' | 'failed' | 'emulated';
  objectivesMet?: boolean;
  drillId?: string;
  report: string[];
  rtoSeconds?: number | null;
  rpoSeconds?: number | null;
  error?: string;
}

export interface LocalDrillResult {
  /** The drill run (drill). */
  run: LocalRunResult;
  /** Each database's drill (drill-database child executions), in the order they ended. */
  children: LocalRunResult[];
  /** Every event of the run and of its children. */
  events: EventLog[];
  items: DrillItemResult[];
  /** The reports the drills wrote (read back from the first location of each). */
  reports: DrillReport[];
  /** Every alert the run raised. */
  alerts: AlertTaskInput[];
}

function recordingAlerts(alert: LocalDrillOptions['alert'], logger: Logger | undefined, sink: AlertTaskInput[]): TaskHandler {
  const publish = alert ? asLocalTask('alert', createAlertHandler({ sns: alert.sns, topicArn: alert.topicArn, logger: logger ?? sharedLogger })) : undefined;
  return async (input) => {
    sink.push(input as AlertTaskInput);
    return publish ? publish(input) : { messageId: 'not-published', subject: 'local' };
  };
}

/**
 * What the plan function answers in a local drill run: the requests the caller
 * built from its config (the deployed plan function builds the same from the
 * deployed config object; see functions/lib/config/targets.ts).
 */
export function localDrillPlan(requests: DrillRequest[], maxConcurrency: number): TaskHandler {
  const byId = new Map(requests.map((r) => [r.databaseId, r]));
  return async (task) => {
    const { workflow, input } = task as { workflow: string; input: { id?: string } };
    if (workflow === 'drill') return { maxConcurrency, databases: requests.map((r) => ({ id: r.databaseId, ...(r.backupId ? { backupId: r.backupId } : {}) })) };
    const request = workflow === 'drill-request' && input.id !== undefined ? byId.get(input.id) : undefined;
    if (!request) throw Object.assign(new Error(`No drill request for ${JSON.stringify(task)}`), { name: 'UnknownTargetError' });
    return request;
  };
}

/**
 * The drill definition's Fargate placeholders in local runs: `local-<Name>`, as
 * test/harness/synthesized.ts fills them; local drills never route there.
 */
export const LOCAL_FARGATE_PLACEHOLDERS = {
  DumpClusterArn: 'local-DumpClusterArn',
  DumpSubnetIds: 'local-DumpSubnetIds',
  DumpSecurityGroupIds: 'local-DumpSecurityGroupIds',
  DrillRestoreTaskDefinitionArn: 'local-DrillRestoreTaskDefinitionArn',
} as const;

/** Runs the drill state machines locally (the run and a child execution per database) and returns their results, reports and alerts. */
export async function runLocalDrill(options: LocalDrillOptions): Promise<LocalDrillResult> {
  const planArn = localFunctionArn('plan');
  const drillArn = localFunctionArn('drill');
  const restoreArn = localFunctionArn('drill-restore');
  const alertArn = localFunctionArn('alert');
  const childArn = localStateMachineArn('lifeboat-local-drill-database');
  const definition = loadDefinition('drill', { PlanFunctionArn: planArn, AlertFunctionArn: alertArn, DrillDatabaseStateMachineArn: childArn });
  const child = loadDefinition('drill-database', { PlanFunctionArn: planArn, DrillFunctionArn: drillArn, DrillRestoreFunctionArn: restoreArn, AlertFunctionArn: alertArn, ...LOCAL_FARGATE_PLACEHOLDERS });
  const drill = asLocalTask('drill', createDrillHandler({ ...options.deps, logger: options.logger }));
  const alerts: AlertTaskInput[] = [];
  // Here the restore runs in this process, whatever its size: no Lambda limit to route around.
  const requests = options.requests.map((r) => drillRequestSchema.parse({ ...r, restoreRunner: 'lambda' }));
  const children: LocalRunResult[] = [];
  const run = await runLocalStateMachine(
    definition,
    {},
    {
      resources: {
        [planArn]: localDrillPlan(requests, options.maxConcurrency ?? 2),
        [drillArn]: drill,
        [restoreArn]: drill,
        [alertArn]: recordingAlerts(options.alert, options.logger, alerts),
      },
      stateMachines: { [childArn]: { definition: child } },
      timeScale: options.realTimings ? 1 : (options.timeScale ?? LOCAL_TIME_SCALE),
      executionName: options.executionName,
      onEvent: options.onEvent,
      onChildExecution: (c) => children.push(c),
    },
  );
  const outputs = children.map((c) => c.output as DrillItemResult | undefined).filter((o): o is DrillItemResult => Boolean(o));
  const items = requests.flatMap((r) => outputs.filter((o) => o.databaseId === r.databaseId));
  const reports: DrillReport[] = [];
  const source = options.deps.storage.source;
  for (const item of items) {
    const location = item.report?.[0];
    const m = location && /^s3:\/\/([^/]+)\/(.+)$/.exec(location);
    if (m) reports.push(await readDrillReport(m[1] === source.bucket ? source.s3 : (options.deps.storage.vault?.s3 ?? source.s3), m[1]!, m[2]!));
  }
  return { run, children, events: [...run.events, ...children.flatMap((c) => c.events)], items, reports, alerts };
}

export interface LocalJanitorOptions {
  deps: JanitorDeps;
  alert?: LocalDrillOptions['alert'];
  logger?: Logger;
  metrics?: DrillMetrics;
}

/** Runs the janitor state machine locally. */
export async function runLocalJanitor(options: LocalJanitorOptions): Promise<{ run: LocalRunResult; sweep?: SweepResult; alerts: AlertTaskInput[] }> {
  const janitorArn = localFunctionArn('janitor');
  const alertArn = localFunctionArn('alert');
  const definition = loadDefinition('janitor', { JanitorFunctionArn: janitorArn, AlertFunctionArn: alertArn });
  const alerts: AlertTaskInput[] = [];
  const run = await runLocalStateMachine(definition, {}, {
    resources: {
      [janitorArn]: asLocalTask('janitor', createJanitorHandler({ ...options.deps, logger: options.logger, metrics: options.metrics })),
      [alertArn]: recordingAlerts(options.alert, options.logger, alerts),
    },
    timeScale: LOCAL_TIME_SCALE,
  });
  const exit = run.events.find((e) => e.type === 'StateExited' && e.state?.name === 'SweepExpiredDrillResources');
  return { run, sweep: (exit?.state?.output as { sweep?: SweepResult } | undefined)?.sweep, alerts };
}
