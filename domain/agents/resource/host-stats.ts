/**
 * Per-host summaries of a GPU host's utilisation series (mean, p95 and count of each dimension,
 * the catalog type) and their evidence fields, shared by the resource findings. Pure and
 * workflow-safe: no I/O, no clock, no randomness, no Node APIs.
 */
import type { InstanceType, ResourceSeries } from '../types.js';
import { percentPoints } from '../../../common/format.js';
import { mean, quantile } from '../series.js';

type Point = ResourceSeries['points'][number];
type Key = 'gpuUtil' | 'smActive' | 'dramActive' | 'cpuUtil' | 'memUtil';

export interface Summary {
  mean: number;
  p95: number;
  n: number;
}

export interface HostStats {
  s: ResourceSeries;
  gpu?: Summary;
  cpu?: Summary;
  mem?: Summary;
  sm?: Summary;
  dram?: Summary;
  fbShare?: Summary;
  type?: InstanceType;
  n: number;
}

function summarise(vals: number[]): Summary | undefined {
  if (vals.length === 0) return undefined;
  return { mean: mean(vals), p95: quantile(vals, 0.95), n: vals.length };
}

/** A share in [0, 1]; anything else (a negative or above-100 % reading of a faulty exporter) is no measurement. */
export const isShare = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v <= 1;

/** The points' readings of `key` that are shares (see `isShare`). */
export function col(points: readonly Point[], key: Key): number[] {
  return points.map((p) => p[key]).filter(isShare);
}

export function stats(s: ResourceSeries, catalog: readonly InstanceType[]): HostStats {
  const fb = s.points
    .filter((p) => typeof p.fbUsedGiB === 'number' && typeof p.fbTotalGiB === 'number' && (p.fbTotalGiB as number) > 0)
    .map((p) => (p.fbUsedGiB as number) / (p.fbTotalGiB as number))
    .filter(isShare);
  const h: HostStats = { s, n: s.points.length };
  const assign = (k: 'gpu' | 'cpu' | 'mem' | 'sm' | 'dram' | 'fbShare', v: Summary | undefined): void => {
    if (v) h[k] = v;
  };
  assign('gpu', summarise(col(s.points, 'gpuUtil')));
  assign('cpu', summarise(col(s.points, 'cpuUtil')));
  assign('mem', summarise(col(s.points, 'memUtil')));
  assign('sm', summarise(col(s.points, 'smActive')));
  assign('dram', summarise(col(s.points, 'dramActive')));
  assign('fbShare', summarise(fb));
  const type = s.instanceType !== undefined ? catalog.find((t) => t.name === s.instanceType) : undefined;
  if (type) h.type = type;
  return h;
}

export function utilEvidence(h: HostStats): Record<string, number | string> {
  const e: Record<string, number | string> = { points: h.n };
  const put = (name: string, v: Summary | undefined): void => {
    if (!v) return;
    e[`${name}_mean_pct`] = percentPoints(v.mean);
    e[`${name}_p95_pct`] = percentPoints(v.p95);
  };
  put('gpu_util', h.gpu);
  put('mem_util', h.mem);
  put('cpu_util', h.cpu);
  put('sm_active', h.sm);
  put('dram_active', h.dram);
  put('fb_used_share', h.fbShare);
  if (h.s.instanceType) e.instance_type = h.s.instanceType;
  e.gpus = h.s.gpus;
  return e;
}
