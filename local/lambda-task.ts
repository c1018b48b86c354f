import type { Context } from 'aws-lambda';
import { localLambdaContext } from '../functions/shared/lambda-context.ts';

/**
 * Wraps a handler as a local task that fails the way a Lambda task does on AWS:
 * the error name is the Lambda `errorType`, and the Cause is Lambda's JSON
 * (`errorType`, `errorMessage`, `trace`) rather than a live error object.
 */
export function asLocalTask(functionName: string, handler: (event: never, context: Context) => Promise<unknown>) {
  return async (input: unknown) => {
    try {
      return await handler(input as never, localLambdaContext(functionName));
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      const lambdaError = new Error(JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: (e.stack ?? '').split('\n') }));
      lambdaError.name = e.name;
      throw lambdaError;
    }
  };
}
