/**
 * One invocation of the real dump Lambda handler (functions/dump/handler.ts),
 * alone in its own process, so its peak RSS and CPU time are its own.
 *
 * The benchmark bundles this file with esbuild the way the runner image does
 * (--bundle --packages=external) and runs it with plain node. Everything comes
 * from the environment, as in Lambda: BACKUP_BUCKET, BACKUP_PREFIX,
 * BACKUP_KMS_KEY_ARN, AWS_ENDPOINT_URL_S3 (the null S3 or moto),
 * AWS_ENDPOINT_URL (moto, for KMS), and BENCH_DUMP_EVENT (the task input).
 * The result is written as JSON to the file named by the first argument.
 *
 * Usage: node dump-child.mjs <result.json>
 */
import { writeFileSync } from 'node:fs';
import { constants as perf, PerformanceObserver } from 'node:perf_hooks';
import { handler } from '../../functions/dump/handler.ts';
import { localLambdaContext } from '../../functions/shared/lambda-context.ts';
import { cpuTimes, watchPeakRss } from './proc.ts';

export interface DumpChildResult {
  ok: boolean;
  error?: string;
  /** The handler's output (DumpTaskOutput). */
  output?: { backupId: string; manifestKey: string; rawBytes: number; storedBytes: number; sha256: string };
  /** Wall time of the handler invocation (module loading excluded). */
  wallMs: number;
  /** CPU of this Node.js process during the invocation. */
  nodeCpuMs: number;
  /** CPU of pg_dump (reaped by this process). */
  pgDumpCpuMs: number;
  /** process.resourceUsage().maxRSS at exit, in KiB: the handler process's peak RSS. */
  maxRssKiB: number;
  /** VmHWM of this process, polled (should agree with maxRssKiB). */
  vmHwmKiB: number;
  /** pg_dump's own peak RSS (a separate process; Lambda counts it too). */
  pgDumpPeakRssKiB: number;
  /** Peaks of process.memoryUsage() fields, sampled every 100 ms, in bytes. */
  memoryPeaks: { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
  /** RSS right before the invocation (runtime + modules loaded), in bytes. */
  rssBeforeInvoke: number;
  /** Garbage-collection pauses during the invocation (main thread), and how many were full (mark-compact) collections. */
  gcPauseMs: number;
  majorGcs: number;
}

const resultPath = process.argv[2];
if (!resultPath) {
  console.error('usage: dump-child <result.json>');
  process.exit(2);
}

const peaks = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
const sampleMemory = () => {
  const m = process.memoryUsage();
  for (const k of Object.keys(peaks) as (keyof typeof peaks)[]) peaks[k] = Math.max(peaks[k], m[k]);
};

let gcPauseMs = 0;
let majorGcs = 0;
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcPauseMs += entry.duration;
    if ((entry as { detail?: { kind?: number } }).detail?.kind === perf.NODE_PERFORMANCE_GC_MAJOR) majorGcs++;
  }
});

let result: DumpChildResult;
const rssBeforeInvoke = process.memoryUsage().rss;
gcObserver.observe({ entryTypes: ['gc'] });
const sampler = setInterval(sampleMemory, 100);
const watcher = watchPeakRss('self', 50, ['pg_dump']);
const cpuBefore = process.cpuUsage();
const childrenBefore = cpuTimes().childrenMs;
const started = performance.now();
try {
  const event = JSON.parse(process.env.BENCH_DUMP_EVENT ?? '{}') as unknown;
  const output = (await handler(event as never, localLambdaContext('lifeboat-bench-dump'))) as DumpChildResult['output'];
  result = { ok: true, output } as DumpChildResult;
} catch (error) {
  result = { ok: false, error: `${(error as Error).name}: ${(error as Error).message}` } as DumpChildResult;
}
const wallMs = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
// GC entries are delivered asynchronously.
await new Promise((resolve) => setImmediate(resolve));
gcObserver.disconnect();
clearInterval(sampler);
sampleMemory();
const watched = watcher.stop();
Object.assign(result, {
  wallMs,
  nodeCpuMs: (cpu.user + cpu.system) / 1000,
  pgDumpCpuMs: cpuTimes().childrenMs - childrenBefore,
  maxRssKiB: process.resourceUsage().maxRSS,
  vmHwmKiB: watched.selfKiB,
  pgDumpPeakRssKiB: watched.childrenKiB.pg_dump ?? 0,
  memoryPeaks: peaks,
  rssBeforeInvoke,
  gcPauseMs,
  majorGcs,
});
writeFileSync(resultPath, JSON.stringify(result));
// Keep-alive sockets would hold the event loop open; the work is done.
process.exit(0);
