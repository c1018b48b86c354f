import { describe, expect, it } from 'vitest';
import { cdkArgs, cdkEnvironment, runChild } from '../../scripts/smoke-aws/cdk.ts';
import { environmentSecrets, redactCredentials, registerClientCredentials, SmokeOutput } from '../../scripts/smoke-aws/output.ts';
import { finalReport } from '../../scripts/smoke-aws/report.ts';

function capture() {
  const written: string[] = [];
  const output = new SmokeOutput((text) => written.push(text));
  return { output, text: () => written.join('') };
}

describe('smoke:aws output redaction', () => {
  it('never prints a secret it was told about, in its own lines or anywhere in a line', () => {
    // Prepare
    const { output, text } = capture();
    output.addSecret('s3cr3t-db-password');

    // Act
    output.line('connecting with s3cr3t-db-password to the database');
    output.line('{"password":"s3cr3t-db-password"}');

    // Assess
    expect(text()).not.toContain('s3cr3t-db-password');
    expect(text()).toContain('[REDACTED]');
  });

  it('masks anything shaped like an AWS credential and password assignments, known or not', () => {
    // Prepare
    const secretKey = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const token = 'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD';

    // Act
    const out = redactCredentials(`AKIAIOSFODNN7EXAMPLE aws_secret_access_key = ${secretKey} "SessionToken":"${token}" ASIAY34FZKBOKMUTVV7A`);
    const viaOutput = capture();
    viaOutput.output.line('PGPASSWORD=hunter22 psql postgres://admin:pa55word@db:5432/x');

    // Assess
    expect(out).not.toContain(secretKey);
    expect(out).not.toContain(token);
    expect(out).not.toContain('AKIAIOSFODNN7EXAMPLE');
    expect(out).not.toContain('ASIAY34FZKBOKMUTVV7A');
    expect(out).toContain('AKIAIOSF[REDACTED]');
    expect(viaOutput.text()).not.toMatch(/hunter22|pa55word/);
  });

  it('redacts a child process\'s output line by line, even when a secret is split across chunks', () => {
    // Prepare
    const { output, text } = capture();
    output.addSecret('split-across-chunks');
    const sink = output.childSink('  | ');

    // Act
    sink.write('first line\nvalue: split-acr');
    sink.write('oss-chunks\nlast line without newline');
    sink.end();

    // Assess
    expect(text()).toBe('  | first line\n  | value: [REDACTED]\n  | last line without newline\n');
  });

  it('redacts what a real child process prints (the way cdk output is shown)', async () => {
    // Prepare
    const { output, text } = capture();
    output.addSecret('child-secret-value');

    // Act
    const run = await runChild(process.execPath, ['-e', 'console.log("pw child-secret-value"); console.error("AKIAIOSFODNN7EXAMPLE")'], { cwd: process.cwd(), env: process.env, output, prefix: '> ' });

    // Assess
    expect(run.code).toBe(0);
    expect(text()).toContain('> pw [REDACTED]');
    expect(text()).not.toContain('child-secret-value');
    expect(text()).not.toContain('AKIAIOSFODNN7EXAMPLE');
  });

  it('registers the credentials an SDK client resolved, and the environment\'s', async () => {
    // Prepare
    const { output, text } = capture();
    const client = { config: { credentials: async () => ({ accessKeyId: 'AKIAEXAMPLEEXAMPLE12', secretAccessKey: 'resolved-secret-key', sessionToken: 'resolved-session-token' }) } };
    for (const s of environmentSecrets({ AWS_SECRET_ACCESS_KEY: 'env-secret-key', PGPASSWORD: 'env-pg-password', AWS_REGION: 'eu-west-1' })) output.addSecret(s);

    // Act
    await registerClientCredentials(output, client);
    output.line('resolved-secret-key resolved-session-token env-secret-key env-pg-password eu-west-1');

    // Assess
    expect(text()).toBe('[REDACTED] [REDACTED] [REDACTED] [REDACTED] eu-west-1\n');
  });
});

describe('smoke:aws cdk invocation', () => {
  it('deploys exactly the named stack, unattended, into its own cloud assembly, with its profile', () => {
    // Act
    const args = cdkArgs({ action: 'deploy', stacks: ['s-lifeboat-vault'], context: { config: 'work/c.json' }, profile: 'vault', outdir: 'work/cdk.out-vault', outputsFile: 'work/o.json' });

    // Assess
    expect(args).toEqual([
      'cdk', 'deploy', 's-lifeboat-vault', '--exclusively', '--no-notices', '--output', 'work/cdk.out-vault',
      '-c', 'config=work/c.json', '--profile', 'vault', '--require-approval', 'never', '--progress', 'events', '--outputs-file', 'work/o.json',
    ]);
  });

  it('destroys without a prompt, with the app it was deployed from', () => {
    // Act
    const args = cdkArgs({ action: 'destroy', stacks: ['s-smoke-fixture'], app: 'npx tsx scripts/smoke-aws/fixture-app.ts', outdir: 'work/out' });

    // Assess
    expect(args).toContain('--force');
    expect(args.slice(args.indexOf('--app'), args.indexOf('--app') + 2)).toEqual(['--app', 'npx tsx scripts/smoke-aws/fixture-app.ts']);
    expect(args).not.toContain('--require-approval');
  });

  it('keeps ambient credentials out of a child that uses a profile, so the vault never runs with production\'s', () => {
    // Prepare
    const env = { AWS_ACCESS_KEY_ID: 'AKIAPROD', AWS_SECRET_ACCESS_KEY: 'prod-secret', AWS_SESSION_TOKEN: 'prod-token', AWS_PROFILE: 'prod', PATH: 'bin-dir' };

    // Act
    const withProfile = cdkEnvironment(env, { profile: 'vault' });
    const ambient = cdkEnvironment(env, {});

    // Assess
    expect(Object.keys(withProfile).filter((k) => k.startsWith('AWS_'))).toEqual([]);
    expect(withProfile.PATH).toBe('bin-dir');
    expect(ambient.AWS_SECRET_ACCESS_KEY).toBe('prod-secret');
  });
});

describe('smoke:aws final table', () => {
  const check = (ok: boolean) => ({ name: 'a check', ok, detail: 'd' });
  const entry = (status: 'done' | 'kept' | 'left' | 'failed' | 'pending', final = false) => ({
    id: status,
    kind: 'k',
    description: `item ${status}`,
    order: 1,
    params: final ? { final: true } : {},
    seq: 1,
    status,
  });

  it('exits 0 only when every check passed and nothing but by-design leftovers remain', () => {
    // Act
    const clean = finalReport({ checks: [check(true)], cleanup: [entry('done'), entry('kept')], workDir: 'w' });
    const failedCheck = finalReport({ checks: [check(true), check(false)], cleanup: [entry('done')] });
    const leftBehind = finalReport({ checks: [check(true)], cleanup: [entry('left')], workDir: 'w' });
    const noChecks = finalReport({ checks: [], cleanup: [] });

    // Assess
    expect(clean.exitCode).toBe(0);
    expect(clean.lines.join('\n')).toMatch(/KEPT\s+item kept[\s\S]*npm run smoke:aws -- --cleanup w/);
    expect(failedCheck.exitCode).toBe(1);
    expect(failedCheck.lines.join('\n')).toMatch(/FAIL\s+a check/);
    expect(leftBehind.exitCode).toBe(1);
    expect(leftBehind.lines.join('\n')).toMatch(/Could not clean up 1 item/);
    expect(noChecks.exitCode).toBe(1);
  });

  it('exits with the signal\'s code when interrupted, and a cleanup-only run counts the cleanup alone', () => {
    // Act
    const interrupted = finalReport({ checks: [check(true)], cleanup: [entry('done')], interrupted: 'SIGTERM', interruptedExitCode: 143 });
    const cleanupOnly = finalReport({ checks: [], cleanup: [entry('done'), entry('kept', true)], cleanupOnly: true, workDir: 'w' });

    // Assess
    expect(interrupted.exitCode).toBe(143);
    expect(interrupted.lines.join('\n')).toMatch(/interrupted\s+SIGTERM/);
    expect(cleanupOnly.exitCode).toBe(0);
    expect(cleanupOnly.lines.join('\n')).not.toMatch(/--cleanup w/);
  });
});
