/**
 * Reading the stored metric series the agents analyse, bounded at any scale: a window is read at
 * a step that gives at most MAX_POINTS points per series (a coarser one than asked when needed,
 * said in the warnings), in pages of at most PAGE_SAMPLES samples (sources together while they
 * fit, a source with many series over spans of steps), each page turned into series and reduced
 * by the caller before the next is read, with a heartbeat after each. A source with more than
 * MAX_SOURCE_SERIES series is read for the first label sets of each metric that fit (a histogram's
 * buckets whole), and the warnings say how many series were left out.
 */
import type { AgentName, AgentWindow, PerformanceSeries, ResourceSeries, ResourceUtilisation } from '../../domain/agents/types.js';
import { boundLines, SOURCE_ERRORS_LISTED } from '../../domain/agents/bounded.js';
import { failure } from '../../common/failures.js';
import { isShare } from '../../domain/agents/resource/host-stats.js';
import { seriesBuilder, type StoredSample } from '../../domain/infra/series-builder.js';
import type { InfraSource } from '../infra/activities.js';
import type { ClickHouseStore } from '../storage/clickhouse/store.js';
import { heartbeat, whileReading } from '../heartbeat.js';

/** Points per series an analysis reads at most: a window of more steps is read at a coarser step. */
export const MAX_POINTS = 400;
/** Samples one read of the metric store returns at most (a page). */
export const PAGE_SAMPLES = 100_000;
/** Series of one source an analysis reads at most (the first label sets of each metric that fit). */
export const MAX_SOURCE_SERIES = 20_000;
/** Sources whose series were capped that the warnings name (the others are counted). */
const MAX_NAMED_CAPS = 5;

export function noData(agent: AgentName, w: AgentWindow, errors: string[], what: string) {
  const why = errors.length ? `; source errors: ${boundLines(errors, SOURCE_ERRORS_LISTED).join('; ')}` : '';
  return failure('NoData', `${agent} agent: no ${what} between ${w.from} and ${w.to}${why}`);
}

/** Resource id and instance type of each metrics source, to price recommendations. */
export function hostMap(sources: InfraSource[]): Record<string, { resourceId?: string; instanceType?: string }> {
  return Object.fromEntries(
    sources.flatMap((s) =>
      s.config.kind === 'focus' ? [] : [[s.id, { resourceId: s.config.resourceId, instanceType: s.config.instanceType }]],
    ),
  );
}

const fmt = (n: number) => n.toLocaleString('en-US');

function spanText(seconds: number): string {
  if (seconds >= 2 * 86_400) return `${fmt(Math.round((seconds / 86_400) * 10) / 10)}-day`;
  if (seconds >= 2 * 3600) return `${fmt(Math.round((seconds / 3600) * 10) / 10)}-hour`;
  return `${fmt(Math.round(seconds))}-second`;
}

/**
 * The step a window is read at: the window's, or the smallest multiple of it that gives at most
 * `maxPoints` points per series, with a warning saying so.
 */
export function windowStep(w: AgentWindow, what: string, maxPoints = MAX_POINTS): { stepSeconds: number; warning?: string } {
  const span = Math.max(0, (Date.parse(w.to) - Date.parse(w.from)) / 1000);
  const step = Math.max(1, Math.floor(w.stepSeconds));
  const points = Math.ceil(span / step);
  if (points <= maxPoints) return { stepSeconds: step };
  const coarser = step * Math.ceil(span / maxPoints / step);
  return {
    stepSeconds: coarser,
    warning:
      `${what}: the ${spanText(span)} window at the requested ${fmt(step)} s step would be ${fmt(points)} points per series; ` +
      `read at a ${fmt(coarser)} s step instead (at most ${fmt(maxPoints)} points per series).`,
  };
}

export interface PageSink {
  /** Samples of some sources over a span of steps (a source's spans in time order). */
  add(samples: StoredSample[]): void;
  /** Every sample of the sources added since the last flush has been added. */
  flush(): void;
}

export interface MetricRead {
  /** Samples read. */
  samples: number;
  /** Reads of the store (pages). */
  pages: number;
  /** Sources with samples in the window. */
  sources: number;
  warnings: string[];
}

export interface ReadOptions {
  pageSamples?: number;
  maxSourceSeries?: number;
  /** What is read, for warnings and progress ("GPU and host metrics"). */
  what: string;
  /** Extra heartbeat details (the agent, a stage). */
  progress?: Record<string, unknown>;
}

/**
 * Read the samples of `metrics` from `sources` in [from, to] at `stepSeconds` in pages into
 * `sink` (see the module's comment). Heartbeats after each page with its progress.
 */
export async function readMetricPages(
  ch: ClickHouseStore,
  q: { metrics: string[]; sources: string[]; from: string; to: string; stepSeconds: number },
  sink: PageSink,
  o: ReadOptions,
): Promise<MetricRead> {
  const pageSamples = Math.max(1, o.pageSamples ?? PAGE_SAMPLES);
  const maxSeries = Math.max(1, o.maxSourceSeries ?? MAX_SOURCE_SERIES);
  const warnings: string[] = [];
  const perMetric = await whileReading({ ...o.progress, reading: o.what, stage: 'series per source' }, () =>
    ch.metricSeriesCounts({ metrics: q.metrics, sources: q.sources, from: q.from, to: q.to }),
  );
  const step = Math.max(1, Math.floor(q.stepSeconds));
  const fromS = Math.floor(Date.parse(q.from) / 1000);
  const toS = Math.floor(Date.parse(q.to) / 1000);
  const first = Math.floor(fromS / step);
  const last = Math.floor(toS / step);
  const buckets = Math.max(1, last - first + 1);
  const counts: Array<{ source: string; series: number; metrics: Array<{ series: number; groups: number }> }> = [];
  for (const c of perMetric) {
    let one = counts.at(-1);
    if (one?.source !== c.source) {
      one = { source: c.source, series: 0, metrics: [] };
      counts.push(one);
    }
    one.series += c.series;
    one.metrics.push({ series: c.series, groups: Math.max(1, c.groups) });
  }

  // Pages: sources together while their series × steps fit; a larger source alone, over spans of
  // steps (its samples at the step before each span are kept by the sink, hence `- 1`).
  type Group = { sources: string[]; series: number; steps: number; cap?: { perMetric: number; of: number } };
  const groups: Group[] = [];
  let open: Group | undefined;
  for (const c of counts) {
    let series = c.series;
    let cap: Group['cap'];
    if (series > maxSeries) {
      // The most label groups per metric (whole histograms) that keep the source within maxSeries.
      const within = (k: number) => c.metrics.reduce((n, m) => n + Math.min(m.groups, k) * (m.series / m.groups), 0);
      let k = 1;
      for (let hi = Math.max(...c.metrics.map((m) => m.groups)); k < hi; ) {
        const mid = Math.ceil((k + hi) / 2);
        if (within(mid) <= maxSeries) k = mid;
        else hi = mid - 1;
      }
      cap = { perMetric: k, of: series };
      series = Math.ceil(within(k));
    }
    if (series * buckets > pageSamples) {
      groups.push({ sources: [c.source], series, steps: Math.max(1, Math.floor(pageSamples / series) - 1), cap });
      open = undefined;
      continue;
    }
    if (!cap && open && (open.series + series) * buckets <= pageSamples) {
      open.sources.push(c.source);
      open.series += series;
      continue;
    }
    open = { sources: [c.source], series, steps: buckets, cap };
    groups.push(open);
    if (cap) open = undefined;
  }
  const pages = groups.reduce((n, g) => n + Math.ceil(buckets / g.steps), 0);
  let page = 0;
  let samples = 0;
  let sourcesDone = 0;
  let leftOut = 0;
  let capped = 0;
  for (const g of groups) {
    const read = g.cap ? new Set<string>() : undefined;
    for (let b = first; b <= last; b += g.steps) {
      const from = Math.max(fromS, b * step);
      const to = Math.min(toS, (Math.min(last, b + g.steps - 1) + 1) * step - 1);
      const rows = await whileReading({ ...o.progress, reading: o.what, page: page + 1, pages, samples, stepSeconds: step }, () =>
        ch.metricSamples({
          metrics: q.metrics,
          sources: g.sources,
          from: new Date(from * 1000).toISOString(),
          to: new Date(to * 1000).toISOString(),
          stepSeconds: step,
          ...(g.cap ? { groups: { perMetric: g.cap.perMetric, from: q.from, to: q.to } } : {}),
        }),
      );
      if (read) for (const r of rows) read.add(`${r.metric}\u0000${r.labels}`);
      sink.add(rows);
      samples += rows.length;
      page++;
      if (b + g.steps > last) sourcesDone += g.sources.length;
      heartbeat({
        ...o.progress,
        reading: o.what,
        page,
        pages,
        sourcesRead: sourcesDone,
        sources: counts.length,
        samples,
        stepSeconds: step,
      });
    }
    sink.flush();
    if (g.cap && read) {
      leftOut += g.cap.of - read.size;
      capped++;
      // Each capped source named, up to MAX_NAMED_CAPS (warnings cross Temporal), then counted.
      if (capped <= MAX_NAMED_CAPS)
        warnings.push(
          `${o.what}: source ${g.sources[0]} has ${fmt(g.cap.of)} series, more than the ${fmt(maxSeries)} read per source; ` +
            `the first ${fmt(g.cap.perMetric)} label set${g.cap.perMetric === 1 ? '' : 's'} of each metric (by labels, histograms whole) were read, ` +
            `${fmt(g.cap.of - read.size)} series left out.`,
        );
    }
  }
  if (capped > 1) warnings.push(`${o.what}: ${fmt(leftOut)} series of ${fmt(capped)} sources left out in all.`);
  return { samples, pages, sources: counts.length, warnings };
}

/**
 * The series of `sources` in the window, built page by page and handed to `each` per page of
 * sources (so the caller keeps only what it reduces them to).
 */
export async function eachSeries<K extends 'performance' | 'resource'>(
  ch: ClickHouseStore,
  kind: K,
  w: AgentWindow,
  sources: InfraSource[],
  each: (series: K extends 'performance' ? PerformanceSeries[] : ResourceSeries[]) => void,
  o: ReadOptions & { metrics: string[] },
): Promise<MetricRead & { stepSeconds: number }> {
  const { stepSeconds, warning } = windowStep(w, o.what);
  const builder = seriesBuilder(kind, stepSeconds, hostMap(sources));
  const read = await readMetricPages(
    ch,
    { metrics: o.metrics, sources: sources.map((s) => s.id), from: w.from, to: w.to, stepSeconds },
    {
      add: (samples) => builder.add(samples),
      flush: () => {
        const series = builder.finish();
        for (const s of series) if (s.points.length > MAX_POINTS) s.points = s.points.slice(-MAX_POINTS);
        each(series);
      },
    },
    o,
  );
  return { ...read, stepSeconds, warnings: warning ? [warning, ...read.warnings] : read.warnings };
}

/** Utilisation of a host with a resource id; readings outside [0, 1] are left out (no "idle" from a negative reading). */
export function utilisationOfSeries(s: ResourceSeries): ResourceUtilisation | undefined {
  if (!s.resourceId) return undefined;
  const u = s.points
    .map((p) => p.gpuUtil ?? p.cpuUtil)
    .filter(isShare)
    .sort((a, b) => a - b);
  const n = u.length;
  if (n === 0) return undefined;
  return {
    resourceId: s.resourceId,
    meanUtilisation: u.reduce((a, b) => a + b, 0) / n,
    idleShare: u.filter((x) => x < 0.05).length / n,
    p95Utilisation: u[Math.min(n - 1, Math.floor(0.95 * n))]!,
    samples: n,
  };
}

/** Utilisation per host with a resource id (see `utilisationOfSeries`). */
export function utilisationOf(series: ResourceSeries[]): ResourceUtilisation[] {
  return series.map(utilisationOfSeries).filter((u): u is ResourceUtilisation => u !== undefined);
}
