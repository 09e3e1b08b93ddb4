/**
 * What the bench's sections share: the figures they collect, the stack context, workers in this
 * process or as `optiinfra worker` processes, one collection cycle over simulated interactions,
 * and the histories it wrote.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { LlmClient } from '../../activities/llm/client.js';
import { Pacer } from '../../activities/llm/pacer.js';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { Stores } from '../../client/runtime.js';
import { loadConfig, type Config } from '../../common/config.js';
import type { CollectionCycleInput, CycleResult } from '../../domain/collector/collection.js';
import { startSimulator } from '../../stack/sim/collector-simulator.js';
import { startWorkerProcess, type WorkerProcess } from '../../test/helpers/worker-process.js';
import { createWorkers, type WorkerSet } from '../../workers/worker.js';
import type { BenchStack } from './stack.js';

export const results: Record<string, unknown> = {
  at: new Date().toISOString(),
  node: process.version,
  cores: (await import('node:os')).cpus().length,
};
/** figure, value, settings / notes */
export const summary: Array<[string, string, string]> = [];
export const failures: string[] = [];
export const say = (s = '') => console.log(s);
export const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
export const mb = (bytes: number) => `${fmt(bytes / 2 ** 20)} MiB`;
export const pct = (x: number, d = 1) => `${fmt(100 * x, d)} %`;
export const envInt = (name: string, dflt: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : dflt;
};
export const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-').toLowerCase();
export const FAKE_KEY = 'gsk_bench_not_a_real_key_0000000000';

/** Run one section; a failure is printed and recorded, the others still run. */
export async function step(name: string, fn: () => Promise<void> | void): Promise<void> {
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    const msg = e instanceof Error ? `${e.message}${e.cause instanceof Error ? ` (cause: ${e.cause.message})` : ''}` : String(e);
    console.error(`!! step "${name}" failed after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${msg}`);
    failures.push(name);
    results[`${name}Error`] = msg;
    summary.push([name, 'FAILED', msg.split('\n')[0]!.slice(0, 100)]);
  }
}

export interface Ctx {
  stack: BenchStack;
  /** The stack's addresses as environment variables. */
  base: Record<string, string>;
  stores: Stores;
  connection: NativeConnection;
  client: Client;
  bundle: { code: string };
  /** The same bundle as a file, for worker processes (OPTIINFRA_WORKFLOW_BUNDLE). */
  bundlePath: string;
}

export function benchConfig(ctx: Ctx, overrides: Record<string, string>): Config {
  return loadConfig({ ...ctx.base, ...overrides });
}

export function writeBundle(home: string, code: string): string {
  const path = join(home, 'workflow-bundle.js');
  writeFileSync(path, code);
  return path;
}

/**
 * The workers in this process while `fn` runs; `timeScale` makes the LLM pacer's minutes and days
 * pass that many times faster (to match the stub's scaled clock).
 */
export async function withWorkers<T>(ctx: Ctx, config: Config, fn: () => Promise<T>, opts: { timeScale?: number } = {}): Promise<T> {
  const llm = config.llm.enabled
    ? new LlmClient(config, {
        db: ctx.stores.db,
        log: () => undefined,
        pacer: new Pacer(config, { db: ctx.stores.db, timeScale: opts.timeScale }),
      })
    : undefined;
  const workers: WorkerSet = await createWorkers(
    config,
    ctx.connection,
    { config, ch: ctx.stores.ch, db: ctx.stores.db, llm },
    { workflowBundle: ctx.bundle },
  );
  const running = workers.run();
  try {
    return await fn();
  } finally {
    workers.shutdown();
    await running.catch(() => undefined);
  }
}

/** History events of a workflow over its continue-as-new chain, and the children it started. */
async function historyOf(client: Client, workflowId: string, firstRunId: string) {
  let events = 0;
  let runs = 0;
  const children: Array<{ workflowId: string; runId: string }> = [];
  let runId: string | undefined = firstRunId;
  while (runId) {
    const h: Awaited<ReturnType<WorkflowHandle['fetchHistory']>> = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    runs++;
    const evs = h.events ?? [];
    let next: string | undefined;
    events += evs.length;
    runId = undefined;
    for (const e of evs) {
      const c = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution;
      if (c?.workflowId && c.runId) children.push({ workflowId: c.workflowId, runId: c.runId });
      next ||= e.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    }
    runId = next;
  }
  return { events, runs, children };
}

/** Events of a cycle: its runs and every child workflow's. */
export async function cycleHistory(client: Client, handle: { workflowId: string; firstExecutionRunId: string }) {
  const top = await historyOf(client, handle.workflowId, handle.firstExecutionRunId);
  let childEvents = 0;
  for (let i = 0; i < top.children.length; i += 16) {
    const part = await Promise.all(top.children.slice(i, i + 16).map((c) => historyOf(client, c.workflowId, c.runId)));
    childEvents += part.reduce((n, p) => n + p.events, 0);
  }
  return { cycleRuns: top.runs, cycleEvents: top.events, children: top.children.length, childEvents, total: top.events + childEvents };
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout: () => Promise<unknown>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void onTimeout().catch(() => undefined);
      reject(new Error(`${what} did not finish within ${ms / 1000} s (terminated)`));
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Median of `runs` timings of `fn` in ms, and its last result. */
export async function timed<T>(runs: number, fn: () => Promise<T>): Promise<{ ms: number; all: number[]; result: T }> {
  const all: number[] = [];
  let result!: T;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    result = await fn();
    all.push(performance.now() - t0);
  }
  const sorted = [...all].sort((a, b) => a - b);
  return { ms: sorted[Math.floor(sorted.length / 2)]!, all, result };
}

export function bulkClient(ctx: Ctx) {
  return createClient({
    url: ctx.stack.clickhouseUrl,
    request_timeout: 900_000,
    clickhouse_settings: {},
    log: { level: ClickHouseLogLevel.ERROR },
  });
}

export const SIM_SEED = 11;
export const SIM_DEGRADED = 0.05;

/** CPU seconds (user + system) a process has used so far; 0 when it is gone. */
function cpuSecondsOf(pid: number): number {
  try {
    // Fields after the command's closing parenthesis: state is 3rd, utime 14th, stime 15th.
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

const postgresPids = () =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'postgres';
      } catch {
        return false;
      }
    })
    .map(Number);

/** CPU seconds by part of the system: the workers, the stack's servers, and this process (stub, simulator, bench). */
function cpuByPart(ctx: Ctx, workerPids: number[]): Record<string, number> {
  const sum = (pids: number[]) => pids.reduce((a, p) => a + cpuSecondsOf(p), 0);
  return {
    workers: sum(workerPids),
    temporal: cpuSecondsOf(ctx.stack.pids.temporal),
    clickhouse: cpuSecondsOf(ctx.stack.pids.clickhouse),
    postgres: sum(postgresPids()),
    'bench (stub, simulator)': cpuSecondsOf(process.pid),
  };
}

export interface CycleRun {
  handle: { workflowId: string; firstExecutionRunId: string };
  result: CycleResult;
  wallMs: number;
  /** Peak RSS (VmHWM) of each worker process and of its launcher, when the workers were processes. */
  workerPeakRss: Array<{ worker: number; launcher: number }>;
  /** CPU seconds used during the cycle, by part (workers in this process count as the bench's). */
  cpu: Record<string, number>;
  /** The untimed cycle before, if any. */
  warmUp?: CycleResult;
}

/**
 * One collection cycle over `count` fresh simulator interactions (seed SIM_SEED: the same texts
 * for the same count), on `workers` `optiinfra worker` processes (0: the workers in this process,
 * `inProcess` then gives the config and pacer time scale). The clock runs from the cycle's start
 * (the workers are up and polling) to its result.
 */
export async function runCycle(
  ctx: Ctx,
  o: {
    deployment: string;
    count: number;
    input: Omit<CollectionCycleInput, 'deployment'>;
    timeoutMs: number;
    env: Record<string, string>;
    workers: number;
    timeScale?: number;
    /** A cycle over this many interactions first, untimed (the previous scheduled cycle), then `beforeTimed`. */
    warmUp?: number;
    beforeTimed?: () => Promise<void> | void;
  },
): Promise<CycleRun> {
  const sim = await startSimulator({ deployment: o.deployment, modelVersion: 'bench-v1', degradedShare: SIM_DEGRADED, seed: SIM_SEED });
  const procs: WorkerProcess[] = [];
  try {
    await upsertDeployment(ctx.stores.db, { id: o.deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
    const config = benchConfig(ctx, o.env);
    const cycle = async (): Promise<CycleRun> => {
      let warmUp: CycleResult | undefined;
      if (o.warmUp) {
        sim.generate(o.warmUp);
        warmUp = await ctx.client.workflow.execute('collectionCycle', {
          taskQueue: config.temporal.taskQueue,
          workflowId: `collect/${o.deployment}/bench-warm-up`,
          args: [{ deployment: o.deployment, ...o.input }],
        });
      }
      await o.beforeTimed?.();
      sim.generate(o.count);
      const pids = procs.flatMap((p) => p.pids());
      const cpu0 = cpuByPart(ctx, pids);
      const t0 = performance.now();
      const handle = await ctx.client.workflow.start('collectionCycle', {
        taskQueue: config.temporal.taskQueue,
        workflowId: `collect/${o.deployment}/bench`,
        args: [{ deployment: o.deployment, ...o.input }],
      });
      const result = await withTimeout(handle.result() as Promise<CycleResult>, o.timeoutMs, 'the collection cycle', () =>
        handle.terminate('bench timeout'),
      );
      const wallMs = performance.now() - t0;
      const cpu1 = cpuByPart(ctx, pids);
      const cpu = Object.fromEntries(Object.entries(cpu1).map(([k, v]) => [k, v - (cpu0[k] ?? 0)]));
      return { handle, result, wallMs, workerPeakRss: procs.map((p) => p.peakRssBytes() ?? { worker: 0, launcher: 0 }), cpu, warmUp };
    };
    if (o.workers === 0) return await withWorkers(ctx, config, cycle, { timeScale: o.timeScale });
    for (let i = 0; i < o.workers; i++) {
      procs.push(
        startWorkerProcess({
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          ...ctx.base,
          ...o.env,
          OPTIINFRA_WORKFLOW_BUNDLE: ctx.bundlePath,
          ...(process.env.BENCH_WORKER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_WORKER_NODE_OPTIONS } : {}),
        }),
      );
    }
    await Promise.all(procs.map((p) => p.ready));
    return await cycle();
  } catch (e) {
    const out = procs.map((p, i) => `--- worker ${i + 1} ---\n${p.output().slice(-1500)}`).join('\n');
    if (out) console.error(out);
    throw e;
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    // What the worker processes printed last (BENCH_WORKER_LOG=<file prefix>), for a closer look.
    if (process.env.BENCH_WORKER_LOG)
      for (const [i, p] of procs.entries()) writeFileSync(`${process.env.BENCH_WORKER_LOG}-${o.deployment}-${i + 1}.log`, p.output());
    await sim.close();
  }
}
