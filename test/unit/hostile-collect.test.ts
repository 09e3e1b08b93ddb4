/**
 * The collection control plane under hostile input: `deployment add | list`, `schedule create`,
 * `collect`, the collection workflow's input, and two commands racing on one schedule or deployment.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, type Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../activities/storage/postgres/db.js';
import { advanceCursor, getCursor, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { MIGRATIONS } from '../../activities/storage/postgres/migrations.js';
import { MIN_SAMPLE_RATE, sampleRateArg } from '../../client/cli/args.js';
import { displaySource, requireDeployment, sourceFromOptions } from '../../client/cli/deployments.js';
import { UsageError } from '../../client/cli/args.js';
import { ensureSchedule } from '../../client/schedules.js';
import type { Config } from '../../common/config.js';
import { carriedTotals, collectionCycleInputSchema } from '../../domain/collector/collection.js';
import { runCli } from '../helpers/cli.js';

const cli = (args: string[]) => runCli(args);

describe('deployment add: a sample rate is a plain fraction a cycle can use', () => {
  it.each(['0', '1e-12', '0.00005', '1.0000001', '50%', 'NaN', '0x1', ' ', '-0.5', 'Infinity', '1/2'])(
    'refuses %j before anything connects',
    async (rate) => {
      const r = await cli(['deployment', 'add', 'shop-bot', '--source-url', 'http://logs.internal/x', '--sample-rate', rate]);
      expect(r.code).toBe(3);
      expect(r.out).toMatch(/sample rate must be a decimal number from 0\.0001 to 1/);
    },
    10_000,
  );

  it('says a percentage is not a share', () => {
    expect(() => sampleRateArg('50%')).toThrow(/a share, not a percentage: 0\.5 for 50 %/);
  });

  it.each<[string, number]>([
    ['0.5', 0.5],
    ['1', 1],
    ['.25', 0.25],
    ['1e-4', MIN_SAMPLE_RATE],
    [' 0.3 ', 0.3],
  ])('accepts %j as %d', (rate, n) => {
    expect(sampleRateArg(rate)).toBe(n);
  });
});

describe('deployment add: the source is stored as the worker can use it', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hostile-collect-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a relative or ..-bearing JSONL path is stored absolute (the worker runs elsewhere)', () => {
    expect(sourceFromOptions({ sourcePath: 'logs/requests.jsonl' }, '/srv/app')).toEqual({
      type: 'jsonl',
      path: '/srv/app/logs/requests.jsonl',
    });
    expect(sourceFromOptions({ sourcePath: '../var/./log/' }, '/srv/app')).toEqual({ type: 'jsonl', path: '/srv/var/log' });
  });

  it('a path that does not exist yet is accepted (the log may come later)', () => {
    expect(sourceFromOptions({ sourcePath: path.join(dir, 'later.jsonl') })).toEqual({
      type: 'jsonl',
      path: path.join(dir, 'later.jsonl'),
    });
  });

  it('a glob that names no file is refused: patterns are not expanded', () => {
    expect(() => sourceFromOptions({ sourcePath: path.join(dir, '*.jsonl') })).toThrow(
      /does not exist and patterns are not expanded: give a JSONL file or a directory of \*\.jsonl files/,
    );
  });

  it('a URL loses its fragment and keeps its credentials for the source (shown masked only)', () => {
    expect(sourceFromOptions({ sourceUrl: 'https://u:pw-1234@logs.internal/x?page=1#frag' })).toEqual({
      type: 'http',
      url: 'https://u:pw-1234@logs.internal/x?page=1',
    });
    expect(sourceFromOptions({ sourceUrl: 'http://[::1]:8080/x' })).toEqual({ type: 'http', url: 'http://[::1]:8080/x' });
  });

  it('a URL with 10 KB of userinfo is refused with the bound', () => {
    expect(() => sourceFromOptions({ sourceUrl: `https://${'a'.repeat(10_000)}:p@logs.internal/x` })).toThrow(
      /source url is 10\d{3} characters, at most 8192/,
    );
  });

  it('both or neither of --source-url and --source-path is refused', () => {
    expect(() => sourceFromOptions({})).toThrow(UsageError);
    expect(() => sourceFromOptions({ sourceUrl: 'http://h/x', sourcePath: '/x' })).toThrow(/exactly one/);
  });
});

describe('deployment list: no credential of a source is shown', () => {
  it.each<[string, string]>([
    ['a password', 'https://reader:pw-secret-1234@logs.internal/x'],
    ['a password with an unencoded @', 'https://reader:pw@secret-1234@logs.internal/x'],
    ['a token in the query', 'https://logs.internal/x?format=jsonl&access_token=secret-1234'],
    ['an api key in the query', 'https://logs.internal/x?API_KEY=secret-1234'],
  ])('%s', (_what, url) => {
    const shown = JSON.stringify(displaySource({ type: 'http', url }));
    expect(shown).not.toContain('secret-1234');
    expect(shown).toContain('logs.internal/x');
  });

  it('header values are hidden, names kept; other query values kept', () => {
    const shown = displaySource({ type: 'http', url: 'https://h/x?format=jsonl', headers: { Authorization: 'Bearer secret-1234' } });
    expect(shown).toEqual({ type: 'http', url: 'https://h/x?format=jsonl', headers: { Authorization: '****' } });
  });
});

describe('PostgreSQL: deployments and their cursors', () => {
  let pg: PGlite;
  let db: Db;
  beforeAll(async () => {
    pg = new PGlite();
    for (const m of MIGRATIONS) await pg.exec(m.sql);
    db = {
      query: async (sql: string, params?: unknown[]) => {
        const r = await pg.query(sql, params);
        return { rows: r.rows, rowCount: r.affectedRows ?? 0 };
      },
    } as unknown as Db;
  }, 60_000);
  afterAll(async () => pg?.close());

  it('a changed source clears the old source cursor; a running cycle on it then conflicts', async () => {
    const jsonl = { type: 'jsonl', path: '/var/log/a.jsonl' };
    expect(await upsertDeployment(db, { id: 'switch', source: jsonl, sample_rate: 1 })).toEqual({ cursorReset: false });
    expect(await advanceCursor(db, 'switch', null, '{"v":1,"file":"a.jsonl","offset":10,"line":2}', 'c1')).toBe('advanced');
    // Same source, other sample rate: the cursor stays.
    expect(await upsertDeployment(db, { id: 'switch', source: { path: '/var/log/a.jsonl', type: 'jsonl' }, sample_rate: 0.5 })).toEqual({
      cursorReset: false,
    });
    expect(await getCursor(db, 'switch')).toBe('{"v":1,"file":"a.jsonl","offset":10,"line":2}');
    // Another source: a JSONL cursor would be sent to the HTTP server (or refused) on every cycle.
    expect(await upsertDeployment(db, { id: 'switch', source: { type: 'http', url: 'http://h/x' }, sample_rate: 0.5 })).toEqual({
      cursorReset: true,
    });
    expect(await getCursor(db, 'switch')).toBeNull();
    expect(await advanceCursor(db, 'switch', '{"v":1,"file":"a.jsonl","offset":10,"line":2}', 'later', 'c1')).toBe('conflict');
  });

  it('a deployment that is not registered is named with how to add it', async () => {
    await expect(requireDeployment(db, 'typo-bot')).rejects.toThrow(
      "deployment 'typo-bot' is not registered: add it with 'optiinfra deployment add typo-bot --source-url URL' (or --source-path PATH)",
    );
    await expect(requireDeployment(db, 'switch')).resolves.toBeUndefined();
  });
});

describe('schedule create and collect: no schedule for a deployment nobody registered', () => {
  it.each([[['schedule', 'create', '--deployment', 'typo-bot']], [['collect', '--deployment', 'typo-bot']]])(
    '%j checks the registration before it talks to Temporal',
    async (args) => {
      const r = await cli(args);
      expect(r.code).toBe(3);
      // The stores are asked first (unreachable here), before any schedule is made.
      expect(r.out).toMatch(/cannot use (ClickHouse|PostgreSQL)/);
      expect(r.out).not.toMatch(/temporal/i);
      expect(r.out).not.toContain('dbpass-5678');
    },
    30_000,
  );

  it('collect without --once refuses options only a one-off cycle takes', async () => {
    const r = await cli(['collect', '--deployment', 'shop-bot', '--page-size', '10']);
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/--page-size, --batch-size and --max-concurrent-batches apply to 'collect --once' only/);
  });
});

describe('schedule create twice at once', () => {
  it('both succeed: one creates, the other updates the schedule the first created', async () => {
    const existing = new Set<string>();
    let updates = 0;
    const tick = () => new Promise((r) => setTimeout(r, 5));
    const client = {
      schedule: {
        getHandle: (id: string) => ({
          update: async (fn: (prev: unknown) => unknown) => {
            await tick();
            if (!existing.has(id)) throw new ScheduleNotFoundError('schedule not found', id);
            fn({ state: { paused: false } });
            updates++;
          },
        }),
        create: async (o: { scheduleId: string }) => {
          await tick();
          if (existing.has(o.scheduleId)) throw new ScheduleAlreadyRunning('Schedule already exists and is running', o.scheduleId);
          existing.add(o.scheduleId);
        },
      },
    } as unknown as Client;
    const config = { temporal: { taskQueue: 'q' } } as Config;
    const results = await Promise.all([
      ensureSchedule(client, config, { deployment: 'shop-bot', every: '15m' }),
      ensureSchedule(client, config, { deployment: 'shop-bot', every: '15m' }),
    ]);
    expect(results.sort()).toEqual([false, true]);
    expect(updates).toBe(1);
  });
});

describe('collection workflow input built by hand', () => {
  it.each<[string, unknown, RegExp]>([
    ['a page size of 0', { pageSize: 0 }, /pageSize/],
    ['a huge batch size', { batchSize: 1e9 }, /batchSize/],
    ['negative maxInteractions', { maxInteractions: -5 }, /maxInteractions/],
    ['carried versions that are not a list', { carry: { versions: 'v1' } }, /carry\.versions/],
    ['carried totals that are not numbers', { carry: { pages: 'many' } }, /carry\.pages/],
    ['carried negative totals', { carry: { fetched: -1 } }, /carry\.fetched/],
    ['a budget window before 1970', { windowEndsAt: -1 }, /windowEndsAt/],
    ['a fractional budget window', { windowEndsAt: 1.5 }, /windowEndsAt/],
  ])('%s is refused by the input schema', (_what, extra, field) => {
    const r = collectionCycleInputSchema.safeParse({ deployment: 'shop-bot', ...(extra as object) });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues.map((i) => i.path.join('.')))).toMatch(field);
  });

  it('carried samples are cut to the sample limit, unknown carried keys dropped', () => {
    const many = Array.from({ length: 5000 }, (_, i) => ({ position: `line ${i}`, reason: 'bad' }));
    const r = collectionCycleInputSchema.parse({ deployment: 'shop-bot', carry: { badSamples: many, junk: 'x'.repeat(1000) } });
    const t = carriedTotals(r.carry);
    expect(t.badSamples).toHaveLength(20);
    expect(t).not.toHaveProperty('junk');
    expect(t.versions).toEqual([]);
  });

  it('a carry recorded by a run is accepted as it is', () => {
    const carry = { ...carriedTotals(undefined), pages: 3, fetched: 3000, versions: ['v1', 'v2'], coverageNote: 'scored 1 of 2' };
    expect(carriedTotals(collectionCycleInputSchema.parse({ deployment: 'shop-bot', carry }).carry)).toEqual(carry);
  });

  it('a check named twice is judged once', () => {
    expect(collectionCycleInputSchema.parse({ deployment: 'shop-bot', checks: ['quality', 'quality', 'toxicity'] }).checks).toEqual([
      'quality',
      'toxicity',
    ]);
  });
});
