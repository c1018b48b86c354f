import { KMSClient } from '@aws-sdk/client-kms';
import { RDSClient } from '@aws-sdk/client-rds';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { SFNClient } from '@aws-sdk/client-sfn';
import { STSClient } from '@aws-sdk/client-sts';

/**
 * AWS clients, built the same way everywhere. Endpoints come from the standard
 * AWS_ENDPOINT_URL (moto in tests and the demo); handlers create them once per
 * cold start at module scope and pass them down, so tests can inject their own.
 */
/** Static credentials, e.g. from sts:AssumeRole. Never log them. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

/** Credentials that renew themselves (an assumed role over a long copy); the SDK calls it before each signing. */
export type AwsCredentialsProvider = () => Promise<AwsCredentials>;

export interface ClientOptions {
  /** A region, or a provider of one (the CLI: the SDK's chain, then the config's). @default the SDK's chain */
  region?: string | (() => Promise<string>);
  /** Explicit credentials (e.g. an assumed vault role), or a provider that renews them; default: the standard provider chain. */
  credentials?: AwsCredentials | AwsCredentialsProvider;
  /** SDK attempts per call, first included. @default 6 */
  maxAttempts?: number;
}

/** Local S3 emulators need path-style addressing; real S3 does not. */
function usesCustomS3Endpoint(): boolean {
  return Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
}

const retry = { maxAttempts: 6, retryMode: 'adaptive' } as const;

/** Region, credentials and retry settings shared by every factory below. */
function common(options: ClientOptions) {
  return {
    ...retry,
    region: options.region,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}),
  };
}

export function createS3Client(options: ClientOptions = {}): S3Client {
  return new S3Client({ ...common(options), forcePathStyle: usesCustomS3Endpoint() });
}

export function createKmsClient(options: ClientOptions = {}): KMSClient {
  return new KMSClient(common(options));
}

export function createSecretsManagerClient(options: ClientOptions = {}): SecretsManagerClient {
  return new SecretsManagerClient(common(options));
}

export function createSnsClient(options: ClientOptions = {}): SNSClient {
  return new SNSClient(common(options));
}

/**
 * RDS control-plane calls answer in seconds. A connection that hangs (a stalled
 * endpoint, a region the VPC cannot reach) would otherwise wait until the
 * function's own timeout, and the retry after it never comes: each attempt is
 * cut off instead, and the SDK's retries take over.
 */
export const RDS_REQUEST_TIMEOUTS = { connectionTimeout: 5_000, requestTimeout: 30_000 } as const;

/** RDS (snapshots, windows, drills). Cross-region copies need a client in the destination region. */
export function createRdsClient(options: ClientOptions = {}): RDSClient {
  return new RDSClient({ ...common(options), requestHandler: RDS_REQUEST_TIMEOUTS });
}

/** STS (assuming the vault copier role). */
export function createStsClient(options: ClientOptions = {}): STSClient {
  return new STSClient(common(options));
}

export function createSfnClient(options: ClientOptions = {}): SFNClient {
  return new SFNClient({ ...retry, region: options.region });
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
