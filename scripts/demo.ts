/**
 * The demo, on embedded defaults: the local stack, a worker in this process, the simulator
 * playing a good model, then a quantized and degraded one. Collection cycles score every
 * interaction; the baseline is computed; the deploy gate watches the rollout, REJECTs it, and the
 * rollback webhook (HMAC-signed) puts the good model back. Then a benign candidate is APPROVEd.
 *
 * `--until <step>` stops early, after one of: first-cycle (the stack, the simulator serving the
 * data set and the first collection cycle), baseline, reject, approve. Without it, everything.
 */
import { percentText } from '../common/format.js';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { startSimulator, type Simulator } from '../stack/sim/collector-simulator.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../activities/gate/rollback.js';
import type { BaselineRecord } from '../domain/gate/baseline.js';
import { deleteInfraSources, listInfraSources } from '../activities/storage/postgres/agents.js';
import { upsertDeployment } from '../activities/storage/postgres/deployments.js';
import { getDecision } from '../activities/storage/postgres/gates.js';
import type { CycleResult } from '../domain/collector/collection.js';
import type { GateInput, GateResult } from '../domain/gate/types.js';
import { SA } from '../common/search-attributes.js';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createAgentActivities } from '../activities/agents/index.js';
import { describeCycle, formatAgentRun, formatScores } from '../client/cli/format.js';
import { writeReportPage } from '../client/cli/report.js';
import { startInfraDemo } from '../stack/sim/infra-demo.js';
import type { ReviewResult } from '../workflows/agents/review.js';
import { describeProgress, startOrAttachGate, summarizeGate, waitForGate } from '../client/gate.js';
import { createLlm, openStores, runtimeConfig, temporalClient, temporalConnectionOptions, uiLink } from '../client/runtime.js';
import { ensureSchedule, scheduleId } from '../client/schedules.js';
import { defaultHome } from '../stack/paths.js';
import { stackUp } from '../stack/stack.js';
import { renderGateReport } from '../domain/gate/report.js';
import { createWorkers, WorkerLogger } from '../workers/worker.js';

const say = (s = '') => console.log(s);

/** Where `--until` may stop the demo, in the order the demo reaches them. */
const STEPS = ['first-cycle', 'baseline', 'reject', 'approve'] as const;
type Step = (typeof STEPS)[number];

/** The step given with `--until <step>` (or `--until=<step>`); undefined: the whole demo. */
function untilArg(argv: string[]): Step | undefined {
  const i = argv.findIndex((a) => a === '--until' || a.startsWith('--until='));
  if (i < 0) return undefined;
  const v = argv[i]!.includes('=') ? argv[i]!.slice('--until='.length) : argv[i + 1];
  if (!STEPS.includes(v as Step)) throw new Error(`--until takes one of ${STEPS.join(', ')} (got '${v ?? ''}')`);
  return v as Step;
}

/** The team's deployment system, as far as the demo needs one: it receives rollbacks. */
async function startDeploymentSystem(secret: string, sim: Simulator, goodModel: { version: string; share: number }) {
  const received: Array<{ key: string; signatureValid: boolean; body: Record<string, unknown> }> = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    req.on('end', () => {
      const signatureValid = verifySignature(
        secret,
        String(req.headers[TIMESTAMP_HEADER.toLowerCase()] ?? ''),
        raw,
        req.headers[SIGNATURE_HEADER.toLowerCase()] as string | undefined,
      );
      if (!signatureValid) {
        res.writeHead(401).end('bad signature');
        return;
      }
      const key = String(req.headers['idempotency-key']);
      const body = JSON.parse(raw) as Record<string, unknown>;
      if (!received.some((r) => r.key === key)) {
        received.push({ key, signatureValid, body });
        sim.setModel(goodModel.version, goodModel.share); // the rollback itself
        say(`   << deployment system: rollback ${String(body.from_version)} -> ${String(body.to_version)} (signature valid, key ${key})`);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/rollback`,
    received,
    close: () => new Promise((r) => server.close(r)),
  };
}

/**
 * The webhook secret of demo runs on this machine, made once (mode 0600 in the stack home): every
 * worker on the task queue must sign with the deployment system's secret, and a demo run's worker
 * may deliver another run's rollback (two runs at once, or a worker left running).
 */
function demoWebhookSecret(): string {
  const file = join(defaultHome(), 'demo', 'webhook-secret');
  mkdirSync(dirname(file), { recursive: true });
  // Written whole under another name, then linked into place: a run never reads half of it.
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, randomBytes(24).toString('hex'), { mode: 0o600 });
  try {
    linkSync(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
  const secret = readFileSync(file, 'utf8').trim();
  if (secret) return secret;
  const fresh = randomBytes(24).toString('hex'); // emptied by hand: made again
  writeFileSync(file, fresh, { mode: 0o600 });
  return fresh;
}

/**
 * Unregister the simulated hosts of demo runs that ended without doing it (killed), an hour after
 * they started; a run going on now keeps its hosts. Their ids start with `demo-<UTC stamp>-`.
 */
async function forgetStaleDemoHosts(db: Parameters<typeof deleteInfraSources>[0]): Promise<void> {
  const stale = new Set<string>();
  for (const s of await listInfraSources(db)) {
    const m = /^demo-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})-/.exec(s.id);
    if (m && Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`) < Date.now() - 3_600_000) stale.add(m[0]);
  }
  for (const prefix of stale) await deleteInfraSources(db, prefix);
}

async function main() {
  const until = untilArg(process.argv.slice(2));
  /** true when the demo stops after `step` (it says so). */
  const stopsAfter = (step: Step) => {
    if (until !== step) return false;
    say(`\nstopped after ${step} (--until ${step}); the stack keeps running`);
    return true;
  };
  say('== OptiInfra demo ==');
  const endpoints = await stackUp({ log: (s) => say(`  ${s}`) });
  Runtime.install({ logger: new WorkerLogger('WARN') });
  process.env.OPTIINFRA_WEBHOOK_SECRET ||= demoWebhookSecret();
  const config = runtimeConfig();
  const stores = await openStores(config);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const deployment = `demo-chat-${stamp}`;
  const good = { version: 'llama-3-8b-v1', share: 0.05 };
  const sim = await startSimulator({ deployment, modelVersion: good.version, degradedShare: good.share, seed: 42 });
  const deploySystem = await startDeploymentSystem(process.env.OPTIINFRA_WEBHOOK_SECRET, sim, good);
  await upsertDeployment(stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
  say(
    `deployment ${deployment}: simulator at ${sim.url}; judge: ${config.llm.enabled ? `Groq ${config.groq.model}` : 'offline (no GROQ_API_KEY)'}`,
  );

  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  const workers = await createWorkers(config, connection, {
    config,
    ch: stores.ch,
    db: stores.db,
    llm: createLlm(config, { db: stores.db }),
  });
  const running = workers.run();
  const client = await temporalClient(config);
  let n = 0;
  const cycle = async (quiet = false): Promise<CycleResult> => {
    const workflowId = `collect/${deployment}/demo-${++n}`;
    const r = (await client.workflow.execute('collectionCycle', {
      taskQueue: config.temporal.taskQueue,
      workflowId,
      args: [{ deployment, batchSize: 50, maxConcurrentBatches: 8 }],
      typedSearchAttributes: [
        { key: SA.deployment, value: deployment },
        { key: SA.kind, value: 'collect' },
      ],
      staticSummary: `Demo collection cycle ${n} for ${deployment}`,
    })) as CycleResult;
    if (!quiet) say(describeCycle(r));
    return r;
  };
  const gate = async (candidate: string, opts: Partial<GateInput> = {}) =>
    startOrAttachGate(client, config, stores.db, {
      deployment,
      baselineVersion: good.version,
      candidateVersion: candidate,
      checkEvery: '5s',
      maxWait: '10m',
      deployer: { type: 'webhook', url: deploySystem.url },
      ...opts,
    });
  try {
    say(`\n-- 1. the good model serves traffic: ${good.version} (5 % wrong answers); collection cycles score it`);
    for (let i = 0; i < 3; i++) {
      sim.generate(150);
      await cycle();
      if (i === 0 && stopsAfter('first-cycle')) return;
    }
    const base = (await client.workflow.execute('computeBaseline', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `baseline/${deployment}/${good.version}`,
      args: [{ deployment, version: good.version }],
    })) as BaselineRecord;
    say(
      `baseline ${good.version}: ${base.samples} samples, quality ${percentText(base.stats.quality.mean)}, hallucination rate ${percentText(base.stats.hallucination_rate.mean)}, toxicity rate ${percentText(base.stats.toxicity_rate.mean)}`,
    );
    if (stopsAfter('baseline')) return;

    const bad = 'llama-3-8b-v2-q4';
    say(`\n-- 2. CI deploys a quantized model, ${bad} (35 % hallucinated answers), and starts the gate`);
    sim.setModel(bad, 0.35);
    const { handle, workflowId } = await gate(bad);
    say(`   gate ${workflowId} started; it waits durably and re-checks every 5 s (every 15 min in production)`);
    const waiting = waitForGate(handle, { pollMs: 1000, onProgress: (p) => say(`   gate: ${describeProgress(p)}`) });
    let decided: GateResult | 'timeout' | undefined;
    void waiting.then((r) => (decided = r));
    while (!decided) {
      sim.generate(40);
      const r = await cycle(true);
      say(`   collection cycle: ${r.stored} new interactions of ${r.versions.join(', ') || '-'} scored (${r.scored} checks)`);
      await new Promise((res) => setTimeout(res, 3000));
    }
    const rejected = await waiting;
    if (rejected === 'timeout') throw new Error('the gate did not decide');
    say(`\n${summarizeGate(rejected, uiLink(config, rejected.gateId))}`);
    say(`PostgreSQL gate_decisions: ${JSON.stringify(await getDecision(stores.db, rejected.gateId))}`);
    say(`rollbacks received by the deployment system: ${deploySystem.received.length}`);
    if (stopsAfter('reject')) return;

    const benign = 'llama-3-8b-v3';
    say(`\n-- 3. a benign candidate, ${benign} (3 % wrong answers), goes through the same gate`);
    sim.setModel(benign, 0.03);
    sim.generate(500);
    await cycle();
    const approved = await waitForGate((await gate(benign)).handle, { pollMs: 500 });
    if (approved !== 'timeout') say(summarizeGate(approved, uiLink(config, approved.gateId)));
    if (stopsAfter('approve')) return;

    say(`\n${formatScores(deployment, await stores.ch.aggregateScores(deployment), await stores.ch.interactionsPerVersion(deployment))}`);

    say('\n-- 4. the optimisation review: cost, performance, resource and application agents in parallel');
    say('   (a generated FinOps FOCUS export for 30 days; three simulated hosts serving vLLM, DCGM and node metrics,');
    say('    6 hours of history collected through the real scrape path)');
    await forgetStaleDemoHosts(stores.db);
    const infra = await startInfraDemo({
      db: stores.db,
      prefix: `demo-${stamp}-`,
      dir: join(defaultHome(), 'demo', stamp),
      collect: createAgentActivities({ config, ch: stores.ch, db: stores.db }).collectInfraSource,
    });
    try {
      const review = (await client.workflow.execute('optimizationReview', {
        taskQueue: config.temporal.taskQueue,
        workflowId: `review/${deployment}`,
        args: [{}],
      })) as ReviewResult;
      for (const a of review.agents) say(`\n${formatAgentRun(a)}`);
      say(`\nEXECUTIVE SUMMARY (${review.summaryBy}):\n${review.summary}`);
      say(`review in the UI: ${uiLink(config, review.reviewId)}`);
    } finally {
      await infra.close();
      // This run's simulated hosts stop with it: unregister them (another run's stay).
      await deleteInfraSources(stores.db, `demo-${stamp}-`);
    }
    await ensureSchedule(client, config, { deployment, every: '15m', paused: true });
    say(`\nschedule ${scheduleId(deployment)} created, paused (the demo's simulator stops with the demo).`);
    say('\nThe REJECT report as a CI job summary shows it:\n');
    say(renderGateReport(rejected, { uiLink: uiLink(config, rejected.gateId) }));
    const page = await writeReportPage(stores, config, { deployment, html: join(defaultHome(), 'reports', `${deployment}.html`) });
    say(`\nThe deployment's report (trends, each gate's looks, coverage, savings; opens offline in any browser):\n  ${page}`);
    say(`\nTemporal UI: ${endpoints.temporalUiUrl}`);
    say(
      `  gates:  ${endpoints.temporalUiUrl}/namespaces/${config.temporal.namespace}/workflows?query=${encodeURIComponent(`OptiKind="gate" AND OptiDeployment="${deployment}"`)}`,
    );
    say(
      `  all:    ${endpoints.temporalUiUrl}/namespaces/${config.temporal.namespace}/workflows?query=${encodeURIComponent(`OptiDeployment="${deployment}"`)}`,
    );
    say(`CLI:  npx tsx client/cli/index.ts gate status --deployment ${deployment} --candidate ${bad}`);
    say(`      npx tsx client/cli/index.ts scores --deployment ${deployment}`);
    say('      npx tsx client/cli/index.ts recommendations');
    say('      npx tsx client/cli/index.ts ask cost "Which resources are idle and what do they waste?"');
    say(`      temporal workflow list --address ${config.temporal.address} --query "OptiDeployment='${deployment}'"`);
    say('The stack keeps running; stop it with: npx tsx client/cli/index.ts stack down');
  } finally {
    await sim.close();
    await deploySystem.close();
    workers.shutdown();
    await running.catch(() => undefined);
    await client.connection.close();
    await connection.close();
    await stores.close();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(3);
  },
);
