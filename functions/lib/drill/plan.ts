import { drillsSchema, type DrillsConfig, type LifeboatConfig, type PlanConfig } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { drillRequestSchema, type DrillRequest } from './types.ts';

/**
 * Turns the config into one drill request per database: the database's
 * overrides win over its plan's, which win over the `drills` defaults. A
 * database in several plans is held to the strictest RPO and RTO among them.
 */
export function drillRequestsFromConfig(config: LifeboatConfig, options: { databaseId?: string; backupId?: string } = {}): DrillRequest[] {
  const drills: DrillsConfig = config.drills ?? drillsSchema.parse({});
  const inPlans = (id: string) => config.plans.filter((p) => p.databases.includes(id));
  let ids = drills.databases.length > 0 ? drills.databases.map((d) => d.id) : [...new Set(config.plans.flatMap((p) => p.databases))];
  if (options.databaseId !== undefined) {
    if (!config.databases.some((d) => d.id === options.databaseId)) {
      throw new ConfigError('command line', [`--database: "${options.databaseId}" is not in the config (known: ${config.databases.map((d) => d.id).join(', ')})`]);
    }
    ids = [options.databaseId];
  }
  return ids.map((id) => {
    const database = config.databases.find((d) => d.id === id)!;
    const plans = inPlans(id);
    if (plans.length === 0) throw new ConfigError('config', [`drills: database "${id}" is in no plan, so it has no RPO/RTO targets to drill against`]);
    const strictest = [...plans].sort((a, b) => a.rpoMinutes - b.rpoMinutes)[0]!;
    const own = drills.databases.find((d) => d.id === id);
    const planOverride = drills.plans.find((p) => p.id === strictest.id);
    const backupKind = own?.backupKind ?? planOverride?.backupKind ?? (plans.some((p) => p.dump) ? 'dump' : 'snapshot');
    if (backupKind === 'snapshot' && !database.rds) {
      throw new ConfigError('config', [`drills: database "${id}" is drilled from snapshots but has no rds.instanceIdentifier or rds.clusterIdentifier`]);
    }
    return drillRequestSchema.parse({
      databaseId: id,
      planId: strictest.id,
      databaseName: database.connection.database,
      backupKind,
      selection: own?.selection ?? planOverride?.selection ?? drills.selection,
      from: own?.from ?? planOverride?.from ?? drills.from,
      backupId: options.backupId === 'latest' ? undefined : options.backupId,
      rds: database.rds,
      targets: targets(plans),
      assertions: own?.assertions ?? [],
      freshness: own?.freshness,
      amcheck: drills.amcheck,
      instance: {
        // A restored Aurora cluster gets an Aurora instance; everything else (dumps of Aurora too) an RDS PostgreSQL instance.
        instanceClass: backupKind === 'snapshot' && database.rds && 'clusterIdentifier' in database.rds ? drills.auroraInstanceClass : drills.instanceClass,
        subnetGroupName: drills.subnetGroupName,
        subnetIds: drills.subnetIds,
        securityGroupIds: drills.securityGroupIds,
      },
      restoreTimeoutSeconds: drills.restoreTimeoutMinutes * 60,
      restoreRunner: backupKind === 'dump' && database.dump.runner === 'fargate' ? 'fargate' : 'lambda',
      pollIntervalSeconds: drills.pollIntervalSeconds,
      expiresAfterMinutes: drills.expiresAfterMinutes,
    });
  });
}

function targets(plans: PlanConfig[]): DrillRequest['targets'] {
  return { rpoMinutes: Math.min(...plans.map((p) => p.rpoMinutes)), rtoMinutes: Math.min(...plans.map((p) => p.rtoMinutes)) };
}
