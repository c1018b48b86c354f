import { synthApp } from '../infra/helpers/app.ts';

let cached: Record<string, { definition: string; placeholders: string[] }> | undefined;

/**
 * A state machine definition exactly as `cdk synth` puts it in the source
 * stack's template, with its DefinitionSubstitutions replaced by the given ARNs,
 * so integration tests execute what would be deployed. Every `*FunctionArn`
 * needs a value; other placeholders (the Fargate dump's cluster, task
 * definition, subnets) default to inert `local-<Name>` strings, which only a
 * state the run never reaches uses.
 */
export function synthesizedDefinition(name: string, substitutions: Record<string, string>): Record<string, unknown> {
  cached ??= (() => {
    const { template } = synthApp();
    const out: Record<string, { definition: string; placeholders: string[] }> = {};
    for (const resource of Object.values(template.findResources('AWS::StepFunctions::StateMachine'))) {
      const props = resource.Properties as { StateMachineName?: string; DefinitionString?: unknown; DefinitionSubstitutions?: Record<string, unknown> };
      const machine = /-lifeboat-(.+)$/.exec(props.StateMachineName ?? '')?.[1];
      if (!machine || typeof props.DefinitionString !== 'string') continue;
      out[machine] = { definition: props.DefinitionString, placeholders: Object.keys(props.DefinitionSubstitutions ?? {}) };
    }
    return out;
  })();
  const entry = cached[name];
  if (!entry) throw new Error(`The synthesized source stack has no inline "${name}" state machine (found: ${Object.keys(cached).join(', ')})`);
  let text = entry.definition;
  for (const key of entry.placeholders) {
    const value = substitutions[key] ?? (key.endsWith('FunctionArn') ? undefined : `local-${key}`);
    if (value === undefined) throw new Error(`The synthesized "${name}" definition needs a substitution for \${${key}}`);
    text = text.split(`\${${key}}`).join(value);
  }
  return JSON.parse(text) as Record<string, unknown>;
}
