import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack, App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ALARM_SHARDS, FRESHNESS_SHARDS, MAX_RESOURCES_PER_STACK } from '../../infra/constructs/database-alarms.ts';
import type { MonitoredStateMachine } from '../../infra/constructs/monitored-state-machine.ts';
import { ScheduledWorkflow } from '../../infra/constructs/scheduled-workflow.ts';
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
    // backup, backup-database, retention, retention-target, drill, drill-database and janitor executions; alert errors; undelivered
    expect(count(source, 'AWS::CloudWatch::Alarm')).toBe(9);
    expect(nested.length).toBeLessThanOrEqual(ALARM_SHARDS + FRESHNESS_SHARDS);
    // Per database: the dead man's switch and, the example having a vault, the vault copy's staleness alarm.
    expect(nested.reduce((sum, t) => sum + count(t, 'AWS::CloudWatch::Alarm'), 0)).toBe(2 * FLEET);
    for (const t of nested) expect(count(t)).toBeLessThanOrEqual(MAX_RESOURCES_PER_STACK);
    // Nothing else grows with the fleet: the same resources as for two databases, but for the alarm
    // shards' nested stacks and the overflow policies of the roles that name each database (dump secrets, snapshot sources).
    const growing = (t: NamedTemplate) => count(t, 'AWS::CloudFormation::Stack') + count(t, 'AWS::IAM::ManagedPolicy');
    expect(count(source) - growing(source)).toBe(count(small) - growing(small));
    const overflowing = Object.values(source.template.Resources).filter((r) => r.Type === 'AWS::IAM::ManagedPolicy').map((r) => JSON.stringify(r.Properties?.Roles));
    const stack = synthesized.stack;
    for (const fn of [stack.retentionFunction, stack.drillFunction, stack.drillRestoreFunction, stack.janitorFunction]) {
      expect(overflowing.filter((roles) => roles.includes(stack.getLogicalId(fn.role.node.defaultChild as never))), fn.node.id).toEqual([]);
    }
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

  it('schedules the plan by id only: the schedule input stays tiny whatever the fleet', () => {
    const scheduled = backupScheduleInput();
    expect(JSON.parse(scheduled)).toEqual({ planId: 'nightly' });
    expect(Buffer.byteLength(scheduled)).toBeLessThan(100);
  });

  it('publishes all the databases in the deployed config object, which the plan function resolves (see test/integration/fleet.test.ts for the run)', () => {
    const { asset } = synthesized.stack.deploymentConfig;
    const stored = JSON.parse(readFileSync(join(synthesized.outdir, `asset.${asset.assetHash}.json`), 'utf8')) as { databases: unknown[]; plans: Array<{ maxConcurrency: number }> };
    expect(stored.databases).toHaveLength(FLEET);
    expect(stored.plans[0]!.maxConcurrency).toBe(CONCURRENCY);
  });
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
      /schedule input is \d+ bytes; EventBridge Scheduler and Step Functions accept at most 256000[\s\S]*deployed config object/,
    );
  });
});
