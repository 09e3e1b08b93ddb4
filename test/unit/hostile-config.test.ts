/**
 * Hostile configuration and process environment: every variable given empty, blank, CR/LF-ended,
 * quoted, look-alike, huge, out-of-range and conflicting values; secrets that must never be
 * printed; and the process itself (TZ, a deleted working directory, a closed stdout, no HOME).
 * Each test says whether it pins behaviour that already held ("pins") or failed before the fix.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isoArg } from '../../client/cli/args.js';
import { ConfigError, loadConfig } from '../../common/config.js';
import { envSchema } from '../../common/env-schema.js';
import { maskUrl, redact, secretsOf } from '../../common/secrets.js';
import { parseUtcDate } from '../../common/types.js';
import { interactionSchema } from '../../domain/collector/record.js';
import { runCli } from '../helpers/cli.js';

const KEY32 = Buffer.alloc(32, 7).toString('base64');

/** The message of loadConfig's ConfigError (fails the test when it does not throw one). */
function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(env).slice(0, 200)}`);
}

/** A sane value for every variable (the clean look-alike of each hostile value below). */
const SANE: Record<string, string> = {
  GROQ_API_KEY: 'gsk_live_0123456789abcdef',
  GROQ_MODEL: 'openai/gpt-oss-20b',
  GROQ_BASE_URL: 'https://api.groq.com/openai/v1',
  LLM_ENABLED: 'true',
  LLM_TIMEOUT: '30',
  LLM_MAX_RETRIES: '3',
  LLM_REQUESTS_PER_SECOND: '10',
  LLM_CONCURRENCY: '20',
  LLM_REASONING_EFFORT: 'low',
  LLM_JUDGE_MODE: 'combined',
  LLM_MAX_WAIT: '7200',
  OPTIINFRA_WORKER_HEAP_MB: '256',
  OPTIINFRA_MAX_RECORD_AGE_DAYS: '3650',
  OPTIINFRA_MAX_CLOCK_AHEAD_MINUTES: '1440',
  GROQ_PLAN: 'free',
  GROQ_RPM: '30',
  GROQ_RPD: '1K',
  GROQ_TPM: '8000',
  GROQ_TPD: '200K',
  GROQ_SERVICE_TIER: 'flex',
  TEMPORAL_ADDRESS: 'my-ns.a1b2c.tmprl.cloud:7233',
  TEMPORAL_NAMESPACE: 'my-ns.a1b2c',
  TEMPORAL_UI_URL: 'https://cloud.temporal.io',
  TEMPORAL_TASK_QUEUE: 'optiinfra',
  TEMPORAL_API_KEY: 'tmprl_0123456789abcdef',
  TEMPORAL_TLS: 'true',
  TEMPORAL_TLS_CERT: '/etc/optiinfra/client.pem',
  TEMPORAL_TLS_KEY: '/etc/optiinfra/client.key',
  TEMPORAL_TLS_CA: '/etc/optiinfra/ca.pem',
  TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
  CLICKHOUSE_URL: 'http://default:chpass-9876@ch.internal:8123',
  CLICKHOUSE_DATABASE: 'optiinfra',
  DATABASE_URL: 'postgres://app:p%40ss%3Aw%2Frd%25@db.internal:5432/optiinfra?sslmode=require',
  OPTIINFRA_HOME: '/var/lib/optiinfra',
  OPTIINFRA_WEBHOOK_SECRET: 'whsec-0123456789abcdef',
  OPTIINFRA_ENCRYPTION_KEYS: `k2025:${KEY32}`,
  OPTIINFRA_CODEC_TOKEN: 'codec-0123456789abcdef',
  OPTIINFRA_CODEC_CORS_ORIGIN: 'https://ui.example.com',
  OPTIINFRA_METRICS_PORT: '127.0.0.1:9464',
};
const SECRET_VARS = ['GROQ_API_KEY', 'TEMPORAL_API_KEY', 'OPTIINFRA_WEBHOOK_SECRET', 'OPTIINFRA_CODEC_TOKEN', 'OPTIINFRA_ENCRYPTION_KEYS'];

describe('every variable: sane, blank, CR/LF-ended, quoted, huge', () => {
  it('the list above covers every variable the schema reads', () => {
    expect(Object.keys(SANE).sort()).toEqual(Object.keys(envSchema.shape).sort());
  });

  it('accepts the sane value of every variable at once (clean look-alikes; pins)', () => {
    const c = loadConfig(SANE);
    expect(c.groq.limits).toEqual({ rpm: 30, rpd: 1000, tpm: 8000, tpd: 200_000 });
    expect(secretsOf(c)).toContain('p@ss:w/rd%');
  });

  it('a trailing LF, CRLF or surrounding spaces are trimmed from every variable (webhook secret failed before)', () => {
    for (const end of ['\n', '\r\n', '\r', '  ']) {
      const env = Object.fromEntries(Object.entries(SANE).map(([k, v]) => [k, ` ${v}${end}`]));
      const [a, b] = [loadConfig(env), loadConfig(SANE)];
      expect(a).toEqual(b);
      // The HMAC key of rollback webhooks kept the line break: every signature would differ.
      expect(a.webhookSecret).toBe('whsec-0123456789abcdef');
    }
  });

  it('empty or blank means unset for every variable (LLM_ENABLED and the webhook secret refused blanks before)', () => {
    const dflt = loadConfig({});
    for (const blank of ['', '   ', '\n', '\r\n']) {
      const env = Object.fromEntries(Object.keys(SANE).map((k) => [k, blank]));
      expect(loadConfig(env)).toEqual(dflt);
    }
  });

  it.each(Object.keys(SANE))('%s wrapped in quotes is refused by name, without the value (failed before for most)', (name) => {
    for (const q of ['"', "'"]) {
      const msg = refusal({ [name]: `${q}${SANE[name]}${q}` });
      expect(msg).toMatch(new RegExp(`${name} is wrapped in quotes: remove them`));
      expect(msg).not.toContain(SANE[name]);
    }
  });

  it.each(Object.keys(SANE))('%s of 1 MB is refused by name in one short line (failed before for free-text variables)', (name) => {
    const msg = refusal({ [name]: 'a'.repeat(1_000_000) });
    expect(msg).toMatch(new RegExp(`${name} is 1000000 characters long; at most 4096`));
    expect(msg.length).toBeLessThan(200);
  });

  it('a second line inside any value is refused without showing it (failed before: secrets kept it)', () => {
    for (const name of Object.keys(SANE)) {
      const msg = refusal({ [name]: `${SANE[name]}\nsecond-line-xyz` });
      expect(msg).toMatch(new RegExp(`${name} holds a control character`));
      expect(msg).not.toContain('second-line-xyz');
    }
  });

  it('reports a shape problem and another variable’s error together', () => {
    expect(refusal({ GROQ_MODEL: '"x"', LLM_TIMEOUT: 'abc' })).toMatch(/GROQ_MODEL is wrapped in quotes.*LLM_TIMEOUT must be/);
  });
});

describe('secrets', () => {
  it.each(['GROQ_API_KEY', 'TEMPORAL_API_KEY', 'OPTIINFRA_CODEC_TOKEN'])(
    '%s with a space or a Cyrillic look-alike is refused without the value (failed before)',
    (name) => {
      for (const bad of ['gsk_live 0123456789abcdef', 'gsk_live_0123456789аbcdef', 'gsk_live_0123456789abcdef\u00a0x']) {
        const msg = refusal({ [name]: bad });
        expect(msg).toMatch(new RegExp(`${name} holds a space or a character that is not printable ASCII`));
        expect(msg).not.toContain('0123456789');
      }
    },
  );

  it('no refusal of a secret variable repeats the secret (pins for short values; quotes, lines and look-alikes failed before)', () => {
    const secret = 'Sx9-sekret-Q7';
    for (const name of SECRET_VARS) {
      for (const v of [`"${secret}"`, `${secret}\n${secret}`, `${secret} ${secret}`, secret.slice(0, 5)]) {
        try {
          loadConfig({ [name]: v });
        } catch (e) {
          expect((e as Error).message).not.toContain('sekret');
        }
      }
    }
  });

  it('a password with malformed %-encoding is refused, not silently left out of redaction (failed before)', () => {
    const msg = refusal({ DATABASE_URL: 'postgres://app:pa%zzword@db:5432/x' });
    expect(msg).toMatch(/DATABASE_URL has a '%' in its user or password that is not followed by two hex digits: write % as %25/);
    expect(msg).not.toContain('pa%zzword');
  });

  it('a password with raw @ : / % that does not parse gets the encoding hint and is not echoed (hint is new)', () => {
    const msg = refusal({ DATABASE_URL: 'postgres://app:p@ss:w/rd%@db:5432/x' });
    expect(msg).toMatch(/DATABASE_URL must be a URL .*write @ as %40, : as %3A, \/ as %2F and % as %25/);
    expect(msg).not.toContain('rd%');
  });

  it('a password in a URL query (?password=) is a secret: redacted and masked (failed before)', () => {
    const c = loadConfig({ CLICKHOUSE_URL: 'http://ch:8123/?user=app&password=chq-s3cret' });
    expect(secretsOf(c)).toContain('chq-s3cret');
    expect(redact('failed: chq-s3cret', secretsOf(c))).toBe('failed: [REDACTED]');
    expect(maskUrl(c.clickhouse.url)).toBe('http://ch:8123/?user=app&password=****');
  });

  it('credentials are refused in URLs that are printed (TEMPORAL_UI_URL) or are origins, without echoing them (failed before)', () => {
    for (const name of ['TEMPORAL_UI_URL', 'OPTIINFRA_CODEC_CORS_ORIGIN', 'GROQ_BASE_URL']) {
      const msg = refusal({ [name]: 'https://bob:ui-s3cret@ui.example.com' });
      expect(msg).toMatch(new RegExp(`${name} must not hold credentials`));
      expect(msg).not.toContain('ui-s3cret');
    }
    // A scheme-prefixed TEMPORAL_ADDRESS with credentials is refused without them.
    const msg = refusal({ TEMPORAL_ADDRESS: 'https://bob:t-s3cret@temporal:7233' });
    expect(msg).toMatch(/TEMPORAL_ADDRESS must be host:port without a scheme/);
    expect(msg).not.toContain('t-s3cret');
  });

  it('TEMPORAL_TLS=false with a client certificate or CA is refused (failed before: they were ignored)', () => {
    expect(refusal({ TEMPORAL_TLS: 'false', TEMPORAL_TLS_CERT: '/c', TEMPORAL_TLS_KEY: '/k' })).toMatch(
      /TEMPORAL_TLS=false conflicts with TEMPORAL_TLS_CERT \/ TEMPORAL_TLS_CA \(they need TLS\)/,
    );
    expect(refusal({ TEMPORAL_TLS: 'false', TEMPORAL_TLS_CA: '/ca.pem' })).toMatch(/TEMPORAL_TLS=false conflicts/);
    // An API key through a plain-text proxy stays allowed, as documented (pins).
    expect(loadConfig({ TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'tmprl_0123456789' }).temporal.tls).toBeUndefined();
  });
});

describe('values of the wrong type, out of range, or for the wrong thing', () => {
  it('numbers are decimal: hex, binary and octal forms are refused (failed before: 0x1e was 30 s)', () => {
    for (const v of ['0x1e', '0b11110', '0o36', 'Infinity', '３０'])
      expect(refusal({ LLM_TIMEOUT: v })).toMatch(/LLM_TIMEOUT must be a number between 1 and 600/);
    for (const [v, n] of [
      ['30', 30],
      ['2.5', 2.5],
      ['+30', 30],
      ['3e1', 30],
    ] as const)
      expect(loadConfig({ LLM_TIMEOUT: v }).llm.timeoutSec).toBe(n);
  });

  it('OPTIINFRA_WORKER_HEAP_MB is 0 or at least 64 (failed before: 1 crashed the worker with a V8 fatal error)', () => {
    expect(refusal({ OPTIINFRA_WORKER_HEAP_MB: '1' })).toMatch(/OPTIINFRA_WORKER_HEAP_MB must be 0 \(V8's own sizing\) or at least 64/);
    for (const v of ['0', '64', '256']) expect(() => loadConfig({ OPTIINFRA_WORKER_HEAP_MB: v })).not.toThrow();
  });

  it.each([
    ['GROQ_BASE_URL', 'https://api.groq.com/openai/v1?x=1', /must not have a query/],
    ['GROQ_BASE_URL', 'https://api.groq.com/openai/v1#top', /must not have a query/],
    ['GROQ_BASE_URL', 'ftp://api.groq.com', /must be a https or http URL/],
    ['TEMPORAL_UI_URL', 'javascript:alert(1)', /must be a http or https URL/],
    ['OPTIINFRA_CODEC_CORS_ORIGIN', 'file:///etc', /must be a http or https URL/],
    ['CLICKHOUSE_URL', 'postgres://ch:8123', /must be a http or https URL/],
    ['DATABASE_URL', 'http://db:5432/x', /must be a postgres or postgresql URL/],
  ])('%s=%s is refused (failed before)', (name, v, msg) => {
    expect(refusal({ [name]: v })).toMatch(new RegExp(`${name} ${msg.source}`));
  });

  it('URLs of the right kind are accepted (clean look-alikes; pins)', () => {
    const c = loadConfig({
      GROQ_BASE_URL: 'http://proxy.internal:8080/openai/v1/',
      TEMPORAL_UI_URL: 'http://127.0.0.1:8233/',
      CLICKHOUSE_URL: 'https://ch.internal:8443/?database=x',
      DATABASE_URL: 'postgresql://db/x',
    });
    expect([c.groq.baseURL, c.temporal.uiUrl, c.clickhouse.url, c.databaseUrl]).toEqual([
      'http://proxy.internal:8080/openai/v1',
      'http://127.0.0.1:8233',
      'https://ch.internal:8443/?database=x',
      'postgresql://db/x',
    ]);
    // A Unix socket directory instead of a host.
    expect(loadConfig({ DATABASE_URL: 'postgres:///optiinfra?host=/var/run/postgresql' }).databaseUrl).toBe(
      'postgres:///optiinfra?host=/var/run/postgresql',
    );
  });

  it('TEMPORAL_ADDRESS is host:port: a scheme, a bad port or a space is refused (failed before)', () => {
    expect(refusal({ TEMPORAL_ADDRESS: 'http://localhost:7233' })).toMatch(/TEMPORAL_ADDRESS must be host:port without a scheme/);
    expect(refusal({ TEMPORAL_ADDRESS: 'localhost:99999' })).toMatch(/TEMPORAL_ADDRESS must be host:port .*port 1-65535/);
    expect(refusal({ TEMPORAL_ADDRESS: 'local host:7233' })).toMatch(/TEMPORAL_ADDRESS must be host:port/);
    for (const ok of ['127.0.0.1:7233', 'localhost', '[::1]:7233', 'temporal-frontend.svc.cluster.local:7233']) {
      expect(loadConfig({ TEMPORAL_ADDRESS: ok }).temporal.address).toBe(ok);
    }
  });

  it('names sent to servers have no spaces (failed before)', () => {
    for (const name of ['GROQ_MODEL', 'TEMPORAL_NAMESPACE', 'TEMPORAL_TASK_QUEUE']) {
      expect(refusal({ [name]: 'two words' })).toMatch(new RegExp(`${name} must be 1-\\d+ characters without spaces`));
    }
    expect(loadConfig({ GROQ_MODEL: 'meta-llama/llama-4-scout-17b-16e-instruct' }).groq.model).toBe(
      'meta-llama/llama-4-scout-17b-16e-instruct',
    );
  });

  it('unicode look-alikes of enum words and digits are refused by name (pins)', () => {
    expect(refusal({ GROQ_PLAN: 'frее' })).toMatch(/GROQ_PLAN must be one of free, developer, unlimited/);
    expect(refusal({ GROQ_RPM: '８K' })).toMatch(/GROQ_RPM must be a whole number/);
    expect(refusal({ LLM_ENABLED: 'truе' })).toMatch(/LLM_ENABLED must be true or false/);
  });

  it('a plan preset with every override 0 means no limits of those kinds, as documented (pins)', () => {
    const c = loadConfig({ GROQ_PLAN: 'free', GROQ_RPM: '0', GROQ_RPD: '0', GROQ_TPM: '0', GROQ_TPD: '0' });
    expect(c.groq).toMatchObject({ plan: 'free', limits: { rpm: 0, rpd: 0, tpm: 0, tpd: 0 } });
  });
});

describe('dates do not depend on the process time zone', () => {
  const savedTz = process.env.TZ;
  afterEach(() => {
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
  });
  const stored = (timestamp: string) =>
    interactionSchema.parse({ id: 'a', deployment: 'd', model_version: 'v', timestamp, prompt: 'p', response: 'r' }).timestamp;

  it.each(['Asia/Kolkata', 'America/St_Johns', 'UTC'])('a record timestamp without a zone is UTC under TZ=%s (failed before)', (tz) => {
    process.env.TZ = tz;
    expect(new Date(2025, 5, 1).getTimezoneOffset()).toBe({ 'Asia/Kolkata': -330, 'America/St_Johns': 150, UTC: 0 }[tz]);
    expect(stored('2025-06-01T10:00:00')).toBe('2025-06-01T10:00:00.000Z');
    expect(stored('2025-06-01 10:00')).toBe('2025-06-01T10:00:00.000Z');
    expect(stored('2025-06-01T10:00:00+05:30')).toBe('2025-06-01T04:30:00.000Z'); // pins
    expect(stored('2025-06-01')).toBe('2025-06-01T00:00:00.000Z'); // pins
    expect(parseUtcDate('2025-06-01T10:00:00.250')).toBe(Date.UTC(2025, 5, 1, 10, 0, 0, 250));
  });

  it('--from/--to without a zone are UTC; what is not ISO-8601 is refused (failed before)', () => {
    process.env.TZ = 'Asia/Kolkata';
    expect(isoArg('2026-11-25T10:00')).toBe('2026-11-25T10:00:00.000Z');
    expect(isoArg('2026-11-25')).toBe('2026-11-25T00:00:00.000Z');
    expect(isoArg('2026-11-25T10:00:00-03:30')).toBe('2026-11-25T13:30:00.000Z');
    for (const bad of ['1', 'March 7', '2026-02-30', 'tomorrow']) expect(() => isoArg(bad)).toThrow(/must be an ISO-8601 date/);
  });
});

describe('the CLI refuses a bad environment in one line, no stack trace, no secret', () => {
  it('stack status and stack up check the configuration first (failed before: status printed the table and exited 0)', async () => {
    for (const cmd of [
      ['stack', 'status'],
      ['stack', 'up'],
    ]) {
      const r = await runCli(cmd, { LLM_TIMEOUT: '0x1e', GROQ_API_KEY: '"gsk_cli_s3cret_value"' });
      expect(r.code).toBe(3);
      expect(r.out.trim().split('\n')).toHaveLength(1);
      expect(r.out).toMatch(/^error: invalid configuration: GROQ_API_KEY is wrapped in quotes.*LLM_TIMEOUT must be/);
      expect(r.out).not.toContain('s3cret');
    }
  });

  it('a command that connects refuses a look-alike key before connecting, without the key (failed before)', async () => {
    const r = await runCli(['deployment', 'list'], { GROQ_API_KEY: 'gsk_cli_ѕ3cret_value' });
    expect(r.code).toBe(3);
    expect(r.out).toMatch(
      /^error: invalid configuration: GROQ_API_KEY: GROQ_API_KEY holds a space or a character that is not printable ASCII/,
    );
    expect(r.out).not.toContain('3cret');
    expect(r.out).not.toMatch(/\n\s+at /);
  });

  it('--help prints no configured secret (pins)', async () => {
    const r = await runCli(['--help'], { GROQ_API_KEY: 'gsk_help_s3cret', OPTIINFRA_CODEC_TOKEN: 'codec-help-s3cret-0123' });
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('s3cret');
  });
});

describe('the process environment of the real command', () => {
  const bin = fileURLToPath(new URL('../../bin/optiinfra.mjs', import.meta.url));
  const run = (args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; closeStdout?: boolean } = {}) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [bin, ...args], {
        cwd: opts.cwd,
        env: { OPTIINFRA_HOME: '/nonexistent/optiinfra-home', PATH: process.env.PATH, ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      if (opts.closeStdout) c.stdout.destroy();
      let [stdout, stderr] = ['', ''];
      c.stdout.on('data', (d) => (stdout += d));
      c.stderr.on('data', (d) => (stderr += d));
      c.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  it('a deleted working directory: one line and exit 3 (failed before: a Node stack trace from uv_cwd)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'optiinfra-gone-'));
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn('sh', ['-c', 'cd "$1" && rmdir "$1" && exec "$2" "$3" deployment list', 'sh', dir, process.execPath, bin], {
        env: { OPTIINFRA_HOME: '/nonexistent/optiinfra-home', PATH: process.env.PATH },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      c.stderr.on('data', (d) => (stderr += d));
      c.on('close', (code) => resolve({ code, stderr }));
    });
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toBe("error: the current directory no longer exists; 'cd' to an existing one and run optiinfra again");
  }, 60_000);

  it('stdout closed (EPIPE, as when piped into head): exits without a stack trace (pins)', async () => {
    const r = await run(['--help'], { closeStdout: true });
    expect(r.stderr).not.toMatch(/\n\s+at |EPIPE/);
    expect(r.code).toBe(0);
  }, 60_000);

  it('HOME unset, unusual locale and a non-UTC zone: a configuration error is still one line (pins)', async () => {
    const r = await run(['deployment', 'list'], {
      env: { TZ: 'America/St_Johns', LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8', LLM_ENABLED: 'maybe' },
    });
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toBe("error: invalid configuration: LLM_ENABLED: LLM_ENABLED must be true or false (got 'maybe')");
  }, 60_000);

  it('OPTIINFRA_WORKER_HEAP_MB=1 starts no capped worker: the configuration refuses it (failed before: V8 fatal OOM)', async () => {
    const r = await run(['worker'], { env: { OPTIINFRA_WORKER_HEAP_MB: '1' } });
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toMatch(/^error: invalid configuration: OPTIINFRA_WORKER_HEAP_MB: .*or at least 64/);
  }, 60_000);
});
