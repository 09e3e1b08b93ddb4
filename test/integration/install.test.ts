/**
 * The repository is self-contained, and the package works as an installed CLI:
 *
 * 1. A clone of HEAD in an empty temporary folder (no sibling folders, so nothing like
 *    ../shared exists) installs its runtime dependencies (`npm ci --omit=dev`), runs
 *    `stack status` and the demo's first steps (`scripts/demo.sh --until first-cycle`: the stack,
 *    the simulator serving the shipped data set, a worker and the first collection cycle).
 * 2. `npm pack` of that clone, installed into another empty folder: `npx optiinfra --help` there,
 *    and `optiinfra --help`, `optiinfra stack status` and `optiinfra worker` (which bundles the
 *    package's workflows from under node_modules) from an unrelated working directory.
 *
 * Both run against the test servers (TEMPORAL_ADDRESS, CLICKHOUSE_URL, DATABASE_URL), with an
 * environment that holds nothing else of this process but PATH and HOME. Skipped, with the
 * reason printed, only when git is missing. npm uses its cache first (--prefer-offline).
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../stack/paths.js';
import { testEnv } from '../helpers/env.js';

const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Run a program; never throws for a non-zero exit (the caller looks at the code and output). */
function run(cmd: string, args: string[], o: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Ran> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: o.cwd, env: o.env, timeout: o.timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({
        code,
        stdout: String(stdout),
        stderr: String(stderr) + (err && code === -1 ? `\n${err.message}` : ''),
        seconds: (Date.now() - t0) / 1000,
      });
    });
  });
}

const show = (r: Ran) =>
  `exit ${r.code} after ${r.seconds.toFixed(1)} s\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`;

const gitMissing = spawnSync('git', ['--version'], { encoding: 'utf8' }).status !== 0;
if (gitMissing) console.log('[install] skipped: git is not installed (git --version failed), so the repository cannot be cloned');

describe.skipIf(gitMissing)('installing the repository and the package', () => {
  let base: string;
  let clone: string;
  /** Only PATH and HOME of this process, plus the test servers and `extra`. */
  let env: (extra?: Record<string, string>) => NodeJS.ProcessEnv;
  /** The ClickHouse database of the demo's run. */
  const installDb = `optiinfra_install_${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'optiinfra-install-'));
    clone = join(base, 'optiinfra');
    const e = testEnv();
    env = (extra = {}) => ({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TEMPORAL_ADDRESS: e.temporalAddress,
      CLICKHOUSE_URL: e.clickhouseUrl,
      DATABASE_URL: e.databaseUrl,
      ...extra,
    });
    const r = await run('git', ['clone', '--quiet', '--no-hardlinks', repoRoot(), clone], { cwd: base, env: env(), timeoutMs: 120_000 });
    expect(r.code, show(r)).toBe(0);
    expect(readdirSync(base)).toEqual(['optiinfra']); // nothing beside the clone
  }, 180_000);

  afterAll(async () => {
    if (base) rmSync(base, { recursive: true, force: true });
    // The demo's ClickHouse database (the test server goes away with the run anyway).
    await fetch(`${testEnv().clickhouseUrl}/?query=${encodeURIComponent(`DROP DATABASE IF EXISTS ${installDb}`)}`, { method: 'POST' })
      .then((r) => r.text())
      .catch(() => undefined);
  });

  it('a clone with no sibling folders installs, reports the stack and runs the demo up to its first collection cycle', async () => {
    const ci = await run('npm', ['ci', '--omit=dev', ...NPM_FLAGS], { cwd: clone, env: env(), timeoutMs: 600_000 });
    expect(ci.code, show(ci)).toBe(0);
    console.log(`[install] npm ci --omit=dev in the clone: ${ci.seconds.toFixed(1)} s`);

    const status = await run('npx', ['tsx', 'client/cli/index.ts', 'stack', 'status'], { cwd: clone, env: env(), timeoutMs: 180_000 });
    expect(status.code, show(status)).toBe(0);
    for (const svc of ['temporal', 'clickhouse', 'postgres']) expect(status.stdout, show(status)).toMatch(new RegExp(`${svc}\\s+up\\b`));

    const demo = await run('bash', ['scripts/demo.sh', '--until', 'first-cycle'], {
      cwd: clone,
      env: env({ TEMPORAL_TASK_QUEUE: `install-${randomUUID().slice(0, 8)}`, CLICKHOUSE_DATABASE: installDb }),
      timeoutMs: 600_000,
    });
    console.log(`[install] demo --until first-cycle in the clone: ${demo.seconds.toFixed(1)} s`);
    expect(demo.code, show(demo)).toBe(0);
    expect(demo.stdout).toMatch(/judge: offline/);
    // The simulator served the data set shipped in the clone's data/ (there is no other).
    expect(demo.stdout, show(demo)).toMatch(/: 150 interactions stored \(150 fetched, 0 bad records\)/);
    expect(demo.stdout, show(demo)).toMatch(/checks: \d+ scored, 0 failed/);
    expect(demo.stdout).toMatch(/stopped after first-cycle/);
    expect(demo.stdout).not.toMatch(/-- 2\./); // stopped before the gate
    // Only the clone was written to: the stack home is inside it, nothing appeared beside it.
    expect(readdirSync(base)).toEqual(['optiinfra']);
  }, 1_200_000);

  it('npm pack, installed into an empty folder, runs `optiinfra --help` and `optiinfra stack status` from any folder', async () => {
    const packDir = join(base, 'pack');
    mkdirSync(packDir);
    const pack = await run('npm', ['pack', '--json', '--pack-destination', packDir, '--loglevel=error'], {
      cwd: clone,
      env: env(),
      timeoutMs: 180_000,
    });
    expect(pack.code, show(pack)).toBe(0);
    const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }>; size: number }>;
    const files = info!.files.map((f) => f.path);
    console.log(`[install] npm pack: ${info!.filename}, ${files.length} files, ${(info!.size / 1e6).toFixed(1)} MB`);
    for (const f of [
      'bin/optiinfra.mjs',
      'client/cli/index.ts',
      'workers/worker.ts',
      'workers/failure-converter.cjs',
      'workflows/index.ts',
      'stack/pglite-server.ts',
      'data/halueval/qa_one-turn.jsonl',
      'package.json',
      'README.md',
    ]) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => /^(test|node_modules|\.stack[^/]*|bench-results)\//.test(f))).toEqual([]);

    const app = join(base, 'app');
    mkdirSync(app);
    // As the README says to install it: onnxruntime-node's install step would otherwise fetch CUDA
    // libraries from api.nuget.org, which the offline judge does not use (a clone's .npmrc says the same).
    const install = await run('npm', ['install', ...NPM_FLAGS, '--onnxruntime-node-install=skip', join(packDir, info!.filename)], {
      cwd: app,
      env: env(),
      timeoutMs: 900_000,
    });
    expect(install.code, show(install)).toBe(0);
    console.log(`[install] npm install of the tarball: ${install.seconds.toFixed(1)} s`);
    const bin = join(app, 'node_modules', '.bin');
    expect(existsSync(join(bin, 'optiinfra'))).toBe(true);
    const pkg = JSON.parse(readFileSync(join(app, 'node_modules', 'optiinfra', 'package.json'), 'utf8')) as { name: string };
    expect(pkg.name).toBe('optiinfra');

    const help = await run('npx', ['--no-install', 'optiinfra', '--help'], { cwd: app, env: env(), timeoutMs: 180_000 });
    expect(help.code, show(help)).toBe(0);
    expect(help.stdout).toMatch(/Usage: optiinfra/);
    expect(help.stdout).toMatch(/\bstack\b/);

    // From an unrelated folder, with the package's bin on PATH (as after a global install).
    const elsewhere = join(base, 'elsewhere');
    mkdirSync(elsewhere);
    const onPath = (extra: Record<string, string> = {}) => env({ PATH: `${bin}:${process.env.PATH ?? ''}`, ...extra });
    const help2 = await run('optiinfra', ['--help'], { cwd: elsewhere, env: onPath(), timeoutMs: 180_000 });
    expect(help2.code, show(help2)).toBe(0);
    expect(help2.stdout).toMatch(/Usage: optiinfra/);
    const status = await run('optiinfra', ['stack', 'status'], { cwd: elsewhere, env: onPath(), timeoutMs: 180_000 });
    expect(status.code, show(status)).toBe(0);
    for (const svc of ['temporal', 'clickhouse', 'postgres']) expect(status.stdout, show(status)).toMatch(new RegExp(`${svc}\\s+up\\b`));

    // The worker bundles the package's own TypeScript workflows (under node_modules) and runs.
    const worker = spawn('optiinfra', ['worker'], {
      cwd: elsewhere,
      env: onPath({ TEMPORAL_TASK_QUEUE: `install-${randomUUID().slice(0, 8)}` }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const running = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 240_000);
      const onData = (c: Buffer) => {
        out += c.toString('utf8');
        if (/^worker on /m.test(out)) {
          clearTimeout(t);
          resolve(true);
        }
      };
      worker.stdout.on('data', onData);
      worker.stderr.on('data', onData);
      worker.once('exit', () => {
        clearTimeout(t);
        resolve(false);
      });
    });
    if (worker.exitCode === null && worker.signalCode === null) {
      const gone = new Promise((r) => worker.once('exit', r));
      worker.kill('SIGTERM');
      await gone;
    }
    expect(running, out.slice(-4000)).toBe(true);
    expect(out).toMatch(/worker stopped/);
    // Nothing was written to the working directory.
    expect(readdirSync(elsewhere)).toEqual([]);
  }, 1_200_000);
});
