import { randomBytes } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * Pieces shared by the retention executors (S3 dumps, RDS/Aurora snapshots):
 * bounded parallelism, backoff with full jitter, run ids, the audit log writer
 * and its key layout, and the plain-text table of a plan.
 */

export interface PruneFailure {
  id: string;
  error: string;
}

/** What every executor reports for one database at one location. */
export interface PruneSummaryBase {
  runId: string;
  location: string;
  databaseId: string;
  dryRun: boolean;
  kept: number;
  /** Backups deleted (planned, in a dry run). */
  deleted: number;
  /** Deletions that failed; everything else proceeded. */
  failed: PruneFailure[];
  deletedIds: string[];
  /** Set when a real run had something to delete. */
  auditKey?: string;
}

export interface RetryOptions {
  /** Attempts per delete call (or DeleteObjects batch), on top of the SDK's own retries. @default 5 */
  attempts?: number;
  /** @default 200 */
  baseDelayMs?: number;
  /** @default 10_000 */
  maxDelayMs?: number;
  /** Injected in tests. */
  sleep?: (ms: number) => Promise<void>;
}

export function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Exponential backoff with full jitter before retry number `attempt` (1-based). */
export function backoff(attempt: number, retry: RetryOptions): number {
  const base = retry.baseDelayMs ?? 200;
  const cap = retry.maxDelayMs ?? 10_000;
  return Math.floor(Math.random() * Math.min(cap, base * 2 ** (attempt - 1)));
}

/**
 * Calls `fn` until it succeeds, `retryable(error)` says no, or the attempts are
 * used up; then throws the last error.
 */
export async function withRetry<T>(fn: () => Promise<T>, retryable: (error: unknown) => boolean, retry: RetryOptions): Promise<T> {
  const attempts = retry.attempts ?? 5;
  const sleep = retry.sleep ?? defaultSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || !retryable(error)) throw error;
      await sleep(backoff(attempt, retry));
    }
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** `<yyyymmddThhmmssZ>-<random>`: sorts by time. */
export function newRunId(at: Date): string {
  return `${at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')}-${randomBytes(4).toString('hex')}`;
}

function safeSegment(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, '_');
}

export interface AuditScope {
  /** Storage prefix (config `storage.prefix`); the default audit prefix is `<prefix>_audit/retention/`. */
  prefix: string;
  location: string;
  databaseId: string;
}

/** `<auditPrefix><yyyy>/<mm>/<dd>/<runId>.<location>.<databaseId>.jsonl` (UTC date of the run). */
export function auditKeyFor(scope: AuditScope, runId: string, at: Date, auditPrefix?: string): string {
  const p = auditPrefix ?? `${scope.prefix}_audit/retention/`;
  const yyyy = String(at.getUTCFullYear());
  const mm = String(at.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(at.getUTCDate()).padStart(2, '0');
  return `${p}${yyyy}/${mm}/${dd}/${safeSegment(runId)}.${safeSegment(scope.location)}.${safeSegment(scope.databaseId)}.jsonl`;
}

/** Where an executor writes its audit log: a bucket and the client allowed to write there. */
export interface AuditSink {
  s3: S3Client;
  bucket: string;
}

/** Writes (or overwrites) one audit log object: JSON lines, one per backup. */
export async function writeAuditLines(sink: AuditSink, key: string, lines: readonly object[]): Promise<void> {
  await sink.s3.send(
    new PutObjectCommand({
      Bucket: sink.bucket,
      Key: key,
      Body: lines.map((l) => JSON.stringify(l)).join('\n') + '\n',
      ContentType: 'application/x-ndjson',
    }),
  );
}

/** `yyyy-mm-dd hh:mm` on the wall clock of `timeZone`. */
export function wallClock(time: Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(time);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '??';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}`;
}

/** A plain-text table: padded columns, the last one left ragged. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: readonly string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}
