/**
 * The local stack, started by the project itself (no Docker, no internet needed beyond PyPI/apt):
 *
 * - Temporal: `temporal server start-dev` (temporal.ts), unless TEMPORAL_ADDRESS answers.
 * - ClickHouse: the distribution's `clickhouse-server` with a project-local config
 *   (clickhouse.ts), unless CLICKHOUSE_URL is set.
 * - PostgreSQL: DATABASE_URL, else the stack's own PostgreSQL server (postgres-server.ts: the
 *   distribution's binaries, apt-installed as root when missing, data under <home>/postgres);
 *   only when no server programs can be had, the embedded PGlite served over the wire protocol
 *   (postgres.ts, pglite-server.ts), one session serving its connections in turn.
 *   OPTIINFRA_DATABASE=postgres|pglite chooses one of the two (default auto).
 *
 * Starting is idempotent: a healthy service already answering on its port is reused. On failure,
 * whatever this call started is stopped again. The endpoints of a running stack are written to
 * <home>/endpoints.json, where later commands find them.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startClickhouse } from './clickhouse.js';
import { MissingProgramError, StackError } from './errors.js';
import { clickhouseHealthy, postgresHealthy, temporalHealthy } from './health.js';
import { defaultHome, stackDirs, type Service } from './paths.js';
import { DEFAULT_PORTS, isLoopback, parseHostPort, portFromEnv } from './ports.js';
import { pgliteUrl, startPglite } from './postgres.js';
import { localPostgresPaths, localPostgresUrl, startLocalPostgres } from './postgres-server.js';
import { isAlive, livePid, parsePid, sleep, startedBy, startupTimeoutMs, stopService } from './processes.js';
import { ensureSearchAttributes, startTemporal } from './temporal.js';
import { maskUrl } from '../common/secrets.js';

export interface StackEndpoints {
  temporalAddress: string;
  temporalUiUrl: string;
  clickhouseUrl: string;
  databaseUrl: string;
  databaseKind: 'postgres' | 'pglite';
  /** Who runs the database: the stack itself, or the server DATABASE_URL names. */
  databaseSource?: 'stack' | 'DATABASE_URL';
}

export interface StackOptions {
  home?: string;
  env?: NodeJS.ProcessEnv;
  log?: (s: string) => void;
  /** How long to wait for another `stack up` or `stack down` on the same home (default: the start-up timeout + 5 min). */
  lockWaitMs?: number;
}

/** The lock `stack up` and `stack down` hold on a stack home while they start or stop services. */
export function upLockFile(home: string): string {
  return join(stackDirs(home).run, 'up.lock');
}

/**
 * Take the lock of `home`, waiting while another live `stack up` or `stack down` holds it: two
 * `stack up` at once would start every service twice and overwrite each other's pid files, and a
 * `stack down` during a `stack up` would leave the services started after it running. A lock
 * left by a process that is gone is taken over. Returns the release function.
 */
async function takeStackLock(home: string, log: (s: string) => void, waitMs: number): Promise<() => void> {
  const file = upLockFile(home);
  const unwritable = (e: unknown) =>
    new StackError(
      `cannot write the stack home ${home} (${(e as Error).message}); make it writable or set OPTIINFRA_HOME to a writable directory`,
    );
  try {
    mkdirSync(stackDirs(home).run, { recursive: true });
  } catch (e) {
    throw unwritable(e);
  }
  const deadline = Date.now() + waitMs;
  let said = false;
  for (;;) {
    try {
      const fd = openSync(file, 'wx');
      try {
        writeFileSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return () => {
        try {
          if (parsePid(readFileSync(file, 'utf8')) === process.pid) rmSync(file, { force: true });
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw unwritable(e);
    }
    let holder: number | undefined;
    let writtenAt = 0;
    try {
      writtenAt = statSync(file).mtimeMs;
      holder = parsePid(readFileSync(file, 'utf8'));
    } catch {
      continue; // released in between
    }
    // A lock being written has no pid yet: give its writer a moment before calling it stale.
    const fresh = holder === undefined && Date.now() - writtenAt < 2000;
    if (!fresh && (holder === undefined || !isAlive(holder) || !startedBy(holder, writtenAt))) {
      rmSync(file, { force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new StackError(
        `another \`stack up\` or \`stack down\` (pid ${holder ?? '?'}) is working on the stack in ${home} and has not finished; wait for it, ` +
          `or stop that process and remove ${file}`,
      );
    }
    if (!said && holder !== undefined) {
      log(`stack       waiting for another \`stack up\` or \`stack down\` (pid ${holder}) on ${home}`);
      said = true;
    }
    await sleep(250);
  }
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
        ...(j.databaseSource === 'stack' || j.databaseSource === 'DATABASE_URL' ? { databaseSource: j.databaseSource } : {}),
      };
    }
  } catch {
    /* missing or unreadable */
  }
  return undefined;
}

/** A configured URL as shown: its password masked (maskUrl), without a trailing slash. */
const shownUrl = (u: string): string => (maskUrl(u) ?? u).replace(/\/$/, '');

function secs(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

/** Which database the stack runs: OPTIINFRA_DATABASE (auto: PostgreSQL, else PGlite when no server programs can be had). */
export function databaseMode(env: NodeJS.ProcessEnv = process.env): 'auto' | 'postgres' | 'pglite' {
  const v = env.OPTIINFRA_DATABASE?.trim().toLowerCase() || 'auto';
  if (v === 'auto' || v === 'postgres' || v === 'pglite') return v;
  throw new StackError(`OPTIINFRA_DATABASE must be auto, postgres or pglite (got '${env.OPTIINFRA_DATABASE}')`);
}

export interface DatabaseStart {
  databaseUrl: string;
  databaseKind: 'postgres' | 'pglite';
  databaseSource: 'stack' | 'DATABASE_URL';
  /** The service this call started, if any (to stop again when the rest of the stack fails). */
  started?: Service;
}

/**
 * The stack's database: DATABASE_URL when set (it must answer), else the stack's own PostgreSQL
 * server, else — no server programs to be had, or OPTIINFRA_DATABASE=pglite — PGlite.
 */
export async function startDatabase(opts: StackOptions = {}): Promise<DatabaseStart> {
  const env = opts.env ?? process.env;
  const home = resolve(opts.home ?? defaultHome(env));
  const log = opts.log ?? ((s: string) => console.log(s));
  const t0 = Date.now();
  const given = env.DATABASE_URL?.trim();
  if (given) {
    if (!(await postgresHealthy(given))) {
      throw new StackError(
        `DATABASE_URL=${shownUrl(given)} does not answer SELECT 1; start that server or unset DATABASE_URL to use the stack's own PostgreSQL`,
      );
    }
    log(`postgres    up    ${shownUrl(given)} (DATABASE_URL)`);
    return { databaseUrl: given, databaseKind: 'postgres', databaseSource: 'DATABASE_URL' };
  }
  const mode = databaseMode(env);
  let fallback = '';
  if (mode !== 'pglite') {
    const port = portFromEnv(env, 'OPTIINFRA_POSTGRES_PORT', DEFAULT_PORTS.postgres);
    try {
      const r = await startLocalPostgres({ home, port, env });
      const how = r.started ? `started, pid ${r.pid}, ${secs(t0)}` : `already running${r.pid ? `, pid ${r.pid}` : ''}`;
      log(`postgres    up    ${r.url} (PostgreSQL ${r.major}, own server as user ${r.user}, data ${r.dataDir}; ${how})`);
      if (r.created && existsSync(join(home, 'pglite'))) {
        log(`postgres    note  the PGlite data in ${join(home, 'pglite')} is not copied over (OPTIINFRA_DATABASE=pglite still uses it)`);
      }
      return { databaseUrl: r.url, databaseKind: 'postgres', databaseSource: 'stack', started: r.started ? 'postgres' : undefined };
    } catch (e) {
      if (mode === 'postgres' || !(e instanceof MissingProgramError)) throw e;
      fallback = e.message;
    }
  }
  const port = portFromEnv(env, 'OPTIINFRA_PGLITE_PORT', DEFAULT_PORTS.pglite);
  if (fallback) log(`postgres    note  no PostgreSQL server: ${fallback}; using the embedded PGlite instead`);
  const was = livePid(home, 'pglite');
  const r = await startPglite({ home, port, dataDir: join(home, 'pglite') });
  const fresh = r.pid !== 0 && r.pid !== was;
  log(
    `postgres    up    ${r.url} (PGlite${mode === 'pglite' ? ', OPTIINFRA_DATABASE=pglite' : ''}: one session, connections served in turn; ` +
      `${fresh ? `started, pid ${r.pid}, ${secs(t0)}` : 'already running'})`,
  );
  return { databaseUrl: r.url, databaseKind: 'pglite', databaseSource: 'stack', started: fresh ? 'pglite' : undefined };
}

/** Start (or reuse) Temporal, ClickHouse and PostgreSQL, and write their endpoints under the stack home. */
export async function stackUp(opts: StackOptions = {}): Promise<StackEndpoints> {
  const env = opts.env ?? process.env;
  const home = resolve(opts.home ?? defaultHome(env));
  const log = opts.log ?? ((s: string) => console.log(s));
  const release = await takeStackLock(home, log, lockWaitMs(opts, env));
  try {
    return await startStack(home, env, log);
  } finally {
    release();
  }
}

async function startStack(home: string, env: NodeJS.ProcessEnv, log: (s: string) => void): Promise<StackEndpoints> {
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
          `CLICKHOUSE_URL=${shownUrl(given)} does not answer /ping; start that server or unset CLICKHOUSE_URL to use a local one`,
        );
      }
      log(`clickhouse  up    ${shownUrl(given)} (CLICKHOUSE_URL)`);
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

  const postgres = async (): Promise<Pick<StackEndpoints, 'databaseUrl' | 'databaseKind' | 'databaseSource'>> => {
    const r = await startDatabase({ home, env, log });
    if (r.started) started.push(r.started);
    return { databaseUrl: r.databaseUrl, databaseKind: r.databaseKind, databaseSource: r.databaseSource };
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
export async function stackStatus(opts: StackOptions = {}): Promise<Array<{ service: string; state: 'up' | 'down'; detail: string }>> {
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
  out.push({ service: 'clickhouse', state: chUp ? 'up' : 'down', detail: `${shownUrl(chUrl)} (${owner('clickhouse')})` });

  const envDb = env.DATABASE_URL?.trim();
  const kind = ep?.databaseKind ?? (!envDb && livePid(home, 'pglite') !== undefined ? 'pglite' : 'postgres');
  const source =
    ep?.databaseSource ?? (ep ? (ep.databaseKind === 'postgres' ? 'DATABASE_URL' : 'stack') : envDb ? 'DATABASE_URL' : 'stack');
  const dbUrl =
    ep?.databaseUrl ??
    envDb ??
    (kind === 'pglite'
      ? pgliteUrl(portFromEnv(env, 'OPTIINFRA_PGLITE_PORT', DEFAULT_PORTS.pglite))
      : localPostgresUrl(portFromEnv(env, 'OPTIINFRA_POSTGRES_PORT', DEFAULT_PORTS.postgres)));
  const dbUp = await postgresHealthy(dbUrl);
  const label = source === 'DATABASE_URL' ? 'DATABASE_URL' : kind === 'pglite' ? 'pglite' : 'postgres (local)';
  out.push({
    service: 'postgres',
    state: dbUp ? 'up' : 'down',
    detail: `${shownUrl(dbUrl)} (${label}${source === 'stack' ? `; ${owner(kind === 'pglite' ? 'pglite' : 'postgres')}` : ''})`,
  });
  return out;
}

/** Stop what the project started (by pid file), wait for exit; data stays in place. */
export async function stackDown(opts: StackOptions = {}): Promise<void> {
  const env = opts.env ?? process.env;
  const home = resolve(opts.home ?? defaultHome(env));
  const log = opts.log ?? ((s: string) => console.log(s));
  const line = (name: string, what: string) => log(`${name.padEnd(11)} ${what}`);
  // A home never started has nothing to stop (and is not created by looking).
  const release = existsSync(stackDirs(home).run) ? await takeStackLock(home, log, lockWaitMs(opts, env)) : () => undefined;
  try {
    await stopStack(home, line);
  } finally {
    release();
  }
}

function lockWaitMs(opts: StackOptions, env: NodeJS.ProcessEnv): number {
  return opts.lockWaitMs ?? startupTimeoutMs(env) + 300_000;
}

async function stopStack(home: string, line: (name: string, what: string) => void): Promise<void> {
  await Promise.all([
    (async () => {
      const [server, lite] = await Promise.all([stopService(home, 'postgres'), stopService(home, 'pglite')]);
      if (server !== undefined) line('postgres', `stopped (pid ${server}; data kept in ${localPostgresPaths(home).data})`);
      if (lite !== undefined) line('postgres', `stopped (PGlite, pid ${lite}; data kept in ${join(home, 'pglite')})`);
      if (server === undefined && lite === undefined) line('postgres', 'not running (nothing to stop)');
    })(),
    ...(['clickhouse', 'temporal'] as const).map(async (svc) => {
      const pid = await stopService(home, svc);
      line(svc, pid !== undefined ? `stopped (pid ${pid})` : 'not running (nothing to stop)');
    }),
  ]);
}
