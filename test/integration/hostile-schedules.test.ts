/**
 * Scheduled collection over time, under hostile conditions: the worker down for a day while the
 * schedule keeps firing, a trigger while a cycle runs, `schedule create` again with other options,
 * a schedule deleted and recreated with another interval while its old cycle still runs, records
 * timestamped hours late or ahead of our clock. Invariants: at most one cycle of a deployment
 * at a time, one cycle catches up, no interaction lost or scored twice, every change said.
 *
 * Schedules run on the shared dev server (the time-skipping test server has no schedules): a day
 * of firing is a backfill of the day's 1,440 one-minute runs, which the server resolves with the
 * schedule's own overlap policy, as it resolves runs that come due.
 */
import { mkdtempSync, appendFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { getCursor, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { openStores, type Stores } from '../../client/runtime.js';
import { scheduleId, triggerSchedule, upsertSchedule } from '../../client/schedules.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import { dataConverterFor } from '../../workers/codec.js';
import { startTestStack, testConfig, uniqueId, type TestStack } from '../helpers/env.js';

const DAY = 86_400_000;

let lastSeen: unknown;
async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    last = lastSeen;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('a day of schedule firing while no worker runs', () => {
  const config = testConfig();
  const deployment = uniqueId('sched-down');
  let connection: Connection;
  let client: Client;
  let stores: Stores;
  let sim: Simulator;
  let stack: TestStack | undefined;

  beforeAll(async () => {
    connection = await Connection.connect({ address: config.temporal.address });
    client = new Client({ connection, namespace: config.temporal.namespace, dataConverter: dataConverterFor(config) });
    stores = await openStores(config);
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.2 });
    await upsertDeployment(stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
  });
  afterAll(async () => {
    await client.schedule
      .getHandle(scheduleId(deployment))
      .delete()
      .catch(() => undefined);
    await stack?.stop();
    await sim?.close();
    await stores?.close();
    await connection?.close();
  });

  it('starts one cycle, not 1,440: the rest are skipped while it waits for a worker (held before)', async () => {
    // Paused, so only the backfilled day fires (a backfill ignores the pause, as a catch-up would not).
    expect((await upsertSchedule(client, config, { deployment, every: '1m', paused: true })).created).toBe(true);
    sim.generate(20);
    const h = client.schedule.getHandle(scheduleId(deployment));
    // In 10-minute parts: the server's scheduler resolves about 10 backfilled runs per wake-up (and
    // bounds how many it buffers, so not all 1,440 need be counted).
    const start = Date.now() - DAY;
    for (let t = start; t < start + DAY; t += 10 * 60_000) await h.backfill({ start: new Date(t), end: new Date(t + 10 * 60_000) });
    // Resolved when 1,000 are skipped, or when the counts stop moving for 15 s after 500: the server
    // settles at a count that varies from run to run (869, 899, 949 and over 1,000 seen here).
    let seen = '';
    let still = Date.now();
    const d = await until(
      'the backfill to be resolved',
      async () => {
        const x = await h.describe();
        lastSeen = {
          taken: x.info.numActionsTaken,
          skipped: x.info.numActionsSkippedOverlap,
          missed: x.info.numActionsMissedCatchupWindow,
        };
        const now = JSON.stringify(lastSeen);
        if (now !== seen) [seen, still] = [now, Date.now()];
        const settled = Date.now() - still > 15_000 && x.info.numActionsSkippedOverlap >= 500;
        return x.info.numActionsSkippedOverlap >= 1000 || settled ? x : undefined;
      },
      200_000,
    );
    expect(d.info.numActionsTaken).toBe(1);
    expect(d.info.runningActions).toHaveLength(1);
  });

  it('a trigger while that cycle waits starts no second cycle and names the one running (failed before: trigger allowed all overlaps)', async () => {
    const h = client.schedule.getHandle(scheduleId(deployment));
    const running = (await h.describe()).info.runningActions[0]!.workflow.workflowId;
    const t = await triggerSchedule(client, scheduleId(deployment));
    expect(t).toEqual({ started: false, running });
    const d = await h.describe();
    expect(d.info.numActionsTaken).toBe(1);
    expect(d.info.runningActions.map((a) => a.workflow.workflowId)).toEqual([running]);
  });

  it('schedule create again with other options says each change (failed before: only "updated")', async () => {
    const o = await upsertSchedule(client, config, { deployment, every: '1d', paused: true, maxConcurrentBatches: 8 });
    expect(o.created).toBe(false);
    expect(o.changes).toEqual([
      'every 1m → 1d',
      'LLM budget per cycle (minutes) 1 → 1440',
      'max concurrent batches default → 8',
      'catch-up window 1h → 1d',
    ]);
    // Run again with the same options: nothing to change, and it says so.
    expect((await upsertSchedule(client, config, { deployment, every: '1d', paused: true, maxConcurrentBatches: 8 })).changes).toEqual([]);
    // Without --max-concurrent-batches and --paused: back to the default, unpaused; both said.
    const back = await upsertSchedule(client, config, { deployment, every: '1d', paused: false });
    expect(back.changes).toEqual(['paused → running (unpaused)', 'max concurrent batches 8 → default']);
    await upsertSchedule(client, config, { deployment, every: '1d', paused: true });
    const d = await client.schedule.getHandle(scheduleId(deployment)).describe();
    expect(d.policies.catchupWindow).toBe(DAY);
    expect(d.state.paused).toBe(true);
  });

  it('deleted and recreated with another interval while the old cycle waits: when the worker is back, every interaction is scored once (held before)', async () => {
    const h = client.schedule.getHandle(scheduleId(deployment));
    const old = (await h.describe()).info.runningActions[0]!.workflow.workflowId;
    await h.delete();
    expect((await upsertSchedule(client, config, { deployment, every: '2m', paused: true })).created).toBe(true);
    // The new schedule does not know the old cycle: its trigger starts a second one, which the
    // deployment's lease keeps from running beside the first.
    const t = await triggerSchedule(client, scheduleId(deployment));
    expect(t.started).toBe(true);
    const second = await until('the second cycle', async () => (await h.describe()).info.runningActions[0]?.workflow.workflowId);
    expect(second).not.toBe(old);
    sim.generate(10); // arrived while the worker was down, after the cycles were started

    stack = await startTestStack(config);
    const outcomes = await Promise.all(
      [old, second].map(async (id) => {
        try {
          const r = (await client.workflow.getHandle(id).result()) as CycleResult;
          // Refused by the lease: skipped (completed), naming the cycle that ran.
          if (r.status === 'skipped') {
            expect(r.note).toMatch(/is running .*no interaction is judged twice/);
            return undefined;
          }
          return r;
        } catch (e) {
          expect(e).toBeInstanceOf(WorkflowFailedError);
          let c: unknown = e;
          while ((c as { cause?: unknown }).cause) c = (c as { cause?: unknown }).cause;
          expect(String((c as Error).message)).toMatch(/is running .*no interaction is judged twice/);
          return undefined;
        }
      }),
    );
    const done = outcomes.filter((r): r is CycleResult => !!r);
    expect(done.length).toBeGreaterThanOrEqual(1);
    expect(done.reduce((n, r) => n + r.fetched, 0)).toBe(30);
    expect(done.reduce((n, r) => n + r.scored + (r.abstained ?? 0), 0)).toBe(90);
    // One score row per interaction and check: none judged twice.
    expect(await stores.ch.countScores(deployment, { final: false })).toBe(90);
    expect(await getCursor(stores.db, deployment)).toBe('30');

    // The next cycle takes only what arrived since.
    sim.generate(5);
    expect((await triggerSchedule(client, scheduleId(deployment))).started).toBe(true);
    const next = await until('the next cycle', async () => {
      const d = await h.describe();
      const ids = d.info.recentActions.map((a) => a.action.workflow.workflowId).filter((id) => id !== second);
      return ids.at(-1);
    });
    const r = (await client.workflow.getHandle(next).result()) as CycleResult;
    expect(r).toMatchObject({ fetched: 5, skipped: 0 });
    expect(r.scored + (r.abstained ?? 0)).toBe(15);
    expect(await stores.ch.countScores(deployment, { final: false })).toBe(105);
  });
});

describe('records timestamped hours late or ahead of our clock', () => {
  let stack: TestStack;
  const deployment = uniqueId('clock');
  const dir = mkdtempSync(join(tmpdir(), 'clock-'));
  const file = join(dir, 'log.jsonl');
  const rec = (id: string, at: number) =>
    `${JSON.stringify({ id, deployment, model_version: 'v1', timestamp: new Date(at).toISOString(), prompt: `q ${id}`, response: `a ${id}` })}\n`;
  const cycle = async (n: number) =>
    (await stack.client.workflow.execute('collectionCycle', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: `collect/${deployment}/clock-${n}`,
      args: [{ deployment }],
    })) as CycleResult;

  beforeAll(async () => {
    stack = await startTestStack();
    writeFileSync(file, '');
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'jsonl', path: file }, sample_rate: 1 });
  });
  afterAll(async () => stack?.stop());

  it('a record hours older than one collected before is still collected: the cursor is the source position, not a time (held before)', async () => {
    const now = Date.now();
    appendFileSync(file, rec('now-1', now) + rec('ahead-2h', now + 2 * 3_600_000));
    const a = await cycle(1);
    expect(a).toMatchObject({ fetched: 2, stored: 2, bad: 0, skipped: 0 });
    expect(a.scored + (a.abstained ?? 0)).toBe(6);
    // A source whose clock is 6 hours behind, or that delivers late: behind the newest timestamp seen.
    appendFileSync(file, rec('late-6h', now - 6 * 3_600_000) + rec('late-3d', now - 3 * DAY));
    const b = await cycle(2);
    expect(b).toMatchObject({ fetched: 2, stored: 2, bad: 0, skipped: 0 });
    expect(b.scored + (b.abstained ?? 0)).toBe(6);
    expect(await stack.stores.ch.countInteractions(deployment)).toBe(4);
    expect(await stack.stores.ch.countScores(deployment, { final: false })).toBe(12);
  });

  it('a record more than a day ahead is a counted bad record with its reason, never silently dropped (held before)', async () => {
    appendFileSync(file, rec('ahead-3d', Date.now() + 3 * DAY));
    const c = await cycle(3);
    expect(c).toMatchObject({ fetched: 1, stored: 0, bad: 1 });
    expect(c.badSamples[0]?.reason).toMatch(/ahead|future/i);
  });
});
