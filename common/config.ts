/**
 * Configuration from the environment, validated once. Never import from workflow code.
 * Secrets (GROQ_API_KEY, passwords inside DATABASE_URL / CLICKHOUSE_URL) are kept out of
 * anything that is logged or stored: use `describeConfig` for display.
 */
import { z } from 'zod';
import { formatZodError } from './types.js';

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

const bool = (name: string, dflt: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return dflt;
      const s = v.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: `${name} must be true or false (got '${v}')` });
      return z.NEVER;
    });

const num = (name: string, dflt: number, min: number, max: number, int = false) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return dflt;
      const n = Number(v);
      if (!Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} must be ${int ? 'an integer' : 'a number'} between ${min} and ${max} (got '${v}')`,
        });
        return z.NEVER;
      }
      return n;
    });

/** One of `values` (case-insensitive), `dflt` when unset. */
const oneOf = <const T extends string>(name: string, values: readonly T[], dflt: T | undefined) =>
  z
    .string()
    .optional()
    .transform((v, ctx): T | undefined => {
      if (v === undefined || v.trim() === '') return dflt;
      const s = v.trim().toLowerCase();
      const hit = values.find((x) => x === s);
      if (hit !== undefined) return hit;
      ctx.addIssue({ code: 'custom', message: `${name} must be one of ${values.join(', ')} (got '${v}')` });
      return z.NEVER;
    });

/** A per-minute or per-day limit: a non-negative integer, 0 for none; unset: the plan's figure. */
const limit = (name: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx): number | undefined => {
      if (v === undefined || v.trim() === '') return undefined;
      const t = v.trim().toLowerCase().replace(/_/g, '');
      const m = /^(\d+(?:\.\d+)?)([km]?)$/.exec(t);
      const n = m ? Number(m[1]) * (m[2] === 'k' ? 1e3 : m[2] === 'm' ? 1e6 : 1) : Number.NaN;
      if (!Number.isInteger(n) || n < 0 || n > 1e12) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} must be a whole number of at least 0 (0: no limit; 8000, 8K and 1.5M are accepted) (got '${v}')`,
        });
        return z.NEVER;
      }
      return n;
    });

export const GROQ_PLANS = ['free', 'developer', 'unlimited'] as const;
export type GroqPlan = (typeof GROQ_PLANS)[number];
export const REASONING_EFFORTS = ['low', 'medium', 'high'] as const;
export type ReasoningEffort = (typeof REASONING_EFFORTS)[number];
export const SERVICE_TIERS = ['on_demand', 'flex', 'auto'] as const;
export type ServiceTier = (typeof SERVICE_TIERS)[number];
export const JUDGE_MODES = ['combined', 'separate'] as const;
export type LlmJudgeMode = (typeof JUDGE_MODES)[number];

/** Requests and tokens per minute and per day; 0 means no limit of that kind. */
export interface RateLimits {
  rpm: number;
  rpd: number;
  tpm: number;
  tpd: number;
}

/**
 * Rate limits of Groq's plans for `openai/gpt-oss-20b` (limits are per organisation and model).
 * - free: 30 RPM, 1K RPD, 8K TPM, 200K TPD, from the table of https://console.groq.com/docs/rate-limits
 *   ("openai/gpt-oss-20b 30 1K 8K 200K").
 * - developer: the same page says paid plans are far higher and sends the organisation to its
 *   limits page (https://console.groq.com/settings/limits) for the exact figures; the figures
 *   here (1K RPM, 500K RPD, 250K TPM, no published daily token cap) are the Developer plan's
 *   customary order of magnitude, not a quotation: set GROQ_RPM/GROQ_RPD/GROQ_TPM/GROQ_TPD to
 *   the limits page's numbers. Replies correct RPD and TPM downwards by themselves: Groq's
 *   `x-ratelimit-limit-requests` is the RPD and `x-ratelimit-limit-tokens` the TPM.
 * - unlimited: no pacing at all (a Groq-compatible server of one's own, or tests).
 * Cached prompt tokens do not count toward the limits (same page).
 */
export const PLAN_LIMITS: Record<GroqPlan, RateLimits> = {
  free: { rpm: 30, rpd: 1_000, tpm: 8_000, tpd: 200_000 },
  developer: { rpm: 1_000, rpd: 500_000, tpm: 250_000, tpd: 0 },
  unlimited: { rpm: 0, rpd: 0, tpm: 0, tpd: 0 },
};

const url = (name: string, opts: { credentials?: 'allowed' | 'refused' } = {}) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return undefined;
      let u: URL;
      try {
        u = new URL(v);
      } catch {
        ctx.addIssue({ code: 'custom', message: `${name} must be a URL (got a value that does not parse)` });
        return z.NEVER;
      }
      if (opts.credentials === 'refused' && (u.username || u.password)) {
        ctx.addIssue({ code: 'custom', message: `${name} must not hold credentials (user:password@): the API key goes in GROQ_API_KEY` });
        return z.NEVER;
      }
      return u.toString().replace(/\/$/, '');
    });

const envSchema = z.object({
  GROQ_API_KEY: z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined)),
  GROQ_MODEL: z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : 'openai/gpt-oss-20b')),
  GROQ_BASE_URL: url('GROQ_BASE_URL', { credentials: 'refused' }),
  LLM_ENABLED: bool('LLM_ENABLED', true),
  LLM_TIMEOUT: num('LLM_TIMEOUT', 30, 1, 600),
  LLM_MAX_RETRIES: num('LLM_MAX_RETRIES', 3, 0, 20, true),
  LLM_REQUESTS_PER_SECOND: num('LLM_REQUESTS_PER_SECOND', 10, 0.01, 10_000),
  LLM_CONCURRENCY: num('LLM_CONCURRENCY', 20, 1, 1000, true),
  LLM_REASONING_EFFORT: oneOf('LLM_REASONING_EFFORT', REASONING_EFFORTS, 'low'),
  LLM_JUDGE_MODE: oneOf('LLM_JUDGE_MODE', JUDGE_MODES, 'combined'),
  LLM_MAX_WAIT: num('LLM_MAX_WAIT', 7200, 1, 7 * 86_400),
  // Applied by bin/optiinfra.mjs before anything loads; validated here so a bad value is reported.
  OPTIINFRA_WORKER_HEAP_MB: num('OPTIINFRA_WORKER_HEAP_MB', 256, 0, 65_536, true),
  OPTIINFRA_MAX_RECORD_AGE_DAYS: num('OPTIINFRA_MAX_RECORD_AGE_DAYS', 3650, 1, 36_500),
  OPTIINFRA_MAX_CLOCK_AHEAD_MINUTES: num('OPTIINFRA_MAX_CLOCK_AHEAD_MINUTES', 1440, 0, 525_600),
  GROQ_PLAN: oneOf('GROQ_PLAN', GROQ_PLANS, 'developer'),
  GROQ_RPM: limit('GROQ_RPM'),
  GROQ_RPD: limit('GROQ_RPD'),
  GROQ_TPM: limit('GROQ_TPM'),
  GROQ_TPD: limit('GROQ_TPD'),
  GROQ_SERVICE_TIER: oneOf('GROQ_SERVICE_TIER', SERVICE_TIERS, undefined),
  TEMPORAL_ADDRESS: z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : '127.0.0.1:7233')),
  TEMPORAL_NAMESPACE: z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : 'default')),
  TEMPORAL_UI_URL: url('TEMPORAL_UI_URL'),
  TEMPORAL_TASK_QUEUE: z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : 'optiinfra')),
  // Temporal Cloud or a secured cluster: an API key, or mTLS with a client certificate and key.
  TEMPORAL_API_KEY: z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined)),
  TEMPORAL_TLS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return undefined;
      if (!/^(true|false)$/i.test(v.trim())) {
        ctx.addIssue({ code: 'custom', message: `TEMPORAL_TLS must be true or false (got '${v}')` });
        return z.NEVER;
      }
      return /^true$/i.test(v.trim());
    }),
  TEMPORAL_TLS_CERT: z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined)),
  TEMPORAL_TLS_KEY: z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined)),
  TEMPORAL_TLS_CA: z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined)),
  TEMPORAL_TLS_SERVER_NAME: z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined)),
  CLICKHOUSE_URL: url('CLICKHOUSE_URL'),
  CLICKHOUSE_DATABASE: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const s = v?.trim() ? v.trim() : 'optiinfra';
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(s)) {
        ctx.addIssue({ code: 'custom', message: `CLICKHOUSE_DATABASE must be a plain identifier (got '${s}')` });
        return z.NEVER;
      }
      return s;
    }),
  DATABASE_URL: url('DATABASE_URL'),
  OPTIINFRA_HOME: z.string().optional(),
  OPTIINFRA_WEBHOOK_SECRET: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return undefined;
      if (v.length < 16) {
        ctx.addIssue({ code: 'custom', message: 'OPTIINFRA_WEBHOOK_SECRET must be at least 16 characters' });
        return z.NEVER;
      }
      return v;
    }),
  OPTIINFRA_ENCRYPTION_KEYS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return undefined;
      const r = parseEncryptionKeys(v);
      if ('error' in r) {
        ctx.addIssue({ code: 'custom', message: r.error });
        return z.NEVER;
      }
      return r.keys;
    }),
  OPTIINFRA_CODEC_TOKEN: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return undefined;
      if (v.trim().length < 16) {
        ctx.addIssue({ code: 'custom', message: 'OPTIINFRA_CODEC_TOKEN must be at least 16 characters' });
        return z.NEVER;
      }
      return v.trim();
    }),
  OPTIINFRA_CODEC_CORS_ORIGIN: url('OPTIINFRA_CODEC_CORS_ORIGIN'),
  OPTIINFRA_METRICS_PORT: z
    .string()
    .optional()
    .transform((v, ctx): { host?: string; port: number } | undefined => {
      if (v === undefined || v.trim() === '') return undefined;
      const m = /^(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(v.trim());
      const port = m ? Number(m[2]) : Number.NaN;
      if (!m || port > 65535) {
        ctx.addIssue({
          code: 'custom',
          message: `OPTIINFRA_METRICS_PORT must be a port (9464) or host:port (127.0.0.1:9464; port 0: any free port) (got '${v}')`,
        });
        return z.NEVER;
      }
      return { ...(m[1] ? { host: m[1].replace(/^\[|\]$/g, '') } : {}), port };
    }),
});

export type Config = {
  groq: {
    apiKey?: string;
    model: string;
    baseURL?: string;
    /** The plan whose limits are the defaults (GROQ_PLAN). */
    plan: GroqPlan;
    /** The plan's limits with GROQ_RPM/RPD/TPM/TPD applied; 0: no limit of that kind. */
    limits: RateLimits;
    /** GROQ_SERVICE_TIER; unset: Groq's default (on_demand). */
    serviceTier?: ServiceTier;
  };
  llm: {
    enabled: boolean;
    timeoutSec: number;
    maxRetries: number;
    requestsPerSecond: number;
    concurrency: number;
    /** `reasoning_effort` of reasoning models (LLM_REASONING_EFFORT). */
    reasoningEffort: ReasoningEffort;
    /** One call for all judge checks of an interaction, or one per check (LLM_JUDGE_MODE). */
    judgeMode: LlmJudgeMode;
    /** Longest total wait of one LLM call for rate limits and budget, in seconds (LLM_MAX_WAIT). */
    maxWaitSec: number;
  };
  temporal: {
    address: string;
    namespace: string;
    uiUrl?: string;
    taskQueue: string;
    llmTaskQueue: string;
    /** API key (TEMPORAL_API_KEY), e.g. for Temporal Cloud; a secret. */
    apiKey?: string;
    /** TLS (TEMPORAL_TLS, on by default with an API key or a client certificate); file paths of the mTLS pair and CA. */
    tls?: { certPath?: string; keyPath?: string; caPath?: string; serverName?: string };
  };
  clickhouse: { url?: string; database: string };
  databaseUrl?: string;
  home?: string;
  /** HMAC key for rollback webhooks (never leaves the worker). */
  webhookSecret?: string;
  /** Payload encryption (AES-256-GCM); unset: payloads are stored in plain JSON. The first key encrypts. */
  encryption?: { keys: EncryptionKey[] };
  /** The codec server the Temporal Web UI calls to show decrypted payloads. */
  codec: { token?: string; corsOrigin: string };
  /** The worker's Prometheus endpoint (OPTIINFRA_METRICS_PORT); unset: none. Host unset: every interface. */
  metrics?: { host?: string; port: number };
  /** Record timestamps accepted: at most this old, at most this far ahead of the collector's clock. */
  records: { maxAgeDays: number; maxAheadMinutes: number };
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const r = envSchema.safeParse(env);
  if (!r.success) throw new ConfigError(`invalid configuration: ${formatZodError(r.error)}`);
  const e = r.data;
  if (Boolean(e.TEMPORAL_TLS_CERT) !== Boolean(e.TEMPORAL_TLS_KEY)) {
    throw new ConfigError(
      'invalid configuration: TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (the client certificate and its private key, PEM files)',
    );
  }
  const plan = e.GROQ_PLAN ?? 'developer';
  const preset = PLAN_LIMITS[plan];
  return {
    groq: {
      apiKey: e.GROQ_API_KEY,
      model: e.GROQ_MODEL,
      baseURL: e.GROQ_BASE_URL,
      plan,
      limits: {
        rpm: e.GROQ_RPM ?? preset.rpm,
        rpd: e.GROQ_RPD ?? preset.rpd,
        tpm: e.GROQ_TPM ?? preset.tpm,
        tpd: e.GROQ_TPD ?? preset.tpd,
      },
      serviceTier: e.GROQ_SERVICE_TIER,
    },
    llm: {
      // No key means the offline judge, whatever LLM_ENABLED says.
      enabled: e.LLM_ENABLED && e.GROQ_API_KEY !== undefined,
      timeoutSec: e.LLM_TIMEOUT,
      maxRetries: e.LLM_MAX_RETRIES,
      requestsPerSecond: e.LLM_REQUESTS_PER_SECOND,
      concurrency: e.LLM_CONCURRENCY,
      reasoningEffort: e.LLM_REASONING_EFFORT ?? 'low',
      judgeMode: e.LLM_JUDGE_MODE ?? 'combined',
      maxWaitSec: e.LLM_MAX_WAIT,
    },
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      uiUrl: e.TEMPORAL_UI_URL,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      llmTaskQueue: `${e.TEMPORAL_TASK_QUEUE}-llm`,
      apiKey: e.TEMPORAL_API_KEY,
      tls:
        (e.TEMPORAL_TLS ?? Boolean(e.TEMPORAL_API_KEY || e.TEMPORAL_TLS_CERT || e.TEMPORAL_TLS_CA))
          ? {
              certPath: e.TEMPORAL_TLS_CERT,
              keyPath: e.TEMPORAL_TLS_KEY,
              caPath: e.TEMPORAL_TLS_CA,
              serverName: e.TEMPORAL_TLS_SERVER_NAME,
            }
          : undefined,
    },
    clickhouse: { url: e.CLICKHOUSE_URL, database: e.CLICKHOUSE_DATABASE },
    databaseUrl: e.DATABASE_URL,
    home: e.OPTIINFRA_HOME,
    webhookSecret: e.OPTIINFRA_WEBHOOK_SECRET,
    encryption: e.OPTIINFRA_ENCRYPTION_KEYS ? { keys: e.OPTIINFRA_ENCRYPTION_KEYS } : undefined,
    codec: {
      token: e.OPTIINFRA_CODEC_TOKEN,
      corsOrigin: new URL(e.OPTIINFRA_CODEC_CORS_ORIGIN ?? e.TEMPORAL_UI_URL ?? 'http://127.0.0.1:8233').origin,
    },
    metrics: e.OPTIINFRA_METRICS_PORT,
    records: { maxAgeDays: e.OPTIINFRA_MAX_RECORD_AGE_DAYS, maxAheadMinutes: e.OPTIINFRA_MAX_CLOCK_AHEAD_MINUTES },
  };
}

/** Replace every occurrence of a secret with a marker. */
export function redact(text: string, secrets: Array<string | undefined>): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[REDACTED]');
  // Credentials written into any URL (user:password@host), whoever configured it.
  return out.replace(URL_CREDENTIALS, '$1[REDACTED]@');
}

/** scheme://user[:password]@ in text (the userinfo part of a URL). */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi;

/** The password of a URL, as written and decoded (for redaction; empty when there is none). */
export function urlPasswords(u?: string): string[] {
  if (!u) return [];
  try {
    const raw = new URL(u).password;
    return raw ? [...new Set([raw, decodeURIComponent(raw)])] : [];
  } catch {
    return [];
  }
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

/** A URL with its password masked, for display. */
export function maskUrl(u?: string): string | undefined {
  if (!u) return u;
  try {
    const x = new URL(u);
    if (x.password) x.password = '****';
    return x.toString();
  } catch {
    return '(unparseable URL)';
  }
}
