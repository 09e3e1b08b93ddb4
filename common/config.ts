/**
 * Configuration from the environment, validated once. Never import from workflow code.
 * Secrets (GROQ_API_KEY, passwords inside DATABASE_URL / CLICKHOUSE_URL) are kept out of
 * anything that is logged or stored: see secrets.ts.
 */
import { formatZodError } from './types.js';
import { envSchema, type LlmJudgeMode, type ReasoningEffort, type ServiceTier } from './env-schema.js';
import { PLAN_LIMITS, type GroqPlan, type RateLimits } from './plan-limits.js';
import type { EncryptionKey } from './secrets.js';

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

/** Longest value of any variable: a path, a URL or a list of keys fits; a pasted file does not. */
export const MAX_ENV_VALUE = 4096;

/**
 * What no variable may hold, whatever it is (checked before each one's own rules): more than
 * MAX_ENV_VALUE characters, quotes around the whole value (a .env file's quoting taken literally)
 * and control characters inside it (a second line). Leading and trailing whitespace, a trailing
 * line break or CR included, is trimmed by every variable. Messages never repeat the value.
 */
function envShapeProblem(name: string, v: string): string | undefined {
  const t = v.trim();
  if (t.length > MAX_ENV_VALUE) return `${name} is ${t.length} characters long; at most ${MAX_ENV_VALUE} are accepted`;
  if (t.length >= 2 && /^(["'`]).*\1$/s.test(t)) {
    return `${name} is wrapped in quotes: remove them (quotes around a value in a .env file are not part of it)`;
  }
  const ctl = [...t].findIndex((c) => /[\u0000-\u001f\u007f-\u009f]/.test(c));
  if (ctl >= 0) return `${name} holds a control character (a line break or tab?) at character ${ctl + 1}; the value is not shown`;
  return undefined;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const checked: NodeJS.ProcessEnv = { ...env };
  for (const name of Object.keys(envSchema.shape)) {
    const v = env[name];
    const p = v === undefined ? undefined : envShapeProblem(name, v);
    if (p) {
      problems.push(p);
      delete checked[name];
    }
  }
  const r = envSchema.safeParse(checked);
  if (!r.success) problems.push(formatZodError(r.error));
  if (problems.length || !r.success) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  const e = r.data;
  if (Boolean(e.TEMPORAL_TLS_CERT) !== Boolean(e.TEMPORAL_TLS_KEY)) {
    throw new ConfigError(
      'invalid configuration: TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (the client certificate and its private key, PEM files)',
    );
  }
  // TLS off on request is for a plain-text proxy in front of the cluster; a client certificate or CA would be ignored.
  if (e.TEMPORAL_TLS === false && (e.TEMPORAL_TLS_CERT || e.TEMPORAL_TLS_CA)) {
    throw new ConfigError(
      'invalid configuration: TEMPORAL_TLS=false conflicts with TEMPORAL_TLS_CERT / TEMPORAL_TLS_CA (they need TLS): unset TEMPORAL_TLS or set it to true',
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
