/**
 * The codec server over real HTTP against hostile callers: bodies that are not JSON, too large,
 * nested 100,000 deep or holding a million payloads; base64 that decodes to garbage for the codec;
 * a client that sends a byte at a time or aborts mid-body; wrong, absent and look-alike tokens;
 * preflights from other origins, other methods, `..` paths and malformed request targets. Each is
 * a 4xx with a clear message, in bounded time, while the server keeps serving others, and no reply
 * or log line ever holds the token or a key.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { EncryptionKey } from '../../common/secrets.js';
import { startCodecServer, type CodecServer } from '../../client/codec-server.js';
import { AesGcmCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../../workers/codec.js';

const TOKEN = 'tok_hostile_0123456789abcdef';
const ORIGIN = 'http://127.0.0.1:8233';
const key: EncryptionKey = (() => {
  const k = randomBytes(32);
  return { id: 'k1', key: k, encoded: k.toString('base64') };
})();
const b64 = (b: Uint8Array | string) => Buffer.from(b).toString('base64');
const asJson = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v!)])),
  data: b64(p.data!),
});
const AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

interface Raw {
  status: number;
  head: string;
  body: string;
  ms: number;
}

/** Send bytes over a raw socket (optionally in timed pieces); the reply, or status 0 when the server closed without one. */
function raw(
  port: number,
  pieces: Array<string | Buffer>,
  opts: { gapMs?: number; abortAfter?: number; waitMs?: number } = {},
): Promise<Raw> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    let timers: NodeJS.Timeout[] = [];
    const done = () => {
      for (const t of timers) clearTimeout(t);
      const end = got.indexOf('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0);
      resolve({ status, head: end < 0 ? got : got.slice(0, end), body: end < 0 ? '' : got.slice(end + 4), ms: Date.now() - t0 });
    };
    sock.on('data', (d) => {
      got += d.toString('utf8');
    });
    sock.on('close', done);
    sock.on('error', () => undefined);
    sock.on('connect', () => {
      timers = pieces.map((p, i) =>
        setTimeout(
          () => {
            if (!sock.destroyed) sock.write(p);
            if (opts.abortAfter !== undefined && i === opts.abortAfter) sock.destroy();
          },
          i * (opts.gapMs ?? 0),
        ),
      );
      timers.push(setTimeout(() => sock.destroy(), opts.waitMs ?? 20_000));
    });
  });
}

describe('the codec server against hostile callers', () => {
  const codec = new AesGcmCodec([key]);
  let server: CodecServer;
  const logged: string[] = [];
  const spies: Array<{ mockRestore(): void }> = [];

  const post = (path: string, body: string | Buffer, headers: Record<string, string> = AUTH) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body) });
  const error = async (r: Response) => {
    const text = await r.text();
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(key.encoded);
    return (JSON.parse(text) as { error: string }).error;
  };
  /** The server still answers a well-formed request at once. */
  const stillServes = async () => {
    const t0 = Date.now();
    const [p] = await codec.encode([defaultPayloadConverter.toPayload('still here')]);
    const r = await post('/decode', JSON.stringify({ payloads: [asJson(p!)] }));
    expect(r.status).toBe(200);
    const out = (await r.json()) as { payloads: Array<{ data: string }> };
    expect(Buffer.from(out.payloads[0]!.data, 'base64').toString()).toBe('"still here"');
    expect(Date.now() - t0).toBeLessThan(2000);
  };

  beforeAll(async () => {
    for (const m of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      spies.push(vi.spyOn(console, m).mockImplementation((...a: unknown[]) => void logged.push(a.map(String).join(' '))));
    }
    server = await startCodecServer({ port: 0, codec, token: TOKEN, corsOrigin: ORIGIN, bodyTimeoutMs: 2000 });
  });
  afterAll(async () => {
    await server?.close();
    for (const s of spies) s.mockRestore();
    // Nothing the server printed holds the token or a key.
    expect(logged.join('\n')).not.toContain(TOKEN);
    expect(logged.join('\n')).not.toContain(key.encoded);
  });

  // Holds already: JSON.parse is not recursive in V8, so depth costs no stack.
  it('answers 400 to bodies that are not JSON or not the expected shape, however deep', async () => {
    const cases: Array<[string | Buffer, RegExp]> = [
      ['', /not valid JSON/],
      [randomBytes(4096), /not valid JSON/],
      ['{"payloads": [', /not valid JSON/],
      ['\ufeff{"payloads": []}', /not valid JSON/],
      ['null', /must be \{ "payloads"/],
      ['42', /must be \{ "payloads"/],
      ['"payloads"', /must be \{ "payloads"/],
      ['{"payloads": "x"}', /must be \{ "payloads"/],
      ['{"payloads": {"0": {}}}', /must be \{ "payloads"/],
      ['{"payloads": null}', /must be \{ "payloads"/],
      [`${'['.repeat(100_000)}${']'.repeat(100_000)}`, /must be \{ "payloads"/],
      [`{"payloads":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, /payloads\[0\] must be an object/],
      [`{"payloads":[{"metadata":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}]}`, /metadata\.a must be a base64 string/],
      ['{"payloads":[{"metadata":[]}]}', /metadata must be an object/],
      ['{"payloads":[{"data":{"x":1}}]}', /data must be a base64 string/],
      ['{"payloads":[{"data":"not base64!"}]}', /data must be a base64 string/],
    ];
    for (const [body, re] of cases) {
      const r = await post('/decode', body);
      expect(r.status, String(body).slice(0, 40)).toBe(400);
      expect(await error(r)).toMatch(re);
    }
    await stillServes();
  });

  // Holds already: 413 before the body is read to its end.
  it('refuses a 100 MB body with 413 quickly, without reading it all', async () => {
    const t0 = Date.now();
    const big = Buffer.alloc(100 * 1024 * 1024, 0x20);
    const r = await post('/decode', big).catch((e: unknown) => e as Error);
    expect(r).toBeInstanceOf(Response);
    expect((r as Response).status).toBe(413);
    expect(await error(r as Response)).toMatch(/request body larger than 16777216 bytes/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await stillServes();
  });

  // Failed before the fix: a million `{}` were all encrypted, 27 s with the event loop blocked and
  // half a gigabyte of memory, then answered 200.
  it('refuses more than 10,000 payloads in one request with 413, at once', async () => {
    const t0 = Date.now();
    const r = await post('/encode', `{"payloads":[${Array(1_000_000).fill('{}').join(',')}]}`);
    expect(r.status).toBe(413);
    expect(await error(r)).toBe('1000000 payloads in one request: at most 10000');
    expect(Date.now() - t0).toBeLessThan(5000);
    // 10,000 is still served.
    const ok = await post('/encode', `{"payloads":[${Array(10_000).fill('{"data":"AA=="}').join(',')}]}`);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { payloads: unknown[] }).payloads).toHaveLength(10_000);
  });

  // Holds already: garbage is refused by the codec as a ValueError, answered 400, and the server stays up.
  it('answers 400 to base64 that decodes to garbage for the codec, never naming key material', async () => {
    const enc = (meta: Record<string, string>, data: Uint8Array) => JSON.stringify({ payloads: [{ metadata: meta, data: b64(data) }] });
    const encrypted = b64(ENCRYPTED_ENCODING);
    const [good] = await codec.encode([defaultPayloadConverter.toPayload('x')]);
    const flipped = new Uint8Array(good!.data!);
    flipped[20]! ^= 1;
    const cases: Array<[string, RegExp]> = [
      [enc({ encoding: encrypted, [KEY_ID_METADATA]: b64('k1') }, randomBytes(64)), /failed authentication/],
      [enc({ encoding: encrypted, [KEY_ID_METADATA]: b64('k1') }, flipped), /failed authentication/],
      [enc({ encoding: encrypted, [KEY_ID_METADATA]: b64('k1') }, randomBytes(5)), /too short/],
      [enc({ encoding: encrypted }, randomBytes(64)), /has no 'encryption-key-id' metadata/],
      [enc({ encoding: encrypted, [KEY_ID_METADATA]: b64(randomBytes(16)) }, randomBytes(64)), /not among the configured keys/],
    ];
    for (const [body, re] of cases) {
      const r = await post('/decode', body);
      expect(r.status).toBe(400);
      expect(await error(r)).toMatch(re);
    }
    // The caller's key id is echoed bounded and without control characters (it was echoed whole).
    const longId = await post(
      '/decode',
      enc({ encoding: encrypted, [KEY_ID_METADATA]: b64(`\u001b[31m${'x'.repeat(10_000)}`) }, randomBytes(64)),
    );
    const said = await error(longId);
    expect(said).toMatch(/key id '\?\[31mx{59}…', which is not among the configured keys/);
    expect(said.length).toBeLessThan(300);
    // A payload that is not encrypted is passed through unchanged, garbage or not.
    const junk = { metadata: { encoding: b64(randomBytes(8)) }, data: b64(randomBytes(32)) };
    const r = await post('/decode', JSON.stringify({ payloads: [junk] }));
    expect(r.status).toBe(200);
    expect(((await r.json()) as { payloads: unknown[] }).payloads).toEqual([junk]);
    await stillServes();
  });

  // Failed before the fix: a client sending a byte at a time held its request open for Node's
  // default 300 s, with no answer.
  it('answers 408 to a client that sends its body a byte at a time, and serves others meanwhile', async () => {
    const head = `POST /decode HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`;
    const slow = raw(server.port, [head, ...'{"payloads":[{"data":"AAAA"}]}'.split('')], { gapMs: 250 });
    await new Promise((r) => setTimeout(r, 500));
    await stillServes();
    const r = await slow;
    expect(r.status).toBe(408);
    expect(r.head).toMatch(/connection: close/i);
    expect(JSON.parse(r.body).error).toMatch(/request body not received in time \(the whole request must arrive within 2 s\)/);
    expect(r.ms).toBeLessThan(5000);
  });

  // Failed before the fix: slow headers were waited for Node's default 60 s.
  it('closes a connection whose headers trickle in', async () => {
    const pieces = 'POST /decode HTTP/1.1\r\nHost: x\r\nX-Slow: '.split('').concat(Array(40).fill('a'));
    const r = await raw(server.port, pieces, { gapMs: 200 });
    expect(r.status === 408 || r.status === 0).toBe(true);
    expect(r.ms).toBeLessThan(6000);
    await stillServes();
  });

  // Holds already: an aborted request is dropped and breaks nothing.
  it('drops a request aborted mid-body and keeps serving', async () => {
    const head = `POST /encode HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n`;
    for (let i = 0; i < 20; i++) {
      const r = await raw(server.port, [head, '{"payloads":[{"data":"AAAA'], { gapMs: 10, abortAfter: 1 });
      expect(r.status).toBe(0);
    }
    await stillServes();
  });

  // Holds already: the token is compared as SHA-256 digests with timingSafeEqual, so a token of
  // any length is just wrong (a raw timingSafeEqual would throw on a length mismatch).
  it('answers 401 to absent, wrong and look-alike tokens, never repeating them', async () => {
    const body = JSON.stringify({ payloads: [] });
    const wrong = [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.toUpperCase()}`,
      `Bearer x${TOKEN}`,
      `Bearer ${'a'.repeat(8000)}`,
      `Basic ${b64(`user:${TOKEN}`)}`,
      `Token ${TOKEN}`,
      `${TOKEN}`,
      `Bearer ${TOKEN.slice(0, 8)} ${TOKEN.slice(8)}`,
    ];
    for (const a of wrong) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (a !== undefined) headers.authorization = a;
      const r = await post('/decode', body, headers);
      expect(r.status, String(a).slice(0, 40)).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      const e = await error(r);
      expect(e).toBe('missing or wrong bearer token');
      expect(JSON.stringify([...r.headers])).not.toContain(TOKEN.slice(0, 12));
    }
    // Not in the query string either.
    expect((await post(`/decode?token=${TOKEN}`, body, { 'content-type': 'application/json' })).status).toBe(401);
    // The right token, with the scheme in any case and surrounding spaces, is accepted.
    expect((await post('/decode', body, { authorization: `  bearer   ${TOKEN}  ` })).status).toBe(200);
  });

  // Holds already: preflights from any other origin are refused without the CORS headers.
  it('refuses CORS preflights from other origins', async () => {
    for (const origin of [
      'https://evil.example',
      'null',
      'http://127.0.0.1:8234',
      'http://127.0.0.1',
      'https://127.0.0.1:8233',
      `${ORIGIN}.evil.example`,
    ]) {
      const r = await fetch(`${server.url}/decode`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
      });
      expect(r.status, origin).toBe(403);
      expect(r.headers.get('access-control-allow-origin')).toBeNull();
      expect(r.headers.get('access-control-allow-methods')).toBeNull();
      expect(await error(r)).toBe(`origin ${origin} is not allowed`);
    }
  });

  // Holds already: only POST (and preflights) reach the codec.
  it('answers 405 to methods other than POST, with Allow', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      const r = await fetch(`${server.url}/decode`, { method, headers: AUTH, ...(method === 'GET' ? {} : { body: '{"payloads":[]}' }) });
      expect(r.status, method).toBe(405);
      expect(r.headers.get('allow')).toBe('POST, OPTIONS');
      expect(await error(r)).toBe('method not allowed: use POST');
    }
    const head = await fetch(`${server.url}/encode`, { method: 'HEAD', headers: AUTH });
    expect(head.status).toBe(405);
  });

  // `..` paths held already (resolved as URLs, never files); a malformed request target answered
  // 500 "codec failure" before the fix.
  it('resolves `..` paths as URLs and answers 400 to a malformed request target', async () => {
    const req = (target: string) =>
      raw(server.port, [
        `POST ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{"payloads":[]}`,
      ]);
    for (const target of ['/../../etc/passwd', '/decode/../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2fdecode', '//evil/../x']) {
      const r = await req(target);
      expect(r.status, target).toBe(404);
      expect(JSON.parse(r.body).error).toBe('not found: POST /encode or /decode');
    }
    for (const target of ['/x/../decode', '/%2e%2e/decode']) expect((await req(target)).status, target).toBe(200);
    const bad = await req('http://[::1/decode');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toBe('malformed request target');
    await stillServes();
  });
});

/** Every line of a Prometheus text exposition, checked against the text format (0.0.4). */
function checkExposition(text: string): Array<{ name: string; labels: Record<string, string> }> {
  const samples: Array<{ name: string; labels: Record<string, string> }> = [];
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    // Values as Go's ParseFloat reads them (prom-client writes NaN as "Nan").
    if (line === '' || /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|[Nn]a[Nn]|[+-]Inf)( -?\d+)?$/s.exec(line);
    expect(m, line).not.toBeNull();
    const labels: Record<string, string> = {};
    const body = m![3] ?? '';
    // name="value" pairs: a value is any run of characters but `\` and `"`, or an escape of `\\`, `\"`, `\n`.
    const pair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
    let at = 0;
    while (at < body.length) {
      pair.lastIndex = at;
      const p = pair.exec(body);
      expect(p, `${line} at ${at}`).not.toBeNull();
      labels[p![1]!] = p![2]!.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
      at = pair.lastIndex;
    }
    samples.push({ name: m![1]!, labels });
  }
  return samples;
}

describe('the metrics endpoint with label values from user data', () => {
  // Holds already: prom-client escapes backslash, double quote and line feed, and the endpoint
  // writes UTF-8 (a lone surrogate becomes U+FFFD).
  it('keeps the exposition valid whatever the deployment, judge, check and model names hold', async () => {
    const m = await import('../../activities/metrics.js');
    const evil = [
      'a"b',
      'back\\slash',
      'trail\\',
      'new\nline',
      '}{x="y"} 1\nfake_metric 2',
      'cr\rx',
      'nul\u0000x',
      '\\"\\n',
      '👩‍👩‍👧 \u202e',
    ];
    for (const d of evil) {
      m.recordScoresWritten([{ deployment: d, judge: d, check_name: d, status: 'ok' }]);
      m.recordJudgeUsage(d, d, { calls: 1, promptTokens: 1, cachedTokens: 0, reasoningTokens: 0, completionTokens: 1 });
      m.recordGateDecision({ deployment: d, decision: d, effectiveDecision: d, rollback: { status: 'failed', deployer: d } });
      m.recordLlmRequest(d, { outcome: 'ok', latencyMs: 5, status: 200 } as never);
    }
    m.recordScoresWritten([{ deployment: 'lone\ud800x', judge: 'j', check_name: 'quality', status: 'ok' }]);
    m.watchCycleLag(async () => evil.map((deployment) => ({ deployment, lastTs: 1 })));
    const server = await m.serveMetrics({ port: 0, host: '127.0.0.1' });
    try {
      const r = await fetch(server.url);
      const bytes = Buffer.from(await r.arrayBuffer());
      const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      const samples = checkExposition(text);
      expect(samples.some((s) => s.name === 'fake_metric')).toBe(false);
      for (const d of evil) {
        expect(samples.some((s) => s.name === 'optiinfra_checks_total' && s.labels.deployment === d && s.labels.check === d)).toBe(true);
        expect(samples.some((s) => s.name === 'optiinfra_llm_requests_total' && s.labels.model === d)).toBe(true);
        expect(samples.some((s) => s.name === 'optiinfra_cycle_lag_seconds' && s.labels.deployment === d)).toBe(true);
      }
      expect(samples.some((s) => s.labels.deployment === 'lone\ufffdx')).toBe(true);
    } finally {
      await server.close();
    }
  });

  // Holds already: a source's model versions (and interaction ids) are never labels, so thousands
  // of them add no series.
  it('adds no series for thousands of distinct model versions', async () => {
    const m = await import('../../activities/metrics.js');
    const series = async () => (await m.registry.getSingleMetric('optiinfra_checks_total')!.get()).values.length;
    const before = await series();
    m.recordScoresWritten(
      Array.from({ length: 5000 }, (_, i) => ({
        deployment: 'dep-a',
        judge: 'offline',
        check_name: 'quality',
        status: 'ok',
        model_version: `v-${i}`,
        interaction_id: `i-${i}`,
      })),
    );
    expect(await series()).toBe(before + 1);
  });
});
