import { describe, expect, it } from 'vitest';
import { Logger } from '@aws-lambda-powertools/logger';
import type { PublishCommand } from '@aws-sdk/client-sns';
import { createAlertHandler } from '../../functions/alert/handler.ts';
import { breakGlassEventToAlert, isBreakGlassEvent } from '../../functions/alert/break-glass-event.ts';
import { isKeyEvent } from '../../functions/alert/key-event.ts';
import { localLambdaContext } from '../../functions/shared/lambda-context.ts';
import { assumeRoleEvent, CALLER, ROLE } from './cloudtrail-fixtures.ts';

describe('the break-glass role assumed (or tried)', () => {
  it('recognizes CloudTrail AssumeRole events, and not key or other events', () => {
    expect(isBreakGlassEvent(assumeRoleEvent())).toBe(true);
    expect(isKeyEvent(assumeRoleEvent())).toBe(false);
    expect(isBreakGlassEvent({ ...assumeRoleEvent(), detail: { ...assumeRoleEvent().detail, eventName: 'GetCallerIdentity' } })).toBe(false);
    expect(isBreakGlassEvent({ source: 'aws.cloudwatch', 'detail-type': 'CloudWatch Alarm State Change', detail: {} })).toBe(false);
  });

  it('names who assumed which role, from where, what the session may do, and how to check it', () => {
    // Act
    const alert = breakGlassEventToAlert(assumeRoleEvent() as never);

    // Assess
    expect(alert).toMatchObject({ kind: 'break-glass-used', failure: 'AssumeRole', details: { role: ROLE, principal: CALLER, sessionName: 'alice-vault-change', sourceIp: '203.0.113.7', denied: false, eventId: 'ct-0002' } });
    expect(alert.what).toBe(
      `${CALLER} assumed ${ROLE} as session "alice-vault-change" from 203.0.113.7 (account 222222222222, eu-central-1) at 2026-12-07T03:14:00Z. For the next hour this session may change the vault's protections: bucket and key policies, Object Lock settings, the keys themselves.`,
    );
    expect(alert.nextStep).toMatch(/^confirm with the person named that the change was planned; .* if nobody planned it, revoke the role's sessions/);
  });

  it('alerts a refused try (no MFA, wrong account) as a try', () => {
    const alert = breakGlassEventToAlert(assumeRoleEvent({ errorCode: 'AccessDenied', errorMessage: 'not authorized to perform: sts:AssumeRole', responseElements: null }) as never);
    expect(alert.failure).toBe('AssumeRoleDenied');
    expect(alert.what).toMatch(/tried to assume .*break-glass .* and was refused \(AccessDenied: not authorized to perform: sts:AssumeRole\)\./);
    expect(alert.details).toMatchObject({ denied: true });
  });

  it('is published by the alert handler in the one alert format', async () => {
    // Prepare
    const published: PublishCommand[] = [];
    const handler = createAlertHandler({
      sns: { send: async (command: PublishCommand) => (published.push(command), { MessageId: 'm-2' }) } as never,
      topicArn: 'arn:aws:sns:eu-central-1:222222222222:vault-alerts',
      logger: new Logger({ serviceName: 'test', logLevel: 'CRITICAL' }),
    });

    // Act
    const out = await handler(assumeRoleEvent() as never, localLambdaContext('alert'));

    // Assess
    expect(out.subject).toBe('[lifeboat] Vault break-glass role assumed: deployment: AssumeRole');
    const message = published[0]!.input.Message!;
    expect(message).toMatch(/^Vault break-glass role assumed\n\nWhat failed: AssumeRole\n/);
    expect(JSON.parse(message.split('--- details (JSON) ---\n')[1]!)).toMatchObject({ lifeboatAlert: 1, kind: 'break-glass-used', details: { role: ROLE } });
    expect(published[0]!.input.MessageAttributes).toEqual({ kind: { DataType: 'String', StringValue: 'break-glass-used' } });
  });
});
