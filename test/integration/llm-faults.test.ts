/**
 * The LLM fault matrix: over a thousand faults injected through the local Groq-compatible
 * server (429 with and without retry-after, 500/503, replies slower than LLM_TIMEOUT,
 * connection resets, malformed JSON, out-of-range scores, empty choices) while a cycle scores
 * 1,200 checks. The cycle never fails; every check is either scored or recorded as failed with
 * its reason; 429s are waited out and other faults retried by the LLM client (attempts on each row).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import { startGroqStub, type Fault, type GroqStub } from '../helpers/groq-stub.js';
import { startTestStack, testConfig, uniqueId, type TestStack } from '../helpers/env.js';

const MIX: Array<[number, Fault]> = [
  [200, { kind: 'status', status: 429, retryAfter: 1 }],
  [100, { kind: 'status', status: 429 }],
  [150, { kind: 'status', status: 500 }],
  [100, { kind: 'status', status: 503 }],
  [100, { kind: 'delay', ms: 8000 }], // beyond LLM_TIMEOUT=4
  [100, { kind: 'reset' }],
  [100, { kind: 'malformed' }],
  [100, { kind: 'out-of-range' }],
  [50, { kind: 'empty-choices' }],
];

describe('LLM fault matrix', () => {
  let stub: GroqStub;
  let stack: TestStack;
  let sim: Simulator;
  const deployment = uniqueId('faults');

  beforeAll(async () => {
    stub = await startGroqStub();
    stack = await startTestStack(
      testConfig({
        LLM_ENABLED: 'true',
        GROQ_API_KEY: 'gsk_test_faults_0123456789',
        GROQ_BASE_URL: stub.baseURL,
        LLM_MAX_RETRIES: '6',
        // 4 s: a clean reply of the local stub on a loaded machine can take more than 1 s, and
        // would then cost a request of its own.
        LLM_TIMEOUT: '4',
        LLM_REQUESTS_PER_SECOND: '1000',
        LLM_CONCURRENCY: '60',
        GROQ_PLAN: 'unlimited',
      }),
    );
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.2, seed: 9 });
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
  });
  afterAll(async () => {
    await sim?.close();
    await stack?.stop();
    await stub?.close();
  });

  it('scores or records every check under 1,000 injected faults, and the cycle completes', async () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const faults = MIX.flatMap(([n, f]) => Array.from({ length: n }, () => f));
    for (let i = faults.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [faults[i], faults[j]] = [faults[j]!, faults[i]!];
    }
    expect(faults).toHaveLength(1000);
    sim.generate(400);
    stub.clear();
    stub.enqueue(...faults);

    const t0 = Date.now();
    const r = (await stack.client.workflow.execute('collectionCycle', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: `collect/${deployment}/faults`,
      args: [{ deployment, batchSize: 50, maxConcurrentBatches: 8 }],
    })) as CycleResult;
    const stats = stub.stats();
    const rows = await stack.stores.ch.query<{ status: string; n: string; no_reason: string }>(
      `SELECT status, count() AS n, countIf(reason = '') AS no_reason FROM ${stack.config.clickhouse.database}.scores FINAL
       WHERE deployment = '${deployment}' GROUP BY status ORDER BY status`,
    );
    const byStatus = Object.fromEntries(rows.map((x) => [x.status, Number(x.n)]));
    console.log(
      `fault matrix: ${stats.requests} LLM requests, ${1000 - stats.pendingFaults} faults injected (${JSON.stringify(stats.faults)}), ` +
        `${r.scored} checks scored, ${r.failed} recorded failed, ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );

    expect(stats.pendingFaults).toBe(0); // every fault was served
    expect(r.stored).toBe(400);
    expect(r.scored + r.failed).toBe(1200);
    expect((byStatus.ok ?? 0) + (byStatus.failed ?? 0)).toBe(1200);
    expect(byStatus.ok).toBe(r.scored);
    expect(rows.find((x) => x.status === 'failed')?.no_reason ?? '0').toBe('0'); // every failure says why
    expect(await stack.stores.ch.countScores(deployment, { final: false })).toBe(1200);
    // Every fault cost one request and every scored interaction one clean reply: nothing was
    // judged twice. Retries are on the rows (attempts = requests of the interaction's judgement).
    expect(stats.requests).toBe(1000 + r.scored / 3);
    const attempts = await stack.stores.ch.query<{ retried: string; failed_reasons: string }>(
      `SELECT countIf(attempts > 1) AS retried, countIf(status = 'failed' AND reason NOT LIKE 'LlmRetriesExhausted%') AS failed_reasons
       FROM ${stack.config.clickhouse.database}.scores FINAL WHERE deployment = '${deployment}'`,
    );
    expect(Number(attempts[0]!.retried)).toBeGreaterThan(0);
    // A check fails only after the retries LLM_MAX_RETRIES allows (never on a 429, which is waited out).
    expect(Number(attempts[0]!.failed_reasons)).toBe(0);
  }, 300_000);
});
