/**
 * The codec server: lets the Temporal Web UI (and `temporal` CLI) show decrypted payloads to
 * those who hold the token, without the keys ever leaving this process.
 *
 * `POST /decode` and `POST /encode` take and return `{ "payloads": [{ "metadata": { k: base64 },
 * "data": base64 }] }` (the protobuf JSON form of Payload, as the UI sends it). CORS is allowed
 * for one origin (the UI's); with a token, `Authorization: Bearer <token>` is required.
 *
 * Bounded for hostile callers: a body larger than `maxBodyBytes` or holding more than
 * `maxPayloads` payloads is refused (413), a body not received within `bodyTimeoutMs` (a client
 * sending a byte a second) is answered 408 and its connection closed, a request aborted mid-body
 * is dropped; every refusal is a JSON `{ "error" }` that never repeats the token or a key.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ValueError, type Payload, type PayloadCodec } from '@temporalio/common';

export interface CodecServerOptions {
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
  codec: PayloadCodec;
  /** Required as `Authorization: Bearer <token>` when set. */
  token?: string;
  /** The one origin browsers may call from (the Temporal UI's), e.g. http://127.0.0.1:8233. */
  corsOrigin: string;
  /** Largest request body accepted (default 16 MiB). */
  maxBodyBytes?: number;
  /** Most payloads in one request (default 10,000; the Web UI sends those of one event). */
  maxPayloads?: number;
  /** Time the whole request (headers and body) may take to arrive (default 30 s). */
  bodyTimeoutMs?: number;
}

export interface CodecServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

interface JsonPayload {
  metadata?: Record<string, string> | null;
  data?: string | null;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

function fromBase64(v: unknown, where: string): Uint8Array {
  if (typeof v !== 'string' || !BASE64.test(v)) throw new HttpError(400, `${where} must be a base64 string`);
  return new Uint8Array(Buffer.from(v, 'base64'));
}

export function payloadFromJson(p: unknown, i: number): Payload {
  if (!p || typeof p !== 'object' || Array.isArray(p)) throw new HttpError(400, `payloads[${i}] must be an object`);
  const { metadata, data } = p as JsonPayload;
  if (metadata !== undefined && metadata !== null && (typeof metadata !== 'object' || Array.isArray(metadata))) {
    throw new HttpError(400, `payloads[${i}].metadata must be an object of base64 strings`);
  }
  return {
    metadata: Object.fromEntries(Object.entries(metadata ?? {}).map(([k, v]) => [k, fromBase64(v, `payloads[${i}].metadata.${k}`)])),
    data: data === undefined || data === null ? undefined : fromBase64(data, `payloads[${i}].data`),
  };
}

export function payloadToJson(p: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]),
    ),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  };
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (!token) return true;
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  return !!m && timingSafeEqual(sha256(m[1]!), sha256(token));
}

/**
 * The request body, at most `max` bytes, complete within `deadline` (epoch ms). A refusal leaves
 * the request unread: the caller answers with `Connection: close`, so the rest is never read.
 */
function readBody(req: IncomingMessage, max: number, deadline: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (declared > max) return Promise.reject(new HttpError(413, `request body larger than ${max} bytes`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (e?: HttpError) => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onAbort).off('close', onAbort);
      if (!e) return resolve(Buffer.concat(chunks).toString('utf8'));
      req.pause();
      reject(e);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > max) finish(new HttpError(413, `request body larger than ${max} bytes`));
      else chunks.push(c);
    };
    const onEnd = () => finish();
    const onAbort = () => finish(new HttpError(400, 'request aborted before its body was complete'));
    const seconds = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    const timer = setTimeout(
      () => finish(new HttpError(408, `request body not received in time (the whole request must arrive within ${seconds} s)`)),
      Math.max(0, deadline - Date.now()),
    );
    req.on('data', onData).on('end', onEnd).on('error', onAbort).on('close', onAbort);
  });
}

export async function startCodecServer(opts: CodecServerOptions): Promise<CodecServer> {
  const host = opts.host ?? '127.0.0.1';
  const maxBody = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  const maxPayloads = opts.maxPayloads ?? 10_000;
  const timeoutMs = opts.bodyTimeoutMs ?? 30_000;
  const allowedOrigin = new URL(opts.corsOrigin).origin;

  const send = (res: ServerResponse, status: number, body?: unknown) => {
    if (body === undefined) {
      res.writeHead(status).end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const deadline = Date.now() + timeoutMs;
    const origin = req.headers.origin;
    res.setHeader('Vary', 'Origin');
    if (origin === allowedOrigin) {
      res.setHeader('Access-Control-Allow-Origin', allowedOrigin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    let path: string;
    try {
      // Trailing slashes dropped from the start of their run only (`\/+$` alone took quadratic
      // time on a request target of slashes, before the token is checked).
      path = new URL(req.url ?? '/', 'http://codec').pathname.replace(/(?<!\/)\/+$/, '');
    } catch {
      throw new HttpError(400, 'malformed request target');
    }
    const action = path === '/encode' ? 'encode' : path === '/decode' ? 'decode' : undefined;

    if (req.method === 'OPTIONS') {
      // Preflight: browsers send no credentials here, so no token check.
      if (origin !== undefined && origin !== allowedOrigin) return send(res, 403, { error: `origin ${origin} is not allowed` });
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'content-type, authorization, x-namespace');
      res.setHeader('Access-Control-Max-Age', '600');
      return send(res, 204);
    }
    if (!action) return send(res, 404, { error: 'not found: POST /encode or /decode' });
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST, OPTIONS');
      return send(res, 405, { error: 'method not allowed: use POST' });
    }
    if (!authorized(req, opts.token)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      return send(res, 401, { error: 'missing or wrong bearer token' });
    }
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req, maxBody, deadline));
    } catch (e) {
      if (e instanceof HttpError) {
        // The rest of the body is not read: close the connection once answered.
        res.setHeader('Connection', 'close');
        throw e;
      }
      throw new HttpError(400, 'request body is not valid JSON');
    }
    const list = (body as { payloads?: unknown } | null)?.payloads;
    if (!Array.isArray(list)) throw new HttpError(400, 'request body must be { "payloads": [...] }');
    if (list.length > maxPayloads) throw new HttpError(413, `${list.length} payloads in one request: at most ${maxPayloads}`);
    const payloads = list.map(payloadFromJson);
    let out: Payload[];
    try {
      out = action === 'encode' ? await opts.codec.encode(payloads) : await opts.codec.decode(payloads);
    } catch (e) {
      // Unknown key ids and altered payloads: the request cannot be served, the server is fine.
      if (e instanceof ValueError) throw new HttpError(400, e.message);
      throw e;
    }
    send(res, 200, { payloads: out.map(payloadToJson) });
  };

  // Node's own limits back the body deadline up (and bound slow headers, before any handler runs).
  const server = createServer(
    { headersTimeout: timeoutMs, requestTimeout: 2 * timeoutMs, connectionsCheckingInterval: Math.min(1000, timeoutMs) },
    (req, res) => {
      handle(req, res).catch((e: unknown) => {
        if (res.headersSent) return void res.destroy();
        if (e instanceof HttpError) return send(res, e.status, { error: e.message });
        send(res, 500, { error: 'codec failure' });
      });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
