import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startLocalPostgres, type LocalPostgresCluster } from '../functions/lib/pg/postgres-cluster.ts';
import { recoverToMoment, type PitrSource } from './pitr-postgres.ts';
import type { InstanceHooks, InstanceInfo, PointInTimeRestoreInfo } from './strict-rds.ts';

/**
 * Real PostgreSQL servers behind emulated RDS instances (the strict RDS
 * layer's instance hooks), so a drill run from the shipped bundles restores
 * into and verifies a server it reached the way it would on AWS:
 *
 * - CreateDBInstance with a master password starts a throwaway cluster that
 *   serves TLS with a certificate of a local CA, and creates the master user
 *   with that password. Instances restored from a snapshot hold no data here
 *   and are not backed (their drills run emulated).
 * - Once the instance is available, its Endpoint is the cluster
 *   (127.0.0.1 and its port): clients connect with `verify-full` against the
 *   local CA (PGSSLROOTCERT, as the runner image points it at the RDS bundle).
 * - ModifyDBInstance's new master password is applied when the layer ends
 *   `resetting-master-credentials`, not before, as on AWS.
 * - DeleteDBInstance stops the cluster and removes its directory when the
 *   instance is gone; the proxy's stop() stops whatever is left.
 * - Point-in-time restores are real too, for the instances a test registered
 *   a PITR source for (registerSource; a source is a cluster archiving its WAL
 *   with a base backup, see pitr-postgres.ts): RestoreDBInstanceToPointInTime
 *   of such an instance (whatever the new instance is named) starts a new
 *   cluster recovered by PostgreSQL's archive recovery to the moment and
 *   promoted; the instance stays `backing-up` until then. Its master user is
 *   the source's, with the source's password until ModifyDBInstance sets one.
 *   LatestRestorableTime is the source's: the moment of its last switchWal(),
 *   as only archived WAL can be replayed. A recovery that fails (a moment
 *   outside the source's window, missing WAL) is in `failures`. The source
 *   instance's Endpoint is the source cluster; stop() stops the sources too.
 *   Restores of unregistered instances hold no data here, as snapshot restores.
 *
 * What differs from RDS is in docs/aws-fidelity.md (the master user is a
 * superuser here, rds_superuser on RDS) and, for PITR, in pitr-postgres.ts's
 * head comment: RDS ships WAL to S3 about every 5 minutes on its own, here a
 * segment is archived when a test calls switchWal() (or it fills), so the
 * latest restorable time moves on demand; one base backup taken at the
 * source's start stands for RDS's automated snapshots.
 */

/** A certificate authority made for one test run, and a server certificate for 127.0.0.1 it signed. */
export interface LocalCertificateAuthority {
  /** The CA certificate (PEM file): what PGSSLROOTCERT names. */
  readonly caPath: string;
  readonly server: { readonly certPem: string; readonly keyPem: string };
  remove(): void;
}

export function createLocalCertificateAuthority(parentDir = tmpdir()): LocalCertificateAuthority {
  const dir = mkdtempSync(join(parentDir, 'lifeboat-ca-'));
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', at('ca.key'), '-out', at('ca.crt'), '-days', '2', '-subj', '/CN=lifeboat local RDS CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(at('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', at('server.csr'), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at('server.crt'), '-days', '2', '-extfile', at('server.ext'));
  return {
    caPath: at('ca.crt'),
    server: { certPem: readFileSync(at('server.crt'), 'utf8'), keyPem: readFileSync(at('server.key'), 'utf8') },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface DrillPostgresOptions {
  /** The server certificate every cluster serves. */
  readonly tls: LocalCertificateAuthority['server'];
  /** Which instances get a server. @default those named like drill throwaways (`lifeboat-drill-*`) */
  readonly backs?: (instance: InstanceInfo) => boolean;
  /** A point-in-time recovery taking longer fails (into `failures`). @default 120 */
  readonly recoveryTimeoutSeconds?: number;
  /** Directory the servers' `lifeboat-pg-*` directories are made in. @default os.tmpdir() */
  readonly parentDir?: string;
}

interface Backing {
  readonly master: string;
  cluster?: LocalPostgresCluster;
  readonly ready: Promise<LocalPostgresCluster | undefined>;
}

export interface DrillPostgres extends InstanceHooks {
  /** The servers running now, by instance identifier. */
  running(): { id: string; port: number; dataDir: string }[];
  /** Every server started, running or not (to prove one was stopped and removed). */
  readonly started: { id: string; port: number; dataDir: string }[];
  /** Instances whose server failed to start (or to recover to its moment), and why. */
  readonly failures: { id: string; error: string }[];
  /**
   * Puts a PITR source (startPitrSource) behind an instance: point-in-time restores of it recover
   * the source for real, latestRestorable() reports its newest archived moment, and the instance's
   * Endpoint is the source cluster. The source is handed over: stop() stops it.
   */
  registerSource(instance: { readonly account: string; readonly region: string; readonly id: string }, source: PitrSource): void;
  /** Point-in-time restores started, and how each ended (to prove what a drill ran against). */
  readonly recoveries: { id: string; source: string; restoreTime: Date; millis?: number; error?: string }[];
}

const key = (i: { readonly account: string; readonly region: string; readonly id: string }) => `${i.account}/${i.region}/${i.id}`;

async function asSuperuser(cluster: LocalPostgresCluster, sql: string): Promise<void> {
  const client = new pg.Client({ host: cluster.host, port: cluster.port, user: cluster.superuser, password: cluster.password, database: 'postgres' });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;

export function drillPostgres(options: DrillPostgresOptions): DrillPostgres {
  const backs = options.backs ?? ((i: InstanceInfo) => i.id.startsWith('lifeboat-drill-'));
  const backings = new Map<string, Backing>();
  const failures: { id: string; error: string }[] = [];
  const started: { id: string; port: number; dataDir: string }[] = [];
  const sources = new Map<string, PitrSource>();
  const recoveries: DrillPostgres['recoveries'] = [];

  /** A new cluster recovered from a registered source to the moment. */
  function recover(instance: InstanceInfo, source: PitrSource, pointInTime: PointInTimeRestoreInfo): void {
    const record: DrillPostgres['recoveries'][number] = { id: instance.id, source: pointInTime.source.id, restoreTime: pointInTime.restoreTime };
    recoveries.push(record);
    const begun = Date.now();
    const backing: Backing = {
      master: source.masterUsername,
      ready: recoverToMoment(source, pointInTime.restoreTime, {
        tls: options.tls,
        timeoutSeconds: options.recoveryTimeoutSeconds ?? 120,
        ...(options.parentDir ? { parentDir: options.parentDir } : {}),
      }).then(
        (cluster) => {
          record.millis = Date.now() - begun;
          started.push({ id: instance.id, port: cluster.port, dataDir: cluster.dataDir });
          // Deleted (or stopped) while it recovered: nothing may keep running.
          if (backings.get(key(instance)) !== backing) return cluster.stop().then(() => undefined);
          backing.cluster = cluster;
          return cluster;
        },
        (error: Error) => {
          record.millis = Date.now() - begun;
          record.error = error.message;
          failures.push({ id: instance.id, error: error.message });
          return undefined;
        },
      ),
    };
    backings.set(key(instance), backing);
  }

  return {
    failures,
    started,
    recoveries,
    registerSource(instance, source) {
      sources.set(key(instance), source);
    },
    latestRestorable(instance) {
      return sources.get(key(instance))?.latestRestorable();
    },
    created(instance, masterPassword, pointInTime) {
      if (backings.has(key(instance))) return;
      const source = pointInTime ? sources.get(key(pointInTime.source)) : undefined;
      if (source && pointInTime) {
        recover(instance, source, pointInTime);
        return;
      }
      if (!backs(instance) || masterPassword === undefined) return;
      const master = instance.masterUsername ?? 'postgres';
      const backing: Backing = {
        master,
        ready: startLocalPostgres({ tls: options.tls, superuser: 'rdsadmin', ...(options.parentDir ? { parentDir: options.parentDir } : {}) }).then(
          async (cluster) => {
            await asSuperuser(cluster, `CREATE ROLE ${ident(master)} LOGIN SUPERUSER PASSWORD ${literal(masterPassword)}`);
            backing.cluster = cluster;
            started.push({ id: instance.id, port: cluster.port, dataDir: cluster.dataDir });
            return cluster;
          },
          (error: Error) => {
            failures.push({ id: instance.id, error: error.message });
            return undefined;
          },
        ),
      };
      backings.set(key(instance), backing);
    },
    ready(instance) {
      const backing = backings.get(key(instance));
      return !backing || backing.cluster !== undefined || failures.some((f) => f.id === instance.id);
    },
    endpoint(instance) {
      const cluster = backings.get(key(instance))?.cluster ?? sources.get(key(instance));
      return cluster ? { host: cluster.host, port: cluster.port } : undefined;
    },
    async passwordApplied(instance, password) {
      const backing = backings.get(key(instance));
      const cluster = await backing?.ready;
      if (backing && cluster) await asSuperuser(cluster, `ALTER ROLE ${ident(backing.master)} PASSWORD ${literal(password)}`);
    },
    async deleted(instance) {
      const backing = backings.get(key(instance));
      backings.delete(key(instance));
      await (await backing?.ready)?.stop();
    },
    async stop() {
      const all = [...backings.values()];
      const handedOver = [...sources.values()];
      backings.clear();
      sources.clear();
      await Promise.all([...all.map(async (b) => (await b.ready)?.stop()), ...handedOver.map((s) => s.stop())]);
    },
    running: () =>
      [...backings.entries()].flatMap(([k, b]) => (b.cluster ? [{ id: k.split('/')[2]!, port: b.cluster.port, dataDir: b.cluster.dataDir }] : [])),
  };
}
