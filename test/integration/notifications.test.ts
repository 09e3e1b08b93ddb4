/**
 * Gate notifications on the time-skipping server with real ClickHouse and PostgreSQL: a REJECT
 * reaches a Slack-compatible receiver and a signed JSON webhook, once per target (retries carry
 * one idempotency key); an unreachable target neither holds the gate nor changes its decision;
 * an override is notified too; an APPROVE is not.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setNotifyTargets, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { GateInput, GateProgress, GateResult } from '../../domain/gate/types.js';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { recordHistory } from '../helpers/histories.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { startTimeSkippingStack, uniqueId, type TestStack } from '../helpers/env.js';

const SECRET = 'whsec_notify_0123456789abcdef';

describe('gate notifications', () => {
  let stack: TestStack;
  let sim: Simulator;
  let slack: WebhookReceiver;
  let hook: WebhookReceiver;
  const deployment = uniqueId('notify');

  const serve = async (version: string, share: number, count: number) => {
    sim.setModel(version, share);
    sim.generate(count);
    await stack.client.workflow.execute('collectionCycle', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: `collect/${deployment}/${randomUUID().slice(0, 8)}`,
      args: [{ deployment }],
    });
  };
  const gateId = (candidate: string) => `gate/${deployment}/${candidate}/${randomUUID().slice(0, 6)}`;
  const startGate = (id: string, input: Partial<GateInput> & { candidateVersion: string }) =>
    stack.client.workflow.start('deployGate', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: id,
      args: [{ deployment, baselineVersion: 'v1', checkEvery: '15m', maxWait: '2h', ...input }],
    });
  /** The notification child of a gate, once it has finished. */
  const notifications = (id: string) =>
    stack.client.workflow.getHandle(`${id}/notify`).result() as Promise<Array<{ kind: string; status: string }>>;

  beforeAll(async () => {
    stack = await startTimeSkippingStack({ OPTIINFRA_WEBHOOK_SECRET: SECRET });
    let slackCalls = 0;
    slack = await startWebhookReceiver({ respond: () => (++slackCalls === 1 ? 503 : 200) });
    hook = await startWebhookReceiver({ secret: SECRET });
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.05, seed: 11 });
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
    await setNotifyTargets(stack.stores.db, deployment, [
      { kind: 'slack', url: slack.url },
      { kind: 'webhook', url: hook.url },
      // Nothing listens here: this target fails, the others are not held up.
      { kind: 'webhook', url: 'http://127.0.0.1:9/unreachable' },
    ]);
    await serve('v1', 0.05, 1000);
  });
  afterAll(async () => {
    await sim?.close();
    await slack?.close();
    await hook?.close();
    await stack?.stop();
  });

  it('tells every target about a REJECT once, signed, without holding the gate', async () => {
    await serve('v2', 0.6, 200);
    const id = gateId('v2');
    const r = (await (await startGate(id, { candidateVersion: 'v2' })).result()) as GateResult;
    expect(r.decision).toBe('REJECT');
    const out = await notifications(id);
    expect(out.map((o) => o.status)).toEqual(['delivered', 'delivered', 'failed']);

    // Slack-compatible: {text}, retried after a 503 with the same key, delivered once.
    expect(slack.calls).toHaveLength(2);
    expect(slack.distinctKeys()).toBe(1);
    expect(String(slack.calls[1]!.body?.text)).toMatch(new RegExp(`${deployment} v2 \\(baseline v1\\) rejected`));
    // Generic JSON: the facts, signed like the rollback webhook.
    expect(hook.calls).toHaveLength(1);
    expect(hook.calls[0]!.signatureValid).toBe(true);
    expect(hook.calls[0]!.body).toMatchObject({ event: 'gate', gateId: id, decision: 'REJECT', events: ['reject'] });
    const rows = await stack.stores.db.query<{ target_kind: string; status: string; detail: string }>(
      'SELECT target_kind, status, detail FROM notifications WHERE gate_id = $1 ORDER BY idempotency_key',
      [id],
    );
    expect(rows.rows.map(({ target_kind, status }) => ({ target_kind, status }))).toEqual([
      { target_kind: 'slack', status: 'delivered' },
      { target_kind: 'webhook', status: 'delivered' },
      // Failed before: the row of a notification whose retries ran out stayed 'pending'.
      { target_kind: 'webhook', status: 'failed' },
    ]);
    // Why, with the last attempt's reason; the same text in the child's result.
    expect(rows.rows[2]?.detail).toMatch(/^given up: .*; last attempt: .*127\.0\.0\.1:9/);
    expect((out[2] as { detail?: string }).detail).toBe(rows.rows[2]?.detail);
    await recordHistory(stack.client, `${id}/notify`, 'gate-notifications');
  });

  it('tells them about an override, and says nothing about an APPROVE', async () => {
    const before = hook.calls.length;
    await serve('v3', 0, 1000);
    const approved = (await (await startGate(gateId('v3'), { candidateVersion: 'v3' })).result()) as GateResult;
    expect(approved.decision).toBe('APPROVE');
    expect(hook.calls.length).toBe(before);

    // Reachable targets only from here on: an override is told like a decision.
    await setNotifyTargets(stack.stores.db, deployment, [{ kind: 'webhook', url: hook.url }]);
    const id = gateId('v4');
    await serve('v4', 0.05, 10);
    const h = await startGate(id, { candidateVersion: 'v4', onInconclusive: 'hold' });
    for (let i = 0; i < 100; i++) {
      const p = await h.query<GateProgress>('progress').catch(() => undefined);
      if (p?.phase === 'waiting') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    await h.executeUpdate('override', { args: [{ action: 'abort', reason: 'bad canary', by: 'oncall' }] });
    const r = (await h.result()) as GateResult;
    expect(r.effectiveDecision).toBe('ABORTED');
    await notifications(id);
    const last = hook.calls.at(-1)!;
    expect(last.body).toMatchObject({ gateId: id, events: ['override'], override: { action: 'abort', by: 'oncall' } });
  });
});
