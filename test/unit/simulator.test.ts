import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DATA_DIR_ENV,
  buildInteraction,
  isDegraded,
  loadQaRows,
  resolveDataDir,
  startSimulator,
  type SimulatedInteraction,
  type Simulator,
  type SimulatorOptions,
} from '../../stack/sim/collector-simulator.js';
import { createSource } from '../../activities/collector/sources.js';
import { interactionSchema } from '../../domain/collector/record.js';

const rows = loadQaRows();
const open: Simulator[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function sim(o: Partial<SimulatorOptions> = {}): Promise<Simulator> {
  const s = await startSimulator({ deployment: 'demo', modelVersion: 'v1', degradedShare: 0, ...o });
  open.push(s);
  return s;
}

async function all(s: Simulator): Promise<SimulatedInteraction[]> {
  const out: SimulatedInteraction[] = [];
  let cursor = '';
  for (;;) {
    const res = await fetch(`${s.url}?cursor=${cursor}&limit=1000`);
    expect(res.status).toBe(200);
    const page = (await res.json()) as { items: SimulatedInteraction[]; next_cursor: string; has_more: boolean };
    out.push(...page.items);
    cursor = page.next_cursor;
    if (!page.has_more) return out;
  }
}

const admin = (s: Simulator, p: string, body?: unknown) =>
  fetch(s.url.replace(/\/interactions$/, p), {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });

describe('data', () => {
  it('loads the 500 HaluEval QA rows from the default data dir', () => {
    expect(rows).toHaveLength(500);
    expect(rows[0]!.question).toBe("Which magazine was started first Arthur's Magazine or First for Women?");
    expect(resolveDataDir('/x/y')).toEqual({ dir: '/x/y', from: 'the dataDir option' });
  });

  it('says where it looked and which env var to set when the file is missing', async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'sim-data-'));
    try {
      await expect(startSimulator({ deployment: 'd', modelVersion: 'v', degradedShare: 0, dataDir: empty })).rejects.toThrow(
        new RegExp(`${path.join(empty, 'halueval', 'qa_one-turn.jsonl').replace(/[.]/g, '\\.')}.*${DATA_DIR_ENV}`),
      );
      const before = process.env[DATA_DIR_ENV];
      process.env[DATA_DIR_ENV] = empty;
      try {
        expect(resolveDataDir().dir).toBe(empty);
        expect(() => loadQaRows()).toThrow(/env OPTIINFRA_DATA_DIR/);
      } finally {
        if (before === undefined) delete process.env[DATA_DIR_ENV];
        else process.env[DATA_DIR_ENV] = before;
      }
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe('generated interactions', () => {
  it('are valid records with padded ids, round-robin rows and the documented metadata', async () => {
    const s = await sim({ deployment: 'demo', modelVersion: 'v1.2', degradedShare: 0 });
    expect(s.generate(502)).toBe(502);
    const items = await all(s);
    expect(items).toHaveLength(502);
    expect(items[0]!.id).toBe('demo-00000000');
    expect(items[501]!.id).toBe('demo-00000501');
    expect(items[501]!.metadata).toEqual({ simulated: true, degraded: false, source_row: 1 });
    expect(items[500]!.prompt).toBe(rows[0]!.question);
    expect(items[7]!).toMatchObject({
      deployment: 'demo',
      model_version: 'v1.2',
      prompt: rows[7]!.question,
      context: rows[7]!.knowledge,
      response: rows[7]!.right_answer,
    });
    for (const it of items) expect(interactionSchema.safeParse(it).success).toBe(true);
    expect(Math.abs(Date.parse(items[0]!.timestamp) - Date.now())).toBeLessThan(60_000);
  });

  it('degradedShare 0 -> all right answers; 1 -> all hallucinated', async () => {
    const good = await sim({ degradedShare: 0 });
    good.generate(500);
    const g = await all(good);
    expect(g.every((x, i) => x.response === rows[i]!.right_answer && !x.metadata.degraded)).toBe(true);

    const bad = await sim({ degradedShare: 1 });
    bad.generate(500);
    const b = await all(bad);
    expect(b.every((x, i) => x.response === rows[i]!.hallucinated_answer && x.metadata.degraded)).toBe(true);
  });

  it('~0.3 -> roughly 30 % hallucinated over 500, and the degraded flag matches the response', async () => {
    const s = await sim({ degradedShare: 0.3, seed: 42 });
    s.generate(500);
    const items = await all(s);
    const degraded = items.filter((x) => x.metadata.degraded);
    expect(degraded.length / 500).toBeGreaterThan(0.24);
    expect(degraded.length / 500).toBeLessThan(0.36);
    for (const [i, x] of items.entries()) {
      const row = rows[x.metadata.source_row]!;
      expect(x.metadata.source_row).toBe(i);
      expect(x.response).toBe(x.metadata.degraded ? row.hallucinated_answer : row.right_answer);
    }
  });

  it('is deterministic: same seed -> same responses; another seed -> different ones', async () => {
    const a = await sim({ degradedShare: 0.3, seed: 5 });
    const b = await sim({ degradedShare: 0.3, seed: 5 });
    const c = await sim({ degradedShare: 0.3, seed: 6 });
    a.generate(300);
    b.generate(100);
    b.generate(200); // batching does not matter
    c.generate(300);
    const [ra, rb, rc] = await Promise.all([all(a), all(b), all(c)]);
    expect(rb.map((x) => x.response)).toEqual(ra.map((x) => x.response));
    expect(rb.map((x) => x.id)).toEqual(ra.map((x) => x.id));
    expect(rc.map((x) => x.response)).not.toEqual(ra.map((x) => x.response));

    // Pure helpers agree with the server.
    const built = buildInteraction(rows, {
      deployment: 'demo',
      modelVersion: 'v1',
      degradedShare: 0.3,
      seed: 5,
      index: 123,
      timestamp: ra[123]!.timestamp,
    });
    expect(built).toEqual(ra[123]);
    // A higher share degrades a superset of the interactions.
    for (let i = 0; i < 500; i++) {
      if (isDegraded(5, i, 0.2)) expect(isDegraded(5, i, 0.4)).toBe(true);
    }
  });

  it('setModel switches version and share for interactions generated afterwards', async () => {
    const s = await sim({ modelVersion: 'v1', degradedShare: 0 });
    s.generate(10);
    s.setModel('v2', 1);
    s.generate(10);
    expect(s.count()).toBe(20);
    const items = await all(s);
    expect(items.slice(0, 10).every((x) => x.model_version === 'v1' && !x.metadata.degraded)).toBe(true);
    expect(items.slice(10).every((x) => x.model_version === 'v2' && x.metadata.degraded)).toBe(true);
    expect(items[10]!.id).toBe('demo-00000010');
    expect(() => s.setModel('v 3', 0.5)).toThrow(/model_version/);
    expect(() => s.setModel('v3', 1.5)).toThrow(/degraded_share/);
  });

  it('rejects invalid options', async () => {
    await expect(startSimulator({ deployment: 'bad id', modelVersion: 'v', degradedShare: 0 })).rejects.toThrow(/deployment/);
    await expect(startSimulator({ deployment: 'd', modelVersion: 'v', degradedShare: -0.1 })).rejects.toThrow(/degraded_share/);
  });

  it('generates by itself at ratePerMinute', async () => {
    const s = await sim({ ratePerMinute: 6000 }); // 100 per second
    await new Promise((r) => setTimeout(r, 1300));
    expect(s.count()).toBeGreaterThanOrEqual(100);
    expect(s.count() % 100).toBe(0);
  });
});

describe('admin HTTP endpoints', () => {
  it('generate, model, health and inject', async () => {
    const s = await sim({ modelVersion: 'v1', degradedShare: 0.1 });
    let res = await admin(s, '/health');
    expect(await res.json()).toMatchObject({ count: 0, model_version: 'v1', degraded_share: 0.1 });

    res = await admin(s, '/admin/generate', { count: 3 });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ generated: 3, count: 3 });

    res = await admin(s, '/admin/model', { model_version: 'v2', degraded_share: 0.3 });
    expect(res.status).toBe(200);
    res = await admin(s, '/health');
    expect(await res.json()).toMatchObject({ count: 3, model_version: 'v2', degraded_share: 0.3 });

    res = await admin(s, '/admin/inject', { raw: { anything: [1, 2] } });
    expect(await res.json()).toEqual({ count: 4 });
    res = await admin(s, '/admin/inject', { raw: null });
    expect(res.status).toBe(200);
    const items = (await all(s)) as unknown[];
    expect(items.slice(3)).toEqual([{ anything: [1, 2] }, null]);

    // The HTTP source sees the injected items as bad records.
    const page = await createSource({ type: 'http', url: s.url }, 'demo').fetch(null, 10);
    expect(page.records).toHaveLength(3);
    expect(page.bad.map((b) => b.position)).toEqual(['page start item 3', 'page start item 4']);
  });

  it('answers 400 with a clear message on bad input, 404/405 on unknown routes', async () => {
    const s = await sim();
    const expectError = async (res: Response, status: number, re: RegExp) => {
      expect(res.status).toBe(status);
      expect(((await res.json()) as { error: string }).error).toMatch(re);
    };
    await expectError(await admin(s, '/admin/generate', { count: 0 }), 400, /count must be at least 1/);
    await expectError(await admin(s, '/admin/generate', { count: 1.5 }), 400, /count must be an integer/);
    await expectError(await admin(s, '/admin/generate', 'not json'), 400, /body must be JSON/);
    await expectError(await admin(s, '/admin/model', { model_version: 'v2' }), 400, /degraded_share/);
    await expectError(
      await admin(s, '/admin/model', { model_version: 'v2', degraded_share: 2 }),
      400,
      /degraded_share must be between 0 and 1/,
    );
    await expectError(await admin(s, '/admin/model', { model_version: '', degraded_share: 0 }), 400, /model_version/);
    await expectError(await admin(s, '/admin/inject', { other: 1 }), 400, /"raw"/);
    await expectError(await fetch(`${s.url}?cursor=-1`), 400, /cursor/);
    await expectError(await fetch(`${s.url}?cursor=5`), 400, /beyond the log/);
    await expectError(await fetch(`${s.url}?limit=0`), 400, /limit/);
    await expectError(await admin(s, '/nope'), 404, /no route/);
    await expectError(await admin(s, '/admin/generate'), 405, /not allowed/);
    expect(s.count()).toBe(0);
  });

  it('serves pages of at most 1000 items with has_more', async () => {
    const s = await sim();
    s.generate(1500);
    const res = await fetch(`${s.url}?limit=5000`);
    const page = (await res.json()) as { items: unknown[]; next_cursor: string; has_more: boolean };
    expect(page.items).toHaveLength(1000);
    expect(page).toMatchObject({ next_cursor: '1000', has_more: true });
  });
});

describe('simulator-main', () => {
  it('prints its URL, serves, and exits on SIGTERM', async () => {
    const main = fileURLToPath(new URL('../../stack/sim/collector-simulator-main.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', main, '--deployment', 'cli-demo', '--model-version', 'v9', '--degraded-share', '0.5', '--port', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const nl = out.indexOf('\n');
          if (nl >= 0) resolve(out.slice(0, nl));
        });
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
        setTimeout(() => reject(new Error(`no URL printed; stderr: ${err}`)), 15_000);
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/interactions$/);
      const base = url.replace(/\/interactions$/, '');
      await fetch(`${base}/admin/generate`, { method: 'POST', body: '{"count": 4}' });
      expect(await (await fetch(`${base}/health`)).json()).toMatchObject({
        count: 4,
        model_version: 'v9',
        degraded_share: 0.5,
      });
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 30_000);

  it('rejects a bad --degraded-share', async () => {
    const main = fileURLToPath(new URL('../../stack/sim/collector-simulator-main.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', main, '--deployment', 'd', '--model-version', 'v', '--degraded-share', '7'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).not.toBe(0);
    expect(err).toMatch(/--degraded-share must be a number between 0 and 1/);
  }, 30_000);
});
