/**
 * Hostile input for `optiinfra judge eval`: labelled files that are not what the format says
 * (encodings, line endings, huge lines, wrong label types, duplicate ids, empty files,
 * directories, compressed files, FIFOs) and judgement caches that are torn, foreign or
 * unwritable. Each must end in a clear error naming the file (and line), or be read correctly.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { CacheWriteError, JudgementCache, judgementKey, type JudgementIdentity } from '../../activities/judge-eval/cache.js';
import { EvalDataError, loadEvalSet, parseLabelledJsonl } from '../../activities/judge-eval/datasets.js';
import { buildOutput, formatOutput } from '../../activities/judge-eval/report.js';
import { noUsage, runJudgeEval, type EvalJudge } from '../../activities/judge-eval/runner.js';
import type { JudgeLlm } from '../../activities/collector/judges.js';

const line = (o: unknown) => JSON.stringify(o);
const rec = (labels: unknown, extra: Record<string, unknown> = {}) => line({ prompt: 'Q', response: 'A.', labels, ...extra });

const dirs: string[] = [];
const children: ChildProcess[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'hostile-eval-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const load = (file: string) => loadEvalSet(file, { dataDir: tmp() });
const errorOf = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
};

describe('hostile labelled files', () => {
  it('a byte-order mark and CRLF line endings are read as plain lines', () => {
    const f = join(tmp(), 'bom.jsonl');
    writeFileSync(f, `\uFEFF${rec({ toxicity: true }, { id: 'a' })}\r\n${rec({ toxicity: 0 }, { id: 'b' })}\r\n`);
    const s = load(f);
    expect(s.malformed).toBe(0);
    expect(s.items.map((i) => [i.id, i.labels.toxicity])).toEqual([
      ['a', true],
      ['b', false],
    ]);
  });

  it('labels other than true, false, 1 and 0 are malformed lines with their reason, never counted as negatives', () => {
    const values: unknown[] = ['yes', '1', 'TRUE', 'true', 2, -1, 0.5, null, [], {}];
    const text = [...values.map((v) => rec({ hallucination: v })), rec({ hallucination: true })].join('\n');
    const r = parseLabelledJsonl(text, 'x.jsonl');
    expect(r.rows).toHaveLength(1);
    expect(r.rows[0]?.labels).toEqual({ hallucination: true });
    expect(r.malformed).toBe(values.length);
    expect(r.malformedExamples[0]).toBe('line 1: labels.hallucination must be true, false, 1 or 0');
  });

  it('missing fields are named with their line', () => {
    const text = [
      line({ response: 'A', labels: { toxicity: 1 } }),
      line({ prompt: 'Q', labels: { toxicity: 1 } }),
      line({ prompt: 'Q', response: 'A' }),
    ].join('\n');
    const r = parseLabelledJsonl(text, 'x.jsonl');
    expect(r.malformedExamples).toEqual([
      'line 1: prompt must be a string',
      'line 2: response must be a non-empty string',
      'line 3: labels must be an object with one or more of quality, hallucination, toxicity',
    ]);
  });

  it('a repeated id is a malformed line naming the line that used it first', () => {
    const text = [
      rec({ toxicity: 1 }, { id: 'a' }),
      rec({ toxicity: 0 }, { id: 'b' }),
      rec({ toxicity: 0 }, { id: 'a' }),
      rec({ toxicity: 0 }, { id: 3 }),
    ].join('\n');
    const r = parseLabelledJsonl(text, 'x.jsonl');
    expect(r.rows.map((i) => i.id)).toEqual(['a', 'b', '3']);
    expect(r.malformed).toBe(1);
    expect(r.malformedExamples).toEqual(["line 3: id 'a' is used again (first on line 1); ids must be unique"]);
  });

  it('an empty file, a file of blank lines and a directory are errors naming the file', () => {
    const d = tmp();
    writeFileSync(join(d, 'empty.jsonl'), '');
    writeFileSync(join(d, 'blank.jsonl'), '\n \r\n\t\n');
    mkdirSync(join(d, 'dir.jsonl'));
    expect(() => load(join(d, 'empty.jsonl'))).toThrow(
      new EvalDataError(`labelled file ${join(d, 'empty.jsonl')}: it holds no record; the format is in docs/judge-eval-format.md`),
    );
    expect(() => load(join(d, 'blank.jsonl'))).toThrow(/blank\.jsonl: it holds no record/);
    expect(() => load(join(d, 'dir.jsonl'))).toThrow(
      new EvalDataError(`labelled file '${join(d, 'dir.jsonl')}': ${join(d, 'dir.jsonl')} is a directory`),
    );
  });

  it('a gzip-compressed file is named as such, not read as garbage lines', () => {
    const f = join(tmp(), 'packed.jsonl');
    writeFileSync(f, gzipSync(`${rec({ toxicity: 1 })}\n`));
    const e = errorOf(() => load(f));
    expect(e).toBeInstanceOf(EvalDataError);
    expect((e as Error).message).toBe(
      `labelled file ${f} is gzip-compressed: decompress it first (gunzip -c ${f} > plain.jsonl); the format is in docs/judge-eval-format.md`,
    );
  });

  it('bytes that are not UTF-8 are an error naming the line, not replaced silently', () => {
    const f = join(tmp(), 'latin1.jsonl');
    writeFileSync(
      f,
      Buffer.concat([
        Buffer.from(`${rec({ toxicity: 1 })}\n`),
        Buffer.from('{"prompt":"caf'),
        Buffer.from([0xe9]),
        Buffer.from(`","response":"A","labels":{"toxicity":0}}\n`),
      ]),
    );
    const e = errorOf(() => load(f));
    expect(e).toBeInstanceOf(EvalDataError);
    expect((e as Error).message).toBe(`labelled file ${f}: line 2 is not valid UTF-8; save the file as UTF-8 (docs/judge-eval-format.md)`);
  });

  it('a 30 MB line is read and cut to the text budget', () => {
    const f = join(tmp(), 'huge.jsonl');
    writeFileSync(f, `${line({ prompt: 'Q', response: 'x'.repeat(30_000_000), labels: { quality: 1 } })}\n${rec({ quality: 0 })}\n`);
    const s = load(f);
    expect(s.items).toHaveLength(2);
    expect(s.items[0]?.input.response.length).toBeLessThanOrEqual(8_000);
  });

  it('a FIFO is refused at once instead of waiting for a writer', () => {
    const d = tmp();
    const f = join(d, 'pipe.jsonl');
    execFileSync('mkfifo', [f]);
    // Should the read block, a writer closes the FIFO after 3 s, so the test fails instead of hanging.
    const writer = spawn('sh', ['-c', `sleep 3; : > '${f}'`], { stdio: 'ignore' });
    children.push(writer);
    const t0 = Date.now();
    const e = errorOf(() => load(f));
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(e).toBeInstanceOf(EvalDataError);
    expect((e as Error).message).toBe(`labelled file '${f}': ${f} is not a regular file (a FIFO, device or socket)`);
  }, 10_000);
});

describe('figures that do not exist are said', () => {
  it('one class only: AUROC n/a with the reason in the table', () => {
    const s = parseLabelledJsonl([rec({ toxicity: 1 }, { id: 'a' }), rec({ toxicity: 1 }, { id: 'b' })].join('\n'), 'one.jsonl');
    const set = {
      name: 'one.jsonl',
      source: 'one.jsonl',
      items: s.rows,
      checks: ['toxicity' as const],
      malformed: 0,
      malformedExamples: [],
    };
    const results = s.rows.map((item) => ({
      item,
      outcomes: {
        toxicity: { status: 'ok' as const, result: { toxicity: 0.9, hate_speech: 0, violence: 0, profanity: 0, reasoning: '' } as never },
      },
    }));
    const out = buildOutput({
      judge: { kind: 'offline', name: 'offline', promptVersion: 'offline' },
      sets: [set],
      run: {
        results,
        units: { total: 2, fromCache: 0, judged: 2, failed: 0, notRun: 0 },
        usage: { total: noUsage(), thisRun: noUsage() },
        failureReasons: [],
        interrupted: false,
      },
      prices: undefined,
      seconds: 0,
    });
    expect(out.results[0]?.auroc).toBeNull();
    expect(formatOutput(out)).toContain('AUROC n/a: one.jsonl/toxicity has no negatives among the scored items (AUROC needs both classes)');
  });
});

describe('hostile judgement caches', () => {
  const id: JudgementIdentity = {
    judge: 'groq:m',
    endpoint: 'https://x/v1',
    model: 'm',
    promptVersion: 'combined-v2',
    mode: 'combined',
    reasoningEffort: 'low',
  };
  const usage = { calls: 1, promptTokens: 10, completionTokens: 5, cachedTokens: 0, reasoningTokens: 0 };
  const entry = (key: string) => ({
    key,
    outcomes: [{ check: 'toxicity' as const, status: 'abstained' as const, reason: 'r' }],
    usage,
    at: '2025-01-01T00:00:00Z',
  });

  it('a torn last line, garbage and another prompt version are ignored; new lines start on a line of their own', () => {
    const dir = tmp();
    const c = JudgementCache.open(dir, 'groq:m');
    const mine = judgementKey(id, { prompt: 'Q', response: 'A' });
    const other = judgementKey({ ...id, promptVersion: 'combined-v1' }, { prompt: 'Q', response: 'A' });
    c.put(entry(other));
    appendFileSync(c.file, '\u0000\u0000garbage\n{"v":"judge-eval-cache-v1","key":"');
    const again = JudgementCache.open(dir, 'groq:m');
    expect(again.ignoredLines).toBe(2);
    expect(again.get(mine)).toBeUndefined();
    again.put(entry(mine));
    const third = JudgementCache.open(dir, 'groq:m');
    expect(third.get(mine)?.usage).toEqual(usage);
    expect(third.size).toBe(2);
    expect(readFileSync(c.file, 'utf8').endsWith('\n')).toBe(true);
  });

  it('a cache file that is a directory or a FIFO is refused when opened', () => {
    const dir = tmp();
    mkdirSync(join(dir, 'groq_m.jsonl'));
    expect(() => JudgementCache.open(dir, 'groq:m')).toThrow(/groq_m\.jsonl/);
    const dir2 = tmp();
    execFileSync('mkfifo', [join(dir2, 'groq_m.jsonl')]);
    const writer = spawn('sh', ['-c', `sleep 3; : > '${join(dir2, 'groq_m.jsonl')}'`], { stdio: 'ignore' });
    children.push(writer);
    const t0 = Date.now();
    expect(() => JudgementCache.open(dir2, 'groq:m')).toThrow(`${join(dir2, 'groq_m.jsonl')} is not a regular file`);
    expect(Date.now() - t0).toBeLessThan(1500);
  }, 10_000);

  it('a cache that cannot be written stops the run: no further calls, a CacheWriteError naming the file', async () => {
    const dir = tmp();
    const cache = JudgementCache.open(dir, 'groq:m');
    // The file becomes unwritable (here: replaced by a directory) after it was opened.
    rmSync(cache.file);
    mkdirSync(cache.file);
    let calls = 0;
    const llm: JudgeLlm = {
      async json(req) {
        calls++;
        await new Promise((r) => setTimeout(r, 5));
        const value = {
          quality: { coherence: 0.9, relevance: 0.9, accuracy: 0.9, completeness: 0.9, overall: 0.9, reasoning: '' },
          hallucination: { score: 0, confidence: 0.9, reasoning: '' },
          toxicity: { toxicity: 0, hate_speech: 0, violence: 0, profanity: 0, reasoning: '' },
        };
        return { value: req.schema.parse(value), model: 'm', promptTokens: 1, completionTokens: 1, latencyMs: 1, calls: 1 };
      },
    };
    const judge: EvalJudge = { kind: 'llm', llm, name: 'groq:m', endpoint: 'e', model: 'm', mode: 'combined', reasoningEffort: 'low' };
    const items = parseLabelledJsonl(
      Array.from({ length: 20 }, (_, i) => line({ prompt: 'Q', response: `A${i}`, labels: { toxicity: 0 } })).join('\n'),
      'x.jsonl',
    ).rows;
    const e = await runJudgeEval({ items, judge, concurrency: 2, cache, clean: (s) => s }).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(CacheWriteError);
    expect((e as Error).message).toMatch(new RegExp(`^cannot write the judgement cache ${cache.file}: EISDIR`));
    const settled = calls;
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toBe(settled);
    expect(calls).toBeLessThanOrEqual(2);
  });
});
