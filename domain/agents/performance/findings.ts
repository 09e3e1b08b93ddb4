/**
 * Deterministic findings of the performance agent (LLM integration point 2) from one
 * deployment's vLLM metrics. Pure and workflow-safe: no I/O, no clock, no randomness, no Node
 * APIs — the same series always gives the same findings, in workflows and activities alike.
 *
 * Kinds (thresholds in `PERFORMANCE_THRESHOLDS`):
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
import type { Finding, PerformanceSeries, Severity } from '../types.js';
import { fixed, percentPoints, round } from '../../../common/format.js';
import { changePoint, confidenceFromCount, mad, mean, median, rollingMedian, runs } from '../series.js';

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

const T = PERFORMANCE_THRESHOLDS;

type Point = PerformanceSeries['points'][number];
type NumericKey = {
  [K in keyof Point]-?: NonNullable<Point[K]> extends number ? K : never;
}[keyof Point];

interface Indexed {
  idx: number[];
  vals: number[];
}

/** The defined, finite values of one metric with their point indices. */
function column(points: readonly Point[], key: NumericKey): Indexed {
  const idx: number[] = [];
  const vals: number[] = [];
  points.forEach((p, i) => {
    const v = p[key];
    if (typeof v === 'number' && Number.isFinite(v)) {
      idx.push(i);
      vals.push(v);
    }
  });
  return { idx, vals };
}

function valuesIn(points: readonly Point[], key: NumericKey, from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = Math.max(0, from); i < Math.min(points.length, to); i++) {
    const v = points[i]?.[key];
    if (typeof v === 'number' && Number.isFinite(v)) out.push(v);
  }
  return out;
}

const pct = (x: number): number => percentPoints(x);

// ----- Serving configuration ----------------------------------------------------------------

interface ConfigChange {
  index: number;
  ts: string;
  before: Record<string, string>;
  after: Record<string, string>;
  changed: string[];
}

/** Config in force at each point (labels carried forward from the last point that had them). */
function configsAt(points: readonly Point[]): Array<Record<string, string> | undefined> {
  let last: Record<string, string> | undefined;
  return points.map((p) => {
    if (p.config && Object.keys(p.config).length > 0) last = p.config;
    return last;
  });
}

function configChanges(points: readonly Point[]): ConfigChange[] {
  const out: ConfigChange[] = [];
  let last: Record<string, string> | undefined;
  points.forEach((p, i) => {
    const cfg = p.config;
    if (!cfg || Object.keys(cfg).length === 0) return;
    if (last) {
      const keys = [...new Set([...Object.keys(last), ...Object.keys(cfg)])].sort();
      const changed = keys.filter((k) => last?.[k] !== cfg[k]);
      if (changed.length > 0) out.push({ index: i, ts: p.ts, before: last, after: cfg, changed });
    }
    last = cfg;
  });
  return out;
}

function describeChange(c: ConfigChange): string {
  return c.changed.map((k) => `${k} ${c.before[k] ?? '(unset)'} → ${c.after[k] ?? '(unset)'}`).join('; ');
}

function num(cfg: Record<string, string> | undefined, key: string): number | undefined {
  const raw = cfg?.[key];
  if (raw === undefined) return undefined;
  const v = Number(raw);
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

// ----- KV cache -------------------------------------------------------------------------------

interface KvAnalysis {
  finding: Finding;
  saturatedIdx: number[];
  /** Short text of the cache fix, for the latency findings that point at it. */
  fixSummary: string;
  configChange?: ConfigChange;
}

function kvCacheFinding(series: PerformanceSeries): KvAnalysis | undefined {
  const pts = series.points;
  const withKv = pts.filter((p) => typeof p.kvCacheUsage === 'number');
  const saturatedIdx: number[] = [];
  pts.forEach((p, i) => {
    if ((p.kvCacheUsage ?? 0) >= T.kvCacheSaturated && (p.preemptionsPerMin ?? 0) > 0) saturatedIdx.push(i);
  });
  if (saturatedIdx.length < T.kvMinPoints || saturatedIdx.length < T.kvMinShare * withKv.length) return undefined;

  const sat = saturatedIdx.map((i) => pts[i] as Point);
  const usage = sat.map((p) => p.kvCacheUsage as number);
  const preempt = sat.map((p) => p.preemptionsPerMin as number);
  const usagePct = pct(mean(usage));
  const preemptPerMin = round(mean(preempt), 2);

  const configs = configsAt(pts);
  const firstSat = saturatedIdx[0] as number;
  const lastSat = saturatedIdx[saturatedIdx.length - 1] as number;
  const cfg = configs[lastSat];
  const changes = configChanges(pts);
  // The change that preceded the saturation (else none).
  const change = [...changes].reverse().find((c) => c.index <= firstSat);

  const running = column(pts, 'running').vals;
  const concurrency = running.length > 0 ? Math.max(1, Math.round(median(running))) : undefined;
  const maxLen = num(cfg, 'max_model_len');
  const blocks = num(cfg, 'num_gpu_blocks');
  const blockSizeLabel = num(cfg, 'block_size');
  const blockSize = blockSizeLabel ?? T.defaultBlockSize;
  const maxNumSeqs = num(cfg, 'max_num_seqs');
  const gpuMemUtil = num(cfg, 'gpu_memory_utilization');
  const tp = num(cfg, 'tensor_parallel_size');

  const evidence: Record<string, number | string> = {
    kv_cache_usage_pct: usagePct,
    kv_cache_usage_max_pct: pct(Math.max(...usage)),
    preemptions_per_min: preemptPerMin,
    saturated_points: saturatedIdx.length,
    saturated_share_pct: pct(saturatedIdx.length / Math.max(1, withKv.length)),
    saturated_from: (pts[firstSat] as Point).ts,
  };
  if (concurrency !== undefined) evidence.typical_running = concurrency;
  if (maxNumSeqs !== undefined) evidence.max_num_seqs = maxNumSeqs;
  if (gpuMemUtil !== undefined) evidence.gpu_memory_utilization = gpuMemUtil;

  const subject = series.deployment;
  const severityHigh = preemptPerMin >= 1;

  if (maxLen === undefined || blocks === undefined || concurrency === undefined) {
    // No sizing labels: saturation is certain, the sizing arithmetic is not possible.
    const finding: Finding = {
      kind: 'kv-cache-saturation',
      title: `KV cache saturated: ${fixed(usagePct)} % used with ${fixed(preemptPerMin, 1)} preemptions/min`,
      severity: severityHigh ? 'high' : 'medium',
      subject,
      evidence,
      recommendation:
        'vLLM is evicting running sequences because the KV cache is full; evicted sequences are recomputed, which ' +
        'inflates tail latency. Grow the KV cache (raise --gpu-memory-utilization if the GPU has free memory, or add ' +
        'GPUs with --tensor-parallel-size), lower --max-model-len to the context length the traffic needs, or cap ' +
        '--max-num-seqs. Export the max_model_len, num_gpu_blocks and block_size labels to size the fix.',
      impact: 'no preemptions; tail latency back to the unsaturated level',
      confidence: confidenceFromCount(saturatedIdx.length, T.fullConfidencePoints),
    };
    return { finding, saturatedIdx, fixSummary: 'grow the KV cache or lower --max-model-len', configChange: change };
  }

  const cacheTokens = blocks * blockSize;
  const demandTokens = maxLen * concurrency;
  const factor = demandTokens / cacheTokens;
  const neededBlocks = Math.ceil(blocks * Math.max(1, factor));
  const servedLen = Math.floor(cacheTokens / concurrency / blockSize) * blockSize;
  const seqCap = Math.floor(cacheTokens / maxLen);

  const maxLenBefore = change ? num(change.before, 'max_model_len') : undefined;
  const blocksBefore = change ? num(change.before, 'num_gpu_blocks') : undefined;
  const blockSizeBefore = change ? (num(change.before, 'block_size') ?? T.defaultBlockSize) : undefined;
  const factorBefore =
    maxLenBefore !== undefined && blocksBefore !== undefined && blockSizeBefore !== undefined
      ? (maxLenBefore * concurrency) / (blocksBefore * blockSizeBefore)
      : undefined;
  const changeCaused = change !== undefined && factorBefore !== undefined && factor > 1 && factor > factorBefore * 1.001;

  Object.assign(evidence, {
    max_model_len: maxLen,
    num_gpu_blocks: blocks,
    block_size: blockSize,
    cache_tokens: cacheTokens,
    demand_tokens: demandTokens,
    needed_cache_factor: round(factor, 2),
    needed_num_gpu_blocks: neededBlocks,
    served_max_model_len: servedLen,
    max_num_seqs_cap: seqCap,
  });
  if (blockSizeLabel === undefined) evidence.block_size_assumed = 'vLLM default';
  if (change) {
    evidence.config_changed_at = change.ts;
    evidence.config_change = describeChange(change);
    if (maxLenBefore !== undefined) {
      evidence.max_model_len_before = maxLenBefore;
      evidence.max_model_len_after = maxLen;
    }
    if (blocksBefore !== undefined && blocksBefore !== blocks) evidence.num_gpu_blocks_before = blocksBefore;
    if (factorBefore !== undefined) evidence.needed_cache_factor_before = round(factorBefore, 2);
  }

  if (factor <= 1) {
    // Saturated although max_model_len × concurrency fits: real prompts/outputs fill it anyway.
    const finding: Finding = {
      kind: 'kv-cache-saturation',
      title: `KV cache saturated: ${fixed(usagePct)} % of ${cacheTokens} tokens used with ${fixed(preemptPerMin, 1)} preemptions/min`,
      severity: severityHigh ? 'high' : 'medium',
      subject,
      evidence,
      recommendation:
        `The cache (${blocks} blocks × ${blockSize} = ${cacheTokens} tokens) is full at a typical concurrency of ` +
        `${concurrency} although ${concurrency} × max_model_len ${maxLen} = ${demandTokens} tokens fit on paper; ` +
        `traffic bursts above the typical concurrency fill it. Cap --max-num-seqs near ${concurrency}, or grow ` +
        `the cache (raise --gpu-memory-utilization${gpuMemUtil !== undefined ? ` from ${gpuMemUtil}` : ''}, or add ` +
        `GPUs with --tensor-parallel-size${tp !== undefined ? ` above ${tp}` : ''}), or add replicas.`,
      impact: 'no preemptions; tail latency back to the unsaturated level',
      confidence: confidenceFromCount(saturatedIdx.length, T.fullConfidencePoints),
    };
    return { finding, saturatedIdx, fixSummary: 'cap --max-num-seqs or grow the KV cache', configChange: change };
  }

  // Demand exceeds capacity: the KV cache is the root cause.
  const lenTarget =
    changeCaused && maxLenBefore !== undefined && maxLenBefore < maxLen && maxLenBefore <= servedLen ? maxLenBefore : servedLen;
  const options: string[] = [];
  if (lenTarget >= blockSize) {
    options.push(
      `(1) set --max-model-len back from ${maxLen} to ${lenTarget} — the cache serves ${concurrency} × ${lenTarget} = ` +
        `${concurrency * lenTarget} tokens`,
    );
  }
  options.push(
    `(${options.length + 1}) grow the KV cache ${fixed(factor, 1)}× (num_gpu_blocks ${blocks} → ${neededBlocks}, ` +
      `${neededBlocks * blockSize} tokens) by raising --gpu-memory-utilization` +
      `${gpuMemUtil !== undefined ? ` (now ${gpuMemUtil})` : ''} if the GPUs have free memory, or by adding GPUs ` +
      `(--tensor-parallel-size${tp !== undefined ? ` above ${tp}` : ''}; more GPUs hold more KV blocks)`,
  );
  if (seqCap >= 1) {
    options.push(
      `(${options.length + 1}) cap --max-num-seqs at ${seqCap} so ${seqCap} × ${maxLen} tokens fit — at the cost of ` +
        `throughput (concurrency ${concurrency} → ${seqCap})`,
    );
  }
  const trigger = changeCaused
    ? change !== undefined && maxLenBefore !== undefined && maxLenBefore < maxLen
      ? `max_model_len was raised ${maxLenBefore} → ${maxLen} at ${change.ts}` +
        (blocksBefore !== undefined && blocksBefore === blocks
          ? ` while num_gpu_blocks stayed ${blocks}`
          : blocksBefore !== undefined
            ? ` while num_gpu_blocks went ${blocksBefore} → ${blocks}`
            : '')
      : `num_gpu_blocks fell ${blocksBefore} → ${blocks} at ${change?.ts}`
    : undefined;

  const title = changeCaused
    ? maxLenBefore !== undefined && maxLenBefore < maxLen
      ? `KV cache is the root cause: max_model_len raised ${maxLenBefore} → ${maxLen} but the cache stayed ` +
        `${cacheTokens} tokens (${blocks} blocks), ${fixed(factor, 1)}× too small`
      : `KV cache is the root cause: num_gpu_blocks cut ${blocksBefore} → ${blocks} leaves the cache ${fixed(factor, 1)}× too small`
    : `KV cache is the root cause: ${cacheTokens}-token cache is ${fixed(factor, 1)}× too small for ` +
      `${concurrency} × max_model_len ${maxLen}`;

  const recommendation =
    `Root cause: the KV cache. ${trigger ? `Trigger: ${trigger}. ` : ''}` +
    `The cache holds ${blocks} blocks × ${blockSize} = ${cacheTokens} tokens, but at a typical concurrency of ` +
    `${concurrency} running sequences up to ${concurrency} × ${maxLen} = ${demandTokens} tokens may be in flight — ` +
    `${fixed(factor, 1)}× the cache — so vLLM preempts sequences (${fixed(preemptPerMin, 1)}/min, cache ${fixed(usagePct)} % ` +
    `full) and recomputes them. Change the cache sizing, any one of: ${options.join('; ')}.`;

  const fixSummary =
    lenTarget >= blockSize
      ? `set --max-model-len back to ${lenTarget} or grow the KV cache ${fixed(factor, 1)}× (num_gpu_blocks ${blocks} → ${neededBlocks})`
      : `grow the KV cache ${fixed(factor, 1)}× (num_gpu_blocks ${blocks} → ${neededBlocks})`;

  const finding: Finding = {
    kind: 'kv-cache-saturation',
    title,
    severity: factor >= 2 || severityHigh ? 'high' : 'medium',
    subject,
    evidence,
    recommendation,
    impact: 'no preemptions; tail latency back to the unsaturated level',
    confidence: Math.min(0.95, round(confidenceFromCount(saturatedIdx.length, T.fullConfidencePoints) + 0.1, 2)),
  };
  return { finding, saturatedIdx, fixSummary, configChange: change };
}

// ----- Latency regression ---------------------------------------------------------------------

function latencyRegression(series: PerformanceSeries, kv: KvAnalysis | undefined): Finding | undefined {
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

function elevatedLatency(series: PerformanceSeries, key: 'p95TtftMs' | 'p95TpotMs', kv: KvAnalysis | undefined): Finding | undefined {
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

// ----- Queueing -------------------------------------------------------------------------------

function queueing(series: PerformanceSeries): Finding | undefined {
  const pts = series.points.filter((p) => typeof p.running === 'number' && typeof p.waiting === 'number');
  if (pts.length < 3) return undefined;
  const tail = pts.slice(pts.length - Math.max(3, Math.floor(pts.length / 3)));
  const run = mean(tail.map((p) => p.running as number));
  const wait = mean(tail.map((p) => p.waiting as number));
  if (wait < T.queueingMinWaiting || wait < T.queueingFactor * run) return undefined;
  const ratio = run > 0 ? wait / run : Infinity;

  const kvVals = tail.map((p) => p.kvCacheUsage).filter((v): v is number => typeof v === 'number');
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
  if (kv !== undefined) evidence.kv_cache_usage_pct = pct(kv);
  if (maxNumSeqs !== undefined) evidence.max_num_seqs = maxNumSeqs;
  if (capacityFactor !== undefined) evidence.capacity_factor_needed = capacityFactor;

  let recommendation: string;
  if (kv !== undefined && kv >= T.kvCacheSaturated) {
    recommendation =
      `The KV cache is ${fixed(pct(kv))} % full, so the scheduler cannot admit waiting requests: grow the KV cache or add ` +
      `replicas (about ${capacityFactor ?? 2}× the current serving capacity); raising --max-num-seqs would not help.`;
  } else if (maxNumSeqs !== undefined && run >= 0.9 * maxNumSeqs) {
    const kvRoom = kv !== undefined && kv > 0 ? Math.floor((maxNumSeqs * T.kvCacheSaturated) / kv + 1e-9) : undefined;
    const target = Math.max(maxNumSeqs + 1, Math.min(Math.ceil(run + wait), kvRoom ?? Math.ceil(run + wait)));
    recommendation =
      `Running requests sit at --max-num-seqs ${maxNumSeqs}` +
      `${kv !== undefined ? ` while the KV cache is only ${fixed(pct(kv))} % used` : ''}: raise --max-num-seqs to ~${target}` +
      `${kvRoom !== undefined ? ` (the cache has room for ~${kvRoom} at ${pct(T.kvCacheSaturated)} % usage)` : ''}, ` +
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

// ----- Anomaly (short spike) ----------------------------------------------------------------

function anomalies(series: PerformanceSeries): Finding[] {
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

// ----- Entry point ----------------------------------------------------------------------------

const SEVERITY_ORDER: Record<Severity, number> = { high: 0, medium: 1, low: 2, info: 3 };

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
  return found
    .map((f, i) => ({ f, i }))
    .sort((a, b) => SEVERITY_ORDER[a.f.severity] - SEVERITY_ORDER[b.f.severity] || a.i - b.i)
    .map(({ f }) => f);
}
