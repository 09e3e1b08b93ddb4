/**
 * The processes of rollback commands on this host (Linux, from /proc; elsewhere the functions find
 * nothing and do nothing): ending a command with everything it started, starting it so that it
 * does not outlive its worker, and the record of which process group runs the delivery of which
 * idempotency key, so that a retry on this host first ends an earlier attempt's command that is
 * still running (see "A worker that dies" in rollback.ts).
 *
 * A record is the file `<sha256 hex of the idempotency key>.json` in the record directory
 * (`optiinfra-rollback-commands-<uid>` in the OS's temporary directory unless the caller names
 * one; mode 0700, owned by the worker's user, else no record is kept):
 *   { "v": 1, "key", "pid", "pgid", "start", "boot", "worker", "at" }
 * `start` is the start time of `pid` (clock ticks after boot, field 22 of /proc/<pid>/stat),
 * `boot` the kernel's boot id: together they name one process, never a later one with a reused
 * pid. `worker` and `at` (the worker's pid, when it started the command) are for people only.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  constants,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const linux = process.platform === 'linux';

// ---------------------------------------------------------------------------------------------
// /proc

interface ProcStat {
  /** R, S, D, Z (a zombie: ended, not yet reaped), ... */
  state: string;
  ppid: number;
  pgrp: number;
  /** Clock ticks after boot, as written (it may exceed 2^53 in principle). */
  start: string;
}

/** Fields of /proc/<pid>/stat; undefined when the process is gone (or off Linux). */
function procStat(pid: number): ProcStat | undefined {
  if (!linux) return undefined;
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid pgrp session tty tpgid flags ... starttime(22) ...": comm may hold
    // spaces and parentheses, so the fields are counted after its last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const start = f[19];
    if (f[0] === undefined || start === undefined || !/^\d+$/.test(start)) return undefined;
    return { state: f[0], ppid: Number(f[1]), pgrp: Number(f[2]), start };
  } catch {
    return undefined;
  }
}

/** Processes now on the host, by pid. */
function allProcesses(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  if (!linux) return out;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(Number(e));
    if (st) out.set(Number(e), st);
  }
  return out;
}

const running = (st: ProcStat | undefined) => st !== undefined && st.state !== 'Z' && st.state !== 'X';

/** Running (a zombie is not). */
function isRunning(pid: number): boolean {
  return running(procStat(pid));
}

// ---------------------------------------------------------------------------------------------
// Ending a command

/**
 * Descendants of a process (Linux, from /proc; elsewhere none): the processes that left its
 * process group (setsid, a `detached` spawn) are still its descendants while it runs.
 */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, st] of allProcesses()) {
    const list = children.get(st.ppid) ?? [];
    list.push(pid);
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop() as number;
    for (const c of children.get(p) ?? []) {
      if (out.includes(c)) continue;
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

/**
 * Signal a command, its process group and every descendant seen so far (`seen` remembers them:
 * a descendant whose parent died is no longer found under it).
 */
export function signalTree(pid: number, signal: NodeJS.Signals, seen: Set<number>): void {
  const send = (p: number) => {
    try {
      process.kill(p, signal);
    } catch {
      // gone already
    }
  };
  // Never a broadcast: kill(0) and kill(-1) reach far more than one command.
  if (!Number.isSafeInteger(pid) || pid < 2) return;
  if (process.platform === 'win32') {
    send(pid);
    return;
  }
  for (const p of descendants(pid)) seen.add(p);
  send(-pid);
  send(pid);
  for (const p of seen) send(p);
}

// ---------------------------------------------------------------------------------------------
// Not outliving the worker

let setprivFound: { path: string | undefined; setpriv: string | undefined } | undefined;

/** An executable regular file named `name` on `path` (or `name` itself when it holds a '/'). */
function findExecutable(name: string, path: string | undefined): string | undefined {
  const candidates = name.includes('/') ? [name] : (path ?? '').split(':').map((d) => join(d || '.', name));
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not there, not executable
    }
  }
  return undefined;
}

/** setpriv (util-linux) on the worker's PATH, if it can set a parent-death signal here. */
function setpriv(): string | undefined {
  if (!linux) return undefined;
  const path = process.env.PATH;
  if (setprivFound !== undefined && setprivFound.path === path) return setprivFound.setpriv;
  const found = findExecutable('setpriv', path);
  // Older releases lack --pdeathsig (util-linux 2.33+), a sandbox may refuse prctl: try it once.
  const works =
    found !== undefined &&
    spawnSync(found, ['--pdeathsig', 'KILL', '--', found, '--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
  const value = works ? found : undefined;
  setprivFound = { path, setpriv: value };
  return value;
}

/**
 * The argv that runs `argv` with SIGKILL as its parent-death signal (setpriv sets it, then
 * execs the program in its place: same pid, same process group), and whether it does. Only when
 * setpriv works and the program is an executable file on the command's PATH: otherwise the
 * program is spawned as it is, and a missing or non-executable one fails to spawn as before.
 */
export function withParentDeathSignal(argv: string[], env: Record<string, string>): { argv: string[]; wrapped: boolean } {
  const program = argv[0];
  const sp = setpriv();
  if (sp === undefined || program === undefined || findExecutable(program, env.PATH) === undefined) {
    return { argv, wrapped: false };
  }
  return { argv: [sp, '--pdeathsig', 'KILL', '--', ...argv], wrapped: true };
}

/**
 * A program that setpriv could not execute after all (exit 127: not found, e.g. a script's
 * interpreter; 126: cannot be executed): setpriv says so on stderr and nothing else ran.
 */
export function setprivExecFailure(code: number | null, stderr: string, stdout: string): 'ENOENT' | 'EACCES' | undefined {
  if ((code !== 127 && code !== 126) || stdout !== '' || !/^setpriv: [^\n]*$/.test(stderr)) return undefined;
  return code === 127 ? 'ENOENT' : 'EACCES';
}

// ---------------------------------------------------------------------------------------------
// The record of a running command

interface RunRecord {
  v: 1;
  key: string;
  pid: number;
  pgid: number;
  start: string;
  boot: string;
  worker?: number;
  at?: string;
}

let bootIdCache: string | undefined;
function bootId(): string | undefined {
  if (!linux) return undefined;
  try {
    bootIdCache ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    // no /proc
  }
  return bootIdCache;
}

/** The default record directory: the same for every worker of this user on this host. */
function defaultRecordDir(): string {
  return join(tmpdir(), `optiinfra-rollback-commands-${process.getuid?.() ?? 'user'}`);
}

/**
 * The record directory made ready: created (0700) if needed, and only used when it is a real
 * directory of this user that nobody else may write to. Undefined: no records (off Linux too).
 */
export function recordDirectory(dir: string = defaultRecordDir()): string | undefined {
  if (!linux || bootId() === undefined) return undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) return undefined;
    return dir;
  } catch {
    return undefined;
  }
}

function recordFile(dir: string, key: string): string {
  return join(dir, `${createHash('sha256').update(key).digest('hex')}.json`);
}

const isPid = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 2 && n <= 2 ** 22;

/** The record of `key` in `file`, when it is well formed and about `key`; anything else is undefined. */
function readRecord(file: string, key: string): RunRecord | undefined {
  try {
    const st = lstatSync(file);
    if (!st.isFile() || st.size > 64 * 1024 || st.uid !== process.getuid?.()) return undefined;
    const r = JSON.parse(readFileSync(file, 'utf8')) as Partial<RunRecord> | null;
    if (r === null || typeof r !== 'object' || r.v !== 1 || r.key !== key) return undefined;
    // We start every command as the leader of its own process group.
    if (!isPid(r.pid) || r.pgid !== r.pid) return undefined;
    if (typeof r.start !== 'string' || !/^\d{1,20}$/.test(r.start) || typeof r.boot !== 'string') return undefined;
    return r as RunRecord;
  } catch {
    return undefined;
  }
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // gone already
  }
}

/** The environment a command of `key` was started with names that key (see commandEnv). */
function startedFor(pid: number, key: string): boolean {
  try {
    const env = readFileSync(`/proc/${pid}/environ`);
    const entry = Buffer.from(`OPTIINFRA_IDEMPOTENCY_KEY=${key.replace(/\0/g, '')}\0`);
    return env.subarray(0, entry.length).equals(entry) || env.includes(Buffer.concat([Buffer.from([0]), entry]));
  } catch {
    // gone, or another user's: not ours to signal
    return false;
  }
}

/**
 * The running processes of a recorded command: the command itself when it still runs (the same
 * process: start time, group, and the key in its environment), and the processes of its group.
 * While the command runs, its group is its own; once it has ended, the group's pid cannot be
 * given to another process while any member is left, but each member must still have started
 * after the command and carry the key in its environment. Anything else is not signalled.
 */
function processesOf(rec: RunRecord): number[] {
  const all = allProcesses();
  const leader = all.get(rec.pid);
  const leaderIsOurs = running(leader) && leader?.start === rec.start && leader.pgrp === rec.pgid && startedFor(rec.pid, rec.key);
  // The pid runs another program now: our group, which would hold it, is gone.
  if (running(leader) && !leaderIsOurs) return [];
  const out = leaderIsOurs ? [rec.pid] : [];
  for (const [pid, st] of all) {
    if (pid === rec.pid || st.pgrp !== rec.pgid || !running(st) || BigInt(st.start) < BigInt(rec.start)) continue;
    if (leaderIsOurs || startedFor(pid, rec.key)) out.push(pid);
  }
  return out;
}

/**
 * Records that `pid` (the leader of its process group) runs the delivery of `key`; returns the
 * function that removes the record again (only while it is still this one: a later attempt may
 * have written its own).
 */
export function recordRun(dir: string, key: string, pid: number): () => void {
  const st = procStat(pid);
  const boot = bootId();
  if (!st || st.pgrp !== pid || boot === undefined) return () => undefined;
  const file = recordFile(dir, key);
  const rec: RunRecord = { v: 1, key, pid, pgid: pid, start: st.start, boot, worker: process.pid, at: new Date().toISOString() };
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(rec)}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    removeQuietly(tmp);
    return () => undefined;
  }
  sweep(dir, file);
  return () => {
    const now = readRecord(file, key);
    if (now?.pid === pid && now.start === st.start && now.boot === boot) removeQuietly(file);
  };
}

/** Records left over (a worker that died, whose key was never retried here) go after a day once nothing of theirs runs. */
function sweep(dir: string, keep: string): void {
  const dayAgo = Date.now() - 24 * 3600_000;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const file = join(dir, n);
    if (file === keep || !/^[0-9a-f]{64}\.json$/.test(n)) continue;
    try {
      if (lstatSync(file).mtimeMs > dayAgo) continue;
      const raw = JSON.parse(readFileSync(file, 'utf8')) as { key?: unknown };
      const rec = typeof raw?.key === 'string' ? readRecord(file, raw.key) : undefined;
      if (!rec || recordFile(dir, rec.key) !== file || rec.boot !== bootId() || processesOf(rec).length === 0) removeQuietly(file);
    } catch {
      removeQuietly(file);
    }
  }
}

export interface EarlierRun {
  /** The earlier attempt's command. */
  pid: number;
  /** Whether the command itself still ran (else only processes of its group did). */
  commandRan: boolean;
  /** How many of its processes ran. */
  processes: number;
  /** Whether they are all gone now. */
  ended: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `done` every 100 ms (each look reads /proc) for up to `ms`. */
async function waitFor(done: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (done()) return true;
    if (Date.now() >= end) return false;
    await sleep(100);
  }
}

/**
 * Ends what an earlier attempt of `key` started on this host and left running (its worker died):
 * SIGTERM to the command's group and every descendant, SIGKILL after `graceMs` to what is left,
 * then up to `waitMs` for all of it to be gone. Undefined when nothing of it runs (the record, if
 * any, is removed); the record stays when something survived SIGKILL.
 */
export async function endEarlierRun(dir: string, key: string, graceMs: number, waitMs: number): Promise<EarlierRun | undefined> {
  const file = recordFile(dir, key);
  const rec = readRecord(file, key);
  const procs = rec && rec.boot === bootId() ? processesOf(rec) : [];
  if (!rec || procs.length === 0) {
    // Missing, malformed, of another key or boot, or nothing of it runs: nothing to end.
    removeQuietly(file);
    return undefined;
  }
  const seen = new Set<number>();
  const signal = (sig: NodeJS.Signals, pids: number[]) => {
    if (pids.length === 0) return;
    // The group (held by the verified processes, so it is still the recorded one), each process
    // and every descendant: the same as at a command's timeout.
    for (const p of new Set([rec.pgid, ...pids])) signalTree(p, sig, seen);
  };
  const left = () => [...new Set([...processesOf(rec), ...[...seen].filter(isRunning)])];
  const found = { pid: rec.pid, commandRan: procs.includes(rec.pid), processes: procs.length };
  signal('SIGTERM', procs);
  found.processes = new Set([...procs, ...seen]).size;
  if (!(await waitFor(() => left().length === 0, graceMs))) {
    const still = processesOf(rec);
    if (still.length) signal('SIGKILL', still);
    else for (const p of [...seen].filter(isRunning)) signalTree(p, 'SIGKILL', seen);
  }
  const ended = await waitFor(() => left().length === 0, waitMs);
  if (ended) removeQuietly(file);
  return { ...found, ended };
}
