/**
 * The performance agent at production scale and shape, on the real ClickHouse: 300 deployments
 * over a 30-day window (the review's 8,640 s step, 300 points), each with a 30-bucket e2e latency
 * histogram, its queue, KV cache, preemption and token counters and `cache_config_info`; beside
 * them deployments in vLLM's full shape (e2e, TTFT and time-per-output-token histograms of 30
 * buckets, two or three pods) written the hostile ways real stores hold them — a counter reset,
 * `le` written five ways, buckets missing at some steps, NaN and ±Inf, a single sample — and a
 * deployment whose pod is replaced every hour for the month (720 pods, 69,840 series). The
 * analysis runs as an activity in a child process with a 256 MB heap, like a worker's; every
 * statement's rows are counted and the result's size is measured. Planted patterns (one p95
 * regression among 300, a spike, a regression under pod churn) must be found with their exact
 * figures, and quantiles must come out exact through resets and odd labels. Bounds and findings
 * are asserted, never wall-clock times.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SOURCE_SERIES, PAGE_SAMPLES } from '../../activities/agents/metrics.js';
import { createPerformanceActivities } from '../../activities/agents/performance/activities.js';
import { ClickHouseStore } from '../../activities/storage/clickhouse/store.js';
import { MAX_FINDINGS, MAX_FINDINGS_BYTES } from '../../domain/agents/bounded.js';
import { performanceFindings } from '../../domain/agents/performance/findings.js';
import type { PerformanceSeries } from '../../domain/agents/types.js';
import { VLLM_METRICS } from '../../domain/infra/series-builder.js';
import { analyseInChild, type ChildResult, isPage, recordingStore as recordingStoreOn } from '../helpers/agent-analysis.js';
import { testEnv } from '../helpers/env.js';

const DB = `optiinfra_perf_scale_${randomUUID().slice(0, 8)}`;
const DAY = 86_400;
/** 2025-06-01T00:00:00Z, a multiple of the step: the window is 300 whole steps. */
const START = Date.UTC(2025, 5, 1) / 1000;
/** The step `review --days 30` reads a month at (30 days / 300). */
const STEP = 8640;
const STEPS = 300;
const WINDOW = { from: iso(START), to: iso(START + 30 * DAY), stepSeconds: STEP };
const DEPLOYMENTS = 300;
/** The deployment among 300 whose p95 goes from 200 ms to 2,000 ms halfway. */
const SLOW = 'dep-137';
/** Cumulative counts before a request's first sample: the pods ran before the window. */
const OFFSET = 5000;

function iso(s: number) {
  return new Date(s * 1000).toISOString();
}

// Buckets (29 bounds and +Inf, as vLLM's histograms have about 30) and the requests each step adds
// under each bound: 1,000 a step, spread evenly over [0, 0.2 / 0.95] s for a p95 of exactly 200 ms
// (p99 240 ms), ten times slower for 2,000 ms (p99 2,400 ms), five times for 1,000 ms.
const LE = [
  0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 15, 20, 30, 60,
];
const cumulative = (perSecond: number) => [...LE.map((le) => Math.min(1000, Math.floor(le * perSecond + 1e-9))), 1000];
const E2E = cumulative(4750); // p95 200 ms, p99 240 ms
const E2E_SLOW = cumulative(475); // p95 2,000 ms, p99 2,400 ms
const E2E_SPIKE = cumulative(950); // p95 1,000 ms
const TTFT = cumulative(9500); // p95 100 ms
const TPOT = cumulative(47500); // p95 20 ms
/** `le` as Go's strconv writes it (%e: 2e-01, 1e+00) and as fixed decimals (0.200, 1.000). */
const goExp = (v: number) => {
  const [m, e] = v.toExponential().split('e') as [string, string];
  return `${m}e${Number(e) < 0 ? '-' : '+'}${String(Math.abs(Number(e))).padStart(2, '0')}`;
};
const LE_TEXT = [...LE.map(String), '+Inf'];
const LE_GO = [...LE.map(goExp), '+Inf'];
const LE_FIXED = [...LE.map((v) => v.toFixed(3)), '+Inf'];
const sqlArray = (xs: ReadonlyArray<number | string>) => `[${xs.map((x) => (typeof x === 'string' ? `'${x}'` : String(x))).join(', ')}]`;
// The order of VLLM_METRICS: the SQL below picks the others by index.
const HISTOGRAMS = VLLM_METRICS.filter((m) => m.endsWith('_bucket'));
const OTHERS = VLLM_METRICS.filter((m) => !m.endsWith('_bucket'));
/** The deployments in vLLM's full shape written the hostile ways, and their pods. */
const HOSTILE = ['steady', 'reset', 'le-mixed', 'le-inf', 'gaps', 'nan', 'single'] as const;
const PODS = [2, 2, 3, 1, 2, 2, 2];
const CHURN = 'churn';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hostile-performance-scale-'));
let ch: ClickHouseStore;
/** Rows stored for the fleet and the hostile deployments (one a step per series). */
let storedRows = 0;
let finiteRows = 0;

beforeAll(async () => {
  ch = new ClickHouseStore(testEnv().clickhouseUrl, DB);
  await ch.migrate();
  const exec = (query: string) => ch.client.command({ query });
  const at = (k: string) => `toDateTime(${START} + ${k} * ${STEP} + ${STEP / 2})`;
  const config = (model: string, pod: string) =>
    `concat('{"block_size":"16","gpu_memory_utilization":"0.9","model_name":"', ${model}, '","num_gpu_blocks":"8000","pod":"', ${pod}, '"}')`;
  const labels = (model: string, pod: string) => `concat('{"model_name":"', ${model}, '","pod":"', ${pod}, '"}')`;

  // The fleet: dep-000 … dep-299, one pod each, a sample a step for 30 days. Every deployment
  // queues (12 waiting for 4 running), so the findings outnumber what an analysis passes on.
  const dep = `concat('dep-', substring(toString(1000 + d), 2, 3))`;
  const fleetPod = `concat(${dep}, '-0')`;
  const model = `concat('llama-', toString(d % 5))`;
  await exec(`INSERT INTO ${DB}.metric_samples (ts, source, metric, labels, value, ver)
    SELECT ${at('k')}, ${dep}, '${HISTOGRAMS[0]}',
      concat('{"le":"', ${sqlArray(LE_TEXT)}[b + 1], '","model_name":"', ${model}, '","pod":"', ${fleetPod}, '"}'),
      toFloat64(if(d = 137 AND k >= 150, (${OFFSET} + 150) * ${sqlArray(E2E)}[b + 1] + (k - 150) * ${sqlArray(E2E_SLOW)}[b + 1],
                   (${OFFSET} + k) * ${sqlArray(E2E)}[b + 1])), 1
    FROM (SELECT toInt64(number) AS n, intDiv(n, ${30 * STEPS}) AS d, intDiv(n, ${STEPS}) % 30 AS b, n % ${STEPS} AS k
          FROM numbers(${DEPLOYMENTS * 30 * STEPS}))`);
  await exec(`INSERT INTO ${DB}.metric_samples (ts, source, metric, labels, value, ver)
    SELECT ${at('k')}, ${dep}, ${sqlArray(OTHERS)}[m + 1], if(m = 6, ${config(model, fleetPod)}, ${labels(model, fleetPod)}),
      multiIf(m = 0, 4., m = 1, 12., m = 2, 0.5, m = 3, 7., m = 4, toFloat64((${OFFSET} + k) * 200000),
              m = 5, toFloat64((${OFFSET} + k) * 100000), 1.), 1
    FROM (SELECT toInt64(number) AS n, intDiv(n, ${7 * STEPS}) AS d, intDiv(n, ${STEPS}) % 7 AS m, n % ${STEPS} AS k
          FROM numbers(${DEPLOYMENTS * 7 * STEPS}))`);

  // The hostile deployments, v = their index in HOSTILE, pods p < PODS[v]:
  // - reset: pod 0 restarts at step 150 (every counter from zero);
  // - le-mixed: pod 1 writes `le` as Go's %e (2e-01, 1e+00), pod 2 as fixed decimals (0.200, 1.000);
  // - le-inf: one pod writing the e2e +Inf bucket "+inf" and TTFT's "inf" (as Prometheus'
  //   ParseFloat reads them);
  // - gaps: pod 1 lacks the e2e buckets 0.15 – 0.3 s every 7th step;
  // - nan: pod 1's e2e buckets NaN at step 100, its +Inf bucket +Inf at step 200, its running
  //   gauge NaN at step 100 and prompt tokens +Inf at step 120;
  // - single: one sample of each series, at the last step.
  const host = `${sqlArray(HOSTILE)}[v + 1]`;
  const hostPod = `concat(${host}, '-', toString(p))`;
  const hostModel = `'llama-h'`;
  const keep = `p < ${sqlArray(PODS)}[v + 1] AND NOT (v = 6 AND k < ${STEPS - 1})`;
  await exec(`INSERT INTO ${DB}.metric_samples (ts, source, metric, labels, value, ver)
    SELECT ${at('k')}, ${host}, ${sqlArray(HISTOGRAMS)}[h + 1],
      concat('{"le":"', multiIf(v = 2 AND p = 1, ${sqlArray(LE_GO)}[b + 1], v = 2 AND p = 2, ${sqlArray(LE_FIXED)}[b + 1],
                                v = 3 AND h = 0 AND b = 29, '+inf', v = 3 AND h = 1 AND b = 29, 'inf', ${sqlArray(LE_TEXT)}[b + 1]),
             '","model_name":', '"llama-h","pod":"', ${hostPod}, '"}'),
      multiIf(v = 5 AND p = 1 AND h = 0 AND k = 100, nan,
              v = 5 AND p = 1 AND h = 0 AND b = 29 AND k = 200, inf,
              v = 1 AND p = 0, if(k < 150, toFloat64(${OFFSET} + k), toFloat64(k - 149)) * [${sqlArray(E2E)}, ${sqlArray(TTFT)}, ${sqlArray(TPOT)}][h + 1][b + 1],
              toFloat64((${OFFSET} + k) * [${sqlArray(E2E)}, ${sqlArray(TTFT)}, ${sqlArray(TPOT)}][h + 1][b + 1])), 1
    FROM (SELECT toInt64(number) AS n, intDiv(n, ${3 * 90 * STEPS}) AS v, intDiv(n, ${90 * STEPS}) % 3 AS p,
                 intDiv(n, ${30 * STEPS}) % 3 AS h, intDiv(n, ${STEPS}) % 30 AS b, n % ${STEPS} AS k
          FROM numbers(${HOSTILE.length * 3 * 90 * STEPS}))
    WHERE ${keep} AND NOT (v = 4 AND p = 1 AND h = 0 AND b BETWEEN 7 AND 10 AND k % 7 = 3)`);
  await exec(`INSERT INTO ${DB}.metric_samples (ts, source, metric, labels, value, ver)
    SELECT ${at('k')}, ${host}, ${sqlArray(OTHERS)}[m + 1], if(m = 6, ${config(hostModel, hostPod)}, ${labels(hostModel, hostPod)}),
      multiIf(v = 5 AND p = 1 AND k = 100 AND m = 0, nan, v = 5 AND p = 1 AND k = 120 AND m = 4, inf,
              m = 0, 8., m = 1, toFloat64(k % 2), m = 2, 0.5, m = 3, 3.,
              m = 4, if(v = 1 AND p = 0 AND k >= 150, toFloat64(k - 149), toFloat64(${OFFSET} + k)) * 200000,
              m = 5, if(v = 1 AND p = 0 AND k >= 150, toFloat64(k - 149), toFloat64(${OFFSET} + k)) * 100000, 1.), 1
    FROM (SELECT toInt64(number) AS n, intDiv(n, ${3 * 7 * STEPS}) AS v, intDiv(n, ${7 * STEPS}) % 3 AS p,
                 intDiv(n, ${STEPS}) % 7 AS m, n % ${STEPS} AS k FROM numbers(${HOSTILE.length * 3 * 7 * STEPS}))
    WHERE ${keep}`);

  // churn: a pod replaced every hour for 30 days (720 pods named by a hash, as a Deployment's
  // are), sampled every 15 minutes, each pod's counters from zero; p95 1,000 ms on days 4 – 6
  // (a spike), 2,000 ms from day 15 on (a regression), else 200 ms.
  const churnPod = `concat('vllm-', lower(hex(cityHash64(hr))))`;
  const churnAt = `toDateTime(${START} + hr * 3600 + j * 900 + 450)`;
  await exec(`INSERT INTO ${DB}.metric_samples (ts, source, metric, labels, value, ver)
    SELECT ${churnAt}, '${CHURN}', ${sqlArray(HISTOGRAMS)}[h + 1],
      concat('{"le":"', ${sqlArray(LE_TEXT)}[b + 1], '","model_name":"llama-c","pod":"', ${churnPod}, '"}'),
      toFloat64((j + 1) * [multiIf(hr >= 360, ${sqlArray(E2E_SLOW)}, hr >= 96 AND hr < 144, ${sqlArray(E2E_SPIKE)}, ${sqlArray(E2E)}),
                           ${sqlArray(TTFT)}, ${sqlArray(TPOT)}][h + 1][b + 1]), 1
    FROM (SELECT toInt64(number) AS n, intDiv(n, ${4 * 90}) AS hr, intDiv(n, ${4 * 30}) % 3 AS h, intDiv(n, 4) % 30 AS b, n % 4 AS j
          FROM numbers(${720 * 4 * 90}))`);
  await exec(`INSERT INTO ${DB}.metric_samples (ts, source, metric, labels, value, ver)
    SELECT ${churnAt}, '${CHURN}', ${sqlArray(OTHERS)}[m + 1],
      if(m = 6, ${config(`'llama-c'`, churnPod)}, ${labels(`'llama-c'`, churnPod)}),
      multiIf(m = 0, 8., m = 1, 0., m = 2, 0.5, m = 3, 0., m = 4, toFloat64((j + 1) * 200000), m = 5, toFloat64((j + 1) * 100000), 1.), 1
    FROM (SELECT toInt64(number) AS n, intDiv(n, 4 * 7) AS hr, intDiv(n, 4) % 7 AS m, n % 4 AS j FROM numbers(${720 * 4 * 7}))`);

  const rows = await ch.query<{ n: string; finite: string }>(
    `SELECT count() AS n, countIf(isFinite(value)) AS finite FROM ${DB}.metric_samples WHERE source != '${CHURN}'`,
  );
  storedRows = Number(rows[0]!.n);
  // Samples that are numbers (NaN and ±Inf are no samples).
  finiteRows = Number(rows[0]!.finite);
}, 300_000);

afterAll(async () => {
  await ch?.client.command({ query: `DROP DATABASE IF EXISTS ${DB}` }).catch(() => undefined);
  await ch?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const FLEET = Array.from({ length: DEPLOYMENTS }, (_, d) => `dep-${String(d).padStart(3, '0')}`);
const scrape = (id: string) => ({ id, config: { kind: 'scrape' as const, url: 'http://127.0.0.1:9/metrics' } });

/**
 * The performance analysis of `sources` as an activity in a child process with a 256 MB heap (a
 * worker's default) against the test database; collection stubbed (the data is in ClickHouse).
 */
function runAnalysis(sources: string[]): ChildResult {
  return analyseInChild({
    dir: tmp,
    db: DB,
    name: 'analyse-performance',
    imports: { createPerformanceActivities: 'activities/agents/performance/activities.ts' },
    sources: `${JSON.stringify(sources)}.map((id) => ({ id, config: { kind: 'scrape', url: 'http://127.0.0.1:9/metrics' } }))`,
    analysis: `createPerformanceActivities(deps, infra).analysePerformance, ${JSON.stringify(WINDOW)}`,
    timeoutMs: 240_000,
  });
}

const recordingStore = () => recordingStoreOn(DB);

/** The series of `sources` as the analysis builds them (read through a recording store). */
async function gather(sources: string[]) {
  const { st, statements } = recordingStore();
  const infra = { collectKinds: async () => ({ sources: sources.map(scrape), errors: [] }) };
  try {
    const g = await createPerformanceActivities({ config: {}, ch: st, db: {} } as never, infra as never).gatherPerformance(WINDOW);
    return { ...g, statements, of: (id: string) => g.series.find((s) => s.deployment === id)! };
  } finally {
    await st.close();
  }
}

/** How many points of a series have each value of `key` ("undefined" for none). */
function tally(s: PerformanceSeries, key: keyof PerformanceSeries['points'][number]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of s.points) out[String(p[key])] = (out[String(p[key])] ?? 0) + 1;
  return out;
}

const utf8 = (x: unknown) => Buffer.byteLength(JSON.stringify(x), 'utf8');

describe('the performance agent at production scale', () => {
  it('300 deployments over 30 days in a 256 MB heap: pages of at most 100,000 rows, a bounded result, the one regression found', () => {
    // Pins: 300 deployments × 37 series × 300 steps and the 7 hostile deployments (3,679,222
    // rows, 33 of them NaN or ±Inf) are read in 44 pages of at most PAGE_SAMPLES rows (88,800 at most), every stored row
    // exactly once, within a 256 MB heap (peak 116 MB measured before the fixes below, 124 MB
    // after); the result crossing Temporal stays within MAX_FINDINGS and MAX_FINDINGS_BYTES (301
    // findings: the 200 most severe kept, 124 KB, the rest counted); dep-137's p95 200 → 2,000
    // ms halfway is the first finding, with p99 240 → 2,400 ms.
    // Failed before: no, it passed as it is. The full vLLM shape for the whole fleet (300 × 2
    // pods × 98 series, 17.4 million rows) was measured once outside this suite, too slow for it:
    // peak heap 95 MB, 301 statements of at most 58,200 rows, a result of 691 bytes, the
    // regression found.
    const r = runAnalysis([...FLEET, ...HOSTILE]);
    const a = r.analysis;
    const pages = r.statements.filter(isPage);
    expect(Math.max(...r.statements.map((s) => s.rows))).toBeLessThanOrEqual(PAGE_SAMPLES);
    expect(pages.reduce((n, s) => n + s.rows, 0)).toBe(storedRows);
    expect(a.dataPoints).toBe(finiteRows);
    expect(storedRows - finiteRows).toBe(33);
    // Sources together while they fit: 8 of the fleet's a page, a hostile deployment of 3 pods alone.
    expect(pages.length).toBeLessThanOrEqual(Math.ceil(DEPLOYMENTS / 8) + HOSTILE.length);
    expect(r.peakHeapMb).toBeLessThan(256);
    // What crosses Temporal: at most 200 findings within 256 KB, far below a payload's 2 MB.
    expect(a.findings).toHaveLength(MAX_FINDINGS);
    expect(utf8(a.findings)).toBeLessThanOrEqual(MAX_FINDINGS_BYTES);
    expect(utf8(a)).toBeLessThan(MAX_FINDINGS_BYTES + 20 * 1024);
    expect(a.notListed).toBe('101 more findings not listed (queueing 101); the 200 most severe are, and the totals count them all.');
    // The one regression among 300, most severe, with its figures; nothing else regressed.
    expect(a.findings[0]).toMatchObject({ kind: 'latency-regression', subject: SLOW, severity: 'high' });
    expect(a.findings[0]!.evidence).toMatchObject({
      p95_before_ms: 200,
      p95_after_ms: 2000,
      p99_before_ms: 240,
      p99_after_ms: 2400,
      factor: 10,
      changed_at: iso(START + 151 * STEP),
      points_before: 150,
      points_after: 149,
      probable_cause: 'unknown',
    });
    expect(a.findings.filter((f) => f.kind !== 'queueing').map((f) => f.subject)).toEqual([SLOW]);
    expect(a.findings.filter((f) => (HOSTILE as readonly string[]).includes(f.subject))).toEqual([]);
    expect(a.findings.at(-1)).toMatchObject({ kind: 'queueing', severity: 'medium' });
    // A heartbeat after each page, the last one complete.
    const done = r.heartbeats.filter((h) => h.sourcesRead !== undefined);
    expect(done).toHaveLength(pages.length);
    expect(done.at(-1)).toMatchObject({
      agent: 'performance',
      sourcesRead: DEPLOYMENTS + HOSTILE.length,
      sources: DEPLOYMENTS + HOSTILE.length,
      samples: finiteRows,
      stepSeconds: STEP,
    });
  }, 240_000);
});

describe('the performance agent on hostile vLLM histograms', () => {
  it('a counter reset mid-window and `le` written five ways leave every quantile exact', async () => {
    // Pins: pod 0 of `reset` restarting at step 150 (every counter from zero), and `le-mixed`'s
    // three pods writing 0.2 / 2e-01 / 0.200, 1 / 1e+00 / 1.000 and +Inf, give p95 200 ms, p99
    // 240 ms, TTFT 100 ms and TPOT 20 ms at all 299 points, tokens/s unchanged through the
    // restart, and no finding.
    // Failed before: no, it passed as it is.
    const g = await gather(['steady', 'reset', 'le-mixed']);
    expect(g.warnings).toEqual([]);
    for (const id of ['steady', 'reset', 'le-mixed']) {
      const s = g.of(id);
      expect(s.points).toHaveLength(STEPS - 1);
      expect(tally(s, 'p95LatencyMs'), id).toEqual({ 200: STEPS - 1 });
      expect(tally(s, 'p99LatencyMs'), id).toEqual({ 240: STEPS - 1 });
      expect(tally(s, 'p95TtftMs'), id).toEqual({ 100: STEPS - 1 });
      expect(tally(s, 'p95TpotMs'), id).toEqual({ 20: STEPS - 1 });
      expect(performanceFindings(s), id).toEqual([]);
    }
    // Two pods × 200,000 prompt tokens a step: the restart's step counts pod 0 from zero.
    expect(tally(g.of('reset'), 'promptTokensPerSec')).toEqual({ [String((2 * 200_000) / STEP)]: STEPS - 1 });
  });

  it('an +Inf bucket written "+inf" or "inf" is the +Inf bucket', async () => {
    // Pins: a deployment whose e2e +Inf bucket is labelled "+inf" and TTFT's "inf" (spellings
    // Prometheus' histogram_quantile accepts) has its p95 e2e latency and TTFT at every point.
    // Failed before: only "+Inf" was read as infinite; the others parsed as NaN and the bucket
    // was dropped, so the histograms had no +Inf bucket: p95 latency and TTFT were missing at all
    // 299 points (the deployment's latency invisible to every finding).
    const s = (await gather(['le-inf'])).of('le-inf');
    expect(tally(s, 'p95LatencyMs')).toEqual({ 200: STEPS - 1 });
    expect(tally(s, 'p99LatencyMs')).toEqual({ 240: STEPS - 1 });
    expect(tally(s, 'p95TtftMs')).toEqual({ 100: STEPS - 1 });
    expect(tally(s, 'p95TpotMs')).toEqual({ 20: STEPS - 1 });
  });

  it('a pod missing some buckets at a step is left out of that step, not summed into a wrong quantile', async () => {
    // Pins: pod 1 of `gaps` lacks its e2e buckets 0.15 – 0.3 s at every 7th step; those steps
    // (and the ones after, whose previous sample is missing) are computed from pod 0 alone: p95
    // 200 ms and p99 240 ms at all 299 points.
    // Failed before: the partial pod was summed with the whole one, so the cumulative counts
    // dipped below 0.15 s and the quantiles were 390 ms (p95) and 398 ms (p99) at 86 of 299
    // points.
    const s = (await gather(['gaps'])).of('gaps');
    expect(tally(s, 'p95LatencyMs')).toEqual({ 200: STEPS - 1 });
    expect(tally(s, 'p99LatencyMs')).toEqual({ 240: STEPS - 1 });
    expect(performanceFindings(s)).toEqual([]);
  });

  it('NaN and ±Inf stored in the samples and a deployment of one sample: no crash, no finding', async () => {
    // Pins: `nan` (NaN buckets at step 100, an +Inf count at step 200, a NaN gauge and an +Inf
    // counter) is analysed without error and without a finding; `single` (one sample a series)
    // has no points and no series (a step needs a previous one), and alone it is "no data".
    // ClickHouse returns a stored NaN or ±Inf as null: such a sample is no sample, and p95 is
    // 200 ms at every point.
    // Failed before: the store read null as 0, so the steps around it were read as a counter
    // reset (pod 1's lifetime counted once): one p95 point at 60,000 ms and a one-step spike.
    const g = await gather(['nan', 'single']);
    expect(g.series.map((s) => s.deployment)).toEqual(['nan']);
    const s = g.of('nan');
    expect(s.points).toHaveLength(STEPS - 1);
    expect(tally(s, 'p95LatencyMs')).toEqual({ 200: STEPS - 1 });
    expect(performanceFindings(s)).toEqual([]);
    const infra = { collectKinds: async () => ({ sources: [scrape('single')], errors: [] }) };
    await expect(
      createPerformanceActivities({ config: {}, ch, db: {} } as never, infra as never).analysePerformance(WINDOW),
    ).rejects.toThrow(/performance agent: no vLLM metrics between/);
  });

  it('a pod replaced every hour for a month: bounded reads, and pod names are not a config change', async () => {
    // Pins: 720 pods × 97 series (69,840 series) are read for the first 20,000 (by labels,
    // histograms whole) in pages of at most PAGE_SAMPLES rows, with a warning; the regression
    // 200 → 2,000 ms from day 15 is found with probable cause 'unknown' (no config changed), and
    // the p95 spike to 1,000 ms on days 4 – 6 is an anomaly: a new pod's name in
    // `cache_config_info` is not a change of the serving configuration.
    // Failed before: every pod replacement was a "config change" (pod vllm-… → vllm-…): the
    // regression's probable cause was "config change: pod vllm-08784b65dd1bbbcc →
    // vllm-0b78452f4feb131c" with the advice to roll it back, and the spike was no finding at all
    // (dropped as explained by a config change).
    const g = await gather([CHURN]);
    expect(g.warnings).toEqual([
      `vLLM metrics: source ${CHURN} has 69,840 series, more than the ${MAX_SOURCE_SERIES.toLocaleString('en-US')} read per source; ` +
        'the first 206 label sets of each metric (by labels, histograms whole) were read, 49,858 series left out.',
    ]);
    expect(Math.max(...g.statements.map((s) => s.rows))).toBeLessThanOrEqual(PAGE_SAMPLES);
    const s = g.of(CHURN);
    const p95 = tally(s, 'p95LatencyMs');
    // Exact where defined. A quantile needs a pod's samples at two consecutive steps: a pod of
    // one hour has them only when it straddles the end of a 2.4-hour step, so 130 of the 194
    // points have none (the 206 pods read are a third of the month's).
    expect(Object.keys(p95).sort()).toEqual(['1000', '200', '2000', 'undefined']);
    // Pins: gauges count at a step only the pods still reporting at its end, as Prometheus'
    // instant vectors do: running and waiting are the one pod's planted 8 and 0 at every point.
    // Failed before: every pod with a sample in the 2.4-hour step was summed, so 3 of the 194
    // points had running 16 (two pods' 8, the one replaced during the step included).
    expect(tally(s, 'running')).toEqual({ 8: 194 });
    expect(tally(s, 'waiting')).toEqual({ 0: 194 });
    expect(tally(s, 'kvCacheUsage')).toEqual({ 0.5: 194 });
    const found = performanceFindings(s);
    const regression = found.find((f) => f.kind === 'latency-regression')!;
    expect(regression.evidence).toMatchObject({ p95_after_ms: 2000, p99_after_ms: 2400, probable_cause: 'unknown' });
    expect(regression.evidence.config_change).toBeUndefined();
    const spike = found.find((f) => f.kind === 'anomaly')!;
    expect(spike.evidence).toMatchObject({ p95_peak_ms: 1000, p95_baseline_ms: 200, factor: 5 });
    expect(Date.parse(String(spike.evidence.from))).toBeGreaterThanOrEqual((START + 4 * DAY) * 1000);
    expect(Date.parse(String(spike.evidence.to))).toBeLessThanOrEqual((START + 6 * DAY + STEP) * 1000);
  });
});
