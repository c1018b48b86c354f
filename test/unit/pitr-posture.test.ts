import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CreateDBClusterCommand, CreateDBInstanceCommand, RDSClient } from '@aws-sdk/client-rds';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { waitUntilAvailable } from '../../local/strict-rds.ts';
import { failRds, rdsRequest } from '../../local/moto-rds-compat.ts';
import { startMotoCompatProxy, type MotoCompatProxy } from '../../local/nightly-environment.ts';
import { checkDatabasePosture, checkPosture, MAX_LISTED_DATABASES, REPLICA_LAG_ALLOWANCE_MINUTES, summarisePosture, type DatabasePosture, type PitrTarget, type PlanPosture } from '../../functions/lib/pitr/posture.ts';
import { createPitrInstance, ScriptedAutomatedBackups } from '../harness/pitr-rds.ts';
import { uniqueName } from '../harness/aws.ts';

/**
 * Issue 13, must-show 2: the PITR posture of a plan's databases, read from a
 * real moto RDS through the repo's fault proxy. Automated backups (their
 * restore window, replication to the copy region) are scripted in RDS's own
 * shapes (test/harness/pitr-rds.ts), as moto has none.
 */
const SOURCE = 'eu-west-1';
const COPY = 'eu-central-1';
const CMK = 'arn:aws:kms:eu-central-1:123456789012:key/11111111-2222-3333-4444-555555555555';
const OTHER_KEY = 'arn:aws:kms:eu-central-1:123456789012:key/99999999-2222-3333-4444-555555555555';

let proxy: MotoCompatProxy;
let backups: ScriptedAutomatedBackups;
const clients = new Map<string, RDSClient>();
const rds = (region: string) => {
  let client = clients.get(region);
  if (!client) clients.set(region, (client = new RDSClient({ region, endpoint: proxy.endpoint, maxAttempts: 2 })));
  return client;
};

function target(databaseId: string, instanceIdentifier: string, pitr: Partial<PitrTarget['pitr']> = {}): PitrTarget {
  return {
    databaseId,
    planId: 'nightly',
    ref: { instanceIdentifier },
    region: SOURCE,
    pitr: { windowDays: 7, copyRegion: false, manage: false, maxLagMinutes: 15, ...pitr },
    copy: { region: COPY, kmsKeyArn: CMK },
  };
}

const startCalls = () => proxy.seen.map((req) => rdsRequest(req)).filter((r) => r?.action === 'StartDBInstanceAutomatedBackupsReplication');

beforeAll(async () => {
  // Strict lifecycle off: the scripted automated backups answer DescribeDBInstanceAutomatedBackups and the replication calls.
  proxy = await startMotoCompatProxy(inject('motoEndpoint'), undefined, false);
  backups = new ScriptedAutomatedBackups();
  proxy.addRule(backups.rule());
});

afterAll(async () => {
  await proxy?.stop();
});

describe('PITR posture of an RDS instance', () => {
  it('is in posture when the instance keeps the window, ships its logs, and replicates to the copy region under the CMK', async () => {
    // Prepare
    const id = uniqueName('pitr-ok');
    await createPitrInstance(rds(SOURCE), backups, id, 7);
    backups.replicate(id, COPY, 7, CMK);

    // Act
    const posture = await checkDatabasePosture({ rds }, target('orders', id, { copyRegion: true }));

    // Assess
    expect(posture.problems).toEqual([]);
    expect(posture).toMatchObject({ status: 'ok', kind: 'instance', retentionDays: 7, windowDays: 7, copyRegion: { region: COPY, state: 'replicating', retentionDays: 7, kmsKeyArn: CMK } });
    expect(posture.lagSeconds).toBeLessThan(60);
    expect(Date.now() - Date.parse(posture.earliest!)).toBeGreaterThan(6.9 * 86_400_000);
    expect(posture.earliestEstimated).toBeUndefined();
    // The replica's own newest restorable moment is measured too: fresh, so no problem.
    expect(posture.copyRegion?.lagSeconds).toBeLessThan(60);
    expect(Date.parse(posture.copyRegion!.latest!)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('drifts when the copy region\'s replica lags more than maxLagMinutes although it is replicating and the source is fresh', async () => {
    // Prepare: the replication runs, but its newest restorable moment stalled 40 minutes ago.
    const id = uniqueName('pitr-replag');
    await createPitrInstance(rds(SOURCE), backups, id, 7);
    backups.replicate(id, COPY, 7, CMK, 'replicating', new Date(Date.now() - 40 * 60_000));

    // Act
    const posture = await checkDatabasePosture({ rds }, target('orders', id, { copyRegion: true, maxLagMinutes: 15 }));

    // Assess: the source itself is in posture; only the copy region's window trails.
    expect(posture.status).toBe('drift');
    expect(posture.lagSeconds).toBeLessThan(60);
    expect(posture.copyRegion).toMatchObject({ region: COPY, state: 'replicating' });
    expect(posture.copyRegion!.lagSeconds).toBeGreaterThanOrEqual(40 * 60 - 5);
    expect(posture.problems).toHaveLength(1);
    expect(posture.problems[0]).toMatch(
      new RegExp(`^Database "orders" \\(instance ${id}, ${SOURCE}\\): the newest restorable moment of its automated backups replicated to ${COPY} is \\S+, 40 min behind now; wanted at most 15 min \\(pitr.maxLagMinutes\\), as that is all ${COPY} can restore if ${SOURCE} is lost\\. Fix: .*describe-events --region ${SOURCE} --source-identifier ${id}`),
    );
  });

  it('holds the replica to maxLagMinutes exactly (no allowance AWS documents): just under passes, just over drifts', async () => {
    // Prepare
    const under = uniqueName('pitr-repunder');
    const over = uniqueName('pitr-repover');
    await createPitrInstance(rds(SOURCE), backups, under, 7);
    await createPitrInstance(rds(SOURCE), backups, over, 7);
    backups.replicate(under, COPY, 7, CMK, 'replicating', new Date(Date.now() - (15 * 60 - 30) * 1000));
    backups.replicate(over, COPY, 7, CMK, 'replicating', new Date(Date.now() - (15 * 60 + 30) * 1000));

    // Act
    const [a, b] = await Promise.all([checkDatabasePosture({ rds }, target('a', under, { copyRegion: true })), checkDatabasePosture({ rds }, target('b', over, { copyRegion: true }))]);

    // Assess
    expect(REPLICA_LAG_ALLOWANCE_MINUTES).toBe(0);
    expect(a.status).toBe('ok');
    expect(b.status).toBe('drift');
    expect(b.problems[0]).toContain(`replicated to ${COPY} is`);
  });

  it('drifts when a replicating replica shows no newest restorable moment', async () => {
    // Prepare: RDS answers the replica without a RestoreWindow.
    const id = uniqueName('pitr-repnowin');
    await createPitrInstance(rds(SOURCE), backups, id, 7);
    backups.replicate(id, COPY, 7, CMK, 'replicating', null);

    // Act
    const posture = await checkDatabasePosture({ rds }, target('orders', id, { copyRegion: true }));

    // Assess
    expect(posture.status).toBe('drift');
    expect(posture.copyRegion?.lagSeconds).toBeUndefined();
    expect(posture.problems[0]).toContain(`replicated to ${COPY} show no newest restorable moment (RestoreWindow.LatestTime)`);
  });

  it('drifts when the retention is shorter than the window, naming database, instance, region, found, wanted and the fix', async () => {
    // Prepare
    const id = uniqueName('pitr-short');
    await createPitrInstance(rds(SOURCE), backups, id, 3);

    // Act
    const posture = await checkDatabasePosture({ rds }, target('orders', id));

    // Assess
    expect(posture.status).toBe('drift');
    expect(posture.problems).toEqual([
      `Database "orders" (instance ${id}, ${SOURCE}) keeps automated backups for 3 days; the plan "nightly" wants a point-in-time window of 7 days. Fix: aws rds modify-db-instance --region ${SOURCE} --db-instance-identifier ${id} --backup-retention-period 7 --apply-immediately.`,
    ]);
  });

  it('drifts when the newest restorable moment lags more than maxLagMinutes (the PITR RPO)', async () => {
    // Prepare: the check runs 40 minutes after RDS's newest restorable moment.
    const id = uniqueName('pitr-lag');
    await createPitrInstance(rds(SOURCE), backups, id, 7);
    const later = new Date(Date.now() + 40 * 60_000);

    // Act
    const posture = await checkDatabasePosture({ rds, now: () => later }, target('orders', id, { maxLagMinutes: 15 }));

    // Assess
    expect(posture.status).toBe('drift');
    expect(posture.lagSeconds).toBeGreaterThanOrEqual(40 * 60 - 5);
    expect(posture.problems[0]).toMatch(new RegExp(`^Database "orders" \\(instance ${id}, ${SOURCE}\\): the newest restorable moment is \\S+, 40 min behind now \\(the PITR RPO\\); wanted at most 15 min \\(pitr.maxLagMinutes\\)\\. Fix: RDS is not shipping transaction logs`));
  });

  it('reports a read that fails as unreadable, never ok: access denied, and an unknown instance', async () => {
    // Prepare
    const denied = uniqueName('pitr-denied');
    await createPitrInstance(rds(SOURCE), backups, denied, 7);
    proxy.addRule(failRds('DescribeDBInstances', 'AccessDenied', 'User is not authorized to perform rds:DescribeDBInstances', (r) => r.params.get('DBInstanceIdentifier') === denied));

    // Act
    const result = await checkPosture({ rds }, [target('orders', denied), target('ghost', uniqueName('pitr-ghost')), target('fine', (await createPitrInstance(rds(SOURCE), backups, uniqueName('pitr-fine'), 7)).id)]);

    // Assess: each database has its own answer; one failure does not stop the others.
    expect(result).toMatchObject({ checked: 3, ok: 1, drifting: 0, unreadable: 2 });
    const [a, b] = result.databases as [DatabasePosture, DatabasePosture];
    expect(a.status).toBe('unreadable');
    expect(a.problems[0]).toMatch(/^Database "orders" \(instance pitr-denied\S*, eu-west-1\): its point-in-time window could not be read \(AccessDenied: User is not authorized.*\); the posture is unknown, not ok\. Fix: grant rds:DescribeDBInstances/);
    expect(b.status).toBe('unreadable');
    expect(b.problems[0]).toMatch(/\(DBInstanceNotFound\S*: .*\).*Fix: check rds\.instanceIdentifier "pitr-ghost\S*" and the database's source region \(eu-west-1\)\.$/);
  });

  it('reports missing replication without manage (and starts nothing), and starts it in the copy region with manage', async () => {
    // Prepare
    const id = uniqueName('pitr-repl');
    const instance = await createPitrInstance(rds(SOURCE), backups, id, 7);
    const before = startCalls().length;

    // Act
    const reported = await checkDatabasePosture({ rds }, target('orders', id, { copyRegion: true }));
    const afterReport = startCalls().length;
    const managed = await checkDatabasePosture({ rds }, target('orders', id, { copyRegion: true, manage: true }));
    const again = await checkDatabasePosture({ rds }, target('orders', id, { copyRegion: true, manage: true }));

    // Assess
    expect(reported.status).toBe('drift');
    expect(reported.copyRegion?.state).toBe('missing');
    expect(reported.problems[0]).toBe(
      `Database "orders" (instance ${id}, ${SOURCE}): its automated backups are not replicated to ${COPY}; wanted replicated for 7 days under ${CMK}. Fix: aws rds start-db-instance-automated-backups-replication --region ${COPY} --source-db-instance-arn ${instance.arn} --backup-retention-period 7 --kms-key-id ${CMK} (or set pitr.manage: true and lifeboat starts it).`,
    );
    expect(afterReport).toBe(before);
    expect(managed).toMatchObject({ status: 'ok', copyRegion: { state: 'started', region: COPY } });
    expect(managed.actions?.[0]).toMatch(new RegExp(`^started replicating the automated backups of ${id} \\(${SOURCE}\\) to ${COPY}: 7 days under `));
    const calls = startCalls().slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ region: COPY });
    expect(Object.fromEntries(calls[0]!.params)).toMatchObject({ SourceDBInstanceArn: instance.arn, BackupRetentionPeriod: '7', KmsKeyId: CMK });
    // Started once: the next check finds it being set up and starts nothing.
    expect(again.copyRegion?.state).toBe('starting');
    expect(startCalls().slice(before)).toHaveLength(1);
  });

  it('drifts when the replica is kept too briefly or under another key, and says how to replace it', async () => {
    // Prepare
    const id = uniqueName('pitr-wrongkey');
    await createPitrInstance(rds(SOURCE), backups, id, 7);
    backups.replicate(id, COPY, 3, OTHER_KEY);

    // Act
    const posture = await checkDatabasePosture({ rds }, target('orders', id, { copyRegion: true, manage: true }));

    // Assess: manage never replaces a running replication (that would drop the replica's window).
    expect(posture.status).toBe('drift');
    expect(posture.problems).toHaveLength(2);
    expect(posture.problems[0]).toMatch(new RegExp(`replicated to ${COPY} are kept 3 days; wanted 7 \\(pitr.windowDays\\)\\. Fix: replace the replication .*stop-db-instance-automated-backups-replication`));
    expect(posture.problems[1]).toContain(`are encrypted with ${OTHER_KEY}; wanted ${CMK} (snapshots.copy.kmsKeyArn)`);
  });

  it('reports an unreadable copy region as unreadable', async () => {
    // Prepare
    const id = uniqueName('pitr-copyden');
    await createPitrInstance(rds(SOURCE), backups, id, 7);
    backups.fail((r) => r.action === 'DescribeDBInstanceAutomatedBackups' && r.region === COPY, 'AccessDenied', 'not authorized in the copy region');

    // Act
    const posture = await checkDatabasePosture({ rds }, target('orders', id, { copyRegion: true, manage: true }));

    // Assess
    expect(posture).toMatchObject({ status: 'unreadable', copyRegion: { state: 'unreadable' } });
    expect(posture.problems[0]).toMatch(/replicated automated backups in eu-central-1 could not be read \(AccessDenied: not authorized in the copy region\); the copy-region window is unknown, not ok/);
  });
});

describe('the check near its time limit', () => {
  it('hands over each database as it is checked and, once aborted, starts no other: those are unreadable, never ok', async () => {
    // Prepare
    const ids = await Promise.all([0, 1, 2].map((i) => createPitrInstance(rds(SOURCE), backups, uniqueName(`pitr-deadline-${i}`), 7)));
    const controller = new AbortController();
    const handed: string[] = [];

    // Act: one at a time; the time runs out after the first.
    const result = await checkPosture({ rds }, ids.map((x, i) => target(`db-${i}`, x.id)), {
      concurrency: 1,
      signal: controller.signal,
      onResult: (p) => {
        handed.push(`${p.databaseId}:${p.status}`);
        controller.abort();
      },
    });

    // Assess
    expect(handed).toEqual(['db-0:ok', 'db-1:unreadable', 'db-2:unreadable']);
    expect(result).toMatchObject({ checked: 3, ok: 1, unreadable: 2 });
    expect(result.databases[1]!.problems[0]).toBe(
      `Database "db-1" (instance ${ids[1]!.id}, ${SOURCE}): not checked, the posture check ran out of time before reaching it (RDS slow or throttling); the posture is unknown, not ok. Fix: run \`lifeboat pitr status --database db-1\`; if it keeps happening, spread the databases over more plans.`,
    );
  });
});

describe('PITR posture of an Aurora cluster', () => {
  it('says plainly there is no automated-backup replication, and flags copyRegion as a problem', async () => {
    // Prepare
    const id = uniqueName('pitr-aurora');
    await rds(SOURCE).send(new CreateDBClusterCommand({ DBClusterIdentifier: id, Engine: 'aurora-postgresql', MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1', BackupRetentionPeriod: 7 }));
    const aurora = (pitr: Partial<PitrTarget['pitr']>): PitrTarget => ({ ...target('ledger', id, pitr), ref: { clusterIdentifier: id } });

    // Act
    const plain = await checkDatabasePosture({ rds }, aurora({}));
    const withCopy = await checkDatabasePosture({ rds }, aurora({ copyRegion: true }));

    // Assess
    expect(plain.kind).toBe('aurora');
    expect(plain.copyRegion).toEqual({ region: COPY, state: 'not-available' });
    expect(plain.problems.filter((p) => p.includes('replication'))).toEqual([]);
    expect(withCopy.status).not.toBe('ok');
    expect(withCopy.problems).toContain(
      `Database "ledger" (cluster ${id}, ${SOURCE}): Aurora has no automated-backup replication, so pitr.copyRegion cannot hold for ${id}; its copies in ${COPY} rely on snapshot copies. Fix: move the database to a plan without pitr.copyRegion and take snapshots (snapshot: true with snapshots.copy).`,
    );
  });
});

describe('PITR posture through the strict RDS layer (its automated backups, replication and lagging LatestRestorableTime)', () => {
  it('starts the missing replication in the copy region, then sees it, and drifts when the newest restorable moment lags', async () => {
    // Prepare
    const strict = await startMotoCompatProxy(inject('motoEndpoint'));
    try {
      const client = (region: string) => new RDSClient({ region, endpoint: strict.endpoint, maxAttempts: 2 });
      const strictRds = (region: string) => client(region);
      const id = uniqueName('pitr-strict');
      await client(SOURCE).send(new CreateDBInstanceCommand({ DBInstanceIdentifier: id, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1', AllocatedStorage: 20, BackupRetentionPeriod: 7, StorageEncrypted: true }));
      await waitUntilAvailable(client(SOURCE), { instances: [id] });
      // The copy region's CMK exists there: the layer refuses a replication under a key it cannot find.
      const copyKey = (await new KMSClient({ region: COPY, endpoint: strict.endpoint }).send(new CreateKeyCommand({ Description: 'pitr copy key' }))).KeyMetadata!.Arn!;
      const wanted = { ...target('orders', id, { copyRegion: true, manage: true, maxLagMinutes: 15 }), copy: { region: COPY, kmsKeyArn: copyKey } };

      // Act
      const first = await checkDatabasePosture({ rds: strictRds }, wanted);
      const second = await checkDatabasePosture({ rds: strictRds }, wanted);
      const fresh = await checkDatabasePosture({ rds: strictRds }, wanted);
      const account = (await client(SOURCE).send(new CreateDBClusterCommand({ DBClusterIdentifier: uniqueName('pitr-acct'), Engine: 'aurora-postgresql', MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1' }))).DBCluster!.DBClusterArn!.split(':')[4]!;
      strict.rds!.setRestoreWindow({ account, region: SOURCE, kind: 'instance', id }, { latest: new Date(Date.now() - 40 * 60_000) });
      const lagging = await checkDatabasePosture({ rds: strictRds }, wanted);

      // Assess
      expect(first.problems).toEqual([]);
      expect(first).toMatchObject({ status: 'ok', retentionDays: 7, copyRegion: { state: 'started', region: COPY } });
      expect(['starting', 'replicating']).toContain(second.copyRegion?.state);
      expect(second.copyRegion).toMatchObject({ retentionDays: 7 });
      // The replica (now replicating) follows its source: fresh passes, and a source stalled 40 minutes stalls it too.
      expect(fresh).toMatchObject({ status: 'ok', copyRegion: { state: 'replicating' } });
      expect(fresh.copyRegion!.lagSeconds).toBeLessThanOrEqual(5 * 60 + 5);
      expect(lagging.status).toBe('drift');
      expect(lagging.problems.some((p) => /the newest restorable moment is \S+, 40 min behind now \(the PITR RPO\); wanted at most 15 min/.test(p))).toBe(true);
      expect(lagging.copyRegion!.lagSeconds).toBeGreaterThanOrEqual(40 * 60 - 5);
      expect(lagging.problems.some((p) => p.includes(`automated backups replicated to ${COPY} is `) && p.includes('40 min behind now'))).toBe(true);
    } finally {
      await strict.stop();
    }
  });
});

describe('the run summary', () => {
  it('stays small at 1000 databases: counts, at most 20 listed, and the alert text', () => {
    // Prepare
    const long = 'x'.repeat(600);
    const databases: DatabasePosture[] = Array.from({ length: 1000 }, (_, i) => ({
      databaseId: `db-${String(i).padStart(4, '0')}-${'n'.repeat(40)}`,
      planId: 'nightly',
      identifier: `instance-${i}`,
      region: SOURCE,
      status: i % 2 ? 'drift' : 'ok',
      windowDays: 7,
      maxLagMinutes: 15,
      problems: i % 2 ? [long, long, long, long] : [],
    }));
    const posture: PlanPosture = { checked: 1000, ok: 500, drifting: 500, unreadable: 0, databases };

    // Act
    const summary = summarisePosture('nightly', posture);

    // Assess
    expect(summary).toMatchObject({ planId: 'nightly', checked: 1000, ok: 500, drifting: 500, notInPosture: 500 });
    expect(summary.problems).toHaveLength(MAX_LISTED_DATABASES);
    expect(summary.alert?.Error).toBe('PitrPostureDrift');
    expect(summary.alert?.Cause).toMatch(/^500 of 1000 databases of plan "nightly" are not in their point-in-time recovery posture \(500 drifting\):\n- db-0001/);
    expect(summary.alert?.Cause).toContain('- ... and 490 more');
    expect(summary.alert?.Cause).toMatch(/\nNext step: run `lifeboat pitr status --plan nightly`/);
    expect(Buffer.byteLength(JSON.stringify(summary))).toBeLessThan(32 * 1024);
  });

  it('raises no alert when every database is in posture', () => {
    expect(summarisePosture('nightly', { checked: 2, ok: 2, drifting: 0, unreadable: 0, databases: [] }).alert).toBeUndefined();
  });
});
