import type { CheckResult } from './checks.ts';
import type { CleanupEntry } from './cleanup.ts';

/**
 * The final table: every check with its verdict, then every cleanup entry
 * with what became of it, and the exit code. Non-zero whenever a check failed,
 * the run itself failed, or anything could not be cleaned up.
 */
export interface SmokeVerdict {
  readonly lines: string[];
  readonly exitCode: number;
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

export function finalReport(input: {
  checks: readonly CheckResult[];
  cleanup: readonly CleanupEntry[];
  runError?: string;
  interrupted?: string;
  /** Exit code for an interrupted run (130 for SIGINT, 143 for SIGTERM). */
  interruptedExitCode?: number;
  workDir?: string;
  /** `--cleanup`: no checks ran, only the cleanup counts. */
  cleanupOnly?: boolean;
}): SmokeVerdict {
  const lines: string[] = ['', '=== lifeboat smoke test: results ==='];
  const width = Math.min(70, Math.max(20, ...input.checks.map((c) => c.name.length)));
  if (input.checks.length === 0) lines.push(input.cleanupOnly ? '  (cleanup only)' : '  (no checks ran)');
  for (const c of input.checks) lines.push(`  ${c.ok ? 'PASS' : 'FAIL'}  ${pad(c.name, width)}  ${c.detail}`);
  if (input.runError) lines.push(`  FAIL  ${pad('the run itself', width)}  ${input.runError}`);
  if (input.interrupted) lines.push(`  FAIL  ${pad('interrupted', width)}  ${input.interrupted}: the run was stopped before it finished`);

  lines.push('', '=== cleanup ===');
  const leftovers = input.cleanup.filter((e) => e.status !== 'done' && e.status !== 'kept');
  const kept = input.cleanup.filter((e) => e.status === 'kept');
  for (const e of input.cleanup) {
    const word = { done: 'done', kept: 'KEPT', left: 'LEFT', failed: 'FAIL', pending: 'TODO' }[e.status];
    lines.push(`  ${word.padEnd(4)}  ${e.description}${e.detail ? `: ${e.detail}` : ''}`);
  }
  if (input.cleanup.length === 0) lines.push('  nothing was created');
  if (leftovers.length) {
    lines.push('', `Could not clean up ${leftovers.length} item(s), listed above as LEFT/FAIL/TODO.`);
  } else if (kept.length) {
    lines.push('', `Everything else is gone; ${kept.length} item(s) are KEPT by design, as noted above.`);
  } else {
    lines.push('', 'Everything this run created is gone (or scheduled for deletion, as noted).');
  }
  const retryable = [...leftovers, ...kept].some((e) => e.params.final !== true);
  if (retryable && input.workDir) lines.push(`Finish later (safe to repeat): npm run smoke:aws -- --cleanup ${input.workDir}`);
  const failedChecks = input.checks.filter((c) => !c.ok).length;
  const ok = failedChecks === 0 && !input.runError && !input.interrupted && leftovers.length === 0 && (input.cleanupOnly || input.checks.length > 0);
  lines.push(`${input.checks.length - failedChecks} passed, ${failedChecks} failed; cleanup ${leftovers.length ? `left ${leftovers.length}` : 'complete'}`);
  return { lines, exitCode: input.interrupted ? (input.interruptedExitCode ?? 130) : ok ? 0 : 1 };
}
