/**
 * `waitForGate` against a Temporal that stops answering and a wall clock that jumps: a fake
 * handle whose `result()` and `query()` fail the way the client fails when the server is down
 * (gRPC UNAVAILABLE after its own retries), then answer again.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { GateUnreachableError, gateStatusCommand, isTemporalUnreachable, reportPathProblem, waitForGate } from '../../client/gate.js';
import type { GateProgress, GateResult } from '../../domain/gate/types.js';

const unavailable = () =>
  Object.assign(new Error('14 UNAVAILABLE: No connection established'), {
    cause: Object.assign(new Error('No connection established'), { code: 14, details: 'No connection established' }),
  });
const progress: GateProgress = { phase: 'waiting', looks: 1, samples: 0, minSamples: 30, deadline: '2026-01-01T00:00:00.000Z' };
const result = { gateId: 'gate/d/v2/1', decision: 'REJECT' } as GateResult;

/** A handle whose server is down while `down()` says so; `result()` resolves once `decided()` and the server is up. */
function fakeHandle(down: () => boolean, decided: () => boolean) {
  const calls = { result: 0 };
  const handle = {
    result: async () => {
      calls.result++;
      for (;;) {
        await new Promise((r) => setTimeout(r, 20));
        if (down()) throw unavailable();
        if (decided()) return result;
      }
    },
    query: async () => {
      if (down()) throw unavailable();
      return progress;
    },
  } as unknown as WorkflowHandle;
  return { handle, calls };
}

describe('waitForGate through an outage', () => {
  // Failed before: the first failed result() ended the wait (the CLI exited 3 for a gate that went on to decide).
  it('re-subscribes while Temporal is unreachable and returns the decision once it answers again', async () => {
    const t0 = Date.now();
    const down = () => Date.now() - t0 > 50 && Date.now() - t0 < 400;
    const { handle, calls } = fakeHandle(down, () => Date.now() - t0 > 500);
    const events: string[] = [];
    const r = await waitForGate(handle, {
      pollMs: 30,
      onLost: () => events.push('lost'),
      onReconnected: () => events.push('back'),
    });
    expect(r).toBe(result);
    expect(events).toEqual(['lost', 'back']);
    expect(calls.result).toBeGreaterThan(1);
  });

  // Failed before: an outage never ended the wait with a clear error (it threw the gRPC error at once).
  it('gives up with GateUnreachableError after reconnectMs of outage, and at the deadline during an outage', async () => {
    const { handle } = fakeHandle(
      () => true,
      () => false,
    );
    await expect(waitForGate(handle, { pollMs: 20, reconnectMs: 200 })).rejects.toBeInstanceOf(GateUnreachableError);
    await expect(waitForGate(handle, { pollMs: 20, timeoutMs: 150 })).rejects.toThrow(/cannot reach Temporal for \d+ s/);
  });

  // Failed before: a progress query nobody answers (no worker on the task queue) times out with
  // DEADLINE_EXCEEDED, which was taken for an outage: "lost contact", then GateUnreachableError.
  it('a query unanswered because no worker polls is not an outage: said once, the wait goes on to its timeout', async () => {
    const deadline = () =>
      Object.assign(new Error('4 DEADLINE_EXCEEDED: query timed out'), { cause: Object.assign(new Error('timed out'), { code: 4 }) });
    // The worker is there for queries 4 to 6 only (counted, so the test does not depend on timing).
    let queries = 0;
    let present = (_n: number) => false;
    const worker = () => present(queries);
    const handle = {
      result: () => new Promise(() => undefined),
      query: async () => {
        queries++;
        if (!worker()) throw deadline();
        return progress;
      },
    } as unknown as WorkflowHandle;
    const events: string[] = [];
    const on = {
      onLost: () => events.push('lost'),
      onNoWorker: () => events.push('no worker'),
      onProgress: () => events.push('progress'),
    };
    const wait = (timeoutMs?: number, polled = async () => worker()) =>
      waitForGate(handle, { pollMs: 10, timeoutMs, reconnectMs: 50, workerPolling: polled, ...on });
    expect(await wait(300)).toBe('timeout');
    expect(events).toEqual(['no worker']);
    // A worker arrives: progress again; it leaves: said again.
    events.length = 0;
    queries = 0;
    present = (n) => n >= 4 && n <= 6;
    expect(await wait(300)).toBe('timeout');
    expect(events).toEqual(['no worker', 'progress', 'no worker']);
    // Workers poll but the query still times out: an outage as before.
    events.length = 0;
    present = () => false;
    await expect(wait(undefined, async () => true)).rejects.toBeInstanceOf(GateUnreachableError);
    expect(events[0]).toBe('lost');
  });

  // Failed before: the deadline was read from the wall clock (Date.now), so a clock step ended it.
  it('measures its deadline on the monotonic clock: a wall-clock jump does not end it', async () => {
    const { handle } = fakeHandle(
      () => false,
      () => false,
    );
    const real = Date.now;
    const t0 = real();
    Date.now = () => real() + (real() - t0 > 30 ? 3 * 3600e3 : 0);
    try {
      const r = await waitForGate(handle, { pollMs: 20, timeoutMs: 300 });
      expect(r).toBe('timeout');
      expect(real() - t0).toBeGreaterThanOrEqual(280);
    } finally {
      Date.now = real;
    }
  });

  // Held before: an answer from the server (the gate failed, was terminated) is not an outage.
  it('rethrows an answer from the server at once', async () => {
    const handle = {
      result: async () => {
        throw new Error('Workflow execution terminated');
      },
      query: async () => progress,
    } as unknown as WorkflowHandle;
    await expect(waitForGate(handle, { pollMs: 20 })).rejects.toThrow(/terminated/);
  });
});

describe('the pieces of a CI-safe gate command', () => {
  it('tells an outage from an answer', () => {
    expect(isTemporalUnreachable(unavailable())).toBe(true);
    expect(isTemporalUnreachable(Object.assign(new Error('x'), { code: 4 }))).toBe(true);
    expect(isTemporalUnreachable(Object.assign(new Error('not found'), { code: 5 }))).toBe(false);
    expect(isTemporalUnreachable(new Error('terminated'))).toBe(false);
  });

  // Failed before: the hint had no --ci-run, naming another gate from outside the CI run.
  it('names this very gate in the status hint', () => {
    expect(gateStatusCommand('d', 'v2', '42')).toBe('optiinfra gate status --deployment d --candidate v2 --ci-run 42');
    expect(gateStatusCommand('d', 'v2')).toBe('optiinfra gate status --deployment d --candidate v2');
  });

  it('finds a --report that cannot be written before anything starts', () => {
    expect(reportPathProblem('/nonexistent-dir/x/gate.md')).toBe('ENOENT');
    expect(reportPathProblem('/tmp')).toBe('is a folder');
    expect(reportPathProblem('/tmp/optiinfra-report-check.md')).toBeUndefined();
  });
});
