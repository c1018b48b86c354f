import { readFileSync } from 'node:fs';
import type { BuildOptions } from 'esbuild';

/**
 * The esbuild settings of every bundle lifeboat ships (infra/bundling.json):
 * CDK's NodejsFunction gets them as BundlingOptions, the runner image's build
 * (scripts/bundle-runner.mjs) and the tests' prebundler as esbuild options.
 */
export interface ShippedBundling {
  readonly target: string;
  readonly platform: 'node';
  readonly format: 'esm';
  readonly mainFields: readonly string[];
  readonly banner: string;
  readonly minify: boolean;
  readonly keepNames: boolean;
  readonly sourcemap: boolean;
  readonly external: readonly string[];
}

export const SHIPPED_BUNDLING: ShippedBundling = (() => {
  const { $comment: _comment, ...settings } = JSON.parse(readFileSync(new URL('./bundling.json', import.meta.url), 'utf8')) as ShippedBundling & { $comment?: string };
  return settings;
})();

/** The same settings as esbuild API options (the tests' prebundler; scripts/bundle-runner.mjs mirrors this). */
export function esbuildOptions(settings: ShippedBundling = SHIPPED_BUNDLING): BuildOptions {
  return {
    bundle: true,
    target: settings.target,
    platform: settings.platform,
    format: settings.format,
    mainFields: [...settings.mainFields],
    banner: { js: settings.banner },
    minify: settings.minify,
    keepNames: settings.keepNames,
    sourcemap: settings.sourcemap,
    external: [...settings.external],
  };
}
