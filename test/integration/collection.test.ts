import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { getCursor, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import { SA } from '../../common/search-attributes.js';
import { startTestStack, uniqueId, type TestStack } from '../helpers/env.js';
import { recordHistory } from '../helpers/histories.js';

describe('collectionCycle on the simulator (real Temporal, ClickHouse, PostgreSQL)', () => {
  let stack: TestStack;
  let sim: Simulator;
  const deployment = uniqueId('chat');

  beforeAll(async () => {
    stack = await startTestStack();
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0, seed: 7 });
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
  });
  afterAll(async () => {
    await sim?.close();
    await stack?.stop();
  });

  const cycle = (workflowId: string) =>
    stack.client.workflow.execute('collectionCycle', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId,
      args: [{ deployment, pageSize: 25, batchSize: 10 }],
    }) as Promise<CycleResult>;

  it('lands exactly one score row per interaction and check, and advances the cursor', async () => {
    sim.generate(30);
    const r = await cycle(`collect/${deployment}/first`);
    expect(r).toMatchObject({ stored: 30, bad: 0, sampled: 30, scored: 90, failed: 0, skipped: 0, judge: 'offline', pages: 2 });
    expect(await stack.stores.ch.countInteractions(deployment)).toBe(30);
    expect(await stack.stores.ch.countScores(deployment, { final: false })).toBe(90);
    expect(await stack.stores.ch.countScores(deployment, { status: 'ok' })).toBe(90);
    const cursor = await getCursor(stack.stores.db, deployment);
    expect(cursor).toBe(r.cursor);
    expect(cursor).not.toBeNull();

    const desc = await stack.client.workflow.getHandle(`collect/${deployment}/first`).describe();
    expect(desc.typedSearchAttributes.get(SA.deployment)).toBe(deployment);
    expect(desc.typedSearchAttributes.get(SA.modelVersion)).toEqual(['v1']);
    expect(desc.typedSearchAttributes.get(SA.kind)).toBe('collect');

    const run = await stack.stores.db.query('SELECT scored, stored FROM collection_runs WHERE cycle_id = $1', [
      `collect/${deployment}/first`,
    ]);
    expect(run.rows[0]).toEqual({ scored: 90, stored: 30 });
    await recordHistory(stack.client, `collect/${deployment}/first`, 'collection-cycle');
    // scoreBatch children belong to cycles recorded before the batch activities
    // (score-batch.json, score-batch.g2.json keep replaying); new cycles start none.
  });

  it('adds nothing when the same cycle runs again', async () => {
    const r = await cycle(`collect/${deployment}/first`);
    expect(r).toMatchObject({ fetched: 0, stored: 0, scored: 0 });
    expect(await stack.stores.ch.countScores(deployment, { final: false })).toBe(90);
  });

  it('takes only new interactions in the next cycle, reporting bad records without losing good ones', async () => {
    sim.generate(10);
    const inject = (raw: unknown) =>
      fetch(sim.url.replace(/\/interactions$/, '/admin/inject'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ raw }),
      }).then((res) => expect(res.status).toBeLessThan(300));
    await inject({ id: 'no-prompt', deployment, model_version: 'v1', timestamp: '2026-01-01T00:00:00Z', response: 'x' });
    await inject({ id: 'x1', deployment: 'someone-else', model_version: 'v1', timestamp: 1, prompt: 'p', response: 'r' });
    sim.setModel('v2', 1);
    sim.generate(5);
    const r = await cycle(`collect/${deployment}/second`);
    expect(r).toMatchObject({ stored: 15, bad: 2, scored: 45, failed: 0 });
    expect(r.versions.sort()).toEqual(['v1', 'v2']);
    expect(r.badSamples.map((b) => b.reason).join(' | ')).toMatch(/prompt/);
    expect(r.badSamples.map((b) => b.reason).join(' | ')).toMatch(/deployment/);
    expect(await stack.stores.ch.countScores(deployment, { final: false })).toBe(135);
    const agg = await stack.stores.ch.aggregateScores(deployment);
    const hall = (v: string) => agg.find((a) => a.model_version === v && a.check_name === 'hallucination')!;
    expect(hall('v1').ok).toBe(40);
    expect(hall('v2').ok).toBe(5);
    // The degraded model (all hallucinated answers) is judged worse than the good one.
    expect(hall('v2').mean!).toBeGreaterThan(hall('v1').mean!);
  });
});
