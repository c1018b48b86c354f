import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { createS3Client } from '../../functions/lib/aws/clients.ts';
import type { ProjectFunction } from '../../infra/constructs/project-function.ts';
import type { SourceStack } from '../../infra/source-stack.ts';
import type { VaultStack } from '../../infra/vault-stack.ts';
import type { AwsCredentials } from '../../functions/lib/aws/clients.ts';
import { deployLocally, type DeployedFunction, type LocalDeployment, type LocalDeploymentOptions, type TemplateJson } from '../../local/deployment.ts';
import { startLocalFargate, type LocalFargate } from '../../local/fargate.ts';
import { logicalIdOf, synthApp, type SynthOptions, type Synthesized } from '../infra/helpers/app.ts';
import { runnerBundleDir, shippedModulePath, SHIPPED_FUNCTIONS } from './shipped.ts';

/**
 * Synthesizes the source stack for a config and runs it locally from what
 * ships (see local/deployment.ts): the integration tests' way to execute the
 * workflows exactly as they would be deployed.
 */
export interface TestDeployment extends LocalDeployment {
  readonly synthesized: Synthesized;
  /** The stack's Fargate tasks, run from the runner image's bundles, when it has any. */
  readonly fargate?: LocalFargate;
  /** The primary source stack (also when the vault stack is the one deployed). */
  readonly stack: SourceStack;
}

export interface TestDeploymentOptions extends Omit<LocalDeploymentOptions, 'template' | 'config' | 'configSha256' | 'functions' | 's3'> {
  /** The raw config to synthesize. */
  readonly config: unknown;
  readonly synth?: Omit<SynthOptions, 'config'>;
  /**
   * Which stack to run: the primary source stack, or the vault stack (in the
   * vault account: give `awsEnvironment` and `credentials` of that account).
   * @default 'source'
   */
  readonly deploy?: 'source' | 'vault';
  /** Credentials the config object is published with (the deploying account's). @default the process's */
  readonly credentials?: AwsCredentials;
}

const ECS_RUN_TASK_WAIT = 'arn:aws:states:::ecs:runTask.waitForTaskToken';

/** The stack's functions by the placeholder the definitions name them with. */
function stackFunctions(stack: SourceStack): Record<string, ProjectFunction | undefined> {
  return {
    AlertFunctionArn: stack.alertFunction,
    PlanFunctionArn: stack.planFunction,
    PitrFunctionArn: stack.pitrFunction,
    SnapshotFunctionArn: stack.snapshotFunction,
    VaultCopyFunctionArn: stack.vaultCopyFunction,
    DumpFunctionArn: stack.dumpFunction,
    RetentionFunctionArn: stack.retentionFunction,
    DrillFunctionArn: stack.drillFunction,
    DrillRestoreFunctionArn: stack.drillRestoreFunction,
    JanitorFunctionArn: stack.janitorFunction,
  };
}

/** The vault stack's functions (its retention workflow's), by the placeholder the definitions name them with. */
function vaultFunctions(vault: VaultStack): Record<string, ProjectFunction | undefined> {
  return { RetentionFunctionArn: vault.retention?.function, AlertFunctionArn: vault.alertFunction };
}

export async function deployForTest(options: TestDeploymentOptions): Promise<TestDeployment> {
  const synthesized = synthApp({ ...options.synth, config: options.config });
  const { stack, vault } = synthesized;
  if (options.deploy === 'vault' && !vault) throw new Error('deployForTest: the config has no vault, so there is no vault stack to deploy.');
  if (options.deploy === 'vault' && !vault!.retention) throw new Error('deployForTest: this vault stack runs no workflow (no plan has a retention.vault policy), so there is nothing to run locally.');
  const deployed = options.deploy === 'vault' ? vault! : stack;
  const template = (options.deploy === 'vault' ? Template.fromStack(vault!) : synthesized.template).toJSON() as TemplateJson;
  const published = options.deploy === 'vault' ? { config: vault!.config, sha256: vault!.retention!.config.sha256 } : { config: stack.config, sha256: stack.deploymentConfig.sha256 };
  const functions: Record<string, DeployedFunction> = {};
  for (const [placeholder, fn] of Object.entries(options.deploy === 'vault' ? vaultFunctions(vault!) : stackFunctions(stack))) {
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
  // The Fargate runners' task definitions, by the placeholder value their RunTask states pass.
  const runners = options.deploy === 'vault' ? {} : { DumpTaskDefinitionArn: stack.fargateDump, VaultCopyTaskDefinitionArn: stack.fargateVaultCopy, DrillRestoreTaskDefinitionArn: stack.fargateDrillRestore };
  const taskDefinitions = Object.fromEntries(Object.entries(runners).flatMap(([placeholder, runner]) => (runner ? [[`local-${placeholder}`, logicalIdOf(runner.taskDefinition)]] : [])));
  const fargate =
    Object.keys(taskDefinitions).length > 0
      ? await startLocalFargate({ template, taskDefinitions, values: options.values, awsEnvironment: options.awsEnvironment, imageDir: runnerBundleDir(), onLog: options.onLog })
      : undefined;
  const deployment = await deployLocally({
    ...options,
    taskResources: { ...(fargate ? { [ECS_RUN_TASK_WAIT]: fargate.task } : {}), ...options.taskResources },
    template,
    config: published.config,
    configSha256: published.sha256,
    functions,
    s3: createS3Client({ region: deployed.region, ...(options.credentials ? { credentials: options.credentials } : {}) }),
  });
  return {
    ...deployment,
    synthesized,
    stack,
    fargate,
    stop: async () => {
      await deployment.stop();
      await fargate?.stop();
    },
  };
}
