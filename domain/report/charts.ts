/**
 * The report's charts as inline SVG figures: score trends per model version with the baseline
 * band, a gate's confidence bounds per look against the tolerance, coverage per version, and the
 * review's savings. Each returns a `<figure class="chart" data-chart="…">`; a chart without data
 * is a figure of class "empty" that says so. Pure.
 */
import { formatUsd, least, most } from '../../common/format.js';
import { looksOf } from '../gate/report.js';
import type { GateMetric, LookPoint, Tolerances } from '../gate/types.js';
import {
  areaPath,
  c,
  DECISION_COLOUR,
  esc,
  inner,
  linePath,
  linear,
  niceTicks,
  PALETTE,
  svgOpen,
  timeLabel,
  timeTicks,
  xAxis,
  yAxis,
  type Plot,
} from './svg.js';
import type { BaselineBand, ReportFinding, ReportGate, TrendPoint, VersionCoverage } from './types.js';

export const METRICS: readonly GateMetric[] = ['quality', 'hallucination_rate', 'toxicity_rate'];

export const METRIC_TITLE: Record<GateMetric, string> = {
  quality: 'Quality',
  hallucination_rate: 'Hallucination rate',
  toxicity_rate: 'Toxicity rate',
};

const CHECK_OF = { quality: 'quality', hallucination_rate: 'hallucination', toxicity_rate: 'toxicity' } as const;

export const TOLERANCE_KEY: Record<GateMetric, keyof Tolerances> = {
  quality: 'qualityDrop',
  hallucination_rate: 'hallucinationRateIncrease',
  toxicity_rate: 'toxicityRateIncrease',
};

const HARM_TITLE: Record<GateMetric, string> = {
  quality: 'quality drop',
  hallucination_rate: 'hallucination-rate rise',
  toxicity_rate: 'toxicity-rate rise',
};

/** At most `max` characters (whole code points), the last one "…" when cut. */
const cut = (text: string, max: number) => {
  const chars = Array.from(text);
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : text;
};

/** "87.3 %" */
const pct = (fraction: number) => `${(Math.round(fraction * 1000) / 10).toFixed(1)} %`;
/** "5" or "2.5" (points of a fraction). */
const pts = (fraction: number) => String(Math.round(fraction * 1000) / 10);

interface LegendItem {
  label: string;
  colour: string;
  dashed?: boolean;
  band?: boolean;
}

/** A chart's figure, as wide as its SVG (plus padding), so captions and legends wrap under it. */
function figure(kind: string, title: string, width: number, body: string, caption: string, legend: LegendItem[] = []): string {
  const items = legend
    .map(
      (l) =>
        `<li><span class="swatch${l.dashed ? ' dashed' : ''}${l.band ? ' band' : ''}" style="--c:${esc(l.colour)}"></span>${esc(l.label)}</li>`,
    )
    .join('');
  return (
    `<figure class="chart" data-chart="${esc(kind)}" style="width:${width + 26}px"><h4>${esc(title)}</h4>${body}` +
    `${items ? `<ul class="legend">${items}</ul>` : ''}${caption ? `<figcaption>${esc(caption)}</figcaption>` : ''}</figure>`
  );
}

function emptyFigure(kind: string, title: string, why: string): string {
  return `<figure class="chart empty" data-chart="${esc(kind)}"><h4>${esc(title)}</h4><p class="none">${esc(why)}</p></figure>`;
}

/** A colour per model version, in the order of the versions' first scores. */
export function versionColours(points: readonly TrendPoint[]): Map<string, string> {
  const first = new Map<string, number>();
  for (const p of points) first.set(p.model_version, Math.min(first.get(p.model_version) ?? Infinity, p.t));
  const order = [...first.entries()].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0])).map(([v]) => v);
  return new Map(order.map((v, i) => [v, PALETTE[i % PALETTE.length]!]));
}

/**
 * One metric's trend: a line per model version (its mean quality, or its share of flagged
 * answers, per time bucket) and the baseline band: the baseline's value and how far the
 * tolerance lets a candidate go from it.
 */
export function trendChart(o: {
  metric: GateMetric;
  points: readonly TrendPoint[];
  bucketSeconds: number;
  colours: Map<string, string>;
  band?: BaselineBand;
}): string {
  const { metric, bucketSeconds: bucket } = o;
  const kind = `trend:${metric}`;
  const title = `${METRIC_TITLE[metric]} per model version`;
  const pts0 = o.points.filter((p) => p.check_name === CHECK_OF[metric] && p.n > 0);
  if (!pts0.length) return emptyFigure(kind, title, `No ${CHECK_OF[metric]} scores of this judge in the window.`);
  const value = (p: TrendPoint) => (metric === 'quality' ? p.mean : p.flagged / p.n);
  const series = new Map<string, Array<{ t: number; v: number; n: number }>>();
  for (const p of pts0) {
    const s = series.get(p.model_version) ?? [];
    s.push({ t: p.t + bucket / 2, v: value(p), n: p.n });
    series.set(p.model_version, s);
  }
  for (const s of series.values()) s.sort((a, b) => a.t - b.t);

  const plot: Plot = { width: 560, height: 250, left: 56, right: 30, top: 14, bottom: 42 };
  const { x0, x1, y0, y1 } = inner(plot);
  const tLo = least(pts0.map((p) => p.t));
  const tHi = most(pts0.map((p) => p.t)) + bucket;
  const x = linear(tLo, tHi, x0 + 6, x1 - 6);

  const band = o.band && o.band.stats[metric].n > 0 ? o.band : undefined;
  const base = band?.stats[metric].mean;
  const tol = band ? band.tolerances[TOLERANCE_KEY[metric]] : 0;
  const limit = base === undefined ? undefined : metric === 'quality' ? base - tol : base + tol;
  const vals = [...pts0.map(value), ...(base === undefined ? [] : [base, limit!])].map((v) => v * 100);
  let lo = Math.max(0, least(vals) - 3);
  let hi = Math.min(100, most(vals) + 3);
  if (metric !== 'quality') lo = 0;
  if (hi - lo < 5) hi = Math.min(100, lo + 5);
  const ticks = niceTicks(lo, hi, 5);
  lo = Math.min(lo, ticks[0] ?? lo);
  hi = Math.max(hi, ticks[ticks.length - 1] ?? hi);
  const y = linear(lo, hi, y1, y0);

  const parts: string[] = [
    svgOpen(
      plot,
      title,
      `${METRIC_TITLE[metric]} over time, per model version${band ? `, with the baseline ${band.version} and its tolerance` : ''}`,
    ),
  ];
  parts.push(yAxis(plot, ticks, y, (v) => `${v} %`, metric === 'quality' ? 'mean quality' : 'share flagged'));
  const tt = timeTicks(tLo, tHi, 6);
  parts.push(xAxis(plot, tt.ticks, x, (t) => timeLabel(t, tt.step), 'interaction time (UTC)'));
  parts.push('<g class="data">');
  if (band && base !== undefined && limit !== undefined) {
    const ya = y(base * 100);
    const yb = y(limit * 100);
    parts.push(
      `<rect class="band" x="${c(x0)}" y="${c(Math.min(ya, yb))}" width="${c(x1 - x0)}" height="${c(Math.max(1, Math.abs(ya - yb)))}"/>` +
        `<line class="baseline-line" x1="${c(x0)}" x2="${c(x1)}" y1="${c(ya)}" y2="${c(ya)}"/>`,
    );
  }
  for (const [version, s] of series) {
    const colour = o.colours.get(version) ?? PALETTE[0]!;
    const xy = s.map((p) => [x(p.t), y(p.v * 100)] as const);
    parts.push(`<path class="series" d="${linePath(xy)}" stroke="${colour}"/>`);
    for (const [i, p] of s.entries()) {
      parts.push(
        `<circle class="point" cx="${c(xy[i]![0])}" cy="${c(xy[i]![1])}" r="3" fill="${colour}"><title>${esc(`${version}: ${pct(p.v)} of ${p.n} interactions`)}</title></circle>`,
      );
    }
  }
  parts.push('</g></svg>');

  const legend: LegendItem[] = [...series.keys()].map((v) => ({ label: v, colour: o.colours.get(v) ?? PALETTE[0]! }));
  if (band && base !== undefined) {
    legend.push({ label: `baseline ${band.version}: ${pct(base)}`, colour: '#111827', dashed: true });
    legend.push({ label: `tolerance: ${metric === 'quality' ? 'drop' : 'rise'} of ${pts(tol)} points`, colour: '#f59e0b', band: true });
  }
  const unit = metric === 'quality' ? 'Mean quality score' : `Share of answers flagged (${CHECK_OF[metric]} score ≥ 0.5)`;
  return figure(kind, title, plot.width, parts.join(''), `${unit} per ${bucketText(bucket)} bucket of interaction time.`, legend);
}

/** "5-second", "15-minute", "1-day". */
export function bucketText(seconds: number): string {
  const units: Array<[number, string]> = [
    [86_400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
    [1, 'second'],
  ];
  const [size, name] = units.find(([u]) => seconds >= u && seconds % u === 0) ?? [1, 'second'];
  return `${seconds / size}-${name}`;
}

/**
 * One metric of one gate: the confidence bounds of the harm (how much worse the candidate is,
 * in points) at every look, narrowing as samples come in, against the tolerance, up to the
 * decision. Bounds far outside the interesting range are cut at the frame.
 */
export function gateChart(gate: ReportGate, metric: GateMetric, id: string): string {
  const kind = `gate:${gate.gateId}:${metric}`;
  const title = `${METRIC_TITLE[metric]}: ${HARM_TITLE[metric]}`;
  const ev = gate.evidence;
  if (!ev) return emptyFigure(kind, title, 'The gate ended before it compared the candidate with the baseline.');
  const tol = ev.rule.tolerances[TOLERANCE_KEY[metric]] * 100;
  const looks = looksOf(ev)
    .map((l) => ({ l, m: l.metrics.find((x) => x.metric === metric) }))
    .filter((x): x is { l: LookPoint; m: NonNullable<typeof x.m> } => !!x.m && x.m.verdict !== 'unmeasured' && x.m.upper - x.m.lower < 2);
  if (!looks.length) return emptyFigure(kind, title, `Not measured: the judge gave no ${CHECK_OF[metric]} scores for one of the versions.`);
  const pts1 = looks.map(({ l, m }) => ({
    look: l.look,
    samples: l.samples,
    lower: m.lower * 100,
    upper: m.upper * 100,
    harm: m.harm * 100,
  }));
  const last = pts1[pts1.length - 1]!;

  // The frame: the tolerance, zero and the last look's bounds, widened; earlier, wider bounds are cut.
  const cap = Math.max(3 * Math.max(tol, 1), 1.5 * Math.max(Math.abs(last.lower), Math.abs(last.upper)), 8);
  const all = pts1.flatMap((p) => [p.lower, p.upper]);
  let lo = Math.max(-cap, least([0, tol, ...all]));
  let hi = Math.min(cap, most([0, tol, ...all]));
  // Room above and below, so the tolerance and its label never sit on the frame.
  const room = (hi - lo) * 0.1;
  lo -= room;
  hi += room;
  const ticks = niceTicks(lo, hi, 5);

  const plot: Plot = { width: 340, height: 230, left: 46, right: 16, top: 18, bottom: 40 };
  const { x0, x1, y0, y1 } = inner(plot);
  const first = pts1[0]!.look;
  const xLo = pts1.length > 1 ? first : first - 1;
  const xHi = pts1.length > 1 ? last.look : last.look + 1;
  const x = linear(xLo, xHi, x0 + 10, x1 - 10);
  const y = linear(lo, hi, y1, y0);
  const clip = `clip-${id}`;

  const parts = [
    svgOpen(plot, `${title} per look, ${gate.candidateVersion} against ${gate.baselineVersion}`),
    `<defs><clipPath id="${esc(clip)}"><rect x="${c(x0)}" y="${c(y0)}" width="${c(x1 - x0)}" height="${c(y1 - y0)}"/></clipPath></defs>`,
    yAxis(plot, ticks, y, (v) => String(v), 'points'),
    xAxis(plot, lookTicks(xLo, xHi), x, (v) => String(v), 'look'),
    `<g class="data" clip-path="url(#${esc(clip)})">`,
  ];
  const upper = pts1.map((p) => [x(p.look), y(p.upper)] as const);
  const lower = pts1.map((p) => [x(p.look), y(p.lower)] as const);
  if (pts1.length > 1) {
    parts.push(`<path class="bounds-area" d="${areaPath(upper, lower)}"/>`);
    parts.push(`<path class="bound" d="${linePath(upper)}"/><path class="bound" d="${linePath(lower)}"/>`);
  }
  parts.push(`<line class="zero" x1="${c(x0)}" x2="${c(x1)}" y1="${c(y(0))}" y2="${c(y(0))}"/>`);
  parts.push(`<line class="tolerance" x1="${c(x0)}" x2="${c(x1)}" y1="${c(y(tol))}" y2="${c(y(tol))}"/>`);
  for (const p of pts1) {
    const px = x(p.look);
    parts.push(
      `<line class="bar" x1="${c(px)}" x2="${c(px)}" y1="${c(y(p.lower))}" y2="${c(y(p.upper))}"/>` +
        `<circle class="point harm" cx="${c(px)}" cy="${c(y(p.harm))}" r="3"><title>${esc(
          `look ${p.look}, ${p.samples} candidate samples: ${HARM_TITLE[metric]} ${pts(p.harm / 100)} points, bounds ${pts(p.lower / 100)} to ${pts(p.upper / 100)}`,
        )}</title></circle>`,
    );
  }
  parts.push('</g>');
  const colour = DECISION_COLOUR[gate.decision] ?? DECISION_COLOUR.ABORTED!;
  const lx = x(last.look);
  parts.push(
    `<g class="decision"><line x1="${c(lx)}" x2="${c(lx)}" y1="${c(y0)}" y2="${c(y1)}" stroke="${colour}"/>` +
      `<text x="${c(Math.min(lx, x1 - 4))}" y="${c(y0 - 5)}" text-anchor="end" fill="${colour}">${esc(`${gate.decision} at look ${last.look}`)}</text></g>`,
    `<text class="tol-label" x="${c(x0 + 4)}" y="${c(y(tol) - 4)}">tolerance ${esc(pts(tol / 100))}</text>`,
    '</svg>',
  );
  const verdict = looks[looks.length - 1]!.m.verdict;
  const cut = all.some((v) => v < lo || v > hi);
  const caption =
    `${pts1.length} ${pts1.length === 1 ? 'look' : 'looks'}, ${last.samples} candidate samples at the last: ` +
    `bounds ${pts(last.lower / 100)} to ${pts(last.upper / 100)} points (${verdict}).${cut ? ' Wider bounds of early looks are cut at the frame.' : ''}`;
  return figure(kind, title, plot.width, parts.join(''), caption, [
    { label: 'confidence bounds', colour: '#6366f1', band: true },
    { label: 'estimate', colour: '#312e81' },
    { label: `tolerance (${pts(tol / 100)} points)`, colour: '#dc2626', dashed: true },
  ]);
}

/** Integer ticks of the look axis. */
function lookTicks(lo: number, hi: number): number[] {
  return niceTicks(lo, hi, 6).filter((v) => Number.isInteger(v) && v >= Math.ceil(lo) && v <= hi);
}

const BAR_WIDTH = 720;

/** Horizontal bars: one row per item, a value bar against a full-width track. */
function barRows(rows: Array<{ label: string; share: number; colour: string; text: string; tip: string }>, title: string): string {
  const plot: Plot = { width: BAR_WIDTH, height: 24 + rows.length * 30, left: 230, right: 170, top: 12, bottom: 12 };
  const { x0, x1, y0 } = inner(plot);
  const parts = [svgOpen(plot, title), '<g class="data">'];
  rows.forEach((r, i) => {
    const top = y0 + i * 30;
    const w = Math.max(2, (x1 - x0) * Math.max(0, Math.min(1, r.share)));
    parts.push(
      `<text class="row-label" x="${c(x0 - 8)}" y="${c(top + 15)}" text-anchor="end">${esc(cut(r.label, 38))}</text>` +
        `<rect class="track" x="${c(x0)}" y="${c(top + 2)}" width="${c(x1 - x0)}" height="18"/>` +
        `<rect class="bar-fill" x="${c(x0)}" y="${c(top + 2)}" width="${c(w)}" height="18" fill="${r.colour}"><title>${esc(r.tip)}</title></rect>` +
        `<text class="row-value" x="${c(x1 + 8)}" y="${c(top + 15)}">${esc(r.text)}</text>`,
    );
  });
  parts.push('</g></svg>');
  return parts.join('');
}

/** Coverage per version: the share of its stored interactions that the judge scored. */
export function coverageChart(versions: readonly VersionCoverage[], colours: Map<string, string>): string {
  const title = 'Scored interactions per model version';
  const rows = versions.filter((v) => v.stored > 0 || v.scored > 0);
  if (!rows.length) return emptyFigure('coverage', title, 'No interactions stored for this deployment.');
  const body = barRows(
    rows.map((v, i) => {
      const share = v.stored > 0 ? v.scored / v.stored : 1;
      return {
        label: v.version,
        share,
        colour: colours.get(v.version) ?? PALETTE[i % PALETTE.length]!,
        text: `${group(v.scored)} of ${group(v.stored)} (${pct(share)})`,
        tip: `${v.version}: ${v.scored} of ${v.stored} stored interactions scored`,
      };
    }),
    title,
  );
  return figure(
    'coverage',
    title,
    BAR_WIDTH,
    body,
    'Interactions with a quality score of the report’s judge, of all the version’s stored interactions (sampling and the LLM’s budget leave some unscored).',
  );
}

/** The review's findings with a saving, largest annual saving first (at most `max`). */
export function savingsChart(findings: readonly ReportFinding[], max = 8): string {
  const title = 'Savings found by the optimisation review (per year)';
  const rows = findings
    .filter((f) => (f.annualUsd ?? 0) > 0)
    .sort((a, b) => (b.annualUsd ?? 0) - (a.annualUsd ?? 0))
    .slice(0, max);
  if (!rows.length) return emptyFigure('savings', title, 'The latest review found no saving with a dollar figure.');
  const top = rows[0]!.annualUsd ?? 1;
  const agents = [...new Set(rows.map((f) => f.agent))].sort();
  const colourOf = (a: string) => PALETTE[agents.indexOf(a) % PALETTE.length]!;
  const body = barRows(
    rows.map((f) => ({
      label: f.title,
      share: (f.annualUsd ?? 0) / top,
      colour: colourOf(f.agent),
      text: `${formatUsd(f.annualUsd ?? 0)} / year`,
      tip: `${f.agent}: ${f.title} (${f.subject}): ${formatUsd(f.annualUsd ?? 0)} a year${f.monthlyUsd ? `, ${formatUsd(f.monthlyUsd)} a month` : ''}`,
    })),
    title,
  );
  return figure(
    'savings',
    title,
    BAR_WIDTH,
    body,
    'Annual saving of each finding of the latest run of each agent, largest first.',
    agents.map((a) => ({ label: `${a} agent`, colour: colourOf(a) })),
  );
}

/** 4000 → "4,000". */
export const group = (x: number) => String(Math.round(x)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
