import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { postgresBinary } from '../functions/lib/pg/binaries.ts';
import { logTail, makeClusterDir, runAsClusterUser, startLocalPostgres, type LocalPostgresCluster } from '../functions/lib/pg/postgres-cluster.ts';

/**
 * Real point-in-time recovery for the local RDS emulation (see drill-postgres.ts, which
 * puts these servers behind emulated instances).
 *
 * A PITR source is a throwaway PostgreSQL cluster that archives its WAL (archive_mode on,
 * an archive_command copying each finished segment into an archive directory; 1 MB
 * segments) and has a base backup (pg_basebackup, plain format) taken when it starts.
 * Recovering it to a moment starts a NEW cluster from a copy of that base backup with a
 * recovery.signal, a restore_command reading the archive, recovery_target_time = the
 * moment, recovery_target_inclusive and recovery_target_action = 'promote': PostgreSQL's
 * own archive recovery, the mechanism RDS's PITR is built on.
 *
 * What differs from RDS:
 * - RDS ships the WAL of an instance to S3 about every 5 minutes, so LatestRestorableTime
 *   lags by up to ~5 minutes. Here a segment is archived only when it fills or when the
 *   test calls switchWal() (pg_switch_wal, then waits for pg_stat_archiver): the latest
 *   restorable time moves exactly when the test says so.
 * - RDS restores from its newest automated snapshot before the moment, then replays logs;
 *   here there is one base backup, taken at start, and every recovery replays from it.
 *   The earliest restorable time is that backup's end, not the start of a retention window.
 * - A moment after the newest archived WAL is refused here at once (RDS refuses it in the
 *   API with InvalidRestoreFault, which is the strict layer's business).
 * - The restored cluster keeps the source's roles; the master user is a superuser here
 *   (rds_superuser on RDS) and the source's `rdsadmin` superuser stays with it.
 * - Recovered clusters do not archive (they are not PITR sources themselves).
 */

export interface PitrSourceOptions {
  /** Serve TLS with this certificate and key (PEM), as drill servers do. @default no TLS */
  readonly tls?: { readonly certPem: string; readonly keyPem: string };
  /** The master user (a superuser here, as the instance's master user). @default 'postgres' */
  readonly masterUsername?: string;
  /** Its password. @default a random one */
  readonly masterPassword?: string;
  /** Directory to create the source's `lifeboat-pitr-*` directory in. @default os.tmpdir() */
  readonly parentDir?: string;
}

export interface PitrSource {
  readonly host: string;
  readonly port: number;
  /** The cluster's own superuser (`rdsadmin`) and its password: restored clusters keep both. */
  readonly superuser: string;
  readonly password: string;
  readonly masterUsername: string;
  readonly masterPassword: string;
  readonly dataDir: string;
  /** Where archived WAL segments go (a recovery's restore_command reads them here). */
  readonly archiveDir: string;
  /** The plain-format base backup every recovery starts from. */
  readonly baseBackupDir: string;
  /** The source's own directory (cluster, archive and base backup); gone after stop(). */
  readonly root: string;
  /** The earliest moment a recovery can reach: the end of the base backup. */
  readonly earliestRestorable: Date;
  /** The newest moment every transaction committed before which is archived (the last switchWal's answer). */
  latestRestorable(): Date;
  /**
   * Forces a WAL segment switch and waits until the segment is archived. Returns a moment T:
   * every transaction committed before T is recoverable (and the archive holds a commit after T,
   * so a recovery to T ends). It becomes latestRestorable().
   */
  switchWal(): Promise<Date>;
  /** Stops the cluster and removes its directory, archive and base backup with it. Idempotent. */
  stop(): Promise<void>;
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;
/** A path inside a postgresql.conf string that is itself a shell command: no quotes or spaces allowed. */
function shellSafe(path: string): string {
  if (!/^[\w./+-]+$/.test(path)) throw new Error(`PITR paths must be plain (no spaces or quotes): ${path}`);
  return path;
}

async function withClient<T>(c: { host: string; port: number; user: string; password: string }, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host: c.host, port: c.port, user: c.user, password: c.password, database: 'postgres' });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a PITR source: a cluster archiving its WAL, with a base backup taken at start and one segment switched after it. */
export async function startPitrSource(options: PitrSourceOptions = {}): Promise<PitrSource> {
  const root = makeClusterDir('lifeboat-pitr-', options.parentDir ?? tmpdir());
  const archiveDir = join(root, 'archive');
  const baseBackupDir = join(root, 'base');
  const masterUsername = options.masterUsername ?? 'postgres';
  const masterPassword = options.masterPassword ?? `pw-${randomBytes(12).toString('hex')}`;
  let cluster: LocalPostgresCluster | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await cluster?.stop();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await runAsClusterUser('mkdir', [archiveDir]);
    const archive = shellSafe(archiveDir);
    cluster = await startLocalPostgres({
      superuser: 'rdsadmin',
      parentDir: root,
      ...(options.tls ? { tls: options.tls } : {}),
      initdbArgs: ['--wal-segsize=1'],
      settings: {
        wal_level: 'replica',
        archive_mode: 'on',
        // A segment appears in the archive whole (copied aside, then renamed), never twice.
        archive_command: `'test ! -f ${archive}/%f && cp %p ${archive}/%f.part && mv ${archive}/%f.part ${archive}/%f'`,
        // pg_basebackup forces full-page writes during the backup anyway; keep them on for replay from it.
        full_page_writes: 'on',
        min_wal_size: "'4MB'",
        max_wal_size: "'64MB'",
      },
    });
    const c = cluster;
    const superuserLogin = { host: c.host, port: c.port, user: c.superuser, password: c.password };
    await withClient(superuserLogin, (client) => client.query(`CREATE ROLE ${ident(masterUsername)} LOGIN SUPERUSER PASSWORD ${literal(masterPassword)}`));
    const pgBasebackup = join(dirname(postgresBinary('pg_ctl')), 'pg_basebackup');
    await runAsClusterUser(pgBasebackup, ['-h', c.host, '-p', String(c.port), '-U', c.superuser, '-D', baseBackupDir, '-Fp', '-X', 'stream', '-c', 'fast', '--no-sync'], {
      PGPASSWORD: c.password,
    });
    const earliestRestorable = new Date();
    let latest = earliestRestorable;
    let switching = Promise.resolve(earliestRestorable);

    const switchOnce = async (): Promise<Date> =>
      withClient(superuserLogin, async (client) => {
        // The server's clock, truncated to the millisecond: never after a commit it has seen.
        const { rows } = await client.query<{ ms: string }>(`SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms`);
        const moment = new Date(Number(rows[0]!.ms));
        // A commit after the moment, in the segment switched: a recovery to the moment finds where to stop.
        await client.query('SELECT txid_current()');
        const switched = await client.query<{ wal: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS wal');
        const wal = switched.rows[0]!.wal;
        const deadline = Date.now() + 30_000;
        for (;;) {
          const { rows: stat } = await client.query<{ last_archived_wal: string | null; last_failed_wal: string | null }>(
            'SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver',
          );
          const archived = stat[0]!.last_archived_wal;
          if (archived && archived.length === wal.length && archived >= wal && existsSync(join(archiveDir, wal))) break;
          if (Date.now() > deadline) {
            throw new Error(`WAL segment ${wal} was not archived within 30 s (last archived ${archived ?? 'none'}, last failed ${stat[0]!.last_failed_wal ?? 'none'})`);
          }
          await sleep(20);
        }
        if (moment > latest) latest = moment;
        return moment;
      });

    const source: PitrSource = {
      host: c.host,
      port: c.port,
      superuser: c.superuser,
      password: c.password,
      masterUsername,
      masterPassword,
      dataDir: c.dataDir,
      archiveDir,
      baseBackupDir,
      root,
      earliestRestorable,
      latestRestorable: () => latest,
      // One switch at a time: each answer is a moment its own segment covers.
      switchWal: () => {
        if (stopped) return Promise.reject(new Error('the PITR source is stopped'));
        switching = switching.catch(() => latest).then(switchOnce);
        return switching;
      },
      stop,
    };
    await source.switchWal();
    return source;
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * A moment as recovery_target_time takes it: ISO 8601 with a numeric offset
 * (`2024-05-01 10:00:00.123+00:00`). A `Z` is refused when the server reads its
 * configuration (time zone abbreviations are not loaded yet).
 */
export function recoveryTargetTime(moment: Date): string {
  return moment.toISOString().replace('T', ' ').replace(/Z$/, '+00:00');
}

export interface RecoverOptions {
  /** Serve TLS with this certificate and key (PEM). @default no TLS */
  readonly tls?: { readonly certPem: string; readonly keyPem: string };
  /** Directory to create the recovered cluster's `lifeboat-pg-*` directory in. @default os.tmpdir() */
  readonly parentDir?: string;
  /** A recovery taking longer fails (and its server is stopped). @default 120 */
  readonly timeoutSeconds?: number;
}

/**
 * Starts a new cluster holding `source` as it was at `moment` (every transaction committed at or
 * before it, none after), recovered from the source's base backup and WAL archive and promoted.
 * Rejects, with what the server said, when the moment is outside the source's restorable window or
 * the recovery fails (missing WAL, ...); nothing is left running then.
 */
export async function recoverToMoment(source: PitrSource, moment: Date, options: RecoverOptions = {}): Promise<LocalPostgresCluster> {
  if (!(moment.getTime() >= source.earliestRestorable.getTime())) {
    throw new Error(`cannot recover to ${moment.toISOString()}: before the earliest restorable time ${source.earliestRestorable.toISOString()} (the end of the source's base backup)`);
  }
  if (moment.getTime() > source.latestRestorable().getTime()) {
    throw new Error(`cannot recover to ${moment.toISOString()}: after the latest restorable time ${source.latestRestorable().toISOString()} (the newest archived WAL)`);
  }
  if (!existsSync(source.baseBackupDir)) throw new Error('cannot recover: the PITR source is stopped');
  const archive = shellSafe(source.archiveDir);
  const begun = Date.now();
  const timeoutMs = (options.timeoutSeconds ?? 120) * 1000;
  let cluster: LocalPostgresCluster;
  try {
    cluster = await startLocalPostgres({
      ...(options.parentDir ? { parentDir: options.parentDir } : {}),
      ...(options.tls ? { tls: options.tls } : {}),
      fromBaseBackup: { dir: source.baseBackupDir, superuser: source.superuser, password: source.password, recover: true },
      startTimeoutSeconds: Math.ceil(timeoutMs / 1000),
      settings: {
        // Not a PITR source itself: nothing goes into the source's archive.
        archive_mode: 'off',
        full_page_writes: 'on',
        restore_command: `'cp ${archive}/%f %p'`,
        recovery_target_time: literal(recoveryTargetTime(moment)),
        recovery_target_inclusive: 'on',
        recovery_target_timeline: "'latest'",
        recovery_target_action: "'promote'",
        // pg_ctl start -w returns once recovery is consistent (not yet at its target): the promotion is polled below.
        hot_standby: 'on',
      },
    });
  } catch (error) {
    throw new Error(`recovery to ${moment.toISOString()} failed: ${(error as Error).message}`, { cause: error });
  }
  const login = { host: cluster.host, port: cluster.port, user: cluster.superuser, password: cluster.password };
  const log = join(dirname(cluster.dataDir), 'postgres.log');
  for (;;) {
    let problem: string | undefined;
    try {
      const inRecovery = await withClient(login, async (client) => (await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r);
      if (!inRecovery) return cluster;
    } catch (error) {
      problem = (error as Error).message;
    }
    // The server shut down: recovery failed after it became consistent (the target was never reached, ...).
    const died = !existsSync(join(cluster.dataDir, 'postmaster.pid'));
    const late = Date.now() - begun > timeoutMs;
    if (died || late) {
      const said = logTail(log);
      await cluster.stop();
      const why = died ? 'the server stopped before it was promoted' : `not promoted within ${timeoutMs / 1000} s${problem ? ` (${problem})` : ''}`;
      throw new Error(`recovery to ${moment.toISOString()} failed: ${why}${said ? `\nserver log:\n${said}` : ''}`);
    }
    await sleep(50);
  }
}
