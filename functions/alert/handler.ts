import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import type { Logger } from '@aws-lambda-powertools/logger';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { createSnsClient } from '../lib/aws/clients.ts';
import { describeCaughtError, formatAlert, type Alert } from '../lib/alerts/format.ts';
import { parseWith } from '../lib/config/load.ts';
import { readEnv } from '../shared/env.ts';
import { logger as sharedLogger, tracer } from '../shared/powertools.ts';
import { alarmEventToAlert, isAlarmStateChangeEvent } from './alarm-event.ts';
import { breakGlassEventToAlert, isBreakGlassEvent } from './break-glass-event.ts';
import { isKeyEvent, keyEventToAlert } from './key-event.ts';

/** What a state machine's Catch passes: the failed item plus Step Functions' `{ Error, Cause }`. */
export const alertTaskInputSchema = z.object({
  kind: z.enum(['backup-failed', 'backup-late', 'drill-failed', 'drill-teardown-incomplete', 'objective-missed', 'retention-failed', 'quota-warning', 'pitr-posture']),
  databaseId: z.string().optional(),
  planId: z.string().optional(),
  executionId: z.string().optional(),
  error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type AlertTaskInput = z.input<typeof alertTaskInputSchema>;

const DEFAULT_NEXT_STEP: Record<Alert['kind'], string> = {
  'backup-failed': 'fix the cause above, then rerun the plan with `lifeboat run backup --plan <plan>`.',
  'backup-late': 'check the last backup execution and the schedule; run `lifeboat status`.',
  'drill-failed': 'treat the backup as unproven; inspect the drill report and run `lifeboat drill`.',
  'drill-teardown-incomplete':
    'the drill\'s verdict stands; its throwaway (named above) may still be running and billing. The janitor deletes expired lifeboat-drill-* resources on its schedule: check that it ran, or delete the resource by hand.',
  'objective-missed': 'review the plan targets against the measured values in `lifeboat status`.',
  'retention-failed': 'inspect the retention audit log and rerun `lifeboat prune --dry-run`.',
  'quota-warning': 'raise the quota or tighten retention.',
  'key-at-risk': 'check who changed the key and undo it if nobody planned it.',
  'break-glass-used': 'confirm that the change was planned, and review what the session did in CloudTrail.',
  'pitr-posture': 'run `lifeboat pitr status` for each problem and its fix (docs/runbooks.md, "PITR posture drift").',
};

export interface AlertHandlerDeps {
  sns: SNSClient;
  topicArn: string;
  logger: Logger;
}

let coldStartDeps: AlertHandlerDeps | undefined;
function depsFromEnvironment(): AlertHandlerDeps {
  coldStartDeps ??= {
    sns: createSnsClient(),
    topicArn: readEnv(z.object({ ALERT_TOPIC_ARN: z.string().startsWith('arn:') })).ALERT_TOPIC_ARN,
    logger: sharedLogger,
  };
  return coldStartDeps;
}

/**
 * Publishes one alert in the common format to the deployment's SNS topic. The
 * input is a state machine's alert task, or a CloudWatch alarm state change
 * routed here by EventBridge (see alarm-event.ts): both come out in one format.
 */
export function createAlertHandler(injected?: AlertHandlerDeps) {
  const logger = injected?.logger ?? sharedLogger;
  return middy()
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger))
    .handler(async (event: unknown): Promise<{ messageId: string; subject: string }> => {
      const { sns, topicArn } = injected ?? depsFromEnvironment();
      let input: { kind: Alert['kind']; databaseId?: string };
      let alert: ReturnType<typeof formatAlert>;
      if (isKeyEvent(event)) {
        const keyAlert = keyEventToAlert(event);
        input = keyAlert;
        alert = formatAlert(keyAlert);
      } else if (isBreakGlassEvent(event)) {
        const breakGlass = breakGlassEventToAlert(event);
        input = breakGlass;
        alert = formatAlert(breakGlass);
      } else if (isAlarmStateChangeEvent(event)) {
        const alarm = alarmEventToAlert(event);
        input = alarm;
        alert = formatAlert({ ...alarm, nextStep: alarm.nextStep ?? DEFAULT_NEXT_STEP[alarm.kind] });
      } else {
        const task = parseWith(alertTaskInputSchema, event, 'alert task input');
        const caught = describeCaughtError(task.error);
        input = task;
        alert = formatAlert({
          kind: task.kind,
          databaseId: task.databaseId,
          planId: task.planId,
          failure: caught.failure,
          what: caught.what,
          nextStep: caught.nextStep ?? DEFAULT_NEXT_STEP[task.kind],
          executionArn: task.executionId,
          details: task.details,
        });
      }
      const out = await sns.send(
        new PublishCommand({
          TopicArn: topicArn,
          Subject: alert.subject,
          Message: alert.message,
          MessageAttributes: Object.fromEntries(Object.entries(alert.attributes).map(([k, v]) => [k, { DataType: 'String', StringValue: v }])),
        }),
      );
      logger.info('Alert published', { subject: alert.subject, kind: input.kind, databaseId: input.databaseId });
      return { messageId: out.MessageId ?? '', subject: alert.subject };
    });
}

export const handler = createAlertHandler();

/** For the bundle tests: the error classes this bundle throws, under the names Step Functions matches. */
export { errorClasses } from '../shared/error-classes.ts';
