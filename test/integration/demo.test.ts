import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * `npm run demo` as a newcomer runs it: a child process (`tsx scripts/demo.ts`)
 * with its own TMPDIR, so everything it creates on disk, and every process that
 * works there, can be told apart from what the rest of the suite runs.
 */
const ROOT = new URL('../../', import.meta.url).pathname;
const TSX = join(ROOT, 'node_modules/.bin/tsx');

function runDemo(env: Record<string, string>): Promise<{ code: number; output: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(TSX, ['scripts/demo.ts'], { cwd: ROOT, env, timeout: 110_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}`, ms: Date.now() - started });
    });
  });
}

/** Command lines of every process on this machine, by pid. */
function processes(): Map<number, string> {
  const out = new Map<number, string>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      out.set(Number(pid), readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim());
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe('npm run demo', () => {
  it('runs the whole nightly cycle, passes every stage, and leaves nothing running', { timeout: 120_000 }, async () => {
    // Prepare: a private TMPDIR the demo's PostgreSQL clusters can enter (they run as the postgres user under root).
    const tmp = mkdtempSync(join(tmpdir(), 'lifeboat-demo-test-'));
    chmodSync(tmp, 0o755);
    const keep = ['PATH', 'HOME', 'LANG', 'LIFEBOAT_PG_BIN', 'LIFEBOAT_PG_OS_USER', 'LIFEBOAT_MOTO_SERVER'];
    const env = { ...Object.fromEntries(keep.filter((k) => process.env[k]).map((k) => [k, process.env[k]!])), TMPDIR: tmp, NO_COLOR: '1' };

    try {
      // Act
      const { code, output, ms } = await runDemo(env);

      // Assess: it passed, stage by stage, with the final verdict.
      expect(code, output).toBe(0);
      for (const stage of ['backup', 'vault copy', 'retention', 'drill', 'status']) expect(output).toMatch(new RegExp(`^PASS ${stage}: `, 'm'));
      expect(output).toMatch(/^Demo PASSED in \d+\.\ds: every stage of the nightly cycle did what it should/m);
      expect(output).toContain('[lifeboat] Backup failed: database legacy, plan nightly: DatabaseConnectionError');
      expect(output).toMatch(/KMS Decrypt requests from that process: .*the vault recovery key/);
      expect(output).toMatch(/DELETE {2}dump {6}\S+ +beyond policy/);
      expect(output).toMatch(/keep {4}dump {6}\S+ +under Object Lock until /);
      expect(output).toMatch(/Drill \S+ of database shop: PASSED/);
      expect(output).toMatch(/^ +RTO +[\d.]+s +target 1\.0h +met/m);
      expect(output).toMatch(/^ +legacy +FAILING/m);
      expect(output).not.toContain('not-the-password');
      expect(ms).toBeLessThan(120_000);

      // Assess: the status page it kept is the real one.
      const html = /lifeboat status --html: (\S+status\.html)/.exec(output)?.[1];
      expect(html && dirname(html).startsWith(tmp)).toBe(true);
      expect(readFileSync(html!, 'utf8')).toMatch(/<svg class="chart rto" data-database="shop" data-points="1"/);
      rmSync(dirname(html!), { recursive: true, force: true });

      // Assess: nothing left running. Other test files start their own clusters and servers meanwhile, so
      // the demo's are told apart: its PostgreSQL clusters live in its TMPDIR (`postgres -D <tmp>/...`), its
      // moto_server is the one on the port it printed, its CLI child restored into shop_from_vault.
      const motoPort = /moto_server on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1];
      expect(motoPort).toBeDefined();
      const left = [...processes().values()].filter((cmd) => cmd.includes(tmp) || (cmd.includes('moto_server') && cmd.includes(`-p ${motoPort}`)) || cmd.includes('shop_from_vault'));
      expect(left).toEqual([]);
      // ...and nothing left on disk: no cluster directories, drill registry or staged dumps (tsx keeps its cache there).
      expect(readdirSync(tmp).filter((name) => !/^tsx-\d+$/.test(name))).toEqual([]);
      expect(existsSync(html!)).toBe(false);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
