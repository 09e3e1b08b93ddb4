/**
 * The bench's peer: Arize Phoenix's evals (`arize-phoenix-evals` from PyPI) scoring the same
 * interactions against the same judge server, with its hallucination, toxicity and
 * QA-correctness templates (scripts/bench-phoenix.py runs them and says how).
 *
 * `runPhoenixPeer` keeps a venv at `<home>/phoenix-venv` with the pinned packages (made and
 * installed once, reused while the pins are installed), writes the interactions to a temporary
 * JSONL file, runs the Python script and parses its one JSON line. A missing Python, venv or
 * package never throws: the result is `{ ok: false, reason }` with the error text.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** arize-phoenix-evals 0.20.8 has OpenAIModel(base_url=…), the three evaluators and run_evals(concurrency=…). */
export const PHOENIX_EVALS_VERSION = '0.20.8';

/**
 * What the venv gets: Phoenix's evals and what it needs for OpenAI models (openai and its HTTP
 * stack, pandas), every package pinned to releases of Phoenix 0.20.8's time, so that the peer's
 * rate does not move with whatever is newest (the Python client's overhead bounds it).
 */
export const PHOENIX_PACKAGES: Readonly<Record<string, string>> = {
  'arize-phoenix-evals': PHOENIX_EVALS_VERSION,
  openai: '1.86.0',
  httpx: '0.28.1',
  httpcore: '1.0.9',
  h11: '0.16.0',
  anyio: '4.9.0',
  sniffio: '1.3.1',
  idna: '3.10',
  certifi: '2025.6.15',
  distro: '1.9.0',
  jiter: '0.10.0',
  pydantic: '2.11.5',
  'pydantic-core': '2.33.2',
  'annotated-types': '0.7.0',
  'typing-inspection': '0.4.1',
  'typing-extensions': '4.14.0',
  pandas: '2.2.3',
  numpy: '2.2.6',
  'python-dateutil': '2.9.0.post0',
  six: '1.17.0',
  pytz: '2025.2',
  tzdata: '2025.2',
  tqdm: '4.67.1',
};

const SCRIPT = fileURLToPath(new URL('./bench-phoenix.py', import.meta.url));
const INSTALL_TIMEOUT_MS = 10 * 60_000;

export interface PhoenixInteraction {
  id: string;
  prompt: string;
  response: string;
  context?: string;
}

export interface PhoenixPeerOptions {
  /** The judge server: groq-sdk's base URL (the origin) or the OpenAI-style base ending in /openai/v1. */
  baseURL: string;
  interactions: PhoenixInteraction[];
  /** Evaluations in flight at once (Phoenix's `concurrency`), as ours. */
  concurrency: number;
  /** The bench's data directory: the venv is kept at `<home>/phoenix-venv`. */
  home: string;
  log?: (s: string) => void;
  /** Model id sent to the judge server (default openai/gpt-oss-20b, as ours). */
  model?: string;
  /** Phoenix's client-side rate limit, requests per second (default 10000: not the limit). */
  requestsPerSecond?: number;
  /** The interpreter that makes the venv (default $BENCH_PYTHON or python3). */
  python?: string;
  /** Bound on the eval run (default 2 minutes plus 0.5 s per interaction). */
  runTimeoutMs?: number;
}

export type PhoenixPeerResult =
  | {
      ok: true;
      version: string;
      interactions: number;
      evaluations: number;
      seconds: number;
      interactionsPerSecond: number;
      errors: number;
      labels: Record<string, Record<string, number>>;
    }
  | { ok: false; reason: string };

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Spawn error (e.g. ENOENT), if the process could not start. */
  error?: Error;
  timedOut: boolean;
}

const KEEP = 256 * 1024;
const keepTail = (s: string) => (s.length > KEEP ? s.slice(-KEEP) : s);

/** Run a command to its end or its timeout (then SIGKILL); never rejects. */
function run(cmd: string, args: string[], o: { timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string }): Promise<Ran> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const done = (r: Omit<Ran, 'stdout' | 'stderr' | 'timedOut'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, stdout, stderr, timedOut });
    };
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(cmd, args, { env: o.env ?? process.env, cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      resolve({ code: null, signal: null, stdout, stderr, error: e as Error, timedOut });
      return;
    }
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          child.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }, o.timeoutMs);
    child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout = keepTail(stdout + c)));
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr = keepTail(stderr + c)));
    child.on('error', (error) => done({ code: null, signal: null, error }));
    child.on('close', (code, signal) => done({ code, signal }));
  });
}

/** The last `n` non-empty lines of a process's error output (progress-bar redraws dropped). */
function lastLines(text: string, n = 12): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.split('\r').pop()!.trimEnd())
    .filter((l) => l.trim() !== '');
  return lines.slice(-n).join('\n');
}

/** Why a run failed, in words, with the end of its output. */
function failure(what: string, r: Ran, timeoutMs: number): string {
  if (r.error) return `${what}: ${r.error.message}`;
  if (r.timedOut) return `${what}: timed out after ${Math.round(timeoutMs / 1000)} s\n${lastLines(r.stderr || r.stdout)}`.trim();
  const how = r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
  return `${what} (${how}):\n${lastLines(r.stderr || r.stdout)}`.trim();
}

/** The environment for the venv's processes: no user site, loopback never through a proxy. */
function pythonEnv(venv?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONNOUSERSITE: '1', PYTHONUNBUFFERED: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1' };
  for (const k of ['PYTHONHOME', 'PYTHONPATH', 'OPENAI_BASE_URL', 'OPENAI_API_KEY', 'OPENAI_ORG_ID', 'OPENAI_PROJECT_ID']) delete env[k];
  const noProxy = [env.NO_PROXY ?? env.no_proxy, '127.0.0.1', 'localhost', '::1'].filter(Boolean).join(',');
  env.NO_PROXY = noProxy;
  env.no_proxy = noProxy;
  if (venv) {
    env.VIRTUAL_ENV = venv;
    env.PATH = `${join(venv, 'bin')}:${env.PATH ?? ''}`;
  }
  return env;
}

/** The packages of PHOENIX_PACKAGES that the venv does not have at the pinned version. */
async function missingPins(py: string, env: NodeJS.ProcessEnv): Promise<string[] | undefined> {
  const code = [
    'import json, sys',
    'from importlib.metadata import version, PackageNotFoundError',
    'pins = json.loads(sys.argv[1])',
    'def v(n):',
    '    try:',
    '        return version(n)',
    '    except PackageNotFoundError:',
    '        return None',
    'print(json.dumps([n for n, want in pins.items() if v(n) != want]))',
  ].join('\n');
  const r = await run(py, ['-c', code, JSON.stringify(PHOENIX_PACKAGES)], { timeoutMs: 60_000, env });
  if (r.code !== 0) return undefined;
  try {
    const missing = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    return Array.isArray(missing) ? missing.map(String) : undefined;
  } catch {
    return undefined;
  }
}

/** Make (or reuse) the venv with the pinned packages; its python, or why not. */
async function ensureVenv(o: PhoenixPeerOptions): Promise<{ python: string } | { reason: string }> {
  const log = o.log ?? (() => {});
  const venv = join(o.home, 'phoenix-venv');
  const py = join(venv, 'bin', 'python');
  const env = pythonEnv(venv);
  if (existsSync(py)) {
    const missing = await missingPins(py, env);
    if (missing && missing.length === 0) return { python: py };
    if (!missing) {
      log(`phoenix peer: the venv at ${venv} does not run; making it again`);
      rmSync(venv, { recursive: true, force: true });
    }
  }
  if (!existsSync(py)) {
    const base = o.python ?? process.env.BENCH_PYTHON ?? 'python3';
    mkdirSync(o.home, { recursive: true });
    log(`phoenix peer: making a venv at ${venv} (${base} -m venv)`);
    const made = await run(base, ['-m', 'venv', venv], { timeoutMs: 120_000, env: pythonEnv() });
    if (made.code !== 0 || !existsSync(py)) {
      rmSync(venv, { recursive: true, force: true });
      if (made.error && (made.error as NodeJS.ErrnoException).code === 'ENOENT') {
        return { reason: `${base} not found: Python 3 is needed for the Phoenix peer (${made.error.message})` };
      }
      return { reason: failure(`could not make a Python venv at ${venv} with ${base}`, made, 120_000) };
    }
  }
  const pins = Object.entries(PHOENIX_PACKAGES).map(([n, v]) => `${n}==${v}`);
  log(`phoenix peer: installing ${pins.join(' ')} (up to ${INSTALL_TIMEOUT_MS / 60_000} min)`);
  const t0 = Date.now();
  const inst = await run(py, ['-m', 'pip', 'install', '--no-input', '--quiet', ...pins], { timeoutMs: INSTALL_TIMEOUT_MS, env });
  if (inst.code !== 0) return { reason: failure(`pip install of ${pins[0]} and its pinned dependencies failed`, inst, INSTALL_TIMEOUT_MS) };
  const still = await missingPins(py, env);
  if (!still || still.length) {
    return { reason: `after pip install, the venv at ${venv} still lacks ${still ? still.join(', ') : 'a working Python'}` };
  }
  log(`phoenix peer: installed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { python: py };
}

/** The OpenAI-style base URL (…/openai/v1) of the judge server. */
export function openAiBaseUrl(baseURL: string): string {
  const b = baseURL.replace(/\/+$/, '');
  return b.endsWith('/openai/v1') ? b : `${b}/openai/v1`;
}

const isCounts = (v: unknown): v is Record<string, Record<string, number>> =>
  !!v &&
  typeof v === 'object' &&
  Object.values(v).every((m) => !!m && typeof m === 'object' && Object.values(m).every((n) => typeof n === 'number'));

/** Arize Phoenix's evals on the interactions, against the judge server at `baseURL`. */
export async function runPhoenixPeer(o: PhoenixPeerOptions): Promise<PhoenixPeerResult> {
  const log = o.log ?? (() => {});
  let dir: string | undefined;
  try {
    const venv = await ensureVenv(o);
    if ('reason' in venv) return { ok: false, reason: venv.reason };

    dir = mkdtempSync(join(tmpdir(), 'optiinfra-phoenix-'));
    const input = join(dir, 'interactions.jsonl');
    writeFileSync(
      input,
      o.interactions.map((i) => JSON.stringify({ id: i.id, prompt: i.prompt, response: i.response, context: i.context ?? '' })).join('\n') +
        '\n',
    );
    const timeoutMs = o.runTimeoutMs ?? 120_000 + 500 * o.interactions.length;
    const args = [
      SCRIPT,
      '--input',
      input,
      '--base-url',
      openAiBaseUrl(o.baseURL),
      '--concurrency',
      String(Math.max(1, Math.floor(o.concurrency))),
      '--model',
      o.model ?? 'openai/gpt-oss-20b',
      '--requests-per-second',
      String(o.requestsPerSecond ?? 10_000),
    ];
    log(`phoenix peer: ${o.interactions.length} interactions, concurrency ${o.concurrency}`);
    const r = await run(venv.python, args, { timeoutMs, env: pythonEnv(join(o.home, 'phoenix-venv')) });
    if (r.code !== 0) return { ok: false, reason: failure('the Phoenix evals run failed', r, timeoutMs) };
    const line = r.stdout
      .trim()
      .split('\n')
      .reverse()
      .find((l) => l.trim().startsWith('{'));
    let out: any;
    try {
      out = JSON.parse(line ?? '');
    } catch {
      return { ok: false, reason: `the Phoenix evals run printed no JSON result:\n${lastLines(r.stdout + '\n' + r.stderr)}` };
    }
    if (
      typeof out?.version !== 'string' ||
      typeof out.interactions !== 'number' ||
      typeof out.evaluations !== 'number' ||
      typeof out.seconds !== 'number' ||
      typeof out.errors !== 'number' ||
      !isCounts(out.labels)
    ) {
      return { ok: false, reason: `unexpected result from the Phoenix evals run: ${line}` };
    }
    if (out.evaluations > 0 && out.errors >= out.evaluations) {
      return { ok: false, reason: `Phoenix's evals labelled none of the ${out.evaluations} evaluations:\n${lastLines(r.stderr, 6)}` };
    }
    return {
      ok: true,
      version: out.version,
      interactions: out.interactions,
      evaluations: out.evaluations,
      seconds: out.seconds,
      interactionsPerSecond: out.seconds > 0 ? out.interactions / out.seconds : 0,
      errors: out.errors,
      labels: out.labels,
    };
  } catch (e) {
    return { ok: false, reason: `Phoenix peer: ${e instanceof Error ? e.message : String(e)}` };
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
