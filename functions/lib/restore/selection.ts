import { RestoreFailedError } from '../errors.ts';
import type { TocEntry } from './archive-toc.ts';

/**
 * Which entries of an archive a selective restore (`--schema`, `--table`)
 * runs, from the archive's own dependency graph:
 *
 * - the chosen tables (or every object of the chosen schemas) come back
 *   whole: definition, data, and everything attached to them (identity and
 *   serial sequences with their values, defaults, indexes, constraints,
 *   triggers, row security, policies, rules, comments, grants; partitions of
 *   a chosen partitioned table);
 * - whatever they need comes back as structure: their schema, types,
 *   functions (a trigger's, a default's), a partition's parent table, each
 *   with its grants and comment but without data;
 * - what also needs something that stays out (a foreign key to a table that
 *   is not restored) is left out and reported.
 *
 * pg_restore's own `--table` restores a table without its indexes,
 * constraints or sequences, which is not what an incident needs.
 */
export interface SelectionRequest {
  /** Schemas restored whole. */
  schemas: readonly string[];
  /** `schema.table` or `table` (when only one schema has it). */
  tables: readonly string[];
}

export interface Selection {
  /** Entry ids in archive order, for pg_restore --use-list. */
  ids: number[];
  /** Tables restored with their data, as `schema.name`. */
  tables: { schema: string; name: string }[];
  /** Tables restored as structure only (a chosen partition's parent), as `schema.name`. */
  structureOnly: { schema: string; name: string }[];
  /** Entries left out because they need something that is not restored, each with why. */
  leftOut: string[];
}

/** Kinds that belong to another object and come with it. */
const ATTACHED = new Set([
  'TABLE DATA', 'SEQUENCE', 'SEQUENCE OWNED BY', 'SEQUENCE SET', 'DEFAULT', 'CONSTRAINT', 'CHECK CONSTRAINT', 'FK CONSTRAINT',
  'INDEX', 'INDEX ATTACH', 'TRIGGER', 'ROW SECURITY', 'POLICY', 'RULE', 'ACL', 'COMMENT', 'SECURITY LABEL', 'STATISTICS',
  'TABLE ATTACH', 'MATERIALIZED VIEW DATA', 'TABLE',
]);
/** What comes with an object restored as structure only. */
const DESCRIBING = new Set(['ACL', 'COMMENT', 'SECURITY LABEL']);
/** Entries pg_restore needs to set up its session, kept in every selection. */
const SESSION = new Set(['ENCODING', 'STDSTRINGS', 'SEARCHPATH']);
const TABLE_KINDS = new Set(['TABLE', 'MATERIALIZED VIEW', 'FOREIGN TABLE', 'VIEW']);

const qualified = (e: TocEntry) => `${e.namespace ?? ''}.${e.tag}`;

/**
 * The object an attached entry belongs to: the table its tag names (a
 * foreign key's referencing table, not the referenced one), else the first
 * table among its dependencies (a trigger's table, not its function), else
 * the first sequence, else the first dependency (a schema's grant).
 */
function ownerOf(e: TocEntry, byId: ReadonlyMap<number, TocEntry>): number | undefined {
  const deps = e.dependencies.filter((d) => byId.has(d));
  const tables = deps.filter((d) => TABLE_KINDS.has(byId.get(d)!.desc));
  // Constraints, triggers, policies, rules and defaults are tagged `<table> <name>`: that table owns them.
  const named = tables.find((d) => byId.get(d)!.namespace === e.namespace && e.tag.startsWith(`${byId.get(d)!.tag} `));
  return named ?? tables[0] ?? deps.find((d) => byId.get(d)!.desc === 'SEQUENCE') ?? deps[0];
}

/** Finds the TABLE entries a `--table` value names, or a clear error. */
function matchTable(entries: readonly TocEntry[], wanted: string, where: string): TocEntry {
  const tables = entries.filter((e) => TABLE_KINDS.has(e.desc));
  const exact = tables.filter((e) => qualified(e) === wanted);
  const candidates = exact.length > 0 ? exact : tables.filter((e) => e.tag === wanted);
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length > 1) {
    throw new RestoreFailedError(`--table ${wanted} is ambiguous in ${where}: ${candidates.map(qualified).join(', ')}.`, { nextStep: 'name it with its schema, e.g. --table app.orders.' });
  }
  throw new RestoreFailedError(`${where} has no table ${wanted}.`, { nextStep: '`lifeboat restore --list` shows what the backup holds.' });
}

export function selectEntries(entries: readonly TocEntry[], request: SelectionRequest, where: string): Selection {
  const byId = new Map(entries.map((e) => [e.dumpId, e]));
  const full = new Set<number>();
  const structure = new Set<number>();
  const included = () => new Set([...full, ...structure]);

  for (const wanted of request.tables) full.add(matchTable(entries, wanted, where).dumpId);
  for (const schema of request.schemas) {
    const inSchema = entries.filter(
      (e) => (e.namespace === schema && (!ATTACHED.has(e.desc) || e.desc === 'TABLE' || e.desc === 'SEQUENCE')) || (e.desc === 'SCHEMA' && e.tag === schema),
    );
    if (inSchema.length === 0) throw new RestoreFailedError(`${where} has no schema ${schema}.`, { nextStep: '`lifeboat restore --list` shows what the backup holds.' });
    for (const e of inSchema) full.add(e.dumpId);
  }

  /** Brings what an entry needs: objects outside the attached kinds, as structure (sequences whole). */
  const needs = (e: TocEntry): number[] => e.dependencies.filter((d) => byId.has(d) && !full.has(d) && !structure.has(d));
  const closeOver = (id: number) => {
    const queue = [id];
    while (queue.length > 0) {
      const entry = byId.get(queue.pop()!)!;
      for (const dep of needs(entry)) {
        const d = byId.get(dep)!;
        if (ATTACHED.has(d.desc) && d.desc !== 'SEQUENCE' && d.desc !== 'TABLE') continue;
        if (d.desc === 'SEQUENCE') full.add(dep);
        else structure.add(dep);
        queue.push(dep);
      }
    }
  };
  for (const id of [...full]) closeOver(id);

  // Attach, to a fixpoint: an entry comes when it belongs to a restored object and everything else it needs is restored or can be.
  const waiting = new Set<number>();
  let changed = true;
  while (changed) {
    changed = false;
    const now = included();
    for (const e of entries) {
      if (now.has(e.dumpId) || !ATTACHED.has(e.desc)) continue;
      const owner = ownerOf(e, byId);
      if (owner === undefined) continue;
      const ownedByFull = full.has(owner) && (e.desc !== 'TABLE' || TABLE_KINDS.has(byId.get(owner)!.desc));
      const describesStructure = DESCRIBING.has(e.desc) && structure.has(owner);
      if (!ownedByFull && !describesStructure) continue;
      const blocked = e.dependencies.filter((d) => byId.has(d) && !now.has(d) && ATTACHED.has(byId.get(d)!.desc) && byId.get(d)!.desc !== 'SEQUENCE');
      if (blocked.length > 0) {
        waiting.add(e.dumpId);
        continue;
      }
      waiting.delete(e.dumpId);
      full.add(e.dumpId);
      closeOver(e.dumpId);
      changed = true;
    }
  }

  const chosen = included();
  const ids = entries.filter((e) => chosen.has(e.dumpId) || SESSION.has(e.desc)).map((e) => e.dumpId);
  const tableOf = (e: TocEntry) => ({ schema: e.namespace ?? '', name: e.tag });
  const withData = new Set(entries.filter((e) => (e.desc === 'TABLE DATA' || e.desc === 'MATERIALIZED VIEW DATA') && chosen.has(e.dumpId)).flatMap((e) => e.dependencies));
  const relation = (e: TocEntry) => (e.desc === 'TABLE' || e.desc === 'MATERIALIZED VIEW') && chosen.has(e.dumpId);
  return {
    ids,
    tables: entries.filter((e) => relation(e) && withData.has(e.dumpId)).map(tableOf),
    structureOnly: entries.filter((e) => relation(e) && !withData.has(e.dumpId)).map(tableOf),
    leftOut: [...waiting].map((id) => {
      const e = byId.get(id)!;
      const missing = e.dependencies.map((d) => byId.get(d)).filter((d): d is TocEntry => d !== undefined && !chosen.has(d.dumpId));
      return `${e.desc} ${e.namespace ? `${e.namespace}.` : ''}${e.tag}: needs ${missing.map((m) => `${m.desc} ${m.namespace ? `${m.namespace}.` : ''}${m.tag}`).join(', ')}, which is not restored`;
    }),
  };
}

/** The list file pg_restore --use-list reads: one `<id>;` line per entry, in archive order. */
export function useListFile(selection: Selection): string {
  return `${selection.ids.map((id) => `${id};`).join('\n')}\n`;
}
