import { beforeAll, describe, expect, it } from 'vitest';
import { Template } from 'aws-cdk-lib/assertions';
import type { Stack } from 'aws-cdk-lib';
import { WATCHED_KEY_EVENTS } from '../../functions/alert/key-event.ts';
import { logicalIdOf, synthApp, type Synthesized } from './helpers/app.ts';
import { productionConfigJson } from './helpers/configs.ts';

/** The key watch of each stack: CloudTrail's KMS calls on the keys the backups depend on, to the stack's alert function. */
let synth: Synthesized;
beforeAll(() => {
  synth = synthApp({ config: productionConfigJson() });
}, 120_000);

type Rule = { Properties: { EventPattern: { source: string[]; 'detail-type': string[]; detail: { eventSource: string[]; eventName: string[]; resources: { ARN: unknown[] } } }; Targets: { Arn: unknown; DeadLetterConfig?: { Arn: unknown }; RetryPolicy?: unknown }[] } };

function keyRules(stack: Stack): Rule[] {
  const rules = Object.values(Template.fromStack(stack).findResources('AWS::Events::Rule')) as Rule[];
  return rules.filter((r) => r.Properties.EventPattern?.source?.includes('aws.kms'));
}

const arnOf = (stack: Stack, construct: Parameters<typeof logicalIdOf>[0]) => ({ 'Fn::GetAtt': [logicalIdOf(construct), 'Arn'] });

describe('the key watch', () => {
  it('sends the vault keys\' deletion, disabling and policy calls (and tries) to the vault\'s own alert function', () => {
    const vault = synth.vault!;
    const rules = keyRules(vault);
    expect(rules).toHaveLength(1);
    const { EventPattern: pattern, Targets: targets } = rules[0]!.Properties;
    expect(pattern).toMatchObject({ source: ['aws.kms'], 'detail-type': ['AWS API Call via CloudTrail'], detail: { eventSource: ['kms.amazonaws.com'] } });
    expect(pattern.detail.eventName).toEqual(expect.arrayContaining(['ScheduleKeyDeletion', 'DisableKey', 'PutKeyPolicy']));
    expect(pattern.detail.eventName).toEqual([...WATCHED_KEY_EVENTS]);
    // The three vault keys, and the alert topic's key (disabling it would silence every vault alert).
    expect(pattern.detail.resources.ARN).toEqual([arnOf(vault, vault.bucketKey), arnOf(vault, vault.snapshotKey), arnOf(vault, vault.recoveryKey), arnOf(vault, vault.alerts.key)]);
    expect(targets).toEqual([expect.objectContaining({ Arn: arnOf(vault, vault.alertFunction.function), DeadLetterConfig: { Arn: arnOf(vault, vault.alarmRouting.deadLetterQueue) } })]);
  });

  it('sends the source keys\' calls to the source stack\'s alert function', () => {
    const source = synth.stack;
    const rules = keyRules(source);
    expect(rules).toHaveLength(1);
    const { EventPattern: pattern, Targets: targets } = rules[0]!.Properties;
    expect(pattern.detail.eventName).toEqual([...WATCHED_KEY_EVENTS]);
    expect(pattern.detail.resources.ARN).toEqual([arnOf(source, source.storage.envelopeKey as never), arnOf(source, source.storage.bucketKey)]);
    expect(targets).toEqual([expect.objectContaining({ Arn: arnOf(source, source.alertFunction.function) })]);
  });
});

describe('the break-glass watch', () => {
  it("sends every assumption of the vault's break-glass role and named admins (and every refused try) to the vault's alert function", () => {
    // Prepare
    const vault = synth.vault!;
    const rules = (Object.values(Template.fromStack(vault).findResources('AWS::Events::Rule')) as { Properties: { EventPattern: { source?: string[] }; Targets: { Arn: unknown }[] } }[]).filter((r) =>
      r.Properties.EventPattern?.source?.includes('aws.sts'),
    );

    const roles = [synth.vaultAccess!.names.breakGlassRoleArn, ...(vault.config.vault!.adminRoleArns ?? [])];

    // Assess: the fields CloudTrail's AssumeRole event carries (test/unit/cloudtrail-fixtures.ts), with no errorCode
    // filter, so refused tries match too (EventBridge's matching itself is not emulated: docs/aws-fidelity.md).
    expect(rules).toHaveLength(1);
    expect(rules[0]!.Properties.EventPattern).toEqual({
      source: ['aws.sts'],
      'detail-type': ['AWS API Call via CloudTrail'],
      detail: { eventSource: ['sts.amazonaws.com'], eventName: ['AssumeRole'], $or: [{ requestParameters: { roleArn: roles } }, { resources: { ARN: roles } }] },
    });
    // AssumeRole is a read-only management event: a plain ENABLED rule never receives it.
    expect((rules[0]!.Properties as { State?: string }).State).toBe('ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS');
    expect(vault.adminRoleArns[0]).toBe(synth.vaultAccess!.names.breakGlassRoleArn);
    expect(rules[0]!.Properties.Targets).toEqual([expect.objectContaining({ Arn: arnOf(vault, vault.alertFunction.function), DeadLetterConfig: { Arn: arnOf(vault, vault.alarmRouting.deadLetterQueue) } })]);
  });
});
