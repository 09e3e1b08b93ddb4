/**
 * Groq's plan limits (common/plan-limits.ts PLAN_LIMITS), enforced by the stub as Groq does (token
 * buckets, 429 with retry-after, 413), on a scaled clock: the stub's and the pacer's minutes and
 * days pass `timeScale` times faster, so a 15-minute cycle of the free plan runs in 15/timeScale
 * real minutes. The workers run in this process so their pacer can be given the same scale. A
 * cycle of 20 interactions runs first, untimed, as the deployment's previous cycle: the coverage
 * planner reads what an interaction costs from recent cycles (a deployment's very first cycle plans
 * on its reservations, which are larger, and covers less).
 * - free plan: one cycle over a backlog larger than 15 minutes of budget: the achieved token
 *   rate against the TPM, failures, losses, 429s, and the coverage the cycle reports;
 * - developer plan: scored interactions per (scaled) minute over a backlog.
 */
import { PLAN_LIMITS, type GroqPlan } from '../../common/plan-limits.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import { startGroqStub } from '../../test/helpers/groq-stub.js';
import { envInt, FAKE_KEY, fmt, pct, results, runCycle, say, stamp, summary, type Ctx } from './common.js';

const LATENCY_MS = 50;

async function planCycle(
  ctx: Ctx,
  o: { plan: GroqPlan; count: number; timeScale: number; budgetMinutes: number; env?: Record<string, string> },
) {
  const limits = PLAN_LIMITS[o.plan];
  const stub = await startGroqStub({ latencyMs: LATENCY_MS, limits, timeScale: o.timeScale });
  const deployment = `bench-${o.plan}-${stamp}`;
  try {
    const r = await runCycle(ctx, {
      deployment,
      count: o.count,
      // The cycle's window is of the wall clock: budgetMinutes of the scaled clock.
      input: { pageSize: 1000, batchSize: 25, maxConcurrentBatches: 4, budgetMinutes: o.budgetMinutes / o.timeScale },
      timeoutMs: 900_000,
      env: {
        TEMPORAL_TASK_QUEUE: `bench-${o.plan}-${stamp}`,
        GROQ_API_KEY: FAKE_KEY,
        GROQ_BASE_URL: stub.baseURL,
        GROQ_PLAN: o.plan,
        LLM_TIMEOUT: '30',
        ...o.env,
      },
      workers: 0,
      timeScale: o.timeScale,
      // The planner learns what an interaction costs from the deployment's recent cycles.
      warmUp: 20,
      // Then a (scaled) minute and a bit for the minute buckets to refill, as between two cycles.
      beforeTimed: async () => {
        await new Promise((r) => setTimeout(r, (1.2 * 60_000) / o.timeScale));
        stub.clear();
      },
    });
    const s = stub.stats();
    const c = r.result;
    const scaledMinutes = (r.wallMs * o.timeScale) / 60_000;
    // From the first LLM request to the last reply: the time the pacer decided. The rest of the
    // cycle (fetching and storing the interactions, starting and closing the cycle) is not paced,
    // and on the scaled clock its real time counts `timeScale` times.
    const judgingMinutes =
      s.firstRequestAt !== undefined && s.lastAnsweredAt !== undefined
        ? ((s.lastAnsweredAt - s.firstRequestAt) * o.timeScale) / 60_000
        : scaledMinutes;
    const used = s.promptTokens - s.cachedTokens + s.completionTokens;
    const judgedIn = (x: CycleResult) => x.sampled - (x.unscoredForBudget ?? 0);
    const judged = judgedIn(c);
    const warm = r.warmUp;
    // Both cycles' interactions and score rows are in the store.
    const stored = (await ctx.stores.ch.countInteractions(deployment)) - (warm?.stored ?? 0);
    const scoreRows = (await ctx.stores.ch.countScores(deployment)) - (warm ? judgedIn(warm) * 3 : 0);
    const m = {
      plan: o.plan,
      limits,
      timeScale: o.timeScale,
      backlog: o.count,
      stored,
      judged,
      scored: c.scored,
      failed: c.failed,
      scoreRows,
      lost: o.count - stored + (judged * 3 - scoreRows),
      scaledMinutes,
      tokensUsed: used,
      tokensPerMinute: used / scaledMinutes,
      tpmShare: limits.tpm ? used / scaledMinutes / limits.tpm : undefined,
      /** The same without the full bucket the cycle starts with (what the limit refills). */
      tpmShareSteady: limits.tpm ? (used - limits.tpm) / scaledMinutes / limits.tpm : undefined,
      judgingMinutes,
      /** The same, over the time from the first request to the last reply. */
      tpmShareSteadyJudging: limits.tpm ? (used - limits.tpm) / judgingMinutes / limits.tpm : undefined,
      /** Share of what the window allowed (the starting bucket and budgetMinutes of refill) that was spent. */
      windowShare: limits.tpm ? used / (limits.tpm * (1 + o.budgetMinutes)) : undefined,
      requests: s.answered,
      requestsPerMinute: s.answered / scaledMinutes,
      interactionsPerMinute: judged / scaledMinutes,
      responses429: Object.values(s.rateLimited).reduce((a, b) => a + (b ?? 0), 0),
      rateLimitedBy: s.rateLimited,
      responses413: s.tooLarge,
      coverageNote: c.coverageNote ?? '',
    };
    say(
      `   ${o.plan} plan (${limits.rpm} RPM, ${fmt(limits.rpd)} RPD, ${fmt(limits.tpm)} TPM, ${limits.tpd ? fmt(limits.tpd) : 'no'} TPD), clock ×${o.timeScale}: ${fmt(o.count)} interactions stored ${fmt(stored)}, judged ${fmt(judged)} in ${scaledMinutes.toFixed(1)} scaled minutes (${(r.wallMs / 1000).toFixed(1)} s real)`,
    );
    say(
      `      ${fmt(m.tokensPerMinute)} tokens/min${m.tpmShare === undefined ? '' : ` = ${pct(m.tpmShare)} of the TPM (${pct(m.tpmShareSteady ?? 0)} without the full bucket it starts with)`}, ${fmt(m.requestsPerMinute, 1)} requests/min, ${fmt(m.interactionsPerMinute, 1)} interactions/min; ${m.failed} checks failed, ${m.lost} lost, ${m.responses429} 429s, ${m.responses413} 413s`,
    );
    if (m.tpmShareSteadyJudging !== undefined)
      say(
        `      from the first request to the last reply (${judgingMinutes.toFixed(1)} of the ${scaledMinutes.toFixed(1)} scaled minutes): ${pct(m.tpmShareSteadyJudging)} of the TPM without the starting bucket`,
      );
    if (m.windowShare !== undefined)
      say(`      spent ${pct(m.windowShare)} of the tokens the ${o.budgetMinutes}-minute window allowed (its starting bucket and refill)`);
    say(`      coverage: ${m.coverageNote || 'every interaction scored'}`);
    return m;
  } finally {
    await stub.close();
  }
}

export async function planLimits(ctx: Ctx, only: (name: string) => boolean) {
  say('\n== Groq plan limits enforced by the stub, on a scaled clock (workers in this process, pacer on the same scale) ==');
  const out: Record<string, unknown> = {};
  results.planLimits = out;
  if (only('freePlan')) {
    // The pacer spreads a day's caps over the rest of the day (a cycle every 15 minutes gets its
    // share); here the cycle may spend them, so the minute limits decide (the stub still enforces
    // all four).
    say('   free plan with the daily caps not spread by the pacer (GROQ_RPD=0 GROQ_TPD=0; the stub enforces them all):');
    const f = await planCycle(ctx, {
      plan: 'free',
      count: envInt('BENCH_FREE_INTERACTIONS', 1000),
      timeScale: envInt('BENCH_FREE_TIME_SCALE', 10),
      budgetMinutes: 15,
      env: { GROQ_RPD: '0', GROQ_TPD: '0' },
    });
    out.free = f;
    summary.push([
      'free plan, one 15-minute cycle: token rate',
      `${fmt(f.tokensPerMinute)}/min = ${pct(f.tpmShare ?? 0)} of 8K TPM`,
      `${pct(f.tpmShareSteady ?? 0)} without the starting bucket (${pct(f.tpmShareSteadyJudging ?? 0)} from the first request to the last reply), ${pct(f.windowShare ?? 0)} of the window's tokens spent; judged ${f.judged} of ${f.backlog} in ${f.scaledMinutes.toFixed(1)} scaled min; ${f.failed} failed, ${f.lost} lost, ${f.responses429} 429s; clock ×${f.timeScale}`,
    ]);
    summary.push(['free plan: coverage reported by the cycle', f.coverageNote || 'all', '']);
  }
  if (only('developerPlan')) {
    const d = await planCycle(ctx, {
      plan: 'developer',
      count: envInt('BENCH_DEV_INTERACTIONS', 3000),
      timeScale: envInt('BENCH_DEV_TIME_SCALE', 5),
      budgetMinutes: 15,
    });
    out.developer = d;
    summary.push([
      'developer plan: scored interactions per minute',
      `${fmt(d.interactionsPerMinute, 1)}/min`,
      `${d.judged} judged in ${d.scaledMinutes.toFixed(1)} scaled min incl. the first minute's full bucket; ${fmt(d.tokensPerMinute)} tokens/min = ${pct(d.tpmShare ?? 0)} of the TPM; ${d.failed} failed, ${d.responses429} 429s; clock ×${d.timeScale}`,
    ]);
  }
}
