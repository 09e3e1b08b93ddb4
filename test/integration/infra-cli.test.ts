/**
 * `optiinfra infra list | remove` against a PostgreSQL database of their own (the CLI run in this
 * process, as a user runs it): sources of every kind, a URL with credentials, a row whose stored
 * configuration was edited by hand, stored text that would steer a terminal, ids that share a
 * prefix or hold LIKE wildcards, and 20,000 sources read a page at a time.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { markInfraCollected, upsertInfraSource } from '../../activities/storage/postgres/agents.js';
import type { Db } from '../../activities/storage/postgres/db.js';
import { openStores, type Stores } from '../../client/runtime.js';
import { LIST_PAGE, type ListedInfraSource, listedInfraSources } from '../../client/cli/infra.js';
import { createScratchDatabase } from '../../stack/postgres.js';
import { eventually } from '../helpers/async.js';
import { hourlyCostRow } from '../helpers/cost-rows.js';
import { runCli } from '../helpers/cli.js';
import { testConfig, testEnv } from '../helpers/env.js';

/** What a terminal acts on: C0/C1 controls but the line break, bidi and zero-width characters. */
const STEERING = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/;

let stores: Stores;
let env: Record<string, string>;
let dir: string;
const drops: Array<() => Promise<void>> = [];

const cli = (...args: string[]) => runCli(['infra', ...args], env);
/** The registered ids, sorted by code point (the database's collation may order punctuation otherwise). */
const ids = async () => (await stores.db.query<{ id: string }>('SELECT id FROM infra_sources')).rows.map((r) => r.id).sort();
const listJson = async () => {
  const r = await cli('list', '--json');
  expect(r.code, r.out).toBe(0);
  return JSON.parse(r.out) as ListedInfraSource[];
};

beforeAll(async () => {
  const name = `optiinfra_infra_cli_${randomUUID().slice(0, 8)}`;
  const db = await createScratchDatabase(testEnv().databaseUrl, name);
  dir = mkdtempSync(join(tmpdir(), 'optiinfra-infra-cli-'));
  env = { CLICKHOUSE_URL: testEnv().clickhouseUrl, CLICKHOUSE_DATABASE: name, DATABASE_URL: db.url, OPTIINFRA_HOME: dir };
  stores = await openStores(testConfig({ DATABASE_URL: db.url, CLICKHOUSE_DATABASE: name }));
  drops.push(db.drop, async () => void (await stores.ch.client.command({ query: `DROP DATABASE IF EXISTS ${name}` })));
}, 300_000);

afterAll(async () => {
  for (const d of [...drops].reverse()) await d().catch(() => undefined);
  await stores?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await stores.db.query('DELETE FROM infra_sources');
});

describe('optiinfra infra list', () => {
  it('says how to add a source when none is registered, and --json is an empty list', async () => {
    const r = await cli('list');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain("no infrastructure source is registered: add one with 'optiinfra infra add <id> --focus DIR'");
    expect(await listJson()).toEqual([]);
  });

  it('shows every kind, where it reads without the secrets of its URL, and a hand-edited row as unknown', async () => {
    const focusDir = join(dir, 'focus');
    const secretUrl = 'http://scraper:pw-3c9e71@127.0.0.1:9400/metrics?token=tok-5b21d8&job=dcgm';
    for (const args of [
      ['add', 'billing', '--focus', focusDir],
      ['add', 'gpu-1', '--scrape', secretUrl, '--resource-id', 'i-0abc', '--instance-type', 'g5.xlarge'],
      ['add', 'prom', '--prometheus', 'https://prom.example:9090'],
      ['add', 'host-edited', '--scrape', 'http://127.0.0.1:9100/metrics'],
    ]) {
      const r = await cli(...args);
      expect(r.code, r.out).toBe(0);
    }
    await markInfraCollected(stores.db, 'prom', '2026-03-04T05:06:07.000Z');
    // Edited by hand: a scheme the collection refuses, credentials included.
    await stores.db.query(
      `UPDATE infra_sources SET config = '{"kind": "scrape", "url": "ftp://ops:pw-e4410a@10.0.0.9/metrics"}' WHERE id = 'host-edited'`,
    );

    const r = await cli('list');
    expect(r.code, r.out).toBe(0);
    const line = (id: string) => r.out.split('\n').find((l) => l.startsWith(`${id} `));
    expect(line('billing')).toMatch(new RegExp(`^billing\\s+focus\\s+${focusDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+-\\s+-\\s+-$`));
    expect(line('gpu-1')).toMatch(
      /^gpu-1\s+scrape\s+http:\/\/127\.0\.0\.1:9400\/metrics\?token=\*\*\*\*&job=dcgm\s+i-0abc\s+g5\.xlarge\s+-$/,
    );
    expect(line('prom')).toMatch(/^prom\s+prometheus\s+https:\/\/prom\.example:9090\/\s+-\s+-\s+2026-03-04 05:06:07$/);
    expect(line('host-edited')).toMatch(/^host-edited\s+unknown\s+ftp:\/\/10\.0\.0\.9\/metrics\s/);
    expect(r.out).toContain(
      "host-edited: its stored configuration is invalid (url: metrics url must be an http:// or https:// URL): register it again with 'optiinfra infra add host-edited …' or remove it with 'optiinfra infra remove host-edited'",
    );
    expect(r.out).toContain('4 source(s)');
    for (const secret of ['scraper', 'pw-3c9e71', 'tok-5b21d8', 'ops:', 'pw-e4410a']) expect(r.out).not.toContain(secret);
  });

  it('--json: one object per source in id order, the same redaction, the reason of an unknown one', async () => {
    await upsertInfraSource(stores.db, 'b-scrape', {
      kind: 'scrape',
      url: 'http://u:pw-70a1c3@h:9400/metrics',
      resourceId: 'i-1',
      instanceType: 'g5.xlarge',
    });
    await upsertInfraSource(stores.db, 'a-focus', { kind: 'focus', path: '/exports/focus' });
    await upsertInfraSource(stores.db, 'c-broken', { kind: 'focus', path: '/x' });
    await stores.db.query(`UPDATE infra_sources SET config = '"not an object"' WHERE id = 'c-broken'`);
    await markInfraCollected(stores.db, 'b-scrape', '2026-03-04T05:06:07.000Z');

    const json = await listJson();
    expect(json).toEqual([
      { id: 'a-focus', kind: 'focus', path: '/exports/focus', lastCollectedTo: null },
      {
        id: 'b-scrape',
        kind: 'scrape',
        url: 'http://h:9400/metrics',
        resourceId: 'i-1',
        instanceType: 'g5.xlarge',
        lastCollectedTo: '2026-03-04T05:06:07.000Z',
      },
      {
        id: 'c-broken',
        kind: 'unknown',
        lastCollectedTo: null,
        error: expect.stringMatching(/^its stored configuration is invalid \(.+\)$/),
      },
    ]);
    expect(JSON.stringify(json)).not.toContain('pw-70a1c3');
  });

  it('prints stored text without escapes or bidi controls, in the table and in --json', async () => {
    // Written as another version or a hand edit could: `infra add` refuses such an id.
    const id = 'host\u001b[2J\u202egnp.exe';
    await upsertInfraSource(stores.db, id, { kind: 'focus', path: '/d/\u001b]0;owned\u0007\u009b31m\u200bx' });
    const r = await cli('list');
    expect(r.code, r.out).toBe(0);
    expect(r.out).not.toMatch(STEERING);
    expect(r.out).toMatch(/^host\[2Jgnp\.exe\s+focus\s+\/d\/\]0;owned31mx/m);
    const j = await cli('list', '--json');
    expect(j.out).not.toMatch(STEERING);
    // Escaped, not altered: the id read back is the stored one (so it can be removed by it).
    expect((JSON.parse(j.out) as ListedInfraSource[])[0]!.id).toBe(id);
  });

  it('reads 20,000 sources a page at a time and lists them all, once each, in id order', async () => {
    await stores.db.query(
      `INSERT INTO infra_sources (id, kind, config)
       SELECT 'host-' || lpad(g::text, 5, '0'), 'scrape', jsonb_build_object('kind', 'scrape', 'url', 'http://10.1.0.1:9400/metrics')
       FROM generate_series(1, 20000) g`,
    );
    const rowsPerQuery: number[] = [];
    const db = stores.db;
    const counting = {
      query: async (...a: Parameters<Db['query']>) => {
        const r = await (db.query as (...x: unknown[]) => Promise<{ rows: unknown[] }>)(...a);
        rowsPerQuery.push(r.rows.length);
        return r;
      },
    } as unknown as Db;
    const listed = await listedInfraSources(counting);
    expect(listed).toHaveLength(20_000);
    expect(listed.map((s) => s.id)).toEqual(Array.from({ length: 20_000 }, (_, i) => `host-${String(i + 1).padStart(5, '0')}`));
    expect(Math.max(...rowsPerQuery)).toBeLessThanOrEqual(LIST_PAGE);
    // 20 full pages, then an empty one that ends the listing.
    expect(rowsPerQuery).toHaveLength(20_000 / LIST_PAGE + 1);
    // A page size that does not divide the count: the last, short page is read too.
    expect((await listedInfraSources(stores.db, [], 7_777)).length).toBe(20_000);

    const r = await cli('list', '--json');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.out) as unknown[]).length).toBe(20_000);
  });
});

describe('optiinfra infra remove', () => {
  it('unregisters the source, says what stays in ClickHouse, and it is gone from the list', async () => {
    await upsertInfraSource(stores.db, 'billing', { kind: 'focus', path: '/exports/focus' });
    await upsertInfraSource(stores.db, 'gpu-1', { kind: 'scrape', url: 'http://h:9400/metrics' });
    const r = await cli('remove', 'gpu-1');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('infrastructure source gpu-1 removed (scrape); the metric samples it collected stay in ClickHouse');
    expect((await listJson()).map((s) => s.id)).toEqual(['billing']);
    const f = await cli('remove', 'billing');
    expect(f.out).toContain('the cost rows it read are deleted from ClickHouse');
    expect(await ids()).toEqual([]);
  });

  it("deletes a FOCUS source's cost rows with it, and only its own", async () => {
    // Pins: a removed FOCUS directory's costs stop counting in cost analyses. Failed before (the
    // first version of `infra remove`): its rows stayed and were read by every later cost analysis.
    const row = (source: string, cost: number) =>
      hourlyCostRow({ start: Date.UTC(2025, 0, 3) / 1000, cost, resource: `vm-${source}`, source, ver: 1, seq: 0 });
    for (const [source, cost] of [
      ['billing', 100],
      ['billing-eu', 7],
    ] as const) {
      await upsertInfraSource(stores.db, source, { kind: 'focus', path: `/exports/${source}` });
      await stores.ch.insertCostRows([row(source, cost)]);
      await stores.ch.completeCostSnapshot(source, 1, 1);
    }
    const window = { from: '2025-01-01T00:00:00Z', to: '2025-02-01T00:00:00Z' };
    expect((await stores.ch.costTotals(window)).spendUsd).toBe(107);
    expect((await cli('remove', 'billing')).code).toBe(0);
    expect(
      await eventually(
        async () => (await stores.ch.costTotals(window)).spendUsd,
        (x) => x === 7,
      ),
    ).toBe(7);
    expect(await ids()).toEqual(['billing-eu']);
  });

  it('refuses an id that is not registered, naming it and `infra list`, with the usage exit code', async () => {
    await upsertInfraSource(stores.db, 'Gpu-1', { kind: 'scrape', url: 'http://h:9400/metrics' });
    const r = await cli('remove', 'gpu-1');
    expect(r.code).toBe(3);
    expect(r.out).toContain("error: no infrastructure source 'gpu-1' is registered");
    expect(r.out).toContain("see them with 'optiinfra infra list'");
    expect(await ids()).toEqual(['Gpu-1']);
  });

  it('removes a hand-edited source whose configuration no longer parses', async () => {
    await upsertInfraSource(stores.db, 'host-edited', { kind: 'focus', path: '/x' });
    await stores.db.query(`UPDATE infra_sources SET config = 'null' WHERE id = 'host-edited'`);
    const r = await cli('remove', 'host-edited');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('infrastructure source host-edited removed (unknown)');
    expect(await ids()).toEqual([]);
  });

  it('removes exactly the id given: not the ids it is a prefix of, nor what its LIKE wildcards would match', async () => {
    for (const id of ['a', 'a_b', 'axb', 'a%', 'ab', 'a\\'])
      await upsertInfraSource(stores.db, id, { kind: 'scrape', url: 'http://h:9400/metrics' });

    expect((await cli('remove', 'a')).code).toBe(0);
    expect(await ids()).toEqual(['a%', 'a\\', 'a_b', 'ab', 'axb'].sort());

    // '_' matches any one character in LIKE: 'axb' stays.
    expect((await cli('remove', 'a_b')).code).toBe(0);
    expect(await ids()).toEqual(['a%', 'a\\', 'ab', 'axb'].sort());

    // '%' matches anything in LIKE: only the id 'a%' itself goes.
    expect((await cli('remove', 'a%')).code).toBe(0);
    expect(await ids()).toEqual(['a\\', 'ab', 'axb'].sort());

    // LIKE's escape character, and a wildcard id that matches nothing exactly.
    expect((await cli('remove', 'a\\')).code).toBe(0);
    const none = await cli('remove', 'a%');
    expect(none.code).toBe(3);
    expect(none.out).toContain("no infrastructure source 'a%' is registered");
    expect(await ids()).toEqual(['ab', 'axb']);
  });
});
