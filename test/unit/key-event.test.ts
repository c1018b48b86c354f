import { describe, expect, it } from 'vitest';
import { Logger } from '@aws-lambda-powertools/logger';
import type { PublishCommand } from '@aws-sdk/client-sns';
import { createAlertHandler } from '../../functions/alert/handler.ts';
import { isKeyEvent, keyEventToAlert } from '../../functions/alert/key-event.ts';
import { localLambdaContext } from '../../functions/shared/lambda-context.ts';
import { KEY, keyEvent } from './cloudtrail-fixtures.ts';

describe('KMS calls on the keys backups depend on', () => {
  it('recognizes the watched calls delivered through CloudTrail, and nothing else', () => {
    expect(isKeyEvent(keyEvent('ScheduleKeyDeletion'))).toBe(true);
    expect(isKeyEvent(keyEvent('DisableKey'))).toBe(true);
    expect(isKeyEvent(keyEvent('Encrypt'))).toBe(false);
    expect(isKeyEvent({ source: 'aws.cloudwatch', 'detail-type': 'CloudWatch Alarm State Change', detail: {} })).toBe(false);
  });

  it('names who scheduled the deletion of which key, what it means, and the command that undoes it', () => {
    // Act
    const alert = keyEventToAlert(keyEvent('ScheduleKeyDeletion') as never);

    // Assess
    expect(alert).toMatchObject({ kind: 'key-at-risk', failure: 'ScheduleKeyDeletion', details: { key: KEY, principal: 'arn:aws:sts::222222222222:assumed-role/ci-deployer/session-1', denied: false, eventId: 'ct-0001' } });
    expect(alert.what).toContain('arn:aws:sts::222222222222:assumed-role/ci-deployer/session-1 called ScheduleKeyDeletion (waiting period 7 days) on ' + KEY);
    expect(alert.what).toMatch(/every backup encrypted with it becomes unreadable/);
    expect(alert.nextStep).toBe(`if nobody planned this, cancel it now: aws kms cancel-key-deletion --key-id ${KEY} && aws kms enable-key --key-id ${KEY}; then find out who could.`);
  });

  it('says when the caller is the CDK execution role (a deploy), without hiding the alert', () => {
    const event = keyEvent('PutKeyPolicy', { userIdentity: { type: 'AssumedRole', arn: 'arn:aws:sts::222222222222:assumed-role/cdk-hnb659fds-cfn-exec-role-222222222222-eu-central-1/AWSCloudFormation' } });
    const alert = keyEventToAlert(event as never);
    expect(alert.kind).toBe('key-at-risk');
    expect(alert.what).toMatch(/most likely a cdk deploy: check that a deploy ran then/);
    expect(keyEventToAlert(keyEvent('PutKeyPolicy') as never).what).not.toMatch(/cdk deploy/);
  });

  it('says when the caller is the vault break-glass role (vault deploys run as it)', () => {
    const event = keyEvent('PutKeyPolicy', { userIdentity: { type: 'AssumedRole', arn: 'arn:aws:sts::222222222222:assumed-role/acme-lifeboat-vault-break-glass/alice' } });
    expect(keyEventToAlert(event as never).what).toMatch(/The caller is the vault's break-glass role \(a vault deploy runs as it\): check the break-glass alert that came before this one/);
    expect(keyEventToAlert(keyEvent('PutKeyPolicy') as never).what).not.toMatch(/break-glass/);
  });

  it('alerts a refused attempt as an attempt, naming the refusal', () => {
    const alert = keyEventToAlert(keyEvent('PutKeyPolicy', { errorCode: 'AccessDeniedException', errorMessage: 'not authorized', responseElements: null }) as never);
    expect(alert.failure).toBe('PutKeyPolicyDenied');
    expect(alert.what).toMatch(/tried PutKeyPolicy on .* and was refused \(AccessDeniedException: not authorized\)\. Nothing changed/);
    expect(alert.nextStep).toBe("find out who arn:aws:sts::222222222222:assumed-role/ci-deployer/session-1 is and why it tried (CloudTrail event ct-0001), and rotate that principal's credentials if it is not yours.");
  });

  it('is published by the alert handler in the one alert format', async () => {
    // Prepare
    const published: PublishCommand[] = [];
    const handler = createAlertHandler({
      sns: { send: async (command: PublishCommand) => (published.push(command), { MessageId: 'm-1' }) } as never,
      topicArn: 'arn:aws:sns:eu-central-1:222222222222:vault-alerts',
      logger: new Logger({ serviceName: 'test', logLevel: 'CRITICAL' }),
    });

    // Act
    const out = await handler(keyEvent('DisableKey') as never, localLambdaContext('alert'));

    // Assess
    expect(out.subject).toBe('[lifeboat] Encryption key at risk: deployment: DisableKey');
    const message = published[0]!.input.Message!;
    expect(message).toMatch(/^Encryption key at risk\n\nWhat failed: DisableKey\n/);
    expect(message).toContain(`Next step: if nobody planned this, enable it now: aws kms enable-key --key-id ${KEY}`);
    expect(JSON.parse(message.split('--- details (JSON) ---\n')[1]!)).toMatchObject({ lifeboatAlert: 1, kind: 'key-at-risk', failure: 'DisableKey', details: { key: KEY } });
    expect(published[0]!.input.MessageAttributes).toEqual({ kind: { DataType: 'String', StringValue: 'key-at-risk' } });
  });
});
