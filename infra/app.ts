/**
 * The CDK app (cdk.json: `npx tsx infra/app.ts`). Pick the config with
 * `cdk synth -c config=path/to/lifeboat.config.json`; the default is the
 * example config at the repo root. `-c deploy=vault` (vault-account
 * credentials) or `-c deploy=source` (production's) picks the side to deploy;
 * without it both are synthesized, for review (docs/deployment.md).
 */
import { App } from 'aws-cdk-lib';
import { ConfigError } from '../functions/lib/errors.ts';
import { deployTargetFromContext, drillRestoreStorageFromContext } from './config.ts';
import { addLifeboatStacks } from './lifeboat-app.ts';

const app = new App();
try {
  addLifeboatStacks(app, { defaultAccount: process.env.CDK_DEFAULT_ACCOUNT, drillRestoreStorage: drillRestoreStorageFromContext(app), deploy: deployTargetFromContext(app) });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  // The message names every bad field and the next step; a stack trace adds nothing.
  console.error(error.message);
  process.exit(1);
}
app.synth();
