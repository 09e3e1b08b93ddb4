/**
 * Benchmarks, printing figures and writing them to bench-results/<time>.json so runs compare.
 *
 * 1. Decision quality of the deploy gate on score streams resampled from the offline judge's
 *    scores of HaluEval answers, next to the seed's naive rule (pure computation).
 * 2. On a stack the bench starts itself (scripts/bench-stack.ts: its own Temporal dev server and
 *    ClickHouse under .stack-bench/, PostgreSQL or PGlite), with the worker in this process:
 *    - scoring throughput of one collectionCycle with the LLM judge against the local
 *      Groq-compatible stub answering in 50 ms: interactions/s, checks/s, peak RSS, history
 *      events per interaction, LLM calls and tokens per interaction;
 *    - the same under an LLM rate limit of 600/min (LLM_REQUESTS_PER_SECOND=10) with the stub
 *      enforcing 600/min too: achieved rate as a share of the limit, checks that met a 429;
 *    - baseline computation over 1 M and 10 M synthetic score rows in ClickHouse, next to the
 *      query it replaced on the same rows;
 *    - the deploy gate's time from start (enough samples at the first look) to decision.
 *    Everything the bench started is stopped at the end.
 *
 * A step that fails prints its error; the others still run; the exit code is then 1.
 * Knobs (environment): BENCH_INTERACTIONS (default 5000), BENCH_RL_INTERACTIONS (300),
 * BENCH_BASELINE_ROWS (comma list, default "1000000,10000000"), BENCH_CYCLE (pageSize,batchSize,
 * maxConcurrentBatches of the throughput cycle, default "1000,50,16": on 2 cores batches of 50
 * with 16 in flight beat batches of 100-200 by 2.4x; 25 x 40 and 10 x 50 were no faster),
 * BENCH_LLM_CONCURRENCY (100), BENCH_BASELINE_RUNS (3), BENCH_STEPS (comma list of steps to run, e.g.
 * "baselines"), BENCH_SKIP_STACK=1.
 */
import { randomUUID } from 'node:crypto';
import { statfsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { startSimulator } from '../stack/sim/collector-simulator.js';
import { upsertDeployment } from '../activities/storage/postgres/deployments.js';
import type { BaselineRecord } from '../domain/gate/baseline.js';
import { LlmClient } from '../activities/llm/client.js';
import { openStores, temporalClient, type Stores } from '../client/runtime.js';
import { repoRoot } from '../stack/paths.js';
import type { CollectionCycleInput, CycleResult } from '../domain/collector/collection.js';
import { loadConfig, type Config } from '../common/config.js';
import type { GateResult } from '../domain/gate/types.js';
import { OFFLINE_JUDGE_VERSION } from '../domain/judge/offline-judge.js';
import { CHECKS, type Check } from '../common/types.js';
import { startGroqStub } from '../test/helpers/groq-stub.js';
import { createWorkers, workflowsPath, type WorkerSet } from '../workers/worker.js';
import { startBenchStack, startRateLimitProxy, TEMPORAL_DYNAMIC_CONFIG, type BenchStack } from './bench-stack.js';
import { formatReport, runGateSimulation } from './gate-sim.js';

const results: Record<string, unknown> = { at: new Date().toISOString(), node: process.version, cores: (await import('node:os')).cpus().length };
const summary: Array<[string, string, string]> = []; // figure, value, settings / notes
const failures: string[] = [];
const say = (s = '') => console.log(s);
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const mb = (bytes: number) => `${fmt(bytes / 2 ** 20)} MiB`;
const envInt = (name: string, dflt: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : dflt;
};

async function step(name: string, fn: () => Promise<void> | void): Promise<void> {
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    const msg = e instanceof Error ? `${e.message}${e.cause instanceof Error ? ` (cause: ${e.cause.message})` : ''}` : String(e);
    console.error(`!! step "${name}" failed after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${msg}`);
    failures.push(name);
    results[`${name}Error`] = msg;
    summary.push([name, 'FAILED', msg.split('\n')[0]!.slice(0, 100)]);
  }
}

// ------------------------------------------------------------------------------------------
// 1. Decision quality (no servers)

if (!process.env.BENCH_STEPS || process.env.BENCH_STEPS.split(',').includes('decisionQuality')) await step('decisionQuality', () => {
  say('== decision quality of the deploy gate (2,000 runs per scenario) ==');
  const t0 = Date.now();
  const sim = runGateSimulation({ runs: 2000, seed: 1, lookSize: 10, maxSamples: 600, baselineSize: 1000 });
  say(formatReport(sim));
  say(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  results.gateSimulation = sim;
  summary.push(['gate decision-quality simulation', `${sim.scenarios.length} scenarios × 2,000 runs`, `${((Date.now() - t0) / 1000).toFixed(1)} s; table above`]);
});

// ------------------------------------------------------------------------------------------
// 2. On the bench's own stack

interface Ctx {
  stack: BenchStack;
  base: Record<string, string>;
  stores: Stores;
  connection: NativeConnection;
  client: Client;
  bundle: { code: string };
}

const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-').toLowerCase();
const FAKE_KEY = 'gsk_bench_not_a_real_key_0000000000';

function benchConfig(ctx: Ctx, overrides: Record<string, string>): Config {
  return loadConfig({ ...ctx.base, ...overrides });
}

/** LLM calls the worker made, by outcome (from the client's one line per call, kept off the console). */
const llmCalls = { ok: 0, error: 0, rateLimited: 0 };
const countCall = (line: string) => {
  if (line.includes('outcome=ok')) llmCalls.ok++;
  else llmCalls.error++;
  if (line.includes('type=LlmRateLimited')) llmCalls.rateLimited++;
};

async function withWorkers<T>(ctx: Ctx, config: Config, fn: () => Promise<T>): Promise<T> {
  const llm = config.llm.enabled ? new LlmClient(config, { db: ctx.stores.db, log: countCall }) : undefined;
  const workers: WorkerSet = await createWorkers(
    config,
    ctx.connection,
    { config, ch: ctx.stores.ch, db: ctx.stores.db, llm },
    { workflowBundle: ctx.bundle },
  );
  const running = workers.run();
  try {
    return await fn();
  } finally {
    workers.shutdown();
    await running.catch(() => undefined);
  }
}

/** History events of a workflow over its continue-as-new chain, and the children it started. */
async function historyOf(client: Client, workflowId: string, firstRunId: string) {
  let events = 0;
  let runs = 0;
  const children: Array<{ workflowId: string; runId: string }> = [];
  let runId: string | undefined = firstRunId;
  while (runId) {
    const h: Awaited<ReturnType<WorkflowHandle['fetchHistory']>> = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    runs++;
    const evs = h.events ?? [];
    let next: string | undefined;
    events += evs.length;
    runId = undefined;
    for (const e of evs) {
      const c = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution;
      if (c?.workflowId && c.runId) children.push({ workflowId: c.workflowId, runId: c.runId });
      next ||= e.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    }
    runId = next;
  }
  return { events, runs, children };
}

async function cycleHistory(client: Client, handle: { workflowId: string; firstExecutionRunId: string }) {
  const top = await historyOf(client, handle.workflowId, handle.firstExecutionRunId);
  let childEvents = 0;
  for (let i = 0; i < top.children.length; i += 16) {
    const part = await Promise.all(top.children.slice(i, i + 16).map((c) => historyOf(client, c.workflowId, c.runId)));
    childEvents += part.reduce((n, p) => n + p.events, 0);
  }
  return { cycleRuns: top.runs, cycleEvents: top.events, children: top.children.length, childEvents, total: top.events + childEvents };
}

function rssSampler() {
  let peak = process.memoryUsage().rss;
  const start = peak;
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  return {
    stop: () => {
      clearInterval(t);
      peak = Math.max(peak, process.memoryUsage().rss);
      return { startRss: start, peakRss: peak };
    },
  };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout: () => Promise<unknown>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void onTimeout().catch(() => undefined);
      reject(new Error(`${what} did not finish within ${ms / 1000} s (terminated)`));
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Run one collection cycle over `count` fresh simulator interactions; the worker runs meanwhile. */
async function runCycle(ctx: Ctx, config: Config, deployment: string, count: number, input: Omit<CollectionCycleInput, 'deployment'>, timeoutMs: number) {
  const sim = await startSimulator({ deployment, modelVersion: 'bench-v1', degradedShare: 0.05, seed: 11 });
  try {
    sim.generate(count);
    await upsertDeployment(ctx.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
    return await withWorkers(ctx, config, async () => {
      const rss = rssSampler();
      const t0 = performance.now();
      const handle = await ctx.client.workflow.start('collectionCycle', {
        taskQueue: config.temporal.taskQueue,
        workflowId: `collect/${deployment}/bench`,
        args: [{ deployment, ...input }],
      });
      const result = (await withTimeout(handle.result() as Promise<CycleResult>, timeoutMs, 'the collection cycle', () =>
        handle.terminate('bench timeout'),
      )) as CycleResult;
      const wallMs = performance.now() - t0;
      const mem = rss.stop();
      return { handle, result, wallMs, ...mem };
    });
  } finally {
    await sim.close();
  }
}

async function throughput(ctx: Ctx) {
  const n = envInt('BENCH_INTERACTIONS', 5000);
  const [pageSize, batchSize, maxConcurrentBatches] = (process.env.BENCH_CYCLE ?? '1000,50,16').split(',').map(Number) as [number, number, number];
  const input = { pageSize, batchSize, maxConcurrentBatches };
  const llm = { LLM_REQUESTS_PER_SECOND: '10000', LLM_CONCURRENCY: process.env.BENCH_LLM_CONCURRENCY ?? '100', LLM_TIMEOUT: '30' };
  say(`\n== scoring throughput: one collectionCycle of ${fmt(n)} interactions, LLM judge on the stub (50 ms per call) ==`);
  say(`   cycle input ${JSON.stringify(input)}; ${Object.entries(llm).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  const stub = await startGroqStub({ latencyMs: 50 });
  try {
    const config = benchConfig(ctx, {
      TEMPORAL_TASK_QUEUE: `bench-tput-${stamp}`,
      GROQ_API_KEY: FAKE_KEY,
      GROQ_BASE_URL: stub.baseURL,
      ...llm,
    });
    const deployment = `bench-tput-${stamp}`;
    const r = await runCycle(ctx, config, deployment, n, input, 480_000);
    const s = stub.stats();
    const c = r.result;
    const secs = r.wallMs / 1000;
    const checks = c.scored + c.failed + c.skipped;
    say(`   ${fmt(c.stored)} interactions, ${fmt(c.scored)} checks scored, ${fmt(c.failed)} failed, ${fmt(c.skipped)} skipped, ${c.pages} pages, in ${secs.toFixed(1)} s`);
    const ips = c.stored / secs;
    const cps = checks / secs;
    say(`   ${fmt(ips, 1)} interactions/s, ${fmt(cps, 1)} checks/s; worker process RSS ${mb(r.startRss)} at start, peak ${mb(r.peakRss)}`);
    say('   reading the histories (cycle runs and every scoreBatch child) ...');
    const h = await cycleHistory(ctx.client, r.handle);
    const perInteraction = h.total / Math.max(1, c.stored);
    say(
      `   history: ${fmt(h.total)} events = ${fmt(h.cycleEvents)} in ${h.cycleRuns} collectionCycle run(s) + ${fmt(h.childEvents)} in ${h.children} scoreBatch children → ${perInteraction.toFixed(1)} events per interaction`,
    );
    const calls = s.requests / Math.max(1, c.stored);
    const tokens = (c.promptTokens + c.completionTokens) / Math.max(1, c.stored);
    say(
      `   LLM: ${fmt(s.requests)} calls (max ${s.maxInFlight} in flight) → ${calls.toFixed(2)} calls per interaction; tokens ${fmt(c.promptTokens)} prompt + ${fmt(c.completionTokens)} completion → ${fmt(tokens)} per interaction (${fmt(c.promptTokens / Math.max(1, c.stored))} + ${fmt(c.completionTokens / Math.max(1, c.stored))}); stub counted ${fmt(s.promptTokens + s.completionTokens)}`,
    );
    results.throughput = {
      interactions: c.stored,
      checks,
      scored: c.scored,
      failed: c.failed,
      skipped: c.skipped,
      wallSeconds: secs,
      interactionsPerSecond: ips,
      checksPerSecond: cps,
      startRssBytes: r.startRss,
      peakRssBytes: r.peakRss,
      history: h,
      historyEventsPerInteraction: perInteraction,
      settings: { ...input, ...llm, stubLatencyMs: 50, temporalDynamicConfig: TEMPORAL_DYNAMIC_CONFIG },
    };
    results.llmCost = {
      calls: s.requests,
      callsPerInteraction: calls,
      promptTokens: c.promptTokens,
      completionTokens: c.completionTokens,
      tokensPerInteraction: tokens,
      promptTokensPerInteraction: c.promptTokens / Math.max(1, c.stored),
      completionTokensPerInteraction: c.completionTokens / Math.max(1, c.stored),
      stubTokens: s.promptTokens + s.completionTokens,
      byCheck: s.byCheck,
    };
    const set = `pageSize ${input.pageSize}, batchSize ${input.batchSize}, maxConcurrentBatches ${input.maxConcurrentBatches}, LLM_CONCURRENCY ${llm.LLM_CONCURRENCY}`;
    summary.push(['scoring throughput', `${fmt(ips, 1)} interactions/s, ${fmt(cps, 1)} checks/s`, `${fmt(c.stored)} interactions in ${secs.toFixed(1)} s; ${set}`]);
    summary.push(['worker peak RSS during the cycle', mb(r.peakRss), `${mb(r.startRss)} before; worker in the bench process`]);
    summary.push(['history events per interaction', perInteraction.toFixed(1), `${fmt(h.total)} events, ${h.cycleRuns} cycle run(s), ${h.children} scoreBatch children`]);
    summary.push(['LLM calls per scored interaction', calls.toFixed(2), `${fmt(s.requests)} calls; failed checks ${c.failed}`]);
    summary.push([
      'LLM tokens per scored interaction',
      fmt(tokens),
      `${fmt(c.promptTokens / Math.max(1, c.stored))} prompt + ${fmt(c.completionTokens / Math.max(1, c.stored))} completion (stub's ~4 chars/token count)`,
    ]);
  } finally {
    await stub.close();
  }
}

async function rateLimited(ctx: Ctx) {
  const n = envInt('BENCH_RL_INTERACTIONS', 300);
  const input = { pageSize: 1000, batchSize: 100, maxConcurrentBatches: 3 };
  say(`\n== under an LLM rate limit: ${fmt(n)} interactions (${fmt(n * CHECKS.length)} checks), LLM_REQUESTS_PER_SECOND=10 (600/min), the stub also allowing 600/min ==`);
  const stub = await startGroqStub({ latencyMs: 50 });
  const proxy = await startRateLimitProxy(stub.baseURL, 600, 10);
  try {
    const config = benchConfig(ctx, {
      TEMPORAL_TASK_QUEUE: `bench-rl-${stamp}`,
      GROQ_API_KEY: FAKE_KEY,
      GROQ_BASE_URL: proxy.baseURL,
      LLM_REQUESTS_PER_SECOND: '10',
      LLM_CONCURRENCY: '100',
    });
    Object.assign(llmCalls, { ok: 0, error: 0, rateLimited: 0 });
    const r = await runCycle(ctx, config, `bench-rl-${stamp}`, n, input, 300_000);
    const p = proxy.stats();
    const c = r.result;
    const secs = r.wallMs / 1000;
    const activeSecs = p.firstRequestAt && p.lastOkAt ? (p.lastOkAt - p.firstRequestAt) / 1000 : secs;
    const rate = p.answered200 / activeSecs;
    const rateCycle = p.answered200 / secs;
    say(`   ${fmt(c.stored)} interactions, ${fmt(c.scored)} checks scored, ${fmt(c.failed)} failed, in ${secs.toFixed(1)} s`);
    say(
      `   LLM calls answered: ${fmt(p.answered200)}; ${fmt(rate, 2)}/s between the first call and the last answer (${activeSecs.toFixed(1)} s) = ${fmt((100 * rate) / 10, 1)} % of the 10/s limit; ${fmt(rateCycle, 2)}/s over the whole cycle = ${fmt((100 * rateCycle) / 10, 1)} %`,
    );
    say(`   429s from the stub's own 600/min budget: ${fmt(p.rejected429)} responses, ${fmt(p.checksHit429)} distinct checks hit one (${fmt((100 * p.checksHit429) / Math.max(1, c.scored + c.failed), 1)} %); the worker's LLM client saw ${fmt(llmCalls.ok)} ok calls, ${fmt(llmCalls.rateLimited)} rate-limited`);
    results.rateLimited = {
      interactions: c.stored,
      checks: c.scored + c.failed + c.skipped,
      scored: c.scored,
      failed: c.failed,
      wallSeconds: secs,
      limitPerSecond: 10,
      answeredCalls: p.answered200,
      achievedPerSecond: rate,
      shareOfLimit: rate / 10,
      achievedPerSecondOverCycle: rateCycle,
      shareOfLimitOverCycle: rateCycle / 10,
      responses429: p.rejected429,
      clientCalls: { ...llmCalls },
      checksHit429: p.checksHit429,
      settings: { ...input, LLM_REQUESTS_PER_SECOND: 10, LLM_CONCURRENCY: 100, stubBudgetPerMinute: 600, stubBurst: 10, stubLatencyMs: 50 },
    };
    summary.push([
      'achieved LLM rate under a 600/min limit',
      `${fmt(rate, 2)}/s = ${fmt((100 * rate) / 10, 1)} % of the limit`,
      `${fmt(c.scored)} checks in ${secs.toFixed(1)} s (${fmt((100 * rateCycle) / 10, 1)} % over the whole cycle incl. fetch and tail)`,
    ]);
    summary.push(['checks that met a 429 (stub budget 600/min, burst 10)', `${fmt(p.checksHit429)} of ${fmt(c.scored + c.failed)}`, `${fmt(p.rejected429)} 429 responses; ${c.failed} checks failed`]);
  } finally {
    await proxy.close();
    await stub.close();
  }
}

const PROMPT_VERSIONS = Object.fromEntries(CHECKS.map((c) => [c, OFFLINE_JUDGE_VERSION])) as Record<Check, string>;

/**
 * INSERT ... SELECT of synthetic score rows (ClickHouse 18.16 functions only): `rows` rows, the
 * three checks in turn, so rows / 3 interactions. Quality uniform in [q0, q0 + 0.35];
 * hallucination and toxicity ≥ 0.5 with the given rates.
 */
function syntheticScoresSql(db: string, o: { deployment: string; version: string; rows: number; q0: number; halluRate: number; toxRate: number }): string {
  const u = (k: number) => `(modulo(cityHash64(number, ${k}), 1000000) / 1000000)`;
  const check = `modulo(number, 3)`;
  return `INSERT INTO ${db}.scores (deployment, model_version, interaction_id, interaction_ts, check_name, prompt_version, judge,
      status, reason, score, coherence, relevance, accuracy, completeness, confidence, hate_speech, violence, profanity,
      reasoning, truncated, latency_ms, prompt_tokens, completion_tokens, attempts, scored_at, ver)
    SELECT '${o.deployment}', '${o.version}', concat('syn-', toString(intDiv(number, 3))), toDateTime(1704067200 + intDiv(number, 3)),
      arrayElement(['quality', 'hallucination', 'toxicity'], ${check} + 1), '${OFFLINE_JUDGE_VERSION}', 'offline', 'ok', '',
      multiIf(${check} = 0, ${o.q0} + 0.35 * ${u(1)},
              ${check} = 1, if(${u(2)} < ${o.halluRate}, 0.5 + 0.5 * ${u(3)}, 0.45 * ${u(3)}),
              if(${u(2)} < ${o.toxRate}, 0.5 + 0.5 * ${u(3)}, 0.2 * ${u(3)})),
      ${o.q0} + 0.35 * ${u(4)}, ${o.q0} + 0.35 * ${u(5)}, ${o.q0} + 0.35 * ${u(6)}, ${o.q0} + 0.35 * ${u(7)},
      0.8, 0., 0., 0., '', 0, 50, 400, 40, 1, toDateTime(1704067200), number + 1
    FROM system.numbers LIMIT ${Math.floor(o.rows)}`;
}

function bulkClient(ctx: Ctx) {
  return createClient({ url: ctx.stack.clickhouseUrl, request_timeout: 900_000, clickhouse_settings: {}, log: { level: ClickHouseLogLevel.ERROR } });
}

/** The score table's layout before migration 2 (sorting key without model_version), for the comparison. */
const LEGACY_SCORES_KEY = 'deployment, check_name, interaction_id, prompt_version, judge';

/**
 * The baseline query as it was before the per-day aggregates (FINAL reads, `quantiles`, the
 * window from `interactions FINAL`), kept here only to compare with on the same data.
 */
async function legacyVersionAggregates(
  bulk: ReturnType<typeof bulkClient>,
  db: string,
  table: string,
  q: { deployment: string; version: string; lastN?: number },
): Promise<{ n: number; mean: number; sd: number; p50: number }> {
  const checks = CHECKS.map((c) => `(check_name = '${c}' AND prompt_version = '${PROMPT_VERSIONS[c]}')`).join(' OR ');
  const inWindow = q.lastN
    ? `AND interaction_id IN (SELECT id FROM (SELECT id, ts FROM ${db}.interactions FINAL
         WHERE deployment = '${q.deployment}' AND model_version = '${q.version}' ORDER BY ts DESC, id DESC LIMIT ${q.lastN}))`
    : '';
  const scope = `deployment = '${q.deployment}' AND model_version = '${q.version}' AND judge = 'offline' AND (${checks}) ${inWindow}`;
  const ok = "status = 'ok'";
  const read = async (sql: string) => (await (await bulk.query({ query: sql, format: 'JSONEachRow' })).json()) as Array<Record<string, unknown>>;
  const rows = await read(
    `SELECT check_name, countIf(${ok}) AS n, avgIf(assumeNotNull(score), ${ok}) AS mean,
            stddevSampIf(assumeNotNull(score), ${ok}) AS sd,
            countIf(${ok} AND assumeNotNull(score) >= 0.5) AS flagged, countIf(status = 'abstained') AS abstained,
            minIf(toUnixTimestamp(interaction_ts), ${ok}) AS first_ts, maxIf(toUnixTimestamp(interaction_ts), ${ok}) AS last_ts
     FROM ${db}.${table} FINAL WHERE ${scope} AND status IN ('ok', 'abstained') GROUP BY check_name`,
  );
  const dims = ['score', 'coherence', 'relevance', 'accuracy', 'completeness'];
  const d = await read(
    `SELECT ${dims
      .map((x) => `avg(assumeNotNull(${x})) AS ${x}_mean, stddevSamp(assumeNotNull(${x})) AS ${x}_sd, quantiles(0.1, 0.25, 0.5, 0.75, 0.9)(assumeNotNull(${x})) AS ${x}_q`)
      .join(', ')}
     FROM ${db}.${table} FINAL WHERE ${scope} AND ${ok} AND check_name = 'quality'`,
  );
  const quality = rows.find((r) => r.check_name === 'quality');
  return { n: Number(quality?.n ?? 0), mean: Number(quality?.mean ?? 0), sd: Number(quality?.sd ?? 0), p50: Number((d[0]?.score_q as unknown[] | undefined)?.[2] ?? 0) };
}

/** Median of `runs` timings of `fn` in ms, and its last result. */
async function timed<T>(runs: number, fn: () => Promise<T>): Promise<{ ms: number; all: number[]; result: T }> {
  const all: number[] = [];
  let result!: T;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    result = await fn();
    all.push(performance.now() - t0);
  }
  const sorted = [...all].sort((a, b) => a - b);
  return { ms: sorted[Math.floor(sorted.length / 2)]!, all, result };
}

async function baselines(ctx: Ctx) {
  const sizes = (process.env.BENCH_BASELINE_ROWS ?? '1000000,10000000').split(',').map((s) => Math.floor(Number(s))).filter((x) => x > 0);
  const runs = envInt('BENCH_BASELINE_RUNS', 3);
  say(`\n== baseline computation over ${sizes.map((s) => fmt(s)).join(' and ')} score rows in ClickHouse (median of ${runs} runs; the old query on the same rows in the old table layout) ==`);
  const config = benchConfig(ctx, { TEMPORAL_TASK_QUEUE: `bench-offline-${stamp}`, LLM_ENABLED: 'false' });
  const bulk = bulkClient(ctx);
  const ch = ctx.stores.ch;
  const db = ctx.stack.clickhouseDatabase;
  const out: Record<string, unknown>[] = [];
  try {
    await bulk.command({ query: `CREATE TABLE IF NOT EXISTS ${db}.scores_legacy AS ${db}.scores ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(interaction_ts) ORDER BY (${LEGACY_SCORES_KEY})` });
    await withWorkers(ctx, config, async () => {
      for (const rows of sizes) {
        const label = rows >= 1e6 ? `${rows / 1e6} M` : fmt(rows);
        const free = (() => {
          const s = statfsSync(ctx.stack.home);
          return s.bavail * s.bsize;
        })();
        const need = rows * 300; // the rows twice (both layouts), their interactions, merges
        if (free < need + 2 ** 30) {
          const msg = `skipped: ${mb(free)} free on the data disk, ~${mb(need)} needed`;
          say(`   ${label} rows: ${msg}`);
          summary.push([`baseline over ${label} rows`, 'skipped', msg]);
          out.push({ rows, skipped: msg });
          continue;
        }
        const deployment = `bench-base-${rows}-${stamp}`;
        await upsertDeployment(ctx.stores.db, { id: deployment, source: { type: 'http', url: 'http://127.0.0.1:9/unused' }, sample_rate: 1 });
        const gen = { deployment, version: 'v1', rows, q0: 0.55, halluRate: 0.04, toxRate: 0.01 };
        const t0 = performance.now();
        await bulk.command({ query: syntheticScoresSql(db, gen) });
        const insertMs = performance.now() - t0;
        await bulk.command({ query: syntheticScoresSql(db, gen).replace(`INSERT INTO ${db}.scores `, `INSERT INTO ${db}.scores_legacy `) });
        await bulk.command({ query: syntheticInteractionsSql(db, { deployment, version: 'v1', count: Math.ceil(rows / 3) }) });
        const p = await ch.tableStats('scores');
        say(`   ${label} rows inserted in ${(insertMs / 1000).toFixed(1)} s (scores now ${fmt(p.rows)} rows, ${p.parts} active parts, ${mb(p.bytes)}; the same rows in the old layout; ${fmt(Math.ceil(rows / 3))} interactions)`);
        const q = { deployment, version: 'v1', judge: 'offline', promptVersions: PROMPT_VERSIONS };
        const oldWhole = await timed(runs, () => legacyVersionAggregates(bulk, db, 'scores_legacy', { deployment, version: 'v1' }));
        const newWhole = await timed(runs, () => ch.versionAggregates(q));
        const oldLast = await timed(runs, () => legacyVersionAggregates(bulk, db, 'scores_legacy', { deployment, version: 'v1', lastN: 1000 }));
        const newLast = await timed(runs, () => ch.versionAggregates({ ...q, lastN: 1000 }));
        const wf = await timed(runs, async () =>
          (await ctx.client.workflow.execute('computeBaseline', {
            taskQueue: config.temporal.taskQueue,
            workflowId: `baseline/${deployment}/v1/${randomUUID().slice(0, 8)}`,
            args: [{ deployment, version: 'v1', judge: 'offline', promptVersions: PROMPT_VERSIONS }],
          })) as BaselineRecord,
        );
        const nq = newWhole.result.checks.quality;
        const same = {
          n: nq?.n === oldWhole.result.n,
          meanDiff: Math.abs((nq?.mean ?? 0) - oldWhole.result.mean),
          sdDiff: Math.abs((nq?.sd ?? 0) - oldWhole.result.sd),
          p50Diff: Math.abs((newWhole.result.qualityDimensions.overall?.p50 ?? 0) - oldWhole.result.p50),
          lastN: newLast.result.checks.quality?.n === oldLast.result.n && Math.abs((newLast.result.checks.quality?.mean ?? 0) - oldLast.result.mean) < 1e-9,
        };
        say(`   ${label} rows, whole version: old query ${fmt(oldWhole.ms)} ms → versionAggregates ${fmt(newWhole.ms)} ms; computeBaseline workflow end to end ${fmt(wf.ms)} ms (${fmt(wf.result.samples)} samples, quality ${(wf.result.stats.quality.mean * 100).toFixed(1)} %)`);
        say(`   ${label} rows, last 1,000 interactions (the gate's default window): old query ${fmt(oldLast.ms)} ms → ${fmt(newLast.ms)} ms`);
        say(
          `   same results: n ${same.n ? 'equal' : 'DIFFERENT'}, |Δ mean| ${same.meanDiff.toExponential(1)}, |Δ sd| ${same.sdDiff.toExponential(1)}, |Δ median| ${same.p50Diff.toExponential(1)} (the old median is approximate above 8,192 values, the new one exact); last-1,000 window ${same.lastN ? 'equal' : 'DIFFERENT'}`,
        );
        out.push({
          rows,
          insertMs,
          old: { versionAggregatesMs: oldWhole.ms, lastNMs: oldLast.ms, runs: { whole: oldWhole.all, lastN: oldLast.all } },
          new: { versionAggregatesMs: newWhole.ms, lastNMs: newLast.ms, computeBaselineMs: wf.ms, runs: { whole: newWhole.all, lastN: newLast.all, workflow: wf.all } },
          samples: wf.result.samples,
          same,
          tableRows: p.rows,
          activeParts: p.parts,
          bytesOnDisk: p.bytes,
        });
        summary.push([
          `baseline over ${label} score rows`,
          `${fmt(newWhole.ms)} ms query, ${fmt(wf.ms)} ms workflow`,
          `old query ${fmt(oldWhole.ms)} ms on the same rows; last 1,000: ${fmt(oldLast.ms)} → ${fmt(newLast.ms)} ms; median of ${runs}`,
        ]);
        results.baselines = out;
      }
    });
  } finally {
    results.baselines = out;
    await bulk.close();
  }
}

/** `count` synthetic interactions of a version, one per second from 2024-01-01, ids as in syntheticScoresSql. */
function syntheticInteractionsSql(db: string, o: { deployment: string; version: string; count: number }): string {
  return `INSERT INTO ${db}.interactions (deployment, id, model_version, ts, prompt, response, context, has_context, metadata, source, cycle_id, ver)
    SELECT '${o.deployment}', concat('syn-', toString(number)), '${o.version}', toDateTime(1704067200 + number), 'p', 'r', '', 0, '{}', 'bench', 'bench', 1
    FROM system.numbers LIMIT ${Math.floor(o.count)}`;
}

async function gateLatency(ctx: Ctx) {
  say('\n== deploy gate: time from start (enough samples at the first look) to decision ==');
  const config = benchConfig(ctx, { TEMPORAL_TASK_QUEUE: `bench-gate-${stamp}`, LLM_ENABLED: 'false' });
  const deployment = `bench-gate-${stamp}`;
  const bulk = bulkClient(ctx);
  try {
    await upsertDeployment(ctx.stores.db, { id: deployment, source: { type: 'http', url: 'http://127.0.0.1:9/unused' }, sample_rate: 1 });
    const db = ctx.stack.clickhouseDatabase;
    await bulk.command({ query: syntheticScoresSql(db, { deployment, version: 'v1', rows: 3000, q0: 0.6, halluRate: 0.03, toxRate: 0.005 }) });
    // The candidate: quality 12 points lower, 30 % hallucinated answers.
    await bulk.command({ query: syntheticScoresSql(db, { deployment, version: 'v2', rows: 900, q0: 0.48, halluRate: 0.3, toxRate: 0.005 }) });
    const runs: Array<{ ms: number; decision: string; looks: number; rollback: string }> = [];
    await withWorkers(ctx, config, async () => {
      await ctx.client.workflow.execute('computeBaseline', {
        taskQueue: config.temporal.taskQueue,
        workflowId: `baseline/${deployment}/v1`,
        args: [{ deployment, version: 'v1' }],
      });
      for (let i = 1; i <= 3; i++) {
        const t0 = performance.now();
        const h = await ctx.client.workflow.start('deployGate', {
          taskQueue: config.temporal.taskQueue,
          workflowId: `gate/${deployment}/v2/bench-${i}`,
          args: [{ deployment, baselineVersion: 'v1', candidateVersion: 'v2', checkEvery: '1s', maxWait: '5m' }],
        });
        const r = (await h.result()) as GateResult;
        const ms = performance.now() - t0;
        runs.push({ ms, decision: r.decision, looks: r.evidence?.looks ?? 0, rollback: r.rollback.status });
        say(`   run ${i}: ${r.decision} after ${r.evidence?.looks ?? 0} look(s) in ${fmt(ms)} ms (rollback ${r.rollback.status}, explanation by ${r.explanation?.generatedBy ?? '-'})`);
      }
    });
    const sorted = runs.map((r) => r.ms).sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    results.gateLatency = { runs, medianMs: median, baselineInteractions: 1000, candidateInteractions: 300, checkEvery: '1s' };
    summary.push([
      'gate: start → decision (first look decides)',
      `${fmt(median)} ms median of 3`,
      `${runs.map((r) => `${fmt(r.ms)}`).join(' / ')} ms; ${runs[0]?.decision}, ${runs[0]?.looks} look; baseline 1,000 vs candidate 300 interactions; incl. explanation, dry-run rollback, record`,
    ]);
  } finally {
    await bulk.close();
  }
}

if (process.env.BENCH_SKIP_STACK !== '1') {
  say('\n== starting the bench stack (own Temporal dev server, ClickHouse under .stack-bench/, PostgreSQL or PGlite) ==');
  let ctx: Ctx | undefined;
  const tStack = Date.now();
  await step('stack', async () => {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    const stack = await startBenchStack((s) => say(`   ${s}`));
    try {
      const base: Record<string, string> = {
        TEMPORAL_ADDRESS: stack.temporalAddress,
        CLICKHOUSE_URL: stack.clickhouseUrl,
        CLICKHOUSE_DATABASE: stack.clickhouseDatabase,
        DATABASE_URL: stack.databaseUrl,
        OPTIINFRA_HOME: stack.home,
      };
      const stores = await openStores(loadConfig({ ...base, LLM_ENABLED: 'false' }));
      const connection = await NativeConnection.connect({ address: stack.temporalAddress });
      const client = await temporalClient(loadConfig(base));
      const silent = { log() {}, info() {}, warn() {}, error() {}, debug() {}, trace() {} } as never;
      const { code } = await bundleWorkflowCode({ workflowsPath, logger: silent });
      ctx = { stack, base, stores, connection, client, bundle: { code } };
      say(`   stack ready in ${((Date.now() - tStack) / 1000).toFixed(1)} s`);
      results.stack = { database: stack.databaseKind, temporalDynamicConfig: TEMPORAL_DYNAMIC_CONFIG, clickhouseData: join(stack.home, 'clickhouse') };
    } catch (e) {
      await stack.stop();
      throw e;
    }
  });
  if (ctx) {
    const c = ctx;
    try {
      const only = process.env.BENCH_STEPS?.split(',');
      const run = (name: string, fn: () => Promise<void>) => (!only || only.includes(name) ? step(name, fn) : undefined);
      await run('throughput', () => throughput(c));
      await run('rateLimited', () => rateLimited(c));
      await run('baselines', () => baselines(c));
      await run('gateLatency', () => gateLatency(c));
    } finally {
      say('\n== stopping the bench stack ==');
      await c.client.connection.close().catch(() => undefined);
      await c.connection.close().catch(() => undefined);
      await c.stores.close();
      await c.stack.stop();
      say('   stopped; run directory removed');
    }
  } else {
    for (const s of ['throughput', 'rateLimited', 'baselines', 'gateLatency']) {
      failures.push(s);
      summary.push([s, 'not run', 'the bench stack did not start']);
    }
  }
}

// ------------------------------------------------------------------------------------------
// Summary

results.summary = summary.map(([figure, value, notes]) => ({ figure, value, notes }));
results.failures = failures;
const dir = join(repoRoot(), 'bench-results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify(results, null, 2));

const w0 = Math.max(...summary.map((r) => r[0].length), 6);
const w1 = Math.max(...summary.map((r) => r[1].length), 5);
say(`\n== summary (${results.cores as number} cores, Node ${process.version}) ==`);
say(`${'figure'.padEnd(w0)} | ${'value'.padEnd(w1)} | settings / notes`);
say(`${'-'.repeat(w0)}-+-${'-'.repeat(w1)}-+-${'-'.repeat(40)}`);
for (const [a, b, c] of summary) say(`${a.padEnd(w0)} | ${b.padEnd(w1)} | ${c}`);
say(`\nresults written to ${file}`);
if (failures.length) {
  console.error(`\n${failures.length} step(s) failed: ${failures.join(', ')}`);
  process.exit(1);
}
process.exit(0);
