/**
 * The demo, on embedded defaults: local stack up, a worker in this process, the simulator playing
 * a good model and then a quantized, degraded one; collection cycles; scores printed; where to
 * look in the Temporal UI.
 */
import { NativeConnection, Runtime, DefaultLogger } from '@temporalio/worker';
import { startSimulator } from '../activities/collector/simulator.js';
import { upsertDeployment } from '../activities/postgres/db.js';
import type { CycleResult } from '../common/collection.js';
import { describeCycle, formatScores } from '../client/cli.js';
import { createLlm, openStores, runtimeConfig, temporalClient, uiLink } from '../client/runtime.js';
import { ensureSchedule, scheduleId } from '../client/schedules.js';
import { stackUp } from '../client/stack.js';
import { SA } from '../common/search-attributes.js';
import { createWorkers } from '../workers/worker.js';

const say = (s: string) => console.log(s);

async function main() {
  say('== OptiInfra demo ==');
  const endpoints = await stackUp({ log: (s) => say(`  ${s}`) });
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = runtimeConfig();
  const stores = await openStores(config);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const deployment = `demo-chat-${stamp}`;
  const sim = await startSimulator({ deployment, modelVersion: 'llama-3-8b-v1', degradedShare: 0.05, seed: 42 });
  await upsertDeployment(stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
  say(`deployment ${deployment}: simulator at ${sim.url}; judge: ${config.llm.enabled ? `Groq ${config.groq.model}` : 'offline (no GROQ_API_KEY)'}`);

  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const workers = await createWorkers(config, connection, { config, ch: stores.ch, db: stores.db, llm: createLlm(config) });
  const running = workers.run();
  const client = await temporalClient(config);
  try {
    const cycle = async (n: number): Promise<CycleResult> => {
      const workflowId = `collect/${deployment}/demo-${n}`;
      const r = (await client.workflow.execute('collectionCycle', {
        taskQueue: config.temporal.taskQueue,
        workflowId,
        args: [{ deployment }],
        typedSearchAttributes: [
          { key: SA.deployment, value: deployment },
          { key: SA.kind, value: 'collect' },
        ],
        staticSummary: `Demo collection cycle ${n} for ${deployment}`,
      })) as CycleResult;
      say(`\n${describeCycle(r)}`);
      return r;
    };
    say('\n-- the good model serves traffic: llama-3-8b-v1 (5 % wrong answers)');
    for (let n = 1; n <= 3; n++) {
      sim.generate(40);
      await cycle(n);
    }
    say('\n-- a quantized model is rolled out: llama-3-8b-v2-q4 (60 % hallucinated answers)');
    sim.setModel('llama-3-8b-v2-q4', 0.6);
    sim.generate(40);
    await cycle(4);

    say(`\n${formatScores(deployment, await stores.ch.aggregateScores(deployment))}`);
    await ensureSchedule(client, config, { deployment, every: '15m', paused: true });
    say(`\nschedule ${scheduleId(deployment)} created, paused (the demo's simulator stops with the demo).`);
    say(`\nTemporal UI: ${endpoints.temporalUiUrl}`);
    const link = uiLink(config, `collect/${deployment}/demo-4`);
    if (link) say(`  last cycle: ${link}`);
    say(`  all runs:   ${endpoints.temporalUiUrl}/namespaces/${config.temporal.namespace}/workflows?query=${encodeURIComponent(`OptiDeployment="${deployment}"`)}`);
    say(`CLI: npx tsx client/cli.ts scores --deployment ${deployment}`);
    say(`     temporal workflow list --address ${config.temporal.address} --query "OptiDeployment='${deployment}'"`);
    say('The stack keeps running; stop it with: npx tsx client/cli.ts stack down');
  } finally {
    await sim.close();
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
