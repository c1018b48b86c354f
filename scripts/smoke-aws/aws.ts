import { KMSClient } from '@aws-sdk/client-kms';
import { RDSClient } from '@aws-sdk/client-rds';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';

/**
 * SDK v3 clients for one side of the smoke test (production or vault): one
 * account's credentials (a named profile, or the ambient chain) in one region.
 * Endpoints follow the standard AWS_ENDPOINT_URL, which the local tests point
 * at moto; S3 then needs path-style addressing, as in functions/lib/aws/clients.ts.
 */
export interface SideClients {
  readonly region: string;
  s3(region?: string): S3Client;
  rds(region?: string): RDSClient;
  kms(region?: string): KMSClient;
  secrets(region?: string): SecretsManagerClient;
  sfn(region?: string): SFNClient;
  sqs(region?: string): SQSClient;
  sts(region?: string): STSClient;
}

export function sideClients(side: { profile?: string; region: string }): SideClients {
  const cache = new Map<string, unknown>();
  const common = (region: string) => ({ region, maxAttempts: 8, retryMode: 'adaptive' as const, ...(side.profile ? { profile: side.profile } : {}) });
  const pathStyle = Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
  const make = <T>(kind: string, region: string | undefined, build: (r: string) => T): T => {
    const r = region ?? side.region;
    const key = `${kind}/${r}`;
    if (!cache.has(key)) cache.set(key, build(r));
    return cache.get(key) as T;
  };
  return {
    region: side.region,
    s3: (region) => make('s3', region, (r) => new S3Client({ ...common(r), forcePathStyle: pathStyle })),
    rds: (region) => make('rds', region, (r) => new RDSClient(common(r))),
    kms: (region) => make('kms', region, (r) => new KMSClient(common(r))),
    secrets: (region) => make('secrets', region, (r) => new SecretsManagerClient(common(r))),
    sfn: (region) => make('sfn', region, (r) => new SFNClient(common(r))),
    sqs: (region) => make('sqs', region, (r) => new SQSClient(common(r))),
    sts: (region) => make('sts', region, (r) => new STSClient(common(r))),
  };
}

/** The name an AWS SDK error carries (`NoSuchKey`, `DBSnapshotNotFound`...). */
export function awsErrorName(error: unknown): string {
  return (error as { name?: string })?.name ?? '';
}
