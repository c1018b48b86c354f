/**
 * The lifeboat CDK app with the vault's termination protection lifted (see
 * teardown-stacks.ts): `cdk deploy --app "npx tsx scripts/smoke-aws/teardown-app.ts"
 * -c config=<file> <name>-lifeboat-vault`, run by the smoke test's cleanup only.
 */
import { App } from 'aws-cdk-lib';
import { ConfigError } from '../../functions/lib/errors.ts';
import { deployTargetFromContext, drillRestoreStorageFromContext } from '../../infra/config.ts';
import { addLifeboatStacksForTeardown } from './teardown-stacks.ts';

const app = new App();
try {
  addLifeboatStacksForTeardown(app, { defaultAccount: process.env.CDK_DEFAULT_ACCOUNT, drillRestoreStorage: drillRestoreStorageFromContext(app), deploy: deployTargetFromContext(app) });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
app.synth();
