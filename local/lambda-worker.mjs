// One local Lambda execution environment (see lambda-runtime.ts): a plain Node
// process that imports a shipped bundle on its first invocation (the cold
// start) and then runs one invocation at a time, as Lambda's Node.js runtime
// does. It answers with the handler's result, or with the error as Lambda
// reports it: errorType is the error's name, errorMessage its message.
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const modulePath = process.env.LIFEBOAT_LOCAL_LAMBDA_MODULE;
const exportName = process.env.LIFEBOAT_LOCAL_LAMBDA_EXPORT || 'handler';
let loaded;

function context(timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const name = process.env.AWS_LAMBDA_FUNCTION_NAME;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:${process.env.LIFEBOAT_LOCAL_ACCOUNT}:function:${name}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function lambdaError(error) {
  const e = error instanceof Error ? error : new Error(String(error));
  return { errorType: e.name || 'Error', errorMessage: e.message, trace: String(e.stack ?? '').split('\n') };
}

process.on('message', async (message) => {
  if (message?.type !== 'invoke') return;
  try {
    loaded ??= await import(pathToFileURL(modulePath).href);
    const handler = loaded[exportName];
    if (typeof handler !== 'function') {
      throw Object.assign(new Error(`${modulePath} exports no function "${exportName}"`), { name: 'Runtime.HandlerNotFound' });
    }
    // Lambda passes and returns JSON: what JSON cannot carry does not arrive.
    const result = await handler(JSON.parse(message.event), context(message.timeoutMs));
    process.send({ type: 'result', id: message.id, result: JSON.stringify(result === undefined ? null : result) });
  } catch (error) {
    process.send({ type: 'error', id: message.id, error: lambdaError(error) });
  }
});

// An uncaught error kills the environment, as on Lambda (Runtime.ExitError).
process.on('uncaughtException', (error) => {
  process.stderr.write(`${JSON.stringify({ level: 'ERROR', message: 'Uncaught exception', error: lambdaError(error) })}\n`);
  process.exit(1);
});
process.send({ type: 'ready' });
