/**
 * The gate never acts on evidence it does not have: a baseline too small to use is not stored
 * and ends the gate INCONCLUSIVE without a rollback, and is recomputed once the version has been
 * scored; a guard the judge cannot measure (hallucination without a knowledge passage, offline
 * judge) blocks an approval unless the operator allows it; bounds on durations are enforced by
 * the workflow itself. Time-skipping server, real ClickHouse and PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import type { GateInput, GateResult } from '../../domain/gate/types.js';
import { loadQaRows } from '../../stack/sim/collector-simulator.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';
import { startTimeSkippingStack, uniqueId, type TestStack } from '../helpers/env.js';

const SECRET = 'whsec_evidence_0123456789abcdef';

describe('deployGate acts only on evidence it has', () => {
  let stack: TestStack;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  const dir = mkdtempSync(join(tmpdir(), 'optiinfra-evidence-'));
  const qa = loadQaRows();

  /** A deployment reading a JSONL log; `append` adds HaluEval answers of a version (wrong ones at `wrongShare`). */
  async function deploymentWithLog(withContext: boolean) {
    const deployment = uniqueId('evidence');
    const file = join(dir, `${deployment}.jsonl`);
    writeFileSync(file, '');
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'jsonl', path: file }, sample_rate: 1 });
    let n = 0;
    const lines: string[] = [];
    return {
      deployment,
      append(version: string, count: number, wrongShare: number) {
        for (let i = 0; i < count; i++, n++) {
          const row = qa[n % qa.length]!;
          const wrong = (i % 100) / 100 < wrongShare;
          lines.push(
            JSON.stringify({
              id: `${deployment}-${n}`,
              deployment,
              model_version: version,
              timestamp: new Date().toISOString(),
              prompt: row.question,
              response: wrong ? row.hallucinated_answer : row.right_answer,
              ...(withContext ? { context: row.knowledge } : {}),
            }),
          );
        }
        writeFileSync(file, `${lines.join('\n')}\n`);
      },
      cycle: () =>
        stack.client.workflow.execute('collectionCycle', {
          taskQueue: stack.config.temporal.taskQueue,
          workflowId: `collect/${deployment}/${randomUUID().slice(0, 8)}`,
          args: [{ deployment }],
        }) as Promise<CycleResult>,
    };
  }

  const gate = (deployment: string, input: Partial<GateInput> & { candidateVersion: string; baselineVersion: string }) =>
    stack.client.workflow.execute('deployGate', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: `gate/${deployment}/${input.candidateVersion}/${randomUUID().slice(0, 6)}`,
      args: [{ deployment, checkEvery: '15m', maxWait: '2h', deployer: { type: 'webhook', url: receiver.url }, ...input }],
    }) as Promise<GateResult>;

  beforeAll(async () => {
    stack = await startTimeSkippingStack({ OPTIINFRA_WEBHOOK_SECRET: SECRET });
    receiver = await startWebhookReceiver({ secret: SECRET });
  });
  afterAll(async () => {
    await receiver?.close();
    await stack?.stop();
  });

  it('does not store an empty baseline, does not roll back on it, and recomputes it once the version is scored', async () => {
    const d = await deploymentWithLog(true);
    d.append('v2', 200, 0.6);
    await d.cycle();
    const calls = receiver.calls.length;

    const first = await gate(d.deployment, { baselineVersion: 'v0', candidateVersion: 'v2' });
    expect(first.decision).toBe('INCONCLUSIVE');
    expect(first.effectiveDecision).toBe('INCONCLUSIVE');
    expect(first.rollback.status).toBe('not-needed');
    expect(first.reason).toMatch(/no usable baseline/);
    expect(receiver.calls.length).toBe(calls);
    const stored = await stack.stores.db.query('SELECT samples FROM baselines WHERE deployment = $1', [d.deployment]);
    expect(stored.rows).toEqual([]);

    d.append('v0', 200, 0.05);
    await d.cycle();
    const second = await gate(d.deployment, { baselineVersion: 'v0', candidateVersion: 'v2' });
    expect(second.decision).toBe('REJECT');
    expect(second.evidence?.baseline.quality.n).toBe(200);
    expect(second.rollback.status).toBe('delivered');
    const kept = await stack.stores.db.query('SELECT samples FROM baselines WHERE deployment = $1', [d.deployment]);
    expect(kept.rows).toEqual([{ samples: 200 }]);
  });

  it('recomputes a stored baseline that has fewer samples than the window asks for', async () => {
    const d = await deploymentWithLog(true);
    d.append('v1', 60, 0.05);
    await d.cycle();
    d.append('v3', 200, 0.05);
    await d.cycle();
    const a = await gate(d.deployment, { baselineVersion: 'v1', candidateVersion: 'v3', baselineLastN: 500 });
    expect(a.evidence?.baseline.quality.n).toBe(60);
    d.append('v1', 140, 0.05);
    await d.cycle();
    const b = await gate(d.deployment, { baselineVersion: 'v1', candidateVersion: 'v3', baselineLastN: 500 });
    expect(b.evidence?.baseline.quality.n).toBe(200);
  });

  it('reports a hallucination guard the offline judge cannot measure and approves only when allowed', async () => {
    const d = await deploymentWithLog(false);
    d.append('v1', 300, 0);
    d.append('v2', 300, 0);
    const r = await d.cycle();
    expect(r.abstained).toBe(600);
    // A wide quality tolerance: this test is about the hallucination guard.
    const tolerances = { qualityDrop: 0.25 };
    const blocked = await gate(d.deployment, { baselineVersion: 'v1', candidateVersion: 'v2', onInconclusive: 'approve', tolerances });
    expect(blocked.decision).toBe('INCONCLUSIVE');
    expect(blocked.reason).toMatch(/hallucination rate not measured by this judge/);
    expect(blocked.explanation?.summary).toMatch(/hallucination rate not measured by this judge/);
    const allowed = await gate(d.deployment, {
      baselineVersion: 'v1',
      candidateVersion: 'v2',
      allowUnmeasured: ['hallucination'],
      tolerances,
    });
    expect(allowed.decision, allowed.reason).toBe('APPROVE');
    expect(allowed.reason).toMatch(/allowed by the operator/);
  });

  it('refuses durations beyond its bounds in the workflow input, before doing anything', async () => {
    const d = await deploymentWithLog(true);
    for (const bad of [{ maxWait: '99999999999999999999d' }, { maxWait: '31d' }, { checkEvery: '0s' }, { holdFor: '1y' }]) {
      const err = await gate(d.deployment, { baselineVersion: 'v1', candidateVersion: 'v2', ...bad }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect(String((err as WorkflowFailedError).cause?.message)).toMatch(/maxWait|checkEvery|holdFor/);
    }
  });
});
