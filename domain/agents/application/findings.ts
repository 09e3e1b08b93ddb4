/**
 * The application agent's review findings: answer quality per deployment and version, compared
 * with the gate's statistics (domain/gate/stats.ts). Pure, workflow-safe.
 */
import { percentPoints } from '../../../common/format.js';
import type { Finding } from '../types.js';
import { DEFAULT_RULE, type VersionStats } from '../../gate/types.js';
import { decideLook } from '../../gate/stats.js';

export interface DeploymentQuality {
  deployment: string;
  /** Versions seen in the window, oldest first. */
  versions: Array<{ version: string; stats: VersionStats; lastTs?: string }>;
  gates: Array<{ candidate: string; decision: string; decidedAt: string }>;
}

export function applicationFindings(ds: DeploymentQuality[]): Finding[] {
  const out: Finding[] = [];
  for (const d of ds) {
    const versions = d.versions.filter((v) => v.stats.quality.n > 0);
    const latest = versions.at(-1);
    if (!latest) continue;
    const s = latest.stats;
    out.push({
      kind: 'quality-level',
      title: `${d.deployment} ${latest.version}: quality ${percentPoints(s.quality.mean)} %, hallucination rate ${percentPoints(s.hallucination_rate.mean)} %, toxicity rate ${percentPoints(s.toxicity_rate.mean)} %`,
      severity: s.hallucination_rate.mean > 0.1 || s.toxicity_rate.mean > 0.01 ? 'medium' : 'info',
      subject: `${d.deployment}/${latest.version}`,
      evidence: {
        samples: s.quality.n,
        quality_pct: percentPoints(s.quality.mean),
        hallucination_rate_pct: percentPoints(s.hallucination_rate.mean),
        toxicity_rate_pct: percentPoints(s.toxicity_rate.mean),
      },
      recommendation:
        s.hallucination_rate.mean > 0.1
          ? 'Investigate the hallucinated answers (grounding, retrieval, decoding settings) before the next rollout.'
          : 'No action needed; keep the gate in every rollout.',
      confidence: Math.min(0.95, 0.5 + s.quality.n / 1000),
    });
    const previous = versions.at(-2);
    if (previous) {
      const look = decideLook(previous.stats, s, { ...DEFAULT_RULE, minSamples: 30 });
      const q = look.metrics.find((m) => m.metric === 'quality')!;
      out.push({
        kind: look.outcome === 'REJECT' ? 'quality-regression' : look.outcome === 'APPROVE' ? 'quality-stable' : 'quality-undecided',
        title: `${d.deployment}: ${latest.version} vs ${previous.version}: ${look.outcome === 'REJECT' ? 'worse beyond tolerance' : look.outcome === 'APPROVE' ? 'within tolerance' : 'not enough evidence yet'} (quality ${percentPoints(q.baseline)} % → ${percentPoints(q.candidate)} %)`,
        severity: look.outcome === 'REJECT' ? 'high' : 'info',
        subject: d.deployment,
        evidence: {
          previous_samples: previous.stats.quality.n,
          latest_samples: s.quality.n,
          quality_before_pct: percentPoints(q.baseline),
          quality_after_pct: percentPoints(q.candidate),
          quality_drop_upper_points: percentPoints(q.upper),
          quality_drop_lower_points: percentPoints(q.lower),
        },
        recommendation: look.outcome === 'REJECT' ? `Roll back to ${previous.version}: ${look.reason}` : look.reason,
        confidence: look.outcome === 'CONTINUE' ? 0.4 : 0.9,
      });
    }
    const rejects = d.gates.filter((g) => g.decision === 'REJECT');
    if (d.gates.length) {
      out.push({
        kind: 'gate-history',
        title: `${d.deployment}: ${d.gates.length} gated rollout${d.gates.length === 1 ? '' : 's'}, ${rejects.length} rejected`,
        severity: rejects.length ? 'low' : 'info',
        subject: d.deployment,
        evidence: { gates: d.gates.length, rejected: rejects.length, approved: d.gates.filter((g) => g.decision === 'APPROVE').length },
        recommendation: rejects.length
          ? `Rejected candidates: ${rejects.map((g) => g.candidate).join(', ')}; check what changed in them (quantisation, context length, prompts).`
          : 'Every gated rollout passed.',
        confidence: 1,
      });
    }
  }
  return out;
}
