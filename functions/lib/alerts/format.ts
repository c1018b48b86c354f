import { redact } from '../redact.ts';

/**
 * One message format for every alert: a subject a human can triage from a phone
 * (what failed, on which database and plan), a body with what happened, a link
 * to the execution and the next step, and the same facts as JSON for machines.
 */
export type AlertKind = 'backup-failed' | 'backup-late' | 'drill-failed' | 'drill-teardown-incomplete' | 'objective-missed' | 'retention-failed' | 'quota-warning' | 'key-at-risk' | 'break-glass-used' | 'pitr-posture';

export interface Alert {
  kind: AlertKind;
  databaseId?: string;
  planId?: string;
  /** Short failure name, e.g. the error class. */
  failure: string;
  /** What happened, in a sentence or two. */
  what: string;
  nextStep: string;
  executionArn?: string;
  details?: Record<string, unknown>;
}

export interface FormattedAlert {
  subject: string;
  message: string;
  /** SNS message attributes, for subscription filter policies. */
  attributes: Record<string, string>;
}

const KIND_TITLES: Record<AlertKind, string> = {
  'backup-failed': 'Backup failed',
  'backup-late': 'Backup is late',
  'drill-failed': 'Restore drill failed',
  'drill-teardown-incomplete': 'Drill teardown incomplete',
  'objective-missed': 'RTO/RPO target missed',
  'retention-failed': 'Retention failed',
  'quota-warning': 'Quota nearly used up',
  'key-at-risk': 'Encryption key at risk',
  'break-glass-used': 'Vault break-glass role assumed',
  'pitr-posture': 'PITR posture drift',
};

/** Console link for a Step Functions execution ARN. */
export function executionUrl(executionArn: string): string | undefined {
  const region = executionArn.split(':')[3];
  if (!region || !executionArn.startsWith('arn:aws')) return undefined;
  return `https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/${executionArn}`;
}

/** SNS subjects must be ASCII, without newlines, at most 100 characters. */
function snsSubject(text: string): string {
  const ascii = text.replace(/[^\x20-\x7E]/g, '?').replace(/\s+/g, ' ').trim();
  return ascii.length <= 100 ? ascii : `${ascii.slice(0, 97)}...`;
}

export function formatAlert(alert: Alert): FormattedAlert {
  const scope = [alert.databaseId && `database ${alert.databaseId}`, alert.planId && `plan ${alert.planId}`].filter(Boolean).join(', ');
  const subject = snsSubject(`[lifeboat] ${KIND_TITLES[alert.kind]}: ${scope || 'deployment'}: ${alert.failure}`);
  const link = alert.executionArn ? executionUrl(alert.executionArn) : undefined;
  const lines = [
    `${KIND_TITLES[alert.kind]}${scope ? ` (${scope})` : ''}`,
    '',
    `What failed: ${alert.failure}`,
    alert.what,
    '',
    `Next step: ${alert.nextStep}`,
  ];
  if (alert.executionArn) lines.push('', `Execution: ${alert.executionArn}`);
  if (link) lines.push(`Console: ${link}`);
  const machine = {
    lifeboatAlert: 1,
    kind: alert.kind,
    databaseId: alert.databaseId,
    planId: alert.planId,
    failure: alert.failure,
    what: alert.what,
    nextStep: alert.nextStep,
    executionArn: alert.executionArn,
    details: alert.details ?? {},
  };
  lines.push('', '--- details (JSON) ---', JSON.stringify(machine, null, 2));
  const attributes: Record<string, string> = { kind: alert.kind };
  if (alert.databaseId) attributes.databaseId = alert.databaseId;
  if (alert.planId) attributes.planId = alert.planId;
  // Secrets never leave in an alert, whatever an upstream message contained.
  return { subject: redact(subject), message: redact(lines.join('\n')), attributes };
}

/** Step Functions Catch output: `{ Error, Cause }`, Cause being Lambda's JSON error for Lambda tasks. */
export function describeCaughtError(caught: { Error?: string; Cause?: string } | undefined): { failure: string; what: string; nextStep?: string } {
  const failure = caught?.Error ?? 'UnknownError';
  let message = caught?.Cause ?? '';
  try {
    const parsed = JSON.parse(message) as { errorMessage?: string; errorType?: string };
    if (parsed.errorMessage) message = parsed.errorMessage;
  } catch {
    // Cause is plain text for non-Lambda failures (timeouts, States.* errors).
  }
  const [what, nextStep] = message.split(/\s*Next step:\s*/);
  return { failure, what: what?.trim() || failure, nextStep: nextStep?.trim() };
}
