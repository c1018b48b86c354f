import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliClients } from '../../cli/context.ts';
import type { LifeboatConfig } from '../../functions/lib/config/schema.ts';

/** Issue 12, must-show 9: the CLI takes the region from the config when the environment has none. */
const saved = { AWS_REGION: process.env.AWS_REGION, AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION, AWS_CONFIG_FILE: process.env.AWS_CONFIG_FILE, AWS_PROFILE: process.env.AWS_PROFILE };
const dir = mkdtempSync(join(tmpdir(), 'lifeboat-cli-clients-'));
const config = { source: { region: 'eu-central-1' } } as LifeboatConfig;

beforeEach(() => {
  delete process.env.AWS_REGION;
  delete process.env.AWS_DEFAULT_REGION;
  delete process.env.AWS_PROFILE;
  process.env.AWS_CONFIG_FILE = join(dir, 'none');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('CLI clients', () => {
  it("use the config's source region when the environment names none", async () => {
    // Act
    const clients = cliClients(config);

    // Assess
    expect(await clients.s3.config.region()).toBe('eu-central-1');
    expect(await clients.kms.config.region()).toBe('eu-central-1');
    expect(await clients.keyringKms.config.region()).toBe('eu-central-1');
  });

  it("prefer the AWS profile's region over the config's", async () => {
    // Prepare
    writeFileSync(join(dir, 'config'), '[default]\nregion = ap-south-1\n');
    process.env.AWS_CONFIG_FILE = join(dir, 'config');

    // Act
    const clients = cliClients(config);

    // Assess
    expect(await clients.s3.config.region()).toBe('ap-south-1');
  });

  it("prefer the environment's region over the config's", async () => {
    // Prepare
    process.env.AWS_REGION = 'us-west-2';

    // Act
    const clients = cliClients(config);

    // Assess
    expect(await clients.s3.config.region()).toBe('us-west-2');
  });
});
