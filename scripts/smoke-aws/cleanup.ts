import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The smoke test's cleanup registry. Everything the run creates is recorded
 * here *before* it is created (a stack being deployed, a key, an execution),
 * in a journal file written synchronously, so cleanup knows about it whether
 * the run succeeds, fails, is interrupted, or dies and is resumed with
 * `--cleanup <work dir>`.
 *
 * - Entries run in `order` (lower first); entries of equal order run newest first.
 * - Every action is idempotent ("already gone" is success), and an entry that
 *   finished is never run again, so cleanup can be repeated safely.
 * - A failing entry does not stop the others; it stays `failed` (or `left`,
 *   when the action knows it cannot be deleted yet, or `kept` when that is by
 *   design, e.g. objects under Object Lock) and is retried next time.
 * - Entries hold ids and names only, never credentials or passwords.
 */
export type CleanupStatus = 'pending' | 'done' | 'kept' | 'left' | 'failed';

export interface CleanupEntry {
  readonly id: string;
  readonly kind: string;
  readonly description: string;
  readonly order: number;
  readonly params: Record<string, unknown>;
  readonly seq: number;
  status: CleanupStatus;
  detail?: string;
}

/**
 * What an action reports: deleted (or already gone); kept by design (Object
 * Lock, RETAIN), with when and how it can go; or left behind although it
 * should not be, with the reason and what to do.
 */
export interface CleanupOutcome {
  readonly status: 'done' | 'kept' | 'left';
  readonly detail?: string;
  /** Entries discovered while cleaning up (e.g. retained buckets found before a stack is destroyed). */
  readonly discovered?: readonly NewCleanupEntry[];
}

export type CleanupAction = (entry: CleanupEntry) => Promise<CleanupOutcome>;

export interface NewCleanupEntry {
  readonly id: string;
  readonly kind: string;
  readonly description: string;
  readonly order: number;
  readonly params?: Record<string, unknown>;
}

interface Journal {
  readonly version: 1;
  readonly meta: Record<string, unknown>;
  readonly entries: CleanupEntry[];
}

export interface CleanupRegistryOptions {
  /** Kind → action. A kind without an action fails its entries (naming the kind). */
  readonly actions: Readonly<Record<string, CleanupAction>>;
  /** Journal file, rewritten after every change. @default - none (tests) */
  readonly journalPath?: string;
  /** Facts the resumed cleanup needs (profiles, regions, names; never credentials). */
  readonly meta?: Record<string, unknown>;
  readonly log?: (line: string) => void;
}

export class CleanupRegistry {
  readonly #actions: Readonly<Record<string, CleanupAction>>;
  readonly #journalPath?: string;
  readonly #log: (line: string) => void;
  readonly #entries: CleanupEntry[] = [];
  #meta: Record<string, unknown>;
  #seq = 0;
  #running?: Promise<CleanupEntry[]>;

  constructor(options: CleanupRegistryOptions, entries: readonly CleanupEntry[] = []) {
    this.#actions = options.actions;
    this.#journalPath = options.journalPath;
    this.#log = options.log ?? (() => {});
    this.#meta = { ...options.meta };
    for (const e of entries) {
      this.#entries.push({ ...e });
      this.#seq = Math.max(this.#seq, e.seq);
    }
  }

  /** A registry continued from a journal file (for `--cleanup <work dir>`). */
  static load(journalPath: string, options: Omit<CleanupRegistryOptions, 'journalPath' | 'meta'>): CleanupRegistry {
    const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as Journal;
    if (journal.version !== 1 || !Array.isArray(journal.entries)) throw new Error(`${journalPath} is not a smoke-test cleanup journal`);
    return new CleanupRegistry({ ...options, journalPath, meta: journal.meta }, journal.entries);
  }

  get meta(): Readonly<Record<string, unknown>> {
    return this.#meta;
  }

  setMeta(values: Record<string, unknown>): void {
    this.#meta = { ...this.#meta, ...values };
    this.#persist();
  }

  /** Records something about to be created. Recording the same id again keeps one entry (params updated). */
  record(entry: NewCleanupEntry): CleanupEntry {
    const existing = this.#entries.find((e) => e.id === entry.id);
    if (existing) {
      Object.assign(existing, { params: { ...existing.params, ...entry.params } });
      if (existing.status === 'done') existing.status = 'pending';
      this.#persist();
      return existing;
    }
    const created: CleanupEntry = { params: {}, ...entry, seq: ++this.#seq, status: 'pending' };
    this.#entries.push(created);
    this.#persist();
    return created;
  }

  /** Marks an entry as needing no cleanup (e.g. an execution that ended on its own). */
  resolve(id: string, detail?: string): void {
    const entry = this.#entries.find((e) => e.id === id);
    if (!entry) return;
    entry.status = 'done';
    entry.detail = detail;
    this.#persist();
  }

  entries(): readonly CleanupEntry[] {
    return this.#entries;
  }

  /** True when nothing is pending, failed, left or kept. */
  get clean(): boolean {
    return this.#entries.every((e) => e.status === 'done');
  }

  /** Entries that did not go although they should have (pending, failed, left); `kept` ones are by design. */
  problems(): CleanupEntry[] {
    return this.#entries.filter((e) => e.status !== 'done' && e.status !== 'kept');
  }

  /** The entries in the order cleanup runs them. */
  plannedOrder(): CleanupEntry[] {
    return [...this.#entries].sort((a, b) => a.order - b.order || b.seq - a.seq);
  }

  /**
   * Runs every entry that is not done, in order. Calls made while a run is in
   * progress share it; a later call retries what failed or was left.
   */
  runAll(): Promise<CleanupEntry[]> {
    this.#running ??= this.#runOnce().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #runOnce(): Promise<CleanupEntry[]> {
    const ran = new Set<string>();
    for (;;) {
      // Entries discovered during cleanup join the queue in their place.
      const next = this.plannedOrder().find((e) => e.status !== 'done' && !ran.has(e.id));
      if (!next) break;
      ran.add(next.id);
      const action = this.#actions[next.kind];
      this.#log(`cleanup: ${next.description}`);
      try {
        if (!action) throw new Error(`no cleanup action for "${next.kind}"`);
        const outcome = await action(next);
        next.status = outcome.status;
        next.detail = outcome.detail;
        for (const found of outcome.discovered ?? []) this.record(found);
      } catch (error) {
        next.status = 'failed';
        next.detail = `${(error as Error).name}: ${(error as Error).message}`;
      }
      this.#log(`cleanup: ${next.description}: ${next.status}${next.detail ? ` (${next.detail})` : ''}`);
      this.#persist();
    }
    // Copies: what this run ended with, unchanged by later runs.
    return this.plannedOrder().map((e) => ({ ...e }));
  }

  #persist(): void {
    if (!this.#journalPath) return;
    mkdirSync(dirname(this.#journalPath), { recursive: true });
    const journal: Journal = { version: 1, meta: this.#meta, entries: this.#entries };
    // Write-then-rename: a journal is never half written, even if the process dies.
    const tmp = `${this.#journalPath}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(journal, null, 2)}\n`);
    renameSync(tmp, this.#journalPath);
  }
}

/** Thrown into the main flow when the operator interrupts the run. */
export class InterruptedError extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'InterruptedError';
  }
}

export const SIGNAL_EXIT_CODES: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143 };

export interface RunWithCleanupOptions {
  readonly log: (line: string) => void;
  /** Called when a second signal abandons cleanup; must end the process. */
  readonly abandon: (signal: NodeJS.Signals) => void;
  /** A repeat of the same signal this soon counts as the same one (a terminal and a wrapper may both deliver it). @default 1500 */
  readonly repeatWindowMs?: number;
}

export interface RunWithCleanupResult<T> {
  readonly result?: T;
  readonly error?: unknown;
  readonly interrupted?: NodeJS.Signals;
  readonly cleanup: CleanupEntry[];
}

/**
 * Runs `main`, then the registry's cleanup, whatever happened: success, an
 * error, or SIGINT/SIGTERM (which aborts `main` through its signal, so waits
 * end at once; work that must not be cut short, such as a running
 * `cdk deploy`, finishes first). A second signal during cleanup abandons it
 * through `abandon`, leaving the journal for `--cleanup`.
 */
export async function runWithCleanup<T>(registry: CleanupRegistry, main: (signal: AbortSignal) => Promise<T>, options: RunWithCleanupOptions): Promise<RunWithCleanupResult<T>> {
  const controller = new AbortController();
  let interrupted: NodeJS.Signals | undefined;
  let firstAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (!interrupted) {
      interrupted = signal;
      firstAt = now;
      options.log(`\n${signal}: stopping, then cleaning up everything this run created. Press Ctrl-C again to abandon the cleanup.`);
      controller.abort(new InterruptedError(signal));
      return;
    }
    if (now - firstAt < (options.repeatWindowMs ?? 1500)) return;
    options.abandon(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    let result: T | undefined;
    let error: unknown;
    try {
      result = await main(controller.signal);
    } catch (caught) {
      error = caught;
    }
    const cleanup = await registry.runAll();
    return { result, error, interrupted, cleanup };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Resolves after `ms`, or rejects with the abort reason as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
