import { randomBytes } from 'node:crypto';
import { CreateDBInstanceCommand, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import type { FaultRule } from '../../local/fault-proxy.ts';
import { rdsError, rdsRequest } from '../../local/moto-rds-compat.ts';

/**
 * Automated backups as RDS answers them, scripted on the fault proxy in front
 * of moto: moto 5.2 lists an instance's automated backup without its
 * DbiResourceId or RestoreWindow, and has no cross-region replication
 * (StartDBInstanceAutomatedBackupsReplication). Until the strict RDS layer
 * (local/strict-rds.ts) answers these itself, these rules do, in the AWS API's
 * shapes (DBInstanceAutomatedBackup: DbiResourceId, Region, DBInstanceArn,
 * Status, BackupRetentionPeriod, KmsKeyId, RestoreWindow), and record every
 * replication started, with the region it was called in. moto gives every
 * instance the same DbiResourceId, so replicas are told apart by their
 * DBInstanceIdentifier as well (as the posture check does on AWS too).
 */
export interface ScriptedInstance {
  id: string;
  arn: string;
  resourceId: string;
  region: string;
  earliest: Date;
}

export interface ScriptedReplication {
  /** The region the Start call was sent to (the destination). */
  region: string;
  sourceArn: string;
  retentionDays: number;
  kmsKeyId?: string;
  status: string;
  /** The replica's RestoreWindow.LatestTime, pinned (a stalled replication), or null for no RestoreWindow at all; else it follows the source (now). */
  latest?: Date | null;
}

const x = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function backupXml(b: { id: string; arn: string; resourceId: string; region: string; status: string; retentionDays?: number; kmsKeyId?: string; earliest?: Date; latest?: Date }): string {
  return [
    '<DBInstanceAutomatedBackup>',
    `<DBInstanceIdentifier>${x(b.id)}</DBInstanceIdentifier>`,
    `<DBInstanceArn>${x(b.arn)}</DBInstanceArn>`,
    `<DbiResourceId>${x(b.resourceId)}</DbiResourceId>`,
    `<Region>${x(b.region)}</Region>`,
    `<Status>${x(b.status)}</Status>`,
    '<Engine>postgres</Engine>',
    b.retentionDays !== undefined ? `<BackupRetentionPeriod>${b.retentionDays}</BackupRetentionPeriod>` : '',
    b.kmsKeyId ? `<KmsKeyId>${x(b.kmsKeyId)}</KmsKeyId><Encrypted>true</Encrypted>` : '',
    b.earliest ? `<RestoreWindow><EarliestTime>${b.earliest.toISOString()}</EarliestTime>${b.latest ? `<LatestTime>${b.latest.toISOString()}</LatestTime>` : ''}</RestoreWindow>` : '',
    '</DBInstanceAutomatedBackup>',
  ].join('');
}

const answer = (action: string, inner: string) => ({
  status: 200,
  headers: { 'content-type': 'text/xml' },
  body: `<${action}Response xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><${action}Result>${inner}</${action}Result><ResponseMetadata><RequestId>${randomBytes(8).toString('hex')}</RequestId></ResponseMetadata></${action}Response>`,
});

export class ScriptedAutomatedBackups {
  readonly instances = new Map<string, ScriptedInstance>();
  readonly replications: ScriptedReplication[] = [];
  private readonly failures: Array<{ when: (r: NonNullable<ReturnType<typeof rdsRequest>>) => boolean; code: string; message: string }> = [];

  /** Answers matching calls with an RDS error instead (checked before the scripted answers). */
  fail(when: (r: NonNullable<ReturnType<typeof rdsRequest>>) => boolean, code: string, message: string): void {
    this.failures.push({ when, code, message });
  }

  /** Answers DescribeDBInstanceAutomatedBackups (source and destination regions) and StartDBInstanceAutomatedBackupsReplication. */
  rule(): FaultRule {
    return (req) => {
      const r = rdsRequest(req);
      if (!r) return undefined;
      const failure = this.failures.find((f) => f.when(r));
      if (failure) return rdsError(failure.code, failure.message);
      if (r.action === 'DescribeDBInstanceAutomatedBackups') {
        const id = r.params.get('DBInstanceIdentifier');
        const resourceId = r.params.get('DbiResourceId');
        const own = [...this.instances.values()].filter((i) => i.region === r.region && (id === null || i.id === id) && (resourceId === null || i.resourceId === resourceId));
        const replicated = this.replications.flatMap((rep) => {
          const source = [...this.instances.values()].find((i) => i.arn === rep.sourceArn);
          if (!source || rep.region !== r.region || (resourceId !== null && source.resourceId !== resourceId) || id !== null) return [];
          // A replicating replica's window follows its source's (as RDS shows it: RestoreWindow with both ends); none while pending.
          const window = rep.status === 'replicating' && rep.latest !== null ? { earliest: source.earliest, latest: rep.latest ?? new Date() } : { earliest: undefined, latest: undefined };
          return [{ ...source, status: rep.status, retentionDays: rep.retentionDays, kmsKeyId: rep.kmsKeyId, region: source.region, ...window }];
        });
        const items = [...own.map((i) => backupXml({ ...i, status: 'active', latest: new Date() })), ...replicated.map((b) => backupXml(b))];
        // Pages as RDS does: MaxRecords (default 100) a page, Marker to go on.
        const size = Number(r.params.get('MaxRecords') ?? 100);
        const from = Number(r.params.get('Marker') ?? 0);
        const marker = from + size < items.length ? `<Marker>${from + size}</Marker>` : '';
        return answer('DescribeDBInstanceAutomatedBackups', `<DBInstanceAutomatedBackups>${items.slice(from, from + size).join('')}</DBInstanceAutomatedBackups>${marker}`);
      }
      if (r.action === 'StartDBInstanceAutomatedBackupsReplication') {
        const sourceArn = r.params.get('SourceDBInstanceArn') ?? '';
        const source = [...this.instances.values()].find((i) => i.arn === sourceArn);
        if (!source) return { status: 404, headers: { 'content-type': 'text/xml' }, body: `<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type><Code>DBInstanceNotFound</Code><Message>DBInstance ${x(sourceArn)} not found.</Message></Error><RequestId>1</RequestId></ErrorResponse>` };
        const replication: ScriptedReplication = { region: r.region, sourceArn, retentionDays: Number(r.params.get('BackupRetentionPeriod') ?? 7), kmsKeyId: r.params.get('KmsKeyId') ?? undefined, status: 'pending' };
        this.replications.push(replication);
        return answer('StartDBInstanceAutomatedBackupsReplication', backupXml({ ...source, status: 'pending', retentionDays: replication.retentionDays, kmsKeyId: replication.kmsKeyId }));
      }
      return undefined;
    };
  }

  /** A replication already running (as if started earlier), e.g. with another retention or key, or stalled at `latest`. */
  replicate(instanceId: string, region: string, retentionDays: number, kmsKeyId: string, status = 'replicating', latest?: Date | null): void {
    this.replications.push({ region, sourceArn: this.instances.get(instanceId)!.arn, retentionDays, kmsKeyId, status, ...(latest !== undefined ? { latest } : {}) });
  }
}

/** A moto RDS for PostgreSQL instance with automated backups kept `retentionDays`, registered with the scripted backups (its window opens `windowDays` ago). */
export async function createPitrInstance(rds: RDSClient, backups: ScriptedAutomatedBackups, id: string, retentionDays: number, region = 'eu-west-1', windowDays = retentionDays): Promise<ScriptedInstance> {
  await rds.send(
    new CreateDBInstanceCommand({ DBInstanceIdentifier: id, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', MasterUsername: 'lifeboat', MasterUserPassword: randomBytes(12).toString('hex'), AllocatedStorage: 20, BackupRetentionPeriod: retentionDays }),
  );
  const found = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances![0]!;
  const instance = { id, arn: found.DBInstanceArn!, resourceId: found.DbiResourceId!, region, earliest: new Date(Date.now() - windowDays * 86_400_000) };
  backups.instances.set(id, instance);
  return instance;
}
