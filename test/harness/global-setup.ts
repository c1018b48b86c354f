import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { postgresBinary } from '../../functions/lib/pg/binaries.ts';
import { motoServerBinary } from '../../local/moto-server.ts';
import { startLocalPostgres, type LocalPostgresCluster } from '../../functions/lib/pg/postgres-cluster.ts';
import { startMotoServer, type LocalMotoServer } from '../../local/moto-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pg: { host: string; port: number; user: string; password: string };
    motoEndpoint: string;
  }
}

/**
 * Starts the real services the suite needs (a throwaway PostgreSQL cluster and
 * moto_server, both on loopback) and stops them however the run ends. Every
 * temp dir of the run (bundles, synth outputs, clusters) goes under one
 * directory of its own, set as TMPDIR for this process and the test workers,
 * and removed at the end: a run leaves nothing in the machine's /tmp.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Fail at once, naming what to install, before any test runs.
  for (const tool of ['initdb', 'pg_ctl', 'postgres', 'pg_dump', 'pg_restore'] as const) postgresBinary(tool);
  motoServerBinary();

  const previousTmp = process.env.TMPDIR;
  const runTmp = mkdtempSync(join(tmpdir(), 'lifeboat-test-run-'));
  // As /tmp: the throwaway clusters run as the postgres OS user and keep their data here.
  chmodSync(runTmp, 0o1777);
  process.env.TMPDIR = runTmp;

  let pg: LocalPostgresCluster | undefined;
  let moto: LocalMotoServer | undefined;
  const stopAll = async () => {
    await Promise.allSettled([pg?.stop(), moto?.stop()]);
    pg = undefined;
    moto = undefined;
    if (previousTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previousTmp;
    rmSync(runTmp, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    void stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    [pg, moto] = await Promise.all([startLocalPostgres(), startMotoServer()]);
  } catch (error) {
    await stopAll();
    throw error;
  }
  project.provide('pg', { host: pg.host, port: pg.port, user: pg.superuser, password: pg.password });
  project.provide('motoEndpoint', moto.endpoint);

  return async () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopAll();
  };
}
