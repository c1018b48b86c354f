import { describe, expect, it } from 'vitest';
import { actionMatches, findGrants, type CfnTemplateJson, type PolicyStatementJson } from './helpers/iam-walker.ts';

// The walker behind "the dump role can't decrypt" must be able to fail: each
// case below hands it a small template that does grant the forbidden action.

const KEY = { logicalId: 'EnvelopeKey' };
const DECRYPT = { actions: ['kms:Decrypt'], on: KEY, service: 'kms' } as const;

function templateWith(statements: PolicyStatementJson[], extra: CfnTemplateJson['Resources'] = {}): CfnTemplateJson {
  return {
    Resources: {
      EnvelopeKey: { Type: 'AWS::KMS::Key', Properties: { KeyPolicy: { Statement: [] } } },
      OtherKey: { Type: 'AWS::KMS::Key', Properties: { KeyPolicy: { Statement: [] } } },
      WriterRole: { Type: 'AWS::IAM::Role', Properties: {} },
      OtherRole: { Type: 'AWS::IAM::Role', Properties: {} },
      WriterPolicy: {
        Type: 'AWS::IAM::Policy',
        Properties: { PolicyDocument: { Statement: statements }, Roles: [{ Ref: 'WriterRole' }] },
      },
      ...extra,
    },
  };
}

const keyArn = { 'Fn::GetAtt': ['EnvelopeKey', 'Arn'] };

describe('IAM grant walker', () => {
  it('finds kms:Decrypt granted on the key by an attached policy', () => {
    // Prepare
    const template = templateWith([{ Effect: 'Allow', Action: ['kms:GenerateDataKey', 'kms:Decrypt'], Resource: keyArn }]);

    // Act
    const grants = findGrants(template, 'WriterRole', DECRYPT);

    // Assess
    expect(grants).toHaveLength(1);
    expect(grants[0]?.source).toContain('WriterPolicy');
  });

  it.each([
    ['kms:*', '*'],
    ['*', '*'],
    ['kms:Decrypt*', keyArn],
    ['KMS:decrypt', keyArn],
    ['kms:De?rypt', keyArn],
    ['kms:Decrypt', 'arn:aws:kms:*:*:key/*'],
    ['kms:Decrypt', { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':kms:*']] }],
  ])('finds kms:Decrypt through the wildcard action %s on %j', (action, resource) => {
    const template = templateWith([{ Effect: 'Allow', Action: action, Resource: resource }]);
    expect(findGrants(template, 'WriterRole', DECRYPT)).toHaveLength(1);
  });

  it('finds kms:Decrypt allowed by a NotAction that does not exclude it', () => {
    const template = templateWith([{ Effect: 'Allow', NotAction: ['s3:*'], Resource: '*' }]);
    expect(findGrants(template, 'WriterRole', DECRYPT)).toHaveLength(1);
  });

  it('counts a conditional Allow as a grant', () => {
    const template = templateWith([
      { Effect: 'Allow', Action: 'kms:Decrypt', Resource: keyArn, Condition: { StringEquals: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' } } },
    ]);
    expect(findGrants(template, 'WriterRole', DECRYPT)).toHaveLength(1);
  });

  it('finds kms:Decrypt in the role inline policies and in the key policy naming the role', () => {
    // Prepare
    const template = templateWith([], {
      WriterRole: {
        Type: 'AWS::IAM::Role',
        Properties: { Policies: [{ PolicyName: 'inline', PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 'kms:Decrypt', Resource: keyArn }] } }] },
      },
      EnvelopeKey: {
        Type: 'AWS::KMS::Key',
        Properties: {
          KeyPolicy: {
            Statement: [{ Effect: 'Allow', Principal: { AWS: { 'Fn::GetAtt': ['WriterRole', 'Arn'] } }, Action: 'kms:Decrypt', Resource: '*' }],
          },
        },
      },
    });

    // Act
    const sources = findGrants(template, 'WriterRole', DECRYPT).map((g) => g.source);

    // Assess
    expect(sources).toEqual(expect.arrayContaining([expect.stringContaining('inline'), expect.stringContaining('KeyPolicy')]));
  });

  it('treats a managed policy ARN on the role as allowing anything', () => {
    const template = templateWith([], {
      WriterRole: { Type: 'AWS::IAM::Role', Properties: { ManagedPolicyArns: ['arn:aws:iam::aws:policy/AdministratorAccess'] } },
    });
    expect(findGrants(template, 'WriterRole', DECRYPT)).toHaveLength(1);
  });

  it('finds s3:DeleteObjectVersion through s3:Delete* on any resource', () => {
    const template = templateWith([{ Effect: 'Allow', Action: 's3:Delete*', Resource: 'arn:aws:s3:::bucket/*' }]);
    expect(findGrants(template, 'WriterRole', { actions: ['s3:DeleteObject', 's3:DeleteObjectVersion'] })).toHaveLength(2);
  });

  it('ignores Deny statements, grants on other keys and policies of other roles', () => {
    // Prepare
    const template = templateWith(
      [
        { Effect: 'Deny', Action: 'kms:*', Resource: '*' },
        { Effect: 'Allow', Action: 'kms:Decrypt', Resource: { 'Fn::GetAtt': ['OtherKey', 'Arn'] } },
        { Effect: 'Allow', Action: 'kms:GenerateDataKey', Resource: keyArn },
        { Effect: 'Allow', Action: 'kms:Decrypt', Resource: 'arn:aws:s3:::bucket/*' },
      ],
      {
        OtherPolicy: {
          Type: 'AWS::IAM::Policy',
          Properties: { PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] }, Roles: [{ Ref: 'OtherRole' }] },
        },
      },
    );

    // Act
    const grants = findGrants(template, 'WriterRole', DECRYPT);

    // Assess
    expect(grants).toEqual([]);
  });

  it('matches IAM action wildcards case-insensitively and nothing more', () => {
    expect(actionMatches('kms:Decrypt*', 'kms:Decrypt')).toBe(true);
    expect(actionMatches('kms:GenerateDataKey*', 'kms:Decrypt')).toBe(false);
    expect(actionMatches('kms:Decrypt', 'kms:DecryptSomethingElse')).toBe(false);
  });
});
