/**
 * A single hostile text must never stall a worker: every function that runs a regex or a loop over
 * text an outsider controls (a record's texts, an LLM's reply or error body, an exporter's or
 * Prometheus' answer, a report's reasons, a URL) takes time linear in its length. Each case feeds
 * a long run of a short pattern that made an expression backtrack (quadratic or cubic time
 * before its fix), asserts a bound no superlinear version meets at that size, and asserts the
 * result is still the right one. The times before the fixes were measured on a 2-core machine.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { intArg, pointsArg, sampleRateArg } from '../../client/cli/args.js';
import { startCodecServer, type CodecServer } from '../../client/codec-server.js';
import { envSchema } from '../../common/env-schema.js';
import { redact } from '../../common/secrets.js';
import { normaliseBase } from '../../activities/judge-eval/endpoint.js';
import { MetricsSourceError, queryRange } from '../../activities/infra/prometheus.js';
import { checkReply } from '../../activities/llm/reply.js';
import { numbersNotInAnalysis, replyProblem } from '../../domain/agents/narrative.js';
import { renderGateReport } from '../../domain/gate/report.js';
import { parsePrometheusText, parsePromFloat } from '../../domain/infra/prometheus-text.js';
import { renderDataBlock } from '../../domain/judge/prompts.js';
import { AesGcmCodec } from '../../workers/codec.js';
import { gateResult } from '../helpers/report-sample.js';

/** Far above what the linear versions take (milliseconds), far below what the superlinear ones took. */
const BOUND_MS = 3000;

/** `fn`'s result and how long it took. */
function timed<T>(fn: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
}

/** `pattern` repeated to `n` characters. */
const run = (pattern: string, n: number) => pattern.repeat(Math.ceil(n / pattern.length)).slice(0, n);

const K = 1024;

describe('redact: credentials in URLs are found from each "://", not from every word boundary', () => {
  // pins: redact's `\b([a-z][a-z0-9+.-]*:\/\/)` scanned the rest of a run of scheme characters from
  // each word boundary in it: 64 K of 'a.' took 2.6 s (16 K: 157 ms), 64 K of 'www.' 1.3 s; 256 K
  // of them ~40 s. The same text reached it from every LLM error body, source message and sample.
  it.each(['a.', 'a-', 'a+', 'www.', 'x1.', 'b.c-'])('256 K of %j', (pattern) => {
    const text = run(pattern, 256 * K);
    const { value, ms } = timed(() => redact(text, ['gsk_SECRET_0123456789']));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toBe(text);
  });

  it('still redacts the userinfo of every URL, a long scheme run included', () => {
    const text = `${run('a.', 64 * K)}://user:pw@host/ then https://u:p@h.example/x, ftp://tok@h and _x://keep@h`;
    const { value, ms } = timed(() => redact(text, []));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toBe(`${run('a.', 64 * K)}://[REDACTED]@host/ then https://[REDACTED]@h.example/x, ftp://[REDACTED]@h and _x://keep@h`);
  });

  // pins: the same through checkReply, whose error body from a broken endpoint is redacted:
  // 256 K of 'a.' took 55 s.
  it('reaches an LLM error body through checkReply', () => {
    const body = { error: { message: `gsk_SECRET_0123456789 ${run('a.', 256 * K)}` } };
    const { value, ms } = timed(() => checkReply(body, z.object({}), 'object', 100, ['gsk_SECRET_0123456789']));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toMatchObject({ ok: false, truncated: false });
    expect(JSON.stringify(value)).not.toContain('SECRET');
  });
});

describe('checkReply: a Markdown fence followed by blanks', () => {
  const schema = z.object({ a: z.number() });
  const completion = (content: string) => ({ choices: [{ message: { content }, finish_reason: 'stop' }] });
  const BLANKS = [' ', '\n', '\t', '\r\n', '\u00a0', ' \n'];

  // pins: the whole-fence regex `^\s*```(?:json)?\s*([\s\S]*?)\s*```\s*$` (formats with a
  // response format, after JSON.parse failed) split a run of blanks three ways: '```' and 1 K
  // blanks took 0.27 s, 2 K 2.6 s, 4 K 20 s (cubic: 8 K ~3 min, 64 K ~1 day).
  it.each(BLANKS)('8 K of %j after an opening fence (json_object format)', (blank) => {
    const { value, ms } = timed(() => checkReply(completion('```' + run(blank, 8 * K)), schema, 'object', 100));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toMatchObject({ ok: false, truncated: false, why: expect.stringContaining('not valid JSON') });
  });

  it('a reply that is one fence, with blanks around and inside it, is still unwrapped', () => {
    for (const blank of BLANKS) {
      const content = `${blank}\`\`\`JSON${blank}{"a": 1}${run(blank, 64 * K)}\`\`\`${blank}`;
      expect(checkReply(completion(content), schema, 'object', 100)).toEqual({ ok: true, value: { a: 1 } });
    }
    expect(checkReply(completion('```json```'), schema, 'object', 100)).toMatchObject({ ok: false });
    expect(checkReply(completion('``` {"a": 3} ``` x'), schema, 'object', 100)).toMatchObject({ ok: false });
  });

  // pins: unfence's `/```(?:json)?\s*([\s\S]*?)```/` (plain format) backtracked its `\s*` into the
  // lazy group: '```' and 64 K blanks took 0.46 s (16 K: 32 ms); 512 K ~30 s.
  it.each(BLANKS)('512 K of %j after an opening fence (plain format)', (blank) => {
    const { value, ms } = timed(() => checkReply(completion('```' + run(blank, 512 * K)), schema, 'plain', 100));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toMatchObject({ ok: false, truncated: false, why: expect.stringContaining('not valid JSON') });
  });

  it('a plain reply still has its JSON taken out of a fence anywhere in it', () => {
    const content = `Here it is:\n\`\`\`json${run(' ', 256 * K)}{"a": 2}\n\`\`\` and more \`\`\``;
    const { value, ms } = timed(() => checkReply(completion(content), schema, 'plain', 100));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toEqual({ ok: true, value: { a: 2 } });
  });
});

describe('Prometheus text exposition: long digits and blanks', () => {
  // pins: FLOAT `[0-9]+\.?[0-9]*` split a run of digits two ways: parsePromFloat of 64 K digits and
  // a letter took 6.1 s (16 K: 0.32 s), a sample line 'm 1111…x' 4.2 s; 256 K ~1 min.
  it.each(['1', '0', '9', '12'])('a value of 256 K of %j and a letter', (digit) => {
    const value = `${run(digit, 256 * K)}x`;
    const float = timed(() => parsePromFloat(value));
    expect(float.ms).toBeLessThan(BOUND_MS);
    expect(float.value).toBeUndefined();
    const parsed = timed(() => parsePrometheusText(`m ${value}\nok 1\n`));
    expect(parsed.ms).toBeLessThan(BOUND_MS);
    expect(parsed.value.samples).toEqual([{ metric: 'ok', labels: {}, value: 1 }]);
    expect(parsed.value.errors).toEqual([{ line: 1, reason: expect.stringContaining('invalid value') }]);
  });

  it('long numbers that are numbers still read', () => {
    const { value, ms } = timed(() => parsePrometheusText(`m ${run('0', 256 * K)}1.5\nn -${run('0', 64 * K)}.25e+1\n`));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value.errors).toEqual([]);
    expect(value.samples.map((s) => s.value)).toEqual([1.5, -2.5]);
  });

  // pins: `^#[ \t]+(HELP|TYPE)(?:[ \t]+(.*))?$` split the blanks after the keyword two ways when
  // the line held a separator `.` does not match: '# HELP' with 64 K blanks and U+2028 took 10.9 s
  // (16 K: 0.69 s); 256 K ~3 min.
  it.each([
    [' ', '\u2028'],
    ['\t', '\u2029'],
    [' \t', '\r'],
    [' ', 'text\u2028'],
  ])('"# HELP" with 256 K of %j and then %j is an ordinary comment', (blank, tail) => {
    const { value, ms } = timed(() => parsePrometheusText(`# HELP${run(blank, 256 * K)}${tail}x\nm 1\n`));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toMatchObject({ errors: [], help: {}, samples: [{ metric: 'm', value: 1 }] });
  });

  it('# HELP and # TYPE after long blanks still read', () => {
    const text = `# HELP m${run(' \t', 256 * K)}Requests\\nserved.\n# TYPE m${run(' ', 64 * K)}counter\n# HELP n${run(' ', 64 * K)}\nm 1\n`;
    const { value, ms } = timed(() => parsePrometheusText(text));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value.errors).toEqual([]);
    expect(value.help).toEqual({ m: 'Requests\nserved.', n: '' });
    expect(value.types).toEqual({ m: 'counter' });
  });
});

describe('decimal numbers of the configuration and the command line', () => {
  // pins: DECIMAL `\d+\.?\d*` (env-schema and the CLI's number arguments) split a run of digits
  // two ways: 64 K digits and a letter took 5.7 s (16 K: 0.34 s); 256 K ~1.5 min. loadConfig caps a
  // variable at 4096 characters first (29 ms), envSchema itself does not.
  it.each(['1', '0', '12'])('envSchema: LLM_TIMEOUT of 256 K of %j and a letter', (digit) => {
    const { value, ms } = timed(() => envSchema.safeParse({ LLM_TIMEOUT: `${run(digit, 256 * K)}x` }));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value.success).toBe(false);
    expect(value.error?.issues[0]?.message).toContain('LLM_TIMEOUT must be a number');
    expect(envSchema.parse({ LLM_TIMEOUT: `${run('0', 64 * K)}45.50` }).LLM_TIMEOUT).toBe(45.5);
  });

  it.each([
    ['intArg', intArg('--limit', 1, 100)],
    ['sampleRateArg', sampleRateArg],
    ['pointsArg', pointsArg('--quality-drop')],
  ])('%s: 256 K digits and a letter', (_name, parse) => {
    const t0 = performance.now();
    expect(() => parse(`${run('1', 256 * K)}x`)).toThrow();
    expect(performance.now() - t0).toBeLessThan(BOUND_MS);
    expect(parse(`${run('0', 64 * K)}1`)).toBeGreaterThan(0);
  });
});

describe("queryRange: Prometheus' answer and the configured URL", () => {
  let asked: string[] = [];
  const answer = (values: Array<[number, string]>) =>
    vi.stubGlobal('fetch', async (url: string) => {
      asked.push(url);
      return new Response(JSON.stringify({ status: 'success', data: { resultType: 'matrix', result: [{ metric: {}, values }] } }), {
        status: 200,
      });
    });
  afterEach(() => {
    vi.unstubAllGlobals();
    asked = [];
  });
  const range = { start: '100', end: '200', stepSeconds: 10 };

  // pins: the same FLOAT expression read every sample value of query_range: a value of 64 K digits
  // and a letter took 6.1 s.
  it('a sample value of 256 K digits and a letter is refused', async () => {
    answer([[150, `${run('7', 256 * K)}x`]]);
    const t0 = performance.now();
    const err = await queryRange('http://prom.example:9090', 'up', range).catch((e: unknown) => e);
    expect(performance.now() - t0).toBeLessThan(BOUND_MS);
    expect(err).toBeInstanceOf(MetricsSourceError);
    expect((err as Error).message).toContain('is not a number');
  });

  // pins: `pathname.replace(/\/+$/, '')` scanned each slash's run to the end of the path: a base URL
  // of 64 K slashes and a name took 3.4 s (like normaliseBase); 256 K ~55 s.
  it('a base URL whose path is 256 K slashes and a name', async () => {
    answer([[150, '1']]);
    const t0 = performance.now();
    const r = await queryRange(`http://prom.example:9090/${run('/', 256 * K)}prom//`, 'up', range);
    expect(performance.now() - t0).toBeLessThan(BOUND_MS);
    expect(r).toEqual([{ metric: {}, values: [[150, 1]] }]);
    expect(new URL(asked[0]!).pathname).toBe(`/${run('/', 256 * K)}prom/api/v1/query_range`);
  });
});

describe('LLM narratives: numbers, markup and identifiers checked in linear time', () => {
  const user = renderDataBlock('ANALYSIS', { cost_usd: 5, subject: 'delete-me-7.example', link: 'https://ok.example/x' }, 'v1');

  // pins: SCALED_RE `(\d+(?:[.,]\d+)?)\s*(thousand|…)` was tried from every digit of a run:
  // numbersNotInAnalysis of 64 K digits took 9.0 s (16 K: 0.57 s); 256 K ~2.5 min.
  it.each([
    ['0', ['0', '3', '3 million']],
    ['1', ['3', '3 million']],
  ])('a reply of 256 K of %j and then an invented amount', (digit, expected) => {
    const { value, ms } = timed(() => numbersNotInAnalysis([`${run(digit, 256 * K)} 3 million`], user));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toEqual(expected);
  });

  // pins: MARKUP_RE's link `!?\[[^\]\n]*\]\(` scanned to the end of the line from every '[' of a
  // line of them: replyProblem of 64 K of '[' took 4.3 s (16 K: 0.27 s); 256 K ~70 s.
  it.each([
    ['[', undefined],
    ['![', undefined],
    ['[a', undefined],
    ['[<a ', undefined],
  ])('a reply of 256 K of %j holds no link', (pattern, expected) => {
    const { value, ms } = timed(() => replyProblem([run(pattern, 256 * K)], user));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toBe(expected);
  });

  it('a link after 256 K of "[" is still found, whole, and a link from the data is not markup', () => {
    const text = `${run('[', 256 * K)}](x) see https://ok.example/x`;
    const { value, ms } = timed(() => replyProblem([text], user));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toBe(`it holds markup or links, not plain text: ${run('[', 256 * K)}](x)`);
    expect(replyProblem(['see https://ok.example/x and ![i](y) <b>'], user)).toBe('it holds markup or links, not plain text: ![i](y), <b>');
  });

  // pins: the trailing-punctuation strip `[)"'’”.,;:!?]+$` of each token was tried from every
  // character of a token of them: replyProblem of 64 K of '!' and a letter took 6.0 s (16 K:
  // 0.43 s); 256 K ~1.5 min.
  it.each(['!', '?', '.', ':', ',;', '”'])('a token of 256 K of %j and a letter', (pattern) => {
    const { value, ms } = timed(() => replyProblem([`${run(pattern, 256 * K)}x delete it`], user));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toBe('it recommends actions that no finding recommends: delete');
  });

  it('an identifier from the data in quotes and punctuation is still no recommendation', () => {
    expect(replyProblem([`Stop “delete-me-7.example”.${run('!', 64 * K)}`], user)).toBeUndefined();
    expect(replyProblem(['Stop (delete-me-7.example), then (delete-me-8.example)!'], user)).toBe(
      'it recommends actions that no finding recommends: delete',
    );
  });

  // pins: each of a reply's amounts and identifier tokens was looked up with `includes` in the whole
  // data block (hundreds of KB): numbersNotInAnalysis of 256 K of '3 mn ' against 256 K of data
  // took 10 s, replyProblem of 256 K of 'q-1 ' 11.5 s (the product of the two lengths).
  it('many amounts and tokens against a large data block', () => {
    const big = renderDataBlock('ANALYSIS', { note: run('3 mi q-2 ', 256 * K) }, 'v1');
    const numbers = timed(() => numbersNotInAnalysis([run('3 mn ', 512 * K)], big));
    expect(numbers.ms).toBeLessThan(BOUND_MS);
    expect(numbers.value).toEqual(['3 mn']);
    const tokens = timed(() => replyProblem([`${run('q-1 ', 512 * K)} drop table users`], big));
    expect(tokens.ms).toBeLessThan(BOUND_MS);
    expect(tokens.value).toBe('it recommends actions that no finding recommends: drop table');
  });
});

describe('gate report: a reason of long blanks', () => {
  // pins: cell's `\s*[\r\n]+\s*` was tried from every blank of a run without a line break:
  // renderGateReport with a reason of 64 K blanks took 11.9 s (16 K: 0.59 s); 256 K ~3 min.
  it.each([' ', '\t', '\u00a0', ' \t'])('256 K of %j', (blank) => {
    const reason = `${run(blank, 256 * K)}x`;
    const { value, ms } = timed(() => renderGateReport(gateResult(undefined, { reason })));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toContain('- **Reason:** x\n');
  });

  it('a run of blanks holding a line break is still one space', () => {
    const reason = `a${run(' ', 64 * K)}\r\n${run('\t', 64 * K)}b`;
    const { value, ms } = timed(() => renderGateReport(gateResult(undefined, { reason })));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toContain('- **Reason:** a b\n');
  });
});

describe('trailing slashes of URLs', () => {
  // pins: normaliseBase's `\/+$` scanned each slash's run to the end: a base URL of 64 K slashes
  // and a name took 3.4 s (16 K: 0.23 s); 256 K ~55 s.
  it.each(['/', '\\'])('normaliseBase of a path of 256 K of %j and a name', (pattern) => {
    const url = `http://h.example/${run(pattern, 256 * K)}v1`;
    const { value, ms } = timed(() => normaliseBase(url));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toBe(new URL(url).toString());
  });

  it('normaliseBase still drops every trailing slash', () => {
    expect(normaliseBase(`http://h.example/openai/v1${run('/', 64 * K)}`)).toBe('http://h.example/openai/v1');
  });

  describe('the codec server, before the token is checked', () => {
    let server: CodecServer;
    beforeAll(async () => {
      const codec = new AesGcmCodec([{ id: 'k1', key: randomBytes(32), encoded: 'unused' }]);
      server = await startCodecServer({ port: 0, codec, token: 'token-0123456789abcdef', corsOrigin: 'http://127.0.0.1:8233' });
    });
    afterAll(async () => {
      await server?.close();
    });

    // pins: the request path's `\/+$` scanned each slash's run to the end: a path of a name, 16 K
    // slashes and a name (about all Node's 16 KB header limit lets through) took 0.28 s of the
    // server's CPU per request, before the token was checked; 60 of them ~17 s. (A path that starts
    // with '//' is read as a host, so the name first.)
    it('60 requests for a path of a name, 16,000 slashes and a name', async () => {
      const t0 = performance.now();
      for (let i = 0; i < 60; i++) {
        const r = await fetch(`${server.url}/a${run('/', 16_000)}encode`, { method: 'POST', body: '{}' });
        expect(r.status).toBe(404);
        await r.body?.cancel();
      }
      expect(performance.now() - t0).toBeLessThan(BOUND_MS);
      const ok = await fetch(`${server.url}/encode///`, { method: 'POST', body: '{}' });
      expect(ok.status).toBe(401);
    });
  });
});
