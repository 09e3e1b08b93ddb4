/**
 * The benchmark's own stack, apart from the demo's (.stack/) and the tests' (.stack-test/):
 * a Temporal dev server on free ports (in memory, one task queue partition so the server-side
 * rate limit applies as configured), a ClickHouse with its data under .stack-bench/run-<tag>,
 * and PostgreSQL: DATABASE_URL, else the machine's server on 127.0.0.1:5432 (a fresh database
 * `optiinfra_bench_<time>`, dropped at the end), else embedded PGlite. `stop()` stops all of
 * it and removes the run directory.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTemporalCli } from '../../stack/binaries.js';
import { startClickhouse } from '../../stack/clickhouse.js';
import { repoRoot } from '../../stack/paths.js';
import { onFreePorts } from '../../stack/ports.js';
import { createScratchDatabase, postgresAdminUrl, startPglite } from '../../stack/postgres.js';
import { stackDown } from '../../stack/stack.js';
import { startTemporal } from '../../stack/temporal.js';

/** Dynamic config of the bench's Temporal dev server. */
export const TEMPORAL_DYNAMIC_CONFIG: Record<string, string> = {
  // One partition per task queue: the dev server's matching does not spread polls over 4
  // partitions, and maxTaskQueueActivitiesPerSecond applies to the queue as a whole.
  'matching.numTaskqueueReadPartitions': '1',
  'matching.numTaskqueueWritePartitions': '1',
  // Room for the fan-out of a large cycle (defaults are meant for a laptop demo).
  'frontend.rps': '20000',
  'frontend.namespaceRPS': '20000',
  'history.rps': '20000',
  'matching.rps': '20000',
};

export interface BenchStack {
  home: string;
  temporalAddress: string;
  clickhouseUrl: string;
  clickhouseDatabase: string;
  databaseUrl: string;
  databaseKind: string;
  /** Process ids of the stack's servers (CPU accounting). */
  pids: { temporal: number; clickhouse: number };
  stop(): Promise<void>;
}

export async function startBenchStack(log: (s: string) => void): Promise<BenchStack> {
  const root = join(repoRoot(), '.stack-bench');
  const tag = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '_')}_${process.pid}`;
  const home = join(root, `run-${tag}`);
  mkdirSync(home, { recursive: true });
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const c of cleanups.reverse()) await c().catch((e: unknown) => log(`cleanup: ${e instanceof Error ? e.message : String(e)}`));
    await stackDown({ home, log: () => undefined });
    rmSync(home, { recursive: true, force: true });
  };
  try {
    // Reuse a Temporal CLI the demo or the tests already installed; else install one here.
    if (!process.env.TEMPORAL_CLI) {
      const known = ['.stack', '.stack-test']
        .map((d) => join(repoRoot(), d, 'tools', 'temporal', 'bin', 'temporal'))
        .find((p) => existsSync(p));
      process.env.TEMPORAL_CLI = known ?? (await ensureTemporalCli(root));
    }
    const extraArgs = Object.entries(TEMPORAL_DYNAMIC_CONFIG).flatMap(([k, v]) => ['--dynamic-config-value', `${k}=${v}`]);
    const t0 = Date.now();
    const [temporal, clickhouse] = await Promise.all([
      onFreePorts(async (port) => startTemporal({ home, port: await port(), uiPort: await port(), extraArgs })),
      onFreePorts(async (port) => startClickhouse({ home, httpPort: await port(), tcpPort: await port() })),
    ]);
    log(`Temporal ${temporal.address}, ClickHouse ${clickhouse.url} (data ${join(home, 'clickhouse')}) in ${Date.now() - t0} ms`);

    const adminUrl = await postgresAdminUrl();
    let databaseUrl: string;
    let databaseKind: string;
    if (adminUrl) {
      const dbName = `optiinfra_bench_${tag.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}`;
      const scratch = await createScratchDatabase(adminUrl, dbName);
      cleanups.push(scratch.drop);
      databaseUrl = scratch.url;
      databaseKind = `PostgreSQL (${process.env.DATABASE_URL?.trim() ? 'DATABASE_URL' : '127.0.0.1:5432'}), database ${dbName}`;
    } else {
      const p = await onFreePorts(async (port) => startPglite({ home, port: await port() }));
      databaseUrl = p.url;
      databaseKind = 'embedded PGlite (in memory)';
    }
    log(`database: ${databaseKind}`);
    return {
      home,
      temporalAddress: temporal.address,
      clickhouseUrl: clickhouse.url,
      clickhouseDatabase: 'optiinfra_bench',
      databaseUrl,
      databaseKind,
      pids: { temporal: temporal.pid, clickhouse: clickhouse.pid },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
