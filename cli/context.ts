import { existsSync } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import { createAwsClients, createRdsClient } from '../functions/lib/aws/clients.ts';
import { createKeyringKmsClient } from '../functions/lib/backup/encryption.ts';
import { loadConfigFile } from '../functions/lib/config/load.ts';
import type { LifeboatConfig } from '../functions/lib/config/schema.ts';
import { ConfigError } from '../functions/lib/errors.ts';

/**
 * Shared CLI plumbing: clients from the standard AWS environment, config, storage location.
 * The region is the environment's (AWS_REGION, AWS_DEFAULT_REGION) or else the config's
 * source region, so a config file is enough on a machine with no AWS profile region.
 */
export function cliClients(config?: LifeboatConfig) {
  const fallback = config?.source.region;
  if (!fallback) return { ...createAwsClients(), rds: createRdsClient(), keyringKms: createKeyringKmsClient() };
  // The SDK's own chain first (AWS_REGION, the profile's region in ~/.aws/config, ...), the config's only when it finds none.
  const probe = new S3Client({});
  const region = async () => {
    try {
      return await probe.config.region();
    } catch {
      return fallback;
    }
  };
  return { ...createAwsClients({ region }), rds: createRdsClient({ region }), keyringKms: createKeyringKmsClient({ region }) };
}

export function loadCliConfig(path: string | undefined): LifeboatConfig | undefined {
  const file = path ?? process.env.LIFEBOAT_CONFIG ?? (existsSync('lifeboat.config.json') ? 'lifeboat.config.json' : undefined);
  return file ? loadConfigFile(file) : undefined;
}

export interface StorageLocation {
  bucket: string;
  prefix: string;
  kmsKeyArn?: string;
}

/** Flags, then LIFEBOAT_* environment, then the config's storage section. */
export function storageLocation(flags: { bucket?: string; prefix?: string; 'kms-key'?: string }, config?: LifeboatConfig): StorageLocation {
  const bucket = flags.bucket ?? process.env.LIFEBOAT_BUCKET ?? config?.storage.bucketName;
  if (!bucket) throw new ConfigError('command line', ['--bucket: required (or LIFEBOAT_BUCKET, or storage.bucketName in the config)']);
  return {
    bucket,
    prefix: flags.prefix ?? process.env.LIFEBOAT_PREFIX ?? config?.storage.prefix ?? 'backups/',
    kmsKeyArn: flags['kms-key'] ?? process.env.LIFEBOAT_KMS_KEY_ARN ?? config?.storage.kmsKeyArn,
  };
}

export function requireFlag<T>(value: T | undefined, flag: string, hint = ''): T {
  if (value === undefined || value === '') throw new ConfigError('command line', [`--${flag}: required${hint ? ` (${hint})` : ''}`]);
  return value;
}
