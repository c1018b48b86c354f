import { inject } from 'vitest';
import pg from 'pg';
import { randomBytes } from 'node:crypto';

export function pgServer() {
  return inject('pg');
}

/** A superuser client to a database on the suite's cluster. */
export async function adminClient(database = 'postgres'): Promise<pg.Client> {
  const s = pgServer();
  const client = new pg.Client({ host: s.host, port: s.port, user: s.user, password: s.password, database });
  await client.connect();
  return client;
}

/** Creates a fresh database (from template0) and returns its name and a cleanup. */
export async function createTestDatabase(prefix = 'lbtest'): Promise<{ name: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = await adminClient();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8'`);
  } finally {
    await admin.end();
  }
  return {
    name,
    drop: async () => {
      const c = await adminClient();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export async function withClient<T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await adminClient(database);
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
