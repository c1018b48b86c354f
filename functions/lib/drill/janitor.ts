import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { deleteDrillSecret, listDrillSecrets } from './credentials.ts';
import { expiryOf, type DrillResource, type Provisioner } from './provisioner.ts';
import type { TeardownItem } from './types.ts';

/**
 * The janitor: deletes drill resources whose `lifeboat:expires-at` tag has
 * passed. A drill tears down after itself on every path; the janitor is for the
 * cases where that could not run (a killed execution, an AWS outage, a bug). It
 * only ever touches resources named `lifeboat-drill-*` that carry the drill tag,
 * and keeps anything whose expiry is missing or unreadable.
 */
/** What the janitor needs of a provisioner. */
export type JanitorProvisioner = Pick<Provisioner, 'provider' | 'listDrillResources' | 'deleteResource'>;

export interface JanitorDeps {
  provisioners: readonly JanitorProvisioner[];
  secrets?: SecretsManagerClient;
  now?: () => Date;
}

export interface SweepItem extends TeardownItem {
  provider: string;
  expiresAt?: string;
}

export interface SweepResult {
  checkedAt: string;
  deleted: SweepItem[];
  pending: SweepItem[];
  kept: SweepItem[];
  failed: SweepItem[];
  failedCount: number;
  summary: string;
}

/** Instances go first: clusters, subnet groups and secrets are only deletable once their instances are gone. */
const ORDER: Record<string, number> = { 'rds-instance': 0, 'local-cluster': 0, 'rds-cluster': 1, 'rds-snapshot': 1, secret: 2, 'rds-subnet-group': 3 };

export async function sweepExpiredDrillResources(deps: JanitorDeps): Promise<SweepResult> {
  const now = deps.now?.() ?? new Date();
  const result: SweepResult = { checkedAt: now.toISOString(), deleted: [], pending: [], kept: [], failed: [], failedCount: 0, summary: '' };
  const found: { resource: DrillResource; remove: () => Promise<TeardownItem> }[] = [];
  for (const p of deps.provisioners) {
    try {
      for (const r of await p.listDrillResources()) found.push({ resource: r, remove: () => p.deleteResource(r) });
    } catch (error) {
      result.failed.push({ provider: p.provider, type: 'listing', id: p.provider, outcome: 'failed', detail: `${(error as Error).name}: ${(error as Error).message}` });
    }
  }
  if (deps.secrets) {
    const secrets = deps.secrets;
    for (const r of await listDrillSecrets(secrets)) found.push({ resource: r, remove: () => deleteDrillSecret(secrets, r.id) });
  }
  found.sort((a, b) => (ORDER[a.resource.type] ?? 9) - (ORDER[b.resource.type] ?? 9));
  for (const { resource, remove } of found) {
    const expiry = expiryOf(resource.tags);
    const base = { provider: resource.provider, type: resource.type, id: resource.id, expiresAt: expiry?.toISOString() };
    if (!expiry) {
      result.kept.push({ ...base, outcome: 'kept', detail: 'no valid lifeboat:expires-at tag' });
      continue;
    }
    if (expiry.getTime() > now.getTime()) {
      result.kept.push({ ...base, outcome: 'kept', detail: 'not expired' });
      continue;
    }
    try {
      const item = await remove();
      const entry = { ...base, outcome: item.outcome, detail: item.detail };
      if (item.outcome === 'pending') result.pending.push(entry);
      else if (item.outcome === 'kept') result.kept.push(entry);
      else result.deleted.push(entry);
    } catch (error) {
      // What failed, without the error's own next step (a provisioning hint): the summary gives the janitor's.
      const what = (error as Error).message.split(/\s*Next step:/)[0]!.replace(/\.$/, '');
      result.failed.push({ ...base, outcome: 'failed', detail: `${(error as Error).name}: ${what}` });
    }
  }
  result.failedCount = result.failed.length;
  result.summary =
    `Janitor: ${result.deleted.length} expired drill resources deleted, ${result.pending.length} still deleting, ${result.kept.length} kept, ${result.failed.length} failed` +
    (result.failed.length ? `: ${result.failed.map((f) => `${f.type} ${f.id}: ${f.detail}`).join('; ')}. Next step: check the janitor role's permissions and delete these by hand if needed.` : '.');
  return result;
}
