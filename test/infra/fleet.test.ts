import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack, App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_TIME_SCALE, localFunctionArn, runLocalStateMachine } from '../../local/state-machine-runner.ts';
import { stateMachinePath } from '../../state-machines/definitions.ts';
import { ALARM_SHARDS, MAX_DATABASES_PER_SHARD } from '../../infra/constructs/database-alarms.ts';
import type { MonitoredStateMachine } from '../../infra/constructs/monitored-state-machine.ts';
import { PlanInputs } from '../../infra/constructs/plan-inputs.ts';
import { MAX_SCHEDULE_INPUT_BYTES, ScheduledWorkflow } from '../../infra/constructs/scheduled-workflow.ts';
import { cdkJsonContext, synthApp, type Synthesized } from './helpers/app.ts';
import { fleetConfigJson } from './helpers/configs.ts';
import { templatesIn, type NamedTemplate } from './helpers/templates.ts';

// Fleet scale: one plan with 200 databases. CloudFormation allows 500
// resources per stack, CloudWatch 500 widgets per dashboard, EventBridge
// Scheduler and Step Functions 256 KB of input (docs/limits.md).

const FLEET = 200;
const CONCURRENCY = 10;
let synthesized: Synthesized;
let templates: NamedTemplate[];
let small: NamedTemplate;
beforeAll(() => {
  synthesized = synthApp({ config: fleetConfigJson(FLEET, CONCURRENCY) });
  templates = templatesIn(synthesized.outdir);
  // The same plan with two databases: what the source stack holds regardless of the fleet.
  small = templatesIn(synthApp({ config: fleetConfigJson(2, CONCURRENCY) }).outdir).find((t) => t.file === 'acme-lifeboat-source.template.json')!;
});

const count = (t: NamedTemplate, type?: string) => Object.values(t.template.Resources).filter((r) => type === undefined || r.Type === type).length;

/** The plan's run input as the schedule passes it: inline, or (LoadPlanInput) from its S3 asset. */
function planInputOf(planId: string): { planId: string; maxConcurrency: number; databases: Array<{ id: string }> } {
  const asset = synthesized.stack.planInputs?.assets.get(planId);
  if (asset) return JSON.parse(readFileSync(join(synthesized.outdir, `asset.${asset.assetHash}.json`), 'utf8')) as ReturnType<typeof planInputOf>;
  const schedule = Object.values(Template.fromStack(synthesized.stack).findResources('AWS::Scheduler::Schedule')).find((r) => String(r.Properties.Target.Input).includes(`"planId":"${planId}"`))!;
  return JSON.parse(schedule.Properties.Target.Input as string) as ReturnType<typeof planInputOf>;
}

/** The backup schedule of a plan (the other schedules start retention and the janitor). */
function backupScheduleInput(): string {
  const backup = { Ref: synthesized.stack.getLogicalId(synthesized.stack.backup.stateMachine.node.defaultChild as never) };
  const schedule = Object.values(Template.fromStack(synthesized.stack).findResources('AWS::Scheduler::Schedule')).find((r) => JSON.stringify(r.Properties.Target.Arn) === JSON.stringify(backup))!;
  return schedule.Properties.Target.Input as string;
}

describe(`a plan with ${FLEET} databases`, () => {
  it('stays far below 500 resources in every stack: per-database alarms live in nested stacks', () => {
    // Act
    const counts = Object.fromEntries(templates.map((t) => [t.file, count(t)]));
    const source = templates.find((t) => t.file === 'acme-lifeboat-source.template.json')!;
    const nested = templates.filter((t) => t.file.endsWith('.nested.template.json'));

    // Assess
    for (const [file, n] of Object.entries(counts)) expect(n, `${file} has ${n} resources`).toBeLessThan(250);
    // backup, retention, drill and janitor executions; alert errors; undelivered
    expect(count(source, 'AWS::CloudWatch::Alarm')).toBe(6);
    expect(nested.length).toBeLessThanOrEqual(ALARM_SHARDS);
    expect(nested.reduce((sum, t) => sum + count(t, 'AWS::CloudWatch::Alarm'), 0)).toBe(FLEET);
    for (const t of nested) expect(count(t, 'AWS::CloudWatch::Alarm')).toBeLessThanOrEqual(MAX_DATABASES_PER_SHARD);
    // Nothing else grows with the fleet: the same resources as for two databases, but for the alarm
    // shards' nested stacks and the overflow policies of the roles that name each database (dump secrets, snapshot sources).
    const growing = (t: NamedTemplate) => count(t, 'AWS::CloudFormation::Stack') + count(t, 'AWS::IAM::ManagedPolicy');
    expect(count(source) - growing(source)).toBe(count(small) - growing(small));
    const overflowing = Object.values(source.template.Resources).filter((r) => r.Type === 'AWS::IAM::ManagedPolicy').map((r) => JSON.stringify(r.Properties?.Roles));
    const stack = synthesized.stack;
    for (const fn of [stack.retentionFunction, stack.drillFunction, stack.drillRestoreFunction, stack.janitorFunction]) {
      expect(overflowing.filter((roles) => roles.includes(stack.getLogicalId(fn.role.node.defaultChild as never))), fn.node.id).toEqual([]);
    }
    expect(count(source)).toBeLessThan(100);
  });

  it('keeps the dashboards constant: an overview and one per plan, the databases in a selector', () => {
    const source = Template.fromStack(synthesized.stack);
    const dashboards = Object.values(source.findResources('AWS::CloudWatch::Dashboard'));
    expect(dashboards).toHaveLength(2);
    const plan = dashboards.find((d) => d.Properties.DashboardName === 'acme-lifeboat-plan-nightly')!;
    const body = JSON.stringify(plan.Properties.DashboardBody);
    expect(body.match(/\\"type\\":\\"metric\\"/g)?.length).toBe(6);
    expect(body.match(/\\"value\\":\\"db-\d{3}\\"/g)?.length).toBe(FLEET);
  });

  it('passes the plan\'s max concurrency to the Map, whose input fits the 256 KB limit', () => {
    // Prepare
    const scheduled = backupScheduleInput();
    const input = planInputOf('nightly');
    const definition = JSON.parse(readFileSync(stateMachinePath('backup'), 'utf8')) as { States: Record<string, { MaxConcurrencyPath?: string; ItemsPath?: string }> };
    const map = Object.values(definition.States).find((s) => s.MaxConcurrencyPath);

    // Assess: the schedule passes a reference; the input it names (what the Map reads) fits a state's 256 KB.
    expect(map).toMatchObject({ MaxConcurrencyPath: '$.maxConcurrency' });
    expect(Buffer.byteLength(scheduled)).toBeLessThan(1000);
    expect(JSON.parse(scheduled)).toMatchObject({ planId: 'nightly' });
    expect(input).toMatchObject({ planId: 'nightly', maxConcurrency: CONCURRENCY });
    expect(input.databases).toHaveLength(FLEET);
    expect(Buffer.byteLength(JSON.stringify(input))).toBeLessThan(MAX_SCHEDULE_INPUT_BYTES / 2);
  });

  it('runs all databases with at most the plan\'s concurrency, retries throttling, alerts each failure and carries on', async () => {
    // Prepare: the synthesized definition and schedule input, with stand-in tasks.
    const machine = Object.values(Template.fromStack(synthesized.stack).findResources('AWS::StepFunctions::StateMachine'))[0]!;
    const arns: Record<string, string> = {};
    let text = machine.Properties.DefinitionString as string;
    for (const key of Object.keys(machine.Properties.DefinitionSubstitutions as object)) {
      arns[key] = localFunctionArn(key.replace(/FunctionArn$/, '').toLowerCase());
      text = text.split(`\${${key}}`).join(arns[key]!);
    }
    // The schedule's input as it starts the execution; LoadPlanInput reads the plan's asset (published by cdk deploy).
    const input = JSON.parse(backupScheduleInput()) as Record<string, unknown>;
    const published = planInputOf('nightly');
    const loads: unknown[] = [];
    const getObject = async (event: unknown) => {
      loads.push(event);
      const asset = [...(synthesized.stack.planInputs?.assets.values() ?? [])].find((a) => a.s3ObjectKey === (event as { Key: string }).Key);
      if (!asset) throw Object.assign(new Error('The specified key does not exist.'), { name: 'S3.NoSuchKeyException' });
      return { Body: readFileSync(join(synthesized.outdir, `asset.${asset.assetHash}.json`), 'utf8'), ContentType: 'application/json' };
    };
    const failing = new Set(['db-007', 'db-123', 'db-199']);
    const throttledOnce = new Set(['db-000', 'db-050', 'db-150']);
    const attempts = new Map<string, number>();
    const alerts: Array<{ kind: string; databaseId: string }> = [];
    let inFlight = 0;
    let peak = 0;
    const dump = async (event: unknown) => {
      const id = (event as { database: { id: string } }).database.id;
      attempts.set(id, (attempts.get(id) ?? 0) + 1);
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, 2));
        if (throttledOnce.has(id) && attempts.get(id) === 1) throw Object.assign(new Error(`Rate exceeded for ${id}`), { name: 'ThrottledError' });
        if (failing.has(id)) throw Object.assign(new Error(`pg_dump failed for ${id}`), { name: 'DumpFailedError' });
        return { databaseId: id, backupId: 'b1', manifestKey: `backups/${id}/b1/manifest.json`, storedBytes: 1, bucket: 'b', dataKey: 'k', rawBytes: 1, sha256: 'x', consistentAt: 't' };
      } finally {
        inFlight -= 1;
      }
    };
    const resources = {
      'arn:aws:states:::aws-sdk:s3:getObject': getObject,
      [arns.DumpFunctionArn!]: dump,
      [arns.AlertFunctionArn!]: async (event: unknown) => (alerts.push(event as { kind: string; databaseId: string }), { messageId: 'm' }),
      ...(arns.VaultCopyFunctionArn ? { [arns.VaultCopyFunctionArn]: async () => ({ status: 'skipped', reason: 'no vault in this test' }) } : {}),
      ...(arns.SnapshotFunctionArn ? { [arns.SnapshotFunctionArn]: async () => ({ started: false, reason: 'not in this plan' }) } : {}),
    };

    // Act
    const result = await runLocalStateMachine(JSON.parse(text) as Record<string, unknown>, input, {
      resources,
      timeScale: LOCAL_TIME_SCALE,
    });

    // Assess: the plan was loaded once, from the object the schedule names.
    expect(loads).toEqual([{ Bucket: (input.planInput as { bucket: unknown }).bucket, Key: (input.planInput as { key: unknown }).key }]);
    expect(published.databases).toHaveLength(FLEET);
    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('BackupIncomplete');
    expect(attempts.size).toBe(FLEET);
    for (const id of throttledOnce) expect(attempts.get(id), id).toBe(2);
    expect(alerts.map((a) => [a.kind, a.databaseId]).sort()).toEqual([...failing].sort().map((id) => ['backup-failed', id]));
    expect(peak).toBeLessThanOrEqual(CONCURRENCY);
    expect(peak).toBeGreaterThan(1);
    // Each database adds only a small summary: the run's results stay far below a state's 256 KB.
    const summary = result.events.find((e) => e.type === 'StateExited' && e.state?.name === 'SummariseRun')?.state?.output;
    expect((summary as { results: unknown[] }).results).toHaveLength(FLEET);
    expect(Buffer.byteLength(JSON.stringify(summary))).toBeLessThan(MAX_SCHEDULE_INPUT_BYTES / 4);
  }, 60_000);
});

describe('schedule inputs beyond the scheduler\'s limit', () => {
  function bareWorkflow(): { stack: Stack; workflow: MonitoredStateMachine; role: iam.Role } {
    const stack = new Stack(new App({ context: cdkJsonContext(), builtinCloudFormationValidation: false }), 'Bare', { env: { account: '111111111111', region: 'eu-west-1' } });
    const stateMachine = new sfn.StateMachine(stack, 'Machine', { definitionBody: sfn.DefinitionBody.fromChainable(new sfn.Pass(stack, 'Pass')) });
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com') });
    return { stack, workflow: { stateMachine } as unknown as MonitoredStateMachine, role };
  }

  it('refuses, at synth, an inline input over 256 KB and names the fix', () => {
    const { stack, workflow, role } = bareWorkflow();
    const input = { planId: 'huge', databases: Array.from({ length: 700 }, (_, i) => ({ id: `db-${i}`, padding: 'x'.repeat(400) })) };
    expect(() => new ScheduledWorkflow(stack, 'Huge', { workflow, role, input, description: 'd', schedule: { expression: 'cron(0 3 * * ? *)', timeZone: 'UTC' } })).toThrow(
      /schedule input is \d+ bytes; EventBridge Scheduler and Step Functions accept at most 256000[\s\S]*S3 object/,
    );
  });

  it('passes only a reference to the plan\'s input object, which the workflow may read and nothing more', () => {
    // Prepare
    const { stack, workflow, role } = bareWorkflow();
    const big = { planId: 'huge', maxConcurrency: 10, databases: Array.from({ length: 700 }, (_, i) => ({ id: `db-${i}`, padding: 'x'.repeat(400) })) };

    // Act
    const inputs = new PlanInputs(stack, 'PlanInputs', { inputs: new Map([['huge', big]]) });
    const scheduled = new ScheduledWorkflow(stack, 'Huge', {
      workflow,
      role,
      input: { planId: 'huge', planInput: inputs.location('huge') },
      description: 'd',
      schedule: { expression: 'cron(0 3 * * ? *)', timeZone: 'UTC' },
    });
    inputs.grantRead(workflow.stateMachine);
    const template = Template.fromStack(stack);

    // Assess
    expect(Buffer.byteLength(scheduled.inputJson)).toBeLessThan(1000);
    const objectKey = inputs.assets.get('huge')!.s3ObjectKey;
    expect(objectKey).toMatch(/^[0-9a-f]{64}\.json$/);
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).flatMap((p) => p.Properties.PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>);
    const reads = policies.filter((st) => st.Action === 's3:GetObject');
    expect(reads).toHaveLength(1);
    expect(JSON.stringify(reads[0]!.Resource)).toContain(`/${objectKey}`);
    expect(JSON.stringify(reads[0]!.Resource)).not.toContain('*');
  });
});
