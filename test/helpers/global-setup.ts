/**
 * One set of real servers for the whole test run, started by the project's own stack code:
 * a Temporal dev server (in memory, own ports), a ClickHouse server (own ports, data under
 * .stack-test/), and PostgreSQL: DATABASE_URL, else the machine's server on 127.0.0.1:5432,
 * else embedded PGlite. Each run uses fresh databases, dropped at the end.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { ensureTemporalCli, ensureTemporalTestServer } from '../../stack/binaries.js';
import { startClickhouse } from '../../stack/clickhouse.js';
import { repoRoot } from '../../stack/paths.js';
import { freePort } from '../../stack/ports.js';
import { createScratchDatabase, postgresAdminUrl, startPglite } from '../../stack/postgres.js';
import { stackDown } from '../../stack/stack.js';
import { startTemporal } from '../../stack/temporal.js';
import { workflowsPath } from '../../workers/worker.js';
import type { TestEnv } from './env.js';

declare module 'vitest' {
  export interface ProvidedContext {
    testEnv: TestEnv;
  }
}

export default async function setup(project: TestProject) {
  // Tools are installed once under .stack-test/; each run gets its own servers, pid files and
  // data under .stack-test/run-<tag>, so concurrent runs never stop each other's servers.
  const shared = join(repoRoot(), '.stack-test');
  const runTag = `${process.pid}_${Date.now().toString(36)}`;
  const home = join(shared, `run-${runTag}`);
  mkdirSync(home, { recursive: true });
  const log = (s: string) => console.log(`[test stack] ${s}`);
  const t0 = Date.now();
  const [temporalCli, testServer] = await Promise.all([ensureTemporalCli(shared), ensureTemporalTestServer(shared)]);
  process.env.TEMPORAL_CLI = temporalCli;
  const [temporal, clickhouse] = await Promise.all([
    (async () => startTemporal({ home, port: await freePort(), uiPort: await freePort() }))(),
    (async () => startClickhouse({ home, httpPort: await freePort(), tcpPort: await freePort() }))(),
  ]);
  log(`Temporal ${temporal.address}, ClickHouse ${clickhouse.url} (${Date.now() - t0} ms)`);

  const adminUrl = await postgresAdminUrl();
  let databaseUrl: string;
  let pgliteUrl: string | undefined;
  let dropDb: (() => Promise<void>) | undefined;
  if (adminUrl) {
    const dbName = `optiinfra_test_${runTag}`;
    const scratch = await createScratchDatabase(adminUrl, dbName);
    databaseUrl = scratch.url;
    dropDb = scratch.drop;
    log(`PostgreSQL database ${dbName}`);
  } else {
    log('no PostgreSQL configured or on 127.0.0.1:5432: using embedded PGlite for the whole run');
  }
  // The embedded PGlite path is always exercised by its own test, on its own server.
  const pglite = await startPglite({ home, port: await freePort() });
  pgliteUrl = pglite.url;
  databaseUrl ??= pgliteUrl;

  const bundleDir = join(home, 'bundle');
  mkdirSync(bundleDir, { recursive: true });
  const bundlePath = join(bundleDir, `workflows-${runTag}.js`);
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: { log() {}, info() {}, warn() {}, error() {}, debug() {}, trace() {} } as never });
  writeFileSync(bundlePath, code);

  const env: TestEnv = {
    home,
    temporalAddress: temporal.address,
    temporalCli,
    temporalTestServer: testServer,
    clickhouseUrl: clickhouse.url,
    clickhouseDatabase: `optiinfra_test_${runTag}`,
    databaseUrl,
    pgliteUrl,
    bundlePath,
  };
  project.provide('testEnv', env);

  return async () => {
    await dropDb?.().catch((e: unknown) => log(`could not drop the test database: ${String(e)}`));
    try {
      const r = await fetch(`${clickhouse.url}/?query=${encodeURIComponent(`DROP DATABASE IF EXISTS ${env.clickhouseDatabase}`)}`, { method: 'POST' });
      await r.text();
    } catch {
      /* server already gone */
    }
    rmSync(bundlePath, { force: true });
    await stackDown({ home, log: () => undefined });
    rmSync(home, { recursive: true, force: true });
  };
}
