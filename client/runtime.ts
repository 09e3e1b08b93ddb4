/**
 * Runtime wiring shared by the CLI, the worker and the demo: configuration (environment first,
 * then the endpoints `optiinfra stack up` recorded), connections, migrations.
 */
import { readFileSync } from 'node:fs';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import { ClickHouseStore } from '../activities/storage/clickhouse/store.js';
import { LlmClient } from '../activities/llm/client.js';
import { MigrationError } from '../activities/storage/migration-error.js';
import { createPool, migrate, type Db } from '../activities/storage/postgres/db.js';
import { ConfigError, loadConfig, type Config } from '../common/config.js';
import { redact, secretsOf, urlAddress } from '../common/secrets.js';
import { defaultHome } from '../stack/paths.js';
import { readEndpoints } from '../stack/stack.js';
import { dataConverterFor } from '../workers/codec.js';

/** Config from the environment, with the local stack's endpoints as defaults for what is unset. */
export function runtimeConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const ep = readEndpoints(defaultHome(env));
  const merged: NodeJS.ProcessEnv = { ...env };
  if (ep) {
    merged.TEMPORAL_ADDRESS ||= ep.temporalAddress;
    merged.TEMPORAL_UI_URL ||= ep.temporalUiUrl || undefined;
    merged.CLICKHOUSE_URL ||= ep.clickhouseUrl;
    merged.DATABASE_URL ||= ep.databaseUrl;
  }
  return loadConfig(merged);
}

export function requireStores(config: Config): { clickhouseUrl: string; databaseUrl: string } {
  if (!config.clickhouse.url) {
    throw new ConfigError("ClickHouse is not configured: set CLICKHOUSE_URL or run 'optiinfra stack up'");
  }
  if (!config.databaseUrl) {
    throw new ConfigError("PostgreSQL is not configured: set DATABASE_URL or run 'optiinfra stack up'");
  }
  return { clickhouseUrl: config.clickhouse.url, databaseUrl: config.databaseUrl };
}

export interface Stores {
  ch: ClickHouseStore;
  db: Db;
  close(): Promise<void>;
}

/** Open ClickHouse and PostgreSQL and apply pending migrations (idempotent). */
export async function openStores(config: Config): Promise<Stores> {
  const { clickhouseUrl, databaseUrl } = requireStores(config);
  const ch = new ClickHouseStore(clickhouseUrl, config.clickhouse.database);
  const db = createPool(databaseUrl);
  // Which store cannot be used, where (without credentials) and what to do.
  const cannotUse = async (store: string, url: string, variable: string, e: unknown): Promise<never> => {
    await Promise.allSettled([ch.close(), db.end()]);
    const why = redact(e instanceof Error ? e.message : String(e), secretsOf(config));
    // A migration failure says itself which migration and what to do.
    if (e instanceof MigrationError) throw new ConfigError(`${why} (${store} at ${urlAddress(url) ?? 'the configured URL'})`);
    throw new ConfigError(
      `cannot use ${store} at ${urlAddress(url) ?? 'the configured URL'} (${why}): run 'optiinfra stack up' or set ${variable}`,
    );
  };
  await ch.migrate().catch((e: unknown) => cannotUse('ClickHouse', clickhouseUrl, 'CLICKHOUSE_URL', e));
  await migrate(db).catch((e: unknown) => cannotUse('PostgreSQL', databaseUrl, 'DATABASE_URL', e));
  return { ch, db, close: async () => void (await Promise.allSettled([ch.close(), db.end()])) };
}

/**
 * The LLM client, or undefined for the offline judge. Pass the product's database so every
 * worker paces its LLM calls from the same request and token budget (activities/llm/pacer.ts);
 * without it the budget is this process's own.
 */
export function createLlm(config: Config, opts: { db?: Db; log?: (line: string) => void } = {}): LlmClient | undefined {
  return config.llm.enabled ? new LlmClient(config, opts) : undefined;
}

/**
 * How to reach Temporal: the address, and for Temporal Cloud or a secured cluster TLS (with the
 * mTLS client pair and a CA read from their files) and an API key, sent with the namespace as
 * Temporal Cloud's API-key authentication expects. For `Connection` and `NativeConnection` alike.
 */
export function temporalConnectionOptions(config: Config): {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
} {
  const t = config.temporal;
  const read = (what: string, variable: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new ConfigError(`cannot read the ${what} ${path} (${variable}): ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  let tls: TLSConfig | boolean | undefined;
  if (t.tls) {
    const c: TLSConfig = {};
    if (t.tls.serverName) c.serverNameOverride = t.tls.serverName;
    if (t.tls.caPath) c.serverRootCACertificate = read('CA certificate', 'TEMPORAL_TLS_CA', t.tls.caPath);
    if (t.tls.certPath && t.tls.keyPath) {
      c.clientCertPair = {
        crt: read('client certificate', 'TEMPORAL_TLS_CERT', t.tls.certPath),
        key: read('client key', 'TEMPORAL_TLS_KEY', t.tls.keyPath),
      };
    }
    tls = Object.keys(c).length ? c : true;
  }
  return {
    address: t.address,
    ...(tls ? { tls } : {}),
    ...(t.apiKey ? { apiKey: t.apiKey, metadata: { 'temporal-namespace': t.namespace } } : {}),
  };
}

export async function temporalClient(config: Config): Promise<Client> {
  const connection = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: '10s' }).catch((e: unknown) => {
    throw new ConfigError(
      `cannot reach Temporal at ${config.temporal.address} (${e instanceof Error ? e.message : String(e)}): run 'optiinfra stack up' or set TEMPORAL_ADDRESS`,
    );
  });
  return new Client({ connection, namespace: config.temporal.namespace, dataConverter: dataConverterFor(config) });
}

/** Whether any worker polled the task queue for workflow tasks recently. */
export async function hasWorkflowPollers(client: Client, namespace: string, taskQueue: string): Promise<boolean> {
  const r = await client.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
  });
  return (r.pollers?.length ?? 0) > 0;
}

/**
 * Say on stderr when no worker polls the task queue: a workflow started now waits until one runs,
 * and a query of it times out (which is not Temporal being down). A failed check says nothing:
 * the command's own call reports an unreachable server. Whether it warned.
 */
export async function warnIfNoWorker(client: Client, config: Config, what: string): Promise<boolean> {
  const polled = await hasWorkflowPollers(client, config.temporal.namespace, config.temporal.taskQueue).catch(() => true);
  if (!polled) console.error(noWorkerText(config, what));
  return !polled;
}

export function noWorkerText(config: Config, what: string): string {
  return `warning: no worker is polling task queue '${config.temporal.taskQueue}': ${what} waits until one runs ('optiinfra worker')`;
}

/** Link to a workflow run in the Temporal Web UI. */
export function uiLink(config: Config, workflowId: string, runId?: string): string | undefined {
  if (!config.temporal.uiUrl) return undefined;
  const base = `${config.temporal.uiUrl}/namespaces/${encodeURIComponent(config.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${runId}/history` : base;
}
