/**
 * Shared shapes of the analysis agents (LLM integration points 1-4): what their pure finding
 * functions take and return. Pure, workflow-safe.
 */
import { z } from 'zod';

export const AGENTS = ['cost', 'performance', 'resource', 'application'] as const;

const isoDate = (what: string) =>
  z
    .string()
    .max(100)
    .refine((s) => Number.isFinite(Date.parse(s)), { message: `${what} must be an ISO-8601 date` });

/**
 * An analysis agent's input (CLI bounds: --days 1-366, a question of 1-2000 characters). A window
 * whose end is not after its start is a failed run ("empty time range"), recorded like others.
 */
export const agentInputSchema = z.strictObject({
  days: z.number().int().min(1).max(366).optional(),
  from: isoDate('from').optional(),
  to: isoDate('to').optional(),
  stepSeconds: z.number().int().min(15).max(86_400).optional(),
  reviewId: z.string().min(1).max(1000).optional(),
  question: z.string().trim().min(1).max(2000).optional(),
});

/** The optimisation review's input (unknown agent names are refused by the workflow, naming them). */
export const reviewInputSchema = z.strictObject({
  agents: z
    .array(z.string().max(100))
    .max(AGENTS.length * 2)
    .optional(),
  days: z.number().int().min(1).max(366).optional(),
});
export type AgentName = (typeof AGENTS)[number];

export type Severity = 'info' | 'low' | 'medium' | 'high';

/** One technical finding, computed deterministically from data; the LLM only narrates it. */
export interface Finding {
  /** Stable kind, e.g. 'idle-resource', 'right-size', 'cost-per-token', 'spend-anomaly'. */
  kind: string;
  /** One line a business reader understands, with the key number. */
  title: string;
  severity: Severity;
  /** Resource, deployment or GPU the finding is about. */
  subject: string;
  /** The numbers behind it (units in the key names: _usd, _pct, _ms, _gib, ...). */
  evidence: Record<string, number | string>;
  /** What to do, templated from the numbers. */
  recommendation: string;
  monthlySavingUsd?: number;
  annualSavingUsd?: number;
  /** Non-monetary impact, e.g. "p95 latency back to ~200 ms". */
  impact?: string;
  /** 0..1: how sure the rule is, given the amount and quality of data. */
  confidence: number;
}

// ----- Cost (FinOps FOCUS 1.x) ---------------------------------------------------------------

/** One FOCUS cost-and-usage row, normalised. */
export interface CostRow {
  chargePeriodStart: string; // ISO
  chargePeriodEnd: string; // ISO
  billedCost: number;
  effectiveCost: number;
  resourceId: string;
  resourceType: string;
  serviceName: string;
  regionId: string;
  skuId: string;
  consumedQuantity: number;
  consumedUnit: string;
  /** FOCUS Tags (JSON object); `deployment` and `instance_type` tags are used when present. */
  tags: Record<string, string>;
}

/** Utilisation of one resource over the analysis window (from the resource metrics). */
export interface ResourceUtilisation {
  resourceId: string;
  /** Mean GPU (or CPU when no GPU) utilisation, 0..1. */
  meanUtilisation: number;
  /** Share of samples with utilisation below 5 %, 0..1. */
  idleShare: number;
  /** Peak (p95) utilisation, 0..1. */
  p95Utilisation: number;
  samples: number;
}

/** An instance / GPU type that can be moved to. Prices per hour, on demand. */
export interface InstanceType {
  name: string;
  hourlyUsd: number;
  gpus: number;
  gpuMemoryGiB: number;
  vcpus: number;
  memoryGiB: number;
  /** 'general' | 'compute' | 'memory' | 'gpu' */
  family: string;
}

// ----- Performance (vLLM) and resource (DCGM, node exporter) metrics ------------------------

/** One sample of one series, as stored in ClickHouse `metric_samples`. */
export interface MetricSample {
  ts: string; // ISO
  metric: string;
  labels: Record<string, string>;
  value: number;
}

/** A time-aligned view of one deployment's vLLM metrics (per step). */
export interface PerformanceSeries {
  deployment: string;
  stepSeconds: number;
  points: Array<{
    ts: string;
    p95LatencyMs?: number;
    p99LatencyMs?: number;
    p95TtftMs?: number;
    p95TpotMs?: number; // time per output token (inter-token latency)
    running?: number;
    waiting?: number;
    kvCacheUsage?: number; // 0..1
    preemptionsPerMin?: number;
    promptTokensPerSec?: number;
    generationTokensPerSec?: number;
    /** Labels of the serving configuration at that point (model, max_model_len, num_gpu_blocks, block_size, ...). */
    config?: Record<string, string>;
  }>;
}

/** A time-aligned view of one GPU host (per step). */
export interface ResourceSeries {
  host: string;
  /** Resource id of the host in the cost data (to price recommendations), when known. */
  resourceId?: string;
  instanceType?: string;
  stepSeconds: number;
  points: Array<{
    ts: string;
    gpuUtil?: number; // 0..1 mean over the host's GPUs
    smActive?: number; // 0..1
    dramActive?: number; // 0..1
    fbUsedGiB?: number;
    fbTotalGiB?: number;
    powerW?: number;
    cpuUtil?: number; // 0..1
    memUtil?: number; // 0..1 host memory
  }>;
  gpus: number;
}

// ----- What an agent's analysis step returns ---------------------------------------------------

/** The time window an agent analyses (ISO instants) and the step of its series. */
export interface AgentWindow {
  from: string;
  to: string;
  stepSeconds: number;
}

/**
 * An agent's analysis: findings and small aggregates only (never raw rows), so its workflow
 * history stays small however much data the agent read.
 */
export interface AgentAnalysis {
  findings: Finding[];
  totals?: Record<string, number>;
  summary?: string;
  /** How many data points (rows, samples) the analysis read. */
  dataPoints: number;
  /** Source problems that did not stop the analysis, and anything left out of it. */
  warnings: string[];
  /** When findings were left out to keep the analysis bounded: how many, of which kinds (see bounded.ts). */
  notListed?: string;
}
