import { z } from 'zod';
import { drillRequestsFromConfig } from '../drill/plan.ts';
import type { DrillRequest } from '../drill/types.ts';
import { UnknownTargetError } from '../errors.ts';
import type { DeploymentConfig } from './deployment.ts';

/**
 * What a workflow run covers, resolved from the deployed config: the execution
 * input names a plan (and may narrow it to some of its databases), the config
 * says what that means. Each database becomes one child execution, so the
 * resolution carries ids only (about 40 bytes a database).
 */
const ids = z.array(z.string().min(1)).min(1).refine((a) => new Set(a).size === a.length, 'must not repeat a database');

export const backupRunInputSchema = z
  .object({
    planId: z.string().min(1),
    /** Back up only these databases of the plan. @default every database of the plan */
    databaseIds: ids.optional(),
  })
  .strict();
export type BackupRunInput = z.input<typeof backupRunInputSchema>;

export interface BackupPlanRun {
  readonly planId: string;
  readonly maxConcurrency: number;
  readonly dump: boolean;
  readonly snapshot: boolean;
  /** The plan has a pitr section: the run checks its databases' point-in-time recovery posture. */
  readonly pitr: boolean;
  readonly databases: ReadonlyArray<{
    readonly id: string;
    readonly dumpRunner: 'lambda' | 'fargate';
    /**
     * Where the dump's vault copy runs: on Fargate when the dump does and a
     * vault is configured (a dump that outlasts Lambda is too big to stream
     * into the vault, read back and verify within 15 minutes), else the function.
     */
    readonly vaultCopyRunner: 'lambda' | 'fargate';
  }>;
}

/** A dump on Fargate is copied to the vault on Fargate too; without a vault the function answers "skipped". */
export function vaultCopyRunnerOf(deployed: DeploymentConfig, databaseId: string): 'lambda' | 'fargate' {
  return deployed.config.vault && deployed.database(databaseId).dump.runner === 'fargate' ? 'fargate' : 'lambda';
}

export function resolveBackupRun(deployed: DeploymentConfig, input: z.infer<typeof backupRunInputSchema>): BackupPlanRun {
  const plan = deployed.plan(input.planId);
  const wanted = input.databaseIds ?? plan.databases;
  const outside = wanted.filter((id) => !plan.databases.includes(id));
  if (outside.length > 0) {
    throw new UnknownTargetError(`Plan "${plan.id}" has no database ${outside.map((id) => `"${id}"`).join(', ')} (its databases: ${plan.databases.join(', ')}).`, {
      nextStep: 'name databases of that plan, or leave databaseIds out to back up the whole plan.',
    });
  }
  return {
    planId: plan.id,
    maxConcurrency: plan.maxConcurrency,
    dump: plan.dump,
    snapshot: plan.snapshot,
    pitr: plan.pitr !== undefined,
    databases: wanted.map((id) => ({ id, dumpRunner: deployed.database(id).dump.runner, vaultCopyRunner: vaultCopyRunnerOf(deployed, id) })),
  };
}

export const drillRunInputSchema = z
  .object({
    /** Drill only these databases. @default every database the drills section covers */
    databaseIds: ids.optional(),
    /** A specific backup (one database only). @default the drills' selection */
    backupId: z.string().min(1).optional(),
  })
  .strict()
  .refine((i) => i.backupId === undefined || i.databaseIds?.length === 1, { message: 'a backupId needs exactly one database in databaseIds', path: ['backupId'] });
export type DrillRunInput = z.input<typeof drillRunInputSchema>;

export interface DrillRun {
  readonly maxConcurrency: number;
  readonly databases: ReadonlyArray<{ readonly id: string; readonly backupId?: string }>;
}

export function resolveDrillRun(deployed: DeploymentConfig, input: z.infer<typeof drillRunInputSchema>): DrillRun {
  const config = deployed.config;
  const all = drillRequestsFromConfig(config).map((r) => r.databaseId);
  const wanted = input.databaseIds ?? all;
  for (const id of wanted) deployed.database(id);
  const outside = wanted.filter((id) => !all.includes(id));
  if (outside.length > 0) {
    throw new UnknownTargetError(`The drills section does not cover ${outside.map((id) => `"${id}"`).join(', ')} (it drills: ${all.join(', ') || 'nothing'}).`, {
      nextStep: 'add the database to drills.databases (or to a plan, when drills.databases is empty) and redeploy.',
    });
  }
  return {
    maxConcurrency: config.drills?.maxConcurrency ?? 2,
    databases: wanted.map((id) => ({ id, ...(input.backupId ? { backupId: input.backupId } : {}) })),
  };
}

/** One database of a drill run, as the drill run's Map hands it to its child execution. */
export const drillRequestInputSchema = z
  .object({
    id: z.string().min(1),
    backupId: z.string().min(1).optional(),
  })
  .strict();

/**
 * The full drill request of one database (backup kind, selection, targets,
 * throwaway instance settings), built in the child execution from the deployed
 * config, so the drill run itself only carries ids.
 */
export function resolveDrillRequest(deployed: DeploymentConfig, input: z.infer<typeof drillRequestInputSchema>): DrillRequest {
  // The same checks as the run: the database exists and the drills section covers it.
  resolveDrillRun(deployed, { databaseIds: [input.id], ...(input.backupId ? { backupId: input.backupId } : {}) });
  return drillRequestsFromConfig(deployed.config, { databaseId: input.id, backupId: input.backupId })[0]!;
}
