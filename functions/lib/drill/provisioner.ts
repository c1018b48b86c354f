import type { ResolvedConnection } from '../pg/connection.ts';
import type { DrillRequest, InstanceRef, ProviderName, SelectedBackup, TeardownItem } from './types.ts';

/**
 * Where a drill's throwaway database comes from. `RdsProvisioner` restores
 * snapshots and creates instances on RDS; `LocalPostgresProvisioner` starts a
 * fresh local cluster in its place (tests, the demo, `lifeboat drill` on a laptop).
 *
 * Every call returns promptly: waiting for an instance is the state machine's
 * job (a Wait state and `status` polls), never a sleeping function. Every
 * resource is named after the drill id and tagged, so teardown needs nothing but
 * the drill id and the janitor can find orphans by tag.
 */
export interface Provisioner {
  readonly provider: ProviderName;
  /** libpq sslmode for connections to this provider's instances. */
  readonly sslMode: ResolvedConnection['sslMode'];
  /** Starts creating the throwaway; returns before it is available. */
  provision(request: ProvisionRequest): Promise<InstanceRef>;
  /** One look at the instance. */
  status(ref: InstanceRef): Promise<InstanceStatus>;
  /** Sets a new master password (already stored in the drill's secret). */
  applyPassword(ref: InstanceRef, password: string): Promise<void>;
  /** Deletes what the drill created; idempotent, and works without `ref` (provisioning that failed midway). */
  teardown(drillId: string, from: InstanceRef['from'], ref?: InstanceRef): Promise<TeardownItem[]>;
  /** Every drill resource this provisioner can see, for the janitor. */
  listDrillResources(): Promise<DrillResource[]>;
  /** Deletes one resource the janitor found expired. */
  deleteResource(resource: DrillResource): Promise<TeardownItem>;
}

export interface DrillTags {
  drillId: string;
  databaseId: string;
  executionId: string;
  expiresAt: string;
}

export interface ProvisionRequest {
  tags: DrillTags;
  backup: SelectedBackup;
  instance: DrillRequest['instance'];
}

export interface InstanceStatus {
  state: 'pending' | 'available' | 'failed';
  /** The provider's own status word, e.g. `creating`, `available`, `incompatible-restore`. */
  detail: string;
  endpoint?: { host: string; port: number };
  masterUsername?: string;
}

export interface DrillResource {
  provider: ProviderName | 'secrets';
  type: string;
  id: string;
  tags: Record<string, string>;
  /** Where the janitor must look to delete it (RDS: `source` or `vault` region). */
  location?: string;
}

export const DRILL_TAG = {
  drill: 'lifeboat:drill',
  execution: 'lifeboat:execution',
  expiresAt: 'lifeboat:expires-at',
  database: 'lifeboat:database',
} as const;

/** Prefix of every drill resource name; the janitor never touches a name without it. */
export const DRILL_NAME_PREFIX = 'lifeboat-drill-';

/** `20261121T093600Z-1a2b3c` → `lifeboat-drill-20261121t093600z-1a2b3c` (a valid RDS identifier, ≤ 63). */
export function drillResourceName(drillId: string): string {
  const safe = drillId.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/-{2,}/g, '-').replace(/-$/, '');
  return `${DRILL_NAME_PREFIX}${safe}`.slice(0, 63).replace(/-$/, '');
}

export function drillTagList(tags: DrillTags): { Key: string; Value: string }[] {
  return [
    { Key: DRILL_TAG.drill, Value: tags.drillId },
    // RDS and Secrets Manager tag values are at most 256 characters.
    { Key: DRILL_TAG.execution, Value: tags.executionId.slice(0, 256) },
    { Key: DRILL_TAG.expiresAt, Value: tags.expiresAt },
    { Key: DRILL_TAG.database, Value: tags.databaseId },
  ];
}

export function tagRecord(list: readonly { Key?: string; Value?: string }[] | undefined): Record<string, string> {
  return Object.fromEntries((list ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? '']));
}

/** The expiry a resource carries, or undefined when it has none or it does not parse. */
export function expiryOf(tags: Record<string, string>): Date | undefined {
  const raw = tags[DRILL_TAG.expiresAt];
  if (!raw) return undefined;
  const at = new Date(raw);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

/** AWS SDK error name, for classifying "not found" and "busy" answers. */
export function errorName(error: unknown): string {
  return (error as { name?: string })?.name ?? '';
}
