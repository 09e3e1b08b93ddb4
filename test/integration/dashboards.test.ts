/**
 * The Grafana dashboard (deploy/grafana/dashboards/optiinfra.json) and its provisioning, without
 * a Grafana: the JSON is a valid dashboard model whose panels all have a provisioned data source
 * and queries; every ClickHouse query (panels and variables), with Grafana's variables and the
 * ClickHouse plugin's macros expanded as they would be for a concrete time range and deployment,
 * runs on the test stack's ClickHouse 18.16 and on a current release (chdb, when Python can
 * install it) against data this test writes, and returns rows; every PromQL expression parses
 * in a real Prometheus.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InteractionRow, ScoreRow } from '../../activities/storage/clickhouse/rows.js';
import { ClickHouseStore } from '../../activities/storage/clickhouse/store.js';
import type { Check } from '../../common/types.js';
import { ensurePrometheus } from '../../stack/binaries.js';
import { repoRoot } from '../../stack/paths.js';
import { freePort } from '../../stack/ports.js';
import { startPrometheus, type PrometheusServer } from '../../stack/prometheus.js';
import { ensureChdb, startChdbServer, type ChdbServer } from '../helpers/chdb.js';
import { testEnv } from '../helpers/env.js';

const execFileP = promisify(execFile);
const root = repoRoot();
const read = (p: string) => readFileSync(join(root, p), 'utf8');

const CH_TYPE = 'grafana-clickhouse-datasource';
const PROM_TYPE = 'prometheus';

interface Target {
  refId?: string;
  datasource?: { type?: string; uid?: string };
  rawSql?: string;
  expr?: string;
  editorType?: string;
}
interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  gridPos?: { x: number; y: number; w: number; h: number };
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string;
  datasource?: { type?: string; uid?: string };
  current?: { value?: string | string[] };
  multi?: boolean;
  includeAll?: boolean;
}
interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  time?: { from: string; to: string };
  templating?: { list: Variable[] };
  panels?: Panel[];
}

const dashboard = JSON.parse(read('deploy/grafana/dashboards/optiinfra.json')) as Dashboard;
const allPanels = (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = allPanels.filter((p) => p.type !== 'row');
const variables = dashboard.templating?.list ?? [];

/** The data sources the provisioning file declares: uid → type (a small reader for its YAML). */
function provisionedDataSources(): Record<string, string> {
  const text = read('deploy/grafana/provisioning/datasources/optiinfra.yml');
  const out: Record<string, string> = {};
  for (const item of text.split(/\n {2}- /).slice(1)) {
    const uid = /^\s*uid:\s*(\S+)/m.exec(item)?.[1];
    const type = /^\s*type:\s*(\S+)/m.exec(item)?.[1];
    if (uid && type) out[uid] = type;
  }
  return out;
}

// --- Grafana's interpolation and the ClickHouse plugin's macros --------------------------------

interface Range {
  from: number;
  to: number;
  intervalSeconds: number;
}

/** Grafana's `${name:format}` / `${name}` / `$name` for the given variable values. */
function interpolateVariables(text: string, values: Record<string, string[]>): string {
  const format = (vals: string[], fmt: string | undefined): string => {
    if (fmt === 'singlequote') return vals.map((v) => `'${v.replace(/'/g, "\\'")}'`).join(',');
    if (fmt === 'regex') {
      const esc = vals.map((v) => v.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&'));
      return esc.length === 1 ? esc[0]! : `(${esc.join('|')})`;
    }
    if (fmt === undefined) return vals.length === 1 ? vals[0]! : `{${vals.join(',')}}`;
    throw new Error(`variable format ${fmt} is not handled by this test`);
  };
  return text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}|\$([A-Za-z][A-Za-z0-9_]*)/g,
    (m, a: string | undefined, fmt: string | undefined, b: string | undefined) => {
      const name = (a ?? b)!;
      const vals = values[name];
      if (!vals) throw new Error(`unknown variable ${m} in: ${text}`);
      return format(vals, fmt);
    },
  );
}

/** The plugin's macros (grafana-clickhouse-datasource pkg/macros), for seconds-precision times. */
function expandClickHouseMacros(sql: string, r: Range): string {
  const dt = (t: number) => `toDateTime(${Math.floor(t / 1000)})`;
  return sql
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_, col: string) => `${col.trim()} >= ${dt(r.from)} AND ${col.trim()} <= ${dt(r.to)}`)
    .replace(/\$__fromTime\b/g, dt(r.from))
    .replace(/\$__toTime\b/g, dt(r.to))
    .replace(/\$__interval_s\b/g, String(Math.max(1, Math.floor(r.intervalSeconds))));
}

/** Grafana's built-in PromQL variables. */
function expandPromBuiltins(expr: string): string {
  return expr
    .replace(/\$__rate_interval\b/g, '1m')
    .replace(/\$__interval\b/g, '30s')
    .replace(/\$__range\b/g, '3h');
}

/** Table names qualified with the test's database (Grafana's data source sets it as the default). */
function qualify(sql: string, db: string): string {
  return sql.replace(/\b(FROM|JOIN)\s+(interactions|scores|score_daily)\b/g, `$1 ${db}.$2`);
}

// --- the test data -----------------------------------------------------------------------------

const JUDGE = 'groq:openai/gpt-oss-20b';

function testRows(deployment: string, now: number): { interactions: InteractionRow[]; scores: ScoreRow[] } {
  const interactions: InteractionRow[] = [];
  const scores: ScoreRow[] = [];
  const checks: Check[] = ['quality', 'hallucination', 'toxicity'];
  for (const [vi, version] of ['v1', 'v2'].entries()) {
    for (let i = 0; i < 24; i++) {
      const ts = Math.floor(now / 1000) - 2 * 3600 + vi * 3600 + i * 150;
      const id = `${deployment}-${version}-${i}`;
      interactions.push({
        deployment,
        id,
        model_version: version,
        ts,
        prompt: `question ${i}`,
        response: `answer ${i}`,
        context: '',
        has_context: 0,
        metadata: '{}',
        source: 'test',
        cycle_id: 'c1',
        ver: 1,
      });
      // One in four interactions is left unscored (coverage below 100 %).
      if (i % 4 === 3) continue;
      for (const [k, check] of checks.entries()) {
        const status: ScoreRow['status'] =
          check === 'toxicity' && i === 5 ? 'abstained' : check === 'hallucination' && i === 6 ? 'failed' : 'ok';
        const score = status !== 'ok' ? null : check === 'quality' ? 0.9 - vi * 0.2 - (i % 3) * 0.05 : (i + vi * 3) % 5 === 0 ? 0.8 : 0.1;
        scores.push({
          deployment,
          model_version: version,
          interaction_id: id,
          interaction_ts: ts,
          check_name: check,
          prompt_version: 'combined-v1',
          judge: JUDGE,
          status,
          reason: status === 'ok' ? '' : `test ${status}`,
          score,
          coherence: check === 'quality' && score !== null ? 0.8 : null,
          relevance: check === 'quality' && score !== null ? 0.9 : null,
          accuracy: check === 'quality' && score !== null ? 0.7 : null,
          completeness: check === 'quality' && score !== null ? 0.85 : null,
          confidence: score === null ? null : 0.9,
          hate_speech: check === 'toxicity' && score !== null ? 0 : null,
          violence: check === 'toxicity' && score !== null ? 0 : null,
          profanity: check === 'toxicity' && score !== null ? 0 : null,
          reasoning: '',
          truncated: 0,
          latency_ms: 300,
          prompt_tokens: k === 0 ? 1200 : 0,
          completion_tokens: k === 0 ? 150 : 0,
          attempts: 1,
          scored_at: ts + 60,
          ver: 1,
        });
      }
    }
  }
  return { interactions, scores };
}

// --- the tests ---------------------------------------------------------------------------------

describe('the Grafana dashboard model and its provisioning', () => {
  it('is a valid dashboard: required fields, unique panel ids, a data source and queries on every panel', () => {
    expect(dashboard.uid).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
    expect(dashboard.title).toBeTruthy();
    expect(typeof dashboard.schemaVersion).toBe('number');
    expect(dashboard.time?.from).toBeTruthy();
    expect(queryPanels.length).toBeGreaterThanOrEqual(15);
    const ids = allPanels.map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);

    const sources = provisionedDataSources();
    expect(sources).toEqual({ 'optiinfra-prometheus': PROM_TYPE, 'optiinfra-clickhouse': CH_TYPE });
    for (const p of queryPanels) {
      const where = `panel ${p.id} '${p.title}'`;
      expect(p.title, where).toBeTruthy();
      expect(p.type, where).toMatch(/^(timeseries|table|stat|bargauge|gauge|barchart|piechart|text)$/);
      expect(p.datasource?.uid, `${where} has a data source`).toBeTruthy();
      expect(sources[p.datasource!.uid!], `${where}: data source ${p.datasource!.uid} is provisioned`).toBe(p.datasource!.type);
      expect(p.targets?.length, `${where} has queries`).toBeGreaterThan(0);
      const refs = p.targets!.map((t) => t.refId);
      expect(new Set(refs).size, `${where}: refIds unique`).toBe(refs.length);
      for (const t of p.targets!) {
        expect(t.refId, where).toMatch(/^[A-Z]$/);
        expect(t.datasource ?? p.datasource, where).toEqual(p.datasource);
        if (p.datasource!.type === CH_TYPE) {
          expect(t.editorType, where).toBe('sql');
          expect(t.rawSql?.trim(), `${where}: SQL`).toBeTruthy();
        } else {
          expect(t.expr?.trim(), `${where}: PromQL`).toBeTruthy();
        }
      }
      // Inside the 24-column grid.
      const g = p.gridPos!;
      expect(g.w > 0 && g.h > 0 && g.x >= 0 && g.x + g.w <= 24 && g.y >= 0, `${where} grid ${JSON.stringify(g)}`).toBe(true);
    }
    // No two panels overlap.
    const boxes = allPanels.map((p) => ({ id: p.id, ...p.gridPos! }));
    for (const a of boxes) {
      for (const b of boxes) {
        if (a.id! >= b.id!) continue;
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, `panels ${a.id} and ${b.id} overlap`).toBe(false);
      }
    }
    // What the dashboard is for.
    const titles = queryPanels.map((p) => p.title!.toLowerCase()).join(' | ');
    for (const topic of [
      'quality per model version',
      'hallucination rate',
      'toxicity rate',
      'coverage',
      'judge cost',
      'gate decisions',
      'rollbacks',
      'cycle lag',
      'workers up',
      'rate-limit headroom',
    ]) {
      expect(titles, topic).toContain(topic);
    }
    // Every variable a query uses is defined.
    const defined = new Set(variables.map((v) => v.name));
    for (const text of [
      ...queryPanels.flatMap((p) => p.targets!.map((t) => t.rawSql ?? t.expr ?? '')),
      ...variables.map((v) => v.query ?? ''),
    ]) {
      for (const m of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}|\$([A-Za-z][A-Za-z0-9_]*)/g)) {
        expect(defined, `variable ${m[0]} in: ${text.slice(0, 80)}`).toContain(m[1] ?? m[2]);
      }
    }
    for (const v of variables.filter((x) => x.type === 'query')) expect(sources[v.datasource?.uid ?? '']).toBe(v.datasource?.type);
  });

  it('is provisioned by docker-compose.yml with both data sources, and Prometheus scrapes the workers', async () => {
    const compose = read('docker-compose.yml');
    const provider = read('deploy/grafana/provisioning/dashboards/optiinfra.yml');
    const path = /^\s*path:\s*(\S+)/m.exec(provider)?.[1];
    expect(path).toBeTruthy();
    expect(compose).toContain(`./deploy/grafana/dashboards:${path}:ro`);
    expect(compose).toContain('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro');
    expect(compose).toMatch(/GF_INSTALL_PLUGINS: grafana-clickhouse-datasource/);
    expect(compose).toContain('./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    // The data sources point at the services of the file; the ClickHouse one at its database.
    const ds = read('deploy/grafana/provisioning/datasources/optiinfra.yml');
    expect(ds).toMatch(/url: http:\/\/prometheus:9090/);
    expect(ds).toMatch(/host: clickhouse\n\s+port: 8123\n\s+protocol: http/);
    for (const v of ['CLICKHOUSE_USER', 'CLICKHOUSE_PASSWORD', 'CLICKHOUSE_DATABASE']) {
      expect(ds).toContain(`\${${v}}`);
      expect(compose, `grafana's ${v}`).toMatch(new RegExp(`\\n\\s+${v}: `));
    }
    // Prometheus scrapes the workers' metrics port, the one the worker service sets.
    const prom = read('deploy/prometheus/prometheus.yml');
    const port = /OPTIINFRA_METRICS_PORT: "(\d+)"/.exec(compose)?.[1];
    expect(port).toBeTruthy();
    expect(prom).toMatch(new RegExp(`names: \\[worker\\]\\n\\s+type: A\\n\\s+port: ${port}\\n`));
    const promtool = join(dirname(await ensurePrometheus()), 'promtool');
    if (existsSync(promtool)) {
      const r = await execFileP(promtool, ['check', 'config', join(root, 'deploy/prometheus/prometheus.yml')]);
      expect(`${r.stdout}${r.stderr}`).toMatch(/SUCCESS/);
    }
  });
});

describe('every dashboard query against real servers', () => {
  const deployment = `dash-${randomUUID().slice(0, 8)}`;
  const now = Date.now();
  const range: Range = { from: now - 3 * 3600_000, to: now, intervalSeconds: 600 };
  const db = testEnv().clickhouseDatabase;
  let legacy: ClickHouseStore;
  let modern: { store: ClickHouseStore; server: ChdbServer; db: string } | undefined;
  let modernSkip: string | undefined;
  let prom: PrometheusServer;
  let home: string;
  let values: Record<string, string[]>;

  beforeAll(async () => {
    home = join(testEnv().home, `dashboards-${randomUUID().slice(0, 8)}`);
    mkdirSync(home, { recursive: true });
    const rows = testRows(deployment, now);
    legacy = new ClickHouseStore(testEnv().clickhouseUrl, db);
    await legacy.migrate();
    expect(await legacy.insertIsolatingBad('interactions', rows.interactions)).toEqual([]);
    await legacy.insertScores(rows.scores);

    const py = ensureChdb();
    if ('skip' in py) {
      modernSkip = py.skip;
      console.log(`[dashboards] current ClickHouse skipped: ${modernSkip}`);
    } else {
      const server = await startChdbServer({ python: py.python, home: join(home, 'chdb') });
      const mdb = `optiinfra_dash_${randomUUID().slice(0, 8)}`;
      const store = new ClickHouseStore(server.url, mdb);
      await store.migrate();
      expect(await store.insertIsolatingBad('interactions', rows.interactions)).toEqual([]);
      await store.insertScores(rows.scores);
      modern = { store, server, db: mdb };
    }

    const port = await freePort();
    prom = await startPrometheus({ home, port, scrapeTargets: [`127.0.0.1:${port}`], scrapeIntervalSec: 5 });

    // Variable values: the query variables' own results (which must hold the test's data), the
    // others' defaults.
    values = {};
    for (const v of variables) {
      if (v.type === 'query') continue;
      const cur = v.current?.value;
      values[v.name] = Array.isArray(cur) ? cur : [cur ?? v.query ?? ''];
    }
    values.deployment = [deployment];
    values.judge = [JUDGE];
  }, 1_200_000);

  afterAll(async () => {
    await legacy?.close();
    if (modern) {
      await modern.store.close();
      await modern.server.stop();
    }
    await prom?.stop();
  });

  /** Run a query on a store; the rows it returns (tab-separated lines). */
  async function rowsOf(store: ClickHouseStore, database: string, sql: string): Promise<string[]> {
    const rs = await store.client.query({ query: qualify(sql, database), format: 'TabSeparated' });
    return (await rs.text()).split('\n').filter((l) => l !== '');
  }

  const chQueries = (): Array<{ where: string; sql: string }> => [
    ...variables
      .filter((v) => v.type === 'query' && v.datasource?.type === CH_TYPE)
      .map((v) => ({ where: `variable ${v.name}`, sql: v.query! })),
    ...queryPanels
      .filter((p) => p.datasource?.type === CH_TYPE)
      .flatMap((p) => p.targets!.map((t) => ({ where: `panel ${p.id} '${p.title}' ${t.refId}`, sql: t.rawSql! }))),
  ];

  function expand(sql: string): string {
    const out = interpolateVariables(expandClickHouseMacros(sql, range), values);
    expect(out, 'nothing left to expand').not.toMatch(/\$/);
    return out;
  }

  it('the variables list the test deployment and judge', async () => {
    const vars = variables.filter((v) => v.type === 'query');
    expect(vars.map((v) => v.name).sort()).toEqual(['deployment', 'judge']);
    expect(await rowsOf(legacy, db, expand(vars.find((v) => v.name === 'deployment')!.query!))).toContain(deployment);
    expect(await rowsOf(legacy, db, expand(vars.find((v) => v.name === 'judge')!.query!))).toEqual([JUDGE]);
  });

  it('every ClickHouse query runs on ClickHouse 18.16 and returns rows', async () => {
    const counts: Record<string, number> = {};
    for (const q of chQueries()) {
      const sql = expand(q.sql);
      const rows = await rowsOf(legacy, db, sql).catch((e: unknown) => {
        throw new Error(`${q.where} fails on 18.16: ${e instanceof Error ? e.message : String(e)}\n${sql}`);
      });
      expect(rows.length, `${q.where} returns rows:\n${sql}`).toBeGreaterThan(0);
      counts[q.where] = rows.length;
    }
    expect(Object.keys(counts).length).toBeGreaterThanOrEqual(10);
    console.log(`[dashboards] rows per ClickHouse query on 18.16: ${JSON.stringify(counts)}`);
  });

  it('every ClickHouse query runs on a current ClickHouse release and returns the same rows', async (ctx) => {
    if (!modern) return ctx.skip();
    console.log(`[dashboards] current ClickHouse: ${modern.server.version}`);
    for (const q of chQueries()) {
      const sql = expand(q.sql);
      const rows = await rowsOf(modern.store, modern.db, sql).catch((e: unknown) => {
        throw new Error(`${q.where} fails on ClickHouse ${modern!.server.version}: ${e instanceof Error ? e.message : String(e)}\n${sql}`);
      });
      expect(rows.length, `${q.where} returns rows`).toBeGreaterThan(0);
      // The deployment variable lists every deployment of the database (other tests write theirs
      // into the 18.16 one): this test's is among them on both.
      if (q.where === 'variable deployment') {
        expect(rows).toContain(deployment);
        continue;
      }
      // Same figures (numbers compared to 6 significant digits).
      const norm = (r: string[]) =>
        r.map((l) => l.split('\t').map((c) => (c !== '' && Number.isFinite(Number(c)) ? Number(Number(c).toPrecision(6)) : c)));
      expect(norm(rows), q.where).toEqual(norm(await rowsOf(legacy, db, sql)));
    }
  });

  it('the data behind the panels: coverage, rates and cost are what the test wrote', async () => {
    const sqlOf = (title: string) => expand(queryPanels.find((p) => p.title === title)!.targets![0]!.rawSql!);
    const cov = (await rowsOf(legacy, db, sqlOf('Coverage per model version over the time range'))).map((l) => l.split('\t'));
    expect(cov.map((r) => [r[0], r[1], Number(r[2]), Number(r[3])])).toEqual([
      [deployment, 'v1', 24, 18],
      [deployment, 'v2', 24, 18],
    ]);
    const cost = (await rowsOf(legacy, db, sqlOf('Judge cost per model version'))).map((l) => l.split('\t'));
    // 18 scored interactions × 1,200 input and 150 output tokens, at the default prices.
    const price = (Number(values.price_input![0]) * 18 * 1200 + Number(values.price_output![0]) * 18 * 150) / 1e6;
    for (const r of cost) expect(Number(r[6])).toBeCloseTo(price, 9);
    const versions = (await rowsOf(legacy, db, sqlOf('Model versions over the time range'))).map((l) => l.split('\t'));
    expect(versions.map((r) => [r[1], Number(r[6]), Number(r[7]), Number(r[8])])).toEqual([
      ['v1', 52, 1, 1],
      ['v2', 52, 1, 1],
    ]);
  });

  it('every PromQL expression parses in the real Prometheus', async () => {
    const query = async (expr: string) => {
      const r = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(expr)}&time=${now / 1000}`);
      return { status: r.status, body: (await r.json()) as { status: string; errorType?: string; error?: string } };
    };
    // A parse error is refused: the check below can fail.
    const bad = await query('sum by (model (rate(optiinfra_llm_requests_total[1m]))');
    expect(bad).toMatchObject({ status: 400, body: { status: 'error', errorType: 'bad_data' } });

    let n = 0;
    for (const p of queryPanels.filter((x) => x.datasource?.type === PROM_TYPE)) {
      for (const t of p.targets!) {
        const expr = interpolateVariables(expandPromBuiltins(t.expr!), values);
        expect(expr, 'nothing left to expand').not.toMatch(/\$/);
        const r = await query(expr);
        expect(r.body, `panel ${p.id} '${p.title}' ${t.refId}: ${expr}`).toMatchObject({ status: 'success' });
        n++;
      }
    }
    expect(n).toBeGreaterThanOrEqual(15);
    console.log(`[dashboards] ${n} PromQL expressions parsed by Prometheus`);
  });
});
