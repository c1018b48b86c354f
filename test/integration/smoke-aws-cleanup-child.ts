/**
 * A stand-in for `npm run smoke:aws` in the signal tests: it records three
 * resources in a journaled cleanup registry, says "ready", and waits to be
 * interrupted. Its cleanup actions append each entry's id to a log file.
 * Usage: node --import tsx smoke-aws-cleanup-child.ts <journal> <log> <mode>
 * mode `slow-cleanup` makes the last deletion take 30 s (to test abandoning).
 */
import { appendFileSync } from 'node:fs';
import { CleanupRegistry, runWithCleanup, SIGNAL_EXIT_CODES, sleep } from '../../scripts/smoke-aws/cleanup.ts';
import { finalReport } from '../../scripts/smoke-aws/report.ts';

const [journal, log, mode] = process.argv.slice(2) as [string, string, string];
const note = (id: string) => appendFileSync(log, `${id}\n`);
const registry = new CleanupRegistry({
  journalPath: journal,
  actions: {
    note: async (entry) => {
      if (mode === 'slow-cleanup' && entry.id === 'fixture-stack') await sleep(30_000);
      note(entry.id);
      return { status: 'done' };
    },
  },
  log: (line) => console.log(line),
});

const run = await runWithCleanup(
  registry,
  async (signal) => {
    registry.record({ id: 'fixture-stack', kind: 'note', order: 60, description: 'fixture stack' });
    registry.record({ id: 'source-stack', kind: 'note', order: 30, description: 'source stack' });
    registry.record({ id: 'execution', kind: 'note', order: 10, description: 'running execution' });
    console.log('ready');
    await sleep(600_000, signal);
  },
  {
    log: (line) => console.log(line),
    abandon: (signal) => {
      console.log('abandoned the cleanup');
      process.exit(SIGNAL_EXIT_CODES[signal] ?? 1);
    },
  },
);
const verdict = finalReport({ checks: [], cleanup: run.cleanup, interrupted: run.interrupted, interruptedExitCode: run.interrupted ? SIGNAL_EXIT_CODES[run.interrupted] : undefined });
for (const line of verdict.lines) console.log(line);
process.exit(verdict.exitCode);
