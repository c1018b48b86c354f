import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { synthApp, type Synthesized } from './helpers/app.ts';

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
}

function runCfnLint(templatePath: string, region: string): CfnLintFinding[] {
  const result = spawnSync(
    'cfn-lint',
    ['--format', 'json', '--include-checks', 'I', '--regions', region, '--ignore-checks', ...Object.keys(IGNORED_RULES), '--', templatePath],
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
beforeAll(() => {
  synthesized = synthApp();
});

describe('cfn-lint', () => {
  it('finds no errors, warnings or informational findings in the synthesized templates', () => {
    // Prepare
    const templates = readdirSync(synthesized.outdir).filter((f) => f.endsWith('.template.json'));
    expect(templates).toContain('acme-lifeboat-source.template.json');

    // Act
    const findings = templates.flatMap((file) =>
      runCfnLint(join(synthesized.outdir, file), synthesized.stack.region).map(
        (f) => `${file}: ${f.Level} ${f.Rule.Id} at ${f.Location.Path.join('/')}: ${f.Message}`,
      ),
    );

    // Assess
    expect(findings).toEqual([]);
  });

  it('documents a reason for every rule it ignores', () => {
    for (const [rule, reason] of Object.entries(IGNORED_RULES)) {
      expect(rule).toMatch(/^[EWI]\d{4}$/);
      expect(reason.length).toBeGreaterThan(20);
    }
  });
});
