import { App } from 'aws-cdk-lib';
import { readFileSync } from 'node:fs';
import { addLifeboatStacks } from '../../infra/lifeboat-app.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { AwsSolutionsChecks } from 'cdk-nag';
const ctx = JSON.parse(readFileSync('/work/main/cdk.json','utf8')).context;
const t0 = Date.now();
const app = new App({ context: ctx, outdir: '/tmp/lbfx/out' });
const config = parseConfig(JSON.parse(readFileSync('/work/main/lifeboat.config.example.json','utf8')));
const { source } = addLifeboatStacks(app, { config, nag: false, code: {
  dump: { kind: 'image', directory: '/tmp/lbfx/img', cmd: ['functions/dump/handler.handler'] },
  alert: { kind: 'nodejs', entry: '/work/main/test/infra/zz-fixture/alert.ts', projectRoot: '/work/main' },
}});
app.synth();
console.log('synth ms', Date.now() - t0);
const pack = new AwsSolutionsChecks();
const r = pack.validateScope(app);
for (const v of r.violations) console.log(v.severity, v.ruleName, v.violatingResources.map(x=>x.constructPath).join(' , '));
