import { pathToFileURL } from 'node:url';
import type { RetentionPolicy } from '../../functions/lib/config/schema.ts';
import { planRetention, type RetentionBackup } from '../../functions/lib/retention/planner.ts';

/**
 * Times the pure retention planner on 1k, 10k and 100k backups (one every 37
 * minutes, about 7 years for 100k, shuffled, a few drill-proven and locked) with a
 * policy that uses every rule. Each size is planned a few times after a warm-up;
 * the figure is the median.
 */
const POLICY: RetentionPolicy = { keepLast: 7, daily: 14, weekly: 8, monthly: 24, yearly: 10, minAgeDays: 1 };
const NOW = new Date('2026-11-21T09:36:00Z');
const TIME_ZONE = 'Pacific/Auckland';

/** Deterministic PRNG (mulberry32), so every run plans the same input. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function syntheticBackups(count: number, seed = 1): RetentionBackup[] {
  const random = prng(seed);
  const backups: RetentionBackup[] = [];
  for (let i = 0; i < count; i++) {
    const time = new Date(NOW.getTime() - i * 37 * 60_000);
    backups.push({
      id: `${time.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')}-${i.toString(16).padStart(6, '0')}`,
      time,
      location: 'source',
      verifiedByDrill: random() < 0.01,
      ...(random() < 0.001 ? { lockedUntil: new Date(NOW.getTime() + 86_400_000) } : {}),
    });
  }
  for (let i = backups.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [backups[i], backups[j]] = [backups[j]!, backups[i]!];
  }
  return backups;
}

export async function benchRetentionPlanner(
  sizes: readonly number[] = [1_000, 10_000, 100_000],
): Promise<{ backups: number; millis: number }[]> {
  const results: { backups: number; millis: number }[] = [];
  for (const size of sizes) {
    const input = syntheticBackups(size);
    planRetention(input, POLICY, NOW, TIME_ZONE); // warm-up
    const runs: number[] = [];
    for (let r = 0; r < 5; r++) {
      const start = performance.now();
      const decisions = planRetention(input, POLICY, NOW, TIME_ZONE);
      runs.push(performance.now() - start);
      if (decisions.length !== size) throw new Error(`planner returned ${decisions.length} decisions for ${size} backups`);
    }
    runs.sort((a, b) => a - b);
    results.push({ backups: size, millis: Math.round(runs[Math.floor(runs.length / 2)]! * 10) / 10 });
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const results = await benchRetentionPlanner();
  for (const r of results) console.log(`retention planner: ${String(r.backups).padStart(7)} backups in ${r.millis} ms`);
}
