/**
 * Thresholds of the resource agent's findings; what each one decides is described in
 * findings.ts. Pure data, workflow-safe.
 */
export const RESOURCE_THRESHOLDS = {
  /** A sample (or an hour of the day) below this GPU utilisation is idle. */
  idleUtil: 0.05,
  /** p95 GPU utilisation below which a host is over-provisioned. */
  scaleDownP95: 0.3,
  /** p95 GPU / memory utilisation above which a host needs more capacity. */
  scaleUpGpuP95: 0.85,
  scaleUpMemP95: 0.9,
  /** Mean GPU utilisation below which a host is a consolidation candidate. */
  consolidationMean: 0.3,
  /** Utilisation every dimension may reach at p95 after a move (headroom 20 %). */
  targetUtil: 0.8,
  /** Utilisation level the capacity forecast counts down to. */
  forecastLimit: 0.85,
  /** Slope (utilisation per day) below which there is no growth. */
  noGrowthPerDay: 0.002,
  /** Window (days) at which the forecast's confidence is no longer scaled down. */
  forecastFullDays: 3,
  /** Shortest window (days) a growth forecast is made from: hours of data say nothing about days ahead. */
  forecastMinDays: 1,
  /** Bottleneck rules (mean utilisations). */
  memoryBoundMin: 0.5,
  boundMargin: 0.1,
  cpuBoundMin: 0.6,
  cpuOverGpu: 0.25,
  gpuBoundMin: 0.6,
  dramBoundMin: 0.5,
  /** Daily shape: peak/trough ratio that counts as a strong cycle, idle hours worth scheduling. */
  strongCycleRatio: 3,
  minIdleHours: 4,
  /** Minimum points per host for any finding, and points at full confidence. */
  minPoints: 6,
  fullConfidencePoints: 48,
} as const;
