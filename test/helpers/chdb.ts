/**
 * chdb (PyPI: ClickHouse of a current release, in process) behind a ClickHouse HTTP endpoint
 * (chdb-shim.py), so the product's ClickHouseStore runs unchanged against current ClickHouse.
 * chdb is installed into a virtualenv under .stack-test/ when missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../../stack/paths.js';
import { freePort } from '../../stack/ports.js';

const SHIM = fileURLToPath(new URL('./chdb-shim.py', import.meta.url));

export type ChdbPython = { python: string } | { skip: string };

function run(cmd: string, args: string[], timeoutMs: number) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim() };
}

/** A Python with chdb importable: the virtualenv's, after installing chdb into it if needed. */
export function ensureChdb(venv = join(repoRoot(), '.stack-test', 'chdb-venv')): ChdbPython {
  const python = join(venv, 'bin', 'python');
  if (existsSync(python) && run(python, ['-c', 'import chdb'], 60_000).ok) return { python };
  const system = ['python3', 'python'].find((p) => run(p, ['--version'], 10_000).ok);
  if (!system) return { skip: 'no Python interpreter (python3) on PATH: chdb cannot be installed' };
  if (!existsSync(python)) {
    mkdirSync(join(venv, '..'), { recursive: true });
    const v = run(system, ['-m', 'venv', venv], 120_000);
    if (!v.ok) return { skip: `cannot create a virtualenv for chdb (${system} -m venv): ${v.out.split('\n').at(-1)}` };
  }
  const pip = run(python, ['-m', 'pip', 'install', '--quiet', 'chdb'], 900_000);
  if (!pip.ok) return { skip: `pip cannot install chdb: ${pip.out.split('\n').slice(-3).join(' ')}` };
  if (!run(python, ['-c', 'import chdb'], 60_000).ok) return { skip: 'chdb installed but cannot be imported' };
  return { python };
}

export interface ChdbServer {
  url: string;
  /** ClickHouse version chdb embeds. */
  version: string;
  /** Statements the endpoint ran so far, with their outcome. */
  statements(): Array<{ statement: string; ok: boolean; error?: string }>;
  stop(): Promise<void>;
}

/** Start the endpoint on a free port; `timeZone` becomes the server's time zone (TZ). */
export async function startChdbServer(o: { python: string; home: string; timeZone?: string }): Promise<ChdbServer> {
  mkdirSync(o.home, { recursive: true });
  const port = await freePort();
  const log = join(o.home, 'statements.jsonl');
  const child: ChildProcess = spawn(o.python, [SHIM, '--port', String(port), '--data', join(o.home, 'data'), '--log', log], {
    env: { ...process.env, TZ: o.timeZone ?? 'UTC' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const version = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`chdb endpoint did not start in 120 s: ${stderr.slice(-500)}`)), 120_000);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening \d+ clickhouse (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`chdb endpoint exited (${code}): ${stderr.slice(-500)}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    version,
    statements: () =>
      existsSync(log)
        ? readFileSync(log, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as { statement: string; ok: boolean; error?: string })
        : [],
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}
