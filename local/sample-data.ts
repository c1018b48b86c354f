import { readFile } from 'node:fs/promises';
import pg from 'pg';

/**
 * The sample schema: several schemas, unicode identifiers, TOAST, partitions,
 * a materialized view, large objects, citext, sequences in every state, and
 * so on (the file's header lists it all). test/fixtures/rich-schema.sql links
 * here, so tests and the demo load the same thing.
 */
export const SAMPLE_DATA_SQL_URL = new URL('./sample-data.sql', import.meta.url);

/** Orders in the default sample; the other tables are sized from it (about 5 rows per order in all). */
export const DEFAULT_SAMPLE_ROWS = 1000;
const MIN_SAMPLE_ROWS = 100;
const MAX_SAMPLE_ROWS = 100_000_000;

export interface SampleDatabaseOptions {
  /** Number of orders; every other table scales from it. 100 to 100,000,000. Default 1000. */
  rows?: number;
}

export interface SampleDatabaseSummary {
  database: string;
  /** The `rows` the schema was loaded with. */
  rows: number;
  /** pg_database_size() after loading. */
  bytes: number;
}

export interface GrowOptions {
  /** Upper bound on rows per INSERT (default 400,000: a few seconds of work, so progress stays visible). */
  maxBatchRows?: number;
  onProgress?: (progress: GrowProgress) => void;
}

export interface GrowProgress {
  bytes: number;
  targetBytes: number;
  rowsAdded: number;
  batches: number;
}

export interface GrowResult extends GrowProgress {
  seconds: number;
}

let cachedSql: string | undefined;

/** Text of sample-data.sql. */
export async function sampleDataSql(): Promise<string> {
  cachedSql ??= await readFile(SAMPLE_DATA_SQL_URL, 'utf8');
  return cachedSql;
}

function isClient(target: pg.ClientBase | pg.ClientConfig): target is pg.ClientBase {
  return typeof (target as { query?: unknown }).query === 'function';
}

/**
 * Loads the sample schema and data into a database that must be new and empty.
 *
 * Given a connected client, loads into that client's database. Given
 * connection settings, connects to `database` (creating it first, through the
 * `postgres` maintenance database, when it does not exist yet), loads, and
 * disconnects. Loading is one transaction: on failure nothing is left behind
 * (except a database this call created).
 */
export async function createSampleDatabase(
  target: pg.ClientBase | pg.ClientConfig,
  options: SampleDatabaseOptions = {},
): Promise<SampleDatabaseSummary> {
  const rows = options.rows ?? DEFAULT_SAMPLE_ROWS;
  if (!Number.isInteger(rows) || rows < MIN_SAMPLE_ROWS || rows > MAX_SAMPLE_ROWS) {
    throw new RangeError(`rows must be an integer from ${MIN_SAMPLE_ROWS} to ${MAX_SAMPLE_ROWS}, got ${rows}`);
  }
  if (isClient(target)) return loadInto(target, rows);

  const client = await connectCreatingDatabase(target);
  try {
    return await loadInto(client, rows);
  } finally {
    await client.end();
  }
}

async function connectCreatingDatabase(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    // 3D000 invalid_catalog_name: the database does not exist yet.
    if ((error as { code?: string }).code !== '3D000' || !config.database) throw error;
  }
  const admin = new pg.Client({ ...config, database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(config.database)}`);
  } finally {
    await admin.end();
  }
  const created = new pg.Client(config);
  await created.connect();
  return created;
}

async function loadInto(client: pg.ClientBase, rows: number): Promise<SampleDatabaseSummary> {
  const sql = await sampleDataSql();
  // The script reads its scale from this setting (psql users pass it with PGOPTIONS).
  await client.query(`SELECT pg_catalog.set_config('lifeboat.sample_rows', $1, false)`, [String(rows)]);
  try {
    // No parameters, so pg sends it with the simple query protocol, which
    // accepts many statements; the script's own BEGIN/COMMIT makes it atomic.
    await client.query(sql);
  } catch (error) {
    // An error mid-script leaves the session inside the script's aborted transaction.
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await client.query('RESET lifeboat.sample_rows').catch(() => undefined);
  }
  const { rows: [info] } = await client.query<{ database: string; bytes: string }>(
    'SELECT current_database() AS database, pg_database_size(current_database())::text AS bytes',
  );
  return { database: info!.database, rows, bytes: Number(info!.bytes) };
}

async function databaseBytes(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ bytes: string }>('SELECT pg_database_size(current_database())::text AS bytes');
  return Number(rows[0]!.bytes);
}

/**
 * Appends rows to public.bulk (through public.sample_bulk_rows(), so they are
 * deterministic and compress like real data) until pg_database_size() reaches
 * `targetBytes`. Each batch is one INSERT ... SELECT generate_series committed
 * on its own; batch sizes follow the measured bytes per row, so the result
 * overshoots the target by well under one batch.
 *
 * The database must hold the sample schema (createSampleDatabase).
 */
export async function growSampleDatabase(
  client: pg.ClientBase,
  targetBytes: number,
  options: GrowOptions = {},
): Promise<GrowResult> {
  if (!Number.isFinite(targetBytes) || targetBytes <= 0) throw new RangeError(`targetBytes must be a positive number, got ${targetBytes}`);
  const maxBatchRows = options.maxBatchRows ?? 400_000;
  const started = performance.now();

  const { rows: [check] } = await client.query<{ ok: boolean }>(
    `SELECT to_regprocedure('public.sample_bulk_rows(bigint,bigint)') IS NOT NULL AND to_regclass('public.bulk') IS NOT NULL AS ok`,
  );
  if (!check?.ok) {
    throw new Error('growSampleDatabase: this database has no public.bulk / public.sample_bulk_rows(); load it with createSampleDatabase() first.');
  }

  // Batches commit one by one; waiting for each WAL flush buys nothing for filler data.
  await client.query('SET synchronous_commit = off');
  let bytes = await databaseBytes(client);
  const { rows: [last] } = await client.query<{ next: string }>('SELECT (coalesce(max(id), 0) + 1)::text AS next FROM public.bulk');
  let nextId = BigInt(last!.next);
  let bytesPerRow = 400; // first guess; replaced by the measurement after the first batch
  let rowsAdded = 0;
  let batches = 0;
  try {
    while (bytes < targetBytes) {
      const wanted = Math.ceil((targetBytes - bytes) / bytesPerRow);
      // Small first batch to measure, then at most maxBatchRows per statement.
      const count = Math.max(1000, Math.min(wanted, batches === 0 ? 20_000 : maxBatchRows));
      await client.query('INSERT INTO public.bulk SELECT * FROM public.sample_bulk_rows($1::bigint, $2::bigint)', [
        nextId.toString(),
        count,
      ]);
      nextId += BigInt(count);
      rowsAdded += count;
      batches += 1;
      const after = await databaseBytes(client);
      // Relations grow in whole pages, and the first pages of a batch may
      // refill free space; only trust a measurement from a batch that grew.
      if (after > bytes) bytesPerRow = Math.max(50, (after - bytes) / count);
      bytes = after;
      options.onProgress?.({ bytes, targetBytes, rowsAdded, batches });
      if (batches > 100_000) throw new Error(`growSampleDatabase: ${batches} batches and still at ${bytes} of ${targetBytes} bytes`);
    }
    if (rowsAdded > 0) await client.query('ANALYZE public.bulk');
  } finally {
    await client.query('RESET synchronous_commit').catch(() => undefined);
  }
  return { bytes, targetBytes, rowsAdded, batches, seconds: (performance.now() - started) / 1000 };
}
