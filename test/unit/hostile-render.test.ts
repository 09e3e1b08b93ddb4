/**
 * Hostile stored text and numbers against what the product renders: the HTML report, the
 * Markdown gate report for CI job summaries, Slack notifications and the CLI's terminal tables.
 * Every text that came from outside (reasons, override notes, narratives, finding titles, agent
 * names, notes) must stay text in its target format, and odd numbers must not blow rendering up.
 */
import { describe, expect, it } from 'vitest';
import { formatAgentRun, formatRecommendations, table, terminalText } from '../../client/cli/format.js';
import { noticeBody, noticeOf } from '../../domain/gate/notify.js';
import { escapeMarkdown, renderComparisonReport, renderGateReport, renderLooksCharts } from '../../domain/gate/report.js';
import type { Comparison, Evidence, LookPoint } from '../../domain/gate/types.js';
import { gateChart, savingsChart, trendChart } from '../../domain/report/charts.js';
import { renderReportPage } from '../../domain/report/page.js';
import { niceTicks, timeTicks } from '../../domain/report/svg.js';
import type { ReportData, TrendPoint } from '../../domain/report/types.js';
import type { AgentRunResult } from '../../workflows/agents/run-agent.js';
import { gateResult, rejectingGate, sampleReport, T0 } from '../helpers/report-sample.js';

const XSS = [
  '<script>alert(1)</script>',
  '</style><script>alert(2)</script>',
  '"><svg onload=alert(3)>',
  "' onmouseover='alert(4)",
  'javascript:alert(5)',
  ']]><![CDATA[<b>x</b>',
  '</title></svg><iframe src=//evil>',
  '&lt;already&gt; &amp;',
].join(' ');

/** The text between tags of an HTML page (what a browser shows as text, before entity decoding). */
const tags = (html: string) => [...html.matchAll(/<\/?([A-Za-z][A-Za-z0-9-]*)/g)].map((m) => m[1]!.toLowerCase());

/** A deep copy of the sample report with every text that came from outside set to `evil`. */
function evilReport(evil: string): ReportData {
  const d = sampleReport();
  d.deployment = evil;
  d.judge = evil;
  d.promptVersions = { quality: evil, hallucination: evil, toxicity: evil };
  for (const p of d.trends.points) p.model_version = `${p.model_version}${evil}`;
  d.band = { ...d.band!, version: evil, source: evil };
  const g = d.gates[0]!;
  Object.assign(g, { gateId: evil, baselineVersion: evil, candidateVersion: evil, reason: evil, rollback: evil, decidedAt: evil });
  g.decision = evil as never;
  g.effectiveDecision = evil as never;
  for (const v of d.coverage.versions) v.version = `${v.version}${evil}`;
  d.coverage.lastCycle = { finishedAt: evil, status: evil, note: evil };
  for (const f of d.review.findings) Object.assign(f, { agent: evil, severity: evil, subject: evil, title: evil, recommendation: evil });
  d.review.finishedAt = evil;
  d.generatedAt = evil;
  d.window = { ...d.window, from: evil, to: evil };
  return d;
}

describe('HTML report against hostile stored text', () => {
  it('keeps every outside text as text: no tag, attribute or URL of its own', () => {
    const clean = renderReportPage(sampleReport());
    const html = renderReportPage(evilReport(XSS));
    // The same elements as a clean page: nothing opened or closed by the data.
    expect(new Set(tags(html))).toEqual(new Set(tags(clean)));
    expect(html.match(/<script/gi)).toBeNull();
    expect(html.match(/<\/style>/g)).toHaveLength(1);
    for (const t of html.match(/<[a-z][^>]*>/gi)!)
      expect(t.replace(/="[^"]*"/g, '=""'), t).not.toMatch(/\s(on[a-z]+|href|src|xlink:href)=/i);
    expect(html).not.toContain(']]>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&amp;lt;already&amp;gt;');
    // Attribute values hold no raw quote of the data.
    for (const m of html.matchAll(/="([^"]*)"/g)) if (!m[1]!.startsWith("default-src 'none'")) expect(m[1]).not.toMatch(/[<>']/);
  });

  it('escapes numbers of stored evidence that are not numbers', () => {
    const d = sampleReport();
    const ev = d.gates[0]!.evidence!;
    const bad = '<b onclick=x>1</b>' as unknown as number;
    ev.history = ev.history!.map((l) => ({ ...l, look: bad, samples: bad }));
    d.window.days = bad;
    const html = renderReportPage(d);
    expect(html).not.toContain('<b onclick');
    expect(html).toContain('&lt;b onclick=x&gt;1&lt;/b&gt;');
  });

  it('cuts long labels at a character, not inside a surrogate pair', () => {
    const d = sampleReport();
    d.review.findings[0]!.title = `${'x'.repeat(36)}😀😀😀 more text`;
    const svg = savingsChart(d.review.findings);
    expect(svg).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    expect(svg).toContain(`${'x'.repeat(36)}😀…`);
  });

  it('draws NaN, infinite, negative and empty numbers without NaN in the markup', () => {
    const d = sampleReport();
    d.trends.points[0]!.mean = Number.NaN;
    d.trends.points[1]!.flagged = Number.POSITIVE_INFINITY;
    d.trends.points[2]!.mean = -5;
    d.trends.points.push({ model_version: 'v3', check_name: 'quality', t: Number.NaN, n: 3, mean: 0.5, flagged: 0 });
    d.coverage.versions.push({ version: 'v0', stored: 0, scored: 7 }, { version: 'vneg', stored: -3, scored: Number.NaN });
    d.review.findings[0]!.annualUsd = Number.POSITIVE_INFINITY;
    d.review.findings[1]!.annualUsd = Number.NaN;
    d.review.findings[2]!.annualUsd = -1000;
    const html = renderReportPage(d);
    // Geometry attributes are numbers.
    for (const m of html.matchAll(/\s(?:x|y|x1|x2|y1|y2|cx|cy|r|width|height)="([^"]*)"/g)) expect(m[1]).toMatch(/^-?\d+(\.\d+)?$/);
    for (const m of html.matchAll(/\sd="([^"]*)"/g)) expect(m[1]).not.toMatch(/NaN|Infinity/);
    const empty = renderReportPage({ ...sampleReport(), trends: { bucketSeconds: Number.NaN, points: [] } });
    expect(empty).toContain('No quality scores of this judge in the window.');
  });

  it('keeps time axes short for dates far apart', () => {
    expect(timeTicks(0, 1e11).ticks.length).toBeLessThanOrEqual(20);
    expect(timeTicks(T0 / 1000, 8.64e12).ticks.length).toBeLessThanOrEqual(20);
    const d = sampleReport();
    d.trends.points.push({ model_version: 'v9', check_name: 'quality', t: 8.64e12, n: 5, mean: 0.8, flagged: 0 });
    const started = Date.now();
    const html = renderReportPage(d);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(html.length).toBeLessThan(200_000);
  });

  it('stops tick loops that floating point cannot advance', () => {
    const lo = 2 ** 60;
    const ticks = niceTicks(lo, lo + 256);
    expect(ticks.length).toBeGreaterThan(0);
    expect(ticks.length).toBeLessThanOrEqual(50);
  });

  it('renders 200,000 trend points and 100,000 looks without exhausting the stack', () => {
    const points: TrendPoint[] = [];
    for (let i = 0; i < 200_000; i++)
      points.push({ model_version: `v${i % 2000}`, check_name: 'quality', t: T0 / 1000 + (i % 100) * 60, n: 10, mean: 0.8, flagged: 0 });
    const colours = new Map<string, string>();
    expect(trendChart({ metric: 'quality', points, bucketSeconds: 60, colours })).toContain('data-chart="trend:quality"');

    const { evidence } = rejectingGate();
    const h = evidence.history![0]!;
    const history: LookPoint[] = Array.from({ length: 100_000 }, (_, i) => ({ ...h, look: i + 1 }));
    const gate = { ...sampleReport().gates[0]!, evidence: { ...evidence, history } };
    expect(gateChart(gate, 'quality', 'g0')).toContain('<svg');
  });
});

/** A gate report whose every outside text is `evil`. */
function evilGateMarkdown(evil: string, summary = evil): string {
  const { evidence } = rejectingGate();
  return renderGateReport(
    gateResult(evidence, {
      reason: evil,
      override: { action: 'approve', by: evil, reason: evil, at: evil },
      effectiveDecision: 'APPROVE',
      explanation: { summary, details: [evil], generatedBy: 'template', promptVersion: 'explain-v1' } as never,
      rollback: { status: 'failed', deployer: 'webhook', detail: evil, idempotencyKey: 'k' },
    }),
  );
}

/** Lines of the Markdown that start a block: headings, rules, fences, tables, lists, quotes, code. */
const blockStarts = (md: string) =>
  md.split('\n').flatMap((l) => /^(\s{4,}|#+|-{3,}|={3,}|~~~|```|\||>|\d+[.)]\s|[-+*]\s)/.exec(l)?.slice(0, 1) ?? []);

describe('Markdown gate report against hostile stored text', () => {
  const clean = blockStarts(evilGateMarkdown('plain words'));

  it('keeps tables and lines whole: pipes, newlines, backticks, HTML', () => {
    const evil = 'a | b\n| c | d |\r\n`code` <img src=x onerror=alert(1)> [click](javascript:alert(1)) ![i](http://evil/x.png)';
    const md = evilGateMarkdown(evil);
    expect(blockStarts(md)).toEqual(clean);
    expect(md).not.toContain('<img');
    expect(md).not.toMatch(/(?<!\\)\[click(?<!\\)\]/);
    expect(md).toContain('a \\| b \\| c \\| d \\|');
  });

  it('injects no heading, rule, fence, quote, list or code block from a multi-line summary', () => {
    const summary = [
      'The candidate is fine.',
      '# APPROVED by security',
      'Looks good',
      '---',
      'Also fine',
      '===',
      '~~~',
      '    indented code',
      '1. first',
      '+ plus',
      '- dash',
      '> quote',
      '<details open>',
    ].join('\n');
    const md = evilGateMarkdown('r', summary);
    expect(blockStarts(md)).toEqual(clean);
    expect(md).not.toContain('~~~');
    expect(md).toContain('\\# APPROVED by security');
    expect(md).toContain('The candidate is fine.');
  });

  it('does not mention people or teams', () => {
    const md = evilGateMarkdown('cc @octocat and @acme/security-team');
    expect(md).not.toMatch(/@(?!&#8203;)[A-Za-z0-9]/);
    expect(md).toContain('@&#8203;octocat');
  });

  it('keeps inline code whole whatever backticks it holds', () => {
    const { evidence } = rejectingGate();
    const md = renderGateReport(
      gateResult(evidence, { rollback: { status: 'failed', deployer: 'a``b`' as never, detail: '', idempotencyKey: 'x`y``z' } }),
    );
    // A code span fenced by more backticks than any run inside it, padded.
    expect(md).toContain('via ``` a``b` ```');
    expect(md).toContain('key: ``` x`y``z ```');
  });

  it('bounds the report when stored texts are huge', () => {
    const md = evilGateMarkdown('x'.repeat(1_000_000), 'y'.repeat(1_000_000));
    expect(md.length).toBeLessThan(60_000);
    expect(md).toContain('…');
  });

  it('draws no NaN in the Mermaid charts and survives 100,000 looks', () => {
    const { evidence } = rejectingGate();
    const history = evidence.history!.map((l, i) => (i ? l : { ...l, metrics: l.metrics.map((m) => ({ ...m, lower: Number.NaN })) }));
    const md = renderLooksCharts({ ...evidence, history } as Evidence).join('\n');
    expect(md).toContain('```mermaid');
    expect(md).not.toMatch(/NaN|Infinity/);
    const h = evidence.history![0]!;
    const many = Array.from({ length: 100_000 }, (_, i) => ({ ...h, look: i + 1 }));
    expect(renderLooksCharts({ ...evidence, history: many }).length).toBeGreaterThan(0);
  });

  it('links only http(s) URLs, with nothing that ends the link early', () => {
    const { evidence } = rejectingGate();
    for (const bad of ['javascript:alert(1)', 'data:text/html,<script>', ' javascript:x', 'vbscript:x'])
      expect(renderGateReport(gateResult(evidence), { uiLink: bad })).toContain('(#)');
    const md = renderGateReport(gateResult(evidence), { uiLink: 'https://ui/x) [evil](https://evil "t")' });
    expect(md).toMatch(/\(https:\/\/ui\/x%29%20\[evil\]%28https:\/\/evil%20"t"%29\)\n$/);
  });

  it('escapes the comparison report alike', () => {
    const { evidence } = rejectingGate();
    const c = {
      deployment: 'chat',
      versionA: 'v1',
      versionB: 'v2',
      a: evidence.baseline,
      b: evidence.candidate,
      look: { ...evidence.look, reason: '@here | x\n# H' },
      test: '<b>t</b>',
    } as unknown as Comparison;
    const md = renderComparisonReport(c);
    expect(md).not.toContain('<b>');
    expect(md).not.toMatch(/^# H/m);
    expect(md).toContain('@&#8203;here \\| x # H');
  });

  it('escapeMarkdown keeps ordinary prose readable', () => {
    expect(escapeMarkdown('quality dropped 5 points - see below')).toBe('quality dropped 5 points - see below');
  });
});

describe('Slack notifications against hostile stored text', () => {
  it('escapes &, < and > in every text so nothing pings or links', () => {
    const { evidence } = rejectingGate();
    const evil = '<!channel> <!here> <@U123> <http://evil.example|click here> & @here';
    const n = noticeOf(
      gateResult(evidence, {
        reason: evil,
        override: { action: 'approve', by: evil, reason: evil, at: '2025-06-01T00:00:00Z' },
        rollback: { status: 'failed', deployer: 'webhook', detail: evil, idempotencyKey: 'k' },
      }),
    );
    const body = noticeBody('slack', n, 'k', 'now');
    const text = (JSON.parse(body) as { text: string }).text;
    expect(text).not.toMatch(/[<>]/);
    expect(text).toContain('&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;http://evil.example|click here&gt; &amp; @here');
    // The generic webhook keeps the texts as they are: it is JSON, not mrkdwn.
    const generic = JSON.parse(noticeBody('webhook', n, 'k', 'now')) as { reason: string };
    expect(generic.reason).toBe(evil);
  });

  it('keeps the JSON valid for quotes, backslashes, newlines and lone surrogates', () => {
    const { evidence } = rejectingGate();
    const evil = '"}\\\n\u2028\uD800 ","text":"spoof';
    const body = noticeBody('slack', noticeOf(gateResult(evidence, { reason: evil })), 'k', 'now');
    expect(Object.keys(JSON.parse(body) as object)).toEqual(['text']);
  });
});

describe('terminal output against hostile stored text', () => {
  const evil = 'ok\u001b[2J\u001b]0;owned\u0007\rSPOOF\u202Egnp.exe\u200B\u2066x\u2069\u0000\u009b31m\nnext';

  it('strips control, bidi and zero-width characters from table cells', () => {
    const out = table([{ subject: evil, n: 1 }]);
    expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/);
    expect(out.split('\n')).toHaveLength(3);
    expect(out).toContain('ok[2J]0;owned SPOOFgnp.exex31m next');
  });

  it('terminalText keeps ordinary text and, when asked, newlines', () => {
    expect(terminalText('naïve café – 5 %')).toBe('naïve café – 5 %');
    expect(terminalText('a\nb', { newlines: true })).toBe('a\nb');
    expect(terminalText('a\r\nb')).toBe('a b');
  });

  it('cleans agent runs and recommendations', () => {
    const run = {
      status: 'ok',
      agent: 'cost',
      dataPoints: 3,
      window: { from: '2025-06-01T00:00:00Z', to: '2025-06-02T00:00:00Z' },
      warnings: [evil],
      findings: [{ severity: 'high', kind: 'idle', subject: evil, title: evil, monthlySavingUsd: 1, annualSavingUsd: 12 }],
      summary: evil,
      narrative: { generatedBy: evil, summary: evil },
    } as unknown as AgentRunResult;
    const out = formatAgentRun(run);
    expect(out).not.toMatch(/[\u001b\u0007\u009b\r\u202e\u200b]/);
    const rec = formatRecommendations([{ agent: evil, severity: 'high', subject: evil, title: evil, confidence: 1 } as never]);
    expect(rec).not.toMatch(/[\u001b\u0007\u009b\r\u202e\u200b]/);
  });

  it('lays out 200,000 rows without exhausting the stack', () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => ({ id: i }));
    expect(table(rows).split('\n')).toHaveLength(200_002);
  });
});
