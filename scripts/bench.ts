/**
 * Benchmarks, printing figures and writing them to bench-results/<time>.json so runs compare.
 * Figures are compared side by side in the same run (ours, a peer, the physical limit): the
 * machine is shared and absolute times drift.
 *
 * 1. Decision quality of the deploy gate on score streams resampled from the offline judge's
 *    scores of HaluEval answers, next to the seed's naive rule (pure computation).
 * 2. On a stack the bench starts itself (scripts/bench/stack.ts: its own Temporal dev server and
 *    ClickHouse under .stack-bench/, PostgreSQL or PGlite):
 *    - scoring at scale (scripts/bench/scoring.ts): throughput at 5,000 and 50,000 interactions
 *      with workers as processes, 1/2/3 workers, combined vs separate judge, the judge server's
 *      capacity, and Arize Phoenix's evals on the same interactions;
 *    - Groq's free and developer plan limits on a scaled clock (scripts/bench/limits.ts);
 *    - baselines over 1 M and 10 M score rows, and the gate's start-to-decision time
 *      (scripts/bench/baselines.ts).
 *    Everything the bench started is stopped at the end.
 *
 * A step that fails prints its error; the others still run; the exit code is then 1.
 * Knobs (environment): BENCH_STEPS (comma list of: decisionQuality, throughput, scaleOut, modes,
 * capacity, phoenix, freePlan, developerPlan, baselines, gateLatency), BENCH_SIZES (cycle sizes,
 * default "5000,50000"), BENCH_CYCLE (pageSize,batchSize,maxConcurrentBatches, default
 * "1000,50,16"), BENCH_LLM_CONCURRENCY (100), BENCH_CAPACITY_CALLS (5000),
 * BENCH_PHOENIX_INTERACTIONS (the first size), BENCH_FREE_INTERACTIONS (1000),
 * BENCH_FREE_TIME_SCALE (10), BENCH_DEV_INTERACTIONS (3000), BENCH_DEV_TIME_SCALE (5),
 * BENCH_BASELINE_ROWS ("1000000,10000000"), BENCH_BASELINE_RUNS (3), BENCH_SKIP_STACK=1;
 * BENCH_WORKER_NODE_OPTIONS (NODE_OPTIONS of the worker processes, e.g. another
 * --max-old-space-size) and BENCH_WORKER_LOG (a file prefix: what the worker processes printed).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { openStores, temporalClient } from '../client/runtime.js';
import { loadConfig } from '../common/config.js';
import { repoRoot } from '../stack/paths.js';
import { workflowsPath } from '../workers/worker.js';
import { baselines, gateLatency } from './bench/baselines.js';
import { failures, results, say, step, summary, writeBundle, type Ctx } from './bench/common.js';
import { planLimits } from './bench/limits.js';
import { scoring } from './bench/scoring.js';
import { startBenchStack, TEMPORAL_DYNAMIC_CONFIG } from './bench/stack.js';
import { formatReport } from './gate-sim/report.js';
import { runGateSimulation } from './gate-sim/simulation.js';

const onlySteps = process.env.BENCH_STEPS?.split(',').map((s) => s.trim());
const only = (name: string) => !onlySteps || onlySteps.includes(name);
const STACK_STEPS = ['throughput', 'scaleOut', 'modes', 'capacity', 'phoenix', 'freePlan', 'developerPlan', 'baselines', 'gateLatency'];

// ------------------------------------------------------------------------------------------
// 1. Decision quality (no servers)

if (only('decisionQuality'))
  await step('decisionQuality', () => {
    say('== decision quality of the deploy gate (2,000 runs per scenario) ==');
    const t0 = Date.now();
    const sim = runGateSimulation({ runs: 2000, seed: 1, lookSize: 10, maxSamples: 600, baselineSize: 1000 });
    say(formatReport(sim));
    say(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    results.gateSimulation = sim;
    summary.push([
      'gate decision-quality simulation',
      `${sim.scenarios.length} scenarios × 2,000 runs`,
      `${((Date.now() - t0) / 1000).toFixed(1)} s; table above`,
    ]);
  });

if (process.env.BENCH_SKIP_STACK !== '1' && STACK_STEPS.some(only)) {
  say('\n== starting the bench stack (own Temporal dev server, ClickHouse under .stack-bench/, PostgreSQL or PGlite) ==');
  let ctx: Ctx | undefined;
  const tStack = Date.now();
  await step('stack', async () => {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    const stack = await startBenchStack((s) => say(`   ${s}`));
    try {
      const base: Record<string, string> = {
        TEMPORAL_ADDRESS: stack.temporalAddress,
        CLICKHOUSE_URL: stack.clickhouseUrl,
        CLICKHOUSE_DATABASE: stack.clickhouseDatabase,
        DATABASE_URL: stack.databaseUrl,
        OPTIINFRA_HOME: stack.home,
      };
      const stores = await openStores(loadConfig({ ...base, LLM_ENABLED: 'false' }));
      const connection = await NativeConnection.connect({ address: stack.temporalAddress });
      const client = await temporalClient(loadConfig(base));
      const silent = { log() {}, info() {}, warn() {}, error() {}, debug() {}, trace() {} } as never;
      const { code } = await bundleWorkflowCode({ workflowsPath, logger: silent });
      ctx = { stack, base, stores, connection, client, bundle: { code }, bundlePath: writeBundle(stack.home, code) };
      say(`   stack ready in ${((Date.now() - tStack) / 1000).toFixed(1)} s`);
      results.stack = {
        database: stack.databaseKind,
        temporalDynamicConfig: TEMPORAL_DYNAMIC_CONFIG,
        clickhouseData: join(stack.home, 'clickhouse'),
      };
    } catch (e) {
      await stack.stop();
      throw e;
    }
  });
  if (ctx) {
    const c = ctx;
    try {
      const run = (name: string, fn: () => Promise<void>) => (only(name) ? step(name, fn) : undefined);
      if (['throughput', 'scaleOut', 'modes', 'capacity', 'phoenix'].some(only)) await step('scoring', () => scoring(c, only));
      if (['freePlan', 'developerPlan'].some(only)) await step('planLimits', () => planLimits(c, only));
      await run('baselines', () => baselines(c));
      await run('gateLatency', () => gateLatency(c));
    } finally {
      say('\n== stopping the bench stack ==');
      await c.client.connection.close().catch(() => undefined);
      await c.connection.close().catch(() => undefined);
      await c.stores.close();
      await c.stack.stop();
      say('   stopped; run directory removed');
    }
  } else {
    for (const s of STACK_STEPS.filter(only)) {
      failures.push(s);
      summary.push([s, 'not run', 'the bench stack did not start']);
    }
  }
}

// ------------------------------------------------------------------------------------------
// Summary

results.summary = summary.map(([figure, value, notes]) => ({ figure, value, notes }));
results.failures = failures;
const dir = join(repoRoot(), 'bench-results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify(results, null, 2));

const w0 = Math.max(...summary.map((r) => r[0].length), 6);
const w1 = Math.max(...summary.map((r) => r[1].length), 5);
say(`\n== summary (${results.cores as number} cores, Node ${process.version}) ==`);
say(`${'figure'.padEnd(w0)} | ${'value'.padEnd(w1)} | settings / notes`);
say(`${'-'.repeat(w0)}-+-${'-'.repeat(w1)}-+-${'-'.repeat(40)}`);
for (const [a, b, c] of summary) say(`${a.padEnd(w0)} | ${b.padEnd(w1)} | ${c}`);
say(`\nresults written to ${file}`);
if (failures.length) {
  console.error(`\n${failures.length} step(s) failed: ${failures.join(', ')}`);
  process.exit(1);
}
process.exit(0);
