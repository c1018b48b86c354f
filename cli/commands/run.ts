import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  StartExecutionCommand,
  type HistoryEvent,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import { createSfnClient } from '../../functions/lib/aws/clients.ts';
import type { LifeboatConfig } from '../../functions/lib/config/schema.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import { backupRunInput, drillRunInput, retentionRunInput, SOURCE_RETENTION_LOCATIONS } from '../../events/schedules.ts';
import { drillRequestsFromConfig } from '../../functions/lib/drill/plan.ts';
import { loadCliConfig, requireFlag } from '../context.ts';
import { deployedWorkflowNames } from '../../state-machines/definitions.ts';
import type { CommandResult } from '../main.ts';

export const runUsage = `lifeboat run backup|retention|drill [--plan <id>] [--database <id>] [--config <file>] [--state-machine-arn <arn>] [--no-wait] [--json]
  Starts the deployed state machine now and follows it state by state; exits with its verdict.
  --no-wait prints the execution ARN and returns at once.`;

export const WORKFLOWS = ['backup', 'retention', 'drill'] as const;
type Workflow = (typeof WORKFLOWS)[number];

/** The name the source stack gave the workflow's state machine. */
export function stateMachineName(config: LifeboatConfig, workflow: Workflow): string {
  return deployedWorkflowNames(config.name, workflow).stateMachineName;
}

async function findStateMachine(sfn: SFNClient, name: string): Promise<string> {
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new ListStateMachinesCommand({ nextToken }));
    const found = page.stateMachines?.find((m) => m.name === name);
    if (found?.stateMachineArn) return found.stateMachineArn;
    nextToken = page.nextToken;
  } while (nextToken);
  throw new ConfigError('command line', [`no deployed state machine named "${name}" in this account and region: deploy the stack, or pass --state-machine-arn`]);
}

/** The per-database (retention: per target) workflow a run starts as child executions, if the workflow has one. */
const CHILD_WORKFLOWS: Partial<Record<Workflow, string>> = { backup: 'backup-database', drill: 'drill-database', retention: 'retention-target' };

async function findOptionalStateMachine(sfn: SFNClient, name: string): Promise<string | undefined> {
  try {
    return await findStateMachine(sfn, name);
  } catch (error) {
    if (error instanceof ConfigError) return undefined;
    throw error;
  }
}

interface ChildReport {
  databaseId: string;
  status: string;
  lines: string[];
}

/**
 * The per-database child executions this run started, found as the console
 * finds them: executions of the child state machine since the run started whose
 * input names this run (AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID). For each
 * database that failed, the failing states of its own history.
 */
async function childReports(sfn: SFNClient, childArn: string, parentArn: string, since: Date): Promise<ChildReport[]> {
  const reports: ChildReport[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new ListExecutionsCommand({ stateMachineArn: childArn, nextToken, maxResults: 100 }));
    nextToken = page.nextToken;
    const recent = (page.executions ?? []).filter((e) => !e.startDate || new Date(e.startDate).getTime() >= since.getTime() - 1000);
    for (const execution of recent) {
      const described = await sfn.send(new DescribeExecutionCommand({ executionArn: execution.executionArn! }));
      const input = JSON.parse(described.input ?? '{}') as { AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID?: string; databaseId?: string; location?: string };
      if (input.AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID !== parentArn) continue;
      const output = JSON.parse(described.output ?? 'null') as { status?: string } | null;
      const status = described.status === 'SUCCEEDED' ? (output?.status ?? 'succeeded') : `execution ${described.status}`;
      const lines: string[] = [];
      if (status === 'failed' || described.status !== 'SUCCEEDED') {
        let token: string | undefined;
        do {
          const history = await sfn.send(new GetExecutionHistoryCommand({ executionArn: execution.executionArn!, nextToken: token, maxResults: 100 }));
          for (const event of history.events ?? []) {
            const line = describeEvent(event);
            if (line && /FAILED|TIMED OUT|ABORTED/.test(line)) lines.push(line);
          }
          token = history.nextToken;
        } while (token);
      }
      const target = input.databaseId ? `${input.databaseId}${input.location ? ` at ${input.location}` : ''}` : (execution.name ?? '?');
      reports.push({ databaseId: target, status, lines });
    }
    // Listed newest first: once a page is older than the run, the rest are too.
    if (recent.length < (page.executions ?? []).length) break;
  } while (nextToken);
  return reports.sort((a, b) => a.databaseId.localeCompare(b.databaseId));
}

export function runInput(workflow: Workflow, config: LifeboatConfig, flags: Record<string, unknown>): unknown {
  if (workflow === 'drill') {
    // Checked here as the plan function will check it, for a clear error before anything starts.
    const requests = drillRequestsFromConfig(config, { databaseId: flags.database as string | undefined, backupId: flags.backup as string | undefined });
    return drillRunInput({ databaseIds: flags.database ? requests.map((r) => r.databaseId) : undefined, backupId: flags.backup as string | undefined });
  }
  const planId = (flags.plan as string | undefined) ?? (config.plans.length === 1 ? config.plans[0]!.id : undefined);
  const plan = requireFlag(planId, 'plan', `one of ${config.plans.map((p) => p.id).join(', ')}`);
  if (workflow === 'backup') {
    if (!flags.database) return backupRunInput(config, plan);
    const database = String(flags.database);
    if (!config.plans.find((p) => p.id === plan)?.databases.includes(database)) throw new ConfigError('command line', [`--database: "${database}" is not in plan "${plan}"`]);
    return backupRunInput(config, plan, [database]);
  }
  const input = retentionRunInput(config, plan, { locations: SOURCE_RETENTION_LOCATIONS });
  if (!flags.database) return input;
  return { ...input, targets: input.targets.filter((t) => t.databaseId === flags.database) };
}

/** One line per history event worth showing; undefined for the rest. */
export function describeEvent(event: HistoryEvent): string | undefined {
  const time = event.timestamp ? new Date(event.timestamp).toISOString().slice(11, 19) : '        ';
  const entered = event.stateEnteredEventDetails;
  const exited = event.stateExitedEventDetails;
  if (event.type === 'ExecutionStarted') return `${time}  started`;
  if (entered?.name) return `${time}  > ${entered.name}`;
  if (exited?.name) return `${time}  ok ${exited.name}`;
  if (event.type === 'TaskFailed' || event.type === 'LambdaFunctionFailed') {
    const d = event.taskFailedEventDetails ?? event.lambdaFunctionFailedEventDetails;
    let cause = d?.cause ?? '';
    try {
      cause = (JSON.parse(cause) as { errorMessage?: string }).errorMessage ?? cause;
    } catch {
      // plain-text cause
    }
    return `${time}  FAILED ${d?.error ?? ''}: ${cause.split(' Next step:')[0]}`;
  }
  if (event.type === 'MapIterationFailed') return `${time}  FAILED map iteration ${event.mapIterationFailedEventDetails?.index ?? ''}`;
  if (event.type === 'ExecutionSucceeded') return `${time}  execution succeeded`;
  if (event.type === 'ExecutionFailed') return `${time}  execution FAILED: ${event.executionFailedEventDetails?.error ?? ''} ${event.executionFailedEventDetails?.cause ?? ''}`.trimEnd();
  if (event.type === 'ExecutionTimedOut') return `${time}  execution TIMED OUT`;
  if (event.type === 'ExecutionAborted') return `${time}  execution ABORTED`;
  return undefined;
}

export async function runCommand(flags: Record<string, string | boolean | string[] | undefined>, positionals: string[] = []): Promise<CommandResult> {
  const workflow = positionals[0] as Workflow | undefined;
  if (!workflow || !WORKFLOWS.includes(workflow)) throw new ConfigError('command line', [`workflow: one of ${WORKFLOWS.join(', ')}`]);
  const config = loadCliConfig(flags.config as string | undefined);
  if (!config) throw new ConfigError('command line', ['--config: required (or LIFEBOAT_CONFIG, or ./lifeboat.config.json)']);
  const sfn = createSfnClient();
  const stateMachineArn = (flags['state-machine-arn'] as string | undefined) ?? (await findStateMachine(sfn, stateMachineName(config, workflow)));
  const input = runInput(workflow, config, flags);
  const childWorkflow = CHILD_WORKFLOWS[workflow];
  const childName = childWorkflow ? deployedWorkflowNames(config.name, childWorkflow).stateMachineName : undefined;
  const startedAt = new Date();
  const started = await sfn.send(new StartExecutionCommand({ stateMachineArn, input: JSON.stringify(input), name: `cli-${workflow}-${Date.now()}` }));
  const executionArn = started.executionArn!;
  if (flags['no-wait']) return { json: { executionArn }, text: executionArn };

  const pollMs = Number(process.env.LIFEBOAT_POLL_MS ?? 2000);
  const lines: string[] = [];
  let seen = 0;
  let nextToken: string | undefined;
  for (;;) {
    const description = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    // Read history after the status, so the final events are printed before we stop.
    do {
      const page = await sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken, maxResults: 100 }));
      for (const event of page.events ?? []) {
        if ((event.id ?? 0) <= seen) continue;
        seen = event.id ?? seen + 1;
        const line = describeEvent(event);
        if (line) {
          lines.push(line);
          if (!flags.json) process.stdout.write(`${line}\n`);
        }
      }
      nextToken = page.nextToken;
    } while (nextToken);
    // The token pages from the start; we skip what we've printed by event id.
    if (description.status !== 'RUNNING') {
      const ok = description.status === 'SUCCEEDED';
      // Each database ran in its own child execution: say how each ended, and why the failed ones failed.
      const childArn = childName ? await findOptionalStateMachine(sfn, childName) : undefined;
      const databases = childArn ? await childReports(sfn, childArn, executionArn, startedAt) : [];
      for (const report of databases) {
        const block = [`database ${report.databaseId}: ${report.status}`, ...report.lines.map((l) => `    ${l}`)];
        lines.push(...block);
        if (!flags.json) process.stdout.write(`${block.join('\n')}\n`);
      }
      const verdict = `${workflow} ${ok ? 'succeeded' : description.status}${description.error ? `: ${description.error}` : ''} (${executionArn})`;
      const result = { executionArn, status: description.status, error: description.error, cause: description.cause, databases, events: lines };
      if (!ok) throw Object.assign(new Error(verdict), { name: 'ExecutionFailed', result });
      return { json: result, text: verdict };
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
