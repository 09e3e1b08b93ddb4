/**
 * The LLM judge path end to end: real groq-sdk -> local Groq-compatible server, inside real
 * workflows on the real stack. Faults are injected one request at a time.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getCursor, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import { COMBINED_PROMPT_VERSION } from '../../domain/judge/prompts.js';
import { startGroqStub, stubLlmEnv, type GroqStub } from '../helpers/groq-stub.js';
import { startTestStack, testConfig, uniqueId, type TestStack } from '../helpers/env.js';

const KEY = 'gsk_test_SECRET_9f8e7d6c5b4a';

describe('Groq judge path through the real groq-sdk', () => {
  let stub: GroqStub;
  let stack: TestStack;
  const dir = mkdtempSync(join(tmpdir(), 'optiinfra-groq-'));

  beforeAll(async () => {
    stub = await startGroqStub();
    stack = await startTestStack(testConfig(stubLlmEnv(stub, KEY, { LLM_MAX_RETRIES: '1' })));
  });
  afterAll(async () => {
    await stack?.stop();
    await stub?.close();
  });

  /** A deployment with one interaction in a JSONL log; returns its id. */
  async function deploymentWithOne(): Promise<string> {
    const deployment = uniqueId('groq');
    const file = join(dir, `${deployment}.jsonl`);
    writeFileSync(
      file,
      JSON.stringify({
        id: `${deployment}-1`,
        deployment,
        model_version: 'v1',
        timestamp: '2026-11-25T10:00:00Z',
        prompt: 'What is the capital of France?',
        response: 'Paris is the capital of France.',
        context: 'Paris is the capital and largest city of France.',
      }) + '\n',
    );
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'jsonl', path: file }, sample_rate: 1 });
    return deployment;
  }

  const cycle = (deployment: string) =>
    stack.client.workflow.execute('collectionCycle', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: `collect/${deployment}/test`,
      args: [{ deployment, checks: ['quality'] }],
    }) as Promise<CycleResult>;

  const requestsFor = (deployment: string) =>
    stub.requests.filter((r) => JSON.stringify(r.body).includes(`${deployment}`) || r.fault !== undefined);

  it('waits out a 429 for its retry-after, then scores', async () => {
    const deployment = await deploymentWithOne();
    stub.clear();
    stub.enqueue({ kind: 'status', status: 429, retryAfter: 3 });
    const r = await cycle(deployment);
    expect(r).toMatchObject({ scored: 1, failed: 0, judge: 'groq:openai/gpt-oss-20b' });
    expect(stub.requests).toHaveLength(2);
    const gap = stub.requests[1]!.receivedAt - stub.requests[0]!.receivedAt;
    expect(gap).toBeGreaterThanOrEqual(2900);
    expect(r.promptTokens).toBeGreaterThan(0);
    const rows = await stack.stores.ch.query<{ prompt_version: string; attempts: number; prompt_tokens: number }>(
      `SELECT prompt_version, attempts, prompt_tokens FROM ${stack.config.clickhouse.database}.scores FINAL WHERE deployment = '${deployment}'`,
    );
    // Combined mode (the default): one call judges every check; only the asked-for check is stored.
    expect(rows).toEqual([{ prompt_version: COMBINED_PROMPT_VERSION, attempts: 2, prompt_tokens: expect.any(Number) }]);
    expect(requestsFor(deployment).length).toBeGreaterThan(0);
  });

  it('retries a 500 and scores', async () => {
    const deployment = await deploymentWithOne();
    stub.clear();
    stub.enqueue({ kind: 'status', status: 500 });
    const r = await cycle(deployment);
    expect(r).toMatchObject({ scored: 1, failed: 0 });
    expect(stub.requests).toHaveLength(2);
  });

  it('retries malformed JSON, then records a failed check while the cycle completes', async () => {
    const deployment = await deploymentWithOne();
    stub.clear();
    stub.enqueue({ kind: 'malformed' }, { kind: 'malformed' });
    const r = await cycle(deployment);
    // LLM_MAX_RETRIES=1: two calls, then the check is recorded as failed with the reason.
    expect(stub.requests).toHaveLength(2);
    expect(r).toMatchObject({ scored: 0, failed: 1 });
    expect(r.failureSamples[0]!.reason).toMatch(/JSON/i);
    const rows = await stack.stores.ch.query<{ status: string; reason: string }>(
      `SELECT status, reason FROM ${stack.config.clickhouse.database}.scores FINAL WHERE deployment = '${deployment}'`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.status).toBe('failed');
    expect(rows[0]!.reason).toMatch(/LlmRetriesExhausted/);
    expect(await getCursor(stack.stores.db, deployment)).toBe(r.cursor);
  });

  it('fails fast on 401 without retries, names the cause, and keeps the cursor', async () => {
    const deployment = await deploymentWithOne();
    stub.clear();
    stub.enqueue({ kind: 'status', status: 401 });
    const err = await cycle(deployment).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const text =
      JSON.stringify(err, Object.getOwnPropertyNames(err)) + String((err as Error).cause) + String(((err as Error).cause as Error)?.cause);
    expect(text).toMatch(/GROQ_API_KEY/);
    expect(text).not.toContain(KEY);
    expect(stub.requests).toHaveLength(1);
    expect(await getCursor(stack.stores.db, deployment)).toBeNull();
  });

  it('never puts the API key into workflow histories or stored rows, while sending it to the server', async () => {
    expect(stub.requests.length).toBeGreaterThan(0);
    expect(String(stub.requests[0]!.headers.authorization)).toBe(`Bearer ${KEY}`);
    let histories = 0;
    for await (const wf of stack.client.workflow.list({ query: `TaskQueue = '${stack.config.temporal.taskQueue}'` })) {
      const h = await stack.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      expect(JSON.stringify(h)).not.toContain(KEY);
      histories++;
    }
    expect(histories).toBeGreaterThanOrEqual(4); // 4 cycles (batches are activities of the cycle)
    const scores = await stack.stores.ch.query<Record<string, unknown>>(
      `SELECT * FROM ${stack.config.clickhouse.database}.scores WHERE deployment LIKE 'groq-%'`,
    );
    expect(scores.length).toBeGreaterThan(0);
    expect(JSON.stringify(scores)).not.toContain(KEY);
    const runs = await stack.stores.db.query(`SELECT * FROM collection_runs WHERE deployment LIKE 'groq-%'`);
    expect(JSON.stringify(runs.rows)).not.toContain(KEY);
  });
});
