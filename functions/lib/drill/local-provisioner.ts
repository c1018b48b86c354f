import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { DrillProvisioningError } from '../errors.ts';
import { processAlive } from '../processes.ts';
import { quoteIdent } from '../pg/inventory.ts';
import { startLocalPostgres, type LocalPostgresCluster } from '../pg/postgres-cluster.ts';
import { DRILL_TAG, drillResourceName, drillTagList, tagRecord, type DrillResource, type InstanceStatus, type Provisioner, type ProvisionRequest } from './provisioner.ts';
import type { InstanceRef, TeardownItem } from './types.ts';

export interface LocalProvisionerOptions {
  /** Where marker files of live drill clusters are kept. @default $LIFEBOAT_LOCAL_DRILL_DIR, else <tmpdir>/lifeboat-drills */
  registryDir?: string;
  /** Starts a cluster. @default startLocalPostgres */
  start?: () => Promise<LocalPostgresCluster>;
}

/** What a marker file records: enough for a janitor in another process to stop and remove the cluster. */
interface Marker {
  instanceId: string;
  drillId: string;
  host: string;
  port: number;
  dataDir: string;
  tags: Record<string, string>;
  createdAt: string;
  /** The process that runs the drill: when it is gone (SIGKILL, power loss), the next run removes the cluster. */
  ownerPid?: number;
}

const LOCAL_CLUSTER_DIR = /^lifeboat-pg-/;

/**
 * Stands in for RDS: each drill gets a fresh PostgreSQL cluster (initdb on a
 * free loopback port). Its initial superuser password stays in this process and
 * is replaced by the drill's own credentials before anything is restored. A
 * marker file per cluster, carrying the same tags as an RDS instance, lets the
 * janitor find and remove clusters whose drill died without tearing down.
 */
export class LocalPostgresProvisioner implements Provisioner {
  readonly provider = 'local' as const;
  readonly sslMode = 'disable' as const;
  readonly registryDir: string;
  readonly #start: () => Promise<LocalPostgresCluster>;
  readonly #clusters = new Map<string, LocalPostgresCluster>();

  constructor(options: LocalProvisionerOptions = {}) {
    this.registryDir = options.registryDir ?? process.env.LIFEBOAT_LOCAL_DRILL_DIR ?? join(tmpdir(), 'lifeboat-drills');
    this.#start = options.start ?? (() => startLocalPostgres());
  }

  #markerPath(instanceId: string): string {
    return join(this.registryDir, `${instanceId}.json`);
  }

  #readMarker(instanceId: string): Marker | undefined {
    try {
      return JSON.parse(readFileSync(this.#markerPath(instanceId), 'utf8')) as Marker;
    } catch {
      return undefined;
    }
  }

  async provision(request: ProvisionRequest): Promise<InstanceRef> {
    const instanceId = drillResourceName(request.tags.drillId);
    let cluster = this.#clusters.get(instanceId);
    if (!cluster) {
      cluster = await this.#start();
      this.#clusters.set(instanceId, cluster);
      const marker: Marker = {
        instanceId,
        drillId: request.tags.drillId,
        host: cluster.host,
        port: cluster.port,
        dataDir: cluster.dataDir,
        tags: tagRecord(drillTagList(request.tags)),
        createdAt: new Date().toISOString(),
        ownerPid: process.pid,
      };
      mkdirSync(this.registryDir, { recursive: true, mode: 0o700 });
      writeFileSync(this.#markerPath(instanceId), `${JSON.stringify(marker, null, 2)}\n`, { mode: 0o600 });
    }
    return {
      provider: 'local',
      drillId: request.tags.drillId,
      identifier: instanceId,
      from: request.backup.from,
      emulated: false,
      endpoint: { host: cluster.host, port: cluster.port },
      dataDir: cluster.dataDir,
      createdAt: new Date().toISOString(),
    };
  }

  async status(ref: InstanceRef): Promise<InstanceStatus> {
    const cluster = this.#clusters.get(ref.identifier);
    if (cluster) return { state: 'available', detail: 'available', endpoint: { host: cluster.host, port: cluster.port }, masterUsername: cluster.superuser };
    return { state: 'failed', detail: this.#readMarker(ref.identifier) ? 'started by another process' : 'gone' };
  }

  async applyPassword(ref: InstanceRef, password: string): Promise<void> {
    const cluster = this.#clusters.get(ref.identifier);
    if (!cluster) {
      throw new DrillProvisioningError(`Local drill cluster ${ref.identifier} is not running in this process.`, {
        nextStep: 'local drills must run in one process (runLocalDrill or `lifeboat drill`); rerun the drill.',
      });
    }
    const client = new pg.Client({ host: cluster.host, port: cluster.port, user: cluster.superuser, password: cluster.password, database: 'postgres' });
    client.on('error', () => undefined);
    await client.connect();
    try {
      // Utility statements take no bind parameters; the literal is escaped and never logged.
      await client.query(`ALTER ROLE ${quoteIdent(cluster.superuser)} PASSWORD ${client.escapeLiteral(password)}`);
    } finally {
      await client.end();
    }
  }

  async teardown(drillId: string): Promise<TeardownItem[]> {
    return [await this.#destroy(drillResourceName(drillId))];
  }

  async listDrillResources(): Promise<DrillResource[]> {
    let files: string[];
    try {
      files = readdirSync(this.registryDir).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
    return files.flatMap((f) => {
      const marker = this.#readMarker(f.slice(0, -'.json'.length));
      return marker && marker.tags[DRILL_TAG.drill] ? [{ provider: 'local' as const, type: 'local-cluster', id: marker.instanceId, tags: marker.tags }] : [];
    });
  }

  async deleteResource(resource: DrillResource): Promise<TeardownItem> {
    return this.#destroy(resource.id);
  }

  /**
   * Removes the clusters of drills whose process is gone (killed outright,
   * power loss): each holds a restored copy of production data. Clusters of
   * live processes, and markers without an owner, are left to the janitor.
   */
  async sweepAbandoned(): Promise<TeardownItem[]> {
    const out: TeardownItem[] = [];
    for (const resource of await this.listDrillResources()) {
      const owner = this.#readMarker(resource.id)?.ownerPid;
      if (owner === undefined || owner === process.pid || processAlive(owner)) continue;
      out.push(await this.#destroy(resource.id));
    }
    return out;
  }

  /** Stops and removes every cluster this process started (an interrupted drill). */
  async releaseAll(): Promise<TeardownItem[]> {
    const out: TeardownItem[] = [];
    for (const instanceId of [...this.#clusters.keys()]) out.push(await this.#destroy(instanceId));
    return out;
  }

  async #destroy(instanceId: string): Promise<TeardownItem> {
    const item = { type: 'local-cluster', id: instanceId };
    const cluster = this.#clusters.get(instanceId);
    const marker = this.#readMarker(instanceId);
    if (cluster) {
      this.#clusters.delete(instanceId);
      await cluster.stop();
    } else if (marker) {
      await stopOrphan(marker.dataDir);
    } else {
      return { ...item, outcome: 'absent' };
    }
    rmSync(this.#markerPath(instanceId), { force: true });
    return { ...item, outcome: 'deleted', detail: `port ${marker?.port ?? cluster?.port} closed, data directory removed` };
  }
}

/**
 * Stops a cluster this process no longer holds a handle to: SIGQUIT (immediate
 * shutdown) to the postmaster named in its pid file, but only if that process is
 * really a postgres serving this data directory, then removes the directory.
 */
async function stopOrphan(dataDir: string): Promise<void> {
  const root = dirname(dataDir);
  if (!LOCAL_CLUSTER_DIR.test(basename(root))) throw new Error(`refusing to remove ${root}: not a lifeboat local cluster directory`);
  const pid = readPostmasterPid(dataDir);
  if (pid !== undefined && isPostgresFor(pid, dataDir)) {
    process.kill(pid, 'SIGQUIT');
    // A local cleanup path only (janitor, tests): postgres exits within milliseconds.
    for (let i = 0; i < 200 && processAlive(pid); i++) await delay(25);
  }
  rmSync(root, { recursive: true, force: true });
}

function readPostmasterPid(dataDir: string): number | undefined {
  const file = join(dataDir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function isPostgresFor(pid: number, dataDir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(dataDir);
  } catch {
    return false;
  }
}

