import { randomBytes } from 'node:crypto';
import {
  CreateDBInstanceCommand,
  CreateDBSubnetGroupCommand,
  DeleteDBClusterCommand,
  DeleteDBInstanceCommand,
  DeleteDBSnapshotCommand,
  DeleteDBSubnetGroupCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  DescribeDBSubnetGroupsCommand,
  ListTagsForResourceCommand,
  ModifyDBClusterCommand,
  ModifyDBInstanceCommand,
  RestoreDBClusterFromSnapshotCommand,
  RestoreDBClusterToPointInTimeCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  RestoreDBInstanceToPointInTimeCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { DrillProvisioningError, InstanceNotReadyError, ThrottledError } from '../errors.ts';
import {
  DRILL_NAME_PREFIX,
  DRILL_TAG,
  drillResourceName,
  drillTagList,
  errorName,
  tagRecord,
  type DrillResource,
  type InstanceStatus,
  type Provisioner,
  type ProvisionRequest,
} from './provisioner.ts';
import type { DrillRequest, InstanceRef, TeardownItem } from './types.ts';

export interface RdsProvisionerOptions {
  /** RDS clients for the source region and, for vault drills, the vault's; for PITR drills from replicated automated backups, the copy region's. */
  clients: { source: RDSClient; vault?: RDSClient; copy?: RDSClient };
  /**
   * The API is emulated (moto): instances hold no data, so the drill reports its
   * data checks as not performed instead of connecting. Never set in AWS.
   */
  emulated?: boolean;
  /** Master user of instances created for dump drills. @default 'lifeboat_drill' */
  masterUsername?: string;
}

/** Instance statuses from which RDS does not recover on its own. */
export const RDS_FAILED_STATES: ReadonlySet<string> = new Set([
  'failed',
  'incompatible-restore',
  'incompatible-parameters',
  'incompatible-network',
  'incompatible-option-group',
  'inaccessible-encryption-credentials',
  'inaccessible-encryption-credentials-recoverable',
  'restore-error',
  'storage-full',
]);
export const NOT_FOUND = /NotFound/;
export const BUSY = /InvalidDB(Instance|Cluster|SubnetGroup)State|InvalidDBSubnetGroupStateFault|DBSubnetGroupInUse/;
export const THROTTLED = /Throttl|RequestLimitExceeded|TooManyRequests/;

/** Cluster instances are named after the cluster, with this suffix. */
const CLUSTER_INSTANCE_SUFFIX = '-1';

/**
 * Throwaway instances on RDS: RestoreDBInstanceFromDBSnapshot for instance
 * snapshots, RestoreDBClusterFromSnapshot plus one CreateDBInstance for Aurora,
 * and CreateDBInstance for dump drills (pg_restore then fills it). Always a small
 * class in isolated subnets, not publicly accessible, no deletion protection, no
 * Multi-AZ, backup retention 0 where the engine allows it, and the drill's tags.
 */
export class RdsProvisioner implements Provisioner {
  readonly provider = 'rds' as const;
  readonly sslMode = 'verify-full' as const;
  readonly emulated: boolean;
  readonly #clients: RdsProvisionerOptions['clients'];
  readonly #masterUsername: string;

  constructor(options: RdsProvisionerOptions) {
    this.#clients = options.clients;
    this.emulated = options.emulated ?? false;
    this.#masterUsername = options.masterUsername ?? 'lifeboat_drill';
  }

  #client(from: string | undefined): RDSClient {
    const client = from === 'vault' ? this.#clients.vault : from === 'copy-region' || from === 'copy' ? this.#clients.copy : this.#clients.source;
    if (!client) throw new DrillProvisioningError(`No RDS client for the ${from} location.`, { nextStep: from === 'vault' ? 'set VAULT_REGION for drills from the vault.' : 'set COPY_REGION for PITR drills from the copy region.' });
    return client;
  }

  async #send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      fail(what, error);
    }
  }

  async provision(request: ProvisionRequest): Promise<InstanceRef> {
    const { backup, instance, tags } = request;
    const from = backup.kind === 'dump' ? 'source' : backup.from;
    const rds = this.#client(from);
    const name = drillResourceName(tags.drillId);
    const Tags = drillTagList(tags);
    let subnetGroup = instance.subnetGroupName;
    let createdSubnetGroup: string | undefined;
    if (instance.subnetIds?.length) {
      await this.#idempotent(`CreateDBSubnetGroup ${name}`, () =>
        rds.send(new CreateDBSubnetGroupCommand({ DBSubnetGroupName: name, DBSubnetGroupDescription: `lifeboat drill ${tags.drillId} (isolated)`, SubnetIds: instance.subnetIds, Tags })),
      );
      subnetGroup = createdSubnetGroup = name;
    }
    const placement = {
      DBSubnetGroupName: subnetGroup,
      VpcSecurityGroupIds: instance.securityGroupIds.length ? instance.securityGroupIds : undefined,
      DeletionProtection: false,
      Tags,
    };
    const isolated = { ...placement, DBInstanceClass: instance.instanceClass, PubliclyAccessible: false, MultiAZ: false, AutoMinorVersionUpgrade: false, CopyTagsToSnapshot: false };
    let identifier = name;
    let clusterIdentifier: string | undefined;
    // An own-account snapshot by identifier; a vault snapshot (possibly shared from another account) needs its ARN.
    const snapshotRef = backup.kind === 'snapshot' ? (backup.from === 'vault' ? backup.snapshotArn : backup.backupId) : undefined;
    if (backup.kind === 'pitr' && backup.isCluster) {
      // Aurora: the cluster to the moment, then one instance in it.
      clusterIdentifier = name;
      identifier = `${name}${CLUSTER_INSTANCE_SUFFIX}`;
      // Always an explicit moment (the selected newest one for `latest`): the report then says exactly what was restored.
      const when = { RestoreToTime: new Date(backup.consistentAt) };
      await this.#idempotent(`RestoreDBClusterToPointInTime ${name} from ${backup.sourceIdentifier}`, () =>
        rds.send(new RestoreDBClusterToPointInTimeCommand({ DBClusterIdentifier: name, SourceDBClusterIdentifier: backup.sourceIdentifier, RestoreType: 'full-copy', ...when, ...placement })),
      );
      await this.#idempotent(`CreateDBInstance ${identifier}`, () =>
        rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: identifier, DBClusterIdentifier: name, Engine: backup.engine, DBInstanceClass: instance.instanceClass, PubliclyAccessible: false, Tags })),
      );
    } else if (backup.kind === 'pitr') {
      // The source's own automated backups by identifier, or their replica in the copy region by ARN (the source region may be gone).
      const source = backup.automatedBackupsArn ? { SourceDBInstanceAutomatedBackupsArn: backup.automatedBackupsArn } : { SourceDBInstanceIdentifier: backup.sourceIdentifier };
      const when = { RestoreTime: new Date(backup.consistentAt) };
      await this.#idempotent(`RestoreDBInstanceToPointInTime ${name} from ${backup.sourceIdentifier}`, () =>
        rds.send(new RestoreDBInstanceToPointInTimeCommand({ TargetDBInstanceIdentifier: name, ...source, ...when, BackupRetentionPeriod: 0, ...isolated })),
      );
    } else if (backup.kind === 'snapshot' && backup.isCluster) {
      clusterIdentifier = name;
      identifier = `${name}${CLUSTER_INSTANCE_SUFFIX}`;
      // Aurora keeps at least one day of backups; BackupRetentionPeriod 0 does not exist for clusters.
      await this.#idempotent(`RestoreDBClusterFromSnapshot ${name}`, () =>
        rds.send(new RestoreDBClusterFromSnapshotCommand({ DBClusterIdentifier: name, SnapshotIdentifier: snapshotRef, Engine: backup.engine, ...placement })),
      );
      await this.#idempotent(`CreateDBInstance ${identifier}`, () =>
        rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: identifier, DBClusterIdentifier: name, Engine: backup.engine, DBInstanceClass: instance.instanceClass, PubliclyAccessible: false, Tags })),
      );
    } else if (backup.kind === 'snapshot') {
      await this.#idempotent(`RestoreDBInstanceFromDBSnapshot ${name}`, () =>
        rds.send(new RestoreDBInstanceFromDBSnapshotCommand({ DBInstanceIdentifier: name, DBSnapshotIdentifier: snapshotRef, BackupRetentionPeriod: 0, ...isolated })),
      );
    } else if (backup.kind === 'dump') {
      const gib = Math.max(20, Math.ceil((backup.sizeBytes * 2) / 1024 ** 3));
      await this.#idempotent(`CreateDBInstance ${name}`, () =>
        rds.send(
          new CreateDBInstanceCommand({
            DBInstanceIdentifier: name,
            Engine: 'postgres',
            EngineVersion: String(backup.serverMajor),
            AllocatedStorage: gib,
            StorageType: 'gp3',
            StorageEncrypted: true,
            MasterUsername: this.#masterUsername,
            // Discarded at once: the drill's own password is set once the instance is up.
            MasterUserPassword: randomBytes(24).toString('base64url'),
            BackupRetentionPeriod: 0,
            ...isolated,
          }),
        ),
      );
    }
    const source = backup.kind === 'pitr' && backup.from === 'source' ? { source: { identifier: backup.sourceIdentifier, cluster: backup.isCluster } } : {};
    return { provider: 'rds', drillId: tags.drillId, identifier, clusterIdentifier, createdSubnetGroup, from, emulated: this.emulated, createdAt: new Date().toISOString(), ...source };
  }

  /** Create calls retried after a throttle may find their resource already there. */
  async #idempotent(what: string, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (error) {
      if (/AlreadyExists/.test(errorName(error))) return;
      fail(what, error);
    }
  }

  async status(ref: InstanceRef): Promise<InstanceStatus> {
    const rds = this.#client(ref.from);
    let found;
    try {
      found = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: ref.identifier }))).DBInstances?.[0];
    } catch (error) {
      if (NOT_FOUND.test(errorName(error))) return { state: 'pending', detail: 'not visible yet' };
      fail(`DescribeDBInstances ${ref.identifier}`, error);
    }
    const word = found?.DBInstanceStatus ?? 'unknown';
    const endpoint = found?.Endpoint?.Address && found.Endpoint.Port ? { host: found.Endpoint.Address, port: found.Endpoint.Port } : undefined;
    if (RDS_FAILED_STATES.has(word)) return { state: 'failed', detail: word };
    return { state: word === 'available' && endpoint ? 'available' : 'pending', detail: word, endpoint, masterUsername: found?.MasterUsername };
  }

  /**
   * A throwaway whose master password Secrets Manager manages (restored from a
   * source that has RDS manage it) takes a password only with the management
   * turned off in the same call; RDS then deletes the throwaway's own managed
   * secret (never the source's: each instance or cluster has its own).
   */
  async applyPassword(ref: InstanceRef, password: string): Promise<void> {
    const rds = this.#client(ref.from);
    const secretOf = async (id: string, cluster: boolean) =>
      cluster
        ? (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: id }))).DBClusters?.[0]?.MasterUserSecret?.SecretArn
        : (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances?.[0]?.MasterUserSecret?.SecretArn;
    const own = await this.#send(`Describe ${ref.clusterIdentifier ?? ref.identifier}`, () => secretOf(ref.clusterIdentifier ?? ref.identifier, ref.clusterIdentifier !== undefined));
    if (own !== undefined && ref.source) {
      // Turning management off deletes the secret RDS reports: never production's.
      const production = await this.#send(`Describe ${ref.source.identifier}`, () => secretOf(ref.source!.identifier, ref.source!.cluster));
      if (production === own) {
        throw new DrillProvisioningError(`Throwaway ${ref.clusterIdentifier ?? ref.identifier} reports the master secret of ${ref.source.identifier} (${own}): setting its password would make RDS delete production's secret. Refused.`, {
          nextStep: 'open an AWS support case with both identifiers; set the throwaway\'s password by hand only after the secret is its own. The janitor deletes the throwaway.',
        });
      }
    }
    const managed = own !== undefined;
    if (ref.clusterIdentifier) {
      await this.#send(`ModifyDBCluster ${ref.clusterIdentifier}`, () =>
        rds.send(new ModifyDBClusterCommand({ DBClusterIdentifier: ref.clusterIdentifier, MasterUserPassword: password, ApplyImmediately: true, ...(managed ? { ManageMasterUserPassword: false } : {}) })),
      );
    } else {
      await this.#send(`ModifyDBInstance ${ref.identifier}`, () =>
        rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: ref.identifier, MasterUserPassword: password, ApplyImmediately: true, ...(managed ? { ManageMasterUserPassword: false } : {}) })),
      );
    }
  }

  async teardown(drillId: string, from: DrillRequest['from'], ref?: InstanceRef): Promise<TeardownItem[]> {
    const rds = this.#client(ref?.from ?? from);
    const name = drillResourceName(drillId);
    const items: TeardownItem[] = [];
    // A PITR drill from the copy region makes one instance there and nothing else (and may delete nothing else there).
    const copyRegion = (ref?.from ?? from) === 'copy-region';
    // Without a ref (provisioning failed midway) try every name the drill could have used.
    const instances = ref ? [ref.identifier] : copyRegion ? [name] : [name, `${name}${CLUSTER_INSTANCE_SUFFIX}`];
    for (const id of instances) items.push(await this.#deleteInstance(rds, id));
    if (!copyRegion && (!ref || ref.clusterIdentifier)) items.push(await this.#deleteCluster(rds, ref?.clusterIdentifier ?? name));
    if (!copyRegion && (!ref || ref.createdSubnetGroup)) items.push(await this.#deleteSubnetGroup(rds, ref?.createdSubnetGroup ?? name));
    return items;
  }

  async #deleteInstance(rds: RDSClient, id: string): Promise<TeardownItem> {
    const item = { type: 'rds-instance', id };
    try {
      const described = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances?.[0];
      if (described?.DeletionProtection) return { ...item, outcome: 'kept', detail: 'deletion protection is on: not a drill instance lifeboat created' };
      if (described?.DBInstanceStatus === 'deleting') return { ...item, outcome: 'pending', detail: 'deleting' };
      await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true, DeleteAutomatedBackups: true }));
    } catch (error) {
      if (NOT_FOUND.test(errorName(error))) return { ...item, outcome: 'absent' };
      if (BUSY.test(errorName(error))) return { ...item, outcome: 'pending', detail: errorName(error) };
      fail(`DeleteDBInstance ${id}`, error);
    }
    return (await this.#exists(rds, id)) ? { ...item, outcome: 'pending', detail: 'deleting' } : { ...item, outcome: 'deleted' };
  }

  async #exists(rds: RDSClient, id: string): Promise<boolean> {
    try {
      await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
      return true;
    } catch (error) {
      if (NOT_FOUND.test(errorName(error))) return false;
      throw error;
    }
  }

  async #deleteCluster(rds: RDSClient, id: string): Promise<TeardownItem> {
    const item = { type: 'rds-cluster', id };
    try {
      await rds.send(new DeleteDBClusterCommand({ DBClusterIdentifier: id, SkipFinalSnapshot: true }));
      return { ...item, outcome: 'deleted' };
    } catch (error) {
      if (NOT_FOUND.test(errorName(error))) return { ...item, outcome: 'absent' };
      if (BUSY.test(errorName(error))) return { ...item, outcome: 'pending', detail: errorName(error) };
      fail(`DeleteDBCluster ${id}`, error);
    }
  }

  async #deleteSubnetGroup(rds: RDSClient, name: string): Promise<TeardownItem> {
    const item = { type: 'rds-subnet-group', id: name };
    try {
      await rds.send(new DeleteDBSubnetGroupCommand({ DBSubnetGroupName: name }));
      return { ...item, outcome: 'deleted' };
    } catch (error) {
      if (NOT_FOUND.test(errorName(error))) return { ...item, outcome: 'absent' };
      // Still used by an instance that is being deleted.
      if (BUSY.test(errorName(error))) return { ...item, outcome: 'pending', detail: errorName(error) };
      fail(`DeleteDBSubnetGroup ${name}`, error);
    }
  }

  async listDrillResources(): Promise<DrillResource[]> {
    const out: DrillResource[] = [];
    for (const [location, rds] of Object.entries(this.#clients)) {
      if (!rds) continue;
      const push = (type: string, id: string | undefined, tags: Record<string, string>) => {
        if (id?.startsWith(DRILL_NAME_PREFIX) && tags[DRILL_TAG.drill]) out.push({ provider: 'rds', type, id, tags, location });
      };
      await paginate((Marker) => rds.send(new DescribeDBInstancesCommand({ Marker })), (p) => {
        for (const i of p.DBInstances ?? []) push('rds-instance', i.DBInstanceIdentifier, tagRecord(i.TagList));
      });
      await paginate((Marker) => rds.send(new DescribeDBClustersCommand({ Marker })), (p) => {
        for (const c of p.DBClusters ?? []) push('rds-cluster', c.DBClusterIdentifier, tagRecord(c.TagList));
      });
      await paginate((Marker) => rds.send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual', Marker })), (p) => {
        for (const s of p.DBSnapshots ?? []) push('rds-snapshot', s.DBSnapshotIdentifier, tagRecord(s.TagList));
      });
      const groups: { name: string; arn: string }[] = [];
      await paginate((Marker) => rds.send(new DescribeDBSubnetGroupsCommand({ Marker })), (p) => {
        for (const g of p.DBSubnetGroups ?? []) if (g.DBSubnetGroupName?.startsWith(DRILL_NAME_PREFIX) && g.DBSubnetGroupArn) groups.push({ name: g.DBSubnetGroupName, arn: g.DBSubnetGroupArn });
      });
      for (const g of groups) push('rds-subnet-group', g.name, tagRecord((await rds.send(new ListTagsForResourceCommand({ ResourceName: g.arn }))).TagList));
    }
    return out;
  }

  async deleteResource(resource: DrillResource): Promise<TeardownItem> {
    const rds = this.#client(resource.location);
    switch (resource.type) {
      case 'rds-instance':
        return this.#deleteInstance(rds, resource.id);
      case 'rds-cluster':
        return this.#deleteCluster(rds, resource.id);
      case 'rds-subnet-group':
        return this.#deleteSubnetGroup(rds, resource.id);
      case 'rds-snapshot':
        try {
          await rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: resource.id }));
          return { type: resource.type, id: resource.id, outcome: 'deleted' };
        } catch (error) {
          if (NOT_FOUND.test(errorName(error))) return { type: resource.type, id: resource.id, outcome: 'absent' };
          throw error;
        }
      default:
        return { type: resource.type, id: resource.id, outcome: 'kept', detail: 'unknown resource type' };
    }
  }
}

/** Classifies an RDS API failure into the errors the state machine retries or routes on. */
function fail(what: string, error: unknown): never {
  const name = errorName(error);
  const message = `${what} failed: ${name}: ${(error as Error).message}`;
  if (THROTTLED.test(name)) throw new ThrottledError(message, { cause: error });
  if (BUSY.test(name)) throw new InstanceNotReadyError(message, { cause: error });
  throw new DrillProvisioningError(message, { cause: error, nextStep: "check the drill role's RDS permissions, the subnet group and the snapshot's KMS key grants." });
}

async function paginate<P extends { Marker?: string }>(call: (marker: string | undefined) => Promise<P>, each: (page: P) => void): Promise<void> {
  let marker: string | undefined;
  do {
    const page = await call(marker);
    each(page);
    marker = page.Marker;
  } while (marker);
}
