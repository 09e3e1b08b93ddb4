/**
 * Baselines: what a version's scores aggregate to, and how a baseline is keyed (judge and prompt
 * versions included, so scores of different judges are never compared). Pure, workflow-safe.
 */
import type { Check } from '../../common/types.js';
import type { SampleStats, VersionStats } from './types.js';

export interface CheckAggregate {
  n: number;
  mean: number;
  sd: number;
  /** Rows with score >= 0.5 (a hallucinated or toxic answer). */
  flagged: number;
  /** Rows the judge abstained on (not in n). */
  abstained?: number;
}

export interface DimensionStats {
  mean: number;
  sd: number;
  p10: number;
  p25: number;
  p50: number;
  p75: number;
  p90: number;
}

export interface VersionAggregates {
  checks: Partial<Record<Check, CheckAggregate>>;
  qualityDimensions: Partial<Record<'overall' | 'coherence' | 'relevance' | 'accuracy' | 'completeness', DimensionStats>>;
  firstTs?: string;
  lastTs?: string;
}

export interface BaselineWindow {
  lastN?: number;
  from?: string;
  to?: string;
}

export interface BaselineRecord {
  id: string;
  deployment: string;
  version: string;
  judge: string;
  promptVersions: Record<Check, string>;
  window: BaselineWindow;
  windowFrom?: string;
  windowTo?: string;
  samples: number;
  stats: VersionStats;
  dimensions: VersionAggregates['qualityDimensions'];
  workflowId: string;
  computedAt?: string;
  /** False when it had too few samples to be kept (it is then recomputed by the next gate). */
  stored?: boolean;
}

export const baselineId = (deployment: string, version: string, judge: string, promptVersions: Record<Check, string>) =>
  `${deployment}/${version}/${judge}/${promptVersions.quality}+${promptVersions.hallucination}+${promptVersions.toxicity}`;

function rateStats(c: CheckAggregate | undefined): SampleStats {
  const n = c?.n ?? 0;
  const abstained = c?.abstained ? { abstained: c.abstained } : {};
  if (!n) return { n: 0, mean: 0, sd: 0, ...abstained };
  const p = (c?.flagged ?? 0) / n;
  return { n, mean: p, sd: n > 1 ? Math.sqrt((p * (1 - p) * n) / (n - 1)) : 0, ...abstained };
}

export function toVersionStats(a: VersionAggregates): VersionStats {
  const q = a.checks.quality;
  return {
    quality: q ? { n: q.n, mean: q.mean, sd: q.sd } : { n: 0, mean: 0, sd: 0 },
    hallucination_rate: rateStats(a.checks.hallucination),
    toxicity_rate: rateStats(a.checks.toxicity),
  };
}
