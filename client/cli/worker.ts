/**
 * `optiinfra worker`: the workflow, store-activity and LLM workers until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { NativeConnection } from '@temporalio/worker';
import { createWorkers } from '../../workers/worker.js';
import { createLlm, openStores, runtimeConfig } from '../runtime.js';

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run the worker (workflows, store activities, and the rate-limited LLM queue) until SIGINT/SIGTERM')
    .action(async () => {
      const config = runtimeConfig();
      const stores = await openStores(config);
      const connection = await NativeConnection.connect({ address: config.temporal.address });
      const set = await createWorkers(config, connection, {
        config,
        ch: stores.ch,
        db: stores.db,
        llm: createLlm(config, { db: stores.db }),
      });
      const stop = () => set.shutdown();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      console.log(
        `worker on ${config.temporal.address} (${config.temporal.namespace}), queues ${config.temporal.taskQueue} and ${config.temporal.llmTaskQueue}` +
          ` (LLM ${config.llm.enabled ? `groq ${config.groq.model}` : 'off: offline judge'}, ≤ ${config.llm.requestsPerSecond}/s)`,
      );
      await set.run();
      await connection.close();
      await stores.close();
    });
}
