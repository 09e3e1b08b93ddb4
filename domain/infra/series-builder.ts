/**
 * Turns stored Prometheus samples (vLLM, DCGM exporter, node exporter) into the time-aligned
 * series the performance and resource agents analyse: quantiles from histogram bucket deltas,
 * rates from counters, gauges summed or averaged across series. One series per metrics source.
 */
import type { PerformanceSeries, ResourceSeries } from '../agents/types.js';
import { histogramQuantile } from './prometheus-text.js';

export interface StoredSample {
  ts: number; // unix seconds, aligned to the step
  source: string;
  metric: string;
  labels: string; // canonical JSON
  value: number;
  /** Unix seconds of the series' last sample in the step, and the mean spacing of its samples there (when several). */
  last?: number;
  spacing?: number;
}

export const VLLM_METRICS = [
  'vllm:e2e_request_latency_seconds_bucket',
  'vllm:time_to_first_token_seconds_bucket',
  'vllm:time_per_output_token_seconds_bucket',
  'vllm:num_requests_running',
  'vllm:num_requests_waiting',
  'vllm:gpu_cache_usage_perc',
  'vllm:num_preemptions_total',
  'vllm:prompt_tokens_total',
  'vllm:generation_tokens_total',
  'vllm:cache_config_info',
];

export const RESOURCE_METRICS = [
  'DCGM_FI_DEV_GPU_UTIL',
  'DCGM_FI_DEV_FB_USED',
  'DCGM_FI_DEV_FB_FREE',
  'DCGM_FI_PROF_SM_ACTIVE',
  'DCGM_FI_PROF_DRAM_ACTIVE',
  'DCGM_FI_DEV_POWER_USAGE',
  'node_cpu_seconds_total',
  'node_memory_MemTotal_bytes',
  'node_memory_MemAvailable_bytes',
];

type Labels = Record<string, string>;

function parseLabels(s: string): Labels {
  try {
    return JSON.parse(s) as Labels;
  } catch {
    return {};
  }
}

type Series = { labels: Labels; points: Map<number, number>; seen: Map<number, { last: number; spacing?: number }> };

/** samples of one source, indexed by metric -> series key -> ts -> value */
function index(samples: StoredSample[]) {
  const bySource = new Map<string, Map<string, Map<string, Series>>>();
  for (const s of samples) {
    let metrics = bySource.get(s.source);
    if (!metrics) {
      metrics = new Map();
      bySource.set(s.source, metrics);
    }
    let series = metrics.get(s.metric);
    if (!series) {
      series = new Map();
      metrics.set(s.metric, series);
    }
    let one = series.get(s.labels);
    if (!one) {
      one = { labels: parseLabels(s.labels), points: new Map(), seen: new Map() };
      series.set(s.labels, one);
    }
    one.points.set(s.ts, s.value);
    if (s.last !== undefined) one.seen.set(s.ts, { last: s.last, spacing: s.spacing });
  }
  return bySource;
}

type SeriesMap = Map<string, Series>;

/** Prometheus' lookback: an instant vector takes a series whose last sample is at most this old. */
export const LOOKBACK_SECONDS = 300;

/**
 * The values of a gauge's series at a step, of the series still reporting at the step's end, as
 * Prometheus' instant vectors take them: a series counts when its last sample in the step is
 * within the lookback (or, for samples further apart, less than their spacing) of the freshest
 * sample of the metric in the step. Pods replaced within a step are not summed together. The
 * spacing is the largest of the series' in the step, else `sourceSpacing` (the source's read so
 * far); series whose last sample time is not known, or a source whose samples were never closer
 * than the step (no spacing known), count all.
 */
function gaugeValues(m: SeriesMap | undefined, ts: number, sourceSpacing = 0): number[] {
  if (!m) return [];
  const at: Array<{ v: number; last?: number }> = [];
  let freshest = -Infinity;
  let spacing = 0;
  for (const s of m.values()) {
    const v = s.points.get(ts);
    if (v === undefined || !Number.isFinite(v)) continue;
    const seen = s.seen.get(ts);
    at.push({ v, last: seen?.last });
    if (seen) {
      freshest = Math.max(freshest, seen.last);
      spacing = Math.max(spacing, seen.spacing ?? 0);
    }
  }
  if (spacing <= 0) spacing = sourceSpacing;
  if (spacing <= 0) return at.map((x) => x.v);
  return at.filter((x) => x.last === undefined || freshest - x.last <= LOOKBACK_SECONDS || freshest - x.last < spacing).map((x) => x.v);
}

const sumAt = (m: SeriesMap | undefined, ts: number, spacing = 0): number | undefined => {
  const vals = gaugeValues(m, ts, spacing);
  return vals.length ? vals.reduce((a, b) => a + b, 0) : undefined;
};

const meanAt = (m: SeriesMap | undefined, ts: number, scale = 1, spacing = 0): number | undefined => {
  const vals = gaugeValues(m, ts, spacing);
  return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length / scale : undefined;
};

/** Counter increase per second between two steps, summed over series (resets count from zero). */
function rateAt(m: SeriesMap | undefined, prev: number, ts: number, filter?: (l: Labels) => boolean): number | undefined {
  if (!m) return undefined;
  let inc = 0;
  let any = false;
  for (const s of m.values()) {
    if (filter && !filter(s.labels)) continue;
    const a = s.points.get(prev);
    const b = s.points.get(ts);
    if (a === undefined || b === undefined) continue;
    inc += b >= a ? b - a : b;
    any = true;
  }
  return any ? inc / (ts - prev) : undefined;
}

/**
 * A quantile of a histogram over one step, from bucket deltas summed by `le`. A histogram series
 * (its labels but `le`) whose any bucket went down was reset (its exporter restarted): all its
 * buckets count from zero, as `bucketDeltas` does, never some from zero and some as differences.
 * A histogram series lacking at this step a bucket another one has (a bucket missing from a
 * scrape) is left out of the step while a whole one remains: summed, its cumulative counts would
 * dip at the missing bound and shift the quantile.
 */
function quantileAt(m: SeriesMap | undefined, prev: number, ts: number, q: number): number | undefined {
  if (!m) return undefined;
  const histograms = new Map<string, { reset: boolean; bounds: Set<number>; deltas: Array<{ le: number; a: number; b: number }> }>();
  const bounds = new Set<number>();
  for (const s of m.values()) {
    const le = upperBound(s.labels.le);
    const a = s.points.get(prev);
    const b = s.points.get(ts);
    if (a === undefined || b === undefined || Number.isNaN(le)) continue;
    const key = histogramKey(s.labels);
    let h = histograms.get(key);
    if (!h) {
      h = { reset: false, bounds: new Set(), deltas: [] };
      histograms.set(key, h);
    }
    if (b < a) h.reset = true;
    h.deltas.push({ le, a, b });
    h.bounds.add(le);
    bounds.add(le);
  }
  const anyWhole = [...histograms.values()].some((h) => h.bounds.size === bounds.size);
  const byLe = new Map<number, number>();
  for (const h of histograms.values()) {
    if (anyWhole && h.bounds.size < bounds.size) continue;
    for (const d of h.deltas) byLe.set(d.le, (byLe.get(d.le) ?? 0) + (h.reset ? d.b : d.b - d.a));
  }
  const buckets = [...byLe.entries()].sort((x, y) => x[0] - y[0]).map(([le, count]) => ({ le, count }));
  const total = buckets.at(-1)?.count ?? 0;
  if (!buckets.length || total <= 0) return undefined;
  const v = histogramQuantile(q, buckets);
  return Number.isFinite(v) ? v : undefined;
}

/**
 * A bucket's upper bound from its `le` label, read as Prometheus' histogram_quantile reads it
 * (Go's ParseFloat): "+Inf", "inf", "+inf" and "Infinity" in any case are the +Inf bucket;
 * "1", "1.0" and "1e+00" the same bound. Anything else not a number (an empty `le`) is NaN.
 */
function upperBound(le: string | undefined): number {
  if (le === undefined || le.trim() === '') return NaN;
  return /^\+?inf(inity)?$/i.test(le) ? Infinity : Number(le);
}

/** The histogram series a bucket series belongs to: its labels but `le`. */
function histogramKey(labels: Labels): string {
  const { le: _le, ...rest } = labels;
  return JSON.stringify(Object.entries(rest).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Total increase of counters over the samples, per source: per series in time order, the
 * difference between consecutive samples, or the later value when it went down (a reset), summed
 * over series (pods that come and go included). Unlike rates per step, it holds across gaps
 * (a source scraped once a day, a collection outage).
 */
export function counterIncreases(samples: StoredSample[], metrics: readonly string[]): Map<string, number> {
  const acc = counterAccumulator(metrics);
  acc.add(samples);
  return acc.result();
}

/**
 * `counterIncreases` over samples given in pages: each `add` takes every sample of some sources
 * over a span of time, the spans of one source in time order (each series' last sample is kept
 * for the next page). The result is `counterIncreases` of all the pages' samples at once.
 */
export function counterAccumulator(metrics: readonly string[]) {
  const wanted = new Set(metrics);
  const series = new Map<string, { source: string; last?: number; inc: number }>();
  let pages = 0;
  return {
    add(samples: StoredSample[]): void {
      pages++;
      const byKey = new Map<string, Array<[number, number]>>();
      for (const s of samples) {
        if (!wanted.has(s.metric) || !Number.isFinite(s.value)) continue;
        const key = `${s.source}\u0000${s.metric}\u0000${s.labels}`;
        const pts = byKey.get(key);
        if (pts) pts.push([s.ts, s.value]);
        else byKey.set(key, [[s.ts, s.value]]);
      }
      for (const [key, pts] of byKey) {
        pts.sort((x, y) => x[0] - y[0]);
        let one = series.get(key);
        if (!one) {
          one = { source: key.slice(0, key.indexOf('\u0000')), inc: 0 };
          series.set(key, one);
        }
        let a = one.last;
        for (const [, b] of pts) {
          if (a !== undefined) one.inc += b >= a ? b - a : b;
          a = b;
        }
        one.last = a;
      }
    },
    /** Increase per source; series summed in the order the store returns them (source, metric, labels). */
    result(): Map<string, number> {
      const keys = [...series.keys()];
      if (pages > 1) keys.sort(compareCodePoints);
      const out = new Map<string, number>();
      for (const key of keys) {
        const one = series.get(key)!;
        out.set(one.source, (out.get(one.source) ?? 0) + one.inc);
      }
      return out;
    },
  };
}

/**
 * Code-point order of two strings (-1, 0 or 1): the byte order of their UTF-8, in which the
 * metric store sorts sources, metrics and labels.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    // A surrogate (a code point above U+FFFF) sorts after every other UTF-16 unit.
    if (sx !== sy) return sx ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/**
 * GPUs of a source: the most distinct GPUs (host and index, else UUID) reporting at one step.
 * Counted per step, not over the window: GPUs replaced or pods moved during the window are not
 * counted twice, and a source covering several hosts (a Prometheus server) counts each host's GPUs.
 */
function gpuCount(util: SeriesMap | undefined, times: number[]): number {
  if (!util) return 0;
  const ids = [...util.values()].map((s) => ({
    id: `${s.labels.Hostname ?? s.labels.instance ?? ''}/${s.labels.gpu ?? s.labels.UUID ?? ''}`,
    points: s.points,
  }));
  let most = 0;
  for (const t of times) {
    const at = new Set(ids.filter((x) => x.points.has(t)).map((x) => x.id)).size;
    if (at > most) most = at;
  }
  return most;
}

const ms = (s: number | undefined) => (s === undefined ? undefined : Math.round(s * 1000 * 10) / 10);

type MetricMap = Map<string, SeriesMap>;

/** The steps of a source's samples, in order: every time any of its series has a sample. */
function timesOf(m: MetricMap): number[] {
  return [...new Set([...m.values()].flatMap((ser) => [...ser.values()].flatMap((s) => [...s.points.keys()])))].sort((a, b) => a - b);
}

/** The performance points of the steps after the first of `times`. */
function performancePoints(m: MetricMap, times: number[], spacing = 0): PerformanceSeries['points'] {
  const lat = m.get('vllm:e2e_request_latency_seconds_bucket');
  const points: PerformanceSeries['points'] = [];
  for (let i = 1; i < times.length; i++) {
    const prev = times[i - 1]!;
    const ts = times[i]!;
    const cfg = [...(m.get('vllm:cache_config_info')?.values() ?? [])].find((s) => s.points.has(ts))?.labels;
    const { __name__: _n, ...config } = cfg ?? {};
    const preempt = rateAt(m.get('vllm:num_preemptions_total'), prev, ts);
    points.push({
      ts: new Date(ts * 1000).toISOString(),
      p95LatencyMs: ms(quantileAt(lat, prev, ts, 0.95)),
      p99LatencyMs: ms(quantileAt(lat, prev, ts, 0.99)),
      p95TtftMs: ms(quantileAt(m.get('vllm:time_to_first_token_seconds_bucket'), prev, ts, 0.95)),
      p95TpotMs: ms(quantileAt(m.get('vllm:time_per_output_token_seconds_bucket'), prev, ts, 0.95)),
      running: sumAt(m.get('vllm:num_requests_running'), ts, spacing),
      waiting: sumAt(m.get('vllm:num_requests_waiting'), ts, spacing),
      kvCacheUsage: meanAt(m.get('vllm:gpu_cache_usage_perc'), ts, 1, spacing),
      preemptionsPerMin: preempt === undefined ? undefined : preempt * 60,
      promptTokensPerSec: rateAt(m.get('vllm:prompt_tokens_total'), prev, ts),
      generationTokensPerSec: rateAt(m.get('vllm:generation_tokens_total'), prev, ts),
      config: cfg ? config : undefined,
    });
  }
  return points;
}

/** The resource points of the steps after the first of `times`. */
function resourcePoints(m: MetricMap, times: number[], spacing = 0): ResourceSeries['points'] {
  const util = m.get('DCGM_FI_DEV_GPU_UTIL');
  const cpu = m.get('node_cpu_seconds_total');
  const points: ResourceSeries['points'] = [];
  for (let i = 1; i < times.length; i++) {
    const prev = times[i - 1]!;
    const ts = times[i]!;
    const idle = rateAt(cpu, prev, ts, (l) => l.mode === 'idle');
    const all = rateAt(cpu, prev, ts);
    const used = sumAt(m.get('DCGM_FI_DEV_FB_USED'), ts, spacing);
    const free = sumAt(m.get('DCGM_FI_DEV_FB_FREE'), ts, spacing);
    const memTotal = sumAt(m.get('node_memory_MemTotal_bytes'), ts, spacing);
    const memAvail = sumAt(m.get('node_memory_MemAvailable_bytes'), ts, spacing);
    points.push({
      ts: new Date(ts * 1000).toISOString(),
      gpuUtil: meanAt(util, ts, 100, spacing),
      smActive: meanAt(m.get('DCGM_FI_PROF_SM_ACTIVE'), ts, 1, spacing),
      dramActive: meanAt(m.get('DCGM_FI_PROF_DRAM_ACTIVE'), ts, 1, spacing),
      fbUsedGiB: used === undefined ? undefined : used / 1024,
      fbTotalGiB: used === undefined || free === undefined ? undefined : (used + free) / 1024,
      powerW: sumAt(m.get('DCGM_FI_DEV_POWER_USAGE'), ts, spacing),
      cpuUtil: idle !== undefined && all ? Math.min(1, Math.max(0, 1 - idle / all)) : undefined,
      memUtil: memTotal && memAvail !== undefined ? 1 - memAvail / memTotal : undefined,
    });
  }
  return points;
}

interface SourceState {
  /** Metrics the source had samples of, over every page. */
  metrics: Set<string>;
  /** Its samples at its last step so far: the previous step of the next page's first. */
  carried: StoredSample[];
  points: Array<PerformanceSeries['points'][number] & ResourceSeries['points'][number]>;
  gpus: number;
  /** The largest spacing of its samples within a step read so far (0: none known). */
  spacing: number;
}

/**
 * Series built from samples given in pages, as the whole window's samples at once would give
 * them: each `add` takes every sample of some sources over a span of steps, the spans of one
 * source in time order; `finish` returns the series of the sources added since the last
 * `finish`. Between pages a source keeps only its samples at its last step (rates, histogram
 * deltas and the previous step of the next page need them), so memory follows the page, not the
 * window. Series of a source are taken in the store's order (metric, then labels, by code point).
 */
export function seriesBuilder<K extends 'performance' | 'resource'>(
  kind: K,
  stepSeconds: number,
  hosts: Record<string, { resourceId?: string; instanceType?: string }> = {},
) {
  const states = new Map<string, SourceState>();
  return {
    add(samples: StoredSample[]): void {
      const bySource = new Map<string, StoredSample[]>();
      for (const s of samples) {
        const list = bySource.get(s.source);
        if (list) list.push(s);
        else bySource.set(s.source, [s]);
      }
      for (const [source, list] of bySource) {
        let st = states.get(source);
        if (!st) {
          st = { metrics: new Set(), carried: [], points: [], gpus: 0, spacing: 0 };
          states.set(source, st);
        }
        for (const s of list) if (s.spacing !== undefined && s.spacing > st.spacing) st.spacing = s.spacing;
        const later = st.carried.length > 0;
        const m = index(later ? [...st.carried, ...list] : list).get(source)!;
        // Carried series were indexed first: put every metric's series back in the store's order.
        if (later) for (const [metric, series] of m) m.set(metric, new Map([...series].sort(([a], [b]) => compareCodePoints(a, b))));
        for (const metric of m.keys()) st.metrics.add(metric);
        const times = timesOf(m);
        for (const p of kind === 'performance' ? performancePoints(m, times, st.spacing) : resourcePoints(m, times, st.spacing))
          st.points.push(p);
        if (kind === 'resource') st.gpus = Math.max(st.gpus, gpuCount(m.get('DCGM_FI_DEV_GPU_UTIL'), times));
        const last = times.at(-1);
        st.carried = [];
        for (const [metric, series] of m)
          for (const [labels, one] of series) {
            const v = last === undefined ? undefined : one.points.get(last);
            if (v !== undefined) st.carried.push({ ts: last!, source, metric, labels, value: v });
          }
      }
    },
    finish(): K extends 'performance' ? PerformanceSeries[] : ResourceSeries[] {
      const out: Array<PerformanceSeries | ResourceSeries> = [];
      for (const [source, st] of states) {
        if (!st.points.length) continue;
        if (kind === 'performance') {
          if (!st.metrics.has('vllm:e2e_request_latency_seconds_bucket') && !st.metrics.has('vllm:num_requests_running')) continue;
          out.push({ deployment: source, stepSeconds, points: st.points });
        } else {
          if (!st.metrics.has('DCGM_FI_DEV_GPU_UTIL') && !st.metrics.has('node_cpu_seconds_total')) continue;
          out.push({ host: source, ...hosts[source], stepSeconds, points: st.points, gpus: st.gpus });
        }
      }
      states.clear();
      return out as K extends 'performance' ? PerformanceSeries[] : ResourceSeries[];
    },
  };
}

export function buildPerformanceSeries(samples: StoredSample[], stepSeconds: number): PerformanceSeries[] {
  const b = seriesBuilder('performance', stepSeconds);
  b.add(samples);
  return b.finish();
}

export function buildResourceSeries(
  samples: StoredSample[],
  stepSeconds: number,
  hosts: Record<string, { resourceId?: string; instanceType?: string }> = {},
): ResourceSeries[] {
  const b = seriesBuilder('resource', stepSeconds, hosts);
  b.add(samples);
  return b.finish();
}
