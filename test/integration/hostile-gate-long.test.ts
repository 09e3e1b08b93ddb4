/**
 * A gate that waits long at a fine grain: checking every second for 15 minutes (900 looks) with no
 * candidate traffic, on the time-skipping server.
 * Pins: the gate continues as new every LOOKS_PER_RUN looks of its own accord and carries its
 * looks, deadline and history, then decides INCONCLUSIVE at its deadline with every look counted.
 * Held before on this server, which suggests continue-as-new at 4,096 events (runs of 4,099,
 * 4,103 and 1,638 events); on a server that never suggests it (older releases, or the limit set
 * off), one run held every look (about 11 events each), and a gate checking every second for 30
 * days reached Temporal's 51,200-event history limit within hours and was terminated undecided.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GateResult } from '../../domain/gate/types.js';
import { LOOKS_PER_RUN } from '../../workflows/gate/deploy-gate.js';
import { deploymentWithBaseline, startTimeSkippingStack, uniqueId, type TestStack } from '../helpers/env.js';

describe('deployGate checking every second for 15 minutes', () => {
  let stack: TestStack;
  const deployment = uniqueId('gate-long');

  beforeAll(async () => {
    stack = await startTimeSkippingStack();
    await deploymentWithBaseline(stack, deployment);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('continues as new every LOOKS_PER_RUN looks and decides at its deadline with every look counted', async () => {
    const workflowId = `gate/${deployment}/v2`;
    const h = await stack.client.workflow.start('deployGate', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId,
      args: [{ deployment, baselineVersion: 'v1', candidateVersion: 'v2', baselineLastN: 200, checkEvery: '1s', maxWait: '15m' }],
    });
    const r = (await h.result()) as GateResult;
    expect(r.decision).toBe('INCONCLUSIVE');
    expect(r.reason).toMatch(/deadline reached after (\d+) looks/);
    const looks = Number(/after (\d+) looks/.exec(r.reason)![1]);
    // One look a second for 15 minutes (a look's own activity time counts too).
    expect(looks).toBeGreaterThanOrEqual(800);
    expect(looks).toBeLessThanOrEqual(902);
    // The chain of runs, from the first (the test server cannot list workflows).
    let runs = 0;
    let longest = 0;
    for (let runId: string | undefined = h.firstExecutionRunId; runId; runs++) {
      const history = await stack.client.workflow.getHandle(workflowId, runId).fetchHistory();
      const events: NonNullable<typeof history.events> = history.events ?? [];
      longest = Math.max(longest, events.length);
      runId = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    }
    expect(runs).toBe(Math.ceil(looks / LOOKS_PER_RUN));
    expect(longest).toBeLessThan(LOOKS_PER_RUN * 15);
  }, 300_000);
});
