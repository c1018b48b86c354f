import { DeploymentConfig } from '../../functions/lib/config/deployment.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import type { LifeboatConfigInput } from '../../functions/lib/config/schema.ts';

type DatabaseInput = LifeboatConfigInput['databases'][number];

/**
 * A deployed config for handler-level tests: the given databases in one plan
 * "nightly", parsed by the real schema, as a function's config loader returns it.
 */
export function deployedConfig(databases: DatabaseInput[], extra: Partial<LifeboatConfigInput> = {}): () => Promise<DeploymentConfig> {
  const config = parseConfig(
    {
      name: 'test',
      source: { region: 'eu-west-1' },
      databases,
      plans: [{ id: 'nightly', schedule: { cron: 'cron(0 3 * * ? *)' }, databases: databases.map((d) => d.id), rpoMinutes: 1440, rtoMinutes: 60 }],
      ...extra,
    },
    'test config',
  );
  const deployed = new DeploymentConfig(config);
  return async () => deployed;
}
