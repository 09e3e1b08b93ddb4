/**
 * The looks a gate keeps in its evidence, so reports can chart how the confidence bounds
 * narrowed against the tolerance until the decision. Pure, workflow-safe.
 */
import type { LookPoint, LookResult } from './types.js';

/** Most looks kept in a gate's evidence; beyond it, older looks are thinned out. */
export const MAX_LOOK_HISTORY = 120;

const r6 = (x: number) => Math.round(x * 1e6) / 1e6;

/** The chart point of one look: number, time (ms since epoch), candidate samples, and each metric's bounds. */
export function lookPoint(look: LookResult, n: number, atMs: number): LookPoint {
  return {
    look: n,
    at: new Date(atMs).toISOString(),
    samples: look.samples,
    outcome: look.outcome,
    metrics: look.metrics.map((m) => ({ metric: m.metric, harm: r6(m.harm), lower: r6(m.lower), upper: r6(m.upper), verdict: m.verdict })),
  };
}

/**
 * The history with one more look. Over `max` looks, every second look between the first and
 * the last is dropped, so a long wait keeps its whole span at a coarser grain (each point keeps
 * its look number).
 */
export function appendLook(history: readonly LookPoint[], point: LookPoint, max = MAX_LOOK_HISTORY): LookPoint[] {
  const out = [...history, point];
  if (out.length <= Math.max(2, max)) return out;
  return out.filter((_, i) => i === 0 || i === out.length - 1 || i % 2 === 0);
}
