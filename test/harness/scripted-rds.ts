import {
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  type DBInstance,
  type DBInstanceAutomatedBackup,
  type RDSClient,
} from '@aws-sdk/client-rds';

/**
 * An RDS client for unit tests of what reads point-in-time windows
 * (readPitrWindow, the PITR posture check, the lag watch): it answers
 * DescribeDBInstances and DescribeDBInstanceAutomatedBackups, by identifier
 * and region-wide, for scripted instances in the SDK's output shapes, fails
 * like RDS does (AccessDenied, DBInstanceNotFoundFault,
 * DBInstanceAutomatedBackupNotFoundFault filtered by DbiResourceId), refuses
 * every other call, and records each call with its region. Instances are
 * keyed by DBInstanceIdentifier and live in their region (default
 * eu-west-1); a region-wide listing is refused (AccessDenied) when any
 * instance of the region is denied, as IAM refuses a listing the caller may
 * not read whole. Replicas answer in any region but their source's. The moto-backed tests (test/harness/pitr-rds.ts) cover
 * the wire format; this one pins exact moments.
 */
export interface ScriptedInstance {
  retentionDays: number;
  /** LatestRestorableTime. */
  latest?: Date;
  /** The active automated backup's RestoreWindow.EarliestTime. */
  earliest?: Date;
  /** RDS lists no active automated backup of the instance (the oldest moment is then estimated). */
  noAutomatedBackup?: boolean;
  /** DescribeDBInstances answers AccessDenied. */
  deny?: boolean;
  /** @default 'eu-west-1' */
  region?: string;
}

export interface RecordedCall {
  region: string;
  command: string;
  input: unknown;
}

const rdsError = (name: string, message: string) => Object.assign(new Error(message), { name });

export function scriptedRds(instances: Record<string, ScriptedInstance>, replicas: DBInstanceAutomatedBackup[] = []): { rds: (region: string) => RDSClient; calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  const inRegion = (region: string) => Object.entries(instances).filter(([, db]) => (db.region ?? 'eu-west-1') === region);
  const instanceOf = (id: string, db: ScriptedInstance, region: string): DBInstance => ({
    DBInstanceIdentifier: id,
    DBInstanceArn: `arn:aws:rds:${region}:111111111111:db:${id}`,
    DbiResourceId: `db-${id.toUpperCase()}`,
    DBInstanceStatus: 'available',
    Engine: 'postgres',
    BackupRetentionPeriod: db.retentionDays,
    LatestRestorableTime: db.latest,
    InstanceCreateTime: new Date(0),
  });
  const backupOf = (id: string, db: ScriptedInstance, region: string): DBInstanceAutomatedBackup[] =>
    db.noAutomatedBackup ? [] : [{ DBInstanceIdentifier: id, DbiResourceId: `db-${id.toUpperCase()}`, Region: region, Status: 'active', RestoreWindow: { EarliestTime: db.earliest, LatestTime: db.latest } }];
  const rds = (region: string) =>
    ({
      send: async (command: { input: Record<string, unknown> }) => {
        calls.push({ region, command: command.constructor.name, input: command.input });
        if (command instanceof DescribeDBInstancesCommand) {
          if (command.input.DBInstanceIdentifier === undefined) {
            const here = inRegion(region);
            if (here.some(([, db]) => db.deny)) throw rdsError('AccessDenied', `User: arn:aws:iam::111111111111:user/ops is not authorized to perform: rds:DescribeDBInstances on resource: arn:aws:rds:${region}:111111111111:db:*`);
            return { DBInstances: here.map(([id, db]) => instanceOf(id, db, region)) };
          }
          const id = String(command.input.DBInstanceIdentifier);
          const db = inRegion(region).find(([key]) => key === id)?.[1];
          if (!db) throw rdsError('DBInstanceNotFoundFault', `DBInstance ${id} not found.`);
          if (db.deny) throw rdsError('AccessDenied', `User: arn:aws:iam::111111111111:user/ops is not authorized to perform: rds:DescribeDBInstances on resource: ${id}`);
          return { DBInstances: [instanceOf(id, db, region)] };
        }
        if (command instanceof DescribeDBInstanceAutomatedBackupsCommand) {
          if (command.input.DBInstanceIdentifier !== undefined) {
            const id = String(command.input.DBInstanceIdentifier);
            const db = inRegion(region).find(([key]) => key === id)?.[1];
            return { DBInstanceAutomatedBackups: db ? backupOf(id, db, region) : [] };
          }
          const replicated = replicas.filter((r) => r.Region !== region);
          if (command.input.DbiResourceId !== undefined) {
            const mine = replicated.filter((r) => r.DbiResourceId === command.input.DbiResourceId);
            if (mine.length === 0) throw rdsError('DBInstanceAutomatedBackupNotFoundFault', 'Automated backup not found');
            return { DBInstanceAutomatedBackups: mine };
          }
          return { DBInstanceAutomatedBackups: [...inRegion(region).filter(([, db]) => !db.deny).flatMap(([id, db]) => backupOf(id, db, region)), ...replicated] };
        }
        throw new Error(`scripted RDS: unexpected ${command.constructor.name}`);
      },
    }) as unknown as RDSClient;
  return { rds, calls };
}
