import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliClients } from '../../cli/context.ts';
import type { LifeboatConfig } from '../../functions/lib/config/schema.ts';

/** Issue 12, must-show 9: the CLI takes the region from the config when the environment has none. */
const saved = { AWS_REGION: process.env.AWS_REGION, AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION };
const config = { source: { region: 'eu-central-1' } } as LifeboatConfig;

beforeEach(() => {
  delete process.env.AWS_REGION;
  delete process.env.AWS_DEFAULT_REGION;
});
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

  it("prefer the environment's region over the config's", async () => {
    // Prepare
    process.env.AWS_REGION = 'us-west-2';

    // Act
    const clients = cliClients(config);

    // Assess
    expect(await clients.s3.config.region()).toBe('us-west-2');
  });
});
