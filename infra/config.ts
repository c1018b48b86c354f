import { resolve } from 'node:path';
import { Size } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { loadConfigFile } from '../functions/lib/config/load.ts';
import { resolveSnapshotSettings, type LifeboatConfig, type SourceConfig } from '../functions/lib/config/schema.ts';
import { ConfigError } from '../functions/lib/errors.ts';
import { MAX_DEAD_MANS_SWITCH_RPO_MINUTES } from './constructs/database-alarms.ts';
import { drillLateMinutes, planFreshnessWindows } from './freshness.ts';

/** CDK context key naming the config file (`cdk synth -c config=path/to/lifeboat.config.json`). */
export const CONFIG_CONTEXT_KEY = 'config';
/** Config file used when the context names none; relative to the working directory (the repo root for the CLI). */
export const DEFAULT_CONFIG_PATH = 'lifeboat.config.example.json';

/** The config file the CDK context names, as an absolute path. */
export function configPathFromContext(scope: IConstruct, cwd: string = process.cwd()): string {
  const fromContext: unknown = scope.node.tryGetContext(CONFIG_CONTEXT_KEY);
  if (fromContext !== undefined && (typeof fromContext !== 'string' || fromContext.trim() === '')) {
    throw new ConfigError(`CDK context "${CONFIG_CONTEXT_KEY}"`, ['must be the path of a lifeboat config JSON file']);
  }
  return resolve(cwd, (fromContext as string | undefined) ?? DEFAULT_CONFIG_PATH);
}

/** CDK context key for the drill restore function's /tmp in MiB (`-c drillRestoreStorageMiB=4096`). */
export const DRILL_RESTORE_STORAGE_CONTEXT_KEY = 'drillRestoreStorageMiB';

/**
 * The drill restore function's /tmp from the CDK context: it must hold the
 * largest dump (stored size). Lambda allows 512 to 10,240 MiB.
 */
export function drillRestoreStorageFromContext(scope: IConstruct): Size | undefined {
  const raw: unknown = scope.node.tryGetContext(DRILL_RESTORE_STORAGE_CONTEXT_KEY);
  if (raw === undefined) return undefined;
  const mib = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof mib !== 'number' || !Number.isInteger(mib) || mib < 512 || mib > 10_240) {
    throw new ConfigError(`CDK context "${DRILL_RESTORE_STORAGE_CONTEXT_KEY}"`, ['must be a whole number of MiB from 512 to 10240 (at least the largest dump, stored size)']);
  }
  return Size.mebibytes(mib);
}

/** CDK context key choosing which side to synthesize (`-c deploy=vault`, `-c deploy=source`). */
export const DEPLOY_CONTEXT_KEY = 'deploy';
export const DEPLOY_TARGETS = ['all', 'source', 'vault'] as const;
export type DeployTarget = (typeof DEPLOY_TARGETS)[number];

/**
 * Which stacks the app synthesizes. The vault is deployed with vault-account
 * credentials only (`-c deploy=vault`), the source stacks with production's
 * (`-c deploy=source`); `all` (the default) is for synth, diff and review, and
 * is not how a deployment is meant to run (docs/deployment.md).
 */
export function deployTargetFromContext(scope: IConstruct): DeployTarget {
  const raw: unknown = scope.node.tryGetContext(DEPLOY_CONTEXT_KEY);
  if (raw === undefined) return 'all';
  if (typeof raw !== 'string' || !(DEPLOY_TARGETS as readonly string[]).includes(raw)) {
    throw new ConfigError(`CDK context "${DEPLOY_CONTEXT_KEY}"`, [`must be one of ${DEPLOY_TARGETS.join(', ')}: "vault" with vault-account credentials, "source" with production's`]);
  }
  return raw as DeployTarget;
}

/** Loads and validates the config file the CDK context names; throws ConfigError naming every bad field. */
export function loadConfigFromContext(scope: IConstruct, cwd?: string): LifeboatConfig {
  return loadConfigFile(configPathFromContext(scope, cwd));
}

/**
 * Checks what the schema allows but the source stack cannot deploy yet, naming
 * the field's path like any other config error.
 */
export function checkSourceStackSupport(config: LifeboatConfig, source: string): void {
  const issues: string[] = [];
  if (config.storage.bucketName !== undefined) {
    issues.push(
      'storage.bucketName: bringing your own bucket is not supported by the source stack yet; remove it and the stack creates an SSE-KMS, versioned, TLS-only bucket',
    );
  }
  const dumped = new Set(config.plans.filter((plan) => plan.dump).flatMap((plan) => plan.databases));
  config.databases.forEach((database, index) => {
    if (dumped.has(database.id) && database.connection.passwordEnv !== undefined) {
      issues.push(
        `databases[${index}].connection.secretArn: a deployed dump reads its credentials from Secrets Manager (or uses iamAuth); passwordEnv is for the CLI and local runs only`,
      );
    }
    if (database.dump.runner === 'fargate' && !config.source.network) {
      issues.push(
        `databases[${index}].dump.runner: a Fargate dump runs in private subnets; set source.network (vpcId, subnetIds, securityGroupIds) for source "${config.source.id}"`,
      );
    }
  });
  const maxWait = Math.ceil(resolveSnapshotSettings(config.snapshots).maxWaitMinutes);
  config.plans.forEach((plan, index) => {
    if ((plan.dump || plan.snapshot) && plan.backupAgeAlarm && plan.rpoMinutes > MAX_DEAD_MANS_SWITCH_RPO_MINUTES) {
      issues.push(
        `plans[${index}].rpoMinutes: the dead man's switch watches at most ${MAX_DEAD_MANS_SWITCH_RPO_MINUTES} minutes (CloudWatch evaluates an alarm over at most 7 days); ` +
          'lower the RPO, or set plans[].backupAgeAlarm to false and watch the backup age another way (docs/limits.md)',
      );
      return;
    }
    // Snapshot alarms wait the RPO plus the snapshot's (and its copies') waits.
    const widest = planFreshnessWindows(config, plan)
      .filter((w) => w.minutes > MAX_DEAD_MANS_SWITCH_RPO_MINUTES)
      .sort((a, b) => b.minutes - a.minutes)[0];
    if (widest) {
      issues.push(
        `plans[${index}].rpoMinutes: the ${widest.kind === 'snapshot' ? 'snapshot' : 'vault snapshot'} alarm waits ${widest.minutes} minutes (the ${plan.rpoMinutes} min RPO plus ${widest.waits} × snapshots.maxWaitMinutes (${maxWait})), ` +
          `but CloudWatch evaluates an alarm over at most ${MAX_DEAD_MANS_SWITCH_RPO_MINUTES} minutes (7 days): lower the RPO or snapshots.maxWaitMinutes, or set plans[].backupAgeAlarm to false and watch the backup age another way (docs/limits.md)`,
      );
    }
  });
  if (config.drills && drillLateMinutes(config.drills) === 'unknown') {
    issues.push(
      `drills.lateAfterHours: the drill schedule ${config.drills.schedule.cron} does not run every day, so lifeboat cannot tell when a drill is late: ` +
        'set lateAfterHours to the longest gap between two drills plus a drill run\'s duration (1 to 167 hours: CloudWatch evaluates at most 7 days, so a weekly schedule cannot be watched this way), or false to go without the drill staleness alarm (then a stopped drill schedule alarms nowhere)',
    );
  }
  // Deployed drills provision RDS throwaways the drill restore function (in the
  // runners' VPC) must reach: a VPC for the functions and the stack's drill
  // security group, and a subnet group the drill role may use.
  if (config.drills) {
    const vpc = config.source.network ? config.source.network.vpcId : 'the runners\' VPC';
    if (!config.source.network) {
      issues.push(
        `source.network: deployed drills restore into RDS instances in private subnets, which the drill functions reach only from inside the VPC: set source.network (vpcId, subnetIds, securityGroupIds) for source "${config.source.id}" ` +
          '(the stack then creates a drill security group admitting only the runners), or remove drills and drill with "lifeboat drill" on a workstation',
      );
    }
    if (!config.drills.subnetGroupName && !config.drills.subnetIds) {
      issues.push(
        "drills.subnetGroupName: deployed drills create RDS throwaways; without a subnet group RDS uses the account's default DB subnet group, which the drill role may not use and which may lie outside the runners' VPC: " +
          `set drills.subnetGroupName (an existing DB subnet group of isolated subnets in ${vpc}) or drills.subnetIds (two or more isolated subnets of ${vpc} in distinct availability zones)`,
      );
    }
  }
  // Principle 3: production adds to the vault and never overwrites, and the vault
  // bucket only takes writes with If-None-Match. Deployed drills read and report
  // in the source bucket; the vault is drilled from the vault account.
  const fromVault = [
    ...(config.drills?.from === 'vault' ? ['drills.from'] : []),
    ...(config.drills?.plans ?? []).flatMap((p, i) => (p.from === 'vault' ? [`drills.plans[${i}].from`] : [])),
    ...(config.drills?.databases ?? []).flatMap((d, i) => (d.from === 'vault' ? [`drills.databases[${i}].from`] : [])),
  ];
  for (const path of fromVault) {
    issues.push(
      `${path}: deployed drills run with production credentials, which may not read or report in the vault; use "source" (the default), and drill vault copies with "lifeboat drill" (LIFEBOAT_VAULT_BUCKET) using vault-account credentials`,
    );
  }
  if (issues.length > 0) throw new ConfigError(source, issues);
}

/** Every source of the config: the primary `source`, then `additionalSources`, in config order. */
export function sourcesOf(config: LifeboatConfig): SourceConfig[] {
  return [config.source, ...config.additionalSources];
}

/** The source a database lives in (its `source`, else the primary). */
export function sourceIdOf(config: LifeboatConfig, database: LifeboatConfig['databases'][number]): string {
  return database.source ?? config.source.id;
}

/**
 * The config as one source stack sees it: that source as `source`, its
 * databases only, the plans that hold any of them (with only those), and the
 * drill overrides that still apply. It is a valid config in its own right, so
 * the stack validates it like any other and every per-source check (snapshot
 * regions, networks) runs against the right region.
 */
export function configForSource(config: LifeboatConfig, sourceId: string): LifeboatConfig {
  const source = sourcesOf(config).find((s) => s.id === sourceId);
  if (!source) throw new ConfigError('the config', [`source "${sourceId}" is not defined; known: ${sourcesOf(config).map((s) => `"${s.id}"`).join(', ')}`]);
  const databases = config.databases.filter((db) => sourceIdOf(config, db) === sourceId);
  if (databases.length === 0) {
    throw new ConfigError('the config', [`${sourceId === config.source.id ? 'source' : 'additionalSources'}: source "${sourceId}" holds no database; set databases[].source or remove the source`]);
  }
  const ids = new Set(databases.map((db) => db.id));
  const plans = config.plans.map((plan) => ({ ...plan, databases: plan.databases.filter((id) => ids.has(id)) })).filter((plan) => plan.databases.length > 0);
  const planIds = new Set(plans.map((plan) => plan.id));
  const drills = config.drills && {
    ...config.drills,
    plans: config.drills.plans.filter((p) => planIds.has(p.id)),
    databases: config.drills.databases.filter((d) => ids.has(d.id)),
  };
  return { ...config, source, additionalSources: [], databases, plans, drills };
}
