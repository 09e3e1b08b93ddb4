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
      if (v === undefined || v.trim() === '') return dflt;
      const s = v.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: `${name} must be true or false (got '${v}')` });
      return z.NEVER;
    });

/** Decimal notation; the digits around the point split one way only (`\d+\.?\d*` took quadratic time on a long run of digits). */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;

const num = (name: string, dflt: number, min: number, max: number, int = false) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return dflt;
      // Decimal notation only: Number() would also take 0x1e, 0b11 and 0o7.
      const n = DECIMAL.test(v.trim()) ? Number(v) : Number.NaN;
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

/**
 * A URL: of one of `schemes`; credentials (user:password@) and a query or fragment refused where
 * the URL is shown or has paths appended to it. Messages never repeat the value (it may hold a password).
 */
const url = (
  name: string,
  opts: { schemes: readonly string[]; credentials?: 'allowed' | 'refused'; credentialsHint?: string; query?: 'allowed' | 'refused' },
) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return undefined;
      const fail = (message: string) => {
        ctx.addIssue({ code: 'custom', message: `${name} ${message}` });
        return z.NEVER;
      };
      const example = `${opts.schemes[0]}://host:port`;
      let u: URL;
      try {
        u = new URL(v.trim());
      } catch {
        const hint = v.includes('@') ? '; in a password write @ as %40, : as %3A, / as %2F and % as %25' : '';
        return fail(`must be a URL (got a value that does not parse${hint}), such as ${example}`);
      }
      const scheme = u.protocol.replace(/:$/, '');
      if (!opts.schemes.includes(scheme))
        return fail(`must be a ${opts.schemes.join(' or ')} URL such as ${example} (got a ${scheme}: URL)`);
      // PostgreSQL may name a Unix socket directory instead: postgres:///db?host=/var/run/postgresql.
      if (!u.hostname && !u.searchParams.get('host')) return fail(`must name a host, as in ${example}`);
      if (opts.credentials === 'refused' && (u.username || u.password)) {
        return fail(`must not hold credentials (user:password@)${opts.credentialsHint ? `: ${opts.credentialsHint}` : ''}`);
      }
      if (!validPercentEncoding(u.username) || !validPercentEncoding(u.password)) {
        return fail("has a '%' in its user or password that is not followed by two hex digits: write % as %25");
      }
      if (opts.query === 'refused' && (u.search || u.hash)) return fail('must not have a query (?…) or fragment (#…)');
      return u.toString().replace(/\/$/, '');
    });

const validPercentEncoding = (s: string): boolean => !/%(?![0-9A-Fa-f]{2})/.test(s);

/** Printable ASCII without spaces: what an HTTP header or bearer token can carry. */
const headerSecret = (name: string, minLength = 1) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return undefined;
      const t = v.trim();
      const bad = [...t].findIndex((c) => !/^[\x21-\x7e]$/.test(c));
      if (bad >= 0) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} holds a space or a character that is not printable ASCII (character ${bad + 1}; a pasted look-alike?); the value is not shown`,
        });
        return z.NEVER;
      }
      if (t.length < minLength) {
        ctx.addIssue({ code: 'custom', message: `${name} must be at least ${minLength} characters` });
        return z.NEVER;
      }
      return t;
    });

/** A name sent to a server (a model, namespace, task queue): no whitespace, at most `max` characters. */
const serverName = (name: string, dflt: string, max = 255) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const s = v?.trim() ? v.trim() : dflt;
      if (s.length > max || /\s/.test(s)) {
        ctx.addIssue({ code: 'custom', message: `${name} must be 1-${max} characters without spaces (got '${shown(s)}')` });
        return z.NEVER;
      }
      return s;
    });

/** A value as quoted in a message: at most 60 characters. */
const shown = (s: string): string => (s.length > 60 ? `${s.slice(0, 60)}…` : s);

/** host:port of a gRPC server (no scheme). */
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::(\d{1,5}))?$/;

export const envSchema = z.object({
  GROQ_API_KEY: headerSecret('GROQ_API_KEY'),
  GROQ_MODEL: serverName('GROQ_MODEL', 'openai/gpt-oss-20b'),
  GROQ_BASE_URL: url('GROQ_BASE_URL', {
    schemes: ['https', 'http'],
    credentials: 'refused',
    credentialsHint: 'the API key goes in GROQ_API_KEY',
    query: 'refused',
  }),
  LLM_ENABLED: bool('LLM_ENABLED', true),
  LLM_TIMEOUT: num('LLM_TIMEOUT', 30, 1, 600),
  LLM_MAX_RETRIES: num('LLM_MAX_RETRIES', 3, 0, 20, true),
  LLM_REQUESTS_PER_SECOND: num('LLM_REQUESTS_PER_SECOND', 10, 0.01, 10_000),
  LLM_CONCURRENCY: num('LLM_CONCURRENCY', 20, 1, 1000, true),
  LLM_REASONING_EFFORT: oneOf('LLM_REASONING_EFFORT', REASONING_EFFORTS, 'low'),
  LLM_JUDGE_MODE: oneOf('LLM_JUDGE_MODE', JUDGE_MODES, 'combined'),
  LLM_MAX_WAIT: num('LLM_MAX_WAIT', 7200, 1, 7 * 86_400),
  // Applied by bin/optiinfra.mjs before anything loads; validated here so a bad value is reported.
  OPTIINFRA_WORKER_HEAP_MB: num('OPTIINFRA_WORKER_HEAP_MB', 256, 0, 65_536, true).refine((n) => n === 0 || n >= 64, {
    message: "OPTIINFRA_WORKER_HEAP_MB must be 0 (V8's own sizing) or at least 64: a smaller heap cannot even load the worker",
  }),
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
    .transform((v, ctx) => {
      const s = v?.trim() ? v.trim() : '127.0.0.1:7233';
      const m = HOST_PORT.exec(s);
      const port = m?.[2] === undefined ? 7233 : Number(m[2]);
      if (!m || port < 1 || port > 65535) {
        const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? ' without a scheme' : '';
        ctx.addIssue({
          code: 'custom',
          message: `TEMPORAL_ADDRESS must be host:port${scheme} (127.0.0.1:7233, my-ns.a1b2c.tmprl.cloud:7233; port 1-65535)${
            s.includes('@') ? '' : ` (got '${shown(s)}')`
          }`,
        });
        return z.NEVER;
      }
      return s;
    }),
  TEMPORAL_NAMESPACE: serverName('TEMPORAL_NAMESPACE', 'default'),
  TEMPORAL_UI_URL: url('TEMPORAL_UI_URL', {
    schemes: ['http', 'https'],
    credentials: 'refused',
    credentialsHint: 'it is printed in links',
    query: 'refused',
  }),
  TEMPORAL_TASK_QUEUE: serverName('TEMPORAL_TASK_QUEUE', 'optiinfra', 200),
  // Temporal Cloud or a secured cluster: an API key, or mTLS with a client certificate and key.
  TEMPORAL_API_KEY: headerSecret('TEMPORAL_API_KEY'),
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
  CLICKHOUSE_URL: url('CLICKHOUSE_URL', { schemes: ['http', 'https'] }),
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
  DATABASE_URL: url('DATABASE_URL', { schemes: ['postgres', 'postgresql'] }),
  OPTIINFRA_HOME: optionalText(),
  OPTIINFRA_WEBHOOK_SECRET: z
    .string()
    .optional()
    .transform((v, ctx) => {
      // Trimmed: a line break from $(cat file) or a Windows .env would change every signature.
      if (v === undefined || v.trim() === '') return undefined;
      if (v.trim().length < 16) {
        ctx.addIssue({ code: 'custom', message: 'OPTIINFRA_WEBHOOK_SECRET must be at least 16 characters' });
        return z.NEVER;
      }
      return v.trim();
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
  OPTIINFRA_CODEC_TOKEN: headerSecret('OPTIINFRA_CODEC_TOKEN', 16),
  OPTIINFRA_CODEC_CORS_ORIGIN: url('OPTIINFRA_CODEC_CORS_ORIGIN', {
    schemes: ['http', 'https'],
    credentials: 'refused',
    query: 'refused',
  }),
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
