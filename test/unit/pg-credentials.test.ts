import { describe, expect, it } from 'vitest';
import { DescribeDBClustersCommand, DescribeDBInstancesCommand } from '@aws-sdk/client-rds';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { connectionSchema } from '../../functions/lib/config/schema.ts';
import { ConfigError } from '../../functions/lib/errors.ts';
import { connectionFailure, isTlsTrustFailure, resolveConnection } from '../../functions/lib/pg/connection.ts';
import { IamAuthUnavailableError, rdsSignerTokens, type IamAuthTokenRequest } from '../../functions/lib/pg/iam-auth.ts';
import { lookupRdsEndpoint } from '../../functions/lib/pg/rds-endpoint.ts';
import { SecretRegistry } from '../../functions/lib/redact.ts';

const env = { AWS_REGION: 'eu-west-1', PGSSLROOTCERT: '/opt/rds-ca/global-bundle.pem' };

describe('RDS IAM authentication', () => {
  const iamConnection = connectionSchema.parse({
    host: 'ledger.abcdefghijkl.eu-west-1.rds.amazonaws.com',
    database: 'ledger',
    username: 'lifeboat_backup',
    iamAuth: { resourceId: 'db-ABCDEFGHIJKLMNOPQRSTUVWXY0' },
  });

  it('signs a token for the configured host, port, user and region, uses it as the password and redacts it', async () => {
    // Prepare
    const requests: IamAuthTokenRequest[] = [];
    const registry = new SecretRegistry();
    const token = 'ledger.abcdefghijkl.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=lifeboat_backup&X-Amz-Signature=abc123';

    // Act
    const resolved = await resolveConnection('ledger', iamConnection, { registry, env, iamAuthToken: async (r) => (requests.push(r), token) });

    // Assess
    expect(requests).toEqual([{ hostname: 'ledger.abcdefghijkl.eu-west-1.rds.amazonaws.com', port: 5432, username: 'lifeboat_backup', region: 'eu-west-1' }]);
    expect(resolved).toMatchObject({ user: 'lifeboat_backup', password: token, sslMode: 'verify-full', sslRootCert: '/opt/rds-ca/global-bundle.pem' });
    expect(registry.redact(`connect failed: ${token}`)).not.toContain('X-Amz-Signature');
  });

  it('calls the SDK Signer with exactly the request, once per token, loading the package once', async () => {
    // Prepare
    const constructed: unknown[] = [];
    let loads = 0;
    class Signer {
      constructor(readonly config: IamAuthTokenRequest) {
        constructed.push(config);
      }
      async getAuthToken() {
        return `token-for-${this.config.username}`;
      }
    }
    const sign = rdsSignerTokens(async () => (loads++, { Signer }));
    const request = { hostname: 'h.example', port: 6543, username: 'u', region: 'eu-west-1' };

    // Act
    const tokens = [await sign(request), await sign(request)];

    // Assess
    expect(tokens).toEqual(['token-for-u', 'token-for-u']);
    expect(constructed).toEqual([request, request]);
    expect(loads).toBe(1);
  });

  it('says what to do when the signer package is not in the runner', async () => {
    const sign = rdsSignerTokens(async () => {
      throw new Error("Cannot find package '@aws-sdk/rds-signer'");
    });
    const error = await sign({ hostname: 'h', port: 5432, username: 'u', region: 'eu-west-1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IamAuthUnavailableError);
    expect((error as Error).message).toMatch(/@aws-sdk\/rds-signer[\s\S]*Next step: add it to package\.json dependencies/);
  });

  it('refuses, naming the field, when the runner has no signer', async () => {
    const error = await resolveConnection('ledger', iamConnection, { registry: new SecretRegistry(), env }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.join('\n')).toMatch(/^connection\.iamAuth: this runner has no RDS IAM token signer/);
  });

  it('is rejected by the config without a user, a host or TLS', () => {
    const result = connectionSchema.safeParse({ database: 'ledger', sslMode: 'disable', iamAuth: { resourceId: 'db-ABC' } });
    expect(result.success).toBe(false);
    const messages = result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    expect(messages).toMatch(/username: RDS IAM authentication signs a token for a database user/);
    expect(messages).toMatch(/host: RDS IAM authentication needs the endpoint host name/);
    expect(messages).toMatch(/sslMode: RDS IAM authentication requires TLS/);
  });
});

describe('RDS-managed master secrets (no host in the secret)', () => {
  const secretArn = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:rds!db-0a1b-AbCdEf';
  const secrets = { send: async (command: unknown) => (expect(command).toBeInstanceOf(GetSecretValueCommand), { SecretString: JSON.stringify({ username: 'postgres', password: 'rds-managed-pw-1234' }) }) } as never;

  it('takes host and port from DescribeDBInstances of the configured instance', async () => {
    // Prepare
    const sent: unknown[] = [];
    const rds = { send: async (command: unknown) => (sent.push(command), { DBInstances: [{ Endpoint: { Address: 'reports.abcdefghijkl.eu-west-1.rds.amazonaws.com', Port: 5433 } }] }) } as never;
    const connection = connectionSchema.parse({ database: 'reports', secretArn });

    // Act
    const resolved = await resolveConnection('reports', connection, {
      secrets,
      registry: new SecretRegistry(),
      env,
      endpoint: () => lookupRdsEndpoint(rds, 'reports', { instanceIdentifier: 'reports-prod' }),
    });

    // Assess
    expect((sent[0] as DescribeDBInstancesCommand).input).toEqual({ DBInstanceIdentifier: 'reports-prod' });
    expect(resolved).toMatchObject({ host: 'reports.abcdefghijkl.eu-west-1.rds.amazonaws.com', port: 5433, user: 'postgres', password: 'rds-managed-pw-1234' });
  });

  it('takes the writer endpoint of an Aurora cluster', async () => {
    const sent: unknown[] = [];
    const rds = { send: async (command: unknown) => (sent.push(command), { DBClusters: [{ Endpoint: 'billing.cluster-abc.eu-west-1.rds.amazonaws.com', Port: 5432 }] }) } as never;
    const endpoint = await lookupRdsEndpoint(rds, 'billing', { clusterIdentifier: 'billing-prod' });
    expect(sent[0]).toBeInstanceOf(DescribeDBClustersCommand);
    expect((sent[0] as DescribeDBClustersCommand).input).toEqual({ DBClusterIdentifier: 'billing-prod' });
    expect(endpoint).toEqual({ host: 'billing.cluster-abc.eu-west-1.rds.amazonaws.com', port: 5432 });
  });

  it('does not look anything up when the config names the host', async () => {
    let called = false;
    const connection = connectionSchema.parse({ database: 'reports', secretArn, host: 'reports.internal' });
    const resolved = await resolveConnection('reports', connection, { secrets, registry: new SecretRegistry(), env, endpoint: async () => ((called = true), { host: 'x', port: 1 }) });
    expect(called).toBe(false);
    expect(resolved.host).toBe('reports.internal');
  });
});

describe('a connection the server certificate check refused', () => {
  const resolved = { host: 'lifeboat-drill-x.abc.eu-west-1.rds.amazonaws.com', port: 5432, database: 'postgres', user: 'lifeboat_drill', password: 'pw', sslMode: 'verify-full', connectTimeoutSeconds: 10, sslRootCert: '/opt/rds-ca/global-bundle.pem' } as const;

  it.each([
    ['SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'unable to get local issuer certificate'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"],
    ['CERT_HAS_EXPIRED', 'certificate has expired'],
  ])('is named a TLS trust failure (%s) with the CA bundle as next step, not an unreachable host', (code, message) => {
    // Act
    const failure = connectionFailure('orders', resolved, Object.assign(new Error(message), { code }));

    // Assess
    expect(isTlsTrustFailure(failure)).toBe(true);
    expect(failure.nextStep).toMatch(/TLS certificate .* not trusted/);
    expect(failure.nextStep).toContain('PGSSLROOTCERT (/opt/rds-ca/global-bundle.pem)');
    expect(failure.message).toContain(message);
  });

  it('leaves a refused connection a reachability problem', () => {
    const failure = connectionFailure('orders', resolved, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    expect(isTlsTrustFailure(failure)).toBe(false);
    expect(failure.nextStep).toMatch(/did not accept connections/);
  });
});
