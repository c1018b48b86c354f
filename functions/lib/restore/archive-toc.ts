import { closeSync, openSync, readSync } from 'node:fs';
import { RestoreFailedError } from '../errors.ts';

/**
 * Reads the table of contents of a pg_dump custom-format archive: every entry
 * with its dump id, kind, schema, name, owner and the ids it depends on.
 *
 * `pg_restore --list` prints the same entries but not their dependencies, and
 * prints names unquoted, so a schema called "Audit Log" cannot be told apart
 * from its tag. A selective restore needs both to bring a table back with its
 * sequences, indexes, constraints, triggers, policies and grants, so lifeboat
 * reads the header itself. The layout is pg_dump's (pg_backup_archiver.c,
 * ReadHead and ReadToc; the custom format's extra per-entry field is its data
 * offset); archive versions 1.12 (PostgreSQL 9.5) to 1.16 (PostgreSQL 17 and 18)
 * are understood, and anything else is refused with a clear error.
 */
export interface TocEntry {
  dumpId: number;
  /** `TABLE`, `TABLE DATA`, `INDEX`, `FK CONSTRAINT`, `ACL`, ... */
  desc: string;
  /** Null for objects outside a schema (schemas themselves, extensions, ...). */
  namespace: string | null;
  /** The object's name; for constraints, triggers and policies `<table> <name>`; for ACLs and comments `<KIND> <name>`. */
  tag: string;
  owner: string | null;
  /** 1 none, 2 pre-data, 3 data, 4 post-data. */
  section: number;
  /** The entry's SQL (empty for data entries). */
  defn: string;
  dependencies: number[];
}

export interface ArchiveToc {
  version: string;
  database: string;
  /** The server pg_dump read, e.g. `16.4`. */
  serverVersion: string;
  pgDumpVersion: string;
  entries: TocEntry[];
}

const MIN_VERSION = [1, 12];
const MAX_VERSION = [1, 16];

const atLeast = (v: number[], major: number, minor: number) => v[0]! > major || (v[0] === major && v[1]! >= minor);

/** Reads bytes from a file on demand (the TOC is at the start; the data that follows is never read). */
class FileReader {
  private buffer = Buffer.alloc(0);
  private start = 0;
  private position = 0;
  constructor(private readonly fd: number, private readonly what: string) {}

  private fill(bytes: number): void {
    if (this.position + bytes <= this.start + this.buffer.length) return;
    const size = Math.max(bytes, 1024 * 1024);
    const chunk = Buffer.alloc(size);
    const read = readSync(this.fd, chunk, 0, size, this.position);
    if (read < bytes) throw new RestoreFailedError(`${this.what} ends inside its table of contents: it is truncated or not a pg_dump custom-format archive.`);
    this.buffer = chunk.subarray(0, read);
    this.start = this.position;
  }

  bytes(n: number): Buffer {
    this.fill(n);
    const offset = this.position - this.start;
    this.position += n;
    return this.buffer.subarray(offset, offset + n);
  }

  byte(): number {
    return this.bytes(1)[0]!;
  }
}

/** Parses the archive's header and table of contents. */
export function readArchiveToc(path: string, what: string): ArchiveToc {
  const fd = openSync(path, 'r');
  try {
    return parse(new FileReader(fd, what), what);
  } finally {
    closeSync(fd);
  }
}

function parse(r: FileReader, what: string): ArchiveToc {
  if (r.bytes(5).toString('latin1') !== 'PGDMP') throw new RestoreFailedError(`${what} is not a pg_dump custom-format archive (no PGDMP header).`);
  const version = [r.byte(), r.byte(), r.byte()];
  const label = version.join('.');
  if (!atLeast(version, MIN_VERSION[0]!, MIN_VERSION[1]!) || atLeast(version, MAX_VERSION[0]!, MAX_VERSION[1]! + 1)) {
    throw new RestoreFailedError(`${what} is a pg_dump archive of version ${label}, which lifeboat cannot read the contents of (it reads 1.12 to 1.16); a full restore still works.`);
  }
  const intSize = r.byte();
  const offSize = r.byte();
  const format = r.byte();
  if (format !== 1) throw new RestoreFailedError(`${what} is not in pg_dump's custom format (format ${format}).`);
  const readInt = (): number => {
    const negative = r.byte() !== 0;
    const bytes = r.bytes(intSize);
    let value = 0;
    for (let i = bytes.length - 1; i >= 0; i--) value = value * 256 + bytes[i]!;
    return negative ? -value : value;
  };
  const readStr = (): string | null => {
    const length = readInt();
    return length < 0 ? null : r.bytes(length).toString('utf8');
  };
  if (atLeast(version, 1, 15)) r.byte(); // compression algorithm
  else readInt(); // compression level
  for (let i = 0; i < 7; i++) readInt(); // creation time
  const database = readStr() ?? '';
  const serverVersion = readStr() ?? '';
  const pgDumpVersion = readStr() ?? '';

  const count = readInt();
  const entries: TocEntry[] = [];
  for (let i = 0; i < count; i++) {
    const dumpId = readInt();
    readInt(); // had dumper
    readStr(); // table oid
    readStr(); // oid
    const tag = readStr() ?? '';
    const desc = readStr() ?? '';
    const section = readInt();
    const defn = readStr() ?? '';
    readStr(); // drop statement
    readStr(); // copy statement
    const namespace = readStr();
    readStr(); // tablespace
    if (atLeast(version, 1, 14)) readStr(); // table access method
    if (atLeast(version, 1, 16)) readInt(); // relkind
    const owner = readStr();
    readStr(); // "false": tables WITH OIDS are gone
    const dependencies: number[] = [];
    for (let dep = readStr(); dep !== null; dep = readStr()) dependencies.push(Number(dep));
    // The custom format's extra field: where the entry's data is (a flag byte and the offset).
    r.byte();
    r.bytes(offSize);
    entries.push({ dumpId, desc, namespace: namespace === '' ? null : namespace, tag, owner, section, defn, dependencies });
  }
  return { version: label, database, serverVersion, pgDumpVersion, entries };
}
