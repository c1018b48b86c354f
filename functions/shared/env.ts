import { z } from 'zod';
import { parseWith } from '../lib/config/load.ts';

/** Reads and validates a handler's environment, naming every missing or bad variable. */
export function readEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  return parseWith(schema, env, 'the function environment');
}
