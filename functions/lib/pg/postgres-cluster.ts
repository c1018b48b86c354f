import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { postgresBinary } from './binaries.ts';
import { freePort } from './ports.ts';

const execFileAsync = promisify(execFile);

export interface LocalPostgresCluster {
  readonly host: string;
  readonly port: number;
  readonly superuser: string;
  /** Superuser password; host connections use scram-sha-256, so a wrong one is refused. */
  readonly password: string;
  readonly dataDir: string;
  stop(): Promise<void>;
}

interface OsUser {
  uid: number;
  gid: number;
  name: string;
}

/** initdb and postgres refuse to run as root; as root we run them as the `postgres` user. */
function unprivilegedUser(): OsUser | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const name = process.env.LIFEBOAT_PG_OS_USER ?? 'postgres';
  const id = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (id.status !== 0 || gid.status !== 0) {
    throw new Error(
      `Running as root, but there is no "${name}" OS user to run initdb/postgres as. Create one (useradd -r ${name}) or set LIFEBOAT_PG_OS_USER.`,
    );
  }
  return { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()), name };
}

async function runAs(user: OsUser | undefined, binary: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const [cmd, fullArgs] = user ? ['runuser', ['-u', user.name, '--', binary, ...args]] : [binary, args];
  try {
    const { stdout } = await execFileAsync(cmd, fullArgs, { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${binary} ${args[0] ?? ''} failed: ${e.stderr || e.message}`, { cause: error });
  }
}

export interface StartClusterOptions {
  /** Extra postgresql.conf settings. */
  settings?: Record<string, string | number>;
  superuser?: string;
  /** Directory to create the cluster's `lifeboat-pg-*` directory in. @default os.tmpdir() */
  parentDir?: string;
  /** Serve TLS with this certificate and key (PEM); clients may still connect without TLS. @default no TLS */
  tls?: { readonly certPem: string; readonly keyPem: string };
  /** Extra initdb arguments (e.g. `--wal-segsize=1`). Not used with `fromBaseBackup`. */
  initdbArgs?: readonly string[];
  /**
   * Start from a copy of a plain-format base backup (pg_basebackup -Fp) instead of initdb. The
   * backup's roles come with it: `superuser` and `password` must be a superuser it holds (they are
   * what the cluster reports). Its postgresql.auto.conf is replaced by this cluster's settings.
   * With `recover`, a recovery.signal is written: put restore_command and the recovery target in
   * `settings` (with hot_standby off, the start returns once recovery ended and the server accepts
   * connections). A start that fails carries the tail of the server log in its error.
   */
  fromBaseBackup?: { readonly dir: string; readonly superuser: string; readonly password: string; readonly recover?: boolean };
  /** How long pg_ctl waits for the server to accept connections. @default 60 */
  startTimeoutSeconds?: number;
}

/**
 * Starts a throwaway PostgreSQL cluster: initdb in a fresh temp dir, listening on
 * loopback only, on a free port, with password auth for TCP connections.
 * Stopping it removes the data directory.
 */
/** Longest Unix domain socket path PostgreSQL accepts (sun_path is 108 bytes with its terminating NUL). */
const MAX_SOCKET_PATH = 107;

export async function startLocalPostgres(options: StartClusterOptions = {}): Promise<LocalPostgresCluster> {
  const initdb = postgresBinary('initdb');
  const pgCtl = postgresBinary('pg_ctl');
  const user = unprivilegedUser();
  const root = mkdtempSync(join(options.parentDir ?? tmpdir(), 'lifeboat-pg-'));
  const dataDir = join(root, 'data');
  const socketDir = join(root, 'sock');
  const superuser = options.fromBaseBackup?.superuser ?? options.superuser ?? 'lifeboat_admin';
  const password = options.fromBaseBackup?.password ?? `pw-${randomBytes(12).toString('hex')}`;
  const pwFile = join(root, 'pwfile');
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  spawnSync('mkdir', ['-p', socketDir]);
  if (user) {
    for (const p of [root, socketDir, pwFile]) chownSync(p, user.uid, user.gid);
  }
  chmodSync(root, 0o700);
  const tlsSettings: Record<string, string> = {};
  if (options.tls) {
    // PostgreSQL refuses a key file others can read; it must belong to the server's OS user.
    for (const [name, pem, mode] of [['server.crt', options.tls.certPem, 0o644], ['server.key', options.tls.keyPem, 0o600]] as const) {
      writeFileSync(join(root, name), pem, { mode });
      if (user) chownSync(join(root, name), user.uid, user.gid);
    }
    Object.assign(tlsSettings, { ssl: 'on', ssl_cert_file: `'${join(root, 'server.crt')}'`, ssl_key_file: `'${join(root, 'server.key')}'` });
  }

  const port = await freePort();
  let started = false;
  let startAttempted = false;
  const stop = async () => {
    // pg_ctl start may give up (its timeout) on a server that still runs: stop that one too.
    if (started || startAttempted) {
      startAttempted = false;
      started = false;
      await runAs(user, pgCtl, ['stop', '-D', dataDir, '-m', 'immediate', '-w']).catch(() => undefined);
    }
    rmSync(root, { recursive: true, force: true });
  };
  try {
    if (options.fromBaseBackup) {
      // As the server's OS user, so the copy is its own (PostgreSQL wants a 0700 data directory it owns).
      await runAs(user, 'cp', ['-a', options.fromBaseBackup.dir, dataDir]);
      chmodSync(dataDir, 0o700);
      if (options.fromBaseBackup.recover) {
        writeFileSync(join(dataDir, 'recovery.signal'), '');
        if (user) chownSync(join(dataDir, 'recovery.signal'), user.uid, user.gid);
      }
    } else {
      await runAs(user, initdb, [
        '-D', dataDir, '-U', superuser, `--pwfile=${pwFile}`,
        '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync',
        ...(options.initdbArgs ?? []),
      ]);
    }
    const settings: Record<string, string | number> = {
      listen_addresses: "'127.0.0.1'",
      port,
      // A Unix socket path may hold 107 bytes: under a long temp dir (a test run's own TMPDIR, macOS's
      // /var/folders/...) the cluster listens on TCP only, which is all lifeboat connects with.
      unix_socket_directories: `${join(socketDir, `.s.PGSQL.${port}`).length <= MAX_SOCKET_PATH ? `'${socketDir}'` : "''"}`,
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: 100,
      shared_buffers: "'128MB'",
      ...tlsSettings,
      ...options.settings,
    };
    const conf = Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n');
    writeFileSync(join(dataDir, 'postgresql.auto.conf'), `${conf}\n`);
    if (user) chownSync(join(dataDir, 'postgresql.auto.conf'), user.uid, user.gid);
    startAttempted = true;
    await runAs(user, pgCtl, ['start', '-D', dataDir, '-w', '-t', String(options.startTimeoutSeconds ?? 60), '-l', join(root, 'postgres.log')]);
    started = true;
  } catch (error) {
    const log = options.fromBaseBackup ? logTail(join(root, 'postgres.log')) : '';
    await stop();
    if (log) throw new Error(`${(error as Error).message.trim()}\nserver log:\n${log}`, { cause: error });
    throw error;
  }
  return { host: '127.0.0.1', port, superuser, password, dataDir, stop };
}

/** The last lines of a server log (what a failed start or recovery said), or '' when there is none. */
export function logTail(path: string, lines = 15): string {
  if (!existsSync(path)) return '';
  return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Runs a PostgreSQL tool (pg_basebackup, ...) as the OS user the throwaway clusters run as: the
 * `postgres` user (or LIFEBOAT_PG_OS_USER) when running as root, else the current user.
 */
export async function runAsClusterUser(binary: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return runAs(unprivilegedUser(), binary, args, env);
}

/** A new `<prefix>*` directory (mode 0700) that the clusters' OS user owns: for files a cluster reads or writes outside its own directory. */
export function makeClusterDir(prefix: string, parentDir = tmpdir()): string {
  const user = unprivilegedUser();
  const dir = mkdtempSync(join(parentDir, prefix));
  if (user) chownSync(dir, user.uid, user.gid);
  chmodSync(dir, 0o700);
  return dir;
}
