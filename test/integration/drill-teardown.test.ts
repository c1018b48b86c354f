import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { Logger } from '@aws-lambda-powertools/logger';
import { LocalPostgresProvisioner } from '../../functions/lib/drill/local-provisioner.ts';
import { localDrillDeps, runLocalDrill, type LocalDrillResult } from '../../cli/local-drill.ts';
import type { DrillResource, Provisioner, ProvisionRequest } from '../../functions/lib/drill/provisioner.ts';
import type { InstanceRef } from '../../functions/lib/drill/types.ts';
import { createTestBucket, createTestKey, createTestSecret, testClients } from '../harness/aws.ts';
import { createTestDatabase, pgServer, withClient } from '../harness/pg.ts';
import { alertInbox, backUp, capturingOutput, tempRegistry, type ReceivedAlert } from './drill-harness.ts';

const clients = testClients();

/**
 * A provisioner whose teardown never finishes (RDS still `deleting`, or
 * refusing the delete while the instance is busy) until `release()`: the
 * throwaway is kept until the test cleans it up.
 */
class TeardownNeverFinishes implements Provisioner {
  readonly provider = 'local' as const;
  readonly sslMode = 'disable' as const;
  attempts = 0;
  #released = false;
  constructor(private readonly inner: LocalPostgresProvisioner) {}
  provision(request: ProvisionRequest) {
    return this.inner.provision(request);
  }
  status(ref: InstanceRef) {
    return this.inner.status(ref);
  }
  applyPassword(ref: InstanceRef, password: string) {
    return this.inner.applyPassword(ref, password);
  }
  async teardown(drillId: string, ...rest: unknown[]) {
    if (this.#released) return (this.inner.teardown as (id: string, ...r: unknown[]) => ReturnType<Provisioner['teardown']>)(drillId, ...rest);
    this.attempts++;
    return [{ type: 'local-cluster' as const, id: drillId, outcome: 'pending' as const, detail: 'deleting' }];
  }
  release() {
    this.#released = true;
  }
  listDrillResources() {
    return this.inner.listDrillResources();
  }
  deleteResource(resource: DrillResource) {
    return this.inner.deleteResource(resource);
  }
}

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let registryDir: string;
let provisioner: TeardownNeverFinishes;
let drill: LocalDrillResult;
let alerts: ReceivedAlert[];

beforeAll(async () => {
  db = await createTestDatabase('lbdrilltd');
  await withClient(db.name, (c) => c.query('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)'));
  const [keyArn, bucket] = await Promise.all([createTestKey(), createTestBucket()]);
  const s = pgServer();
  const secretArn = await createTestSecret({ username: s.user, password: s.password, host: s.host, port: s.port });
  await backUp('slowteardown', db.name, { bucket, kmsKeyArn: keyArn, secretArn });
  registryDir = tempRegistry();
  const inbox = await alertInbox();
  const deps = localDrillDeps({ clients, storage: { bucket, prefix: 'backups/' }, registryDir });
  provisioner = new TeardownNeverFinishes(deps.provisioners.local as LocalPostgresProvisioner);
  deps.provisioners.local = provisioner;
  ({ result: drill } = await capturingOutput(() =>
    runLocalDrill({
      requests: [{ databaseId: 'slowteardown', planId: 'nightly', targets: { rpoMinutes: 60, rtoMinutes: 30 } }],
      deps,
      alert: { sns: inbox.sns, topicArn: inbox.topicArn },
      logger: new Logger({ serviceName: 'lifeboat-test', logLevel: 'CRITICAL' }),
    }),
  ));
  alerts = await inbox.receiveAll();
}, 120_000);

afterAll(async () => {
  // What the janitor would do: delete the throwaway the drill could not.
  provisioner?.release();
  for (const resource of (await provisioner?.listDrillResources()) ?? []) await provisioner.deleteResource(resource);
  await db?.drop();
  if (registryDir) rmSync(registryDir, { recursive: true, force: true });
});

describe('a drill whose teardown gives up after the verdict', () => {
  it('keeps the verdict: the restore was proven, the run succeeds', () => {
    // Assess: every teardown retry was used, and the drill still passed.
    expect(provisioner.attempts).toBeGreaterThan(10);
    expect(drill.run.status, String(drill.run.cause)).toBe('SUCCEEDED');
    expect(drill.items).toEqual([expect.objectContaining({ databaseId: 'slowteardown', status: 'passed' })]);
    expect(drill.reports[0]).toMatchObject({ verdict: 'passed', teardown: { status: 'incomplete' } });
    expect(drill.reports[0]!.teardown.error).toMatch(/still waiting for local-cluster .* \(deleting\)/);
  });

  it('raises one alert of its own naming the leftover and the janitor, and no drill-failed alert', () => {
    // Assess
    expect(alerts.map((a) => a.subject)).toEqual(['[lifeboat] Drill teardown incomplete: database slowteardown, plan nightly: TeardownIncompleteError']);
    expect(alerts[0]!.message).toMatch(/Teardown of drill \S+ \(database "slowteardown"\) is still waiting for local-cluster/);
    expect(alerts[0]!.message).toMatch(/janitor/);
    expect(alerts[0]!.details).toMatchObject({ kind: 'drill-teardown-incomplete', databaseId: 'slowteardown' });
  });
});
