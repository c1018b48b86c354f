import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

/**
 * What `npm run smoke:aws` needs to know: two AWS accounts (production and
 * vault, each with its credentials and region) and a few knobs. Flags win over
 * the environment; nothing is guessed that would pick an account for the user.
 */
export interface SmokeOptions {
  /** Deployment name (`config.name`): prefixes every stack and resource, so parallel runs never collide. */
  readonly name: string;
  readonly source: SideOptions;
  readonly vault: SideOptions;
  /** Major version of the RDS PostgreSQL instance the smoke creates. */
  readonly engineMajor: number;
  /** Longest wait for one execution (backup, drill, retention) before it counts as failed. */
  readonly executionTimeoutMinutes: number;
  /** Longest wait for the `backup-failed` alert to arrive in the queue. */
  readonly alertTimeoutMinutes: number;
  /** Skip the confirmation prompt. */
  readonly yes: boolean;
}

export interface SideOptions {
  /** AWS profile name; undefined means the ambient credentials (source only). */
  readonly profile?: string;
  readonly region: string;
  /** Where the credentials come from, for messages (never the credentials themselves). */
  readonly credentialSource: string;
}

export type ParsedInvocation =
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'error'; readonly messages: readonly string[] }
  | { readonly kind: 'run'; readonly options: SmokeOptions }
  | { readonly kind: 'cleanup'; readonly workDir: string };

export const DEFAULT_SOURCE_REGION = 'eu-west-1';
export const DEFAULT_VAULT_REGION = 'eu-central-1';
export const DEFAULT_ENGINE_MAJOR = 17;
export const SUPPORTED_ENGINE_MAJORS = [16, 17, 18] as const;

const REGION = /^[a-z]{2}(-gov)?-[a-z]+-\d$/;
/** Short enough for every derived name (RDS identifiers, bucket names, IAM role names). */
const NAME = /^[a-z][a-z0-9-]{2,19}$/;

export const SMOKE_USAGE = `npm run smoke:aws -- [options]

Deploys a minimal lifeboat (source stack + vault stack) into two real AWS
accounts with a tiny RDS PostgreSQL instance, runs backup, drill and retention
once each as their schedules would, checks the outcomes and the alerts, and
destroys everything it made, also on failure and on Ctrl-C. It costs real money
(roughly US$1 for a run of about two hours) and is never run in CI.

Accounts and regions (flags win over the environment):
  --source-profile <name>   AWS profile of the production (source) account
                            env LIFEBOAT_SMOKE_SOURCE_PROFILE; otherwise the ambient
                            credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and
                            AWS_SECRET_ACCESS_KEY)
  --vault-profile <name>    AWS profile of the vault account, a different account (required)
                            env LIFEBOAT_SMOKE_VAULT_PROFILE
  --source-region <region>  env LIFEBOAT_SMOKE_SOURCE_REGION, then AWS_REGION; default ${DEFAULT_SOURCE_REGION}
  --vault-region <region>   env LIFEBOAT_SMOKE_VAULT_REGION; default ${DEFAULT_VAULT_REGION}

Other options:
  --name <id>               deployment name, 3-20 of a-z 0-9 -; default smoke-<random>
  --engine-version <major>  PostgreSQL major of the RDS instance (${SUPPORTED_ENGINE_MAJORS.join(', ')}); default ${DEFAULT_ENGINE_MAJOR}
  --execution-timeout <min> longest wait for one execution; default 180
  --alert-timeout <min>     longest wait for the backup-failed alert; default 15
  --yes                     do not ask before creating resources
  --allow-ci                run even though CI is set in the environment
  --cleanup <work dir>      only clean up what an earlier run left behind (its work
                            dir is printed at the start and in the final table);
                            run it again after the vault's Object Lock retention ends
  --help                    this text

Prerequisites: both accounts bootstrapped for CDK (source region, vault region),
Docker able to build linux/arm64 images, and credentials valid for about three
hours. See docs/deployment.md, "Smoke test on real AWS".`;

function truthy(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

function positiveInt(raw: string | undefined, flag: string, fallback: number, problems: string[]): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    problems.push(`--${flag}: must be a whole number of minutes above 0, got "${raw}"`);
    return fallback;
  }
  return n;
}

/** Parses the command line and environment; never touches AWS or the network. */
export function parseSmokeInvocation(argv: readonly string[], env: NodeJS.ProcessEnv, random: () => string = () => randomBytes(3).toString('hex')): ParsedInvocation {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        'source-profile': { type: 'string' },
        'vault-profile': { type: 'string' },
        'source-region': { type: 'string' },
        'vault-region': { type: 'string' },
        name: { type: 'string' },
        'engine-version': { type: 'string' },
        'execution-timeout': { type: 'string' },
        'alert-timeout': { type: 'string' },
        yes: { type: 'boolean' },
        'allow-ci': { type: 'boolean' },
        cleanup: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    return { kind: 'error', messages: [`${(error as Error).message}. See --help.`] };
  }
  if (values.help) return { kind: 'help', text: SMOKE_USAGE };
  if (typeof values.cleanup === 'string') {
    if (!values.cleanup.trim()) return { kind: 'error', messages: ['--cleanup: give the work dir of the run to clean up'] };
    return { kind: 'cleanup', workDir: values.cleanup };
  }

  const problems: string[] = [];
  if (truthy(env.CI) && !values['allow-ci']) {
    problems.push('CI is set: npm run smoke:aws creates real, billed AWS resources and is meant to be run by a person before a release, not in CI (pass --allow-ci if you really mean it)');
  }

  const flag = (name: string) => values[name] as string | undefined;
  const sourceProfile = flag('source-profile') ?? env.LIFEBOAT_SMOKE_SOURCE_PROFILE;
  const vaultProfile = flag('vault-profile') ?? env.LIFEBOAT_SMOKE_VAULT_PROFILE;
  let sourceCredentials: string | undefined;
  if (sourceProfile) sourceCredentials = `profile "${sourceProfile}"`;
  else if (env.AWS_PROFILE) sourceCredentials = `AWS_PROFILE "${env.AWS_PROFILE}" (ambient)`;
  else if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) sourceCredentials = 'AWS_ACCESS_KEY_ID from the environment (ambient)';
  if (!sourceCredentials) {
    problems.push(
      'no credentials for the production (source) account: pass --source-profile <profile> (or set LIFEBOAT_SMOKE_SOURCE_PROFILE), or export AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
    );
  }
  if (!vaultProfile) {
    problems.push('no credentials for the vault account: pass --vault-profile <profile> (or set LIFEBOAT_SMOKE_VAULT_PROFILE); the vault must be a different AWS account from production');
  } else if (vaultProfile === (sourceProfile ?? env.AWS_PROFILE)) {
    problems.push(`--vault-profile: "${vaultProfile}" is also the source profile; the vault must be a different AWS account, with its own credentials`);
  }

  const sourceRegion = flag('source-region') ?? env.LIFEBOAT_SMOKE_SOURCE_REGION ?? env.AWS_REGION ?? DEFAULT_SOURCE_REGION;
  const vaultRegion = flag('vault-region') ?? env.LIFEBOAT_SMOKE_VAULT_REGION ?? DEFAULT_VAULT_REGION;
  if (!REGION.test(sourceRegion)) problems.push(`--source-region: "${sourceRegion}" is not an AWS region such as ${DEFAULT_SOURCE_REGION}`);
  if (!REGION.test(vaultRegion)) problems.push(`--vault-region: "${vaultRegion}" is not an AWS region such as ${DEFAULT_VAULT_REGION}`);

  const name = flag('name') ?? `smoke-${random()}`;
  if (!NAME.test(name)) problems.push(`--name: "${name}" must be 3-20 lowercase letters, digits and dashes, starting with a letter`);

  const rawMajor = flag('engine-version');
  const engineMajor = rawMajor === undefined ? DEFAULT_ENGINE_MAJOR : Number(rawMajor);
  if (!(SUPPORTED_ENGINE_MAJORS as readonly number[]).includes(engineMajor)) {
    problems.push(`--engine-version: "${rawMajor}" is not one of ${SUPPORTED_ENGINE_MAJORS.join(', ')} (the runner image's pg_restore must accept the restored server)`);
  }
  const executionTimeoutMinutes = positiveInt(flag('execution-timeout'), 'execution-timeout', 180, problems);
  const alertTimeoutMinutes = positiveInt(flag('alert-timeout'), 'alert-timeout', 15, problems);

  if (problems.length > 0) return { kind: 'error', messages: problems };
  return {
    kind: 'run',
    options: {
      name,
      source: { profile: sourceProfile, region: sourceRegion, credentialSource: sourceCredentials! },
      vault: { profile: vaultProfile!, region: vaultRegion, credentialSource: `profile "${vaultProfile}"` },
      engineMajor,
      executionTimeoutMinutes,
      alertTimeoutMinutes,
      yes: Boolean(values.yes),
    },
  };
}

/** The refusal a user sees: every problem, then where to read more. */
export function formatRefusal(messages: readonly string[]): string {
  return ['npm run smoke:aws refuses to start:', ...messages.map((m) => `  - ${m}`), '', 'Nothing was created. Run with --help for the options.'].join('\n');
}
