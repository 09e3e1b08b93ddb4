/**
 * The performance agent's latency findings: 'latency-regression' (a p95 e2e mean shift with its
 * probable cause) and 'ttft' / 'inter-token-latency' (a relative rise or a recent level above an
 * absolute threshold). Pure and workflow-safe: no I/O, no clock, no randomness, no Node APIs.
 */
import type { Finding, PerformanceSeries, Severity } from '../types.js';
import { fixed, round } from '../../../common/format.js';
import { changePoint, confidenceFromCount, mean } from '../series.js';
import type { KvAnalysis } from './kv-cache.js';
import { column, configChanges, describeChange, valuesIn, type Point } from './points.js';
import { PERFORMANCE_THRESHOLDS as T } from './thresholds.js';

export function latencyRegression(series: PerformanceSeries, kv: KvAnalysis | undefined): Finding | undefined {
  const pts = series.points;
  const p95 = column(pts, 'p95LatencyMs');
  const cp = changePoint(p95.vals, T.changePoint);
  if (!cp || cp.ratio < T.regressionMinFactor) return undefined;
  const split = p95.idx[cp.index] as number;
  const at = (pts[split] as Point).ts;
  const factor = cp.ratio;

  const evidence: Record<string, number | string> = {
    p95_before_ms: round(cp.before, 1),
    p95_after_ms: round(cp.after, 1),
    factor: round(factor, 2),
    changed_at: at,
    points_before: cp.index,
    points_after: p95.vals.length - cp.index,
  };
  const p99Before = valuesIn(pts, 'p99LatencyMs', 0, split);
  const p99After = valuesIn(pts, 'p99LatencyMs', split, pts.length);
  if (p99Before.length > 0 && p99After.length > 0) {
    evidence.p99_before_ms = round(mean(p99Before), 1);
    evidence.p99_after_ms = round(mean(p99After), 1);
    evidence.p99_factor = round(mean(p99After) / mean(p99Before), 2);
  }

  const near = Math.max(2, Math.ceil(0.05 * pts.length));
  const change = configChanges(pts).find((c) => Math.abs(c.index - split) <= near);
  if (change) {
    evidence.config_changed_at = change.ts;
    evidence.config_change = describeChange(change);
  }
  const kvAfter = kv ? kv.saturatedIdx.filter((i) => i >= split).length : 0;
  const kvCause = kv !== undefined && kvAfter * 2 > kv.saturatedIdx.length;

  let recommendation: string;
  if (kvCause && kv) {
    evidence.probable_cause = 'kv-cache-saturation';
    recommendation =
      `Probable cause: the KV cache (see the kv-cache-saturation finding)` +
      `${change ? ` after the config change at ${change.ts} (${describeChange(change)})` : ''}: ${kv.fixSummary}.`;
  } else if (change) {
    evidence.probable_cause = `config change: ${describeChange(change)}`;
    recommendation =
      `The regression coincides with the config change at ${change.ts} (${describeChange(change)}): roll it back or ` +
      `compare the two configurations under the same load.`;
  } else {
    evidence.probable_cause = 'unknown';
    recommendation =
      'No config change or KV-cache saturation coincides with the shift: compare traffic (prompt/generation tokens/s, ' +
      'waiting requests) and the host (GPU clocks, co-located jobs) before and after it.';
  }

  const severity: Severity = factor >= T.regressionHighFactor ? 'high' : factor >= T.regressionMediumFactor ? 'medium' : 'low';
  return {
    kind: 'latency-regression',
    title: `p95 latency regressed ${fixed(cp.before)} → ${fixed(cp.after)} ms (×${fixed(factor, 1)}) at ${at}`,
    severity,
    subject: series.deployment,
    evidence,
    recommendation,
    impact: `p95 back to ~${fixed(cp.before)} ms`,
    confidence: confidenceFromCount(Math.min(cp.index, p95.vals.length - cp.index), T.fullConfidencePoints / 2),
  };
}

// ----- TTFT and inter-token latency -------------------------------------------------------

export function elevatedLatency(
  series: PerformanceSeries,
  key: 'p95TtftMs' | 'p95TpotMs',
  kv: KvAnalysis | undefined,
): Finding | undefined {
  const col = column(series.points, key);
  const n = col.vals.length;
  if (n < 3) return undefined;
  const isTtft = key === 'p95TtftMs';
  const limit = isTtft ? T.ttftP95MaxMs : T.tpotP95MaxMs;
  const label = isTtft ? 'p95 TTFT' : 'p95 time per output token';
  const unit = isTtft ? 'ttft' : 'tpot';

  const recentCount = Math.max(3, Math.floor(n / 4));
  const recent = mean(col.vals.slice(n - recentCount));
  const cp = changePoint(col.vals, T.changePoint);
  const relative = cp !== undefined && cp.ratio >= T.elevatedFactor;
  const absolute = recent > limit;
  if (!relative && !absolute) return undefined;

  const evidence: Record<string, number | string> = {
    [`${unit}_p95_recent_ms`]: round(recent, 1),
    [`${unit}_p95_threshold_ms`]: limit,
    reason: relative && absolute ? 'relative+absolute' : relative ? 'relative' : 'absolute',
  };
  if (relative && cp) {
    evidence[`${unit}_p95_before_ms`] = round(cp.before, 1);
    evidence[`${unit}_p95_after_ms`] = round(cp.after, 1);
    evidence.factor = round(cp.ratio, 2);
    evidence.changed_at = (series.points[col.idx[cp.index] as number] as Point).ts;
  }
  const kvCause =
    kv !== undefined &&
    relative &&
    cp !== undefined &&
    kv.saturatedIdx.filter((i) => i >= (col.idx[cp.index] as number)).length * 2 > kv.saturatedIdx.length;
  if (kvCause) evidence.probable_cause = 'kv-cache-saturation';

  const base = isTtft
    ? 'Prefill is slow or requests wait before it: enable chunked prefill (--enable-chunked-prefill, tune ' +
      '--max-num-batched-tokens), enable prefix caching (--enable-prefix-caching) for shared prompt prefixes, and add ' +
      'replicas if requests queue.'
    : 'Each decode step is slow: a large running batch stretches every step — lower --max-num-seqs to trade throughput ' +
      'for latency, or spread the model over more GPUs (--tensor-parallel-size) or use speculative decoding.';
  const recommendation =
    kvCause && kv
      ? `Preempted sequences are recomputed, which inflates this latency: fix the KV cache first (${kv.fixSummary}). ${base}`
      : base;

  const worst = Math.max(relative && cp ? cp.ratio : 0, recent / limit);
  const what =
    relative && cp
      ? `${label} up ${fixed(cp.before)} → ${fixed(cp.after)} ms (×${fixed(cp.ratio, 1)})`
      : `${label} at ${fixed(recent)} ms, above the ${limit} ms threshold`;
  return {
    kind: isTtft ? 'ttft' : 'inter-token-latency',
    title: what,
    severity: worst >= 3 ? 'high' : 'medium',
    subject: series.deployment,
    evidence,
    recommendation,
    impact: relative && cp ? `${label} back to ~${fixed(cp.before)} ms` : `${label} under ${limit} ms`,
    confidence: confidenceFromCount(n, T.fullConfidencePoints),
  };
}
