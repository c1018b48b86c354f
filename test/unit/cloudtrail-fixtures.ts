/** CloudTrail management events as EventBridge delivers them, for the alert and watch-rule tests. */

export const KEY = 'arn:aws:kms:eu-central-1:222222222222:key/99999999-8888-7777-6666-555555555555';

/** What EventBridge delivers for a CloudTrail-recorded KMS call on a vault key. */
export function keyEvent(eventName: string, extra: Record<string, unknown> = {}) {
  return {
    version: '0',
    id: 'e-1',
    'detail-type': 'AWS API Call via CloudTrail',
    source: 'aws.kms',
    account: '222222222222',
    time: '2026-12-07T03:14:00Z',
    region: 'eu-central-1',
    resources: [],
    detail: {
      eventVersion: '1.08',
      userIdentity: { type: 'AssumedRole', arn: 'arn:aws:sts::222222222222:assumed-role/ci-deployer/session-1' },
      eventTime: '2026-12-07T03:14:00Z',
      eventSource: 'kms.amazonaws.com',
      eventName,
      awsRegion: 'eu-central-1',
      requestParameters: { keyId: KEY, pendingWindowInDays: 7 },
      responseElements: { keyId: KEY, keyState: 'PendingDeletion' },
      eventID: 'ct-0001',
      resources: [{ accountId: '222222222222', type: 'AWS::KMS::Key', ARN: KEY }],
      ...extra,
    },
  };
}

export const ROLE = 'arn:aws:iam::222222222222:role/acme-lifeboat-vault-break-glass';
export const CALLER = 'arn:aws:iam::222222222222:user/alice';

/** What EventBridge delivers for a CloudTrail-recorded sts:AssumeRole of the break-glass role. */
export function assumeRoleEvent(extra: Record<string, unknown> = {}, roleArn = ROLE) {
  return {
    version: '0',
    id: 'e-2',
    'detail-type': 'AWS API Call via CloudTrail',
    source: 'aws.sts',
    account: '222222222222',
    time: '2026-12-07T03:14:00Z',
    region: 'eu-central-1',
    resources: [],
    detail: {
      eventVersion: '1.08',
      userIdentity: { type: 'IAMUser', arn: CALLER },
      eventTime: '2026-12-07T03:14:00Z',
      eventSource: 'sts.amazonaws.com',
      eventName: 'AssumeRole',
      awsRegion: 'eu-central-1',
      sourceIPAddress: '203.0.113.7',
      requestParameters: { roleArn, roleSessionName: 'alice-vault-change', durationSeconds: 3600 },
      responseElements: { assumedRoleUser: { arn: 'arn:aws:sts::222222222222:assumed-role/acme-lifeboat-vault-break-glass/alice-vault-change' } },
      eventID: 'ct-0002',
      ...extra,
    },
  };
}

