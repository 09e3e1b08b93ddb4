/**
 * The performance agent's 'queueing' finding: requests waiting well above those running over the
 * last third of the window, with the fix the KV cache and --max-num-seqs point at. Pure and
 * workflow-safe: no I/O, no clock, no randomness, no Node APIs.
 */
import type { Finding, PerformanceSeries } from '../types.js';
import { fixed, percentPoints, round } from '../../../common/format.js';
import { confidenceFromCount, mean } from '../series.js';
import { configsAt, num, plausible, type Point } from './points.js';
import { PERFORMANCE_THRESHOLDS as T } from './thresholds.js';

export function queueing(series: PerformanceSeries): Finding | undefined {
  const pts = series.points.filter((p) => plausible('running', p.running) && plausible('waiting', p.waiting));
  if (pts.length < 3) return undefined;
  const tail = pts.slice(pts.length - Math.max(3, Math.floor(pts.length / 3)));
  const run = mean(tail.map((p) => p.running as number));
  const wait = mean(tail.map((p) => p.waiting as number));
  if (wait < T.queueingMinWaiting || wait < T.queueingFactor * run) return undefined;
  const ratio = run > 0 ? wait / run : Infinity;

  const kvVals = tail.map((p) => p.kvCacheUsage).filter((v): v is number => plausible('kvCacheUsage', v));
  const kv = kvVals.length > 0 ? mean(kvVals) : undefined;
  const lastCfg = configsAt(series.points).at(-1);
  const maxNumSeqs = num(lastCfg, 'max_num_seqs');
  const capacityFactor = run > 0 ? Math.ceil((run + wait) / run) : undefined;

  const evidence: Record<string, number | string> = {
    waiting_mean: round(wait, 2),
    running_mean: round(run, 2),
    waiting_to_running_ratio: Number.isFinite(ratio) ? round(ratio, 2) : 'running is 0',
    window_points: tail.length,
    window_from: (tail[0] as Point).ts,
  };
  if (kv !== undefined) evidence.kv_cache_usage_pct = percentPoints(kv);
  if (maxNumSeqs !== undefined) evidence.max_num_seqs = maxNumSeqs;
  if (capacityFactor !== undefined) evidence.capacity_factor_needed = capacityFactor;

  let recommendation: string;
  if (kv !== undefined && kv >= T.kvCacheSaturated) {
    recommendation =
      `The KV cache is ${fixed(percentPoints(kv))} % full, so the scheduler cannot admit waiting requests: grow the KV cache or add ` +
      `replicas (about ${capacityFactor ?? 2}× the current serving capacity); raising --max-num-seqs would not help.`;
  } else if (maxNumSeqs !== undefined && run >= 0.9 * maxNumSeqs) {
    const kvRoom = kv !== undefined && kv > 0 ? Math.floor((maxNumSeqs * T.kvCacheSaturated) / kv + 1e-9) : undefined;
    const target = Math.max(maxNumSeqs + 1, Math.min(Math.ceil(run + wait), kvRoom ?? Math.ceil(run + wait)));
    recommendation =
      `Running requests sit at --max-num-seqs ${maxNumSeqs}` +
      `${kv !== undefined ? ` while the KV cache is only ${fixed(percentPoints(kv))} % used` : ''}: raise --max-num-seqs to ~${target}` +
      `${kvRoom !== undefined ? ` (the cache has room for ~${kvRoom} at ${percentPoints(T.kvCacheSaturated)} % usage)` : ''}, ` +
      `or add replicas (about ${capacityFactor ?? 2}× the current serving capacity).`;
  } else {
    recommendation =
      `${fixed(wait, 1)} requests wait for every ${fixed(run, 1)} running: add replicas (about ${capacityFactor ?? 2}× the ` +
      `current serving capacity) or raise batching limits (--max-num-seqs, --max-num-batched-tokens) if the GPU and KV ` +
      `cache have headroom.`;
  }
  return {
    kind: 'queueing',
    title: `Requests queue: ${fixed(wait, 1)} waiting vs ${fixed(run, 1)} running (×${Number.isFinite(ratio) ? fixed(ratio, 1) : '∞'})`,
    severity: ratio >= 5 ? 'high' : 'medium',
    subject: series.deployment,
    evidence,
    recommendation,
    impact: 'waiting requests near 0; TTFT no longer includes queue time',
    confidence: confidenceFromCount(tail.length, T.fullConfidencePoints / 3),
  };
}
