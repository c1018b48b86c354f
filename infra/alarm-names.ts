/**
 * Alarm names. Every lifeboat alarm whose name starts with
 * `routedAlarmPrefix(deployment)` is routed by EventBridge to the alert
 * function, which sends it in the one alert format (functions/alert/alarm-event.ts).
 * The few alarms about the alert path itself (`pipelineAlarmName`) cannot go
 * through it, so they publish straight to SNS and must not share the prefix.
 *
 * Deployment names are `[a-z0-9-]`, so the `/` after the name keeps deployment
 * `acme` from routing the alarms of deployment `acme-eu`.
 */
export function routedAlarmPrefix(deployment: string): string {
  return `lifeboat/${deployment}/`;
}

/** `lifeboat/acme/backup-late/orders`: routed to the alert function. */
export function routedAlarmName(deployment: string, ...parts: string[]): string {
  return `${routedAlarmPrefix(deployment)}${parts.join('/')}`;
}

/** `lifeboat-pipeline/acme/alert-errors`: published straight to SNS (CloudWatch's own format). */
export function pipelineAlarmName(deployment: string, what: string): string {
  return `lifeboat-pipeline/${deployment}/${what}`;
}
