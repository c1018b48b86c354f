import { readFileSync } from 'node:fs';
import { Stack, App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import { localFunctionArn, runLocalStateMachine } from '../../functions/lib/local/state-machine-runner.ts';
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
beforeAll(() => {
  synthesized = synthApp({ config: fleetConfigJson(FLEET, CONCURRENCY) });
  templates = templatesIn(synthesized.outdir);
});

const count = (t: NamedTemplate, type?: string) => Object.values(t.template.Resources).filter((r) => type === undefined || r.Type === type).length;

describe(`a plan with ${FLEET} databases`, () => {
  it('stays far below 500 resources in every stack: per-database alarms live in nested stacks', () => {
    // Act
    const counts = Object.fromEntries(templates.map((t) => [t.file, count(t)]));
    const source = templates.find((t) => t.file === 'acme-lifeboat-source.template.json')!;
    const nested = templates.filter((t) => t.file.endsWith('.nested.template.json'));

    // Assess
    for (const [file, n] of Object.entries(counts)) expect(n, `${file} has ${n} resources`).toBeLessThan(250);
    expect(count(source, 'AWS::CloudWatch::Alarm')).toBe(3); // backup executions, alert errors, undelivered
    expect(nested.length).toBeLessThanOrEqual(ALARM_SHARDS);
    expect(nested.reduce((sum, t) => sum + count(t, 'AWS::CloudWatch::Alarm'), 0)).toBe(FLEET);
    for (const t of nested) expect(count(t, 'AWS::CloudWatch::Alarm')).toBeLessThanOrEqual(MAX_DATABASES_PER_SHARD);
    // Nothing else grows with the fleet.
    expect(count(source)).toBeLessThan(80);
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
    const schedule = Object.values(Template.fromStack(synthesized.stack).findResources('AWS::Scheduler::Schedule'))[0]!;
    const input = schedule.Properties.Target.Input as string;
    const definition = JSON.parse(readFileSync(stateMachinePath('backup'), 'utf8')) as { States: Record<string, { MaxConcurrencyPath?: string; ItemsPath?: string }> };
    const map = Object.values(definition.States).find((s) => s.MaxConcurrencyPath);

    // Assess
    expect(map).toMatchObject({ MaxConcurrencyPath: '$.maxConcurrency' });
    expect(JSON.parse(input)).toMatchObject({ planId: 'nightly', maxConcurrency: CONCURRENCY });
    expect(Buffer.byteLength(input)).toBeLessThan(MAX_SCHEDULE_INPUT_BYTES / 2);
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
    const input = JSON.parse(Object.values(Template.fromStack(synthesized.stack).findResources('AWS::Scheduler::Schedule'))[0]!.Properties.Target.Input as string) as { databases: Array<{ id: string }> };
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
      [arns.DumpFunctionArn!]: dump,
      [arns.AlertFunctionArn!]: async (event: unknown) => (alerts.push(event as { kind: string; databaseId: string }), { messageId: 'm' }),
      ...(arns.VaultCopyFunctionArn ? { [arns.VaultCopyFunctionArn]: async () => ({ status: 'skipped', reason: 'no vault in this test' }) } : {}),
      ...(arns.SnapshotFunctionArn ? { [arns.SnapshotFunctionArn]: async () => ({ started: false, reason: 'not in this plan' }) } : {}),
    };

    // Act
    const result = await runLocalStateMachine(JSON.parse(text) as Record<string, unknown>, input, {
      resources,
      retryIntervalOverrides: { DumpDatabase: 1, AlertDumpFailed: 1, CopyDumpToVault: 1 },
    });

    // Assess
    expect(input.databases).toHaveLength(FLEET);
    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('BackupIncomplete');
    expect(attempts.size).toBe(FLEET);
    for (const id of throttledOnce) expect(attempts.get(id), id).toBe(2);
    expect(alerts.map((a) => [a.kind, a.databaseId]).sort()).toEqual([...failing].sort().map((id) => ['backup-failed', id]));
    expect(peak).toBeLessThanOrEqual(CONCURRENCY);
    expect(peak).toBeGreaterThan(1);
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
