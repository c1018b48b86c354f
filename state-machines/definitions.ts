import { readFileSync } from 'node:fs';

/**
 * The state machine definitions. CDK loads the same files (DefinitionBody.fromFile
 * with substitutions) and the local runner substitutes fake ARNs and maps each
 * Task to the real handler: one definition, two engines.
 */
export const stateMachineFiles = {
  backup: new URL('./backup.asl.json', import.meta.url),
  'backup-database': new URL('./backup-database.asl.json', import.meta.url),
  drill: new URL('./drill.asl.json', import.meta.url),
  'drill-database': new URL('./drill-database.asl.json', import.meta.url),
  janitor: new URL('./janitor.asl.json', import.meta.url),
  retention: new URL('./retention.asl.json', import.meta.url),
  'retention-target': new URL('./retention-target.asl.json', import.meta.url),
} as const;

export type StateMachineName = keyof typeof stateMachineFiles;

export function stateMachinePath(name: StateMachineName): string {
  return stateMachineFiles[name].pathname;
}

/** Placeholders (`${Name}`) in a definition, for CDK's definitionSubstitutions. */
export function placeholders(name: StateMachineName): string[] {
  const text = readFileSync(stateMachineFiles[name], 'utf8');
  return [...new Set([...text.matchAll(/\$\{([A-Za-z0-9]+)\}/g)].map((m) => m[1]!))].sort();
}

/** The definition with its placeholders replaced, parsed. */
export function loadDefinition(name: StateMachineName, substitutions: Record<string, string>): Record<string, unknown> {
  let text = readFileSync(stateMachineFiles[name], 'utf8');
  for (const key of placeholders(name)) {
    const value = substitutions[key];
    if (value === undefined) throw new Error(`State machine "${name}" needs a substitution for \${${key}}`);
    text = text.split(`\${${key}}`).join(value);
  }
  return JSON.parse(text) as Record<string, unknown>;
}

/**
 * Physical names of a deployed workflow: `<deployment>-lifeboat-<workflow>` and
 * its execution log group. The stacks create them and `lifeboat run` finds them.
 */
export function deployedWorkflowNames(deploymentName: string, workflow: string): { stateMachineName: string; logGroupName: string } {
  return {
    stateMachineName: `${deploymentName}-lifeboat-${workflow}`,
    logGroupName: `/aws/vendedlogs/states/lifeboat/${deploymentName}/${workflow}`,
  };
}
