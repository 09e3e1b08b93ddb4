/**
 * The performance agent's 'kv-cache-saturation' finding: saturated points, and — when the serving
 * config labels size the cache — demand against capacity, the config change that triggered it and
 * the numbers of three fixes. Pure and workflow-safe: no I/O, no clock, no randomness, no Node APIs.
 */
import type { Finding, PerformanceSeries } from '../types.js';
import { fixed, percentPoints, round } from '../../../common/format.js';
import { confidenceFromCount, mean, median } from '../series.js';
import { column, configChanges, configsAt, describeChange, num, plausible, type ConfigChange, type Point } from './points.js';
import { PERFORMANCE_THRESHOLDS as T } from './thresholds.js';

export interface KvAnalysis {
  finding: Finding;
  saturatedIdx: number[];
  /** Short text of the cache fix, for the latency findings that point at it. */
  fixSummary: string;
  configChange?: ConfigChange;
}

export function kvCacheFinding(series: PerformanceSeries): KvAnalysis | undefined {
  const pts = series.points;
  const withKv = pts.filter((p) => plausible('kvCacheUsage', p.kvCacheUsage));
  const saturatedIdx: number[] = [];
  pts.forEach((p, i) => {
    if ((p.kvCacheUsage ?? 0) >= T.kvCacheSaturated && plausible('preemptionsPerMin', p.preemptionsPerMin) && p.preemptionsPerMin > 0)
      saturatedIdx.push(i);
  });
  if (saturatedIdx.length < T.kvMinPoints || saturatedIdx.length < T.kvMinShare * withKv.length) return undefined;

  const sat = saturatedIdx.map((i) => pts[i] as Point);
  const usage = sat.map((p) => p.kvCacheUsage as number);
  const preempt = sat.map((p) => p.preemptionsPerMin as number);
  const usagePct = percentPoints(mean(usage));
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
    kv_cache_usage_max_pct: percentPoints(Math.max(...usage)),
    preemptions_per_min: preemptPerMin,
    saturated_points: saturatedIdx.length,
    saturated_share_pct: percentPoints(saturatedIdx.length / Math.max(1, withKv.length)),
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
