/**
 * Processes of the stack: every service is spawned detached (own process group, stdio to a log
 * file) so the caller can exit; its pid file lives in <home>/run and is checked for staleness.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { StackError } from './errors.js';
import { logFile, pidFile, type Service } from './paths.js';

/** Parse a pid file's content; undefined when it is not a positive integer. */
export function parsePid(text: string): number | undefined {
  const s = text.trim();
  if (!/^[1-9][0-9]{0,9}$/.test(s)) return undefined;
  return Number(s);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Seconds a service may take to become ready when OPTIINFRA_STARTUP_TIMEOUT is unset: enough for a loaded 2-core machine. */
export const DEFAULT_STARTUP_TIMEOUT_S = 180;

/**
 * How long a service of the stack may take to become ready, in ms: OPTIINFRA_STARTUP_TIMEOUT
 * (seconds), else DEFAULT_STARTUP_TIMEOUT_S. A value that is not a positive number of seconds
 * is an error naming the variable.
 */
export function startupTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.OPTIINFRA_STARTUP_TIMEOUT?.trim();
  if (!raw) return DEFAULT_STARTUP_TIMEOUT_S * 1000;
  const s = Number(raw);
  if (!Number.isFinite(s) || s < 1 || s > 86_400) {
    throw new StackError(`OPTIINFRA_STARTUP_TIMEOUT must be a number of seconds from 1 to 86400 (got '${raw}')`);
  }
  return Math.round(s * 1000);
}

/** true while a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function isAlive(pid: number): boolean {
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

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = 100;
/** How much later than its pid file a process may seem to start (btime is rounded to seconds and drifts). */
const START_SLACK_MS = 5000;

/**
 * A process's state letter and start time in clock ticks since boot, from /proc/<pid>/stat;
 * undefined where that cannot be read.
 */
export function procStat(pid: number): { state: string; startTicks: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name in parentheses (which may hold spaces): state is field 3, starttime field 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const startTicks = Number(fields[19]);
    return Number.isSafeInteger(startTicks) ? { state: fields[0] ?? '', startTicks } : undefined;
  } catch {
    return undefined;
  }
}

/** When a process started (ms since the epoch), from /proc; undefined where that cannot be read. */
export function processStartMs(pid: number): number | undefined {
  const st = procStat(pid);
  if (!st) return undefined;
  try {
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    return btime ? (btime + st.startTicks / CLOCK_TICKS) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the live process `pid` can be the one a pid file written at `writtenAtMs` names: a
 * process that started after the file was written has reused the pid and belongs to someone else.
 */
export function startedBy(pid: number, writtenAtMs: number): boolean {
  const started = processStartMs(pid);
  return started === undefined || started <= writtenAtMs + START_SLACK_MS;
}

const CMD_MARKERS: Record<Service, RegExp> = {
  temporal: /start-dev/,
  clickhouse: /clickhouse/,
  postgres: /postgres.* -D /,
  pglite: /pglite-server/,
};

/** How a service is stopped: the signal, whether to its whole process group, and how long to wait before SIGKILL. */
export interface StopHow {
  signal: NodeJS.Signals;
  group: boolean;
  timeoutMs: number;
}

/**
 * The PostgreSQL postmaster is sent SIGINT alone (fast shutdown: it ends its sessions, writes a
 * shutdown checkpoint and stops its own children); the other services, SIGTERM to their group.
 */
export const STOP_HOW: Record<Service, StopHow> = {
  temporal: { signal: 'SIGTERM', group: true, timeoutMs: 20_000 },
  clickhouse: { signal: 'SIGTERM', group: true, timeoutMs: 20_000 },
  postgres: { signal: 'SIGINT', group: false, timeoutMs: 60_000 },
  pglite: { signal: 'SIGTERM', group: true, timeoutMs: 20_000 },
};

/**
 * Whether `pid` is a live process of `svc` that a pid file written at `writtenAtMs` can name:
 * where /proc is readable, its command line must be the service's and it must have started
 * before the file was written (else the pid was reused by another program).
 */
export function isServiceProcess(pid: number, svc: Service, writtenAtMs: number): boolean {
  if (!isAlive(pid)) return false;
  const cmd = cmdlineOf(pid);
  if (cmd !== undefined && !CMD_MARKERS[svc].test(cmd)) return false;
  return startedBy(pid, writtenAtMs);
}

/** The pid recorded for a service if that process still runs; a stale pid file is removed. */
export function livePid(home: string, svc: Service): number | undefined {
  const f = pidFile(home, svc);
  let text: string;
  let writtenAt: number;
  try {
    writtenAt = statSync(f).mtimeMs;
    text = readFileSync(f, 'utf8');
  } catch {
    return undefined;
  }
  const pid = parsePid(text);
  if (!pid || !isServiceProcess(pid, svc, writtenAt)) {
    rmSync(f, { force: true });
    return undefined;
  }
  return pid;
}

/** Send `sig` to the process group led by `pid`, else to the process alone. */
export function signalGroup(pid: number, sig: NodeJS.Signals): void {
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

/** SIGTERM the process group (or what `how` says), SIGKILL the group after the timeout, and wait for the exit. */
export async function stopPid(pid: number, timeoutMs = 20_000, how?: Pick<StopHow, 'signal' | 'group'>): Promise<void> {
  if (how && !how.group) {
    try {
      process.kill(pid, how.signal);
    } catch {
      /* already gone */
    }
  } else {
    signalGroup(pid, how?.signal ?? 'SIGTERM');
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await sleep(100);
  }
  signalGroup(pid, 'SIGKILL');
  const hard = Date.now() + 5000;
  while (Date.now() < hard && isAlive(pid)) await sleep(100);
}

/** Stop a service started by the stack and remove its pid file; the pid it stopped, if any. */
export async function stopService(home: string, svc: Service): Promise<number | undefined> {
  const pid = livePid(home, svc);
  if (pid !== undefined) await stopPid(pid, STOP_HOW[svc].timeoutMs, STOP_HOW[svc]);
  rmSync(pidFile(home, svc), { force: true });
  return pid;
}

/** The last non-empty lines of a log file, for error messages. */
export function tail(file: string, lines = 15): string {
  try {
    const all = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '');
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

/** spawnService for a stack service, with its log and pid file under <home>. */
export function spawnDetached(home: string, svc: Service, cmd: string, args: string[], cwd: string): Spawned {
  return spawnService(cmd, args, { cwd, logFile: logFile(home, svc), pidFile: pidFile(home, svc) });
}

/**
 * Wait until `ready()` holds, for up to `timeout` ms (default: startupTimeoutMs()). When the
 * program exits first, or the time is up (then it is stopped), a StackError names the service,
 * the program, the log file and its last lines.
 */
export async function waitReady(
  home: string,
  svc: Service,
  s: Spawned,
  what: string,
  ready: () => Promise<boolean>,
  timeout?: number,
): Promise<void> {
  const t0 = Date.now();
  const log = logFile(home, svc);
  let timeoutMs: number;
  try {
    timeoutMs = timeout ?? startupTimeoutMs();
  } catch (e) {
    await stopPid(s.pid, STOP_HOW[svc].timeoutMs, STOP_HOW[svc]);
    rmSync(pidFile(home, svc), { force: true });
    throw e;
  }
  const deadline = t0 + timeoutMs;
  while (Date.now() < deadline) {
    if (await ready()) return;
    const ex = s.exited();
    if (ex) {
      rmSync(pidFile(home, svc), { force: true });
      throw new StackError(
        `${svc} (${what}) exited during start-up after ${((Date.now() - t0) / 1000).toFixed(1)} s (${ex.signal ?? `code ${ex.code}`}); log ${log}:\n${tail(log)}`,
      );
    }
    await sleep(250);
  }
  await stopPid(s.pid, STOP_HOW[svc].timeoutMs, STOP_HOW[svc]);
  rmSync(pidFile(home, svc), { force: true });
  throw new StackError(
    `${svc} (${what}) did not become ready within ${timeoutMs / 1000} s and was stopped; a loaded machine may need more: ` +
      `set OPTIINFRA_STARTUP_TIMEOUT (seconds, now ${timeoutMs / 1000}); log ${log}:\n${tail(log)}`,
  );
}
