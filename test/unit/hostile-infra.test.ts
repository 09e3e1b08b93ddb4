/**
 * Hostile inputs to the infrastructure importers (FOCUS CSV, `/metrics`, Prometheus' query_range)
 * and to storing agent findings in PostgreSQL.
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FocusError, readFocusDirectory } from '../../activities/infra/focus.js';
import { MetricsSourceError, queryRange, scrapeMetrics } from '../../activities/infra/prometheus.js';
import { type AgentRunRecord, recordAgentRun, recordReview } from '../../activities/storage/postgres/agents.js';
import type { Db } from '../../activities/storage/postgres/db.js';
import type { Finding } from '../../domain/agents/types.js';
import { parsePrometheusText } from '../../domain/infra/prometheus-text.js';

const HEADER =
  'BilledCost,EffectiveCost,ChargePeriodStart,ChargePeriodEnd,ResourceId,ResourceType,ServiceName,RegionId,SkuId,ConsumedQuantity,ConsumedUnit,Tags';
const csvField = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
function row(o: { cost?: string; start?: string; end?: string; id?: string; tags?: string } = {}): string {
  return [
    o.cost ?? '1',
    o.cost ?? '1',
    o.start ?? '2025-06-01',
    o.end ?? '2025-06-02',
    o.id ?? 'r1',
    'VM',
    'svc',
    'us',
    'sku',
    '1',
    'Hours',
    o.tags ?? '',
  ]
    .map(csvField)
    .join(',');
}

const tmpDirs: string[] = [];
function dirWith(files: Record<string, string | Buffer>): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'hostile-infra-'));
  tmpDirs.push(d);
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(d, name), content);
  return d;
}
afterEach(() => {
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function focusError(dir: string): Promise<FocusError> {
  const err = await readFocusDirectory(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FocusError);
  return err as FocusError;
}

describe('FOCUS import: files that cannot be used are FocusErrors naming the file', () => {
  it('a header naming a required column twice', async () => {
    const dir = dirWith({ 'a.csv': `${HEADER},EffectiveCost\n${row()},999\n` });
    const err = await focusError(dir);
    expect(err.message).toBe(
      `${path.join(dir, 'a.csv')} is not a usable FOCUS export: column EffectiveCost appears more than once in the header`,
    );
    expect(err.file).toBe(path.join(dir, 'a.csv'));
  });

  it('a gzip file named .csv', async () => {
    const dir = dirWith({ 'a.csv': gzipSync(`${HEADER}\n${row()}\n`) });
    expect((await focusError(dir)).message).toBe(`${path.join(dir, 'a.csv')} is gzip-compressed, not CSV: decompress it first`);
  });

  it('a directory of .csv.gz exports says they must be decompressed, not that it is empty', async () => {
    const dir = dirWith({ 'a.csv.gz': gzipSync(`${HEADER}\n`), 'b.csv.gz': gzipSync(`${HEADER}\n`) });
    expect((await focusError(dir)).message).toBe(
      `no FOCUS export (*.csv) in ${dir}: 2 compressed files (a.csv.gz, b.csv.gz) must be decompressed first`,
    );
  });

  it('a record longer than the bound (an unclosed quote in a large file) names the file and line', async () => {
    const dir = dirWith({ 'a.csv': `${HEADER}\n${row()}\n1,1,2025-06-01,2025-06-02,"${'x'.repeat(5 * 1024 * 1024)}\n` });
    const err = await focusError(dir);
    expect(err.message).toMatch(
      /^cannot parse .*a\.csv near line \d+: a record is longer than 4194304 characters \(an unclosed quote, or not a FOCUS export\)$/,
    );
  });

  it('Tags nested too deeply are one bad row, not a failed file', async () => {
    const deep = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const r = await readFocusDirectory(dirWith({ 'a.csv': `${HEADER}\n${row({ tags: deep })}\n${row({ id: 'ok' })}\n` }));
    expect(r.bad).toEqual([{ position: 'a.csv:2', reason: "Tags value of 'a' is nested too deeply" }]);
    expect(r.rows.map((x) => x.resourceId)).toEqual(['ok']);
  });

  it('reads a CSV reached through a symbolic link (as in a Kubernetes ConfigMap volume), skips a FIFO', async () => {
    const real = dirWith({ 'a.csv': `${HEADER}\n${row({ id: 'linked' })}\n` });
    const dir = dirWith({});
    symlinkSync(path.join(real, 'a.csv'), path.join(dir, 'link.csv'));
    const r = await readFocusDirectory(dir);
    expect(r.rows.map((x) => x.resourceId)).toEqual(['linked']);
  });

  it('BOM, CRLF and quoted fields with commas and newlines keep their values and positions', async () => {
    const r = await readFocusDirectory(dirWith({ 'a.csv': `\ufeff${HEADER}\r\n${row({ id: 'a,\nb' })}\r\n${row({ cost: 'x' })}\r\n` }));
    expect(r.rows.map((x) => x.resourceId)).toEqual(['a,\nb']);
    expect(r.bad).toEqual([{ position: 'a.csv:4', reason: "BilledCost 'x' is not a number" }]);
  });
});

describe('FOCUS import: numbers and dates that would be silently wrong are bad rows', () => {
  it.each([
    ['1e308', 'BilledCost 1e308 is beyond ±1000000000000: not a plausible amount for one row'],
    ['-2e13', 'BilledCost -2e13 is beyond ±1000000000000: not a plausible amount for one row'],
    ['1,234.50', "BilledCost '1,234.50' is not a number"],
    ['$12', "BilledCost '$12' is not a number"],
    ['NaN', "BilledCost 'NaN' is not a number"],
  ])('cost %s', async (cost, reason) => {
    const r = await readFocusDirectory(dirWith({ 'a.csv': `${HEADER}\n${row({ cost })}\n` }));
    expect(r.rows).toEqual([]);
    expect(r.bad).toEqual([{ position: 'a.csv:2', reason }]);
  });

  it('a negative cost (a credit) is kept', async () => {
    const r = await readFocusDirectory(dirWith({ 'a.csv': `${HEADER}\n${row({ cost: '-5' })}\n` }));
    expect(r.rows.map((x) => x.effectiveCost)).toEqual([-5]);
  });

  it.each([
    ['1999-12-31', '2000-01-01', 'ChargePeriodStart 1999-12-31T00:00:00.000Z is before 2000-01-01'],
    ['2999-01-01', '2999-01-02', 'ChargePeriodEnd 2999-01-02T00:00:00.000Z is more than a year in the future'],
    ['2025-06-02', '2025-06-01', 'ChargePeriodEnd 2025-06-01T00:00:00.000Z is before ChargePeriodStart 2025-06-02T00:00:00.000Z'],
  ])('charge period %s .. %s', async (start, end, reason) => {
    const r = await readFocusDirectory(dirWith({ 'a.csv': `${HEADER}\n${row({ start, end })}\n` }));
    expect(r.bad).toEqual([{ position: 'a.csv:2', reason }]);
  });

  it('time zones are converted to UTC', async () => {
    const r = await readFocusDirectory(
      dirWith({ 'a.csv': `${HEADER}\n${row({ start: '2025-06-01T05:30+05:30', end: '2025-06-01T01:00:00-0100' })}\n` }),
    );
    expect(r.rows[0]).toMatchObject({ chargePeriodStart: '2025-06-01T00:00:00.000Z', chargePeriodEnd: '2025-06-01T02:00:00.000Z' });
  });

  it('rows in another BillingCurrency are bad rows, USD rows are kept', async () => {
    const r = await readFocusDirectory(
      dirWith({ 'a.csv': `${HEADER},BillingCurrency\n${row()},USD\n${row({ cost: '7' })},EUR\n${row()},\n` }),
    );
    expect(r.rows).toHaveLength(2);
    expect(r.bad).toEqual([{ position: 'a.csv:3', reason: "BillingCurrency 'EUR' is not USD (costs are read as USD)" }]);
  });

  it('NUL, control characters and lone surrogates in ids and tags become U+FFFD', async () => {
    const r = await readFocusDirectory(
      dirWith({ 'a.csv': `${HEADER}\n${row({ id: 'r\u00001\u001b', tags: '{"k\\u0000":"v\\ud800"}' })}\n` }),
    );
    expect(r.rows[0]!.resourceId).toBe('r\ufffd1\ufffd');
    expect(r.rows[0]!.tags).toEqual({ 'k\ufffd': 'v\ufffd' });
  });
});

describe('Prometheus sources: bounded answers and dates', () => {
  let server: http.Server;
  let base = '';
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const url = req.url ?? '';
      if (url.startsWith('/hang')) return;
      if (url.startsWith('/huge')) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let n = 0;
        const write = () => {
          while (n < 64 && res.write(`${'a 1\n'.repeat(16_384)}`)) n++;
          if (n < 64) res.once('drain', write);
          else res.end();
        };
        write();
        return;
      }
      if (url.startsWith('/far-ts')) return void res.end('a 1 9000000000000000\nb 2\n');
      const ts = /^\/ts\/(-?[0-9]+)$/.exec(url);
      if (ts) return void res.end(`a 1 ${ts[1]}\nb 2\n`);
      if (url.startsWith('/api/v1/query_range')) {
        res.setHeader('content-type', 'application/json');
        const query = new URL(url, 'http://x').searchParams.get('query');
        const t = query === 'far' ? 1e20 : query === 'millis' ? 1_750_000_000_000 : 1_750_000_000;
        return void res.end(
          JSON.stringify({
            status: 'success',
            data: { resultType: 'matrix', result: [{ metric: { __name__: 'x' }, values: [[t, 'NaN']] }] },
          }),
        );
      }
      res.setHeader('content-type', 'text/html');
      res.end('<html><body>login</body></html>');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  async function sourceError(p: Promise<unknown>): Promise<MetricsSourceError> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MetricsSourceError);
    return err as MetricsSourceError;
  }

  it('an answer larger than maxBytes is refused while it is read', async () => {
    const err = await sourceError(scrapeMetrics(`${base}/huge`, { maxBytes: 1024 * 1024, timeoutMs: 5000 }));
    expect(err.reason).toBe('invalid-response');
    expect(err.message).toBe(`${base}/huge: answer larger than 1048576 bytes`);
  });

  it('a server that never answers is a timeout', async () => {
    const err = await sourceError(scrapeMetrics(`${base}/hang`, { timeoutMs: 300 }));
    expect(err.reason).toBe('timeout');
  });

  it('an HTML page is garbage, naming the content type', async () => {
    const err = await sourceError(scrapeMetrics(`${base}/`));
    expect(err.reason).toBe('garbage');
    expect(err.message).toContain('content-type text/html');
  });

  it('an exposition timestamp beyond what a Date holds is a bad line, not a crash', async () => {
    expect(parsePrometheusText('a 1 9000000000000000\n').errors).toEqual([
      { line: 1, reason: "timestamp out of range '9000000000000000'" },
    ]);
    const samples = await scrapeMetrics(`${base}/far-ts`, { now: () => new Date('2025-06-01T00:00:00Z') });
    expect(samples).toEqual([{ ts: '2025-06-01T00:00:00.000Z', metric: 'b', labels: {}, value: 2 }]);
  });

  it('a query_range sample time beyond what a Date holds is an invalid response', async () => {
    const err = await sourceError(queryRange(base, 'far', { start: '0', end: '1', stepSeconds: 15 }));
    expect(err.reason).toBe('invalid-response');
    expect(err.message).toContain('sample time 100000000000000000000 is not a unix time in seconds');
    const ok = await queryRange(base, 'near', { start: '1749999000', end: '2025-06-15T16:00:00Z', stepSeconds: 15 });
    expect(ok[0]!.values[0]![0]).toBe(1_750_000_000);
    expect(ok[0]!.values[0]![1]).toBeNaN();
  });

  it('query_range sample times outside the range asked (an answer in milliseconds) are an invalid response', async () => {
    const range = { start: '2025-06-15T14:00:00Z', end: '1750003200', stepSeconds: 60 };
    for (const query of ['millis', 'near']) {
      const err = await sourceError(queryRange(base, query, query === 'near' ? { ...range, start: '1750000061' } : range));
      expect(err.reason).toBe('invalid-response');
      expect(err.message).toMatch(
        /sample time 1750000000(000)? is outside the range asked \(.* to 1750003200\); Prometheus answers in unix seconds$/,
      );
    }
    // One step of slack either side, as Prometheus aligns samples to the step.
    expect(await queryRange(base, 'near', { ...range, start: '1750000060' })).toHaveLength(1);
  });

  it('exposition timestamps in seconds, before 2000 or a day after the scrape are refused, naming the mistake', async () => {
    const now = () => new Date('2025-06-15T14:00:00Z');
    const seconds = await sourceError(scrapeMetrics(`${base}/ts/1749995000`, { now }));
    expect(seconds.reason).toBe('garbage');
    expect(seconds.message).toBe(
      `${base}/ts/1749995000: sample timestamp 1749995000 (1970-01-21T06:06:35.000Z) cannot be right: it is in seconds, but the ` +
        'exposition format wants milliseconds since the epoch; fix the exporter or have it write no timestamps',
    );
    for (const t of ['-5', '946684799999', '1750082400001']) {
      const err = await sourceError(scrapeMetrics(`${base}/ts/${t}`, { now }));
      expect(err.message).toContain(`sample timestamp ${t} (`);
      expect(err.message).toContain('it is not within a day of the scrape time 2025-06-15T14:00:00.000Z');
    }
    // Milliseconds, even hours old or a little ahead of the scrape's clock, are kept as given.
    for (const t of [1_749_950_000_000, 1_750_000_060_000]) {
      const samples = await scrapeMetrics(`${base}/ts/${t}`, { now });
      expect(samples[0]!.ts).toBe(new Date(t).toISOString());
      expect(samples[1]!.ts).toBe('2025-06-15T14:00:00.000Z');
    }
  });

  it.each([0, -15, Number.NaN, Number.POSITIVE_INFINITY])('a step of %s is refused before any request', async (stepSeconds) => {
    const err = await sourceError(queryRange(base, 'x', { start: '0', end: '1', stepSeconds }));
    expect(err.message).toContain('stepSeconds must be a positive number');
  });
});

describe('storing findings built from hostile data', () => {
  let pg: PGlite;
  let db: Db;
  beforeAll(async () => {
    pg = new PGlite();
    await pg.exec(`
      CREATE TABLE agent_runs (id text PRIMARY KEY, agent text NOT NULL, review_id text, status text NOT NULL, error text,
        window_from timestamptz, window_to timestamptz, data_points int NOT NULL DEFAULT 0, findings jsonb NOT NULL DEFAULT '[]',
        totals jsonb, summary text NOT NULL DEFAULT '', narrative jsonb, narrative_by text, prompt_version text,
        finished_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE recommendations (run_id text NOT NULL REFERENCES agent_runs(id) ON DELETE CASCADE, idx int NOT NULL,
        agent text NOT NULL, kind text NOT NULL, subject text NOT NULL, severity text NOT NULL, title text NOT NULL,
        recommendation text NOT NULL, narrative text, evidence jsonb NOT NULL, monthly_saving_usd double precision,
        annual_saving_usd double precision, impact text, confidence double precision NOT NULL, narrative_by text,
        created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run_id, idx));
      CREATE TABLE reviews (id text PRIMARY KEY, agents text[] NOT NULL, failed_agents text[] NOT NULL, summary text NOT NULL,
        summary_by text, errors jsonb, finished_at timestamptz NOT NULL DEFAULT now());`);
    const client = { query: (sql: string, params?: unknown[]) => pg.query(sql, params), release: () => undefined };
    db = { connect: async () => client, query: (sql: string, params?: unknown[]) => pg.query(sql, params) } as unknown as Db;
  });
  afterAll(async () => {
    await pg.close();
  });

  it('NUL and lone surrogates in a resource id, labels and the error are stored as U+FFFD', async () => {
    const subject = 'gpu\u0000-1\ud800';
    const finding = {
      kind: 'idle',
      subject,
      severity: 'high',
      title: `Idle ${subject}`,
      recommendation: 'Stop it',
      evidence: { resourceId: subject, 'tag\u0000': 'v\udc00', costs: [1, 2] },
      monthlySavingUsd: 52,
      annualSavingUsd: 624,
      confidence: 0.9,
    } as unknown as Finding;
    const run: AgentRunRecord = {
      id: 'run-hostile',
      agent: 'cost',
      status: 'ok',
      error: 'bad\u0000',
      window: { from: '2025-06-01T00:00:00Z', to: '2025-06-02T00:00:00Z', stepSeconds: 3600 },
      dataPoints: 1,
      findings: [finding],
      totals: { spend: 1 },
      summary: `one idle resource ${subject}`,
    };
    await recordAgentRun(db, run);
    const stored = await pg.query<{ subject: string; evidence: Record<string, unknown> }>('SELECT subject, evidence FROM recommendations');
    expect(stored.rows).toEqual([
      { subject: 'gpu\ufffd-1\ufffd', evidence: { resourceId: 'gpu\ufffd-1\ufffd', 'tag\ufffd': 'v\ufffd', costs: [1, 2] } },
    ]);
    const runs = await pg.query<{ error: string; summary: string }>('SELECT error, summary FROM agent_runs');
    expect(runs.rows).toEqual([{ error: 'bad\ufffd', summary: 'one idle resource gpu\ufffd-1\ufffd' }]);

    await recordReview(db, {
      id: 'rv',
      agents: ['cost'],
      failed: [],
      summary: 's\u0000',
      summaryBy: 'template',
      errors: { cost: 'e\u0000' },
    });
    expect((await pg.query('SELECT summary, errors FROM reviews')).rows).toEqual([{ summary: 's\ufffd', errors: { cost: 'e\ufffd' } }]);
  });
});
