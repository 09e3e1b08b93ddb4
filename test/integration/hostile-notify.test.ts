/**
 * Hostile notification receivers, against the delivery activity with the real PostgreSQL: each
 * failure is classified (retried with a bounded, jittered delay, or given up at once with its
 * reason recorded), nothing unbounded is read, and the target URL's token (path and query) is
 * never in a result, a failure message or a stored row.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotifyActivities } from '../../activities/gate/notify.js';
import type { ActivityDeps } from '../../activities/deps.js';
import { setNotifyTargets, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { openStores, type Stores } from '../../client/runtime.js';
import type { GateNotice } from '../../domain/gate/notify.js';
import { testConfig, uniqueId } from '../helpers/env.js';

const TOKEN = 'SeCrEtToKeN0123456789';
const QTOKEN = 'qTok98765zz';
const PATH = `/services/T0AB/B0CD/${TOKEN}?token=${QTOKEN}`;

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

interface Server {
  base: string;
  hits: number;
  sentBytes: number;
  close(): Promise<void>;
}

async function serve(handler: Handler, tls?: { key: Buffer; cert: Buffer }): Promise<Server> {
  const s: Server = { base: '', hits: 0, sentBytes: 0, close: async () => undefined };
  const onRequest: Handler = (req, res) => {
    req.resume();
    req.on('end', () => {
      s.hits++;
      handler(req, res);
    });
  };
  const server = tls ? https.createServer(tls, onRequest) : http.createServer(onRequest);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  s.base = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  s.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return s;
}

/** A body of `mb` MB written as fast as the reader takes it, stopped when the reader goes away. */
function hugeBody(s: { sentBytes: number }, status: number, mb: number): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain' });
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let left = (mb * 1024 * 1024) / chunk.length;
    const pump = () => {
      while (left > 0 && !res.destroyed) {
        left--;
        s.sentBytes += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (!res.destroyed) res.end();
    };
    res.on('close', () => {
      left = 0;
    });
    pump();
  };
}

describe('hostile notification receivers', () => {
  let stores: Stores;
  let deliver: ReturnType<typeof createNotifyActivities>['deliverNotification'];
  const deployment = uniqueId('hnotify');
  const servers: Server[] = [];
  /** Every text produced (results, failure messages), checked for the token at the end. */
  const said: string[] = [];
  let tlsFiles: { key: Buffer; cert: Buffer };

  const notice = (): GateNotice => ({
    gateId: `gate/${deployment}/v2/${randomUUID().slice(0, 8)}`,
    deployment,
    baselineVersion: 'v1',
    candidateVersion: 'v2',
    events: ['reject'],
    decision: 'REJECT',
    effectiveDecision: 'REJECT',
    reason: 'r',
    summary: 's',
    rollback: { status: 'not-needed', detail: '' },
  });

  /** One attempt to deliver a notice to `url`: its result, or its failure. */
  const attempt = async (kind: 'slack' | 'webhook', url: string, attemptNo = 1) => {
    await setNotifyTargets(stores.db, deployment, [{ kind, url }]);
    const n = notice();
    const env = new MockActivityEnvironment({ attempt: attemptNo });
    try {
      const r = (await env.run(deliver, { notice: n, target: 0 })) as Awaited<ReturnType<typeof deliver>>;
      said.push(r.detail);
      return { result: r, gateId: n.gateId };
    } catch (e) {
      expect(e).toBeInstanceOf(ApplicationFailure);
      said.push((e as Error).message);
      return { failure: e as ApplicationFailure, gateId: n.gateId };
    }
  };
  const row = async (gateId: string) =>
    (await stores.db.query<{ status: string; detail: string }>('SELECT status, detail FROM notifications WHERE gate_id = $1', [gateId]))
      .rows[0];
  const start = async (h: Handler, tls?: { key: Buffer; cert: Buffer }) => {
    const s = await serve(h, tls);
    servers.push(s);
    return s;
  };
  const answer =
    (status: number, body = '', headers: Record<string, string> = {}): Handler =>
    (_req, res) => {
      res.writeHead(status, { 'content-type': 'text/plain', ...headers });
      res.end(body);
    };

  beforeAll(async () => {
    const config = testConfig();
    stores = await openStores(config);
    deliver = createNotifyActivities({ config, db: stores.db } as unknown as ActivityDeps).deliverNotification;
    await upsertDeployment(stores.db, { id: deployment, source: { type: 'http', url: 'http://127.0.0.1:9/src' }, sample_rate: 1 });
    const dir = mkdtempSync(join(tmpdir(), 'hnotify-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    tlsFiles = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  });
  afterAll(async () => {
    // Nothing said or stored anywhere holds the target's token (path or query).
    const rows = await stores.db.query<{ detail: string }>('SELECT detail FROM notifications WHERE deployment = $1', [deployment]);
    const everything = [...said, ...rows.rows.map((r) => r.detail)].join('\n');
    expect(everything).not.toContain(TOKEN);
    expect(everything).not.toContain(QTOKEN);
    expect(everything).not.toContain('/services/T0AB');
    for (const s of servers) await s.close();
    await stores?.close();
  });

  // Failed before: a 200 carrying Slack's error body counted as delivered.
  it.each(['invalid_payload', 'no_text'])("a Slack 200 '%s' is given up at once, recorded with the reason", async (body) => {
    const s = await start(answer(200, body));
    const { result, gateId } = await attempt('slack', `${s.base}${PATH}`);
    expect(result?.status).toBe('failed');
    expect(result?.detail).toContain(`Slack answered '${body}'`);
    expect(await row(gateId)).toMatchObject({ status: 'failed' });
    // A Slack "ok" is delivered.
    const ok = await start(answer(200, 'ok'));
    expect((await attempt('slack', `${ok.base}${PATH}`)).result?.status).toBe('delivered');
  });

  // Pinned (held before) for the classification; the URL in the detail failed before (its token path was shown).
  it.each([
    [404, 'no_service'],
    [410, 'channel_is_archived'],
    [403, 'action_prohibited'],
  ])('a %i %s is given up at once, recorded with the reason, the URL masked', async (status, body) => {
    const s = await start(answer(status, body));
    const { result, gateId } = await attempt('slack', `${s.base}${PATH}`);
    expect(result?.status).toBe('failed');
    expect(result?.detail).toContain(`refused the request with ${status}: ${body}`);
    expect(result?.detail).toContain(`${s.base}/…`);
    expect(await row(gateId)).toMatchObject({ status: 'failed' });
    expect(s.hits).toBe(1);
  });

  // Failed before: delays were not jittered (a garbage retry-after left Temporal's fixed backoff),
  // and the pending row kept no reason.
  it.each([
    ['1', 1000, 1200],
    ['86400', 120_000, 120_000],
    ['garbage', 1000, 2000],
  ])('a 429 with retry-after %s is retried after a bounded, jittered delay', async (ra, min, max) => {
    const s = await start(answer(429, 'rate_limited', { 'retry-after': ra }));
    const { failure, gateId } = await attempt('slack', `${s.base}${PATH}`);
    expect(failure?.type).toBe('NotifyUnavailable');
    expect(failure?.nonRetryable).toBe(false);
    const d = failure?.nextRetryDelay as number;
    expect(d).toBeGreaterThanOrEqual(min);
    expect(d).toBeLessThanOrEqual(max);
    expect(await row(gateId)).toMatchObject({ status: 'pending', detail: expect.stringContaining('answered 429') });
  });

  // Pinned: an HTTP-date retry-after is honoured (within the bound).
  it('a 429 with an HTTP-date retry-after waits until about then', async () => {
    const at = new Date(Date.now() + 10_000).toUTCString();
    const s = await start(answer(429, '', { 'retry-after': at }));
    const d = (await attempt('webhook', `${s.base}${PATH}`)).failure?.nextRetryDelay as number;
    expect(d).toBeGreaterThan(5_000);
    expect(d).toBeLessThanOrEqual(14_000);
  });

  // Pinned: a receiver that never answers is cut off by the timeout and retried.
  it('a receiver that hangs is timed out and retried', { timeout: 30_000 }, async () => {
    const s = await start(() => undefined);
    const t0 = Date.now();
    const { failure } = await attempt('webhook', `${s.base}${PATH}`);
    expect(failure?.type).toBe('NotifyUnavailable');
    expect(failure?.message).toContain('did not answer within 15 s');
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  // Pinned for a 5xx (only the start is read); the Slack 200 body is read only to its start too.
  it('a 100 MB body is never read whole', { timeout: 60_000 }, async () => {
    const big: { sentBytes: number } = { sentBytes: 0 };
    const s = await start(hugeBody(big, 500, 100));
    const { failure } = await attempt('webhook', `${s.base}${PATH}`);
    expect(failure?.type).toBe('NotifyUnavailable');
    expect(failure!.message.length).toBeLessThan(1000);
    const ok: { sentBytes: number } = { sentBytes: 0 };
    const s2 = await start(hugeBody(ok, 200, 100));
    expect((await attempt('slack', `${s2.base}${PATH}`)).result?.status).toBe('delivered');
    await new Promise((r) => setTimeout(r, 200));
    expect(big.sentBytes).toBeLessThan(20 * 1024 * 1024);
    expect(ok.sentBytes).toBeLessThan(20 * 1024 * 1024);
  });

  // Pinned: redirects are not followed (another host never sees the message); failed before: the
  // Location's token path was shown.
  it.each([301, 302, 307, 308])('a %i redirect to another host or to itself is given up, not followed', async (status) => {
    const other = await start(answer(200, 'ok'));
    const s = await start(answer(status, '', { location: `${other.base}/services/T0AB/B0CD/${TOKEN}` }));
    const { result } = await attempt('slack', `${s.base}${PATH}`);
    expect(result?.status).toBe('failed');
    expect(result?.detail).toContain(`answered a redirect (${status} to ${other.base}/…)`);
    expect(other.hits).toBe(0);
    const loop = await start(answer(status, '', { location: PATH }));
    expect((await attempt('webhook', `${loop.base}${PATH}`)).result?.status).toBe('failed');
    expect(loop.hits).toBe(1);
  });

  // Failed before: a certificate that does not verify was retried as an outage for ten minutes.
  it('a TLS certificate that does not verify is given up at once, with the reason', async () => {
    const s = await start(answer(200, 'ok'), tlsFiles);
    const { result, gateId } = await attempt('slack', `${s.base}${PATH}`);
    expect(result?.status).toBe('failed');
    expect(result?.detail).toMatch(/TLS certificate that does not verify \((DEPTH_ZERO_SELF_SIGNED_CERT|[A-Z_]+)/);
    expect(await row(gateId)).toMatchObject({ status: 'failed' });
    expect(s.hits).toBe(0);
  });

  // Pinned: a reset mid-body is classified by the status that had arrived (5xx: retried), one before any answer is retried.
  it('a connection reset mid-body or before answering is retried', async () => {
    const mid = await start((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.write('partial answer');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const a = await attempt('webhook', `${mid.base}${PATH}`);
    expect(a.failure?.type).toBe('NotifyUnavailable');
    expect(a.failure?.message).toContain('answered 500');
    const early = await start((_req, res) => res.socket?.destroy());
    const b = await attempt('webhook', `${early.base}${PATH}`);
    expect(b.failure?.type).toBe('NotifyUnavailable');
    expect(b.failure?.message).toContain('unreachable');
  });

  // Pinned for the classification (retried, bounded by the retry policy); the message is checked for the token.
  it('a host that does not resolve is retried, the URL masked', async () => {
    const { failure, gateId } = await attempt('slack', `https://no-such-host.invalid${PATH}`);
    expect(failure?.type).toBe('NotifyUnavailable');
    expect(failure?.message).toContain('https://no-such-host.invalid/…');
    expect(await row(gateId)).toMatchObject({ status: 'pending' });
  });

  // Failed before: a delivered notice's detail (stored and returned into workflow history) held the token path.
  it('a delivered notice records no token', async () => {
    const s = await start(answer(200, 'ok'));
    const { result, gateId } = await attempt('webhook', `${s.base}${PATH}`);
    expect(result?.status).toBe('delivered');
    expect((await row(gateId))?.detail).toContain(`${s.base}/…`);
  });
});
