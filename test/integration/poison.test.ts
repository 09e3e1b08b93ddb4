/**
 * Hostile sources: every record a red team found to freeze collection, table-driven. Each goes
 * through a real cycle next to good records: the good ones are stored and scored, the poison one
 * is a counted bad record (or a conflict) with a sanitised sample, the cursor moves, and good
 * records appended afterwards are collected by the next cycle.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getCursor, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import { startTestStack, uniqueId, type TestStack } from '../helpers/env.js';

/** An HTTP source serving raw JSON item texts (so tests can send what JSON.stringify never writes). */
async function startRawSource() {
  const items: string[] = [];
  let ignoreLimit = false;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const from = Number(u.searchParams.get('cursor') ?? '0');
    const limit = Number(u.searchParams.get('limit') ?? '100');
    const page = items.slice(from, ignoreLimit ? undefined : from + limit);
    const next = from + page.length;
    res.setHeader('content-type', 'application/json');
    res.end(`{"items":[${page.join(',')}],"next_cursor":"${next}","has_more":${next < items.length}}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/interactions`,
    items,
    setIgnoreLimit: (v: boolean) => (ignoreLimit = v),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const now = () => new Date().toISOString();

describe('poison records never stop collection', () => {
  let stack: TestStack;
  let src: Awaited<ReturnType<typeof startRawSource>>;
  const deployment = uniqueId('poison');
  let n = 0;
  const good = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      id: `good-${++n}`,
      deployment,
      model_version: 'v1',
      timestamp: now(),
      prompt: 'What is 2+2?',
      response: 'Four.',
      ...extra,
    });

  beforeAll(async () => {
    stack = await startTestStack();
    src = await startRawSource();
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: src.url }, sample_rate: 1 });
  });
  afterAll(async () => {
    await src?.close();
    await stack?.stop();
  });

  let cycles = 0;
  const cycle = (pageSize = 100) =>
    stack.client.workflow.execute('collectionCycle', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: `collect/${deployment}/poison-${++cycles}`,
      args: [{ deployment, pageSize, checks: ['quality'] }],
      workflowExecutionTimeout: '2 minutes',
    }) as Promise<CycleResult>;

  const deep = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  const base = (id: string) => `"id":"${id}","deployment":"${deployment}","model_version":"v1"`;

  const CASES: Array<{ name: string; raw: () => string; bad: RegExp | null; stored?: (r: CycleResult) => void }> = [
    {
      name: 'metadata nested 5,000 deep',
      raw: () => `{${base('deep-1')},"timestamp":"${now()}","prompt":"p","response":"r","metadata":${deep(5000)}}`,
      bad: /nests deeper/,
    },
    {
      name: 'a lone surrogate in the prompt (stored with U+FFFD)',
      raw: () => `{${base('surrogate-text')},"timestamp":"${now()}","prompt":"bad \\ud800 text","response":"r"}`,
      bad: null,
    },
    {
      name: 'a lone surrogate in the id',
      raw: () => `{"id":"id-\\ud800","deployment":"${deployment}","model_version":"v1","timestamp":"${now()}","prompt":"p","response":"r"}`,
      bad: /id must be/,
    },
    {
      name: 'a lone surrogate in the timestamp',
      raw: () => `{${base('ts-surrogate')},"timestamp":"2026-\\udc00","prompt":"p","response":"r"}`,
      bad: /timestamp/,
    },
    {
      name: 'a timestamp in year 9999',
      raw: () => `{${base('y9999')},"timestamp":"9999-01-01T00:00:00Z","prompt":"p","response":"r"}`,
      bad: /outside the accepted window/,
    },
    {
      name: 'a timestamp at +275760',
      raw: () => `{${base('y275760')},"timestamp":"+275760-09-13T00:00:00Z","prompt":"p","response":"r"}`,
      bad: /outside the accepted window/,
    },
    {
      name: 'epoch -1',
      raw: () => `{${base('epoch-minus-1')},"timestamp":-1,"prompt":"p","response":"r"}`,
      bad: /outside the accepted window/,
    },
    {
      name: 'a timestamp in 1969',
      raw: () => `{${base('y1969')},"timestamp":"1969-07-20T20:17:00Z","prompt":"p","response":"r"}`,
      bad: /outside the accepted window/,
    },
    {
      name: 'a NUL byte in the id',
      raw: () =>
        `{"id":"nul\\u0000id","deployment":"${deployment}","model_version":"v1","timestamp":"${now()}","prompt":"p","response":"r"}`,
      bad: /id must be/,
    },
  ];

  for (const c of CASES) {
    it(`${c.name}: good records around it are stored and scored, the cursor moves`, async () => {
      src.items.push(good(), c.raw(), good());
      const r = await cycle();
      expect(r.stored).toBe(c.bad ? 2 : 3);
      expect(r.bad).toBe(c.bad ? 1 : 0);
      expect(r.scored).toBe(r.stored);
      if (c.bad) {
        const sample = r.badSamples.map((b) => `${b.reason} ${b.id ?? ''}`).join(' | ');
        expect(sample).toMatch(c.bad);
        // Samples are printable and well-formed (they are stored as jsonb in PostgreSQL).
        expect(JSON.stringify(r.badSamples)).not.toMatch(/\\ud[89ab]|\\u0000/i);
      }
      expect(await getCursor(stack.stores.db, deployment)).toBe(String(src.items.length));
      const run = await stack.stores.db.query('SELECT status, bad FROM collection_runs WHERE cycle_id = $1', [
        `collect/${deployment}/poison-${cycles}`,
      ]);
      expect(run.rows[0]).toEqual({ status: 'ok', bad: c.bad ? 1 : 0 });
    });
  }

  it('keeps the first copy when an id comes again with another version and text, and counts the conflict', async () => {
    src.items.push(good({ id: 'twice', prompt: 'first prompt' }));
    await cycle();
    src.items.push(good({ id: 'twice', model_version: 'v2', prompt: 'second prompt' }), good());
    const r = await cycle();
    expect(r).toMatchObject({ stored: 1, conflicts: 1 });
    expect(r.badSamples.some((b) => /conflict/.test(b.reason))).toBe(true);
    const rows = await stack.stores.ch.interactionsByIds(deployment, ['twice']);
    expect(rows.map((x) => [x.model_version, x.prompt])).toEqual([['v1', 'first prompt']]);
  });

  it('reads no more than the page size from a source that ignores it, and inserts nothing twice', async () => {
    const before = await stack.stores.ch.countInteractions(deployment);
    const start = src.items.length;
    for (let i = 0; i < 5000; i++) src.items.push(good());
    src.setIgnoreLimit(true);
    try {
      const r = await cycle(100);
      expect(r.stored).toBe(100);
      expect(r.bad).toBe(4900);
      expect(r.badSamples.map((b) => b.reason).join(' ')).toMatch(/returned 5000 items for limit=100/);
    } finally {
      src.setIgnoreLimit(false);
    }
    expect(await stack.stores.ch.countInteractions(deployment)).toBe(before + 100);
    expect(await getCursor(stack.stores.db, deployment)).toBe(String(start + 5000));
  });

  it('collects good records appended after the poison ones in the next cycle', async () => {
    src.items.push(good(), good());
    const r = await cycle();
    expect(r).toMatchObject({ stored: 2, bad: 0, scored: 2 });
  });

  it('quarantines a row ClickHouse refuses and stores the rest of its block', async () => {
    const row = (id: string, ts: unknown) => ({
      deployment,
      id,
      model_version: 'v1',
      ts,
      prompt: 'p',
      response: 'r',
      context: '',
      has_context: 0,
      metadata: '{}',
      source: 'test',
      cycle_id: 'quarantine',
      ver: 1,
    });
    const refused = await stack.stores.ch.insertIsolatingBad('interactions', [
      row('q-1', 1_700_000_000),
      row('q-2', 'not a time'),
      row('q-3', 1_700_000_000),
    ] as never[]);
    expect(refused.map((x) => (x.row as { id: string }).id)).toEqual(['q-2']);
    expect(refused[0]!.reason.length).toBeGreaterThan(0);
    expect((await stack.stores.ch.interactionsByIds(deployment, ['q-1', 'q-2', 'q-3'])).map((x) => x.id).sort()).toEqual(['q-1', 'q-3']);
  });

  it('refuses a second cycle of the same deployment while one runs', async () => {
    await stack.stores.db.query(
      `UPDATE collection_cursors SET running_cycle = 'collect/other', lease_until = now() + interval '5 minutes' WHERE deployment = $1`,
      [deployment],
    );
    try {
      // Skipped, not failed: nothing went wrong (hostile-lease.test.ts).
      const r = await cycle();
      expect(r).toMatchObject({ status: 'skipped', heldBy: 'collect/other', fetched: 0 });
      expect(r.note).toMatch(/cycle 'collect\/other' of deployment .* is running/);
      const run = await stack.stores.db.query('SELECT status, error FROM collection_runs WHERE cycle_id = $1', [
        `collect/${deployment}/poison-${cycles}`,
      ]);
      expect(run.rows[0]).toMatchObject({ status: 'skipped', error: expect.stringMatching(/CycleAlreadyRunning.*collect\/other/) });
    } finally {
      await stack.stores.db.query(`UPDATE collection_cursors SET running_cycle = NULL, lease_until = NULL WHERE deployment = $1`, [
        deployment,
      ]);
    }
  });
});
