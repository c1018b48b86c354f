import type { Inventory } from '../backup/manifest.ts';
import { unpackSchemaLines } from '../pg/inventory.ts';
import { projectPrivilegeLines, type PrivilegesProjection } from '../pg/privileges.ts';

export interface ComparisonCheck {
  name: 'tables' | 'row counts' | 'sequences' | 'schema fingerprint' | 'large objects' | 'extensions' | 'owners and privileges';
  ok: boolean;
  detail: string;
  differences: string[];
}

/** The most schema lines a mismatch lists (each way); the count of the rest follows. */
export const MAX_SCHEMA_DIFFERENCES = 40;

/** Which objects differ, line by line, when the manifest holds its lines; else the two hashes. */
function schemaDifferences(expected: Inventory, actual: Inventory): string[] {
  const hashes = `schema fingerprint ${actual.schemaFingerprint.slice(0, 12)} differs from the manifest's ${expected.schemaFingerprint.slice(0, 12)}`;
  if (!expected.schemaLines || !actual.schemaLines) return [`${hashes} (this manifest does not hold the schema's lines, so the differing objects cannot be named)`];
  const want = new Set(unpackSchemaLines(expected.schemaLines));
  const got = new Set(unpackSchemaLines(actual.schemaLines));
  const listed = (lines: string[], how: string) => [
    ...lines.slice(0, MAX_SCHEMA_DIFFERENCES).map((l) => `${how}: ${l}`),
    ...(lines.length > MAX_SCHEMA_DIFFERENCES ? [`... and ${lines.length - MAX_SCHEMA_DIFFERENCES} more ${how}`] : []),
  ];
  return [
    hashes,
    ...listed([...want].filter((l) => !got.has(l)), 'in the backup, not in the restore'),
    ...listed([...got].filter((l) => !want.has(l)), 'in the restore, not in the backup'),
  ];
}

function listed(lines: string[], how: string): string[] {
  return [
    ...lines.slice(0, MAX_SCHEMA_DIFFERENCES).map((l) => `${how}: ${l.replace(/\t+/g, ' ')}`),
    ...(lines.length > MAX_SCHEMA_DIFFERENCES ? [`... and ${lines.length - MAX_SCHEMA_DIFFERENCES} more ${how}`] : []),
  ];
}

/**
 * Owners and ACLs as the manifest recorded them, against the restore's,
 * leaving out what the restore was asked not to bring (`keep`).
 */
export function comparePrivileges(expected: Inventory, actual: Inventory, keep: PrivilegesProjection): ComparisonCheck | undefined {
  if (!expected.privileges || !actual.privileges || (!keep.owners && !keep.acls)) return undefined;
  const want = projectPrivilegeLines(unpackSchemaLines(expected.privileges.lines), keep);
  const got = projectPrivilegeLines(unpackSchemaLines(actual.privileges.lines), keep);
  const gotSet = new Set(got);
  const wantSet = new Set(want);
  const missing = want.filter((l) => !gotSet.has(l));
  const extra = got.filter((l) => !wantSet.has(l));
  const kept = [keep.owners ? 'owners' : undefined, keep.acls ? 'ACLs and default privileges' : undefined].filter(Boolean).join(' and ');
  return {
    name: 'owners and privileges',
    ok: missing.length === 0 && extra.length === 0,
    detail: `${want.length} objects' ${kept}`,
    differences: [...listed(missing, 'in the backup, not in the restore'), ...listed(extra, 'in the restore, not in the backup')],
  };
}

const tableKey = (t: { schema: string; name: string }) => `${JSON.stringify(t.schema)}.${JSON.stringify(t.name)}`;

/**
 * Compares a restored database's inventory with the manifest's, check by check.
 * Sequences are not transactional and pg_dump reads them after the manifest did,
 * so a restored value may be ahead of the recorded one, never behind.
 */
export function compareInventories(expected: Inventory, actual: Inventory, keep: PrivilegesProjection = { owners: true, acls: true }): ComparisonCheck[] {
  const checks: ComparisonCheck[] = [];

  const expTables = new Map(expected.tables.map((t) => [tableKey(t), t]));
  const actTables = new Map(actual.tables.map((t) => [tableKey(t), t]));
  const missing = [...expTables.keys()].filter((k) => !actTables.has(k));
  const extra = [...actTables.keys()].filter((k) => !expTables.has(k));
  checks.push({
    name: 'tables',
    ok: missing.length === 0 && extra.length === 0,
    detail: `${expTables.size} expected, ${actTables.size} restored`,
    differences: [...missing.map((k) => `table ${k} is missing`), ...extra.map((k) => `table ${k} is not in the manifest`)],
  });

  const rowDiffs: string[] = [];
  let totalRows = 0;
  for (const [k, exp] of expTables) {
    totalRows += exp.rows;
    const act = actTables.get(k);
    if (act && act.rows !== exp.rows) rowDiffs.push(`table ${k} has ${act.rows} rows, the manifest says ${exp.rows}`);
  }
  checks.push({ name: 'row counts', ok: rowDiffs.length === 0, detail: `${totalRows} rows in ${expTables.size} tables`, differences: rowDiffs });

  const actSeqs = new Map(actual.sequences.map((s) => [tableKey(s), s]));
  const seqDiffs: string[] = [];
  for (const exp of expected.sequences) {
    const act = actSeqs.get(tableKey(exp));
    if (!act) {
      seqDiffs.push(`sequence ${tableKey(exp)} is missing`);
      continue;
    }
    const expNext = BigInt(exp.lastValue) + (exp.isCalled ? 1n : 0n);
    const actNext = BigInt(act.lastValue) + (act.isCalled ? 1n : 0n);
    if (actNext < expNext) {
      seqDiffs.push(`sequence ${tableKey(exp)} would next return ${actNext}, the manifest says ${expNext}: restored IDs could collide`);
    }
  }
  checks.push({ name: 'sequences', ok: seqDiffs.length === 0, detail: `${expected.sequences.length} sequences`, differences: seqDiffs });

  checks.push({
    name: 'schema fingerprint',
    ok: expected.schemaFingerprint === actual.schemaFingerprint,
    detail: expected.schemaFingerprint.slice(0, 12),
    differences: expected.schemaFingerprint === actual.schemaFingerprint ? [] : schemaDifferences(expected, actual),
  });

  checks.push({
    name: 'large objects',
    ok: expected.largeObjects === actual.largeObjects,
    detail: `${expected.largeObjects} large objects`,
    differences: expected.largeObjects === actual.largeObjects ? [] : [`${actual.largeObjects} large objects restored, the manifest says ${expected.largeObjects}`],
  });

  const missingExt = expected.extensions.filter((e) => !actual.extensions.includes(e));
  checks.push({
    name: 'extensions',
    ok: missingExt.length === 0,
    detail: expected.extensions.join(', ') || 'none',
    differences: missingExt.map((e) => `extension ${e} is missing`),
  });
  const privileges = comparePrivileges(expected, actual, keep);
  if (privileges) checks.push(privileges);
  return checks;
}

/** What a selective restore brought back (functions/lib/restore/selection.ts). */
export interface RestoredSelection {
  tables: readonly { schema: string; name: string }[];
  structureOnly: readonly { schema: string; name: string }[];
}

/**
 * Compares a selective restore with the manifest for exactly what was
 * restored: each chosen table is there with the manifest's row count, nothing
 * else is, every restored sequence is at or past its recorded value, and every
 * object and privilege in the restore is described the same way in the backup.
 */
export function compareSelection(expected: Inventory, actual: Inventory, selection: RestoredSelection, keep: PrivilegesProjection = { owners: true, acls: true }): ComparisonCheck[] {
  const checks: ComparisonCheck[] = [];
  const expTables = new Map(expected.tables.map((t) => [tableKey(t), t]));
  const chosen = new Set(selection.tables.map(tableKey));
  const allowed = new Set([...chosen, ...selection.structureOnly.map(tableKey)]);
  const actTables = new Map(actual.tables.map((t) => [tableKey(t), t]));
  const missing = [...chosen].filter((k) => expTables.has(k) && !actTables.has(k));
  const extra = [...actTables.keys()].filter((k) => !allowed.has(k) || !expTables.has(k));
  checks.push({
    name: 'tables',
    ok: missing.length === 0 && extra.length === 0,
    detail: `${chosen.size} chosen${selection.structureOnly.length ? `, ${selection.structureOnly.length} as structure only` : ''}`,
    differences: [...missing.map((k) => `table ${k} is missing`), ...extra.map((k) => `table ${k} was not chosen or is not in the manifest`)],
  });
  const rowDiffs: string[] = [];
  let rows = 0;
  for (const k of chosen) {
    const exp = expTables.get(k);
    const act = actTables.get(k);
    if (!exp || !act) continue;
    rows += exp.rows;
    if (act.rows !== exp.rows) rowDiffs.push(`table ${k} has ${act.rows} rows, the manifest says ${exp.rows}`);
  }
  checks.push({ name: 'row counts', ok: rowDiffs.length === 0, detail: `${rows} rows in the chosen tables`, differences: rowDiffs });

  const expSeqs = new Map(expected.sequences.map((s) => [tableKey(s), s]));
  const seqDiffs: string[] = [];
  for (const act of actual.sequences) {
    const exp = expSeqs.get(tableKey(act));
    if (!exp) {
      seqDiffs.push(`sequence ${tableKey(act)} is not in the manifest`);
      continue;
    }
    const next = (s: { lastValue: string; isCalled: boolean }) => BigInt(s.lastValue) + (s.isCalled ? 1n : 0n);
    if (next(act) < next(exp)) seqDiffs.push(`sequence ${tableKey(act)} would next return ${next(act)}, the manifest says ${next(exp)}: restored IDs could collide`);
  }
  checks.push({ name: 'sequences', ok: seqDiffs.length === 0, detail: `${actual.sequences.length} sequences restored`, differences: seqDiffs });

  const subset = (name: ComparisonCheck['name'], want: string[] | undefined, got: string[] | undefined, what: string): ComparisonCheck => {
    if (!want || !got) return { name, ok: true, detail: `not compared: this manifest does not hold the ${what} lines`, differences: [] };
    const backup = new Set(want);
    const differing = got.filter((l) => !backup.has(l));
    return { name, ok: differing.length === 0, detail: `${got.length} restored ${what} lines, each as in the backup`, differences: listed(differing, 'in the restore, not in the backup') };
  };
  checks.push(subset('schema fingerprint', expected.schemaLines ? unpackSchemaLines(expected.schemaLines) : undefined, actual.schemaLines ? unpackSchemaLines(actual.schemaLines) : undefined, 'schema'));
  if (expected.privileges && actual.privileges && (keep.owners || keep.acls)) {
    checks.push(
      subset(
        'owners and privileges',
        projectPrivilegeLines(unpackSchemaLines(expected.privileges.lines), keep),
        projectPrivilegeLines(unpackSchemaLines(actual.privileges.lines), keep),
        'ownership and privilege',
      ),
    );
  }
  const extraExt = actual.extensions.filter((e) => !expected.extensions.includes(e));
  checks.push({ name: 'extensions', ok: extraExt.length === 0, detail: actual.extensions.join(', ') || 'none', differences: extraExt.map((e) => `extension ${e} is not in the manifest`) });
  return checks;
}
