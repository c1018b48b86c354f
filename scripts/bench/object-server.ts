/**
 * The stored objects of one backup, answered from memory by a loopback S3 in a
 * process of its own (scripts/bench/null-s3.ts), so that serving them does not
 * share a thread with the restore being measured: S3 is another machine, here
 * it is at least another process. Its CPU is counted as harness.
 *
 * Usage: node --import tsx object-server.ts <bucket> <key>=<file> [...]
 * Prints one JSON line, {"endpoint": "http://127.0.0.1:<port>"}, once it listens;
 * stops when its stdin closes.
 */
import { readFileSync } from 'node:fs';
import { startNullS3 } from './null-s3.ts';

const [bucket, ...objects] = process.argv.slice(2);
if (!bucket || objects.length === 0) {
  console.error('usage: object-server <bucket> <key>=<file> [...]');
  process.exit(2);
}
const server = await startNullS3();
for (const spec of objects) {
  const at = spec.lastIndexOf('=');
  server.serve(bucket, spec.slice(0, at), readFileSync(spec.slice(at + 1)));
}
process.stdout.write(`${JSON.stringify({ endpoint: server.endpoint })}\n`);
process.stdin.resume();
process.stdin.once('end', () => void server.stop().then(() => process.exit(0)));
