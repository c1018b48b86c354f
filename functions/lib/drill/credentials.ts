import { randomBytes } from 'node:crypto';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { ThrottledError } from '../errors.ts';
import { DRILL_TAG, drillTagList, errorName, tagRecord, type DrillResource, type DrillTags } from './provisioner.ts';
import type { TeardownItem } from './types.ts';

/**
 * The throwaway's credentials: a fresh password, generated after the instance
 * is up, stored in a new secret named after the drill and applied to the
 * instance. Payloads, logs and reports only ever carry the secret's ARN.
 */

/** 32 URL-safe characters: valid for RDS (no `/`, `"`, `@` or spaces) and for ALTER ROLE. */
export function generateDrillPassword(): string {
  return randomBytes(24).toString('base64url');
}

export function drillSecretName(drillId: string): string {
  return `lifeboat/drill/${drillId}`;
}

/** The RDS secret shape, so `resolveConnection` reads it like any database secret. */
export interface DrillSecretValue {
  engine: 'postgres';
  username: string;
  password: string;
  host: string;
  port: number;
}

function throttled(error: unknown, what: string): never {
  if (/Throttl|TooManyRequests/.test(errorName(error))) throw new ThrottledError(`${what}: ${(error as Error).message}`, { cause: error });
  throw error;
}

export async function storeDrillSecret(secrets: SecretsManagerClient, tags: DrillTags, value: DrillSecretValue): Promise<string> {
  const name = drillSecretName(tags.drillId);
  const SecretString = JSON.stringify(value);
  try {
    const out = await secrets.send(
      new CreateSecretCommand({ Name: name, SecretString, Description: `lifeboat drill ${tags.drillId}: throwaway credentials, deleted at teardown`, Tags: drillTagList(tags) }),
    );
    return out.ARN!;
  } catch (error) {
    if (errorName(error) !== 'ResourceExistsException') throttled(error, `creating secret ${name}`);
    // A retried step: replace the value of the drill's own secret.
    await secrets.send(new PutSecretValueCommand({ SecretId: name, SecretString }));
    return (await secrets.send(new DescribeSecretCommand({ SecretId: name }))).ARN!;
  }
}

export async function deleteDrillSecret(secrets: SecretsManagerClient, idOrName: string): Promise<TeardownItem> {
  const item = { type: 'secret', id: idOrName };
  try {
    await secrets.send(new DeleteSecretCommand({ SecretId: idOrName, ForceDeleteWithoutRecovery: true }));
    return { ...item, outcome: 'deleted' };
  } catch (error) {
    if (errorName(error) === 'ResourceNotFoundException') return { ...item, outcome: 'absent' };
    return throttled(error, `deleting secret ${idOrName}`);
  }
}

/** Secrets carrying the drill tag, for the janitor. */
export async function listDrillSecrets(secrets: SecretsManagerClient): Promise<DrillResource[]> {
  const out: DrillResource[] = [];
  let token: string | undefined;
  do {
    const page = await secrets.send(new ListSecretsCommand({ Filters: [{ Key: 'tag-key', Values: [DRILL_TAG.drill] }], NextToken: token }));
    for (const s of page.SecretList ?? []) {
      const tags = tagRecord(s.Tags);
      if (s.Name?.startsWith('lifeboat/drill/') && tags[DRILL_TAG.drill]) out.push({ provider: 'secrets', type: 'secret', id: s.ARN ?? s.Name, tags });
    }
    token = page.NextToken;
  } while (token);
  return out;
}
