#!/usr/bin/env node
// Bundles the runner image's entry points (every functions/<name>/handler.ts and
// functions/dump/fargate-task.ts) with the settings of infra/bundling.json, into
// <outdir>/functions/<name>/<file>.mjs: self-contained, so the image's runtime
// stage needs no node_modules (and no tsx, no build tools). The Dockerfile runs
// it; the tests run it too, and execute what it writes.
//
//   node scripts/bundle-runner.mjs <outdir>
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = process.argv[2];
if (!outdir) {
  console.error('usage: node scripts/bundle-runner.mjs <outdir>');
  process.exit(2);
}
const { $comment: _comment, ...settings } = JSON.parse(readFileSync(join(root, 'infra/bundling.json'), 'utf8'));

export function runnerEntryPoints() {
  const entries = readdirSync(join(root, 'functions'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && !['lib', 'shared'].includes(d.name))
    .flatMap((d) => ['handler.ts', 'fargate-task.ts'].map((f) => `functions/${d.name}/${f}`))
    .filter((f) => existsSync(join(root, f)))
    .sort();
  if (!entries.includes('functions/dump/fargate-task.ts')) throw new Error('functions/dump/fargate-task.ts is missing: the Fargate dump task has no entrypoint');
  return entries;
}

const result = await build({
  absWorkingDir: root,
  entryPoints: runnerEntryPoints(),
  outbase: '.',
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  target: settings.target,
  platform: settings.platform,
  format: settings.format,
  mainFields: settings.mainFields,
  banner: { js: settings.banner },
  minify: settings.minify,
  keepNames: settings.keepNames,
  sourcemap: settings.sourcemap,
  external: settings.external,
  metafile: true,
  logLevel: 'warning',
});
const shipped = Object.keys(result.metafile.inputs).filter((input) => input.startsWith('local/') || input.startsWith('test/'));
if (shipped.length > 0) {
  console.error(`The runner bundles would ship local stand-ins or tests: ${shipped.join(', ')}`);
  process.exit(1);
}
