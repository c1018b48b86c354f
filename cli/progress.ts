/**
 * Byte progress for long operations: a live line with bytes, rate and ETA on a
 * terminal, and plain structured JSON lines otherwise (CI, pipes, log files).
 */
export interface ProgressReporter {
  update(done: number, total?: number): void;
  finish(message?: string): void;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function createProgress(label: string, stream: NodeJS.WriteStream = process.stderr, isTty = Boolean(stream.isTTY)): ProgressReporter {
  const started = Date.now();
  let lastLog = 0;
  let last = { done: 0, total: undefined as number | undefined };
  const line = (done: number, total?: number) => {
    const elapsed = Math.max(1, Date.now() - started);
    const rate = (done / elapsed) * 1000;
    const pct = total ? ` ${Math.min(100, (done / total) * 100).toFixed(0)}%` : '';
    const eta = total && rate > 0 && done < total ? ` ETA ${formatDuration(((total - done) / rate) * 1000)}` : '';
    return `${label}: ${formatBytes(done)}${total ? ` / ~${formatBytes(total)}` : ''}${pct} at ${formatBytes(rate)}/s${eta}`;
  };
  return {
    update(done, total) {
      last = { done, total };
      if (isTty) {
        stream.write(`\r\x1b[2K${line(done, total)}`);
      } else if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        stream.write(`${JSON.stringify({ level: 'INFO', message: 'progress', operation: label, bytes: done, totalBytes: total, elapsedMs: Date.now() - started })}\n`);
      }
    },
    finish(message) {
      if (isTty) stream.write(`\r\x1b[2K${message ?? line(last.done, last.total)}\n`);
      else if (message) stream.write(`${JSON.stringify({ level: 'INFO', message, operation: label, bytes: last.done, elapsedMs: Date.now() - started })}\n`);
    },
  };
}
