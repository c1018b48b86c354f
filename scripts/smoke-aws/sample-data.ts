/**
 * The smoke database's sample data: a few tables with known row counts, so the
 * manifest's inventory and the drill's assertions can be checked against
 * numbers fixed here rather than against whatever the database happened to hold.
 */
export const SAMPLE_SCHEMA = 'smoke';

export const SAMPLE_TABLES = [
  { name: 'customers', rows: 5 },
  { name: 'orders', rows: 12 },
  { name: 'order_lines', rows: 30 },
] as const;

/** Runs SQL; `pg.Client` and `pg.Pool` both fit. */
export interface SqlRunner {
  query(sql: string): Promise<{ rows: Record<string, unknown>[] }>;
}

/**
 * Recreates the sample schema (idempotent: a second run leaves the same data).
 * Row counts follow SAMPLE_TABLES; every order belongs to a customer and every
 * line to an order, so foreign keys and a sequence are in the dump too.
 */
export function sampleDataSql(): string {
  const [customers, orders, lines] = SAMPLE_TABLES;
  return `
DROP SCHEMA IF EXISTS ${SAMPLE_SCHEMA} CASCADE;
CREATE SCHEMA ${SAMPLE_SCHEMA};
CREATE TABLE ${SAMPLE_SCHEMA}.${customers.name} (
  id bigserial PRIMARY KEY,
  email text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE ${SAMPLE_SCHEMA}.${orders.name} (
  id bigserial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES ${SAMPLE_SCHEMA}.${customers.name}(id),
  total numeric(12,2) NOT NULL,
  placed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE ${SAMPLE_SCHEMA}.${lines.name} (
  id bigserial PRIMARY KEY,
  order_id bigint NOT NULL REFERENCES ${SAMPLE_SCHEMA}.${orders.name}(id),
  sku text NOT NULL,
  quantity integer NOT NULL CHECK (quantity > 0)
);
CREATE INDEX ON ${SAMPLE_SCHEMA}.${lines.name} (order_id);
INSERT INTO ${SAMPLE_SCHEMA}.${customers.name} (email)
  SELECT format('customer-%s@example.com', i) FROM generate_series(1, ${customers.rows}) AS i;
INSERT INTO ${SAMPLE_SCHEMA}.${orders.name} (customer_id, total)
  SELECT (i % ${customers.rows}) + 1, i * 10.5 FROM generate_series(1, ${orders.rows}) AS i;
INSERT INTO ${SAMPLE_SCHEMA}.${lines.name} (order_id, sku, quantity)
  SELECT (i % ${orders.rows}) + 1, format('SKU-%s', i), (i % 3) + 1 FROM generate_series(1, ${lines.rows}) AS i;
ANALYZE ${SAMPLE_SCHEMA}.${customers.name}, ${SAMPLE_SCHEMA}.${orders.name}, ${SAMPLE_SCHEMA}.${lines.name};
`;
}

/** Seeds the sample data in one transaction and returns the counted rows per table. */
export async function seedSampleData(db: SqlRunner): Promise<Record<string, number>> {
  await db.query('BEGIN');
  try {
    await db.query(sampleDataSql());
    await db.query('COMMIT');
  } catch (error) {
    await db.query('ROLLBACK');
    throw error;
  }
  return countSampleRows(db);
}

export async function countSampleRows(db: SqlRunner): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of SAMPLE_TABLES) {
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${SAMPLE_SCHEMA}.${table.name}`);
    counts[table.name] = Number(rows[0]?.n);
  }
  return counts;
}

/** The drill's SQL assertions: each returns one row with one `true` column when the table holds its known count. */
export function sampleAssertions(): { name: string; sql: string }[] {
  return SAMPLE_TABLES.map((t) => ({ name: `${t.name} has ${t.rows} rows`, sql: `SELECT count(*) = ${t.rows} FROM ${SAMPLE_SCHEMA}.${t.name}` }));
}

/** Differences between a manifest inventory and the sample data; empty when they match. */
export function sampleInventoryDifferences(tables: readonly { schema: string; name: string; rows: number }[]): string[] {
  const differences: string[] = [];
  for (const expected of SAMPLE_TABLES) {
    const found = tables.find((t) => t.schema === SAMPLE_SCHEMA && t.name === expected.name);
    if (!found) differences.push(`${SAMPLE_SCHEMA}.${expected.name} is missing`);
    else if (found.rows !== expected.rows) differences.push(`${SAMPLE_SCHEMA}.${expected.name} has ${found.rows} rows, expected ${expected.rows}`);
  }
  return differences;
}
