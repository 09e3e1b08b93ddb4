/**
 * Deterministic findings of the performance agent (LLM integration point 2) from one
 * deployment's vLLM metrics. Pure and workflow-safe: no I/O, no clock, no randomness, no Node
 * APIs — the same series always gives the same findings, in workflows and activities alike.
 *
 * Kinds (thresholds in `PERFORMANCE_THRESHOLDS`, thresholds.ts; each family of findings in its
 * own module):
 * - 'kv-cache-saturation': KV cache usage ≥ 90 % while vLLM preempts sequences, on ≥ 3 points
 *   and ≥ 10 % of the window. When the serving config labels carry `max_model_len`,
 *   `num_gpu_blocks` and `block_size` (vLLM's default 16 is assumed when absent), the cache
 *   capacity in tokens (num_gpu_blocks × block_size) is compared with the demand
 *   max_model_len × typical concurrency (median `running` over the window); demand above
 *   capacity is named as the root cause, with a config change that raised the demand (or cut
 *   the cache) as its trigger, and the recommendation gives the numbers for three fixes:
 *   lower `--max-model-len`, grow the cache (`--gpu-memory-utilization`, more GPUs with
 *   `--tensor-parallel-size`) by the needed factor, or cap `--max-num-seqs`.
 * - 'latency-regression': a mean shift (series.changePoint) upwards by ≥ 1.3× in p95 e2e
 *   latency; p99 is reported on both sides of the same split. The probable cause
 *   (evidence `probable_cause`) is 'kv-cache-saturation' when most saturated points follow the
 *   split, else a config change within a few points of it, else 'unknown'.
 * - 'ttft' / 'inter-token-latency': p95 TTFT / time per output token shifted up by ≥ 1.5×
 *   within the window, or its recent level (last quarter, ≥ 3 points) above an absolute
 *   threshold: TTFT 2000 ms (an interactive chat answer should start within ~2 s), TPOT 100 ms
 *   (10 tokens/s, slower than people read a stream).
 * - 'queueing': over the last third of the window, mean `waiting` ≥ 2 × mean `running` and
 *   ≥ 1 request.
 * - 'anomaly': ≥ 3 consecutive p95 latency points above both 2 × the centred rolling median
 *   (± 7 points) and the median + 5 robust standard deviations (1.4826 × MAD of the residuals),
 *   with no config change within one point of the run — a spike, not a lasting shift (needs
 *   ≥ 14 latency points). The explanation names co-moving signals: prompt tokens/s ≥ 1.5×,
 *   waiting ≥ 2× (and ≥ 1), or preemptions during the spike; else it points at the host.
 */
import type { Finding, PerformanceSeries } from '../types.js';
import { fixed } from '../../../common/format.js';
import { bySeverity } from '../ordering.js';
import { anomalies } from './anomalies.js';
import { kvCacheFinding } from './kv-cache.js';
import { elevatedLatency, latencyRegression } from './latency.js';
import { queueing } from './queueing.js';

/** All performance findings for one deployment, most severe first (stable within a severity). */
export function performanceFindings(series: PerformanceSeries): Finding[] {
  const kv = kvCacheFinding(series);
  const regression = latencyRegression(series, kv);
  if (kv && regression && regression.evidence.probable_cause === 'kv-cache-saturation') {
    kv.finding.impact = `p95 back to ~${fixed(Number(regression.evidence.p95_before_ms))} ms; no preemptions`;
    kv.finding.evidence.p95_before_ms = regression.evidence.p95_before_ms as number;
    kv.finding.evidence.p95_after_ms = regression.evidence.p95_after_ms as number;
  }
  const found: Finding[] = [];
  if (kv) found.push(kv.finding);
  if (regression) found.push(regression);
  for (const key of ['p95TtftMs', 'p95TpotMs'] as const) {
    const f = elevatedLatency(series, key, kv);
    if (f) found.push(f);
  }
  const q = queueing(series);
  if (q) found.push(q);
  found.push(...anomalies(series));
  return bySeverity(found);
}
