import type { Context } from 'aws-lambda';
import { randomUUID } from 'node:crypto';

/** A Lambda context for running a handler in-process (local runner, demo, tests). */
export function localLambdaContext(functionName: string, timeoutMs = 15 * 60 * 1000): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

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
