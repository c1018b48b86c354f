import { inject } from 'vitest';

import '../../local/promise-with-resolvers.ts';

// Every SDK v3 client in the process talks to the suite's moto_server.
process.env.AWS_ENDPOINT_URL = inject('motoEndpoint');
process.env.AWS_REGION = 'eu-west-1';
process.env.AWS_ACCESS_KEY_ID = 'testing';
process.env.AWS_SECRET_ACCESS_KEY = 'testing';
process.env.AWS_SESSION_TOKEN = 'testing';
process.env.LIFEBOAT_S3_FORCE_PATH_STYLE = 'true';
process.env.POWERTOOLS_DEV = 'false';
// Tests run on the local Node 20; Lambda runs Node 22.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
process.env.POWERTOOLS_METRICS_NAMESPACE = 'lifeboat-test';
process.env.POWERTOOLS_SERVICE_NAME = 'lifeboat';
process.env.POWERTOOLS_TRACE_ENABLED = 'false';
