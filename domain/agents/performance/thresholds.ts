/**
 * Thresholds of the performance agent's findings; what each one decides is described in
 * findings.ts. Pure data, workflow-safe.
 */
export const PERFORMANCE_THRESHOLDS = {
  /** KV cache usage (0..1) at or above which the cache counts as saturated. */
  kvCacheSaturated: 0.9,
  /** Minimum saturated points (with preemptions) for a finding, and minimum share of the window. */
  kvMinPoints: 3,
  kvMinShare: 0.1,
  /** vLLM's default KV block size, used when the `block_size` label is absent. */
  defaultBlockSize: 16,
  /** Minimum after/before factor of p95 latency for a regression. */
  regressionMinFactor: 1.3,
  /** Factor at or above which a regression is high (and medium) severity. */
  regressionHighFactor: 3,
  regressionMediumFactor: 1.8,
  /** Change-point options for latency series. */
  changePoint: { minSegment: 3, minEffect: 3, minRelativeChange: 0.1 },
  /** Relative rise of TTFT / TPOT that counts as elevated. */
  elevatedFactor: 1.5,
  /** Absolute p95 thresholds on the recent level. */
  ttftP95MaxMs: 2000,
  tpotP95MaxMs: 100,
  /** Queueing: mean waiting ≥ factor × mean running over the last third, and ≥ minWaiting. */
  queueingFactor: 2,
  queueingMinWaiting: 1,
  /** Anomaly: centred rolling median half window, spike factor and robust-sigma multiple, minimum run. */
  anomalyHalfWindow: 7,
  anomalyFactor: 2,
  anomalySigmas: 5,
  anomalyMinRun: 3,
  /** Points at which a finding's confidence reaches its maximum. */
  fullConfidencePoints: 30,
} as const;
