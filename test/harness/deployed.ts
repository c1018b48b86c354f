import { join } from 'node:path';
import { createS3Client } from '../../functions/lib/aws/clients.ts';
import type { ProjectFunction } from '../../infra/constructs/project-function.ts';
import type { SourceStack } from '../../infra/source-stack.ts';
import { deployLocally, type DeployedFunction, type LocalDeployment, type LocalDeploymentOptions, type TemplateJson } from '../../local/deployment.ts';
import { logicalIdOf, synthApp, type SynthOptions, type Synthesized } from '../infra/helpers/app.ts';
import { runnerBundleDir, shippedModulePath, SHIPPED_FUNCTIONS } from './shipped.ts';

/**
 * Synthesizes the source stack for a config and runs it locally from what
 * ships (see local/deployment.ts): the integration tests' way to execute the
 * workflows exactly as they would be deployed.
 */
export interface TestDeployment extends LocalDeployment {
  readonly synthesized: Synthesized;
  readonly stack: SourceStack;
}

export interface TestDeploymentOptions extends Omit<LocalDeploymentOptions, 'template' | 'config' | 'configSha256' | 'functions' | 's3'> {
  /** The raw config to synthesize. */
  readonly config: unknown;
  readonly synth?: Omit<SynthOptions, 'config'>;
}

/** The stack's functions by the placeholder the definitions name them with. */
function stackFunctions(stack: SourceStack): Record<string, ProjectFunction | undefined> {
  return {
    AlertFunctionArn: stack.alertFunction,
    PlanFunctionArn: stack.planFunction,
    SnapshotFunctionArn: stack.snapshotFunction,
    VaultCopyFunctionArn: stack.vaultCopyFunction,
    DumpFunctionArn: stack.dumpFunction,
    RetentionFunctionArn: stack.retentionFunction,
    DrillFunctionArn: stack.drillFunction,
    DrillRestoreFunctionArn: stack.drillRestoreFunction,
    JanitorFunctionArn: stack.janitorFunction,
  };
}

export async function deployForTest(options: TestDeploymentOptions): Promise<TestDeployment> {
  const synthesized = synthApp({ ...options.synth, config: options.config });
  const { stack } = synthesized;
  const template = synthesized.template.toJSON() as TemplateJson;
  const functions: Record<string, DeployedFunction> = {};
  for (const [placeholder, fn] of Object.entries(stackFunctions(stack))) {
    if (!fn) continue;
    const logicalId = logicalIdOf(fn.function);
    const props = template.Resources[logicalId]?.Properties ?? {};
    const command = (props.ImageConfig as { Command?: string[] } | undefined)?.Command?.[0];
    if (command) {
      // A container image function: the image's CMD names file and export (functions/dump/handler.handler).
      const dot = command.lastIndexOf('.');
      functions[placeholder] = { logicalId, modulePath: join(runnerBundleDir(), `${command.slice(0, dot)}.mjs`), handlerExport: command.slice(dot + 1) };
    } else {
      const shipped = SHIPPED_FUNCTIONS[placeholder];
      if (!shipped) throw new Error(`No shipped bundle known for ${placeholder}`);
      functions[placeholder] = { logicalId, modulePath: shippedModulePath(shipped) };
    }
  }
  const deployment = await deployLocally({
    ...options,
    template,
    config: stack.config,
    configSha256: stack.deploymentConfig.sha256,
    functions,
    s3: createS3Client({ region: stack.region }),
  });
  return { ...deployment, synthesized, stack };
}
