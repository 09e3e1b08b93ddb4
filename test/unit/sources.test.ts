import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_LINE_BYTES } from '../../activities/collector/jsonl-source.js';
import { parseRecord } from '../../activities/collector/record-parsing.js';
import { SourceError, type FetchResult, type InteractionSource } from '../../activities/collector/source-contract.js';
import { createSource, sourceConfigSchema } from '../../activities/collector/sources.js';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { truncateForJudge, truncateText } from '../../domain/judge/truncate.js';
import { MAX_RECORD_CHARS } from '../../domain/collector/record.js';
import { TEXT_BUDGET } from '../../common/types.js';

const DEP = 'shop-bot';

function rec(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    deployment: DEP,
    model_version: 'v1',
    timestamp: '2025-01-02T03:04:05Z',
    prompt: `question ${id}`,
    response: `answer ${id}`,
    ...extra,
  };
}
const line = (o: unknown) => `${JSON.stringify(o)}\n`;

/** Fetch pages until has_more is false; returns everything plus the final cursor. */
async function drain(src: InteractionSource, cursor: string | null, limit: number) {
  const all: FetchResult = { records: [], bad: [], nextCursor: cursor ?? '', hasMore: true };
  let c = cursor;
  for (let guard = 0; guard < 1000; guard++) {
    const r = await src.fetch(c, limit);
    all.records.push(...r.records);
    all.bad.push(...r.bad);
    c = r.nextCursor;
    all.nextCursor = r.nextCursor;
    all.hasMore = r.hasMore;
    if (!r.hasMore) return all;
  }
  throw new Error('did not finish');
}

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'sources-test-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('parseRecord', () => {
  it('accepts a valid record and normalises the timestamp', () => {
    const r = parseRecord(rec('a1', { timestamp: 1_700_000_000, context: 'ctx', metadata: { k: 1 } }), DEP, 'x:1');
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.record.timestamp).toBe('2023-11-14T22:13:20.000Z');
      expect(r.record.context).toBe('ctx');
      expect(r.record.metadata).toEqual({ k: 1 });
    }
  });

  it('rejects non-objects, missing fields, wrong types, wrong deployment and oversized records', () => {
    const bad = (raw: unknown) => {
      const r = parseRecord(raw, DEP, 'p:7');
      if (r.ok) throw new Error('expected a bad record');
      expect(r.bad.position).toBe('p:7');
      return r.bad;
    };
    expect(bad([1, 2]).reason).toMatch(/not a JSON object \(got array\)/);
    expect(bad('text').reason).toMatch(/got string/);
    expect(bad(null).reason).toMatch(/got null/);

    const { prompt: _p, ...noPrompt } = rec('a2');
    const missing = bad(noPrompt);
    expect(missing.reason).toMatch(/^prompt:/);
    expect(missing.id).toBe('a2');

    expect(bad(rec('a3', { response: 42 })).reason).toMatch(/response:/);
    expect(bad(rec('a4', { timestamp: 'yesterday-ish' })).reason).toMatch(/timestamp/);
    expect(bad(rec('bad id with spaces')).reason).toMatch(/^id:/);
    expect(bad(rec('a5', { prompt: '' })).reason).toMatch(/prompt must not be empty/);

    const other = bad(rec('a6', { deployment: 'other-bot' }));
    expect(other.reason).toBe(`deployment 'other-bot' does not match expected '${DEP}'`);
    expect(other.id).toBe('a6');

    const big = bad(rec('a7', { prompt: 'p'.repeat(MAX_RECORD_CHARS), response: 'rr' }));
    expect(big.reason).toBe(`oversized: ${MAX_RECORD_CHARS + 2} chars > ${MAX_RECORD_CHARS} budget`);
    expect(big.id).toBe('a7');
  });

  it('accepts a record exactly at the size limit', () => {
    const r = parseRecord(rec('a8', { prompt: 'p'.repeat(MAX_RECORD_CHARS - 10), response: 'r'.repeat(10) }), DEP, 'x');
    expect(r.ok).toBe(true);
  });
});

describe('sourceConfigSchema / createSource', () => {
  it('validates configs without echoing header values', () => {
    expect(sourceConfigSchema.safeParse({ type: 'jsonl', path: '' }).success).toBe(false);
    expect(sourceConfigSchema.safeParse({ type: 'http', url: 'not a url' }).success).toBe(false);
    expect(sourceConfigSchema.safeParse({ type: 'ftp', path: 'x' }).success).toBe(false);
    expect(sourceConfigSchema.safeParse({ type: 'http', url: 'http://x/y', headers: { authorization: 'Bearer t' } }).success).toBe(true);
    expect(() => createSource({ type: 'http', url: 'nope', headers: { authorization: 'Bearer SECRET-123' } }, DEP)).toThrow(SourceError);
    try {
      createSource({ type: 'http', url: 'nope', headers: { authorization: 'Bearer SECRET-123' } }, DEP);
    } catch (e) {
      expect((e as Error).message).not.toContain('SECRET-123');
    }
  });
});

describe('JSONL source: one file', () => {
  it('reads pages, resumes from the cursor, picks up appended lines and holds back a partial last line', async () => {
    const file = path.join(tmp, 'log.jsonl');
    await writeFile(file, [1, 2, 3, 4, 5].map((i) => line(rec(`r${i}`))).join(''));
    const src = createSource({ type: 'jsonl', path: file }, DEP);
    expect(src.kind).toBe('jsonl');

    const p1 = await src.fetch(null, 2);
    expect(p1.records.map((r) => r.id)).toEqual(['r1', 'r2']);
    expect(p1.hasMore).toBe(true);
    const p2 = await src.fetch(p1.nextCursor, 2);
    expect(p2.records.map((r) => r.id)).toEqual(['r3', 'r4']);
    expect(p2.hasMore).toBe(true);
    const p3 = await src.fetch(p2.nextCursor, 2);
    expect(p3.records.map((r) => r.id)).toEqual(['r5']);
    expect(p3.hasMore).toBe(false);

    // Re-reading from the same cursor is repeatable.
    const again = await src.fetch(p1.nextCursor, 2);
    expect(again.records.map((r) => r.id)).toEqual(['r3', 'r4']);
    expect(again.nextCursor).toBe(p2.nextCursor);

    // Nothing new: empty page, same cursor.
    const idle = await src.fetch(p3.nextCursor, 10);
    expect(idle.records).toEqual([]);
    expect(idle.bad).toEqual([]);
    expect(idle.hasMore).toBe(false);
    expect(idle.nextCursor).toBe(p3.nextCursor);

    // Append one full line and half of another.
    const half = JSON.stringify(rec('r7'));
    await appendFile(file, line(rec('r6')) + half.slice(0, 20));
    const p4 = await src.fetch(p3.nextCursor, 10);
    expect(p4.records.map((r) => r.id)).toEqual(['r6']);
    expect(p4.bad).toEqual([]);
    expect(p4.hasMore).toBe(false);

    // The writer finishes the line: now it is consumed, with its real line number.
    await appendFile(file, `${half.slice(20)}\n`);
    const p5 = await src.fetch(p4.nextCursor, 10);
    expect(p5.records.map((r) => r.id)).toEqual(['r7']);
    expect(p5.bad).toEqual([]);

    await appendFile(file, '{broken\n');
    const p6 = await src.fetch(p5.nextCursor, 10);
    expect(p6.bad).toHaveLength(1);
    expect(p6.bad[0]!.position).toBe('log.jsonl:8');
    expect(p6.bad[0]!.reason).toMatch(/^invalid JSON/);
  });

  it('reports every bad line with its position and keeps the good ones', async () => {
    const file = path.join(tmp, 'mixed.jsonl');
    const { response: _r, ...noResponse } = rec('m3');
    await writeFile(
      file,
      [
        line(rec('m1')),
        'not json at all\n',
        '\n', // blank lines are skipped, but still counted for positions
        line(noResponse),
        line(rec('m4', { model_version: 7 })),
        line(rec('m5', { deployment: 'someone-else' })),
        line(rec('m6', { response: 'x'.repeat(MAX_RECORD_CHARS) })),
        line(rec('m1', { response: 'second copy' })),
        line([1, 2, 3]),
        line(rec('m9')),
        '\r\n',
        `${JSON.stringify(rec('m10'))}\r\n`, // CRLF line endings are fine
      ].join(''),
    );
    const src = createSource({ type: 'jsonl', path: file }, DEP);
    const r = await src.fetch(null, 100);
    expect(r.records.map((x) => x.id)).toEqual(['m1', 'm9', 'm10']);
    expect(r.records[0]!.response).toBe('answer m1');
    expect(r.bad.map((b) => [b.position, b.id])).toEqual([
      ['mixed.jsonl:2', undefined],
      ['mixed.jsonl:4', 'm3'],
      ['mixed.jsonl:5', 'm4'],
      ['mixed.jsonl:6', 'm5'],
      ['mixed.jsonl:7', 'm6'],
      ['mixed.jsonl:8', 'm1'],
      ['mixed.jsonl:9', undefined],
    ]);
    const reasons = r.bad.map((b) => b.reason);
    expect(reasons[0]).toMatch(/^invalid JSON/);
    expect(reasons[1]).toMatch(/^response:/);
    expect(reasons[2]).toMatch(/^model_version:/);
    expect(reasons[3]).toMatch(/does not match expected 'shop-bot'/);
    expect(reasons[4]).toMatch(/^oversized: \d+ chars > 1000000 budget$/);
    expect(reasons[5]).toBe('duplicate id (first seen at mixed.jsonl:1)');
    expect(reasons[6]).toMatch(/not a JSON object/);
    expect(r.hasMore).toBe(false);
  });

  it('counts bad lines against the limit so pages stay bounded', async () => {
    const file = path.join(tmp, 'bad.jsonl');
    await writeFile(file, 'x\ny\nz\n' + line(rec('ok1')));
    const src = createSource({ type: 'jsonl', path: file }, DEP);
    const p1 = await src.fetch(null, 2);
    expect(p1.records).toEqual([]);
    expect(p1.bad.map((b) => b.position)).toEqual(['bad.jsonl:1', 'bad.jsonl:2']);
    expect(p1.hasMore).toBe(true);
    const p2 = await src.fetch(p1.nextCursor, 2);
    expect(p2.bad.map((b) => b.position)).toEqual(['bad.jsonl:3']);
    expect(p2.records.map((x) => x.id)).toEqual(['ok1']);
    expect(p2.hasMore).toBe(false);
  });

  it('rejects an over-long line without parsing it and continues after it', async () => {
    const file = path.join(tmp, 'long.jsonl');
    await writeFile(file, `"${'a'.repeat(MAX_LINE_BYTES)}"\n` + line(rec('after')));
    const src = createSource({ type: 'jsonl', path: file }, DEP);
    const r = await src.fetch(null, 10);
    expect(r.bad).toHaveLength(1);
    expect(r.bad[0]!.position).toBe('long.jsonl:1');
    expect(r.bad[0]!.reason).toMatch(/^oversized: line of \d+ bytes/);
    expect(r.records.map((x) => x.id)).toEqual(['after']);
  });

  it('throws SourceError naming the path when the file is missing, and on a foreign cursor; re-reads a truncated file', async () => {
    const missing = path.join(tmp, 'nope.jsonl');
    const src = createSource({ type: 'jsonl', path: missing }, DEP);
    await expect(src.fetch(null, 10)).rejects.toThrow(SourceError);
    await expect(src.fetch(null, 10)).rejects.toThrow(missing);

    const file = path.join(tmp, 'a.jsonl');
    await writeFile(file, line(rec('t1')) + line(rec('t2')));
    const a = createSource({ type: 'jsonl', path: file }, DEP);
    const p = await a.fetch(null, 10);
    await expect(a.fetch('garbage', 10)).rejects.toThrow(/not a JSONL cursor/);
    await writeFile(file, line(rec('t0'))); // truncated and rewritten underneath us
    const again = await a.fetch(p.nextCursor, 10);
    expect(again.records.map((r) => r.id)).toEqual(['t0']);
    expect(again.bad).toEqual([
      { position: 'a.jsonl', reason: expect.stringMatching(/truncated or replaced .* read again from its start/) },
    ]);

    const other = path.join(tmp, 'b.jsonl');
    await writeFile(other, line(rec('t3')));
    await expect(createSource({ type: 'jsonl', path: other }, DEP).fetch(p.nextCursor, 10)).rejects.toThrow(/belongs to file 'a.jsonl'/);
    await expect(a.fetch(null, 0)).rejects.toThrow(RangeError);
  });
});

describe('JSONL source: directory', () => {
  it('reads *.jsonl files in name order, resumes across files and picks up new files', async () => {
    const dir = path.join(tmp, 'logs');
    await mkdir(dir);
    await writeFile(path.join(dir, '2025-01-02.jsonl'), line(rec('b1')) + line(rec('b2')));
    await writeFile(path.join(dir, '2025-01-01.jsonl'), line(rec('a1')) + line(rec('a2')) + '{"partial":');
    await writeFile(path.join(dir, 'notes.txt'), 'ignored');
    await mkdir(path.join(dir, 'sub.jsonl')); // a directory, ignored
    const src = createSource({ type: 'jsonl', path: dir }, DEP);

    const p1 = await src.fetch(null, 3);
    expect(p1.records.map((r) => r.id)).toEqual(['a1', 'a2']);
    // The unterminated tail of a file that is followed by another file is final: it is consumed (as bad).
    expect(p1.bad).toEqual([expect.objectContaining({ position: '2025-01-01.jsonl:3' })]);
    expect(p1.hasMore).toBe(true);

    const p2 = await src.fetch(p1.nextCursor, 3);
    expect(p2.records.map((r) => r.id)).toEqual(['b1', 'b2']);
    expect(p2.hasMore).toBe(false);

    // The last file grows, with a partial line held back; then a new file appears.
    await appendFile(path.join(dir, '2025-01-02.jsonl'), line(rec('b3')) + '{"id":"b4"');
    const p3 = await src.fetch(p2.nextCursor, 10);
    expect(p3.records.map((r) => r.id)).toEqual(['b3']);
    expect(p3.bad).toEqual([]);

    await writeFile(path.join(dir, '2025-01-03.jsonl'), line(rec('c1')) + line(rec('b3', { response: 'dup in page' })));
    const p4 = await src.fetch(p3.nextCursor, 10);
    // Now that a later file exists, the tail of 2025-01-02 is final and reported; b3 again is
    // not a duplicate inside this page (its first copy was in the previous page).
    expect(p4.records.map((r) => r.id)).toEqual(['c1', 'b3']);
    expect(p4.bad.map((b) => b.position)).toEqual(['2025-01-02.jsonl:4']);
    expect(p4.bad[0]!.reason).toMatch(/^invalid JSON/);

    const all = await drain(src, null, 2);
    expect(all.records.map((r) => r.id)).toEqual(['a1', 'a2', 'b1', 'b2', 'b3', 'c1', 'b3']);
    expect(all.bad.map((b) => b.position)).toEqual(['2025-01-01.jsonl:3', '2025-01-02.jsonl:4']);
  });

  it('returns an empty page for an empty directory and starts when the first file appears', async () => {
    const dir = path.join(tmp, 'empty');
    await mkdir(dir);
    const src = createSource({ type: 'jsonl', path: dir }, DEP);
    const p = await src.fetch(null, 5);
    expect(p).toMatchObject({ records: [], bad: [], hasMore: false });
    await writeFile(path.join(dir, 'x.jsonl'), line(rec('x1')));
    const q = await src.fetch(p.nextCursor, 5);
    expect(q.records.map((r) => r.id)).toEqual(['x1']);
  });

  it('continues with the next file when the cursor file was removed', async () => {
    const dir = path.join(tmp, 'rot');
    await mkdir(dir);
    await writeFile(path.join(dir, 'a.jsonl'), line(rec('a1')) + line(rec('a2')));
    const src = createSource({ type: 'jsonl', path: dir }, DEP);
    const p = await src.fetch(null, 1);
    expect(p.records.map((r) => r.id)).toEqual(['a1']);
    await rm(path.join(dir, 'a.jsonl'));
    await writeFile(path.join(dir, 'b.jsonl'), line(rec('b1')));
    const q = await src.fetch(p.nextCursor, 5);
    expect(q.records.map((r) => r.id)).toEqual(['b1']);
  });
});

describe('HTTP source against the simulator', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ deployment: DEP, modelVersion: 'v1', degradedShare: 0.2, seed: 7 });
  });
  afterAll(async () => {
    await sim.close();
  });

  it('pages with the cursor until has_more is false, and reports injected bad items', async () => {
    const base = sim.url.replace(/\/interactions$/, '');
    expect(sim.generate(5)).toBe(5);
    const inject = async (raw: unknown) => {
      const res = await fetch(`${base}/admin/inject`, { method: 'POST', body: JSON.stringify({ raw }) });
      expect(res.status).toBe(200);
    };
    await inject('just a string');
    await inject(rec('x-1', { deployment: 'other' }));
    await inject({ ...rec(`${DEP}-00000002`), deployment: DEP }); // duplicate of a generated id
    sim.generate(4);
    expect(sim.count()).toBe(12);

    const src = createSource({ type: 'http', url: sim.url, headers: { authorization: 'Bearer not-used' } }, DEP);
    expect(src.kind).toBe('http');
    const p1 = await src.fetch(null, 5);
    expect(p1.records).toHaveLength(5);
    expect(p1.records[0]!.id).toBe(`${DEP}-00000000`);
    expect(p1.hasMore).toBe(true);
    expect(p1.nextCursor).toBe('5');

    const p2 = await src.fetch(p1.nextCursor, 5);
    // items 5..9: string, wrong deployment, duplicate (not within this page, so accepted), 2 generated
    expect(p2.bad.map((b) => b.position)).toEqual(['page 5 item 0', 'page 5 item 1']);
    expect(p2.bad[0]!.reason).toMatch(/not a JSON object/);
    expect(p2.bad[1]!.reason).toMatch(/does not match expected/);
    expect(p2.records.map((r) => r.id)).toEqual([`${DEP}-00000002`, `${DEP}-00000005`, `${DEP}-00000006`]);

    const rest = await drain(src, p2.nextCursor, 5);
    expect(rest.records.map((r) => r.id)).toEqual([`${DEP}-00000007`, `${DEP}-00000008`]);
    expect(rest.hasMore).toBe(false);
    expect(rest.nextCursor).toBe('12');

    // Duplicates inside one page are reported.
    const whole = await src.fetch(null, 100);
    expect(whole.records).toHaveLength(9);
    expect(whole.bad.map((b) => b.reason)).toEqual([
      expect.stringMatching(/not a JSON object/),
      expect.stringMatching(/does not match/),
      'duplicate id (first seen at page start item 2)',
    ]);
    expect(whole.bad[2]!.position).toBe('page start item 7');

    // A record texts validate end to end.
    const r0 = whole.records[0]!;
    expect(r0.deployment).toBe(DEP);
    expect(r0.model_version).toBe('v1');
    expect(typeof r0.context).toBe('string');
    expect(r0.metadata).toMatchObject({ simulated: true, source_row: 0 });
  });

  it('turns a 4xx from the server into a SourceError', async () => {
    const src = createSource({ type: 'http', url: sim.url }, DEP);
    await expect(src.fetch('99999', 5)).rejects.toThrow(/HTTP 400/);
    await expect(src.fetch('not-a-number', 5)).rejects.toBeInstanceOf(SourceError);
  });

  it('throws SourceError when the server is down, naming the URL but not header values', async () => {
    const down = await startSimulator({ deployment: DEP, modelVersion: 'v1', degradedShare: 0 });
    const url = down.url;
    await down.close();
    const src = createSource({ type: 'http', url, headers: { authorization: 'Bearer TOKEN-XYZ' } }, DEP);
    const err = await src.fetch(null, 5).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as Error).message).toContain(url);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect((err as Error).message).not.toContain('TOKEN-XYZ');
  });
});

describe('HTTP source against misbehaving servers', () => {
  let server: http.Server;
  let base: string;
  let reply: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  beforeAll(async () => {
    server = http.createServer((req, res) => reply(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/feed`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('garbage body -> SourceError', async () => {
    reply = (_req, res) => res.end('<html>oops</html>');
    const src = createSource({ type: 'http', url: base }, DEP);
    await expect(src.fetch(null, 5)).rejects.toThrow(/did not answer JSON/);
  });

  it('wrong shape -> SourceError', async () => {
    reply = (_req, res) => res.end(JSON.stringify({ data: [], next: 1 }));
    const src = createSource({ type: 'http', url: base }, DEP);
    await expect(src.fetch(null, 5)).rejects.toThrow(/unexpected shape/);
  });

  it('500 -> SourceError with the status', async () => {
    reply = (_req, res) => {
      res.statusCode = 500;
      res.end('internal');
    };
    const src = createSource({ type: 'http', url: base }, DEP);
    await expect(src.fetch(null, 5)).rejects.toThrow(/HTTP 500: internal/);
  });

  it('has_more without progress -> SourceError', async () => {
    reply = (_req, res) => res.end(JSON.stringify({ items: [], next_cursor: 'c1', has_more: true }));
    const src = createSource({ type: 'http', url: base }, DEP);
    await expect(src.fetch('c1', 5)).rejects.toThrow(/would loop forever/);
  });

  it('sends cursor, limit and headers as documented', async () => {
    let seen: { url?: string; auth?: string } = {};
    reply = (req, res) => {
      seen = { url: req.url, auth: req.headers.authorization };
      res.end(JSON.stringify({ items: [rec('h1')], next_cursor: 'abc/2', has_more: false }));
    };
    const src = createSource({ type: 'http', url: `${base}?tenant=t1`, headers: { Authorization: 'Bearer t' } }, DEP);
    const r = await src.fetch('abc/1', 25);
    expect(seen.url).toBe('/feed?tenant=t1&cursor=abc%2F1&limit=25');
    expect(seen.auth).toBe('Bearer t');
    expect(r).toMatchObject({ nextCursor: 'abc/2', hasMore: false, bad: [] });
    await src.fetch(null, 3);
    expect(seen.url).toBe('/feed?tenant=t1&limit=3');
  });

  it('timeout -> SourceError', async () => {
    reply = () => undefined; // never answers
    const src = createSource({ type: 'http', url: base }, DEP, { timeoutMs: 200 });
    await expect(src.fetch(null, 5)).rejects.toThrow(/timed out after 0.2 s/);
  });
});

describe('truncateForJudge', () => {
  it('leaves texts within budget untouched', () => {
    const r = truncateForJudge({ prompt: 'p', response: 'r' });
    expect(r).toEqual({ input: { prompt: 'p', response: 'r' }, truncated: false });
    expect('context' in r.input).toBe(false);
    const exact = 'x'.repeat(TEXT_BUDGET.prompt);
    expect(truncateForJudge({ prompt: exact, response: '', context: 'c' })).toEqual({
      input: { prompt: exact, response: '', context: 'c' },
      truncated: false,
    });
  });

  it('cuts each field to its budget on a word boundary with a visible marker', () => {
    const words = (n: number) => Array.from({ length: n }, (_, i) => `word${i}`).join(' ');
    const prompt = words(3000); // ~ 25k chars
    const context = words(5000);
    const r = truncateForJudge({ prompt, response: 'short', context });
    expect(r.truncated).toBe(true);
    expect(r.input.response).toBe('short');
    for (const [field, text, budget] of [
      ['prompt', prompt, TEXT_BUDGET.prompt],
      ['context', context, TEXT_BUDGET.context],
    ] as const) {
      const out = r.input[field]!;
      expect(out.length).toBeLessThanOrEqual(budget);
      const m = /^(.*) \[\.\.\.truncated (\d+) chars\]$/s.exec(out);
      expect(m, field).not.toBeNull();
      const head = m![1]!;
      expect(text.startsWith(head)).toBe(true);
      expect(Number(m![2])).toBe(text.length - head.length);
      expect(text[head.length]).toBe(' '); // cut on a word boundary
      expect(head.length).toBeGreaterThan(budget * 0.9);
    }
  });

  it('hard-cuts text without whitespace and never splits a surrogate pair', () => {
    const t = truncateText('a'.repeat(100), 50);
    expect(t.text.length).toBeLessThanOrEqual(50);
    expect(t.text).toMatch(/^a+ \[\.\.\.truncated \d+ chars\]$/);
    expect(t.cutChars).toBe(100 - t.text.indexOf(' '));

    const emoji = '😀'.repeat(100); // 200 code units
    const e = truncateText(emoji, 51);
    const head = e.text.slice(0, e.text.indexOf(' '));
    expect(head.length % 2).toBe(0);
    expect(emoji.startsWith(head)).toBe(true);
    expect(e.text.length).toBeLessThanOrEqual(51);

    const r = truncateForJudge({ prompt: 'p', response: 'y'.repeat(TEXT_BUDGET.response + 1) });
    expect(r.truncated).toBe(true);
    expect(r.input.response.length).toBeLessThanOrEqual(TEXT_BUDGET.response);
    expect(r.input.response).toMatch(/truncated \d+ chars\]$/);
  });
});
