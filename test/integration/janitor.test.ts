import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { CreateDBInstanceCommand, DeleteDBInstanceCommand, DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { CreateSecretCommand, DeleteSecretCommand } from '@aws-sdk/client-secrets-manager';
import { Logger } from '@aws-lambda-powertools/logger';
import { LocalPostgresProvisioner } from '../../functions/lib/drill/local-provisioner.ts';
import { createJanitorHandler } from '../../functions/janitor/handler.ts';
import { runLocalJanitor } from '../../cli/local-drill.ts';
import { asLocalTask } from '../../local/lambda-task.ts';
import { localFunctionArn, runLocalStateMachine } from '../../local/state-machine-runner.ts';
import { loadDefinition } from '../../state-machines/definitions.ts';
import { synthesizedDefinition } from '../harness/synthesized.ts';
import type { JanitorProvisioner } from '../../functions/lib/drill/janitor.ts';
import { drillTagList, type DrillResource } from '../../functions/lib/drill/provisioner.ts';
import { RdsProvisioner } from '../../functions/lib/drill/rds-provisioner.ts';
import type { InstanceRef } from '../../functions/lib/drill/types.ts';
import { testClients, uniqueName } from '../harness/aws.ts';
import { alertInbox, portClosed, tempRegistry } from './drill-harness.ts';

const rds = new RDSClient({});
const { secrets } = testClients();
const past = new Date(Date.now() - 3_600_000).toISOString();
const future = new Date(Date.now() + 3_600_000).toISOString();
const tags = (drillId: string, expiresAt: string) => drillTagList({ drillId, databaseId: 'orders', executionId: 'arn:aws:states:eu-west-1:000000000000:execution:drill:x', expiresAt });
const suffix = uniqueName('j').slice(2);
const names = {
  expired: `lifeboat-drill-expired-${suffix}`,
  live: `lifeboat-drill-live-${suffix}`,
  // Tagged as expired but not named like a drill: never touched.
  production: `prod-${suffix}`,
};
let registryDir: string;
let expiredLocal: InstanceRef;
let liveLocal: InstanceRef;
let starter: LocalPostgresProvisioner;
let expiredSecretArn: string;

async function instanceExists(id: string): Promise<boolean> {
  return rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id })).then(
    () => true,
    (error: Error) => (/NotFound/.test(error.name) ? false : Promise.reject(error)),
  );
}

beforeAll(async () => {
  const create = (id: string, expiresAt: string) =>
    rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: id, DBInstanceClass: 'db.t4g.micro', Engine: 'postgres', MasterUsername: 'x', MasterUserPassword: 'planted-orphan', AllocatedStorage: 20, Tags: tags(id, expiresAt) }));
  await Promise.all([create(names.expired, past), create(names.live, future), create(names.production, past)]);
  expiredSecretArn = (await secrets.send(new CreateSecretCommand({ Name: `lifeboat/drill/expired-${suffix}`, SecretString: '{}', Tags: tags(`expired-${suffix}`, past) }))).ARN!;
  // Local orphans, started by a provisioner whose process "died": the janitor's own provisioner holds no handle to them.
  registryDir = tempRegistry();
  starter = new LocalPostgresProvisioner({ registryDir });
  const request = (drillId: string, expiresAt: string) => ({
    tags: { drillId, databaseId: 'orders', executionId: 'local', expiresAt },
    backup: { kind: 'snapshot' as const, backupId: 'x', snapshotArn: 'x', from: 'source' as const, isCluster: false, sourceIdentifier: 'x', engine: 'postgres', consistentAt: past },
    instance: { instanceClass: 'db.t4g.micro', securityGroupIds: [] },
  });
  [expiredLocal, liveLocal] = await Promise.all([starter.provision(request(`expired-${suffix}`, past)), starter.provision(request(`live-${suffix}`, future))]);
}, 60_000);

afterAll(async () => {
  await starter?.teardown(`live-${suffix}`);
  await starter?.teardown(`expired-${suffix}`);
  for (const id of [names.live, names.production, names.expired]) await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true })).catch(() => undefined);
  await secrets.send(new DeleteSecretCommand({ SecretId: expiredSecretArn, ForceDeleteWithoutRecovery: true })).catch(() => undefined);
  rmSync(registryDir, { recursive: true, force: true });
});

describe('janitor state machine', () => {
  it('deletes planted orphans whose expiry passed and keeps the rest', async () => {
    // Act
    const { run, sweep, alerts } = await runLocalJanitor({
      deps: { provisioners: [new RdsProvisioner({ clients: { source: rds } }), new LocalPostgresProvisioner({ registryDir })], secrets },
      logger: new Logger({ serviceName: 'lifeboat-test' }),
    });

    // Assess
    expect(run.status, String(run.cause)).toBe('SUCCEEDED');
    expect(alerts).toEqual([]);
    const ids = (list: { id: string }[] | undefined) => (list ?? []).map((i) => i.id);
    expect(ids(sweep?.deleted)).toEqual(expect.arrayContaining([names.expired, expiredLocal.identifier, expiredSecretArn]));
    expect(ids(sweep?.kept)).toEqual(expect.arrayContaining([names.live, liveLocal.identifier]));
    expect([...ids(sweep?.deleted), ...ids(sweep?.kept)]).not.toContain(names.production);
    expect(await instanceExists(names.expired)).toBe(false);
    expect(await instanceExists(names.live)).toBe(true);
    expect(await instanceExists(names.production)).toBe(true);
    // The local orphan's postmaster is gone and its directory removed; the live one still serves.
    expect(await portClosed(expiredLocal.endpoint!.port)).toBe(true);
    expect(existsSync(expiredLocal.dataDir!)).toBe(false);
    expect(await portClosed(liveLocal.endpoint!.port)).toBe(false);
    expect(existsSync(liveLocal.dataDir!)).toBe(true);
  });

  it('alerts and fails when an expired resource cannot be deleted', async () => {
    // Prepare: a provisioner that finds one expired resource and cannot delete it.
    const inbox = await alertInbox();
    const broken: JanitorProvisioner = {
      provider: 'rds',
      listDrillResources: async (): Promise<DrillResource[]> => [{ provider: 'rds', type: 'rds-instance', id: 'lifeboat-drill-stuck', tags: { 'lifeboat:drill': 'stuck', 'lifeboat:expires-at': past } }],
      deleteResource: async () => {
        throw Object.assign(new Error('User is not authorized to perform: rds:DeleteDBInstance'), { name: 'AccessDenied' });
      },
    };

    // Act
    const { run, sweep } = await runLocalJanitor({ deps: { provisioners: [broken] }, alert: { sns: inbox.sns, topicArn: inbox.topicArn }, logger: new Logger({ serviceName: 'lifeboat-test' }) });
    const received = await inbox.receiveAll();

    // Assess
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('JanitorIncomplete');
    expect(sweep?.failed.map((f) => f.id)).toEqual(['lifeboat-drill-stuck']);
    expect(received).toHaveLength(1);
    expect(received[0]!.subject).toBe('[lifeboat] Restore drill failed: deployment: JanitorIncomplete');
    expect(received[0]!.message).toMatch(/rds-instance lifeboat-drill-stuck: AccessDenied: User is not authorized/);
    expect(received[0]!.message).toMatch(/Next step: check the janitor role's permissions/);
  });
});

describe('the janitor definition the source stack deploys', () => {
  const arns = { JanitorFunctionArn: localFunctionArn('janitor'), AlertFunctionArn: localFunctionArn('alert') };

  it('is the one the local runs execute (runLocalJanitor), with the execution timeout added', () => {
    const { TimeoutSeconds, ...deployed } = synthesizedDefinition('janitor', arns);
    expect(TimeoutSeconds).toBe(3600);
    expect(deployed).toEqual(loadDefinition('janitor', arns));
  });

  it('sweeps and succeeds when nothing has expired', async () => {
    const nothing: JanitorProvisioner = { provider: 'rds', listDrillResources: async () => [], deleteResource: async () => ({ type: 'x', id: 'x', outcome: 'absent' }) };
    const janitor = asLocalTask('janitor', createJanitorHandler({ provisioners: [nothing], logger: new Logger({ serviceName: 'lifeboat-test', logLevel: 'CRITICAL' }) }));
    const run = await runLocalStateMachine(synthesizedDefinition('janitor', arns), {}, { resources: { [arns.JanitorFunctionArn]: janitor } });
    expect(run.status, String(run.cause)).toBe('SUCCEEDED');
  });
});
