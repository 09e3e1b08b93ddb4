/**
 * The simulated exporters of one GPU host, without a server (for unit tests and for the server
 * in exporter-sim.ts): the exposition, in Prometheus text format 0.0.4, of a vLLM server,
 * NVIDIA's DCGM exporter and the node exporter following a scenario of exporter-scenarios.ts.
 *
 * - Metric names and label names are those the real exporters use (vLLM V0/V1 `vllm:*` with
 *   `model_name`, DCGM `DCGM_FI_*` with gpu/UUID/device/modelName/Hostname, node exporter
 *   `node_cpu_seconds_total{cpu,mode}` and `node_memory_*_bytes`).
 * - Time comes from `clock` (ms). Counters and histograms advance in whole simulated seconds,
 *   each second's increment derived from (seed, second, series), so values depend only on the seed,
 *   the clock and the phase changes, not on how often anybody scrapes. Counters never decrease.
 * - Histogram counts are integers (cumulative floors of the expected counts of a log-normal
 *   latency distribution), so rates and bucket deltas behave like a real server's.
 * - The e2e latency buckets are vLLM's plus finer bounds below 0.3 s: with vLLM's own buckets a
 *   200 ms p95 could not be told apart from 300 ms.
 */
import { type Dist, type ExporterScenario, paramsFor, SCENARIO_PHASES } from './exporter-scenarios.js';

export interface ExporterSimOptions {
  /** Default 0: an OS-assigned free port. Listens on 127.0.0.1. */
  port?: number;
  scenario: ExporterScenario;
  seed?: number;
  /** Milliseconds since the epoch (default Date.now). */
  clock?: () => number;
  /** vLLM `model_name` label (default 'meta-llama/Llama-3.1-8B-Instruct'). */
  modelName?: string;
  /** DCGM `Hostname` label (default 'gpu-node-1'). */
  hostname?: string;
  /** GPUs on the host (default 2). */
  gpus?: number;
  /** Host CPUs (default 8). */
  cpus?: number;
  /** Put the (simulated) clock's time on every sample, so a backfill with a fast clock builds history. */
  timestamps?: boolean;
}

/** Bucket bounds (seconds) as vLLM uses them; e2e has finer bounds below 0.3 s (see above). */
const E2E_BUCKETS = [
  0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0,
  1920.0, 7680.0,
];
const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
const TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];

const FB_TOTAL_MIB = 81_920;
const MEM_TOTAL_BYTES = 128 * 1024 ** 3;
const CPU_MODES = ['idle', 'iowait', 'irq', 'nice', 'softirq', 'steal', 'system', 'user'] as const;
/** Shares of busy time per non-idle mode (sum 1). */
const BUSY_SHARE: Record<string, number> = {
  iowait: 0.03,
  irq: 0.01,
  nice: 0.005,
  softirq: 0.02,
  steal: 0.005,
  system: 0.15,
  user: 0.78,
};

// ---------------------------------------------------------------------------------------------
// Deterministic noise

function mix32(x: number): number {
  let h = x | 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Uniform [0,1) from (seed, second, stream). */
function noise(seed: number, sec: number, stream: number): number {
  const lo = sec % 0x100000000;
  const hi = Math.floor(sec / 0x100000000);
  const h = mix32(mix32(mix32(seed ^ 0x9e3779b9) ^ lo) ^ mix32(hi + stream * 0x85ebca6b));
  return h / 0x100000000;
}

/** Symmetric jitter in [-1, 1). */
function jit(seed: number, sec: number, stream: number): number {
  return noise(seed, sec, stream) * 2 - 1;
}

// Standard normal CDF (Abramowitz-Stegun 7.1.26 for erf, |error| < 1.5e-7).
function normCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + y) / 2 : (1 - y) / 2;
}

const Z95 = 1.6448536;

function lognormalCdf(d: Dist, x: number): number {
  if (x <= 0) return 0;
  const median = d.p95 / Math.exp(Z95 * d.sigma);
  return normCdf((Math.log(x) - Math.log(median)) / d.sigma);
}

function lognormalMean(d: Dist): number {
  const median = d.p95 / Math.exp(Z95 * d.sigma);
  return median * Math.exp((d.sigma * d.sigma) / 2);
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/** A number as the text format writes it. */
function fmt(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(12)));
}

function escLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelStr(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

// ---------------------------------------------------------------------------------------------
// The model (pure; the HTTP server in exporter-sim.ts only renders it)

class Hist {
  acc: number[];
  total = 0;
  sum = 0;
  constructor(readonly bounds: number[]) {
    this.acc = bounds.map(() => 0);
  }
  observe(n: number, d: Dist): void {
    for (let i = 0; i < this.bounds.length; i++) this.acc[i]! += n * lognormalCdf(d, this.bounds[i]!);
    this.total += n;
    this.sum += n * lognormalMean(d);
  }
}

export interface ExporterModel {
  scenario: ExporterScenario;
  phase(): string;
  setPhase(phase: string): void;
  /** The exposition text at the clock's current time. */
  render(): string;
}

/** The simulated exporters without a server (for unit tests and for the server in exporter-sim.ts). */
export function createExporterModel(opts: ExporterSimOptions): ExporterModel {
  const scenario = opts.scenario;
  if (!(scenario in SCENARIO_PHASES)) {
    throw new Error(`unknown scenario '${String(scenario)}' (one of ${Object.keys(SCENARIO_PHASES).join(', ')})`);
  }
  const seed = (opts.seed ?? 1) | 0;
  const clock = opts.clock ?? Date.now;
  const modelName = opts.modelName ?? 'meta-llama/Llama-3.1-8B-Instruct';
  const hostname = opts.hostname ?? 'gpu-node-1';
  const gpus = opts.gpus ?? 2;
  const cpus = opts.cpus ?? 8;
  let phase = SCENARIO_PHASES[scenario][0]!;
  let params = paramsFor(scenario, phase);

  const uuids = Array.from({ length: gpus }, (_, g) => {
    const h = (i: number) =>
      mix32(seed * 31 + g * 7919 + i)
        .toString(16)
        .padStart(8, '0');
    const a = h(1) + h(2) + h(3) + h(4);
    return `GPU-${a.slice(0, 8)}-${a.slice(8, 12)}-${a.slice(12, 16)}-${a.slice(16, 20)}-${a.slice(20, 32)}`;
  });

  // Counters
  const e2e = new Hist(E2E_BUCKETS);
  const ttft = new Hist(TTFT_BUCKETS);
  const tpot = new Hist(TPOT_BUCKETS);
  let preemptions = 0;
  let promptTokens = 0;
  let generationTokens = 0;
  // node exporter: a host that has been up for about a day
  const uptime = 86_400 + Math.floor(noise(seed, 0, 901) * 3600);
  const cpuSeconds: Array<Record<string, number>> = Array.from({ length: cpus }, (_, c) => {
    const busy = 0.3 + 0.1 * noise(seed, c, 902);
    const r: Record<string, number> = { idle: uptime * (1 - busy) };
    for (const m of CPU_MODES) if (m !== 'idle') r[m] = uptime * busy * BUSY_SHARE[m]!;
    return r;
  });

  let sec = Math.floor(clock() / 1000); // next simulated second to apply

  function stepSecond(s: number): void {
    const p = params;
    const n = p.reqPerSec * (1 + 0.1 * jit(seed, s, 1));
    e2e.observe(n, p.e2e);
    ttft.observe(n, p.ttft);
    // One TPOT observation per generated token after the first.
    tpot.observe(n * Math.max(1, p.generationTokensPerReq - 1), p.tpot);
    promptTokens += Math.round(n * p.promptTokensPerReq);
    generationTokens += Math.round(n * p.generationTokensPerReq);
    preemptions += p.preemptionsPerSec * (1 + 0.3 * jit(seed, s, 2));
    for (let c = 0; c < cpus; c++) {
      const busy = clamp(p.cpuUtil + 0.04 * jit(seed, s, 100 + c), 0, 1);
      const row = cpuSeconds[c]!;
      row.idle! += 1 - busy;
      for (const m of CPU_MODES) if (m !== 'idle') row[m]! += busy * BUSY_SHARE[m]!;
    }
  }

  function advance(): number {
    const now = clock();
    const until = Math.floor(now / 1000);
    // A clock that goes backwards changes nothing: counters never decrease.
    for (; sec < until; sec++) stepSecond(sec);
    return now;
  }

  function render(): string {
    const now = advance();
    const s = sec; // gauges are those of the last whole second
    const p = params;
    const out: string[] = [];
    const family = (name: string, type: string, help: string) => {
      out.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
    };
    const stamp = opts.timestamps ? ` ${Math.floor(now)}` : '';
    const line = (name: string, labels: Record<string, string>, v: number) => out.push(`${name}${labelStr(labels)} ${fmt(v)}${stamp}`);
    const ml = { model_name: modelName };

    // ----- vLLM
    family('vllm:num_requests_running', 'gauge', 'Number of requests currently running on GPU.');
    line('vllm:num_requests_running', ml, Math.max(0, Math.round(p.running + 1.5 * jit(seed, s, 10))));
    family('vllm:num_requests_waiting', 'gauge', 'Number of requests waiting to be processed.');
    line('vllm:num_requests_waiting', ml, Math.max(0, Math.round(p.waiting + p.waitingJitter * jit(seed, s, 11))));
    family('vllm:gpu_cache_usage_perc', 'gauge', 'GPU KV-cache usage. 1 means 100 percent usage.');
    const kvJ = p.kvCache > 0.9 ? 0.01 : 0.03;
    line('vllm:gpu_cache_usage_perc', ml, Number(clamp(p.kvCache + kvJ * jit(seed, s, 12), 0, 1).toFixed(4)));
    family('vllm:num_preemptions_total', 'counter', 'Cumulative number of preemption from the engine.');
    line('vllm:num_preemptions_total', ml, Math.floor(preemptions + 1e-9));
    family('vllm:prompt_tokens_total', 'counter', 'Number of prefill tokens processed.');
    line('vllm:prompt_tokens_total', ml, promptTokens);
    family('vllm:generation_tokens_total', 'counter', 'Number of generation tokens processed.');
    line('vllm:generation_tokens_total', ml, generationTokens);
    const hist = (name: string, help: string, h: Hist) => {
      family(name, 'histogram', help);
      for (let i = 0; i < h.bounds.length; i++) {
        line(`${name}_bucket`, { ...ml, le: fmt(h.bounds[i]!) }, Math.floor(h.acc[i]! + 1e-9));
      }
      line(`${name}_bucket`, { ...ml, le: '+Inf' }, Math.floor(h.total + 1e-9));
      line(`${name}_count`, ml, Math.floor(h.total + 1e-9));
      line(`${name}_sum`, ml, Number(h.sum.toFixed(6)));
    };
    hist('vllm:e2e_request_latency_seconds', 'Histogram of end to end request latency in seconds.', e2e);
    hist('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', ttft);
    hist('vllm:time_per_output_token_seconds', 'Histogram of time per output token in seconds.', tpot);
    family('vllm:cache_config_info', 'gauge', 'Information of the LLMEngine CacheConfig');
    line(
      'vllm:cache_config_info',
      {
        block_size: '16',
        cache_dtype: 'auto',
        enable_prefix_caching: 'False',
        gpu_memory_utilization: '0.9',
        max_model_len: String(p.maxModelLen),
        model_name: modelName,
        num_cpu_blocks: '2048',
        num_gpu_blocks: '2048',
        swap_space_bytes: '4294967296',
      },
      1,
    );

    // ----- DCGM exporter
    const gpuLabels = (g: number) => ({
      gpu: String(g),
      UUID: uuids[g]!,
      device: `nvidia${g}`,
      modelName: 'NVIDIA A100-SXM4-80GB',
      Hostname: hostname,
    });
    const perGpu = (name: string, help: string, value: (g: number) => number) => {
      family(name, 'gauge', help);
      for (let g = 0; g < gpus; g++) line(name, gpuLabels(g), value(g));
    };
    perGpu('DCGM_FI_DEV_GPU_UTIL', 'GPU utilization (in %).', (g) => Math.round(clamp(p.gpuUtil + 3 * jit(seed, s, 20 + g), 0, 100)));
    const fbUsed = (g: number) => Math.round(clamp(p.fbUsedMiB + 60 * jit(seed, s, 30 + g), 0, FB_TOTAL_MIB));
    perGpu('DCGM_FI_DEV_FB_USED', 'Framebuffer memory used (in MiB).', fbUsed);
    perGpu('DCGM_FI_DEV_FB_FREE', 'Framebuffer memory free (in MiB).', (g) => FB_TOTAL_MIB - fbUsed(g));
    perGpu('DCGM_FI_DEV_POWER_USAGE', 'Power draw (in W).', (g) => Number((p.powerW + 8 * jit(seed, s, 40 + g)).toFixed(3)));
    perGpu('DCGM_FI_PROF_SM_ACTIVE', 'Ratio of cycles an SM has at least 1 warp assigned (in %).', (g) =>
      Number(clamp(p.smActive + 0.02 * jit(seed, s, 50 + g), 0, 1).toFixed(6)),
    );
    perGpu('DCGM_FI_PROF_DRAM_ACTIVE', 'Ratio of cycles the device memory interface is active sending or receiving data (in %).', (g) =>
      Number(clamp(p.dramActive + 0.02 * jit(seed, s, 60 + g), 0, 1).toFixed(6)),
    );

    // ----- node exporter
    family('node_cpu_seconds_total', 'counter', 'Seconds the CPUs spent in each mode.');
    for (let c = 0; c < cpus; c++) {
      for (const m of CPU_MODES) line('node_cpu_seconds_total', { cpu: String(c), mode: m }, Number(cpuSeconds[c]![m]!.toFixed(2)));
    }
    family('node_memory_MemAvailable_bytes', 'gauge', 'Memory information field MemAvailable_bytes.');
    const avail = MEM_TOTAL_BYTES * (1 - clamp(p.memUtil + 0.01 * jit(seed, s, 70), 0, 1));
    line('node_memory_MemAvailable_bytes', {}, Math.floor(avail / 4096) * 4096);
    family('node_memory_MemTotal_bytes', 'gauge', 'Memory information field MemTotal_bytes.');
    line('node_memory_MemTotal_bytes', {}, MEM_TOTAL_BYTES);
    return out.join('\n') + '\n';
  }

  return {
    scenario,
    phase: () => phase,
    setPhase(next: string) {
      const allowed = SCENARIO_PHASES[scenario];
      if (!allowed.includes(next)) {
        throw new Error(`scenario '${scenario}' has no phase '${next}' (one of ${allowed.join(', ')})`);
      }
      advance(); // the seconds so far belong to the old phase
      phase = next;
      params = paramsFor(scenario, phase);
    },
    render,
  };
}
