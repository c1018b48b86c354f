/**
 * CDK app of the smoke test's fixture (`cdk deploy --app "npx tsx scripts/smoke-aws/fixture-app.ts"
 * -c smokeFixture=<props.json>`). The smoke test writes the props file; see fixture-stack.ts.
 */
import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { addSmokeFixture, FIXTURE_CONTEXT_KEY, type SmokeFixtureProps } from './fixture-stack.ts';

const app = new App();
const file: unknown = app.node.tryGetContext(FIXTURE_CONTEXT_KEY);
if (typeof file !== 'string' || !file) {
  console.error(`The smoke fixture app needs -c ${FIXTURE_CONTEXT_KEY}=<props JSON file>; npm run smoke:aws writes it.`);
  process.exit(1);
}
addSmokeFixture(app, JSON.parse(readFileSync(file, 'utf8')) as SmokeFixtureProps);
app.synth();
