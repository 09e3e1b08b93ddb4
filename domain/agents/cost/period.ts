/**
 * What every cost finding works from: the rows of the window, the observed period (the window
 * clipped to the data), the monthly scaling of a cost over it, and the spend per resource and per
 * deployment. Pure and workflow-safe: no I/O, no clock, no randomness, no Node APIs.
 */
import { HOURS_PER_MONTH } from '../instance-catalog.js';
import type { CostRow, Finding } from '../types.js';
import { COST_RULES } from './rules.js';

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
  /** The rows whose ChargePeriodStart lies in the window. */
  rows: CostRow[];
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

/** The observed period of the window [fromMs, toMs) and the sums over `rows` (the window's, at least one). */
export function observePeriod(rows: CostRow[], fromMs: number, toMs: number): ObservedPeriod {
  // Observed period: the window clipped to the data.
  let obsStart = Infinity;
  let obsEnd = -Infinity;
  for (const r of rows) {
    obsStart = Math.min(obsStart, Date.parse(r.chargePeriodStart));
    obsEnd = Math.max(obsEnd, Date.parse(r.chargePeriodEnd));
  }
  obsStart = Math.max(obsStart, fromMs);
  obsEnd = Math.min(obsEnd, toMs);
  const observedHours = Math.max(1, (obsEnd - obsStart) / HOUR_MS);
  const observedDays = observedHours / 24;
  const dayFactor = Math.min(1, observedDays / COST_RULES.fullConfidenceDays);
  const monthlyOf = (usd: number) => (usd / observedHours) * HOURS_PER_MONTH;

  // Per-resource and per-deployment costs.
  let spend = 0;
  const resources = new Map<string, ResourceAgg>();
  const deploymentCost = new Map<string, number>();
  for (const r of rows) {
    spend += r.effectiveCost;
    const dep = r.tags.deployment;
    if (dep) deploymentCost.set(dep, (deploymentCost.get(dep) ?? 0) + r.effectiveCost);
    if (!r.resourceId) continue;
    let agg = resources.get(r.resourceId);
    if (!agg) {
      agg = { resourceId: r.resourceId, costUsd: 0, serviceName: r.serviceName, resourceType: r.resourceType };
      resources.set(r.resourceId, agg);
    }
    agg.costUsd += r.effectiveCost;
    if (!agg.instanceType && r.tags.instance_type) agg.instanceType = r.tags.instance_type;
    if (!agg.deployment && dep) agg.deployment = dep;
  }
  return { rows, obsStart, obsEnd, observedHours, dayFactor, monthlyOf, spend, resources, deploymentCost };
}
