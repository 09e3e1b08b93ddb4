/**
 * The optimisation review on the real stack: FOCUS export, simulated vLLM/DCGM/node exporters
 * scraped through the real collection path, the four agents as child workflows of one review,
 * the seed's three examples, and bad data that fails one agent while the others finish.
 */
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgentActivities } from '../../activities/agents/index.js';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { upsertInfraSource } from '../../activities/storage/postgres/agents.js';
import { startInfraDemo, type InfraDemo } from '../../stack/sim/infra-demo.js';
import { createScratchDatabase } from '../../stack/postgres.js';
import type { AgentRunResult } from '../../workflows/agents/run-agent.js';
import type { ReviewResult } from '../../workflows/agents/review.js';
import type { InfraCollection } from '../../domain/infra/collection.js';
import { startTestStack, testConfig, testEnv, uniqueId, type TestStack } from '../helpers/env.js';
import { recordHistory } from '../helpers/histories.js';

/** Scratch databases of this file, dropped when it ends. */
const scratch: Array<() => Promise<void>> = [];

/** A PostgreSQL database and a ClickHouse database of its own (infrastructure data is global). */
async function isolatedConfig() {
  const name = `optiinfra_review_${randomUUID().slice(0, 8).replace(/-/g, '_')}`;
  const db = await createScratchDatabase(testEnv().databaseUrl, name);
  const config = testConfig({ DATABASE_URL: db.url, CLICKHOUSE_DATABASE: name });
  scratch.push(db.drop, async () => {
    const r = await fetch(`${config.clickhouse.url}/?query=${encodeURIComponent(`DROP DATABASE IF EXISTS ${name}`)}`, { method: 'POST' });
    await r.text();
  });
  return config;
}

describe('optimizationReview', () => {
  let stack: TestStack;
  let infra: InfraDemo;
  let sim: Simulator;
  const dir = mkdtempSync(join(tmpdir(), 'optiinfra-review-'));

  beforeAll(async () => {
    stack = await startTestStack(await isolatedConfig());
    const acts = createAgentActivities({ config: stack.config, ch: stack.stores.ch, db: stack.stores.db });
    infra = await startInfraDemo({ db: stack.stores.db, dir, collect: acts.collectInfraSource, hours: 4, stepMinutes: 5 });
    const deployment = uniqueId('app');
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.05 });
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
    for (const [v, share] of [
      ['v1', 0.05],
      ['v2', 0.5],
    ] as const) {
      sim.setModel(v, share);
      sim.generate(150);
      await stack.client.workflow.execute('collectionCycle', {
        taskQueue: stack.config.temporal.taskQueue,
        workflowId: `collect/${deployment}/${v}`,
        args: [{ deployment, batchSize: 100, maxConcurrentBatches: 4 }],
      });
    }
  });
  afterAll(async () => {
    await infra?.close();
    await sim?.close();
    await stack?.stop();
    // After every stack of this file has stopped (the bad-data test stops its own).
    for (const drop of scratch) await drop().catch(() => undefined);
  });

  it('runs the four agents as children of one review, stores their analyses and reproduces the seed examples', async () => {
    const reviewId = `review/test-${randomUUID().slice(0, 6)}`;
    const r = (await stack.client.workflow.execute('optimizationReview', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: reviewId,
      args: [{}],
    })) as ReviewResult;
    expect(r.failed).toEqual([]);
    const by = Object.fromEntries(r.agents.map((a) => [a.agent, a])) as Record<string, AgentRunResult>;

    const idle = by.cost!.findings.find((f) => f.kind === 'idle-resource' && f.subject === 'i-idle-reporting')!;
    expect(idle.title).toMatch(/\$624 annual waste/);
    expect(idle.monthlySavingUsd).toBe(52);
    expect(by.cost!.findings.some((f) => f.kind === 'right-size' && f.subject === 'i-idle-reporting' && (f.annualSavingUsd ?? 0) > 0)).toBe(
      true,
    );

    const kv = by.performance!.findings.find((f) => f.kind === 'kv-cache-saturation' && f.subject.includes('chat-prod'))!;
    expect(kv.title).toMatch(/KV cache is the root cause/);
    expect(kv.recommendation).toMatch(/32768/);
    const reg = by.performance!.findings.find((f) => f.kind === 'latency-regression')!;
    expect(Number(reg.evidence.p95_before_ms)).toBeLessThan(300);
    expect(Number(reg.evidence.p95_after_ms)).toBeGreaterThan(1500);

    const bound = by.resource!.findings.find((f) => f.kind === 'bottleneck' && f.subject.includes('gpu-batch-1'))!;
    expect(bound.title).toMatch(/memory-bound/i);
    expect(bound.annualSavingUsd ?? 0).toBeGreaterThan(0);
    expect(bound.recommendation).toMatch(/gpumem/);

    expect(by.application!.findings.some((f) => f.kind === 'quality-regression')).toBe(true);

    const runs = await stack.stores.db.query('SELECT agent, status FROM agent_runs WHERE review_id = $1 ORDER BY agent', [reviewId]);
    expect(runs.rows).toEqual(['application', 'cost', 'performance', 'resource'].map((agent) => ({ agent, status: 'ok' })));
    const recs = await stack.stores.db.query('SELECT count(*)::int AS n FROM recommendations WHERE run_id LIKE $1', [`${reviewId}/%`]);
    expect(recs.rows[0].n).toBeGreaterThan(5);
    const review = await stack.stores.db.query('SELECT summary, summary_by FROM reviews WHERE id = $1', [reviewId]);
    expect(review.rows[0].summary_by).toBe('template');
    expect(review.rows[0].summary).toMatch(/\$/);
    for (const agent of ['cost', 'performance', 'resource', 'application']) {
      const d = await stack.client.workflow.getHandle(`${reviewId}/${agent}`).describe();
      expect(d.parentExecution?.workflowId).toBe(reviewId);
      await recordHistory(stack.client, `${reviewId}/${agent}`, agent === 'application' ? 'application-agent-review' : `${agent}-agent`);
    }
    await recordHistory(stack.client, reviewId, 'optimization-review');
  });

  it('collects every registered infrastructure source in one workflow', async () => {
    const workflowId = `collect-infra/test-${randomUUID().slice(0, 6)}`;
    const r = (await stack.client.workflow.execute('collectInfra', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId,
      args: [],
    })) as InfraCollection;
    expect(r.sources).toBeGreaterThan(1);
    expect(r.outcomes).toHaveLength(r.sources);
    expect(r.failed).toBe(0);
    expect(r.outcomes.filter((o) => o.error)).toEqual([]);
    expect(r.rows).toBe(r.outcomes.reduce((n, o) => n + o.rows, 0));
    expect(r.rows).toBeGreaterThan(0);
    await recordHistory(stack.client, workflowId, 'collect-infra');
  });

  it('answers a question from the stored numbers', async () => {
    const r = (await stack.client.workflow.execute('costAgent', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: `ask/cost/${randomUUID()}`,
      args: [{ question: 'Which resources are idle and what do they waste?' }],
    })) as AgentRunResult;
    expect(r.answer?.generatedBy).toBe('template');
    expect(r.answer?.text).toMatch(/i-idle-reporting/);
    expect(r.answer?.text).toMatch(/624/);
  });

  it("records bad data as the failing agent's error and keeps the others", async () => {
    const bad = join(dir, 'bad-focus');
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, 'export.csv'), 'BilledCost,EffectiveCost\n1,1\n');
    // A fresh pair of databases so the good data above does not hide the failures.
    const iso = await startTestStack(await isolatedConfig());
    try {
      await upsertInfraSource(iso.stores.db, 'focus-bad', { kind: 'focus', path: bad } as { kind: string });
      await upsertInfraSource(iso.stores.db, 'down-host', { kind: 'scrape', url: 'http://127.0.0.1:9/metrics' } as { kind: string });
      const reviewId = `review/bad-${randomUUID().slice(0, 6)}`;
      const r = (await iso.client.workflow.execute('optimizationReview', {
        taskQueue: iso.config.temporal.taskQueue,
        workflowId: reviewId,
        args: [{ agents: ['cost', 'performance'] }],
      })) as ReviewResult;
      expect(r.failed.sort()).toEqual(['cost', 'performance']);
      const runs = await iso.stores.db.query('SELECT agent, status, error FROM agent_runs WHERE review_id = $1 ORDER BY agent', [reviewId]);
      expect(runs.rows[0]).toMatchObject({ agent: 'cost', status: 'failed' });
      expect(runs.rows[0].error).toMatch(/missing.*(ChargePeriodStart|column)/i);
      expect(runs.rows[1].error).toMatch(/no vLLM metrics.*down-host: http:\/\/127\.0\.0\.1:9\/metrics: .*(refused|failed)/i);
      expect(r.summary).toMatch(/Not analysed: cost/);

      const empty = (await iso.client.workflow.execute('performanceAgent', {
        taskQueue: iso.config.temporal.taskQueue,
        workflowId: `perf/empty-${randomUUID().slice(0, 6)}`,
        args: [{ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' }],
      })) as AgentRunResult;
      expect(empty.status).toBe('failed');
      expect(empty.error).toMatch(/empty time range/);
    } finally {
      await iso.stop();
    }
  });
});
