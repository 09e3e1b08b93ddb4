/**
 * Markdown reports of a gate run and of an A/B comparison, for CI job summaries
 * (e.g. $GITHUB_STEP_SUMMARY) and the CLI. Pure and workflow-safe.
 *
 * Every text that did not come from this module (reasons, override notes, explanations,
 * deployer details) is escaped, so it cannot inject HTML or break the table.
 */
import {
  coverageText,
  type Comparison,
  type Evidence,
  type Explanation,
  type GateMetric,
  type GateResult,
  type LookPoint,
  type LookResult,
  type MetricVerdict,
  type Tolerances,
} from './types.js';
import {
  METRIC_LABEL,
  VERDICT_WORD,
  confidenceText,
  formatPercent,
  formatPoints,
  formatSignedPoints,
  higherIsBetter,
} from '../agents/application/explain.js';
import { least, most } from '../../common/format.js';

/** Most characters of one outside text in a report (a job summary holds at most 1 MiB in all). */
export const MAX_TEXT_CHARS = 4000;

/** At most `max` characters (whole code points), with "…" when cut. */
function clip(text: string, max = MAX_TEXT_CHARS): string {
  if (text.length <= max) return text;
  return `${Array.from(text.slice(0, max)).slice(0, -1).join('')}…`;
}

/**
 * Escape text for Markdown prose: HTML-significant characters, inline markup, line-leading
 * markup (headings, rules, lists, quotes, fences, indented code) and @mentions, which GitHub
 * would turn into notifications. Clipped to MAX_TEXT_CHARS.
 */
export function escapeMarkdown(text: string): string {
  return clip(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([\\`*_[\]|~])/g, '\\$1')
    .replace(/@(?=[A-Za-z0-9])/g, '@&#8203;')
    .replace(/^[ \t]+/gm, '')
    .replace(/^([#+=-]|\d+(?=[.)]))/gm, (m) => (/^\d/.test(m) ? `${m}\\` : `\\${m}`));
}

/**
 * Escape for one table cell or one line: no newlines (a run of blanks holding a line break becomes
 * one space; matched as whole runs, since `\s*[\r\n]+\s*` took quadratic time on long blanks).
 */
function cell(text: string): string {
  return escapeMarkdown(text.replace(/\s+/g, (run) => (/[\r\n]/.test(run) ? ' ' : run)).trim());
}

/** Inline code, fenced by more backticks than any run inside; identifiers here are validated ids, but stay safe for anything else. */
function code(text: string): string {
  const t = clip(text.replace(/[\r\n]+/g, ' '), 200);
  if (!t.includes('`')) return `\`${t}\``;
  const fence = '`'.repeat(Math.max(...(t.match(/`+/g) ?? ['']).map((r) => r.length)) + 1);
  return `${fence} ${t} ${fence}`;
}

function boundCell(m: MetricVerdict): string {
  // Bounds of the change (candidate - baseline), in the same sign convention as "change".
  const [lo, hi] = higherIsBetter(m.metric) ? [-m.upper, -m.lower] : [m.lower, m.upper];
  return `${formatSignedPoints(lo)} to ${formatSignedPoints(hi)} points`;
}

function thresholdCell(m: MetricVerdict): string {
  return higherIsBetter(m.metric) ? `drop ≤ ${formatPoints(m.tolerance)} points` : `rise ≤ ${formatPoints(m.tolerance)} points`;
}

function verdictCell(m: MetricVerdict): string {
  const w = VERDICT_WORD[m.verdict] ?? m.verdict;
  return m.verdict === 'fail' ? `**${w.toUpperCase()}**` : w;
}

/** The metrics table: metric | baseline | candidate | change | <confidence> bound | threshold | verdict. */
export function renderMetricsTable(metrics: readonly MetricVerdict[], alpha?: number, labels = { a: 'Baseline', b: 'Candidate' }): string {
  const conf = confidenceText(alpha);
  const rows = [
    `| Metric | ${labels.a} | ${labels.b} | Change | ${conf ? `${conf} bound` : 'Bound'} | Threshold | Verdict |`,
    '|---|---:|---:|---:|---:|---|---|',
  ];
  for (const m of metrics) {
    rows.push(
      `| ${METRIC_LABEL[m.metric] ?? cell(String(m.metric))} | ${formatPercent(m.baseline)} | ${formatPercent(m.candidate)} | ` +
        `${formatSignedPoints(m.candidate - m.baseline)} points | ${boundCell(m)} | ${thresholdCell(m)} | ${verdictCell(m)} |`,
    );
  }
  return rows.join('\n');
}

function renderExplanation(e: Explanation | undefined): string[] {
  if (!e) return [];
  const lines = ['### Explanation', '', escapeMarkdown(e.summary.trim()), ''];
  for (const d of e.details) lines.push(`- ${cell(d)}`);
  if (e.details.length > 0) lines.push('');
  const by =
    e.generatedBy === 'template'
      ? `Written from a template (${e.promptVersion}) using only the gate's numbers.`
      : `Written by the language model ${code(e.generatedBy.replace(/^groq:/, ''))} (prompt ${e.promptVersion}) from the gate's numbers; the table above is authoritative.`;
  lines.push(`_${by}_`, '');
  return lines;
}

const ROLLBACK_STATUS: Record<GateResult['rollback']['status'], string> = {
  delivered: 'delivered',
  'dry-run': 'dry run (nothing was changed)',
  failed: '**FAILED**',
  'not-needed': 'not needed',
};

function renderRollback(r: GateResult): string[] {
  const rb = r.rollback;
  const lines = ['### Rollback', ''];
  let line = `**Rollback:** ${ROLLBACK_STATUS[rb.status] ?? cell(rb.status)} via ${code(rb.deployer)}`;
  if (rb.status !== 'not-needed') line += ` — ${code(r.deployment)} from ${code(r.candidateVersion)} back to ${code(r.baselineVersion)}`;
  line += rb.detail ? `: ${cell(rb.detail)}` : '.';
  lines.push(line);
  if (rb.idempotencyKey) {
    lines.push(
      '',
      `Idempotency key: ${code(rb.idempotencyKey)} (delivered at least once: a receiver that answered after the timeout may see it again, and deduplicates on it)`,
    );
  }
  if (rb.status === 'failed') {
    lines.push(
      '',
      `> The candidate is still deployed. Roll ${code(r.deployment)} back to ${code(r.baselineVersion)} by hand, or fix the deployer and re-run the gate.`,
    );
  }
  lines.push('');
  return lines;
}

const HARM_TITLE: Record<GateMetric, string> = {
  quality: 'Quality drop',
  hallucination_rate: 'Hallucination-rate rise',
  toxicity_rate: 'Toxicity-rate rise',
};

const TOLERANCE_OF: Record<GateMetric, keyof Tolerances> = {
  quality: 'qualityDrop',
  hallucination_rate: 'hallucinationRateIncrease',
  toxicity_rate: 'toxicityRateIncrease',
};

/** The looks of a gate's evidence: its kept history, else the last look alone. */
export function looksOf(ev: Evidence): LookPoint[] {
  if (ev.history && ev.history.length > 0) return ev.history;
  const l = ev.look;
  return [
    {
      look: ev.looks,
      at: '',
      samples: l.samples,
      outcome: l.outcome,
      metrics: l.metrics.map(({ metric, harm, lower, upper, verdict }) => ({ metric, harm, lower, upper, verdict })),
    },
  ];
}

/** Points with one decimal, as Mermaid reads a number (0 for a number that is not finite). */
const mmd = (fraction: number) => String(Number.isFinite(fraction) ? Math.round(Math.max(-1, Math.min(1, fraction)) * 1000) / 10 + 0 : 0);

/**
 * Mermaid `xychart-beta` blocks (GitHub renders them), one per measured metric: the lower and
 * upper confidence bounds of the harm (how much worse the candidate is, in points) at each look,
 * and the tolerance as a flat line. Empty when nothing was compared.
 */
export function renderLooksCharts(ev: Evidence): string[] {
  const looks = looksOf(ev);
  const metrics = (['quality', 'hallucination_rate', 'toxicity_rate'] as const).filter((m) =>
    looks.some((l) => l.metrics.some((x) => x.metric === m && x.verdict !== 'unmeasured' && x.upper - x.lower < 2)),
  );
  if (!metrics.length) return [];
  const out = [
    '### Looks',
    '',
    `How the ${confidenceText(ev.rule.alpha) ?? ''} confidence bounds of each metric's harm narrowed, look by look (x: look, with the candidate samples it saw). ` +
      'Lines: upper bound, lower bound, and the tolerance (flat). The candidate fails a metric when its lower bound rises above the tolerance and passes it when its upper bound falls below.',
    '',
  ];
  const categories = looks.map((l) => `"${l.look} (${l.samples})"`).join(', ');
  for (const m of metrics) {
    const tol = ev.rule.tolerances[TOLERANCE_OF[m]];
    const at = (l: LookPoint) => l.metrics.find((x) => x.metric === m);
    const lower = looks.map((l) => mmd(at(l)?.lower ?? 0));
    const upper = looks.map((l) => mmd(at(l)?.upper ?? 0));
    const values = [...lower, ...upper, mmd(tol), '0'].map(Number);
    const lo = Math.floor(least(values) / 5) * 5;
    const hi = Math.max(lo + 5, Math.ceil(most(values) / 5) * 5);
    out.push(
      '```mermaid',
      'xychart-beta',
      `    title "${HARM_TITLE[m]} (points), tolerance ${formatPoints(tol)}"`,
      `    x-axis "look (candidate samples)" [${categories}]`,
      `    y-axis "points" ${lo} --> ${hi}`,
      `    line [${upper.join(', ')}]`,
      `    line [${lower.join(', ')}]`,
      `    line [${looks.map(() => mmd(tol)).join(', ')}]`,
      '```',
      '',
    );
  }
  return out;
}

/** Markdown for a finished gate run. */
export function renderGateReport(result: GateResult, opts: { uiLink?: string } = {}): string {
  const ev = result.evidence;
  const out: string[] = [];
  out.push(`## Deploy gate: ${result.effectiveDecision}`, '');
  if (result.decision !== result.effectiveDecision) {
    const why = result.override
      ? 'changed by a human override'
      : result.decision === 'INCONCLUSIVE'
        ? 'the data could not tell by the deadline; the configured inconclusive policy applied'
        : 'see the reason';
    out.push(`Gate decision **${result.decision}**, outcome **${result.effectiveDecision}** (${why}).`, '');
  }
  out.push(
    `- **Deployment:** ${code(result.deployment)}`,
    `- **Baseline:** ${code(result.baselineVersion)} → **candidate:** ${code(result.candidateVersion)}`,
    `- **Gate:** ${code(result.gateId)}`,
    `- **Reason:** ${cell(result.reason)}`,
    '',
  );

  out.push('### Metrics', '');
  if (ev && ev.look.metrics.length > 0) {
    out.push(
      `Baseline ${ev.baseline.quality.n} scored interactions, candidate ${ev.look.samples}` +
        `${coverageText(ev.candidate) ? ` (${coverageText(ev.candidate)})` : ''}; ${ev.looks} ${ev.looks === 1 ? 'look' : 'looks'} taken.`,
      '',
      renderMetricsTable(ev.look.metrics, ev.rule.alpha),
      '',
      'Change and bounds are candidate minus baseline, in percentage points.',
      '',
    );
  } else {
    out.push('No metrics were compared: the gate ended before it compared the candidate with the baseline.', '');
  }

  if (ev) out.push(...renderLooksCharts(ev));

  out.push(...renderExplanation(result.explanation));

  if (result.override) {
    const o = result.override;
    out.push('### Override', '', `**${o.action.toUpperCase()}** by ${cell(o.by)} at ${cell(o.at)}: ${cell(o.reason)}`, '');
  }

  out.push(...renderRollback(result));

  if (ev) {
    const conf = confidenceText(ev.rule.alpha);
    const t = ev.rule.tolerances;
    out.push(
      '### Test',
      '',
      `- ${cell(ev.rule.test)}, alpha ${ev.rule.alpha}${conf ? ` (${conf} confidence)` : ''}, valid at every look.`,
      `- Minimum candidate samples: ${ev.rule.minSamples}. Tolerances: quality drop ${formatPoints(t.qualityDrop)}, ` +
        `hallucination-rate rise ${formatPoints(t.hallucinationRateIncrease)}, toxicity-rate rise ${formatPoints(t.toxicityRateIncrease)} points.`,
      `- Judge: ${code(ev.baseline.judge)}, prompt ${code(ev.baseline.promptVersion)}; baseline ${code(ev.baseline.baselineId)}.`,
      '',
    );
  }

  if (opts.uiLink) out.push(`[Open this gate in the Temporal UI](${safeLink(opts.uiLink)})`, '');
  return (
    out
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trimEnd() + '\n'
  );
}

function safeLink(u: string): string {
  // encodeURIComponent leaves ( and ) as they are: a ) would end the link early.
  return /^https?:\/\//i.test(u) ? u.replace(/[()\s<>]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`) : '#';
}

const COMPARISON_OUTCOME: Record<LookResult['outcome'], string> = {
  APPROVE: 'B is not worse than A',
  REJECT: 'B is worse than A',
  CONTINUE: 'cannot tell yet',
  INCONCLUSIVE: 'cannot tell: a guard is not measured by this judge',
};

/** Markdown for an A/B comparison of two versions (B measured against A). */
export function renderComparisonReport(c: Comparison & { alpha?: number; test?: string; uiLink?: string }): string {
  const out: string[] = [];
  out.push(`## Comparison: ${c.look.outcome === 'CONTINUE' ? 'INCONCLUSIVE' : c.look.outcome === 'REJECT' ? 'WORSE' : 'NOT WORSE'}`, '');
  out.push(
    `- **Deployment:** ${code(c.deployment)}`,
    `- **A:** ${code(c.versionA)} (${c.a.quality.n} scored interactions) → **B:** ${code(c.versionB)} (${c.b.quality.n} scored interactions)`,
    `- **Result:** ${COMPARISON_OUTCOME[c.look.outcome] ?? c.look.outcome}`,
    `- **Reason:** ${cell(c.look.reason)}`,
    '',
    '### Metrics',
    '',
  );
  if (c.look.metrics.length > 0) {
    out.push(
      renderMetricsTable(c.look.metrics, c.alpha, { a: `A (${c.versionA})`, b: `B (${c.versionB})` }),
      '',
      'Change and bounds are B minus A, in percentage points.',
      '',
    );
  } else {
    out.push('No metrics could be compared.', '');
  }
  out.push(...renderExplanation(c.explanation));
  if (c.test) out.push('### Test', '', `- ${cell(c.test)}${c.alpha !== undefined ? `, alpha ${c.alpha}` : ''}.`, '');
  if (c.uiLink) out.push(`[Open in the Temporal UI](${safeLink(c.uiLink)})`, '');
  return (
    out
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trimEnd() + '\n'
  );
}
