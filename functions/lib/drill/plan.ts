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
    // A plan with PITR drills drills its databases to a moment, unless an override names another kind.
    const pitrPlan = [...plans].filter((p) => p.pitr).sort((a, b) => Number(!!b.pitr?.drill) - Number(!!a.pitr?.drill) || a.rpoMinutes - b.rpoMinutes)[0];
    const backupKind = own?.backupKind ?? planOverride?.backupKind ?? (pitrPlan?.pitr?.drill ? 'pitr' : plans.some((p) => p.dump) ? 'dump' : 'snapshot');
    if (backupKind !== 'dump' && !database.rds) {
      throw new ConfigError('config', [`drills: database "${id}" is drilled from ${backupKind === 'pitr' ? 'its point-in-time window' : 'snapshots'} but has no rds.instanceIdentifier or rds.clusterIdentifier`]);
    }
    if (backupKind === 'pitr' && !pitrPlan?.pitr) {
      throw new ConfigError('config', [`drills: database "${id}" is drilled to a point in time but none of its plans has a pitr section`]);
    }
    const pitr =
      backupKind === 'pitr' && pitrPlan?.pitr
        ? {
            moment: pitrPlan.pitr.drill?.moment ?? (plans.some((p) => p.dump) ? ('dump' as const) : ('latest' as const)),
            from: pitrPlan.pitr.drill?.from ?? ('source' as const),
            copyRegion: config.snapshots?.copy?.region,
            inFlightRows: pitrPlan.pitr.drill?.inFlightRows ?? 10,
            excludeSchemas: database.dump.excludeSchemas,
          }
        : undefined;
    const isCluster = !!database.rds && 'clusterIdentifier' in database.rds;
    return drillRequestSchema.parse({
      databaseId: id,
      planId: strictest.id,
      databaseName: database.connection.database,
      backupKind,
      ...(pitr ? { pitr } : {}),
      selection: own?.selection ?? planOverride?.selection ?? drills.selection,
      from: own?.from ?? planOverride?.from ?? drills.from,
      backupId: options.backupId === 'latest' ? undefined : options.backupId,
      rds: database.rds,
      // A PITR drill is held to the plan's PITR RPO (the newest restorable moment's lag), not the dumps'.
      targets: pitr && pitrPlan?.pitr ? { rpoMinutes: pitrPlan.pitr.maxLagMinutes, rtoMinutes: targets(plans).rtoMinutes } : targets(plans),
      assertions: own?.assertions ?? [],
      freshness: own?.freshness,
      amcheck: drills.amcheck,
      instance: {
        // A restored Aurora cluster gets an Aurora instance; everything else (dumps of Aurora too) an RDS PostgreSQL instance.
        instanceClass: backupKind !== 'dump' && isCluster ? drills.auroraInstanceClass : drills.instanceClass,
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
