/**
 * The ClickHouse store given hostile identifiers and values: ids with SQL metacharacters are
 * refused before any SQL is built; texts with quotes, `--`, `;`, backslashes, ClickHouse
 * parameter syntax, NUL, emoji, right-to-left marks and 10 MB are read back exactly; lone UTF-16
 * surrogates (which UTF-8 cannot hold) are stored as U+FFFD; no query returns another
 * deployment's rows.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InteractionRow } from '../../activities/storage/clickhouse/rows.js';
import { SqlValueError } from '../../activities/storage/clickhouse/sql.js';
import { ClickHouseStore } from '../../activities/storage/clickhouse/store.js';
import { PV, interaction, rng, scoresFor } from '../helpers/chdb-scenario.js';
import { testEnv } from '../helpers/env.js';

const T0 = 1_735_689_600; // 2025-01-01T00:00:00Z

/** Texts built to break a query or an insert if they ever reached SQL unescaped. */
const HOSTILE_TEXTS: Record<string, string> = {
  quotes: `it's "quoted" and 'single'`,
  comment: `x' -- rest of the line`,
  semicolon: `'; DROP TABLE interactions; --`,
  backslashes: `a\\b\\\\c\\'d\\`,
  trailingBackslash: 'ends with a backslash\\',
  escapes: '\\n \\t \\0 \\x41 \\u0041',
  params: '{name:String} {id:UInt64} {{x}}',
  nul: 'before\u0000after',
  controls: '\u0001\u0007\b\t\n\r\u001b[31m\u007f',
  emoji: '👩‍👩‍👧 🇫🇷 🏳️‍🌈 𝕏',
  rtl: '\u202eevil\u202c \u200fמה\u200e \u2066x\u2069',
  json: '{"payloads":[1,2]} \\"',
};

describe('the ClickHouse store with hostile identifiers and values', () => {
  let st: ClickHouseStore;
  const dep = `hostile-${randomUUID().slice(0, 8)}`;
  const other = `${dep}.other`;

  beforeAll(async () => {
    st = new ClickHouseStore(testEnv().clickhouseUrl, `optiinfra_hostile_${randomUUID().slice(0, 8)}`);
    await st.migrate();
  });
  afterAll(async () => {
    await st?.client.command({ query: `DROP DATABASE IF EXISTS ${st.db}` }).catch(() => undefined);
    await st?.close();
  });

  // Holds already: ids are checked against ID_PATTERN before any SQL is built.
  it('refuses ids and model versions with SQL metacharacters before building SQL, naming them', async () => {
    const bad = [
      `x' OR 1=1 --`,
      `${dep}'; DROP TABLE scores; --`,
      'a\\b',
      '{deployment:String}',
      'nul\u0000x',
      'lone\ud800',
      '👩‍👩‍👧',
      '\u202eevil',
      'a b',
      '',
      'x'.repeat(129),
    ];
    const pv = PV;
    for (const v of bad) {
      const calls: Array<() => Promise<unknown>> = [
        () => st.interactionsByIds(v, ['a']),
        () => st.interactionsByIds(dep, [v]),
        () => st.interactionsPerVersion(v),
        () => st.interactionsPerVersion(dep, v || ' '),
        () => st.textChars(dep, ['ok', v]),
        () => st.storedChecks({ deployment: dep, ids: [v], judge: 'offline', promptVersions: pv }),
        () => st.countScores(v),
        () => st.countInteractions(v),
        () => st.aggregateScores(dep, v || ' '),
        () => st.versionAggregates({ deployment: v, version: 'v1', judge: 'offline', promptVersions: pv }),
        () => st.versionAggregates({ deployment: dep, version: v, judge: 'offline', promptVersions: pv }),
        () =>
          st.scoreTrends({
            deployment: v,
            judge: 'offline',
            promptVersions: pv,
            from: '2025-01-01T00:00:00Z',
            to: '2025-02-01T00:00:00Z',
            stepSeconds: 3600,
          } as never),
      ];
      for (const call of calls) {
        const e = await call().then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(e, JSON.stringify(v)).toBeInstanceOf(SqlValueError);
        expect((e as Error).message).toMatch(/is not a valid identifier/);
      }
    }
  });

  it('reads back hostile prompts, responses, contexts and metadata exactly as written', async () => {
    const rows: InteractionRow[] = Object.entries(HOSTILE_TEXTS).map(([name, text], i) => ({
      ...interaction(dep, `t-${name}`, 'v1', T0 + i),
      prompt: text,
      response: `${text}|${text}`,
      context: text,
      has_context: 1,
      metadata: JSON.stringify({ [text]: text }),
      source: text,
      cycle_id: text,
    }));
    expect(await st.insertIsolatingBad('interactions', rows)).toEqual([]);
    const back = await st.interactionsByIds(
      dep,
      rows.map((r) => r.id),
    );
    expect(back).toEqual([...rows].sort((a, b) => (a.id < b.id ? -1 : 1)));
    const chars = await st.textChars(
      dep,
      rows.map((r) => r.id),
    );
    // length() counts bytes in ClickHouse: the UTF-8 size of the three texts.
    expect(chars).toEqual({
      interactions: rows.length,
      chars: rows.reduce((a, r) => a + Buffer.byteLength(r.prompt + r.response + r.context), 0),
    });
  });

  it('reads back a 10 MB prompt and response exactly', async () => {
    const big = 'ab\'"\\;--{x:String}🙂'.repeat((10 * 1024 * 1024) / 20);
    const row = { ...interaction(dep, 'ten-mb', 'v1', T0), prompt: big, response: [...big].reverse().join('') };
    expect(await st.insertIsolatingBad('interactions', [row])).toEqual([]);
    const [back] = await st.interactionsByIds(dep, ['ten-mb']);
    expect(back?.prompt.length).toBe(big.length);
    expect(back?.prompt === row.prompt && back?.response === row.response).toBe(true);
  });

  // Failed before the fix: a lone surrogate went to ClickHouse as a JSON \ud800 escape, was
  // stored as bytes that are not UTF-8 and came back as other characters.
  it('stores lone UTF-16 surrogates as U+FFFD, in texts and in the rows a query matches on', async () => {
    const row = {
      ...interaction(dep, 'lone', 'v1', T0),
      prompt: 'high \ud800 end',
      response: '\udc00 low first',
      context: 'pair 😀 and \ud83d alone',
      metadata: JSON.stringify({ k: 'x\udfffy' }),
    };
    expect(await st.insertIsolatingBad('interactions', [row])).toEqual([]);
    const [back] = await st.interactionsByIds(dep, ['lone']);
    expect(back?.prompt).toBe('high \ufffd end');
    expect(back?.response).toBe('\ufffd low first');
    expect(back?.context).toBe('pair 😀 and \ufffd alone');
    // Metadata is JSON text: its surrogate is the six characters of an escape, kept as written.
    expect(back?.metadata).toBe(row.metadata);

    // A judge name (a literal in the WHERE clause) with quotes, backslashes, NUL and a lone
    // surrogate finds the rows written with it.
    const judge = `groq:it's\\a\u0000"b"-- {j:String} \ud800`;
    const scores = scoresFor([row], rng(7), judge);
    await st.insertScores(scores);
    const stored = await st.storedChecks({ deployment: dep, ids: ['lone'], judge, promptVersions: PV });
    expect([...(stored.get('lone') ?? [])].sort()).toEqual(scores.map((s) => s.check_name).sort());
  });

  // Holds already: ids that differ only by characters a LIKE or a regex would treat as special
  // never see each other's rows.
  it('never returns another deployment’s rows, whatever the ids look like', async () => {
    const a = interaction(dep, 'shared-id', 'v.1', T0);
    const b = { ...interaction(other, 'shared-id', 'v_1', T0), prompt: 'other deployment' };
    const c = { ...interaction(`${dep}:x`, 'shared-id', 'v-1', T0), prompt: 'third deployment' };
    await st.insertIsolatingBad('interactions', [a, b, c]);
    await st.insertScores([...scoresFor([a], rng(1)), ...scoresFor([b], rng(2)), ...scoresFor([b], rng(3))]);
    expect((await st.interactionsByIds(dep, ['shared-id']))[0]?.prompt).toBe(a.prompt);
    expect((await st.interactionsByIds(other, ['shared-id']))[0]?.prompt).toBe('other deployment');
    expect(await st.interactionsPerVersion(other)).toEqual({ v_1: 1 });
    expect(await st.interactionsPerVersion(`${dep}:x`)).toEqual({ 'v-1': 1 });
    expect(await st.countInteractions(other)).toBe(1);
    expect((await st.aggregateScores(other)).every((x) => x.model_version === 'v_1')).toBe(true);
    expect((await st.aggregateScores(dep, 'v.1')).length).toBeGreaterThan(0);
    expect(await st.aggregateScores(dep, 'v_1')).toEqual([]);
    expect(await st.countScores(`${dep}:x`)).toBe(0);
  });
});
