/** Captures everything written to stdout and stderr (logs, metrics) while `fn` runs. */
export async function capturingOutput<T>(fn: () => Promise<T>): Promise<{ result: T; output: string[] }> {
  const output: string[] = [];
  const original = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
  const tap = (stream: 'out' | 'err') =>
    ((chunk: unknown, ...rest: unknown[]) => {
      output.push(String(chunk));
      return (original[stream] as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stdout.write;
  process.stdout.write = tap('out');
  process.stderr.write = tap('err');
  try {
    return { result: await fn(), output };
  } finally {
    process.stdout.write = original.out;
    process.stderr.write = original.err;
  }
}
