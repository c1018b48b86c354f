import type { RDSClient } from '@aws-sdk/client-rds';
import { checkPosture } from '../pitr/posture.ts';
import type { StatusSources } from './model.ts';

/**
 * The PITR posture for `lifeboat status`, read by the posture check itself
 * (checkPosture: a few databases at a time, never throwing), with the status's
 * clock. collectStatus hands it targets with `pitr.manage` off, so this reads
 * and never starts a replication.
 */
export function pitrPostureFromRds(rds: (region: string) => RDSClient): NonNullable<StatusSources['pitrPosture']> {
  return async (targets, now) => (await checkPosture({ rds, now: () => now }, targets, { mode: 'full' })).databases;
}
