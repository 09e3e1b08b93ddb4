/** Report data for the renderers' tests and previews: a deployment with a rejected candidate. */
import { decideLook } from '../../domain/gate/stats.js';
import { appendLook, lookPoint } from '../../domain/gate/looks.js';
import { DEFAULT_RULE, type Evidence, type GateResult, type LookPoint, type VersionStats } from '../../domain/gate/types.js';
import type { ReportData, ReportGate, TrendPoint } from '../../domain/report/types.js';

export const stats = (q: number, h: number, t: number, n: number): VersionStats => ({
  quality: { n, mean: q, sd: 0.15 },
  hallucination_rate: { n, mean: h, sd: Math.sqrt(h * (1 - h)) },
  toxicity_rate: { n, mean: t, sd: Math.sqrt(t * (1 - t)) },
});

export const BASE = stats(0.87, 0.03, 0.01, 400);
export const T0 = Date.UTC(2025, 5, 1, 12, 0, 0);

/** A gate that looked five times at a degrading candidate (20, 45, 70, 95, 120 samples) and rejected it. */
export function rejectingGate(): { evidence: Evidence; history: LookPoint[] } {
  let history: LookPoint[] = [];
  let last = decideLook(BASE, stats(0.75, 0.23, 0.01, 20), DEFAULT_RULE);
  for (const [i, n] of [30, 80, 150, 220, 300].entries()) {
    last = decideLook(BASE, stats(0.75, 0.23, 0.01, n), DEFAULT_RULE);
    history = appendLook(history, lookPoint(last, i + 1, T0 + i * 900_000));
  }
  const evidence: Evidence = {
    baseline: { ...BASE, version: 'v1', judge: 'offline', promptVersion: 'offline-v12', baselineId: 'd/v1/offline/x' },
    candidate: { ...stats(0.75, 0.23, 0.01, 300), version: 'v2-q4' },
    look: last,
    looks: 5,
    rule: { test: 'test', alpha: DEFAULT_RULE.alpha, minSamples: DEFAULT_RULE.minSamples, tolerances: DEFAULT_RULE.tolerances },
    history,
  };
  return { evidence, history };
}

export function gateResult(evidence: Evidence | undefined, over: Partial<GateResult> = {}): GateResult {
  return {
    gateId: 'gate/chat/v2-q4',
    deployment: 'chat',
    baselineVersion: 'v1',
    candidateVersion: 'v2-q4',
    decision: 'REJECT',
    effectiveDecision: 'REJECT',
    reason: evidence?.look.reason ?? 'no baseline',
    evidence,
    rollback: { status: 'dry-run', deployer: 'dry-run', detail: '', idempotencyKey: 'k' },
    ...over,
  };
}

export function trendPoints(): TrendPoint[] {
  const out: TrendPoint[] = [];
  const t0 = T0 / 1000;
  for (let i = 0; i < 6; i++) {
    for (const [v, q, h, off] of [
      ['v1', 0.87, 0.03, 0],
      ['v2-q4', 0.75, 0.23, 6],
    ] as const) {
      const t = t0 + (i + off) * 60;
      out.push({ model_version: v, check_name: 'quality', t, n: 50, mean: q + (i % 2) * 0.01, flagged: 3 });
      out.push({ model_version: v, check_name: 'hallucination', t, n: 50, mean: h, flagged: Math.round(h * 50) });
      out.push({ model_version: v, check_name: 'toxicity', t, n: 50, mean: 0.05, flagged: i % 3 === 0 ? 1 : 0 });
    }
  }
  return out;
}

export function sampleReport(): ReportData {
  const { evidence } = rejectingGate();
  const gate: ReportGate = {
    gateId: 'gate/chat/v2-q4',
    baselineVersion: 'v1',
    candidateVersion: 'v2-q4',
    decision: 'REJECT',
    effectiveDecision: 'REJECT',
    reason: evidence.look.reason,
    decidedAt: new Date(T0 + 3_600_000).toISOString(),
    rollback: 'delivered',
    evidence,
  };
  return {
    deployment: 'chat',
    generatedAt: new Date(T0 + 7_200_000).toISOString(),
    window: { from: new Date(T0 - 7 * 86_400_000).toISOString(), to: new Date(T0 + 7_200_000).toISOString(), days: 7 },
    judge: 'offline',
    promptVersions: { quality: 'offline-v12', hallucination: 'offline-v12', toxicity: 'offline-v12' },
    trends: { bucketSeconds: 60, points: trendPoints() },
    band: { version: 'v1', samples: 400, stats: BASE, tolerances: DEFAULT_RULE.tolerances, source: 'the baseline of the latest gate' },
    gates: [gate],
    coverage: {
      versions: [
        { version: 'v1', stored: 400, scored: 400 },
        { version: 'v2-q4', stored: 300, scored: 120 },
      ],
      lastCycle: { finishedAt: new Date(T0).toISOString(), status: 'ok', note: '120 of 300 interactions scored' },
    },
    review: {
      findings: [
        {
          agent: 'cost',
          severity: 'high',
          subject: 'gpu-idle-1',
          title: 'Instance idle 95 % of the time',
          recommendation: 'Stop it',
          monthlyUsd: 52,
          annualUsd: 624,
        },
        {
          agent: 'resource',
          severity: 'medium',
          subject: 'gpu-2',
          title: 'Memory-bound',
          recommendation: 'Move',
          monthlyUsd: 2029.42,
          annualUsd: 24_353,
        },
        {
          agent: 'performance',
          severity: 'high',
          subject: 'vllm-1',
          title: 'p95 latency 10x',
          recommendation: 'Grow the KV cache',
          monthlyUsd: null,
          annualUsd: null,
        },
      ],
      finishedAt: new Date(T0).toISOString(),
    },
  };
}
