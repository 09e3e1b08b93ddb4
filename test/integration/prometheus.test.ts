/**
 * The metrics sources against real servers: the simulated vLLM / DCGM / node exporter scraped
 * every second by a real Prometheus started by the project, queried through its HTTP API, and
 * the direct-scrape path against the same exporter.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startExporterSim, type ExporterSim } from '../../stack/sim/exporter-sim.js';
import { MetricsSourceError, queryRange, scrapeMetrics, type RangeSeries } from '../../activities/infra/prometheus.js';
import { bucketDeltas, bucketsOf, histogramQuantile } from '../../domain/infra/prometheus-text.js';
import { ensurePrometheus } from '../../stack/binaries.js';
import { prometheusVersion, startPrometheus, type PrometheusServer } from '../../stack/prometheus.js';
import { freePort } from '../../stack/ports.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowSec = () => Date.now() / 1000;

let sim: ExporterSim;
let prom: PrometheusServer;
let home: string;
const timings: Record<string, number> = {};

/** The last value of the only series of a query over the last few seconds. */
async function latest(promql: string): Promise<RangeSeries[]> {
  const end = nowSec();
  return queryRange(prom.url, promql, { start: String(end - 2), end: String(end), stepSeconds: 1 });
}

function lastValue(s: RangeSeries | undefined): number {
  expect(s, 'series present').toBeDefined();
  const v = s!.values[s!.values.length - 1];
  expect(v, 'series has values').toBeDefined();
  return v![1];
}

/** Wait until Prometheus holds at least `n` scrapes of the exporter in the last `windowSec`. */
async function waitForScrapes(n: number, windowSec: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await latest(`count_over_time(up{job="optiinfra"}[${windowSec}s])`).catch(() => []);
    const got = r.length ? lastValue(r[0]) : 0;
    if (got >= n) return;
    if (Date.now() > deadline) throw new Error(`only ${got} scrapes within ${timeoutMs} ms (log ${prom.logFile})`);
    await sleep(250);
  }
}

const P95_E2E = 'histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket[%w])))';

beforeAll(async () => {
  home = join(inject('testEnv').home, `prometheus-${randomUUID().slice(0, 8)}`);
  mkdirSync(home, { recursive: true });
  const t0 = Date.now();
  sim = await startExporterSim({ scenario: 'kv-cache-regression', seed: 42 });
  const binary = await ensurePrometheus();
  timings.ensurePrometheusMs = Date.now() - t0;
  console.log(`[prometheus test] ${await prometheusVersion(binary)} at ${binary}`);
  const t1 = Date.now();
  prom = await startPrometheus({ home, port: await freePort(), scrapeTargets: [`127.0.0.1:${sim.port}`], scrapeIntervalSec: 1 });
  timings.readyMs = Date.now() - t1;
  await waitForScrapes(1, 60, 20_000);
  timings.firstScrapeMs = Date.now() - t1;
});

afterAll(async () => {
  const t = Date.now();
  await prom?.stop();
  timings.stopMs = Date.now() - t;
  await sim?.close();
  if (home) rmSync(home, { recursive: true, force: true });
  console.log(`[prometheus test] timings ${JSON.stringify(timings)}`);
});

describe('a real Prometheus scraping the simulated exporters', () => {
  it("phase 'before': the vLLM and DCGM series carry the scenario's values", async () => {
    // Absolute rates need a window the data covers (PromQL extrapolates only a little past the
    // first sample): seven scrapes in the last eight seconds, then rate over [5s].
    await waitForScrapes(7, 8, 20_000);
    const p95 = await latest(P95_E2E.replace('%w', '30s'));
    expect(p95).toHaveLength(1);
    const v = lastValue(p95[0]);
    expect(v).toBeGreaterThan(0.17);
    expect(v).toBeLessThan(0.23);

    const kv = lastValue((await latest('vllm:gpu_cache_usage_perc'))[0]);
    expect(kv).toBeGreaterThan(0.44);
    expect(kv).toBeLessThan(0.56);
    const preempt = await latest('rate(vllm:num_preemptions_total[30s])');
    expect(lastValue(preempt[0])).toBe(0);

    const info = await latest('vllm:cache_config_info');
    expect(info).toHaveLength(1);
    expect(info[0]!.metric).toMatchObject({
      max_model_len: '4096',
      num_gpu_blocks: '2048',
      block_size: '16',
      gpu_memory_utilization: '0.9',
    });
    expect(info[0]!.metric.model_name).toBe('meta-llama/Llama-3.1-8B-Instruct');

    const gpu = await latest('DCGM_FI_DEV_GPU_UTIL');
    expect(gpu.map((s) => s.metric.gpu).sort()).toEqual(['0', '1']);
    for (const s of gpu) {
      expect(s.metric).toMatchObject({ Hostname: 'gpu-node-1', modelName: 'NVIDIA A100-SXM4-80GB', job: 'optiinfra' });
      expect(s.metric.UUID).toMatch(/^GPU-[0-9a-f-]{36}$/);
      const u = lastValue(s);
      expect(u).toBeGreaterThanOrEqual(55);
      expect(u).toBeLessThanOrEqual(70);
    }
    const cpu = lastValue((await latest('1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5s]))'))[0]);
    expect(cpu).toBeGreaterThan(0.25);
    expect(cpu).toBeLessThan(0.45);
    const tokens = lastValue((await latest('sum(rate(vllm:prompt_tokens_total[5s]))'))[0]);
    expect(tokens).toBeGreaterThan(20 * 400 * 0.8);
    expect(tokens).toBeLessThan(20 * 400 * 1.2);
  });

  it('the direct scrape returns the same metric names Prometheus stored', async () => {
    const direct = await scrapeMetrics(sim.metricsUrl);
    const directNames = new Set(direct.map((s) => s.metric));
    const stored = await latest('count by (__name__) ({job="optiinfra"})');
    const storedNames = new Set(stored.map((s) => s.metric.__name__!).filter((n) => n !== 'up' && !n.startsWith('scrape_')));
    expect([...storedNames].sort()).toEqual([...directNames].sort());
    for (const n of [
      'vllm:e2e_request_latency_seconds_bucket',
      'vllm:num_requests_waiting',
      'DCGM_FI_PROF_DRAM_ACTIVE',
      'node_memory_MemAvailable_bytes',
    ]) {
      expect(directNames).toContain(n);
    }
  });

  it("Prometheus' own errors arrive as MetricsSourceError with its errorType", async () => {
    const e = await latest('sum(').then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(MetricsSourceError);
    expect(e).toMatchObject({ reason: 'prometheus-error', errorType: 'bad_data' });
  });

  it("phase 'after': p95 ≈ 2 s, KV cache ≈ 98 %, preemptions, waiting ≫ running, max_model_len 32768 — via PromQL and via two direct scrapes", async () => {
    const t0 = Date.now();
    sim.setPhase('after');
    await sleep(1100); // the first whole second of the new phase
    const first = await scrapeMetrics(sim.metricsUrl);
    await sleep(11_000);
    await waitForScrapes(10, 11, 5000);
    const second = await scrapeMetrics(sim.metricsUrl);
    timings.afterPhaseMs = Date.now() - t0;

    const p95 = lastValue((await latest(P95_E2E.replace('%w', '10s')))[0]);
    expect(p95).toBeGreaterThan(1.6);
    expect(p95).toBeLessThan(2.4);
    const kv = lastValue((await latest('vllm:gpu_cache_usage_perc'))[0]);
    expect(kv).toBeGreaterThan(0.95);
    const preempt = lastValue((await latest('rate(vllm:num_preemptions_total[10s])'))[0]);
    expect(preempt).toBeGreaterThan(0.5);
    const waiting = lastValue((await latest('vllm:num_requests_waiting'))[0]);
    const running = lastValue((await latest('vllm:num_requests_running'))[0]);
    expect(waiting).toBeGreaterThan(5 * Math.max(1, running));
    const info = await latest('vllm:cache_config_info');
    expect(info.map((s) => s.metric.max_model_len)).toEqual(['32768']);
    expect(info[0]!.metric.num_gpu_blocks).toBe('2048');

    // The agents' direct-scrape path: p95 from bucket deltas between two scrapes.
    const h = 'vllm:e2e_request_latency_seconds';
    const direct = histogramQuantile(0.95, bucketDeltas(bucketsOf(first, h), bucketsOf(second, h)));
    expect(direct).toBeGreaterThan(1.6);
    expect(direct).toBeLessThan(2.4);
  });
});

describe('broken /metrics endpoints', () => {
  it('an endpoint that is down is a MetricsSourceError (connection refused)', async () => {
    const url = `http://127.0.0.1:${await freePort()}/metrics`;
    await expect(scrapeMetrics(url, { timeoutMs: 2000 })).rejects.toMatchObject({
      name: 'MetricsSourceError',
      reason: 'connection-refused',
      url,
    });
  });

  it('an endpoint that answers HTML is a MetricsSourceError (garbage)', async () => {
    const srv = http.createServer((_req, res) => {
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end('<!DOCTYPE html>\n<html>\n<head><title>Sign in</title></head>\n<body><form>user</form></body>\n</html>\n');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/metrics`;
      const e = await scrapeMetrics(url).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(MetricsSourceError);
      expect(e).toMatchObject({ reason: 'garbage', url });
      expect((e as Error).message).toMatch(/not Prometheus text format.*content-type text\/html/);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
