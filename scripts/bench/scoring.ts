/**
 * Scoring at scale, with the LLM judge on the Groq-compatible stub answering in 50 ms and no
 * rate limit (GROQ_PLAN=unlimited), the workers as `optiinfra worker` processes:
 * - throughput of one collectionCycle at 5,000 and 50,000 interactions (combined judge): rate,
 *   history events, worker peak RSS, LLM calls and tokens per interaction;
 * - the same 5,000 on 2 and 3 worker processes, with the machine's CPU use;
 * - the separate judge mode (three calls) on the same 5,000: calls, tokens, and agreement;
 * - the judge server's own capacity at the same concurrency (the physical limit);
 * - Arize Phoenix's evals on the same interactions against the same server (scripts/bench-phoenix.ts).
 */
import { readFileSync } from 'node:fs';
import type { CycleResult } from '../../domain/collector/collection.js';
import { renderCombinedPrompt } from '../../domain/judge/prompts.js';
import { buildInteraction, loadQaRows, type SimulatedInteraction } from '../../stack/sim/collector-simulator.js';
import { startGroqStub, STUB_COMPLETIONS_PATH, type GroqStub } from '../../test/helpers/groq-stub.js';
import { runPhoenixPeer } from '../bench-phoenix.js';
import {
  bulkClient,
  cycleHistory,
  envInt,
  FAKE_KEY,
  fmt,
  mb,
  pct,
  results,
  runCycle,
  say,
  SIM_DEGRADED,
  SIM_SEED,
  stamp,
  summary,
  type Ctx,
  type CycleRun,
} from './common.js';

const LATENCY_MS = 50;
const CONCURRENCY = envInt('BENCH_LLM_CONCURRENCY', 100);
const CYCLE = (() => {
  const [pageSize, batchSize, maxConcurrentBatches] = (process.env.BENCH_CYCLE ?? '1000,50,16').split(',').map(Number) as [
    number,
    number,
    number,
  ];
  return { pageSize, batchSize, maxConcurrentBatches };
})();

/** Busy and total jiffies of the whole machine (/proc/stat), for the CPU share of a run. */
function cpuTimes(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

interface Measured {
  label: string;
  interactions: number;
  workers: number;
  mode: string;
  wallSeconds: number;
  interactionsPerSecond: number;
  checksPerSecond: number;
  historyEvents: number;
  historyEventsPerInteraction: number;
  workerPeakRss: Array<{ worker: number; launcher: number }>;
  cpuBusyShare: number;
  /** CPU ms per interaction by part of the system. */
  cpuMsPerInteraction: Record<string, number>;
  llm: {
    calls: number;
    callsPerInteraction: number;
    promptPerInteraction: number;
    cachedPerInteraction: number;
    reasoningPerInteraction: number;
    completionPerInteraction: number;
    tokensPerInteraction: number;
    /** Uncached input and all output: what counts toward Groq's limits and is billed at full price. */
    limitTokensPerInteraction: number;
    maxInFlight: number;
  };
  failed: number;
}

async function measure(
  ctx: Ctx,
  stub: GroqStub,
  o: { label: string; count: number; workers: number; mode: 'combined' | 'separate'; deployment: string },
): Promise<Measured> {
  stub.clear();
  const env = {
    TEMPORAL_TASK_QUEUE: `bench-${o.label}-${stamp}`,
    GROQ_API_KEY: FAKE_KEY,
    GROQ_BASE_URL: stub.baseURL,
    GROQ_PLAN: 'unlimited',
    LLM_JUDGE_MODE: o.mode,
    LLM_CONCURRENCY: String(CONCURRENCY),
    LLM_TIMEOUT: '30',
  };
  say(`   ${o.label}: ${fmt(o.count)} interactions, ${o.workers} worker process(es), ${o.mode} judge ...`);
  const cpu0 = cpuTimes();
  const r: CycleRun = await runCycle(ctx, {
    deployment: o.deployment,
    count: o.count,
    input: CYCLE,
    timeoutMs: Math.max(300_000, o.count * 40),
    env,
    workers: o.workers,
  });
  const cpu1 = cpuTimes();
  const c: CycleResult = r.result;
  const h = await cycleHistory(ctx.client, r.handle);
  const secs = r.wallMs / 1000;
  const n = Math.max(1, c.stored);
  const s = stub.stats();
  const calls = c.llmCalls ?? 0;
  const m: Measured = {
    label: o.label,
    interactions: c.stored,
    workers: o.workers,
    mode: o.mode,
    wallSeconds: secs,
    interactionsPerSecond: c.stored / secs,
    checksPerSecond: (c.scored + c.failed + c.skipped) / secs,
    historyEvents: h.total,
    historyEventsPerInteraction: h.total / n,
    workerPeakRss: r.workerPeakRss,
    cpuBusyShare: (cpu1.busy - cpu0.busy) / Math.max(1, cpu1.total - cpu0.total),
    cpuMsPerInteraction: Object.fromEntries(Object.entries(r.cpu).map(([k, v]) => [k, (1000 * v) / n])),
    llm: {
      calls,
      callsPerInteraction: calls / n,
      promptPerInteraction: c.promptTokens / n,
      cachedPerInteraction: (c.cachedTokens ?? 0) / n,
      reasoningPerInteraction: (c.reasoningTokens ?? 0) / n,
      completionPerInteraction: c.completionTokens / n,
      tokensPerInteraction: (c.promptTokens + c.completionTokens) / n,
      limitTokensPerInteraction: (c.promptTokens - (c.cachedTokens ?? 0) + c.completionTokens) / n,
      maxInFlight: s.maxInFlight,
    },
    failed: c.failed,
  };
  say(
    `      ${fmt(m.interactionsPerSecond, 1)} interactions/s (${fmt(m.checksPerSecond, 1)} checks/s) in ${secs.toFixed(1)} s; ${fmt(c.scored)} checks scored, ${c.failed} failed; ` +
      `history ${fmt(h.total)} events (${m.historyEventsPerInteraction.toFixed(2)} per interaction); worker peak RSS ${m.workerPeakRss.map((r) => mb(r.worker)).join(', ')} (launcher ${m.workerPeakRss.map((r) => mb(r.launcher)).join(', ')}); CPU busy ${pct(m.cpuBusyShare, 0)} of ${results.cores as number} cores`,
  );
  say(
    `      LLM ${fmt(calls)} calls (${m.llm.callsPerInteraction.toFixed(2)} per interaction, ≤ ${s.maxInFlight} in flight); tokens per interaction: ${fmt(m.llm.promptPerInteraction)} input (${fmt(m.llm.cachedPerInteraction)} cached), ${fmt(m.llm.completionPerInteraction)} output (${fmt(m.llm.reasoningPerInteraction)} reasoning)`,
  );
  say(
    `      CPU per interaction: ${Object.entries(m.cpuMsPerInteraction)
      .map(([k, v]) => `${k} ${v.toFixed(1)} ms`)
      .join(', ')}`,
  );
  return m;
}

/** The judge server alone: `total` combined-prompt calls at CONCURRENCY, from this process. */
async function serverCapacity(stub: GroqStub, texts: SimulatedInteraction[], total: number): Promise<number> {
  stub.clear();
  const url = `${stub.baseURL}${STUB_COMPLETIONS_PATH}`;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < total; i = next++) {
        const p = renderCombinedPrompt(texts[i % texts.length]!);
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${FAKE_KEY}` },
          body: JSON.stringify({
            model: 'openai/gpt-oss-20b',
            messages: [
              { role: 'system', content: p.system },
              { role: 'user', content: p.user },
            ],
            response_format: { type: 'json_object' },
          }),
        });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`the stub answered ${res.status}`);
      }
    }),
  );
  return total / ((performance.now() - t0) / 1000);
}

/** Agreement of two deployments' scores of the same interactions (ids match after the prefix). */
async function agreement(ctx: Ctx, a: string, b: string) {
  const bulk = bulkClient(ctx);
  const db = ctx.stack.clickhouseDatabase;
  const side = (dep: string, col: string) =>
    `SELECT substring(interaction_id, ${dep.length + 2}) AS item, check_name, assumeNotNull(score) AS ${col} FROM ${db}.scores FINAL WHERE deployment = '${dep}' AND status = 'ok'`;
  try {
    const rows = (await (
      await bulk.query({
        query: `SELECT check_name, count() AS n, countIf((sa >= 0.5) = (sb >= 0.5)) AS same_flag, avg(abs(sa - sb)) AS mad
                FROM (${side(a, 'sa')}) ANY INNER JOIN (${side(b, 'sb')}) USING (item, check_name) GROUP BY check_name ORDER BY check_name`,
        format: 'JSONEachRow',
      })
    ).json()) as Array<{ check_name: string; n: string; same_flag: string; mad: number }>;
    return rows.map((r) => ({
      check: r.check_name,
      n: Number(r.n),
      flagAgreement: Number(r.same_flag) / Math.max(1, Number(r.n)),
      meanAbsDiff: Number(r.mad),
    }));
  } finally {
    await bulk.close();
  }
}

export async function scoring(ctx: Ctx, only: (name: string) => boolean) {
  const sizes = (process.env.BENCH_SIZES ?? '5000,50000')
    .split(',')
    .map(Number)
    .filter((x) => x > 0);
  const small = sizes[0]!;
  say(`\n== scoring at scale: the LLM judge on the stub (${LATENCY_MS} ms per call, no rate limit), workers as processes ==`);
  say(`   cycle ${JSON.stringify(CYCLE)}, LLM_CONCURRENCY ${CONCURRENCY}, GROQ_PLAN unlimited`);
  const stub = await startGroqStub({ latencyMs: LATENCY_MS });
  const runs: Record<string, Measured> = {};
  const out: Record<string, unknown> = { settings: { ...CYCLE, concurrency: CONCURRENCY, stubLatencyMs: LATENCY_MS }, runs };
  results.scoring = out;
  try {
    const combined = async (n: number) => {
      runs[`combined-${n}`] = await measure(ctx, stub, {
        label: `tput-${n}`,
        count: n,
        workers: 1,
        mode: 'combined',
        deployment: `bench-c${n}-${stamp}`,
      });
    };
    // The modes step compares with the combined run of the first size, measured here when the
    // throughput step does not.
    if (!only('throughput') && only('modes')) await combined(small);
    if (only('throughput')) {
      for (const n of sizes) await combined(n);
      const a = runs[`combined-${small}`]!;
      for (const n of sizes) {
        const m = runs[`combined-${n}`]!;
        summary.push([
          `throughput at ${fmt(n)} interactions`,
          `${fmt(m.interactionsPerSecond, 1)} interactions/s`,
          `${fmt(m.checksPerSecond, 1)} checks/s; 1 worker; ${m.historyEventsPerInteraction.toFixed(2)} history events and ${m.llm.callsPerInteraction.toFixed(2)} LLM calls per interaction; worker peak RSS ${mb(m.workerPeakRss[0]?.worker ?? 0)} (+ ${mb(m.workerPeakRss[0]?.launcher ?? 0)} its launcher); ${m.failed} failed`,
        ]);
      }
      const big = runs[`combined-${sizes[sizes.length - 1]}`]!;
      if (sizes.length > 1) {
        const ratio = big.interactionsPerSecond / a.interactionsPerSecond;
        out.largeToSmallRatio = ratio;
        say(`   rate at ${fmt(big.interactions)} is ${pct(ratio)} of the rate at ${fmt(a.interactions)}`);
        summary.push([`rate at ${fmt(big.interactions)} / rate at ${fmt(a.interactions)}`, pct(ratio), 'flat as the cycle grows']);
      }
    }
    const base = runs[`combined-${small}`];
    if (only('scaleOut')) {
      const rates: string[] = [];
      if (base) rates.push(`1: ${fmt(base.interactionsPerSecond, 1)}/s (CPU ${pct(base.cpuBusyShare, 0)})`);
      for (const w of [2, 3]) {
        const m = await measure(ctx, stub, {
          label: `workers-${w}`,
          count: small,
          workers: w,
          mode: 'combined',
          deployment: `bench-w${w}-${stamp}`,
        });
        runs[`workers-${w}`] = m;
        rates.push(`${w}: ${fmt(m.interactionsPerSecond, 1)}/s (CPU ${pct(m.cpuBusyShare, 0)})`);
      }
      summary.push([
        `scale-out, ${fmt(small)} interactions, 1/2/3 workers`,
        rates.map((r) => r.split(' (')[0]).join(', '),
        `machine CPU busy: ${rates.map((r) => r.split('(CPU ')[1]?.replace(')', '')).join(' / ')} of ${results.cores as number} cores`,
      ]);
    }
    if (only('modes') && base) {
      const sep = await measure(ctx, stub, {
        label: `separate-${small}`,
        count: small,
        workers: 1,
        mode: 'separate',
        deployment: `bench-s${small}-${stamp}`,
      });
      runs[`separate-${small}`] = sep;
      const agree = await agreement(ctx, `bench-c${small}-${stamp}`, `bench-s${small}-${stamp}`);
      out.modeAgreement = agree;
      const share = base.llm.tokensPerInteraction / sep.llm.tokensPerInteraction;
      const limitShare = base.llm.limitTokensPerInteraction / sep.llm.limitTokensPerInteraction;
      say(
        `   combined vs separate: ${base.llm.callsPerInteraction.toFixed(2)} vs ${sep.llm.callsPerInteraction.toFixed(2)} calls, ${fmt(base.llm.tokensPerInteraction)} vs ${fmt(sep.llm.tokensPerInteraction)} tokens per interaction (${pct(share)}); ` +
          `counting toward the limits (uncached input and output): ${fmt(base.llm.limitTokensPerInteraction)} vs ${fmt(sep.llm.limitTokensPerInteraction)} (${pct(limitShare)})`,
      );
      for (const g of agree)
        say(
          `      ${g.check}: ${fmt(g.n)} interactions scored by both, same flag (≥ 0.5) ${pct(g.flagAgreement)}, mean |Δ score| ${g.meanAbsDiff.toFixed(4)}`,
        );
      say(
        '      (the stub judges each check from the same text in both modes: this shows both paths store the same values, not that a real model agrees with itself)',
      );
      summary.push([
        'combined vs separate judge, per interaction',
        `${base.llm.callsPerInteraction.toFixed(2)} vs ${sep.llm.callsPerInteraction.toFixed(2)} calls; tokens ${pct(share)}, toward the limits ${pct(limitShare)}`,
        `${fmt(base.llm.tokensPerInteraction)} vs ${fmt(sep.llm.tokensPerInteraction)} tokens, of which ${fmt(base.llm.limitTokensPerInteraction)} vs ${fmt(sep.llm.limitTokensPerInteraction)} uncached input and output; separate ${fmt(sep.interactionsPerSecond, 1)} interactions/s`,
      ]);
      summary.push([
        'combined vs separate, same flag on the stub',
        agree.map((g) => `${g.check} ${pct(g.flagAgreement, 0)}`).join(', '),
        'same stub verdict per check in both modes: a check of the storage path, not of a model',
      ]);
    }
    const rows = loadQaRows();
    const texts = Array.from({ length: small }, (_, index) =>
      buildInteraction(rows, {
        deployment: `bench-c${small}-${stamp}`,
        modelVersion: 'bench-v1',
        degradedShare: SIM_DEGRADED,
        seed: SIM_SEED,
        index,
        timestamp: new Date().toISOString(),
      }),
    );
    let capacity = 0;
    if (only('capacity')) {
      capacity = await serverCapacity(stub, texts, envInt('BENCH_CAPACITY_CALLS', 5000));
      out.serverCallsPerSecond = capacity;
      say(
        `   the judge server alone at concurrency ${CONCURRENCY}: ${fmt(capacity, 0)} calls/s (the physical limit: ${fmt(capacity, 0)} interactions/s combined, ${fmt(capacity / 3, 0)} with three calls)`,
      );
      const share = base ? base.interactionsPerSecond / capacity : undefined;
      summary.push([
        'judge server capacity at the same concurrency',
        `${fmt(capacity)} calls/s`,
        share === undefined ? '' : `ours uses ${pct(share)} of it (1 call per interaction)`,
      ]);
    }
    if (only('phoenix')) {
      const n = Math.min(small, envInt('BENCH_PHOENIX_INTERACTIONS', small));
      say(
        `   Arize Phoenix evals (hallucination, toxicity, QA correctness) on the first ${fmt(n)} of the same interactions, same server, concurrency ${CONCURRENCY} ...`,
      );
      stub.clear();
      const p = await runPhoenixPeer({
        baseURL: stub.baseURL,
        interactions: texts.slice(0, n),
        concurrency: CONCURRENCY,
        home: ctx.stack.home.replace(/\/run-[^/]+$/, ''),
        log: (s) => say(`      ${s}`),
      });
      out.phoenix = p;
      if (!p.ok) {
        say(`      Phoenix not run: ${p.reason}`);
        summary.push(['Arize Phoenix evals, same interactions', 'not run', p.reason.split('\n')[0]!.slice(0, 120)]);
      } else {
        say(
          `      Phoenix ${p.version}: ${fmt(p.interactionsPerSecond, 1)} interactions/s (${fmt(p.evaluations)} evaluations in ${p.seconds.toFixed(1)} s, ${p.errors} errors)`,
        );
        if (base) {
          const ratio = base.interactionsPerSecond / p.interactionsPerSecond;
          out.ratioToPhoenix = ratio;
          say(
            `      ours ${fmt(base.interactionsPerSecond, 1)}/s stored durably vs Phoenix ${fmt(p.interactionsPerSecond, 1)}/s in memory: ratio ${ratio.toFixed(2)}`,
          );
          summary.push([
            'ours vs Arize Phoenix evals',
            `${fmt(base.interactionsPerSecond, 1)} vs ${fmt(p.interactionsPerSecond, 1)} interactions/s = ${ratio.toFixed(2)}×`,
            `Phoenix ${p.version}, 3 evaluators, in memory, ${fmt(n)} interactions; ours stores every score`,
          ]);
        }
        if (capacity)
          say(`      Phoenix uses ${pct((p.interactionsPerSecond * 3) / capacity)} of the server's capacity (3 calls per interaction)`);
      }
    }
  } finally {
    await stub.close();
  }
}
