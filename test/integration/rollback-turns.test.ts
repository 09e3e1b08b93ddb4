/**
 * Rollbacks of one deployment from several gates at once (two pipelines gating the same candidate,
 * or gates of two candidates), against the rollback activity with the real PostgreSQL and real
 * rollback commands: one delivery per deployment at a time, the same rollback never sent twice by
 * gates that watched the same deployment of the candidate, and a dead or failed delivery never
 * blocking the others.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityDeps } from '../../activities/deps.js';
import { createGateActivities } from '../../activities/gate/activities.js';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { claimRollback, takeRollbackTurn } from '../../activities/storage/postgres/gates.js';
import { openStores, type Stores } from '../../client/runtime.js';
import type { DeployerConfig, RollbackOutcome } from '../../domain/gate/types.js';
import { testConfig, uniqueId } from '../helpers/env.js';

describe('rollbacks of one deployment from several gates', () => {
  let stores: Stores;
  let rollback: ReturnType<typeof createGateActivities>['rollback'];
  const dir = mkdtempSync(join(tmpdir(), 'rollback-turns-'));
  const log = join(dir, 'runs.log');
  /** Logs when each run of the command starts and ends (ns), then works for `seconds`. */
  const command = (seconds: number, exit = 0): DeployerConfig => ({
    type: 'command',
    argv: [
      '/bin/sh',
      '-c',
      `echo "start $OPTIINFRA_GATE_ID $(date +%s%N)" >> "$0"; sleep ${seconds}; echo "end $OPTIINFRA_GATE_ID $(date +%s%N)" >> "$0"; exit ${exit}`,
      log,
    ],
  });
  /** The runs of the command for these gates, in log order. */
  const runs = (gates: string[]) =>
    readFileSync(log, 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .filter(([, g]) => g !== undefined && gates.includes(g))
      .map(([what, gate, ns]) => ({ what, gate, ns: BigInt(ns ?? '0') }));

  const gate = (deployment: string, from: string) => {
    const gateId = `gate/${deployment}/${from}/${randomUUID().slice(0, 8)}`;
    return { gateId, idempotencyKey: `${gateId}/run`, deployment, fromVersion: from, toVersion: 'v1', reason: 'r' };
  };
  const run = (g: ReturnType<typeof gate>, deployer: DeployerConfig, gateStartedAt = new Date().toISOString()) =>
    new MockActivityEnvironment().run(rollback, { ...g, deployer, gateStartedAt }) as Promise<RollbackOutcome>;
  const newDeployment = async () => {
    const id = uniqueId('rbturn');
    await upsertDeployment(stores.db, { id, source: { type: 'http', url: 'http://127.0.0.1:9/src' }, sample_rate: 1 });
    return id;
  };

  beforeAll(async () => {
    const config = testConfig();
    stores = await openStores(config);
    rollback = createGateActivities({ config, db: stores.db, ch: stores.ch } as unknown as ActivityDeps).rollback;
  });
  afterAll(async () => {
    await stores?.close();
  });

  // Failed before: each gate had its own idempotency key, so both ran the command at once (two
  // `kubectl rollout undo` at once can return the deployment to the candidate).
  it('two gates of one candidate that reject at once: the command runs once, the other gate says who delivered it', async () => {
    const d = await newDeployment();
    const began = new Date().toISOString();
    const [a, b] = [gate(d, 'v2'), gate(d, 'v2')];
    const [ra, rb] = await Promise.all([run(a, command(2), began), run(b, command(2), began)]);
    const ran = runs([a.gateId, b.gateId]);
    expect(
      ran.map((r) => r.what),
      JSON.stringify([ra, rb]),
    ).toEqual(['start', 'end']);
    const [first, second] = ran[0]?.gate === a.gateId ? [ra, rb] : [rb, ra];
    const firstGate = ran[0]?.gate;
    expect(first.status).toBe('delivered');
    expect(second.status).toBe('delivered');
    expect(second.detail).toContain(`not sent again: gate ${firstGate} rolled ${d} back from v2 to v1`);
    const rows = await stores.db.query<{ status: string }>("SELECT status FROM rollbacks WHERE deployment = $1 AND status = 'delivered'", [
      d,
    ]);
    expect(rows.rows).toHaveLength(2);
    // Either gate asked again later (a retry, a replay) gets the recorded answer, and nothing runs.
    expect((await run(b, command(0), began)).detail).toBe(rb.detail);
    expect(runs([a.gateId, b.gateId])).toHaveLength(2);
  });

  // Failed before: the two commands ran at the same time.
  it('rollbacks of two candidates of one deployment run one after the other, both delivered', async () => {
    const d = await newDeployment();
    const [a, b] = [gate(d, 'v2'), gate(d, 'v3')];
    const [ra, rb] = await Promise.all([run(a, command(2)), run(b, command(2))]);
    expect([ra.status, rb.status]).toEqual(['delivered', 'delivered']);
    const ran = runs([a.gateId, b.gateId]);
    expect(ran.map((r) => r.what)).toEqual(['start', 'end', 'start', 'end']);
    expect(ran[0]?.gate).toBe(ran[1]?.gate);
    expect(ran[2]?.ns).toBeGreaterThan(ran[1]?.ns ?? 0n);
  });

  // Pins: only a gate that watched the same deployment of the candidate is spared; after a
  // rollback the candidate may have been deployed again, and a gate begun since rolls it back.
  it('a gate begun after the same rollback was delivered delivers it again', async () => {
    const d = await newDeployment();
    const a = gate(d, 'v2');
    expect((await run(a, command(0))).status).toBe('delivered');
    await new Promise((r) => setTimeout(r, 20));
    const b = gate(d, 'v2');
    const rb = await run(b, command(0));
    expect(rb.status).toBe('delivered');
    expect(rb.detail).not.toContain('not sent again');
    expect(runs([b.gateId]).map((r) => r.what)).toEqual(['start', 'end']);
  });

  // Pins: a dry-run of another gate did nothing, so it spares no one; dry-runs never wait.
  it('a dry-run spares no real rollback, and a dry-run never waits for a delivery', async () => {
    const d = await newDeployment();
    const began = new Date().toISOString();
    const [a, b, c] = [gate(d, 'v2'), gate(d, 'v2'), gate(d, 'v2')];
    expect((await run(a, { type: 'dry-run' }, began)).status).toBe('dry-run');
    const slow = run(b, command(3), began);
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    expect((await run(c, { type: 'dry-run' }, began)).status).toBe('dry-run');
    expect(Date.now() - t0).toBeLessThan(2000);
    const rb = await slow;
    expect(rb.detail).not.toContain('not sent again');
    expect(runs([b.gateId]).map((r) => r.what)).toEqual(['start', 'end']);
  });

  // Pins: a failed delivery gives its turn up at once, and its failure spares no one.
  it('a failed delivery leaves the deployment to the next gate at once', async () => {
    const d = await newDeployment();
    const began = new Date().toISOString();
    const [a, b] = [gate(d, 'v2'), gate(d, 'v2')];
    await expect(run(a, command(0, 3), began)).rejects.toThrow(/exit|code 3/i);
    const t0 = Date.now();
    const rb = await run(b, command(0), began);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(rb.detail).not.toContain('not sent again');
  });

  // Pins: a worker that died while delivering holds the deployment only until its turn lapses.
  it("a dead delivery's turn lapses; a live one's holds", async () => {
    const d = await newDeployment();
    const [a, b] = [gate(d, 'v2'), gate(d, 'v3')];
    for (const g of [a, b]) await claimRollback(stores.db, { ...g, deployer: 'command' });
    expect(await takeRollbackTurn(stores.db, a.idempotencyKey, 1500)).toEqual({ kind: 'go', attempt: 1 });
    expect(await takeRollbackTurn(stores.db, b.idempotencyKey, 1500)).toEqual({ kind: 'wait', gateId: a.gateId });
    await new Promise((r) => setTimeout(r, 1700));
    expect(await takeRollbackTurn(stores.db, b.idempotencyKey, 1500)).toEqual({ kind: 'go', attempt: 1 });
    // Asked again by a retry of the dead worker's attempt: it now waits for b.
    expect(await takeRollbackTurn(stores.db, a.idempotencyKey, 1500)).toEqual({ kind: 'wait', gateId: b.gateId });
  });
});
