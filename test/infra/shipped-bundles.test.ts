import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { esbuildOptions, SHIPPED_BUNDLING } from '../../infra/bundling.ts';
import type { SourceStack } from '../../infra/source-stack.ts';
import { repoRoot, runnerBundleDir, shippedModulePath, SHIPPED_FUNCTIONS, type ShippedFunction } from '../harness/shipped.ts';
import { synthesizedDefinition } from '../harness/synthesized.ts';
import { logicalIdOf, synthApp } from './helpers/app.ts';
import { bundle } from './helpers/bundles.ts';
import { stateMachineFiles, type StateMachineName } from '../../state-machines/definitions.ts';

/**
 * The artifact, not the sources: what CDK bundles is what the tests run, and
 * every error name a definition's Retry or Catch matches is the name the
 * bundled code throws (Lambda reports `error.name` as `errorType`).
 */

/** Every definition the stacks deploy: a new one is covered without being listed here. */
const WORKFLOWS = Object.keys(stateMachineFiles) as StateMachineName[];

/** Errors Step Functions itself raises, and the service errors of its Lambda and ECS integrations. */
const STATES_ERRORS = new Set(['States.ALL', 'States.TaskFailed', 'States.Timeout', 'States.HeartbeatTimeout', 'States.Permissions', 'States.ResultPathMatchFailure']);
/** Errors Step Functions raises for its own integrations (Lambda invoke, ECS RunTask), not thrown by lifeboat code. */
const INTEGRATION_ERRORS = new Set([
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'Lambda.ClientExecutionTimeoutException',
  'Lambda.Unknown',
  'ECS.AmazonECSException',
  'ECS.ThrottlingException',
]);

interface Matcher {
  workflow: string;
  state: string;
  placeholder: string;
  names: string[];
}

type AnyState = { Type: string; Resource?: string; Parameters?: Record<string, unknown>; Retry?: { ErrorEquals: string[] }[]; Catch?: { ErrorEquals: string[] }[]; ItemProcessor?: { States: Record<string, AnyState> }; Iterator?: { States: Record<string, AnyState> }; Branches?: { States: Record<string, AnyState> }[] };

const MARK = 'arn:aws:lambda:eu-west-1:000000000000:function:shipped-';

function taskMatchers(workflow: string, states: Record<string, AnyState>, out: Matcher[] = []): Matcher[] {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === 'Task') {
      const resource = state.Resource ?? '';
      const lambda = resource.startsWith(MARK) ? resource.slice(MARK.length) : undefined;
      const task = resource.includes(':ecs:runTask') ? String(state.Parameters?.TaskDefinition ?? '') : undefined;
      // A Fargate task: synthesizedDefinition leaves its task definition as `local-<Placeholder>`.
      const taskPlaceholder = task?.startsWith('local-') ? task.slice('local-'.length) : undefined;
      if (task !== undefined && !taskPlaceholder) throw new Error(`${workflow}.${name}: unexpected task definition ${task}`);
      const placeholder = lambda ?? taskPlaceholder;
      const names = [...(state.Retry ?? []), ...(state.Catch ?? [])].flatMap((r) => r.ErrorEquals);
      // SDK integrations (aws-sdk:s3:getObject ...) raise service errors, not ours.
      if (placeholder) out.push({ workflow, state: name, placeholder, names });
    }
    if (state.ItemProcessor) taskMatchers(workflow, state.ItemProcessor.States, out);
    if (state.Iterator) taskMatchers(workflow, state.Iterator.States, out);
    for (const branch of state.Branches ?? []) taskMatchers(workflow, branch.States, out);
  }
  return out;
}

function allMatchers(): Matcher[] {
  const substitutions = Object.fromEntries(Object.keys(SHIPPED_FUNCTIONS).filter((k) => k.endsWith('FunctionArn')).map((k) => [k, `${MARK}${k}`]));
  return WORKFLOWS.flatMap((workflow) => taskMatchers(workflow, (synthesizedDefinition(workflow, substitutions) as { States: Record<string, AnyState> }).States));
}

/**
 * Loads a bundle in a plain Node process, as Lambda's runtime loads it, and
 * returns the `name` of an instance of each error class it exports.
 */
function bundledErrorNames(modulePath: string): Map<string, string> {
  const probe = `
    const mod = await import(process.env.BUNDLE);
    const names = (mod.errorClasses ?? []).map((cls) => [Reflect.construct(cls, ['probe', ['detail']]).name, cls.name]);
    console.log(JSON.stringify({ handler: typeof mod.handler, names }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8', env: { PATH: process.env.PATH, AWS_REGION: 'eu-west-1', BUNDLE: modulePath } });
  const parsed = JSON.parse(out.trim().split('\n').pop()!) as { handler: string; names: [string, string][] };
  if (!modulePath.endsWith('fargate-task.mjs')) expect(parsed.handler, `${modulePath} exports a handler`).toBe('function');
  return new Map(parsed.names);
}

describe('the bundles the tests run are the bundles CDK deploys', () => {
  let stack: SourceStack;
  let outdir: string;
  beforeAll(() => {
    ({ stack, outdir } = synthApp({ realBundling: true }));
  }, 120_000);

  it('builds each Node.js function exactly as NodejsFunction does (same bytes)', () => {
    // Prepare
    const functions = { 'functions/alert/handler.ts': stack.alertFunction, 'functions/snapshot/handler.ts': stack.snapshotFunction, 'functions/vault-copy/handler.ts': stack.vaultCopyFunction, 'functions/retention/handler.ts': stack.retentionFunction, 'functions/drill/handler.ts': stack.drillFunction, 'functions/janitor/handler.ts': stack.janitorFunction };
    const resources = stack.node.findAll();
    for (const [entry, fn] of Object.entries(functions)) {
      expect(fn, entry).toBeDefined();
      const cfn = resources.find((c) => c === fn!.function.node.defaultChild) as unknown as { code: { s3Key?: string } } | undefined;
      const key = cfn?.code?.s3Key ?? '';
      const assetHash = /([0-9a-f]{64})/.exec(String(stack.resolve(key)))?.[1];
      expect(assetHash, `${entry}: asset hash of ${logicalIdOf(fn!.function)}`).toBeDefined();
      // Act
      const deployed = readFileSync(join(outdir, `asset.${assetHash}`, 'index.mjs'));
      const tested = readFileSync(join(bundle(entry), 'index.mjs'));
      // Assess
      expect(tested.equals(deployed), `${entry}: the tests' bundle differs from CDK's`).toBe(true);
    }
  });
});

describe('error names survive bundling', () => {
  it('keeps class names: infra/bundling.json minifies with keepNames and bundles the locked SDK', () => {
    expect(SHIPPED_BUNDLING.minify).toBe(true);
    expect(SHIPPED_BUNDLING.keepNames).toBe(true);
    expect(SHIPPED_BUNDLING.external).toEqual([]);
  });

  it('throws, from the shipped bundle, every error name that a Retry or Catch of a definition matches', () => {
    // Prepare
    const matchers = allMatchers();
    expect(matchers.length).toBeGreaterThan(30);
    const byModule = new Map<string, Map<string, string>>();
    const problems: string[] = [];
    let checked = 0;
    // Act
    for (const m of matchers) {
      const fn = SHIPPED_FUNCTIONS[m.placeholder] as ShippedFunction | undefined;
      if (!fn) {
        problems.push(`${m.workflow}.${m.state}: no shipped code known for \${${m.placeholder}}`);
        continue;
      }
      const path = shippedModulePath(fn);
      if (!byModule.has(path)) byModule.set(path, bundledErrorNames(path));
      const names = byModule.get(path)!;
      for (const name of m.names) {
        if (STATES_ERRORS.has(name) || INTEGRATION_ERRORS.has(name)) continue;
        checked++;
        if (!names.has(name)) problems.push(`${m.workflow}.${m.state} matches "${name}", which ${fn.entry} as bundled never throws (its error names: ${[...names.keys()].slice(0, 6).join(', ')}, ...)`);
      }
    }
    // Assess
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(10);
  });

  it('would catch a minifier that renames classes (the check above can fail)', () => {
    // Prepare: the snapshot handler bundled like before the fix, without keepNames.
    const dir = join(runnerBundleDir(), 'no-keep-names');
    buildSync({ ...esbuildOptions(), keepNames: false, entryPoints: [join(repoRoot, 'functions/snapshot/handler.ts')], outfile: join(dir, 'index.mjs'), logLevel: 'silent' });
    // Act
    const names = bundledErrorNames(join(dir, 'index.mjs'));
    // Assess
    expect(names.has('SourceDatabaseBusyError')).toBe(false);
    expect(names.size).toBeGreaterThan(10);
  });

  it('ships no local stand-in and no test code in any bundle', () => {
    // Prepare
    const entries = [...new Set(Object.values(SHIPPED_FUNCTIONS).map((f) => f.entry))];
    // Act
    const result = buildSync({ ...esbuildOptions(), entryPoints: entries.map((e) => join(repoRoot, e)), outdir: join(runnerBundleDir(), 'metafile-check'), metafile: true, logLevel: 'silent' });
    const inputs = Object.keys(result.metafile!.inputs);
    // Assess
    expect(inputs.some((i) => i.startsWith('functions/'))).toBe(true);
    expect(inputs.filter((i) => /^(local|test|scripts|cli)\//.test(i) || i.includes('aws-local-stepfunctions'))).toEqual([]);
  });
});
