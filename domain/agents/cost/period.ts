/**
 * What every cost finding works from: the summary of the window's rows (summary.ts), the
 * observed period (the window clipped to the data), the monthly scaling of a cost over it, and the
 * spend per resource, per deployment and per service and day. Pure and workflow-safe: no I/O, no
 * clock, no randomness, no Node APIs.
 */
import { HOURS_PER_MONTH } from '../instance-catalog.js';
import type { Finding } from '../types.js';
import { COST_RULES } from './rules.js';
import type { CostSummary, ServiceDay } from './summary.js';

const HOUR_MS = 3_600_000;

export interface ResourceAgg {
  resourceId: string;
  costUsd: number;
  serviceName: string;
  resourceType: string;
  instanceType?: string;
  deployment?: string;
}

/** A finding and the money at stake that ranks it. */
export interface Ranked {
  finding: Finding;
  stakeUsd: number;
}

export interface ObservedPeriod {
  /** Spend per service and UTC day, with each day's top resource. */
  serviceDays: ServiceDay[];
  /** Start and end (ms) of the window clipped to the data. */
  obsStart: number;
  obsEnd: number;
  /** Hours of the observed period, at least 1. */
  observedHours: number;
  /** Days observed over the days at full confidence, at most 1. */
  dayFactor: number;
  /** A cost over the observed period scaled to a month of HOURS_PER_MONTH hours. */
  monthlyOf: (usd: number) => number;
  /** Total EffectiveCost of the rows. */
  spend: number;
  resources: Map<string, ResourceAgg>;
  deploymentCost: Map<string, number>;
}

/** The observed period of the window [fromMs, toMs) and the sums of the summary of its rows (at least one). */
export function observePeriod(s: CostSummary, fromMs: number, toMs: number): ObservedPeriod {
  // Observed period: the window clipped to the data.
  const obsStart = Math.max(s.firstStart, fromMs);
  const obsEnd = Math.min(s.lastEnd, toMs);
  const observedHours = Math.max(1, (obsEnd - obsStart) / HOUR_MS);
  const observedDays = observedHours / 24;
  const dayFactor = Math.min(1, observedDays / COST_RULES.fullConfidenceDays);
  const monthlyOf = (usd: number) => (usd / observedHours) * HOURS_PER_MONTH;
  return {
    serviceDays: s.serviceDays,
    obsStart,
    obsEnd,
    observedHours,
    dayFactor,
    monthlyOf,
    spend: s.spendUsd,
    resources: new Map(s.resources.map((r) => [r.resourceId, r])),
    deploymentCost: new Map(s.deploymentCost.map((d) => [d.deployment, d.costUsd])),
  };
}
