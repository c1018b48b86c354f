import type { LifeboatConfigInput } from '../../functions/lib/config/schema.ts';
import type { SmokeFixture } from './fixture-stack.ts';
import { sampleAssertions } from './sample-data.ts';

/**
 * The lifeboat config the smoke test deploys: the least that exercises every
 * path a release must prove on AWS. One plan (`smoke`) with a dump, an RDS
 * snapshot, its re-encrypted copy in the vault region, and the vault copy of
 * both; a second plan (`broken`) whose only database has a wrong password, to
 * prove a failed dump alerts; a drill of the smoke database with assertions on
 * the known row counts; GFS retention that keeps only the newest backup; the
 * shortest Object Lock retention the schema allows (1 day); and an SQS queue
 * subscribed to the alert topic.
 */
export const SMOKE_DATABASE_ID = 'smoke';
export const BROKEN_DATABASE_ID = 'broken';
export const SMOKE_PLAN_ID = 'smoke';
export const BROKEN_PLAN_ID = 'broken';
/** The shortest Object Lock retention lifeboat's schema allows: what the vault keeps past the run. */
export const VAULT_RETENTION_DAYS = 1;
/**
 * Backup and drill schedules that never fire during a run (EventBridge Scheduler
 * accepts years up to 2199): the smoke test starts each execution itself.
 */
export const NEVER_CRON = 'cron(0 0 1 1 ? 2199)';
/** When lifeboat's retention schedule fires, in the plan's time zone (events/schedules.ts DEFAULT_RETENTION_CRON). */
const RETENTION_LOCAL_MINUTES = 5 * 60 + 30;

export interface SmokeConfigInput {
  readonly name: string;
  readonly source: { readonly account: string; readonly region: string };
  readonly vault: {
    readonly account: string;
    readonly region: string;
    /** Principals of the operator's vault credentials (see vaultAdminPatterns): may delete what the smoke made. */
    readonly adminPrincipalArns: readonly string[];
    /** The vault stack's RecoveryKeyArn, once deployed. */
    readonly recoveryKmsKeyArn?: string;
  };
  /** Customer managed key in the vault region (production account) for the snapshot copy. */
  readonly copyKeyArn: string;
  readonly fixture: SmokeFixture;
  readonly now: Date;
}

/**
 * A fixed-offset zone (`Etc/GMT±N`) in which it is about 17:30 at `now`, so the
 * retention schedule (05:30 in the plan's zone, not configurable) fires about
 * twelve hours after the run started and never prunes in the middle of it.
 */
export function retentionSafeTimeZone(now: Date): string {
  const utcMinutes = now.getUTCHours() * 60 + now.getUTCMinutes();
  const wantLocal = RETENTION_LOCAL_MINUTES + 12 * 60;
  // local = utc - N hours for Etc/GMT+N (POSIX sign), N in [-12, 12].
  let n = Math.round((utcMinutes - wantLocal) / 60);
  n = ((((n + 12) % 24) + 24) % 24) - 12;
  if (n === 0) return 'Etc/GMT';
  return n > 0 ? `Etc/GMT+${n}` : `Etc/GMT${n}`;
}

/**
 * The principal patterns the vault's bucket and key policies must exempt so the
 * operator's vault credentials can delete what the smoke test made there
 * (`vault.adminRoleArns`, matched with ArnLike against aws:PrincipalArn).
 * An assumed role's session ARN becomes its role ARN, with and without a path
 * (SSO roles live under `aws-reserved/...`).
 */
export function vaultAdminPatterns(callerArn: string): string[] {
  const assumed = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/.+$/.exec(callerArn);
  if (assumed) {
    const [, partition, account, role] = assumed;
    return [`arn:${partition}:iam::${account}:role/${role}`, `arn:${partition}:iam::${account}:role/*/${role}`];
  }
  if (/^arn:aws[a-z-]*:(iam|sts)::\d{12}:(user\/.+|root|federated-user\/.+)$/.test(callerArn)) return [callerArn];
  throw new Error(`cannot tell which principal the vault credentials are from their caller ARN ${callerArn}; use an IAM user, an assumed role or SSO`);
}

export function smokeConfig(input: SmokeConfigInput): LifeboatConfigInput {
  const { fixture } = input;
  const timezone = retentionSafeTimeZone(input.now);
  const keepNewestOnly = { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 0 };
  return {
    name: input.name,
    source: {
      account: input.source.account,
      region: input.source.region,
      // The fixture's NAT gateway is the way out: vault copies and the recovery key are in another region.
      network: { vpcId: fixture.vpcId, subnetIds: fixture.privateSubnetIds, securityGroupIds: [fixture.runnerSecurityGroupId], egress: 'user-managed' },
    },
    databases: [
      {
        id: SMOKE_DATABASE_ID,
        connection: { database: fixture.databaseName, secretArn: fixture.masterSecretArn },
        rds: { instanceIdentifier: fixture.instanceIdentifier },
      },
      {
        id: BROKEN_DATABASE_ID,
        connection: { database: fixture.databaseName, secretArn: fixture.wrongSecretArn },
      },
    ],
    plans: [
      {
        id: SMOKE_PLAN_ID,
        schedule: { cron: NEVER_CRON, timezone },
        databases: [SMOKE_DATABASE_ID],
        rpoMinutes: 1440,
        rtoMinutes: 120,
        dump: true,
        snapshot: true,
        maxConcurrency: 1,
        retention: { source: keepNewestOnly, copyRegion: keepNewestOnly },
      },
      {
        id: BROKEN_PLAN_ID,
        schedule: { cron: NEVER_CRON, timezone },
        databases: [BROKEN_DATABASE_ID],
        rpoMinutes: 1440,
        rtoMinutes: 120,
        // Its alarm would only add noise: this database never has a good backup.
        backupAgeAlarm: false,
        dump: true,
        snapshot: false,
        maxConcurrency: 1,
      },
    ],
    storage: { prefix: 'backups/' },
    alerts: { subscribers: [{ protocol: 'sqs', endpoint: fixture.alertQueueArn }] },
    vault: {
      account: input.vault.account,
      region: input.vault.region,
      retentionDays: VAULT_RETENTION_DAYS,
      adminRoleArns: [...input.vault.adminPrincipalArns],
      ...(input.vault.recoveryKmsKeyArn ? { recoveryKmsKeyArn: input.vault.recoveryKmsKeyArn } : {}),
    },
    snapshots: { copy: { region: input.vault.region, kmsKeyArn: input.copyKeyArn } },
    drills: {
      schedule: { cron: NEVER_CRON, timezone },
      selection: 'latest',
      from: 'source',
      instanceClass: 'db.t4g.micro',
      // The source stack adds its own drill security group (PostgreSQL from the runners only).
      subnetGroupName: fixture.subnetGroupName,
      restoreTimeoutMinutes: 60,
      pollIntervalSeconds: 30,
      expiresAfterMinutes: 240,
      maxConcurrency: 1,
      // The schedule never fires (the smoke test starts the drill), so no staleness alarm.
      lateAfterHours: false,
      databases: [{ id: SMOKE_DATABASE_ID, assertions: sampleAssertions() }],
    },
  };
}
