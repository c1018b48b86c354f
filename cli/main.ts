import { parseArgs } from 'node:util';
import { LifeboatError, ConfigError, InterruptedError } from '../functions/lib/errors.ts';
import { redact } from '../functions/lib/redact.ts';
import { backupCommand, backupUsage } from './commands/backup.ts';
import { drillCommand, drillUsage } from './commands/drill.ts';
import { pruneCommand, pruneUsage } from './commands/prune.ts';
import { runCommand, runUsage } from './commands/run.ts';
import { statusCommand, statusUsage } from './commands/status.ts';
import { vaultScpCommand, vaultScpUsage } from './commands/vault-scp.ts';
import { backupsCommand, backupsUsage, restoreCommand, restoreUsage, verifyCommand, verifyUsage } from './commands/restore.ts';
import { recoverCommand, recoverUsage } from './commands/recover.ts';
import { pitrCommand, pitrUsage } from './commands/pitr.ts';

export interface CommandResult {
  json: unknown;
  text: string;
}

/** What every command gets besides its flags: a signal that fires on SIGINT/SIGTERM (clean up, then reject). */
export interface CommandContext {
  signal: AbortSignal;
}

type Command = (flags: Record<string, string | boolean | string[] | undefined>, positionals: string[], context: CommandContext) => Promise<CommandResult>;

/** `interruptible`: the command cleans up on SIGINT/SIGTERM itself; the others keep Node's default (exit at once). */
const commands: Record<string, { run: Command; usage: string; interruptible?: boolean }> = {
  backup: { run: backupCommand, usage: backupUsage },
  backups: { run: backupsCommand, usage: backupsUsage },
  verify: { run: verifyCommand, usage: verifyUsage },
  restore: { run: restoreCommand, usage: restoreUsage, interruptible: true },
  recover: { run: recoverCommand, usage: recoverUsage, interruptible: true },
  run: { run: runCommand, usage: runUsage },
  status: { run: statusCommand, usage: statusUsage },
  pitr: { run: pitrCommand, usage: pitrUsage },
  drill: { run: drillCommand, usage: drillUsage, interruptible: true },
  prune: { run: pruneCommand, usage: pruneUsage },
  'vault-scp': { run: vaultScpCommand, usage: vaultScpUsage },
};

const options = {
  config: { type: 'string' },
  database: { type: 'string' },
  plan: { type: 'string' },
  backup: { type: 'string' },
  manifest: { type: 'string' },
  bucket: { type: 'string' },
  prefix: { type: 'string' },
  'kms-key': { type: 'string' },
  target: { type: 'string' },
  create: { type: 'boolean' },
  jobs: { type: 'string' },
  json: { type: 'boolean' },
  'no-wait': { type: 'boolean' },
  'no-vault': { type: 'boolean' },
  html: { type: 'string' },
  'state-machine-arn': { type: 'string' },
  location: { type: 'string' },
  'dry-run': { type: 'boolean' },
  execute: { type: 'boolean' },
  'drop-on-mismatch': { type: 'boolean' },
  'no-owner': { type: 'boolean' },
  'no-privileges': { type: 'boolean' },
  'no-tablespaces': { type: 'boolean' },
  list: { type: 'boolean' },
  before: { type: 'string' },
  newest: { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  schema: { type: 'string', multiple: true },
  table: { type: 'string', multiple: true },
  uncommitted: { type: 'boolean' },
  'into-rds': { type: 'string' },
  'instance-class': { type: 'string' },
  'subnet-group': { type: 'string' },
  'security-group': { type: 'string', multiple: true },
  'storage-gib': { type: 'string' },
  'database-name': { type: 'string' },
  'wait-minutes': { type: 'string' },
  'poll-seconds': { type: 'string' },
  method: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function usage(): string {
  return ['Usage: lifeboat <command> [options]', '', ...Object.values(commands).map((c) => c.usage), '', 'AWS endpoints and credentials come from the standard AWS environment (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, ...).'].join('\n');
}

/** Runs the CLI; returns the exit code (0 ok, 1 operation failed, 2 usage or config error). */
export async function main(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    err.write(`lifeboat: ${(error as Error).message}\n\n${usage()}\n`);
    return 2;
  }
  const [name] = parsed.positionals;
  const command = name ? commands[name] : undefined;
  if (!command || parsed.values.help) {
    (command || parsed.values.help ? out : err).write(`${command ? command.usage : usage()}\n`);
    return command || parsed.values.help ? 0 : 2;
  }
  // Ctrl-C or a SIGTERM aborts the command, which cleans up what it made (plaintext, a created database) and
  // fails with InterruptedError; a second signal exits at once.
  const interrupt = new AbortController();
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => () => {
    if (interrupt.signal.aborted) process.exit(signal === 'SIGINT' ? 130 : 143);
    interrupt.abort(new InterruptedError(signal));
  };
  const handlers = { SIGINT: onSignal('SIGINT'), SIGTERM: onSignal('SIGTERM') };
  if (command.interruptible) {
    process.on('SIGINT', handlers.SIGINT);
    process.on('SIGTERM', handlers.SIGTERM);
  }
  try {
    const result = await command.run(parsed.values, parsed.positionals.slice(1), { signal: interrupt.signal });
    out.write(parsed.values.json ? `${JSON.stringify(result.json, null, 2)}\n` : `${result.text}\n`);
    return 0;
  } catch (error) {
    const e = error as Error & { printed?: boolean };
    // A verdict (status NOT SAFE) is a report, not an error: print it as is.
    if (e.printed) {
      out.write(`${e.message}\n`);
      return 1;
    }
    const kind = e instanceof LifeboatError ? e.name : 'Error';
    err.write(`lifeboat ${name}: ${kind}: ${redact(e.message, process.env.PGPASSWORD ? [process.env.PGPASSWORD] : [])}\n`);
    if (e instanceof InterruptedError) return e.signal === 'SIGINT' ? 130 : 143;
    return e instanceof ConfigError ? 2 : 1;
  } finally {
    process.off('SIGINT', handlers.SIGINT);
    process.off('SIGTERM', handlers.SIGTERM);
  }
}

const invokedDirectly = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly || process.env.LIFEBOAT_CLI_ENTRY === '1') {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // Interrupted: the command cleaned up what it made; work still pending in this process must not go on.
    if (code === 130 || code === 143) process.exit(code);
  });
}
