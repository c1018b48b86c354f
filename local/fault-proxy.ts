import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback HTTP proxy in front of moto that can answer some requests the way
 * AWS would where moto does not (a disabled KMS key, a cross-account call,
 * throttling, 5xx). For local runs only: the tests and `npm run demo`, never a
 * deployment. The SDK talks real HTTP and parses real AWS error bodies; only a
 * rule's answer is scripted, like the failing fake S3 server pgBackRest tests
 * against. Rules that emulate missing AWS behaviour are in moto-rds-compat.ts.
 */
export interface ProxiedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface ScriptedResponse {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

export type FaultRule = (req: ProxiedRequest) => Promise<ScriptedResponse | undefined> | ScriptedResponse | undefined;

/**
 * A layer wraps the whole chain for the requests it handles: it sees the
 * request before any rule, calls `next()` for what the rules (or, when none
 * answers, moto) say, and may change or replace that answer. A test's scripted
 * faults are rules, so they stay inside the layer: the strict RDS lifecycle
 * (strict-rds.ts) refuses a call on a busy resource before a rule runs, and
 * records or rewrites whatever the rules and moto answered.
 */
export interface LayerNext {
  /** The inner layers, the rules and moto: their answer. */
  (): Promise<ScriptedResponse>;
  /** Only the rules (a scripted fault), without reaching moto: for a layer that defers the real call. */
  rulesOnly(): Promise<ScriptedResponse | undefined>;
}

export interface ProxyLayer {
  handles(req: ProxiedRequest): boolean;
  handle(req: ProxiedRequest, next: LayerNext): Promise<ScriptedResponse>;
  /** Called by the proxy's stop(): whatever the layer started must end. */
  stop?(): Promise<void>;
}

export interface FaultProxy {
  endpoint: string;
  /** Every request seen, for assertions on what the client attempted. */
  seen: ProxiedRequest[];
  addRule(rule: FaultRule): void;
  /** Layers run outermost first, in the order added. */
  addLayer(layer: ProxyLayer): void;
  stop(): Promise<void>;
}

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const rules: FaultRule[] = [];
  const layers: ProxyLayer[] = [];
  const seen: ProxiedRequest[] = [];
  /** The rules, then moto, with the answer buffered: what a layer's next() returns. */
  const scriptedBy = async (proxied: ProxiedRequest): Promise<ScriptedResponse | undefined> => {
    for (const rule of rules) {
      const scripted = await rule(proxied);
      if (scripted) return scripted;
    }
    return undefined;
  };
  const inner = async (proxied: ProxiedRequest): Promise<ScriptedResponse> => {
    const scripted = await scriptedBy(proxied);
    if (scripted) return scripted;
    return new Promise((resolve) => {
      const upstreamReq = httpRequest(
        { host: target.hostname, port: target.port, method: proxied.method, path: proxied.url, headers: { ...proxied.headers, host: target.host } },
        (upstreamRes) => {
          const parts: Buffer[] = [];
          upstreamRes.on('data', (c: Buffer) => parts.push(c));
          upstreamRes.on('end', () =>
            resolve({ status: upstreamRes.statusCode ?? 502, headers: { 'content-type': String(upstreamRes.headers['content-type'] ?? 'text/xml') }, body: Buffer.concat(parts).toString() }),
          );
        },
      );
      upstreamReq.on('error', (e) => resolve({ status: 502, headers: { 'content-type': 'text/plain' }, body: String(e) }));
      upstreamReq.end(proxied.body);
    });
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const proxied: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(proxied);
      const handling = layers.filter((l) => l.handles(proxied));
      if (handling.length > 0) {
        const run = (i: number): Promise<ScriptedResponse> => {
          if (i >= handling.length) return inner(proxied);
          const next = Object.assign(() => run(i + 1), { rulesOnly: () => scriptedBy(proxied) });
          return handling[i]!.handle(proxied, next);
        };
        const answer = await run(0).catch((e: unknown): ScriptedResponse => ({ status: 500, headers: { 'content-type': 'text/plain' }, body: `fault proxy layer failed: ${String(e)}` }));
        res.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.1', ...answer.headers });
        res.end(answer.body);
        return;
      }
      for (const rule of rules) {
        const scripted = await rule(proxied);
        if (scripted) {
          res.writeHead(scripted.status, { 'content-type': 'application/x-amz-json-1.1', ...scripted.headers });
          res.end(scripted.body);
          return;
        }
      }
      const upstreamReq = httpRequest(
        { host: target.hostname, port: target.port, method: proxied.method, path: proxied.url, headers: { ...req.headers, host: target.host } },
        (upstreamRes) => {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.pipe(res);
        },
      );
      upstreamReq.on('error', (e) => {
        res.writeHead(502);
        res.end(String(e));
      });
      upstreamReq.end(proxied.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    addRule: (rule) => rules.push(rule),
    addLayer: (layer) => layers.push(layer),
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.allSettled(layers.map((l) => l.stop?.()));
    },
  };
}

/** KMS JSON-protocol operation name, e.g. `GenerateDataKey`. */
export function kmsOperation(req: ProxiedRequest): string | undefined {
  const target = req.headers['x-amz-target'];
  return typeof target === 'string' && target.startsWith('TrentService.') ? target.slice('TrentService.'.length) : undefined;
}

/**
 * Enforces KMS key state as AWS does and moto does not: a cryptographic call
 * with a key that moto reports as Disabled gets KMS's DisabledException.
 */
export function enforceKmsKeyState(upstream: string): FaultRule {
  return async (req) => {
    const op = kmsOperation(req);
    if (!op || !['GenerateDataKey', 'Encrypt', 'Decrypt', 'ReEncrypt', 'GenerateDataKeyWithoutPlaintext'].includes(op)) return undefined;
    const keyId = (JSON.parse(req.body.toString() || '{}') as { KeyId?: string }).KeyId;
    if (!keyId) return undefined;
    const describe = await fetch(upstream, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'TrentService.DescribeKey',
        authorization: String(req.headers.authorization ?? ''),
        'x-amz-date': String(req.headers['x-amz-date'] ?? ''),
      },
      body: JSON.stringify({ KeyId: keyId }),
    });
    if (!describe.ok) return undefined;
    const state = ((await describe.json()) as { KeyMetadata?: { KeyState?: string; Arn?: string } }).KeyMetadata;
    if (state?.KeyState !== 'Disabled') return undefined;
    return { status: 400, body: JSON.stringify({ __type: 'DisabledException', message: `${state.Arn} is disabled.` }) };
  };
}
