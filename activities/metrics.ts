/**
 * The product's Prometheus metrics (prom-client): one registry and one set of metric objects per
 * process, fed by one-line hooks where things happen, and an HTTP endpoint that serves them
 * together with the Temporal SDK's own metrics (one scrape target per worker).
 *
 * - Scoring (activities/collector/scoring.ts): checks written to ClickHouse by outcome, and the
 *   judge's LLM calls and tokens, per deployment and judge.
 * - The LLM client (activities/llm/client.ts): every HTTP request by outcome, its duration, its
 *   tokens, the 429s and 498s; the pacer's headroom, read when scraped.
 * - The gate (activities/gate/activities.ts): decisions and rollbacks, counted when recorded.
 * - Cycle lag: now minus the newest scored interaction per deployment, read from ClickHouse when
 *   scraped (at most every LAG_REFRESH_MS).
 *
 * Labels are few and bounded: deployment, judge, check, model, outcome and the like; never
 * interaction ids, texts or secrets.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RequestLog } from './llm/usage.js';

export const registry = new Registry();

const checks = new Counter({
  name: 'optiinfra_checks_total',
  help: 'Checks judged and written to ClickHouse, by outcome (scored, failed, abstained)',
  labelNames: ['deployment', 'judge', 'check', 'outcome'] as const,
  registers: [registry],
});
const judgeCalls = new Counter({
  name: 'optiinfra_judge_llm_calls_total',
  help: 'HTTP requests to the LLM made by the judge (retries included)',
  labelNames: ['deployment', 'judge'] as const,
  registers: [registry],
});
const judgeTokens = new Counter({
  name: 'optiinfra_judge_tokens_total',
  help: 'Tokens spent by the judge: input (cached is part of it), output (reasoning is part of it)',
  labelNames: ['deployment', 'judge', 'kind'] as const,
  registers: [registry],
});
const llmRequests = new Counter({
  name: 'optiinfra_llm_requests_total',
  help: 'HTTP requests to the LLM (judge and agents), by outcome: ok or the failure type',
  labelNames: ['model', 'outcome'] as const,
  registers: [registry],
});
const llmRateLimited = new Counter({
  name: 'optiinfra_llm_rate_limited_total',
  help: 'LLM requests answered 429 (rate limit) or 498 (flex capacity), by status',
  labelNames: ['model', 'status'] as const,
  registers: [registry],
});
const llmTokens = new Counter({
  name: 'optiinfra_llm_tokens_total',
  help: 'Tokens of LLM replies: input (cached is part of it), output (reasoning is part of it)',
  labelNames: ['model', 'kind'] as const,
  registers: [registry],
});
const llmDuration = new Histogram({
  name: 'optiinfra_llm_request_duration_seconds',
  help: 'Duration of one HTTP request to the LLM',
  labelNames: ['model'] as const,
  buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
  registers: [registry],
});
const gateDecisions = new Counter({
  name: 'optiinfra_gate_decisions_total',
  help: 'Gate decisions recorded, by decision and effective decision (after on-inconclusive or an override)',
  labelNames: ['deployment', 'decision', 'effective_decision'] as const,
  registers: [registry],
});
const rollbacks = new Counter({
  name: 'optiinfra_rollbacks_total',
  help: 'Rollbacks of rejected versions, by result (delivered, dry-run, failed) and deployer',
  labelNames: ['deployment', 'result', 'deployer'] as const,
  registers: [registry],
});

/** What the budget gauges read: the pacer of an LLM client (activities/llm/pacer.ts). */
export interface BudgetSource {
  snapshot(): Promise<{
    limits: Record<string, number | null>;
    remaining: Record<string, number | null>;
    pausedUntil: string | null;
    at: string;
  }>;
}
const budgets = new Map<string, BudgetSource>();
let budgetCache: { at: number; rows: Array<{ model: string; snap: Awaited<ReturnType<BudgetSource['snapshot']>> }> } | undefined;
const BUDGET_REFRESH_MS = 5000;
/** A scrape never waits longer than this for a store. */
const READ_TIMEOUT_MS = 4000;

async function budgetRows() {
  if (budgetCache && Date.now() - budgetCache.at < BUDGET_REFRESH_MS) return budgetCache.rows;
  const rows = [];
  for (const [model, source] of budgets) {
    try {
      rows.push({ model, snap: await withTimeout(source.snapshot()) });
    } catch {
      // the store is unreachable now: this budget is left out of the scrape
    }
  }
  budgetCache = { at: Date.now(), rows };
  return rows;
}

new Gauge({
  name: 'optiinfra_llm_budget_remaining',
  help: 'What is left of each rate limit of the LLM budget shared by all workers (requests or tokens)',
  labelNames: ['model', 'limit'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    for (const { model, snap } of await budgetRows()) {
      for (const [limit, v] of Object.entries(snap.remaining)) if (v !== null) this.set({ model, limit }, v);
    }
  },
});
new Gauge({
  name: 'optiinfra_llm_budget_limit',
  help: 'Each rate limit of the LLM budget in force (after corrections from the reply headers)',
  labelNames: ['model', 'limit'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    for (const { model, snap } of await budgetRows()) {
      for (const [limit, v] of Object.entries(snap.limits)) if (v !== null) this.set({ model, limit }, v);
    }
  },
});
new Gauge({
  name: 'optiinfra_llm_paused_seconds',
  help: 'Seconds every LLM caller still waits after a 429 or 498 (0: not paused)',
  labelNames: ['model'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    for (const { model, snap } of await budgetRows()) {
      const until = snap.pausedUntil ? Date.parse(snap.pausedUntil) : 0;
      this.set({ model }, Math.max(0, (until - Date.parse(snap.at)) / 1000));
    }
  },
});

/** Newest scored interaction time (seconds) per deployment. */
export type NewestScored = () => Promise<Array<{ deployment: string; lastTs: number }>>;
let lagSource: NewestScored | undefined;
let lagCache: { at: number; rows: Array<{ deployment: string; lastTs: number }> } | undefined;
const LAG_REFRESH_MS = 15_000;

new Gauge({
  name: 'optiinfra_cycle_lag_seconds',
  help: 'Now minus the time of the newest scored interaction, per deployment',
  labelNames: ['deployment'] as const,
  registers: [registry],
  async collect() {
    if (lagSource && (!lagCache || Date.now() - lagCache.at >= LAG_REFRESH_MS)) {
      try {
        lagCache = { at: Date.now(), rows: await withTimeout(lagSource()) };
      } catch {
        // ClickHouse is unreachable now: the last figures stay (their lag keeps growing)
      }
    }
    this.reset();
    const now = Date.now() / 1000;
    for (const r of lagCache?.rows ?? []) this.set({ deployment: r.deployment }, Math.max(0, now - r.lastTs));
  },
});

/** Created by the first endpoint that merges the Temporal SDK's metrics. */
let sdkUp: Gauge | undefined;

function withTimeout<T>(p: Promise<T>, ms = READ_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

// --- hooks -------------------------------------------------------------------------------------

/** A metric update never fails the work it describes. */
function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // a bad value is dropped
  }
}

/** Score rows written to ClickHouse (counted once written, so a retried batch counts nothing twice). */
export function recordScoresWritten(rows: ReadonlyArray<{ deployment: string; judge: string; check_name: string; status: string }>): void {
  safely(() => {
    for (const r of rows) {
      const outcome = r.status === 'ok' ? 'scored' : r.status;
      checks.inc({ deployment: r.deployment, judge: r.judge, check: r.check_name, outcome });
    }
  });
}

/** The LLM usage of one judged interaction. */
export function recordJudgeUsage(
  deployment: string,
  judge: string,
  u: { calls: number; promptTokens: number; cachedTokens: number; reasoningTokens: number; completionTokens: number },
): void {
  safely(() => {
    if (u.calls > 0) judgeCalls.inc({ deployment, judge }, u.calls);
    const kinds: Array<[string, number]> = [
      ['input', u.promptTokens],
      ['cached', u.cachedTokens],
      ['reasoning', u.reasoningTokens],
      ['output', u.completionTokens],
    ];
    for (const [kind, n] of kinds) if (n > 0) judgeTokens.inc({ deployment, judge, kind }, n);
  });
}

/** One HTTP request of the LLM client, as it logs it. */
export function recordLlmRequest(model: string, f: RequestLog): void {
  safely(() => {
    llmRequests.inc({ model, outcome: f.outcome === 'ok' ? 'ok' : (f.type ?? 'error') });
    llmDuration.observe({ model }, f.latencyMs / 1000);
    if (f.status === 429 || f.status === 498) llmRateLimited.inc({ model, status: String(f.status) });
    const kinds: Array<[string, number | undefined]> = [
      ['input', f.promptTokens],
      ['cached', f.cachedTokens],
      ['reasoning', f.reasoningTokens],
      ['output', f.completionTokens],
    ];
    for (const [kind, n] of kinds) if (n) llmTokens.inc({ model, kind }, n);
  });
}

/** A gate decision as recorded in PostgreSQL, with its rollback when there was one. */
export function recordGateDecision(r: {
  deployment: string;
  decision: string;
  effectiveDecision: string;
  rollback: { status: string; deployer: string };
}): void {
  safely(() => {
    gateDecisions.inc({ deployment: r.deployment, decision: r.decision, effective_decision: r.effectiveDecision });
    if (r.rollback.status !== 'not-needed')
      rollbacks.inc({ deployment: r.deployment, result: r.rollback.status, deployer: r.rollback.deployer });
  });
}

/** Expose the headroom of an LLM client's budget (one per model; the latest registration wins). */
export function watchLlmBudget(model: string, source: BudgetSource): void {
  budgets.set(model, source);
  budgetCache = undefined;
}

/** Expose the cycle lag from this source of the newest scored interaction per deployment. */
export function watchCycleLag(source: NewestScored): void {
  lagSource = source;
  lagCache = undefined;
}

// --- the endpoint ------------------------------------------------------------------------------

let defaultsOn = false;

export interface MetricsServer {
  /** http://host:port/metrics */
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serve the registry at GET /metrics on `host:port` (port 0: any free port), followed by the
 * Temporal SDK's metrics read from `temporalSdkUrl` when given. Process metrics (CPU, memory,
 * event-loop lag, heap) are added the first time.
 */
export async function serveMetrics(opts: { port: number; host?: string; temporalSdkUrl?: string }): Promise<MetricsServer> {
  if (!defaultsOn) {
    defaultsOn = true;
    collectDefaultMetrics({ register: registry, prefix: 'optiinfra_' });
  }
  if (opts.temporalSdkUrl) {
    sdkUp ??= new Gauge({
      name: 'optiinfra_temporal_sdk_metrics_up',
      help: "1 when the Temporal SDK's metrics were read for this scrape, 0 when they could not be",
      registers: [registry],
    });
  }
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || (path !== '/metrics' && path !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    void exposition(opts.temporalSdkUrl).then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: unknown) =>
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e instanceof Error ? e.message : String(e)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    const refuse = (e: Error) =>
      reject(
        new Error(`cannot serve metrics on ${opts.host ?? '*'}:${opts.port} (${e.message}): set OPTIINFRA_METRICS_PORT to a free port`),
      );
    server.once('error', refuse);
    server.listen(opts.port, opts.host, () => {
      server.off('error', refuse);
      resolve();
    });
  });
  server.unref();
  const port = (server.address() as AddressInfo).port;
  const shown =
    !opts.host || opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${shown}:${port}/metrics`,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The product's metrics, then the Temporal SDK's (their names start with temporal_). */
async function exposition(temporalSdkUrl: string | undefined): Promise<string> {
  let sdk = '';
  if (temporalSdkUrl) {
    try {
      const r = await fetch(temporalSdkUrl, { signal: AbortSignal.timeout(READ_TIMEOUT_MS) });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      sdk = await r.text();
      sdkUp?.set(1);
    } catch {
      sdkUp?.set(0);
    }
  }
  const own = await registry.metrics();
  return sdk ? `${own.endsWith('\n') ? own : `${own}\n`}${sdk}` : own;
}
