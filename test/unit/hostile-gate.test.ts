/**
 * Hostile inputs and outputs of the deploy gate: rollback receivers built to stall, loop or leak,
 * gate options that look like numbers but are not, malformed statistics, and CLI input refused
 * before anything connects.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { deliverRollback, type RollbackRequest } from '../../activities/gate/rollback.js';
import { MAX_WEBHOOK_RETRY_DELAY_MS } from '../../activities/gate/webhook.js';
import { intArg, pointsArg } from '../../client/cli/args.js';
import { withoutUrlSecrets } from '../../client/gate.js';
import { decideLook } from '../../domain/gate/stats.js';
import { DEFAULT_RULE, gateInputSchema, type SampleStats, type VersionStats } from '../../domain/gate/types.js';
import { failureOf } from '../helpers/async.js';
import { runCli } from '../helpers/cli.js';

const req: RollbackRequest = {
  gateId: 'gate/chatbot/v2/77',
  deployment: 'chatbot',
  fromVersion: 'v2',
  toVersion: 'v1',
  reason: 'quality dropped 12 points',
  idempotencyKey: 'gate/chatbot/v2/77/run-1',
};

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A receiver that answers each request with `handler` once the request body has arrived. */
async function receiver(handler: Handler): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((rq, rs) => {
    rq.resume();
    rq.on('end', () => handler(rq, rs));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/rollback`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('rollback webhook: receivers built to stall or leak', () => {
  let rx: { url: string; close(): Promise<void> } | undefined;
  afterEach(async () => {
    await rx?.close();
    rx = undefined;
  });

  it('429 with retry-after of a day waits at most the retry policy maximum, and says so', async () => {
    rx = await receiver((_q, s) => s.writeHead(429, { 'retry-after': '86400' }).end('slow down'));
    const f = await failureOf(deliverRollback({ type: 'webhook', url: rx.url }, req, {}));
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.nonRetryable).toBe(false);
    expect(f.nextRetryDelay).toBe(MAX_WEBHOOK_RETRY_DELAY_MS);
    expect(MAX_WEBHOOK_RETRY_DELAY_MS).toBe(120_000);
    expect(f.message).toContain('it asked for 86400 s');
    expect(f.message).toContain('after 120 s');
  });

  it('429 with retry-after of 1e308 falls back to the retry policy (no delay of its own)', async () => {
    rx = await receiver((_q, s) => s.writeHead(429, { 'retry-after': '1e308' }).end());
    const f = await failureOf(deliverRollback({ type: 'webhook', url: rx.url }, req, {}));
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.nextRetryDelay).toBeUndefined();
  });

  it('an error status whose body never ends fails within the timeout, with what arrived', async () => {
    rx = await receiver((_q, s) => {
      s.writeHead(500, { 'content-type': 'text/plain' });
      s.write('database down; ');
      // Never ends.
    });
    const t0 = Date.now();
    const f = await failureOf(deliverRollback({ type: 'webhook', url: rx.url, timeoutSeconds: 1 }, req, {}));
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.message).toContain('answered 500');
  }, 10_000);

  it('an error status with an endless body is read only as far as the snippet needs', async () => {
    const chunk = 'x'.repeat(64 * 1024);
    let sent = 0;
    rx = await receiver((_q, s) => {
      s.writeHead(503, { 'content-type': 'text/plain' });
      s.write('maintenance: ');
      const pump = () => {
        // At most 32 MB, then the body stays open without ending.
        while (sent < 32 * 1024 * 1024 && !s.destroyed) {
          sent += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
      };
      pump();
    });
    const t0 = Date.now();
    const f = await failureOf(deliverRollback({ type: 'webhook', url: rx.url, timeoutSeconds: 5 }, req, {}));
    // Without a bound the whole 32 MB are read and the body then waits for the 5 s timeout.
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.message).toMatch(/answered 503 \(unavailable\): maintenance: x+…/);
    expect(sent).toBeLessThan(32 * 1024 * 1024);
  }, 15_000);

  it('a token in the user part of the URL (no password) never appears in a message', async () => {
    const token = 'ghp_AbCdEf0123456789token';
    rx = await receiver((q, s) => {
      const auth = Buffer.from(String(q.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
      s.writeHead(403).end(`user ${auth.split(':')[0]} may not roll back`);
    });
    const url = new URL(rx.url);
    url.username = token;
    const f = await failureOf(deliverRollback({ type: 'webhook', url: url.toString() }, req, {}));
    expect(f.type).toBe('DeployerRejected');
    expect(f.message).toContain('refused the request with 403');
    expect(f.message).not.toContain(token);
    expect(f.message).toContain('[REDACTED]');
  });

  it('a secret echoed where the snippet is clipped is redacted before clipping (no partial secret)', async () => {
    const secret = 'whsec_clip_0123456789abcdef';
    rx = await receiver((_q, s) => s.writeHead(500).end(`${'e'.repeat(290)}${secret}`));
    const f = await failureOf(deliverRollback({ type: 'webhook', url: rx.url }, req, { webhookSecret: secret }));
    expect(f.message).not.toContain(secret.slice(0, 8));
    expect(f.message).toContain('[REDACTED]');
  });

  it('a redirect to an unparseable location is a clear non-retryable refusal', async () => {
    rx = await receiver((_q, s) => s.writeHead(302, { location: 'http://[::1' }).end());
    const f = await failureOf(deliverRollback({ type: 'webhook', url: rx.url }, req, {}));
    expect(f.type).toBe('DeployerRejected');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('answered a redirect (302 to an unparseable location)');
    expect(f.message).toContain('configure the final URL in deployer.url');
  });

  it('a redirect loop is not followed: one request, refused', async () => {
    let calls = 0;
    rx = await receiver((_q, s) => {
      calls++;
      s.writeHead(301, { location: '/rollback' }).end();
    });
    const f = await failureOf(deliverRollback({ type: 'webhook', url: `${rx.url}?token=loop-secret-1` }, req, {}));
    expect(f.type).toBe('DeployerRejected');
    expect(calls).toBe(1);
    expect(f.message).not.toContain('loop-secret-1');
  });

  it('a receiver that accepts the connection and never answers times out', async () => {
    rx = await receiver(() => undefined);
    const t0 = Date.now();
    const f = await failureOf(deliverRollback({ type: 'webhook', url: rx.url, timeoutSeconds: 1 }, req, {}));
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.message).toContain('did not answer within 1 s');
  }, 10_000);

  it('200 with a huge body is delivered without reading it', async () => {
    rx = await receiver((_q, s) => {
      s.writeHead(200, { 'content-type': 'text/plain' });
      s.write('y'.repeat(1024 * 1024));
      // Never ends.
    });
    const t0 = Date.now();
    const r = await deliverRollback({ type: 'webhook', url: rx.url, timeoutSeconds: 5 }, req, {});
    expect(r.status).toBe('delivered');
    expect(Date.now() - t0).toBeLessThan(2500);
  }, 10_000);
});

describe('gate options that look like numbers', () => {
  it.each(['', '   ', '0x10', '0b101', '0o7', 'Infinity', '-Infinity', 'NaN', '5%', '0.5%', '1,5', '5 points'])(
    'points %j are refused',
    (v) => {
      expect(() => pointsArg('--quality-drop')(v)).toThrow(/--quality-drop must be a number of points, e\.g\. 5/);
    },
  );

  it('points: decimals, exponents and zero are read as numbers; negatives and > 100 are refused with the bound', () => {
    expect(pointsArg('--quality-drop')('5')).toBe(0.05);
    expect(pointsArg('--quality-drop')('2.5')).toBe(0.025);
    expect(pointsArg('--quality-drop')('0')).toBe(0);
    expect(pointsArg('--quality-drop')('1e1')).toBeCloseTo(0.1);
    expect(() => pointsArg('--quality-drop')('-5')).toThrow(/must not be negative/);
    expect(() => pointsArg('--quality-drop')('1e308')).toThrow(/at most 100 points/);
  });

  it.each(['', ' ', '0x1e', '0b11110', '30.5', 'Infinity', '1e400'])('integer %j is refused with the bounds', (v) => {
    expect(() => intArg('min samples', 5, 1_000_000)(v)).toThrow(/min samples must be an integer from 5 to 1000000/);
  });

  it('integers are read as numbers', () => {
    expect(intArg('min samples', 5, 1_000_000)('30')).toBe(30);
    expect(intArg('min samples', 5, 1_000_000)('1e3')).toBe(1000);
  });
});

describe('decideLook: malformed statistics never approve (nor reject)', () => {
  const s = (mean: number, n = 1000, sd = 0.1): SampleStats => ({ n, mean, sd });
  const version = (q: SampleStats): VersionStats => ({
    quality: q,
    hallucination_rate: { n: 1000, mean: 0.05, sd: 0.2 },
    toxicity_rate: { n: 1000, mean: 0, sd: 0 },
  });
  const base = version(s(0.8));
  // NaN crosses Temporal's JSON payloads as null.
  const nul = null as unknown as number;

  it.each<[string, VersionStats, VersionStats]>([
    ['baseline quality mean null (NaN after JSON)', version(s(nul)), version(s(0.5))],
    ['baseline quality mean negative', version(s(-5)), version(s(0.1))],
    ['candidate quality mean above 1', base, version(s(2))],
    ['candidate quality sd null', base, version({ n: 1000, mean: 0.8, sd: nul })],
    ['candidate quality n fractional', base, version({ n: 1000.5, mean: 0.8, sd: 0.1 })],
    ['candidate quality mean null', base, version(s(nul))],
    ['candidate hallucination rate null', base, { ...version(s(0.8)), hallucination_rate: { n: 1000, mean: nul, sd: 0 } }],
  ])('%s', (_label, b, c) => {
    const look = decideLook(b, c, DEFAULT_RULE);
    expect(look.outcome).toBe('CONTINUE');
    expect(look.reason).toMatch(/statistics are malformed/);
  });

  it('a gate carried across continue-as-new with such a baseline goes on waiting, not failing its input', () => {
    const input = {
      deployment: 'd',
      baselineVersion: 'v1',
      candidateVersion: 'v2',
      carry: {
        startedAt: 1,
        deadline: 2,
        looks: 3,
        settings: {
          judge: 'offline',
          promptVersions: { quality: 'q', hallucination: 'h', toxicity: 't' },
          judgeTaskQueue: 'q',
          llmTimeoutSec: 30,
          llmMaxRetries: 3,
        },
        baseline: { id: 'b', samples: 1000, stats: version(s(nul)) },
      },
    };
    expect(gateInputSchema.safeParse(input).success).toBe(true);
    expect(gateInputSchema.safeParse({ ...input, carry: { ...input.carry, baseline: null } }).success).toBe(false);
  });

  it('well-formed statistics still decide', () => {
    expect(decideLook(base, version(s(0.8)), DEFAULT_RULE).outcome).toBe('APPROVE');
    expect(decideLook(base, version(s(0.5)), DEFAULT_RULE).outcome).toBe('REJECT');
  });
});

describe('gate CLI: bad input is refused before anything connects', () => {
  const run = runCli;

  const gate = ['gate', '--deployment', 'shop-bot', '--candidate', 'v2'];

  it.each<[string, string[], RegExp]>([
    ['baseline equal to the candidate', [...gate, '--baseline', 'v2'], /invalid gate: candidateVersion: candidate version must differ/],
    [
      'a webhook URL that is not http(s)',
      [...gate, '--baseline', 'v1', '--rollback-webhook', 'ftp://ops:hook-pass-1234@h/x?token=tok-5678'],
      /invalid gate: deployer\.url: webhook url must be an http:\/\/ or https:\/\/ URL/,
    ],
    [
      'a webhook URL that does not parse',
      [...gate, '--baseline', 'v1', '--rollback-webhook', 'http://ops:hook-pass-1234@[::1/x?token=tok-5678'],
      /invalid gate: deployer\.url: webhook url must be an http:\/\/ or https:\/\/ URL/,
    ],
    [
      'an empty rollback program (not a silent dry-run)',
      [...gate, '--baseline', 'v1', '--rollback-command', ''],
      /invalid gate: deployer\.argv\.0: the rollback program and its arguments must not be empty/,
    ],
    [
      'an empty webhook URL (not a silent dry-run)',
      [...gate, '--baseline', 'v1', '--rollback-webhook', ''],
      /invalid gate: deployer\.url: webhook url must be an http:\/\/ or https:\/\/ URL/,
    ],
  ])('%s', async (_label, args, message) => {
    const r = await run(args);
    expect(r.code).toBe(3);
    expect(r.out).toMatch(message);
    expect(r.out).not.toMatch(/ECONNREFUSED|cannot reach|hook-pass-1234|tok-5678|dbpass-5678/);
  });

  it('a store that cannot be reached is named, with where and what to set, without its credentials', async () => {
    const r = await run(['scores', '--deployment', 'shop-bot'], { CLICKHOUSE_URL: 'http://ch:chpass-9012@127.0.0.1:1' });
    expect(r.code).toBe(3);
    expect(r.out).toMatch(
      /cannot use ClickHouse at http:\/\/127\.0\.0\.1:1\/ \(.*ECONNREFUSED.*\): run 'optiinfra stack up' or set CLICKHOUSE_URL/,
    );
    expect(r.out).not.toMatch(/chpass-9012|dbpass-5678/);
  });

  it('a malformed CI run id from the environment is refused before connecting', async () => {
    const r = await run([...gate, '--baseline', 'v1'], { GITHUB_RUN_ID: 'run 42; rm -rf /' });
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/CI run id 'run 42; rm -rf \/' must be letters, digits/);
    expect(r.out).not.toMatch(/ECONNREFUSED|cannot reach/);
  });

  it('an override without a reason is refused before connecting to Temporal', async () => {
    const r = await run(['gate', 'override', '--deployment', 'shop-bot', '--candidate', 'v2', '--action', 'approve', '--reason', '   ']);
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/invalid override: reason: an override needs a reason/);
    expect(r.out).not.toMatch(/cannot reach/);
    expect(r.ms).toBeLessThan(5000);
  }, 20_000);
});

describe('rollback webhook URL: what the workflow is given', () => {
  const base = { deployment: 'd', baselineVersion: 'v1', candidateVersion: 'v2' };
  const split = (url: string) => withoutUrlSecrets({ ...base, deployer: { type: 'webhook', url } });

  it('keeps credentials, a query and a fragment out of the gate input; only what is secret is stored', () => {
    expect(split('https://TOKEN@hooks.example/rollback?sig=abc#frag')).toEqual({
      input: { ...base, deployer: { type: 'webhook', url: 'https://hooks.example/rollback', storedUrl: true } },
      secretUrl: 'https://TOKEN@hooks.example/rollback?sig=abc#frag',
    });
    // A fragment is never sent over HTTP: dropped, nothing to store.
    expect(split('https://hooks.example/rollback#token')).toEqual({
      input: { ...base, deployer: { type: 'webhook', url: 'https://hooks.example/rollback' } },
    });
    expect(split('https://hooks.example/rollback')).toEqual({
      input: { ...base, deployer: { type: 'webhook', url: 'https://hooks.example/rollback' } },
    });
  });
});
