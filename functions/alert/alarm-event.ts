import { z } from 'zod';
import type { AlertKind } from '../lib/alerts/format.ts';

/**
 * CloudWatch alarms reach the alert function through an EventBridge rule on
 * "CloudWatch Alarm State Change", so an alarm's alert has the same format as
 * every other alert (formatAlert) instead of CloudWatch's own SNS message.
 *
 * The CDK app writes what the alert needs into the alarm's description: a
 * human sentence, then one line `lifeboat-alert: {json}` (ALARM_METADATA_MARKER)
 * with the alert kind, database, plan, failure name and next step.
 */

/** Starts the machine-readable line of a lifeboat alarm's description. */
export const ALARM_METADATA_MARKER = 'lifeboat-alert:';

const alertKinds = ['backup-failed', 'backup-late', 'drill-failed', 'drill-teardown-incomplete', 'objective-missed', 'retention-failed', 'quota-warning', 'key-at-risk', 'break-glass-used', 'pitr-posture'] as const satisfies readonly AlertKind[];

/** What a lifeboat alarm's description carries for its alert. */
export const alarmMetadataSchema = z.object({
  kind: z.enum(alertKinds),
  /** Short failure name for the subject, e.g. `NoBackupWithinRpo`. */
  failure: z.string().min(1).max(80),
  databaseId: z.string().optional(),
  planId: z.string().optional(),
  nextStep: z.string().optional(),
});
export type AlarmMetadata = z.infer<typeof alarmMetadataSchema>;

/** The alarm description the CDK app writes: the human text, a blank line, the metadata line. */
export function alarmDescription(human: string, metadata: AlarmMetadata): string {
  const text = `${human.trim()}\n\n${ALARM_METADATA_MARKER} ${JSON.stringify(alarmMetadataSchema.parse(metadata))}`;
  // CloudWatch caps AlarmDescription at 1024 characters; the metadata line must survive.
  if (text.length > 1024) throw new Error(`Alarm description is ${text.length} characters; CloudWatch allows 1024. Shorten: ${human.slice(0, 80)}...`);
  return text;
}

/** Splits a description into its human text and its metadata (undefined when absent or malformed). */
export function parseAlarmDescription(description: string | undefined): { human: string; metadata?: AlarmMetadata } {
  const text = description ?? '';
  const at = text.lastIndexOf(ALARM_METADATA_MARKER);
  if (at < 0) return { human: text.trim() };
  const human = text.slice(0, at).trim();
  try {
    const parsed = alarmMetadataSchema.safeParse(JSON.parse(text.slice(at + ALARM_METADATA_MARKER.length).trim()));
    return parsed.success ? { human, metadata: parsed.data } : { human };
  } catch {
    return { human };
  }
}

/** The EventBridge event for an alarm state change (the fields the alert uses). */
export const alarmStateChangeEventSchema = z.object({
  source: z.literal('aws.cloudwatch'),
  'detail-type': z.literal('CloudWatch Alarm State Change'),
  account: z.string().optional(),
  region: z.string().optional(),
  time: z.string().optional(),
  resources: z.array(z.string()).default([]),
  detail: z.object({
    alarmName: z.string(),
    state: z.object({ value: z.string(), reason: z.string().optional(), timestamp: z.string().optional() }).loose(),
    previousState: z.object({ value: z.string() }).loose().optional(),
    configuration: z.object({ description: z.string().optional() }).loose().optional(),
  }),
});
export type AlarmStateChangeEvent = z.input<typeof alarmStateChangeEventSchema>;

/** Whether an event is an EventBridge alarm state change (rather than a state machine's alert task input). */
export function isAlarmStateChangeEvent(event: unknown): boolean {
  const e = event as Record<string, unknown> | null;
  return typeof e === 'object' && e !== null && e.source === 'aws.cloudwatch' && e['detail-type'] === 'CloudWatch Alarm State Change';
}

/** What the alert handler formats for an alarm: the same fields a state machine's Catch leads to. */
export interface AlarmAlert {
  kind: AlertKind;
  databaseId?: string;
  planId?: string;
  failure: string;
  what: string;
  nextStep?: string;
  details: Record<string, unknown>;
}

/** Console link to the alarm. */
export function alarmConsoleUrl(region: string | undefined, alarmName: string): string | undefined {
  if (!region) return undefined;
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#alarmsV2:alarm/${encodeURIComponent(alarmName)}`;
}

/**
 * Maps an alarm state change to an alert. Alarms without lifeboat metadata
 * (not created by this app) still alert, as a generic backup failure naming the alarm.
 */
export function alarmEventToAlert(raw: unknown): AlarmAlert {
  const event = alarmStateChangeEventSchema.parse(raw);
  const { alarmName, state, previousState, configuration } = event.detail;
  const { human, metadata } = parseAlarmDescription(configuration?.description);
  const reason = state.reason ? `CloudWatch: ${state.reason}` : '';
  return {
    kind: metadata?.kind ?? 'backup-failed',
    databaseId: metadata?.databaseId,
    planId: metadata?.planId,
    failure: metadata?.failure ?? alarmName,
    what: [human || `CloudWatch alarm ${alarmName} is in state ${state.value}.`, reason].filter(Boolean).join(' '),
    nextStep: metadata?.nextStep,
    details: {
      source: 'cloudwatch-alarm',
      alarmName,
      alarmArn: event.resources[0],
      state: state.value,
      previousState: previousState?.value,
      stateChangedAt: state.timestamp ?? event.time,
      account: event.account,
      region: event.region,
      alarmUrl: alarmConsoleUrl(event.region, alarmName),
    },
  };
}
