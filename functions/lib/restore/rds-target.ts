import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateDBInstanceCommand,
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  RestoreDBInstanceToPointInTimeCommand,
  type DBInstance,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { CreateSecretCommand, DeleteSecretCommand, PutSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { generateDrillPassword } from '../drill/credentials.ts';
import { BUSY, NOT_FOUND, RDS_FAILED_STATES, THROTTLED } from '../drill/rds-provisioner.ts';
import { errorName } from '../drill/provisioner.ts';
import { RecoveryInstanceError } from '../errors.ts';
import type { SecretRegistry } from '../redact.ts';

/**
 * `lifeboat recover --into-rds <id>`: a new RDS for PostgreSQL instance to
 * restore a backup into, made like the database's own instance where lifeboat
 * knows it, and kept (it is the recovered service, not a throwaway). Its master
 * password is generated here, stored in a Secrets Manager secret in the RDS
 * shape and never printed. Until the restore into it has been verified, the
 * instance is lifeboat's to delete: any failure or interruption deletes it and
 * its secret; once verified, deletion protection goes on.
 */

export interface RecoveryInstanceSpec {
  identifier: string;
  /** The backup's server major version: RDS picks its newest minor. */
  engineVersion: string;
  instanceClass: string;
  subnetGroupName: string;
  securityGroupIds: string[];
  allocatedStorageGiB: number;
  storageType: string;
  /** Provisioned IOPS, for io1/io2 storage (required there). */
  iops?: number;
  /** IAM database authentication, as the instance it replaces has it. @default false */
  iamAuth: boolean;
  /** The KMS key of the storage encryption. @default the RDS-managed key */
  kmsKeyId?: string;
  /** A parameter group of the same engine major. @default the engine's default group */
  parameterGroupName?: string;
  multiAz: boolean;
  backupRetentionDays: number;
  masterUsername: string;
  /** Where each setting came from, for the plan shown before anything is created. */
  /** The port the security groups let in. @default 5432 */
  port: number;
  sources: string[];
}

export interface RecoveryInstanceFlags {
  instanceClass?: string;
  subnetGroup?: string;
  securityGroups?: string[];
  /** An existing instance to take class, network, storage and parameter group from. */
  like?: string;
  storageGiB?: number;
}

/** RDS's identifier rules: 1–63 letters, digits and hyphens, a letter first, no `--`, no hyphen last. */
export function checkInstanceIdentifier(identifier: string): string | undefined {
  if (!/^[A-Za-z][A-Za-z0-9-]{0,62}$/.test(identifier)) return 'must be 1 to 63 letters, digits or hyphens, starting with a letter';
  if (identifier.includes('--') || identifier.endsWith('-')) return 'must not contain two hyphens in a row or end with a hyphen';
  return undefined;
}

async function describe(rds: RDSClient, identifier: string): Promise<DBInstance | undefined> {
  try {
    return (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: identifier }))).DBInstances?.[0];
  } catch (error) {
    if (NOT_FOUND.test(errorName(error))) return undefined;
    throw new RecoveryInstanceError(`DescribeDBInstances ${identifier} failed: ${errorName(error)}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * What will be created, decided before anything is: flags first, then the
 * instance named by `like` (the database's own, from the config), then defaults.
 * Refuses an identifier that is taken or invalid, and a missing class or network.
 */
export async function planRecoveryInstance(
  rds: RDSClient,
  identifier: string,
  backup: { serverMajor: number; sizeBytes: number },
  flags: RecoveryInstanceFlags,
): Promise<RecoveryInstanceSpec> {
  const invalid = checkInstanceIdentifier(identifier);
  if (invalid) throw new RecoveryInstanceError(`--into-rds: "${identifier}" is not a valid DB instance identifier: it ${invalid}.`);
  if (await describe(rds, identifier)) {
    throw new RecoveryInstanceError(`--into-rds: a DB instance "${identifier}" already exists; recover creates a new one and never writes into an existing instance.`, {
      nextStep: 'choose an identifier no instance uses, or restore into a database on it with --target.',
    });
  }
  const sources: string[] = [];
  let like: DBInstance | undefined;
  if (flags.like) {
    const found = await describe(rds, flags.like);
    if (!found) sources.push(`the database's own instance ${flags.like} was not found (gone with the incident?): nothing copied from it`);
    else if (found.Engine !== 'postgres') sources.push(`${flags.like} is ${found.Engine}, not RDS for PostgreSQL: nothing copied from it`);
    else {
      like = found;
      sources.push(`class, network, port, storage and parameter group like ${flags.like}`);
    }
  }
  const instanceClass = flags.instanceClass ?? like?.DBInstanceClass;
  const subnetGroupName = flags.subnetGroup ?? like?.DBSubnetGroup?.DBSubnetGroupName;
  const securityGroupIds = flags.securityGroups?.length ? flags.securityGroups : (like?.VpcSecurityGroups ?? []).map((g) => g.VpcSecurityGroupId!).filter(Boolean);
  const missing = [
    ...(instanceClass ? [] : ['--instance-class (e.g. db.r6g.large)']),
    ...(subnetGroupName ? [] : ['--subnet-group (the DB subnet group the application can reach)']),
    ...(securityGroupIds.length ? [] : ['--security-group (repeatable: the groups that let the application in)']),
  ];
  if (missing.length > 0) {
    throw new RecoveryInstanceError(`--into-rds needs ${missing.join(', ')}: ${flags.like ? sources[0] : 'the database has no RDS instance in the config to copy them from'}.`);
  }
  // Room for the data, its indexes and some growth, never less than the instance it replaces.
  const needed = Math.max(20, Math.ceil((backup.sizeBytes * 3) / 1024 ** 3));
  const allocatedStorageGiB = flags.storageGiB ?? Math.max(needed, like?.AllocatedStorage ?? 0);
  const sameMajor = like?.EngineVersion?.split('.')[0] === String(backup.serverMajor);
  const parameterGroupName = sameMajor ? like?.DBParameterGroups?.[0]?.DBParameterGroupName : undefined;
  if (like && !sameMajor) sources.push(`the default parameter group: ${flags.like} runs PostgreSQL ${like.EngineVersion}, the backup ${backup.serverMajor}`);
  return {
    identifier,
    engineVersion: String(backup.serverMajor),
    instanceClass: instanceClass!,
    subnetGroupName: subnetGroupName!,
    securityGroupIds,
    allocatedStorageGiB,
    storageType: like?.StorageType ?? 'gp3',
    iops: like?.StorageType?.startsWith('io') ? like.Iops : undefined,
    iamAuth: like?.IAMDatabaseAuthenticationEnabled ?? false,
    kmsKeyId: like?.KmsKeyId,
    parameterGroupName: parameterGroupName?.startsWith('default.') ? undefined : parameterGroupName,
    multiAz: like?.MultiAZ ?? false,
    backupRetentionDays: Math.max(7, like?.BackupRetentionPeriod ?? 0),
    masterUsername: like?.MasterUsername ?? 'lifeboat_admin',
    port: like?.Endpoint?.Port ?? like?.DbInstancePort ?? 5432,
    sources,
  };
}

export function describeSpec(spec: RecoveryInstanceSpec): string[] {
  return [
    `a NEW RDS instance ${spec.identifier}, PostgreSQL ${spec.engineVersion}, ${spec.instanceClass}, ${spec.allocatedStorageGiB} GiB ${spec.storageType}${spec.iops ? ` ${spec.iops} IOPS` : ''} encrypted${spec.kmsKeyId ? ` with ${spec.kmsKeyId}` : ''}, ${spec.multiAz ? 'Multi-AZ' : 'single-AZ'}, not public`,
    `    subnet group ${spec.subnetGroupName}, security groups ${spec.securityGroupIds.join(', ')}${spec.parameterGroupName ? `, parameter group ${spec.parameterGroupName}` : ''}${spec.iamAuth ? ', IAM authentication' : ''}; backups kept ${spec.backupRetentionDays} days`,
    `    master user ${spec.masterUsername}, password generated and stored in Secrets Manager (lifeboat/recovered/${spec.identifier}), never shown`,
    ...spec.sources.map((s) => `    settings: ${s}`),
  ];
}

export function recoverySecretName(identifier: string): string {
  return `lifeboat/recovered/${identifier}`;
}

export interface CreatedInstance {
  identifier: string;
  secretArn: string;
  masterUsername: string;
  /** Registered with the caller's SecretRegistry; never returned to a printer. */
  password: string;
}

/**
 * A point-in-time restore of the database's own RDS instance, instead of an
 * empty instance for a dump: RDS restores it to `restoreTime` (storage, key
 * and engine version come from the source), and the master password is set
 * to the generated one once it is up (applyRecoveryPassword).
 */
export interface PointInTimeSource {
  sourceIdentifier: string;
  restoreTime: Date;
}

/**
 * Stores the new master password, then asks RDS for the instance: an empty one
 * (CreateDBInstance), or with `pointInTime` the source restored to the moment
 * (RestoreDBInstanceToPointInTime). A refusal deletes the secret again.
 */
export async function createRecoveryInstance(
  rds: RDSClient,
  secrets: SecretsManagerClient,
  spec: RecoveryInstanceSpec,
  tags: Record<string, string>,
  registry: SecretRegistry,
  signal?: AbortSignal,
  pointInTime?: PointInTimeSource,
): Promise<CreatedInstance> {
  const password = generateDrillPassword();
  registry.add(password);
  // A value of this run alone: an instance that carries it is this run's, whatever the answer to CreateDBInstance was.
  const run = randomBytes(8).toString('hex');
  const Tags = Object.entries({ ...tags, 'lifeboat:recovery-run': run }).map(([Key, Value]) => ({ Key, Value }));
  let secretArn: string;
  try {
    secretArn = (
      await secrets.send(
        new CreateSecretCommand({
          Name: recoverySecretName(spec.identifier),
          Description: `lifeboat recover: master credentials of ${spec.identifier}`,
          SecretString: JSON.stringify({ engine: 'postgres', username: spec.masterUsername, password }),
          Tags,
        }),
      )
    ).ARN!;
  } catch (error) {
    throw new RecoveryInstanceError(`Creating the secret ${recoverySecretName(spec.identifier)} failed: ${errorName(error)}: ${(error as Error).message}`, {
      cause: error,
      nextStep: errorName(error) === 'ResourceExistsException' ? 'a secret of that name is left from an earlier recovery: delete it, or choose another identifier.' : 'check the Secrets Manager permissions of these credentials.',
    });
  }
  if (signal?.aborted) {
    await deleteSecret(secrets, secretArn);
    throw signal.reason;
  }
  const call = pointInTime ? `RestoreDBInstanceToPointInTime ${spec.identifier} (${pointInTime.sourceIdentifier} at ${pointInTime.restoreTime.toISOString()})` : `CreateDBInstance ${spec.identifier}`;
  try {
    // What the new instance is like, whether made empty or restored to the moment.
    const like = {
      DBInstanceClass: spec.instanceClass,
      StorageType: spec.storageType,
      Iops: spec.iops,
      EnableIAMDatabaseAuthentication: spec.iamAuth || undefined,
      DBSubnetGroupName: spec.subnetGroupName,
      VpcSecurityGroupIds: spec.securityGroupIds,
      DBParameterGroupName: spec.parameterGroupName,
      MultiAZ: spec.multiAz,
      PubliclyAccessible: false,
      BackupRetentionPeriod: spec.backupRetentionDays,
      CopyTagsToSnapshot: true,
      // On once the restore is verified: until then lifeboat must be able to delete what it made.
      DeletionProtection: false,
      Port: spec.port,
      Tags,
    };
    if (pointInTime) {
      // Engine, version, storage size and KMS key come from the source.
      await rds.send(
        new RestoreDBInstanceToPointInTimeCommand({ SourceDBInstanceIdentifier: pointInTime.sourceIdentifier, TargetDBInstanceIdentifier: spec.identifier, RestoreTime: pointInTime.restoreTime, ...like }),
      );
    } else {
      await rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: spec.identifier,
          Engine: 'postgres',
          EngineVersion: spec.engineVersion,
          AllocatedStorage: spec.allocatedStorageGiB,
          StorageEncrypted: true,
          KmsKeyId: spec.kmsKeyId,
          MasterUsername: spec.masterUsername,
          MasterUserPassword: password,
          ...like,
        }),
      );
    }
  } catch (error) {
    // A timeout or a retried call may fail although RDS took the request: whatever exists is deleted with the secret.
    const created = { identifier: spec.identifier, secretArn, masterUsername: spec.masterUsername, password };
    const found = /InvalidParameter/.test(errorName(error)) ? undefined : await describe(rds, spec.identifier).catch(() => undefined);
    const exists = found?.TagList?.some((t) => t.Key === 'lifeboat:recovery-run' && t.Value === run) ?? false;
    const left = exists
      ? await discardRecoveryInstance(rds, secrets, created, { pollMs: 10_000, timeoutMs: 15 * 60_000 })
      : await deleteSecret(secrets, secretArn);
    const what = exists ? `RDS created ${spec.identifier} nonetheless; it was deleted` : 'nothing was created';
    throw new RecoveryInstanceError(`${call} failed: ${errorName(error)}: ${registry.redact((error as Error).message)}`, {
      cause: error,
      nextStep: left.length === 0 ? `${what} (the secret made for it was deleted); fix what RDS names above and run recover again.` : `left behind, delete by hand: ${left.join('; ')}.`,
    });
  }
  return { identifier: spec.identifier, secretArn, masterUsername: spec.masterUsername, password };
}

/**
 * A point-in-time restore keeps the source's master password: the generated one
 * (already in the secret) replaces it, and the instance is waited for until RDS
 * has applied it (resetting-master-credentials, then available).
 */
export async function applyRecoveryPassword(rds: RDSClient, created: CreatedInstance, options: WaitOptions & { sourceIdentifier?: string }): Promise<{ host: string; port: number }> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    try {
      // Restored from a source whose master password RDS manages in Secrets Manager: a password is accepted only with that
      // turned off, which deletes the secret RDS reports: never the source's.
      const own = (await describe(rds, created.identifier))?.MasterUserSecret?.SecretArn;
      if (own !== undefined && options.sourceIdentifier && (await describe(rds, options.sourceIdentifier))?.MasterUserSecret?.SecretArn === own) {
        throw new RecoveryInstanceError(`The new instance ${created.identifier} reports the master secret of ${options.sourceIdentifier} (${own}): setting its password would make RDS delete the source's secret. Refused.`, {
          nextStep: 'set the new instance\'s password by hand once it has a secret of its own (aws rds modify-db-instance --manage-master-user-password); the instance is deleted.',
        });
      }
      const managed = own !== undefined;
      await rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: created.identifier, MasterUserPassword: created.password, ApplyImmediately: true, ...(managed ? { ManageMasterUserPassword: false } : {}) }));
      break;
    } catch (error) {
      if (error instanceof RecoveryInstanceError) throw error;
      const name = errorName(error);
      if (!(BUSY.test(name) || THROTTLED.test(name)) || Date.now() >= deadline) {
        throw new RecoveryInstanceError(`Setting the new master password of ${created.identifier} failed: ${name}: ${(error as Error).message}`, { cause: error, nextStep: 'check the RDS permissions of these credentials (rds:ModifyDBInstance); the instance is deleted.' });
      }
      await sleep(options.pollMs, undefined, { signal: options.signal });
    }
  }
  // RDS reports the change on a later look; until then the old password may still be the one that works.
  let seenReset = false;
  return waitForInstance(rds, created.identifier, {
    ...options,
    timeoutMs: Math.max(1000, deadline - Date.now()),
    onStatus: (status) => {
      if (status === 'resetting-master-credentials') seenReset = true;
      options.onStatus?.(status);
    },
    ready: (found) => seenReset || found.PendingModifiedValues?.MasterUserPassword === undefined,
  });
}

export interface WaitOptions {
  pollMs: number;
  timeoutMs: number;
  signal?: AbortSignal;
  onStatus?: (status: string) => void;
  /** An available instance counts only once this says so (e.g. a password change was applied). @default always */
  ready?: (found: DBInstance) => boolean;
}

/** Polls until the instance is available with an endpoint; a failed status or the timeout is a RecoveryInstanceError. */
export async function waitForInstance(rds: RDSClient, identifier: string, options: WaitOptions): Promise<{ host: string; port: number }> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    options.signal?.throwIfAborted();
    const found = await describe(rds, identifier);
    const status = found?.DBInstanceStatus ?? 'not visible yet';
    options.onStatus?.(status);
    if (RDS_FAILED_STATES.has(status)) throw new RecoveryInstanceError(`The new instance ${identifier} failed: RDS reports it "${status}".`, { nextStep: 'see the instance\'s events in the RDS console for why; it is deleted.' });
    if (status === 'available' && found?.Endpoint?.Address && found.Endpoint.Port && (options.ready?.(found) ?? true)) return { host: found.Endpoint.Address, port: found.Endpoint.Port };
    if (Date.now() >= deadline) throw new RecoveryInstanceError(`The new instance ${identifier} was not available after ${Math.round(options.timeoutMs / 60_000)} min (last status: ${status}).`, { nextStep: 'raise --wait-minutes; it is deleted.' });
    // Interrupted: the caller's reason (an InterruptedError), not the timer's AbortError.
    await sleep(options.pollMs, undefined, { signal: options.signal }).catch((error: unknown) => {
      throw options.signal?.aborted ? options.signal.reason : error;
    });
  }
}

/** The instance's address goes into its secret, so the secret alone is enough to connect. */
export async function recordEndpoint(secrets: SecretsManagerClient, created: CreatedInstance, endpoint: { host: string; port: number }): Promise<void> {
  await secrets.send(
    new PutSecretValueCommand({
      SecretId: created.secretArn,
      SecretString: JSON.stringify({ engine: 'postgres', username: created.masterUsername, password: created.password, host: endpoint.host, port: endpoint.port, dbInstanceIdentifier: created.identifier }),
    }),
  );
}

/**
 * Deletion protection on, once the restore verified. RDS refuses modifications while the instance is busy
 * (its first backup, a maintenance): that is waited out. Returns why it could not, or undefined.
 */
export async function protectRecoveryInstance(rds: RDSClient, identifier: string, options: { pollMs: number; timeoutMs: number }): Promise<string | undefined> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    try {
      await rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: identifier, DeletionProtection: true, ApplyImmediately: true }));
      return undefined;
    } catch (error) {
      const name = errorName(error);
      if (!(BUSY.test(name) || THROTTLED.test(name)) || Date.now() >= deadline) return `${name}: ${(error as Error).message}`;
      await sleep(options.pollMs);
    }
  }
}

/**
 * Deletes a recovery instance that never held a verified restore, and its
 * secret. RDS refuses to delete an instance while it is busy (creating,
 * backing-up, modifying): that is waited out, up to `timeoutMs`. Returns what
 * is left, each with why, for the error message.
 */
export async function discardRecoveryInstance(
  rds: RDSClient,
  secrets: SecretsManagerClient,
  created: Pick<CreatedInstance, 'identifier' | 'secretArn'>,
  options: { pollMs: number; timeoutMs: number },
): Promise<string[]> {
  const left: string[] = [];
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    try {
      await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: created.identifier, SkipFinalSnapshot: true, DeleteAutomatedBackups: true }));
      break;
    } catch (error) {
      const name = errorName(error);
      if (NOT_FOUND.test(name)) break;
      if (!(BUSY.test(name) || THROTTLED.test(name)) || Date.now() >= deadline) {
        left.push(`the RDS instance ${created.identifier} (${name}: ${(error as Error).message}): delete it with \`aws rds delete-db-instance --db-instance-identifier ${created.identifier} --skip-final-snapshot --delete-automated-backups\``);
        break;
      }
      await sleep(options.pollMs);
    }
  }
  // The secret holds the only copy of the password: it stays while the instance does.
  if (left.length > 0) return [...left, `the secret ${created.secretArn}, kept: it holds the instance's master password`];
  return deleteSecret(secrets, created.secretArn);
}

async function deleteSecret(secrets: SecretsManagerClient, secretArn: string): Promise<string[]> {
  try {
    await secrets.send(new DeleteSecretCommand({ SecretId: secretArn, ForceDeleteWithoutRecovery: true }));
    return [];
  } catch (error) {
    return errorName(error) === 'ResourceNotFoundException' ? [] : [`the secret ${secretArn} (${errorName(error)}: ${(error as Error).message})`];
  }
}

/** The commands that delete a recovery instance and its secret, for when lifeboat cannot. */
export function deleteCommands(created: Pick<CreatedInstance, 'identifier' | 'secretArn'>): string {
  return `aws rds delete-db-instance --db-instance-identifier ${created.identifier} --skip-final-snapshot --delete-automated-backups; aws secretsmanager delete-secret --secret-id ${created.secretArn} --force-delete-without-recovery`;
}
