import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import { startTestStack, uniqueId, type TestStack } from '../helpers/env.js';

describe('a cycle larger than one workflow run', () => {
  let stack: TestStack;
  let sim: Simulator;
  const deployment = uniqueId('big');

  beforeAll(async () => {
    stack = await startTestStack();
    sim = await startSimulator({ deployment, modelVersion: 'v3', degradedShare: 0.5 });
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 0.5 });
  });
  afterAll(async () => {
    await sim?.close();
    await stack?.stop();
  });

  it('continues as new between pages, carries its totals, and samples deterministically', async () => {
    sim.generate(100);
    const workflowId = `collect/${deployment}/can`;
    const handle = await stack.client.workflow.start('collectionCycle', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId,
      args: [{ deployment, pageSize: 20, batchSize: 7, pagesPerRun: 2, checks: ['toxicity'] }],
    });
    const r = (await handle.result()) as CycleResult;
    expect(r.pages).toBe(5);
    expect(r.stored).toBe(100);
    // Sampling at 0.5 by a hash of the id: every interaction stored, about half scored.
    expect(r.sampled).toBeGreaterThan(30);
    expect(r.sampled).toBeLessThan(70);
    expect(r.scored).toBe(r.sampled);
    expect(await stack.stores.ch.countInteractions(deployment)).toBe(100);
    expect(await stack.stores.ch.countScores(deployment, { final: false })).toBe(r.sampled);

    // Three runs of one workflow id (2 + 2 + 1 pages), chained by continue-as-new.
    const runIds = [handle.firstExecutionRunId];
    for (let i = 0; i < 5; i++) {
      const h = await stack.client.workflow.getHandle(workflowId, runIds.at(-1)).fetchHistory();
      const last = h.events?.at(-1);
      const next = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
      if (!next) {
        expect(last?.workflowExecutionCompletedEventAttributes).toBeTruthy();
        break;
      }
      runIds.push(next);
    }
    expect(runIds).toHaveLength(3);
  });
});
