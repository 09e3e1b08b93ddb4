import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure, type DefaultFailureConverter, defaultPayloadConverter, type Payload } from '@temporalio/common';
import { ConfigError, loadConfig } from '../../common/config.js';
import { redact, secretsOf, type EncryptionKey } from '../../common/secrets.js';
import { AesGcmCodec, dataConverterFor, ENCRYPTED_ENCODING, failureConverterPath, KEY_ID_METADATA } from '../../workers/codec.js';
import { startCodecServer, type CodecServer } from '../../client/codec-server.js';

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const str = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');
const newKey = (id: string): EncryptionKey => {
  const key = randomBytes(32);
  return { id, key, encoded: key.toString('base64') };
};
const envKeys = (...keys: EncryptionKey[]) => keys.map((k) => `${k.id}:${k.encoded}`).join(',');

const MARKER = 'plaintext-marker-7d1f0c';
const plain = (): Payload => defaultPayloadConverter.toPayload({ note: MARKER, n: 42 });

describe('AesGcmCodec', () => {
  const k1 = newKey('k1');
  const k2 = newKey('k2');

  it('encrypts to binary/encrypted with the key id, and decrypts back to the same payload', async () => {
    const codec = new AesGcmCodec([k1]);
    const [enc] = await codec.encode([plain()]);
    expect(str(enc!.metadata!.encoding)).toBe(ENCRYPTED_ENCODING);
    expect(str(enc!.metadata![KEY_ID_METADATA])).toBe('k1');
    expect(Object.keys(enc!.metadata!).sort()).toEqual(['encoding', KEY_ID_METADATA].sort());
    expect(str(enc!.data)).not.toContain(MARKER);
    expect(str(enc!.data)).not.toContain('json/plain');
    const [dec] = await codec.decode([enc!]);
    expect(defaultPayloadConverter.fromPayload(dec!)).toEqual({ note: MARKER, n: 42 });
    expect(str(dec!.metadata!.encoding)).toBe('json/plain');
  });

  it('uses a fresh IV per payload', async () => {
    const codec = new AesGcmCodec([k1]);
    const [a, b] = await codec.encode([plain(), plain()]);
    expect(b64(a!.data!)).not.toBe(b64(b!.data!));
    expect(b64(a!.data!.subarray(0, 12))).not.toBe(b64(b!.data!.subarray(0, 12)));
  });

  it('passes payloads that are not encrypted through decode unchanged', async () => {
    const p = plain();
    const [d] = await new AesGcmCodec([k1]).decode([p]);
    expect(d).toBe(p);
  });

  it('rotation: a payload encrypted with the old key decrypts after a new key is put first', async () => {
    const [old] = await new AesGcmCodec([k1]).encode([plain()]);
    const rotated = new AesGcmCodec([k2, k1]);
    expect(defaultPayloadConverter.fromPayload((await rotated.decode([old!]))[0]!)).toEqual({ note: MARKER, n: 42 });
    const [fresh] = await rotated.encode([plain()]);
    expect(str(fresh!.metadata![KEY_ID_METADATA])).toBe('k2');
  });

  it('names an unknown key id', async () => {
    const [enc] = await new AesGcmCodec([k1]).encode([plain()]);
    await expect(new AesGcmCodec([k2]).decode([enc!])).rejects.toThrow(/key id 'k1'.*not among the configured keys \(k2\)/);
  });

  it('rejects altered ciphertext, IV or tag', async () => {
    const codec = new AesGcmCodec([k1]);
    const [enc] = await codec.encode([plain()]);
    for (const at of [0, 20, enc!.data!.length - 1]) {
      const data = new Uint8Array(enc!.data!);
      data[at]! ^= 0x01;
      await expect(codec.decode([{ ...enc!, data }])).rejects.toThrow(/failed authentication/);
    }
    await expect(codec.decode([{ ...enc!, data: enc!.data!.subarray(0, 10) }])).rejects.toThrow(/too short/);
    // The same id with another key material is caught too.
    await expect(new AesGcmCodec([{ ...newKey('k1') }]).decode([enc!])).rejects.toThrow(/failed authentication/);
  });

  it('failure converter module: messages and stack traces go into an encoded payload', () => {
    const { failureConverter } = createRequire(import.meta.url)(failureConverterPath) as { failureConverter: DefaultFailureConverter };
    const f = failureConverter.errorToFailure(ApplicationFailure.create({ message: `boom ${MARKER}` }), defaultPayloadConverter);
    expect(f.message).toBe('Encoded failure');
    expect(JSON.stringify(f)).not.toContain(MARKER);
    expect(failureConverter.failureToError(f, defaultPayloadConverter).message).toBe(`boom ${MARKER}`);
  });
});

describe('encryption configuration', () => {
  const k1 = newKey('k1');
  const k2 = newKey('old-2024.1');

  it('is off without OPTIINFRA_ENCRYPTION_KEYS', () => {
    const c = loadConfig({});
    expect(c.encryption).toBeUndefined();
    expect(dataConverterFor(c)).toBeUndefined();
    expect(c.codec).toEqual({ token: undefined, corsOrigin: 'http://127.0.0.1:8233' });
  });

  it('parses keys in order (first encrypts), and the codec settings', () => {
    const c = loadConfig({
      OPTIINFRA_ENCRYPTION_KEYS: ` ${envKeys(k1, k2)} ,`,
      OPTIINFRA_CODEC_TOKEN: 'tok_0123456789abcdef',
      TEMPORAL_UI_URL: 'https://temporal.example.com/ui/',
    });
    expect(c.encryption!.keys.map((k) => k.id)).toEqual(['k1', 'old-2024.1']);
    expect(c.encryption!.keys[0]!.key.equals(k1.key)).toBe(true);
    expect(c.codec).toEqual({ token: 'tok_0123456789abcdef', corsOrigin: 'https://temporal.example.com' });
    expect(loadConfig({ OPTIINFRA_CODEC_CORS_ORIGIN: 'http://ui.local:8080' }).codec.corsOrigin).toBe('http://ui.local:8080');
    const dc = dataConverterFor(c)!;
    expect(dc.payloadCodecs).toHaveLength(1);
    expect(dc.failureConverterPath).toBe(failureConverterPath);
  });

  it('treats the keys and the codec token as secrets', () => {
    const c = loadConfig({ OPTIINFRA_ENCRYPTION_KEYS: envKeys(k1, k2), OPTIINFRA_CODEC_TOKEN: 'tok_0123456789abcdef' });
    expect(secretsOf(c)).toEqual(expect.arrayContaining([k1.encoded, k2.encoded, 'tok_0123456789abcdef']));
    expect(redact(`keys ${envKeys(k1)}`, secretsOf(c))).toBe('keys k1:[REDACTED]');
  });

  it.each([
    ['k1', /entry 1 must look like keyId:base64key/],
    [`k1:${'A'.repeat(43)}$`, /key 'k1' is not valid base64/],
    [`k1:${randomBytes(16).toString('base64')}`, /key 'k1' is 16 bytes, AES-256 needs exactly 32/],
    [`k1:${randomBytes(32).toString('base64')},k1:${randomBytes(32).toString('base64')}`, /key id 'k1' appears more than once/],
    [`bad id:${randomBytes(32).toString('base64')}`, /key id 'bad id' must be 1-64 characters/],
    [`:${randomBytes(32).toString('base64')}`, /key id '' must be/],
    [',', /OPTIINFRA_ENCRYPTION_KEYS: no keys/],
  ])('rejects OPTIINFRA_ENCRYPTION_KEYS=%s with a clear message', (value, msg) => {
    expect(() => loadConfig({ OPTIINFRA_ENCRYPTION_KEYS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ OPTIINFRA_ENCRYPTION_KEYS: value })).toThrow(msg);
  });

  it('never puts key material into its messages', () => {
    const short = randomBytes(16).toString('base64');
    expect(() => loadConfig({ OPTIINFRA_ENCRYPTION_KEYS: `k1:${short}` })).toThrow(/OPTIINFRA_ENCRYPTION_KEYS/);
    try {
      loadConfig({ OPTIINFRA_ENCRYPTION_KEYS: `k1:${short}` });
    } catch (e) {
      expect(String(e)).not.toContain(short);
    }
  });

  it('rejects a short codec token and a bad CORS origin', () => {
    expect(() => loadConfig({ OPTIINFRA_CODEC_TOKEN: 'short' })).toThrow(/OPTIINFRA_CODEC_TOKEN must be at least 16 characters/);
    expect(() => loadConfig({ OPTIINFRA_CODEC_CORS_ORIGIN: 'nope' })).toThrow(/OPTIINFRA_CODEC_CORS_ORIGIN must be a URL/);
  });
});

describe('codec server', () => {
  const TOKEN = 'tok_0123456789abcdef';
  const ORIGIN = 'http://127.0.0.1:8233';
  const codec = new AesGcmCodec([newKey('k1')]);
  let open: CodecServer;
  let guarded: CodecServer;
  const asJson = (p: Payload) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v!)])),
    data: b64(p.data!),
  });
  const post = (s: CodecServer, path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${s.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-namespace': 'default', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  beforeAll(async () => {
    open = await startCodecServer({ port: 0, codec, corsOrigin: ORIGIN });
    guarded = await startCodecServer({ port: 0, codec, token: TOKEN, corsOrigin: `${ORIGIN}/` });
  });
  afterAll(async () => {
    await open?.close();
    await guarded?.close();
  });

  it('encodes and decodes the JSON payloads the Temporal UI sends', async () => {
    const r1 = await post(open, '/encode', { payloads: [asJson(plain())] });
    expect(r1.status).toBe(200);
    const encoded = (await r1.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    expect(Buffer.from(encoded.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe(ENCRYPTED_ENCODING);
    expect(JSON.stringify(encoded)).not.toContain(MARKER);
    const r2 = await post(open, '/decode', encoded);
    expect(r2.status).toBe(200);
    const decoded = (await r2.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    expect(decoded.payloads[0]!.metadata.encoding).toBe(b64(Buffer.from('json/plain')));
    expect(JSON.parse(Buffer.from(decoded.payloads[0]!.data, 'base64').toString())).toEqual({ note: MARKER, n: 42 });
    // Plain payloads decode as themselves; an empty list is fine.
    const r3 = await post(open, '/decode', { payloads: [asJson(plain())] });
    expect(((await r3.json()) as { payloads: unknown[] }).payloads[0]).toEqual(asJson(plain()));
    expect(await (await post(open, '/decode', { payloads: [] })).json()).toEqual({ payloads: [] });
  });

  it('requires the bearer token when one is configured', async () => {
    const body = { payloads: [asJson(plain())] };
    const none = await post(guarded, '/encode', body);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect((await post(guarded, '/encode', body, { authorization: 'Bearer wrong-token-0000000' })).status).toBe(401);
    expect((await post(guarded, '/encode', body, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
  });

  it('answers 400 on bad JSON, a wrong shape, bad base64 and an unknown key id', async () => {
    const h = { authorization: `Bearer ${TOKEN}` };
    const bad = async (body: unknown, re: RegExp) => {
      const r = await post(guarded, '/decode', body, h);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: string }).error).toMatch(re);
    };
    await bad('{not json', /not valid JSON/);
    await bad({ nope: [] }, /must be \{ "payloads"/);
    await bad({ payloads: [{ metadata: { encoding: '***' } }] }, /payloads\[0\]\.metadata\.encoding must be a base64 string/);
    const [other] = await new AesGcmCodec([newKey('retired')]).encode([plain()]);
    await bad({ payloads: [asJson(other!)] }, /key id 'retired'/);
    expect((await fetch(`${guarded.url}/other`, { method: 'POST', headers: h })).status).toBe(404);
    expect((await fetch(`${guarded.url}/decode`, { headers: h })).status).toBe(405);
  });

  it('allows CORS for the configured origin only, and answers preflights without a token', async () => {
    const pre = await fetch(`${guarded.url}/decode`, {
      method: 'OPTIONS',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,x-namespace',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    expect(pre.headers.get('access-control-allow-headers')).toBe('content-type, authorization, x-namespace');
    expect(pre.headers.get('access-control-allow-credentials')).toBe('true');

    const foreign = await fetch(`${guarded.url}/decode`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();

    const ok = await post(guarded, '/decode', { payloads: [] }, { origin: ORIGIN, authorization: `Bearer ${TOKEN}` });
    expect(ok.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    // A 401 still carries the CORS header, so the UI can read the error.
    const denied = await post(guarded, '/decode', { payloads: [] }, { origin: ORIGIN });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const other = await post(guarded, '/decode', { payloads: [] }, { origin: 'https://evil.example', authorization: `Bearer ${TOKEN}` });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
