/**
 * One server per data directory. PGlite takes no lock of its own (its postmaster.pid names a fake
 * pid, -42, and is never checked): two servers on one directory both start, each works from its
 * own buffers, and whichever writes last silently discards the other's commits. So
 * stack/pglite-server.ts holds this lock for its whole life: a file in the directory naming the
 * holder's pid and the time its process started.
 *
 * The file is created complete and atomically (written aside, then hard-linked into place, which
 * fails when it exists). A lock whose process is gone — killed with SIGKILL, say, even if it is
 * left a zombie its parent never reaps — is stale and is taken over; so is one whose pid now
 * belongs to another process (the pid was reused: a different start time, or a different boot)
 * and one naming the caller's own pid (it is not holding it yet, e.g. a container that gives its
 * server the same pid on every start). A stale lock is first renamed aside, so of several
 * servers starting at once only one takes it over.
 *
 * A process is identified as in stack/processes.ts, by its start time from /proc, here exactly:
 * the boot id and the start time in clock ticks since boot (no wall clock involved). Where /proc
 * cannot be read, a live pid counts as the holder.
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, procStat } from './processes.js';

/** The lock file's name inside the data directory. */
export const LOCK_FILE = 'pglite-server.lock';

/** What a lock file records; `boot` and `startTicks` are missing where /proc cannot be read. */
export interface LockHolder {
  pid: number;
  boot?: string;
  startTicks?: number;
}

/**
 * The boot id and start time (clock ticks since boot, field 22 of /proc/<pid>/stat) of a process,
 * and whether it has exited (a zombie its parent has not reaped yet still has its pid).
 */
export function processStart(pid: number): { boot: string; startTicks: number; exited: boolean } | undefined {
  const st = procStat(pid);
  if (!st) return undefined;
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return boot ? { boot, startTicks: st.startTicks, exited: st.state === 'Z' || st.state === 'X' } : undefined;
  } catch {
    return undefined;
  }
}

export class DataDirLocked extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockHolder,
  ) {
    super(
      `data directory ${dir} is in use by the pglite-server with pid ${holder.pid} (lock file ${join(dir, LOCK_FILE)}); ` +
        `two servers on one directory would each discard the other's commits: stop that one first, or use another --data directory`,
    );
    this.name = 'DataDirLocked';
  }
}

export function parseLock(text: string): LockHolder | undefined {
  try {
    const j = JSON.parse(text) as { pid?: unknown; boot?: unknown; startTicks?: unknown };
    if (!Number.isSafeInteger(j.pid) || (j.pid as number) < 1) return undefined;
    return {
      pid: j.pid as number,
      boot: typeof j.boot === 'string' ? j.boot : undefined,
      startTicks: Number.isSafeInteger(j.startTicks) ? (j.startTicks as number) : undefined,
    };
  } catch {
    return undefined;
  }
}

/**
 * Whether the process a lock names still runs: a live pid (not a zombie), not ours, started (this
 * boot) when the lock says.
 */
export function holderRuns(h: LockHolder): boolean {
  if (h.pid === process.pid || !isAlive(h.pid)) return false;
  const now = processStart(h.pid);
  if (now?.exited) return false;
  if (now === undefined || h.boot === undefined || h.startTicks === undefined) return true;
  return now.boot === h.boot && now.startTicks === h.startTicks;
}

/** The running server that holds the lock of `dir`, if any. */
export function dataDirHolder(dir: string): LockHolder | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, LOCK_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const holder = parseLock(text);
  return holder && holderRuns(holder) ? holder : undefined;
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

/**
 * Take the lock of `dir` (an existing directory) for this process, or throw DataDirLocked naming
 * the process that holds it. `release()` removes the file if it is still this process's.
 */
export function lockDataDir(dir: string): { file: string; release: () => void } {
  const file = join(dir, LOCK_FILE);
  const me = processStart(process.pid);
  const mine = `${JSON.stringify({ pid: process.pid, boot: me?.boot, startTicks: me?.startTicks, since: new Date().toISOString() })}\n`;
  const release = () => {
    try {
      if (readFileSync(file, 'utf8') === mine) rmSync(file, { force: true });
    } catch {
      /* gone already */
    }
  };
  const draft = `${file}.${process.pid}.new`;
  const aside = `${file}.${process.pid}.stale`;
  writeFileSync(draft, mine);
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        linkSync(draft, file);
        return { file, release };
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw e;
      }
      let seen: string;
      try {
        seen = readFileSync(file, 'utf8');
      } catch (e) {
        if (errno(e) === 'ENOENT') continue;
        throw e;
      }
      const holder = parseLock(seen);
      if (holder && holderRuns(holder)) throw new DataDirLocked(dir, holder);
      // Stale (or unreadable, which no server of ours leaves behind): move it aside, then check
      // that what was moved is what was judged stale — else another server had just put its own
      // lock there, and it goes back.
      try {
        renameSync(file, aside);
      } catch (e) {
        if (errno(e) === 'ENOENT') continue;
        throw e;
      }
      if (readFileSync(aside, 'utf8') !== seen) {
        try {
          linkSync(aside, file);
        } catch {
          /* a third server has taken the place meanwhile; the next attempt finds it */
        }
      }
      rmSync(aside, { force: true });
    }
    throw new Error(`cannot lock data directory ${dir}: ${file} keeps changing`);
  } finally {
    rmSync(draft, { force: true });
  }
}
