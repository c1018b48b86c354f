import { beforeAll, describe, expect, it } from 'vitest';
import { logicalIdOf, synthApp, type Synthesized } from './helpers/app.ts';
import { describeGrants, findGrants, type CfnTemplateJson } from './helpers/iam-walker.ts';

// DESIGN principle 4, "writers can't read": the dump role generates data keys
// under the envelope key but can never decrypt them, read a backup or delete one.

let synthesized: Synthesized;
let template: CfnTemplateJson;
let dumpRole: string;
let envelopeKey: { logicalId: string };
beforeAll(() => {
  synthesized = synthApp();
  template = synthesized.template.toJSON() as CfnTemplateJson;
  dumpRole = logicalIdOf(synthesized.stack.dumpFunction.role);
  envelopeKey = { logicalId: logicalIdOf(synthesized.stack.storage.envelopeKey) };
});

describe('the dump role', () => {
  it('may generate data keys under the envelope key (so the walker sees its real policies)', () => {
    const grants = findGrants(template, dumpRole, { actions: ['kms:GenerateDataKey'], on: envelopeKey, service: 'kms' });
    expect(grants.length, 'expected the dump role to be able to generate envelope data keys').toBeGreaterThan(0);
  });

  it('cannot decrypt with the envelope key, through any action wildcard or policy', () => {
    // Act
    const grants = findGrants(template, dumpRole, {
      actions: ['kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:CreateGrant', 'kms:PutKeyPolicy'],
      on: envelopeKey,
      service: 'kms',
    });

    // Assess
    expect(grants, `the dump role can decrypt envelope data keys:\n${describeGrants(grants)}`).toEqual([]);
  });

  it('cannot delete, read or change the retention of any object', () => {
    // Act
    const grants = findGrants(template, dumpRole, {
      actions: [
        's3:DeleteObject',
        's3:DeleteObjectVersion',
        's3:DeleteBucket',
        's3:PutLifecycleConfiguration',
        's3:PutBucketPolicy',
        's3:PutObjectRetention',
        's3:BypassGovernanceRetention',
        's3:GetObject',
        's3:GetObjectVersion',
      ],
    });

    // Assess
    expect(grants, `the dump role can delete or read backups:\n${describeGrants(grants)}`).toEqual([]);
  });

  it('may use the bucket key, needed for multipart uploads under SSE-KMS, only through S3', () => {
    // Prepare
    const bucketKey = { logicalId: logicalIdOf(synthesized.stack.storage.bucketKey) };

    // Act
    const grants = findGrants(template, dumpRole, { actions: ['kms:Decrypt'], on: bucketKey, service: 'kms' });

    // Assess
    expect(grants).toHaveLength(1);
    expect(grants[0]?.statement.Condition).toEqual({ StringEquals: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' } });
  });

  it('writes only under the backup prefix', () => {
    const grants = findGrants(template, dumpRole, { actions: ['s3:PutObject'] });
    expect(grants.map((g) => g.statement.Resource)).toEqual([
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalIdOf(synthesized.stack.storage.bucket), 'Arn'] }, '/backups/*']] },
    ]);
  });
});
