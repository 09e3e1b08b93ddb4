/**
 * Deterministic findings of the resource agent (LLM integration point 3) from GPU hosts'
 * utilisation series (DCGM, node exporter). Pure and workflow-safe: no I/O, no clock, no
 * randomness, no Node APIs. The instance catalog is a parameter, so prices and shapes come from
 * the caller.
 *
 * Definitions (thresholds in `RESOURCE_THRESHOLDS`, thresholds.ts; each family of findings in its
 * own module):
 * - GPU utilisation = `gpuUtil`; "memory" = host memory utilisation `memUtil`. The GPU
 *   framebuffer share (fbUsedGiB / fbTotalGiB) is reported as evidence only: vLLM preallocates
 *   ~90 % of the framebuffer for its KV cache whatever the load, so it is no demand signal.
 * - 'utilisation-pattern' (per host): mean / p95 GPU utilisation, share of idle samples
 *   (< 5 %), and — when the window spans ≥ 24 h — the daily shape by UTC hour: peak and trough
 *   hour, peak/trough ratio, idle hours (hours of the day whose mean is < 5 %).
 * - 'bottleneck' (per host), from the mean utilisation of each dimension:
 *   memory-bound when memory ≥ 50 % and exceeds both GPU and CPU by ≥ 10 points (the seed:
 *   memory 60 %, GPU 45 %, CPU 30 %); CPU-bound when CPU ≥ 60 % and exceeds GPU by ≥ 25 points;
 *   GPU-bound when GPU ≥ 60 % and exceeds memory and CPU by ≥ 10 points, refined with DCGM to
 *   'gpu-memory-bandwidth' (DRAM active ≥ 50 % and ≥ SM active) or 'gpu-compute'.
 *   Memory-bound hosts get the cheapest catalog type of family 'memory' that covers the needs
 *   below; CPU-bound hosts the cheapest of family 'compute'.
 * - Needs of a host (for any move): p95 of each dimension × the current type's capacity, divided
 *   by the 80 % target utilisation (GPUs as GPU-equivalents of the current GPU; the candidate's
 *   per-GPU memory must be ≥ the current one, since the model was sized for it). A dimension
 *   without data needs the current capacity (no blind shrinking).
 *   Saving = (current hourly − new hourly) × 730 h/month (× 12 for a year).
 * - 'scale-down': p95 GPU < 30 %; 'scale-up': p95 GPU > 85 % or p95 memory > 90 %; both with the
 *   GPUs needed at the 80 % target and, when the type is in the catalog, the cheapest fitting
 *   type and its cost difference. Steady load in between gives no scale advice.
 * - 'consolidation': hosts with mean GPU < 30 % are packed (first-fit decreasing by p95
 *   GPU-equivalents into the hosts themselves at 80 % of their GPUs, keeping cheaper hosts
 *   first); hosts left empty can be freed. Assumes the moved workloads fit side by side in GPU
 *   memory (smaller models, MIG/MPS, or merged replicas) — check before acting.
 * - 'capacity-forecast' (per host): least-squares trend of GPU utilisation per day; days until
 *   the fitted line reaches 85 %, or "no growth" when the slope is < 0.2 points/day; confidence
 *   = r2 for growth (the amount of data for "no growth"), scaled down when the window is
 *   shorter than 3 days; no growth forecast from less than a day of data.
 * Monetary fields are set only when the instance types are found in the catalog.
 */
import type { Finding, InstanceType, ResourceSeries } from '../types.js';
import { bySeverity } from '../ordering.js';
import { consolidation } from './consolidation.js';
import { type HostStats, stats } from './host-stats.js';
import { bottleneck, scaleAdvice } from './sizing.js';
import { RESOURCE_THRESHOLDS as T } from './thresholds.js';
import { capacityForecast, utilisationPattern } from './utilisation-over-time.js';

/**
 * All resource findings for a set of hosts, most severe first (stable within a severity).
 * Hosts with fewer than `RESOURCE_THRESHOLDS.minPoints` points are skipped.
 */
export function resourceFindings(hosts: ResourceSeries[], catalog: InstanceType[]): Finding[] {
  const acc = resourceFindingsAccumulator(catalog);
  acc.add(hosts);
  return acc.findings();
}

/**
 * `resourceFindings` of hosts given in parts: each host's own findings are computed when it is
 * added, and only its summaries (without its points) are kept for the consolidation across hosts.
 */
export function resourceFindingsAccumulator(catalog: InstanceType[]) {
  const found: Finding[] = [];
  const kept: HostStats[] = [];
  return {
    add(hosts: ResourceSeries[]): void {
      for (const s of hosts) {
        if (s.points.length < T.minPoints) continue;
        const h = stats(s, catalog);
        for (const f of [utilisationPattern(h), bottleneck(h, catalog), scaleAdvice(h, catalog), capacityForecast(h)]) {
          if (f) found.push(f);
        }
        kept.push({ ...h, s: { ...s, points: [] } });
      }
    },
    findings(): Finding[] {
      const c = consolidation(kept);
      return bySeverity(c ? [...found, c] : found);
    },
  };
}
