/**
 * The benchmark's own stack, apart from the demo's (.stack/) and the tests' (.stack-test/):
 * a Temporal dev server on free ports (in memory, one task queue partition so the server-side
 * rate limit applies as configured), a ClickHouse with its data under .stack-bench/run-<tag>,
 * and PostgreSQL: DATABASE_URL, else the machine's server on 127.0.0.1:5432 (a fresh database
 * `optiinfra_bench_<time>`, dropped at the end), else embedded PGlite. `stop()` stops all of
 * it and removes the run directory.
 *
 * Also a small rate-limiting proxy in front of the Groq-compatible stub: a token bucket that
 * answers 429 with `retry-after` when a caller exceeds its budget, as Groq does.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fnv1a32 } from '../domain/judge/prompts.js';
import { ensureTemporalCli } from '../stack/binaries.js';
import { startClickhouse } from '../stack/clickhouse.js';
import { repoRoot } from '../stack/paths.js';
import { freePort } from '../stack/ports.js';
import { createScratchDatabase, postgresAdminUrl, startPglite } from '../stack/postgres.js';
import { stackDown } from '../stack/stack.js';
import { startTemporal } from '../stack/temporal.js';

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
      const known = ['.stack', '.stack-test'].map((d) => join(repoRoot(), d, 'tools', 'temporal', 'bin', 'temporal')).find((p) => existsSync(p));
      process.env.TEMPORAL_CLI = known ?? (await ensureTemporalCli(root));
    }
    const extraArgs = Object.entries(TEMPORAL_DYNAMIC_CONFIG).flatMap(([k, v]) => ['--dynamic-config-value', `${k}=${v}`]);
    const t0 = Date.now();
    const [temporal, clickhouse] = await Promise.all([
      (async () => startTemporal({ home, port: await freePort(), uiPort: await freePort(), extraArgs }))(),
      (async () => startClickhouse({ home, httpPort: await freePort(), tcpPort: await freePort() }))(),
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
      const p = await startPglite({ home, port: await freePort() });
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
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

export interface RateLimitProxyStats {
  requests: number;
  forwarded: number;
  answered200: number;
  rejected429: number;
  /** Distinct (check, judged text) pairs that got at least one 429. */
  checksHit429: number;
  firstRequestAt?: number;
  lastOkAt?: number;
}

/**
 * A token bucket in front of `target` (the stub's origin): `perMinute` requests a minute, a burst
 * of `burst`; over budget it answers Groq's 429 with `retry-after` (whole seconds, as Groq sends).
 */
export async function startRateLimitProxy(target: string, perMinute: number, burst: number) {
  const rate = perMinute / 60_000; // tokens per ms
  let tokens = burst;
  let last = Date.now();
  const hit = new Set<number>();
  const st: RateLimitProxyStats = { requests: 0, forwarded: 0, answered200: 0, rejected429: 0, checksHit429: 0 };
  const take = (): number => {
    const now = Date.now();
    tokens = Math.min(burst, tokens + (now - last) * rate);
    last = now;
    if (tokens >= 1) {
      tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - tokens) / rate); // ms until the next token
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      st.requests++;
      st.firstRequestAt ??= Date.now();
      const wait = take();
      if (wait > 0) {
        st.rejected429++;
        hit.add(fnv1a32(body.toString('utf8')));
        st.checksHit429 = hit.size;
        const text = JSON.stringify({
          error: { message: `Rate limit reached for model on requests per minute (RPM): Limit ${perMinute}. Please try again in ${(wait / 1000).toFixed(2)}s.`, type: 'requests', code: 'rate_limit_exceeded' },
        });
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(Math.max(1, Math.ceil(wait / 1000))) });
        res.end(text);
        return;
      }
      st.forwarded++;
      const up = http.request(
        `${target}${req.url ?? '/'}`,
        { method: req.method, headers: { ...req.headers, host: new URL(target).host } },
        (r) => {
          if (r.statusCode === 200) {
            st.answered200++;
            st.lastOkAt = Date.now();
          }
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats: (): RateLimitProxyStats => ({ ...st }),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
