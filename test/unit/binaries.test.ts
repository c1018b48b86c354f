import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MissingToolError } from '../../functions/lib/errors.ts';

const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

describe('required binaries', () => {
  it('stops with what to install when moto_server is missing', async () => {
    process.env.PATH = mkdtempSync(join(tmpdir(), 'empty-path-'));
    delete process.env.LIFEBOAT_MOTO_SERVER;
    const { motoServerBinary } = await import('../../local/moto-server.ts');
    expect(() => motoServerBinary()).toThrow(MissingToolError);
    expect(() => motoServerBinary()).toThrow(/pip install "moto\[server\]"/);
  });

  it('stops with what to install when PostgreSQL binaries are missing', async () => {
    process.env.PATH = mkdtempSync(join(tmpdir(), 'empty-path-'));
    process.env.LIFEBOAT_PG_BIN = mkdtempSync(join(tmpdir(), 'empty-pg-'));
    const { postgresBinary } = await import('../../functions/lib/pg/binaries.ts');
    expect(() => postgresBinary('initdb')).toThrow(/"initdb" was not found.*apt-get install postgresql/s);
  });
});
