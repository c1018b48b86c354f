import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../functions/lib/errors.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { MAX_DATABASES_PER_PLAN } from '../../functions/lib/config/schema.ts';

const example = JSON.parse(readFileSync(new URL('../../lifeboat.config.example.json', import.meta.url), 'utf8'));

function configError(input: unknown): ConfigError {
  try {
    parseConfig(input, 'test-config');
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('config schema', () => {
  it('accepts the example config in the repo and fills defaults', () => {
    const config = parseConfig(example, 'example');
    expect(config.databases[0]?.connection.sslMode).toBe('verify-full');
    expect(config.storage.prefix).toBe('backups/');
  });

  it('names the path of every bad field, not just the first', () => {
    // Prepare
    const bad = structuredClone(example);
    bad.databases[0].connection.port = 'five';
    bad.plans[0].schedule.timezone = 'Mars/Olympus';
    bad.plans[0].databases.push('nope');

    // Act
    const error = configError(bad);

    // Assess
    expect(error.issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^databases\[0\]\.connection\.port: /),
        expect.stringMatching(/^plans\[0\]\.schedule\.timezone: .*IANA/),
        expect.stringMatching(/^plans\[0\]\.databases\[\d\]: unknown database "nope"/),
      ]),
    );
    expect(error.message).toContain('test-config');
  });

  it('rejects a retention policy that would keep nothing', () => {
    const bad = structuredClone(example);
    bad.plans[0].retention = { source: { keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 } };
    expect(configError(bad).issues.join('\n')).toMatch(/plans\[0\]\.retention\.source: this policy keeps nothing/);
  });

  it('requires exactly one credential source per connection', () => {
    const bad = structuredClone(example);
    bad.databases[0].connection.passwordEnv = 'PGPASSWORD';
    expect(configError(bad).issues.join('\n')).toMatch(/databases\[0\]\.connection\.secretArn: set exactly one credential source/);
  });

  it('refuses a database id whose snapshots would be named like drill throwaways (lifeboat-drill-*)', () => {
    for (const id of ['drill', 'drill-orders']) {
      const bad = structuredClone(example);
      const old = bad.databases[0].id;
      bad.databases[0].id = id;
      bad.plans[0].databases = bad.plans[0].databases.map((d: string) => (d === old ? id : d));
      expect(configError(bad).issues).toEqual(expect.arrayContaining([expect.stringMatching(/^databases\[0\]\.id: must not be "drill" or start with "drill-"/)]));
    }
    const fine = structuredClone(example);
    const old = fine.databases[0].id;
    fine.databases[0].id = 'drills';
    fine.plans[0].databases = fine.plans[0].databases.map((d: string) => (d === old ? 'drills' : d));
    expect(parseConfig(fine, 'fine').databases[0]!.id).toBe('drills');
  });

  it("accepts as vault.recoveryKmsKeyArn only a key ARN in the vault's own account and region", () => {
    const withKey = (arn: string) => ({ ...structuredClone(example), vault: { ...example.vault, recoveryKmsKeyArn: arn } });
    const { account, region } = example.vault as { account: string; region: string };
    expect(parseConfig(withKey(`arn:aws:kms:${region}:${account}:key/99999999-8888-7777-6666-555555555555`), 'ok').vault?.recoveryKmsKeyArn).toContain(account);
    for (const bad of [
      `arn:aws:kms:${region}:111111111111:key/99999999-8888-7777-6666-555555555555`,
      `arn:aws:kms:us-east-1:${account}:key/99999999-8888-7777-6666-555555555555`,
      `arn:aws:kms:${region}:${account}:alias/lifeboat/acme/vault-recovery`,
    ]) {
      expect(configError(withKey(bad)).issues).toEqual([expect.stringMatching(/^vault\.recoveryKmsKeyArn: must be the key ARN \(not an alias\) of the vault stack's RecoveryKey/)]);
    }
  });

  it('rejects unknown fields so typos do not pass silently', () => {
    const bad = structuredClone(example);
    bad.databases[0].conection = {};
    expect(configError(bad).issues.join('\n')).toMatch(/databases\[0\]/);
  });
});

describe('config limits', () => {
  it('keeps plans that copy Aurora cluster snapshots within the copy concurrency AWS allows', () => {
    const bad = structuredClone(example);
    bad.plans[0].snapshot = true;
    bad.snapshots = { copy: { region: 'eu-central-1', kmsKeyArn: 'arn:aws:kms:eu-central-1:111111111111:key/copy' } };
    bad.plans[0].maxConcurrency = 8;
    expect(configError(bad).issues.join('\n')).toMatch(/plans\[0\]\.maxConcurrency: this plan copies Aurora cluster snapshots/);
    bad.plans[0].maxConcurrency = 5;
    expect(() => parseConfig(bad, 'ok')).not.toThrow();
  });

  it('refuses a plan with more databases than the size proven inside Step Functions\' limits, naming the fix', () => {
    // Prepare: MAX_DATABASES_PER_PLAN + 1 databases in one plan.
    const big = structuredClone(example);
    const ids = Array.from({ length: MAX_DATABASES_PER_PLAN + 1 }, (_, i) => `db-${i}`);
    big.databases = ids.map((id) => ({ id, connection: { host: `${id}.example.internal`, database: id, secretArn: `arn:aws:secretsmanager:eu-west-1:111111111111:secret:${id}-AbCdEf` } }));
    big.plans[0].databases = ids;

    // Act / Assess
    expect(configError(big).issues.join('\n')).toMatch(/plans\[0\]\.databases: at most 1000 databases per plan, the size proven .*Split the databases over several plans/);
    big.plans = [
      { ...big.plans[0], id: 'first', databases: ids.slice(0, MAX_DATABASES_PER_PLAN) },
      { ...big.plans[0], id: 'rest', databases: ids.slice(MAX_DATABASES_PER_PLAN) },
    ];
    expect(parseConfig(big, 'ok').plans.map((p) => p.databases.length)).toEqual([MAX_DATABASES_PER_PLAN, 1]);
  });
});
