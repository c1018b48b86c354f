import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { startLocalPostgres } from '../functions/lib/pg/postgres-cluster.ts';
import { readArchiveToc } from '../functions/lib/restore/archive-toc.ts';
const c = await startLocalPostgres();
try {
  const cl = new pg.Client({ host: c.host, port: c.port, user: c.superuser, password: c.password, database: 'postgres' });
  await cl.connect();
  await cl.query(`CREATE SCHEMA "Audit Log"; CREATE TYPE mood AS ENUM ('a','b'); CREATE TABLE "Audit Log"."my table" (id serial primary key, m mood, t text default 'x');
   CREATE TABLE app_orders (id bigint generated always as identity primary key, ref int references "Audit Log"."my table"(id), note text);
   CREATE INDEX on app_orders(note); CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS 'begin return new; end';
   CREATE TRIGGER t1 BEFORE INSERT ON app_orders FOR EACH ROW EXECUTE FUNCTION trg(); COMMENT ON TABLE app_orders IS 'c';
   ALTER TABLE app_orders ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON app_orders USING (true); GRANT SELECT ON app_orders TO public;
   CREATE TABLE parted (id int, d date) PARTITION BY RANGE (d); CREATE TABLE parted_2024 PARTITION OF parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
   INSERT INTO "Audit Log"."my table"(m) VALUES ('a'); INSERT INTO app_orders(ref) VALUES (1);`);
  await cl.end();
  execFileSync('/usr/lib/postgresql/15/bin/pg_dump', ['-Fc', '-f', '/tmp/lb-toc-test.pgc', '-h', c.host, '-p', String(c.port), '-U', c.superuser, 'postgres'], { env: { ...process.env, PGPASSWORD: c.password } });
  const toc = readArchiveToc('/tmp/lb-toc-test.pgc', 'test');
  console.log(toc.version, toc.database, toc.serverVersion, toc.pgDumpVersion, toc.entries.length);
  for (const e of toc.entries) console.log(e.dumpId, e.section, JSON.stringify(e.desc), JSON.stringify(e.namespace), JSON.stringify(e.tag), e.owner, 'deps', e.dependencies.join(','));
  console.log(execFileSync('/usr/lib/postgresql/15/bin/pg_restore', ['-l', '/tmp/lb-toc-test.pgc']).toString());
} finally { await c.stop(); }
