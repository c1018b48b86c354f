import { vaultAdminPatterns, type SmokeConfigInput } from '../../scripts/smoke-aws/config.ts';
import type { SmokeFixture } from '../../scripts/smoke-aws/fixture-stack.ts';

/** What the smoke fixture stack would output, for tests that build the smoke config without AWS. */
export const FIXTURE: SmokeFixture = {
  vpcId: 'vpc-0a1b2c3d4e5f60718',
  privateSubnetIds: ['subnet-0a1b2c3d4e5f60718', 'subnet-0f1e2d3c4b5a69788'],
  runnerSecurityGroupId: 'sg-0a1b2c3d4e5f60718',
  databaseSecurityGroupId: 'sg-0f1e2d3c4b5a69788',
  subnetGroupName: 'smoke-test-smoke',
  instanceIdentifier: 'smoke-test-db',
  databaseName: 'smoke',
  masterSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat-smoke/smoke-test/master-AbCdEf',
  wrongSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat-smoke/smoke-test/wrong-password-GhIjKl',
  alertQueueArn: 'arn:aws:sqs:eu-west-1:111111111111:smoke-test-smoke-alerts',
  alertQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/111111111111/smoke-test-smoke-alerts',
  sampleRows: { customers: 5, orders: 12, order_lines: 30 },
};

export function smokeConfigInput(recoveryKmsKeyArn?: string): SmokeConfigInput {
  return {
    name: 'smoke-test',
    source: { account: '111111111111', region: 'eu-west-1' },
    vault: { account: '222222222222', region: 'eu-central-1', adminPrincipalArns: vaultAdminPatterns('arn:aws:sts::222222222222:assumed-role/VaultAdmin/someone'), recoveryKmsKeyArn },
    copyKeyArn: 'arn:aws:kms:eu-central-1:111111111111:key/0a1b2c3d-0000-4000-8000-000000000001',
    fixture: FIXTURE,
    now: new Date('2026-12-03T10:00:00Z'),
  };
}
