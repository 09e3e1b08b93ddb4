import { describe, expect, it } from 'vitest';
import type { Finding, InstanceType, ResourceSeries } from '../../domain/agents/types.js';
import { resourceFindings } from '../../domain/agents/resource/findings.js';

type Pt = ResourceSeries['points'][number];

const START = Date.UTC(2025, 0, 6, 0, 0, 0);
const HOUR = 3_600_000;

/** n hourly points starting at midnight UTC; `f(i)` gives the metrics of point i. */
function host(name: string, n: number, f: (i: number) => Omit<Pt, 'ts'>, extra: Partial<ResourceSeries> = {}): ResourceSeries {
  return {
    host: name,
    stepSeconds: 3600,
    gpus: 4,
    points: Array.from({ length: n }, (_, i) => ({ ts: new Date(START + i * HOUR).toISOString(), ...f(i) })),
    ...extra,
  };
}

const type = (
  name: string,
  family: string,
  hourlyUsd: number,
  gpus: number,
  gpuMemoryGiB: number,
  vcpus: number,
  memoryGiB: number,
): InstanceType => ({
  name,
  family,
  hourlyUsd,
  gpus,
  gpuMemoryGiB,
  vcpus,
  memoryGiB,
});

/** A small hand-built catalog (not the product's). */
const CATALOG: InstanceType[] = [
  type('gen-4gpu', 'general', 10, 4, 80, 96, 768), // the seed host's current type
  type('mem-4gpu', 'memory', 8.5, 4, 80, 48, 768), // fits the seed's needs: the expected choice
  type('mem-4gpu-lite', 'memory', 7, 4, 80, 32, 512), // too little memory (512 < 576 GiB) and CPU (32 < 36)
  type('mem-2gpu', 'memory', 5, 2, 80, 48, 1024), // too few GPUs (2 < 2.25)
  type('mem-4gpu-24g', 'memory', 4, 4, 24, 64, 1024), // GPUs with less memory than the current 80 GiB
  type('cmp-4gpu', 'compute', 7.5, 4, 80, 96, 384), // not memory-optimised (and too little memory)
  type('gpu-1x', 'gpu', 2, 1, 80, 12, 96),
];

const byKind = (fs: Finding[], kind: string): Finding[] => fs.filter((f) => f.kind === kind);
const one = (fs: Finding[], kind: string): Finding => {
  const found = byKind(fs, kind);
  expect(found, `exactly one '${kind}' finding`).toHaveLength(1);
  return found[0] as Finding;
};

describe('resourceFindings: the seed example (GPU 45 %, memory 60 %, CPU 30 %)', () => {
  const seed = host('gpu-host-1', 48, () => ({ gpuUtil: 0.45, memUtil: 0.6, cpuUtil: 0.3 }), { instanceType: 'gen-4gpu' });
  const findings = resourceFindings([seed], CATALOG);

  it('is memory-bound and recommends the cheapest fitting memory-optimised type with its exact saving', () => {
    const b = one(findings, 'bottleneck');
    expect(b.subject).toBe('gpu-host-1');
    expect(b.title).toBe('gpu-host-1 is memory-bound: GPU 45 %, memory 60 %, CPU 30 %');
    expect(b.evidence).toMatchObject({
      bound: 'memory',
      gpu_util_mean_pct: 45,
      mem_util_mean_pct: 60,
      cpu_util_mean_pct: 30,
      need_memory_gib: 576, // 0.60 × 768 GiB / 0.8
      need_vcpus: 36, // 0.30 × 96 / 0.8
      need_gpus: 2.25, // 0.45 × 4 / 0.8
      current_instance: 'gen-4gpu',
      recommended_instance: 'mem-4gpu',
      recommended_family: 'memory',
      current_hourly_usd: 10,
      recommended_hourly_usd: 8.5,
      monthly_cost_change_usd: -1095,
    });
    // (10 − 8.5) $/h × 730 h = $1,095/month; × 12 = $13,140/year.
    expect(b.monthlySavingUsd).toBe(1095);
    expect(b.annualSavingUsd).toBe(13140);
    expect(b.recommendation).toContain('memory-optimised mem-4gpu');
    expect(b.recommendation).toContain('$1,095/month');
    expect(b.recommendation).toContain('$13,140/year');
  });

  it('gives no scale advice and no consolidation at these levels; the trend is flat', () => {
    expect(findings.map((f) => f.kind).sort()).toEqual(['bottleneck', 'capacity-forecast', 'utilisation-pattern']);
    expect(one(findings, 'capacity-forecast').evidence.trend).toBe('no growth');
  });

  it('without a known instance type: same diagnosis, no monetary fields', () => {
    const unknown = resourceFindings([{ ...seed, instanceType: 'not-in-catalog' }], CATALOG);
    const b = one(unknown, 'bottleneck');
    expect(b.evidence.bound).toBe('memory');
    expect(b.monthlySavingUsd).toBeUndefined();
    expect(b.annualSavingUsd).toBeUndefined();
    expect(b.evidence.recommended_instance).toBeUndefined();
    expect(unknown.every((f) => f.monthlySavingUsd === undefined)).toBe(true);
  });
});

describe('resourceFindings: other cases', () => {
  it('consolidates two GPUs at 20 % onto one and prices the freed host', () => {
    const a = host('host-a', 48, () => ({ gpuUtil: 0.2, memUtil: 0.3, cpuUtil: 0.1 }), { gpus: 1, instanceType: 'gpu-1x' });
    const b = host('host-b', 48, () => ({ gpuUtil: 0.2, memUtil: 0.3, cpuUtil: 0.1 }), { gpus: 1, instanceType: 'gpu-1x' });
    const fs = resourceFindings([a, b], CATALOG);
    const c = one(fs, 'consolidation');
    expect(c.evidence).toMatchObject({
      hosts_considered: 2,
      hosts_after: 1,
      hosts_to_free: 'host-b',
      gpus_to_free: 1,
      combined_p95_gpu_equivalents: 0.4,
      placement: 'host-b→host-a',
    });
    expect(c.monthlySavingUsd).toBe(1460); // $2/h × 730 h
    expect(c.annualSavingUsd).toBe(17520);
    expect(c.title).toBe('Consolidate 2 lightly used hosts onto 1: free host-b');
  });

  it('does not consolidate when the p95 loads do not fit together', () => {
    // Mean 25 % but bursts to 70 %: two bursts do not fit in one GPU at ≤ 80 %.
    const bursty = (name: string): ResourceSeries =>
      host(name, 48, (i) => ({ gpuUtil: i % 8 < 2 ? 0.7 : 0.1 }), { gpus: 1, instanceType: 'gpu-1x' });
    expect(byKind(resourceFindings([bursty('h1'), bursty('h2')], CATALOG), 'consolidation')).toEqual([]);
  });

  it('forecasts the days until 85 % on a rising trend, with r2 as confidence', () => {
    // 10 days hourly, +2 points/day from 30 %.
    const rising = host('grow-1', 240, (i) => ({ gpuUtil: 0.3 + (0.02 * i) / 24 }), { instanceType: 'gen-4gpu' });
    const f = one(resourceFindings([rising], CATALOG), 'capacity-forecast');
    const now = 0.3 + (0.02 * 239) / 24;
    expect(f.evidence.trend).toBe('growth');
    expect(f.evidence.slope_pct_per_day).toBeCloseTo(2, 6);
    expect(f.evidence.r2).toBe(1);
    expect(f.evidence.days_to_limit).toBeCloseTo((0.85 - now) / 0.02, 1); // ≈ 17.5 days
    expect(f.evidence.reaches_limit_at).toBe(new Date(START + 239 * HOUR + ((0.85 - now) / 0.02) * 86_400_000).toISOString());
    expect(f.severity).toBe('medium');
    expect(f.confidence).toBe(1);
  });

  it('steady 50 % load: no scale-down, scale-up, bottleneck or consolidation', () => {
    const steady = [1, 2].map((k) =>
      host(`steady-${k}`, 72, (i) => ({ gpuUtil: 0.5 + (i % 2 === 0 ? 0.02 : -0.02), memUtil: 0.4, cpuUtil: 0.3 }), {
        instanceType: 'gen-4gpu',
      }),
    );
    const fs = resourceFindings(steady, CATALOG);
    for (const kind of ['scale-down', 'scale-up', 'bottleneck', 'consolidation']) expect(byKind(fs, kind)).toEqual([]);
    expect(byKind(fs, 'capacity-forecast').map((f) => f.evidence.trend)).toEqual(['no growth', 'no growth']);
    expect(byKind(fs, 'utilisation-pattern')).toHaveLength(2);
  });

  it('scale-up on p95 GPU > 85 %, with the GPUs needed at 80 %', () => {
    const hot = host('hot-1', 48, (i) => ({ gpuUtil: i % 4 === 0 ? 0.8 : 0.92, memUtil: 0.5, cpuUtil: 0.4 }), { instanceType: 'gen-4gpu' });
    const f = one(resourceFindings([hot], CATALOG), 'scale-up');
    expect(f.severity).toBe('high');
    expect(f.evidence).toMatchObject({ gpu_util_p95_pct: 92, gpus_needed: 5 }); // 0.92 × 4 / 0.8 = 4.6
    expect(f.recommendation).toContain('add 1 GPU-equivalent');
    expect(f.recommendation).toContain('No single catalog type fits');
  });

  it('scale-down on p95 GPU < 30 %, with a cheaper catalog type and its saving', () => {
    const cold = host('cold-1', 48, () => ({ gpuUtil: 0.15, memUtil: 0.1, cpuUtil: 0.05 }), { instanceType: 'gen-4gpu' });
    const fs = resourceFindings([cold], CATALOG);
    const f = one(fs, 'scale-down');
    // Needs: 0.15 × 4 / 0.8 = 0.75 GPU, 6 vCPU, 96 GiB, 80 GiB per GPU → gpu-1x at $2/h.
    expect(f.evidence).toMatchObject({ gpus_needed: 1, recommended_instance: 'gpu-1x' });
    expect(f.monthlySavingUsd).toBe(5840); // (10 − 2) × 730
    expect(f.annualSavingUsd).toBe(70080);
    expect(byKind(fs, 'scale-up')).toEqual([]);
  });

  it('daily shape: idle night hours are counted and priced', () => {
    const daily = host('cyc-1', 72, (i) => ({ gpuUtil: i % 24 < 6 ? 0.01 : 0.6 }), { instanceType: 'gen-4gpu' });
    const p = one(resourceFindings([daily], CATALOG), 'utilisation-pattern');
    expect(p.evidence).toMatchObject({
      idle_hours_per_day: 6,
      idle_hours_utc: '0,1,2,3,4,5',
      peak_to_trough_ratio: 60,
      idle_share_pct: 25,
    });
    expect(p.monthlySavingUsd).toBe(1825); // $10/h × 6 h × 730/24
  });

  it('CPU-bound when CPU ≫ GPU; GPU memory-bandwidth-bound from DRAM vs SM active', () => {
    const cpu = host('cpu-1', 48, () => ({ gpuUtil: 0.35, memUtil: 0.3, cpuUtil: 0.75 }));
    expect(one(resourceFindings([cpu], CATALOG), 'bottleneck').evidence.bound).toBe('cpu');
    const bw = host('bw-1', 48, () => ({
      gpuUtil: 0.8,
      smActive: 0.4,
      dramActive: 0.7,
      memUtil: 0.3,
      cpuUtil: 0.2,
      fbUsedGiB: 300,
      fbTotalGiB: 320,
    }));
    const b = one(resourceFindings([bw], CATALOG), 'bottleneck');
    expect(b.evidence).toMatchObject({
      bound: 'gpu-memory-bandwidth',
      dram_active_mean_pct: 70,
      sm_active_mean_pct: 40,
      fb_used_share_mean_pct: 93.8,
    });
    expect(b.recommendation).toContain('--kv-cache-dtype fp8');
  });

  it('skips hosts with too few points', () => {
    expect(resourceFindings([host('tiny', 3, () => ({ gpuUtil: 0.1 }))], CATALOG)).toEqual([]);
  });
});
