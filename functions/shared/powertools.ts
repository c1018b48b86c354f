import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

/**
 * Powertools instances shared by every handler, created once per cold start.
 * Service name and namespace come from POWERTOOLS_SERVICE_NAME and
 * POWERTOOLS_METRICS_NAMESPACE, which the project function construct sets.
 */
export const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'lifeboat';

export const logger = new Logger({ serviceName });
export const metrics = new Metrics({ serviceName, namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'lifeboat' });
export const tracer = new Tracer({ serviceName });
