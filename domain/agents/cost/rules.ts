/**
 * The cost agent's rules (`COST_RULES`, described in findings.ts) and the rounding, unit-price
 * format and money-at-stake severity its findings share. Pure and workflow-safe: no I/O, no clock,
 * no randomness, no Node APIs.
 */
import { round } from '../../../common/format.js';
import type { Severity } from '../types.js';

export const COST_RULES = {
  /** Idle share (samples below 5 % utilisation) from which a resource counts as idle. */
  idleShareMin: 0.9,
  /** p95 utilisation below which a resource is under-used. */
  underusedP95Max: 0.4,
  /** Headroom on top of the p95 need when right-sizing. */
  headroom: 0.3,
  /** Cost per token at this multiple of the cheapest deployment's is flagged. */
  costPerTokenFlagRatio: 2,
  anomalySds: 3,
  anomalyMinRise: 0.2,
  anomalyMinExcessUsd: 1,
  trailingDays: 7,
  /** Days of data for full confidence. */
  fullConfidenceDays: 14,
  /** Utilisation samples for full confidence. */
  fullConfidenceSamples: 288,
} as const;

export function round2(x: number): number {
  return round(x, 2) + 0; // + 0 turns -0 into 0
}
export function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000 + 0;
}

/** A unit price: 2 decimals, more when it is below 10 cents. */
export function formatUnitUsd(x: number): string {
  return x >= 0.1 || x === 0 ? `$${x.toFixed(2)}` : `$${x.toPrecision(2)}`;
}

export function severityForUsd(usdAtStake: number): Severity {
  if (usdAtStake >= 10_000) return 'high';
  if (usdAtStake >= 1_000) return 'medium';
  if (usdAtStake >= 100) return 'low';
  return 'info';
}
