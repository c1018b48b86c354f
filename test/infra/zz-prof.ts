import { App } from 'aws-cdk-lib';
import { readFileSync } from 'node:fs';
import { addLifeboatStacks } from '../../infra/lifeboat-app.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
const ctx = JSON.parse(readFileSync('/work/main/cdk.json','utf8')).context;
let t0 = Date.now();
const app = new App({ context: ctx, outdir: '/tmp/lbfx/out2' });
const config = parseConfig(JSON.parse(readFileSync('/work/main/lifeboat.config.example.json','utf8')));
addLifeboatStacks(app, { config, nag: process.argv[2]==='nag', code: {
  dump: { kind: 'image', directory: '/tmp/lbfx/img', cmd: ['functions/dump/handler.handler'] },
  alert: process.argv[3]==='pre' ? {kind:'prebuilt', code: (await import('aws-cdk-lib/aws-lambda')).Code.fromInline('x'), handler:'index.handler'} : { kind: 'nodejs', entry: '/work/main/test/infra/zz-fixture/alert.ts', projectRoot: '/work/main' },
}});
console.log('construct ms', Date.now() - t0); t0=Date.now();
app.synth();
console.log('synth ms', Date.now() - t0);
