/**
 * One set of real servers for the whole test run, started by the project's own stack code:
 * a Temporal dev server (in memory, own ports), a ClickHouse server (own ports, data under
 * .stack-test/), and PostgreSQL: DATABASE_URL, else the machine's server on 127.0.0.1:5432,
 * else embedded PGlite. Each run uses fresh databases, dropped at the end.
 *
 * Start-up is sized for a loaded 2-core machine (another suite running beside this one): each
 * server may take OPTIINFRA_STARTUP_TIMEOUT seconds (default 180) to become ready. A server that
 * does not come up fails the run with its name, the reason and its log file, and the servers
 * already started are stopped again.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { ensureTemporalCli, ensureTemporalTestServer } from '../../stack/binaries.js';
import { startClickhouse } from '../../stack/clickhouse.js';
import { repoRoot } from '../../stack/paths.js';
import { onFreePorts } from '../../stack/ports.js';
import { createScratchDatabase, postgresAdminUrl, startPglite } from '../../stack/postgres.js';
import { startupTimeoutMs } from '../../stack/processes.js';
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
  const limitS = startupTimeoutMs() / 1000; // a bad OPTIINFRA_STARTUP_TIMEOUT fails here, before anything starts
  mkdirSync(home, { recursive: true });
  const log = (s: string) => console.log(`[test stack] ${s}`);
  const t0 = Date.now();
  const secs = (t: number) => `${((Date.now() - t) / 1000).toFixed(1)} s`;
  /** Run one start-up step; its failure names the service and what to look at. */
  const step = async <T>(service: string, run: () => Promise<T>, quiet = false): Promise<T> => {
    const t = Date.now();
    try {
      const r = await run();
      if (!quiet) log(`${service} ready (${secs(t)})`);
      return r;
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new Error(
        `test stack: ${service} did not come up after ${secs(t)} (start-up limit ${limitS} s, OPTIINFRA_STARTUP_TIMEOUT): ${why}`,
      );
    }
  };
  /** Stop what was started and report every failed step; the servers' logs stay in <home>/logs. */
  const failed = async (results: PromiseSettledResult<unknown>[]): Promise<never> => {
    await stackDown({ home, log: () => undefined }).catch(() => undefined);
    const errors = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as Error).message);
    throw new Error(`${errors.join('\n')}\n(the other servers were stopped; logs kept in ${join(home, 'logs')})`);
  };

  const tools = await Promise.allSettled([
    step('Temporal CLI', () => ensureTemporalCli(shared), true),
    step('Temporal test server', () => ensureTemporalTestServer(shared), true),
  ]);
  if (tools[0].status === 'rejected' || tools[1].status === 'rejected') return failed(tools);
  const [temporalCli, testServer] = [tools[0].value, tools[1].value];
  process.env.TEMPORAL_CLI = temporalCli;
  const bundleDir = join(home, 'bundle');
  mkdirSync(bundleDir, { recursive: true });
  const bundlePath = join(bundleDir, `workflows-${runTag}.js`);
  const quiet = { log() {}, info() {}, warn() {}, error() {}, debug() {}, trace() {} };
  const servers = await Promise.allSettled([
    step('Temporal (temporal server start-dev)', () =>
      onFreePorts(async (port) => startTemporal({ home, port: await port(), uiPort: await port() })),
    ),
    step('ClickHouse (clickhouse-server)', () =>
      onFreePorts(async (port) => startClickhouse({ home, httpPort: await port(), tcpPort: await port() })),
    ),
    // The embedded PGlite path is always exercised by its own test, on its own server.
    step('PGlite (stack/pglite-server.ts)', () => onFreePorts(async (port) => startPglite({ home, port: await port() }))),
    step('workflow bundle', async () =>
      writeFileSync(bundlePath, (await bundleWorkflowCode({ workflowsPath, logger: quiet as never })).code),
    ),
  ]);
  if (servers.some((r) => r.status === 'rejected')) return failed(servers);
  const [temporal, clickhouse, pglite] = servers.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
    Awaited<ReturnType<typeof startTemporal>>,
    Awaited<ReturnType<typeof startClickhouse>>,
    Awaited<ReturnType<typeof startPglite>>,
    undefined,
  ];
  log(`Temporal ${temporal.address}, ClickHouse ${clickhouse.url}, PGlite ${pglite.url} (${secs(t0)})`);

  let databaseUrl: string;
  const pgliteUrl = pglite.url;
  let dropDb: (() => Promise<void>) | undefined;
  try {
    const adminUrl = await postgresAdminUrl();
    if (adminUrl) {
      const dbName = `optiinfra_test_${runTag}`;
      const scratch = await step('PostgreSQL (scratch database)', () => createScratchDatabase(adminUrl, dbName));
      databaseUrl = scratch.url;
      dropDb = scratch.drop;
      log(`PostgreSQL database ${dbName}`);
    } else {
      log('no PostgreSQL configured or on 127.0.0.1:5432: using embedded PGlite for the whole run');
      databaseUrl = pgliteUrl;
    }
  } catch (e) {
    return failed([{ status: 'rejected', reason: e }]);
  }

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
      const r = await fetch(`${clickhouse.url}/?query=${encodeURIComponent(`DROP DATABASE IF EXISTS ${env.clickhouseDatabase}`)}`, {
        method: 'POST',
      });
      await r.text();
    } catch {
      /* server already gone */
    }
    rmSync(bundlePath, { force: true });
    await stackDown({ home, log: () => undefined });
    rmSync(home, { recursive: true, force: true });
  };
}
