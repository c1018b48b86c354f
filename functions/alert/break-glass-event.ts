import { z } from 'zod';
import type { Alert } from '../lib/alerts/format.ts';

/**
 * Someone assumed (or tried to assume) a role that may change the vault's
 * protections: the break-glass role or a configured vault admin. CloudTrail
 * records sts:AssumeRole and EventBridge delivers it here through the vault's
 * BreakGlassWatch rule (infra/constructs/break-glass-watch.ts). Every use is
 * alerted, planned or not: the alert is the record a second person checks.
 */
const breakGlassEventSchema = z.object({
  'detail-type': z.literal('AWS API Call via CloudTrail'),
  source: z.literal('aws.sts'),
  account: z.string(),
  region: z.string(),
  time: z.string(),
  detail: z.object({
    eventSource: z.literal('sts.amazonaws.com'),
    eventName: z.literal('AssumeRole'),
    eventID: z.string().optional(),
    sourceIPAddress: z.string().optional(),
    userIdentity: z.object({ arn: z.string().optional(), type: z.string().optional() }).partial().optional(),
    requestParameters: z.object({ roleArn: z.string(), roleSessionName: z.string().optional(), durationSeconds: z.number().optional() }).passthrough(),
    responseElements: z.record(z.string(), z.unknown()).nullish(),
    additionalEventData: z.record(z.string(), z.unknown()).nullish(),
    errorCode: z.string().optional(),
    errorMessage: z.string().optional(),
  }),
});
export type BreakGlassEvent = z.infer<typeof breakGlassEventSchema>;

export function isBreakGlassEvent(event: unknown): event is BreakGlassEvent {
  return breakGlassEventSchema.safeParse(event).success;
}

export function breakGlassEventToAlert(event: BreakGlassEvent): Alert {
  const d = event.detail;
  const role = d.requestParameters.roleArn;
  const who = d.userIdentity?.arn ?? d.userIdentity?.type ?? 'an unknown principal';
  const session = d.requestParameters.roleSessionName ? ` as session "${d.requestParameters.roleSessionName}"` : '';
  const from = d.sourceIPAddress ? ` from ${d.sourceIPAddress}` : '';
  const denied = d.errorCode !== undefined;
  const what = denied
    ? `${who} tried to assume ${role}${session}${from} (account ${event.account}, ${event.region}) at ${event.time} and was refused (${d.errorCode}${d.errorMessage ? `: ${d.errorMessage}` : ''}). This role may change the vault's protections; whoever tried may be after them.`
    : `${who} assumed ${role}${session}${from} (account ${event.account}, ${event.region}) at ${event.time}. For the next hour this session may change the vault's protections: bucket and key policies, Object Lock settings, the keys themselves.`;
  return {
    kind: 'break-glass-used',
    failure: denied ? 'AssumeRoleDenied' : 'AssumeRole',
    what,
    nextStep: denied
      ? `find out who ${who} is and why it tried${d.eventID ? ` (CloudTrail event ${d.eventID})` : ''}; rotate its credentials if it is not yours.`
      : `confirm with the person named that the change was planned; review what the session did (CloudTrail, filtered on the role's session${d.eventID ? `, from event ${d.eventID}` : ''}); if nobody planned it, revoke the role's sessions (IAM console: Revoke active sessions) and rotate the caller's credentials.`,
    details: { role, principal: who, sessionName: d.requestParameters.roleSessionName, sourceIp: d.sourceIPAddress, eventId: d.eventID, account: event.account, region: event.region, denied },
  };
}
