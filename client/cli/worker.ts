/**
 * `optiinfra worker`: the workflow, store-activity and LLM workers until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { GracefulShutdownPeriodExpiredError, NativeConnection } from '@temporalio/worker';
import { createWorkers, installTelemetry, SHUTDOWN_FORCE, SHUTDOWN_GRACE } from '../../workers/worker.js';
import { createLlm, openStores, runtimeConfig, temporalConnectionOptions } from '../runtime.js';
import type { CommandOutcome } from './args.js';

export function registerWorkerCommand(program: Command, outcome: CommandOutcome): void {
  program
    .command('worker')
    .description('run the worker (workflows, store activities, and the rate-limited LLM queue) until SIGINT/SIGTERM')
    .action(async () => {
      const config = runtimeConfig();
      await installTelemetry(config);
      const stores = await openStores(config);
      const connection = await NativeConnection.connect(temporalConnectionOptions(config));
      const set = await createWorkers(config, connection, {
        config,
        ch: stores.ch,
        db: stores.db,
        llm: createLlm(config, { db: stores.db }),
      });
      let stopping = false;
      const stop = (signal: string) => {
        stopping = true;
        console.log(
          `${signal}: shutting down; running activities get ${SHUTDOWN_GRACE} to finish, then are cancelled (another worker retries them); stopped within ${SHUTDOWN_FORCE} at the latest`,
        );
        set.shutdown();
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
      console.log(
        `worker on ${config.temporal.address} (${config.temporal.namespace}), queues ${config.temporal.taskQueue} and ${config.temporal.llmTaskQueue}` +
          ` (LLM ${config.llm.enabled ? `groq ${config.groq.model}` : 'off: offline judge'}, ≤ ${config.llm.requestsPerSecond}/s)`,
      );
      if (set.metrics) console.log(`metrics on ${set.metrics.url} (the product's and the Temporal SDK's)`);
      try {
        await set.run();
        console.log('worker stopped');
      } catch (e) {
        if (!stopping && !(e instanceof GracefulShutdownPeriodExpiredError)) throw e;
        console.log(
          `worker stopped after ${SHUTDOWN_FORCE}: activities still running were abandoned (they time out and are retried elsewhere)`,
        );
        outcome.exitCode = 1;
      }
      await connection.close().catch(() => undefined);
      await stores.close();
    });
}
