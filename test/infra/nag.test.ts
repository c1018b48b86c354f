import { beforeAll, describe, expect, it } from 'vitest';
import { App, Stack, Validations } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { MIN_ACKNOWLEDGEMENT_REASON_LENGTH, acknowledge } from '../../infra/nag.ts';
import { synthApp } from './helpers/app.ts';
import { ALLOWED_ON_ANY_RESOURCE } from './helpers/templates.ts';

interface FoundAcknowledgement {
  readonly path: string;
  readonly id: string;
  readonly reason: unknown;
}

/** Every acknowledgement recorded in the construct tree (what `Validations.acknowledge` writes). */
function acknowledgementsIn(root: IConstruct): FoundAcknowledgement[] {
  const found: FoundAcknowledgement[] = [];
  for (const construct of root.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY || !entry.data) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, unknown>)) {
        found.push({ path: construct.node.path, id: id.replace(/^annotation::/i, ''), reason });
      }
    }
  }
  return found;
}

let app: App;
let template: Template;
beforeAll(() => {
  // nag: true registers AwsSolutionsChecks as a validation plugin, as infra/app.ts does;
  // synth would throw on an unacknowledged finding.
  ({ app, template } = synthApp({ nag: true }));
});

describe('cdk-nag AwsSolutions', () => {
  it('reports no unacknowledged errors or warnings for the source stack', () => {
    // Act
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(app);

    // Assess
    const findings = report.violations.map(
      (v) => `${v.severity} ${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}: ${v.description}`,
    );
    expect(findings).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('gives every acknowledgement a reason', () => {
    // Act
    const acknowledgements = acknowledgementsIn(app);

    // Assess
    expect(acknowledgements.length).toBeGreaterThan(0);
    for (const ack of acknowledgements) {
      expect(typeof ack.reason, `${ack.id} at ${ack.path}`).toBe('string');
      expect((ack.reason as string).trim().length, `${ack.id} at ${ack.path} needs a real reason`).toBeGreaterThanOrEqual(
        MIN_ACKNOWLEDGEMENT_REASON_LENGTH,
      );
    }
  });

  it('acknowledges only AwsSolutions rules, each for a named finding or rule', () => {
    const ids = acknowledgementsIn(app).map((a) => a.id);
    for (const id of ids) expect(id).toMatch(/^AwsSolutions-[A-Z]+\d+(\[.+\])?$/);
  });

  it('grants "*" resources only where the Resource::* acknowledgements say why', () => {
    // Prepare: the IAM5[Resource::*] acknowledgements sit on whole roles, so pin down what they may hide:
    // X-Ray and vended log delivery (tracing, state machine logs), the snapshot quota check, and
    // (in a VPC, see production.test.ts) Lambda's network interfaces.
    const allowedOnAnyResource = ALLOWED_ON_ANY_RESOURCE;

    // Act
    const policies = Object.values(template.findResources('AWS::IAM::Policy'));
    const onAnyResource = policies.flatMap((policy) =>
      (policy.Properties.PolicyDocument.Statement as Array<{ Effect: string; Action: string | string[]; Resource: unknown }>)
        .filter((st) => st.Effect === 'Allow' && [st.Resource].flat().includes('*'))
        .flatMap((st) => [st.Action].flat()),
    );

    // Assess
    expect(onAnyResource.length).toBeGreaterThan(0);
    expect(onAnyResource.filter((action) => !allowedOnAnyResource.test(action))).toEqual([]);
  });

  it('refuses an acknowledgement without a reason', () => {
    expect(() => acknowledge(app, 'AwsSolutions-S1', '  ')).toThrow(/needs a reason/);
  });

  it('still reports a finding that is not acknowledged (the check is live)', () => {
    // Prepare: a bucket that breaks several AwsSolutions rules.
    const bare = new App();
    new Bucket(new Stack(bare, 'Bare'), 'CarelessBucket');

    // Act
    const report = new AwsSolutionsChecks().validateScope(bare);

    // Assess
    expect(report.violations.map((v) => v.ruleName)).toEqual(expect.arrayContaining(['AwsSolutions-S1', 'AwsSolutions-S10']));
  });
});
