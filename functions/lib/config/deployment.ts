import { createHash } from 'node:crypto';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { DeploymentConfigError, UnknownTargetError } from '../errors.ts';
import { parseConfig } from './load.ts';
import type { DatabaseConfig, LifeboatConfig, PlanConfig } from './schema.ts';

/**
 * Deploy-time config decides, execution input only names (DESIGN principle
 * 10). `cdk deploy` publishes the validated config of a source as one S3
 * object and gives each function its location and sha256; a function reads it
 * once per cold start and refuses it unless the hash matches, so neither an
 * execution input nor a rewritten object can point a runner at another host,
 * secret or bucket. State machine payloads carry ids only, which also keeps
 * them small at fleet size.
 */
export const deploymentConfigEnvSchema = z.object({
  LIFEBOAT_CONFIG_BUCKET: z.string().min(3),
  LIFEBOAT_CONFIG_KEY: z.string().min(1),
  LIFEBOAT_CONFIG_SHA256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the hex sha256 of the config object'),
});
export type DeploymentConfigEnv = z.infer<typeof deploymentConfigEnvSchema>;

/** The environment variables that name a config object (what the stack sets). */
export function deploymentConfigEnvironment(location: { bucket: string; key: string; sha256: string }): DeploymentConfigEnv {
  return { LIFEBOAT_CONFIG_BUCKET: location.bucket, LIFEBOAT_CONFIG_KEY: location.key, LIFEBOAT_CONFIG_SHA256: location.sha256 };
}

/** The bytes the stack publishes for a config: canonical JSON, so the hash is reproducible. */
export function deploymentConfigBytes(config: LifeboatConfig): Buffer {
  return Buffer.from(`${JSON.stringify(config, null, 2)}\n`, 'utf8');
}

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** The deployed config, with lookups that say what is known when a name is not. */
export class DeploymentConfig {
  constructor(readonly config: LifeboatConfig) {}

  database(id: string): DatabaseConfig {
    const database = this.config.databases.find((d) => d.id === id);
    if (!database) {
      throw new UnknownTargetError(`The deployed config of "${this.config.name}" has no database "${id}" (known: ${this.config.databases.map((d) => d.id).join(', ') || 'none'}).`, {
        nextStep: 'start the workflow with a database id from the config, or add the database to the config and redeploy.',
      });
    }
    return database;
  }

  plan(id: string): PlanConfig {
    const plan = this.config.plans.find((p) => p.id === id);
    if (!plan) {
      throw new UnknownTargetError(`The deployed config of "${this.config.name}" has no plan "${id}" (known: ${this.config.plans.map((p) => p.id).join(', ') || 'none'}).`, {
        nextStep: 'start the workflow with a plan id from the config, or add the plan and redeploy.',
      });
    }
    return plan;
  }
}

/**
 * Reads, verifies and parses the config object once; a failed read is not
 * cached, so the next invocation tries again.
 */
export function deploymentConfigLoader(s3: Pick<S3Client, 'send'>, env: DeploymentConfigEnv): () => Promise<DeploymentConfig> {
  let loading: Promise<DeploymentConfig> | undefined;
  return () => {
    loading ??= loadDeploymentConfig(s3, env).catch((error: unknown) => {
      loading = undefined;
      throw error;
    });
    return loading;
  };
}

export async function loadDeploymentConfig(s3: Pick<S3Client, 'send'>, env: DeploymentConfigEnv): Promise<DeploymentConfig> {
  const where = `s3://${env.LIFEBOAT_CONFIG_BUCKET}/${env.LIFEBOAT_CONFIG_KEY}`;
  let bytes: Uint8Array;
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: env.LIFEBOAT_CONFIG_BUCKET, Key: env.LIFEBOAT_CONFIG_KEY }));
    bytes = await out.Body!.transformToByteArray();
  } catch (error) {
    const name = (error as Error).name;
    throw new DeploymentConfigError(`Could not read the deployment config ${where} (${name}: ${(error as Error).message}).`, {
      cause: error,
      nextStep: name === 'AccessDenied' ? 'redeploy the stack: it grants each function read access to its config object.' : 'redeploy the stack (`cdk deploy`), which publishes the config object again.',
    });
  }
  const actual = sha256Hex(bytes);
  if (actual !== env.LIFEBOAT_CONFIG_SHA256) {
    throw new DeploymentConfigError(`The deployment config ${where} has sha256 ${actual}, not the ${env.LIFEBOAT_CONFIG_SHA256} this function was deployed with: it was changed outside a deploy, so lifeboat refuses it.`, {
      nextStep: 'find out who wrote that object (CloudTrail), then redeploy with `cdk deploy` to publish the reviewed config.',
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new DeploymentConfigError(`The deployment config ${where} is not JSON (${(error as Error).message}).`, { cause: error });
  }
  return new DeploymentConfig(parseConfig(json, where));
}
