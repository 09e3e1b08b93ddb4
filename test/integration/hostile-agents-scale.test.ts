/**
 * The agents' reads of ClickHouse at production scale, on the real server: a month of a large
 * bill (1,500,000 FOCUS rows, 50,000 resources, 300 services), a day of 500 GPU hosts × 8 GPUs at
 * 5 minutes, a 30-day window asked at a 15 s step, and a Prometheus source of 26,400 series. The
 * cost and resource analyses run as activities (MockActivityEnvironment, heartbeats recorded) in
 * a child process with a 256 MB heap, like a worker's; every statement's rows are counted.
 * Planted patterns (one idle host among 500, one day's spike among 300 services) must still be
 * found, with their exact figures. Bounds and findings are asserted, never wall-clock times.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eachSeries, MAX_POINTS, PAGE_SAMPLES } from '../../activities/agents/metrics.js';
import { createResourceActivities } from '../../activities/agents/resource/activities.js';
import { ClickHouseStore } from '../../activities/storage/clickhouse/store.js';
import type { ResourceSeries } from '../../domain/agents/types.js';
import { RESOURCE_METRICS } from '../../domain/infra/series-builder.js';
import { analysisOptions } from '../../workflows/options.js';
import { analyseInChild, type ChildResult, isPage, recordingStore as recordingStoreOn } from '../helpers/agent-analysis.js';
import { testEnv } from '../helpers/env.js';

const DB = `optiinfra_agents_scale_${randomUUID().slice(0, 8)}`;
const DAY = 86_400;
/** 2025-06-01T00:00:00Z: the bill's month; the hosts' day is its last. */
const START = Date.UTC(2025, 5, 1) / 1000;
const iso = (s: number) => new Date(s * 1000).toISOString();
const HOSTS = 500;
const RESOURCES = 50_000;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hostile-agents-scale-'));
let ch: ClickHouseStore;

beforeAll(async () => {
  ch = new ClickHouseStore(testEnv().clickhouseUrl, DB);
  await ch.migrate();
  const exec = (query: string) => ch.client.command({ query });
  // The bill: one row a day per resource (50,000 × 30), $1.25 each; vm-7 (a host) costs $100 a
  // day, vm-12345 (svc-45) $500 on day 20.
  await exec(`INSERT INTO ${DB}.cost_usage (charge_period_start, charge_period_end, billed_cost, effective_cost, resource_id,
      resource_type, service_name, region_id, sku_id, consumed_quantity, consumed_unit, tags, source, ver)
    SELECT toDateTime(${START} + d * ${DAY}), toDateTime(${START} + (d + 1) * ${DAY}), c, c, concat('vm-', toString(r)), 'VM',
           concat('svc-', toString(r % 300)), 'eastus', 'sku-1', 24, 'Hours',
           '{"deployment":"fleet","instance_type":"gpu.1xa100-80g"}', 'bill', 1
    FROM (SELECT intDiv(number, 30) AS r, number % 30 AS d, if(r = 7, 100, if(r = 12345 AND d = 20, 500, 1.25)) AS c
          FROM numbers(${RESOURCES * 30}))`);
  // One completed collection of the source: what the cost agent reads.
  await ch.completeCostSnapshot('bill', 1, RESOURCES * 30);
  // The hosts: host-<h> (resource vm-<h>) with 8 GPUs, GPU utilisation every 5 minutes over the
  // month's last day; host-7 idle (0-2 %), the others busy (40-79 %).
  await exec(`INSERT INTO ${DB}.metric_samples (ts, source, metric, labels, value, ver)
    SELECT toDateTime(${START + 29 * DAY} + k * 300), concat('host-', toString(h)), 'DCGM_FI_DEV_GPU_UTIL',
           concat('{"Hostname":"host-', toString(h), '","gpu":"', toString(g), '"}'), if(h = 7, k % 3, 40 + (g * 7 + k + h) % 40), 1
    FROM (SELECT intDiv(number, 2304) AS h, intDiv(number, 288) % 8 AS g, number % 288 AS k FROM numbers(${HOSTS * 8 * 288}))`);
  // month-host: one GPU every minute for 30 days, idle (2 %) for 26 days, busy (80 %) for the last 4.
  await exec(`INSERT INTO ${DB}.metric_samples (ts, source, metric, labels, value, ver)
    SELECT toDateTime(${START} + number * 60), 'month-host', 'DCGM_FI_DEV_GPU_UTIL', '{"Hostname":"month-host","gpu":"0"}',
           if(number < ${26 * 1440}, 2, 80), 1
    FROM numbers(${30 * 1440})`);
  // fleet: one Prometheus of 100 hosts, 8 GPUs and 32 CPUs × 8 modes each (26,400 series), an hour at 5 minutes.
  await exec(`INSERT INTO ${DB}.metric_samples (ts, source, metric, labels, value, ver)
    SELECT toDateTime(${START + 10 * DAY} + k * 300), 'fleet', 'node_cpu_seconds_total',
           concat('{"cpu":"', toString(c), '","instance":"node-', toString(h), '","mode":"', ['idle','user','system','iowait','irq','nice','softirq','steal'][m + 1], '"}'),
           k * (m = 0 ? 200 : 10), 1
    FROM (SELECT intDiv(number, 3328) AS h, intDiv(number, 104) % 32 AS c, intDiv(number, 13) % 8 AS m, number % 13 AS k FROM numbers(${100 * 32 * 8 * 13}))`);
  await exec(`INSERT INTO ${DB}.metric_samples (ts, source, metric, labels, value, ver)
    SELECT toDateTime(${START + 10 * DAY} + k * 300), 'fleet', 'DCGM_FI_DEV_GPU_UTIL',
           concat('{"Hostname":"node-', toString(h), '","gpu":"', toString(g), '"}'), 50, 1
    FROM (SELECT intDiv(number, 104) AS h, intDiv(number, 13) % 8 AS g, number % 13 AS k FROM numbers(${100 * 8 * 13}))`);
}, 120_000);

afterAll(async () => {
  await ch?.client.command({ query: `DROP DATABASE IF EXISTS ${DB}` }).catch(() => undefined);
  await ch?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * One agent's analysis in a child process with a 256 MB heap: the hosts are HOSTS scrape sources
 * (collection stubbed: the data is in ClickHouse already).
 */
function runAnalysis(agent: 'cost' | 'resource', window: { from: string; to: string; stepSeconds: number }): ChildResult {
  return analyseInChild({
    dir: tmp,
    db: DB,
    name: `analyse-${agent}`,
    imports: {
      createCostActivities: 'activities/agents/cost/activities.ts',
      createResourceActivities: 'activities/agents/resource/activities.ts',
    },
    sources: `Array.from({ length: ${HOSTS} }, (_, h) => ({ id: 'host-' + h, config: { kind: 'scrape', url: 'http://127.0.0.1:9/metrics', resourceId: 'vm-' + h, instanceType: 'gpu.1xa100-80g' } }))`,
    analysis: `${agent === 'cost' ? 'createCostActivities(deps, infra).analyseCost' : 'createResourceActivities(deps, infra).analyseResource'}, ${JSON.stringify(window)}`,
    timeoutMs: 180_000,
  });
}

const recordingStore = () => recordingStoreOn(DB);

describe('the agents read ClickHouse bounded', () => {
  it('cost: a month of 1,500,000 FOCUS rows and 500 hosts in a 256 MB heap, the idle host and the spike found', () => {
    // pins: before, `dailyCosts` returned all 1,500,000 daily rows in one statement and the hosts'
    // utilisation 1,152,000 samples in another: with a 256 MB heap the activity died out of memory
    // (SIGABRT after 21 s; 1.5 GB of heap with a 4 GB limit), and it never heartbeat.
    const r = runAnalysis('cost', { from: iso(START), to: iso(START + 30 * DAY), stepSeconds: 8640 });
    const a = r.analysis;
    // ClickHouse sums the bill; the metric pages return at most PAGE_SAMPLES samples each.
    expect(Math.max(...r.statements.map((s) => s.rows))).toBeLessThanOrEqual(PAGE_SAMPLES);
    const costRows = r.statements.filter((s) => !isPage(s) && !s.sql.startsWith('SELECT source, metric'));
    expect(costRows.length).toBe(5);
    // Totals, the hosts' 500 resources, the one deployment, 200 services × 30 days, and the days
    // of each day's top resource (12,532 rows in all, against 1,500,000 before).
    expect(costRows.reduce((n, s) => n + s.rows, 0)).toBeLessThanOrEqual(2 + HOSTS + 2 * 200 * 31);
    expect(r.statements.filter(isPage).reduce((n, s) => n + s.rows, 0)).toBe(HOSTS * 8 * 288);
    expect(r.peakHeapMb).toBeLessThan(256);
    // The figures are the bill's.
    expect(a.dataPoints).toBe(RESOURCES * 30);
    expect(a.totals).toMatchObject({ days: 30, spendUsd: (RESOURCES * 30 - 31) * 1.25 + 30 * 100 + 500 });
    // One idle host among 500 (the others busy): its whole cost is waste.
    const idle = a.findings.filter((f) => f.kind === 'idle-resource');
    expect(idle.map((f) => f.subject)).toEqual(['vm-7']);
    expect(idle[0]!.monthlySavingUsd).toBe(Math.round(((30 * 100) / 720) * 730 * 100) / 100);
    expect(a.totals?.wasteAnnualUsd).toBe(idle[0]!.annualSavingUsd);
    // The day's spike of one resource among 300 services, with its resource.
    const spike = a.findings.filter((f) => f.kind === 'spend-anomaly');
    expect(spike.map((f) => f.subject)).toEqual(['svc-45 2025-06-21']);
    expect(spike[0]!.evidence).toMatchObject({ top_resource: 'vm-12345', spend_usd: 167 * 1.25 - 1.25 + 500, trailing_mean_usd: 208.75 });
    // What was not checked is said.
    expect(a.warnings).toContain(
      'Spend anomalies: the 200 services with the most spend were checked; 100 others were not (the totals count them all).',
    );
    // Heartbeats while it reads: each aggregation and each page, with progress.
    expect(r.heartbeats.map((h) => h.stage).filter(Boolean)).toEqual(
      expect.arrayContaining(['cost totals', 'cost of the hosts', 'cost per deployment', 'spend per service and day']),
    );
    expect(r.heartbeats.filter((h) => h.sourcesRead !== undefined).at(-1)).toMatchObject({
      agent: 'cost',
      reading: 'Utilisation (GPU and host metrics)',
      sources: HOSTS,
      sourcesRead: HOSTS,
      samples: HOSTS * 8 * 288,
    });
  }, 180_000);

  it('resource: 500 hosts × 8 GPUs read in pages of at most 100,000 samples, with heartbeats; the idle host found', () => {
    // pins: before, one statement returned all 1,152,000 samples of 500 hosts × 8 GPUs (a day at
    // 5 minutes) and the analysis held them: out of memory with a 256 MB heap (SIGABRT after
    // 12 s; 376 MB of heap with a 4 GB limit), without a heartbeat.
    const r = runAnalysis('resource', { from: iso(START + 29 * DAY), to: iso(START + 30 * DAY), stepSeconds: 300 });
    const a = r.analysis;
    const pages = r.statements.filter(isPage);
    expect(pages.length).toBeGreaterThanOrEqual(Math.ceil((HOSTS * 8 * 288) / PAGE_SAMPLES));
    expect(Math.max(...r.statements.map((s) => s.rows))).toBeLessThanOrEqual(PAGE_SAMPLES);
    expect(pages.reduce((n, s) => n + s.rows, 0)).toBe(HOSTS * 8 * 288);
    expect(r.peakHeapMb).toBeLessThan(256);
    // Every host analysed (287 points each); the idle one is the most severe finding.
    expect(a.dataPoints).toBe(HOSTS * 287);
    expect(a.findings[0]).toMatchObject({ kind: 'scale-down', subject: 'host-7' });
    expect(a.notListed).toMatch(/^597 more findings not listed \(utilisation-pattern 375, capacity-forecast 222\)/);
    // A heartbeat before and after each page, the last one complete.
    const done = r.heartbeats.filter((h) => h.sourcesRead !== undefined);
    expect(done.length).toBe(pages.length);
    expect(done.at(-1)).toEqual({
      agent: 'resource',
      reading: 'GPU and host metrics',
      page: pages.length,
      pages: pages.length,
      sourcesRead: HOSTS,
      sources: HOSTS,
      samples: HOSTS * 8 * 288,
      stepSeconds: 300,
    });
  }, 180_000);

  it('the analyses heartbeat and may outlast a large collection: the workflow gives them a heartbeat timeout', () => {
    // pins: before, the analyses ran with `agentOptions`: 5 minutes to close and no heartbeat
    // timeout, so a worker that died mid-analysis was noticed only after 5 minutes, and collecting
    // a month's FOCUS export (up to 30 minutes in `collectInfra`) inside the analysis timed out.
    expect(analysisOptions.heartbeatTimeout).toBe('2 minutes');
    expect(analysisOptions.startToCloseTimeout).toBe('45 minutes');
  });

  it('a 30-day window asked at 15 s is read at a step of at most 400 points per series, whole, and says so', async () => {
    // pins: before, the window was read at the requested 15 s: 43,200 rows for the one series, of
    // which the analysis kept the last 400 points (6.7 hours): the host idle for 26 of the 30 days
    // was reported at 80 % mean GPU utilisation, idle 0 % of the time, compute-bound, over a
    // window of 0.28 days, without a warning.
    const { st, statements } = recordingStore();
    const host = {
      id: 'month-host',
      config: { kind: 'scrape' as const, url: 'http://127.0.0.1:9/metrics', instanceType: 'gpu.1xa100-80g' },
    };
    const infra = { collectKinds: async () => ({ sources: [host], errors: [] }), listInfraSources: async () => [host] };
    const acts = createResourceActivities({ config: {}, ch: st, db: {} } as never, infra as never);
    const window = { from: iso(START), to: iso(START + 30 * DAY), stepSeconds: 15 };
    try {
      const a = await acts.analyseResource(window);
      expect(a.warnings).toEqual([
        'GPU and host metrics: the 30-day window at the requested 15 s step would be 172,800 points per series; ' +
          'read at a 6,480 s step instead (at most 400 points per series).',
      ]);
      const pages = statements.filter(isPage);
      expect(pages.map((s) => s.sql.match(/intDiv\(toUnixTimestamp\(ts\), (\d+)\)/)?.[1])).toEqual(['6480']);
      expect(pages[0]!.rows).toBeLessThanOrEqual(MAX_POINTS + 1);
      // The whole month: mean GPU utilisation (26 days at 2 %, 4 at 80 %), idle most of the time.
      expect(a.dataPoints).toBe(MAX_POINTS);
      const pattern = a.findings.find((f) => f.kind === 'utilisation-pattern')!;
      expect(Number(pattern.evidence.gpu_util_mean_pct)).toBeCloseTo(12.4, 0);
      expect(pattern.evidence).toMatchObject({ points: MAX_POINTS, gpu_util_p95_pct: 80 });
      expect(Number(pattern.evidence.idle_share_pct)).toBeGreaterThan(85);
      const forecast = a.findings.find((f) => f.kind === 'capacity-forecast')!;
      expect(Number(forecast.evidence.window_days)).toBeGreaterThan(29);
    } finally {
      await st.close();
    }
  });

  it('a source of 26,400 series is read for its first 20,000 (whole metrics and histograms), in pages, and says what was left out', async () => {
    // pins: before, a Prometheus source was read whole whatever its series: one statement of
    // 343,200 samples for 100 hosts × (8 GPUs + 32 CPUs × 8 modes) over an hour (for 500 hosts
    // over a day, 38 million), nothing left out and nothing said.
    const { st, statements } = recordingStore();
    try {
      const series: ResourceSeries[] = [];
      const window = { from: iso(START + 10 * DAY), to: iso(START + 10 * DAY + 3600), stepSeconds: 300 };
      const fleet = { id: 'fleet', config: { kind: 'prometheus' as const, url: 'http://127.0.0.1:9' } };
      const read = await eachSeries(st, 'resource', window, [fleet], (s) => series.push(...s), {
        metrics: RESOURCE_METRICS,
        what: 'GPU and host metrics',
      });
      expect(read.warnings).toEqual([
        'GPU and host metrics: source fleet has 26,400 series, more than the 20,000 read per source; ' +
          'the first 19,200 label sets of each metric (by labels, histograms whole) were read, 6,400 series left out.',
      ]);
      const pages = statements.filter(isPage);
      expect(pages.length).toBeGreaterThan(1);
      expect(Math.max(...pages.map((s) => s.rows))).toBeLessThanOrEqual(PAGE_SAMPLES);
      expect(read.samples).toBe(20_000 * 13);
      // Every GPU read (800 GPUs at 50 %), CPU from the CPUs read.
      expect(series).toHaveLength(1);
      expect(series[0]!.gpus).toBe(800);
      expect(series[0]!.points).toHaveLength(12);
      expect(series[0]!.points.every((p) => p.gpuUtil === 0.5 && p.cpuUtil !== undefined)).toBe(true);
    } finally {
      await st.close();
    }
  });
});
