import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deliverRollback, signPayload, verifySignature, type RollbackRequest } from '../../activities/gate/rollback.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { failureOf } from '../helpers/async.js';

const SECRET = 'whsec_test_0123456789';

const req: RollbackRequest = {
  gateId: 'gate/chatbot/v2',
  deployment: 'chatbot',
  fromVersion: 'v2',
  toVersion: 'v1',
  reason: 'quality dropped 12 points (87 % → 75 %, threshold 5)',
  idempotencyKey: 'rollback:gate/chatbot/v2',
};

describe('verifySignature', () => {
  const ts = '1700000000';
  const body = '{"event":"rollback"}';
  const now = 1700000000 * 1000;

  it('accepts a correct signature and rejects a tampered body, a wrong secret and a malformed header', () => {
    const sig = signPayload(SECRET, ts, body);
    expect(sig).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, ts, body, sig, { now })).toBe(true);
    expect(verifySignature(SECRET, ts, body.replace('rollback', 'rollbacK'), sig, { now })).toBe(false);
    expect(verifySignature('another-secret', ts, body, sig, { now })).toBe(false);
    expect(verifySignature(SECRET, ts, body, undefined, { now })).toBe(false);
    expect(verifySignature(SECRET, ts, body, 'sha256=abc', { now })).toBe(false);
    expect(verifySignature(SECRET, ts, body, sig.replace('sha256=', 'sha1='), { now })).toBe(false);
    // The timestamp is part of what is signed.
    expect(verifySignature(SECRET, '1700000001', body, sig, { now })).toBe(false);
  });

  it('rejects stale (and far-future) timestamps, with a configurable tolerance', () => {
    const sig = signPayload(SECRET, ts, body);
    expect(verifySignature(SECRET, ts, body, sig, { now: now + 299_000 })).toBe(true);
    expect(verifySignature(SECRET, ts, body, sig, { now: now + 301_000 })).toBe(false);
    expect(verifySignature(SECRET, ts, body, sig, { now: now - 301_000 })).toBe(false);
    expect(verifySignature(SECRET, ts, body, sig, { now: now + 3_600_000, toleranceSec: 7200 })).toBe(true);
    expect(verifySignature(SECRET, 'not-a-number', body, sig, { now })).toBe(false);
  });
});

describe('deliverRollback: webhook', () => {
  let rx: WebhookReceiver | undefined;
  afterEach(async () => {
    await rx?.close();
    rx = undefined;
  });

  it('delivers a signed JSON rollback that the receiver verifies', async () => {
    rx = await startWebhookReceiver({ secret: SECRET });
    const before = Math.floor(Date.now() / 1000);
    const r = await deliverRollback({ type: 'webhook', url: rx.url }, req, { webhookSecret: SECRET });
    expect(r.status).toBe('delivered');
    expect(r.detail).toContain('answered 200');
    expect(r.detail).toContain('signed with HMAC-SHA256');
    expect(r.detail).not.toContain(SECRET);
    expect(rx.calls).toHaveLength(1);
    const call = rx.calls[0]!;
    expect(call.method).toBe('POST');
    expect(call.signatureValid).toBe(true);
    expect(call.headers['content-type']).toBe('application/json');
    expect(call.headers['idempotency-key']).toBe(req.idempotencyKey);
    const ts = Number(call.headers['x-optiinfra-timestamp']);
    expect(ts).toBeGreaterThanOrEqual(before);
    expect(ts).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(call.body).toMatchObject({
      event: 'rollback',
      gate_id: 'gate/chatbot/v2',
      deployment: 'chatbot',
      from_version: 'v2',
      to_version: 'v1',
      reason: req.reason,
      idempotency_key: req.idempotencyKey,
    });
    expect(new Date(String(call.body?.sent_at)).getTime()).toBeGreaterThan(0);

    // The same request with a tampered body, or replayed later, does not verify.
    const tampered = call.rawBody.replace('"to_version":"v1"', '"to_version":"v0"');
    expect(tampered).not.toBe(call.rawBody);
    expect(verifySignature(SECRET, call.headers['x-optiinfra-timestamp']!, tampered, call.headers['x-optiinfra-signature'])).toBe(false);
    expect(
      verifySignature(SECRET, call.headers['x-optiinfra-timestamp']!, call.rawBody, call.headers['x-optiinfra-signature'], {
        now: (ts + 301) * 1000,
      }),
    ).toBe(false);
  });

  it('sends no signature header without a secret and says so', async () => {
    rx = await startWebhookReceiver({ secret: SECRET });
    const r = await deliverRollback({ type: 'webhook', url: rx.url }, req, {});
    expect(r.status).toBe('delivered');
    expect(r.detail).toMatch(/UNSIGNED/);
    expect(rx.calls[0]!.headers['x-optiinfra-signature']).toBeUndefined();
    expect(rx.calls[0]!.signatureValid).toBe(false);
  });

  it('counts 409 (already processed) as delivered; retries keep one idempotency key', async () => {
    rx = await startWebhookReceiver({ secret: SECRET, respond: () => (rx!.calls.length > 1 ? 409 : 202) });
    const first = await deliverRollback({ type: 'webhook', url: rx.url }, req, { webhookSecret: SECRET });
    const second = await deliverRollback({ type: 'webhook', url: rx.url }, req, { webhookSecret: SECRET });
    expect(first.status).toBe('delivered');
    expect(second.status).toBe('delivered');
    expect(second.detail).toContain('409');
    expect(rx.calls).toHaveLength(2);
    expect(rx.distinctKeys()).toBe(1);
  });

  it('500 is a retryable DeployerUnavailable with the receiver message, secrets redacted', async () => {
    rx = await startWebhookReceiver({ respond: () => ({ status: 500, body: `database down (token ${SECRET})` }) });
    const f = await failureOf(deliverRollback({ type: 'webhook', url: rx.url }, req, { webhookSecret: SECRET }));
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain('answered 500');
    expect(f.message).toContain('database down');
    expect(f.message).not.toContain(SECRET);
    expect(f.message).toContain('[REDACTED]');
  });

  it('400 is a non-retryable DeployerRejected', async () => {
    rx = await startWebhookReceiver({ respond: () => ({ status: 400, body: 'unknown deployment' }) });
    const f = await failureOf(deliverRollback({ type: 'webhook', url: rx.url }, req, {}));
    expect(f.type).toBe('DeployerRejected');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('400');
    expect(f.message).toContain('unknown deployment');
  });

  it('401 says to check the shared secret', async () => {
    rx = await startWebhookReceiver({ respond: () => 401 });
    const f = await failureOf(deliverRollback({ type: 'webhook', url: rx.url }, req, { webhookSecret: SECRET }));
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/same webhook secret/);
  });

  it('429 with retry-after sets nextRetryDelay', async () => {
    rx = await startWebhookReceiver({ respond: () => ({ status: 429, headers: { 'retry-after': '7' } }) });
    const f = await failureOf(deliverRollback({ type: 'webhook', url: rx.url }, req, {}));
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.nonRetryable).toBe(false);
    expect(f.nextRetryDelay).toBe(7000);
    expect(f.message).toContain('after 7 s');
  });

  it('a slow receiver is a retryable timeout', async () => {
    rx = await startWebhookReceiver({ delayMs: 2000 });
    const f = await failureOf(deliverRollback({ type: 'webhook', url: rx.url }, req, { timeoutMs: 200 }));
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain('did not answer within 0.2 s');
  });

  it('at least once: a receiver slower than the timeout sees the retry with the same key; the deployer timeout fixes it', async () => {
    rx = await startWebhookReceiver({ delayMs: 600 });
    // The first attempt times out after the receiver got it; the retry (Temporal's) sends it again.
    await failureOf(deliverRollback({ type: 'webhook', url: rx.url }, req, { timeoutMs: 200 }));
    await failureOf(deliverRollback({ type: 'webhook', url: rx.url }, req, { timeoutMs: 200 }));
    await new Promise((r) => setTimeout(r, 700));
    expect(rx.calls).toHaveLength(2);
    expect(rx.distinctKeys()).toBe(1);
    // The deployer's own timeout (`--rollback-timeout`, `timeoutSeconds`) outlasts the receiver: one call.
    const before = rx.calls.length;
    const ok = await deliverRollback({ type: 'webhook', url: rx.url, timeoutSeconds: 5 }, req, { timeoutMs: 200 });
    expect(ok.status).toBe('delivered');
    expect(rx.calls.length - before).toBe(1);
  });

  it('credentials in the URL become Basic auth and stay out of the detail', async () => {
    rx = await startWebhookReceiver();
    const url = new URL(rx.url);
    url.username = 'ops';
    url.password = 'hunter2pass';
    const r = await deliverRollback({ type: 'webhook', url: url.toString() }, req, {});
    expect(r.status).toBe('delivered');
    expect(rx.calls[0]!.headers.authorization).toBe(`Basic ${Buffer.from('ops:hunter2pass').toString('base64')}`);
    expect(r.detail).not.toContain('hunter2pass');
  });

  it('a redirect is not followed and is non-retryable', async () => {
    rx = await startWebhookReceiver({ respond: () => ({ status: 307, headers: { location: 'http://127.0.0.1:1/elsewhere' } }) });
    const f = await failureOf(deliverRollback({ type: 'webhook', url: rx.url }, req, {}));
    expect(f.type).toBe('DeployerRejected');
    expect(f.message).toContain('redirect (307 to http://127.0.0.1:1/elsewhere)');
    expect(rx.calls).toHaveLength(1);
  });

  it('a receiver that is down is retryable; credentials and query tokens stay out of the message', async () => {
    const tmp = await startWebhookReceiver();
    const url = new URL(tmp.url);
    await tmp.close();
    url.username = 'ops';
    url.password = 'hunter2pass';
    url.search = '?token=abcdef123';
    const f = await failureOf(deliverRollback({ type: 'webhook', url: url.toString() }, req, {}));
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(/unreachable/);
    expect(f.message).toMatch(/ECONNREFUSED/);
    expect(f.message).not.toContain('hunter2pass');
    expect(f.message).not.toContain('abcdef123');
  });
});

describe('deliverRollback: command', () => {
  let dir: string;
  const savedKey = process.env.GROQ_API_KEY;
  const savedDb = process.env.DATABASE_URL;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'optiinfra-deployer-'));
    process.env.GROQ_API_KEY = 'gsk_should_not_leak_123456';
    process.env.DATABASE_URL = 'postgres://u:pw-should-not-leak@localhost/db';
  });
  afterAll(async () => {
    if (savedKey === undefined) delete process.env.GROQ_API_KEY;
    else process.env.GROQ_API_KEY = savedKey;
    if (savedDb === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = savedDb;
    await rm(dir, { recursive: true, force: true });
  });

  const writeEnvScript =
    "require('fs').writeFileSync(process.argv[1], JSON.stringify({ env: process.env, args: process.argv.slice(2) })); console.log('rolled back');";

  it('passes the rollback as env vars, arguments literally (no shell) and no worker secrets', async () => {
    const out = path.join(dir, 'env.json');
    const victim = path.join(dir, 'victim');
    await import('node:fs/promises').then((fs) => fs.writeFile(victim, 'still here'));
    const nasty = `; rm -rf ${victim}`;
    const r = await deliverRollback(
      { type: 'command', argv: [process.execPath, '-e', writeEnvScript, out, nasty, '$(whoami)', '`id`'] },
      req,
      {},
    );
    expect(r.status).toBe('delivered');
    expect(r.detail).toContain('exited with 0');
    expect(r.detail).toContain('rolled back');
    const got = JSON.parse(await readFile(out, 'utf8')) as { env: Record<string, string>; args: string[] };
    expect(got.args).toEqual([nasty, '$(whoami)', '`id`']);
    expect((await stat(victim)).isFile()).toBe(true);
    expect(got.env).toMatchObject({
      OPTIINFRA_GATE_ID: 'gate/chatbot/v2',
      OPTIINFRA_DEPLOYMENT: 'chatbot',
      OPTIINFRA_FROM_VERSION: 'v2',
      OPTIINFRA_TO_VERSION: 'v1',
      OPTIINFRA_REASON: req.reason,
      OPTIINFRA_IDEMPOTENCY_KEY: req.idempotencyKey,
    });
    expect(got.env.GROQ_API_KEY).toBeUndefined();
    expect(got.env.DATABASE_URL).toBeUndefined();
    expect(JSON.stringify(got.env)).not.toContain('should-not-leak');
    expect(JSON.stringify(got.env)).not.toContain('should_not_leak');
    if (process.env.PATH) expect(got.env.PATH).toBe(process.env.PATH);
    const allowed = new Set(['PATH', 'HOME', 'LANG']);
    // Node itself may add nothing else; everything beyond the minimal set is ours.
    for (const k of Object.keys(got.env)) {
      expect(allowed.has(k) || k.startsWith('OPTIINFRA_')).toBe(true);
    }
  });

  it('a non-zero exit is retryable with the stderr tail, secrets redacted', async () => {
    const script = `process.stderr.write('x'.repeat(5000) + ' kubectl: context not found; token ${SECRET}'); process.exit(3)`;
    const f = await failureOf(deliverRollback({ type: 'command', argv: [process.execPath, '-e', script] }, req, { secrets: [SECRET] }));
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain('exited with 3');
    expect(f.message).toContain('kubectl: context not found');
    expect(f.message).not.toContain(SECRET);
    expect(f.message.length).toBeLessThan(2600);
  });

  it('a command that runs too long is stopped and retryable', async () => {
    const f = await failureOf(
      deliverRollback({ type: 'command', argv: [process.execPath, '-e', 'setTimeout(() => {}, 60000)'] }, req, { timeoutMs: 300 }),
    );
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.message).toContain('did not finish within 0.3 s');
  });

  it('a missing program is non-retryable and says what to fix', async () => {
    const f = await failureOf(deliverRollback({ type: 'command', argv: ['/nonexistent/optiinfra-rollback-xyz', '--now'] }, req, {}));
    expect(f.type).toBe('DeployerRejected');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('ENOENT');
    expect(f.message).toContain('deployer.argv[0]');
  });
});

describe('deliverRollback: dry-run', () => {
  it('says what it would do and does nothing', async () => {
    const r = await deliverRollback({ type: 'dry-run' }, req, {});
    expect(r).toEqual({ status: 'dry-run', detail: 'would roll chatbot back from v2 to v1' });
  });
});
