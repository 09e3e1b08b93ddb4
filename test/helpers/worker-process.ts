/**
 * `optiinfra worker` as a real process, started as users start it (bin/optiinfra.mjs: a small
 * launcher and the worker as its child with a capped heap; crash and scale-out tests, the bench):
 * with the given environment, ready once it has built its workers and says so, killed with
 * SIGKILL (the worker goes with its launcher) or stopped with SIGTERM, its peak RSS read from
 * /proc while it runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../stack/paths.js';

export interface WorkerProcess {
  readonly child: ChildProcess;
  /** What it printed so far (the last 256 kB at least). */
  output(): string;
  /** Resolves when the worker reports it runs; rejects if it exits first. */
  ready: Promise<void>;
  /** Peak resident set size (VmHWM) in bytes of the worker and of its launcher, while they run. */
  peakRssBytes(): { worker: number; launcher: number } | undefined;
  /** Process ids of the launcher and the worker. */
  pids(): number[];
  /** SIGKILL, resolved when it is gone. */
  kill(): Promise<void>;
  /** SIGTERM, resolved when it has exited. */
  stop(): Promise<void>;
}

const exited = (p: ChildProcess) => p.exitCode !== null || p.signalCode !== null;

const readOr = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

const childrenOf = (pid: number) => readOr(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/).filter(Boolean).map(Number);

/** VmHWM of a process in bytes, undefined when it is gone (or off Linux). */
function peakRss(pid: number | undefined): number | undefined {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(pid ? readOr(`/proc/${pid}/status`) : '');
  return m ? Number(m[1]) * 1024 : undefined;
}

export function startWorkerProcess(env: NodeJS.ProcessEnv): WorkerProcess {
  const child = spawn(process.execPath, [join(repoRoot(), 'bin', 'optiinfra.mjs'), 'worker'], {
    cwd: repoRoot(),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The last 256 kB of what it printed (a worker logs a line per LLM call).
  let out = '';
  const keep = (c: Buffer) => {
    out += c.toString('utf8');
    if (out.length > 512 * 1024) out = out.slice(-256 * 1024);
  };
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (c: Buffer) => {
      keep(c);
      if (/^worker on /m.test(out)) resolve();
    });
    child.stderr?.on('data', keep);
    child.once('exit', (code, signal) => reject(new Error(`the worker exited (${signal ?? code}) before it ran:\n${out.slice(-2000)}`)));
  });
  ready.catch(() => undefined);
  const signal = async (sig: NodeJS.Signals) => {
    if (exited(child)) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill(sig);
    await gone;
  };
  return {
    child,
    output: () => out,
    ready,
    pids: () => (child.pid ? [child.pid, ...childrenOf(child.pid)] : []),
    peakRssBytes() {
      const launcher = peakRss(child.pid);
      if (launcher === undefined || !child.pid) return undefined;
      // The worker is the launcher's child; without a cap to apply, the launcher is the worker.
      const worker = childrenOf(child.pid)
        .map(peakRss)
        .find((x) => x !== undefined);
      return worker === undefined ? { worker: launcher, launcher: 0 } : { worker, launcher };
    },
    kill: () => signal('SIGKILL'),
    stop: () => signal('SIGTERM'),
  };
}
