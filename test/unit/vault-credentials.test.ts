import { describe, expect, it } from 'vitest';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { S3Client, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { VaultAccessError } from '../../functions/lib/errors.ts';
import { RENEW_BEFORE_EXPIRY_MS, renewingVaultCredentials } from '../../functions/lib/vault/credentials.ts';

/**
 * A vault copy on Fargate runs for hours; an assumed role's session lasts at
 * most one. The copy's credentials must renew themselves before they expire.
 */

const ROLE = { roleArn: 'arn:aws:iam::222222222222:role/acme-lifeboat-vault-copier', account: '222222222222' };
const HOUR = 3_600_000;

/** An STS that issues numbered 30-minute sessions from the given clock, or fails when told to. */
function fakeSts(clock: { now: number }, fail: { next?: Error } = {}) {
  const issued: number[] = [];
  return {
    issued,
    send: async (command: unknown) => {
      expect(command).toBeInstanceOf(AssumeRoleCommand);
      if (fail.next) {
        const error = fail.next;
        fail.next = undefined;
        throw error;
      }
      issued.push(clock.now);
      const n = issued.length;
      return {
        Credentials: { AccessKeyId: `AKIA-${n}`, SecretAccessKey: `secret-${n}`, SessionToken: `token-${n}`, Expiration: new Date(clock.now + HOUR / 2) },
        AssumedRoleUser: { Arn: `arn:aws:sts::222222222222:assumed-role/acme-lifeboat-vault-copier/lifeboat-orders-${n}` },
      };
    },
  };
}

describe('vault credentials for a copy that outlasts a session', () => {
  it('assumes the role at once, keeps the session while it is fresh, and assumes again shortly before it expires', async () => {
    // Prepare
    const clock = { now: Date.parse('2026-12-07T02:00:00Z') };
    const sts = fakeSts(clock);
    const provider = await renewingVaultCredentials(sts as never, ROLE, 'orders-vault-copy', () => clock.now);

    // Act / Assess: fresh for the first 20 minutes of a 30-minute session.
    expect((await provider()).accessKeyId).toBe('AKIA-1');
    clock.now += HOUR / 2 - RENEW_BEFORE_EXPIRY_MS - 1000;
    expect((await provider()).accessKeyId).toBe('AKIA-1');
    // Within 10 minutes of expiry: a new session, once, however many requests ask at the same time.
    clock.now += 2000;
    const renewed = await Promise.all([provider(), provider(), provider()]);
    expect(renewed.map((c) => c.accessKeyId)).toEqual(['AKIA-2', 'AKIA-2', 'AKIA-2']);
    expect(sts.issued).toHaveLength(2);
    // Hours later, still valid credentials.
    for (let hour = 0; hour < 6; hour++) {
      clock.now += HOUR / 2;
      const c = await provider();
      expect(c.expiration!.getTime() - clock.now).toBeGreaterThan(RENEW_BEFORE_EXPIRY_MS);
    }
  });

  it('fails at once with VaultAccessError when the role cannot be assumed, and a failed renewal is tried again on the next request', async () => {
    // Prepare
    const clock = { now: Date.parse('2026-12-07T02:00:00Z') };
    const denied = Object.assign(new Error('not authorized'), { name: 'AccessDenied' });
    await expect(renewingVaultCredentials(fakeSts(clock, { next: denied }) as never, ROLE, 'orders', () => clock.now)).rejects.toBeInstanceOf(VaultAccessError);
    const fail: { next?: Error } = {};
    const sts = fakeSts(clock, fail);
    const provider = await renewingVaultCredentials(sts as never, ROLE, 'orders', () => clock.now);

    // Act: the renewal fails once (a network blip), then succeeds.
    clock.now += HOUR / 2 - 60_000;
    fail.next = Object.assign(new Error('connection reset'), { name: 'NetworkingError' });
    await expect(provider()).rejects.toBeInstanceOf(VaultAccessError);
    const next = await provider();

    // Assess
    expect(next.accessKeyId).toBe('AKIA-2');
  });

  it('is what an S3 client signs with: the SDK asks the provider again once the session nears its end', async () => {
    // Prepare: an S3 client whose requests are captured before they leave (no network).
    const clock = { now: Date.now() };
    const sts = fakeSts(clock);
    const provider = await renewingVaultCredentials(sts as never, ROLE, 'orders', () => clock.now);
    const signedWith: string[] = [];
    const s3 = new S3Client({ region: 'eu-central-1', credentials: provider, endpoint: 'http://127.0.0.1:9', forcePathStyle: true, maxAttempts: 1 });
    s3.middlewareStack.add(
      (_next) => async (args) => {
        const auth = String((args.request as { headers: Record<string, string> }).headers.authorization ?? '');
        signedWith.push(/Credential=([^/]+)/.exec(auth)?.[1] ?? 'unsigned');
        return { output: { $metadata: {}, Contents: [] } as never, response: {} as never };
      },
      { step: 'finalizeRequest', priority: 'low', name: 'capture' },
    );

    // Act: one request now, one after the SDK's memoized identity has passed its refresh point.
    await s3.send(new ListObjectsV2Command({ Bucket: 'vault' }));
    clock.now += HOUR / 2 - 60_000;
    const realNow = Date.now;
    Date.now = () => clock.now;
    try {
      await s3.send(new ListObjectsV2Command({ Bucket: 'vault' }));
    } finally {
      Date.now = realNow;
    }

    // Assess
    expect(signedWith).toEqual(['AKIA-1', 'AKIA-2']);
  });
});
