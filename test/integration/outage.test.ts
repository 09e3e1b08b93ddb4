/**
 * Durability under server outages: ClickHouse, PostgreSQL (PGlite) and the Temporal dev server
 * are killed with SIGKILL while work is in flight and started again on the same ports with the
 * same data. A collection cycle waits the outage out (its activities retry with backoff) and
 * completes with nothing lost or doubled; a deploy gate waiting between looks resumes after
 * Temporal comes back and decides.
 *
 * The other integration files run in parallel against the shared servers of the global setup,
 * so this file never touches those: it starts its own three servers, with the project's stack
 * functions, under a home of its own and on free ports, and stops them in afterAll.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { getCursor, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { startClickhouse } from '../../stack/clickhouse.js';
import { freePort, portInUse } from '../../stack/ports.js';
import { startPglite } from '../../stack/postgres.js';
import { stackDown } from '../../stack/stack.js';
import { startTemporal } from '../../stack/temporal.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import type { GateProgress, GateResult } from '../../domain/gate/types.js';
import { startTestStack, testConfig, testEnv, uniqueId, type TestStack } from '../helpers/env.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${secs(timeoutMs)} waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** SIGKILL a server (its whole process group: the stack spawns each one detached) and wait until its ports are closed. */
async function crash(pid: number, ports: number[]): Promise<void> {
  expect(pid).toBeGreaterThan(0); // started by this file, not an already running server
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    process.kill(pid, 'SIGKILL');
  }
  await waitFor(
    `ports ${ports.join(', ')} to close`,
    async () => !(await Promise.all(ports.map((p) => portInUse(p)))).some(Boolean),
    20_000,
    100,
  );
}

interface PendingActivity {
  workflowId: string;
  type: string;
  attempt: number;
  lastFailure: string;
}

describe('outages of ClickHouse, PostgreSQL and Temporal (servers of its own, killed and restarted)', () => {
  const home = join(testEnv().home, `outage-${uniqueId('h')}`);
  const timings: string[] = [];
  let ports: { temporal: number; temporalUi: number; chHttp: number; chTcp: number; pg: number };
  let temporalOpts: Parameters<typeof startTemporal>[0];
  let chOpts: Parameters<typeof startClickhouse>[0];
  let pgOpts: Parameters<typeof startPglite>[0];
  const pids = { temporal: 0, clickhouse: 0, pglite: 0 };
  let config: ReturnType<typeof testConfig>;
  let stack: TestStack | undefined;
  const sims: Simulator[] = [];
  // The ClickHouse client logs every refused request while its server is down (hundreds of
  // multi-line entries from the worker's and the test's stores): count them instead.
  const consoleError = console.error;
  let clickhouseClientErrors = 0;

  beforeAll(async () => {
    console.error = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('[@clickhouse/client]')) clickhouseClientErrors++;
      else consoleError(...args);
    };
    // The CLI the global setup found or installed: nothing is installed here.
    process.env.TEMPORAL_CLI = testEnv().temporalCli;
    ports = {
      temporal: await freePort(),
      temporalUi: await freePort(),
      chHttp: await freePort(),
      chTcp: await freePort(),
      pg: await freePort(),
    };
    temporalOpts = { home, port: ports.temporal, uiPort: ports.temporalUi, dbFile: join(home, 'temporal.db') };
    chOpts = { home, httpPort: ports.chHttp, tcpPort: ports.chTcp };
    pgOpts = { home, port: ports.pg, dataDir: join(home, 'pglite') };
    const [t, c, p] = await Promise.all([startTemporal(temporalOpts), startClickhouse(chOpts), startPglite(pgOpts)]);
    pids.temporal = t.pid;
    pids.clickhouse = c.pid;
    pids.pglite = p.pid;
    config = testConfig({
      TEMPORAL_ADDRESS: t.address,
      CLICKHOUSE_URL: c.url,
      CLICKHOUSE_DATABASE: 'optiinfra_outage',
      DATABASE_URL: p.url,
    });
    stack = await startTestStack(config);
  });

  afterAll(async () => {
    // Bounded: should a test fail while a server is down, the worker's shutdown must not hang.
    await Promise.race([stack?.stop().catch(() => undefined), sleep(30_000)]);
    await Promise.all(sims.map((s) => s.close().catch(() => undefined)));
    // Stops whatever runs under this home (pid files are rewritten on every restart).
    await stackDown({ home, log: () => undefined });
    rmSync(home, { recursive: true, force: true });
    console.error = consoleError;
    timings.push(`${clickhouseClientErrors} errors logged by the ClickHouse client (not shown)`);
    if (timings.length) console.log(`[outage] ${timings.join('\n[outage] ')}`);
  });

  async function newDeployment(prefix: string, degradedShare: number): Promise<{ deployment: string; sim: Simulator }> {
    const deployment = uniqueId(prefix);
    const sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare, seed: 17 });
    sims.push(sim);
    await upsertDeployment(stack!.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
    return { deployment, sim };
  }

  /**
   * Activities of the cycle and of its score batches that are being retried right now, or that
   * wait out a failed write in-process (a scoring batch keeps what it judged and says what it
   * waits for in its heartbeat details).
   */
  async function retrying(cycleId: string): Promise<PendingActivity[]> {
    const ids = [cycleId];
    for (let page = 1; page <= 6; page++) for (let b = 1; b <= 2; b++) ids.push(`${cycleId}/page-${page}/batch-${b}`);
    const out: PendingActivity[] = [];
    await Promise.all(
      ids.map(async (workflowId) => {
        const d = await stack!.client.workflow
          .getHandle(workflowId)
          .describe()
          .catch(() => undefined); // a batch not started yet
        for (const a of d?.raw.pendingActivities ?? []) {
          const details = a.heartbeatDetails?.payloads?.[0]?.data;
          const waiting = details ? (JSON.parse(Buffer.from(details).toString('utf8')) as { waiting?: string }).waiting : undefined;
          if ((a.attempt ?? 0) >= 2 || waiting) {
            out.push({
              workflowId,
              type: a.activityType?.name ?? '?',
              attempt: a.attempt ?? 0,
              lastFailure: a.lastFailure?.message ?? waiting ?? '',
            });
          }
        }
      }),
    );
    return out;
  }

  /**
   * 600 interactions, pages of 100, batches of 50, two batches at a time. Once some (not all)
   * score rows exist, `down()` kills the server; it stays down until activities are seen
   * retrying and at least 5 s have passed, then `up()` starts it again with the same data.
   */
  async function cycleThroughOutage(
    which: string,
    down: () => Promise<void>,
    up: () => Promise<void>,
  ): Promise<{ deployment: string; cycleId: string; result: CycleResult; rowsAtCrash: number; seen: PendingActivity[] }> {
    const { deployment, sim } = await newDeployment(`outage-${which}`, 0.05);
    sim.generate(600);
    const cycleId = `collect/${deployment}/outage`;
    const handle: WorkflowHandle = await stack!.client.workflow.start('collectionCycle', {
      taskQueue: config.temporal.taskQueue,
      workflowId: cycleId,
      args: [{ deployment, pageSize: 100, batchSize: 50, maxConcurrentBatches: 2 }],
    });
    const t0 = Date.now();
    let rowsAtCrash = 0;
    await waitFor(
      'the first score rows',
      async () => {
        rowsAtCrash = await stack!.stores.ch.countScores(deployment, { final: false });
        return rowsAtCrash >= 100;
      },
      60_000,
      100,
    );
    const tDown = Date.now();
    await down();
    let seen: PendingActivity[] = [];
    try {
      // Mid-flight: some but not all rows were written, and the cycle has not finished.
      expect(rowsAtCrash).toBeGreaterThan(0);
      expect(rowsAtCrash).toBeLessThan(1800);
      await waitFor(
        `activities retrying against the stopped ${which}`,
        async () => {
          seen = await retrying(cycleId);
          return seen.length > 0;
        },
        60_000,
        500,
      );
      while (Date.now() - tDown < 5000) await sleep(200);
      expect((await handle.describe()).status.name).toBe('RUNNING');
    } finally {
      // Whatever happened, the server comes back: the other tests of this file need it.
      await up();
    }
    const tUp = Date.now();
    // Recovered: no activity of the cycle is in retry any more (each retried one succeeded).
    let recoveredAt = 0;
    const watching = (async () => {
      while (!recoveredAt) {
        if ((await retrying(cycleId).catch(() => [1])).length === 0) recoveredAt = Date.now();
        else await sleep(250);
      }
    })();
    const result = (await handle.result()) as CycleResult;
    await watching;
    const tDone = Date.now();
    timings.push(
      `${which}: killed ${secs(tDown - t0)} after the start with ${rowsAtCrash}/1800 score rows; down ${secs(tUp - tDown)} ` +
        `(restart included); retried activities all through ${secs(recoveredAt - tUp)} after the server was back, cycle done ` +
        `${secs(tDone - tUp)} after it; ${seen.length} activities seen retrying, ` +
        `e.g. ${seen[0]?.type} attempt ${seen[0]?.attempt}: ${seen[0]?.lastFailure.slice(0, 120)}`,
    );
    return { deployment, cycleId, result, rowsAtCrash, seen };
  }

  async function expectNothingLost(deployment: string, cycleId: string, r: CycleResult) {
    expect(r).toMatchObject({ stored: 600, fetched: 600, sampled: 600, bad: 0, failed: 0, pages: 6 });
    expect(r.scored + r.skipped).toBe(1800);
    const { ch, db } = stack!.stores;
    expect(await ch.countInteractions(deployment)).toBe(600);
    expect(await ch.countScores(deployment)).toBe(1800);
    expect(await ch.countScores(deployment, { final: false })).toBe(1800);
    expect(await ch.countScores(deployment, { status: 'ok' })).toBe(1800);
    const cursor = await getCursor(db, deployment);
    expect(cursor).not.toBeNull();
    expect(cursor).toBe(r.cursor);
    const run = await db.query('SELECT stored, scored, skipped, failed FROM collection_runs WHERE cycle_id = $1', [cycleId]);
    expect(run.rows).toEqual([{ stored: 600, scored: r.scored, skipped: r.skipped, failed: 0 }]);
    // Nothing new is left behind the cursor: the next cycle fetches nothing.
    const again = (await stack!.client.workflow.execute('collectionCycle', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `${cycleId}/next`,
      args: [{ deployment }],
    })) as CycleResult;
    expect(again).toMatchObject({ fetched: 0, stored: 0, scored: 0 });
  }

  it('a collection cycle waits out a ClickHouse crash and completes with exactly one row per interaction and check', async () => {
    const { deployment, cycleId, result, seen } = await cycleThroughOutage(
      'clickhouse',
      () => crash(pids.clickhouse, [ports.chHttp, ports.chTcp]),
      async () => {
        pids.clickhouse = (await startClickhouse(chOpts)).pid;
      },
    );
    // The outage was felt by the scoring or fetching activities (a scoring batch waits out a failed
    // write in-process, keeping what it judged, and says so), and nothing was lost or written twice.
    expect(seen.some((a) => a.type === 'scoreInteractions' || a.type === 'fetchPage')).toBe(true);
    await expectNothingLost(deployment, cycleId, result);
  }, 240_000);

  it('a collection cycle waits out a PostgreSQL crash and completes with nothing lost', async () => {
    const { deployment, cycleId, result, seen } = await cycleThroughOutage(
      'postgres',
      () => crash(pids.pglite, [ports.pg]),
      async () => {
        pids.pglite = (await startPglite(pgOpts)).pid;
      },
    );
    // The activities that use PostgreSQL met the outage (a scoring batch confirms its cycle's lease there first).
    expect(seen.some((a) => ['advanceCursor', 'fetchPage', 'recordCycle', 'scoreInteractions'].includes(a.type))).toBe(true);
    await expectNothingLost(deployment, cycleId, result);
  }, 240_000);

  it('a deploy gate waiting for candidate scores survives a Temporal restart and REJECTs the degraded model', async () => {
    const { deployment, sim } = await newDeployment('outage-gate', 0.05);
    sim.generate(300);
    const base = (await stack!.client.workflow.execute('collectionCycle', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `collect/${deployment}/v1`,
      args: [{ deployment, batchSize: 100, maxConcurrentBatches: 3 }],
    })) as CycleResult;
    expect(base.scored).toBe(900);

    // v2 is deployed but has no scores yet: the gate looks every 2 s and waits.
    sim.setModel('v2', 0.6);
    const gateId = `gate/${deployment}/v2`;
    const gate = await stack!.client.workflow.start('deployGate', {
      taskQueue: config.temporal.taskQueue,
      workflowId: gateId,
      args: [{ deployment, baselineVersion: 'v1', candidateVersion: 'v2', checkEvery: '2s', maxWait: '30m' }],
    });
    let progress: GateProgress | undefined;
    await waitFor(
      'the gate to wait',
      async () => {
        progress = await gate.query<GateProgress>('progress');
        return progress.phase === 'waiting' && progress.looks >= 2;
      },
      60_000,
      250,
    );
    expect(progress!.samples).toBe(0);
    const looksBefore = progress!.looks;

    const tDown = Date.now();
    await crash(pids.temporal, [ports.temporal, ports.temporalUi]);
    await sleep(5000);
    pids.temporal = (await startTemporal(temporalOpts)).pid;
    const tUp = Date.now();

    // No worker restart is needed: the worker's NativeConnection and the client's Connection
    // reconnect by themselves, and the in-process worker keeps running through the outage (its
    // failed polls are retried); the gate's timer, kept in the server's SQLite file, fires again.
    await waitFor(
      'the gate to look again after the restart',
      async () => {
        progress = await gate.query<GateProgress>('progress');
        return progress.looks > looksBefore;
      },
      90_000,
      500,
    );
    const tResumed = Date.now();
    expect(progress!.phase).toBe('waiting');
    expect(stack!.workers.workers.map((w) => w.getState())).toEqual(['RUNNING', 'RUNNING']);

    sim.generate(200);
    const cand = (await stack!.client.workflow.execute('collectionCycle', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `collect/${deployment}/v2`,
      args: [{ deployment, batchSize: 100, maxConcurrentBatches: 2 }],
    })) as CycleResult;
    expect(cand.scored).toBe(600);
    const r = (await gate.result()) as GateResult;
    const tDecided = Date.now();
    timings.push(
      `temporal: down ${secs(tUp - tDown)} (restart included) after ${looksBefore} looks; gate looked again ${secs(tResumed - tUp)} ` +
        `after the server was back; decided ${r.decision} ${secs(tDecided - tResumed)} later (candidate cycle included)`,
    );
    expect(r.decision).toBe('REJECT');
    expect(r.effectiveDecision).toBe('REJECT');
    expect(r.evidence!.looks).toBeGreaterThan(looksBefore);
    const row = await stack!.stores.db.query(
      'SELECT decision, effective_decision, candidate_version FROM gate_decisions WHERE gate_id = $1',
      [gateId],
    );
    expect(row.rows).toEqual([{ decision: 'REJECT', effective_decision: 'REJECT', candidate_version: 'v2' }]);
  }, 240_000);
});
