/**
 * A local rollback-webhook receiver for tests: records every request and checks its signature
 * with `verifySignature`, the way a real receiver should.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature } from '../../activities/gate/rollback.js';

export interface ReceivedCall {
  method: string;
  path: string;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  /** Parsed JSON body (undefined when it does not parse). */
  body: Record<string, unknown> | undefined;
  rawBody: string;
  /** True only when a secret is configured and the signature and timestamp verify. */
  signatureValid: boolean;
}

export type ReceiverReply = number | { status: number; headers?: Record<string, string>; body?: string };

export interface WebhookReceiverOptions {
  secret?: string;
  /** Status (or status, headers, body) per request; default 200. */
  respond?: (req: ReceivedCall) => ReceiverReply;
  /** Answer only after this many ms (to simulate a slow receiver). */
  delayMs?: number;
}

export interface WebhookReceiver {
  url: string;
  calls: ReceivedCall[];
  /** How many different Idempotency-Key values arrived. */
  distinctKeys(): number;
  close(): Promise<void>;
}

export async function startWebhookReceiver(opts: WebhookReceiverOptions = {}): Promise<WebhookReceiver> {
  const calls: ReceivedCall[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
      }
      let body: Record<string, unknown> | undefined;
      try {
        const parsed: unknown = JSON.parse(rawBody);
        body = parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined;
      } catch {
        body = undefined;
      }
      const signatureValid = opts.secret
        ? verifySignature(opts.secret, headers['x-optiinfra-timestamp'] ?? '', rawBody, headers['x-optiinfra-signature'])
        : false;
      const call: ReceivedCall = { method: req.method ?? '', path: req.url ?? '', headers, body, rawBody, signatureValid };
      calls.push(call);
      const reply = opts.respond ? opts.respond(call) : 200;
      const r = typeof reply === 'number' ? { status: reply } : reply;
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(r.status, { 'content-type': 'text/plain', ...(r.headers ?? {}) });
        res.end(r.body ?? '');
      };
      if (opts.delayMs) setTimeout(send, opts.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/rollback`,
    calls,
    distinctKeys: () => new Set(calls.map((c) => c.headers['idempotency-key'])).size,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
