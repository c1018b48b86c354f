import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback "null S3" for the benchmark: it answers the calls the dump pipeline
 * makes (HeadBucket, CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
 * PutObject, AbortMultipartUpload, and ListMultipartUploads for the failure path)
 * with minimal valid responses, reads every request body to the end and throws
 * it away. The pipeline then pays for hashing, encryption, part buffering and
 * HTTP framing, but not for a storage service. Objects handed to serve() are
 * answered from memory, so a restore can download at loopback speed too.
 *
 * Path-style addressing only (the SDK uses it with a custom endpoint).
 */
export interface NullS3Stats {
  requests: number;
  bodyBytes: number;
  parts: number;
  completed: number;
  aborted: number;
  puts: number;
  /** Bytes answered to GETs of served objects. */
  servedBytes: number;
}

export interface NullS3Server {
  readonly endpoint: string;
  /** Running totals; reset() zeroes them. */
  readonly stats: NullS3Stats;
  reset(): void;
  /**
   * Answers GETs (whole or ranged, with If-Match) and HEADs of this object from memory: the deployed config the
   * handler reads, and a stored backup for the restore runs. Everything written is still dropped.
   */
  serve(bucket: string, key: string, body: Buffer): void;
  stop(): Promise<void>;
}

const XML = '<?xml version="1.0" encoding="UTF-8"?>\n';
const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

function etag(): string {
  return `"${randomBytes(16).toString('hex')}"`;
}

function send(res: ServerResponse, status: number, body = '', headers: Record<string, string> = {}): void {
  const payload = body ? XML + body : '';
  res.writeHead(status, {
    'x-amz-request-id': randomBytes(8).toString('hex'),
    ...(payload ? { 'content-type': 'application/xml' } : {}),
    'content-length': String(Buffer.byteLength(payload)),
    ...headers,
  });
  res.end(payload);
}

export async function startNullS3(): Promise<NullS3Server> {
  const stats: NullS3Stats = { requests: 0, bodyBytes: 0, parts: 0, completed: 0, aborted: 0, puts: 0, servedBytes: 0 };
  const served = new Map<string, { body: Buffer; etag: string }>();
  const region = 'eu-west-1';

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    stats.requests++;
    const url = new URL(req.url ?? '/', 'http://null-s3');
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const q = url.searchParams;
    const method = req.method ?? 'GET';

    if (method === 'HEAD' && bucket && !key) return send(res, 200, '', { 'x-amz-bucket-region': region });
    if (method === 'POST' && key && q.has('uploads')) {
      const uploadId = randomBytes(12).toString('hex');
      return send(
        res,
        200,
        `<InitiateMultipartUploadResult xmlns="${NS}"><Bucket>${escapeXml(bucket)}</Bucket><Key>${escapeXml(key)}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`,
      );
    }
    if (method === 'PUT' && key && q.has('partNumber') && q.has('uploadId')) {
      stats.parts++;
      return send(res, 200, '', { etag: etag() });
    }
    if (method === 'POST' && key && q.has('uploadId')) {
      stats.completed++;
      return send(
        res,
        200,
        `<CompleteMultipartUploadResult xmlns="${NS}"><Location>http://null-s3/${escapeXml(bucket)}/${escapeXml(key)}</Location><Bucket>${escapeXml(bucket)}</Bucket><Key>${escapeXml(key)}</Key><ETag>${escapeXml(etag())}</ETag></CompleteMultipartUploadResult>`,
        { 'x-amz-version-id': randomBytes(8).toString('hex') },
      );
    }
    if (method === 'PUT' && key) {
      stats.puts++;
      return send(res, 200, '', { etag: etag(), 'x-amz-version-id': randomBytes(8).toString('hex') });
    }
    if (method === 'DELETE' && key && q.has('uploadId')) {
      stats.aborted++;
      return send(res, 204);
    }
    if ((method === 'GET' || method === 'HEAD') && served.has(`${bucket}/${key}`)) {
      const object = served.get(`${bucket}/${key}`)!;
      const ifMatch = req.headers['if-match'];
      if (ifMatch && ifMatch !== object.etag) return send(res, 412, `<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`);
      // Ranged GETs as S3 answers them (206 with Content-Range), so the restore's parallel download runs as it would there.
      const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
      const start = range ? Number(range[1]) : 0;
      const end = range ? Math.min(Number(range[2]), object.body.length - 1) : object.body.length - 1;
      if (range && start >= object.body.length) {
        return send(res, 416, `<Error><Code>InvalidRange</Code><Message>The requested range is not satisfiable</Message></Error>`, { 'content-range': `bytes */${object.body.length}` });
      }
      const slice = object.body.subarray(start, end + 1);
      stats.servedBytes += method === 'GET' ? slice.length : 0;
      res.writeHead(range ? 206 : 200, {
        'content-length': String(slice.length),
        etag: object.etag,
        'accept-ranges': 'bytes',
        'content-type': 'binary/octet-stream',
        ...(range ? { 'content-range': `bytes ${start}-${end}/${object.body.length}` } : {}),
      });
      return res.end(method === 'GET' ? slice : undefined);
    }
    if (method === 'GET' && bucket && !key && q.has('uploads')) {
      return send(res, 200, `<ListMultipartUploadsResult xmlns="${NS}"><Bucket>${escapeXml(bucket)}</Bucket><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>`);
    }
    return send(
      res,
      501,
      `<Error><Code>NotImplemented</Code><Message>null S3 does not implement ${escapeXml(method)} ${escapeXml(url.pathname + url.search)}</Message></Error>`,
    );
  };

  // Answer only once the body has been read in full, as S3 does, so the
  // client pays for sending every byte.
  const server = createServer((req, res) => {
    req.on('data', (chunk: Buffer) => {
      stats.bodyBytes += chunk.length;
    });
    req.once('end', () => handle(req, res));
    req.once('error', () => res.destroy());
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stats,
    reset() {
      Object.assign(stats, { requests: 0, bodyBytes: 0, parts: 0, completed: 0, aborted: 0, puts: 0, servedBytes: 0 });
    },
    serve(bucket, key, body) {
      served.set(`${bucket}/${key}`, { body, etag: etag() });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
