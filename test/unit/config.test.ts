import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../common/config.js';
import { maskUrl, redact, secretsOf } from '../../common/secrets.js';

describe('configuration from the environment', () => {
  it('has sane defaults and uses the offline judge without a key', () => {
    const c = loadConfig({});
    expect(c.groq.model).toBe('openai/gpt-oss-20b');
    expect(c.llm).toMatchObject({ enabled: false, timeoutSec: 30, maxRetries: 3 });
    expect(c.temporal).toMatchObject({
      address: '127.0.0.1:7233',
      namespace: 'default',
      taskQueue: 'optiinfra',
      llmTaskQueue: 'optiinfra-llm',
    });
    expect(c.clickhouse.database).toBe('optiinfra');
    expect(c.records).toEqual({ maxAgeDays: 3650, maxAheadMinutes: 1440 });
    expect(loadConfig({ OPTIINFRA_MAX_RECORD_AGE_DAYS: '30', OPTIINFRA_MAX_CLOCK_AHEAD_MINUTES: '5' }).records).toEqual({
      maxAgeDays: 30,
      maxAheadMinutes: 5,
    });
  });

  it('enables the LLM only with a key, and LLM_ENABLED=false wins', () => {
    expect(loadConfig({ GROQ_API_KEY: 'gsk_x' }).llm.enabled).toBe(true);
    expect(loadConfig({ GROQ_API_KEY: 'gsk_x', LLM_ENABLED: 'false' }).llm.enabled).toBe(false);
    expect(loadConfig({ GROQ_API_KEY: 'gsk_x', LLM_ENABLED: 'no' }).llm.enabled).toBe(false);
  });

  it.each([
    [{ LLM_TIMEOUT: 'abc' }, /LLM_TIMEOUT must be a number between 1 and 600 \(got 'abc'\)/],
    [{ LLM_TIMEOUT: '0' }, /LLM_TIMEOUT/],
    [{ LLM_MAX_RETRIES: '2.5' }, /LLM_MAX_RETRIES must be an integer/],
    [{ LLM_MAX_RETRIES: '-1' }, /LLM_MAX_RETRIES/],
    [{ LLM_ENABLED: 'maybe' }, /LLM_ENABLED must be true or false \(got 'maybe'\)/],
    [{ CLICKHOUSE_URL: 'not a url' }, /CLICKHOUSE_URL must be a URL/],
    [{ DATABASE_URL: '::' }, /DATABASE_URL must be a URL/],
    [{ CLICKHOUSE_DATABASE: 'x; DROP' }, /CLICKHOUSE_DATABASE must be a plain identifier/],
    [{ OPTIINFRA_MAX_RECORD_AGE_DAYS: '0' }, /OPTIINFRA_MAX_RECORD_AGE_DAYS must be a number between 1 and 36500/],
    [{ OPTIINFRA_MAX_CLOCK_AHEAD_MINUTES: 'soon' }, /OPTIINFRA_MAX_CLOCK_AHEAD_MINUTES must be a number/],
  ])('rejects %o with an actionable message', (env, msg) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(msg);
  });

  it('reports every invalid variable at once', () => {
    expect(() => loadConfig({ LLM_TIMEOUT: 'x', LLM_MAX_RETRIES: 'y' })).toThrow(/LLM_TIMEOUT.*LLM_MAX_RETRIES/);
  });

  it('knows its secrets and keeps them out of text', () => {
    const c = loadConfig({
      GROQ_API_KEY: 'gsk_live_abcdef',
      DATABASE_URL: 'postgres://app:pa%24%24word@db:5432/x',
      CLICKHOUSE_URL: 'http://default:chsecret@ch:8123',
    });
    // Passwords as written in the URL and decoded.
    expect(secretsOf(c).sort()).toEqual(['chsecret', 'gsk_live_abcdef', 'pa$$word', 'pa%24%24word'].sort());
    expect(redact('key gsk_live_abcdef and pa$$word', secretsOf(c))).toBe('key [REDACTED] and [REDACTED]');
    expect(maskUrl(c.databaseUrl)).toBe('postgres://app:****@db:5432/x');
  });

  it('redacts credentials of any URL in text, and refuses them in GROQ_BASE_URL without echoing them', () => {
    expect(redact('GET http://bob:hunter2@src.example/x failed; https://tok@hooks.example/y', [])).toBe(
      'GET http://[REDACTED]@src.example/x failed; https://[REDACTED]@hooks.example/y',
    );
    expect(redact('no credentials: http://host:8080/path?a=b@c', [])).toBe('no credentials: http://host:8080/path?a=b@c');
    expect(() => loadConfig({ GROQ_BASE_URL: 'http://u:s3cretpw@proxy:8080' })).toThrow(/GROQ_BASE_URL must not hold credentials/);
    let message = '';
    try {
      loadConfig({ GROQ_BASE_URL: 'http://u:s3cretpw@proxy:8080' });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).not.toContain('s3cretpw');
  });
});

describe('connecting to Temporal Cloud or a secured cluster', () => {
  it('an API key turns TLS on and travels with the namespace; it is a secret', async () => {
    const { temporalConnectionOptions } = await import('../../client/runtime.js');
    expect(temporalConnectionOptions(loadConfig({}))).toEqual({ address: '127.0.0.1:7233' });
    const c = loadConfig({
      TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'ns.acct',
      TEMPORAL_API_KEY: 'tmprl_key_0123456789',
    });
    expect(temporalConnectionOptions(c)).toEqual({
      address: 'ns.acct.tmprl.cloud:7233',
      tls: true,
      apiKey: 'tmprl_key_0123456789',
      metadata: { 'temporal-namespace': 'ns.acct' },
    });
    expect(redact('key tmprl_key_0123456789', secretsOf(c))).toBe('key [REDACTED]');
    // A plain-text proxy in front of the cluster: TLS off on request.
    expect(temporalConnectionOptions(loadConfig({ TEMPORAL_API_KEY: 'tmprl_key_0123456789', TEMPORAL_TLS: 'false' })).tls).toBeUndefined();
  });

  it('mTLS reads the client pair and the CA from their files, and says which one it cannot read', async () => {
    const { temporalConnectionOptions } = await import('../../client/runtime.js');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'optiinfra-tls-'));
    for (const f of ['client.pem', 'client.key', 'ca.pem']) writeFileSync(join(dir, f), `-----BEGIN ${f}-----`);
    const o = temporalConnectionOptions(
      loadConfig({
        TEMPORAL_TLS_CERT: join(dir, 'client.pem'),
        TEMPORAL_TLS_KEY: join(dir, 'client.key'),
        TEMPORAL_TLS_CA: join(dir, 'ca.pem'),
        TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      }),
    );
    expect(o.tls).toMatchObject({ serverNameOverride: 'temporal.internal' });
    const tls = o.tls as { clientCertPair: { crt: Buffer; key: Buffer }; serverRootCACertificate: Buffer };
    expect(tls.clientCertPair.crt.toString()).toBe('-----BEGIN client.pem-----');
    expect(tls.clientCertPair.key.toString()).toBe('-----BEGIN client.key-----');
    expect(tls.serverRootCACertificate.toString()).toBe('-----BEGIN ca.pem-----');
    expect(() =>
      temporalConnectionOptions(loadConfig({ TEMPORAL_TLS_CERT: join(dir, 'missing.pem'), TEMPORAL_TLS_KEY: join(dir, 'client.key') })),
    ).toThrow(/cannot read the client certificate .*missing\.pem \(TEMPORAL_TLS_CERT\)/);
    expect(() => loadConfig({ TEMPORAL_TLS_CERT: join(dir, 'client.pem') })).toThrow(/TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together/);
    expect(() => loadConfig({ TEMPORAL_TLS: 'yes' })).toThrow(/TEMPORAL_TLS must be true or false/);
  });
});
