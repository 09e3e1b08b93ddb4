/**
 * The report's pure renderers: the looks a gate keeps, the Mermaid charts of the CI report, the
 * SVG charts and the self-contained page.
 */
import { describe, expect, it } from 'vitest';
import { trendBucket } from '../../activities/storage/clickhouse/score-queries.js';
import { decideLook } from '../../domain/gate/stats.js';
import { appendLook, lookPoint, MAX_LOOK_HISTORY } from '../../domain/gate/looks.js';
import { looksOf, renderGateReport, renderLooksCharts } from '../../domain/gate/report.js';
import { DEFAULT_RULE, type Evidence, type LookPoint, type VersionStats } from '../../domain/gate/types.js';
import { bucketText, coverageChart, gateChart, savingsChart, trendChart, versionColours } from '../../domain/report/charts.js';
import { renderReportPage } from '../../domain/report/page.js';
import { esc, niceTicks, timeTicks } from '../../domain/report/svg.js';
import type { ReportData } from '../../domain/report/types.js';
import { BASE, gateResult, rejectingGate, sampleReport, stats, T0, trendPoints } from '../helpers/report-sample.js';

/** Elements with geometry inside a chart's data group. */
function marks(svg: string): { paths: number; circles: number; rects: number; lines: number } {
  const data = svg.slice(svg.indexOf('<g class="data"'));
  return {
    paths: (data.match(/<path [^>]*d="M[^"]+"/g) ?? []).length,
    circles: (data.match(/<circle /g) ?? []).length,
    rects: (data.match(/<rect class="bar-fill"/g) ?? []).length,
    lines: (data.match(/<line class="bar"/g) ?? []).length,
  };
}

describe('the looks a gate keeps', () => {
  it('records each look with its bounds, rounded, and its time', () => {
    const look = decideLook(BASE, stats(0.75, 0.23, 0.01, 60), DEFAULT_RULE);
    const p = lookPoint(look, 3, T0);
    expect(p).toMatchObject({ look: 3, at: '2025-06-01T12:00:00.000Z', samples: 60, outcome: look.outcome });
    expect(p.metrics.map((m) => m.metric)).toEqual(['quality', 'hallucination_rate', 'toxicity_rate']);
    const q = p.metrics[0]!;
    expect(q.lower).toBeCloseTo(look.metrics[0]!.lower, 6);
    expect(q.upper).toBeCloseTo(look.metrics[0]!.upper, 6);
    expect(String(q.harm).split('.')[1]?.length ?? 0).toBeLessThanOrEqual(6);
  });

  it('stays bounded over a long wait, keeping the first and the last look and the look numbers', () => {
    let h: LookPoint[] = [];
    const look = decideLook(BASE, stats(0.86, 0.03, 0.01, 10), DEFAULT_RULE);
    for (let n = 1; n <= 5000; n++) {
      h = appendLook(h, lookPoint(look, n, T0 + n * 1000));
      expect(h.length).toBeLessThanOrEqual(MAX_LOOK_HISTORY);
    }
    expect(h[0]!.look).toBe(1);
    expect(h[h.length - 1]!.look).toBe(5000);
    expect(h.length).toBeGreaterThan(MAX_LOOK_HISTORY / 2 - 2);
    const numbers = h.map((x) => x.look);
    expect([...numbers].sort((a, b) => a - b)).toEqual(numbers);
    expect(new Set(numbers).size).toBe(numbers.length);
  });

  it('the bounds narrow as samples come in', () => {
    const { history } = rejectingGate();
    const width = history.map((l) => l.metrics[0]!.upper - l.metrics[0]!.lower);
    for (let i = 1; i < width.length; i++) expect(width[i]!).toBeLessThan(width[i - 1]!);
    expect(history[history.length - 1]!.outcome).toBe('REJECT');
  });
});

describe('the CI report chart (Mermaid)', () => {
  it('draws the bounds per look against the tolerance for each measured metric', () => {
    const { evidence } = rejectingGate();
    const md = renderGateReport(gateResult(evidence));
    const blocks = md
      .split('```mermaid')
      .slice(1)
      .map((b) => b.slice(0, b.indexOf('```')));
    expect(blocks).toHaveLength(3);
    const q = blocks[0]!;
    expect(q).toMatch(/^\nxychart-beta\n/);
    expect(q).toContain('title "Quality drop (points), tolerance 5"');
    expect(q).toContain('x-axis "look (candidate samples)" ["1 (30)", "2 (80)", "3 (150)", "4 (220)", "5 (300)"]');
    const lines = [...q.matchAll(/line \[([^\]]*)\]/g)].map((m) => m[1]!.split(', ').map(Number));
    expect(lines).toHaveLength(3);
    const [upper, lower, tol] = lines as [number[], number[], number[]];
    expect(tol).toEqual([5, 5, 5, 5, 5]);
    for (let i = 0; i < 5; i++) expect(upper[i]!).toBeGreaterThan(lower[i]!);
    expect(lower[4]!).toBeGreaterThan(5); // the drop is above the tolerance: REJECT
    const [lo, hi] = /y-axis "points" (-?\d+) --> (-?\d+)/.exec(q)!.slice(1).map(Number) as [number, number];
    for (const v of [...upper, ...lower]) {
      expect(v).toBeGreaterThanOrEqual(lo);
      expect(v).toBeLessThanOrEqual(hi);
    }
    expect(md.indexOf('### Looks')).toBeGreaterThan(md.indexOf('### Metrics'));
  });

  it('falls back to the last look for gates recorded without their looks, and has no chart without evidence', () => {
    const { evidence } = rejectingGate();
    const old = { ...evidence, history: undefined };
    expect(looksOf(old)).toHaveLength(1);
    expect(renderLooksCharts(old).join('\n')).toContain('x-axis "look (candidate samples)" ["5 (300)"]');
    expect(renderGateReport(gateResult(undefined, { decision: 'INCONCLUSIVE', effectiveDecision: 'INCONCLUSIVE' }))).not.toContain(
      'mermaid',
    );
  });

  it('leaves out a metric the judge did not measure', () => {
    const unmeasured: VersionStats = { ...stats(0.75, 0, 0.01, 120), hallucination_rate: { n: 0, mean: 0, sd: 0, abstained: 120 } };
    const base: VersionStats = { ...BASE, hallucination_rate: { n: 0, mean: 0, sd: 0, abstained: 400 } };
    const look = decideLook(base, unmeasured, DEFAULT_RULE);
    const ev: Evidence = { ...rejectingGate().evidence, look, history: [lookPoint(look, 1, T0)] };
    const md = renderLooksCharts(ev).join('\n');
    expect(md.match(/```mermaid/g)).toHaveLength(2);
    expect(md).not.toContain('Hallucination');
  });
});

describe('the SVG charts', () => {
  it('trend: a line and points per version, and the baseline band', () => {
    const pts = trendPoints();
    const fig = trendChart({ metric: 'quality', points: pts, bucketSeconds: 60, colours: versionColours(pts), band: sampleReport().band });
    expect(fig).toContain('data-chart="trend:quality"');
    const m = marks(fig);
    expect(m.paths).toBe(2);
    expect(m.circles).toBe(12);
    expect(fig).toContain('<rect class="band"');
    expect(fig).toContain('baseline v1: 87.0 %');
    expect(fig).toContain('tolerance: drop of 5 points');
    expect(fig).not.toContain('NaN');
  });

  it('trend: says so when a check has no scores', () => {
    const fig = trendChart({
      metric: 'hallucination_rate',
      points: trendPoints().filter((p) => p.check_name !== 'hallucination'),
      bucketSeconds: 60,
      colours: new Map(),
    });
    expect(fig).toContain('class="chart empty"');
    expect(fig).not.toContain('<svg');
  });

  it('gate: bounds as an area, a bar and an estimate per look, the tolerance and the decision', () => {
    const { evidence } = rejectingGate();
    const g = sampleReport().gates[0]!;
    const fig = gateChart({ ...g, evidence }, 'quality', 'q');
    const m = marks(fig);
    expect(m.paths).toBe(3); // area, upper, lower
    expect(m.circles).toBe(5);
    expect(m.lines).toBe(5);
    expect(fig).toContain('<line class="tolerance"');
    expect(fig).toContain('REJECT at look 5');
    expect(fig).toContain('clip-path="url(#clip-q)"');
    expect(fig).not.toContain('NaN');
    // One look: a bar, no area.
    const one = gateChart({ ...g, evidence: { ...evidence, history: undefined } }, 'quality', 'q1');
    expect(marks(one)).toMatchObject({ paths: 0, circles: 1, lines: 1 });
  });

  it('coverage and savings: one bar per row, largest saving first, dollars formatted', () => {
    const d = sampleReport();
    const cov = coverageChart(d.coverage.versions, new Map());
    expect(marks(cov).rects).toBe(2);
    expect(cov).toContain('120 of 300 (40.0 %)');
    const sav = savingsChart(d.review.findings);
    expect(marks(sav).rects).toBe(2);
    expect(sav.indexOf('$24,353 / year')).toBeLessThan(sav.indexOf('$624 / year'));
    expect(savingsChart([])).toContain('class="chart empty"');
  });

  it('ticks and buckets', () => {
    expect(niceTicks(0, 100, 5)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(-12.3, 31, 5)).toEqual([-10, 0, 10, 20, 30]);
    expect(timeTicks(0, 3600, 6).step).toBe(600);
    expect(trendBucket(90, 60)).toBe(5);
    expect(trendBucket(30 * 86_400, 60)).toBe(86_400);
    expect(trendBucket(0, 60)).toBe(1);
    expect(bucketText(900)).toBe('15-minute');
    expect(bucketText(86_400)).toBe('1-day');
  });
});

describe('the page', () => {
  it('is self-contained: no script, no external reference, a policy that forbids loading anything', () => {
    const html = renderReportPage(sampleReport());
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\((?!#)/i);
    expect(html).not.toMatch(/\b(src|href)=/i);
    // The only URL is the SVG namespace.
    expect([...html.matchAll(/https?:\/\/[^\s"')<]+/g)].map((m) => m[0])).toEqual(expect.arrayContaining(['http://www.w3.org/2000/svg']));
    expect(new Set([...html.matchAll(/https?:\/\/[^\s"')<]+/g)].map((m) => m[0]))).toEqual(new Set(['http://www.w3.org/2000/svg']));
  });

  it('has every chart, with data', () => {
    const html = renderReportPage(sampleReport());
    const kinds = [...html.matchAll(/<figure class="chart( empty)?" data-chart="([^"]+)"/g)].map((m) => [m[2], m[1] ?? '']);
    expect(kinds).toEqual([
      ['trend:quality', ''],
      ['trend:hallucination_rate', ''],
      ['trend:toxicity_rate', ''],
      ['gate:gate/chat/v2-q4:quality', ''],
      ['gate:gate/chat/v2-q4:hallucination_rate', ''],
      ['gate:gate/chat/v2-q4:toxicity_rate', ''],
      ['coverage', ''],
      ['savings', ''],
    ]);
    expect(html).toContain('$24,977 / year'); // 624 + 24,353
    expect(html).toContain('The looks in numbers');
    // Clip paths have ids unique on the page.
    const ids = [...html.matchAll(/<clipPath id="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('escapes every text that did not come from the renderer', () => {
    const d = sampleReport();
    const evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>';
    d.gates[0]!.reason = evil;
    d.review.findings[0]!.title = evil;
    d.review.findings[0]!.recommendation = evil;
    d.coverage.lastCycle!.note = evil;
    const html = renderReportPage(d);
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<img');
    expect(html).toContain(esc(evil));
  });

  it('says what is missing on an empty deployment', () => {
    const d: ReportData = {
      ...sampleReport(),
      trends: { bucketSeconds: 1, points: [] },
      gates: [],
      coverage: { versions: [] },
      review: { findings: [] },
    };
    delete d.band;
    const html = renderReportPage(d);
    expect(html).toContain('No gate has decided on this deployment yet.');
    expect(html).toContain('No collection cycle has run for this deployment yet.');
    expect(html).toContain('No optimisation review has stored findings yet');
    expect(html.match(/class="chart empty"/g)).toHaveLength(5);
  });
});
