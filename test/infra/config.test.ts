import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/lib/errors.ts';
import { DEFAULT_CONFIG_PATH, configPathFromContext, deployTargetFromContext } from '../../infra/config.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { prebundledCode } from './helpers/bundles.ts';
import { addLifeboatStacks } from '../../infra/lifeboat-app.ts';
import { SourceStack } from '../../infra/source-stack.ts';
import { cdkJsonContext, exampleConfigJson, repoRoot } from './helpers/app.ts';

function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the action to throw');
}

function writeTempConfig(config: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'lifeboat-config-')), 'lifeboat.config.json');
  writeFileSync(path, JSON.stringify(config));
  return path;
}

function badConfig(): Record<string, unknown> {
  const config = exampleConfigJson() as Record<string, unknown> & { databases: Array<{ connection: Record<string, unknown> }> };
  config.databases[0]!.connection.port = 'five';
  (config.plans as Array<{ schedule: Record<string, unknown> }>)[0]!.schedule.timezone = 'Mars/Olympus';
  return config;
}

describe('config at synth time', () => {
  it('rejects a bad config object given to the source stack, naming each bad field path', () => {
    // Prepare
    const app = new App({ context: cdkJsonContext() });

    // Act
    const error = thrownBy(() => new SourceStack(app, 'Source', { config: badConfig() as never }));

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    const issues = (error as ConfigError).issues;
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^databases\[0\]\.connection\.port: /),
        expect.stringMatching(/^plans\[0\]\.schedule\.timezone: /),
      ]),
    );
    expect(app.node.children).toHaveLength(0);
  });

  it('rejects a bad config file named by the `config` context, naming the file and the field path', () => {
    // Prepare
    const path = writeTempConfig(badConfig());
    const app = new App({ context: { ...cdkJsonContext(), config: path } });

    // Act
    const error = thrownBy(() => addLifeboatStacks(app));

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain(path);
    expect((error as ConfigError).message).toMatch(/databases\[0\]\.connection\.port/);
  });

  it('says when the config file named by the context cannot be read', () => {
    const app = new App({ context: { config: '/nonexistent/lifeboat.config.json' } });
    const error = thrownBy(() => addLifeboatStacks(app));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/\/nonexistent\/lifeboat\.config\.json[\s\S]*cannot read the file/);
  });

  it('reads the example config at the repo root when the context names none, and relative paths from the working directory', () => {
    expect(configPathFromContext(new App(), repoRoot)).toBe(join(repoRoot, DEFAULT_CONFIG_PATH));
    expect(configPathFromContext(new App({ context: { config: 'configs/prod.json' } }), '/srv/ops')).toBe('/srv/ops/configs/prod.json');
  });

  it('rejects storage.bucketName, which the source stack cannot honour yet', () => {
    // Prepare
    const config = exampleConfigJson();
    config.storage = { bucketName: 'existing-backups' };

    // Act
    const error = thrownBy(() => new SourceStack(new App(), 'Source', { config }));

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([expect.stringMatching(/^storage\.bucketName: .*not supported/)]);
  });

  it('rejects a dumped database whose password comes from a local environment variable', () => {
    // Prepare
    const config = exampleConfigJson() as Record<string, unknown> & { databases: Array<{ connection: Record<string, unknown> }> };
    delete config.databases[1]!.connection.secretArn;
    config.databases[1]!.connection.passwordEnv = 'BILLING_PASSWORD';

    // Act
    const error = thrownBy(() => new SourceStack(new App(), 'Source', { config: config as never }));

    // Assess
    expect((error as ConfigError).issues).toEqual([expect.stringMatching(/^databases\[1\]\.connection\.secretArn: .*Secrets Manager/)]);
  });

  it('makes `cdk synth` (infra/app.ts) exit 1 with the bad field paths and no stack trace', () => {
    // Prepare
    const path = writeTempConfig(badConfig());

    // Act
    const result = spawnSync('npx', ['tsx', 'infra/app.ts'], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ config: path }), CDK_OUTDIR: mkdtempSync(join(tmpdir(), 'lifeboat-out-')) },
    });

    // Assess
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`Invalid lifeboat config in ${path}`);
    expect(result.stderr).toMatch(/databases\[0\]\.connection\.port/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('one side per deploy (-c deploy=vault|source)', () => {
  const withRecoveryKey = () => {
    const raw = exampleConfigJson() as Record<string, unknown> & { vault: Record<string, unknown> };
    raw.vault = { ...raw.vault, recoveryKmsKeyArn: `arn:aws:kms:${String(raw.vault.region)}:${String(raw.vault.account)}:key/99999999-8888-7777-6666-555555555555` };
    return raw;
  };
  const stackNames = (app: App) => app.node.children.filter((c) => c instanceof Stack).map((s) => (s as Stack).stackName);
  const code = prebundledCode();

  it('synthesizes only the vault stacks (the break-glass role first, then the vault) for the vault-account deploy', () => {
    const app = new App({ context: { ...cdkJsonContext(), deploy: 'vault' } });
    const stacks = addLifeboatStacks(app, { config: parseConfig(exampleConfigJson(), 'example'), deploy: deployTargetFromContext(app), nag: false, code });
    expect(stacks.sources).toEqual([]);
    expect(stackNames(app)).toEqual(['acme-lifeboat-vault-access', 'acme-lifeboat-vault']);
    expect(stacks.vault!.dependencies).toEqual([stacks.vaultAccess]);
  });

  it("refuses the production deploy while the vault's recovery key is not in the config, naming the field and the order", () => {
    const app = new App({ context: cdkJsonContext() });
    const error = thrownBy(() => addLifeboatStacks(app, { config: parseConfig(exampleConfigJson(), 'example'), deploy: 'source', nag: false, code }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([expect.stringMatching(/^vault\.recoveryKmsKeyArn: deploy the vault first \("-c deploy=vault" with vault-account credentials\) and set this to its RecoveryKeyArn output/)]);
    expect(stackNames(app)).toEqual([]);
  });

  it('synthesizes only the source stacks for the production deploy once the recovery key is set', () => {
    const app = new App({ context: cdkJsonContext() });
    const stacks = addLifeboatStacks(app, { config: parseConfig(withRecoveryKey(), 'example'), deploy: 'source', nag: false, code });
    expect(stacks.vault).toBeUndefined();
    expect(stackNames(app)).toEqual(['acme-lifeboat-source']);
  });

  it('warns at synth of both sides that the recovery key is missing', () => {
    const app = new App({ context: cdkJsonContext() });
    const stacks = addLifeboatStacks(app, { config: parseConfig(exampleConfigJson(), 'example'), nag: false, code });
    const warnings = Annotations.fromStack(stacks.source!).findWarning('*', Match.stringLikeRegexp('vault\\.recoveryKmsKeyArn is not set'));
    expect(warnings).toHaveLength(1);
    const clean = new App({ context: cdkJsonContext() });
    const ok = addLifeboatStacks(clean, { config: parseConfig(withRecoveryKey(), 'example'), nag: false, code });
    expect(Annotations.fromStack(ok.source!).findWarning('*', Match.stringLikeRegexp('recoveryKmsKeyArn'))).toEqual([]);
  });

  it('refuses the vault deploy of a config without a vault, naming the section', () => {
    const raw = exampleConfigJson() as Record<string, unknown>;
    delete raw.vault;
    const app = new App({ context: cdkJsonContext() });
    const error = thrownBy(() => addLifeboatStacks(app, { config: parseConfig(raw, 'no vault'), deploy: 'vault', nag: false, code }));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([expect.stringMatching(/^vault: "-c deploy=vault" needs a vault section/)]);
    expect(stackNames(app)).toEqual([]);
  });

  it('refuses a deploy context that names no side', () => {
    const error = thrownBy(() => deployTargetFromContext(new App({ context: { deploy: 'prod' } })));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/CDK context "deploy"[\s\S]*must be one of all, source, vault/);
  });
});
