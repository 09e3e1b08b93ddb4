/**
 * The performance agent's 'anomaly' findings: short p95 latency spikes above the rolling median,
 * not explained by a config change, with the serving signals that moved with them. Pure and
 * workflow-safe: no I/O, no clock, no randomness, no Node APIs.
 */
import type { Finding, PerformanceSeries } from '../types.js';
import { fixed, round } from '../../../common/format.js';
import { confidenceFromCount, mad, mean, median, rollingMedian, runs } from '../series.js';
import { column, configChanges, valuesIn, type NumericKey, type Point } from './points.js';
import { PERFORMANCE_THRESHOLDS as T } from './thresholds.js';

export function anomalies(series: PerformanceSeries): Finding[] {
  const pts = series.points;
  const col = column(pts, 'p95LatencyMs');
  const n = col.vals.length;
  if (n < 2 * T.anomalyHalfWindow) return [];
  const base = rollingMedian(col.vals, T.anomalyHalfWindow);
  const residuals = col.vals.map((v, i) => v - (base[i] as number));
  const sigma = 1.4826 * mad(residuals);
  const flags = col.vals.map((v, i) => {
    const m = base[i] as number;
    return v > T.anomalyFactor * m && v > m + T.anomalySigmas * sigma;
  });
  const changes = configChanges(pts);
  const out: Finding[] = [];
  for (const r of runs(flags)) {
    if (r.end - r.start + 1 < T.anomalyMinRun) continue;
    const from = col.idx[r.start] as number;
    const to = col.idx[r.end] as number;
    if (changes.some((c) => c.index >= from - 1 && c.index <= to + 1)) continue; // explained by a config change
    const spike = col.vals.slice(r.start, r.end + 1);
    // Usual level: the unflagged values around the run (the rolling window on either side).
    const around: number[] = [];
    for (let i = Math.max(0, r.start - T.anomalyHalfWindow); i <= Math.min(n - 1, r.end + T.anomalyHalfWindow); i++) {
      if (!flags[i]) around.push(col.vals[i] as number);
    }
    const baseline = around.length > 0 ? median(around) : median(base.slice(r.start, r.end + 1));
    const peak = Math.max(...spike);
    const factor = baseline > 0 ? peak / baseline : Infinity;
    const minutes = round(((to - from + 1) * series.stepSeconds) / 60, 1);

    // Co-moving signals: mean during the spike against the median outside it.
    const signals: string[] = [];
    const evidence: Record<string, number | string> = {
      p95_peak_ms: round(peak, 1),
      p95_baseline_ms: round(baseline, 1),
      factor: round(factor, 2),
      points: r.end - r.start + 1,
      duration_min: minutes,
      from: (pts[from] as Point).ts,
      to: (pts[to] as Point).ts,
    };
    const compare = (key: NumericKey): { during: number; outside: number } | undefined => {
      const during = valuesIn(pts, key, from, to + 1);
      const outside = [...valuesIn(pts, key, 0, from), ...valuesIn(pts, key, to + 1, pts.length)];
      if (during.length === 0 || outside.length === 0) return undefined;
      return { during: mean(during), outside: median(outside) };
    };
    const prompt = compare('promptTokensPerSec');
    if (prompt && prompt.outside > 0 && prompt.during >= 1.5 * prompt.outside) {
      evidence.prompt_tokens_per_sec_factor = round(prompt.during / prompt.outside, 2);
      signals.push(`prompt tokens/s ×${fixed(prompt.during / prompt.outside, 1)} (a burst of traffic or long prompts)`);
    }
    const waiting = compare('waiting');
    if (waiting && waiting.during >= Math.max(1, 2 * waiting.outside)) {
      evidence.waiting_during = round(waiting.during, 2);
      signals.push(`waiting requests ${fixed(waiting.outside, 1)} → ${fixed(waiting.during, 1)} (queue build-up)`);
    }
    const pre = compare('preemptionsPerMin');
    if (pre && pre.during > 0 && pre.during > pre.outside) {
      evidence.preemptions_per_min = round(pre.during, 2);
      signals.push(`${fixed(pre.during, 1)} preemptions/min (KV cache pressure)`);
    }
    const explanation =
      signals.length > 0
        ? `It coincides with ${signals.join(', ')}.`
        : 'No serving metric moved with it (traffic, queue, KV cache): look at the host — GPU clocks or throttling, ' +
          'co-located jobs, network or storage stalls.';
    evidence.explanation_signals = signals.length > 0 ? signals.join('; ') : 'none';

    out.push({
      kind: 'anomaly',
      title: `p95 latency spike to ${fixed(peak)} ms (×${fixed(factor, 1)} the usual ${fixed(baseline)} ms) for ${minutes} min`,
      severity: factor >= 5 ? 'medium' : 'low',
      subject: series.deployment,
      evidence,
      recommendation:
        `p95 latency rose to ${fixed(peak)} ms for ${r.end - r.start + 1} points (${minutes} min, ${evidence.from} – ` +
        `${evidence.to}) and came back, with no config change. ${explanation} If it recurs, alert on it and keep ` +
        `headroom for bursts (replicas or autoscaling on waiting requests).`,
      impact: `p95 stays near ~${fixed(baseline)} ms through bursts`,
      confidence: confidenceFromCount(n, T.fullConfidencePoints),
    });
  }
  return out;
}
