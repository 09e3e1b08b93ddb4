/**
 * Budget-aware coverage on the real stack with the Groq-compatible stub enforcing a daily token
 * cap: a backlog larger than the budget is scored on a deterministic sample that fits, nothing
 * fails and nothing hits a 429, and the cycle, `scores` and a gate's evidence say how much was
 * scored and which limit bounded it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import { planCoverage } from '../../activities/collector/coverage.js';
import { promptVersionsFor } from '../../activities/collector/activities.js';
import { LlmClient } from '../../activities/llm/client.js';
import { Pacer } from '../../activities/llm/pacer.js';
import { CHECKS } from '../../common/types.js';
import { coverageText } from '../../domain/gate/types.js';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { startGroqStub, stubLlmEnv, type GroqStub } from '../helpers/groq-stub.js';
import { recordHistory } from '../helpers/histories.js';
import { startTestStack, testConfig, uniqueId, type TestStack } from '../helpers/env.js';

const TPD = 20_000;

describe('budget-aware coverage', () => {
  let stub: GroqStub;
  let stack: TestStack;
  let sim: Simulator;
  const deployment = uniqueId('budget');

  beforeAll(async () => {
    stub = await startGroqStub({ limits: { tpd: TPD } });
    stack = await startTestStack(
      testConfig(
        stubLlmEnv(stub, 'gsk_test_budget_0123456789', {
          GROQ_TPD: String(TPD),
          // A day's 20K tokens refill at about 0.23 a second: a last call the sample's estimate left
          // a few tokens short would wait minutes for them under the default LLM_MAX_WAIT (2 h).
          // With 20 s it stops the cycle's scoring as out of budget instead (counted as unscored
          // for the budget, never as failed), which is what the assertions below allow.
          LLM_MAX_WAIT: '20',
        }),
      ),
    );
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.1, seed: 21 });
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
  });
  afterAll(async () => {
    await sim?.close();
    await stack?.stop();
    await stub?.close();
  });

  it('scores a deterministic sample that fits the daily token budget and says so', async () => {
    sim.generate(200);
    const workflowId = `collect/${deployment}/${randomUUID().slice(0, 8)}`;
    const r = (await stack.client.workflow.execute('collectionCycle', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId,
      // The whole day's remaining budget is this cycle's to spend.
      args: [{ deployment, budgetMinutes: 1440 }],
    })) as CycleResult;
    const judged = r.sampled - (r.unscoredForBudget ?? 0);
    expect(r.stored).toBe(200);
    expect(judged).toBeGreaterThan(0);
    expect(judged).toBeLessThan(200);
    expect(r.failed).toBe(0);
    expect(r.scored).toBe(judged * 3);
    // A cycle with the LLM judge and a budget-limited plan, for the replay tests.
    await recordHistory(stack.client, workflowId, 'collection-cycle-llm');
    // Which limit it names depends on whether the sample's last call found its tokens (see
    // LLM_MAX_WAIT above): either way it is the day's tokens.
    expect(r.coverageNote).toMatch(
      new RegExp(
        `^scored ${judged} of 200 interactions \\([\\d.]+ %\\), limited by (the daily token budget|the LLM's capacity: the tokens-per-day limit \\(TPD 20,000 for plan unlimited\\) is spent)$`,
      ),
    );
    // Within the cap: no 429, and the tokens the server counted fit the day.
    expect(stub.stats().byStatus[429] ?? 0).toBe(0);
    const spent = stub.stats().promptTokens - stub.stats().cachedTokens + stub.stats().completionTokens;
    expect(spent).toBeLessThanOrEqual(TPD);
    // The first plan prices an interaction at its reservation (no cycle has run), several times
    // what it costs; top-up passes planned on what the cycle's calls cost spend most of the day.
    expect(spent).toBeGreaterThan(0.6 * TPD);

    const run = await stack.stores.db.query('SELECT unscored_for_budget, coverage_note FROM collection_runs WHERE deployment = $1', [
      deployment,
    ]);
    expect(run.rows).toEqual([{ unscored_for_budget: 200 - judged, coverage_note: r.coverageNote }]);
    // The candidate's evidence carries the coverage, for the gate's report and explanation.
    const counts = await stack.stores.ch.interactionsPerVersion(deployment);
    expect(counts).toEqual({ v1: 200 });
    expect(
      coverageText({
        quality: { n: judged, mean: 0, sd: 0 },
        hallucination_rate: { n: 0, mean: 0, sd: 0 },
        toxicity_rate: { n: 0, mean: 0, sd: 0 },
        interactions: 200,
      }),
    ).toMatch(new RegExp(`^${judged} of 200 interactions scored`));
  });

  it("prices a page by what the cycle's own calls cost, within what is left of its window", async () => {
    const cfg = stack.config;
    // A budget of its own (full 20K tokens a day), so the first test's spending does not matter.
    const llm = new LlmClient(cfg, { db: stack.stores.db, pacer: new Pacer(cfg, { db: stack.stores.db, key: uniqueId('coverage-plan') }) });
    const deps = { ch: stack.stores.ch, db: stack.stores.db, llm };
    // The simulator's ids of the first test's interactions; all stored.
    const ids = Array.from({ length: 100 }, (_, i) => `${deployment}-${String(i).padStart(8, '0')}`);
    expect((await stack.stores.ch.textChars(deployment, ids)).interactions).toBe(100);
    const judge = `groq:${cfg.groq.model}`;
    const settings = {
      judge,
      promptVersions: promptVersionsFor(judge, 'combined'),
      judgeTaskQueue: 'q',
      llmTimeoutSec: 5,
      llmMaxRetries: 1,
      mode: 'combined' as const,
    };
    const plan = (minutes: number, perCheck: number) =>
      planCoverage(deps, { deployment, ids, checks: [...CHECKS], settings, minutes, observed: { tokens: perCheck * 30, checks: 30 } });
    // 100 tokens a check: 300 an interaction, about 66 of the 100 fit the day's 20K.
    const cheap = await plan(1440, 100);
    // 1,000 tokens a check: about 6 fit.
    const dear = await plan(1440, 1000);
    expect(cheap.limitedBy).toBe('daily token budget');
    expect(cheap.rate).toBeGreaterThan(0.5);
    expect(cheap.rate).toBeLessThan(0.7);
    expect(dear.rate).toBeGreaterThan(0);
    expect(dear.rate).toBeLessThan(0.1);
    // The window is over: only what the budget holds now, and a daily cap spreads nothing into no time.
    expect(await plan(0, 100)).toEqual({ rate: 0, limitedBy: 'daily token budget', adds: 0 });
  });
});
