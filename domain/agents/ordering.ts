/**
 * Orderings shared by the agents' findings (pure, workflow-safe: no I/O, no clock, no
 * randomness, no Node APIs): text by code points, instance types cheapest first, findings most
 * severe first. Each is total and locale-free, so a sort gives the same order on every machine
 * and in every replay.
 */
import type { Finding, InstanceType, Severity } from './types.js';

/** Code-point order of two strings: -1, 0 or 1 (no locale, unlike `localeCompare`). */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Instance types by hourly price, cheapest first; ties by name. */
export function cheapestFirst(a: InstanceType, b: InstanceType): number {
  return a.hourlyUsd - b.hourlyUsd || compareText(a.name, b.name);
}

const SEVERITY_ORDER: Record<Severity, number> = { high: 0, medium: 1, low: 2, info: 3 };

/** Findings most severe first, in their given order within a severity. */
export function bySeverity(findings: readonly Finding[]): Finding[] {
  return findings
    .map((f, i) => ({ f, i }))
    .sort((a, b) => SEVERITY_ORDER[a.f.severity] - SEVERITY_ORDER[b.f.severity] || a.i - b.i)
    .map(({ f }) => f);
}
