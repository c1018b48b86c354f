import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';

/**
 * AWS clients, built the same way everywhere. Endpoints come from the standard
 * AWS_ENDPOINT_URL (moto in tests and the demo); handlers create them once per
 * cold start at module scope and pass them down, so tests can inject their own.
 */
export interface ClientOptions {
  region?: string;
}

/** Local S3 emulators need path-style addressing; real S3 does not. */
function usesCustomS3Endpoint(): boolean {
  return Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
}

const retry = { maxAttempts: 6, retryMode: 'adaptive' } as const;

export function createS3Client(options: ClientOptions = {}): S3Client {
  return new S3Client({ ...retry, region: options.region, forcePathStyle: usesCustomS3Endpoint() });
}

export function createKmsClient(options: ClientOptions = {}): KMSClient {
  return new KMSClient({ ...retry, region: options.region });
}

export function createSecretsManagerClient(options: ClientOptions = {}): SecretsManagerClient {
  return new SecretsManagerClient({ ...retry, region: options.region });
}

export function createSnsClient(options: ClientOptions = {}): SNSClient {
  return new SNSClient({ ...retry, region: options.region });
}

export interface AwsClients {
  s3: S3Client;
  kms: KMSClient;
  secrets: SecretsManagerClient;
  sns: SNSClient;
}

export function createAwsClients(options: ClientOptions = {}): AwsClients {
  return {
    s3: createS3Client(options),
    kms: createKmsClient(options),
    secrets: createSecretsManagerClient(options),
    sns: createSnsClient(options),
  };
}
