import { describe, expect, it } from 'vitest';
import { formatRefusal, parseSmokeInvocation, SMOKE_USAGE, type ParsedInvocation } from '../../scripts/smoke-aws/options.ts';

const random = () => 'abc123';

function runOptions(parsed: ParsedInvocation) {
  if (parsed.kind !== 'run') throw new Error(`expected a run, got ${parsed.kind}: ${JSON.stringify(parsed)}`);
  return parsed.options;
}

function refusal(parsed: ParsedInvocation): string {
  if (parsed.kind !== 'error') throw new Error(`expected a refusal, got ${parsed.kind}`);
  return formatRefusal(parsed.messages);
}

describe('smoke:aws options', () => {
  it('refuses to start without credentials for either account, naming both and how to give them', () => {
    // Act
    const text = refusal(parseSmokeInvocation([], {}, random));

    // Assess
    expect(text).toMatch(/production \(source\) account: pass --source-profile/);
    expect(text).toMatch(/LIFEBOAT_SMOKE_SOURCE_PROFILE/);
    expect(text).toMatch(/vault account: pass --vault-profile/);
    expect(text).toMatch(/different AWS account/);
    expect(text).toMatch(/Nothing was created/);
  });

  it('takes the accounts from profiles and the regions from flags, with the defaults otherwise', () => {
    // Act
    const options = runOptions(parseSmokeInvocation(['--source-profile', 'prod', '--vault-profile', 'vault', '--vault-region', 'us-west-2'], {}, random));

    // Assess
    expect(options.source).toEqual({ profile: 'prod', region: 'eu-west-1', credentialSource: 'profile "prod"' });
    expect(options.vault).toEqual({ profile: 'vault', region: 'us-west-2', credentialSource: 'profile "vault"' });
    expect(options.name).toBe('smoke-abc123');
    expect(options.engineMajor).toBe(17);
    expect(options.yes).toBe(false);
  });

  it('falls back to the environment, and flags win over it', () => {
    // Prepare
    const env = { LIFEBOAT_SMOKE_SOURCE_PROFILE: 'env-prod', LIFEBOAT_SMOKE_VAULT_PROFILE: 'env-vault', LIFEBOAT_SMOKE_SOURCE_REGION: 'us-east-1', LIFEBOAT_SMOKE_VAULT_REGION: 'us-east-2', AWS_REGION: 'ap-south-1' };

    // Act
    const fromEnv = runOptions(parseSmokeInvocation([], env, random));
    const overridden = runOptions(parseSmokeInvocation(['--source-profile', 'flag-prod', '--source-region', 'eu-north-1'], env, random));

    // Assess
    expect([fromEnv.source.profile, fromEnv.source.region, fromEnv.vault.profile, fromEnv.vault.region]).toEqual(['env-prod', 'us-east-1', 'env-vault', 'us-east-2']);
    expect([overridden.source.profile, overridden.source.region]).toEqual(['flag-prod', 'eu-north-1']);
  });

  it('uses ambient source credentials when no source profile is given, and says so', () => {
    // Act
    const byKey = runOptions(parseSmokeInvocation(['--vault-profile', 'vault'], { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'x'.repeat(40), AWS_REGION: 'us-east-1' }, random));
    const byProfile = runOptions(parseSmokeInvocation(['--vault-profile', 'vault'], { AWS_PROFILE: 'prod' }, random));

    // Assess
    expect(byKey.source).toEqual({ profile: undefined, region: 'us-east-1', credentialSource: 'AWS_ACCESS_KEY_ID from the environment (ambient)' });
    expect(byProfile.source.credentialSource).toBe('AWS_PROFILE "prod" (ambient)');
    expect(JSON.stringify(byKey)).not.toContain('x'.repeat(40));
  });

  it('refuses the same profile for production and the vault', () => {
    // Act
    const text = refusal(parseSmokeInvocation(['--source-profile', 'one', '--vault-profile', 'one'], {}, random));

    // Assess
    expect(text).toMatch(/--vault-profile: "one" is also the source profile/);
  });

  it('names every bad value at once: regions, name, engine version, timeouts', () => {
    // Act
    const text = refusal(
      parseSmokeInvocation(
        ['--source-profile', 'p', '--vault-profile', 'v', '--source-region', 'moon-1', '--vault-region', 'EU', '--name', 'Bad_Name', '--engine-version', '12', '--execution-timeout', '0', '--alert-timeout', 'soon'],
        {},
        random,
      ),
    );

    // Assess
    expect(text).toMatch(/--source-region: "moon-1" is not an AWS region/);
    expect(text).toMatch(/--vault-region: "EU" is not an AWS region/);
    expect(text).toMatch(/--name: "Bad_Name" must be 3-20 lowercase/);
    expect(text).toMatch(/--engine-version: "12" is not one of 16, 17, 18/);
    expect(text).toMatch(/--execution-timeout: must be a whole number/);
    expect(text).toMatch(/--alert-timeout: must be a whole number/);
  });

  it('refuses to run in CI unless told otherwise', () => {
    // Prepare
    const argv = ['--source-profile', 'p', '--vault-profile', 'v'];

    // Act
    const inCi = parseSmokeInvocation(argv, { CI: 'true' }, random);
    const allowed = parseSmokeInvocation([...argv, '--allow-ci'], { CI: 'true' }, random);

    // Assess
    expect(refusal(inCi)).toMatch(/CI is set: npm run smoke:aws creates real, billed AWS resources/);
    expect(allowed.kind).toBe('run');
  });

  it('answers --help with the usage, and an unknown flag with a pointer to it', () => {
    // Act
    const help = parseSmokeInvocation(['--help'], {}, random);
    const unknown = parseSmokeInvocation(['--vault-profil', 'v'], {}, random);

    // Assess
    expect(help).toEqual({ kind: 'help', text: SMOKE_USAGE });
    expect(SMOKE_USAGE).toMatch(/--source-profile[\s\S]*--vault-profile[\s\S]*--cleanup <work dir>/);
    expect(refusal(unknown)).toMatch(/--vault-profil[\s\S]*See --help/);
  });

  it('takes --cleanup <work dir> without asking for accounts', () => {
    // Act
    const parsed = parseSmokeInvocation(['--cleanup', 'some-dir/lifeboat-smoke-x'], {}, random);

    // Assess
    expect(parsed).toEqual({ kind: 'cleanup', workDir: 'some-dir/lifeboat-smoke-x' });
  });
});
