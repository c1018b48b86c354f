import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundle } from '../infra/helpers/bundles.ts';

/**
 * What CDK deploys, built once per test process: the NodejsFunction bundles
 * (infra/bundling.json's settings; test/infra/shipped-bundles.test.ts proves
 * they equal CDK's own output) and the runner image's entry points, built by
 * the script the Dockerfile runs. Integration tests execute these files.
 */
export const repoRoot = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');

export interface ShippedFunction {
  /** Where the code comes from in the source stack. */
  readonly packaging: 'nodejs' | 'image';
  /** The TypeScript entry the bundle is built from. */
  readonly entry: string;
}

/** Each Lambda a definition names by placeholder, and the Fargate tasks (dump, vault copy, drill restore), with the code the stack deploys for it. */
export const SHIPPED_FUNCTIONS: Readonly<Record<string, ShippedFunction>> = {
  AlertFunctionArn: { packaging: 'nodejs', entry: 'functions/alert/handler.ts' },
  PlanFunctionArn: { packaging: 'nodejs', entry: 'functions/plan/handler.ts' },
  PitrFunctionArn: { packaging: 'nodejs', entry: 'functions/pitr/handler.ts' },
  SnapshotFunctionArn: { packaging: 'nodejs', entry: 'functions/snapshot/handler.ts' },
  VaultCopyFunctionArn: { packaging: 'nodejs', entry: 'functions/vault-copy/handler.ts' },
  RetentionFunctionArn: { packaging: 'nodejs', entry: 'functions/retention/handler.ts' },
  DrillFunctionArn: { packaging: 'nodejs', entry: 'functions/drill/handler.ts' },
  JanitorFunctionArn: { packaging: 'nodejs', entry: 'functions/janitor/handler.ts' },
  DumpFunctionArn: { packaging: 'image', entry: 'functions/dump/handler.ts' },
  DrillRestoreFunctionArn: { packaging: 'image', entry: 'functions/drill/handler.ts' },
  DumpTaskDefinitionArn: { packaging: 'image', entry: 'functions/dump/fargate-task.ts' },
  VaultCopyTaskDefinitionArn: { packaging: 'image', entry: 'functions/dump/fargate-task.ts' },
  DrillRestoreTaskDefinitionArn: { packaging: 'image', entry: 'functions/dump/fargate-task.ts' },
};

let runnerDir: string | undefined;

/** The runner image's bundles (scripts/bundle-runner.mjs, as the Dockerfile runs it): `<dir>/functions/<name>/<file>.mjs`. */
export function runnerBundleDir(): string {
  if (!runnerDir) {
    const dir = mkdtempSync(join(tmpdir(), 'lifeboat-runner-'));
    execFileSync(process.execPath, [join(repoRoot, 'scripts/bundle-runner.mjs'), dir], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
    runnerDir = dir;
  }
  return runnerDir;
}

/** The file a shipped function's handler module is: the NodejsFunction's index.mjs, or the image's functions/<name>/<file>.mjs. */
export function shippedModulePath(fn: ShippedFunction): string {
  const path = fn.packaging === 'nodejs' ? join(bundle(fn.entry), 'index.mjs') : join(runnerBundleDir(), fn.entry.replace(/\.ts$/, '.mjs'));
  if (!existsSync(path)) throw new Error(`No shipped bundle at ${path} for ${fn.entry}`);
  return path;
}
