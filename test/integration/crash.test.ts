/**
 * Durability under a crashing worker: the worker is a real process, killed with SIGKILL at
 * random points of a collection cycle and of a gate's rollback, and restarted. Every cycle
 * completes with exactly one score row per interaction and check, and the rollback is
 * delivered once (one idempotency key, one recorded delivery).
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import type { GateResult } from '../../domain/gate/types.js';
import { openStores, type Stores } from '../../client/runtime.js';
import { Client, Connection } from '@temporalio/client';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';
import { cliEnv, testConfig, testEnv, uniqueId } from '../helpers/env.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';

const SECRET = 'whsec_crash_0123456789abcdef';

describe('a worker killed with SIGKILL, again and again', () => {
  const config = testConfig({ OPTIINFRA_WEBHOOK_SECRET: SECRET });
  let stores: Stores;
  let client: Client;
  let worker: WorkerProcess | undefined;
  let sim: Simulator;
  const deployment = uniqueId('crash');
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };

  function startWorker(): WorkerProcess {
    return startWorkerProcess(
      cliEnv(config, {
        LLM_ENABLED: 'false',
        OPTIINFRA_WEBHOOK_SECRET: SECRET,
        OPTIINFRA_WORKFLOW_BUNDLE: testEnv().bundlePath,
        OPTIINFRA_HOME: join(testEnv().home, 'crash-worker'),
      }),
    );
  }

  beforeAll(async () => {
    stores = await openStores(config);
    const connection = await Connection.connect({ address: config.temporal.address });
    client = new Client({ connection, namespace: config.temporal.namespace });
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.05, seed: 5 });
    await upsertDeployment(stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
  });
  afterAll(async () => {
    await worker?.kill();
    await sim?.close();
    await client?.connection.close();
    await stores?.close();
  });

  /** Run `work` while killing and restarting the worker `kills` times at random moments. */
  async function underKills<T>(work: Promise<T>, kills: number, maxGapMs: number): Promise<T> {
    let done = false;
    void work.finally(() => (done = true)).catch(() => undefined);
    for (let i = 0; i < kills && !done; i++) {
      worker = startWorker();
      await new Promise((r) => setTimeout(r, 1500 + random() * maxGapMs));
      if (done) break;
      await worker.kill();
      worker = undefined;
    }
    // The last worker started (when the work finished early) finishes it; else a new one.
    worker ??= startWorker();
    return work;
  }

  it('completes every collection cycle with exactly one score row per interaction and check', async () => {
    sim.generate(600);
    const workflowId = `collect/${deployment}/crash-${randomUUID().slice(0, 6)}`;
    const run = client.workflow.execute('collectionCycle', {
      taskQueue: config.temporal.taskQueue,
      workflowId,
      args: [{ deployment, pageSize: 200, batchSize: 50, maxConcurrentBatches: 2 }],
    }) as Promise<CycleResult>;
    const r = await underKills(run, 10, 2500);
    expect(r.stored).toBe(600);
    expect(r.scored + r.skipped).toBe(1800);
    expect(r.failed).toBe(0);
    expect(await stores.ch.countInteractions(deployment)).toBe(600);
    expect(await stores.ch.countScores(deployment)).toBe(1800);
    expect(await stores.ch.countScores(deployment, { final: false })).toBe(1800);
    await worker?.kill();
  }, 300_000);

  it('delivers the rollback exactly once when the worker dies during delivery', async () => {
    // Baseline v1 is scored above; a degraded v2 is collected without kills.
    worker = startWorker();
    sim.setModel('v2', 0.6);
    sim.generate(200);
    await client.workflow.execute('collectionCycle', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `collect/${deployment}/v2`,
      args: [{ deployment, batchSize: 100 }],
    });
    await worker.kill();
    // The receiver answers slowly, so kills land while the webhook call is in flight.
    const receiver = await startWebhookReceiver({ secret: SECRET, delayMs: 2500 });
    try {
      const gate = client.workflow.execute('deployGate', {
        taskQueue: config.temporal.taskQueue,
        workflowId: `gate/${deployment}/v2`,
        args: [
          { deployment, baselineVersion: 'v1', candidateVersion: 'v2', checkEvery: '1s', deployer: { type: 'webhook', url: receiver.url } },
        ],
      }) as Promise<GateResult>;
      const r = await underKills(gate, 3, 2000);
      expect(r.decision).toBe('REJECT');
      expect(r.rollback.status).toBe('delivered');
      expect(receiver.distinctKeys()).toBe(1);
      expect(receiver.calls.every((c) => c.signatureValid)).toBe(true);
      const rows = await stores.db.query('SELECT status FROM rollbacks WHERE gate_id = $1', [`gate/${deployment}/v2`]);
      expect(rows.rows).toEqual([{ status: 'delivered' }]);
    } finally {
      await worker?.kill();
      await receiver.close();
    }
  }, 300_000);

  it('stops within its shutdown bound after SIGTERM, even with an activity that does not end', async () => {
    // A rollback whose receiver takes two minutes to answer keeps its activity busy.
    const receiver = await startWebhookReceiver({ secret: SECRET, delayMs: 120_000 });
    worker = startWorker();
    await worker.ready;
    try {
      const gate = client.workflow.start('deployGate', {
        taskQueue: config.temporal.taskQueue,
        workflowId: `gate/${deployment}/v2/shutdown`,
        args: [
          {
            deployment,
            baselineVersion: 'v1',
            candidateVersion: 'v2',
            checkEvery: '1s',
            deployer: { type: 'webhook', url: receiver.url, timeoutSeconds: 300 },
          },
        ],
      });
      await gate;
      for (let i = 0; i < 600 && receiver.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(receiver.calls.length).toBeGreaterThan(0);
      const t0 = Date.now();
      await worker.stop();
      expect(Date.now() - t0).toBeLessThan(40_000);
      expect(worker.output()).toMatch(/SIGTERM: shutting down/);
      expect(worker.output()).toMatch(/worker stopped/);
    } finally {
      await worker?.kill();
      await receiver.close();
    }
  }, 120_000);

  it('a worker killed while it is still starting does not live on without its launcher', async () => {
    const w = startWorker();
    let pids: number[] = [];
    for (let i = 0; i < 200 && pids.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 10));
      pids = w.pids();
    }
    expect(pids).toHaveLength(2); // the launcher and the worker it started, before the worker is up
    await w.kill();
    const alive = (p: number) => existsSync(`/proc/${p}`);
    for (let i = 0; i < 100 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 50));
    expect(pids.filter(alive)).toEqual([]);
  });
});
