import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { MissingToolError } from '../errors.ts';

const POSTGRES_INSTALL_HINT =
  'install PostgreSQL server and client binaries (Debian: `apt-get install postgresql`), or set LIFEBOAT_PG_BIN to the directory that holds them.';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/**
 * Directory holding PostgreSQL binaries: LIFEBOAT_PG_BIN, else the newest
 * /usr/lib/postgresql/<major>/bin (Debian's layout keeps initdb off PATH), else PATH.
 */
export function postgresBinDir(): string | undefined {
  if (process.env.LIFEBOAT_PG_BIN) return process.env.LIFEBOAT_PG_BIN;
  try {
    const majors = readdirSync('/usr/lib/postgresql')
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a));
    for (const major of majors) {
      const dir = `/usr/lib/postgresql/${major}/bin`;
      if (isExecutable(join(dir, 'pg_dump'))) return dir;
    }
  } catch {
    // not a Debian layout; fall through to PATH
  }
  return undefined;
}

/** Absolute path of a PostgreSQL binary, or a MissingToolError saying what to install. */
export function postgresBinary(name: 'pg_dump' | 'pg_restore' | 'initdb' | 'pg_ctl' | 'postgres' | 'psql' | 'pg_dumpall'): string {
  const dir = postgresBinDir();
  if (dir && isExecutable(join(dir, name))) return join(dir, name);
  const found = onPath(name);
  if (found) return found;
  throw new MissingToolError(`Required binary "${name}" was not found.`, { nextStep: POSTGRES_INSTALL_HINT });
}
