/**
 * The agents' inputs at production scale and over time: a month of a large cloud bill as FOCUS
 * (a million rows, hundreds of MB), a Prometheus source days behind (beyond the 11,000 points per
 * series Prometheus answers), thousands of findings, pod churn and counter resets. Bounds are
 * asserted (memory, rows per insert, bytes that cross Temporal, numbers), never wall-clock times.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK_POINTS, createInfraActivities, MAX_COLLECT_POINTS } from '../../activities/infra/activities.js';
import type { MetricSampleRow } from '../../activities/storage/clickhouse/rows.js';
import { boundAnalysis, MAX_FINDINGS, MAX_FINDINGS_BYTES } from '../../domain/agents/bounded.js';
import { costFindings } from '../../domain/agents/cost/findings.js';
import { executiveSummary } from '../../domain/agents/cost/executive-summary.js';
import { INSTANCE_TYPES } from '../../domain/agents/instance-catalog.js';
import type { CostRow, ResourceUtilisation } from '../../domain/agents/types.js';
import { buildPerformanceSeries, buildResourceSeries, counterIncreases, type StoredSample } from '../../domain/infra/series-builder.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'hostile-infra-scale-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Fake stores and config, enough for the collection activities. */
function fakeDeps(sources: Array<{ id: string; config: unknown; lastCollectedTo?: string }>) {
  const inserts: { cost: number[]; metric: MetricSampleRow[][] } = { cost: [], metric: [] };
  const marks: string[] = [];
  const db = {
    async query(sql: string, params?: unknown[]) {
      if (sql.startsWith('SELECT id, config, last_collected_to FROM infra_sources')) {
        return {
          rows: sources
            .filter((s) => !sql.includes('WHERE id = $1') || s.id === params?.[0])
            .map((s) => ({
              id: s.id,
              config: s.config,
              last_collected_to: s.lastCollectedTo ? new Date(s.lastCollectedTo) : null,
            })),
        };
      }
      if (sql.startsWith('UPDATE infra_sources SET last_collected_to')) {
        marks.push(String(params?.[1]));
        const s = sources.find((x) => x.id === params?.[0]);
        if (s) s.lastCollectedTo = String(params?.[1]);
        return { rows: [] };
      }
      throw new Error(`unexpected SQL ${sql}`);
    },
  };
  const ch = {
    async insertCostRows(rows: unknown[]) {
      inserts.cost.push(rows.length);
    },
    async completeCostSnapshot() {},
    async latestCostSnapshot() {
      return undefined;
    },
    async deleteCostRows() {},
    async insertMetricSamples(rows: MetricSampleRow[]) {
      inserts.metric.push(rows);
    },
  };
  const config = { groq: {}, temporal: {}, databaseUrl: 'postgres://localhost/x', clickhouse: { url: 'http://localhost:8123' }, codec: {} };
  const acts = createInfraActivities({ config, ch, db } as unknown as Parameters<typeof createInfraActivities>[0]);
  return { acts, inserts, marks, sources };
}

describe('FOCUS: a month of a large bill', () => {
  const ROWS = 1_000_000;
  const dir = path.join(tmp, 'focus');

  beforeAll(async () => {
    // ~240 MB: BOM, CRLF, 50,000 resources over 30 days, 300 services, tags (JSON over three
    // lines, commas inside quotes), one bad row in 10,000.
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir);
    const out = createWriteStream(path.join(dir, '2025-06.csv'));
    const write = (s: string) => (out.write(s) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
    await write(
      '\ufeffBilledCost,EffectiveCost,ChargePeriodStart,ChargePeriodEnd,ResourceId,ResourceType,ServiceName,RegionId,SkuId,ConsumedQuantity,ConsumedUnit,Tags\r\n',
    );
    let chunk = '';
    for (let i = 0; i < ROWS; i++) {
      const day = 1 + (i % 30);
      const d = `2025-06-${String(day).padStart(2, '0')}`;
      const cost = i % 10_000 === 9_999 ? 'n/a' : '1.25';
      chunk += `${cost},${cost},${d}T00:00:00Z,${d}T01:00:00Z,/subscriptions/s/resourceGroups/rg-${i % 977}/vm-${i % 50_000},VM,svc-${i % 300},eastus,sku-${i % 40},1,Hours,"{\r\n  ""deployment"": ""dep-${i % 400}"",\r\n  ""team"": ""a,b"", ""cost-center"": ""cc-${i % 50}""}"\r\n`;
      if (chunk.length > 1 << 20) {
        await write(chunk);
        chunk = '';
      }
    }
    await write(chunk);
    await new Promise<void>((r) => out.end(() => r()));
  }, 60_000);

  it('is inserted in blocks of at most 10,000 rows while it is read, within a 256 MB heap', () => {
    // failed before: the whole export was read into CostRow objects and mapped again into store
    // rows before one insert of 1,000,000 rows; with a 256 MB heap the process died out of memory
    // (exit 134, "JavaScript heap out of memory"); bad rows were placed a line further down for
    // every CRLF inside a quoted field before them (the first at line 50,001, not 30,001).
    const script = path.join(tmp, 'collect-focus.mts');
    writeFileSync(
      script,
      `import { createInfraActivities } from ${JSON.stringify(path.join(ROOT, 'activities/infra/activities.ts'))};
const blocks = [];
const db = { async query(sql) { return sql.startsWith('SELECT') ? { rows: [{ id: 'bill', config: { kind: 'focus', path: ${JSON.stringify(dir)} }, last_collected_to: null }] } : { rows: [] }; } };
const ch = { async insertCostRows(rows) { blocks.push(rows.length); }, async completeCostSnapshot() {}, async latestCostSnapshot() {}, async deleteCostRows() {} };
const config = { groq: {}, temporal: {}, databaseUrl: 'postgres://localhost/x', clickhouse: { url: 'http://localhost:8123' }, codec: {} };
const outcome = await createInfraActivities({ config, ch, db }).collectInfraSource({ id: 'bill' });
process.stdout.write(JSON.stringify({ outcome, blocks: blocks.length, largest: Math.max(...blocks), total: blocks.reduce((a, b) => a + b, 0) }));
`,
    );
    const r = spawnSync(process.execPath, ['--max-old-space-size=256', '--import', 'tsx', script], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const res = JSON.parse(r.stdout) as {
      outcome: { rows: number; bad: number; badSamples?: Array<{ position: string; reason: string }> };
      blocks: number;
      largest: number;
      total: number;
    };
    expect(res.outcome, JSON.stringify(res.outcome)).not.toHaveProperty('error');
    expect(res.outcome.rows).toBe(ROWS - ROWS / 10_000);
    expect(res.total).toBe(res.outcome.rows);
    expect(res.largest).toBeLessThanOrEqual(10_000);
    expect(res.blocks).toBeGreaterThanOrEqual(99);
    // Every bad row counted, five named: the outcome crossing Temporal stays small.
    expect(res.outcome.bad).toBe(ROWS / 10_000);
    expect(res.outcome.badSamples).toHaveLength(5);
    // Quoted CRLFs inside the tags: each record spans three lines, positions are the line it ends on.
    expect(res.outcome.badSamples![0]).toEqual({ position: '2025-06.csv:30001', reason: "BilledCost 'n/a' is not a number" });
    expect(JSON.stringify(res.outcome).length).toBeLessThan(2_000);
  }, 120_000);
});

describe('Prometheus: a source collected days after it was last', () => {
  // A Prometheus that answers like the real one: at most 11,000 points per series, the range
  // inclusive, one point per step; 300 series.
  let server: http.Server;
  let base = '';
  const asked: Array<{ start: number; end: number; step: number }> = [];
  const SERIES = 300;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      const time = (x: string | null) => (/^[0-9.]+$/.test(x ?? '') ? Number(x) : Math.floor(Date.parse(x ?? '') / 1000));
      const start = time(u.searchParams.get('start'));
      const end = time(u.searchParams.get('end'));
      const step = Number(u.searchParams.get('step'));
      asked.push({ start, end, step });
      const points = Math.floor((end - start) / step) + 1;
      res.setHeader('content-type', 'application/json');
      if (u.pathname.startsWith('/tight/') && points > 100) {
        res.statusCode = 422;
        res.end(
          JSON.stringify({
            status: 'error',
            errorType: 'execution',
            error: 'query processing would load too many samples into memory in query execution',
          }),
        );
        return;
      }
      if (points > 11_000) {
        res.statusCode = 400;
        res.end(
          JSON.stringify({
            status: 'error',
            errorType: 'bad_data',
            error: 'exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)',
          }),
        );
        return;
      }
      const values: string[] = [];
      for (let t = start; t <= end; t += step) values.push(`[${t},"${t % 1000}"]`);
      const v = values.join(',');
      const result = Array.from(
        { length: SERIES },
        (_, i) => `{"metric":{"__name__":"DCGM_FI_DEV_GPU_UTIL","Hostname":"node-${i >> 3}","gpu":"${i & 7}"},"values":[${v}]}`,
      );
      res.end(`{"status":"success","data":{"resultType":"matrix","result":[${result.join(',')}]}}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('is caught up in chunks Prometheus answers, each stored and recorded, at a step that bounds the points', async () => {
    // failed before: one query_range from the last collection (3 days ago) to now at a 15 s
    // step, 17,281 points per series: Prometheus refused it (exceeded maximum resolution of
    // 11,000 points) on every collection, last_collected_to never moved, and the source stayed
    // 3 days behind for good.
    asked.length = 0;
    const threeDaysAgo = new Date(Date.now() - 3 * 86_400_000).toISOString();
    const { acts, inserts, marks, sources } = fakeDeps([
      { id: 'fleet', config: { kind: 'prometheus', url: base }, lastCollectedTo: threeDaysAgo },
    ]);
    const outcome = await acts.collectInfraSource({ id: 'fleet' });
    expect(outcome.error).toBeUndefined();
    // Every request within Prometheus' limit and the chunk size.
    for (const a of asked) expect((a.end - a.start) / a.step + 1).toBeLessThanOrEqual(CHUNK_POINTS);
    // 3 days at 15 s would be 17,280 steps: caught up at a step that keeps ≤ MAX_COLLECT_POINTS per series.
    const step = asked[0]!.step;
    expect(step).toBe(45);
    const perSeries = inserts.metric.reduce((n, rows) => n + rows.length, 0) / SERIES;
    expect(perSeries).toBeLessThanOrEqual(MAX_COLLECT_POINTS + 1);
    expect(perSeries).toBeGreaterThan(5_700);
    expect(outcome.rows).toBe(perSeries * SERIES);
    expect(outcome.stepSeconds).toBe(45);
    // One insert per chunk (≤ 240 points × 300 series), and progress recorded after each.
    expect(Math.max(...inserts.metric.map((r) => r.length))).toBeLessThanOrEqual(CHUNK_POINTS * SERIES);
    expect(marks.length).toBe(inserts.metric.length);
    expect(Date.parse(sources[0]!.lastCollectedTo!)).toBeGreaterThan(Date.now() - 120_000);
  }, 60_000);

  it('a chunk Prometheus finds too large (its sample limit) is split in time, not failed', async () => {
    // failed before: Prometheus' "query processing would load too many samples into memory"
    // (a range of many series over its --query.max-samples) failed the whole collection, every
    // time, and the source never advanced.
    asked.length = 0;
    const { acts, inserts, marks } = fakeDeps([
      {
        id: 'fleet',
        config: { kind: 'prometheus', url: `${base}/tight` },
        lastCollectedTo: new Date(Date.now() - 3_600_000).toISOString(),
      },
    ]);
    const outcome = await acts.collectInfraSource({ id: 'fleet' });
    expect(outcome.error).toBeUndefined();
    // Refused at 241 and 121 points, answered in chunks of at most 60 steps.
    expect(asked.some((a) => (a.end - a.start) / a.step + 1 > 100)).toBe(true);
    expect(Math.max(...inserts.metric.map((r) => r.length / SERIES))).toBeLessThanOrEqual(100);
    // Every step of the hour stored once per series, whatever the chunks.
    const ts = new Set(inserts.metric.flat().map((r) => r.ts));
    expect(ts.size).toBeGreaterThanOrEqual(240);
    expect(outcome.rows).toBe(ts.size * SERIES);
    expect(marks.length).toBe(inserts.metric.length);
  });
});

describe('findings of a large estate cross Temporal bounded', () => {
  it('3,000 idle GPU hosts: the analysis holds the most severe findings, counts the rest, keeps the totals', () => {
    // failed before: 6,700 findings (3,000 idle, 3,000 right-size, 400 cost-per-token, 300
    // anomalies), 6.4 MB in the analysis: over Temporal's 2 MB payload limit for the activity
    // result, and again in the agent's and the review's results.
    const rows: CostRow[] = [];
    const utilisation: ResourceUtilisation[] = [];
    for (let r = 0; r < 3000; r++) {
      for (let d = 0; d < 30; d++) {
        const s = new Date(Date.UTC(2025, 5, 1 + d)).toISOString();
        rows.push({
          chargePeriodStart: s,
          chargePeriodEnd: new Date(Date.parse(s) + 86_400_000).toISOString(),
          billedCost: 50,
          effectiveCost: 50 + (d === 20 && r % 7 === 0 ? 500 : 0),
          resourceId: `res-${r}`,
          resourceType: 'VM',
          serviceName: `svc-${r % 300}`,
          regionId: 'us',
          skuId: 'sku',
          consumedQuantity: 24,
          consumedUnit: 'Hours',
          tags: { deployment: `dep-${r % 400}`, instance_type: 'gpu.1xa100-80g' },
        });
      }
      utilisation.push({ resourceId: `res-${r}`, meanUtilisation: 0.01, idleShare: 0.99, p95Utilisation: 0.02, samples: 300 });
    }
    const tokensByDeployment = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`dep-${i}`, 1e6 * (i % 5 === 0 ? 100 : 1)]));
    const { findings, totals } = costFindings({
      rows,
      utilisation,
      catalog: INSTANCE_TYPES,
      tokensByDeployment,
      window: { from: '2025-06-01T00:00:00Z', to: '2025-07-01T00:00:00Z' },
    });
    expect(findings.length).toBe(6700);
    const a = boundAnalysis({
      findings,
      totals: { ...totals },
      summary: executiveSummary(findings, totals),
      dataPoints: rows.length,
      warnings: [],
    });
    const bytes = Buffer.byteLength(JSON.stringify(a));
    expect(bytes).toBeLessThan(MAX_FINDINGS_BYTES + 16 * 1024);
    // Four agents at the bound stay under 2 MB in the review's result.
    expect(4 * bytes).toBeLessThan(2 * 1024 * 1024);
    expect(a.findings.length).toBeLessThanOrEqual(MAX_FINDINGS);
    expect(a.findings[0]).toBe(findings[0]);
    expect(a.totals).toEqual(totals);
    const dropped = findings.length - a.findings.length;
    expect(a.notListed).toMatch(new RegExp(`^${dropped.toLocaleString('en-US')} more findings not listed \\(`));
    expect(a.warnings).toEqual([a.notListed]);
  });

  it('a few findings pass unchanged', () => {
    // pins
    const a = { findings: [], dataPoints: 1, warnings: [] };
    expect(boundAnalysis(a)).toEqual(a);
  });
});

describe('numbers under pod churn, counter resets and gaps', () => {
  const lbl = (o: Record<string, string>) => JSON.stringify(Object.fromEntries(Object.entries(o).sort(([x], [y]) => (x < y ? -1 : 1))));

  it('tokens served count every increase across a day-long gap and a restart', () => {
    // failed before: tokens were rates per step × the step, so the increase over a gap of many
    // steps (a /metrics source read only when a daily review runs) counted as one step: 105,000
    // tokens served were counted as 47,500 (cost per million tokens ×2.2).
    const step = 3600;
    const samples: StoredSample[] = [];
    const add = (ts: number, metric: string, labels: string, value: number) => samples.push({ ts, source: 'chat', metric, labels, value });
    const pod = lbl({ model_name: 'm', pod: 'vllm-0' });
    // Scraped at hours 0, 1, 2, then not for 24 h (hour 26), then restarted (counter from 0) at hour 27, 28.
    const at = [0, 1, 2, 26, 27, 28].map((h) => h * step);
    const counter = [0, 10_000, 20_000, 80_000, 5_000, 20_000];
    at.forEach((t, i) => {
      add(t, 'vllm:generation_tokens_total', pod, counter[i]!);
      add(t, 'vllm:num_requests_running', pod, 1);
    });
    // A pod that comes and goes: 2 points, +5,000.
    const other = lbl({ model_name: 'm', pod: 'vllm-1' });
    add(step, 'vllm:generation_tokens_total', other, 1_000);
    add(2 * step, 'vllm:generation_tokens_total', other, 6_000);
    const served = counterIncreases(samples, ['vllm:prompt_tokens_total', 'vllm:generation_tokens_total']).get('chat');
    // 10k + 10k + 60k + 5k (from 0 after the reset) + 15k, and 5k from the other pod.
    expect(served).toBe(105_000);
    // What rates per step × the step gave (the cost agent's figure before).
    const perStep = buildPerformanceSeries(samples, step)[0]!.points.reduce(
      (n, p) => n + ((p.promptTokensPerSec ?? 0) + (p.generationTokensPerSec ?? 0)) * step,
      0,
    );
    expect(perStep).toBe(47_500);
  });

  it('a histogram reset inside a step counts every bucket from zero', () => {
    // failed before: buckets that grew past their old count after the restart were taken as
    // differences and the others from zero: p95 after a restart was 877.3 ms instead of 98.3 ms.
    const step = 60;
    const samples: StoredSample[] = [];
    // Step 1: 100 fast requests and 900 of about 1 s. The server restarts; step 2: 290 fast, 10 slow.
    for (const [le, a, b] of [
      ['0.1', 100, 290],
      ['1', 1000, 300],
      ['+Inf', 1000, 300],
    ] as const) {
      const labels = lbl({ le, pod: 'vllm-0' });
      for (const [ts, value] of [
        [0, 0],
        [step, a],
        [2 * step, b],
      ] as const)
        samples.push({ ts, source: 'chat', metric: 'vllm:e2e_request_latency_seconds_bucket', labels, value });
    }
    const pts = buildPerformanceSeries(samples, step)[0]!.points;
    expect(pts[0]!.p95LatencyMs).toBe(950);
    expect(pts[1]!.p95LatencyMs).toBe(98.3);
  });

  it('GPUs of a Prometheus source are counted per host and step, not by index over the window', () => {
    // failed before: GPUs counted as distinct `gpu` labels over the window: 40 hosts of 8 GPUs
    // behind one Prometheus were 8 GPUs, so scale-up and consolidation sized a fleet of 320 as 8.
    const samples: StoredSample[] = [];
    for (let t = 0; t < 4; t++) {
      // Pod churn: hosts 0-19 report at steps 0-1, hosts 20-39 join at step 1, hosts 0-19 leave after step 1.
      for (let h = 0; h < 40; h++) {
        if ((h < 20 && t > 1) || (h >= 20 && t < 1)) continue;
        for (let g = 0; g < 8; g++)
          samples.push({
            ts: t * 60,
            source: 'fleet',
            metric: 'DCGM_FI_DEV_GPU_UTIL',
            labels: lbl({ Hostname: `node-${h}`, gpu: String(g) }),
            value: 50,
          });
      }
    }
    const s = buildResourceSeries(samples, 60)[0]!;
    expect(s.gpus).toBe(320);
    expect(s.points.every((p) => p.gpuUtil === 0.5)).toBe(true);
  });

  it('gauges at a coarse step count the pods still reporting at its end, not every pod replaced during it', () => {
    // Pins: at a 2.4-hour step, a pod replaced an hour into the step (last sample 1.4 h before the
    // freshest) is left out; a pod scraped 200 s before the freshest (within Prometheus' 5-minute
    // lookback) counts; a step whose series each have one sample uses the source's spacing.
    // Failed before: every series with a sample in the step was summed: running 14, then 8.
    const step = 8640;
    const samples: StoredSample[] = [];
    const add = (ts: number, pod: string, last: number, spacing: number | undefined, running: number) => {
      const labels = lbl({ model_name: 'm', pod });
      samples.push({ ts, source: 'chat', metric: 'vllm:num_requests_running', labels, value: running, last, spacing });
      samples.push({ ts, source: 'chat', metric: 'vllm:gpu_cache_usage_perc', labels, value: running / 8, last, spacing });
    };
    add(0, 'vllm-a', 8190, 900, 8);
    add(step, 'vllm-a', step + 3150, 900, 8); // replaced during the step
    add(step, 'vllm-b', step + 8100, 900, 4); // reporting at the step's end
    add(step, 'vllm-c', step + 7900, 900, 2); // 200 s behind, still reporting
    add(2 * step, 'vllm-c', 2 * step + 450, undefined, 2); // one sample each in this step
    add(2 * step, 'vllm-d', 2 * step + 8550, undefined, 6);
    const pts = buildPerformanceSeries(samples, step)[0]!.points;
    expect(pts.map((p) => p.running)).toEqual([6, 6]);
    expect(pts.map((p) => p.kvCacheUsage)).toEqual([0.375, 0.75]);
  });
});
