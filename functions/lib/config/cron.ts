/**
 * The most times an EventBridge `cron(min hour day-of-month month day-of-week year)`
 * can fire in one day: the product of the values its minute and hour fields
 * allow. Day, month, weekday and year only ever remove days, so this is an
 * upper bound for every day, whatever the time zone.
 */
export function maxRunsPerDay(cron: string): number {
  const fields = cron.replace(/^cron\(|\)$/g, '').trim().split(/\s+/);
  if (fields.length !== 6) throw new Error(`${cron}: not an EventBridge cron(...) expression with six fields`);
  return valuesIn(fields[0]!, 0, 59, cron) * valuesIn(fields[1]!, 0, 23, cron);
}

/** How many values of [min, max] a cron field (`*`, `n`, `a-b`, `*\/s`, `a/s`, `a-b/s`, comma lists) selects. */
function valuesIn(field: string, min: number, max: number, cron: string): number {
  const selected = new Set<number>();
  for (const item of field.split(',')) {
    const match = /^(\*|\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(item);
    if (!match) throw new Error(`${cron}: cannot read the field "${field}"`);
    const [, start, end, step] = match;
    const from = start === '*' ? min : Number(start);
    const to = end !== undefined ? Number(end) : start === '*' || step !== undefined ? max : from;
    const by = step !== undefined ? Number(step) : 1;
    if (from < min || to > max || from > to || by < 1) throw new Error(`${cron}: "${item}" is outside ${min}-${max}`);
    for (let v = from; v <= to; v += by) selected.add(v);
  }
  return selected.size;
}
