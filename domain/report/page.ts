/**
 * The deployment report as one self-contained HTML page: inline CSS and SVG, no script, font,
 * image or request of any kind (its Content-Security-Policy forbids them), so it opens offline
 * and can be attached to a ticket or a CI run. Pure: the same data gives the same page.
 */
import { formatUsd } from '../../common/format.js';
import type { GateMetric } from '../gate/types.js';
import { coverageChart, gateChart, group, METRICS, METRIC_TITLE, savingsChart, trendChart, versionColours } from './charts.js';
import { DECISION_COLOUR, esc, utcText } from './svg.js';
import type { ReportData, ReportGate } from './types.js';

/** Most gates shown, newest first. */
export const MAX_GATES = 10;

const STYLE = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #111827; background: #f8fafc; }
header { background: #0f172a; color: #f8fafc; padding: 20px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #cbd5e1; }
main { padding: 8px 32px 32px; max-width: 1400px; }
section { margin-top: 24px; }
h2 { font-size: 18px; margin: 0 0 4px; }
h3 { font-size: 15px; margin: 0 0 6px; }
h4 { font-size: 13px; margin: 0 0 4px; color: #374151; }
p.lead { margin: 0 0 12px; color: #4b5563; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 16px; }
.card { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px 14px; min-width: 180px; }
.card .k { font-size: 12px; color: #6b7280; }
.card .v { font-size: 18px; font-weight: 600; }
.grid-charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure.chart { margin: 0; background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px 12px; max-width: 100%; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
figure.chart.empty { width: 320px; }
figcaption { font-size: 12px; color: #6b7280; margin-top: 4px; }
p.none { color: #6b7280; font-style: italic; margin: 8px 0; }
ul.legend { list-style: none; margin: 4px 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: #374151; }
ul.legend li { display: flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 16px; height: 3px; background: var(--c); }
.swatch.dashed { height: 0; background: none; border-top: 2px dashed var(--c); }
.swatch.band { height: 10px; opacity: 0.35; }
article.gate { background: #fff; border: 1px solid #e5e7eb; border-left: 4px solid var(--c); border-radius: 8px; padding: 12px 14px; margin-bottom: 14px; }
article.gate .meta { color: #4b5563; font-size: 12px; margin-bottom: 6px; }
article.gate figure.chart { border: none; padding: 4px; }
.badge { display: inline-block; color: #fff; background: var(--c); border-radius: 4px; padding: 0 6px; font-size: 12px; font-weight: 700; margin-right: 6px; }
table { border-collapse: collapse; background: #fff; font-size: 12px; }
th, td { border: 1px solid #e5e7eb; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
details { margin-top: 6px; }
summary { cursor: pointer; color: #374151; font-size: 12px; }
footer { color: #6b7280; font-size: 12px; padding: 0 32px 24px; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
.grid { stroke: #e5e7eb; }
.tick { font-size: 11px; fill: #4b5563; }
.tick-mark, .baseline-axis { stroke: #9ca3af; }
.axis-title { font-size: 11px; fill: #374151; }
.series { fill: none; stroke-width: 2; }
.band { fill: #f59e0b; fill-opacity: 0.18; }
.baseline-line { stroke: #111827; stroke-dasharray: 5 4; stroke-width: 1.2; }
.bounds-area { fill: #6366f1; fill-opacity: 0.16; }
.bound { fill: none; stroke: #6366f1; stroke-width: 1.5; }
.bar { stroke: #4338ca; stroke-width: 2; }
.point.harm { fill: #312e81; }
.zero { stroke: #9ca3af; }
.tolerance { stroke: #dc2626; stroke-width: 1.5; stroke-dasharray: 6 4; }
.tol-label { font-size: 10px; fill: #b91c1c; }
.decision line { stroke-dasharray: 2 3; stroke-width: 1.5; }
.decision text { font-size: 11px; font-weight: 700; }
.track { fill: #f3f4f6; }
.row-label, .row-value { font-size: 12px; fill: #111827; }
`;

const pct = (fraction: number) => `${(Math.round(fraction * 1000) / 10).toFixed(1)} %`;

function card(k: string, v: string, extra = ''): string {
  return `<div class="card"><div class="k">${esc(k)}</div><div class="v">${esc(v)}</div>${extra ? `<div class="k">${esc(extra)}</div>` : ''}</div>`;
}

function summaryCards(d: ReportData): string {
  const versions = [...new Set(d.trends.points.map((p) => p.model_version))];
  const inWindow = Math.max(versions.length, d.trends.versions ?? 0);
  const stored = d.coverage.totals?.stored ?? d.coverage.versions.reduce((a, v) => a + v.stored, 0);
  const scored = d.coverage.totals?.scored ?? d.coverage.versions.reduce((a, v) => a + v.scored, 0);
  const last = d.gates[0];
  const saving = d.review.findings.reduce((a, f) => a + (f.annualUsd && f.annualUsd > 0 ? f.annualUsd : 0), 0);
  return `<div class="cards">${[
    card(
      'Model versions scored in the window',
      group(inWindow),
      `${versions.join(', ')}${inWindow > versions.length ? ` and ${group(inWindow - versions.length)} more` : ''}`,
    ),
    last
      ? card(
          'Latest gate',
          `${last.effectiveDecision} ${last.candidateVersion}`,
          `against ${last.baselineVersion}, ${utcText(last.decidedAt)}`,
        )
      : card('Latest gate', 'none'),
    card('Interactions scored', stored ? pct(scored / stored) : '–', `${group(scored)} of ${group(stored)} stored`),
    card(
      'Savings found by the review',
      saving > 0 ? `${formatUsd(saving)} / year` : '–',
      d.review.finishedAt ? `latest review ${utcText(d.review.finishedAt)}` : '',
    ),
  ].join('')}</div>`;
}

function trendsSection(d: ReportData, colours: Map<string, string>): string {
  const band = d.band;
  const shown = new Set(d.trends.points.map((p) => p.model_version)).size;
  const total = Math.max(shown, d.trends.versions ?? 0);
  const lead =
    (band
      ? `Each line is a model version; the dashed line is the baseline ${band.version} (${group(band.samples)} scored interactions; ${band.source}), the shaded band how far the gate's tolerance lets a candidate fall from it.`
      : 'Each line is a model version. No baseline has been computed for this deployment yet.') +
    (total > shown
      ? ` Showing ${group(shown)} of the ${group(total)} model versions scored in the window: ${band ? "the baseline's and " : ''}the most recently scored.`
      : '');
  return (
    `<section id="trends"><h2>Scores per model version over time</h2><p class="lead">${esc(lead)}</p>` +
    `<div class="grid-charts">${METRICS.map((m) => trendChart({ metric: m, points: d.trends.points, bucketSeconds: d.trends.bucketSeconds, colours, band })).join('')}</div></section>`
  );
}

function looksTable(g: ReportGate): string {
  const ev = g.evidence;
  const looks = ev?.history?.length ? ev.history : [];
  if (!looks.length) return '';
  const head = `<tr><th class="num">look</th><th>time</th><th class="num">candidate samples</th>${METRICS.map((m) => `<th class="num">${esc(METRIC_TITLE[m])}: bounds (points)</th>`).join('')}<th>outcome</th></tr>`;
  const cell = (l: (typeof looks)[number], m: GateMetric) => {
    const x = l.metrics.find((y) => y.metric === m);
    return x && x.upper - x.lower < 2 ? `${(x.lower * 100).toFixed(1)} to ${(x.upper * 100).toFixed(1)}` : '–';
  };
  const rows = looks
    .map(
      (l) =>
        `<tr><td class="num">${esc(String(l.look))}</td><td>${esc(l.at ? utcText(l.at) : '')}</td><td class="num">${esc(String(l.samples))}</td>${METRICS.map((m) => `<td class="num">${cell(l, m)}</td>`).join('')}<td>${esc(l.outcome)}</td></tr>`,
    )
    .join('');
  return `<details><summary>The looks in numbers</summary><table>${head}${rows}</table></details>`;
}

function gatesSection(d: ReportData): string {
  const shown = d.gates.slice(0, MAX_GATES);
  const intro =
    'For each gate, newest first: at every look, the confidence bounds of how much worse the candidate is than the baseline (in points), ' +
    'narrowing as candidate samples come in, until a bound crosses the tolerance and the gate decides.';
  if (!shown.length)
    return `<section id="gates"><h2>Deploy gates</h2><p class="none">No gate has decided on this deployment yet.</p></section>`;
  const articles = shown
    .map((g, i) => {
      const colour = DECISION_COLOUR[g.effectiveDecision] ?? DECISION_COLOUR.ABORTED!;
      const outcome = g.decision === g.effectiveDecision ? '' : ` (gate decision ${g.decision})`;
      const looks = g.evidence ? `${g.evidence.looks} ${g.evidence.looks === 1 ? 'look' : 'looks'}` : 'no look';
      const charts = METRICS.map((m) => gateChart(g, m, `g${i}-${m}`)).join('');
      return (
        `<article class="gate" style="--c:${colour}" data-gate="${esc(g.gateId)}">` +
        `<h3><span class="badge">${esc(g.effectiveDecision)}</span>${esc(g.candidateVersion)} against ${esc(g.baselineVersion)}${esc(outcome)}</h3>` +
        `<div class="meta">${esc(g.gateId)} · decided ${esc(utcText(g.decidedAt))} · ${esc(looks)} · rollback ${esc(g.rollback)}</div>` +
        `<p>${esc(g.reason)}</p><div class="grid-charts">${charts}</div>${looksTable(g)}</article>`
      );
    })
    .join('');
  const more = d.gates.length > shown.length ? `<p class="lead">${d.gates.length - shown.length} older gates are not shown.</p>` : '';
  return `<section id="gates"><h2>Deploy gates</h2><p class="lead">${esc(intro)}</p>${articles}${more}</section>`;
}

function coverageSection(d: ReportData, colours: Map<string, string>): string {
  const lc = d.coverage.lastCycle;
  const last = lc
    ? `Latest collection cycle: ${lc.status}${lc.late ? ` (${lc.late})` : ''}, finished ${utcText(lc.finishedAt)}${lc.note ? `: ${lc.note}` : '.'}`
    : 'No collection cycle has run for this deployment yet.';
  const t = d.coverage.totals;
  const listed = d.coverage.versions.length;
  const more =
    t && t.versions > listed
      ? `<p class="lead">${esc(
          `Showing ${group(listed)} of ${group(t.versions)} model versions (those charted and the most recently stored). All versions: ${group(t.scored)} of ${group(t.stored)} stored interactions scored.`,
        )}</p>`
      : '';
  return `<section id="coverage"><h2>Coverage</h2><p class="lead">${esc(last)}</p>${coverageChart(d.coverage.versions, colours)}${more}</section>`;
}

function reviewSection(d: ReportData): string {
  const withMoney = d.review.findings.filter((f) => (f.annualUsd ?? 0) > 0 || (f.monthlyUsd ?? 0) > 0);
  const rows = [...withMoney]
    .sort((a, b) => (b.annualUsd ?? 0) - (a.annualUsd ?? 0))
    .map(
      (f) =>
        `<tr><td>${esc(f.agent)}</td><td>${esc(f.severity)}</td><td>${esc(f.subject)}</td><td>${esc(f.title)}</td><td>${esc(f.recommendation)}</td>` +
        `<td class="num">${f.monthlyUsd ? esc(formatUsd(f.monthlyUsd)) : '–'}</td><td class="num">${f.annualUsd ? esc(formatUsd(f.annualUsd)) : '–'}</td></tr>`,
    )
    .join('');
  const table = rows
    ? `<table><tr><th>agent</th><th>severity</th><th>subject</th><th>finding</th><th>recommendation</th><th class="num">per month</th><th class="num">per year</th></tr>${rows}</table>`
    : '';
  const others = d.review.findings.length - withMoney.length;
  const note = d.review.findings.length
    ? `The latest run of each analysis agent (they look at the whole infrastructure, not only this deployment)${others > 0 ? `; ${others} ${others === 1 ? 'finding' : 'findings'} without a dollar figure ${others === 1 ? 'is' : 'are'} not listed` : ''}.`
    : 'No optimisation review has stored findings yet (optiinfra review).';
  return `<section id="review"><h2>Optimisation review</h2><p class="lead">${esc(note)}</p>${savingsChart(d.review.findings)}${table}</section>`;
}

/** The whole page. */
export function renderReportPage(d: ReportData): string {
  const colours = versionColours(d.trends.points);
  for (const v of d.coverage.versions) if (!colours.has(v.version)) colours.set(v.version, '#64748b');
  const pv = [...new Set(Object.values(d.promptVersions))].join(', ');
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>OptiInfra report: ${esc(d.deployment)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<header><h1>OptiInfra report: ${esc(d.deployment)}</h1>`,
    `<p>Made ${esc(utcText(d.generatedAt))} · scores of the last ${esc(String(d.window.days))} ${d.window.days === 1 ? 'day' : 'days'} (${esc(utcText(d.window.from))} to ${esc(utcText(d.window.to))}) · judge ${esc(d.judge)} (${esc(pv)})</p></header>`,
    '<main>',
    summaryCards(d),
    trendsSection(d, colours),
    gatesSection(d),
    coverageSection(d, colours),
    reviewSection(d),
    '</main>',
    '<footer>Made by optiinfra report from ClickHouse scores and PostgreSQL baselines, gate decisions, collection cycles and agent runs. The page is self-contained: it loads nothing.</footer>',
    '</body></html>',
    '',
  ].join('\n');
}
