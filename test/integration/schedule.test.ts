import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { SA } from '../../common/search-attributes.js';
import { ensureSchedule, scheduleId, spreadOffsetMs } from '../../client/schedules.js';
import { startTestStack, uniqueId, type TestStack } from '../helpers/env.js';

describe('the collection schedule of a deployment', () => {
  let stack: TestStack;
  let sim: Simulator;
  const deployment = uniqueId('sched');

  beforeAll(async () => {
    stack = await startTestStack();
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.2 });
    sim.generate(12);
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
  });
  afterAll(async () => {
    await stack.client.schedule
      .getHandle(scheduleId(deployment))
      .delete()
      .catch(() => undefined);
    await sim?.close();
    await stack?.stop();
  });

  it('is created once, updated on re-run, and its policies are deliberate', async () => {
    expect(await ensureSchedule(stack.client, stack.config, { deployment, every: '15m', paused: true })).toBe(true);
    expect(await ensureSchedule(stack.client, stack.config, { deployment, every: '30m', paused: true, maxConcurrentBatches: 8 })).toBe(
      false,
    );
    const d = await stack.client.schedule.getHandle(scheduleId(deployment)).describe();
    expect(d.spec.intervals?.[0]?.every).toBe(30 * 60 * 1000);
    // Runs fall at the deployment's own offset into each interval (a fleet does not start at once).
    const offset = spreadOffsetMs(deployment, 30 * 60 * 1000);
    expect(d.spec.intervals?.[0]?.offset ?? 0).toBe(offset);
    expect(d.info.nextActionTimes.length).toBeGreaterThan(0);
    for (const t of d.info.nextActionTimes) expect(t.getTime() % (30 * 60 * 1000)).toBe(offset);
    // Each cycle may spend the LLM budget of its interval, with the batches in flight asked for.
    const action = d.action as { type: string; args?: unknown[] };
    expect(action.args).toEqual([{ deployment, budgetMinutes: 30, maxConcurrentBatches: 8 }]);
    expect(d.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
    expect(d.policies.catchupWindow).toBe(60 * 60 * 1000);
    expect(d.state.paused).toBe(true);
  });

  it('a triggered run is a readable, searchable collection cycle that scores the new interactions', async () => {
    const h = stack.client.schedule.getHandle(scheduleId(deployment));
    await h.trigger();
    let workflowId: string | undefined;
    for (let i = 0; i < 100 && !workflowId; i++) {
      const d = await h.describe();
      workflowId = d.info.recentActions.at(-1)?.action.workflow.workflowId ?? d.info.runningActions[0]?.workflow.workflowId;
      if (!workflowId) await new Promise((r) => setTimeout(r, 100));
    }
    expect(workflowId).toMatch(new RegExp(`^collect/${deployment}-\\d{4}-\\d{2}-\\d{2}T`));
    const wf = stack.client.workflow.getHandle(workflowId!);
    const result = (await wf.result()) as { scored: number };
    expect(result.scored).toBe(36);
    const desc = await wf.describe();
    expect(desc.typedSearchAttributes.get(SA.deployment)).toBe(deployment);
    expect(desc.typedSearchAttributes.get(SA.kind)).toBe('collect');
    const found: string[] = [];
    for await (const w of stack.client.workflow.list({ query: `OptiDeployment = '${deployment}' AND OptiKind = 'collect'` })) {
      found.push(w.workflowId);
    }
    // Visibility is eventually consistent; the run is listed once indexed.
    expect(found.length === 0 || found.includes(workflowId!)).toBe(true);
  });
});
