-- Lifeboat sample database: a schema that is not a toy.
--
-- Load it into a NEW, EMPTY database. It is one transaction: it either loads
-- completely or not at all.
--
--   psql -v ON_ERROR_STOP=1 -d fresh_db -f sample-data.sql
--   PGOPTIONS='-c lifeboat.sample_rows=20000' psql -v ON_ERROR_STOP=1 -d fresh_db -f sample-data.sql
--
-- From TypeScript use createSampleDatabase() in sample-data.ts (it sets
-- lifeboat.sample_rows for you). The test fixture test/fixtures/rich-schema.sql
-- is a link to this file; there is one copy.
--
-- Scale: lifeboat.sample_rows (default 1000, minimum 100) is the number of
-- orders; every other table is sized from it (about 5 rows in total per order).
--
-- Content is deterministic: no random(), no now(), no OIDs chosen by the
-- server (large objects get fixed OIDs, identity/serial columns get explicit
-- ids), so two loads with the same sample_rows give identical table checksums.
--
-- What it exercises, because each is something a dump/restore can get wrong:
--   schemas public, sales and "Audit Log" (space, mixed case); tables "客户"
--   and "Kunden Ü"; columns "CamelCase", "Straße", "Änderung"
--   jsonb/json, bytea with every byte 0x00-0xff, int/bigint/text arrays
--   (NULL elements, quoting, multi-dimensional, non-default lower bound),
--   numeric(30,10) incl. NaN, unconstrained numeric incl. +/-Infinity,
--   float specials, timestamptz from many zones incl. +/-infinity and a DST
--   gap, ranges, enum, domain, composite type, uuid, inet/cidr/macaddr, bit
--   varying, interval; text with emoji, CJK, RTL, combining characters,
--   tabs/newlines/backslashes, the string '\N', '' versus NULL
--   TOAST: ~10 KB incompressible md5-chain text and bytea stored out of line,
--   plus a compressible column that pglz compresses
--   identity (ALWAYS and BY DEFAULT), serial and bigserial sequences, a
--   standalone sequence at 424242 (is_called true), one at 1000 with
--   is_called false, a descending cycling one
--   views, a materialized view WITH DATA (with a unique index), a range
--   partitioned table with 2023/2024/2025 and DEFAULT partitions, all with rows
--   two large objects with known content (fixed OIDs 4242001, 4242002)
--   extensions citext (used by a UNIQUE column) and pgcrypto (used at load)
--   foreign keys (cascading, composite, self-referencing DEFERRABLE), check
--   constraints, unique/partial/expression/GIN/INCLUDE indexes, a stored
--   generated column, triggers and plpgsql/sql functions, comments on many
--   kinds of object, and a table with zero rows
--   public.bulk, which growSampleDatabase() appends to through
--   public.sample_bulk_rows().

BEGIN;

SET LOCAL client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO, YMD';
SET LOCAL IntervalStyle = 'postgres';
-- Nothing below may depend on the caller's search_path: every object is
-- schema-qualified, and an unqualified CREATE fails loudly here.
SET LOCAL search_path = pg_catalog;

SELECT pg_catalog.set_config(
  'lifeboat.n',
  coalesce(nullif(pg_catalog.current_setting('lifeboat.sample_rows', true), ''), '1000'),
  true);

DO $$
BEGIN
  IF current_setting('lifeboat.n') !~ '^[0-9]{1,9}$' THEN
    RAISE EXCEPTION 'lifeboat.sample_rows must be an integer from 100 to 100000000, got "%"', current_setting('lifeboat.n');
  ELSIF current_setting('lifeboat.n')::integer NOT BETWEEN 100 AND 100000000 THEN
    RAISE EXCEPTION 'lifeboat.sample_rows must be an integer from 100 to 100000000, got "%"', current_setting('lifeboat.n');
  END IF;
  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname IN ('sales', 'Audit Log')) THEN
    RAISE EXCEPTION 'database "%" already has the sample schema; load it into a new, empty database', current_database();
  END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Schemas, extensions, types
-- ---------------------------------------------------------------------------

CREATE SCHEMA IF NOT EXISTS public;
CREATE SCHEMA sales;
CREATE SCHEMA "Audit Log";

COMMENT ON SCHEMA sales IS 'Orders, customers and events of the Lifeboat sample shop';
COMMENT ON SCHEMA "Audit Log" IS 'Änderungsprotokoll — audit trail (schema name has a space and mixed case)';

-- Both are trusted extensions in contrib (PostgreSQL 13+) and available on RDS.
CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;

CREATE TYPE sales.order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled', 'refunded');
COMMENT ON TYPE sales.order_status IS 'Lifecycle of an order';

CREATE TYPE sales.address AS (street text, city text, postcode text, country character(2));

CREATE DOMAIN public.positive_amount AS numeric(30,10)
  CONSTRAINT positive_amount_check CHECK (VALUE >= 0);
COMMENT ON DOMAIN public.positive_amount IS 'numeric(30,10) that is never negative (NaN sorts above every number, so it passes)';

-- ---------------------------------------------------------------------------
-- Sequences that no column owns
-- ---------------------------------------------------------------------------

CREATE SEQUENCE public.invoice_number_seq AS bigint START WITH 1000 INCREMENT BY 7 CACHE 1;
SELECT pg_catalog.setval('public.invoice_number_seq', 424242, true);
COMMENT ON SEQUENCE public.invoice_number_seq IS 'Standalone; restored value must be 424242 with is_called = true';

CREATE SEQUENCE "Audit Log"."ticket seq" AS integer START WITH 1 INCREMENT BY 1;
SELECT pg_catalog.setval('"Audit Log"."ticket seq"', 1000, false);
COMMENT ON SEQUENCE "Audit Log"."ticket seq" IS 'Standalone; nextval() must return 1000 after a restore (is_called = false)';

CREATE SEQUENCE sales.order_ref_seq AS integer INCREMENT BY -1 MINVALUE -5000 MAXVALUE -1 START WITH -1 CYCLE;
SELECT count(pg_catalog.nextval('sales.order_ref_seq')) AS advanced FROM pg_catalog.generate_series(1, 17);

-- ---------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------

CREATE FUNCTION public.format_amount(amount numeric) RETURNS text
  LANGUAGE sql STABLE STRICT PARALLEL SAFE
  RETURN CASE WHEN amount = 'NaN'::numeric THEN 'n/a'
              ELSE pg_catalog.to_char(amount, 'FM999G999G999G990D00') END;
COMMENT ON FUNCTION public.format_amount(numeric) IS 'Amount for display; NaN shows as n/a';

CREATE FUNCTION sales.bump_version() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
  NEW.version := OLD.version + 1;
  RETURN NEW;
END
$$;

CREATE FUNCTION "Audit Log"."log customer change"() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
  INSERT INTO "Audit Log"."Kunden Ü" ("KundenNr", "Änderung", "geändert_am", vorher, nachher)
  VALUES (NEW.id, TG_OP, pg_catalog.statement_timestamp(), pg_catalog.to_jsonb(OLD), pg_catalog.to_jsonb(NEW));
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION "Audit Log"."log customer change"() IS 'Writes one "Kunden Ü" row per changed customer';

-- ---------------------------------------------------------------------------
-- Customers: unicode table name, citext, composite, identity ALWAYS, self FK
-- ---------------------------------------------------------------------------

CREATE TABLE sales."客户" (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email public.citext NOT NULL,
  "CamelCase" text NOT NULL,
  "Straße" sales.address,
  tags text[] NOT NULL DEFAULT '{}',
  preferences jsonb,
  credit_limit public.positive_amount,
  signup_at timestamptz NOT NULL,
  referred_by integer,
  api_key_sha256 bytea NOT NULL,
  CONSTRAINT "客户_email_key" UNIQUE (email),
  CONSTRAINT "客户_referred_by_fkey" FOREIGN KEY (referred_by) REFERENCES sales."客户" (id)
    DEFERRABLE INITIALLY DEFERRED
);
COMMENT ON TABLE sales."客户" IS '客户 = customers. Name is CJK; email is citext (unique regardless of case)';
COMMENT ON COLUMN sales."客户"."CamelCase" IS 'Display name; a quoted, mixed-case column';

INSERT INTO sales."客户" (id, email, "CamelCase", "Straße", tags, preferences, credit_limit, signup_at, referred_by, api_key_sha256)
OVERRIDING SYSTEM VALUE
SELECT i,
       'Kunde.' || i || '@Example.COM',
       (ARRAY['Zoë', U&'Zoe\0308', 'José', 'Åsa', 'Łukasz', 'Ștefan', '李雷', '佐藤 花子',
              'Nguyễn Thị Minh Khai', 'Ñandú', 'Øyvind', 'Σωκράτης', 'Иван', 'مرحبا', 'Renée 🐘', 'O''Brien'])[i % 16 + 1]
         || ' #' || i,
       CASE WHEN i % 9 = 0 THEN NULL
            ELSE ROW('Hauptstraße ' || i, (ARRAY['München', '東京', 'São Paulo', 'Zürich', 'Kraków'])[i % 5 + 1],
                     pg_catalog.lpad((i * 37 % 99999)::text, 5, '0'), (ARRAY['DE', 'JP', 'BR', 'CH', 'PL'])[i % 5 + 1])::sales.address
       END,
       CASE i % 4 WHEN 0 THEN '{}'::text[]
                  WHEN 1 THEN ARRAY['vip', 'newsletter']
                  WHEN 2 THEN ARRAY['a,b', 'quote"inside', '{braces}', NULL, '', 'NULL']
                  ELSE ARRAY['日本語', '🚀']
       END,
       CASE WHEN i % 10 = 3 THEN NULL
            WHEN i % 10 = 4 THEN 'null'::jsonb
            ELSE pg_catalog.jsonb_build_object('lang', (ARRAY['de', 'ja', 'pt', 'en'])[i % 4 + 1],
                                    'marketing', i % 3 = 0,
                                    'limits', pg_catalog.jsonb_build_array(i, i * 2.5, NULL),
                                    'note', 'ünïcödé ' || pg_catalog.repeat('☃', i % 4))
       END,
       CASE WHEN i % 50 = 0 THEN 'NaN'::numeric ELSE (i * 1234.5678901234)::numeric(30,10) END,
       '2021-01-01 00:00:00+00'::timestamptz + i * interval '17 hours 3 minutes 7.123456 seconds',
       CASE WHEN i % 5 = 0 THEN i - 1 END,
       public.digest('api-key-' || i, 'sha256')
FROM pg_catalog.generate_series(1, greatest(current_setting('lifeboat.n')::int / 10, 10)) AS i;
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('sales."客户"', 'id'), (SELECT max(id) FROM sales."客户"));
-- Run the deferred self-reference checks now: DDL on a table with pending
-- trigger events is refused.
SET CONSTRAINTS sales."客户_referred_by_fkey" IMMEDIATE;

CREATE INDEX "客户_lower_camelcase_idx" ON sales."客户" (pg_catalog.lower("CamelCase"));
COMMENT ON INDEX sales."客户_lower_camelcase_idx" IS 'btree expression index';

-- ---------------------------------------------------------------------------
-- Orders: bigserial, enum, range, NaN, check constraint, partial/INCLUDE index
-- ---------------------------------------------------------------------------

CREATE TABLE sales.orders (
  id bigserial PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES sales."客户" (id) ON DELETE CASCADE,
  status sales.order_status NOT NULL,
  ordered_at timestamptz NOT NULL,
  ship_window tstzrange,
  total numeric(30,10) NOT NULL,
  invoice_no bigint,
  notes text,
  version integer NOT NULL DEFAULT 1,
  CONSTRAINT orders_total_check CHECK (total = 'NaN'::numeric OR total >= 0)
);
COMMENT ON TABLE sales.orders IS 'One row per order; total may be NaN when it could not be computed';
COMMENT ON CONSTRAINT orders_total_check ON sales.orders IS 'Totals are never negative';

INSERT INTO sales.orders (id, customer_id, status, ordered_at, ship_window, total, invoice_no, notes)
SELECT i,
       (i * 7) % greatest(current_setting('lifeboat.n')::int / 10, 10) + 1,
       (ARRAY['pending', 'paid', 'shipped', 'cancelled', 'refunded']::sales.order_status[])[i % 5 + 1],
       '2022-06-01 00:00:00+00'::timestamptz + i * interval '3 hours 11 minutes 13.000007 seconds',
       CASE i % 6 WHEN 0 THEN NULL
                  WHEN 1 THEN 'empty'::tstzrange
                  WHEN 2 THEN pg_catalog.tstzrange('2022-06-01 00:00:00+00'::timestamptz + i * interval '3 hours', NULL)
                  ELSE pg_catalog.tstzrange('2022-06-01 00:00:00+00'::timestamptz + i * interval '3 hours',
                                 '2022-06-04 00:00:00+00'::timestamptz + i * interval '3 hours', '[)')
       END,
       CASE WHEN i % 97 = 0 THEN 'NaN'::numeric ELSE round((i * 12345.6789012345 / 7) % 100000, 10) END,
       CASE WHEN i % 3 = 0 THEN 100000 + i END,
       CASE i % 8 WHEN 0 THEN NULL
                  WHEN 1 THEN ''
                  WHEN 2 THEN E'line one\nline two\r\nline three'
                  WHEN 3 THEN E'tab\there and a backslash \\ and ''quotes'' and "double"'
                  WHEN 4 THEN '\N'
                  WHEN 5 THEN 'NULL'
                  WHEN 6 THEN 'Lieferung an Straße ' || i || ' — 请尽快发货 🚚'
                  ELSE 'note ' || pg_catalog.md5(i::text)
       END
FROM pg_catalog.generate_series(1, current_setting('lifeboat.n')::int) AS i;
SELECT pg_catalog.setval('sales.orders_id_seq', (SELECT max(id) FROM sales.orders));

CREATE INDEX orders_open_idx ON sales.orders (ordered_at) WHERE status IN ('pending', 'paid');
COMMENT ON INDEX sales.orders_open_idx IS 'Partial index over open orders';
CREATE INDEX orders_status_idx ON sales.orders (status) INCLUDE (total);
CREATE INDEX orders_customer_idx ON sales.orders (customer_id);
CREATE UNIQUE INDEX orders_invoice_no_key ON sales.orders (invoice_no);

CREATE TRIGGER orders_bump_version BEFORE UPDATE ON sales.orders
  FOR EACH ROW EXECUTE FUNCTION sales.bump_version();

-- ---------------------------------------------------------------------------
-- Order lines: composite primary key, stored generated column
-- ---------------------------------------------------------------------------

CREATE TABLE sales.order_lines (
  order_id bigint NOT NULL REFERENCES sales.orders (id) ON DELETE CASCADE,
  line_no smallint NOT NULL,
  sku text NOT NULL,
  quantity integer NOT NULL CHECK (quantity > 0),
  unit_price numeric(12,4) NOT NULL,
  line_total numeric GENERATED ALWAYS AS (quantity * unit_price) STORED,
  PRIMARY KEY (order_id, line_no)
);
COMMENT ON COLUMN sales.order_lines.line_total IS 'Stored generated column: quantity * unit_price';

INSERT INTO sales.order_lines (order_id, line_no, sku, quantity, unit_price)
SELECT o, l,
       'SKU-' || pg_catalog.upper(pg_catalog.substr(pg_catalog.md5((o * 10 + l)::text), 1, 8)),
       (o + l) % 9 + 1,
       round(((o * 31 + l * 17) % 50000) / 100.0 + 0.0099, 4)
FROM pg_catalog.generate_series(1, current_setting('lifeboat.n')::int) AS o,
     LATERAL pg_catalog.generate_series(1, o % 4 + 1) AS l;

-- ---------------------------------------------------------------------------
-- Events: RANGE partitioned, 3 yearly partitions + DEFAULT, all with rows
-- ---------------------------------------------------------------------------

CREATE TABLE sales.events (
  id bigint NOT NULL,
  occurred_at timestamptz NOT NULL,
  customer_id integer REFERENCES sales."客户" (id),
  kind text NOT NULL,
  payload jsonb NOT NULL,
  PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
COMMENT ON TABLE sales.events IS 'Range-partitioned by year; rows outside 2023-2025 land in the DEFAULT partition';

CREATE TABLE sales.events_2023 PARTITION OF sales.events
  FOR VALUES FROM ('2023-01-01 00:00:00+00') TO ('2024-01-01 00:00:00+00');
CREATE TABLE sales.events_2024 PARTITION OF sales.events
  FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2025-01-01 00:00:00+00');
CREATE TABLE sales.events_2025 PARTITION OF sales.events
  FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2026-01-01 00:00:00+00');
CREATE TABLE sales.events_default PARTITION OF sales.events DEFAULT;

CREATE INDEX events_payload_gin ON sales.events USING gin (payload jsonb_path_ops);
CREATE INDEX events_kind_idx ON sales.events (kind, occurred_at);

-- Spread evenly from 2022-12-01 to 2026-03-01: about 2.6% of the rows fall
-- before 2023 and 7.6% after 2025, so the DEFAULT partition gets rows too.
INSERT INTO sales.events (id, occurred_at, customer_id, kind, payload)
SELECT i,
       '2022-12-01 00:00:00+00'::timestamptz
         + (i - 1) * (('2026-03-01 00:00:00+00'::timestamptz - '2022-12-01 00:00:00+00'::timestamptz)
                      / current_setting('lifeboat.n')::int),
       CASE WHEN i % 11 <> 0 THEN (i * 13) % greatest(current_setting('lifeboat.n')::int / 10, 10) + 1 END,
       (ARRAY['login', 'purchase', 'refund', 'page_view', 'support_ticket'])[i % 5 + 1],
       pg_catalog.jsonb_build_object(
         'seq', i,
         'ok', i % 2 = 0,
         'nothing', NULL,
         'amount', (i * 1.25)::numeric,
         'big', 123456789012345678901234567890.123456789::numeric,
         'path', pg_catalog.jsonb_build_array('home', 'cart', i % 7),
         'agent', (ARRAY['Mozilla/5.0 (X11; Linux aarch64)', 'curl/8.5.0', 'Lifeboat "probe" \ 1.0', '浏览器', '🤖'])[i % 5 + 1])
FROM pg_catalog.generate_series(1, current_setting('lifeboat.n')::int) AS i;

-- ---------------------------------------------------------------------------
-- "Audit Log"."Kunden Ü": unicode + space identifiers, bigserial, jsonb
-- ---------------------------------------------------------------------------

CREATE TABLE "Audit Log"."Kunden Ü" (
  id bigserial PRIMARY KEY,
  "KundenNr" integer NOT NULL REFERENCES sales."客户" (id) ON DELETE CASCADE,
  "Änderung" text NOT NULL CHECK ("Änderung" IN ('INSERT', 'UPDATE', 'DELETE')),
  "geändert_am" timestamptz NOT NULL,
  vorher jsonb,
  nachher jsonb
);
COMMENT ON TABLE "Audit Log"."Kunden Ü" IS 'Customer change log (Kunden = customers)';
COMMENT ON COLUMN "Audit Log"."Kunden Ü"."Änderung" IS 'Art der Änderung';

INSERT INTO "Audit Log"."Kunden Ü" (id, "KundenNr", "Änderung", "geändert_am", vorher, nachher)
SELECT i,
       i % greatest(current_setting('lifeboat.n')::int / 10, 10) + 1,
       (ARRAY['INSERT', 'UPDATE', 'UPDATE', 'DELETE'])[i % 4 + 1],
       -- One zone per row, including half-hour and 45-minute offsets and a DST gap
       -- (02:30 on 2024-03-31 does not exist in Berlin; PostgreSQL moves it forward).
       CASE i % 8
         WHEN 0 THEN ('2024-03-31 02:30:00 Europe/Berlin')::timestamptz
         WHEN 1 THEN ('2024-10-27 02:30:00 Europe/Berlin')::timestamptz
         WHEN 2 THEN ('2023-07-01 09:15:00 Asia/Kolkata')::timestamptz
         WHEN 3 THEN ('2023-07-01 09:15:00 Asia/Kathmandu')::timestamptz
         WHEN 4 THEN ('2023-07-01 09:15:00 America/St_Johns')::timestamptz
         WHEN 5 THEN ('2023-07-01 09:15:00 Pacific/Chatham')::timestamptz
         WHEN 6 THEN ('1999-12-31 23:59:59.999999-12')::timestamptz
         ELSE ('2038-01-19 03:14:08+00')::timestamptz
       END + i * interval '1 minute',
       CASE WHEN i % 4 = 0 THEN NULL ELSE pg_catalog.jsonb_build_object('email', 'alt.' || i || '@example.com') END,
       CASE WHEN i % 4 = 3 THEN NULL ELSE pg_catalog.jsonb_build_object('email', 'kunde.' || i || '@example.com', 'ü', 'ß') END
FROM pg_catalog.generate_series(1, current_setting('lifeboat.n')::int / 4) AS i;
SELECT pg_catalog.setval('"Audit Log"."Kunden Ü_id_seq"', (SELECT max(id) FROM "Audit Log"."Kunden Ü"));

CREATE TRIGGER "customer changed" AFTER UPDATE ON sales."客户"
  FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION "Audit Log"."log customer change"();

-- ---------------------------------------------------------------------------
-- public.type_zoo: one row per edge case
-- ---------------------------------------------------------------------------

CREATE TABLE public.type_zoo (
  id integer PRIMARY KEY,
  label text NOT NULL UNIQUE,
  t text,
  b bytea,
  n numeric,
  n30 numeric(30,10),
  f8 double precision,
  f4 real,
  ts timestamptz,
  tsl timestamp without time zone,
  d date,
  tm time,
  iv interval,
  ia integer[],
  ba bigint[],
  ta text[],
  j jsonb,
  js json,
  u uuid,
  ip inet,
  net cidr,
  mac macaddr,
  bits bit varying(64),
  ok boolean
);
COMMENT ON TABLE public.type_zoo IS 'Edge-case values, one row each';

INSERT INTO public.type_zoo VALUES
  (1, 'all null', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (2, 'empty values', '', '\x', 0, 0, 0, 0, 'epoch', 'epoch', 'epoch', 'allballs', '0', '{}', '{}', '{}', '{}', '[]',
      '00000000-0000-0000-0000-000000000000', '0.0.0.0', '0.0.0.0/0', '00:00:00:00:00:00', B'', false),
  (3, 'every byte', 'NUL cannot be in text; bytea holds all 256 bytes',
      (SELECT pg_catalog.decode(pg_catalog.string_agg(pg_catalog.lpad(pg_catalog.to_hex(x), 2, '0'), '' ORDER BY x), 'hex')
         FROM pg_catalog.generate_series(0, 255) AS x),
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 'bytea edges', NULL, '\x00ff00ff5c0a0d09', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (5, 'numeric specials', NULL, NULL, 'NaN', 'NaN', 'NaN', 'NaN', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (6, 'numeric infinities', NULL, NULL, 'Infinity', '99999999999999999999.9999999999', 'Infinity', 'Infinity', 'infinity', 'infinity', 'infinity', '24:00:00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (7, 'negative infinities', NULL, NULL, '-Infinity', '-99999999999999999999.9999999999', '-Infinity', '-Infinity', '-infinity', '-infinity', '-infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (8, 'precision', NULL, NULL,
      '3.14159265358979323846264338327950288419716939937510582097494459230781640628620899862803482534211706798214808651',
      '12345678901234567890.0123456789', 1.0000000000000002, 1.0000001, NULL, NULL, NULL, NULL,
      '-178000000 years', NULL, '{-9223372036854775808,9223372036854775807}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (9, 'tiny and negative zero', NULL, NULL, '0.0000000000000000000000000000000000000001', '-0.0000000001', '-0', '1.4e-45',
      '1999-12-31 23:59:59.999999-12', '1999-12-31 23:59:59.999999', '0044-03-15 BC', '23:59:59.999999',
      '1 year 2 mons -3 days 04:05:06.789', '{-2147483648,2147483647,0}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (10, 'denormal double', NULL, NULL, NULL, NULL, '4.9e-324', NULL, '1970-01-01 00:00:00+14', NULL, '2000-02-29', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (11, 'unicode text', '🐘🚀👩‍👩‍👧‍👦 数据库备份与恢复 مرحبا بالعالم ' || U&'e\0301 vs \00E9' || ' Ω≈ç√∫ ＦＵＬＬＷＩＤＴＨ', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      ARRAY['🐘', '中文', U&'n\0303', 'ǅ', NULL], '{"emoji": "🐘", "cjk": "备份", "escaped": "\u00e9\t\n", "nested": {"a": [1, 2.50, -0, 1e3]}}',
      '{"keep": "json keeps   whitespace and duplicate keys", "keep": 2}', NULL, NULL, NULL, NULL, NULL, NULL),
  (12, 'copy escapes', E'tab\tnewline\ncarriage\rbackslash\\ nul-ish \\0 quote'' dquote" pipe| comma,', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      ARRAY[E'tab\t', E'new\nline', 'back\slash', 'comma,', 'brace}', '"quoted"', 'NULL', ''], NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (13, 'the string \N', '\N', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ARRAY['\N'], '"\\N"', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (14, 'arrays', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      '{{1,2,3},{4,NULL,6}}', '[0:2]={7,8,9}', '{{"a b","c,d"},{NULL,""}}', '[[1, [2, [3, [4]]]], {"k": null}]', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (15, 'network and ids', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2001:db8::ff00:42:8329/64', '10.1.0.0/16', '08:00:2b:01:02:03', B'1011001110001111', true),
  (16, 'timezones', NULL, NULL, NULL, NULL, NULL, NULL, '2024-06-30 12:00:00 Asia/Kolkata', '2024-06-30 12:00:00', '2024-06-30', '12:00:00',
      '-1 days +23:59:59.999999', NULL, NULL, NULL, NULL, NULL, NULL, '::1', '::/0', 'ff:ff:ff:ff:ff:ff', B'1', false);

-- ---------------------------------------------------------------------------
-- Documents: TOASTed values, identity BY DEFAULT, unique index
-- ---------------------------------------------------------------------------

CREATE TABLE public.documents (
  id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  title text NOT NULL,
  -- ~10 KB of md5 hex per row: pglz cannot shrink it by the 25% it needs, so
  -- it is stored out of line, uncompressed, in the TOAST table.
  body text NOT NULL,
  -- ~10 KB of raw md5 bytes: incompressible binary, also out of line.
  blob bytea NOT NULL,
  -- ~18 KB of repeated words: compresses well (pglz), so it shows compressed TOAST.
  summary text NOT NULL
);
CREATE UNIQUE INDEX documents_title_key ON public.documents (title);
COMMENT ON TABLE public.documents IS 'Large values: body and blob are TOASTed out of line, summary is compressed';

INSERT INTO public.documents (id, title, body, blob, summary)
SELECT i,
       'Document ' || i || ' — ドキュメント',
       (SELECT pg_catalog.string_agg(pg_catalog.md5(i || ':' || k), '' ORDER BY k) FROM pg_catalog.generate_series(1, 320) AS k),
       (SELECT pg_catalog.string_agg(pg_catalog.decode(pg_catalog.md5(k || '/' || i), 'hex'), '' ORDER BY k) FROM pg_catalog.generate_series(1, 640) AS k),
       pg_catalog.repeat('Lifeboat keeps backups of document ' || i || '. ', 400)
FROM pg_catalog.generate_series(1, greatest(current_setting('lifeboat.n')::int / 50, 10)) AS i;
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('public.documents', 'id'), (SELECT max(id) FROM public.documents));

-- ---------------------------------------------------------------------------
-- Large objects (fixed OIDs, known content) and a table that points at them
-- ---------------------------------------------------------------------------

SELECT pg_catalog.lo_from_bytea(4242001,
  pg_catalog.convert_to('Lifeboat large object ' || U&'\+01F6DF', 'UTF8') || '\x00ff00ff'::bytea);
COMMENT ON LARGE OBJECT 4242001 IS 'Small large object: UTF-8 text followed by bytes 00 ff 00 ff';

-- 160 KB, so it spans many 2 KB pg_largeobject pages.
SELECT pg_catalog.lo_from_bytea(4242002,
  (SELECT pg_catalog.string_agg(pg_catalog.decode(pg_catalog.md5('lo:' || k), 'hex'), '' ORDER BY k)
     FROM pg_catalog.generate_series(1, 10240) AS k));
COMMENT ON LARGE OBJECT 4242002 IS 'Large object of 163840 bytes: md5(''lo:1'') || md5(''lo:2'') || ...';

CREATE TABLE public.attachments (
  id integer PRIMARY KEY,
  document_id integer NOT NULL REFERENCES public.documents (id) ON DELETE CASCADE,
  file_name text NOT NULL,
  content oid NOT NULL
);
INSERT INTO public.attachments VALUES
  (1, 1, 'readme.txt', 4242001),
  (2, 2, 'Anhang – groß.bin', 4242002);

-- ---------------------------------------------------------------------------
-- A table with zero rows
-- ---------------------------------------------------------------------------

CREATE TABLE public.empty_table (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  payload jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE public.empty_table IS 'Intentionally empty: a restore must create it, with no rows';

-- ---------------------------------------------------------------------------
-- Bulk rows: what growSampleDatabase() appends to, in batches
-- ---------------------------------------------------------------------------

CREATE TABLE public.bulk (
  id bigint PRIMARY KEY,
  account text NOT NULL,
  amount numeric(14,2) NOT NULL,
  created_at timestamptz NOT NULL,
  attrs jsonb NOT NULL,
  note text NOT NULL
);
COMMENT ON TABLE public.bulk IS 'Filler rows with realistic compressibility (repetitive words, ids, hex); see sample_bulk_rows()';

-- Row n of public.bulk, for n in [first, first + count). Deterministic, and
-- neither all zeros nor pure noise: ids, words, amounts, jsonb and an md5 per
-- row, about 390 bytes on disk with its index; gzip -6 shrinks its COPY text
-- about 6x, like a text-heavy production table.
CREATE FUNCTION public.sample_bulk_rows(first bigint, count bigint) RETURNS SETOF public.bulk
  LANGUAGE sql STABLE PARALLEL SAFE
  BEGIN ATOMIC
    SELECT i,
           'ACC-' || pg_catalog.lpad((i % 50000)::text, 6, '0'),
           ((i * 7919) % 10000000) / 100.0,
           '2020-01-01 00:00:00+00'::timestamptz + i * interval '13 seconds',
           pg_catalog.jsonb_build_object(
             'region', (ARRAY['eu-west-1', 'eu-central-1', 'us-east-1', 'us-west-2', 'ap-southeast-2', 'sa-east-1', 'ap-northeast-1', 'ca-central-1'])[(i % 8)::int + 1],
             'channel', (ARRAY['web', 'mobile', 'partner', 'store'])[(i % 4)::int + 1],
             'score', i % 1000,
             'ref', pg_catalog.substr(pg_catalog.md5(i::text), 1, 12)),
           (ARRAY['backup', 'restore', 'snapshot', 'vault', 'drill', 'retention', 'encrypted', 'archive',
                  'replica', 'region', 'policy', 'schedule', 'verified', 'checksum', 'manifest', 'object'])[(i % 16)::int + 1]
             || ' ' || (ARRAY['completed', 'pending', 'failed', 'skipped', 'queued', 'running', 'expired', 'kept'])[((i / 16) % 8)::int + 1]
             || ' for customer ' || (i % 9973)
             || ' in batch ' || (i / 1000)
             || ' checksum ' || pg_catalog.md5(i::text)
             || ' ' || pg_catalog.repeat('lorem ipsum dolor sit amet ', (i % 5)::int + 1)
    FROM pg_catalog.generate_series(first, first + count - 1) AS i;
  END;
COMMENT ON FUNCTION public.sample_bulk_rows(bigint, bigint) IS 'Generator for public.bulk rows, used by growSampleDatabase()';

INSERT INTO public.bulk SELECT * FROM public.sample_bulk_rows(1, current_setting('lifeboat.n')::int);

-- ---------------------------------------------------------------------------
-- Views and a materialized view
-- ---------------------------------------------------------------------------

CREATE VIEW sales.order_summary AS
SELECT o.id AS order_id,
       c.email,
       c."CamelCase" AS customer,
       o.status,
       public.format_amount(o.total) AS total_display,
       (SELECT count(*) FROM sales.order_lines l WHERE l.order_id = o.id) AS line_count
FROM sales.orders o
JOIN sales."客户" c ON c.id = o.customer_id;
COMMENT ON VIEW sales.order_summary IS 'Orders with their customer and line count';

CREATE VIEW "Audit Log"."Letzte Änderungen" AS
SELECT k.id, k."KundenNr", c.email, k."Änderung", k."geändert_am"
FROM "Audit Log"."Kunden Ü" k
JOIN sales."客户" c ON c.id = k."KundenNr"
WHERE k."geändert_am" > '2023-01-01 00:00:00+00';

CREATE MATERIALIZED VIEW sales.customer_totals AS
SELECT c.id AS customer_id,
       c.email,
       count(o.id) AS orders,
       coalesce(sum(o.total) FILTER (WHERE o.total <> 'NaN'::numeric), 0) AS total_spent,
       min(o.ordered_at) AS first_order_at
FROM sales."客户" c
LEFT JOIN sales.orders o ON o.customer_id = c.id
GROUP BY c.id, c.email
WITH DATA;
CREATE UNIQUE INDEX customer_totals_customer_id_key ON sales.customer_totals (customer_id);
COMMENT ON MATERIALIZED VIEW sales.customer_totals IS 'Per-customer totals; refresh with REFRESH MATERIALIZED VIEW CONCURRENTLY';

COMMIT;
