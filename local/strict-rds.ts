import { createHash, randomBytes } from 'node:crypto';
import { DescribeDBClustersCommand, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import type { LayerNext, ProxiedRequest, ProxyLayer, ScriptedResponse } from './fault-proxy.ts';
import { accountOf, manualSnapshotCount, motoKms, motoQuery, rdsError, rdsRequest, type QuotaScript, type RdsRequest } from './moto-rds-compat.ts';

/**
 * A strict RDS lifecycle in front of moto, for local runs only (the tests and
 * `npm run demo`, never a deployment). moto makes every instance, cluster,
 * snapshot and copy `available` the moment it is asked for, deletes at once
 * and lets any call through whatever state a resource is in. AWS does not, and
 * code that passes against moto can fail on its first night in a real account.
 *
 * This layer (a fault-proxy layer: it sees each RDS request before the test's
 * scripted fault rules and moto, and sees their answer after) remembers every
 * RDS resource created, copied, restored, modified or deleted through the proxy
 * and answers as AWS does:
 *
 * - Describe* report each remembered resource's status and move it on one step
 *   per poll (deterministic: `polls` per status, optionally `minMillis` too).
 *   A poll is any call that reads the resource's state: a Describe listing it,
 *   or a call refused because of it.
 *     snapshots                    creating → available (PercentProgress 0..100)
 *     copies (also cross-account)  pending → copying → available
 *     new or restored instances    creating → backing-up → available (no Endpoint while creating)
 *     and clusters
 *     ModifyDB* with a password     resetting-master-credentials → available
 *     other immediate changes      modifying → available
 *     DeleteDBInstance/Cluster     deleting (moto still holds it) → not found
 *   A status a scripted rule put in place of moto's `available` (a snapshot
 *   that fails, a copy that never ends) wins over the lifecycle, as it would
 *   on AWS.
 * - Calls on a busy resource fail as AWS fails them (codes and HTTP statuses
 *   from the RDS API reference, cited at each check below).
 * - Quotas: manual snapshots per account and region (the same QuotaScript that
 *   accountQuotas answers DescribeAccountAttributes from, so both agree) and
 *   snapshot copies in progress per destination account and region.
 * - Point-in-time recovery (moto copies the source whatever the time, reports
 *   LatestRestorableTime as "now" and has no backup replication):
 *     LatestRestorableTime lags like RDS's log shipping (the newest
 *     `logShippingSeconds` boundary, never before creation; a real server's
 *     newest archived WAL when the latestRestorable hook knows one; none with
 *     retention 0), clusters get EarliestRestorableTime too, and a test can pin
 *     a window (setRestoreWindow: stale log shipping, a short window).
 *     DescribeDBInstanceAutomatedBackups lists each instance's `active` backup
 *     with its RestoreWindow, and the backups replicated into the region.
 *     Start/StopDBInstanceAutomatedBackupsReplication (called in the
 *     destination Region): replicated backup pending → replicating, one step
 *     per poll; stopped, it is `retained` with its window frozen.
 *     RestoreDBInstanceToPointInTime / RestoreDBClusterToPointInTime validate
 *     the source, the time against the window and the target as RDS does; a
 *     restore from replicated backups creates the instance in their Region.
 *
 * What only a real account shows is listed in docs/aws-fidelity.md ("RDS").
 */

export type TransitionalStatus = 'creating' | 'backing-up' | 'pending' | 'copying' | 'modifying' | 'resetting-master-credentials' | 'deleting';
export type ResourceKind = 'instance' | 'cluster' | 'snapshot' | 'cluster-snapshot';

/** Polls each status lasts by default: a snapshot is available on its 3rd look, a copy on its 4th, an instance on its 4th. */
export const STRICT_RDS_DEFAULT_POLLS: Readonly<Record<TransitionalStatus, number>> = {
  creating: 2,
  'backing-up': 1,
  pending: 1,
  copying: 2,
  modifying: 1,
  'resetting-master-credentials': 1,
  deleting: 2,
};

/** AWS's documented limits: 20 copies in progress per destination Region (USER_CopySnapshot.html), about 5 for Aurora cluster snapshots. */
export const STRICT_RDS_DEFAULT_CONCURRENT_COPIES = { instance: 20, cluster: 5 } as const;

export interface StrictRdsOptions {
  /** Polls each transitional status lasts: one number for all, or per status. @default STRICT_RDS_DEFAULT_POLLS */
  polls?: number | Partial<Record<TransitionalStatus, number>>;
  /** Each status also lasts at least this long. @default 0 */
  minMillis?: number;
  /** Manual snapshot quota per account, region and kind; share it with accountQuotas. @default 100 for every scope */
  quota?: QuotaScript;
  /** Snapshot copies in progress per destination account and region. @default STRICT_RDS_DEFAULT_CONCURRENT_COPIES */
  concurrentCopies?: { instance?: number; cluster?: number };
  /** Lifecycle hooks of instances (the drill PostgreSQL backing, see drill-postgres.ts). */
  instances?: InstanceHooks;
  /**
   * RDS uploads transaction logs about every 5 minutes, so LatestRestorableTime is
   * the newest multiple of this many seconds (since the epoch: deterministic), never
   * before the resource was created. @default 300
   */
  logShippingSeconds?: number;
}

/** A restore window pinned by a test; an unset side keeps the layer's own figure. */
export interface RestoreWindowPin {
  earliest?: Date;
  latest?: Date;
}

/** A point-in-time restore, as the instance hooks see it. */
export interface PointInTimeRestoreInfo {
  /** The instance whose automated backups are restored (for a restore from replicated backups in another region: the instance they replicate). */
  readonly source: { readonly account: string; readonly region: string; readonly id: string };
  /** The moment restored to; for UseLatestRestorableTime, the newest restorable moment the layer reported at the call. */
  readonly restoreTime: Date;
}

/** What happens to a real server behind an emulated instance. */
export interface InstanceHooks {
  /**
   * An instance was created or restored (its identifier, and the password it was
   * created with, if any). `pointInTime` is set for RestoreDBInstanceToPointInTime:
   * a real server behind the source can then be recovered to that moment.
   */
  created(instance: InstanceInfo, masterPassword: string | undefined, pointInTime?: PointInTimeRestoreInfo): void;
  /**
   * The newest moment a real server behind `instance` can be recovered to (its
   * newest archived WAL), when one backs it as a point-in-time source; the layer
   * reports it as LatestRestorableTime instead of its own estimate.
   */
  latestRestorable?(instance: { readonly account: string; readonly region: string; readonly id: string }): Date | undefined;
  /** False while the server behind the instance is still starting: the instance stays in its last transitional status. */
  ready?(instance: InstanceInfo): boolean;
  /** The instance became available: its endpoint, if a real server backs it. */
  endpoint(instance: InstanceInfo): { host: string; port: number } | undefined;
  /** A new master password finished applying (at the end of resetting-master-credentials). */
  passwordApplied(instance: InstanceInfo, password: string): Promise<void>;
  /** The instance is gone. */
  deleted(instance: InstanceInfo): Promise<void>;
  /** The proxy stops. */
  stop(): Promise<void>;
}

export interface InstanceInfo {
  readonly arn: string;
  readonly account: string;
  readonly region: string;
  readonly id: string;
  readonly masterUsername?: string;
}

export interface ResourceAddress {
  account: string;
  region: string;
  kind: ResourceKind;
  id: string;
}

export interface StrictRds extends ProxyLayer {
  /**
   * Makes an instance or cluster busy for `polls` polls, then available again:
   * its backup window, a maintenance, a modification made elsewhere.
   */
  makeBusy(at: ResourceAddress & { kind: 'instance' | 'cluster' }, status?: TransitionalStatus, polls?: number): void;
  /** The status this layer reports for a resource, or undefined when it does not track it. */
  statusOf(at: ResourceAddress): string | undefined;
  /**
   * Pins the point-in-time window of an instance or cluster (and of the backups
   * replicated from it): e.g. `{ latest: twoHoursAgo }` for log shipping that is
   * stuck. `undefined` unpins. The pin wins over the latestRestorable hook.
   */
  setRestoreWindow(at: ResourceAddress & { kind: 'instance' | 'cluster' }, window: RestoreWindowPin | undefined): void;
}

interface KindMeta {
  element: string;
  arnTag: string;
  statusTag: string;
  arnType: string;
  label: string;
}

const KINDS: Record<ResourceKind, KindMeta> = {
  instance: { element: 'DBInstance', arnTag: 'DBInstanceArn', statusTag: 'DBInstanceStatus', arnType: 'db', label: 'DB instance' },
  cluster: { element: 'DBCluster', arnTag: 'DBClusterArn', statusTag: 'Status', arnType: 'cluster', label: 'DB cluster' },
  snapshot: { element: 'DBSnapshot', arnTag: 'DBSnapshotArn', statusTag: 'Status', arnType: 'snapshot', label: 'DB snapshot' },
  'cluster-snapshot': { element: 'DBClusterSnapshot', arnTag: 'DBClusterSnapshotArn', statusTag: 'Status', arnType: 'cluster-snapshot', label: 'DB cluster snapshot' },
};

const DESCRIBES: Record<string, ResourceKind> = {
  DescribeDBInstances: 'instance',
  DescribeDBClusters: 'cluster',
  DescribeDBSnapshots: 'snapshot',
  DescribeDBClusterSnapshots: 'cluster-snapshot',
};

const HANDLED = new Set([
  ...Object.keys(DESCRIBES),
  'CreateDBSnapshot',
  'CreateDBClusterSnapshot',
  'CopyDBSnapshot',
  'CopyDBClusterSnapshot',
  'DeleteDBSnapshot',
  'DeleteDBClusterSnapshot',
  'CreateDBInstance',
  'RestoreDBInstanceFromDBSnapshot',
  'RestoreDBInstanceToPointInTime',
  'CreateDBCluster',
  'RestoreDBClusterFromSnapshot',
  'RestoreDBClusterToPointInTime',
  'ModifyDBInstance',
  'ModifyDBCluster',
  'DeleteDBInstance',
  'DeleteDBCluster',
  'DeleteDBSubnetGroup',
  'DescribeDBInstanceAutomatedBackups',
  'StartDBInstanceAutomatedBackupsReplication',
  'StopDBInstanceAutomatedBackupsReplication',
]);

/** Automated backups replicated into another Region (StartDBInstanceAutomatedBackupsReplication). */
interface Replica {
  /** arn:aws:rds:<destination>:<account>:auto-backup:ab-… */
  arn: string;
  account: string;
  /** The destination Region. */
  region: string;
  source: { arn: string; account: string; region: string; id: string; dbiResourceId: string; created: Date; retention: number };
  /** The source instance's DescribeDBInstances element when replication started (engine, class, storage…). */
  sourceInner: string;
  retention: number;
  encrypted: boolean;
  kmsKeyId?: string;
  status: 'pending' | 'replicating' | 'retained';
  seen: number;
  since: number;
  startedAt: Date;
  /** The window when replication stopped. */
  frozen?: { earliest: Date; latest: Date };
}

interface Phase {
  status: TransitionalStatus;
  polls: number;
}

interface Tracked {
  arn: string;
  kind: ResourceKind;
  account: string;
  region: string;
  id: string;
  phases: Phase[];
  /** Polls seen in the current phase, and when it began. */
  seen: number;
  since: number;
  /** Where the phases lead. */
  end: 'available' | 'gone';
  /** For PercentProgress. */
  totalPolls: number;
  donePolls: number;
  /** A snapshot copy (counts toward the copies in progress). */
  copy: boolean;
  /** A status a scripted rule reported in place of moto's `available`. */
  scripted?: string;
  /** The cluster an instance belongs to. */
  clusterId?: string;
  masterUsername?: string;
  /** A new master password, applied when resetting-master-credentials ends. */
  pendingPassword?: string;
  /** Runs when the phases are over and `end` is gone: the real delete in moto. */
  onGone?: () => Promise<void>;
}

// ---------------------------------------------------------------------------
// XML (awsQuery answers): elements and their direct children
// ---------------------------------------------------------------------------

const TAG = /<(\/?)([A-Za-z][A-Za-z0-9_]*)(?:\s[^>]*)?(\/?)>/g;

/** Each `<tag>…</tag>` of the document that is not inside another one, as [start, end). */
function elementSpans(xml: string, tag: string): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  const open = `<${tag}>`;
  const close = `</${tag}>`;
  let from = 0;
  for (;;) {
    const start = xml.indexOf(open, from);
    if (start < 0) return spans;
    let depth = 1;
    let at = start + open.length;
    while (depth > 0) {
      const nextOpen = xml.indexOf(open, at);
      const nextClose = xml.indexOf(close, at);
      if (nextClose < 0) return spans;
      if (nextOpen >= 0 && nextOpen < nextClose) {
        depth++;
        at = nextOpen + open.length;
      } else {
        depth--;
        at = nextClose + close.length;
      }
    }
    spans.push([start, at]);
    from = at;
  }
}

interface Child {
  tag: string;
  /** The whole child, tags included. */
  start: number;
  end: number;
  /** Its content. */
  valueStart: number;
  valueEnd: number;
}

/** The direct children of an element's content (the text between its own tags). */
function children(inner: string): Child[] {
  const out: Child[] = [];
  let depth = 0;
  let current: { tag: string; start: number; valueStart: number } | undefined;
  for (const m of inner.matchAll(TAG)) {
    const [whole, closing, tag, selfClosing] = m;
    const index = m.index;
    if (selfClosing) {
      if (depth === 0) out.push({ tag: tag!, start: index, end: index + whole.length, valueStart: index + whole.length, valueEnd: index + whole.length });
      continue;
    }
    if (!closing) {
      if (depth === 0) current = { tag: tag!, start: index, valueStart: index + whole.length };
      depth++;
    } else {
      depth--;
      if (depth === 0 && current) {
        out.push({ ...current, end: index + whole.length, valueEnd: index });
        current = undefined;
      }
    }
  }
  return out;
}

function childValue(inner: string, tag: string): string | undefined {
  const c = children(inner).find((x) => x.tag === tag);
  return c ? inner.slice(c.valueStart, c.valueEnd) : undefined;
}

function setChild(inner: string, tag: string, value: string): string {
  const c = children(inner).find((x) => x.tag === tag);
  if (!c) return `${inner}<${tag}>${value}</${tag}>`;
  return `${inner.slice(0, c.start)}<${tag}>${value}</${tag}>${inner.slice(c.end)}`;
}

function removeChild(inner: string, tag: string): string {
  const c = children(inner).find((x) => x.tag === tag);
  return c ? `${inner.slice(0, c.start)}${inner.slice(c.end)}` : inner;
}

/** Rewrites the content of every top-level `<tag>` element. */
function mapElements(xml: string, tag: string, fn: (inner: string) => string): string {
  const spans = elementSpans(xml, tag);
  if (spans.length === 0) return xml;
  let out = '';
  let last = 0;
  const open = `<${tag}>`;
  const close = `</${tag}>`;
  for (const [start, end] of spans) {
    out += xml.slice(last, start) + open + fn(xml.slice(start + open.length, end - close.length)) + close;
    last = end;
  }
  return out + xml.slice(last);
}

function firstElement(xml: string, tag: string): string | undefined {
  const [span] = elementSpans(xml, tag);
  return span ? xml.slice(span[0] + tag.length + 2, span[1] - tag.length - 3) : undefined;
}

const xmlAnswer = (status: number, body: string): ScriptedResponse => ({ status, headers: { 'content-type': 'text/xml' }, body });
const requestId = () => randomBytes(8).toString('hex');

// ---------------------------------------------------------------------------
// The layer
// ---------------------------------------------------------------------------

function pollsPerStatus(option: StrictRdsOptions['polls']): Record<TransitionalStatus, number> {
  if (typeof option === 'number') return Object.fromEntries(Object.keys(STRICT_RDS_DEFAULT_POLLS).map((s) => [s, option])) as Record<TransitionalStatus, number>;
  return { ...STRICT_RDS_DEFAULT_POLLS, ...option };
}

export function strictRdsLifecycle(upstream: string, options: StrictRdsOptions = {}): StrictRds {
  const polls = pollsPerStatus(options.polls);
  const minMillis = options.minMillis ?? 0;
  const quota: QuotaScript = options.quota ?? { max: () => 100 };
  const copyLimits = { ...STRICT_RDS_DEFAULT_CONCURRENT_COPIES, ...options.concurrentCopies };
  const hooks = options.instances;
  const tracked = new Map<string, Tracked>();
  const accounts = new Map<string, Promise<string>>();

  const key = (arn: string) => arn.toLowerCase();
  const arnOf = (kind: ResourceKind, account: string, region: string, id: string) => `arn:aws:rds:${region}:${account}:${KINDS[kind].arnType}:${id}`;
  const find = (arn: string | undefined) => (arn ? tracked.get(key(arn)) : undefined);
  const callerAccount = (r: RdsRequest): Promise<string> => {
    if (!accounts.has(r.accessKey)) accounts.set(r.accessKey, accountOf(upstream, r.accessKey, r.region));
    return accounts.get(r.accessKey)!;
  };
  /** An identifier or ARN named in a request, as an ARN in the caller's account and region when it is not one already. */
  const resolve = async (r: RdsRequest, kind: ResourceKind, idOrArn: string | null): Promise<string | undefined> => {
    if (!idOrArn) return undefined;
    return idOrArn.startsWith('arn:') ? idOrArn : arnOf(kind, await callerAccount(r), r.region, idOrArn);
  };

  // -------------------------------------------------------------------------
  // Point-in-time windows and automated backups
  // -------------------------------------------------------------------------
  const shippingMs = (options.logShippingSeconds ?? 300) * 1000;
  const pins = new Map<string, RestoreWindowPin>();
  const replicas = new Map<string, Replica>();
  const DAY_MS = 86_400_000;
  const iso = (d: Date) => d.toISOString();
  const maxDate = (a: Date, b: Date) => (a.getTime() >= b.getTime() ? a : b);
  const minDate = (a: Date, b: Date) => (a.getTime() <= b.getTime() ? a : b);

  /**
   * The window of an instance or cluster with `retention` days of automated backups.
   * RDS uploads transaction logs about every 5 minutes: LatestRestorableTime "is typically
   * within the last 5 minutes" (AmazonRDS/latest/UserGuide/USER_PIT.html), so it is the newest
   * shipping boundary, never before creation. EarliestRestorableTime: the retention period back,
   * never before creation (API_DBCluster.html). Retention 0: no window
   * (PointInTimeRestoreNotEnabled, API_RestoreDBInstanceToPointInTime.html).
   */
  function windowOf(kind: 'instance' | 'cluster', account: string, region: string, id: string, created: Date, retention: number): { earliest: Date; latest: Date } | undefined {
    if (!(retention > 0)) return undefined;
    const pin = pins.get(key(arnOf(kind, account, region, id)));
    const now = Date.now();
    const real = kind === 'instance' ? hooks?.latestRestorable?.({ account, region, id }) : undefined;
    const shipped = maxDate(created, new Date(Math.floor(now / shippingMs) * shippingMs));
    const latest = pin?.latest ?? real ?? shipped;
    const earliest = pin?.earliest ?? maxDate(created, new Date(now - retention * DAY_MS));
    return { earliest, latest };
  }

  /** An RDS timestamp as the SDK reads it (moto writes microseconds; the SDK rounds them to milliseconds). */
  function parseTime(text: string | undefined): Date {
    const m = /^(.*?:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$/.exec(text ?? '');
    if (!m) return new Date(0);
    const base = Date.parse(`${m[1]}${m[3] ?? 'Z'}`);
    return new Date((Number.isNaN(base) ? 0 : base) + (m[2] ? Math.round(Number(`0.${m[2]}`) * 1000) : 0));
  }

  /**
   * "The AWS Region-unique, immutable identifier for the DB instance" (DbiResourceId, API_DBInstance.html):
   * moto gives every instance the same one, so the layer derives one per instance (its ARN and creation
   * time: a re-created namesake gets another) and reports it everywhere.
   */
  const resourceIdOf = (inner: string) =>
    `db-${createHash('sha256').update(`${childValue(inner, 'DBInstanceArn') ?? ''}@${childValue(inner, 'InstanceCreateTime') ?? ''}`).digest('hex').slice(0, 26).toUpperCase()}`;

  /** What the layer needs of a DescribeDBInstances / DescribeDBClusters element. */
  function sourceOf(kind: 'instance' | 'cluster', inner: string) {
    const arn = childValue(inner, KINDS[kind].arnTag) ?? '';
    const [, , , region = '', account = ''] = arn.split(':');
    const id = childValue(inner, kind === 'instance' ? 'DBInstanceIdentifier' : 'DBClusterIdentifier') ?? '';
    const created = parseTime(childValue(inner, kind === 'instance' ? 'InstanceCreateTime' : 'ClusterCreateTime'));
    const retention = Number(childValue(inner, 'BackupRetentionPeriod') ?? '0');
    return { arn, account, region, id, created, retention, window: () => windowOf(kind, account, region, id, created, retention) };
  }

  /** The automated backups ARN of an instance in `region` (its own Region, or a replica's): stable per instance and Region. */
  const autoBackupArn = (account: string, region: string, dbiResourceId: string) =>
    `arn:aws:rds:${region}:${account}:auto-backup:ab-${createHash('sha256').update(`${region}/${dbiResourceId}`).digest('hex').slice(0, 40)}`;

  /** Replications of a source instance still running (what its DescribeDBInstances lists). */
  const replicationsOf = (sourceArn: string) => [...replicas.values()].filter((x) => key(x.source.arn) === key(sourceArn) && x.status !== 'retained');

  /**
   * A replicated backup's window follows its source's (the same log-shipping lag) from the moment
   * replication began; a fresh replica's window is a single moment, as in the API reference's example
   * (API_DescribeDBInstanceAutomatedBackups.html: EarliestTime = LatestTime). None while `pending`
   * (RestoreWindow empty in StartDBInstanceAutomatedBackupsReplication's answer).
   */
  function replicaWindow(x: Replica): { earliest: Date; latest: Date } | undefined {
    if (x.status === 'pending') return undefined;
    if (x.frozen) return x.frozen;
    const w = windowOf('instance', x.source.account, x.source.region, x.source.id, x.source.created, x.source.retention);
    if (!w) return undefined;
    const earliest = maxDate(maxDate(w.earliest, minDate(x.startedAt, w.latest)), new Date(Date.now() - x.retention * DAY_MS));
    return { earliest: minDate(earliest, w.latest), latest: w.latest };
  }

  /** One look at a replicated backup: pending → replicating (Terraform's waiter goes from `pending` to `replicating`). */
  function pollReplica(x: Replica): void {
    if (x.status !== 'pending') return;
    x.seen++;
    if (x.seen < polls.pending || Date.now() - x.since < minMillis) return;
    x.status = 'replicating';
    x.seen = 0;
    x.since = Date.now();
  }

  const replicationsXml = (arns: string[]) => arns.map((a) => `<DBInstanceAutomatedBackupsReplication><DBInstanceAutomatedBackupsArn>${a}</DBInstanceAutomatedBackupsArn></DBInstanceAutomatedBackupsReplication>`).join('');

  /** A DBInstanceAutomatedBackup element (API_DBInstanceAutomatedBackup.html) from the instance's DescribeDBInstances element. */
  function automatedBackupXml(inner: string, b: { arn: string; region: string; status: string; retention: number; window?: { earliest: Date; latest: Date }; encrypted: boolean; kmsKeyId?: string; replications: string[] }): string {
    const copy = (tag: string, from = tag) => {
      const v = childValue(inner, from);
      return v === undefined ? '' : `<${tag}>${v}</${tag}>`;
    };
    const port = childValue(childValue(inner, 'Endpoint') ?? '', 'Port') ?? childValue(inner, 'DbInstancePort');
    const window = b.window ? `<EarliestTime>${iso(b.window.earliest)}</EarliestTime><LatestTime>${iso(b.window.latest)}</LatestTime>` : '';
    return [
      '<DBInstanceAutomatedBackup>',
      copy('DBInstanceArn'),
      `<DbiResourceId>${resourceIdOf(inner)}</DbiResourceId>`,
      `<Region>${b.region}</Region>`,
      copy('DBInstanceIdentifier'),
      `<RestoreWindow>${window}</RestoreWindow>`,
      copy('AllocatedStorage'),
      `<Status>${b.status}</Status>`,
      port ? `<Port>${port}</Port>` : '',
      copy('AvailabilityZone'),
      copy('InstanceCreateTime'),
      copy('MasterUsername'),
      copy('Engine'),
      copy('EngineVersion'),
      copy('LicenseModel'),
      `<Encrypted>${b.encrypted}</Encrypted>`,
      copy('StorageType'),
      b.encrypted && b.kmsKeyId ? `<KmsKeyId>${b.kmsKeyId}</KmsKeyId>` : '',
      copy('IAMDatabaseAuthenticationEnabled'),
      `<BackupRetentionPeriod>${b.retention}</BackupRetentionPeriod>`,
      `<DBInstanceAutomatedBackupsArn>${b.arn}</DBInstanceAutomatedBackupsArn>`,
      `<DBInstanceAutomatedBackupsReplications>${replicationsXml(b.replications)}</DBInstanceAutomatedBackupsReplications>`,
      '</DBInstanceAutomatedBackup>',
    ].join('');
  }

  /** An instance's own (active) automated backup. */
  function ownBackupXml(inner: string): string {
    const s = sourceOf('instance', inner);
    return automatedBackupXml(inner, {
      arn: autoBackupArn(s.account, s.region, resourceIdOf(inner)),
      region: s.region,
      status: 'active',
      retention: s.retention,
      window: s.window(),
      encrypted: childValue(inner, 'StorageEncrypted') === 'true',
      kmsKeyId: childValue(inner, 'KmsKeyId'),
      replications: replicationsOf(s.arn).map((x) => x.arn),
    });
  }

  const replicaXml = (x: Replica, status: string = x.status) =>
    automatedBackupXml(x.sourceInner, { arn: x.arn, region: x.source.region, status, retention: x.retention, window: replicaWindow(x), encrypted: x.encrypted, kmsKeyId: x.kmsKeyId, replications: [] });

  /** LatestRestorableTime (and a cluster's EarliestRestorableTime) as RDS reports them; an instance's replications. */
  function restorable(kind: ResourceKind, inner: string, t?: Tracked): string {
    if (kind !== 'instance' && kind !== 'cluster') return inner;
    let out = kind === 'instance' && childValue(inner, 'DBInstanceArn') ? setChild(inner, 'DbiResourceId', resourceIdOf(inner)) : inner;
    // An Aurora instance's backups are its cluster's.
    if (kind === 'instance' && childValue(inner, 'DBClusterIdentifier')) return out;
    const s = sourceOf(kind, inner);
    // Nothing is restorable before the first backup of a new instance or cluster.
    const w = t && statusOf(t) === 'creating' ? undefined : s.window();
    if (w) out = setChild(out, 'LatestRestorableTime', iso(w.latest));
    else out = removeChild(out, 'LatestRestorableTime');
    if (kind === 'cluster') out = w ? setChild(out, 'EarliestRestorableTime', iso(w.earliest)) : removeChild(out, 'EarliestRestorableTime');
    if (kind === 'instance') {
      const running = replicationsOf(s.arn);
      out = running.length > 0 ? setChild(out, 'DBInstanceAutomatedBackupsReplications', replicationsXml(running.map((x) => x.arn))) : removeChild(out, 'DBInstanceAutomatedBackupsReplications');
    }
    return out;
  }

  const answerXml = (action: string, result: string) =>
    xmlAnswer(200, `<${action}Response xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><${action}Result>${result}</${action}Result><ResponseMetadata><RequestId>${requestId()}</RequestId></ResponseMetadata></${action}Response>`);

  const statusOf = (t: Tracked): string => t.scripted ?? t.phases[0]?.status ?? (t.end === 'available' ? 'available' : 'deleting');
  const info = (t: Tracked): InstanceInfo => ({ arn: t.arn, account: t.account, region: t.region, id: t.id, masterUsername: t.masterUsername });

  function track(kind: ResourceKind, arn: string, phases: TransitionalStatus[], end: Tracked['end'], extra: Partial<Tracked> = {}): Tracked {
    const [, , , region = '', account = ''] = arn.split(':');
    const id = arn.split(':').slice(6).join(':');
    const list = phases.map((status) => ({ status, polls: polls[status] }));
    const previous = find(arn);
    const t: Tracked = {
      ...(previous ?? {}),
      arn,
      kind,
      account,
      region,
      id,
      phases: list,
      seen: 0,
      since: Date.now(),
      end,
      totalPolls: list.reduce((n, p) => n + p.polls, 0),
      donePolls: 0,
      copy: false,
      scripted: undefined,
      ...extra,
    };
    tracked.set(key(arn), t);
    return t;
  }

  /** One look at a resource: it may move on to its next status (and, at the end of a delete, be removed from moto). */
  async function poll(t: Tracked): Promise<void> {
    if (t.scripted) return;
    const phase = t.phases[0];
    if (!phase) return;
    // Deleting a cluster deletes its instances with it; the cluster goes last.
    const members = t.kind === 'cluster' ? [...tracked.values()].filter((m) => m.kind === 'instance' && m.clusterId === t.id && m.account === t.account && m.region === t.region) : [];
    if (t.kind === 'cluster' && t.end === 'gone') for (const m of members) if (statusOf(m) === 'deleting') await poll(m);
    t.seen++;
    t.donePolls++;
    if (t.seen < phase.polls || Date.now() - t.since < minMillis) return;
    // A real server behind the instance must be up before RDS would call it available.
    if (t.kind === 'instance' && t.end === 'available' && t.phases.length === 1 && hooks?.ready?.(info(t)) === false) return;
    if (t.kind === 'cluster' && t.end === 'gone' && t.phases.length === 1 && members.some((m) => tracked.has(key(m.arn)))) return;
    t.phases.shift();
    t.seen = 0;
    t.since = Date.now();
    if (phase.status === 'resetting-master-credentials' && t.pendingPassword !== undefined) {
      const password = t.pendingPassword;
      t.pendingPassword = undefined;
      await hooks?.passwordApplied(info(t), password);
    }
    if (t.phases.length === 0 && t.end === 'gone') {
      tracked.delete(key(t.arn));
      await t.onGone?.();
    }
  }

  function progress(t: Tracked, status: string): number {
    if (status === 'available') return 100;
    if (status === 'pending' || t.totalPolls === 0) return 0;
    return Math.min(99, Math.floor((t.donePolls * 100) / t.totalPolls));
  }

  /** The element as AWS would show it now; scripted statuses are adopted. */
  function present(t: Tracked, inner: string): string {
    const meta = KINDS[t.kind];
    const upstreamStatus = childValue(inner, meta.statusTag);
    // moto says `available` (or `creating` in a cluster's create answer); anything else came from a scripted rule.
    if (upstreamStatus && upstreamStatus !== 'available' && upstreamStatus !== 'creating') {
      t.scripted = upstreamStatus;
      return inner;
    }
    t.scripted = undefined;
    const status = statusOf(t);
    let out = setChild(inner, meta.statusTag, status);
    if (t.kind === 'snapshot' || t.kind === 'cluster-snapshot') out = setChild(out, 'PercentProgress', String(progress(t, status)));
    if (t.kind === 'instance') {
      // An instance being created has no endpoint yet.
      if (status === 'creating') out = removeChild(out, 'Endpoint');
      else {
        const endpoint = hooks?.endpoint(info(t));
        if (endpoint) {
          out = setChild(out, 'Endpoint', `<Address>${endpoint.host}</Address><Port>${endpoint.port}</Port>`);
          out = setChild(out, 'DbInstancePort', String(endpoint.port));
        }
      }
    }
    return out;
  }

  /** Describe*: every remembered resource in the answer shows its status, and counts one poll. */
  function rewrite(kind: ResourceKind, answer: ScriptedResponse): { body: string; looked: Tracked[] } {
    const meta = KINDS[kind];
    const looked: Tracked[] = [];
    const body = mapElements(answer.body, meta.element, (inner) => {
      const t = find(childValue(inner, meta.arnTag));
      if (t) looked.push(t);
      return restorable(kind, t ? present(t, inner) : inner, t);
    });
    return { body, looked };
  }

  /** A refused call: it showed the caller the resource's state, so it counts as a poll. */
  async function refuse(t: Tracked | undefined, code: string, message: string, status = 400): Promise<ScriptedResponse> {
    if (t) await poll(t);
    return rdsError(code, message, status);
  }

  const busy = (t: Tracked | undefined, allowed: readonly string[]) => t !== undefined && !allowed.includes(statusOf(t));

  async function checkSnapshotQuota(r: RdsRequest, kind: 'instance' | 'cluster'): Promise<ScriptedResponse | undefined> {
    const scope = { region: r.region, accessKey: r.accessKey, kind };
    const used = await manualSnapshotCount(upstream, scope, kind);
    const max = quota.max(used, scope);
    // CreateDBSnapshot / CopyDBSnapshot (and the cluster calls): SnapshotQuotaExceeded, HTTP 400,
    // "The request would result in the user exceeding the allowed number of DB snapshots."
    // (AmazonRDS/latest/APIReference/API_CreateDBSnapshot.html, API_CopyDBSnapshot.html)
    if (used >= max) return rdsError('SnapshotQuotaExceeded', `Cannot create more than ${max} manual snapshots`);
    return undefined;
  }

  async function describeOne(r: RdsRequest, kind: 'instance' | 'cluster', id: string): Promise<{ status: number; text: string; inner?: string }> {
    const out = await motoQuery(upstream, { service: 'rds', region: r.region, accessKey: r.accessKey }, kind === 'instance' ? { Action: 'DescribeDBInstances', DBInstanceIdentifier: id } : { Action: 'DescribeDBClusters', DBClusterIdentifier: id });
    return { ...out, inner: out.status === 200 ? firstElement(out.text, KINDS[kind].element) : undefined };
  }

  /** Every page of a describe, straight from moto. */
  async function describeAll(r: RdsRequest, action: string, element: string): Promise<string[]> {
    const out: string[] = [];
    let marker: string | undefined;
    do {
      const page = await motoQuery(upstream, { service: 'rds', region: r.region, accessKey: r.accessKey }, { Action: action, MaxRecords: '100', ...(marker ? { Marker: marker } : {}) });
      for (const [s, e] of elementSpans(page.text, element)) out.push(page.text.slice(s + element.length + 2, e - element.length - 3));
      marker = /<Marker>([^<]+)<\/Marker>/.exec(page.text)?.[1];
    } while (marker);
    return out;
  }

  /** Answers a mutating call whose resource element is in the answer: track it and show its first status. */
  function created(kind: ResourceKind, answer: ScriptedResponse, phases: TransitionalStatus[], extra: (inner: string) => Partial<Tracked> = () => ({})): ScriptedResponse {
    if (answer.status !== 200) return answer;
    const meta = KINDS[kind];
    const inner = firstElement(answer.body, meta.element);
    const arn = inner ? childValue(inner, meta.arnTag) : undefined;
    if (!inner || !arn) return answer;
    const t = track(kind, arn, phases, 'available', extra(inner));
    return { ...answer, body: mapElements(answer.body, meta.element, (el) => restorable(kind, present(t, el), t)) };
  }

  /** A delete AWS takes minutes over: moto keeps the resource until the layer's `deleting` polls are over. */
  function deferredDelete(r: RdsRequest, kind: 'instance' | 'cluster', inner: string, arn: string): ScriptedResponse {
    const meta = KINDS[kind];
    const params = Object.fromEntries([...r.params.entries()].filter(([k]) => k !== 'Version'));
    const previous = find(arn);
    const t = track(kind, arn, ['deleting'], 'gone', {
      clusterId: previous?.clusterId ?? (kind === 'instance' ? childValue(inner, 'DBClusterIdentifier') : undefined),
      masterUsername: previous?.masterUsername ?? childValue(inner, 'MasterUsername'),
    });
    t.onGone = async () => {
      await motoQuery(upstream, { service: 'rds', region: r.region, accessKey: r.accessKey }, params as Record<string, string>);
      if (kind === 'instance') await hooks?.deleted(info(t));
    };
    const element = `<${meta.element}>${present(t, inner)}</${meta.element}>`;
    return xmlAnswer(200, `<${r.action}Response xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><${r.action}Result>${element}</${r.action}Result><ResponseMetadata><RequestId>${requestId()}</RequestId></ResponseMetadata></${r.action}Response>`);
  }

  // -------------------------------------------------------------------------
  // Point-in-time recovery calls
  // -------------------------------------------------------------------------

  /**
   * A RestoreTime outside the window. The API reference lists InvalidRestoreFault (HTTP 400) among
   * RestoreDBInstanceToPointInTime's and RestoreDBClusterToPointInTime's errors and says RestoreTime
   * "Must be before the latest restorable time" (API_RestoreDBInstanceToPointInTime.html,
   * API_RestoreDBClusterToPointInTime.html); it does not name the code for this case, see
   * docs/aws-fidelity.md.
   */
  const outsideWindow = (what: string, at: Date, w: { earliest: Date; latest: Date } | undefined) =>
    rdsError('InvalidRestoreFault', w ? `The restore time ${iso(at)} is outside the restorable window of ${what} (${iso(w.earliest)} to ${iso(w.latest)}).` : `${what} has no restorable time yet.`);

  /** RestoreTime / RestoreToTime against UseLatestRestorableTime: exactly one (the constraints on both parameters in the API reference). */
  function restoreMoment(r: RdsRequest, timeParam: 'RestoreTime' | 'RestoreToTime'): { at?: Date; latest: boolean } | ScriptedResponse {
    const text = r.params.get(timeParam);
    const latest = r.params.get('UseLatestRestorableTime') === 'true';
    if (text && latest) return rdsError('InvalidParameterCombination', `Cannot specify both ${timeParam} and UseLatestRestorableTime.`);
    if (!text && !latest) return rdsError('InvalidParameterCombination', `Either ${timeParam} or UseLatestRestorableTime must be specified.`);
    if (!text) return { latest };
    const at = new Date(text);
    if (Number.isNaN(at.getTime())) return rdsError('InvalidParameterValue', `Invalid ${timeParam}: ${text}`);
    return { at, latest };
  }
  const isAnswer = (x: object): x is ScriptedResponse => 'status' in x && 'body' in x;

  /** The request's Filters (Filters.Filter.N.Name, Filters.Filter.N.Values.Value.M). */
  function filtersOf(r: RdsRequest): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const [k, name] of r.params) {
      const n = /^Filters\.(?:Filter|member)\.(\d+)\.Name$/.exec(k)?.[1];
      if (!n) continue;
      const value = new RegExp(`^Filters\\.(?:Filter|member)\\.${n}\\.Values\\.(?:Value|member)\\.\\d+$`);
      out.set(name, [...r.params.entries()].filter(([vk]) => value.test(vk)).map(([, v]) => v));
    }
    return out;
  }

  /**
   * DescribeDBInstanceAutomatedBackups (API_DescribeDBInstanceAutomatedBackups.html): each instance of
   * the caller's Region with automated backups (`active`), and the backups replicated into it. A
   * DBInstanceIdentifier, DbiResourceId or DBInstanceAutomatedBackupsArn that matches none:
   * DBInstanceAutomatedBackupNotFound, HTTP 404.
   */
  async function describeAutomatedBackups(r: RdsRequest, next: LayerNext): Promise<ScriptedResponse> {
    const scripted = await next.rulesOnly();
    if (scripted) return scripted;
    const account = await callerAccount(r);
    const p = (name: string) => r.params.get(name);
    const own = (await describeAll(r, 'DescribeDBInstances', 'DBInstance')).filter((i) => !childValue(i, 'DBClusterIdentifier') && Number(childValue(i, 'BackupRetentionPeriod') ?? '0') > 0);
    const entries = [
      ...own.map((i) => {
        const s = sourceOf('instance', i);
        return { xml: ownBackupXml(i), id: s.id, instanceArn: s.arn, resource: resourceIdOf(i), arn: autoBackupArn(account, r.region, resourceIdOf(i)), status: 'active', replica: undefined as Replica | undefined };
      }),
      ...[...replicas.values()]
        .filter((x) => x.account === account && x.region === r.region)
        .map((x) => ({ xml: replicaXml(x), id: x.source.id, instanceArn: x.source.arn, resource: x.source.dbiResourceId, arn: x.arn, status: x.status as string, replica: x as Replica | undefined })),
    ];
    const filters = filtersOf(r);
    const named = [p('DBInstanceIdentifier'), p('DbiResourceId'), p('DBInstanceAutomatedBackupsArn')].some((x) => x);
    const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
    const listed = entries.filter((e) => {
      const id = p('DBInstanceIdentifier');
      if (id && !same(e.id, id) && !same(e.instanceArn, id)) return false;
      if (p('DbiResourceId') && e.resource !== p('DbiResourceId')) return false;
      if (p('DBInstanceAutomatedBackupsArn') && !same(e.arn, p('DBInstanceAutomatedBackupsArn')!)) return false;
      for (const [name, values] of filters) {
        const have = name === 'db-instance-id' ? [e.id, e.instanceArn] : name === 'dbi-resource-id' ? [e.resource] : name === 'status' ? [e.status] : undefined;
        if (have && !values.some((v) => have.some((h) => same(h, v)))) return false;
      }
      return true;
    });
    if (named && listed.length === 0) {
      const what = p('DBInstanceAutomatedBackupsArn') ?? p('DbiResourceId') ?? p('DBInstanceIdentifier');
      return rdsError('DBInstanceAutomatedBackupNotFound', `No automated backup found for ${what}.`, 404);
    }
    const answer = answerXml('DescribeDBInstanceAutomatedBackups', `<DBInstanceAutomatedBackups>${listed.map((e) => e.xml).join('')}</DBInstanceAutomatedBackups>`);
    for (const e of listed) if (e.replica) pollReplica(e.replica);
    return answer;
  }

  /** The source instance a replication call names (SourceDBInstanceArn), read in its own Region. */
  async function replicationSource(r: RdsRequest): Promise<{ inner: string; arn: string; id: string; region: string } | ScriptedResponse> {
    const arn = r.params.get('SourceDBInstanceArn');
    if (!arn) return rdsError('MissingParameter', 'The request must contain the parameter SourceDBInstanceArn.');
    const [prefix, , service, region = '', account = '', type, ...rest] = arn.split(':');
    const id = rest.join(':');
    if (prefix !== 'arn' || service !== 'rds' || type !== 'db' || !id) return rdsError('InvalidParameterValue', `Invalid DB instance ARN: ${arn}`);
    // "Enables replication of automated backups to a different AWS Region" (API_StartDBInstanceAutomatedBackupsReplication.html);
    // a Region it cannot serve is refused with InvalidParameterValue (as boto/boto3#3201 shows RDS answering).
    if (region === r.region) return rdsError('InvalidParameterValue', `Automated backups can only be replicated to a different Region than the source's (${region}).`);
    // The source is looked up in the caller's own account.
    if (account !== (await callerAccount(r))) return rdsError('DBInstanceNotFound', `DBInstance ${arn} not found.`, 404);
    const found = await motoQuery(upstream, { service: 'rds', region, accessKey: r.accessKey }, { Action: 'DescribeDBInstances', DBInstanceIdentifier: id });
    const inner = found.status === 200 ? firstElement(found.text, 'DBInstance') : undefined;
    if (!inner) return rdsError('DBInstanceNotFound', `DBInstance ${id} not found.`, 404);
    return { inner, arn: childValue(inner, 'DBInstanceArn') ?? arn, id, region };
  }

  /** Starting or stopping replication modifies the source instance for a while (seen by aws-cloudformation-resource-providers-rds#446). */
  function modifying(sourceArn: string): void {
    const t = find(sourceArn);
    if (t && statusOf(t) !== 'available') return;
    track('instance', sourceArn, ['modifying'], 'available', { clusterId: t?.clusterId, masterUsername: t?.masterUsername });
  }

  /**
   * StartDBInstanceAutomatedBackupsReplication, called in the destination Region
   * (API_StartDBInstanceAutomatedBackupsReplication.html). Errors: DBInstanceNotFound (404),
   * InvalidDBInstanceState, KMSKeyNotAccessibleFault, InvalidDBInstanceAutomatedBackupState (400).
   * The answer shows the replicated backup `pending` with an empty RestoreWindow, as the reference's example.
   */
  async function startReplication(r: RdsRequest, next: LayerNext): Promise<ScriptedResponse> {
    const source = await replicationSource(r);
    if (isAnswer(source)) return source;
    const t = find(source.arn);
    if (t && ['creating', 'deleting'].includes(statusOf(t))) return refuse(t, 'InvalidDBInstanceState', `DB instance ${source.id} is not in a valid state for backup replication (${statusOf(t)}).`);
    // "This command doesn't apply to RDS Custom, Aurora MySQL, and Aurora PostgreSQL."
    if (childValue(source.inner, 'DBClusterIdentifier')) return rdsError('InvalidParameterCombination', `Automated backup replication is not supported for Aurora DB instances (${source.id}).`);
    const src = sourceOf('instance', source.inner);
    if (!(src.retention > 0)) return rdsError('InvalidDBInstanceState', `Automated backups are not enabled for DB instance ${source.id} (BackupRetentionPeriod 0).`);
    const account = await callerAccount(r);
    const dbiResourceId = resourceIdOf(source.inner);
    const arn = autoBackupArn(account, r.region, dbiResourceId);
    const existing = replicas.get(key(arn));
    if (existing && existing.status !== 'retained') return rdsError('InvalidDBInstanceAutomatedBackupState', `Automated backups of DB instance ${source.id} are already replicated to ${r.region}.`);
    const retentionText = r.params.get('BackupRetentionPeriod');
    const retention = retentionText ? Number(retentionText) : src.retention;
    if (!Number.isInteger(retention) || retention < 1 || retention > 35) return rdsError('InvalidParameterValue', `Invalid BackupRetentionPeriod: ${retentionText}; it must be from 1 to 35.`);
    const encrypted = childValue(source.inner, 'StorageEncrypted') === 'true';
    let kmsKeyId = r.params.get('KmsKeyId') ?? undefined;
    // KmsKeyId: "the Amazon Resource Name (ARN) for the KMS encryption key in the destination AWS Region";
    // KMS keys are Regional, so an encrypted source needs one there.
    if (encrypted && !kmsKeyId) return rdsError('InvalidParameterCombination', `DB instance ${source.id} is encrypted: a KmsKeyId in the destination Region ${r.region} is required.`);
    if (encrypted && kmsKeyId) {
      const keyRegion = kmsKeyId.startsWith('arn:') ? kmsKeyId.split(':')[3] : r.region;
      const described = keyRegion === r.region ? await motoKms(upstream, { service: 'kms', region: r.region, accessKey: r.accessKey }, 'DescribeKey', { KeyId: kmsKeyId }) : undefined;
      const metadata = described?.status === 200 ? (described.json.KeyMetadata as { Arn?: string; KeyState?: string } | undefined) : undefined;
      if (!metadata || metadata.KeyState !== 'Enabled') {
        return rdsError('KMSKeyNotAccessibleFault', `The KMS key ${kmsKeyId} does not exist in ${r.region}, is not enabled or you do not have permissions to access it.`);
      }
      kmsKeyId = metadata.Arn;
    }
    const scripted = await next.rulesOnly();
    if (scripted) return scripted;
    const replica: Replica = {
      arn,
      account,
      region: r.region,
      source: { arn: source.arn, account, region: source.region, id: source.id, dbiResourceId, created: src.created, retention: src.retention },
      sourceInner: source.inner,
      retention,
      encrypted,
      kmsKeyId: encrypted ? kmsKeyId : undefined,
      status: 'pending',
      seen: 0,
      since: Date.now(),
      startedAt: new Date(),
    };
    replicas.set(key(arn), replica);
    modifying(source.arn);
    return answerXml('StartDBInstanceAutomatedBackupsReplication', replicaXml(replica));
  }

  /**
   * StopDBInstanceAutomatedBackupsReplication, in the destination Region
   * (API_StopDBInstanceAutomatedBackupsReplication.html: DBInstanceNotFound 404, InvalidDBInstanceState 400).
   * The answer still shows the backup replicating, as the reference's example; from then on it is
   * `retained` ("automated backups for deleted instances" are too, API_DBInstanceAutomatedBackup.html)
   * with the window it had.
   */
  async function stopReplication(r: RdsRequest, next: LayerNext): Promise<ScriptedResponse> {
    const source = await replicationSource(r);
    if (isAnswer(source)) return source;
    const replica = replicationsOf(source.arn).find((x) => x.region === r.region);
    if (!replica) return rdsError('InvalidDBInstanceState', `DB instance ${source.id} is not replicating its automated backups to ${r.region}.`);
    const scripted = await next.rulesOnly();
    if (scripted) return scripted;
    const shown = replicaXml(replica);
    replica.frozen = replicaWindow(replica);
    replica.status = 'retained';
    modifying(source.arn);
    return answerXml('StopDBInstanceAutomatedBackupsReplication', shown);
  }

  const PASSED_TO_CREATE = ['DBSubnetGroupName', 'MultiAZ', 'Port', 'AvailabilityZone', 'DeletionProtection', 'DBParameterGroupName', 'CopyTagsToSnapshot', 'EnableIAMDatabaseAuthentication', 'DBName', 'Iops', 'StorageThroughput', 'OptionGroupName', 'AutoMinorVersionUpgrade'];

  /**
   * RestoreDBInstanceToPointInTime (API_RestoreDBInstanceToPointInTime.html): exactly one of
   * RestoreTime / UseLatestRestorableTime and of SourceDBInstanceIdentifier / SourceDbiResourceId /
   * SourceDBInstanceAutomatedBackupsArn; DBInstanceNotFound / DBInstanceAutomatedBackupNotFound (404),
   * PointInTimeRestoreNotEnabled ("SourceDBInstanceIdentifier refers to a DB instance with
   * BackupRetentionPeriod equal to 0"), InvalidRestoreFault, DBInstanceAlreadyExists (400).
   */
  async function restoreInstanceToPointInTime(r: RdsRequest, next: LayerNext): Promise<ScriptedResponse> {
    const p = (name: string) => r.params.get(name) ?? undefined;
    const moment = restoreMoment(r, 'RestoreTime');
    if (isAnswer(moment)) return moment;
    const named = ['SourceDBInstanceIdentifier', 'SourceDbiResourceId', 'SourceDBInstanceAutomatedBackupsArn'].filter((n) => p(n));
    if (named.length !== 1) return rdsError('InvalidParameterCombination', 'Specify exactly one of SourceDBInstanceIdentifier, SourceDbiResourceId and SourceDBInstanceAutomatedBackupsArn.');
    const account = await callerAccount(r);
    let inner: string | undefined;
    let replica: Replica | undefined;
    if (p('SourceDBInstanceIdentifier')) {
      const found = await describeOne(r, 'instance', p('SourceDBInstanceIdentifier')!);
      if (!found.inner) return xmlAnswer(found.status, found.text);
      inner = found.inner;
    } else {
      const byArn = p('SourceDBInstanceAutomatedBackupsArn');
      const candidate = byArn ? replicas.get(key(byArn)) : undefined;
      replica = candidate && candidate.account === account && candidate.region === r.region ? candidate : undefined;
      if (!replica) {
        const all = await describeAll(r, 'DescribeDBInstances', 'DBInstance');
        inner = all.find((i) => (byArn ? key(autoBackupArn(account, r.region, resourceIdOf(i))) === key(byArn) : resourceIdOf(i) === p('SourceDbiResourceId')));
        if (!inner) return rdsError('DBInstanceAutomatedBackupNotFound', `No automated backup found for ${byArn ?? p('SourceDbiResourceId')}.`, 404);
      }
    }
    const src = inner ? sourceOf('instance', inner) : undefined;
    if (src && !(src.retention > 0)) return rdsError('PointInTimeRestoreNotEnabled', `Point-in-time restore is not enabled for DB instance ${src.id}: its BackupRetentionPeriod is 0.`);
    const window = replica ? replicaWindow(replica) : src!.window();
    const what = replica ? `the automated backups ${replica.arn}` : `DB instance ${src!.id}`;
    if (!window) {
      if (replica) pollReplica(replica);
      return outsideWindow(what, moment.at ?? new Date(), undefined);
    }
    const restoreTime = moment.at ?? window.latest;
    if (restoreTime.getTime() < window.earliest.getTime() || restoreTime.getTime() > window.latest.getTime()) return outsideWindow(what, restoreTime, window);
    const target = p('TargetDBInstanceIdentifier') ?? '';
    if ((await describeOne(r, 'instance', target)).inner) return rdsError('DBInstanceAlreadyExists', `DB instance already exists: ${target}`);

    let answer: ScriptedResponse;
    if (p('SourceDBInstanceIdentifier')) answer = await next();
    else if (!replica) {
      // moto knows neither the layer's resource ids nor automated backups ARNs: its own restore, by identifier.
      const scripted = await next.rulesOnly();
      if (scripted) return scripted;
      const params = Object.fromEntries([...r.params].filter(([k]) => !['Version', 'SourceDbiResourceId', 'SourceDBInstanceAutomatedBackupsArn'].includes(k)));
      const made = await motoQuery(upstream, { service: 'rds', region: r.region, accessKey: r.accessKey }, { ...params, SourceDBInstanceIdentifier: src!.id });
      answer = xmlAnswer(made.status, made.text);
    } else {
      // In the replica's Region moto does not know the source: the layer makes the instance from its settings.
      const scripted = await next.rulesOnly();
      if (scripted) return scripted;
      const params: Record<string, string> = {};
      for (const [k, v] of r.params) if (k.startsWith('Tags.') || k.startsWith('VpcSecurityGroupIds.') || PASSED_TO_CREATE.includes(k)) params[k] = v;
      const from = replica.sourceInner;
      const made = await motoQuery(upstream, { service: 'rds', region: r.region, accessKey: r.accessKey }, {
        ...params,
        Action: 'CreateDBInstance',
        DBInstanceIdentifier: target,
        Engine: p('Engine') ?? childValue(from, 'Engine') ?? 'postgres',
        ...(childValue(from, 'EngineVersion') ? { EngineVersion: childValue(from, 'EngineVersion')! } : {}),
        DBInstanceClass: p('DBInstanceClass') ?? childValue(from, 'DBInstanceClass') ?? 'db.t3.micro',
        AllocatedStorage: p('AllocatedStorage') ?? childValue(from, 'AllocatedStorage') ?? '20',
        StorageType: p('StorageType') ?? childValue(from, 'StorageType') ?? 'gp2',
        MasterUsername: childValue(from, 'MasterUsername') ?? 'postgres',
        // RDS restores the source's master password; moto needs one to create the instance.
        MasterUserPassword: randomBytes(12).toString('hex'),
        BackupRetentionPeriod: p('BackupRetentionPeriod') ?? String(replica.source.retention),
        PubliclyAccessible: p('PubliclyAccessible') ?? 'false',
        ...(replica.encrypted ? { StorageEncrypted: 'true', KmsKeyId: p('KmsKeyId') ?? replica.kmsKeyId ?? '' } : {}),
      });
      answer = xmlAnswer(made.status, made.status === 200 ? made.text.split('CreateDBInstance').join('RestoreDBInstanceToPointInTime') : made.text);
    }
    const done = created('instance', answer, ['creating', 'backing-up'], (el) => ({ masterUsername: childValue(el, 'MasterUsername') }));
    const t = find(answer.status === 200 ? childValue(firstElement(answer.body, 'DBInstance') ?? '', 'DBInstanceArn') : undefined);
    const from = replica ? replica.source : { account: src!.account, region: src!.region, id: src!.id };
    if (t) hooks?.created(info(t), undefined, { source: { account: from.account, region: from.region, id: from.id }, restoreTime });
    return done;
  }

  /**
   * RestoreDBClusterToPointInTime (API_RestoreDBClusterToPointInTime.html): exactly one of RestoreToTime /
   * UseLatestRestorableTime, the source cluster (DBClusterNotFoundFault, 404), the time inside
   * EarliestRestorableTime..LatestRestorableTime (InvalidRestoreFault), a new identifier
   * (DBClusterAlreadyExistsFault, 400); then the cluster's usual lifecycle.
   */
  async function restoreClusterToPointInTime(r: RdsRequest, next: LayerNext): Promise<ScriptedResponse> {
    const moment = restoreMoment(r, 'RestoreToTime');
    if (isAnswer(moment)) return moment;
    const found = await describeOne(r, 'cluster', r.params.get('SourceDBClusterIdentifier') ?? '');
    if (!found.inner) return xmlAnswer(found.status, found.text);
    const src = sourceOf('cluster', found.inner);
    const window = src.window();
    const restoreTime = moment.at ?? window?.latest ?? new Date();
    if (!window || restoreTime.getTime() < window.earliest.getTime() || restoreTime.getTime() > window.latest.getTime()) return outsideWindow(`DB cluster ${src.id}`, restoreTime, window);
    const target = r.params.get('DBClusterIdentifier') ?? '';
    if ((await describeOne(r, 'cluster', target)).inner) return rdsError('DBClusterAlreadyExistsFault', `DB cluster already exists: ${target}`);
    return created('cluster', await next(), ['creating', 'backing-up']);
  }

  async function handle(req: ProxiedRequest, next: LayerNext): Promise<ScriptedResponse> {
    const r = rdsRequest(req)!;
    const p = (name: string) => r.params.get(name);
    const describeKind = DESCRIBES[r.action];
    if (describeKind) {
      const answer = await next();
      if (answer.status !== 200) return answer;
      const { body, looked } = rewrite(describeKind, answer);
      for (const t of looked) await poll(t);
      return { ...answer, body };
    }

    switch (r.action) {
      case 'CreateDBSnapshot':
      case 'CreateDBClusterSnapshot': {
        const cluster = r.action === 'CreateDBClusterSnapshot';
        const sourceId = p(cluster ? 'DBClusterIdentifier' : 'DBInstanceIdentifier');
        const source = find(await resolve(r, cluster ? 'cluster' : 'instance', sourceId));
        // CreateDBSnapshot: "The source DB instance must be in the available or storage-optimization state";
        // otherwise InvalidDBInstanceState, HTTP 400 (API_CreateDBSnapshot.html). CreateDBClusterSnapshot:
        // InvalidDBClusterStateFault, HTTP 400 (API_CreateDBClusterSnapshot.html).
        if (busy(source, ['available', 'storage-optimization'])) {
          return cluster
            ? refuse(source, 'InvalidDBClusterStateFault', `Cannot create a snapshot because the DB cluster ${sourceId} is not currently in the available state (${statusOf(source!)}).`)
            : refuse(source, 'InvalidDBInstanceState', `Cannot create a snapshot because the database instance ${sourceId} is not currently in the available state.`);
        }
        const full = await checkSnapshotQuota(r, cluster ? 'cluster' : 'instance');
        if (full) return full;
        return created(cluster ? 'cluster-snapshot' : 'snapshot', await next(), ['creating']);
      }

      case 'CopyDBSnapshot':
      case 'CopyDBClusterSnapshot': {
        const cluster = r.action === 'CopyDBClusterSnapshot';
        const kind = cluster ? 'cluster-snapshot' : 'snapshot';
        const sourceName = p(cluster ? 'SourceDBClusterSnapshotIdentifier' : 'SourceDBSnapshotIdentifier');
        const source = find(await resolve(r, kind, sourceName));
        // "The source DB snapshot must be in the available state" (API_CopyDBSnapshot.html); otherwise
        // InvalidDBSnapshotState / InvalidDBClusterSnapshotStateFault, HTTP 400.
        if (busy(source, ['available'])) {
          return cluster
            ? refuse(source, 'InvalidDBClusterSnapshotStateFault', `DB cluster snapshot ${sourceName} is not in available state (${statusOf(source!)}).`)
            : refuse(source, 'InvalidDBSnapshotState', `Snapshot ${sourceName} is not in available state (${statusOf(source!)}).`);
        }
        const full = await checkSnapshotQuota(r, cluster ? 'cluster' : 'instance');
        if (full) return full;
        // "You can have up to 20 snapshot copy requests in progress to a single destination Region per
        // account" (USER_CopySnapshot.html); past it RDS answers SnapshotQuotaExceeded ("Cannot copy more
        // than 5 snapshots across regions", as users reported it when the limit was 5).
        const account = await callerAccount(r);
        const limit = cluster ? copyLimits.cluster : copyLimits.instance;
        const inProgress = [...tracked.values()].filter((t) => t.copy && t.kind === kind && t.account === account && t.region === r.region && ['pending', 'copying'].includes(statusOf(t))).length;
        if (inProgress >= limit) return rdsError('SnapshotQuotaExceeded', `Cannot copy more than ${limit} snapshots across regions: ${inProgress} copies into ${r.region} are in progress.`);
        return created(kind, await next(), ['pending', 'copying'], () => ({ copy: true }));
      }

      case 'DeleteDBSnapshot':
      case 'DeleteDBClusterSnapshot': {
        const cluster = r.action === 'DeleteDBClusterSnapshot';
        const id = p(cluster ? 'DBClusterSnapshotIdentifier' : 'DBSnapshotIdentifier');
        const arn = await resolve(r, cluster ? 'cluster-snapshot' : 'snapshot', id);
        const t = find(arn);
        // "The DB snapshot must be in the available state to be deleted"; deleting one being copied
        // cancels the copy. Otherwise InvalidDBSnapshotState / InvalidDBClusterSnapshotStateFault, HTTP 400
        // (API_DeleteDBSnapshot.html, API_DeleteDBClusterSnapshot.html). A failed snapshot can be deleted.
        if (t && statusOf(t) === 'creating') {
          return cluster
            ? refuse(t, 'InvalidDBClusterSnapshotStateFault', `Cannot delete the DB cluster snapshot ${id} while it is being created.`)
            : refuse(t, 'InvalidDBSnapshotState', `Cannot delete the snapshot ${id} while it is being created.`);
        }
        const answer = await next();
        if (answer.status === 200 && arn) tracked.delete(key(arn));
        return answer;
      }

      case 'RestoreDBInstanceToPointInTime':
        return restoreInstanceToPointInTime(r, next);

      case 'RestoreDBClusterToPointInTime':
        return restoreClusterToPointInTime(r, next);

      case 'DescribeDBInstanceAutomatedBackups':
        return describeAutomatedBackups(r, next);

      case 'StartDBInstanceAutomatedBackupsReplication':
        return startReplication(r, next);

      case 'StopDBInstanceAutomatedBackupsReplication':
        return stopReplication(r, next);

      case 'CreateDBInstance':
      case 'RestoreDBInstanceFromDBSnapshot': {
        if (r.action === 'RestoreDBInstanceFromDBSnapshot') {
          const snapshotName = p('DBSnapshotIdentifier');
          const snapshot = find(await resolve(r, 'snapshot', snapshotName));
          // The snapshot must be available: InvalidDBSnapshotState, HTTP 400 (API_RestoreDBInstanceFromDBSnapshot.html).
          if (busy(snapshot, ['available'])) return refuse(snapshot, 'InvalidDBSnapshotState', `Snapshot ${snapshotName} is not in available state (${statusOf(snapshot!)}).`);
        }
        const answer = await next();
        const done = created('instance', answer, ['creating', 'backing-up'], (inner) => ({ clusterId: childValue(inner, 'DBClusterIdentifier') ?? p('DBClusterIdentifier') ?? undefined, masterUsername: childValue(inner, 'MasterUsername') }));
        const inner = answer.status === 200 ? firstElement(answer.body, 'DBInstance') : undefined;
        const t = find(inner ? childValue(inner, 'DBInstanceArn') : undefined);
        if (t) hooks?.created(info(t), p('MasterUserPassword') ?? undefined);
        return done;
      }

      case 'CreateDBCluster':
      case 'RestoreDBClusterFromSnapshot': {
        if (r.action === 'RestoreDBClusterFromSnapshot') {
          const name = p('SnapshotIdentifier');
          const snapshot = find(await resolve(r, 'cluster-snapshot', name)) ?? find(await resolve(r, 'snapshot', name));
          // The snapshot must be available: InvalidDBSnapshotState or InvalidDBClusterSnapshotStateFault,
          // HTTP 400 (API_RestoreDBClusterFromSnapshot.html).
          if (busy(snapshot, ['available'])) {
            return snapshot!.kind === 'snapshot'
              ? refuse(snapshot, 'InvalidDBSnapshotState', `Snapshot ${name} is not in available state (${statusOf(snapshot!)}).`)
              : refuse(snapshot, 'InvalidDBClusterSnapshotStateFault', `DB cluster snapshot ${name} is not in available state (${statusOf(snapshot!)}).`);
          }
        }
        return created('cluster', await next(), ['creating', 'backing-up']);
      }

      case 'ModifyDBInstance':
      case 'ModifyDBCluster': {
        const cluster = r.action === 'ModifyDBCluster';
        const kind = cluster ? 'cluster' : 'instance';
        const id = p(cluster ? 'DBClusterIdentifier' : 'DBInstanceIdentifier');
        const t = find(await resolve(r, kind, id));
        // ModifyDBInstance: InvalidDBInstanceState, HTTP 400 (API_ModifyDBInstance.html); ModifyDBCluster:
        // InvalidDBClusterStateFault, HTTP 400 (API_ModifyDBCluster.html).
        if (busy(t, ['available'])) {
          return cluster
            ? refuse(t, 'InvalidDBClusterStateFault', `DB cluster ${id} is not currently in the available state (${statusOf(t!)}).`)
            : refuse(t, 'InvalidDBInstanceState', `Database instance is not in available state (${statusOf(t!)}).`);
        }
        const answer = await next();
        const password = p('MasterUserPassword');
        // A new master password is applied asynchronously, whatever ApplyImmediately says; other changes
        // wait for the maintenance window unless ApplyImmediately is set.
        const phase: TransitionalStatus | undefined = password !== null ? 'resetting-master-credentials' : p('ApplyImmediately') === 'true' ? 'modifying' : undefined;
        if (answer.status !== 200 || !phase) return answer;
        const inner = firstElement(answer.body, KINDS[kind].element);
        const arn = inner ? childValue(inner, KINDS[kind].arnTag) : undefined;
        if (!arn) return answer;
        const keep = find(arn);
        track(kind, arn, [phase], 'available', {
          clusterId: keep?.clusterId ?? (inner ? childValue(inner, 'DBClusterIdentifier') : undefined),
          masterUsername: keep?.masterUsername ?? (inner ? childValue(inner, 'MasterUsername') : undefined),
          pendingPassword: password ?? undefined,
        });
        // The answer itself still shows the instance as it was, the change pending (as RDS answers).
        return answer;
      }

      case 'DeleteDBInstance':
      case 'DeleteDBCluster': {
        const cluster = r.action === 'DeleteDBCluster';
        const kind = cluster ? 'cluster' : 'instance';
        const id = p(cluster ? 'DBClusterIdentifier' : 'DBInstanceIdentifier') ?? '';
        const found = await describeOne(r, kind, id);
        if (!found.inner) return xmlAnswer(found.status, found.text);
        const arn = childValue(found.inner, KINDS[kind].arnTag)!;
        const t = find(arn);
        // DeleteDBInstance / DeleteDBCluster on one already being deleted: InvalidDBInstanceState /
        // InvalidDBClusterStateFault, HTTP 400 (API_DeleteDBInstance.html, API_DeleteDBCluster.html).
        if (t && statusOf(t) === 'deleting') {
          return cluster ? refuse(t, 'InvalidDBClusterStateFault', `Cluster ${id} is already being deleted.`) : refuse(t, 'InvalidDBInstanceState', `Instance ${id} is already being deleted.`);
        }
        if (childValue(found.inner, 'DeletionProtection') === 'true') {
          return rdsError('InvalidParameterCombination', `Cannot delete protected ${cluster ? 'Cluster' : 'DB Instance'}, please disable deletion protection and try again.`);
        }
        if (!cluster && t && statusOf(t) === 'creating' && p('SkipFinalSnapshot') !== 'true') {
          return refuse(t, 'InvalidDBInstanceState', 'Instance is currently creating - a final snapshot cannot be taken.');
        }
        if (cluster) {
          // "Cluster cannot be deleted, it still contains DB instances in non-deleting state." (InvalidDBClusterStateFault)
          const memberIds = [...(childValue(found.inner, 'DBClusterMembers') ?? '').matchAll(/<DBInstanceIdentifier>([^<]+)<\/DBInstanceIdentifier>/g)].map((m) => m[1]!);
          const account = await callerAccount(r);
          const live = memberIds.filter((m) => {
            const member = find(arnOf('instance', account, r.region, m));
            return !member || statusOf(member) !== 'deleting';
          });
          if (live.length > 0) return refuse(t, 'InvalidDBClusterStateFault', 'Cluster cannot be deleted, it still contains DB instances in non-deleting state.');
        }
        // A test's scripted fault for the delete still answers first.
        const scripted = await next.rulesOnly();
        if (scripted) return scripted;
        return deferredDelete(r, kind, found.inner, arn);
      }

      case 'DeleteDBSubnetGroup': {
        const name = p('DBSubnetGroupName') ?? '';
        // "The specified database subnet group must not be associated with any DB instances":
        // InvalidDBSubnetGroupStateFault, HTTP 400 (API_DeleteDBSubnetGroup.html). Instances being deleted
        // still use it; moto lets it go at once.
        const instances = await describeAll(r, 'DescribeDBInstances', 'DBInstance');
        const user = instances.find((i) => childValue(childValue(i, 'DBSubnetGroup') ?? '', 'DBSubnetGroupName') === name);
        const clusters = await describeAll(r, 'DescribeDBClusters', 'DBCluster');
        const clusterUser = clusters.find((c) => childValue(c, 'DBSubnetGroup') === name);
        if (user || clusterUser) {
          const userArn = user ? childValue(user, 'DBInstanceArn') : childValue(clusterUser!, 'DBClusterArn');
          const what = user ? `database instance: ${childValue(user, 'DBInstanceIdentifier')}` : `DB cluster: ${childValue(clusterUser!, 'DBClusterIdentifier')}`;
          return refuse(find(userArn), 'InvalidDBSubnetGroupStateFault', `Cannot delete the subnet group '${name}' because at least one ${what} is still using it.`);
        }
        return next();
      }
    }
    return next();
  }

  let queue: Promise<unknown> = Promise.resolve();
  const serialised = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  return {
    handles: (req) => {
      const r = rdsRequest(req);
      return r !== undefined && HANDLED.has(r.action);
    },
    handle: (req, next) => serialised(() => handle(req, next)),
    stop: async () => {
      await hooks?.stop();
    },
    makeBusy: (at, status = 'backing-up', count) => {
      const arn = arnOf(at.kind, at.account, at.region, at.id);
      const t = track(at.kind, arn, [status], 'available', { clusterId: find(arn)?.clusterId, masterUsername: find(arn)?.masterUsername });
      if (count !== undefined) {
        t.phases[0]!.polls = count;
        t.totalPolls = count;
      }
    },
    statusOf: (at) => {
      const t = find(arnOf(at.kind, at.account, at.region, at.id));
      return t ? statusOf(t) : undefined;
    },
    setRestoreWindow: (at, window) => {
      const k = key(arnOf(at.kind, at.account, at.region, at.id));
      if (window) pins.set(k, { ...window });
      else pins.delete(k);
    },
  };
}

/**
 * Waits, poll by poll, until RDS reports each instance and cluster available:
 * what a user does after creating a database (`aws rds wait
 * db-instance-available`), for fixtures that need a settled source.
 */
export async function waitUntilAvailable(rds: Pick<RDSClient, 'send'>, which: { instances?: readonly string[]; clusters?: readonly string[] }, maxPolls = 30): Promise<void> {
  const statusOf = async (kind: 'instance' | 'cluster', id: string) =>
    kind === 'instance'
      ? (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances?.[0]?.DBInstanceStatus
      : (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: id }))).DBClusters?.[0]?.Status;
  const pending: Array<['instance' | 'cluster', string]> = [...(which.instances ?? []).map((id) => ['instance', id] as ['instance', string]), ...(which.clusters ?? []).map((id) => ['cluster', id] as ['cluster', string])];
  for (const [kind, id] of pending) {
    let status: string | undefined;
    for (let i = 0; i < maxPolls; i++) {
      status = await statusOf(kind, id);
      if (status === 'available') break;
    }
    if (status !== 'available') throw new Error(`RDS ${kind} ${id} is still '${status}' after ${maxPolls} polls; expected it to become available.`);
  }
}
