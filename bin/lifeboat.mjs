#!/usr/bin/env node
// The lifeboat CLI. Sources are TypeScript, loaded through tsx so the CLI runs
// from a clone after `npm ci` without a build step.
import { register } from 'tsx/esm/api';

register();
process.env.LIFEBOAT_CLI_ENTRY = '1';
await import('../cli/main.ts');
