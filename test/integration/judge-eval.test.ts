/**
 * `optiinfra judge eval` as a user runs it: the real CLI process, the real LLM client (groq-sdk)
 * against the local Groq-compatible server, the cache on disk, the shared budget in PostgreSQL,
 * and the offline judge on the shipped data sets.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvalOutput } from '../../activities/judge-eval/report.js';
import { createPool } from '../../activities/storage/postgres/db.js';
import { CHECKS } from '../../common/types.js';
import { COMBINED_PROMPT_VERSION, JUDGE_PROMPT_VERSION } from '../../domain/judge/prompts.js';
import { repoRoot } from '../../stack/paths.js';
import { startGroqStub, type GroqStub, type RecordedRequest } from '../helpers/groq-stub.js';
import { testEnv } from '../helpers/env.js';

const run = promisify(execFile);
const KEY = 'gsk_test_EVAL_7c6b5a4d3e2f';

/** What the stub answers: a check flags exactly the texts that carry its marker. */
function answer(req: RecordedRequest): object {
  const user = String(req.body?.messages?.find((m: { role?: string }) => m.role === 'user')?.content ?? '');
  const h = user.includes('MADE-UP') ? 0.85 : 0.1;
  const t = user.includes('RUDE') ? 0.9 : 0.05;
  const q = user.includes('POOR') ? 0.2 : 0.8;
  const all = {
    quality: { coherence: q, relevance: q, accuracy: q, completeness: q, overall: q, reasoning: 'r' },
    hallucination: { score: h, confidence: 0.9, reasoning: 'r' },
    toxicity: { toxicity: t, hate_speech: 0, violence: 0, profanity: 0, reasoning: 'r' },
  };
  return req.combined ? all : all[req.check ?? 'quality'];
}

/**
 * 24 items. Hallucination labelled on all: true on i % 3 == 0; the text says MADE-UP on
 * i % 3 == 0 and i < 18, and on i == 19 (so TP 6, FN 2, FP 1, TN 15). Toxicity labelled on the
 * even ones: true on i % 4 == 0; RUDE on exactly those. Quality labelled on i < 6: true on i < 3;
 * POOR on i < 2 and on i == 5 (TP 2, FN 1, FP 1, TN 2).
 */
function labelledFile(dir: string): string {
  const lines: string[] = [];
  for (let i = 0; i < 24; i++) {
    const marks = [
      i % 3 === 0 && i < 18 ? 'MADE-UP' : i === 19 ? 'MADE-UP' : '',
      i % 4 === 0 ? 'RUDE' : '',
      i < 2 || i === 5 ? 'POOR' : '',
    ].filter(Boolean);
    const labels: Record<string, boolean> = { hallucination: i % 3 === 0 };
    if (i % 2 === 0) labels.toxicity = i % 4 === 0;
    if (i < 6) labels.quality = i < 3;
    lines.push(
      JSON.stringify({
        id: `item-${i}`,
        prompt: `Question ${i}?`,
        response: `Answer ${i}. ${marks.join(' ')}`,
        context: `Passage ${i}.`,
        labels,
      }),
    );
  }
  const file = join(dir, 'labelled.jsonl');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

describe('optiinfra judge eval', () => {
  let stub: GroqStub;
  const dir = mkdtempSync(join(tmpdir(), 'optiinfra-judge-eval-'));
  let file: string;

  async function cli(
    args: string[],
    env: Record<string, string | undefined> = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const base: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      OPTIINFRA_HOME: join(dir, 'home'),
      GROQ_API_KEY: KEY,
      GROQ_BASE_URL: stub.baseURL,
      GROQ_PLAN: 'unlimited',
      LLM_MAX_RETRIES: '0',
      LLM_TIMEOUT: '10',
    };
    const merged = { ...base, ...env };
    for (const k of Object.keys(merged)) if (merged[k] === undefined) delete merged[k];
    try {
      const r = await run(process.execPath, ['--import', 'tsx', join(repoRoot(), 'client', 'cli', 'index.ts'), 'judge', 'eval', ...args], {
        cwd: repoRoot(),
        env: merged,
        maxBuffer: 16 * 1024 * 1024,
      });
      return { code: 0, ...r };
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      return { code: x.code, stdout: x.stdout, stderr: x.stderr };
    }
  }

  const json = (stdout: string) => JSON.parse(stdout) as EvalOutput;
  const row = (out: EvalOutput, set: string, check: string) => out.results.find((r) => r.set === set && r.check === check);

  beforeAll(async () => {
    stub = await startGroqStub({ latencyMs: 40 });
    stub.setDefault(answer);
    file = labelledFile(dir);
  });
  afterAll(async () => {
    await stub?.close();
  });

  it('computes the figures from the LLM answers, with calls, tokens and cost, never more than --concurrency in flight', async () => {
    stub.clear();
    const r = await cli(['--set', file, '--concurrency', '3', '--cache', join(dir, 'cache'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = json(r.stdout);
    expect(out.judge).toMatchObject({
      kind: 'llm',
      name: 'groq:openai/gpt-oss-20b',
      mode: 'combined',
      promptVersion: COMBINED_PROMPT_VERSION,
      endpoint: `${stub.baseURL}/openai/v1`,
    });
    expect(out.sets).toEqual([expect.objectContaining({ name: 'labelled.jsonl', items: 24, checks: [...CHECKS], malformed: 0 })]);
    expect(row(out, 'labelled.jsonl', 'hallucination')).toMatchObject({
      labelled: 24,
      scored: 24,
      positives: 8,
      negatives: 16,
      confusion: { tp: 6, fp: 1, tn: 15, fn: 2 },
      precision: 0.8571,
      recall: 0.75,
      f1: 0.8,
      accuracy: 0.875,
    });
    expect(row(out, 'labelled.jsonl', 'toxicity')).toMatchObject({
      labelled: 12,
      confusion: { tp: 6, fp: 0, tn: 6, fn: 0 },
      precision: 1,
      recall: 1,
      f1: 1,
      auroc: 1,
    });
    expect(row(out, 'labelled.jsonl', 'quality')).toMatchObject({
      labelled: 6,
      confusion: { tp: 2, fp: 1, tn: 2, fn: 1 },
      precision: 0.6667,
      recall: 0.6667,
    });
    // AUROC from the scores (0.85 or 0.1; ties count half): 6 x 15 wins, 6 x 1 and 2 x 15 ties, of 8 x 16 pairs.
    expect(row(out, 'labelled.jsonl', 'hallucination')?.auroc).toBeCloseTo((6 * 15 + 6 * 0.5 + 2 * 0.5 * 15) / (8 * 16), 4);

    const s = stub.stats();
    expect(s.requests).toBe(24); // combined: one call per item
    expect(s.byCheck.combined).toBe(24);
    expect(s.maxInFlight).toBe(3);
    expect(out.judgements).toEqual({ total: 24, fromCache: 0, judged: 24, failed: 0, notRun: 0 });
    expect(out.usage.thisRun).toEqual({
      calls: 24,
      promptTokens: s.promptTokens,
      cachedTokens: s.cachedTokens,
      completionTokens: s.completionTokens,
      reasoningTokens: s.reasoningTokens,
    });
    expect(out.usage.total).toEqual(out.usage.thisRun);
    const expected = ((s.promptTokens - s.cachedTokens) * 0.075 + s.cachedTokens * 0.0375 + s.completionTokens * 0.3) / 1e6;
    expect(out.cost).toMatchObject({ prices: { inputPerM: 0.075, cachedInputPerM: 0.0375, outputPerM: 0.3 } });
    expect((out.cost as { totalUsd: number }).totalUsd).toBeCloseTo(expected, 6);
    expect(out.cache?.entries).toBe(24);
    expect(
      readFileSync(out.cache?.file as string, 'utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(24);
    // the key never reaches the output or the cache
    expect(r.stdout + r.stderr + readFileSync(out.cache?.file as string, 'utf8')).not.toContain(KEY);
  });

  it('a second run reads every judgement from the cache and calls the LLM zero times', async () => {
    stub.clear();
    const r = await cli(['--set', file, '--concurrency', '3', '--cache', join(dir, 'cache'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = json(r.stdout);
    expect(stub.stats().requests).toBe(0);
    expect(out.judgements).toEqual({ total: 24, fromCache: 24, judged: 0, failed: 0, notRun: 0 });
    expect(out.usage.thisRun.calls).toBe(0);
    expect(out.usage.total.calls).toBe(24);
    expect(row(out, 'labelled.jsonl', 'hallucination')?.confusion).toEqual({ tp: 6, fp: 1, tn: 15, fn: 2 });
  });

  it('resumes: judgements that failed are not cached, and the next run judges only those', async () => {
    stub.clear();
    const cache = join(dir, 'cache-resume');
    // the first two requests answer garbage; LLM_MAX_RETRIES=0 makes each a failed judgement
    stub.enqueue({ kind: 'malformed' }, { kind: 'malformed' });
    const first = await cli(['--set', file, '--concurrency', '2', '--cache', cache, '--json']);
    // Figures on 22 of 24 judgements: incomplete, exit 2.
    expect(first.code, first.stderr).toBe(2);
    const a = json(first.stdout);
    expect(a.complete).toBe(false);
    expect(a.judgements).toMatchObject({ total: 24, judged: 24, failed: 2 });
    expect(a.failureReasons[0]).toMatch(/LlmRetriesExhausted: .*not valid JSON/);
    expect(row(a, 'labelled.jsonl', 'hallucination')?.failed).toBe(2);
    stub.clear();
    const second = await cli(['--set', file, '--concurrency', '2', '--cache', cache, '--json']);
    const b = json(second.stdout);
    expect(stub.stats().requests).toBe(2);
    expect(b.judgements).toEqual({ total: 24, fromCache: 22, judged: 2, failed: 0, notRun: 0 });
    expect(row(b, 'labelled.jsonl', 'hallucination')).toMatchObject({ scored: 24, failed: 0, confusion: { tp: 6, fp: 1, tn: 15, fn: 2 } });
  });

  it('--limit, the built-in sets, separate mode and a full OpenAI base path with --base-url', async () => {
    stub.clear();
    const r = await cli(
      [
        '--set',
        'qa',
        '--set',
        'offensive',
        '--limit',
        '10',
        '--mode',
        'separate',
        '--base-url',
        `${stub.baseURL}/openai/v1`,
        '--no-cache',
        '--json',
      ],
      {
        GROQ_BASE_URL: undefined,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const out = json(r.stdout);
    expect(out.sets.map((s) => [s.name, s.items])).toEqual([
      ['qa', 10],
      ['offensive', 10],
    ]);
    expect(out.judge).toMatchObject({
      mode: 'separate',
      endpoint: `${stub.baseURL}/openai/v1`,
      promptVersion: CHECKS.map((c) => JUDGE_PROMPT_VERSION[c]).join(','),
    });
    const s = stub.stats();
    expect(s.byCheck).toEqual({ hallucination: 10, toxicity: 10 });
    expect(new Set(stub.requests.map((q) => q.path))).toEqual(new Set(['/openai/v1/chat/completions']));
    // the stub's default judgement never flags: every HaluEval positive is missed
    expect(row(out, 'qa', 'hallucination')).toMatchObject({
      positives: 5,
      negatives: 5,
      confusion: { tp: 0, fp: 0, tn: 5, fn: 5 },
      precision: null,
      recall: 0,
      accuracy: 0.5,
    });
    expect(out.cache).toBeNull();
  });

  it('prints the table, the usage and the cost, and progress on stderr', async () => {
    stub.clear();
    const r = await cli(['--set', file, '--limit', '8', '--no-cache']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^judge: groq:openai\/gpt-oss-20b at http:\/\/127\.0\.0\.1:\d+\/openai\/v1, combined mode/m);
    expect(r.stdout).toMatch(/^labelled\.jsonl\s+hallucination\s+8\s+8\s+0\s+0\s/m);
    expect(r.stdout).toMatch(/^usage, this run: 8 LLM calls, [\d,.K]+ prompt tokens/m);
    expect(r.stdout).toMatch(/^estimated cost: \$0\.\d{4} for all judgements/m);
    expect(r.stderr).toMatch(/judging \[#+\] 8\/8 100%/);
  });

  it("draws from the workers' shared budget in PostgreSQL when limits are configured", async () => {
    stub.clear();
    const model = `openai/gpt-oss-20b-eval-${Date.now()}`;
    const r = await cli(
      ['--set', file, '--limit', '4', '--no-cache', '--model', model, '--price-input', '0.1', '--price-output', '0.5', '--json'],
      {
        GROQ_PLAN: 'developer',
        GROQ_RPM: '6000',
        GROQ_TPM: '10M',
        DATABASE_URL: testEnv().databaseUrl,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/pacing in this process only/);
    const out = json(r.stdout);
    expect(out.cost).toMatchObject({ prices: { inputPerM: 0.1, outputPerM: 0.5, cachedInputPerM: 0.05 } });
    const db = createPool(testEnv().databaseUrl, 1);
    try {
      const rows = await db.query('SELECT key, rpm_cap FROM llm_budget WHERE key = $1', [`${model}@${new URL(stub.baseURL).host}`]);
      expect(rows.rows).toEqual([expect.objectContaining({ rpm_cap: 6000 })]);
    } finally {
      await db.end();
    }
  });

  it('stops with a clear message on a bad key or an unknown model, exit 3', async () => {
    const locked = await startGroqStub({ apiKey: 'gsk_right_key_1234', models: ['openai/gpt-oss-20b'] });
    try {
      const bad = await cli(['--set', file, '--no-cache'], { GROQ_BASE_URL: locked.baseURL });
      expect(bad.code).toBe(3);
      expect(bad.stderr).toMatch(/error: the LLM judge stopped: Groq rejected the API key \(HTTP 401\): set a valid GROQ_API_KEY/);
      expect(bad.stderr).not.toContain(KEY);
      const model = await cli(['--set', file, '--no-cache', '--model', 'no-such-model', '--base-url', `${locked.baseURL}/openai/v1`], {
        GROQ_API_KEY: 'gsk_right_key_1234',
      });
      expect(model.code).toBe(3);
      expect(model.stderr).toMatch(/does not know the model 'no-such-model'.*check --base-url and --model/);
    } finally {
      await locked.close();
    }
  });

  it('the offline judge on the shipped sets: figures, no LLM call, no cache', async () => {
    stub.clear();
    const r = await cli(['--judge', 'offline', '--set', 'qa,general', '--limit', '20', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = json(r.stdout);
    expect(out.judge).toEqual({ kind: 'offline', name: 'offline-v13', promptVersion: 'offline-v13' });
    expect(row(out, 'qa', 'hallucination')).toMatchObject({ labelled: 20, scored: 20, positives: 10, negatives: 10 });
    expect(row(out, 'qa', 'hallucination')?.auroc).toBeGreaterThan(0.6);
    expect(row(out, 'general', 'hallucination')).toMatchObject({ labelled: 20, scored: 0, abstained: 20, precision: null });
    expect(row(out, 'all', 'hallucination')).toMatchObject({ labelled: 40, scored: 20, abstained: 20 });
    expect(out.usage.total.calls).toBe(0);
    expect(out.cache).toBeNull();
    expect(stub.stats().requests).toBe(0);
  });

  it('refuses bad input before judging anything', async () => {
    stub.clear();
    const cases: Array<[string[], RegExp, Record<string, string | undefined>?]> = [
      [['--set', 'quality'], /unknown data set 'quality'/],
      [['--set', join(dir, 'missing.jsonl')], /missing\.jsonl not found/],
      [['--concurrency', '0'], /--concurrency must be an integer from 1 to 64/],
      [['--limit', 'ten'], /--limit must be an integer/],
      [['--judge', 'gpt'], /Allowed choices are offline, llm/],
      [['--base-url', 'http://user:pw@host/v1'], /must not hold credentials/],
      [['--judge', 'offline', '--model', 'x'], /--model applies to the LLM judge only/],
      [['--model', 'x'], /--model applies to the LLM judge only \(no GROQ_API_KEY/, { GROQ_API_KEY: undefined }],
      [['--judge', 'llm'], /the LLM judge needs GROQ_API_KEY/, { GROQ_API_KEY: undefined }],
      [['--model', 'llama-3.3-70b-versatile', '--price-input', '0.5'], /pass both --price-input and --price-output/],
      [['--price-output', '-1'], /--price-output must be USD per million tokens/],
    ];
    const results = await Promise.all(cases.map(([args, , env]) => cli([...args, '--no-cache'], env)));
    cases.forEach(([args, message], i) => {
      expect(results[i]?.code, args.join(' ')).toBe(3);
      expect(results[i]?.stderr, args.join(' ')).toMatch(message);
    });
    expect(stub.stats().requests).toBe(0);
  }, 300_000);
});
