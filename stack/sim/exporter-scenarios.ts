/**
 * The scripted scenarios of the simulated inference host (exporter-sim.ts): per scenario and
 * phase, the load, latencies and utilisations the simulated exporters (exporter-model.ts)
 * follow. The product's seed scenarios:
 * - 'kv-cache-regression': phase 'before' — p95 e2e ≈ 200 ms, max_model_len 4096, KV cache ≈ 50 %,
 *   no preemptions; phase 'after' — a model update raised max_model_len to 32768 with
 *   num_gpu_blocks unchanged: p95 ≈ 2000 ms, KV cache ≈ 98 %, preemptions growing,
 *   waiting ≫ running.
 * - 'memory-bound': GPU util ≈ 45 %, host memory ≈ 60 %, CPU ≈ 30 %, DRAM active ≈ 0.8 against
 *   SM active ≈ 0.28.
 * - 'healthy': moderate everything.
 * - 'idle': phase 'idle' — a host that serves almost nothing (GPU ≈ 1 %, CPU ≈ 2 %); phase 'busy'
 *   — a short burst of ordinary load (play it for 5 % of the time to get "idle 95 % of the time").
 */
export type ExporterScenario = 'healthy' | 'kv-cache-regression' | 'memory-bound' | 'idle';

/** Phases each scenario accepts; the first is the initial phase. */
export const SCENARIO_PHASES: Record<ExporterScenario, readonly string[]> = {
  healthy: ['steady', 'before', 'after'],
  'kv-cache-regression': ['before', 'after'],
  'memory-bound': ['steady', 'before', 'after'],
  idle: ['idle', 'busy'],
};

export interface Dist {
  /** Target 95th percentile, seconds. */
  p95: number;
  /** log-normal shape. */
  sigma: number;
}

export interface PhaseParams {
  /** Finished requests per second. */
  reqPerSec: number;
  e2e: Dist;
  ttft: Dist;
  tpot: Dist;
  promptTokensPerReq: number;
  generationTokensPerReq: number;
  running: number;
  waiting: number;
  /** Jitter of waiting (absolute). */
  waitingJitter: number;
  kvCache: number;
  preemptionsPerSec: number;
  maxModelLen: number;
  gpuUtil: number; // 0..100
  smActive: number; // 0..1
  dramActive: number; // 0..1
  fbUsedMiB: number;
  powerW: number;
  cpuUtil: number; // 0..1
  memUtil: number; // 0..1
}

const BASE: PhaseParams = {
  reqPerSec: 15,
  e2e: { p95: 0.5, sigma: 0.4 },
  ttft: { p95: 0.08, sigma: 0.4 },
  tpot: { p95: 0.015, sigma: 0.25 },
  promptTokensPerReq: 600,
  generationTokensPerReq: 30,
  running: 8,
  waiting: 0,
  waitingJitter: 1,
  kvCache: 0.45,
  preemptionsPerSec: 0,
  maxModelLen: 4096,
  gpuUtil: 65,
  smActive: 0.6,
  dramActive: 0.35,
  fbUsedMiB: 74_200,
  powerW: 280,
  cpuUtil: 0.4,
  memUtil: 0.45,
};

const KV_BEFORE: PhaseParams = {
  ...BASE,
  reqPerSec: 20,
  e2e: { p95: 0.2, sigma: 0.35 },
  ttft: { p95: 0.05, sigma: 0.4 },
  tpot: { p95: 0.009, sigma: 0.25 },
  promptTokensPerReq: 400,
  generationTokensPerReq: 20,
  running: 8,
  waiting: 0,
  kvCache: 0.5,
  maxModelLen: 4096,
  gpuUtil: 62,
  smActive: 0.55,
  dramActive: 0.4,
  powerW: 290,
  cpuUtil: 0.35,
  memUtil: 0.5,
};

const KV_AFTER: PhaseParams = {
  ...KV_BEFORE,
  reqPerSec: 12,
  e2e: { p95: 2.0, sigma: 0.5 },
  ttft: { p95: 1.5, sigma: 0.6 },
  tpot: { p95: 0.03, sigma: 0.3 },
  // Long contexts are admitted now: each sequence holds many more KV blocks.
  promptTokensPerReq: 3000,
  running: 4,
  waiting: 45,
  waitingJitter: 5,
  kvCache: 0.98,
  preemptionsPerSec: 1.5,
  maxModelLen: 32768,
  gpuUtil: 95,
  smActive: 0.7,
  dramActive: 0.6,
  powerW: 360,
};

const MEMORY_BOUND: PhaseParams = {
  ...BASE,
  reqPerSec: 10,
  e2e: { p95: 0.8, sigma: 0.4 },
  ttft: { p95: 0.15, sigma: 0.4 },
  tpot: { p95: 0.025, sigma: 0.25 },
  running: 10,
  waiting: 2,
  waitingJitter: 1,
  kvCache: 0.7,
  gpuUtil: 45,
  smActive: 0.28,
  dramActive: 0.82,
  fbUsedMiB: 76_000,
  powerW: 220,
  cpuUtil: 0.3,
  memUtil: 0.6,
};

const IDLE: PhaseParams = {
  ...BASE,
  reqPerSec: 0.05,
  running: 0,
  waiting: 0,
  waitingJitter: 0,
  kvCache: 0.01,
  gpuUtil: 1,
  smActive: 0.01,
  dramActive: 0.01,
  fbUsedMiB: 1_200,
  powerW: 60,
  cpuUtil: 0.02,
  memUtil: 0.15,
};

export function paramsFor(scenario: ExporterScenario, phase: string): PhaseParams {
  if (scenario === 'idle') return phase === 'busy' ? BASE : IDLE;
  if (scenario === 'kv-cache-regression') return phase === 'after' ? KV_AFTER : KV_BEFORE;
  if (scenario === 'memory-bound') return MEMORY_BOUND;
  return BASE;
}
