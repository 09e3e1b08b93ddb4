/**
 * The deploy gate end to end on the time-skipping test server (deadlines of hours pass
 * instantly) with the real ClickHouse and PostgreSQL, the offline judge and the simulator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { GateInput, GateProgress, GateResult } from '../../domain/gate/types.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';
import { startTimeSkippingStack, uniqueId, type TestStack, serveAndCollect } from '../helpers/env.js';
import { recordHistory } from '../helpers/histories.js';

const SECRET = 'whsec_test_0123456789abcdef';

describe('deployGate: the seed scenario and the other paths', () => {
  let stack: TestStack;
  let sim: Simulator;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  const deployment = uniqueId('gate');
  let failAfterDeliver = 0;

  const serve = (version: string, degradedShare: number, count: number) =>
    serveAndCollect(stack, sim, deployment, version, degradedShare, count);

  const gate = (input: Partial<GateInput> & { candidateVersion: string }, id = `gate/${deployment}/${input.candidateVersion}`) =>
    stack.client.workflow.start('deployGate', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: id,
      args: [{ deployment, baselineVersion: 'v1', checkEvery: '15m', maxWait: '2h', ...input }],
    });

  beforeAll(async () => {
    stack = await startTimeSkippingStack(
      { OPTIINFRA_WEBHOOK_SECRET: SECRET },
      {
        afterRollbackDelivered: () => {
          if (failAfterDeliver > 0) {
            failAfterDeliver--;
            throw new Error('injected failure after the rollback was delivered');
          }
        },
      },
    );
    receiver = await startWebhookReceiver({ secret: SECRET });
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.05, seed: 3 });
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
    // The good model builds the baseline.
    const r = await serve('v1', 0.05, 400);
    expect(r.scored).toBe(1200);
  });
  afterAll(async () => {
    await receiver?.close();
    await sim?.close();
    await stack?.stop();
  });

  it('REJECTs the degraded model, explains why, rolls back exactly once and records it', async () => {
    await serve('v2-q4', 0.35, 200);
    const h = await gate({ candidateVersion: 'v2-q4', deployer: { type: 'webhook', url: receiver.url } });
    const r = (await h.result()) as GateResult;
    expect(r.decision).toBe('REJECT');
    expect(r.effectiveDecision).toBe('REJECT');
    const q = r.evidence!.look.metrics.find((m) => m.metric === 'quality')!;
    expect(q.baseline - q.candidate).toBeGreaterThan(0.05);
    expect(r.explanation!.summary).toMatch(/^REJECT: /);
    expect(r.explanation!.summary).toMatch(/quality dropped 1\d(\.\d)? points \([89]\d(\.\d)? % → 7\d(\.\d)? %, threshold 5/);
    expect(r.explanation!.generatedBy).toBe('template');
    expect(r.rollback.status).toBe('delivered');
    expect(receiver.calls).toHaveLength(1);
    expect(receiver.calls[0]!.signatureValid).toBe(true);
    expect(receiver.calls[0]!.body).toMatchObject({ event: 'rollback', deployment, from_version: 'v2-q4', to_version: 'v1' });

    const row = await stack.stores.db.query(
      'SELECT decision, effective_decision, reason, evidence, explanation, rollback FROM gate_decisions WHERE gate_id = $1',
      [`gate/${deployment}/v2-q4`],
    );
    expect(row.rows[0]).toMatchObject({ decision: 'REJECT', effective_decision: 'REJECT', rollback: { status: 'delivered' } });
    expect(row.rows[0].evidence.look.outcome).toBe('REJECT');
    expect(row.rows[0].explanation.summary).toBe(r.explanation!.summary);
    const baseline = await stack.stores.db.query('SELECT samples, window_spec FROM baselines WHERE deployment = $1', [deployment]);
    expect(baseline.rows).toEqual([{ samples: 400, window_spec: { lastN: 1000 } }]);
    await recordHistory(stack.client, `gate/${deployment}/v2-q4`, 'gate-reject');
    await recordHistory(stack.client, `gate/${deployment}/v2-q4/baseline`, 'compute-baseline');
    await recordHistory(stack.client, `gate/${deployment}/v2-q4/explain`, 'explain-decision');
  });

  it('delivers the rollback once even when the activity fails after delivering', async () => {
    failAfterDeliver = 1;
    const before = receiver.calls.length;
    const h = await gate({ candidateVersion: 'v2-q4', deployer: { type: 'webhook', url: receiver.url } }, `gate/${deployment}/v2-q4/retry`);
    const r = (await h.result()) as GateResult;
    expect(failAfterDeliver).toBe(0); // the fault fired
    expect(r.rollback.status).toBe('delivered');
    expect(receiver.calls.length - before).toBe(1);
    const rb = await stack.stores.db.query('SELECT status, attempts FROM rollbacks WHERE gate_id = $1', [`gate/${deployment}/v2-q4/retry`]);
    expect(rb.rows).toEqual([{ status: 'delivered', attempts: 1 }]);
  });

  it('APPROVEs a benign change without rolling back', async () => {
    await serve('v3', 0, 400);
    const before = receiver.calls.length;
    const r = (await (await gate({ candidateVersion: 'v3', deployer: { type: 'webhook', url: receiver.url } })).result()) as GateResult;
    expect(r.decision).toBe('APPROVE');
    expect(r.rollback.status).toBe('not-needed');
    expect(receiver.calls.length).toBe(before);
    expect(r.explanation!.summary).toMatch(/^APPROVE: /);
    await recordHistory(stack.client, `gate/${deployment}/v3`, 'gate-approve');
  });

  it('gives INCONCLUSIVE at the deadline with too few samples, and fails safe by default', async () => {
    await serve('v4', 0.05, 10);
    const h = await gate({ candidateVersion: 'v4' });
    const r = (await h.result()) as GateResult;
    expect(r.decision).toBe('INCONCLUSIVE');
    expect(r.effectiveDecision).toBe('REJECT');
    expect(r.rollback.status).toBe('dry-run');
    expect(r.reason).toMatch(/deadline reached after 9 looks/);
    expect(r.reason).toMatch(/onInconclusive=reject/);
    expect(r.evidence!.looks).toBe(9); // 2 h / 15 min + the first look
    await recordHistory(stack.client, `gate/${deployment}/v4`, 'gate-inconclusive');
  });

  it('lets a human override win and records who and why', async () => {
    await serve('v5', 0.05, 10);
    const h = await gate({ candidateVersion: 'v5', onInconclusive: 'hold' });
    let p: GateProgress | undefined;
    for (let i = 0; i < 100 && p?.phase !== 'waiting'; i++) {
      p = await h.query<GateProgress>('progress').catch(() => undefined);
      if (p?.phase !== 'waiting') await new Promise((res) => setTimeout(res, 100));
    }
    expect(p?.phase).toBe('waiting');
    const bad = await h.executeUpdate('override', { args: [{ action: 'approve', reason: '', by: 'alice' }] }).catch((e: Error) => e);
    expect(String((bad as Error).cause)).toMatch(/an override needs a reason/);
    await h.executeUpdate('override', { args: [{ action: 'approve', reason: 'manual canary looked fine', by: 'alice' }] });
    const r = (await h.result()) as GateResult;
    expect(r.decision).toBe('APPROVE');
    expect(r.override).toMatchObject({ action: 'approve', by: 'alice', reason: 'manual canary looked fine' });
    expect(r.reason).toMatch(/human override by alice: manual canary looked fine/);
    const row = await stack.stores.db.query('SELECT override FROM gate_decisions WHERE gate_id = $1', [`gate/${deployment}/v5`]);
    expect(row.rows[0].override).toMatchObject({ action: 'approve', by: 'alice' });
    await recordHistory(stack.client, `gate/${deployment}/v5`, 'gate-override');
  });

  it('rejects invalid input without doing anything', async () => {
    const h = await gate({ candidateVersion: 'v1' }, `gate/${deployment}/invalid`);
    await expect(h.result()).rejects.toThrow(/Workflow execution failed/);
    const err = await h.result().catch((e: { cause?: { message?: string; type?: string } }) => e.cause);
    expect(err?.message).toMatch(/candidate version must differ from the baseline version/);
    const row = await stack.stores.db.query('SELECT 1 FROM gate_decisions WHERE gate_id = $1', [`gate/${deployment}/invalid`]);
    expect(row.rows).toHaveLength(0);
  });

  it('compares two versions side by side with the same statistics', async () => {
    const r = (await stack.client.workflow.execute('abCompare', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: `compare/${deployment}/v1-v2-q4`,
      args: [{ deployment, versionA: 'v1', versionB: 'v2-q4' }],
    })) as { outcome: string; reason: string };
    expect(r.outcome).toBe('REJECT');
    const row = await stack.stores.db.query('SELECT outcome FROM comparisons WHERE id = $1', [`compare/${deployment}/v1-v2-q4`]);
    expect(row.rows).toEqual([{ outcome: 'REJECT' }]);
    await recordHistory(stack.client, `compare/${deployment}/v1-v2-q4`, 'ab-compare');
  });
});
