/**
 * `npm run smoke:aws`: lifeboat on real AWS, before a release. Deploys a
 * minimal source and vault stack with a tiny RDS instance into two accounts,
 * runs backup, drill and retention as their schedules would, checks what they
 * left and the alerts, and destroys everything it made, also when a step
 * fails or on Ctrl-C. Never run in CI. See docs/deployment.md, "Smoke test on
 * real AWS", and `npm run smoke:aws -- --help`.
 */
import { fileURLToPath } from 'node:url';
import { formatRefusal, parseSmokeInvocation } from './smoke-aws/options.ts';
import { environmentSecrets, SmokeOutput } from './smoke-aws/output.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const output = new SmokeOutput();
for (const secret of environmentSecrets(process.env)) output.addSecret(secret);

const invocation = parseSmokeInvocation(process.argv.slice(2), process.env);
let code: number;
if (invocation.kind === 'help') {
  output.line(invocation.text);
  code = 0;
} else if (invocation.kind === 'error') {
  output.line(formatRefusal(invocation.messages));
  code = 2;
} else {
  // Loaded only now: --help and refusals need neither the SDK nor CDK.
  const { askOnTerminal, runCleanupOnly, runSmoke } = await import('./smoke-aws/run.ts');
  const io = {
    output,
    env: process.env,
    repoRoot: fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, ''),
    confirm: askOnTerminal,
    isInteractive: Boolean(process.stdin.isTTY && process.stdout.isTTY),
  };
  try {
    code = invocation.kind === 'cleanup' ? await runCleanupOnly(invocation.workDir, io) : await runSmoke(invocation.options, io);
  } catch (error) {
    output.line(`smoke:aws failed before its cleanup could take over: ${(error as Error).stack ?? String(error)}`);
    code = 1;
  }
}
process.exit(code);
