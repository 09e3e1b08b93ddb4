/**
 * Secrets of the configuration: the payload encryption keys (OPTIINFRA_ENCRYPTION_KEYS), the list
 * of every configured secret (`secretsOf`), and their redaction from any text that is logged,
 * stored or shown (`redact`, `maskUrl`).
 */
import type { Config } from './config.js';

/** One AES-256 key for the Temporal payload codec. */
export interface EncryptionKey {
  /** Written into each encrypted payload's metadata, so the right key decrypts it after rotation. */
  id: string;
  /** 32 bytes. */
  key: Buffer;
  /** The base64 text as configured (kept only so it can be redacted). */
  encoded: string;
}

const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * `OPTIINFRA_ENCRYPTION_KEYS`: comma-separated `keyId:base64key` entries of 32-byte keys; the
 * first encrypts, all decrypt. Messages never contain key material.
 */
export function parseEncryptionKeys(raw: string): { keys: EncryptionKey[] } | { error: string } {
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (!entries.length) return { error: `no keys (expected keyId:base64key[,keyId:base64key...])` };
  const keys: EncryptionKey[] = [];
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    if (colon < 0) return { error: `entry ${i + 1} must look like keyId:base64key (no ':' found)` };
    const id = entry.slice(0, colon).trim();
    const encoded = entry.slice(colon + 1).trim();
    if (!KEY_ID_PATTERN.test(id)) {
      return {
        error: `entry ${i + 1}: key id '${id.slice(0, 64)}' must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`,
      };
    }
    if (keys.some((k) => k.id === id)) return { error: `key id '${id}' appears more than once` };
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded) || encoded.replace(/=+$/, '').length % 4 === 1) {
      return { error: `key '${id}' is not valid base64 (generate one with: openssl rand -base64 32)` };
    }
    const key = Buffer.from(encoded, 'base64');
    if (key.length !== 32) {
      return {
        error: `key '${id}' is ${key.length} bytes, AES-256 needs exactly 32 (generate one with: openssl rand -base64 32)`,
      };
    }
    keys.push({ id, key, encoded });
  }
  return { keys };
}

/** Replace every occurrence of a secret with a marker. */
export function redact(text: string, secrets: Array<string | undefined>): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[REDACTED]');
  // Credentials written into any URL (user:password@host), whoever configured it.
  return out.replace(URL_CREDENTIALS, '://[REDACTED]@');
}

/**
 * The userinfo part of a URL in text: `user[:password]@` after `scheme://`. The scheme is checked
 * by a lookbehind from each `://` (not scanned from every word boundary of a long run of scheme
 * characters such as `a.a.a.…`, which took quadratic time).
 */
const URL_CREDENTIALS = /:\/\/(?<=\b[a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi;

/**
 * The secrets of a URL, as written and decoded (for redaction; empty when there are none): its
 * password and the values of secret-looking query parameters (?password=, ?sslkey=...). A value
 * whose percent-encoding is malformed is returned as written.
 */
export function urlPasswords(u?: string): string[] {
  if (!u) return [];
  let x: URL;
  try {
    x = new URL(u);
  } catch {
    return [];
  }
  const out = new Set<string>();
  const add = (raw: string) => {
    if (!raw) return;
    out.add(raw);
    try {
      out.add(decodeURIComponent(raw));
    } catch {
      // malformed %-encoding: the text as written is what appears anywhere
    }
  };
  add(x.password);
  for (const [k, v] of x.searchParams) if (SECRET_PARAM.test(k)) add(v);
  return [...out];
}

export function secretsOf(c: Config): string[] {
  return [
    c.groq.apiKey,
    c.temporal.apiKey,
    ...urlPasswords(c.databaseUrl),
    ...urlPasswords(c.clickhouse.url),
    ...urlPasswords(c.groq.baseURL),
    c.webhookSecret,
    ...(c.encryption?.keys.map((k) => k.encoded) ?? []),
    c.codec.token,
  ].filter((s): s is string => !!s);
}

/** Query parameters whose values are secret-looking (tokens, keys, signatures, sessions). */
const SECRET_PARAM = /token|key|secret|pass|auth|sig|credential|session|code/i;

/** The URL for messages, logs and listings: no user, password or secret-looking query values. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    for (const k of [...u.searchParams.keys()]) if (SECRET_PARAM.test(k)) u.searchParams.set(k, '****');
    return u.toString();
  } catch {
    // Not a URL: drop anything that looks like userinfo.
    return url.replace(/\/\/[^/@\s]*@/, '//');
  }
}

/**
 * A URL's address: origin and path, without credentials, query or fragment (where secrets sit);
 * undefined when it does not parse.
 */
export function urlAddress(u: string | URL): string | undefined {
  try {
    const x = typeof u === 'string' ? new URL(u) : u;
    return `${x.origin}${x.pathname}`;
  } catch {
    return undefined;
  }
}

/** A URL with its password and secret-looking query values masked, for display. */
export function maskUrl(u?: string): string | undefined {
  if (!u) return u;
  try {
    const x = new URL(u);
    if (x.password) x.password = '****';
    for (const k of [...x.searchParams.keys()]) if (SECRET_PARAM.test(k)) x.searchParams.set(k, '****');
    return x.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * A URL whose path and query are themselves the secret (a Slack incoming webhook's
 * /services/T…/B…/token, a token in the query), for messages and stored details: its origin only,
 * with '/…' when anything followed; '(unparseable URL)' when it does not parse.
 */
export function opaqueUrl(u: string): string {
  try {
    const x = new URL(u);
    return `${x.origin}${x.pathname.length > 1 || x.search || x.hash ? '/…' : ''}`;
  } catch {
    return '(unparseable URL)';
  }
}

/** The parts of such a URL that must not appear anywhere (for `redact`): itself, its path, query and credentials. */
export function urlSecretParts(u: string): string[] {
  try {
    const x = new URL(u);
    const parts = [
      u,
      x.href,
      x.pathname.length > 1 ? x.pathname : '',
      x.search.slice(1),
      x.username,
      x.password,
      ...x.searchParams.values(),
    ];
    for (const p of [...parts]) {
      try {
        parts.push(decodeURIComponent(p));
      } catch {
        /* malformed %-encoding: as written */
      }
    }
    return [...new Set(parts.filter((p) => p.length >= 4))].sort((a, b) => b.length - a.length);
  } catch {
    return u.length >= 4 ? [u] : [];
  }
}
