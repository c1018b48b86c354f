import { describe, expect, it } from 'vitest';
import { Logger } from '@aws-lambda-powertools/logger';
import type { PublishCommand } from '@aws-sdk/client-sns';
import { ALARM_METADATA_MARKER, alarmDescription, alarmEventToAlert, isAlarmStateChangeEvent, parseAlarmDescription } from '../../functions/alert/alarm-event.ts';
import { createAlertHandler } from '../../functions/alert/handler.ts';
import { localLambdaContext } from '../../functions/shared/lambda-context.ts';

const description = alarmDescription('No dump of database "orders" (plan nightly) has succeeded for about 26 h; its RPO is 25 h.', {
  kind: 'backup-late',
  failure: 'NoBackupWithinRpo',
  databaseId: 'orders',
  planId: 'nightly',
  nextStep: 'run `lifeboat run backup --plan nightly`.',
});

/** An EventBridge "CloudWatch Alarm State Change" event as AWS sends it (trimmed to what matters). */
function alarmEvent(desc: string | undefined = description) {
  return {
    version: '0',
    id: 'c4c1c1c9-6542-e61b-6ef0-8c4d36933a92',
    'detail-type': 'CloudWatch Alarm State Change',
    source: 'aws.cloudwatch',
    account: '111111111111',
    time: '2026-11-22T05:00:00Z',
    region: 'eu-west-1',
    resources: ['arn:aws:cloudwatch:eu-west-1:111111111111:alarm:lifeboat/acme/backup-late/orders'],
    detail: {
      alarmName: 'lifeboat/acme/backup-late/orders',
      state: { value: 'ALARM', reason: 'Threshold Crossed: 26 out of the last 26 datapoints were less than the threshold (1.0).', timestamp: '2026-11-22T05:00:00.000+0000' },
      previousState: { value: 'OK', reason: '', timestamp: '2026-11-21T03:10:00.000+0000' },
      configuration: { description: desc, metrics: [] },
    },
  };
}

describe('alarm events in the one alert format', () => {
  it('round-trips the metadata the CDK app writes into an alarm description', () => {
    const parsed = parseAlarmDescription(description);
    expect(parsed.human).toMatch(/^No dump of database "orders"/);
    expect(parsed.metadata).toEqual({ kind: 'backup-late', failure: 'NoBackupWithinRpo', databaseId: 'orders', planId: 'nightly', nextStep: 'run `lifeboat run backup --plan nightly`.' });
    expect(description).toContain(`\n\n${ALARM_METADATA_MARKER} {`);
  });

  it('refuses a description CloudWatch would reject (over 1024 characters)', () => {
    expect(() => alarmDescription('x'.repeat(1000), { kind: 'backup-late', failure: 'F' })).toThrow(/1024/);
  });

  it('maps a dead man\'s switch alarm to a backup-late alert for its database and plan', () => {
    // Act
    const alert = alarmEventToAlert(alarmEvent());

    // Assess
    expect(isAlarmStateChangeEvent(alarmEvent())).toBe(true);
    expect(alert).toMatchObject({ kind: 'backup-late', databaseId: 'orders', planId: 'nightly', failure: 'NoBackupWithinRpo' });
    expect(alert.what).toMatch(/RPO is 25 h\. CloudWatch: Threshold Crossed/);
    expect(alert.details).toMatchObject({
      alarmName: 'lifeboat/acme/backup-late/orders',
      alarmArn: 'arn:aws:cloudwatch:eu-west-1:111111111111:alarm:lifeboat/acme/backup-late/orders',
      state: 'ALARM',
      previousState: 'OK',
      alarmUrl: expect.stringContaining('https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/lifeboat%2Facme%2Fbackup-late%2Forders'),
    });
  });

  it('still alerts, naming the alarm, when the description has no lifeboat metadata', () => {
    const alert = alarmEventToAlert(alarmEvent('Someone else\'s alarm.'));
    expect(alert).toMatchObject({ kind: 'backup-failed', failure: 'lifeboat/acme/backup-late/orders' });
    expect(alert.what).toMatch(/^Someone else's alarm\./);
  });

  it('is published by the alert handler with the same subject and body layout as a state machine alert', async () => {
    // Prepare
    const published: PublishCommand[] = [];
    const handler = createAlertHandler({
      sns: { send: async (command: PublishCommand) => (published.push(command), { MessageId: 'm-1' }) } as never,
      topicArn: 'arn:aws:sns:eu-west-1:111111111111:alerts',
      logger: new Logger({ serviceName: 'test', logLevel: 'CRITICAL' }),
    });

    // Act
    const out = await handler(alarmEvent() as never, localLambdaContext('alert'));

    // Assess
    expect(out.subject).toBe('[lifeboat] Backup is late: database orders, plan nightly: NoBackupWithinRpo');
    const message = published[0]!.input.Message!;
    expect(message).toMatch(/^Backup is late \(database orders, plan nightly\)\n\nWhat failed: NoBackupWithinRpo\n/);
    expect(message).toContain('Next step: run `lifeboat run backup --plan nightly`.');
    const details = JSON.parse(message.split('--- details (JSON) ---\n')[1]!) as Record<string, unknown>;
    expect(details).toMatchObject({ lifeboatAlert: 1, kind: 'backup-late', databaseId: 'orders', planId: 'nightly' });
    expect(published[0]!.input.MessageAttributes).toEqual({
      kind: { DataType: 'String', StringValue: 'backup-late' },
      databaseId: { DataType: 'String', StringValue: 'orders' },
      planId: { DataType: 'String', StringValue: 'nightly' },
    });
  });
});
