/**
 * The local stack, started by the project itself (no Docker, no internet needed beyond PyPI/apt):
 *
 * - Temporal: `temporal server start-dev` (temporal.ts), unless TEMPORAL_ADDRESS answers.
 * - ClickHouse: the distribution's `clickhouse-server` with a project-local config
 *   (clickhouse.ts), unless CLICKHOUSE_URL is set.
 * - PostgreSQL: DATABASE_URL, else an embedded PGlite served over the wire protocol
 *   (postgres.ts).
 *
 * Starting is idempotent: a healthy service already answering on its port is reused. On failure,
 * whatever this call started is stopped again. The endpoints of a running stack are written to
 * <home>/endpoints.json, where later commands find them.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startClickhouse } from './clickhouse.js';
import { StackError } from './errors.js';
import { clickhouseHealthy, postgresHealthy, temporalHealthy } from './health.js';
import { defaultHome, type Service } from './paths.js';
import { DEFAULT_PORTS, isLoopback, parseHostPort, portFromEnv } from './ports.js';
import { startPglite } from './postgres.js';
import { livePid, stopService } from './processes.js';
import { ensureSearchAttributes, startTemporal } from './temporal.js';

export interface StackEndpoints {
  temporalAddress: string;
  temporalUiUrl: string;
  clickhouseUrl: string;
  databaseUrl: string;
  databaseKind: 'postgres' | 'pglite';
}

export interface StackOptions {
  home?: string;
  env?: NodeJS.ProcessEnv;
  log?: (s: string) => void;
}

function endpointsFile(home: string): string {
  return join(home, 'endpoints.json');
}

/** The endpoints the last `stackUp` wrote under `home`; undefined when missing or malformed. */
export function readEndpoints(home: string = defaultHome()): StackEndpoints | undefined {
  try {
    const j = JSON.parse(readFileSync(endpointsFile(home), 'utf8')) as Partial<StackEndpoints>;
    if (
      typeof j.temporalAddress === 'string' &&
      typeof j.clickhouseUrl === 'string' &&
      typeof j.databaseUrl === 'string' &&
      (j.databaseKind === 'postgres' || j.databaseKind === 'pglite')
    ) {
      return {
        temporalAddress: j.temporalAddress,
        temporalUiUrl: typeof j.temporalUiUrl === 'string' ? j.temporalUiUrl : '',
        clickhouseUrl: j.clickhouseUrl,
        databaseUrl: j.databaseUrl,
        databaseKind: j.databaseKind,
      };
    }
  } catch {
    /* missing or unreadable */
  }
  return undefined;
}

function maskUrl(u: string): string {
  try {
    const x = new URL(u);
    if (x.password) x.password = '****';
    return x.toString().replace(/\/$/, '');
  } catch {
    return u;
  }
}

function secs(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

/** Start (or reuse) Temporal, ClickHouse and PostgreSQL, and write their endpoints under the stack home. */
export async function stackUp(opts: StackOptions = {}): Promise<StackEndpoints> {
  const env = opts.env ?? process.env;
  const home = resolve(opts.home ?? defaultHome(env));
  const log = opts.log ?? ((s: string) => console.log(s));
  mkdirSync(home, { recursive: true });
  const started: Service[] = [];

  const temporal = async (): Promise<{ temporalAddress: string; temporalUiUrl: string }> => {
    const t0 = Date.now();
    const namespace = env.TEMPORAL_NAMESPACE?.trim() || 'default';
    const given = env.TEMPORAL_ADDRESS?.trim();
    if (given && (await temporalHealthy(given))) {
      const added = await ensureSearchAttributes(given, namespace).catch((e: Error) => {
        log(`temporal    warning: cannot register search attributes on ${given}: ${e.message}`);
        return [] as string[];
      });
      log(`temporal    up    ${given} (TEMPORAL_ADDRESS${added.length ? `; added search attributes ${added.join(', ')}` : ''})`);
      return { temporalAddress: given, temporalUiUrl: env.TEMPORAL_UI_URL?.trim() ?? '' };
    }
    let port = portFromEnv(env, 'OPTIINFRA_TEMPORAL_PORT', DEFAULT_PORTS.temporal);
    let portEnv = 'OPTIINFRA_TEMPORAL_PORT';
    if (given) {
      const hp = parseHostPort(given);
      if (!hp || !isLoopback(hp.host)) {
        throw new StackError(
          `TEMPORAL_ADDRESS=${given} does not answer; start that server or unset TEMPORAL_ADDRESS to use a local dev server`,
        );
      }
      port = hp.port; // a local address that is down: start the dev server there
      portEnv = 'TEMPORAL_ADDRESS';
    }
    const uiPort = portFromEnv(env, 'OPTIINFRA_TEMPORAL_UI_PORT', DEFAULT_PORTS.temporalUi);
    const was = livePid(home, 'temporal');
    // With OPTIINFRA_UI_CODEC_ENDPOINT (e.g. http://127.0.0.1:8888, `optiinfra codec-server`) the
    // Web UI decodes encrypted payloads through it.
    const codec = env.OPTIINFRA_UI_CODEC_ENDPOINT?.trim();
    const r = await startTemporal({
      home,
      port,
      uiPort,
      dbFile: join(home, 'temporal.db'),
      namespace,
      portEnv,
      extraArgs: codec ? ['--ui-codec-endpoint', codec] : undefined,
    });
    const fresh = r.pid !== 0 && r.pid !== was;
    if (fresh) started.push('temporal');
    const temporalUiUrl = env.TEMPORAL_UI_URL?.trim() || r.uiUrl;
    log(`temporal    up    ${r.address} UI ${temporalUiUrl} (${fresh ? `started, pid ${r.pid}, ${secs(t0)}` : 'already running'})`);
    return { temporalAddress: r.address, temporalUiUrl };
  };

  const clickhouse = async (): Promise<string> => {
    const t0 = Date.now();
    const given = env.CLICKHOUSE_URL?.trim();
    if (given) {
      if (!(await clickhouseHealthy(given))) {
        throw new StackError(
          `CLICKHOUSE_URL=${maskUrl(given)} does not answer /ping; start that server or unset CLICKHOUSE_URL to use a local one`,
        );
      }
      log(`clickhouse  up    ${maskUrl(given)} (CLICKHOUSE_URL)`);
      return given;
    }
    const httpPort = portFromEnv(env, 'OPTIINFRA_CLICKHOUSE_HTTP_PORT', DEFAULT_PORTS.clickhouseHttp);
    const tcpPort = portFromEnv(env, 'OPTIINFRA_CLICKHOUSE_TCP_PORT', DEFAULT_PORTS.clickhouseTcp);
    const was = livePid(home, 'clickhouse');
    const r = await startClickhouse({ home, httpPort, tcpPort });
    const fresh = r.pid !== 0 && r.pid !== was;
    if (fresh) started.push('clickhouse');
    log(`clickhouse  up    ${r.url} (${fresh ? `started, pid ${r.pid}, ${secs(t0)}` : 'already running'})`);
    return r.url;
  };

  const postgres = async (): Promise<{ databaseUrl: string; databaseKind: 'postgres' | 'pglite' }> => {
    const t0 = Date.now();
    const given = env.DATABASE_URL?.trim();
    if (given) {
      if (!(await postgresHealthy(given))) {
        throw new StackError(
          `DATABASE_URL=${maskUrl(given)} does not answer SELECT 1; start that server or unset DATABASE_URL to use PGlite`,
        );
      }
      log(`postgres    up    ${maskUrl(given)} (DATABASE_URL)`);
      return { databaseUrl: given, databaseKind: 'postgres' };
    }
    const port = portFromEnv(env, 'OPTIINFRA_PGLITE_PORT', DEFAULT_PORTS.pglite);
    const was = livePid(home, 'pglite');
    const r = await startPglite({ home, port, dataDir: join(home, 'pglite') });
    const fresh = r.pid !== 0 && r.pid !== was;
    if (fresh) started.push('pglite');
    log(
      `postgres    up    ${r.url} (PGlite, max ${r.maxConnections} connections, ${fresh ? `started, pid ${r.pid}, ${secs(t0)}` : 'already running'})`,
    );
    return { databaseUrl: r.url, databaseKind: 'pglite' };
  };

  // The three services are independent: start them side by side; on any failure stop what
  // this call started and report the first error.
  const [t, c, p] = await Promise.allSettled([temporal(), clickhouse(), postgres()]);
  if (t.status === 'rejected' || c.status === 'rejected' || p.status === 'rejected') {
    await Promise.all(started.map((svc) => stopService(home, svc).catch(() => undefined)));
    const errs = [t, c, p].filter((x): x is PromiseRejectedResult => x.status === 'rejected').map((x) => x.reason as unknown);
    if (errs.length === 1 || errs[0] instanceof StackError === false) throw errs[0];
    throw new StackError(errs.map((e) => (e instanceof Error ? e.message : String(e))).join('; '));
  }
  const ep: StackEndpoints = { ...t.value, clickhouseUrl: c.value, ...p.value };
  const tmp = `${endpointsFile(home)}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(ep, null, 2) + '\n');
  renameSync(tmp, endpointsFile(home));
  return ep;
}

/** Whether each service answers, where, and whether the project started it. */
export async function stackStatus(
  opts: StackOptions = {},
): Promise<Array<{ service: string; state: 'up' | 'down'; detail: string }>> {
  const env = opts.env ?? process.env;
  const home = resolve(opts.home ?? defaultHome(env));
  const ep = readEndpoints(home);
  const out: Array<{ service: string; state: 'up' | 'down'; detail: string }> = [];
  const owner = (svc: Service) => {
    const pid = livePid(home, svc);
    return pid !== undefined ? `started by the project, pid ${pid}` : 'no project-started process';
  };

  const tAddr = ep?.temporalAddress ?? env.TEMPORAL_ADDRESS?.trim() ?? `127.0.0.1:${DEFAULT_PORTS.temporal}`;
  const tUp = await temporalHealthy(tAddr);
  out.push({
    service: 'temporal',
    state: tUp ? 'up' : 'down',
    detail: `${tAddr}${ep?.temporalUiUrl ? ` UI ${ep.temporalUiUrl}` : ''} (${owner('temporal')})`,
  });

  const chUrl = ep?.clickhouseUrl ?? env.CLICKHOUSE_URL?.trim() ?? `http://127.0.0.1:${DEFAULT_PORTS.clickhouseHttp}`;
  const chUp = await clickhouseHealthy(chUrl);
  out.push({ service: 'clickhouse', state: chUp ? 'up' : 'down', detail: `${maskUrl(chUrl)} (${owner('clickhouse')})` });

  const dbUrl = ep?.databaseUrl ?? env.DATABASE_URL?.trim() ?? `postgres://postgres@127.0.0.1:${DEFAULT_PORTS.pglite}/postgres`;
  const kind = ep?.databaseKind ?? (env.DATABASE_URL?.trim() ? 'postgres' : 'pglite');
  const dbUp = await postgresHealthy(dbUrl);
  out.push({
    service: 'postgres',
    state: dbUp ? 'up' : 'down',
    detail: `${maskUrl(dbUrl)} (${kind}; ${owner('pglite')})`,
  });
  return out;
}

/** Stop what the project started (by pid file), wait for exit; data stays in place. */
export async function stackDown(opts: StackOptions = {}): Promise<void> {
  const env = opts.env ?? process.env;
  const home = resolve(opts.home ?? defaultHome(env));
  const log = opts.log ?? ((s: string) => console.log(s));
  const names: Record<Service, string> = { temporal: 'temporal', clickhouse: 'clickhouse', pglite: 'postgres' };
  await Promise.all(
    (['pglite', 'clickhouse', 'temporal'] as Service[]).map(async (svc) => {
      const pid = await stopService(home, svc);
      log(`${names[svc].padEnd(11)} ${pid !== undefined ? `stopped (pid ${pid})` : 'not running (nothing to stop)'}`);
    }),
  );
}
