import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  CreateBucketCommand,
  ListObjectsV2Command,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { CreateDBInstanceCommand, DescribeDBSnapshotsCommand } from '@aws-sdk/client-rds';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { retentionRunInput } from '../../events/schedules.ts';
import { createAlertHandler } from '../../functions/alert/handler.ts';
import { createRetentionHandler } from '../../functions/retention/handler.ts';
import { ThrottledError } from '../../functions/lib/errors.ts';
import { createRdsClient, createS3Client, createStsClient, type AwsCredentials } from '../../functions/lib/aws/clients.ts';
import { newBackupId } from '../../functions/lib/backup/manifest.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { asLocalTask } from '../../local/lambda-task.ts';
import { LOCAL_TIME_SCALE, localFunctionArn, localStateMachineArn, runLocalStateMachine, type TaskHandler } from '../../local/state-machine-runner.ts';
import { retentionEnvSchema, retentionFunctionEnvironment, retentionSettingsFromEnv } from '../../functions/lib/retention/environment.ts';
import type { AuditLine } from '../../functions/lib/retention/s3-executor.ts';
import type { SnapshotAuditLine } from '../../functions/lib/retention/snapshot-executor.ts';
import { vaultNames } from '../../functions/lib/vault/names.ts';
import { uniqueName } from '../harness/aws.ts';
import { synthesizedDefinition } from '../harness/synthesized.ts';
import { alertInbox, type ReceivedAlert } from './drill-harness.ts';
import { createRetentionBucket, createSnapshot, lifeboatTags, putBackup, readJsonLines, REGION } from './retention-fixtures.ts';
import { credentialsFor } from '../../local/moto-rds-compat.ts';

/**
 * The retention state machine definition as the stacks deploy it, executed on aws-local-stepfunctions
 * with the real retention and alert handlers against moto. Two databases,
 * each at the source and in the vault (another account): alpha has dumps, and
 * one of its deletions is denied by a legal hold placed after planning; bravo
 * has dumps and RDS snapshots. Alpha's vault copies are under Object Lock.
 */
const VAULT = '555555555555';
const PREFIX = 'backups/';
const DAY = 86_400_000;
// Planning "now" is a month ahead, so moto's snapshots (stamped now) are old enough to prune.
const NOW = new Date(Date.now() + 30 * DAY);
const name = `rt${randomBytes(3).toString('hex')}`;
const alpha = uniqueName('alpha');
const bravo = uniqueName('bravo');

let sourceBucket: string;
let vaultBucket: string;
let vaultCredentials: AwsCredentials;
const stored: Record<string, { id: string; time: Date; keys: { data: string; manifest: string } }[]> = {};
let heldId: string;
let snapshotIds: string[];

async function keysOf(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

const config = () =>
  parseConfig({
    name,
    source: { region: REGION },
    databases: [alpha, bravo].map((id) => ({ id, connection: { host: 'localhost', database: id, passwordEnv: 'UNUSED' }, rds: { instanceIdentifier: `${id}-db` } })),
    plans: [
      {
        id: 'nightly',
        schedule: { cron: 'cron(0 3 * * ? *)', timezone: 'Europe/Berlin' },
        databases: [alpha, bravo],
        rpoMinutes: 1440,
        rtoMinutes: 60,
        snapshot: true,
        maxConcurrency: 2,
        retention: {
          source: { keepLast: 2, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 1 },
          vault: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, minAgeDays: 1 },
        },
      },
    ],
    storage: { bucketName: 'placeholder-bucket' },
    vault: { account: VAULT, region: REGION, retentionDays: 30 },
  });

beforeAll(async () => {
  const s3 = createS3Client();
  sourceBucket = await createRetentionBucket(s3, true);
  // The vault bucket, in the vault account, named as the vault stack names it.
  vaultCredentials = await credentialsFor(VAULT, 'vault-admin');
  const vaultS3 = createS3Client({ credentials: vaultCredentials });
  vaultBucket = vaultNames({ name, vault: { account: VAULT, region: REGION } }).bucketName;
  await vaultS3.send(new CreateBucketCommand({ Bucket: vaultBucket, CreateBucketConfiguration: { LocationConstraint: REGION }, ObjectLockEnabledForBucket: true }));

  for (const [db, count] of [[alpha, 5], [bravo, 3]] as const) {
    stored[db] = [];
    for (let i = 0; i < count; i++) {
      const time = new Date(NOW.getTime() - (i + 2) * DAY);
      const id = newBackupId(time, randomBytes(3).toString('hex'));
      stored[db].push({ id, time, keys: await putBackup(s3, { bucket: sourceBucket, prefix: PREFIX, databaseId: db }, id, time) });
    }
  }
  heldId = stored[alpha]![4]!.id;
  // Alpha's three oldest, copied to the vault under compliance-mode retention that outlives the plan's "now".
  for (const { id, time } of stored[alpha]!.slice(2)) {
    const keys = await putBackup(vaultS3, { bucket: vaultBucket, prefix: PREFIX, databaseId: alpha }, id, time);
    for (const key of [keys.data, keys.manifest]) {
      await vaultS3.send(new PutObjectRetentionCommand({ Bucket: vaultBucket, Key: key, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(NOW.getTime() + 60 * DAY) } }));
    }
  }
  // Bravo's RDS snapshots, tagged as the snapshot workflow tags them.
  const rds = createRdsClient({ region: REGION });
  await rds.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: `${bravo}-db`, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'lifeboat', MasterUserPassword: 'not-a-real-secret-1' }));
  snapshotIds = [];
  for (let i = 0; i < 4; i++) {
    snapshotIds.push(`lifeboat-${bravo}-${i}`);
    await createSnapshot(rds, { instance: `${bravo}-db` }, snapshotIds[i]!, lifeboatTags('nightly', bravo, `backup-${i}`));
  }
});

const retentionArn = localFunctionArn('retention');
const alertArn = localFunctionArn('alert');
const targetArn = localStateMachineArn('retention-target');

/**
 * Exactly what the source stack deploys (the vault stack deploys the same
 * definitions): the run, and each target's child execution.
 */
function runRetention(input: unknown, resources: Record<string, TaskHandler>) {
  return runLocalStateMachine(synthesizedDefinition('retention', { RetentionTargetStateMachineArn: targetArn, AlertFunctionArn: alertArn }), input, {
    resources,
    stateMachines: { [targetArn]: { definition: synthesizedDefinition('retention-target', { RetentionFunctionArn: retentionArn, AlertFunctionArn: alertArn }) } },
    timeScale: LOCAL_TIME_SCALE,
  });
}

describe('the retention state machine, executed locally with the real handlers', () => {
  it('prunes every target, reports and alerts the one denied delete, never attempts locked vault objects, and writes the audit log', async () => {
    // Prepare: the function environment as the CDK app builds it from the config.
    const settings = retentionSettingsFromEnv(
      retentionEnvSchema.parse({ ...retentionFunctionEnvironment(config()), BACKUP_BUCKET: sourceBucket, BACKUP_PREFIX: PREFIX, AWS_REGION: REGION }),
      config(),
    );
    const production = createS3Client();
    // A legal hold lands on alpha's oldest manifest after planning, just before its delete.
    const holder = createS3Client();
    production.middlewareStack.add(
      (next, context) => async (args) => {
        const objects = (args.input as { Delete?: { Objects?: { Key?: string }[] } }).Delete?.Objects ?? [];
        if (context.commandName === 'DeleteObjectsCommand' && objects.some((o) => o.Key === stored[alpha]![4]!.keys.manifest)) {
          await holder.send(new PutObjectLegalHoldCommand({ Bucket: sourceBucket, Key: stored[alpha]![4]!.keys.manifest, LegalHold: { Status: 'ON' } }));
        }
        return next(args);
      },
      { step: 'initialize', name: 'legalHoldAfterPlanning' },
    );
    const vaultCalls: string[] = [];
    const retention = createRetentionHandler({
      context: {
        settings,
        s3: production,
        s3With: (region, credentials) => {
          const client = createS3Client({ region, credentials });
          client.middlewareStack.add((next, context) => async (args) => (vaultCalls.push(context.commandName ?? '?'), next(args)), { step: 'initialize', name: 'vaultCalls' });
          return client;
        },
        rds: (region, credentials) => createRdsClient({ region, credentials }),
        sts: createStsClient({ region: REGION }),
        now: () => NOW,
        retry: { sleep: async () => undefined },
      },
      logger: new Logger({ serviceName: 'lifeboat-test' }),
      metrics: new Metrics({ namespace: 'lifeboat-test', serviceName: 'lifeboat-test' }),
    });
    const inbox = await alertInbox();
    const alert = createAlertHandler({ sns: inbox.sns, topicArn: inbox.topicArn, logger: new Logger({ serviceName: 'lifeboat-test' }) });
    const input = retentionRunInput(config(), 'nightly');

    // Act
    const run = await runRetention(input, { [retentionArn]: asLocalTask('retention', retention), [alertArn]: asLocalTask('alert', alert) });
    const alerts: ReceivedAlert[] = await inbox.receiveAll();

    // Assess: the schedule input names each database at each location once; the run ends incomplete.
    expect(input).toEqual({
      planId: 'nightly',
      maxConcurrency: 2,
      targets: [
        { databaseId: alpha, location: 'source' },
        { databaseId: alpha, location: 'vault' },
        { databaseId: bravo, location: 'source' },
        { databaseId: bravo, location: 'vault' },
      ],
    });
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('RetentionIncomplete');

    // Assess: everything else was pruned. Alpha keeps its 2 newest plus the held one; bravo its 2 newest dumps and snapshots.
    const s3 = createS3Client();
    const left = (db: string) => keysOf(s3, sourceBucket, `${PREFIX}${db}/`);
    const keysFor = (db: string, picks: number[]) => picks.flatMap((i) => [stored[db]![i]!.keys.data, stored[db]![i]!.keys.manifest]).sort();
    expect(await left(alpha)).toEqual(keysFor(alpha, [0, 1, 4]));
    expect(await left(bravo)).toEqual(keysFor(bravo, [0, 1]));
    const snapshots = await createRdsClient({ region: REGION }).send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual' }));
    // moto stamps creation times in call order, so the last two created are the newest.
    expect((snapshots.DBSnapshots ?? []).map((s) => s.DBSnapshotIdentifier!).filter((id) => id.startsWith(`lifeboat-${bravo}`)).sort()).toEqual(snapshotIds.slice(2));

    // Assess: the locked vault copies were kept and never sent to S3 for deletion.
    expect(await keysOf(createS3Client({ credentials: vaultCredentials }), vaultBucket, `${PREFIX}${alpha}/`)).toEqual(keysFor(alpha, [2, 3, 4]));
    expect(vaultCalls.length).toBeGreaterThan(0);
    expect(vaultCalls).not.toContain('DeleteObjectsCommand');

    // Assess: exactly one alert, for the denied delete, naming the backup and the audit log.
    expect(alerts.map((a) => a.subject)).toEqual([`[lifeboat] Retention failed: database ${alpha}, plan nightly: RetentionPartialFailure`]);
    const [partial] = alerts;
    expect(partial!.message).toContain(`dump ${heldId}`);
    expect(partial!.message).toContain(run.executionArn);
    expect(partial!.details).toMatchObject({ kind: 'retention-failed', databaseId: alpha, planId: 'nightly', details: { location: 'source', deleted: 2, failedCount: 1 } });
    // It names the run (executionId) and the target's own execution, whose history has the details.
    expect((partial!.details as unknown as { details: { targetExecutionId: string } }).details.targetExecutionId).toMatch(/:execution:lifeboat-local-retention-target:/);
    const { failed, auditKeys, auditBucket } = (partial!.details as unknown as { details: { failed: { id: string; error: string }[]; auditKeys: string[]; auditBucket: string } }).details;
    expect(failed).toEqual([{ backup: 'dump', id: heldId, error: expect.stringMatching(/AccessDenied.*manifest not deleted, so the data was left in place/) }]);
    expect(auditBucket).toBe(sourceBucket);

    // Assess: the audit log of every pruned target is in the source bucket, with each outcome.
    const alphaAudit = await readJsonLines<AuditLine>(s3, sourceBucket, auditKeys[0]!);
    expect(alphaAudit.map((l) => [l.backupId, l.outcome]).sort()).toEqual(
      [[stored[alpha]![2]!.id, 'deleted'], [stored[alpha]![3]!.id, 'deleted'], [heldId, 'failed']].sort(),
    );
    const auditKeysWritten = await keysOf(s3, sourceBucket, `${PREFIX}_audit/retention/`);
    expect(auditKeysWritten.map((k) => k.split('.').slice(-3).join('.'))).toEqual(
      expect.arrayContaining([`source.${alpha}.jsonl`, `source.${bravo}.jsonl`]),
    );
    expect(auditKeysWritten.filter((k) => k.includes('.vault.'))).toEqual([]);
    const bravoSnapshots = auditKeysWritten.find((k) => k.includes('-snapshots.source.'))!;
    expect((await readJsonLines<SnapshotAuditLine>(s3, sourceBucket, bravoSnapshots)).map((l) => [l.snapshotId, l.outcome]).sort()).toEqual([
      [snapshotIds[0], 'deleted'],
      [snapshotIds[1], 'deleted'],
    ]);

    // Assess: the run's summary stays small: each target's status, in the order of the targets; each target ran as its own execution.
    const summary = run.events.find((e) => e.type === 'StateExited' && e.state?.name === 'SummariseRun')!.state!.output as { results: string[] };
    expect(input.targets.map((t, i) => [t.databaseId, t.location, summary.results[i]])).toEqual([
      [alpha, 'source', 'partial'],
      [alpha, 'vault', 'succeeded'],
      [bravo, 'source', 'succeeded'],
      [bravo, 'vault', 'succeeded'],
    ]);
    expect(JSON.stringify(summary).length).toBeLessThan(1_000);
    expect(run.stats.childExecutions).toBe(4);
  });

  it('retries a throttled target, alerts a target that cannot run at all, and carries on with the rest', async () => {
    // Prepare: the first call for bravo is throttled; "ghost" is not in the plan.
    const settings = retentionSettingsFromEnv(
      retentionEnvSchema.parse({ ...retentionFunctionEnvironment(config()), BACKUP_BUCKET: sourceBucket, BACKUP_PREFIX: PREFIX, AWS_REGION: REGION }),
      config(),
    );
    const handler = createRetentionHandler({
      context: { settings, s3: createS3Client(), s3With: (region, credentials) => createS3Client({ region, credentials }), rds: (region, credentials) => createRdsClient({ region, credentials }), sts: createStsClient({ region: REGION }), now: () => NOW },
      logger: new Logger({ serviceName: 'lifeboat-test' }),
      metrics: new Metrics({ namespace: 'lifeboat-test', serviceName: 'lifeboat-test' }),
    });
    let throttled = 0;
    const retention = async (event: { databaseId: string }, context: Parameters<typeof handler>[1]) => {
      if (event.databaseId === bravo && throttled++ === 0) throw new ThrottledError('RDS throttled DescribeDBSnapshots.');
      return handler(event, context);
    };
    const inbox = await alertInbox();
    const alert = createAlertHandler({ sns: inbox.sns, topicArn: inbox.topicArn, logger: new Logger({ serviceName: 'lifeboat-test' }) });

    // Act
    const run = await runRetention(
      { planId: 'nightly', maxConcurrency: 1, targets: [{ databaseId: 'ghost', location: 'source' }, { databaseId: bravo, location: 'source' }] },
      { [retentionArn]: asLocalTask('retention', retention), [alertArn]: asLocalTask('alert', alert) },
    );
    const alerts = await inbox.receiveAll();

    // Assess
    expect(run).toMatchObject({ status: 'FAILED', error: 'RetentionIncomplete' });
    expect(throttled).toBe(2);
    expect(alerts.map((a) => a.subject)).toEqual(['[lifeboat] Retention failed: database ghost, plan nightly: RetentionInputError']);
    expect(alerts[0]!.message).toMatch(/Database "ghost" is not in plan "nightly"/);
    const summary = run.events.find((e) => e.type === 'StateExited' && e.state?.name === 'SummariseRun')!.state!.output as { results: string[] };
    expect(summary.results).toEqual(['failed', 'succeeded']);
  });
});
