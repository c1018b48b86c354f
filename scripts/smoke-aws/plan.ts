import { sourceStackName } from '../../infra/source-stack.ts';
import { vaultNames } from '../../functions/lib/vault/names.ts';
import { VAULT_RETENTION_DAYS } from './config.ts';
import { fixtureStackName } from './fixture-stack.ts';
import type { SmokeOptions } from './options.ts';

/**
 * What the smoke test will create and roughly what it costs, printed before
 * anything is created. Prices are rough on-demand list prices (us-east-1 /
 * eu-west-1, 2025) for orientation only; your region and agreements differ.
 */
export interface CostLine {
  readonly item: string;
  readonly hourly?: number;
  readonly once?: number;
  readonly note: string;
}

export const EXPECTED_HOURS = 2;

export function costLines(): CostLine[] {
  return [
    { item: 'RDS db.t4g.micro + 20 GiB gp3 (the database)', hourly: 0.02, note: 'about 2-3 h' },
    { item: 'RDS db.t4g.micro (the drill throwaway)', hourly: 0.02, note: 'about 30 min' },
    { item: 'NAT gateway', hourly: 0.05, note: 'plus $0.045/GB, a few MB here' },
    { item: 'KMS keys (3 source, 3 vault, 1 snapshot copy)', hourly: 7 * (1 / 730), once: 0, note: '$1/month each, prorated; scheduled for deletion after 7 days' },
    { item: 'Lambda, Step Functions, S3, SNS, SQS, Secrets Manager, CloudWatch', once: 0.1, note: 'cents' },
    { item: 'RDS snapshots, cross-region copy transfer', once: 0.05, note: 'a tiny database' },
    { item: 'Vault objects under Object Lock', once: 0.01, note: `kept ${VAULT_RETENTION_DAYS} day (compliance mode)` },
  ];
}

export function estimatedCost(hours: number = EXPECTED_HOURS): number {
  return costLines().reduce((sum, l) => sum + (l.hourly ?? 0) * hours + (l.once ?? 0), 0);
}

export interface PlanAccounts {
  readonly sourceAccount: string;
  readonly vaultAccount: string;
}

export function describePlan(options: SmokeOptions, accounts: PlanAccounts): string[] {
  const { name } = options;
  const vault = vaultNames({ name, vault: { account: accounts.vaultAccount, region: options.vault.region } });
  const lines = [
    `lifeboat smoke test "${name}"`,
    `  production (source): account ${accounts.sourceAccount}, ${options.source.region}, credentials: ${options.source.credentialSource}`,
    `  vault:               account ${accounts.vaultAccount}, ${options.vault.region}, credentials: ${options.vault.credentialSource}`,
    '',
    'It will create:',
    `  in ${accounts.sourceAccount} / ${options.source.region}:`,
    `    - stack ${fixtureStackName(name)}: a VPC (2 AZs, 1 NAT gateway), an encrypted RDS PostgreSQL ${options.engineMajor}`,
    `      (${name}-db: db.t4g.micro, gp3 20 GiB, no public access, no deletion protection, backups 1 day),`,
    '      its master secret, a second secret with a wrong password, sample data, and an SQS queue for alerts',
    `    - stack ${sourceStackName({ name })}: lifeboat's source stack (functions, state machines, schedules, topic, alarms, dashboards)`,
    '    - lifeboat\'s backups, snapshots, drill reports and audit logs; a drill throwaway RDS instance for ~30 min',
    `  in ${accounts.sourceAccount} / ${options.vault.region}: a KMS key for the snapshot copy (shared with the vault), the snapshot copy`,
    `  in ${accounts.vaultAccount} / ${options.vault.region}:`,
    `    - stack ${vault.stackName}: the vault bucket ${vault.bucketName} (Object Lock, compliance, ${VAULT_RETENTION_DAYS} day), its keys, the copier role`,
    '    - the vault copies of the dumps and snapshots',
    '',
    'It runs: backup twice (retention needs an older backup to prune), a failing backup of the "broken" database,',
    '  one drill, one retention run; then checks the outcomes and destroys everything it made.',
    '',
    'Rough cost (on-demand list prices; yours differ):',
  ];
  for (const l of costLines()) {
    const price = [l.hourly ? `$${l.hourly.toFixed(3)}/h` : '', l.once ? `$${l.once.toFixed(2)}` : ''].filter(Boolean).join(' + ');
    lines.push(`  - ${l.item}: ${price || 'see note'} (${l.note})`);
  }
  lines.push(
    `  => about $${estimatedCost().toFixed(2)} for a ${EXPECTED_HOURS}-hour run, plus the runner image in the CDK bootstrap repository (kept);`,
    `     worst case another $${(7 * 7 / 30).toFixed(2)} if the 7 keys are billed while pending deletion`,
    '',
    `Duration: about ${EXPECTED_HOURS} hours, up to 3-4 (snapshot copies, the drill instance, and the VPC waiting for Lambda's network interfaces on delete).`,
    `Left behind by design: the vault objects until their Object Lock ends (${VAULT_RETENTION_DAYS} day; run --cleanup <work dir> after that),`,
    '  KMS keys pending deletion for 7 days, and the stacks\' log groups (kept by RETAIN; see the final table).',
  );
  return lines;
}
