import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RDSClient } from '@aws-sdk/client-rds';
import { failRds, rdsRequest } from '../../local/moto-rds-compat.ts';
import { startMotoCompatProxy, type MotoCompatProxy } from '../../local/nightly-environment.ts';
import { uniqueName } from '../harness/aws.ts';
import { lifeboat } from '../harness/cli.ts';
import { createPitrInstance, ScriptedAutomatedBackups, type ScriptedInstance } from '../harness/pitr-rds.ts';

/**
 * Issue 13, must-show 2: `lifeboat pitr status` through the real bin, against
 * moto RDS behind the fault proxy (automated backups and their replication
 * scripted in RDS's shapes: test/harness/pitr-rds.ts). Exit 0 in posture, 1 on
 * drift or an unreadable database, 2 on usage and config errors.
 */
const SOURCE = 'eu-west-1';
const COPY = 'eu-central-1';
const CMK = 'arn:aws:kms:eu-central-1:123456789012:key/11111111-2222-3333-4444-555555555555';

let proxy: MotoCompatProxy;
let backups: ScriptedAutomatedBackups;
let dir: string;
const instances: Record<'good' | 'short' | 'denied' | 'managed', ScriptedInstance> = {} as never;
const ghost = uniqueName('pitrcli-ghost');

function writeConfig(name: string, plans: Array<{ id: string; databases: string[]; pitr: Record<string, unknown> }>): string {
  const path = join(dir, `${name}.json`);
  const ids = [...new Set(plans.flatMap((p) => p.databases))];
  const rdsOf: Record<string, string> = { good: instances.good.id, short: instances.short.id, denied: instances.denied.id, managed: instances.managed.id, ghost };
  writeFileSync(
    path,
    JSON.stringify({
      name: 'pitrcli',
      source: { region: SOURCE },
      databases: ids.map((id) => ({ id, connection: { host: 'db.invalid', database: id, username: 'lifeboat', passwordEnv: 'UNUSED_DB_PASSWORD' }, rds: { instanceIdentifier: rdsOf[id] } })),
      plans: plans.map((p) => ({ id: p.id, schedule: { cron: 'cron(0 3 * * ? *)' }, databases: p.databases, rpoMinutes: 1440, rtoMinutes: 60, pitr: p.pitr })),
      storage: { bucketName: 'pitrcli-unused', kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000' },
      snapshots: { copy: { region: COPY, kmsKeyArn: CMK } },
    }),
  );
  return path;
}

const pitr = (args: string[]) => lifeboat(['pitr', ...args], { AWS_ENDPOINT_URL: proxy.endpoint, AWS_REGION: SOURCE });
const startCalls = () => proxy.seen.map((req) => rdsRequest(req)).filter((r) => r?.action === 'StartDBInstanceAutomatedBackupsReplication');

beforeAll(async () => {
  proxy = await startMotoCompatProxy(inject('motoEndpoint'), undefined, false);
  backups = new ScriptedAutomatedBackups();
  proxy.addRule(backups.rule());
  const rds = new RDSClient({ region: SOURCE, endpoint: proxy.endpoint });
  instances.good = await createPitrInstance(rds, backups, uniqueName('pitrcli-good'), 7);
  instances.short = await createPitrInstance(rds, backups, uniqueName('pitrcli-short'), 2);
  instances.denied = await createPitrInstance(rds, backups, uniqueName('pitrcli-denied'), 7);
  instances.managed = await createPitrInstance(rds, backups, uniqueName('pitrcli-managed'), 7);
  backups.replicate(instances.good.id, COPY, 7, CMK);
  proxy.addRule(failRds('DescribeDBInstances', 'AccessDenied', 'User: arn:aws:sts::123456789012:assumed-role/ops is not authorized to perform: rds:DescribeDBInstances', (r) => r.params.get('DBInstanceIdentifier') === instances.denied.id));
  dir = mkdtempSync(join(tmpdir(), 'lifeboat-pitr-cli-'));
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lifeboat pitr status', () => {
  it('exits 0 with a table when every database is in posture (window, earliest, latest, lag, copy-region replication)', async () => {
    // Prepare
    const config = writeConfig('good', [{ id: 'nightly', databases: ['good'], pitr: { windowDays: 7, copyRegion: true } }]);

    // Act
    const text = await pitr(['status', '--config', config]);
    const json = await pitr(['status', '--config', config, '--json']);

    // Assess
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^DATABASE\s+PLAN\s+RDS\s+REGION\s+WINDOW \(KEPT\/WANTED\)\s+EARLIEST\s+LATEST\s+LAG \(PITR RPO\)\s+COPY REGION\s+STATUS$/m);
    expect(text.stdout).toMatch(new RegExp(`^good\\s+nightly\\s+${instances.good.id}\\s+eu-west-1\\s+7 d / 7 d\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ\\s+\\d+ s / max 15 min\\s+eu-central-1: replicating 7 d, lag \\d+ s\\s+OK$`, 'm'));
    expect(text.stdout).toContain('IN POSTURE: 1 of 1 databases.');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ inPosture: true, checked: 1, ok: 1, databases: [{ databaseId: 'good', status: 'ok', retentionDays: 7, copyRegion: { state: 'replicating', lagSeconds: expect.any(Number) } }] });
  });

  it('exits 1 on drift, naming the retention found, the window wanted and the command that fixes it', async () => {
    // Prepare
    const config = writeConfig('short', [{ id: 'nightly', databases: ['good', 'short'], pitr: { windowDays: 7 } }]);

    // Act
    const out = await pitr(['status', '--config', config]);

    // Assess
    expect(out.code, out.stderr).toBe(1);
    expect(out.stdout).toMatch(new RegExp(`^short\\s+nightly\\s+${instances.short.id}\\s+eu-west-1\\s+2 d / 7 d\\s.*DRIFT$`, 'm'));
    expect(out.stdout).toContain(
      `- Database "short" (instance ${instances.short.id}, eu-west-1) keeps automated backups for 2 days; the plan "nightly" wants a point-in-time window of 7 days. Fix: aws rds modify-db-instance --region eu-west-1 --db-instance-identifier ${instances.short.id} --backup-retention-period 7 --apply-immediately.`,
    );
    expect(out.stdout).toContain('NOT IN POSTURE: 1 of 2 databases (1 drifting, 0 unreadable).');
  });

  it('exits 1 when a database cannot be read (access denied, unknown instance), each said as a problem, never ok', async () => {
    // Prepare
    const config = writeConfig('unreadable', [{ id: 'nightly', databases: ['denied', 'ghost', 'good'], pitr: { windowDays: 7 } }]);

    // Act
    const out = await pitr(['status', '--config', config, '--json']);

    // Assess
    expect(out.code, out.stderr).toBe(1);
    const report = JSON.parse(out.stdout);
    expect(report).toMatchObject({ inPosture: false, checked: 3, ok: 1, unreadable: 2 });
    const byId = Object.fromEntries(report.databases.map((d: { databaseId: string }) => [d.databaseId, d]));
    expect(byId.denied.status).toBe('unreadable');
    expect(byId.denied.problems[0]).toMatch(/could not be read \(AccessDenied: User: .* is not authorized to perform: rds:DescribeDBInstances\); the posture is unknown, not ok\. Fix: grant rds:DescribeDBInstances/);
    expect(byId.ghost.status).toBe('unreadable');
    expect(byId.ghost.problems[0]).toMatch(new RegExp(`Fix: check rds\\.instanceIdentifier "${ghost}" and the database's source region \\(eu-west-1\\)\\.$`));
    expect(byId.good.status).toBe('ok');
  });

  it('with pitr.manage starts the missing replication in the copy region, says so, and exits 0', async () => {
    // Prepare
    const config = writeConfig('managed', [{ id: 'nightly', databases: ['managed'], pitr: { windowDays: 5, copyRegion: true, manage: true } }]);
    const before = startCalls().length;

    // Act
    const out = await pitr(['status', '--config', config]);

    // Assess
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain(`Changed:\n- managed: started replicating the automated backups of ${instances.managed.id} (eu-west-1) to eu-central-1: 5 days under ${CMK}`);
    expect(out.stdout).toMatch(/eu-central-1: started 5 d\s+OK$/m);
    const calls = startCalls().slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.region).toBe(COPY);
    expect(Object.fromEntries(calls[0]!.params)).toMatchObject({ SourceDBInstanceArn: instances.managed.arn, BackupRetentionPeriod: '5', KmsKeyId: CMK });
  });

  it('without manage reports the missing replication, starts nothing, and exits 1', async () => {
    // Prepare
    const config = writeConfig('unmanaged', [{ id: 'nightly', databases: ['short'], pitr: { windowDays: 2, copyRegion: true } }]);
    const before = startCalls().length;

    // Act
    const out = await pitr(['status', '--config', config]);

    // Assess
    expect(out.code, out.stderr).toBe(1);
    expect(out.stdout).toContain(`its automated backups are not replicated to eu-central-1; wanted replicated for 2 days under ${CMK}. Fix: aws rds start-db-instance-automated-backups-replication --region eu-central-1`);
    expect(startCalls().slice(before)).toHaveLength(0);
  });

  it('exits 2 on usage and config errors', async () => {
    // Prepare
    const config = writeConfig('usage', [{ id: 'nightly', databases: ['good'], pitr: { windowDays: 7 } }]);

    // Act
    const noSub = await pitr(['--config', config]);
    const unknownPlan = await pitr(['status', '--config', config, '--plan', 'weekly']);
    const unknownDb = await pitr(['status', '--config', config, '--database', 'nope']);

    // Assess
    expect(noSub.code).toBe(2);
    expect(noSub.stderr).toContain('lifeboat pitr: expected "status"');
    expect(unknownPlan.code).toBe(2);
    expect(unknownPlan.stderr).toContain('--plan: no plan "weekly" in the config');
    expect(unknownDb.code).toBe(2);
    expect(unknownDb.stderr).toContain('--database: no database of a plan with a pitr section matches database "nope"');
  });
});
