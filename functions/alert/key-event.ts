import { z } from 'zod';
import type { Alert } from '../lib/alerts/format.ts';

/**
 * A KMS call that can make backups unreadable, on a key lifeboat depends on,
 * reaches the alert function through an EventBridge rule on CloudTrail's
 * "AWS API Call via CloudTrail" events (infra/constructs/key-watch.ts), so it
 * is alerted within minutes in the one alert format: who called what on which
 * key, whether it took effect, and how to undo it. A call that was denied is
 * alerted too: someone tried.
 */

/** The KMS calls the key watch forwards (each one can destroy or lock away what the key protects). */
export const WATCHED_KEY_EVENTS = ['ScheduleKeyDeletion', 'DisableKey', 'PutKeyPolicy', 'DisableKeyRotation', 'DeleteImportedKeyMaterial', 'RevokeGrant'] as const;

const keyEventSchema = z.object({
  'detail-type': z.literal('AWS API Call via CloudTrail'),
  source: z.literal('aws.kms'),
  account: z.string(),
  region: z.string(),
  time: z.string(),
  detail: z.object({
    eventSource: z.literal('kms.amazonaws.com'),
    eventName: z.enum(WATCHED_KEY_EVENTS),
    eventID: z.string().optional(),
    userIdentity: z.object({ arn: z.string().optional(), type: z.string().optional() }).partial().optional(),
    requestParameters: z.record(z.string(), z.unknown()).nullish(),
    responseElements: z.record(z.string(), z.unknown()).nullish(),
    errorCode: z.string().optional(),
    errorMessage: z.string().optional(),
    resources: z.array(z.object({ ARN: z.string().optional(), type: z.string().optional() })).optional(),
  }),
});
export type KeyEvent = z.infer<typeof keyEventSchema>;

export function isKeyEvent(event: unknown): event is KeyEvent {
  return keyEventSchema.safeParse(event).success;
}

const CONSEQUENCE: Record<KeyEvent['detail']['eventName'], string> = {
  ScheduleKeyDeletion: 'When the waiting period ends the key is deleted, and every backup encrypted with it becomes unreadable for good.',
  DisableKey: 'While the key is disabled nothing encrypted with it can be decrypted: restores and drills fail, and new backups cannot be written.',
  PutKeyPolicy: 'The key policy changed: it may no longer protect the key, or may lock lifeboat (or you) out of it.',
  DisableKeyRotation: 'Automatic rotation of the key was turned off.',
  DeleteImportedKeyMaterial: 'The key material was deleted: nothing encrypted with the key can be decrypted until the same material is imported again.',
  RevokeGrant: 'A grant on the key was revoked: the service that used it (RDS copying a snapshot, S3) may no longer use the key.',
};

const UNDO: Record<KeyEvent['detail']['eventName'], (key: string) => string> = {
  ScheduleKeyDeletion: (key) => `if nobody planned this, cancel it now: aws kms cancel-key-deletion --key-id ${key} && aws kms enable-key --key-id ${key}; then find out who could.`,
  DisableKey: (key) => `if nobody planned this, enable it now: aws kms enable-key --key-id ${key}; then find out who could.`,
  PutKeyPolicy: () => 'compare the new policy with the one lifeboat deployed (cdk diff shows it) and redeploy to restore it; find out who changed it.',
  DisableKeyRotation: (key) => `turn it back on: aws kms enable-key-rotation --key-id ${key}.`,
  DeleteImportedKeyMaterial: () => 'import the same key material again; find out who deleted it.',
  RevokeGrant: () => 'rerun the failed copy or backup (RDS and S3 create new grants as they need them); find out who revoked it.',
};

export function keyEventToAlert(event: KeyEvent): Omit<Alert, 'nextStep'> & { nextStep: string } {
  const d = event.detail;
  const key = d.resources?.find((r) => r.ARN?.includes(':key/'))?.ARN ?? String(d.requestParameters?.keyId ?? 'unknown key');
  const who = d.userIdentity?.arn ?? d.userIdentity?.type ?? 'an unknown principal';
  const denied = d.errorCode !== undefined;
  const when = d.requestParameters?.pendingWindowInDays !== undefined ? ` (waiting period ${String(d.requestParameters.pendingWindowInDays)} days)` : '';
  // Every deploy that changes a key policy calls PutKeyPolicy as the CloudFormation execution role: say so, never hide it.
  // The vault is deployed as its break-glass role, whose assumption was alerted just before.
  const byDeploy = /:assumed-role\/cdk-[a-z0-9]+-cfn-exec-role-/.test(who)
    ? ' The caller is the CDK CloudFormation execution role, so this is most likely a cdk deploy: check that a deploy ran then and that its change set changed this key.'
    : /:assumed-role\/[^/]+-lifeboat-vault-break-glass\//.test(who)
      ? ' The caller is the vault\'s break-glass role (a vault deploy runs as it): check the break-glass alert that came before this one and that the change was planned.'
      : '';
  const what = denied
    ? `${who} tried ${d.eventName} on ${key} (account ${event.account}, ${event.region}) at ${event.time} and was refused (${d.errorCode}${d.errorMessage ? `: ${d.errorMessage}` : ''}). Nothing changed, but someone with access tried to take away a key your backups depend on.`
    : `${who} called ${d.eventName}${when} on ${key} (account ${event.account}, ${event.region}) at ${event.time}. ${CONSEQUENCE[d.eventName]}${byDeploy}`;
  return {
    kind: 'key-at-risk',
    failure: denied ? `${d.eventName}Denied` : d.eventName,
    what,
    nextStep: denied
      ? `find out who ${who} is and why it tried${d.eventID ? ` (CloudTrail event ${d.eventID})` : ''}, and rotate that principal's credentials if it is not yours.`
      : UNDO[d.eventName](key),
    details: { key, principal: who, eventName: d.eventName, eventId: d.eventID, account: event.account, region: event.region, denied },
  };
}
