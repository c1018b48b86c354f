import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { App, Stack } from 'aws-cdk-lib';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import { IMAGE_CLIENTS_ROOT, PG_CLIENTS_ENV, SUPPORTED_CLIENT_MAJORS } from '../../functions/lib/pg/binaries.ts';
import { REPO_ROOT, runnerImageProps } from '../../infra/source-stack.ts';
import { createFakeClients } from '../harness/fake-pg-clients.ts';

/**
 * The runner image up to what only a Docker build can prove: the build context
 * CDK stages (an allowlist, stray files left out), the Dockerfile's pins and
 * its agreement with the TypeScript (client majors, discovery root), its
 * build-time client check run against fake clients, and the attestation
 * setting of the CDK CLI that builds the asset.
 */

const execFileAsync = promisify(execFile);

/** What the image build needs, and nothing else (Dockerfile and .dockerignore CDK always keeps). */
const CONTEXT_FILES = ['.dockerignore', 'Dockerfile', 'infra/bundling.json', 'package-lock.json', 'package.json', 'scripts/bundle-runner.mjs', 'tsconfig.json'];

function walk(dir: string, root = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? walk(path, root) : [relative(root, path)];
  });
}

/** Synthesizes the runner image asset alone and lists the files of its staged directory in the cloud assembly. */
function stagedContext(directory: string): { files: string[]; source: Record<string, unknown> } {
  const outdir = mkdtempSync(join(tmpdir(), 'lifeboat-image-assembly-'));
  try {
    const app = new App({ outdir });
    const stack = new Stack(app, 'RunnerImageOnly');
    const asset = new ecrAssets.DockerImageAsset(stack, 'RunnerImage', runnerImageProps(directory));
    const assembly = app.synth();
    const manifest = JSON.parse(readFileSync(join(assembly.directory, `${stack.artifactId}.assets.json`), 'utf8')) as {
      dockerImages: Record<string, { source: { directory: string } & Record<string, unknown> }>;
    };
    const source = manifest.dockerImages[asset.assetHash]!.source;
    return { files: walk(join(assembly.directory, source.directory)).sort(), source };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

describe('the runner image build context', () => {
  let copy: string;
  beforeAll(() => {
    // A copy of the repository (without installed or generated state) with
    // untracked files a developer could have lying around.
    copy = mkdtempSync(join(tmpdir(), 'lifeboat-context-'));
    const skip = new Set(['node_modules', '.git', 'cdk.out', 'test-results', '.lifeboat-tmp', 'coverage']);
    cpSync(REPO_ROOT, copy, { recursive: true, filter: (src) => !skip.has(relative(REPO_ROOT, src).split('/')[0]!) });
    const strays = {
      'stray-notes.txt': 'todo',
      '.env': 'PGPASSWORD=S3NTINEL',
      'lifeboat.config.prod.json': '{"secret":"S3NTINEL"}',
      'docs/draft.md': '# draft',
      'infra/local-overrides.json': '{}',
      'scripts/scratch.mjs': '',
      'node_modules/left-over/index.js': '',
      'functions/node_modules/left-over/index.js': '',
      'functions/dump/.env': 'PGPASSWORD=S3NTINEL',
      'cdk.out/old/manifest.json': '{}',
      'test/scratch.test.ts': '',
    };
    for (const [path, body] of Object.entries(strays)) {
      mkdirSync(dirname(join(copy, path)), { recursive: true });
      writeFileSync(join(copy, path), body);
    }
  });
  afterAll(() => {
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  it('stages only package.json, package-lock.json, tsconfig.json, functions/, infra/bundling.json and scripts/bundle-runner.mjs, even with stray files present', () => {
    // Act
    const { files } = stagedContext(copy);

    // Assess
    const expectedFunctions = walk(join(copy, 'functions'))
      .map((f) => `functions/${f}`)
      .filter((f) => !f.includes('node_modules/') && !/(^|\/)\.env/.test(f))
      .sort();
    expect(expectedFunctions.length).toBeGreaterThan(10);
    expect(files).toEqual([...CONTEXT_FILES, ...expectedFunctions].sort());
  });

  it('stages from the real repository nothing outside that allowlist', () => {
    const { files, source } = stagedContext(REPO_ROOT);

    const outside = files.filter((f) => !CONTEXT_FILES.includes(f) && !f.startsWith('functions/'));
    expect(outside).toEqual([]);
    expect(files).toContain('functions/dump/handler.ts');
    expect(source).toMatchObject({ dockerFile: 'Dockerfile', platform: 'linux/arm64' });
  });
});

interface Instruction {
  keyword: string;
  args: string;
}

/** The Dockerfile as instructions: comments dropped, continuation lines joined. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (!current && (line.trim() === '' || line.trim().startsWith('#'))) continue;
    if (current && line.trim().startsWith('#')) continue;
    current += (current ? '\n' : '') + line.replace(/\\$/, '');
    if (line.endsWith('\\')) continue;
    const m = /^\s*([A-Z]+)\s+([\s\S]*)$/.exec(current)!;
    out.push({ keyword: m[1]!, args: m[2]!.trim() });
    current = '';
  }
  return out;
}

describe('the Dockerfile', () => {
  const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const all = instructions(dockerfile);
  const firstFrom = all.findIndex((i) => i.keyword === 'FROM');
  const globalArgs = new Map(
    all.slice(0, firstFrom).filter((i) => i.keyword === 'ARG').map((i) => {
      const [name, value = ''] = i.args.split(/=(.*)/s);
      return [name!, value.replace(/^"(.*)"$/, '$1')];
    }),
  );
  const stages = all.reduce<Instruction[][]>((acc, i, n) => {
    if (n < firstFrom) return acc;
    if (i.keyword === 'FROM') acc.push([]);
    acc[acc.length - 1]!.push(i);
    return acc;
  }, []);
  const runtime = stages[stages.length - 1]!;

  it('pulls every base image through a digest build argument that is empty (tag only, not yet pinned) or a sha256 digest', () => {
    const froms = all.filter((i) => i.keyword === 'FROM');
    expect(froms.length).toBe(3);
    for (const from of froms) {
      const m = /^(?:--platform=\S+\s+)?([a-z0-9./-]+):([\w.-]+)\$\{(\w+_DIGEST):\+@\$\{\3\}\}(?:\s+AS\s+\w+)?$/.exec(from.args);
      expect(m, `FROM ${from.args}`).not.toBeNull();
      expect(m![2]).not.toBe('latest');
      expect(globalArgs.has(m![3]!), `${m![3]} is a global ARG`).toBe(true);
      expect(globalArgs.get(m![3]!)).toMatch(/^$|^sha256:[0-9a-f]{64}$/);
    }
  });

  it('ships exactly the client majors lifeboat chooses among, in the root lifeboat searches', () => {
    expect(globalArgs.get('PG_MAJORS')!.split(/\s+/).map(Number)).toEqual([...SUPPORTED_CLIENT_MAJORS]);
    expect(runtime).toContainEqual({ keyword: 'ENV', args: `${PG_CLIENTS_ENV}=${IMAGE_CLIENTS_ROOT}` });
    expect(runtime).toContainEqual({ keyword: 'COPY', args: `--from=pgclients ${IMAGE_CLIENTS_ROOT}/ ${IMAGE_CLIENTS_ROOT}/` });
    // Every stage that uses PG_MAJORS declares it (a global ARG is not in scope inside a stage).
    for (const stage of stages) {
      if (stage.some((i) => i.keyword === 'RUN' && i.args.includes('${PG_MAJORS}'))) expect(stage).toContainEqual({ keyword: 'ARG', args: 'PG_MAJORS' });
    }
  });

  it('verifies the RDS CA bundle against a checksum build argument before it enters the image', () => {
    const add = runtime.find((i) => i.keyword === 'ADD' && i.args.includes('truststore.pki.rds.amazonaws.com'));
    expect(add?.args).toMatch(/--checksum=sha256:\$\{RDS_CA_BUNDLE_SHA256\}/);
    expect(globalArgs.get('RDS_CA_BUNDLE_SHA256')).toMatch(/^$|^[0-9a-f]{64}$/);
    expect(runtime).toContainEqual({ keyword: 'ARG', args: 'RDS_CA_BUNDLE_SHA256' });
  });

  it('keeps the runtime stage to the bundles and the clients: no sources, node_modules, npm or tsx', () => {
    const copies = runtime.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD').map((i) => i.args);
    expect(copies.filter((c) => !c.includes('truststore.pki.rds.amazonaws.com'))).toEqual([
      `--from=pgclients ${IMAGE_CLIENTS_ROOT}/ ${IMAGE_CLIENTS_ROOT}/`,
      '--from=build /build/dist/functions/ ./functions/',
    ]);
    expect(runtime.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n')).not.toMatch(/\bnpm\b|\bnpx\b|\btsx\b|node_modules/);
  });

  describe('build-time client check, run against fake clients', () => {
    const check = runtime.find((i) => i.keyword === 'RUN' && i.args.includes('--version'))!.args;
    const run = (root: string) =>
      execFileAsync('sh', ['-c', check], { env: { PATH: process.env.PATH, PG_MAJORS: globalArgs.get('PG_MAJORS'), [PG_CLIENTS_ENV]: root } }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );

    it('passes when every major runs and reports its own major', async () => {
      const fakes = createFakeClients(SUPPORTED_CLIENT_MAJORS.map((major) => ({ major, version: `${major}.3` })));
      try {
        const out = await run(fakes.root);
        expect(out.code, out.stderr).toBe(0);
        for (const m of SUPPORTED_CLIENT_MAJORS) expect(out.stdout).toContain(`pg_restore (PostgreSQL) ${m}.3`);
      } finally {
        fakes.cleanup();
      }
    });

    it('fails the build naming the client when a major is missing', async () => {
      const fakes = createFakeClients(SUPPORTED_CLIENT_MAJORS.filter((m) => m !== 17).map((major) => ({ major })));
      try {
        const out = await run(fakes.root);
        expect(out.code).not.toBe(0);
        expect(out.stderr).toContain('pg_dump of PostgreSQL 17 does not run');
      } finally {
        fakes.cleanup();
      }
    });

    it('fails the build when a directory holds another major than its name says', async () => {
      const fakes = createFakeClients(SUPPORTED_CLIENT_MAJORS.map((major) => (major === 16 ? { major: 15, dirName: '16' } : { major })));
      try {
        const out = await run(fakes.root);
        expect(out.code).not.toBe(0);
        expect(out.stderr).toMatch(/16\/bin\/pg_dump reports "pg_dump \(PostgreSQL\) 15\.90", not PostgreSQL 16/);
      } finally {
        fakes.cleanup();
      }
    });
  });
});

describe('attestations', () => {
  it('the pinned CDK CLI builds every image asset with BUILDX_NO_DEFAULT_ATTESTATIONS=1 (Lambda rejects an image index with attestation manifests)', () => {
    // aws-cdk-lib 2.276's DockerImageAsset has no provenance option, and `outputs`
    // (--output) has no exporter attribute that drops attestations; the CLI that
    // builds the asset disables buildx's default provenance itself.
    const pinned = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies['aws-cdk'];
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const installed = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/aws-cdk/package.json'), 'utf8')) as { version: string };
    expect(installed.version).toBe(pinned);
    const cli = readFileSync(join(REPO_ROOT, 'node_modules/aws-cdk/lib/index.js'), 'utf8');
    const build = /async build\(options\)\s*\{\s*const buildCommand = \[\s*"build",[\s\S]{0,3000}?\}\s*\);\s*\}/.exec(cli)?.[0];
    expect(build).toBeDefined();
    expect(build).toMatch(/env:\s*\{\s*BUILDX_NO_DEFAULT_ATTESTATIONS:\s*"1"/);
  });

  it('passes no build output settings that could bypass it, and builds for arm64', () => {
    const props = runnerImageProps();
    expect(props.outputs).toBeUndefined();
    expect(props.cacheTo).toBeUndefined();
    expect(props.platform).toBe(ecrAssets.Platform.LINUX_ARM64);
  });
});
