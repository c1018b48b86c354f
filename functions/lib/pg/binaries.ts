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

/**
 * The client majors lifeboat ships in the runner image, one directory each
 * (the Dockerfile's PG_MAJORS must list the same; test/infra/runner-image.test.ts
 * checks). pg_dump is chosen per server and pg_restore per target among them.
 */
export const SUPPORTED_CLIENT_MAJORS = [15, 16, 17, 18] as const;

/**
 * One layout for client installs everywhere: `<root>/<major>/bin`. The runner
 * image sets LIFEBOAT_PG_CLIENTS to /opt/postgresql; Debian and Ubuntu install
 * each major to /usr/lib/postgresql/<major>/bin.
 */
export const PG_CLIENTS_ENV = 'LIFEBOAT_PG_CLIENTS';
export const IMAGE_CLIENTS_ROOT = '/opt/postgresql';
const DEBIAN_ROOT = '/usr/lib/postgresql';

const CLIENTS_HINT =
  `install the PostgreSQL client of each major you back up (Debian: \`apt-get install postgresql-client-<major>\`), or set ${PG_CLIENTS_ENV} to a directory holding <major>/bin/{pg_dump,pg_restore} (the runner image uses ${IMAGE_CLIENTS_ROOT}), or LIFEBOAT_PG_BIN to one bin directory.`;

function majorDirs(root: string): string[] {
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() || d.isSymbolicLink())
      .map((d) => join(root, d.name, 'bin'))
      .sort();
  } catch {
    return [];
  }
}

/**
 * Every copy of a client tool lifeboat may choose from, best first. When
 * LIFEBOAT_PG_CLIENTS (roots of `<major>/bin`, separated like PATH) or
 * LIFEBOAT_PG_BIN (one bin directory) is set, only those are searched;
 * otherwise Debian's /usr/lib/postgresql/<major>/bin, then PATH. The major of
 * each is read from its --version, not from the directory name.
 */
export function clientBinaryCandidates(name: 'pg_dump' | 'pg_restore', env: NodeJS.ProcessEnv = process.env): string[] {
  const explicitRoots = (env[PG_CLIENTS_ENV] ?? '').split(delimiter).filter(Boolean);
  const explicitBin = env.LIFEBOAT_PG_BIN;
  const dirs =
    explicitRoots.length > 0 || explicitBin
      ? [...explicitRoots.flatMap(majorDirs), ...(explicitBin ? [explicitBin] : [])]
      : [...majorDirs(DEBIAN_ROOT), ...(env.PATH ?? '').split(delimiter).filter(Boolean)];
  const found = dirs.map((dir) => join(dir, name)).filter(isExecutable);
  return [...new Set(found)];
}

/** A MissingToolError for a client tool no candidate directory holds. */
export function missingClientError(name: 'pg_dump' | 'pg_restore'): MissingToolError {
  return new MissingToolError(`Required binary "${name}" was not found in any PostgreSQL client directory.`, { nextStep: CLIENTS_HINT });
}

/** Absolute path of a PostgreSQL binary, or a MissingToolError saying what to install. */
export function postgresBinary(name: 'pg_dump' | 'pg_restore' | 'initdb' | 'pg_ctl' | 'postgres' | 'psql' | 'pg_dumpall'): string {
  const dir = postgresBinDir();
  if (dir && isExecutable(join(dir, name))) return join(dir, name);
  const found = onPath(name);
  if (found) return found;
  throw new MissingToolError(`Required binary "${name}" was not found.`, { nextStep: POSTGRES_INSTALL_HINT });
}
