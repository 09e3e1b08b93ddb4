/**
 * Deterministic findings of the resource agent (LLM integration point 3) from GPU hosts'
 * utilisation series (DCGM, node exporter). Pure and workflow-safe: no I/O, no clock, no
 * randomness, no Node APIs. The instance catalog is a parameter, so prices and shapes come from
 * the caller.
 *
 * Definitions (thresholds in `RESOURCE_THRESHOLDS`):
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
import type { Finding, InstanceType, ResourceSeries, Severity } from '../types.js';
import { fixed, formatUsd, percentPoints, round } from '../../../common/format.js';
import { confidenceFromCount, linearFit, mean, quantile } from '../series.js';

/** Hours in a billing month (365 × 24 / 12), as in the instance catalog. */
const HOURS_PER_MONTH = 730;

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

const T = RESOURCE_THRESHOLDS;

type Point = ResourceSeries['points'][number];
type Key = 'gpuUtil' | 'smActive' | 'dramActive' | 'cpuUtil' | 'memUtil';

interface Summary {
  mean: number;
  p95: number;
  n: number;
}

interface HostStats {
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

function col(points: readonly Point[], key: Key): number[] {
  return points.map((p) => p[key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
}

function stats(s: ResourceSeries, catalog: readonly InstanceType[]): HostStats {
  const fb = s.points
    .filter((p) => typeof p.fbUsedGiB === 'number' && typeof p.fbTotalGiB === 'number' && (p.fbTotalGiB as number) > 0)
    .map((p) => (p.fbUsedGiB as number) / (p.fbTotalGiB as number));
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

const pct = (x: number): number => percentPoints(x);
const usd = (x: number): number => round(x, 2);

function utilEvidence(h: HostStats): Record<string, number | string> {
  const e: Record<string, number | string> = { points: h.n };
  const put = (name: string, v: Summary | undefined): void => {
    if (!v) return;
    e[`${name}_mean_pct`] = pct(v.mean);
    e[`${name}_p95_pct`] = pct(v.p95);
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

// ----- Catalog matching -----------------------------------------------------------------------

interface Needs {
  gpus: number;
  vcpus: number;
  memoryGiB: number;
  gpuMemoryGiBPerGpu: number;
}

/** What a host needs so that every dimension's p95 stays at or under the target utilisation. */
function needsOf(h: HostStats, current: InstanceType): Needs {
  return {
    gpus: h.gpu ? (h.gpu.p95 * current.gpus) / T.targetUtil : current.gpus,
    vcpus: h.cpu ? (h.cpu.p95 * current.vcpus) / T.targetUtil : current.vcpus,
    memoryGiB: h.mem ? (h.mem.p95 * current.memoryGiB) / T.targetUtil : current.memoryGiB,
    gpuMemoryGiBPerGpu: current.gpus > 0 ? current.gpuMemoryGiB : 0,
  };
}

const EPS = 1e-9;
function fits(t: InstanceType, n: Needs): boolean {
  return (
    t.gpus >= n.gpus - EPS &&
    t.vcpus >= n.vcpus - EPS &&
    t.memoryGiB >= n.memoryGiB - EPS &&
    (n.gpus <= 0 || t.gpuMemoryGiB >= n.gpuMemoryGiBPerGpu - EPS)
  );
}

/** Cheapest catalog type (ties: by name) that fits the needs, optionally of one family and cheaper than a price. */
function cheapest(
  catalog: readonly InstanceType[],
  needs: Needs,
  opts: { family?: string; exclude?: string; below?: number } = {},
): InstanceType | undefined {
  return catalog
    .filter((t) => t.name !== opts.exclude)
    .filter((t) => opts.family === undefined || t.family === opts.family)
    .filter((t) => opts.below === undefined || t.hourlyUsd < opts.below)
    .filter((t) => fits(t, needs))
    .sort((a, b) => a.hourlyUsd - b.hourlyUsd || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))[0];
}

function needsEvidence(n: Needs): Record<string, number> {
  return {
    need_gpus: round(n.gpus, 2),
    need_vcpus: round(n.vcpus, 1),
    need_memory_gib: round(n.memoryGiB, 1),
    target_util_pct: pct(T.targetUtil),
  };
}

/** Evidence and money fields of moving from `current` to `next` (positive saving = cheaper). */
function moveMoney(
  current: InstanceType,
  next: InstanceType,
): {
  evidence: Record<string, number | string>;
  monthly: number;
  annual: number;
} {
  const monthly = (current.hourlyUsd - next.hourlyUsd) * HOURS_PER_MONTH;
  return {
    evidence: {
      current_instance: current.name,
      current_hourly_usd: current.hourlyUsd,
      recommended_instance: next.name,
      recommended_family: next.family,
      recommended_hourly_usd: next.hourlyUsd,
      monthly_cost_change_usd: usd(-monthly),
    },
    monthly: usd(monthly),
    annual: usd(monthly * 12),
  };
}

function describeType(t: InstanceType): string {
  return `${t.name} (${t.family}: ${t.gpus} GPU × ${t.gpuMemoryGiB} GiB, ${t.vcpus} vCPU, ${t.memoryGiB} GiB, ${formatUsd(t.hourlyUsd)}/h)`;
}

// ----- Time axis ------------------------------------------------------------------------------

/** Milliseconds of each point: parsed ISO timestamps, or the step grid when any fails to parse. */
function times(s: ResourceSeries): number[] {
  const parsed = s.points.map((p) => Date.parse(p.ts));
  if (parsed.every((t) => Number.isFinite(t))) return parsed;
  return s.points.map((_, i) => i * s.stepSeconds * 1000);
}

// ----- Per-host findings ----------------------------------------------------------------------

function utilisationPattern(h: HostStats): Finding | undefined {
  if (!h.gpu) return undefined;
  const s = h.s;
  const gpuVals = col(s.points, 'gpuUtil');
  const idleShare = gpuVals.filter((v) => v < T.idleUtil).length / gpuVals.length;
  const evidence = utilEvidence(h);
  evidence.idle_share_pct = pct(idleShare);

  const ts = times(s);
  const spanHours = ((ts[ts.length - 1] as number) - (ts[0] as number)) / 3_600_000 + s.stepSeconds / 3600;
  let recommendation = 'Load is flat over the day: fixed capacity fits; size it by the p95.';
  let severity: Severity = 'info';
  let monthly: number | undefined;
  let shape = 'window < 24 h';
  if (spanHours >= 24) {
    const sums = new Array<number>(24).fill(0);
    const counts = new Array<number>(24).fill(0);
    s.points.forEach((p, i) => {
      if (typeof p.gpuUtil !== 'number') return;
      const hour = new Date(ts[i] as number).getUTCHours();
      sums[hour] = (sums[hour] as number) + p.gpuUtil;
      counts[hour] = (counts[hour] as number) + 1;
    });
    const hours = sums
      .map((sum, hour) => ({ hour, m: (counts[hour] as number) > 0 ? sum / (counts[hour] as number) : NaN }))
      .filter((x) => Number.isFinite(x.m));
    const peak = hours.reduce((a, b) => (b.m > a.m ? b : a));
    const trough = hours.reduce((a, b) => (b.m < a.m ? b : a));
    const idleHours = hours.filter((x) => x.m < T.idleUtil).map((x) => x.hour);
    const ratio = peak.m / Math.max(trough.m, 0.01);
    evidence.peak_hour_utc = peak.hour;
    evidence.peak_hour_gpu_util_pct = pct(peak.m);
    evidence.trough_hour_utc = trough.hour;
    evidence.trough_hour_gpu_util_pct = pct(trough.m);
    evidence.peak_to_trough_ratio = round(ratio, 2);
    evidence.idle_hours_per_day = idleHours.length;
    if (idleHours.length > 0) evidence.idle_hours_utc = idleHours.join(',');
    shape = ratio >= T.strongCycleRatio ? 'strong daily cycle' : 'flat';
    if (idleHours.length >= T.minIdleHours) {
      severity = 'low';
      recommendation =
        `GPUs are idle ${idleHours.length} h/day (UTC hours ${idleHours.join(',')}): scale this host's replicas to zero ` +
        `in those hours (scheduled or queue-based autoscaling).`;
      if (h.type) {
        monthly = usd((h.type.hourlyUsd * idleHours.length * HOURS_PER_MONTH) / 24);
        recommendation += ` At ${formatUsd(h.type.hourlyUsd)}/h that saves ~${formatUsd(monthly)}/month.`;
      }
    } else if (ratio >= T.strongCycleRatio) {
      recommendation =
        `Strong daily cycle (peak ${fixed(pct(peak.m))} % at ${peak.hour}:00 UTC, trough ${fixed(pct(trough.m))} % at ` +
        `${trough.hour}:00 UTC, ×${fixed(ratio, 1)}): autoscale replicas on waiting requests instead of sizing for the peak.`;
    }
  }
  evidence.daily_shape = shape;
  const f: Finding = {
    kind: 'utilisation-pattern',
    title: `${s.host}: GPU ${fixed(pct(h.gpu.mean))} % mean, ${fixed(pct(h.gpu.p95))} % p95, idle ${fixed(pct(idleShare))} % of the time`,
    severity,
    subject: s.host,
    evidence,
    recommendation,
    confidence: confidenceFromCount(h.gpu.n, T.fullConfidencePoints),
  };
  if (monthly !== undefined && monthly > 0) {
    f.monthlySavingUsd = monthly;
    f.annualSavingUsd = usd(monthly * 12);
  }
  return f;
}

function bottleneck(h: HostStats, catalog: readonly InstanceType[]): Finding | undefined {
  const gpu = h.gpu?.mean;
  const mem = h.mem?.mean;
  const cpu = h.cpu?.mean;
  const others = (xs: Array<number | undefined>): number => Math.max(0, ...xs.filter((x): x is number => x !== undefined));
  let bound: 'memory' | 'cpu' | 'gpu-compute' | 'gpu-memory-bandwidth' | 'gpu' | undefined;
  if (mem !== undefined && mem >= T.memoryBoundMin && mem - others([gpu, cpu]) >= T.boundMargin) bound = 'memory';
  else if (cpu !== undefined && cpu >= T.cpuBoundMin && cpu - (gpu ?? 0) >= T.cpuOverGpu) bound = 'cpu';
  else if (gpu !== undefined && gpu >= T.gpuBoundMin && gpu - others([mem, cpu]) >= T.boundMargin) {
    if (h.sm && h.dram) bound = h.dram.mean >= T.dramBoundMin && h.dram.mean >= h.sm.mean ? 'gpu-memory-bandwidth' : 'gpu-compute';
    else bound = 'gpu';
  }
  if (!bound) return undefined;

  const s = h.s;
  const evidence = utilEvidence(h);
  evidence.bound = bound;
  evidence.memory_metric = 'host memUtil (fb share is evidence only)';
  const levels = `GPU ${gpu !== undefined ? `${fixed(pct(gpu))} %` : 'n/a'}, memory ${mem !== undefined ? `${fixed(pct(mem))} %` : 'n/a'}, CPU ${cpu !== undefined ? `${fixed(pct(cpu))} %` : 'n/a'}`;
  const f: Finding = {
    kind: 'bottleneck',
    title: '',
    severity: 'medium',
    subject: s.host,
    evidence,
    recommendation: '',
    confidence: confidenceFromCount(h.n, T.fullConfidencePoints),
  };

  if (bound === 'memory' || bound === 'cpu') {
    const family = bound === 'memory' ? 'memory' : 'compute';
    const label = bound === 'memory' ? 'memory-optimised' : 'compute-optimised';
    f.title = `${s.host} is ${bound === 'memory' ? 'memory' : 'CPU'}-bound: ${levels}`;
    const why =
      bound === 'memory'
        ? `Host memory is the binding resource (${fixed(pct(mem as number))} % mean, ${fixed(pct(h.mem?.p95 ?? 0))} % p95) while the GPUs run at ${gpu !== undefined ? fixed(pct(gpu)) : 'n/a'} %.`
        : `CPU is the binding resource (${fixed(pct(cpu as number))} % mean vs GPU ${gpu !== undefined ? fixed(pct(gpu)) : 'n/a'} %): tokenisation, detokenisation or the API server starve the GPUs.`;
    if (h.type) {
      const needs = needsOf(h, h.type);
      Object.assign(evidence, needsEvidence(needs));
      const next = cheapest(catalog, needs, { family, exclude: h.type.name });
      if (next) {
        const m = moveMoney(h.type, next);
        Object.assign(evidence, m.evidence);
        const change =
          m.monthly > 0
            ? `saving ${formatUsd(m.monthly)}/month (${formatUsd(m.annual)}/year: (${formatUsd(h.type.hourlyUsd)} − ${formatUsd(next.hourlyUsd)})/h × ${HOURS_PER_MONTH} h × 12)`
            : `costing ${formatUsd(-m.monthly)}/month more (${formatUsd(-m.annual)}/year)`;
        f.recommendation =
          `${why} Move from ${h.type.name} to the ${label} ${describeType(next)}, the cheapest catalog type that covers ` +
          `the p95 needs at ≤ ${fixed(pct(T.targetUtil))} % (${fixed(needs.memoryGiB)} GiB memory, ${fixed(needs.vcpus)} vCPU, ` +
          `${fixed(needs.gpus, 2)} GPU-equivalents): ${change}.`;
        if (m.monthly > 0) {
          f.monthlySavingUsd = m.monthly;
          f.annualSavingUsd = m.annual;
        }
      } else {
        f.recommendation =
          `${why} No ${label} catalog type covers the p95 needs (${fixed(needs.memoryGiB)} GiB memory, ${fixed(needs.vcpus)} ` +
          `vCPU, ${fixed(needs.gpus, 2)} GPU-equivalents); ${bound === 'memory' ? 'reduce host memory use (smaller CPU swap space, --swap-space, fewer cached models)' : 'add API server processes or move pre-processing off this host'}.`;
      }
    } else {
      f.recommendation =
        `${why} Move to a ${label} instance type (family '${family}') that covers the p95 needs with 20 % headroom; ` +
        `the instance type is unknown, so no price is computed.`;
    }
    return f;
  }

  // GPU-bound.
  const gpuP95 = h.gpu?.p95 ?? 0;
  const gpusNeeded = Math.ceil((gpuP95 * s.gpus) / T.targetUtil - EPS);
  evidence.gpus_needed = gpusNeeded;
  if (bound === 'gpu-memory-bandwidth') {
    f.title = `${s.host} is GPU memory-bandwidth-bound: DRAM active ${fixed(pct(h.dram?.mean ?? 0))} % vs SM active ${fixed(pct(h.sm?.mean ?? 0))} %`;
    f.recommendation =
      'Decode is limited by reading weights and KV cache from GPU memory: quantise weights (FP8/INT8/AWQ) and the KV ' +
      'cache (--kv-cache-dtype fp8), batch more sequences per step so each weight read serves more tokens, or move to ' +
      `GPUs with more memory bandwidth. At p95 ${fixed(pct(gpuP95))} % the host needs ${gpusNeeded} GPU(s) at ≤ ${fixed(pct(T.targetUtil))} %.`;
  } else {
    f.title = `${s.host} is GPU compute-bound: ${levels}`;
    f.recommendation =
      `The GPUs are the binding resource${h.sm ? ` (SM active ${fixed(pct(h.sm.mean))} %)` : ''}: add GPUs or replicas — at p95 ` +
      `${fixed(pct(gpuP95))} % the host needs ${gpusNeeded} GPU(s) at ≤ ${fixed(pct(T.targetUtil))} % — or lower the work per ` +
      'token (quantisation, smaller model, prefix caching).';
  }
  return f;
}

function scaleAdvice(h: HostStats, catalog: readonly InstanceType[]): Finding | undefined {
  if (!h.gpu) return undefined;
  const s = h.s;
  const gpuP95 = h.gpu.p95;
  const memP95 = h.mem?.p95;
  const up = gpuP95 > T.scaleUpGpuP95 || (memP95 !== undefined && memP95 > T.scaleUpMemP95);
  const down = !up && gpuP95 < T.scaleDownP95;
  if (!up && !down) return undefined;

  const evidence = utilEvidence(h);
  const gpusNeeded = Math.max(1, Math.ceil((gpuP95 * s.gpus) / T.targetUtil - EPS));
  evidence.gpus_needed = gpusNeeded;
  const f: Finding = {
    kind: up ? 'scale-up' : 'scale-down',
    title: '',
    severity: up ? 'high' : 'medium',
    subject: s.host,
    evidence,
    recommendation: '',
    confidence: confidenceFromCount(h.gpu.n, T.fullConfidencePoints),
  };

  if (up) {
    const reasons: string[] = [];
    if (gpuP95 > T.scaleUpGpuP95) reasons.push(`p95 GPU ${fixed(pct(gpuP95))} % > ${fixed(pct(T.scaleUpGpuP95))} %`);
    if (memP95 !== undefined && memP95 > T.scaleUpMemP95)
      reasons.push(`p95 memory ${fixed(pct(memP95))} % > ${fixed(pct(T.scaleUpMemP95))} %`);
    f.title = `${s.host} needs more capacity: ${reasons.join(', ')}`;
    const extra = Math.max(0, gpusNeeded - s.gpus);
    let text =
      `${reasons.join('; ')}. At ≤ ${fixed(pct(T.targetUtil))} % the load needs ${gpusNeeded} GPU(s) on this host's ` +
      `${s.gpus}${extra > 0 ? `: add ${extra} GPU-equivalent(s) (another replica, or a larger instance)` : ''}` +
      `${memP95 !== undefined && memP95 > T.scaleUpMemP95 ? `; host memory needs ≥ ${fixed((memP95 / T.targetUtil) * 100)} % of the current size` : ''}.`;
    if (h.type) {
      const needs = needsOf(h, h.type);
      Object.assign(evidence, needsEvidence(needs));
      const next = cheapest(catalog, needs, { exclude: h.type.name });
      if (next) {
        const m = moveMoney(h.type, next);
        Object.assign(evidence, m.evidence);
        text += ` Cheapest catalog type that fits: ${describeType(next)}, ${m.monthly >= 0 ? `saving ${formatUsd(m.monthly)}` : `${formatUsd(-m.monthly)} more`}/month.`;
        if (m.monthly > 0) {
          f.monthlySavingUsd = m.monthly;
          f.annualSavingUsd = m.annual;
        }
      } else {
        text += ' No single catalog type fits: add replicas on more hosts.';
      }
    }
    f.recommendation = text;
    return f;
  }

  f.title = `${s.host} is over-provisioned: p95 GPU ${fixed(pct(gpuP95))} % < ${fixed(pct(T.scaleDownP95))} %`;
  let text =
    `p95 GPU utilisation is ${fixed(pct(gpuP95))} % on ${s.gpus} GPU(s): at ≤ ${fixed(pct(T.targetUtil))} % the load needs ` +
    `${gpusNeeded}. ${gpusNeeded < s.gpus ? `Free ${s.gpus - gpusNeeded} GPU(s): fewer replicas or a smaller instance.` : 'Consolidate it with other lightly used hosts or move to a smaller GPU type.'}`;
  if (h.type) {
    const needs = needsOf(h, h.type);
    Object.assign(evidence, needsEvidence(needs));
    const next = cheapest(catalog, needs, { exclude: h.type.name, below: h.type.hourlyUsd });
    if (next) {
      const m = moveMoney(h.type, next);
      Object.assign(evidence, m.evidence);
      f.monthlySavingUsd = m.monthly;
      f.annualSavingUsd = m.annual;
      text += ` Cheapest catalog type that fits: ${describeType(next)}, saving ${formatUsd(m.monthly)}/month (${formatUsd(m.annual)}/year).`;
    } else {
      text += ' No cheaper catalog type fits the needs.';
    }
  }
  f.recommendation = text;
  return f;
}

function capacityForecast(h: HostStats): Finding | undefined {
  const s = h.s;
  const ts = times(s);
  const xs: number[] = [];
  const ys: number[] = [];
  s.points.forEach((p, i) => {
    if (typeof p.gpuUtil === 'number' && Number.isFinite(p.gpuUtil)) {
      xs.push(((ts[i] as number) - (ts[0] as number)) / 86_400_000);
      ys.push(p.gpuUtil);
    }
  });
  if (xs.length < T.minPoints) return undefined;
  const fit = linearFit(xs, ys);
  const lastX = xs[xs.length - 1] as number;
  const spanDays = lastX - (xs[0] as number);
  const now = fit.intercept + fit.slope * lastX;
  const spanFactor = Math.min(1, spanDays / T.forecastFullDays);
  // Growth: r2 says how well the line explains the data. No growth: r2 is low on a flat noisy
  // series by construction, so the amount of data is the confidence instead.
  const growth = fit.slope >= T.noGrowthPerDay;
  if (growth && spanDays < T.forecastMinDays) return undefined;
  const confidence = round((growth ? fit.r2 : confidenceFromCount(xs.length, T.fullConfidencePoints)) * spanFactor, 2);
  const evidence: Record<string, number | string> = {
    gpu_util_now_pct: pct(now),
    slope_pct_per_day: round(fit.slope * 100, 3),
    r2: round(fit.r2, 3),
    window_days: round(spanDays, 2),
    limit_pct: pct(T.forecastLimit),
  };
  const base = { kind: 'capacity-forecast', subject: s.host, evidence, confidence } as const;
  if (!growth) {
    evidence.trend = 'no growth';
    return {
      ...base,
      title: `${s.host}: no utilisation growth (${fixed(fit.slope * 100, 2)} points/day); GPU at ${fixed(pct(now))} %`,
      severity: 'info',
      recommendation: 'No growth trend: current capacity holds; re-check with the next window.',
    };
  }
  const days = Math.max(0, (T.forecastLimit - now) / fit.slope);
  evidence.trend = 'growth';
  evidence.days_to_limit = round(days, 1);
  const lastTs = ts[ts.length - 1] as number;
  const when = Number.isFinite(lastTs) && lastTs > 1e11 ? new Date(lastTs + days * 86_400_000).toISOString() : undefined;
  if (when) evidence.reaches_limit_at = when;
  const severity: Severity = days <= 7 ? 'high' : days <= 30 ? 'medium' : days <= 90 ? 'low' : 'info';
  return {
    ...base,
    title:
      days === 0
        ? `${s.host}: GPU utilisation already at the ${fixed(pct(T.forecastLimit))} % limit and rising ${fixed(fit.slope * 100, 2)} points/day`
        : `${s.host}: GPU utilisation reaches ${fixed(pct(T.forecastLimit))} % in ~${fixed(days)} days (+${fixed(fit.slope * 100, 2)} points/day)`,
    severity,
    recommendation:
      `GPU utilisation grows ${fixed(fit.slope * 100, 2)} points/day (r² ${fixed(fit.r2, 2)}) from ${fixed(pct(now))} % now: ` +
      `plan capacity (another replica or a larger instance) before ${when ? when.slice(0, 10) : `~${fixed(days)} days from the window's end`}.`,
  };
}

// ----- Consolidation --------------------------------------------------------------------------

function consolidation(hs: HostStats[]): Finding | undefined {
  const cands = hs.filter((h) => h.gpu !== undefined && h.n >= T.minPoints && h.s.gpus > 0 && h.gpu.mean < T.consolidationMean);
  if (cands.length < 2) return undefined;
  const load = (h: HostStats): number => (h.gpu as Summary).p95 * h.s.gpus;
  const price = (h: HostStats): number => h.type?.hourlyUsd ?? Infinity;
  const byName = (a: HostStats, b: HostStats): number => (a.s.host < b.s.host ? -1 : a.s.host > b.s.host ? 1 : 0);
  // Bins: the hosts themselves, bigger first, then cheaper first (keep cheap hosts, free dear ones).
  const bins = [...cands].sort((a, b) => b.s.gpus - a.s.gpus || price(a) - price(b) || byName(a, b));
  const items = [...cands].sort((a, b) => load(b) - load(a) || byName(a, b));
  const used = new Map<string, number>();
  const placement = new Map<string, string>();
  for (const item of items) {
    const w = load(item);
    const open = bins.filter((b) => used.has(b.s.host));
    const fitsIn = (b: HostStats): boolean => (used.get(b.s.host) ?? 0) + w <= b.s.gpus * T.targetUtil + EPS;
    const target = open.find(fitsIn) ?? bins.find((b) => !used.has(b.s.host) && fitsIn(b)) ?? item;
    used.set(target.s.host, (used.get(target.s.host) ?? 0) + w);
    placement.set(item.s.host, target.s.host);
  }
  const kept = bins.filter((b) => used.has(b.s.host));
  const freed = bins.filter((b) => !used.has(b.s.host)).sort(byName);
  if (freed.length === 0) return undefined;

  const totalLoad = cands.reduce((a, h) => a + load(h), 0);
  const evidence: Record<string, number | string> = {
    hosts_considered: cands.length,
    hosts_after: kept.length,
    hosts_to_free: freed.map((h) => h.s.host).join(','),
    gpus_to_free: freed.reduce((a, h) => a + h.s.gpus, 0),
    combined_p95_gpu_equivalents: round(totalLoad, 2),
    target_util_pct: pct(T.targetUtil),
    placement: [...placement.entries()]
      .filter(([from, to]) => from !== to)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([from, to]) => `${from}→${to}`)
      .join(','),
    mean_gpu_util_pct: cands
      .map((h) => `${h.s.host}:${fixed(pct((h.gpu as Summary).mean))}`)
      .sort()
      .join(','),
  };
  const f: Finding = {
    kind: 'consolidation',
    title: `Consolidate ${cands.length} lightly used hosts onto ${kept.length}: free ${freed.map((h) => h.s.host).join(', ')}`,
    severity: 'medium',
    subject: cands
      .map((h) => h.s.host)
      .sort()
      .join(','),
    evidence,
    recommendation:
      `${cands.length} hosts each run under ${fixed(pct(T.consolidationMean))} % mean GPU; their combined p95 load is ` +
      `${fixed(totalLoad, 2)} GPU-equivalents, which fits on ${kept.map((h) => h.s.host).join(', ')} at ≤ ` +
      `${fixed(pct(T.targetUtil))} % (move ${evidence.placement || 'nothing'}). Free ${freed.map((h) => h.s.host).join(', ')} ` +
      'once the moved workloads are confirmed to fit side by side in GPU memory (smaller models, MIG/MPS, or merged replicas).',
    confidence: confidenceFromCount(Math.min(...cands.map((h) => h.n)), T.fullConfidencePoints),
  };
  if (freed.every((h) => h.type !== undefined)) {
    const monthly = usd(freed.reduce((a, h) => a + (h.type as InstanceType).hourlyUsd, 0) * HOURS_PER_MONTH);
    evidence.freed_hourly_usd = round(
      freed.reduce((a, h) => a + (h.type as InstanceType).hourlyUsd, 0),
      4,
    );
    f.monthlySavingUsd = monthly;
    f.annualSavingUsd = usd(monthly * 12);
    f.recommendation += ` Saving ${formatUsd(monthly)}/month (${formatUsd(monthly * 12)}/year).`;
  }
  return f;
}

// ----- Entry point ----------------------------------------------------------------------------

const SEVERITY_ORDER: Record<Severity, number> = { high: 0, medium: 1, low: 2, info: 3 };

/**
 * All resource findings for a set of hosts, most severe first (stable within a severity).
 * Hosts with fewer than `RESOURCE_THRESHOLDS.minPoints` points are skipped.
 */
export function resourceFindings(hosts: ResourceSeries[], catalog: InstanceType[]): Finding[] {
  const hs = hosts.filter((s) => s.points.length >= T.minPoints).map((s) => stats(s, catalog));
  const found: Finding[] = [];
  for (const h of hs) {
    for (const f of [utilisationPattern(h), bottleneck(h, catalog), scaleAdvice(h, catalog), capacityForecast(h)]) {
      if (f) found.push(f);
    }
  }
  const c = consolidation(hs);
  if (c) found.push(c);
  return found
    .map((f, i) => ({ f, i }))
    .sort((a, b) => SEVERITY_ORDER[a.f.severity] - SEVERITY_ORDER[b.f.severity] || a.i - b.i)
    .map(({ f }) => f);
}
