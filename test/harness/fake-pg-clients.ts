import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Fake PostgreSQL client installs for the client-selection tests: only
 * PostgreSQL 15 runs on this machine, so the other majors are small shell
 * scripts in `<root>/<major>/bin` (the layout of the runner image and of
 * Debian). Each prints `<tool> (PostgreSQL) <version>` for --version and
 * appends its argv to a log. With `wrap`, any other call execs the real
 * binary, so a dump or restore really happens; with `sendsTransactionTimeout`
 * the fake first sends `SET transaction_timeout = 0` to the target, as
 * pg_restore 17 and newer do, which PostgreSQL 16 and older reject.
 */
export type FakeTool = 'pg_dump' | 'pg_restore';

export interface FakeClientSpec {
  major: number;
  /** What --version reports; defaults to `<major>.90`, a minor no real release has. */
  version?: string;
  /** The directory name under the root; defaults to the major (a mismatch tests that --version decides). */
  dirName?: string;
  /** Real binaries to exec for anything but --version; without one the fake exits 3. */
  wrap?: Partial<Record<FakeTool, string>>;
  /** Imitate pg_restore 17+: send SET transaction_timeout = 0 (through this psql) before restoring into a database. */
  sendsTransactionTimeout?: { psql: string };
  /** Tools to leave out of this major's bin directory. */
  omit?: FakeTool[];
}

export interface FakeClients {
  root: string;
  /** Each call's argv (space-joined) of one tool of one major, in order. */
  calls(major: number, tool: FakeTool): string[];
  /** Calls other than --version. */
  work(major: number, tool: FakeTool): string[];
  cleanup(): void;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function script(tool: FakeTool, spec: FakeClientSpec, log: string): string {
  const version = spec.version ?? `${spec.major}.90`;
  const real = spec.wrap?.[tool];
  const lines = [
    '#!/bin/sh',
    `printf '%s\\n' "$*" >> ${quote(log)}`,
    `if [ "$1" = "--version" ]; then echo ${quote(`${tool} (PostgreSQL) ${version}`)}; exit 0; fi`,
  ];
  if (spec.sendsTransactionTimeout && tool === 'pg_restore') {
    // Only when restoring into a database (--list reads the archive alone).
    lines.push(
      'case " $* " in',
      `  *" --dbname="*) ${quote(spec.sendsTransactionTimeout.psql)} -X -q -v ON_ERROR_STOP=1 -c 'SET transaction_timeout = 0' >/dev/null || exit 1 ;;`,
      'esac',
    );
  }
  lines.push(real ? `exec ${quote(real)} "$@"` : `echo ${quote(`fake ${tool} ${version}: only --version is implemented`)} >&2; exit 3`);
  return `${lines.join('\n')}\n`;
}

export function createFakeClients(specs: FakeClientSpec[]): FakeClients {
  const root = mkdtempSync(join(tmpdir(), 'lifeboat-fake-pg-'));
  const logOf = (major: number, tool: FakeTool) => join(root, `${major}-${tool}.log`);
  for (const spec of specs) {
    const bin = join(root, spec.dirName ?? String(spec.major), 'bin');
    mkdirSync(bin, { recursive: true });
    for (const tool of ['pg_dump', 'pg_restore'] as const) {
      if (spec.omit?.includes(tool)) continue;
      const path = join(bin, tool);
      writeFileSync(path, script(tool, spec, logOf(spec.major, tool)));
      chmodSync(path, 0o755);
    }
  }
  const calls = (major: number, tool: FakeTool) => {
    const log = logOf(major, tool);
    return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
  };
  return {
    root,
    calls,
    work: (major, tool) => calls(major, tool).filter((c) => c !== '--version'),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}
