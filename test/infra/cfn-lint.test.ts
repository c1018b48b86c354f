import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { synthApp, type Synthesized } from './helpers/app.ts';
import { productionConfigJson } from './helpers/configs.ts';

/**
 * Rules left out, each with its reason. Everything else, informational
 * findings included, fails the test.
 */
const IGNORED_RULES: Readonly<Record<string, string>> = {
  I1022: 'CDK renders string tokens as Fn::Join with an empty delimiter; Fn::Sub would be equivalent, this is style only.',
  W3005:
    'CDK makes a Lambda function and a state machine DependsOn their role construct, i.e. the Role and its DefaultPolicy. ' +
    'The DefaultPolicy part is needed (the policy must exist before the function runs); the Role part duplicates the GetAtt and is harmless.',
};

interface CfnLintFinding {
  readonly Level: 'Error' | 'Warning' | 'Informational';
  readonly Message: string;
  readonly Rule: { readonly Id: string };
  readonly Location: { readonly Path: readonly (string | number)[] };
  readonly Filename?: string;
}

function runCfnLint(templatePaths: readonly string[], regions: readonly string[]): CfnLintFinding[] {
  const result = spawnSync(
    'cfn-lint',
    ['--format', 'json', '--include-checks', 'I', '--regions', ...regions, '--ignore-checks', ...Object.keys(IGNORED_RULES), '--', ...templatePaths],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error('cfn-lint is not installed or not on PATH. Install it with `pip install cfn-lint` (1.x), then rerun the tests.');
  }
  if (result.error) throw result.error;
  // Exit codes are a bit mask of the levels found (2 error, 4 warning, 8 informational); 1 is a crash.
  if (result.status === 1 || (result.status !== 0 && result.stdout.trim() === '')) {
    throw new Error(`cfn-lint failed to run (exit ${result.status}): ${result.stderr}`);
  }
  return result.stdout.trim() ? (JSON.parse(result.stdout) as CfnLintFinding[]) : [];
}

let synthesized: Synthesized;
let production: Synthesized;
let findings: string[];
beforeAll(() => {
  synthesized = synthApp();
  production = synthApp({ config: productionConfigJson() });
  // One cfn-lint run over every template of both synths (stacks and nested stacks).
  const synths = [synthesized, production];
  const paths = synths.flatMap((synth) => readdirSync(synth.outdir).filter((f) => f.endsWith('.template.json')).map((f) => join(synth.outdir, f)));
  const regions = [...new Set(synths.flatMap((synth) => synth.stacks.map((s) => s.region)))];
  findings = runCfnLint(paths, regions).map((f) => `${f.Filename ?? ''}: ${f.Level} ${f.Rule.Id} at ${f.Location.Path.join('/')}: ${f.Message}`);
});

/** The findings in one synth's templates. */
function lintAll(synth: Synthesized): string[] {
  return findings.filter((f) => f.startsWith(synth.outdir));
}

describe('cfn-lint', () => {
  it('finds no errors, warnings or informational findings in the synthesized templates', () => {
    expect(findings.filter((f) => !f.startsWith(synthesized.outdir) && !f.startsWith(production.outdir))).toEqual([]);
    expect(readdirSync(synthesized.outdir)).toContain('acme-lifeboat-source.template.json');
    expect(lintAll(synthesized)).toEqual([]);
  });

  it('finds none in a production config either (VPC endpoints, Fargate, IAM auth, two sources, nested alarm stacks)', () => {
    const templates = readdirSync(production.outdir).filter((f) => f.endsWith('.template.json'));
    expect(templates).toEqual(expect.arrayContaining(['acme-lifeboat-source.template.json', 'acme-lifeboat-source-us.template.json']));
    expect(templates.some((f) => f.endsWith('.nested.template.json'))).toBe(true);
    expect(lintAll(production)).toEqual([]);
  });

  it('documents a reason for every rule it ignores', () => {
    for (const [rule, reason] of Object.entries(IGNORED_RULES)) {
      expect(rule).toMatch(/^[EWI]\d{4}$/);
      expect(reason.length).toBeGreaterThan(20);
    }
  });
});
