/**
 * Temporal: `temporal server start-dev` (SQLite, Web UI on its own port) with the project's
 * search attributes registered on the namespace.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Connection } from '@temporalio/client';
import { ensureTemporalCli } from './binaries.js';
import { StackError } from './errors.js';
import { temporalHealthy } from './health.js';
import { portInUse } from './ports.js';
import { livePid, type Spawned, spawnDetached, stopService, waitReady } from './processes.js';

/** The project's custom search attributes and their types, as `temporal` CLI flags name them. */
export type SearchAttributeType = 'Keyword' | 'KeywordList' | 'Double' | 'Int' | 'Datetime' | 'Bool' | 'Text';

export const SEARCH_ATTRIBUTES: Record<string, SearchAttributeType> = {
  OptiDeployment: 'Keyword',
  OptiModelVersion: 'KeywordList',
  OptiKind: 'Keyword',
  OptiDecision: 'Keyword',
  OptiQuality: 'Double',
};

export interface TemporalArgsOptions {
  port: number;
  uiPort: number;
  dbFile?: string;
  namespace?: string;
  extraArgs?: string[];
}

/** Arguments for `temporal server start-dev`. */
export function temporalStartArgs(o: TemporalArgsOptions): string[] {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(o.port), '--ui-port', String(o.uiPort)];
  if (o.dbFile) args.push('--db-filename', o.dbFile);
  if (o.namespace && o.namespace !== 'default') args.push('--namespace', o.namespace);
  for (const [k, t] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${k}=${t}`);
  args.push('--log-level', 'warn');
  if (o.extraArgs) args.push(...o.extraArgs);
  return args;
}

const INDEXED_VALUE_TYPE: Record<SearchAttributeType, number> = {
  Text: 1,
  Keyword: 2,
  Int: 3,
  Double: 4,
  Bool: 5,
  Datetime: 6,
  KeywordList: 7,
};

/**
 * Register missing SEARCH_ATTRIBUTES on a namespace (the operator API behind
 * `temporal operator search-attribute create`). Returns the names it added.
 */
export async function ensureSearchAttributes(address: string, namespace = 'default'): Promise<string[]> {
  const conn = await Connection.connect({ address, connectTimeout: 15_000 });
  try {
    const list = await conn.operatorService.listSearchAttributes({ namespace });
    const have = { ...(list.customAttributes ?? {}), ...(list.systemAttributes ?? {}) };
    const missing: Record<string, number> = {};
    for (const [k, t] of Object.entries(SEARCH_ATTRIBUTES)) if (!(k in have)) missing[k] = INDEXED_VALUE_TYPE[t];
    const names = Object.keys(missing);
    if (names.length > 0) {
      await conn.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
    }
    return names;
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Start `temporal server start-dev` on the given ports, or reuse a Temporal server already answering there. */
export async function startTemporal(opts: {
  home: string;
  port: number;
  uiPort: number;
  dbFile?: string;
  extraArgs?: string[];
  namespace?: string;
  portEnv?: string;
}): Promise<{ address: string; uiUrl: string; pid: number }> {
  const address = `127.0.0.1:${opts.port}`;
  const uiUrl = `http://127.0.0.1:${opts.uiPort}`;
  const namespace = opts.namespace ?? 'default';
  const portEnv = opts.portEnv ?? 'OPTIINFRA_TEMPORAL_PORT';
  const existing = livePid(opts.home, 'temporal');
  if (await temporalHealthy(address)) {
    await ensureSearchAttributes(address, namespace);
    return { address, uiUrl, pid: existing ?? 0 };
  }
  if (await portInUse(opts.port)) {
    throw new StackError(
      `port ${opts.port} is in use by something that is not a Temporal server; free it or set ${portEnv} (or TEMPORAL_ADDRESS for an existing server)`,
    );
  }
  if (await portInUse(opts.uiPort)) {
    throw new StackError(`Temporal UI port ${opts.uiPort} is already in use; free it or set OPTIINFRA_TEMPORAL_UI_PORT`);
  }
  if (existing !== undefined) await stopService(opts.home, 'temporal'); // ours but not answering
  const cli = await ensureTemporalCli(opts.home);
  if (opts.dbFile) mkdirSync(dirname(opts.dbFile), { recursive: true });
  const args = temporalStartArgs({ ...opts, namespace });
  // start-dev picks free ports of its own (HTTP API, metrics, internal services) and binds them
  // a moment later; another process can take one in between ("bind: address already in use").
  // It picks new ones on each start, so such a start is tried again, up to three times in all.
  let s: Spawned;
  for (let attempt = 1; ; attempt++) {
    s = spawnDetached(opts.home, 'temporal', cli, args, opts.home);
    try {
      await waitReady(opts.home, 'temporal', s, 'temporal server start-dev', () => temporalHealthy(address, 3000));
      break;
    } catch (e) {
      if (attempt >= 3 || !(e instanceof StackError) || !e.message.includes('address already in use')) throw e;
    }
  }
  try {
    await ensureSearchAttributes(address, namespace);
  } catch (e) {
    await stopService(opts.home, 'temporal');
    throw new StackError(`Temporal started but search attributes could not be registered: ${(e as Error).message}`);
  }
  return { address, uiUrl, pid: s.pid };
}
