import { describe, expect, it } from 'vitest';
import type { Finding, PerformanceSeries } from '../../domain/agents/types.js';
import { performanceFindings } from '../../domain/agents/performance/findings.js';
import { changePoint, linearFit, mean, quantile, rollingMedian, runs } from '../../domain/agents/series.js';

type Pt = PerformanceSeries['points'][number];

const START = Date.UTC(2025, 0, 6, 12, 0, 0);
const ts = (i: number): string => new Date(START + i * 60_000).toISOString();

/** n one-minute points; `f(i)` gives the metrics of point i. */
function series(n: number, f: (i: number) => Omit<Pt, 'ts'>): PerformanceSeries {
  return { deployment: 'chat-prod', stepSeconds: 60, points: Array.from({ length: n }, (_, i) => ({ ts: ts(i), ...f(i) })) };
}

/** ±d around a level, alternating, so every even-length block has exactly that mean. */
const wiggle = (level: number, d: number, i: number): number => level + (i % 2 === 0 ? d : -d);

const byKind = (fs: Finding[], kind: string): Finding[] => fs.filter((f) => f.kind === kind);
const one = (fs: Finding[], kind: string): Finding => {
  const found = byKind(fs, kind);
  expect(found, `exactly one '${kind}' finding`).toHaveLength(1);
  return found[0] as Finding;
};

const CONFIG_V1 = { model: 'llama-3.1-8b@v1', max_model_len: '4096', num_gpu_blocks: '2048', block_size: '16', max_num_seqs: '64' };
const CONFIG_V2 = { ...CONFIG_V1, model: 'llama-3.1-8b@v2', max_model_len: '32768' };

/**
 * The seed example: p95 200 ms → 2000 ms after a model update that raised max_model_len
 * 4096 → 32768 while num_gpu_blocks stayed 2048 (2048 × 16 = 32768 cache tokens); 8 running.
 */
function seedSeries(): PerformanceSeries {
  return series(40, (i) =>
    i < 20
      ? {
          p95LatencyMs: wiggle(200, 5, i),
          p99LatencyMs: wiggle(300, 5, i),
          p95TtftMs: wiggle(80, 2, i),
          p95TpotMs: wiggle(20, 1, i),
          running: 8,
          waiting: 0,
          kvCacheUsage: 0.55,
          preemptionsPerMin: 0,
          config: CONFIG_V1,
        }
      : {
          p95LatencyMs: wiggle(2000, 20, i),
          p99LatencyMs: wiggle(3000, 20, i),
          p95TtftMs: wiggle(80, 2, i),
          p95TpotMs: wiggle(20, 1, i),
          running: 8,
          waiting: 3,
          kvCacheUsage: 0.97,
          preemptionsPerMin: 4,
          config: CONFIG_V2,
        },
  );
}

describe('series helpers', () => {
  it('mean, quantile (type 7), linearFit', () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    expect(Number.isNaN(mean([]))).toBe(true);
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantile([1, 2, 3, 4], 0.95)).toBeCloseTo(3.85, 10);
    expect(quantile([5], 0.3)).toBe(5);
    const fit = linearFit([0, 1, 2, 3], [1, 3, 5, 7]);
    expect(fit.slope).toBeCloseTo(2, 12);
    expect(fit.intercept).toBeCloseTo(1, 12);
    expect(fit.r2).toBeCloseTo(1, 12);
    expect(linearFit([0, 1, 2], [4, 4, 4])).toMatchObject({ slope: 0, intercept: 4, r2: 1 });
  });

  it('changePoint finds a clean shift and ignores noise and short segments', () => {
    const step = [...Array(10).fill(1), ...Array(10).fill(3)] as number[];
    expect(changePoint(step)).toMatchObject({ index: 10, before: 1, after: 3, ratio: 3 });
    const noise = Array.from({ length: 30 }, (_, i) => 100 + ((i * 7) % 5) - 2);
    expect(changePoint(noise)).toBeUndefined();
    expect(changePoint([1, 1, 5, 5, 5])).toBeUndefined(); // a 2-point segment is below minSegment 3
  });

  it('rollingMedian ignores short runs; runs finds consecutive flags', () => {
    const v = [1, 1, 1, 1, 9, 9, 1, 1, 1, 1];
    expect(rollingMedian(v, 3)[4]).toBe(1);
    expect(runs([false, true, true, false, true])).toEqual([
      { start: 1, end: 2 },
      { start: 4, end: 4 },
    ]);
  });
});

describe('performanceFindings: the seed example (max_model_len raised, KV cache unchanged)', () => {
  const findings = performanceFindings(seedSeries());

  it('names the KV cache as the root cause with a cache-size recommendation and its numbers', () => {
    const kv = one(findings, 'kv-cache-saturation');
    expect(kv.severity).toBe('high');
    expect(kv.title).toMatch(/KV cache is the root cause/);
    expect(kv.title).toContain('4096 → 32768');
    expect(kv.evidence).toMatchObject({
      kv_cache_usage_pct: 97,
      preemptions_per_min: 4,
      max_model_len_before: 4096,
      max_model_len_after: 32768,
      num_gpu_blocks: 2048,
      block_size: 16,
      cache_tokens: 32768,
      typical_running: 8,
      demand_tokens: 262144,
      needed_cache_factor: 8,
      needed_num_gpu_blocks: 16384,
      served_max_model_len: 4096,
      max_num_seqs_cap: 1,
      config_changed_at: ts(20),
      p95_before_ms: 200,
      p95_after_ms: 2000,
    });
    expect(kv.recommendation).toMatch(/^Root cause: the KV cache\./);
    expect(kv.recommendation).toContain('2048 blocks × 16 = 32768 tokens');
    expect(kv.recommendation).toContain('--max-model-len back from 32768 to 4096');
    expect(kv.recommendation).toContain('grow the KV cache 8.0× (num_gpu_blocks 2048 → 16384');
    expect(kv.recommendation).toContain('--gpu-memory-utilization');
    expect(kv.recommendation).toContain('--tensor-parallel-size');
    expect(kv.recommendation).toContain('cap --max-num-seqs at 1');
    expect(kv.impact).toBe('p95 back to ~200 ms; no preemptions');
    expect(kv.confidence).toBeGreaterThan(0.8);
  });

  it('reports the p95 regression 200 → 2000 ms (×10) and references the KV cause', () => {
    const r = one(findings, 'latency-regression');
    expect(r.severity).toBe('high');
    expect(r.evidence).toMatchObject({
      p95_before_ms: 200,
      p95_after_ms: 2000,
      factor: 10,
      p99_before_ms: 300,
      p99_after_ms: 3000,
      changed_at: ts(20),
      probable_cause: 'kv-cache-saturation',
      config_changed_at: ts(20),
    });
    expect(String(r.evidence.config_change)).toContain('max_model_len 4096 → 32768');
    expect(r.title).toBe(`p95 latency regressed 200 → 2000 ms (×10.0) at ${ts(20)}`);
    expect(r.recommendation).toContain('KV cache');
    expect(r.recommendation).toContain('--max-model-len back to 4096');
    expect(r.impact).toBe('p95 back to ~200 ms');
  });

  it('raises nothing else: no queueing (3 waiting vs 8 running), no spike, flat TTFT/TPOT', () => {
    expect(findings.map((f) => f.kind).sort()).toEqual(['kv-cache-saturation', 'latency-regression']);
  });

  it('is deterministic', () => {
    expect(performanceFindings(seedSeries())).toEqual(findings);
  });
});

describe('performanceFindings: other cases', () => {
  it('a healthy series yields no regression or saturation findings', () => {
    const healthy = series(60, (i) => ({
      p95LatencyMs: 200 + ((i * 7) % 11) - 5,
      p99LatencyMs: 300 + ((i * 5) % 13) - 6,
      p95TtftMs: 90 + (i % 5),
      p95TpotMs: 22 + (i % 3),
      running: 6 + (i % 3),
      waiting: i % 2,
      kvCacheUsage: 0.5 + (i % 4) * 0.02,
      preemptionsPerMin: 0,
      config: CONFIG_V1,
    }));
    expect(performanceFindings(healthy)).toEqual([]);
  });

  it('a full cache without preemptions is not saturation', () => {
    const s = series(30, (i) => ({ p95LatencyMs: wiggle(200, 5, i), kvCacheUsage: 0.95, preemptionsPerMin: 0, running: 8 }));
    expect(byKind(performanceFindings(s), 'kv-cache-saturation')).toEqual([]);
  });

  it('saturation without sizing labels still gives generic cache advice', () => {
    const s = series(30, (i) => ({ p95LatencyMs: wiggle(200, 5, i), kvCacheUsage: 0.96, preemptionsPerMin: 2, running: 8 }));
    const kv = one(performanceFindings(s), 'kv-cache-saturation');
    expect(kv.title).toBe('KV cache saturated: 96 % used with 2.0 preemptions/min');
    expect(kv.recommendation).toContain('--gpu-memory-utilization');
    expect(kv.evidence.cache_tokens).toBeUndefined();
  });

  it('queueing: waiting ≫ running at the max_num_seqs cap → raise max_num_seqs / replicas', () => {
    const s = series(30, (i) => ({
      p95LatencyMs: wiggle(400, 10, i),
      running: 16,
      waiting: i < 15 ? 2 : 48,
      kvCacheUsage: 0.45,
      preemptionsPerMin: 0,
      config: { max_num_seqs: '16', max_model_len: '4096', num_gpu_blocks: '8192', block_size: '16' },
    }));
    const fs = performanceFindings(s);
    const q = one(fs, 'queueing');
    expect(q.evidence).toMatchObject({
      waiting_mean: 48,
      running_mean: 16,
      waiting_to_running_ratio: 3,
      max_num_seqs: 16,
      capacity_factor_needed: 4,
    });
    expect(q.severity).toBe('medium');
    expect(q.recommendation).toContain('--max-num-seqs 16');
    expect(q.recommendation).toContain('raise --max-num-seqs to ~32'); // KV room: 16 × 0.9 / 0.45 = 32 < 64 demanded
    expect(q.recommendation).toContain('replicas');
    expect(byKind(fs, 'kv-cache-saturation')).toEqual([]);
  });

  it('no queueing when waiting stays below twice running', () => {
    const s = series(30, () => ({ p95LatencyMs: 300, running: 10, waiting: 15 }));
    expect(byKind(performanceFindings(s), 'queueing')).toEqual([]);
  });

  it('anomaly: a 4-point spike with no config change, explained by a prompt-token burst', () => {
    const s = series(40, (i) => {
      const spike = i >= 20 && i < 24;
      return {
        p95LatencyMs: spike ? 900 + i : wiggle(200, 5, i),
        promptTokensPerSec: spike ? 12_000 : 3_000,
        running: 8,
        waiting: 0,
        kvCacheUsage: 0.6,
        preemptionsPerMin: 0,
        config: CONFIG_V1,
      };
    });
    const fs = performanceFindings(s);
    const a = one(fs, 'anomaly');
    expect(a.evidence).toMatchObject({
      p95_peak_ms: 923,
      p95_baseline_ms: 200,
      points: 4,
      duration_min: 4,
      from: ts(20),
      to: ts(23),
      prompt_tokens_per_sec_factor: 4,
    });
    expect(a.title).toBe('p95 latency spike to 923 ms (×4.6 the usual 200 ms) for 4 min');
    expect(a.recommendation).toContain('no config change');
    expect(a.recommendation).toContain('prompt tokens/s ×4.0');
    // A spike that comes back is neither a regression nor a level shift.
    expect(byKind(fs, 'latency-regression')).toEqual([]);
  });

  it('a spike that coincides with a config change is not reported as unexplained', () => {
    const s = series(40, (i) => ({
      p95LatencyMs: i >= 20 && i < 24 ? 900 : wiggle(200, 5, i),
      config: i >= 20 && i < 24 ? CONFIG_V2 : CONFIG_V1,
    }));
    expect(byKind(performanceFindings(s), 'anomaly')).toEqual([]);
  });

  it('a 2-point blip is not an anomaly', () => {
    const s = series(40, (i) => ({ p95LatencyMs: i === 20 || i === 21 ? 900 : wiggle(200, 5, i) }));
    expect(byKind(performanceFindings(s), 'anomaly')).toEqual([]);
  });

  it('ttft: a relative rise, and an absolute threshold breach; inter-token latency over 100 ms', () => {
    const rel = series(32, (i) => ({ p95TtftMs: i < 16 ? wiggle(300, 10, i) : wiggle(900, 10, i), p95TpotMs: 30 }));
    const t = one(performanceFindings(rel), 'ttft');
    expect(t.evidence).toMatchObject({ reason: 'relative', ttft_p95_before_ms: 300, ttft_p95_after_ms: 900, factor: 3 });
    expect(t.recommendation).toContain('--enable-chunked-prefill');

    const abs = series(32, (i) => ({ p95TtftMs: wiggle(2600, 20, i), p95TpotMs: wiggle(140, 2, i) }));
    const fs = performanceFindings(abs);
    expect(one(fs, 'ttft').evidence).toMatchObject({ reason: 'absolute', ttft_p95_recent_ms: 2600, ttft_p95_threshold_ms: 2000 });
    const itl = one(fs, 'inter-token-latency');
    expect(itl.evidence).toMatchObject({ reason: 'absolute', tpot_p95_recent_ms: 140, tpot_p95_threshold_ms: 100 });
    expect(itl.recommendation).toContain('--max-num-seqs');
  });

  it('a regression without KV saturation points at the coinciding config change', () => {
    const s = series(32, (i) => ({
      p95LatencyMs: i < 16 ? wiggle(200, 5, i) : wiggle(500, 5, i),
      config: i < 16 ? CONFIG_V1 : { ...CONFIG_V1, model: 'llama-3.1-8b@v2' },
    }));
    const r = one(performanceFindings(s), 'latency-regression');
    expect(r.evidence.probable_cause).toBe('config change: model llama-3.1-8b@v1 → llama-3.1-8b@v2');
    expect(r.evidence.factor).toBe(2.5);
    expect(r.severity).toBe('medium');
  });

  it('an empty series gives no findings', () => {
    expect(performanceFindings({ deployment: 'x', stepSeconds: 60, points: [] })).toEqual([]);
  });
});
