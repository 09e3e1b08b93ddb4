import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsSourceError, queryRange, safeUrl, scrapeMetrics } from '../../activities/infra/prometheus.js';
import { bucketDeltas, bucketsOf, histogramQuantile, parsePrometheusText } from '../../domain/infra/prometheus-text.js';
import { createExporterModel } from '../../stack/sim/exporter-model.js';
import { startExporterSim, type ExporterSim } from '../../stack/sim/exporter-sim.js';
import { prometheusConfigYaml } from '../../stack/prometheus.js';
import { StackError } from '../../stack/errors.js';

/** A port nothing listens on (taken from the OS, then released). */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const VLLM_DCGM_SAMPLE = [
  '# HELP vllm:num_requests_running Number of requests currently running on GPU.',
  '# TYPE vllm:num_requests_running gauge',
  'vllm:num_requests_running{model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.0',
  '# HELP vllm:e2e_request_latency_seconds Histogram of end to end request latency in seconds.',
  '# TYPE vllm:e2e_request_latency_seconds histogram',
  'vllm:e2e_request_latency_seconds_bucket{le="0.3",model_name="m"} 10.0',
  'vllm:e2e_request_latency_seconds_bucket{le="0.5",model_name="m"} 25.0',
  'vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 30.0',
  'vllm:e2e_request_latency_seconds_count{model_name="m"} 30.0',
  'vllm:e2e_request_latency_seconds_sum{model_name="m"} 9.75',
  '# a plain comment, ignored',
  '',
  '# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %) with a \\\\ backslash and\\nnewline.',
  '# TYPE DCGM_FI_DEV_GPU_UTIL gauge',
  'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-abc",device="nvidia0",modelName="NVIDIA A100-SXM4-80GB",Hostname="h1"} 62',
  'DCGM_FI_DEV_GPU_UTIL { gpu = "1" , UUID="GPU-def", } 63 1700000000000',
  '# TYPE escapes gauge',
  'escapes{path="C:\\\\dir\\\\file",quote="say \\"hi\\"",nl="a\\nb"} 1',
  'nan_gauge NaN',
  'pos_inf +Inf',
  'neg_inf -Inf',
  'sci 1.5e-3',
  'neg_ts 2 -1000',
  'crlf_line{a="b"} 3\r',
  '\ttabbed\t4',
  '# TYPE rpc summary',
  'rpc{quantile="0.99"} 0.5',
  'rpc_sum 10',
  'rpc_count 20',
].join('\n');

describe('parsePrometheusText', () => {
  it('parses a realistic vLLM / DCGM exposition with escapes, histograms, NaN/Inf and timestamps', () => {
    const r = parsePrometheusText(VLLM_DCGM_SAMPLE);
    expect(r.errors).toEqual([]);
    const by = (m: string) => r.samples.filter((s) => s.metric === m);
    expect(by('vllm:num_requests_running')).toEqual([
      { metric: 'vllm:num_requests_running', labels: { model_name: 'meta-llama/Llama-3.1-8B-Instruct' }, value: 7 },
    ]);
    expect(by('vllm:e2e_request_latency_seconds_bucket').map((s) => [s.labels.le, s.value])).toEqual([
      ['0.3', 10],
      ['0.5', 25],
      ['+Inf', 30],
    ]);
    expect(by('vllm:e2e_request_latency_seconds_sum')[0]!.value).toBe(9.75);
    expect(r.types['vllm:e2e_request_latency_seconds']).toBe('histogram');
    expect(r.help.DCGM_FI_DEV_GPU_UTIL).toBe('GPU utilization (in %) with a \\ backslash and\nnewline.');
    const gpu = by('DCGM_FI_DEV_GPU_UTIL');
    expect(gpu[0]!.labels).toEqual({ gpu: '0', UUID: 'GPU-abc', device: 'nvidia0', modelName: 'NVIDIA A100-SXM4-80GB', Hostname: 'h1' });
    expect(gpu[0]!.timestampMs).toBeUndefined();
    expect(gpu[1]).toEqual({
      metric: 'DCGM_FI_DEV_GPU_UTIL',
      labels: { gpu: '1', UUID: 'GPU-def' },
      value: 63,
      timestampMs: 1700000000000,
    });
    expect(by('escapes')[0]!.labels).toEqual({ path: 'C:\\dir\\file', quote: 'say "hi"', nl: 'a\nb' });
    expect(by('nan_gauge')[0]!.value).toBeNaN();
    expect(by('pos_inf')[0]!.value).toBe(Infinity);
    expect(by('neg_inf')[0]!.value).toBe(-Infinity);
    expect(by('sci')[0]!.value).toBe(0.0015);
    expect(by('neg_ts')[0]!.timestampMs).toBe(-1000);
    expect(by('crlf_line')[0]!.value).toBe(3);
    expect(by('tabbed')[0]!.value).toBe(4);
    expect(by('rpc')[0]!.labels.quantile).toBe('0.99');
    expect(r.sampleLines).toBe(r.samples.length);
  });

  it('reports bad lines with their line numbers and keeps the good ones', () => {
    const text = [
      'good 1', // 1
      'bad{a="b" 2', // 2: no closing brace
      'bad2{a="unterminated} 3', // 3
      'bad3{a="x\\q"} 4', // 4: invalid escape
      'bad4 not-a-number', // 5
      'bad5', // 6: missing value
      'bad6 1 2 3', // 7: trailing junk
      '9starts_with_digit 1', // 8
      'bad7{a="1",a="2"} 1', // 9: duplicate label
      '# TYPE good counter', // 10: after its samples
      '# TYPE weird flavour', // 11
      '# TYPE h histogram', // 12
      'h_bucket{le="abc"} 1', // 13
      'bad8 1 1.5', // 14: fractional timestamp
      'good2{x="y"} 2', // 15
    ].join('\n');
    const r = parsePrometheusText(text);
    expect(r.samples.map((s) => s.metric)).toEqual(['good', 'good2']);
    expect(r.errors.map((e) => e.line)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14]);
    for (const e of r.errors) expect(e.reason.length).toBeGreaterThan(5);
    expect(r.errors.find((e) => e.line === 4)!.reason).toMatch(/escape/);
    expect(r.errors.find((e) => e.line === 10)!.reason).toMatch(/after its samples/);
  });

  it('an HTML page is not Prometheus text: zero samples and errors', () => {
    const html = '<!DOCTYPE html>\n<html><head><title>Login</title></head>\n<body>\n<p>Please sign in</p>\n</body></html>\n';
    const r = parsePrometheusText(html);
    expect(r.samples).toEqual([]);
    expect(r.errors.length).toBeGreaterThanOrEqual(4);
    expect(r.errors[0]!.line).toBe(1);
  });

  it('an empty body has neither samples nor errors', () => {
    expect(parsePrometheusText('')).toMatchObject({ samples: [], errors: [] });
  });
});

describe('histogramQuantile (PromQL semantics)', () => {
  const b = [
    { le: 1, count: 10 },
    { le: 2, count: 20 },
    { le: 4, count: 40 },
    { le: Infinity, count: 40 },
  ];
  it('interpolates linearly inside the bucket that holds the rank', () => {
    expect(histogramQuantile(0.25, b)).toBeCloseTo(1, 12); // rank 10 -> end of the first bucket
    expect(histogramQuantile(0.5, b)).toBeCloseTo(2, 12);
    expect(histogramQuantile(0.75, b)).toBeCloseTo(3, 12); // 2 + 2 * (10/20)
    expect(histogramQuantile(0.1, b)).toBeCloseTo(0.4, 12); // from 0 in the first bucket
    expect(histogramQuantile(0, b)).toBe(0);
    expect(histogramQuantile(1, b)).toBeCloseTo(4, 12);
  });
  it('returns the highest finite bound when the rank falls in +Inf', () => {
    expect(
      histogramQuantile(0.9, [
        { le: 1, count: 10 },
        { le: Infinity, count: 20 },
      ]),
    ).toBe(1);
    expect(
      histogramQuantile(0.99, [
        { le: 0.5, count: 1 },
        { le: 1, count: 2 },
        { le: Infinity, count: 100 },
      ]),
    ).toBe(1);
  });
  it('edge cases: NaN without +Inf, no observations or too few buckets; ±Inf outside [0,1]', () => {
    expect(
      histogramQuantile(0.5, [
        { le: 1, count: 3 },
        { le: 2, count: 4 },
      ]),
    ).toBeNaN();
    expect(
      histogramQuantile(0.5, [
        { le: 1, count: 0 },
        { le: Infinity, count: 0 },
      ]),
    ).toBeNaN();
    expect(histogramQuantile(0.5, [{ le: Infinity, count: 3 }])).toBeNaN();
    expect(histogramQuantile(0.5, [])).toBeNaN();
    expect(histogramQuantile(-0.1, b)).toBe(-Infinity);
    expect(histogramQuantile(1.1, b)).toBe(Infinity);
    expect(histogramQuantile(NaN, b)).toBeNaN();
  });
  it('sorts, merges equal bounds and forces monotonic counts', () => {
    const unsorted = [b[3]!, b[1]!, b[0]!, b[2]!];
    expect(histogramQuantile(0.75, unsorted)).toBeCloseTo(3, 12);
    const split = [
      { le: 1, count: 5 },
      { le: 1, count: 5 },
      { le: 2, count: 20 },
      { le: 4, count: 40 },
      { le: Infinity, count: 40 },
    ];
    expect(histogramQuantile(0.75, split)).toBeCloseTo(3, 12);
    // A bucket lower than the one before (scrape race) is raised to it.
    const bumpy = [
      { le: 1, count: 10 },
      { le: 2, count: 8 },
      { le: 4, count: 40 },
      { le: Infinity, count: 40 },
    ];
    expect(histogramQuantile(0.5, bumpy)).toBeCloseTo(2 + 2 * (10 / 30), 12);
  });
  it('a non-positive first bound is returned as is', () => {
    expect(
      histogramQuantile(0.1, [
        { le: -1, count: 5 },
        { le: 1, count: 10 },
        { le: Infinity, count: 10 },
      ]),
    ).toBe(-1);
  });
});

describe('exporter simulator', () => {
  const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

  function run(seed: number, scenario: 'kv-cache-regression' | 'memory-bound' | 'healthy' = 'kv-cache-regression') {
    let t = T0;
    const m = createExporterModel({ scenario, seed, clock: () => t });
    const texts: string[] = [];
    for (const dt of [0, 1000, 15_000, 60_000]) {
      t += dt;
      texts.push(m.render());
    }
    return texts;
  }

  it('is deterministic for a seed and differs between seeds', () => {
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });

  it('serves valid text format with the vLLM, DCGM and node exporter series', () => {
    let t = T0;
    const m = createExporterModel({ scenario: 'healthy', seed: 1, clock: () => t });
    t += 10_000;
    const r = parsePrometheusText(m.render());
    expect(r.errors).toEqual([]);
    const names = new Set(r.samples.map((s) => s.metric));
    for (const n of [
      'vllm:e2e_request_latency_seconds_bucket',
      'vllm:e2e_request_latency_seconds_sum',
      'vllm:e2e_request_latency_seconds_count',
      'vllm:time_to_first_token_seconds_bucket',
      'vllm:time_per_output_token_seconds_bucket',
      'vllm:num_requests_running',
      'vllm:num_requests_waiting',
      'vllm:gpu_cache_usage_perc',
      'vllm:num_preemptions_total',
      'vllm:prompt_tokens_total',
      'vllm:generation_tokens_total',
      'vllm:cache_config_info',
      'DCGM_FI_DEV_GPU_UTIL',
      'DCGM_FI_DEV_FB_USED',
      'DCGM_FI_DEV_FB_FREE',
      'DCGM_FI_PROF_SM_ACTIVE',
      'DCGM_FI_PROF_DRAM_ACTIVE',
      'DCGM_FI_DEV_POWER_USAGE',
      'node_cpu_seconds_total',
      'node_memory_MemTotal_bytes',
      'node_memory_MemAvailable_bytes',
    ]) {
      expect(names, n).toContain(n);
    }
    expect(r.types['vllm:e2e_request_latency_seconds']).toBe('histogram');
    expect(r.types.node_cpu_seconds_total).toBe('counter');
    const info = r.samples.find((s) => s.metric === 'vllm:cache_config_info')!;
    expect(info.value).toBe(1);
    expect(Object.keys(info.labels)).toEqual(
      expect.arrayContaining(['block_size', 'num_gpu_blocks', 'gpu_memory_utilization', 'max_model_len']),
    );
    const dcgm = r.samples.find((s) => s.metric === 'DCGM_FI_DEV_GPU_UTIL')!;
    expect(Object.keys(dcgm.labels)).toEqual(expect.arrayContaining(['gpu', 'UUID', 'Hostname', 'modelName']));
    expect(r.samples.filter((s) => s.metric === 'node_cpu_seconds_total' && s.labels.mode === 'idle')).toHaveLength(8);
    for (const s of r.samples.filter((x) => x.metric.startsWith('vllm:') && x.metric !== 'vllm:cache_config_info')) {
      expect(s.labels.model_name).toBe('meta-llama/Llama-3.1-8B-Instruct');
    }
  });

  it('counters and histograms grow with the clock, never shrink, and are consistent', () => {
    let t = T0;
    const m = createExporterModel({ scenario: 'kv-cache-regression', seed: 3, clock: () => t });
    m.setPhase('after');
    const snap = () => parsePrometheusText(m.render()).samples;
    const counterNames = [
      'vllm:prompt_tokens_total',
      'vllm:generation_tokens_total',
      'vllm:num_preemptions_total',
      'vllm:e2e_request_latency_seconds_count',
    ];
    const val = (ss: ReturnType<typeof snap>, n: string) => ss.filter((s) => s.metric === n).reduce((a, s) => a + s.value, 0);
    let prev = snap();
    expect(snap()).toEqual(prev); // the same instant renders the same values
    for (const dt of [1000, 500, 500, 30_000]) {
      t += dt;
      const cur = snap();
      for (const n of counterNames) expect(val(cur, n), n).toBeGreaterThanOrEqual(val(prev, n));
      const cpuPrev = prev.filter((s) => s.metric === 'node_cpu_seconds_total');
      for (const [i, s] of cur.filter((x) => x.metric === 'node_cpu_seconds_total').entries())
        expect(s.value).toBeGreaterThanOrEqual(cpuPrev[i]!.value);
      const buckets = bucketsOf(cur, 'vllm:e2e_request_latency_seconds');
      for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.count).toBeGreaterThanOrEqual(buckets[i - 1]!.count);
      expect(buckets[buckets.length - 1]!.le).toBe(Infinity);
      expect(buckets[buckets.length - 1]!.count).toBe(val(cur, 'vllm:e2e_request_latency_seconds_count'));
      prev = cur;
    }
    expect(val(prev, 'vllm:prompt_tokens_total')).toBeGreaterThan(0);
    expect(val(prev, 'vllm:num_preemptions_total')).toBeGreaterThan(0);
    // A clock that goes back changes nothing.
    t -= 10_000;
    expect(val(snap(), 'vllm:prompt_tokens_total')).toBe(val(prev, 'vllm:prompt_tokens_total'));
  });

  function window(scenario: 'kv-cache-regression' | 'memory-bound' | 'healthy', phase: string, seed = 11) {
    let t = T0;
    const m = createExporterModel({ scenario, seed, clock: () => t });
    m.setPhase(phase);
    t += 2000;
    const a = parsePrometheusText(m.render()).samples;
    t += 120_000;
    const b = parsePrometheusText(m.render()).samples;
    const p = (q: number, h: string) => histogramQuantile(q, bucketDeltas(bucketsOf(a, h), bucketsOf(b, h)));
    const g = (n: string) => b.filter((s) => s.metric === n).map((s) => s.value);
    const mean = (n: string) => g(n).reduce((x, y) => x + y, 0) / g(n).length;
    const diff = (n: string, match: (l: Record<string, string>) => boolean = () => true) =>
      b.filter((s) => s.metric === n && match(s.labels)).reduce((x, s) => x + s.value, 0) -
      a.filter((s) => s.metric === n && match(s.labels)).reduce((x, s) => x + s.value, 0);
    const cpuUtil = 1 - diff('node_cpu_seconds_total', (l) => l.mode === 'idle') / diff('node_cpu_seconds_total');
    const memUtil = 1 - g('node_memory_MemAvailable_bytes')[0]! / g('node_memory_MemTotal_bytes')[0]!;
    const info = b.find((s) => s.metric === 'vllm:cache_config_info')!.labels;
    return { p, g, mean, diff, cpuUtil, memUtil, info };
  }

  it("'kv-cache-regression' before: p95 ≈ 200 ms, KV ≈ 50 %, no preemptions, max_model_len 4096", () => {
    const w = window('kv-cache-regression', 'before');
    expect(w.p(0.95, 'vllm:e2e_request_latency_seconds')).toBeGreaterThan(0.18);
    expect(w.p(0.95, 'vllm:e2e_request_latency_seconds')).toBeLessThan(0.22);
    expect(w.mean('vllm:gpu_cache_usage_perc')).toBeGreaterThan(0.45);
    expect(w.mean('vllm:gpu_cache_usage_perc')).toBeLessThan(0.55);
    expect(w.diff('vllm:num_preemptions_total')).toBe(0);
    expect(w.info.max_model_len).toBe('4096');
    expect(w.info.num_gpu_blocks).toBe('2048');
  });

  it("'kv-cache-regression' after: p95 ≈ 2 s, KV ≈ 98 %, preemptions growing, waiting ≫ running, max_model_len 32768", () => {
    const w = window('kv-cache-regression', 'after');
    expect(w.p(0.95, 'vllm:e2e_request_latency_seconds')).toBeGreaterThan(1.8);
    expect(w.p(0.95, 'vllm:e2e_request_latency_seconds')).toBeLessThan(2.2);
    expect(w.mean('vllm:gpu_cache_usage_perc')).toBeGreaterThan(0.96);
    expect(w.diff('vllm:num_preemptions_total')).toBeGreaterThan(60);
    expect(w.g('vllm:num_requests_waiting')[0]!).toBeGreaterThan(5 * w.g('vllm:num_requests_running')[0]!);
    expect(w.info.max_model_len).toBe('32768');
    expect(w.info.num_gpu_blocks).toBe('2048');
  });

  it("'memory-bound': GPU ≈ 45 %, host memory ≈ 60 %, CPU ≈ 30 %, DRAM active ≫ SM active", () => {
    const w = window('memory-bound', 'steady');
    expect(w.mean('DCGM_FI_DEV_GPU_UTIL')).toBeGreaterThan(40);
    expect(w.mean('DCGM_FI_DEV_GPU_UTIL')).toBeLessThan(50);
    expect(w.memUtil).toBeCloseTo(0.6, 1);
    expect(w.cpuUtil).toBeCloseTo(0.3, 1);
    expect(w.mean('DCGM_FI_PROF_DRAM_ACTIVE')).toBeGreaterThan(2 * w.mean('DCGM_FI_PROF_SM_ACTIVE'));
    const used = w.g('DCGM_FI_DEV_FB_USED');
    const free = w.g('DCGM_FI_DEV_FB_FREE');
    for (const [i, u] of used.entries()) expect(u + free[i]!).toBe(81920);
  });

  it("'healthy': moderate utilisation and latency", () => {
    const w = window('healthy', 'steady');
    expect(w.mean('DCGM_FI_DEV_GPU_UTIL')).toBeGreaterThan(55);
    expect(w.mean('DCGM_FI_DEV_GPU_UTIL')).toBeLessThan(75);
    expect(w.p(0.95, 'vllm:e2e_request_latency_seconds')).toBeLessThan(1);
    expect(w.diff('vllm:num_preemptions_total')).toBe(0);
  });

  it('rejects unknown phases', () => {
    const m = createExporterModel({ scenario: 'kv-cache-regression', seed: 1 });
    expect(() => m.setPhase('later')).toThrow(/before, after/);
  });
});

describe('scrapeMetrics / queryRange against local HTTP servers', () => {
  let sim: ExporterSim;
  let api: http.Server;
  let apiUrl = '';
  let nextAnswer: { status: number; body: string } = { status: 200, body: '{}' };
  let lastUrl = '';

  beforeAll(async () => {
    sim = await startExporterSim({ scenario: 'healthy', seed: 5 });
    api = http.createServer((req, res) => {
      lastUrl = req.url ?? '';
      res.writeHead(nextAnswer.status, { 'content-type': 'application/json' }).end(nextAnswer.body);
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', () => r()));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await sim.close();
    await new Promise<void>((r) => api.close(() => r()));
  });

  it('scrapes the simulator: every sample stamped with the scrape time', async () => {
    const now = new Date('2025-02-03T04:05:06.000Z');
    const samples = await scrapeMetrics(sim.metricsUrl, { now: () => now });
    expect(samples.length).toBeGreaterThan(100);
    expect(new Set(samples.map((s) => s.ts))).toEqual(new Set(['2025-02-03T04:05:06.000Z']));
    expect(samples.some((s) => s.metric === 'DCGM_FI_DEV_GPU_UTIL')).toBe(true);
  });

  it('HTML, HTTP 500, a hang and a refused connection are MetricsSourceErrors with a reason', async () => {
    const reasonOf = async (p: Promise<unknown>) => {
      const e = await p.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(MetricsSourceError);
      return e as MetricsSourceError;
    };
    sim.setFault('html');
    expect((await reasonOf(scrapeMetrics(sim.metricsUrl))).reason).toBe('garbage');
    sim.setFault('http-500');
    const e500 = await reasonOf(scrapeMetrics(sim.metricsUrl));
    expect([e500.reason, e500.status]).toEqual(['http-status', 500]);
    sim.setFault('hang');
    const t0 = Date.now();
    expect((await reasonOf(scrapeMetrics(sim.metricsUrl, { timeoutMs: 300 }))).reason).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(3000);
    sim.setFault('none');
    // The index page is HTML: the classic "forgot /metrics" mistake.
    expect((await reasonOf(scrapeMetrics(sim.url))).reason).toBe('garbage');
    const port = await closedPort();
    const down = await reasonOf(scrapeMetrics(`http://scraper:s3cret@127.0.0.1:${port}/metrics?token=abc`));
    expect(down.reason).toBe('connection-refused');
    expect(down.message).not.toMatch(/s3cret|abc|scraper/);
    expect(down.message).toContain(`127.0.0.1:${port}/metrics`);
  });

  it('mostly garbage (more than half the sample lines bad) is refused, a few bad lines are tolerated', async () => {
    const srv = http.createServer((req, res) => {
      const body = req.url === '/mostly-bad' ? 'a 1\nb{ 2\nc{ 3\nd{ 4\n' : 'a 1\nb 2\nc 3\nd{ 4\n';
      res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    try {
      await expect(scrapeMetrics(`${base}/mostly-bad`)).rejects.toMatchObject({ reason: 'garbage' });
      expect((await scrapeMetrics(`${base}/ok`)).map((s) => s.metric)).toEqual(['a', 'b', 'c']);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it('queryRange validates the answer and maps NaN/Inf values', async () => {
    nextAnswer = {
      status: 200,
      body: JSON.stringify({
        status: 'success',
        data: {
          resultType: 'matrix',
          result: [
            {
              metric: { job: 'x' },
              values: [
                [1700000000, '0.25'],
                [1700000001, 'NaN'],
                [1700000002, '+Inf'],
              ],
            },
          ],
        },
      }),
    };
    const r = await queryRange(apiUrl, 'up{job="x"}', { start: '1700000000', end: '1700000002', stepSeconds: 1 });
    expect(r).toHaveLength(1);
    expect(r[0]!.metric).toEqual({ job: 'x' });
    expect(r[0]!.values[0]).toEqual([1700000000, 0.25]);
    expect(r[0]!.values[1]![1]).toBeNaN();
    expect(r[0]!.values[2]![1]).toBe(Infinity);
    const q = new URL(lastUrl, apiUrl);
    expect(q.pathname).toBe('/api/v1/query_range');
    expect(q.searchParams.get('query')).toBe('up{job="x"}');
    expect(q.searchParams.get('step')).toBe('1');
  });

  it("queryRange: Prometheus' error answer, non-JSON and a wrong shape are MetricsSourceErrors", async () => {
    nextAnswer = { status: 400, body: JSON.stringify({ status: 'error', errorType: 'bad_data', error: '1:5: parse error' }) };
    await expect(queryRange(apiUrl, 'sum(', { start: '1', end: '2', stepSeconds: 1 })).rejects.toMatchObject({
      reason: 'prometheus-error',
      errorType: 'bad_data',
      message: expect.stringContaining('1:5: parse error'),
    });
    nextAnswer = { status: 502, body: '<html>bad gateway</html>' };
    await expect(queryRange(apiUrl, 'up', { start: '1', end: '2', stepSeconds: 1 })).rejects.toMatchObject({
      reason: 'http-status',
      status: 502,
    });
    nextAnswer = { status: 200, body: JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }) };
    await expect(queryRange(apiUrl, 'up', { start: '1', end: '2', stepSeconds: 1 })).rejects.toMatchObject({ reason: 'invalid-response' });
    await expect(
      queryRange(`http://127.0.0.1:${await closedPort()}`, 'up', { start: '1', end: '2', stepSeconds: 1 }),
    ).rejects.toMatchObject({
      reason: 'connection-refused',
    });
  });

  it('safeUrl masks credentials and secret-looking parameters', () => {
    expect(safeUrl('https://u:p@host:9/x?api_key=1&q=up')).toBe('https://host:9/x?api_key=****&q=up');
  });
});

describe('prometheusConfigYaml', () => {
  it('writes one job with the targets and a timeout no longer than the interval', () => {
    const y = prometheusConfigYaml({ scrapeTargets: ['127.0.0.1:9400', 'gpu-node-1:8000'], scrapeIntervalSec: 1 });
    expect(y).toContain('scrape_interval: 1s');
    expect(y).toContain('scrape_timeout: 1s');
    expect(y).toContain("- '127.0.0.1:9400'");
    expect(y).toContain("- 'gpu-node-1:8000'");
  });
  it('rejects targets that are not host:port (no YAML injection)', () => {
    expect(() => prometheusConfigYaml({ scrapeTargets: ["x:1'\n  - evil"] })).toThrow(StackError);
    expect(() => prometheusConfigYaml({ scrapeTargets: ['http://x:1/metrics'] })).toThrow(StackError);
    expect(() => prometheusConfigYaml({ scrapeTargets: ['x:70000'] })).toThrow(StackError);
    expect(() => prometheusConfigYaml({ scrapeTargets: [] })).toThrow(StackError);
  });
});
