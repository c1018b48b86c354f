import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { buildSync } from 'esbuild';
import { esbuildOptions } from '../../../infra/bundling.ts';
import type { ProjectFunctionSource } from '../../../infra/constructs/project-function.ts';
import type { SourceStackCode } from '../../../infra/source-stack.ts';

/**
 * The project's Node.js handlers bundled once per test process with esbuild's
 * API, as `prebuilt` sources. CDK's own NodejsFunction bundling runs
 * `npx esbuild` per function and per synth (its asset cache is keyed by the
 * output directory), about 0.7 s each; most synths in the tests need a real
 * bundle, not that bundle's exact build settings. The synths that check the
 * bundling itself pass `realBundling: true` (see helpers/app.ts).
 */
const bundled = new Map<string, string>();
const repoRoot = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');

/** Bundled with infra/bundling.json's settings, as NodejsFunction and the runner image bundle them. */
export function bundle(entry: string): string {
  let dir = bundled.get(entry);
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), 'lifeboat-bundle-'));
    buildSync({ ...esbuildOptions(), entryPoints: [join(repoRoot, entry)], outfile: join(dir, 'index.mjs'), logLevel: 'silent' });
    bundled.set(entry, dir);
  }
  return dir;
}

function prebuilt(entry: string): ProjectFunctionSource {
  return { kind: 'prebuilt', code: lambda.Code.fromAsset(bundle(entry)), handler: 'index.handler' };
}

/**
 * Every Node.js function of the stacks, prebundled (the dump runner stays the
 * image: synth never builds it). Each read returns a fresh Code: a Code asset
 * belongs to one stack, and every source stack (and the vault) reads these.
 */
export function prebundledCode(): SourceStackCode {
  return {
    get alert() {
      return prebuilt('functions/alert/handler.ts');
    },
    get plan() {
      return prebuilt('functions/plan/handler.ts');
    },
    get pitr() {
      return prebuilt('functions/pitr/handler.ts');
    },
    get snapshot() {
      return prebuilt('functions/snapshot/handler.ts');
    },
    get vaultCopy() {
      return prebuilt('functions/vault-copy/handler.ts');
    },
    get retention() {
      return prebuilt('functions/retention/handler.ts');
    },
    get drill() {
      return prebuilt('functions/drill/handler.ts');
    },
    get janitor() {
      return prebuilt('functions/janitor/handler.ts');
    },
  };
}
