/**
 * The columns of a deployment's vLLM series and the serving configuration in force at each
 * point, shared by the performance findings. Pure and workflow-safe: no I/O, no clock, no
 * randomness, no Node APIs.
 */
import type { PerformanceSeries } from '../types.js';

export type Point = PerformanceSeries['points'][number];
export type NumericKey = {
  [K in keyof Point]-?: NonNullable<Point[K]> extends number ? K : never;
}[keyof Point];

export interface Indexed {
  idx: number[];
  vals: number[];
}

/** Largest reading taken as a measurement (latencies in ms, counts, rates): beyond it sums overflow. */
const MAX_READING = 1e12;

/** Whether `v` can be a reading of `key`: finite, not negative, a share for the KV-cache usage. */
export function plausible(key: NumericKey, v: unknown): v is number {
  return typeof v === 'number' && v >= 0 && v <= (key === 'kvCacheUsage' ? 1 : MAX_READING);
}

/** The plausible values of one metric (see `plausible`) with their point indices. */
export function column(points: readonly Point[], key: NumericKey): Indexed {
  const idx: number[] = [];
  const vals: number[] = [];
  points.forEach((p, i) => {
    const v = p[key];
    if (plausible(key, v)) {
      idx.push(i);
      vals.push(v);
    }
  });
  return { idx, vals };
}

export function valuesIn(points: readonly Point[], key: NumericKey, from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = Math.max(0, from); i < Math.min(points.length, to); i++) {
    const v = points[i]?.[key];
    if (plausible(key, v)) out.push(v);
  }
  return out;
}

// ----- Serving configuration ----------------------------------------------------------------

export interface ConfigChange {
  index: number;
  ts: string;
  before: Record<string, string>;
  after: Record<string, string>;
  changed: string[];
}

/** Config in force at each point (labels carried forward from the last point that had them). */
export function configsAt(points: readonly Point[]): Array<Record<string, string> | undefined> {
  let last: Record<string, string> | undefined;
  return points.map((p) => {
    if (p.config && Object.keys(p.config).length > 0) last = p.config;
    return last;
  });
}

/**
 * Labels that say where a series was scraped (Prometheus' target and Kubernetes' pod), not how
 * vLLM serves: a pod replaced by a rollout, a restart or autoscaling changes them, the serving
 * configuration not.
 */
const TARGET_LABELS = new Set([
  'instance',
  'job',
  'pod',
  'pod_name',
  'pod_template_hash',
  'namespace',
  'container',
  'endpoint',
  'service',
  'node',
  'uid',
  'kubernetes_pod_name',
  'kubernetes_namespace',
  'prometheus',
  'prometheus_replica',
]);

/** Changes of the serving configuration between points (target labels, see TARGET_LABELS, are not one). */
export function configChanges(points: readonly Point[]): ConfigChange[] {
  const out: ConfigChange[] = [];
  let last: Record<string, string> | undefined;
  points.forEach((p, i) => {
    const cfg = p.config;
    if (!cfg || Object.keys(cfg).length === 0) return;
    if (last) {
      const keys = [...new Set([...Object.keys(last), ...Object.keys(cfg)])].filter((k) => !TARGET_LABELS.has(k)).sort();
      const changed = keys.filter((k) => last?.[k] !== cfg[k]);
      if (changed.length > 0) out.push({ index: i, ts: p.ts, before: last, after: cfg, changed });
    }
    last = cfg;
  });
  return out;
}

export function describeChange(c: ConfigChange): string {
  return c.changed.map((k) => `${k} ${c.before[k] ?? '(unset)'} → ${c.after[k] ?? '(unset)'}`).join('; ');
}

export function num(cfg: Record<string, string> | undefined, key: string): number | undefined {
  const raw = cfg?.[key];
  if (raw === undefined) return undefined;
  const v = Number(raw);
  return Number.isFinite(v) && v > 0 ? v : undefined;
}
