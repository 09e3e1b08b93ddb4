/**
 * The collection lease under hostile timing: a cycle whose lease expired while it stood still
 * and was taken by another cycle, a cycle refused by the lease, lateness of a cycle's start, and
 * a cycle that died between scoring and moving the cursor followed by two cycles racing.
 * Real Temporal dev server, ClickHouse and PostgreSQL; in-process worker, offline judge.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordCollectionRun, lastCycle, listCycles } from '../../activities/storage/postgres/collection-runs.js';
import { claimCycle, getCursor, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { formatCycles } from '../../client/cli/format.js';
import { emptyTotals, type CycleResult } from '../../domain/collector/collection.js';
import { startTestStack, uniqueId, type TestStack } from '../helpers/env.js';

/** An HTTP source whose next fetch can be held until the test lets it go. */
async function startHoldingSource(deployment: string) {
  const items: string[] = [];
  let hold: { reached: () => void; release: Promise<void> } | undefined;
  const server = http.createServer(async (req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const from = Number(u.searchParams.get('cursor') ?? '0');
    const limit = Number(u.searchParams.get('limit') ?? '100');
    const h = hold;
    hold = undefined;
    if (h) {
      h.reached();
      await h.release;
    }
    const page = items.slice(from, from + limit);
    const next = from + page.length;
    res.setHeader('content-type', 'application/json');
    res.end(`{"items":[${page.join(',')}],"next_cursor":"${next}","has_more":${next < items.length}}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  let n = 0;
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/interactions`,
    add(count: number) {
      for (let i = 0; i < count; i++) {
        items.push(
          JSON.stringify({
            id: `lease-${++n}`,
            deployment,
            model_version: 'v1',
            timestamp: new Date().toISOString(),
            prompt: `What is ${n} + ${n}?`,
            response: `${2 * n}.`,
          }),
        );
      }
    },
    /** Hold the next fetch: resolves `reached` when it arrives; `release()` answers it. */
    holdNext() {
      let release!: () => void;
      let reached!: () => void;
      const reachedP = new Promise<void>((r) => (reached = r));
      hold = { reached, release: new Promise<void>((r) => (release = r)) };
      return { reached: reachedP, release };
    },
    get count() {
      return items.length;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const messages = (e: unknown): string => {
  const out: string[] = [];
  for (let c = e as Error | undefined; c; c = c.cause as Error | undefined) out.push(c.message);
  return out.join(' / ');
};

describe('the collection lease under hostile timing', () => {
  let stack: TestStack;
  let src: Awaited<ReturnType<typeof startHoldingSource>>;
  const deployment = uniqueId('lease');
  let cycles = 0;
  const db = () => stack.stores.db;

  beforeAll(async () => {
    stack = await startTestStack();
    src = await startHoldingSource(deployment);
    await upsertDeployment(db(), { id: deployment, source: { type: 'http', url: src.url }, sample_rate: 1 });
  });
  afterAll(async () => {
    await src?.close();
    await stack?.stop();
  });

  const cycleId = () => `collect/${deployment}/lease-${++cycles}`;
  const start = (workflowId: string) =>
    stack.client.workflow.start('collectionCycle', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId,
      args: [{ deployment, pageSize: 100, checks: ['quality'] }],
      workflowExecutionTimeout: '3 minutes',
    });
  const setLease = (holder: string | null, seconds: number) =>
    db().query(
      `UPDATE collection_cursors SET running_cycle = $2, lease_until = CASE WHEN $2::text IS NULL THEN NULL ELSE now() + make_interval(secs => $3) END WHERE deployment = $1`,
      [deployment, holder, seconds],
    );
  const run = async (id: string) => (await db().query('SELECT * FROM collection_runs WHERE cycle_id = $1', [id])).rows[0];

  it('a cycle whose lease another cycle took while it stood still stops before it pays for its page, naming that cycle', async () => {
    // Failed before: the first cycle scored the page it was on (judge paid for 20 checks) while
    // the other cycle held the lease, and completed.
    src.add(20);
    const a = cycleId();
    const held = src.holdNext();
    const handle = await start(a);
    await held.reached; // A holds the lease and is mid-page (fetching it)
    // A stands still longer than its lease (worker down): the lease expires and another cycle takes it.
    const b = `collect/${deployment}/recreated-schedule`;
    await setLease(null, 0);
    expect(await claimCycle(db(), deployment, b, 600)).toEqual({ claimed: true });
    held.release();
    const err = await handle.result().catch((e: unknown) => e);
    expect(messages(err)).toMatch(new RegExp(`LeaseLost|lost the lease.*cycle '${b}' holds it`));
    expect(messages(err)).toContain(`cycle '${b}' holds it`);
    // Nothing was judged by A: no score row, no cursor move; the holder keeps its lease.
    expect(await stack.stores.ch.countScores(deployment, { final: false })).toBe(0);
    expect(await getCursor(db(), deployment)).toBeNull();
    expect(await run(a)).toMatchObject({ status: 'failed', scored: 0, error: expect.stringContaining(`cycle '${b}' holds it`) });
    const lease = await db().query('SELECT running_cycle FROM collection_cursors WHERE deployment = $1', [deployment]);
    expect(lease.rows[0].running_cycle).toBe(b);

    // The holder (here: the next cycle once it ends) takes the page: every interaction scored once.
    await setLease(null, 0);
    const r = (await (await start(cycleId())).result()) as CycleResult;
    expect(r).toMatchObject({ fetched: 20, scored: 20, skipped: 0 });
    expect(await stack.stores.ch.countScores(deployment, { final: false })).toBe(20);
    expect(await getCursor(db(), deployment)).toBe('20');
  });

  it('a cycle whose lease expired but that nobody took re-claims it and goes on (held before)', async () => {
    src.add(5);
    const a = cycleId();
    const held = src.holdNext();
    const handle = await start(a);
    await held.reached;
    await db().query(`UPDATE collection_cursors SET lease_until = now() - interval '1 minute' WHERE deployment = $1`, [deployment]);
    held.release();
    expect(await handle.result()).toMatchObject({ fetched: 5, scored: 5 });
    expect(await stack.stores.ch.countScores(deployment, { final: false })).toBe(25);
  });

  it('a cycle refused by the lease is recorded and listed as skipped, naming the holder, and its workflow completes', async () => {
    // Failed before: recorded as 'failed' with CycleAlreadyRunning, and the workflow failed
    // (counted by temporal_workflow_failed_total and shown as the latest cycle 'failed').
    const holder = `collect/${deployment}/holder`;
    await setLease(holder, 300);
    try {
      const id = cycleId();
      const handle = await start(id);
      const r = (await handle.result()) as CycleResult;
      expect(r).toMatchObject({ status: 'skipped', heldBy: holder, fetched: 0, scored: 0 });
      expect(r.note).toContain(`cycle '${holder}'`);
      expect((await handle.describe()).status.name).toBe('COMPLETED');
      expect(await run(id)).toMatchObject({ status: 'skipped', error: expect.stringContaining(`cycle '${holder}'`) });
      // Listed as skipped with the holder; the latest cycle that ran is still the one reports show.
      const rows = await listCycles(db(), deployment, 5);
      expect(rows[0]).toMatchObject({ cycle_id: id, status: 'skipped' });
      expect(formatCycles(deployment, rows)).toMatch(new RegExp(`${id}\\s+skipped.*cycle '${holder}'`));
      expect((await lastCycle(db(), deployment))?.status).toBe('ok');
    } finally {
      await setLease(null, 0);
    }
  });

  it('a cycle records when it began its work; a late one is listed with its lateness', async () => {
    // Failed before: collection_runs had no start time (column missing), so lateness could not be shown.
    src.add(3);
    const id = cycleId();
    const before = Date.now();
    await (await start(id)).result();
    const row = await run(id);
    expect(row.started_at).toBeInstanceOf(Date);
    expect(row.started_at.getTime()).toBeGreaterThanOrEqual(before - 5000);
    expect(row.started_at.getTime()).toBeLessThanOrEqual(row.finished_at.getTime());

    // A catch-up cycle that began 3 h 10 min after its scheduled time (recorded as the workflow records it).
    const due = new Date(Date.now() - (3 * 60 + 20) * 60_000);
    const late = `collect/${deployment}-${due.toISOString()}`;
    await recordCollectionRun(db(), {
      ...row2result(late, deployment),
      scheduledAt: due.toISOString(),
      startedAt: new Date(due.getTime() + (3 * 60 + 10) * 60_000).toISOString(),
      status: 'ok',
    });
    const text = formatCycles(deployment, await listCycles(db(), deployment, 10));
    expect(text).toContain(`late: ${late} started 3 h 10 min after it was due`);
    expect(text).toMatch(new RegExp(`${late.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+ok\\s+\\S+ \\S+\\s+\\S+ \\S+\\s+3 h 10 min`));
  });

  it('a cycle dead between scoring and moving the cursor, its lease expired, then two cycles racing: nothing lost, nothing judged twice', async () => {
    // Pins behaviour (held before for the scores; the racing cycles' outcome is now 'skipped', not failed).
    src.add(30);
    const from = await getCursor(db(), deployment);
    const scoresBefore = await stack.stores.ch.countScores(deployment, { final: false });
    // Cycle A scores its page and "dies" before the cursor moves: emulated by moving the cursor back
    // and leaving A's lease in place, expired.
    const a = cycleId();
    const ra = (await (await start(a)).result()) as CycleResult;
    expect(ra.scored).toBe(30);
    await db().query(
      `UPDATE collection_cursors SET cursor = $2, running_cycle = $3, lease_until = now() - interval '1 second' WHERE deployment = $1`,
      [deployment, from, a],
    );
    src.add(10); // arrived while A was dead
    const [b, c] = [cycleId(), cycleId()];
    const results = (await Promise.all([start(b), start(c)].map(async (h) => (await h).result()))) as CycleResult[];
    const ran = results.filter((r) => r.status !== 'skipped');
    expect(ran.length).toBeGreaterThanOrEqual(1);
    for (const r of results.filter((x) => x.status === 'skipped')) expect([a, b, c]).toContain(r.heldBy);
    // The 30 A scored are found stored (not judged again); only the 10 new ones are judged.
    expect(ran.reduce((n, r) => n + r.scored, 0)).toBe(10);
    expect(ran.reduce((n, r) => n + r.skipped, 0)).toBeGreaterThanOrEqual(30);
    expect(await stack.stores.ch.countScores(deployment, { final: false })).toBe(scoresBefore + 40);
    expect(await getCursor(db(), deployment)).toBe(String(src.count));
    // A returning now: its lease is gone to nobody, so it may take it again; its cursor move is a no-op.
    expect((await claimCycle(db(), deployment, a, 600)).claimed).toBe(true);
    await setLease(null, 0);
  });
});

function row2result(cycleId: string, deployment: string): CycleResult {
  return { ...emptyTotals(), cycleId, deployment, judge: 'offline', cursor: null, pages: 1 };
}
