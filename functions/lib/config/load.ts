import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { lifeboatConfigSchema, type LifeboatConfig } from './schema.ts';

/** `databases[1].connection.port`-style path for an issue. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || '(root)';
}

/**
 * Parses untrusted input with a schema and throws one ConfigError that names
 * every bad field's path, not just the first.
 */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, source: string): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => `${formatIssuePath(issue.path)}: ${issue.message}`);
  throw new ConfigError(source, issues);
}

export function parseConfig(input: unknown, source = 'config'): LifeboatConfig {
  return parseWith(lifeboatConfigSchema, input, source);
}

export function loadConfigFile(path: string): LifeboatConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, [`cannot read the file: ${(error as Error).message}`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(path, [`not valid JSON: ${(error as Error).message}`]);
  }
  return parseConfig(json, path);
}
