/**
 * The text report of the gate simulation: the score pools, the rule, and per scenario its true
 * harms and a table of each rule's decisions, error rates and samples to a decision.
 */
import type { RuleName, SimulationReport } from './simulation.js';

const RULE_LABEL: Record<RuleName, string> = {
  sequential: 'sequential (decideLook)',
  'naive-one-look': 'naive, one look',
  'naive-every-look': 'naive, every look',
};

function p(x: number | undefined): string {
  return x === undefined ? '—' : `${(100 * x).toFixed(1)} %`;
}
function num(x: number): string {
  if (Number.isNaN(x)) return '—';
  const r = Math.round(x * 10) / 10;
  return Number.isInteger(r) ? String(r) : r.toFixed(1);
}

export function formatReport(rep: SimulationReport): string {
  const lines: string[] = [];
  const { rightAnswers: ra, hallucinatedAnswers: ha } = rep.data;
  const o = rep.options;
  lines.push(
    `Deploy gate simulation: ${o.runs} runs per scenario, seed ${o.seed}, baseline ${o.baselineSize} samples, looks of ${o.lookSize} up to ${o.maxSamples}.`,
  );
  lines.push(
    `Scores: offline judge on ${rep.data.file}: right answers (n=${ra.n}) quality ${p(ra.quality)}, hallucination ${p(ra.hallucinationRate)}, toxicity ${p(ra.toxicityRate)}; ` +
      `hallucinated answers (n=${ha.n}) quality ${p(ha.quality)}, hallucination ${p(ha.hallucinationRate)}, toxicity ${p(ha.toxicityRate)}.`,
  );
  const r = rep.rule;
  lines.push(
    `Rule: alpha ${r.alpha}, minSamples ${r.minSamples}, plannedSamples ${r.plannedSamples}, tolerances quality ${100 * r.tolerances.qualityDrop} / hallucination ${100 * r.tolerances.hallucinationRateIncrease} / toxicity ${100 * r.tolerances.toxicityRateIncrease} points; baseline mixture ${rep.baselineMix}.`,
  );
  const header = [
    'rule',
    'approve',
    'reject',
    'inconcl.',
    'false rej.',
    'f.rej+inc.',
    'power',
    'false appr.',
    'mean n',
    'median n',
    'p90 n',
  ];
  for (const sc of rep.scenarios) {
    lines.push('');
    const t = sc.truth;
    lines.push(
      `${sc.name}: candidate mixture ${sc.candidateMix.toFixed(3)}; true quality drop ${(100 * t.qualityDrop).toFixed(1)}, hallucination-rate rise ${(100 * t.hallucinationRateRise).toFixed(1)}, toxicity-rate rise ${(100 * t.toxicityRateRise).toFixed(2)} points — ${sc.harmful ? 'harmful (some harm above its tolerance): REJECT is right' : 'harmless (every harm within tolerance): REJECT is a false reject'}`,
    );
    const rows = sc.rules.map((s) => [
      RULE_LABEL[s.rule],
      p(s.approve),
      p(s.reject),
      p(s.inconclusive),
      p(s.falseReject),
      p(s.falseRejectInclInconclusive),
      p(s.power),
      p(s.falseApprove),
      num(s.samplesToDecision.mean),
      num(s.samplesToDecision.median),
      num(s.samplesToDecision.p90),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
    const fmt = (row: string[]) =>
      row.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
    lines.push(`  ${fmt(header)}`);
    for (const row of rows) lines.push(`  ${fmt(row)}`);
    const seq = sc.rules.find((s) => s.rule === 'sequential');
    if (seq?.rejectsBy && seq.reject > 0) {
      const b = seq.rejectsBy;
      lines.push(
        `  sequential rejects involving: quality ${b.quality}, hallucination rate ${b.hallucination_rate}, toxicity rate ${b.toxicity_rate} (of ${o.runs} runs)`,
      );
    }
  }
  lines.push('');
  lines.push(
    'Samples to decision count candidate samples over runs that reached APPROVE or REJECT. naive, every look APPROVEs at the last look.',
  );
  return lines.join('\n');
}
