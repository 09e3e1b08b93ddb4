/**
 * The worker's Prometheus metrics, scraped by a real Prometheus and queried back through its
 * HTTP API. Two workers are scraped:
 * - in this process (the offline judge): the endpoint createWorkers starts for
 *   OPTIINFRA_METRICS_PORT; collection cycles (scored and abstained checks), a gate that REJECTs
 *   and rolls back through a webhook, the cycle lag;
 * - a spawned `optiinfra worker` process with the LLM judge on the local Groq-compatible server:
 *   its endpoint also serves the Temporal SDK's metrics (the SDK runtime is installed once per
 *   process); LLM calls, tokens and a 429 are compared with the cycle's result and with what the
 *   server counted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../common/config.js';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import type { GateResult } from '../../domain/gate/types.js';
import { ensurePrometheus } from '../../stack/binaries.js';
import { repoRoot } from '../../stack/paths.js';
import { freePort } from '../../stack/ports.js';
import { startPrometheus, type PrometheusServer } from '../../stack/prometheus.js';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { startGroqStub, type GroqStub } from '../helpers/groq-stub.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { cliEnv, startTestStack, testConfig, testEnv, uniqueId, type TestStack } from '../helpers/env.js';

const SECRET = 'whsec_metrics_0123456789abcdef';
const KEY = 'gsk_test_METRICS_0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe("the worker's metrics through a real Prometheus", () => {
  let stack: TestStack;
  let prom: PrometheusServer;
  let sim: Simulator;
  let receiver: WebhookReceiver;
  let stub: GroqStub;
  let worker: ChildProcess | undefined;
  let workerLog = '';
  let home: string;
  const dir = mkdtempSync(join(tmpdir(), 'optiinfra-metrics-'));
  const llmConfig = testConfig();
  let inProcessTarget: string;
  let spawnedTarget: string;

  /** An instant PromQL query; the samples of its vector. */
  async function query(promql: string): Promise<Sample[]> {
    const r = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await r.json()) as { status: string; data?: { resultType: string; result: Sample[] }; error?: string };
    if (body.status !== 'success') throw new Error(`query ${promql}: ${body.error}`);
    return body.data!.result;
  }
  const value = async (promql: string): Promise<number> => {
    const r = await query(promql);
    expect(r, `${promql} has one series: ${JSON.stringify(r)}`).toHaveLength(1);
    return Number(r[0]!.value[1]);
  };
  /** By the value of one label. */
  const byLabel = async (promql: string, label: string): Promise<Record<string, number>> =>
    Object.fromEntries((await query(promql)).map((s) => [s.metric[label] ?? '', Number(s.value[1])]));

  /** Wait until Prometheus holds a scrape of `target` that started after `t` (ms). */
  async function scrapedAfter(target: string, t: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await query(`timestamp(up{instance="${target}"})`).catch(() => []);
      if (r.length && Number(r[0]!.value[1]) * 1000 > t + 1000) {
        expect(await value(`up{instance="${target}"}`)).toBe(1);
        return;
      }
      if (Date.now() > deadline) throw new Error(`no scrape of ${target} after ${new Date(t).toISOString()} (log ${prom.logFile})`);
      await sleep(250);
    }
  }

  function startWorker(port: number): ChildProcess {
    const env = cliEnv(llmConfig, {
      LLM_ENABLED: 'true',
      GROQ_API_KEY: KEY,
      GROQ_BASE_URL: stub.baseURL,
      LLM_MAX_RETRIES: '1',
      LLM_TIMEOUT: '10',
      OPTIINFRA_METRICS_PORT: `127.0.0.1:${port}`,
      OPTIINFRA_WORKFLOW_BUNDLE: testEnv().bundlePath,
      OPTIINFRA_HOME: join(home, 'worker-home'),
    });
    const p = spawn(process.execPath, ['--import', 'tsx', join(repoRoot(), 'client', 'cli', 'index.ts'), 'worker'], {
      cwd: repoRoot(),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    p.stdout?.on('data', (c: Buffer) => (workerLog += c.toString('utf8')));
    p.stderr?.on('data', (c: Buffer) => (workerLog += c.toString('utf8')));
    return p;
  }

  beforeAll(async () => {
    home = join(testEnv().home, `metrics-${randomUUID().slice(0, 8)}`);
    mkdirSync(home, { recursive: true });
    stack = await startTestStack(testConfig({ OPTIINFRA_WEBHOOK_SECRET: SECRET, OPTIINFRA_METRICS_PORT: '127.0.0.1:0' }));
    expect(stack.workers.metrics, 'createWorkers started the endpoint').toBeDefined();
    inProcessTarget = `127.0.0.1:${stack.workers.metrics!.port}`;

    stub = await startGroqStub();
    const port = await freePort();
    spawnedTarget = `127.0.0.1:${port}`;
    worker = startWorker(port);

    await ensurePrometheus();
    prom = await startPrometheus({ home, port: await freePort(), scrapeTargets: [inProcessTarget, spawnedTarget], scrapeIntervalSec: 1 });
    receiver = await startWebhookReceiver({ secret: SECRET });
  }, 180_000);

  afterAll(async () => {
    if (worker && worker.exitCode === null && worker.signalCode === null) {
      const exited = new Promise((r) => worker!.once('exit', r));
      worker.kill('SIGKILL');
      await exited;
    }
    await prom?.stop();
    await receiver?.close();
    await sim?.close();
    await stub?.close();
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cycle = (s: { client: TestStack['client']; taskQueue: string }, deployment: string) =>
    s.client.workflow.execute('collectionCycle', {
      taskQueue: s.taskQueue,
      workflowId: `collect/${deployment}/${randomUUID().slice(0, 8)}`,
      args: [{ deployment, batchSize: 100, maxConcurrentBatches: 4 }],
    }) as Promise<CycleResult>;

  it('checks by outcome, gate decisions, rollbacks and the cycle lag, from the in-process worker', async () => {
    const local = { client: stack.client, taskQueue: stack.config.temporal.taskQueue };
    const deployment = uniqueId('metrics');
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.05, seed: 11 });
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
    sim.generate(150);
    const v1 = await cycle(local, deployment);
    sim.setModel('v2', 0.6);
    sim.generate(100);
    const v2 = await cycle(local, deployment);

    // Interactions without a knowledge passage: the offline judge abstains on hallucination.
    const bare = uniqueId('metrics-bare');
    const file = join(dir, `${bare}.jsonl`);
    writeFileSync(
      file,
      Array.from({ length: 6 }, (_, i) =>
        JSON.stringify({
          id: `${bare}-${i}`,
          deployment: bare,
          model_version: 'v1',
          timestamp: new Date(Date.now() - (10 - i) * 60_000).toISOString(),
          prompt: `How do I reset my password? (${i})`,
          response: 'Open the settings page, choose Security, then Reset password and follow the e-mail link.',
        }),
      ).join('\n') + '\n',
    );
    await upsertDeployment(stack.stores.db, { id: bare, source: { type: 'jsonl', path: file }, sample_rate: 1 });
    const b = await cycle(local, bare);
    expect(b).toMatchObject({ scored: 12, abstained: 6, failed: 0 });

    const gate = (await stack.client.workflow.execute('deployGate', {
      taskQueue: local.taskQueue,
      workflowId: `gate/${deployment}/v2`,
      args: [
        { deployment, baselineVersion: 'v1', candidateVersion: 'v2', checkEvery: '1s', deployer: { type: 'webhook', url: receiver.url } },
      ],
    })) as GateResult;
    expect(gate).toMatchObject({ decision: 'REJECT', effectiveDecision: 'REJECT', rollback: { status: 'delivered' } });
    const done = Date.now();
    await scrapedAfter(inProcessTarget, done);
    const inst = `instance="${inProcessTarget}"`;

    // Checks by outcome equal what the cycles reported, and what ClickHouse holds per check.
    const outcomes = await byLabel(`sum by (outcome) (optiinfra_checks_total{${inst}, deployment="${deployment}"})`, 'outcome');
    expect(outcomes).toEqual({ scored: v1.scored + v2.scored, ...(v1.failed + v2.failed ? { failed: v1.failed + v2.failed } : {}) });
    expect(v1.scored + v2.scored).toBe(750);
    const perCheck = await byLabel(
      `sum by (check) (optiinfra_checks_total{${inst}, deployment="${deployment}", outcome="scored"})`,
      'check',
    );
    expect(perCheck).toEqual({ quality: 250, hallucination: 250, toxicity: 250 });
    const bareChecks = await query(`optiinfra_checks_total{${inst}, deployment="${bare}"}`);
    const bareBy = Object.fromEntries(bareChecks.map((s) => [`${s.metric.check}/${s.metric.outcome}`, Number(s.value[1])]));
    expect(bareBy).toEqual({ 'quality/scored': 6, 'toxicity/scored': 6, 'hallucination/abstained': 6 });
    expect(bareChecks.every((s) => s.metric.judge === 'offline')).toBe(true);
    // The offline judge makes no LLM calls.
    expect(await query(`optiinfra_judge_llm_calls_total{deployment="${deployment}"}`)).toEqual([]);

    // The gate: one REJECT recorded, one rollback delivered through the webhook.
    const decisions = await query(`optiinfra_gate_decisions_total{${inst}, deployment="${deployment}"}`);
    expect(decisions.map((s) => [s.metric.decision, s.metric.effective_decision, Number(s.value[1])])).toEqual([['REJECT', 'REJECT', 1]]);
    const rolled = await query(`optiinfra_rollbacks_total{${inst}, deployment="${deployment}"}`);
    expect(rolled.map((s) => [s.metric.result, s.metric.deployer, Number(s.value[1])])).toEqual([['delivered', 'webhook', 1]]);
    expect(receiver.distinctKeys()).toBe(1);

    // Cycle lag: now minus the newest scored interaction, as ClickHouse has it.
    const newest = await stack.stores.ch.query<{ t: string }>(
      `SELECT max(toUnixTimestamp(interaction_ts)) AS t FROM ${stack.config.clickhouse.database}.scores WHERE deployment = '${bare}' AND status = 'ok'`,
    );
    // The lag is read from ClickHouse at most every 15 s: the new deployment shows within that.
    let lagAt: Sample[] = [];
    for (let i = 0; i < 120 && !lagAt.length; i++) {
      lagAt = await query(`optiinfra_cycle_lag_seconds{${inst}, deployment="${bare}"}`);
      if (!lagAt.length) await sleep(250);
    }
    expect(lagAt).toHaveLength(1);
    const expected = Number(lagAt[0]!.value[0]) - Number(newest[0]!.t);
    expect(Math.abs(Number(lagAt[0]!.value[1]) - expected)).toBeLessThan(20);
    expect(Number(lagAt[0]!.value[1])).toBeGreaterThan(5 * 60 - 20);

    // Process health of the worker.
    expect(await value(`optiinfra_process_resident_memory_bytes{${inst}}`)).toBeGreaterThan(10e6);
    console.log(
      `[metrics test] in-process: checks ${JSON.stringify(outcomes)} per check ${JSON.stringify(perCheck)} bare ${JSON.stringify(bareBy)}; ` +
        `gate ${JSON.stringify(decisions.map((s) => s.metric))}; rollbacks ${JSON.stringify(rolled.map((s) => s.metric))}; lag ${lagAt[0]!.value[1]} s (expected ${expected.toFixed(1)})`,
    );
  }, 300_000);

  it('LLM calls, tokens, 429s and the budget headroom, and the Temporal SDK metrics, from a spawned worker', async () => {
    const remote = { client: stack.client, taskQueue: llmConfig.temporal.taskQueue };
    const deployment = uniqueId('metrics-llm');
    const file = join(dir, `${deployment}.jsonl`);
    writeFileSync(
      file,
      Array.from({ length: 12 }, (_, i) =>
        JSON.stringify({
          id: `${deployment}-${i}`,
          deployment,
          model_version: 'v1',
          timestamp: new Date(Date.now() - (20 - i) * 60_000).toISOString(),
          prompt: `What is the capital of France? (${i})`,
          response: 'Paris is the capital of France.',
          context: 'Paris is the capital and largest city of France.',
        }),
      ).join('\n') + '\n',
    );
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'jsonl', path: file }, sample_rate: 1 });
    stub.clear();
    stub.enqueue({ kind: 'status', status: 429, retryAfter: 1 });
    for (let i = 0; i < 600 && !/metrics on /.test(workerLog); i++) await sleep(100);
    expect(workerLog, workerLog).toMatch(/metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/);
    const r = await cycle(remote, deployment);
    expect(r).toMatchObject({ scored: 36, failed: 0, judge: 'groq:openai/gpt-oss-20b' });
    const stats = stub.stats();
    expect(stats.requests).toBe(13); // 12 interactions in combined mode, one of them after a 429
    expect(r.llmCalls).toBe(13);
    await scrapedAfter(spawnedTarget, Date.now());
    const inst = `instance="${spawnedTarget}"`;
    const model = 'openai/gpt-oss-20b';

    // The judge's figures per deployment equal the cycle's result.
    expect(await value(`optiinfra_judge_llm_calls_total{${inst}, deployment="${deployment}"}`)).toBe(r.llmCalls);
    const judgeTokens = await byLabel(`optiinfra_judge_tokens_total{${inst}, deployment="${deployment}"}`, 'kind');
    expect(judgeTokens.input).toBe(r.promptTokens);
    expect(judgeTokens.output).toBe(r.completionTokens);
    expect(judgeTokens.cached ?? 0).toBe(r.cachedTokens ?? 0);
    expect(judgeTokens.reasoning ?? 0).toBe(r.reasoningTokens ?? 0);
    expect(r.reasoningTokens).toBeGreaterThan(0);
    const checks = await byLabel(`sum by (outcome) (optiinfra_checks_total{${inst}, deployment="${deployment}"})`, 'outcome');
    expect(checks).toEqual({ scored: 36 });

    // The client's figures equal what the server counted (this worker made no other LLM call).
    const requests = await byLabel(`optiinfra_llm_requests_total{${inst}, model="${model}"}`, 'outcome');
    expect(requests).toEqual({ ok: 12, LlmRateLimited: 1 });
    expect(await value(`optiinfra_llm_rate_limited_total{${inst}, model="${model}", status="429"}`)).toBe(1);
    const tokens = await byLabel(`optiinfra_llm_tokens_total{${inst}, model="${model}"}`, 'kind');
    expect(tokens.input).toBe(stats.promptTokens);
    expect(tokens.output).toBe(stats.completionTokens);
    expect(tokens.reasoning).toBe(stats.reasoningTokens);
    expect(tokens.cached ?? 0).toBe(stats.cachedTokens);
    expect(await value(`sum(optiinfra_llm_request_duration_seconds_count{${inst}})`)).toBe(13);

    // Headroom of the shared budget (GROQ_PLAN developer: 1K RPM, 500K RPD, 250K TPM).
    const limits = await byLabel(`optiinfra_llm_budget_limit{${inst}, model="${model}"}`, 'limit');
    const remaining = await byLabel(`optiinfra_llm_budget_remaining{${inst}, model="${model}"}`, 'limit');
    expect(Object.keys(limits).sort()).toEqual(['rpd', 'rpm', 'tpm']);
    expect(limits.rpm).toBe(1000);
    for (const k of Object.keys(limits)) {
      expect(remaining[k]).toBeLessThanOrEqual(limits[k]!);
      expect(remaining[k]).toBeGreaterThan(0);
    }
    expect(await query(`optiinfra_llm_paused_seconds{${inst}}`)).toHaveLength(1);

    // The Temporal SDK's metrics, merged into the same endpoint.
    expect(await value(`optiinfra_temporal_sdk_metrics_up{${inst}}`)).toBe(1);
    const sdkNames = (await query(`count by (__name__) ({${inst}, __name__=~"temporal_.+"})`)).map((s) => s.metric.__name__!);
    expect(sdkNames).toEqual(
      expect.arrayContaining(['temporal_worker_task_slots_available', 'temporal_activity_execution_latency_seconds_count']),
    );
    const activities = await value(
      `sum(temporal_activity_execution_latency_seconds_count{${inst}, task_queue="${llmConfig.temporal.llmTaskQueue}"})`,
    );
    expect(activities).toBeGreaterThanOrEqual(1);
    console.log(
      `[metrics test] spawned worker: cycle llmCalls ${r.llmCalls}, tokens in/cached/reasoning/out ${r.promptTokens}/${r.cachedTokens}/${r.reasoningTokens}/${r.completionTokens}; ` +
        `requests ${JSON.stringify(requests)} tokens ${JSON.stringify(tokens)}; budget limit ${JSON.stringify(limits)} remaining ${JSON.stringify(remaining)}; ` +
        `SDK metrics ${sdkNames.length} names, LLM-queue activities ${activities}`,
    );
  }, 300_000);
});

describe('OPTIINFRA_METRICS_PORT', () => {
  it('takes a port or host:port, and refuses anything else naming the variable', () => {
    const load = (v: string | undefined) => loadConfig({ OPTIINFRA_METRICS_PORT: v }).metrics;
    expect(load(undefined)).toBeUndefined();
    expect(load('')).toBeUndefined();
    expect(load('9464')).toEqual({ port: 9464 });
    expect(load('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(load('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    for (const bad of ['70000', 'http://x:1', 'host:', ':9464', '9464; rm -rf /']) {
      expect(() => load(bad), bad).toThrow(/OPTIINFRA_METRICS_PORT must be a port/);
    }
  });
});
