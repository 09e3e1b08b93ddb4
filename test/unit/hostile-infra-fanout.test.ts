/**
 * Many infrastructure sources: a fleet scraped host by host (hundreds or thousands of `/metrics`
 * endpoints), some of them down, one stored configuration edited by hand. Bounds are asserted
 * (connections at once, rows read, bytes that cross Temporal), never wall-clock times.
 * Each test says what it pins and how it failed before.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInfraActivities, SOURCES_IN_FLIGHT } from '../../activities/infra/activities.js';
import { boundAnalysis, boundLines, MAX_WARNING_CHARS, MAX_WARNINGS } from '../../domain/agents/bounded.js';
import { addOutcome, emptyCollection, type InfraCollection, MAX_LISTED_SOURCES, infraCarrySchema } from '../../domain/infra/collection.js';

let server: http.Server;
let base = '';
let open = 0;
let maxOpen = 0;
let served = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    // Answer a little later, so requests made at once overlap.
    setTimeout(() => {
      served++;
      open--;
      if (req.url?.startsWith('/down')) {
        res.writeHead(503).end('maintenance');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(`# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name="m"} 3\n`);
    }, 5);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** Fake stores: PostgreSQL rows of `infra_sources` (rows read are counted), ClickHouse inserts. */
function fakeDeps(sources: Array<{ id: string; config: unknown }>) {
  const seen = { rowsRead: 0, inserts: 0 };
  const db = {
    async query(sql: string, params?: unknown[]) {
      if (sql.startsWith('SELECT id, config, last_collected_to FROM infra_sources')) {
        const rows = sources
          .filter((s) => !sql.includes('WHERE id = $1') || s.id === params?.[0])
          .map((s) => ({ id: s.id, config: s.config, last_collected_to: null }));
        seen.rowsRead += rows.length;
        return { rows };
      }
      if (sql.startsWith('UPDATE infra_sources SET last_collected_to')) return { rows: [] };
      throw new Error(`unexpected SQL ${sql}`);
    },
  };
  const ch = {
    async insertMetricSamples() {
      seen.inserts++;
    },
  };
  const config = { groq: {}, temporal: {}, databaseUrl: 'postgres://localhost/x', clickhouse: { url: 'http://localhost:8123' }, codec: {} };
  const acts = createInfraActivities({ config, ch, db } as unknown as Parameters<typeof createInfraActivities>[0]);
  return { acts, seen };
}

const scrape = (i: number, path = '/metrics') => ({
  id: `host-${String(i).padStart(4, '0')}`,
  config: { kind: 'scrape', url: `${base}${path}` },
});

describe('an analysis collecting a fleet of sources', () => {
  it('collects 400 sources at most SOURCES_IN_FLIGHT at a time, reading each stored source once', async () => {
    // Pins bounded fan-out. Failed before: 400 requests at once (one socket each), and each
    // source's collection listed every source again: 160,400 rows read for 400 sources.
    maxOpen = 0;
    served = 0;
    const { acts, seen } = fakeDeps(Array.from({ length: 400 }, (_, i) => scrape(i)));
    const r = await acts.collectKinds(['scrape']);
    expect(r.errors).toEqual([]);
    expect(r.sources).toHaveLength(400);
    expect(served).toBe(400);
    expect(seen.inserts).toBe(400);
    expect(maxOpen).toBeGreaterThan(1);
    expect(maxOpen).toBeLessThanOrEqual(SOURCES_IN_FLIGHT);
    expect(seen.rowsRead).toBeLessThanOrEqual(2 * 400);
  });

  it('a source whose stored configuration was edited by hand is one error; the others are collected', async () => {
    // Pins isolation of a bad stored row. Failed before: the ZodError of that one row was thrown
    // from the listing, so no source was collected and the analysis failed.
    const sources = [scrape(1), { id: 'edited', config: { kind: 'scrape', url: 'ftp://nowhere' } }, { id: 'junk', config: 'x' }, scrape(2)];
    const { acts, seen } = fakeDeps(sources);
    const r = await acts.collectKinds(['scrape']);
    expect(r.sources.map((s) => s.id)).toEqual(['host-0001', 'host-0002']);
    expect(seen.inserts).toBe(2);
    expect(r.errors).toHaveLength(2);
    expect(r.errors[0]).toMatch(
      /^edited: its stored configuration is invalid \(.*url.*\); register it again with `optiinfra infra add edited/,
    );
    expect(r.errors[1]).toMatch(/^junk: its stored configuration is invalid/);
    // The edited scrape source is not the cost data's concern; one whose kind cannot be read is everyone's.
    expect((await acts.collectKinds(['focus'])).errors).toEqual([expect.stringMatching(/^junk: /)]);
    // Collected by id (as the scheduled collection does): an outcome with the error, not a throw.
    const one = await acts.collectInfraSource({ id: 'edited' });
    expect(one).toMatchObject({ id: 'edited', kind: 'unknown', rows: 0, bad: 0 });
    expect(one.error).toMatch(/stored configuration is invalid/);
  });

  it('a fleet of which 3,000 hosts are down makes a bounded list of warnings that keeps the other warnings', async () => {
    // Pins bounded warnings. Failed before: one warning per failed source (3,000 lines of any
    // length) went into the analysis, its workflow result and the stored run.
    const errors = Array.from({ length: 3_000 }, (_, i) => `host-${i}: ${'connection refused '.repeat(i === 0 ? 500 : 2)}`);
    const a = boundAnalysis({ findings: [], dataPoints: 1, warnings: ['Utilisation: read at a 6,480 s step', ...errors] });
    expect(a.warnings.length).toBeLessThanOrEqual(MAX_WARNINGS);
    expect(a.warnings[0]).toBe('Utilisation: read at a 6,480 s step');
    expect(Math.max(...a.warnings.map((w) => w.length))).toBeLessThanOrEqual(MAX_WARNING_CHARS + 1);
    expect(a.warnings.at(-1)).toBe('… and 2,982 more like these.');
    expect(boundLines(['a', 'b'])).toEqual(['a', 'b']);
  });

  it('the analysis of sources that all failed says so in a bounded message', async () => {
    // Pins the NoData message. Failed before: every source's error joined into one failure message.
    const { acts } = fakeDeps(Array.from({ length: 300 }, (_, i) => scrape(i, '/down')));
    const r = await acts.collectKinds(['scrape']);
    expect(r.errors).toHaveLength(300);
    const { noData } = await import('../../activities/agents/metrics.js');
    const f = noData(
      'resource',
      { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', stepSeconds: 300 },
      r.errors,
      'GPU and host metrics',
    );
    expect(f.message).toMatch(/host-0000: .*503/);
    expect(f.message).toMatch(/and 296 more like these/);
    expect(f.message.length).toBeLessThan(4_000);
  });
});

describe("the scheduled collection's result", () => {
  const big = (i: number) => ({
    id: `source-${i}`,
    kind: 'scrape',
    rows: 10,
    bad: i % 7 === 0 ? 1 : 0,
    ...(i % 5 === 0 ? { error: 'x'.repeat(50_000) } : {}),
  });

  it('20,000 sources make a result of bounded size with exact totals, failed sources listed first', () => {
    // Pins the bounded result. Failed before: every outcome with its bad rows was returned; 20,000
    // sources with errors passed Temporal's 2 MB payload limit and the workflow task failed forever.
    let c: InfraCollection = emptyCollection();
    for (let i = 0; i < 20_000; i++) c = addOutcome(c, big(i));
    expect(c).toMatchObject({ sources: 20_000, rows: 200_000, failed: 4_000, notListed: 20_000 - MAX_LISTED_SOURCES });
    expect(c.bad).toBe(Array.from({ length: 20_000 }, (_, i) => (i % 7 === 0 ? 1 : 0)).reduce((a: number, b) => a + b, 0));
    expect(c.outcomes).toHaveLength(MAX_LISTED_SOURCES);
    expect(c.outcomes.every((o) => o.error !== undefined)).toBe(true);
    expect(JSON.stringify(c).length).toBeLessThan(120_000);
    // It is also what a run carries into the next one.
    expect(infraCarrySchema.safeParse({ after: 'source-9', done: c }).success).toBe(true);
  });

  it('a few sources are all listed: failed, then with bad rows, then the others, each in id order', () => {
    let c = emptyCollection();
    for (const o of [
      { id: 'b', kind: 'scrape', rows: 1, bad: 0 },
      { id: 'a', kind: 'scrape', rows: 1, bad: 2 },
      { id: 'c', kind: 'focus', rows: 0, bad: 0, error: 'no such directory' },
      { id: 'd', kind: 'scrape', rows: 1, bad: 0 },
    ])
      c = addOutcome(c, o);
    expect(c.outcomes.map((o) => o.id)).toEqual(['c', 'a', 'b', 'd']);
    expect(c.notListed).toBe(0);
  });
});
