import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startLocalPostgres, type LocalPostgresCluster } from '../functions/lib/pg/postgres-cluster.ts';
import type { InstanceHooks, InstanceInfo } from './strict-rds.ts';

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
 *
 * What differs from RDS is in docs/aws-fidelity.md (the master user is a
 * superuser here, rds_superuser on RDS).
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
  /** Instances whose server failed to start, and why. */
  readonly failures: { id: string; error: string }[];
}

const key = (i: InstanceInfo) => `${i.account}/${i.region}/${i.id}`;

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
  return {
    failures,
    started,
    created(instance, masterPassword) {
      if (!backs(instance) || masterPassword === undefined || backings.has(key(instance))) return;
      const master = instance.masterUsername ?? 'postgres';
      const backing: Backing = {
        master,
        ready: startLocalPostgres({ tls: options.tls, superuser: 'rdsadmin' }).then(
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
      const cluster = backings.get(key(instance))?.cluster;
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
      backings.clear();
      await Promise.all(all.map(async (b) => (await b.ready)?.stop()));
    },
    running: () =>
      [...backings.entries()].flatMap(([k, b]) => (b.cluster ? [{ id: k.split('/')[2]!, port: b.cluster.port, dataDir: b.cluster.dataDir }] : [])),
  };
}
