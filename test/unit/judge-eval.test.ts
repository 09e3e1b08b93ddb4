import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { cacheFileName, JudgementCache, judgementKey, parseCacheLine, type JudgementIdentity } from '../../activities/judge-eval/cache.js';
import { EvalDataError, loadEvalSet, parseLabelledJsonl, type EvalItem } from '../../activities/judge-eval/datasets.js';
import { openAiBaseFetch, openAiBaseProblem } from '../../activities/judge-eval/endpoint.js';
import { DEFAULT_PRICES, estimateCostUsd, pricesFor } from '../../activities/judge-eval/pricing.js';
import { progressLine, progressReporter } from '../../activities/judge-eval/progress.js';
import { buildOutput, formatOutput, summarize } from '../../activities/judge-eval/report.js';
import { noUsage, runJudgeEval, type EvalJudge, type ItemResult } from '../../activities/judge-eval/runner.js';
import type { JudgeLlm } from '../../activities/collector/judges.js';
import { binaryReport, binaryReportOf } from '../../domain/judge/eval-metrics.js';
import { setList } from '../../client/cli/judge.js';
import { splitOf } from '../../scripts/eval/datasets.js';

const line = (o: unknown) => JSON.stringify(o);

describe('labelled JSONL (docs/judge-eval-format.md)', () => {
  it('reads prompt, response, context, id and labels per check', () => {
    const text = [
      line({ id: 'a', prompt: 'Q?', response: 'A.', context: 'ctx', labels: { hallucination: true, quality: false } }),
      line({ prompt: '', response: 'You idiot.', context: null, labels: { toxicity: 1 } }),
      '',
      line({ id: 7, prompt: 'Q', response: 'R', labels: { toxicity: 0 }, extra: 'ignored' }),
    ].join('\n');
    const r = parseLabelledJsonl(text, 'mine.jsonl');
    expect(r.malformed).toBe(0);
    expect(r.rows.map((i) => [i.id, i.labels])).toEqual([
      ['a', { hallucination: true, quality: false }],
      ['2', { toxicity: true }],
      ['7', { toxicity: false }],
    ]);
    expect(r.rows[0]?.input).toEqual({ prompt: 'Q?', response: 'A.', context: 'ctx' });
    expect(r.rows[1]?.input).toEqual({ prompt: '', response: 'You idiot.' });
    expect(r.rows[0]?.set).toBe('mine.jsonl');
    expect(r.rows[0]?.split).toBe(splitOf('mine.jsonl', 'a'));
  });

  it('names each malformed line with its reason and keeps the rest', () => {
    const text = [
      '\uFEFF' + line({ prompt: 'Q', response: 'ok', labels: { toxicity: false } }),
      'not json',
      line([1, 2]),
      line({ response: 'R', labels: { toxicity: true } }),
      line({ prompt: 'Q', response: '  ', labels: { toxicity: true } }),
      line({ prompt: 'Q', response: 'R', context: 5, labels: { toxicity: true } }),
      line({ prompt: 'Q', response: 'R', labels: { toxic: true } }),
      line({ prompt: 'Q', response: 'R', labels: { toxicity: 'yes' } }),
      line({ prompt: 'Q', response: 'R', labels: {} }),
      line({ prompt: 'Q', response: 'R' }),
      line({ prompt: 'Q', response: 'R', id: '', labels: { quality: true } }),
    ].join('\n');
    const r = parseLabelledJsonl(text, 'x.jsonl');
    expect(r.rows).toHaveLength(1);
    expect(r.malformed).toBe(10);
    expect(r.malformedExamples).toEqual(['line 2: not JSON', 'line 3: not a JSON object', 'line 4: prompt must be a string']);
    const reasons = (t: string) => parseLabelledJsonl(t, 'x').malformedExamples[0];
    expect(reasons(line({ prompt: 'Q', response: 'R', labels: { toxic: true } }))).toMatch(
      /labels\.toxic is not a check \(quality, hallucination, toxicity\)/,
    );
    expect(reasons(line({ prompt: 'Q', response: 'R', labels: { toxicity: 'yes' } }))).toMatch(
      /labels\.toxicity must be true, false, 1 or 0/,
    );
    expect(reasons(line({ prompt: 'Q', response: 'R', context: 5, labels: { toxicity: true } }))).toMatch(
      /context must be a string or null/,
    );
  });

  it('cuts long texts to the product text budget, as the collector does', () => {
    const r = parseLabelledJsonl(line({ prompt: 'Q', response: 'x '.repeat(6000), labels: { quality: true } }), 'x');
    expect(r.rows[0]?.input.response.length).toBeLessThanOrEqual(8000);
    expect(r.rows[0]?.input.response).toMatch(/\[\.\.\.truncated \d+ chars\]$/);
  });

  it('a file: missing, without valid lines, or not .jsonl is an error naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'judge-eval-unit-'));
    expect(() => loadEvalSet(join(dir, 'none.jsonl'), { dataDir: dir })).toThrow(EvalDataError);
    expect(() => loadEvalSet(join(dir, 'none.jsonl'), { dataDir: dir })).toThrow(/none\.jsonl not found/);
    writeFileSync(join(dir, 'bad.jsonl'), 'nope\n');
    expect(() => loadEvalSet(join(dir, 'bad.jsonl'), { dataDir: dir })).toThrow(/all 1 records are malformed \(line 1: not JSON\)/);
    expect(() => loadEvalSet('quality', { dataDir: dir })).toThrow(
      /unknown data set 'quality': use qa, general, offensive or the path of a \.jsonl file/,
    );
    expect(() => loadEvalSet('qa', { dataDir: dir })).toThrow(/data set 'qa': .*qa_one-turn\.jsonl not found \(pass --data DIR/);
  });
});

describe('built-in sets', () => {
  const dataDir = join(process.cwd(), 'data');

  it('HaluEval QA: right (negative) and hallucinated (positive) answers with the passage, pairs in one split', () => {
    const s = loadEvalSet('qa', { dataDir, limit: 6 });
    expect(s.items).toHaveLength(6);
    expect(s.checks).toEqual(['hallucination']);
    expect(s.items.map((i) => i.labels.hallucination)).toEqual([false, true, false, true, false, true]);
    expect(s.items.every((i) => i.input.context && i.input.context.length > 0)).toBe(true);
    expect(s.items[0]?.split).toBe(s.items[1]?.split);
    expect(s.items[0]?.split).toBe(splitOf('halueval-qa', '1'));
    const test = loadEvalSet('qa', { dataDir, limit: 40, split: 'test' });
    expect(test.items).toHaveLength(40);
    expect(test.items.every((i) => i.split === 'test')).toBe(true);
  });

  it('HaluEval general (no passage) and the offensive tweets', () => {
    const g = loadEvalSet('general', { dataDir, limit: 50 });
    expect(g.items).toHaveLength(50);
    expect(g.items.every((i) => i.input.context === undefined && typeof i.labels.hallucination === 'boolean')).toBe(true);
    const o = loadEvalSet('offensive', { dataDir, limit: 30, split: 'test' });
    expect(o.checks).toEqual(['toxicity']);
    expect(o.items.every((i) => i.split === splitOf('davidson', i.id) && i.split === 'test')).toBe(true);
    expect(o.items.some((i) => i.labels.toxicity) && o.items.some((i) => !i.labels.toxicity)).toBe(true);
  });

  it('--set values: repeated or comma-separated, each once; default the three built-in sets', () => {
    expect(setList(undefined)).toEqual(['qa', 'general', 'offensive']);
    expect(setList(['qa,offensive', 'qa', ' x.jsonl '])).toEqual(['qa', 'offensive', 'x.jsonl']);
    expect(() => setList([','])).toThrow(/--set needs a value/);
  });
});

const item = (set: string, id: string, labels: EvalItem['labels'], response = `answer ${id}`, context?: string): EvalItem => ({
  set,
  id,
  input: { prompt: 'Q', response, ...(context !== undefined ? { context } : {}) },
  labels,
  split: 'train',
});

const judgements = {
  quality: (overall: number) => ({
    coherence: overall,
    relevance: overall,
    accuracy: overall,
    completeness: overall,
    overall,
    reasoning: '',
  }),
  hallucination: (score: number) => ({ score, confidence: 0.9, reasoning: '' }),
  toxicity: (toxicity: number) => ({ toxicity, hate_speech: 0, violence: 0, profanity: 0, reasoning: '' }),
};

describe('figures', () => {
  it('binaryReportOf: confusion from the predictions, AUROC from the scores; equals binaryReport at >= threshold', () => {
    const scores = [0.9, 0.7, 0.4, 0.2, 0.6];
    const labels = [true, false, true, false, false];
    expect(
      binaryReportOf(
        scores,
        scores.map((s) => s >= 0.5),
        labels,
      ),
    ).toEqual(binaryReport(scores, labels, 0.5));
    const r = binaryReportOf([0.5, 0.5], [false, true], [true, true]);
    expect(r).toMatchObject({ tp: 1, fn: 1, fp: 0, tn: 0, recall: 0.5, precision: 1 });
    expect(Number.isNaN(r.auroc)).toBe(true);
  });

  it('per set and check, quality flagged below 0.5, abstained and failed counted apart, pooled rows', () => {
    const results: ItemResult[] = [
      {
        item: item('a', '1', { hallucination: true, quality: true }),
        outcomes: {
          hallucination: { status: 'ok', result: judgements.hallucination(0.8) },
          quality: { status: 'ok', result: judgements.quality(0.3) },
        },
      },
      {
        item: item('a', '2', { hallucination: false, quality: false }),
        outcomes: {
          hallucination: { status: 'ok', result: judgements.hallucination(0.6) },
          quality: { status: 'ok', result: judgements.quality(0.5) },
        },
      },
      { item: item('a', '3', { hallucination: true }), outcomes: { hallucination: { status: 'abstained', reason: 'no passage' } } },
      {
        item: item('b', '4', { hallucination: true }),
        outcomes: { hallucination: { status: 'ok', result: judgements.hallucination(0.2) } },
      },
      {
        item: item('b', '5', { hallucination: false }),
        outcomes: { hallucination: { status: 'failed', reason: 'LlmRetriesExhausted: ...' } },
      },
      { item: item('b', '6', { hallucination: false }), outcomes: {} },
    ];
    const sets = [
      { name: 'a', source: 'a', items: [], checks: ['hallucination', 'quality'] as const, malformed: 0, malformedExamples: [] },
      { name: 'b', source: 'b', items: [], checks: ['hallucination'] as const, malformed: 0, malformedExamples: [] },
    ].map((s) => ({ ...s, checks: [...s.checks] }));
    const f = summarize(sets, results);
    expect(f.map((x) => `${x.set}/${x.check}`)).toEqual(['a/hallucination', 'a/quality', 'b/hallucination', 'all/hallucination']);
    expect(f[0]).toMatchObject({ labelled: 3, scored: 2, abstained: 1, failed: 0, missing: 0 });
    expect(f[0]?.report).toMatchObject({ tp: 1, fp: 1, tn: 0, fn: 0, precision: 0.5, recall: 1 });
    // overall 0.5 is not flagged (quality flags below 0.5); AUROC ranks by 1 - overall.
    expect(f[1]?.report).toMatchObject({ tp: 1, fp: 0, tn: 1, fn: 0, accuracy: 1, auroc: 1 });
    expect(f[2]).toMatchObject({ labelled: 3, scored: 1, failed: 1, missing: 1 });
    expect(f[2]?.report).toMatchObject({ tp: 0, fn: 1, recall: 0 });
    expect(Number.isNaN(f[2]?.report?.precision as number)).toBe(true);
    expect(f[3]).toMatchObject({ labelled: 6, scored: 3, abstained: 1, failed: 1, missing: 1 });

    const out = buildOutput({
      judge: { kind: 'offline', name: 'offline-v12', promptVersion: 'offline-v12' },
      sets,
      run: {
        results,
        units: { total: 6, fromCache: 0, judged: 5, failed: 1, notRun: 1 },
        usage: { total: noUsage(), thisRun: noUsage() },
        failureReasons: [],
        interrupted: false,
      },
      prices: { inputPerM: 0, cachedInputPerM: 0, outputPerM: 0 },
      seconds: 1.23,
    });
    expect(out.results[2]).toMatchObject({ precision: null, recall: 0, confusion: { tp: 0, fp: 0, tn: 0, fn: 1 } });
    expect(JSON.parse(JSON.stringify(out))).toEqual(out);
    const text = formatOutput(out);
    expect(text).toMatch(
      /^set\s+check\s+labelled\s+scored\s+abstained\s+failed\s+pos\s+neg\s+TP\s+FP\s+TN\s+FN\s+precision\s+recall\s+F1\s+accuracy\s+AUROC$/m,
    );
    expect(text).toMatch(/^b\s+hallucination\s+3\s+1\s+0\s+2\s+1\s+0\s+0\s+0\s+0\s+1\s+n\/a\s+0\.000/m);
  });
});

describe('cost', () => {
  it('uncached input, cached input and output tokens at their prices', () => {
    expect(estimateCostUsd({ promptTokens: 2_000_000, cachedTokens: 1_000_000, completionTokens: 1_000_000 }, DEFAULT_PRICES)).toBeCloseTo(
      0.075 + 0.0375 + 0.3,
      10,
    );
    expect(pricesFor('openai/gpt-oss-20b', {})).toEqual(DEFAULT_PRICES);
    expect(pricesFor('llama-3.3-70b-versatile', {})).toBeUndefined();
    expect(pricesFor('llama-3.3-70b-versatile', { inputPerM: 0.59, outputPerM: 0.79 })).toEqual({
      inputPerM: 0.59,
      outputPerM: 0.79,
      cachedInputPerM: 0.295,
    });
  });
});

describe('OpenAI base paths', () => {
  it("groq-sdk's /openai/v1 below the base is dropped; other URLs pass unchanged", async () => {
    const seen: string[] = [];
    const inner = (async (u: Parameters<typeof fetch>[0]) => {
      seen.push(typeof u === 'string' ? u : u instanceof URL ? u.toString() : u.url);
      return new Response('{}');
    }) as typeof fetch;
    const f = openAiBaseFetch('http://localhost:8000/v1/', inner);
    await f('http://localhost:8000/v1/openai/v1/chat/completions', { method: 'POST' });
    await f(new URL('http://localhost:8000/v1/openai/v1/models'));
    await f(new Request('http://localhost:8000/v1/openai/v1/chat/completions', { method: 'POST', body: '{}' }));
    await f('http://elsewhere/openai/v1/chat/completions');
    expect(seen).toEqual([
      'http://localhost:8000/v1/chat/completions',
      'http://localhost:8000/v1/models',
      'http://localhost:8000/v1/chat/completions',
      'http://elsewhere/openai/v1/chat/completions',
    ]);
    expect(openAiBaseProblem('http://u:p@host/v1')).toMatch(/credentials/);
    expect(openAiBaseProblem('ftp://host/v1')).toMatch(/http/);
    expect(openAiBaseProblem('nope')).toMatch(/not a URL/);
    expect(openAiBaseProblem('https://api.groq.com/openai/v1')).toBeUndefined();
  });
});

describe('the judgement cache', () => {
  const id: JudgementIdentity = {
    judge: 'groq:m',
    endpoint: 'https://x/v1',
    model: 'm',
    promptVersion: 'combined-v1',
    mode: 'combined',
    reasoningEffort: 'low',
  };
  const input = { prompt: 'Q', response: 'R', context: 'C' };

  it('keys change with the judge, model, prompt version, mode, effort, check and every text', () => {
    const k = judgementKey(id, input);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(judgementKey({ ...id }, { ...input })).toBe(k);
    for (const other of [
      { ...id, judge: 'groq:n' },
      { ...id, endpoint: 'https://y/v1' },
      { ...id, model: 'n' },
      { ...id, promptVersion: 'combined-v2' },
      { ...id, mode: 'separate' as const },
      { ...id, reasoningEffort: 'high' },
      { ...id, check: 'toxicity' as const },
    ])
      expect(judgementKey(other, input)).not.toBe(k);
    expect(judgementKey(id, { ...input, context: undefined })).not.toBe(k);
    expect(judgementKey(id, { ...input, response: 'R ' })).not.toBe(k);
    expect(cacheFileName('groq:openai/gpt-oss-20b')).toBe('groq_openai_gpt-oss-20b.jsonl');
  });

  it('writes one line per judgement, reads them back, ignores torn and invalid lines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'judge-eval-cache-'));
    const c = JudgementCache.open(dir, 'groq:m');
    const key = judgementKey(id, input);
    const usage = { calls: 1, promptTokens: 10, completionTokens: 5, cachedTokens: 2, reasoningTokens: 1 };
    c.put({ key, outcomes: [{ check: 'toxicity', status: 'ok', result: judgements.toxicity(0.7) }], usage, at: '2026-01-01T00:00:00Z' });
    const bad = JSON.parse(readFileSync(c.file, 'utf8')) as Record<string, unknown>;
    // a result out of range, a line cut short by a kill
    writeFileSync(
      c.file,
      `${readFileSync(c.file, 'utf8')}${JSON.stringify({ ...bad, key: 'b'.repeat(64), outcomes: [{ check: 'toxicity', status: 'ok', result: judgements.toxicity(1.7) }] })}\n{"v":"judge-eval-cache-v1","key":`,
    );
    const again = JudgementCache.open(dir, 'groq:m');
    expect(again.size).toBe(1);
    expect(again.ignoredLines).toBe(2);
    expect(again.get(key)?.outcomes[0]).toEqual({ check: 'toxicity', status: 'ok', result: judgements.toxicity(0.7) });
    expect(again.get(key)?.usage).toEqual(usage);
    again.put({ key: 'c'.repeat(64), outcomes: [{ check: 'hallucination', status: 'abstained', reason: 'no passage' }], usage, at: '' });
    expect(JudgementCache.open(dir, 'groq:m').size).toBe(2);
    expect(parseCacheLine('{"v":"other"}')).toBeUndefined();
  });
});

/** A fake LLM: combined judgements from markers in the judged texts, with in-flight counting. */
function fakeLlm(o: { latencyMs?: number; fail?: (user: string) => ApplicationFailure | undefined } = {}) {
  const state = { calls: 0, inFlight: 0, maxInFlight: 0 };
  const llm: JudgeLlm = {
    async json(req) {
      state.calls++;
      state.inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
      try {
        await new Promise((r) => setTimeout(r, o.latencyMs ?? 5));
        const err = o.fail?.(req.user);
        if (err) throw err;
        const h = req.user.includes('HALLUCINATED') ? 0.9 : 0.1;
        const t = req.user.includes('TOXIC') ? 0.8 : 0.05;
        const value =
          req.schemaName === 'judgement'
            ? { quality: judgements.quality(0.8), hallucination: judgements.hallucination(h), toxicity: judgements.toxicity(t) }
            : req.schemaName === 'hallucination'
              ? judgements.hallucination(h)
              : req.schemaName === 'toxicity'
                ? judgements.toxicity(t)
                : judgements.quality(0.8);
        return {
          value: req.schema.parse(value),
          model: 'm',
          promptTokens: 100,
          completionTokens: 20,
          cachedTokens: 40,
          reasoningTokens: 8,
          latencyMs: 5,
          calls: 1,
        };
      } finally {
        state.inFlight--;
      }
    },
  };
  return { llm, state };
}

const llmJudge = (llm: JudgeLlm, mode: 'combined' | 'separate' = 'combined'): EvalJudge => ({
  kind: 'llm',
  llm,
  name: 'groq:m',
  endpoint: 'http://stub/v1',
  model: 'm',
  mode,
  reasoningEffort: 'low',
});

describe('the run', () => {
  const items = Array.from({ length: 24 }, (_, i) =>
    item(
      's',
      String(i),
      i % 2 ? { hallucination: i % 4 === 1, toxicity: i % 3 === 0 } : { hallucination: i % 4 === 0 },
      `${i % 4 === 1 || i % 4 === 0 ? 'HALLUCINATED ' : ''}${i % 3 === 0 ? 'TOXIC ' : ''}answer ${i}`,
      'ctx',
    ),
  );

  it('keeps at most `concurrency` calls in flight, shares identical inputs, caches, and a second run calls nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'judge-eval-run-'));
    const dup = [...items, { ...(items[0] as EvalItem), set: 't', id: 'copy' }];
    const { llm, state } = fakeLlm({ latencyMs: 15 });
    const seen: number[] = [];
    const cache = JudgementCache.open(dir, 'groq:m');
    const r = await runJudgeEval({
      items: dup,
      judge: llmJudge(llm),
      concurrency: 3,
      cache,
      clean: (s) => s,
      onProgress: (p) => seen.push(p.done),
    });
    expect(state.maxInFlight).toBe(3);
    expect(state.calls).toBe(24);
    expect(r.units).toEqual({ total: 24, fromCache: 0, judged: 24, failed: 0, notRun: 0 });
    expect(r.usage.thisRun).toEqual({ calls: 24, promptTokens: 2400, cachedTokens: 960, completionTokens: 480, reasoningTokens: 192 });
    expect(seen.at(-1)).toBe(24);
    expect(r.results.at(-1)?.outcomes.hallucination).toEqual(r.results[0]?.outcomes.hallucination);
    const f = summarize(
      [{ name: 's', source: '', items, checks: ['hallucination', 'toxicity'], malformed: 0, malformedExamples: [] }],
      r.results,
    );
    // the fake flags exactly the marked texts, which is what the labels say
    expect(f[0]?.report).toMatchObject({ precision: 1, recall: 1, accuracy: 1 });
    expect(f[1]?.report).toMatchObject({ n: 12, precision: 1, recall: 1 });

    const second = fakeLlm();
    const again = await runJudgeEval({
      items: dup,
      judge: llmJudge(second.llm),
      concurrency: 3,
      cache: JudgementCache.open(dir, 'groq:m'),
      clean: (s) => s,
    });
    expect(second.state.calls).toBe(0);
    expect(again.units).toMatchObject({ total: 24, fromCache: 24, judged: 0 });
    expect(again.usage.thisRun.calls).toBe(0);
    expect(again.usage.total).toEqual(r.usage.total);
    expect(again.results.map((x) => x.outcomes)).toEqual(r.results.map((x) => x.outcomes));
  });

  it('separate mode: one call per labelled check; failed checks are counted and judged again on the next run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'judge-eval-run-'));
    const retriesExhausted = ApplicationFailure.create({
      type: 'LlmRetriesExhausted',
      message: 'gave up after 2 failed LLM calls',
      nonRetryable: true,
    });
    const first = fakeLlm({ fail: (u) => (u.includes('answer 3') ? retriesExhausted : undefined) });
    const r = await runJudgeEval({
      items,
      judge: llmJudge(first.llm, 'separate'),
      concurrency: 2,
      cache: JudgementCache.open(dir, 'groq:m'),
      clean: (s) => s.replace('2', '#'),
    });
    expect(first.state.calls).toBe(36); // 24 hallucination + 12 toxicity
    expect(r.units).toMatchObject({ total: 36, failed: 2 });
    expect(r.failureReasons).toEqual(['LlmRetriesExhausted: gave up after # failed LLM calls']);
    const second = fakeLlm();
    const again = await runJudgeEval({
      items,
      judge: llmJudge(second.llm, 'separate'),
      concurrency: 2,
      cache: JudgementCache.open(dir, 'groq:m'),
      clean: (s) => s,
    });
    expect(second.state.calls).toBe(2);
    expect(again.units).toMatchObject({ total: 36, fromCache: 34, judged: 2, failed: 0 });
  });

  it('a bad key stops the run and is thrown; an interrupt starts nothing new and keeps what was judged', async () => {
    const auth = fakeLlm({
      fail: () => ApplicationFailure.create({ type: 'LlmAuthError', message: 'Groq rejected the API key (HTTP 401)', nonRetryable: true }),
    });
    await expect(runJudgeEval({ items, judge: llmJudge(auth.llm), concurrency: 2, clean: (s) => s })).rejects.toThrow(
      /rejected the API key/,
    );
    expect(auth.state.calls).toBeLessThanOrEqual(2);

    const ctl = new AbortController();
    const slow = fakeLlm({ latencyMs: 20 });
    const r = await runJudgeEval({
      items,
      judge: llmJudge(slow.llm),
      concurrency: 2,
      clean: (s) => s,
      signal: ctl.signal,
      onProgress: (p) => {
        if (p.done >= 4) ctl.abort();
      },
    });
    expect(r.interrupted).toBe(true);
    expect(r.units.judged).toBeGreaterThanOrEqual(4);
    expect(r.units.judged + r.units.notRun).toBe(24);
    expect(r.results.filter((x) => Object.keys(x.outcomes).length).length).toBe(r.units.judged);
  });

  it('the offline judge: no calls, abstains on hallucination without a passage', async () => {
    const r = await runJudgeEval({
      items: [
        item('s', '1', { hallucination: true }, 'Paris.'),
        item('s', '2', { toxicity: false, quality: false }, 'Paris is the capital of France.'),
      ],
      judge: { kind: 'offline' },
      clean: (s) => s,
    });
    expect(r.results[0]?.outcomes.hallucination?.status).toBe('abstained');
    expect(r.results[1]?.outcomes.toxicity?.status).toBe('ok');
    expect(r.results[1]?.outcomes.quality?.status).toBe('ok');
    expect(r.usage.total).toEqual(noUsage());
  });
});

describe('progress', () => {
  it('a bar, counts, rate and eta; plain lines when stderr is not a terminal', () => {
    const p = { total: 1000, done: 420, fromCache: 300, failed: 2, usage: { ...noUsage(), calls: 120 } };
    expect(progressLine(p, 40_000, 10)).toBe('[####------] 420/1,000 42% | cached 300 | failed 2 | 3.0/s | eta 3m 13s | 120 calls');
    const written: string[] = [];
    let t = 0;
    const r = progressReporter({ write: (s) => written.push(s), isTTY: false }, { intervalMs: 1000, now: () => t });
    r.update({ ...p, done: 300, fromCache: 300 });
    t = 500;
    r.update({ ...p, done: 400 });
    t = 1500;
    r.update({ ...p, done: 500 });
    r.end();
    expect(written).toHaveLength(2);
    expect(written.every((s) => s.endsWith('\n') && !s.includes('\r'))).toBe(true);
    const tty: string[] = [];
    const rt = progressReporter({ write: (s) => tty.push(s), isTTY: true }, { now: () => 0 });
    rt.update(p);
    rt.end();
    expect(tty[0]).toMatch(/^\r\x1b\[2K\[/);
    expect(tty.at(-1)).toMatch(/\n$/);
  });
});
