import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MissingToolError, ToolVersionError } from '../../functions/lib/errors.ts';
import { PG_CLIENTS_ENV } from '../../functions/lib/pg/binaries.ts';
import { dumpClientFor, installedClients, restoreClientFor } from '../../functions/lib/pg/tools.ts';
import { createFakeClients, type FakeClients, type FakeClientSpec } from '../harness/fake-pg-clients.ts';

/**
 * Which pg_dump dumps a server and which pg_restore restores into a target,
 * chosen among fake client installs (`<root>/<major>/bin`, scripts that only
 * answer --version and log their argv).
 */

const saved = { ...process.env };
let fakes: FakeClients | undefined;
const empty: string[] = [];

function install(specs: Array<number | FakeClientSpec>): FakeClients {
  fakes = createFakeClients(specs.map((s) => (typeof s === 'number' ? { major: s } : s)));
  process.env[PG_CLIENTS_ENV] = fakes.root;
  return fakes;
}

function server(major: number, minor = 4) {
  return { versionNum: major * 10_000 + minor, version: `${major}.${minor}` };
}

function archive(pgDumpMajor: number) {
  return { backupId: '20261201T030000Z-abc123', databaseId: 'orders', pgDumpMajor, pgDumpVersion: `${pgDumpMajor}.90` };
}

function target(major: number) {
  return { ...server(major), where: 'orders_restored on db.internal:5432' };
}

beforeEach(() => {
  // Nothing but the fakes: no PATH or Debian install may leak into the choice.
  delete process.env.LIFEBOAT_PG_BIN;
  const emptyPath = mkdtempSync(join(tmpdir(), 'lifeboat-empty-path-'));
  empty.push(emptyPath);
  process.env.PATH = emptyPath;
});
afterEach(() => {
  process.env = { ...saved };
  fakes?.cleanup();
  fakes = undefined;
  for (const dir of empty.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('PostgreSQL client discovery', () => {
  it('finds every <major>/bin under LIFEBOAT_PG_CLIENTS and takes each major from --version, not from the directory name', async () => {
    // Prepare
    const f = install([15, 16, { major: 17, dirName: 'seventeen' }, { major: 18, version: '18.4' }]);

    // Act
    const found = await installedClients('pg_restore');

    // Assess
    expect(found.map((c) => [c.major, c.version])).toEqual([
      [15, '15.90'],
      [16, '16.90'],
      [17, '17.90'],
      [18, '18.4'],
    ]);
    expect(found[2]!.path).toBe(join(f.root, 'seventeen', 'bin', 'pg_restore'));
    expect(f.calls(18, 'pg_restore')).toEqual(['--version']);
  });

  it('lists the clients that have the tool: a major without pg_restore is not a restore client', async () => {
    install([15, { major: 16, omit: ['pg_restore'] }, 17]);

    const found = await installedClients('pg_restore');

    expect(found.map((c) => c.major)).toEqual([15, 17]);
  });

  it('says what to install, and where lifeboat looks, when no client is found', async () => {
    process.env[PG_CLIENTS_ENV] = mkdtempSync(join(tmpdir(), 'lifeboat-no-clients-'));
    empty.push(process.env[PG_CLIENTS_ENV]);

    const error = await installedClients('pg_dump').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(MissingToolError);
    expect((error as Error).message).toContain('"pg_dump"');
    expect((error as MissingToolError).nextStep).toMatch(/LIFEBOAT_PG_CLIENTS.*<major>\/bin/);
  });
});

describe('choosing pg_dump for a server', () => {
  it('dumps with the lowest installed client at or above the server major', async () => {
    const f = install([15, 16, 17, 18]);

    const chosen = await Promise.all([15, 16, 17, 18].map((m) => dumpClientFor('orders', server(m))));

    expect(chosen.map((c) => c.major)).toEqual([15, 16, 17, 18]);
    expect(chosen[0]!.installedMajors).toEqual([15, 16, 17, 18]);
    // Nothing but --version ran.
    for (const m of [15, 16, 17, 18]) expect(f.work(m, 'pg_dump')).toEqual([]);
  });

  it('dumps a server older than every client with the oldest client', async () => {
    install([15, 16, 17, 18]);

    const chosen = await dumpClientFor('legacy', server(13, 20));

    expect(chosen.major).toBe(15);
  });

  it('skips a missing major: a PostgreSQL 16 server with clients 15, 17 and 18 is dumped with 17', async () => {
    install([15, 17, 18]);

    const chosen = await dumpClientFor('orders', server(16));

    expect(chosen.major).toBe(17);
  });

  it('takes pg_dump 16 or newer when zstd or lz4 is configured, since pg_dump 15 has neither', async () => {
    install([15, 16, 17, 18]);

    const [zstd, lz4, auto] = await Promise.all([
      dumpClientFor('orders', server(15), { codec: 'zstd' }),
      dumpClientFor('orders', server(15), { codec: 'lz4' }),
      dumpClientFor('orders', server(15), { codec: 'auto' }),
    ]);

    expect([zstd.major, lz4.major, auto.major]).toEqual([16, 16, 15]);
  });

  it('fails before dumping, naming the server and the newest client, when the server is newer than every client', async () => {
    const f = install([15, 16, 17, 18]);

    const error = await dumpClientFor('orders', server(19, 1)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ToolVersionError);
    const message = (error as Error).message;
    expect(message).toContain('"orders"');
    expect(message).toContain('PostgreSQL 19.1');
    expect(message).toContain('pg_dump 18.90');
    expect(message).toContain('15, 16, 17, 18');
    expect((error as ToolVersionError).nextStep).toMatch(/PG_MAJORS/);
    for (const m of [15, 16, 17, 18]) expect(f.work(m, 'pg_dump')).toEqual([]);
  });

  it('uses an explicitly given pg_dump, and still refuses a server newer than it', async () => {
    const f = install([15, 18]);
    const explicit = join(f.root, '15', 'bin', 'pg_dump');

    const chosen = await dumpClientFor('orders', server(15), { path: explicit });
    const error = await dumpClientFor('orders', server(16), { path: explicit }).catch((e: unknown) => e);

    expect(chosen.path).toBe(explicit);
    expect(error).toBeInstanceOf(ToolVersionError);
    expect((error as Error).message).toContain('PostgreSQL 16.4');
  });
});

describe('choosing pg_restore for an archive and a target', () => {
  it('restores into PostgreSQL 16 and older with a client below 17, which sends no transaction_timeout', async () => {
    install([15, 16, 17, 18]);

    const [a15t15, a15t16, a16t16, a15t14] = await Promise.all([
      restoreClientFor(archive(15), target(15)),
      restoreClientFor(archive(15), target(16)),
      restoreClientFor(archive(16), target(16)),
      restoreClientFor(archive(15), target(14)),
    ]);

    expect([a15t15.major, a15t16.major, a16t16.major, a15t14.major]).toEqual([15, 16, 16, 15]);
  });

  it('keeps below 17 for a PostgreSQL 16 target even when client 16 is missing', async () => {
    install([15, 17, 18]);

    const chosen = await restoreClientFor(archive(15), target(16));

    expect(chosen.major).toBe(15);
  });

  it('restores into PostgreSQL 17 and newer with the client of the target major, or the newest for a newer target', async () => {
    install([15, 16, 17, 18]);

    const [a15t17, a18t18, a16t18, a18t19] = await Promise.all([
      restoreClientFor(archive(15), target(17)),
      restoreClientFor(archive(18), target(18)),
      restoreClientFor(archive(16), target(18)),
      restoreClientFor(archive(18), target(19)),
    ]);

    expect([a15t17.major, a18t18.major, a16t18.major, a18t19.major]).toEqual([17, 18, 18, 18]);
  });

  it('fails early, naming both versions and what to do, when an archive from pg_dump 17 or newer must go into PostgreSQL 16 or older', async () => {
    const f = install([15, 16, 17, 18]);

    const error = await restoreClientFor(archive(18), target(15)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ToolVersionError);
    const message = (error as Error).message;
    expect(message).toContain('20261201T030000Z-abc123');
    expect(message).toContain('pg_dump 18.90');
    expect(message).toContain('PostgreSQL 15.4');
    expect(message).toContain('transaction_timeout');
    expect((error as ToolVersionError).nextStep).toMatch(/PostgreSQL 18 or newer/);
    for (const m of [15, 16, 17, 18]) expect(f.work(m, 'pg_restore')).toEqual([]);
  });

  it('fails naming the archive and the newest client when no installed pg_restore can read the archive', async () => {
    install([15, 16]);

    const error = await restoreClientFor(archive(18), target(18)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ToolVersionError);
    expect((error as Error).message).toContain('pg_dump 18.90');
    expect((error as Error).message).toContain('pg_restore 16.90');
    expect((error as ToolVersionError).nextStep).toMatch(/pg_restore 18 or newer/);
  });

  it('reads an archive without a target (verify) with the lowest client that can read it', async () => {
    install([15, 16, 17, 18]);

    const chosen = await restoreClientFor(archive(16));

    expect(chosen.major).toBe(16);
    expect(chosen.installedMajors).toEqual([15, 16, 17, 18]);
  });
});
