/** Test-side access to the servers the global setup started, and a worker per test file. */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger, bundleWorkflowCode } from '@temporalio/worker';
import { inject } from 'vitest';
import { judgeName, promptVersionsFor } from '../../activities/collector/activities.js';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { upsertBaseline } from '../../activities/storage/postgres/gates.js';
import { loadConfig, type Config } from '../../common/config.js';
import { baselineId } from '../../domain/gate/baseline.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import { createLlm, openStores, type Stores } from '../../client/runtime.js';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTES } from '../../stack/temporal.js';
import { createWorkers, workflowsPath, type WorkerDeps, type WorkerSet } from '../../workers/worker.js';
import { dataConverterFor, failureConverterPath } from '../../workers/codec.js';

export interface TestEnv {
  home: string;
  temporalAddress: string;
  temporalCli?: string;
  temporalTestServer: string;
  clickhouseUrl: string;
  clickhouseDatabase: string;
  databaseUrl: string;
  pgliteUrl?: string;
  bundlePath: string;
}

export function testEnv(): TestEnv {
  return inject('testEnv');
}

let runtimeInstalled = false;
/** Keep worker logs quiet in test output (errors only: retried activity failures log warnings). */
export function quietRuntime() {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    /* already installed in this process */
  }
}

/** A config for one test: unique task queue, the shared servers, offline judge unless overridden. */
export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  const e = testEnv();
  return loadConfig({
    TEMPORAL_ADDRESS: e.temporalAddress,
    TEMPORAL_TASK_QUEUE: `test-${randomUUID().slice(0, 8)}`,
    CLICKHOUSE_URL: e.clickhouseUrl,
    CLICKHOUSE_DATABASE: e.clickhouseDatabase,
    DATABASE_URL: e.databaseUrl,
    LLM_ENABLED: 'false',
    ...overrides,
  });
}

let encryptingBundle: Promise<string> | undefined;
/**
 * The workflow bundle for a config. With encryption keys the workflow sandbox needs the failure
 * converter that encodes messages, which is bundled in: such stacks share a bundle of their own.
 */
async function workflowBundleFor(config: Config): Promise<{ code: string } | { codePath: string }> {
  if (!config.encryption) return { codePath: testEnv().bundlePath };
  const quiet = { log() {}, info() {}, warn() {}, error() {}, debug() {}, trace() {} };
  encryptingBundle ??= bundleWorkflowCode({ workflowsPath, failureConverterPath, logger: quiet as never }).then((b) => b.code);
  return { code: await encryptingBundle };
}

export interface TestStack {
  config: Config;
  stores: Stores;
  client: Client;
  workers: WorkerSet;
  running: Promise<void>;
  stop(): Promise<void>;
}

/** Stores + a running worker set + a client, all on the test servers (the shared dev server). */
export async function startTestStack(config: Config = testConfig(), faults?: WorkerDeps['faults']): Promise<TestStack> {
  quietRuntime();
  const stores = await openStores(config);
  const nativeConnection = await NativeConnection.connect({ address: config.temporal.address });
  const workers = await createWorkers(
    config,
    nativeConnection,
    { config, ch: stores.ch, db: stores.db, llm: createLlm(config, { db: stores.db, log: () => undefined }), faults },
    { workflowBundle: await workflowBundleFor(config) },
  );
  const running = workers.run();
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter: dataConverterFor(config) });
  return {
    config,
    stores,
    client,
    workers,
    running,
    async stop() {
      workers.shutdown();
      await running.catch(() => undefined);
      await connection.close();
      await nativeConnection.close();
      await stores.close();
    },
  };
}

/**
 * The same, on Temporal's time-skipping test server (timers, waiting windows and deadlines pass
 * instantly while the test awaits a result), with the real ClickHouse and PostgreSQL.
 */
export async function startTimeSkippingStack(
  overrides: Record<string, string | undefined> = {},
  faults?: WorkerDeps['faults'],
): Promise<TestStack & { env: TestWorkflowEnvironment }> {
  quietRuntime();
  const config = testConfig(overrides);
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testEnv().temporalTestServer } },
    client: { dataConverter: dataConverterFor(config) },
  });
  const types: Record<string, number> = { Keyword: 2, Double: 4, KeywordList: 7 };
  await env.connection.operatorService.addSearchAttributes({
    namespace: 'default',
    searchAttributes: Object.fromEntries(Object.entries(SEARCH_ATTRIBUTES).map(([k, t]) => [k, types[t] ?? 2])),
  });
  const stores = await openStores(config);
  const workers = await createWorkers(
    config,
    env.nativeConnection,
    { config, ch: stores.ch, db: stores.db, llm: createLlm(config, { db: stores.db, log: () => undefined }), faults },
    { workflowBundle: await workflowBundleFor(config) },
  );
  const running = workers.run();
  return {
    env,
    config,
    stores,
    client: env.client,
    workers,
    running,
    async stop() {
      workers.shutdown();
      await running.catch(() => undefined);
      await stores.close();
      await env.teardown();
    },
  };
}

export const uniqueId = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/**
 * The environment for a real `optiinfra` process (CLI or worker) talking to a test config's
 * servers: only PATH and HOME of this process, plus the config's endpoints and `extra`.
 */
export function cliEnv(config: Config, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_ADDRESS: config.temporal.address,
    TEMPORAL_TASK_QUEUE: config.temporal.taskQueue,
    CLICKHOUSE_URL: config.clickhouse.url,
    CLICKHOUSE_DATABASE: config.clickhouse.database,
    DATABASE_URL: config.databaseUrl,
    ...extra,
  };
}

/** The simulator now serves `version` (`degradedShare` of its answers wrong): `count` new interactions, collected in one cycle. */
export async function serveAndCollect(
  stack: Pick<TestStack, 'client' | 'config'>,
  sim: { setModel(version: string, share: number): void; generate(count: number): void },
  deployment: string,
  version: string,
  degradedShare: number,
  count: number,
): Promise<CycleResult> {
  sim.setModel(version, degradedShare);
  sim.generate(count);
  return (await stack.client.workflow.execute('collectionCycle', {
    taskQueue: stack.config.temporal.taskQueue,
    workflowId: `collect/${deployment}/${randomUUID()}`,
    args: [{ deployment, batchSize: 100, maxConcurrentBatches: 8 }],
  })) as CycleResult;
}

/**
 * A registered deployment (its source unreachable) with a stored baseline of 200 samples for
 * `version` under the stack's judge: a gate on it waits for candidate samples from the start.
 */
export async function deploymentWithBaseline(
  stack: Pick<TestStack, 'config' | 'stores'>,
  deployment: string,
  version = 'v1',
): Promise<void> {
  await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: 'http://127.0.0.1:1/x' }, sample_rate: 1 });
  const judge = judgeName(stack.config);
  const promptVersions = promptVersionsFor(judge, stack.config.llm.judgeMode);
  const s = (mean: number) => ({ n: 200, mean, sd: 0.1 });
  await upsertBaseline(stack.stores.db, {
    id: baselineId(deployment, version, judge, promptVersions),
    deployment,
    version,
    judge,
    promptVersions,
    window: { lastN: 200 },
    samples: 200,
    stats: { quality: s(0.9), hallucination_rate: s(0.02), toxicity_rate: s(0) },
    dimensions: {} as never,
    workflowId: 'test',
  });
}
