import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { CreateDBInstanceCommand, DeleteDBInstanceCommand, DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { CreateSecretCommand, DeleteSecretCommand, DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { Logger } from '@aws-lambda-powertools/logger';
import { LocalPostgresProvisioner } from '../../functions/lib/drill/local-provisioner.ts';
import { runLocalJanitor } from '../../cli/local-drill.ts';
import { startFaultProxy, type FaultProxy } from '../../local/fault-proxy.ts';
import { failRds } from '../../local/moto-rds-compat.ts';
import { localFunctionArn } from '../../local/state-machine-runner.ts';
import { loadDefinition } from '../../state-machines/definitions.ts';
import { synthesizedDefinition } from '../harness/synthesized.ts';
import { deployForTest, type TestDeployment } from '../harness/deployed.ts';
import { exampleConfigJson } from '../infra/helpers/app.ts';
import type { JanitorProvisioner } from '../../functions/lib/drill/janitor.ts';
import { drillTagList, type DrillResource } from '../../functions/lib/drill/provisioner.ts';
import { RdsProvisioner } from '../../functions/lib/drill/rds-provisioner.ts';
import type { InstanceRef } from '../../functions/lib/drill/types.ts';
import { localAwsEnvironment, testClients, uniqueName } from '../harness/aws.ts';
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

  it('deletes an expired throwaway a PITR drill left in the copy region, and nothing of the copy region that is not a drill', async () => {
    // Prepare: what a copy-region PITR drill cut short leaves, beside a production instance there.
    const copy = new RDSClient({ region: 'eu-central-1' });
    const left = `lifeboat-drill-copyleft-${suffix}`;
    const replica = `prod-replica-${suffix}`;
    const create = (id: string) =>
      copy.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: id, DBInstanceClass: 'db.t4g.micro', Engine: 'postgres', MasterUsername: 'x', MasterUserPassword: 'planted-orphan', AllocatedStorage: 20, Tags: tags(id, past) }));
    await Promise.all([create(left), create(replica)]);
    const exists = (id: string) => copy.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id })).then(() => true, () => false);

    // Act
    const { run, sweep } = await runLocalJanitor({
      deps: { provisioners: [new RdsProvisioner({ clients: { source: rds, copy } })], secrets },
      logger: new Logger({ serviceName: 'lifeboat-test' }),
    });
    await copy.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: replica, SkipFinalSnapshot: true })).catch(() => undefined);

    // Assess
    expect(run.status, String(run.cause)).toBe('SUCCEEDED');
    expect((sweep?.deleted ?? []).map((i) => i.id)).toContain(left);
    expect([...(sweep?.deleted ?? []), ...(sweep?.kept ?? [])].map((i) => i.id)).not.toContain(replica);
    expect(await exists(left)).toBe(false);
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
  it('is the one the local runs execute (runLocalJanitor), with the execution timeout added', () => {
    const arns = { JanitorFunctionArn: localFunctionArn('janitor'), AlertFunctionArn: localFunctionArn('alert') };
    const { TimeoutSeconds, ...deployed } = synthesizedDefinition('janitor', arns);
    expect(TimeoutSeconds).toBe(3600);
    expect(deployed).toEqual(loadDefinition('janitor', arns));
  });
});

describe('the janitor the source stack deploys, run from its shipped bundle', () => {
  let proxy: FaultProxy | undefined;
  let deployment: TestDeployment | undefined;
  afterAll(async () => {
    await deployment?.stop();
    await proxy?.stop();
    process.env.AWS_ENDPOINT_URL = inject('motoEndpoint');
  });

  it('deletes expired drill instances and secrets, keeps live drills and production, and alerts the one it may not delete', async () => {
    // Prepare: moto behind the fault proxy, where RDS denies deleting one expired drill instance.
    proxy = await startFaultProxy(inject('motoEndpoint'));
    process.env.AWS_ENDPOINT_URL = proxy.endpoint;
    const planted = {
      expired: `lifeboat-drill-old-${suffix}`,
      stuck: `lifeboat-drill-stuck-${suffix}`,
      live: `lifeboat-drill-now-${suffix}`,
      production: `orders-${suffix}`,
    };
    proxy.addRule(failRds('DeleteDBInstance', 'AccessDenied', 'User is not authorized to perform: rds:DeleteDBInstance', (r) => r.params.get('DBInstanceIdentifier') === planted.stuck));
    const rdsViaProxy = new RDSClient({ endpoint: proxy.endpoint });
    const create = (id: string, expiresAt: string) =>
      rdsViaProxy.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: id, DBInstanceClass: 'db.t4g.micro', Engine: 'postgres', MasterUsername: 'x', MasterUserPassword: 'planted-orphan', AllocatedStorage: 20, Tags: tags(id, expiresAt) }));
    await Promise.all([create(planted.expired, past), create(planted.stuck, past), create(planted.live, future), create(planted.production, past)]);
    const secretArn = (await secrets.send(new CreateSecretCommand({ Name: `lifeboat/drill/old-${suffix}`, SecretString: '{}', Tags: tags(`old-${suffix}`, past) }))).ARN!;
    const inbox = await alertInbox();
    deployment = await deployForTest({
      config: { ...exampleConfigJson(), name: uniqueName('jan').replace(/[^a-z0-9-]/g, ''), source: { account: '123456789012', region: 'eu-west-1' } },
      values: { BACKUP_BUCKET: 'unused-by-the-janitor', ALERT_TOPIC_ARN: inbox.topicArn, BACKUP_KMS_KEY_ARN: 'arn:aws:kms:eu-west-1:123456789012:key/unused' },
      awsEnvironment: localAwsEnvironment(),
      onLog: () => {},
    });
    const [input] = deployment.scheduledInputs('janitor');

    // Act: what the janitor's schedule sends.
    const run = await deployment.run('janitor', input);
    const received = await inbox.receiveAll();

    // Assess: the expired drill instance and secret are gone; the live drill and production are untouched.
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('JanitorIncomplete');
    expect(await instanceExists(planted.expired)).toBe(false);
    expect(await instanceExists(planted.stuck)).toBe(true);
    expect(await instanceExists(planted.live)).toBe(true);
    expect(await instanceExists(planted.production)).toBe(true);
    // The drill secret was force-deleted (no recovery window): Secrets Manager no longer knows it.
    const secret = await secrets.send(new DescribeSecretCommand({ SecretId: secretArn })).then(() => 'still there', (error: Error) => error.name);
    expect(secret).toBe('ResourceNotFoundException');

    // Assess: one alert, through the deployed alert function, naming what could not be deleted and why.
    expect(received.map((r) => r.subject)).toEqual(['[lifeboat] Restore drill failed: deployment: JanitorIncomplete']);
    expect(received[0]!.message).toContain(`rds-instance ${planted.stuck}: DrillProvisioningError: DeleteDBInstance ${planted.stuck} failed: AccessDenied: User is not authorized to perform: rds:DeleteDBInstance`);
    expect(received[0]!.message).toMatch(/Next step: check the janitor role's permissions/);
    expect(received[0]!.message).not.toContain(planted.production);

    for (const id of Object.values(planted)) await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true })).catch(() => undefined);
  });
});
