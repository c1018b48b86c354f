import type pg from 'pg';
import type { FetchResult } from '../restore/fetch.ts';
import type { Inventory, Manifest } from '../backup/manifest.ts';
import { compareInventories, type ComparisonCheck } from '../restore/compare.ts';
import { privilegesUnknownTo } from '../pg/privileges.ts';
import { connect, type ResolvedConnection } from '../pg/connection.ts';
import { quoteIdent, takeInventory } from '../pg/inventory.ts';
import type { SecretRegistry } from '../redact.ts';
import { capDifferences, type DrillCheck, type DrillRequest, type RestoreClientRecord } from './types.ts';

/**
 * The drill's verification suite beyond the manifest comparison (which
 * restoreBackup already runs): amcheck on btree indexes, the user's SQL
 * assertions, and the two freshness checks. Each is its own check with its
 * own status; one failing never hides another.
 */

/** Rows newer than the backup's consistent point by more than this are clock trouble, not freshness. */
const CLOCK_SKEW_SECONDS = 300;
const ASSERTION_TIMEOUT_MS = 5 * 60_000;

export function check(name: string, ok: boolean, detail: string, differences: readonly string[] = []): DrillCheck {
  return { name, status: ok ? 'passed' : 'failed', detail, differences: capDifferences(differences) };
}

export function notPerformed(name: string, why: string): DrillCheck {
  return { name, status: 'not-performed', detail: why, differences: [] };
}

export function skipped(name: string, why: string): DrillCheck {
  return { name, status: 'skipped', detail: why, differences: [] };
}

/** The manifest comparison, check by check. */
export function fromComparison(c: ComparisonCheck): DrillCheck {
  return check(c.name, c.ok, c.detail, c.differences);
}

/** What a successful download and pg_restore proved. */
export function restoreChecks(fetch: Pick<FetchResult, 'sha256'> & { plaintextBytes?: number }, client?: RestoreClientRecord): DrillCheck[] {
  const ran = client ? `pg_restore ${client.pgRestore.version} into PostgreSQL ${client.targetServerVersion}: ` : '';
  return [
    check('sha256', true, `stored object matches the manifest (${fetch.sha256.slice(0, 12)}…)`),
    check('decryption', true, fetch.plaintextBytes === undefined ? 'authenticated' : `${fetch.plaintextBytes} bytes authenticated`),
    check('pg_restore', true, `${ran}exit 0 with --exit-on-error`),
  ];
}

export const MANIFEST_CHECKS = ['tables', 'row counts', 'sequences', 'schema fingerprint', 'large objects', 'extensions', 'owners and privileges'] as const;

export function formatSeconds(seconds: number): string {
  const s = Math.abs(seconds);
  if (s < 60) return `${seconds.toFixed(1)}s`;
  if (s < 3600) return `${(seconds / 60).toFixed(1)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}

/** Freshness, part one: the newest backup is no older than the plan's RPO. */
export function backupAgeCheck(newestConsistentAt: string, drillStartedAt: string, rpoSeconds: number, pointInTime = false): DrillCheck {
  const age = (Date.parse(drillStartedAt) - Date.parse(newestConsistentAt)) / 1000;
  if (pointInTime) {
    return check(
      'freshness: backup age',
      age <= rpoSeconds,
      `newest restorable moment (LatestRestorableTime) is ${formatSeconds(age)} old (${newestConsistentAt}); PITR RPO (pitr.maxLagMinutes) ${formatSeconds(rpoSeconds)}`,
      age <= rpoSeconds ? [] : [`RDS's newest restorable moment lags the drill's start by ${formatSeconds(age - rpoSeconds)} more than pitr.maxLagMinutes: log shipping is late or stopped`],
    );
  }
  return check(
    'freshness: backup age',
    age <= rpoSeconds,
    `newest backup is ${formatSeconds(age)} old (consistent at ${newestConsistentAt}); plan RPO ${formatSeconds(rpoSeconds)}`,
    age <= rpoSeconds ? [] : [`the newest backup is older than the plan's RPO by ${formatSeconds(age - rpoSeconds)}: backups are late or failing`],
  );
}

export interface SuiteOptions {
  databaseId: string;
  amcheck: DrillRequest['amcheck'];
  assertions: DrillRequest['assertions'];
  freshness?: DrillRequest['freshness'];
  consistentAt: string;
  rpoSeconds: number;
  registry: SecretRegistry;
}

/** Runs the suite against the restored database; the first query's time ends the RTO. */
export async function runVerificationSuite(target: ResolvedConnection, options: SuiteOptions): Promise<{ checks: DrillCheck[]; firstVerificationQueryAt: string; newestRowAt?: string }> {
  const client = await connect(options.databaseId, target, 'lifeboat-drill-verify');
  try {
    await client.query(`SELECT count(*) FROM pg_catalog.pg_class`);
    const firstVerificationQueryAt = new Date().toISOString();
    const checks: DrillCheck[] = [];
    for (const assertion of options.assertions) checks.push(await runAssertion(client, assertion, options.registry));
    let newestRowAt: string | undefined;
    if (options.freshness) {
      const fresh = await newestRowCheck(client, options.freshness, options.consistentAt, options.rpoSeconds, options.registry);
      checks.push(fresh.check);
      newestRowAt = fresh.newest?.toISOString();
    }
    checks.push(await amcheck(client, options.amcheck, options.registry));
    return { checks, firstVerificationQueryAt, ...(newestRowAt ? { newestRowAt } : {}) };
  } finally {
    await client.end();
  }
}

async function readOnly<T>(client: pg.Client, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN READ ONLY');
  try {
    await client.query(`SET LOCAL statement_timeout = ${ASSERTION_TIMEOUT_MS}`);
    await client.query(`SET LOCAL TIME ZONE 'UTC'`);
    return await fn();
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

async function runAssertion(client: pg.Client, assertion: { name: string; sql: string }, registry: SecretRegistry): Promise<DrillCheck> {
  const name = `assertion: ${assertion.name}`;
  try {
    const result = await readOnly(client, () => client.query<unknown[]>({ text: assertion.sql, rowMode: 'array' }));
    if (Array.isArray(result)) return check(name, false, 'must be a single statement');
    const value = result.rows.length === 1 && result.rows[0]!.length === 1 ? result.rows[0]![0] : undefined;
    if (value === true) return check(name, true, 'returned true');
    const got = result.rows.length !== 1 || result.rows[0]!.length !== 1 ? `${result.rows.length} row(s) of ${result.fields.length} column(s)` : JSON.stringify(value);
    return check(name, false, `returned ${got}; it must return a single true`, [`assertion "${assertion.name}" returned ${got}`]);
  } catch (error) {
    const message = registry.redact((error as Error).message);
    return check(name, false, `failed: ${message}`, [`assertion "${assertion.name}" failed: ${message}`]);
  }
}

function qualified(table: string): string {
  const dot = table.indexOf('.');
  return dot < 0 ? quoteIdent(table) : `${quoteIdent(table.slice(0, dot))}.${quoteIdent(table.slice(dot + 1))}`;
}

/** Freshness, part two: the newest row is inside the RPO window before the backup's consistent point. */
async function newestRowCheck(
  client: pg.Client,
  freshness: { table: string; column: string },
  consistentAt: string,
  rpoSeconds: number,
  registry: SecretRegistry,
): Promise<{ check: DrillCheck; newest?: Date }> {
  const name = 'freshness: newest row';
  const where = `${freshness.table}.${freshness.column}`;
  try {
    const { rows } = await readOnly(client, () =>
      client.query<{ newest: Date | null }>(`SELECT max(${quoteIdent(freshness.column)})::timestamptz AS newest FROM ${qualified(freshness.table)}`),
    );
    const newest = rows[0]?.newest;
    if (!newest) return { check: check(name, false, `${where} has no rows`, [`${where} is empty in the restored database`]) };
    const lag = (Date.parse(consistentAt) - newest.getTime()) / 1000;
    const ok = lag <= rpoSeconds && lag >= -CLOCK_SKEW_SECONDS;
    const detail = `newest ${where} is ${newest.toISOString()}, ${formatSeconds(lag)} before the backup's consistent point; window ${formatSeconds(rpoSeconds)}`;
    const differences = ok
      ? []
      : lag > rpoSeconds
        ? [`the newest row in ${where} is ${formatSeconds(lag)} older than the backup: writes stopped or the backup holds stale data`]
        : [`the newest row in ${where} is ${formatSeconds(-lag)} after the backup's consistent point: clocks disagree`];
    return { check: check(name, ok, detail, differences), newest };
  } catch (error) {
    const message = registry.redact((error as Error).message);
    return { check: check(name, false, `could not read ${where}: ${message}`, [`freshness query on ${where} failed: ${message}`]) };
  }
}

async function amcheck(client: pg.Client, mode: DrillRequest['amcheck'], registry: SecretRegistry): Promise<DrillCheck> {
  const name = 'amcheck';
  if (mode === 'off') return skipped(name, 'disabled by drills.amcheck');
  const available = await client.query(`SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'amcheck'`);
  if (!available.rowCount) return skipped(name, 'the amcheck extension is not available on this server');
  await client.query('CREATE EXTENSION IF NOT EXISTS amcheck');
  const { rows } = await client.query<{ oid: number; name: string }>(
    `SELECT c.oid::int AS oid, c.oid::regclass::text AS name
       FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
       JOIN pg_catalog.pg_am am ON am.oid = c.relam
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE am.amname = 'btree' AND c.relkind = 'i' AND c.relpersistence <> 't' AND i.indisvalid AND i.indisready
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
      ORDER BY 2`,
  );
  const heap = mode === 'heapallindexed';
  const problems: string[] = [];
  for (const index of rows) {
    try {
      await client.query('SELECT bt_index_check(index => $1::oid::regclass, heapallindexed => $2)', [index.oid, heap]);
    } catch (error) {
      problems.push(`index ${index.name}: ${registry.redact((error as Error).message)}`);
    }
  }
  return check(name, problems.length === 0, `${rows.length} btree indexes checked with bt_index_check${heap ? ' (heapallindexed)' : ''}`, problems);
}

/**
 * A table's row count may differ between a dump and a point-in-time restore to
 * its consistent point by the transactions committing at that instant: commit
 * records stamped before the snapshot but not yet visible to it, and commits
 * between the snapshot and the clock reading that became `consistentAt`. Beyond
 * this many rows per table (pitr.drill.inFlightRows), the difference is not
 * "in flight": it fails.
 */
export const IN_FLIGHT_ROWS = 10;

/**
 * A point-in-time restore to a dump's consistent point, compared with that
 * dump's manifest. Exact by nature: the set of tables, the schema fingerprint,
 * extensions, owners and privileges (DDL and GRANTs in flight at that very
 * instant aside), and sequences at or past the manifest's values (a sequence's
 * WAL runs ahead of its last value). Inexact by nature: row counts and large
 * objects, which may differ by the transactions in flight at the instant; a
 * small difference is reported `inexact`, a larger one fails.
 */
export async function compareWithDumpAtMoment(
  manifest: Manifest,
  target: ResolvedConnection,
  options: { inFlightRows?: number; excludeSchemas?: readonly string[] } = {},
): Promise<DrillCheck[]> {
  const allowed = options.inFlightRows ?? IN_FLIGHT_ROWS;
  const client = await connect(manifest.database.id, target, 'lifeboat-drill-verify');
  let actual: Inventory;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // The restored instance holds the schemas the dump left out; the manifest does not.
    actual = await takeInventory(client, { fingerprintVersion: manifest.inventory.schemaFingerprintVersion ?? 1, excludeSchemas: [...(options.excludeSchemas ?? [])] });
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
  const keep = { owners: true, acls: true, unknownPrivileges: privilegesUnknownTo(manifest.database.serverVersionNum) };
  const expected = manifest.inventory;
  return compareInventories(expected, actual, keep).map((c) => {
    if (c.ok) return check(c.name, true, `${c.detail}; ${c.name === 'row counts' || c.name === 'large objects' ? 'equal at the moment' : 'exact'}`);
    if (c.name === 'large objects') {
      if (Math.abs(actual.largeObjects - expected.largeObjects) > allowed) return check(c.name, false, `${c.detail}; differs by more than ${allowed} (pitr.drill.inFlightRows)`, c.differences);
      return { name: c.name, status: 'inexact' as const, detail: `${c.detail}: differs slightly, transactions in flight at the moment (within ${allowed})`, differences: capDifferences(c.differences) };
    }
    if (c.name !== 'row counts') return check(c.name, false, `${c.detail}; exact at the moment, and it differs`, c.differences);
    const restored = new Map(actual.tables.map((t) => [`${t.schema}.${t.name}`, t.rows]));
    const beyond = expected.tables.filter((t) => {
      const got = restored.get(`${t.schema}.${t.name}`);
      return got !== undefined && Math.abs(got - t.rows) > allowed;
    });
    if (beyond.length > 0) {
      return check(c.name, false, `${c.detail}; ${beyond.length} table(s) differ by more than transactions in flight can explain (over ${allowed} rows, pitr.drill.inFlightRows)`, c.differences);
    }
    return { name: c.name, status: 'inexact' as const, detail: `${c.detail}; ${c.differences.length} table(s) differ slightly: transactions in flight at the moment (within ${allowed} rows each)`, differences: capDifferences(c.differences) };
  });
}
