/**
 * An agent's analysis as an activity in a child process with a 256 MB heap (a worker's default),
 * against a test ClickHouse database, with every statement and heartbeat recorded and the peak
 * heap measured; and a store that records the statements run in this process.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { expect } from 'vitest';
import { ClickHouseStore } from '../../activities/storage/clickhouse/store.js';
import type { AgentAnalysis } from '../../domain/agents/types.js';
import { repoRoot } from '../../stack/paths.js';
import { testEnv } from './env.js';

export interface ChildResult {
  analysis: AgentAnalysis;
  statements: Array<{ rows: number; sql: string }>;
  heartbeats: Array<Record<string, unknown>>;
  peakHeapMb: number;
}

/** A statement that reads a page of metric samples. */
export const isPage = (s: { sql: string }) => s.sql.startsWith('SELECT intDiv(toUnixTimestamp(ts)');

/**
 * Run `analysis` (a JS expression that may use `ch`, `deps` and `infra`; the agents' modules are
 * imported by `imports`, repository-relative) with `infra` serving `sources` (a JS expression)
 * as already collected.
 */
export function analyseInChild(o: {
  dir: string;
  db: string;
  name: string;
  imports: Record<string, string>;
  sources: string;
  analysis: string;
  timeoutMs: number;
}): ChildResult {
  const script = path.join(o.dir, `${o.name}.mts`);
  const testing = createRequire(import.meta.url).resolve('@temporalio/testing');
  const src = (p: string) => JSON.stringify(path.join(repoRoot(), p));
  const imports = Object.entries(o.imports).map(([name, file]) => `import { ${name} } from ${src(file)};`);
  writeFileSync(
    script,
    `import { ClickHouseStore } from ${src('activities/storage/clickhouse/store.ts')};
${imports.join('\n')}
import testing from ${JSON.stringify(testing)};
const ch = new ClickHouseStore(${JSON.stringify(testEnv().clickhouseUrl)}, ${JSON.stringify(o.db)});
const statements = [];
const query = ch.query.bind(ch);
ch.query = async (sql) => { const rows = await query(sql); statements.push({ rows: rows.length, sql: sql.trim().slice(0, 80) }); return rows; };
let peak = 0;
const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().heapUsed); }, 10);
const sources = ${o.sources};
const infra = { async collectKinds(kinds) { return { sources: kinds.includes('focus') ? [] : sources, errors: [] }; }, async listInfraSources() { return sources; } };
const deps = { config: {}, ch, db: {} };
const env = new testing.MockActivityEnvironment();
const heartbeats = [];
env.on('heartbeat', (d) => heartbeats.push(d));
const analysis = await env.run(${o.analysis});
clearInterval(timer);
await ch.close();
process.stdout.write(JSON.stringify({ analysis, statements, heartbeats, peakHeapMb: Math.round(Math.max(peak, process.memoryUsage().heapUsed) / 1048576) }));
`,
  );
  const r = spawnSync(process.execPath, ['--max-old-space-size=256', '--import', 'tsx', script], {
    cwd: repoRoot(),
    encoding: 'utf8',
    timeout: o.timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  expect(r.status, `${r.signal ?? ''} ${r.stderr.slice(-2000)}`).toBe(0);
  return JSON.parse(r.stdout) as ChildResult;
}

/** A store on `db` that records every statement it runs and how many rows came back. */
export function recordingStore(db: string): { st: ClickHouseStore; statements: Array<{ rows: number; sql: string }> } {
  const statements: Array<{ rows: number; sql: string }> = [];
  const st = new ClickHouseStore(testEnv().clickhouseUrl, db);
  const query = st.query.bind(st);
  st.query = async <T>(sql: string) => {
    const rows = await query<T>(sql);
    statements.push({ rows: rows.length, sql: sql.trim() });
    return rows;
  };
  return { st, statements };
}
