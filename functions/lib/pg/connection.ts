import { readFileSync } from 'node:fs';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import type { ConnectionConfig } from '../config/schema.ts';
import { ConfigError, DatabaseConnectionError } from '../errors.ts';
import type { SecretRegistry } from '../redact.ts';
import type { IamAuthTokenSigner } from './iam-auth.ts';

/** Everything needed to connect. Holds the password: never log or return it. */
export interface ResolvedConnection {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  sslMode: ConnectionConfig['sslMode'];
  connectTimeoutSeconds: number;
  /** Path of the CA bundle for verify-ca/verify-full (the RDS bundle in the image). */
  sslRootCert?: string;
  /**
   * Send the password only through SCRAM (connection.passwordAuth): a server
   * asking for a cleartext or MD5 password is refused before anything is sent.
   * @default false (throwaways, restore targets, RDS IAM tokens)
   */
  requireScram?: boolean;
}

interface SecretShape {
  username?: string;
  password?: string;
  host?: string;
  port?: number | string;
  dbname?: string;
}

/**
 * Resolves a connection's credentials from Secrets Manager (RDS secrets carry
 * host/port/username too) or, for the CLI, an environment variable. The password
 * is registered with `secrets` so every later message is redacted.
 */
export async function resolveConnection(
  databaseId: string,
  connection: ConnectionConfig,
  deps: {
    secrets?: SecretsManagerClient;
    env?: NodeJS.ProcessEnv;
    registry: SecretRegistry;
    /** Signs RDS IAM auth tokens (connection.iamAuth); see iam-auth.ts. */
    iamAuthToken?: IamAuthTokenSigner;
    /** Finds the endpoint when neither the config nor the secret names the host (RDS-managed secrets); see rds-endpoint.ts. */
    endpoint?: () => Promise<{ host: string; port: number }>;
  },
): Promise<ResolvedConnection> {
  const env = deps.env ?? process.env;
  if (connection.iamAuth) return resolveIamAuthConnection(databaseId, connection, deps, env);
  let secret: SecretShape = {};
  if (connection.secretArn) {
    if (!deps.secrets) throw new Error('a Secrets Manager client is required to resolve secretArn');
    try {
      const out = await deps.secrets.send(new GetSecretValueCommand({ SecretId: connection.secretArn }));
      secret = JSON.parse(out.SecretString ?? '{}') as SecretShape;
    } catch (error) {
      throw new DatabaseConnectionError(
        `Could not read the credentials of database "${databaseId}" from secret ${connection.secretArn}: ${(error as Error).name}: ${(error as Error).message}`,
        { cause: error, nextStep: 'check that the secret exists, holds JSON with "password", and that the function role may read it.' },
      );
    }
  }
  const password = connection.passwordEnv ? env[connection.passwordEnv] : secret.password;
  deps.registry.add(password);
  if (!password) {
    throw new ConfigError(`database "${databaseId}"`, [
      connection.passwordEnv
        ? `connection.passwordEnv: environment variable ${connection.passwordEnv} is not set`
        : `connection.secretArn: secret ${connection.secretArn} has no "password" field`,
    ]);
  }
  const looked = !connection.host && !secret.host && deps.endpoint ? await deps.endpoint() : undefined;
  const host = connection.host ?? secret.host ?? looked?.host;
  const user = connection.username ?? secret.username;
  if (!host || !user) {
    throw new ConfigError(`database "${databaseId}"`, [
      `${!host ? 'connection.host' : 'connection.username'}: not set in config and not present in the secret`,
    ]);
  }
  return {
    host,
    port: connection.port ?? (secret.port !== undefined ? Number(secret.port) : (looked?.port ?? 5432)),
    database: connection.database,
    user,
    password,
    sslMode: connection.sslMode,
    connectTimeoutSeconds: connection.connectTimeoutSeconds,
    sslRootCert: env.PGSSLROOTCERT,
    requireScram: connection.passwordAuth === 'scram-sha-256',
  };
}

/** RDS IAM authentication: the password is a token signed for this host, port and user. */
async function resolveIamAuthConnection(
  databaseId: string,
  connection: ConnectionConfig,
  deps: { registry: SecretRegistry; iamAuthToken?: IamAuthTokenSigner },
  env: NodeJS.ProcessEnv,
): Promise<ResolvedConnection> {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!connection.host || !connection.username || !region || !deps.iamAuthToken) {
    throw new ConfigError(`database "${databaseId}"`, [
      !deps.iamAuthToken
        ? 'connection.iamAuth: this runner has no RDS IAM token signer; use connection.secretArn, or deploy a runner with @aws-sdk/rds-signer'
        : !region
          ? 'connection.iamAuth: AWS_REGION is not set, so no token can be signed'
          : `connection.${connection.host ? 'username' : 'host'}: RDS IAM authentication needs it`,
    ]);
  }
  const port = connection.port ?? 5432;
  const password = await deps.iamAuthToken({ hostname: connection.host, port, username: connection.username, region });
  deps.registry.add(password);
  return {
    host: connection.host,
    port,
    database: connection.database,
    user: connection.username,
    password,
    sslMode: connection.sslMode,
    connectTimeoutSeconds: connection.connectTimeoutSeconds,
    sslRootCert: env.PGSSLROOTCERT,
  };
}

/** Where a database is, for messages: never includes credentials. */
export function describeTarget(databaseId: string, c: Pick<ResolvedConnection, 'host' | 'port' | 'database' | 'user'>): string {
  return `database "${databaseId}" (${c.database} on ${c.host}:${c.port} as ${c.user})`;
}

/** libpq environment for pg_dump/pg_restore: keeps the password out of argv and ps. */
export function libpqEnv(c: ResolvedConnection, applicationName = 'lifeboat'): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANG: 'C.UTF-8',
    PGHOST: c.host,
    PGPORT: String(c.port),
    PGDATABASE: c.database,
    PGUSER: c.user,
    PGPASSWORD: c.password,
    PGSSLMODE: c.sslMode,
    PGCONNECT_TIMEOUT: String(c.connectTimeoutSeconds),
    PGAPPNAME: applicationName,
  };
  if (c.sslRootCert) env.PGSSLROOTCERT = c.sslRootCert;
  // libpq 16+ refuses a server that asks for a cleartext or MD5 password (older libpqs do not read it; the
  // runners' own connection, made first with the same credentials, refuses it for them: see connect()).
  if (c.requireScram) env.PGREQUIREAUTH = '!password,!md5';
  return env;
}

function sslOption(c: ResolvedConnection): pg.ClientConfig['ssl'] {
  switch (c.sslMode) {
    case 'disable':
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    default:
      // verify-ca and verify-full: node's TLS always checks the host name.
      return { rejectUnauthorized: true, ...(c.sslRootCert ? { ca: readCa(c.sslRootCert) } : {}) };
  }
}

let caCache: { path: string; pem: string } | undefined;
function readCa(path: string): string {
  if (caCache?.path !== path) caCache = { path, pem: readFileSync(path, 'utf8') };
  return caCache.pem;
}

/** Node's TLS codes for a server certificate the client does not trust (chain, name or dates). */
const TLS_TRUST_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * True when a connection failed because the server's certificate was not
 * trusted: waiting does not help (unlike a server still starting), so a drill
 * fails at once instead of retrying.
 */
export function isTlsTrustFailure(error: unknown): boolean {
  const code = ((error as { cause?: { code?: string } }).cause ?? (error as { code?: string }))?.code;
  return code !== undefined && TLS_TRUST_CODES.has(code);
}

/** Classifies a pg connection failure into a clear, redacted message. */
/**
 * A connection failure with the next step for the side it is on: the backed-up
 * database (credentials from its secret, "rerun the backup") or a restore
 * target (credentials from --target and PGPASSWORD).
 */
export function connectionFailure(databaseId: string, c: ResolvedConnection, error: unknown, side: 'source' | 'target' = 'source'): DatabaseConnectionError {
  const e = error as { code?: string; message?: string };
  const where = describeTarget(databaseId, c);
  const detail = e.message ?? String(error);
  const target = side === 'target';
  let nextStep = target
    ? 'check that the restore target is reachable from here and that --target and PGPASSWORD are right.'
    : 'check that the database is reachable from the backup runner and the credentials are current.';
  if (e.code && TLS_TRUST_CODES.has(e.code)) {
    nextStep =
      `the server's TLS certificate was not trusted (sslMode ${c.sslMode}): check that PGSSLROOTCERT (${c.sslRootCert ?? 'not set: the system CA store'}) holds the CA that signed it ` +
      '(the runner image ships the RDS CA bundle) and that the host name is the one in the certificate. Do not lower sslMode to get past it.';
  } else if (e.code === '28P01' || e.code === '28000') {
    nextStep = target
      ? 'the target rejected the password or user: check the user in --target and PGPASSWORD (lifeboat never takes a password from the command line).'
      : 'the password or user was rejected: rotate or fix the secret, then rerun the backup.';
  } else if (e.code === 'ECONNREFUSED' || e.code === 'ENOTFOUND' || e.code === 'ETIMEDOUT' || e.code === 'EHOSTUNREACH' || /timeout/i.test(detail)) {
    nextStep = target
      ? "the target did not accept connections: check --target's host and port, its security groups, and that the server is running."
      : 'the host did not accept connections: check the host, port, security groups and that the database is running.';
  } else if (e.code === '3D000') {
    nextStep = target ? 'the target database does not exist: add --create to make it, or fix the name in --target.' : 'the database name does not exist on that server: fix connection.database.';
  }
  return new DatabaseConnectionError(`Cannot connect to ${where}: ${detail}`, { cause: error, nextStep });
}

/** The application names of connections to a restore target (restore, verification), as opposed to a backed-up database. */
const TARGET_APPLICATION = /^lifeboat-(restore|verify)/;

export async function connect(databaseId: string, c: ResolvedConnection, applicationName = 'lifeboat'): Promise<pg.Client> {
  const client = new pg.Client({
    host: c.host,
    port: c.port,
    database: c.database,
    user: c.user,
    password: c.password,
    ssl: sslOption(c),
    connectionTimeoutMillis: c.connectTimeoutSeconds * 1000,
    application_name: applicationName,
  });
  // An idle-connection error after connect must not crash the process.
  client.on('error', () => undefined);
  const refused = c.requireScram ? refuseNonScramPasswords(client) : undefined;
  try {
    await client.connect();
    // An impostor may send its ask and "authentication ok" in one packet: connect() then resolves on a dead socket.
    if (refused?.asked) throw new Error('the server asked for a password lifeboat does not send');
  } catch (error) {
    await client.end().catch(() => undefined);
    if (refused?.asked) {
      throw new DatabaseConnectionError(
        `Cannot connect to ${describeTarget(databaseId, c)}: the server asked for ${refused.asked}, and lifeboat sends this database's password only through SCRAM (connection.passwordAuth "scram-sha-256"); nothing was sent.`,
        {
          cause: error,
          nextStep:
            "store the user's password as SCRAM (SET password_encryption = 'scram-sha-256', then set the password again; RDS and Aurora accept it under their md5 pg_hba lines), or, if you accept the risk for this database, set connection.passwordAuth to \"any\".",
        },
      );
    }
    throw connectionFailure(databaseId, c, error, TARGET_APPLICATION.test(applicationName) ? 'target' : 'source');
  }
  return client;
}

/**
 * Makes the client hang up instead of answering a cleartext or MD5 password
 * request (node-postgres has no require_auth): the password never leaves.
 * Returns what the server asked for, once it has.
 */
function refuseNonScramPasswords(client: pg.Client): { asked?: string } {
  const state: { asked?: string } = {};
  const handlers = client as unknown as Record<'_handleAuthCleartextPassword' | '_handleAuthMD5Password', (msg: unknown) => void> & { connection: { stream: { destroy(): void } } };
  const refuse = (asked: string) => () => {
    state.asked = asked;
    handlers.connection.stream.destroy();
  };
  // Read when connect() attaches its listeners: own properties shadow the prototype's.
  handlers._handleAuthCleartextPassword = refuse('a cleartext password');
  handlers._handleAuthMD5Password = refuse('an MD5 password');
  return state;
}
