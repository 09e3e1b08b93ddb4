/**
 * `optiinfra worker` as a real process (crash and scale-out tests, the bench): started with the
 * given environment, ready once it has built its workers and says so, killed with SIGKILL or
 * stopped with SIGTERM, its peak RSS read from /proc while it runs.
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
  /** Peak resident set size (VmHWM) in bytes while it runs; undefined once it exited or off Linux. */
  peakRssBytes(): number | undefined;
  /** SIGKILL, resolved when it is gone. */
  kill(): Promise<void>;
  /** SIGTERM, resolved when it has exited. */
  stop(): Promise<void>;
}

const exited = (p: ChildProcess) => p.exitCode !== null || p.signalCode !== null;

export function startWorkerProcess(env: NodeJS.ProcessEnv): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot(), 'client', 'cli', 'index.ts'), 'worker'], {
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
    peakRssBytes() {
      try {
        const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        return m ? Number(m[1]) * 1024 : undefined;
      } catch {
        return undefined;
      }
    },
    kill: () => signal('SIGKILL'),
    stop: () => signal('SIGTERM'),
  };
}
