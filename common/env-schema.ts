/**
 * The environment variables the configuration reads, each with its parsing, bounds and default;
 * `loadConfig` (config.ts) turns the parsed values into a `Config`.
 */
import { z } from 'zod';
import { GROQ_PLANS } from './plan-limits.js';
import { parseEncryptionKeys } from './secrets.js';

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

export const REASONING_EFFORTS = ['low', 'medium', 'high'] as const;
export type ReasoningEffort = (typeof REASONING_EFFORTS)[number];
export const SERVICE_TIERS = ['on_demand', 'flex', 'auto'] as const;
export type ServiceTier = (typeof SERVICE_TIERS)[number];
export const JUDGE_MODES = ['combined', 'separate'] as const;
export type LlmJudgeMode = (typeof JUDGE_MODES)[number];

/** A free-text variable: trimmed, and unset when empty. */
const optionalText = () =>
  z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined));

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

export const envSchema = z.object({
  GROQ_API_KEY: optionalText(),
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
  TEMPORAL_API_KEY: optionalText(),
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
  TEMPORAL_TLS_CERT: optionalText(),
  TEMPORAL_TLS_KEY: optionalText(),
  TEMPORAL_TLS_CA: optionalText(),
  TEMPORAL_TLS_SERVER_NAME: optionalText(),
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
