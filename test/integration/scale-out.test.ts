/**
 * Several worker processes on the same task queues share one collection cycle: with three
 * `optiinfra worker` processes scoring through the LLM judge (the Groq-compatible stub) and one
 * of them killed with SIGKILL halfway, the cycle ends with every interaction stored once and
 * exactly one score row per interaction and check, and more than one worker did the work.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { openStores, type Stores } from '../../client/runtime.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { startGroqStub, stubLlmEnv, type GroqStub } from '../helpers/groq-stub.js';
import { cliEnv, testConfig, testEnv, uniqueId } from '../helpers/env.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';

const INTERACTIONS = 900;

describe('three worker processes on one cycle', () => {
  // A task queue of this file's own, so only the workers started here take its work.
  const config = testConfig({ TEMPORAL_TASK_QUEUE: uniqueId('scale') });
  const deployment = uniqueId('scale');
  let stores: Stores;
  let client: Client;
  let stub: GroqStub;
  let sim: Simulator;
  const workers: WorkerProcess[] = [];
  /** Process ids of the workers (and their launchers), taken while all run. */
  const pids: string[] = [];

  beforeAll(async () => {
    stores = await openStores(config);
    client = new Client({
      connection: await Connection.connect({ address: config.temporal.address }),
      namespace: config.temporal.namespace,
    });
    stub = await startGroqStub({ latencyMs: 20 });
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.1, seed: 31 });
    await upsertDeployment(stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
    for (let i = 0; i < 3; i++) {
      workers.push(
        startWorkerProcess(
          cliEnv(
            config,
            stubLlmEnv(stub, 'gsk_test_scale_out_0123456789', {
              LLM_TIMEOUT: '10',
              OPTIINFRA_WORKFLOW_BUNDLE: testEnv().bundlePath,
              OPTIINFRA_HOME: join(testEnv().home, `scale-worker-${i}`),
            }),
          ),
        ),
      );
    }
    await Promise.all(workers.map((w) => w.ready));
    pids.push(...workers.flatMap((w) => w.pids().map(String)));
  }, 120_000);
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await sim?.close();
    await stub?.close();
    await client?.connection.close();
    await stores?.close();
  });

  it('shares the work, survives losing a worker, and stores every score exactly once', async () => {
    sim.generate(INTERACTIONS);
    const workflowId = `collect/${deployment}/${randomUUID().slice(0, 8)}`;
    const handle = await client.workflow.start('collectionCycle', {
      taskQueue: config.temporal.taskQueue,
      workflowId,
      args: [{ deployment, pageSize: 300, batchSize: 25, maxConcurrentBatches: 6 }],
    });
    // Kill one worker once a third of the interactions have been judged.
    for (let i = 0; i < 1200 && stub.stats().answered < INTERACTIONS / 3; i++) await new Promise((r) => setTimeout(r, 50));
    const killed = workers[1]!.pids();
    expect(killed).toHaveLength(2); // the launcher and the worker it started with a capped heap
    await workers[1]!.kill();
    // SIGKILL of the launcher takes the worker with it.
    for (let i = 0; i < 100 && killed.some((p) => existsSync(`/proc/${p}`)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(killed.filter((p) => existsSync(`/proc/${p}`))).toEqual([]);
    const r = (await handle.result()) as CycleResult;

    expect(r.stored).toBe(INTERACTIONS);
    expect(r.failed).toBe(0);
    expect(r.scored + r.skipped).toBe(INTERACTIONS * 3);
    expect(await stores.ch.countInteractions(deployment)).toBe(INTERACTIONS);
    expect(await stores.ch.countScores(deployment)).toBe(INTERACTIONS * 3);
    expect(await stores.ch.countScores(deployment, { final: false })).toBe(INTERACTIONS * 3);

    // Which worker processes ran the cycle's activities (their identities are pid@host).
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    const identities = new Set(
      (history.events ?? []).map((e) => e.activityTaskStartedEventAttributes?.identity).filter((x): x is string => Boolean(x)),
    );
    expect(identities.size).toBeGreaterThanOrEqual(2);
    for (const id of identities) expect(pids).toContain(id.split('@')[0]);
  }, 240_000);
});
