/**
 * Sources against hostile input: servers and files that would freeze, crash or exhaust a
 * collection cycle, lose records or leak credentials. Each case names what happens now.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_CURSOR_CHARS, MAX_PAGE_VALUES } from '../../activities/collector/http-source.js';
import { MAX_PAGE_BYTES, SourceError } from '../../activities/collector/source-contract.js';
import { createSource } from '../../activities/collector/sources.js';

const DEP = 'shop-bot';
const window = { oldest: Date.parse('2020-01-01T00:00:00Z'), newest: Date.parse('2030-01-01T00:00:00Z') };

function rec(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, deployment: DEP, model_version: 'v1', timestamp: '2025-01-02T03:04:05Z', prompt: `q ${id}`, response: `a ${id}`, ...extra };
}
const line = (o: unknown) => `${JSON.stringify(o)}\n`;
const page = (items: unknown[], next_cursor: string, has_more = false) => JSON.stringify({ items, next_cursor, has_more });

describe('HTTP source against hostile servers', () => {
  let server: http.Server;
  let other: http.Server;
  let base: string;
  let otherBase: string;
  let reply: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  let otherSeen: http.IncomingHttpHeaders[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => reply(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/feed`;
    other = http.createServer((req, res) => {
      otherSeen.push(req.headers);
      res.end(page([], '1'));
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    otherBase = `http://localhost:${(other.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const s of [server, other]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
  const source = (opts: { headers?: Record<string, string>; timeoutMs?: number } = {}) =>
    createSource({ type: 'http', url: base, ...(opts.headers ? { headers: opts.headers } : {}) }, DEP, {
      window,
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    });

  it('reads a JSON body that starts with a UTF-8 byte order mark', async () => {
    reply = (_req, res) => res.end(`\uFEFF${page([rec('bom-1')], '1')}`);
    const r = await source().fetch(null, 5);
    expect(r.records.map((x) => x.id)).toEqual(['bom-1']);
    expect(r).toMatchObject({ bad: [], nextCursor: '1', hasMore: false });
  });

  it('ends the cycle on a page without items, even with has_more and a new cursor (no endless paging)', async () => {
    let n = 0;
    reply = (_req, res) => res.end(page([], `c${++n}`, true));
    const r = await source().fetch('c0', 5);
    expect(r).toMatchObject({ records: [], bad: [], nextCursor: 'c1', hasMore: false });
  });

  it('refuses has_more with items and an unchanged next_cursor: the same page would be read forever', async () => {
    reply = (_req, res) => res.end(page([rec('same-1')], 'c7', true));
    const err = await source()
      .fetch('c7', 5)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as Error).message).toMatch(/has_more with next_cursor unchanged \("c7"\).*loop forever/);
  });

  it('refuses a next_cursor that is too long or cannot be stored', async () => {
    reply = (_req, res) => res.end(page([rec('long-1')], 'c'.repeat(MAX_CURSOR_CHARS + 1)));
    await expect(source().fetch(null, 5)).rejects.toThrow(
      `next_cursor of ${MAX_CURSOR_CHARS + 1} characters, more than the ${MAX_CURSOR_CHARS}`,
    );
    reply = (_req, res) => res.end(page([rec('nul-1')], 'a\u0000b'));
    await expect(source().fetch(null, 5)).rejects.toThrow(/next_cursor with control characters or invalid UTF-16 \("a\\u0000b"\)/);
    reply = (_req, res) => res.end('{"items":[],"next_cursor":"a\\ud800","has_more":false}');
    await expect(source().fetch(null, 5)).rejects.toThrow(/next_cursor with control characters or invalid UTF-16/);
    reply = (_req, res) => res.end(page([rec('ok-1')], 'c'.repeat(MAX_CURSOR_CHARS)));
    expect((await source().fetch(null, 5)).records).toHaveLength(1);
  });

  it('follows a redirect on the same host with its headers, and never sends them to another host', async () => {
    let seen: string | undefined;
    reply = (req, res) => {
      if (req.url?.startsWith('/feed')) {
        res.writeHead(302, { location: `/moved${req.url.slice('/feed'.length)}` });
        res.end();
        return;
      }
      seen = `${req.url} ${req.headers['x-api-key']}`;
      res.end(page([rec('moved-1')], '1'));
    };
    const r = await source({ headers: { 'x-api-key': 'KEY-1' } }).fetch('c0', 5);
    expect(r.records.map((x) => x.id)).toEqual(['moved-1']);
    expect(seen).toBe('/moved?cursor=c0&limit=5 KEY-1');

    otherSeen = [];
    reply = (_req, res) => {
      res.writeHead(302, { location: `${otherBase}/steal?x=1` });
      res.end();
    };
    const err = await source({ headers: { 'x-api-key': 'KEY-1' } })
      .fetch(null, 5)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as Error).message).toBe(
      `GET ${base} redirected (HTTP 302) to another host, ${otherBase}/steal: redirects to another host are not followed ` +
        "(the source's headers would be sent there); configure that URL as the source",
    );
    expect(otherSeen).toEqual([]);

    reply = (_req, res) => {
      res.writeHead(301, { location: '/feed' });
      res.end();
    };
    await expect(source().fetch(null, 5)).rejects.toThrow(`GET ${base} redirected more than 5 times (last to ${base})`);
  });

  it('refuses a page of millions of tiny values unparsed, in bounded time', async () => {
    const items = `${'{},'.repeat(MAX_PAGE_VALUES)}{}`;
    reply = (_req, res) => res.end(`{"items":[${items}],"next_cursor":"1","has_more":false}`);
    const t0 = Date.now();
    await expect(source().fetch(null, 5)).rejects.toThrow(`more than ${MAX_PAGE_VALUES} JSON values`);
    expect(Date.now() - t0).toBeLessThan(5000);
    // Commas and brackets inside strings are not values.
    const texts = Array.from({ length: 8 }, (_, i) => rec(`commas-${i}`, { response: ',[{'.repeat(300_000) }));
    reply = (_req, res) => res.end(page(texts, '1'));
    expect((await source().fetch(null, 10)).records).toHaveLength(8);
  });

  it('stops reading a compressed body once it inflates past the page limit', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(MAX_PAGE_BYTES + 1024 * 1024, 0x20));
    reply = (_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': bomb.length });
      res.end(bomb);
    };
    await expect(source().fetch(null, 5)).rejects.toThrow(`the page is more than the ${MAX_PAGE_BYTES}-byte limit`);
  });

  it('says which status an empty body came with', async () => {
    reply = (_req, res) => {
      res.statusCode = 204;
      res.end();
    };
    await expect(source().fetch(null, 5)).rejects.toThrow(`GET ${base} did not answer JSON (HTTP 204, empty body)`);
  });

  it('times out a body that trickles forever', async () => {
    reply = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"items":[');
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(' ')), 50);
    };
    const t0 = Date.now();
    await expect(source({ timeoutMs: 300 }).fetch(null, 5)).rejects.toThrow(/timed out after 0.3 s/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe('JSONL source against hostile files', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'hostile-sources-'));
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });
  const source = (p: string) => createSource({ type: 'jsonl', path: p }, DEP, { window });

  it.skipIf(process.platform === 'win32')(
    'refuses a FIFO or a device at once instead of blocking; ignores them in a directory',
    async () => {
      const fifo = path.join(tmp, 'pipe.jsonl');
      execFileSync('mkfifo', [fifo]);
      await expect(source(fifo).fetch(null, 5)).rejects.toThrow(`JSONL source ${fifo}: is a FIFO, not a JSONL file`);
      const zero = path.join(tmp, 'zero.jsonl');
      await symlink('/dev/zero', zero);
      await expect(source(zero).fetch(null, 5)).rejects.toThrow(`JSONL source ${zero}: is a device, not a JSONL file`);

      await writeFile(path.join(tmp, 'real.jsonl'), line(rec('r1')));
      const r = await source(tmp).fetch(null, 5);
      expect(r.records.map((x) => x.id)).toEqual(['r1']);
      expect(r.bad).toEqual([]);
    },
  );

  it('reads *.jsonl symlinks to regular files in a directory', async () => {
    const dir = path.join(tmp, 'logs');
    await mkdir(dir);
    await writeFile(path.join(tmp, 'target-a.jsonl'), line(rec('l1')) + line(rec('l2')));
    await symlink(path.join(tmp, 'target-a.jsonl'), path.join(dir, 'a.jsonl'));
    await symlink(path.join(tmp, 'missing.jsonl'), path.join(dir, 'b.jsonl')); // dangling: ignored
    await symlink(tmp, path.join(dir, 'c.jsonl')); // a directory: ignored
    await writeFile(path.join(dir, 'd.jsonl'), line(rec('l3')));
    const r = await source(dir).fetch(null, 10);
    expect(r.records.map((x) => x.id)).toEqual(['l1', 'l2', 'l3']);
    expect(r.bad).toEqual([]);
  });

  it('reads a file replaced by a longer one (rotation) again from its start instead of from the old offset', async () => {
    const file = path.join(tmp, 'log.jsonl');
    await writeFile(file, line(rec('o1')) + line(rec('o2')));
    const src = source(file);
    const p1 = await src.fetch(null, 10);
    expect(p1.records.map((x) => x.id)).toEqual(['o1', 'o2']);
    await writeFile(file, line(rec('n1')) + line(rec('n2')) + line(rec('n3')));
    const p2 = await src.fetch(p1.nextCursor, 10);
    expect(p2.records.map((x) => x.id)).toEqual(['n1', 'n2', 'n3']);
    expect(p2.bad).toEqual([
      {
        position: 'log.jsonl',
        reason: expect.stringMatching(
          /^file truncated or replaced since the last read \(cursor at line 3, byte \d+; its first bytes changed\)/,
        ),
      },
    ]);
    // Appends to the same file are read as before, without a notice.
    await writeFile(file, line(rec('n4')), { flag: 'a' });
    const p3 = await src.fetch(p2.nextCursor, 10);
    expect(p3).toMatchObject({ bad: [], hasMore: false });
    expect(p3.records.map((x) => x.id)).toEqual(['n4']);
    // A cursor written before the file fingerprint existed still works.
    const { head: _h, ...old } = JSON.parse(p2.nextCursor) as Record<string, unknown>;
    expect((await src.fetch(JSON.stringify(old), 10)).records.map((x) => x.id)).toEqual(['n4']);
  });

  it('stops a page at the byte limit so a page of large lines stays bounded in memory', async () => {
    const file = path.join(tmp, 'big.jsonl');
    const big = 'x'.repeat(900_000);
    const count = Math.ceil(MAX_PAGE_BYTES / big.length) + 3;
    await writeFile(file, Array.from({ length: count }, (_, i) => line(rec(`b${i}`, { prompt: big }))).join(''));
    const src = source(file);
    const p1 = await src.fetch(null, 1000);
    expect(p1.hasMore).toBe(true);
    expect(p1.records.length).toBeLessThan(count);
    expect(p1.records.length * big.length).toBeLessThanOrEqual(MAX_PAGE_BYTES + big.length);
    const p2 = await src.fetch(p1.nextCursor, 1000);
    expect(p2.hasMore).toBe(false);
    expect([...p1.records, ...p2.records].map((x) => x.id)).toEqual(Array.from({ length: count }, (_, i) => `b${i}`));
  });
});
