/**
 * Rollback deployers: how the deploy gate tells the outside world to return a deployment to its
 * baseline version after a REJECT. Node code (activities only, never workflow code).
 *
 * Three kinds (see `deployerSchema` in domain/gate/types.ts):
 *
 * - `dry-run`: does nothing and says what it would have done.
 * - `webhook`: one HTTPS/HTTP POST with a JSON body
 *     { "event": "rollback", "gate_id", "deployment", "from_version", "to_version", "reason",
 *       "idempotency_key", "sent_at" }
 *   and the headers
 *     Content-Type: application/json
 *     Idempotency-Key: <idempotency_key>
 *     X-OptiInfra-Timestamp: <unix seconds>
 *     X-OptiInfra-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with the secret>
 *   The signature header is only sent when a webhook secret is configured. 2xx and 409 (the
 *   receiver has already processed this idempotency key) count as delivered.
 * - `command`: runs `argv[0]` with `argv.slice(1)` WITHOUT a shell. The rollback arrives in the
 *   environment variables OPTIINFRA_GATE_ID, OPTIINFRA_DEPLOYMENT, OPTIINFRA_FROM_VERSION (the
 *   rejected candidate), OPTIINFRA_TO_VERSION (the baseline to return to), OPTIINFRA_REASON and
 *   OPTIINFRA_IDEMPOTENCY_KEY, and OPTIINFRA_ATTEMPT (1, or more when this idempotency key was
 *   delivered before: the deployer may have acted on an earlier attempt), on top of a minimal
 *   environment (PATH, HOME, LANG): the worker's own environment (GROQ_API_KEY, DATABASE_URL,
 *   OPTIINFRA_* secrets, ...) is not passed on. Exit code 0 = delivered. stdin is /dev/null. The
 *   command runs in its own process group: at the timeout (or when the attempt is cancelled) the
 *   group and every descendant get SIGTERM, then SIGKILL 2 s later; whatever it leaves running
 *   when it exits is ended the same way. Of stdout and stderr only the last 2 KB are kept (secrets
 *   redacted, terminal escapes and control characters removed), however much is written.
 *
 * Receivers must treat the idempotency key as the identity of the rollback: Temporal retries the
 * activity, so the same rollback can arrive more than once.
 *
 * Verifying a webhook on the receiving side (Node):
 *
 *   import { verifySignature } from 'optiinfra/activities/gate/webhook.js';
 *   // rawBody: the request body exactly as received (bytes decoded as UTF-8, not re-serialised JSON)
 *   const ok = verifySignature(process.env.OPTIINFRA_WEBHOOK_SECRET!,
 *     req.headers['x-optiinfra-timestamp'], rawBody, req.headers['x-optiinfra-signature']);
 *   if (!ok) return res.writeHead(401).end();
 *
 * In any other language: reject when the timestamp is more than 5 minutes from your clock,
 * compute HMAC-SHA256(secret, timestamp + "." + rawBody) as lowercase hex and compare it with
 * the part after "sha256=" using a constant-time comparison.
 *
 * Failures are Temporal `ApplicationFailure`s: type 'DeployerUnavailable' (retryable: network
 * errors, timeouts, 408, 429, 5xx, a command's non-zero exit or signal) or 'DeployerRejected'
 * (non-retryable: other 4xx, redirects, a missing or non-executable program, invalid arguments).
 * Every message has `opts.secrets` redacted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { ApplicationFailure } from '@temporalio/common';
import { failure as failureOf, type FailureType } from '../../common/failures.js';
import { redact } from '../../common/secrets.js';
import type { DeployerConfig } from '../../domain/gate/types.js';
import { postSigned, seconds, terminalSafe } from './webhook.js';

export { SIGNATURE_HEADER, signPayload, TIMESTAMP_HEADER, verifySignature } from './webhook.js';

export interface RollbackRequest {
  gateId: string;
  deployment: string;
  /** The rejected candidate. */
  fromVersion: string;
  /** The baseline to return to. */
  toVersion: string;
  reason: string;
  idempotencyKey: string;
  /**
   * Which delivery of this idempotency key this is (1 the first; more after a retry, e.g. when a
   * worker died while the deployer worked): a repeat is said in the detail and OPTIINFRA_ATTEMPT.
   */
  attempt?: number;
}

export interface DeliverOptions {
  /** HMAC key for the webhook signature. Without it the webhook is sent unsigned. */
  webhookSecret?: string;
  /** Per attempt. Default: 30 s for a webhook, 5 min for a command. */
  timeoutMs?: number;
  /** Strings never to show in a message or detail (API keys, passwords, the webhook secret). */
  secrets?: string[];
  /** Aborted when the attempt is cancelled: a running command and everything it started is stopped. */
  signal?: AbortSignal;
}

export type DeployerErrorType = Extract<FailureType, `Deployer${string}`>;

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 30_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 5 * 60_000;

/** How much of a command's output, or a webhook's error body, goes into a message or detail. */
const TAIL_BYTES = 2048;
/** Longest OPTIINFRA_REASON passed to a command (environment strings have OS limits). */
const ENV_REASON_LIMIT = 8192;
/** Bytes kept of each output beyond the tail, so a secret cut by the tail is redacted whole first. */
const TAIL_SLACK_BYTES = 4096;
/** After SIGTERM (the timeout, a cancelled attempt), how long a command's processes get before SIGKILL. */
const KILL_GRACE_MS = 2000;
/** After the command exited, how long the rest of its output may take to arrive. */
const OUTPUT_GRACE_MS = 250;

/**
 * Deliver one rollback. Resolves with 'delivered' or 'dry-run' and a human-readable detail;
 * throws `ApplicationFailure` (see the module comment) otherwise.
 */
export async function deliverRollback(
  cfg: DeployerConfig,
  req: RollbackRequest,
  opts: DeliverOptions = {},
): Promise<{ status: 'delivered' | 'dry-run'; detail: string }> {
  const secrets = [...(opts.secrets ?? []), ...(opts.webhookSecret ? [opts.webhookSecret] : [])];
  // The deployer's own timeout (per attempt) wins over the caller's.
  if (cfg.type !== 'dry-run' && cfg.timeoutSeconds !== undefined) opts = { ...opts, timeoutMs: cfg.timeoutSeconds * 1000 };
  switch (cfg.type) {
    case 'dry-run':
      return {
        status: 'dry-run',
        detail: redact(`would roll ${req.deployment} back from ${req.fromVersion} to ${req.toVersion}`, secrets),
      };
    case 'webhook':
      return repeated(req, await postWebhook(cfg.url, req, opts, secrets));
    case 'command':
      return repeated(req, await runCommand(cfg.argv, req, opts, secrets));
    default: {
      const never: never = cfg;
      throw failure('DeployerRejected', `unknown deployer type '${String((never as { type?: unknown }).type)}'`, secrets);
    }
  }
}

function attemptOf(req: RollbackRequest): number {
  return req.attempt !== undefined && Number.isSafeInteger(req.attempt) && req.attempt > 1 ? req.attempt : 1;
}

/** A delivery after the first says so: the deployer may have acted on an earlier one. */
function repeated<T extends { detail: string }>(req: RollbackRequest, r: T): T {
  const n = attemptOf(req);
  if (n === 1) return r;
  return {
    ...r,
    detail: `${r.detail}; delivery attempt ${n} of idempotency key ${req.idempotencyKey} (an earlier attempt may have acted)`,
  };
}

// ---------------------------------------------------------------------------------------------
// Webhook

/** The webhook's JSON body. */
export function webhookBody(req: RollbackRequest, sentAt: Date): string {
  return JSON.stringify({
    event: 'rollback',
    gate_id: req.gateId,
    deployment: req.deployment,
    from_version: req.fromVersion,
    to_version: req.toVersion,
    reason: req.reason,
    idempotency_key: req.idempotencyKey,
    sent_at: sentAt.toISOString(),
  });
}

function postWebhook(
  url: string,
  req: RollbackRequest,
  opts: DeliverOptions,
  secrets: string[],
): Promise<{ status: 'delivered'; detail: string }> {
  return postSigned({
    url,
    rawBody: webhookBody(req, new Date()),
    idempotencyKey: req.idempotencyKey,
    what: 'rollback webhook',
    setting: 'deployer.url',
    refusedHint: 'fix the receiver or the deployer configuration and roll back by hand',
    webhookSecret: opts.webhookSecret,
    timeoutMs: opts.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS,
    secrets,
    failureType: { retry: 'DeployerUnavailable', refuse: 'DeployerRejected' },
    signal: opts.signal,
  });
}

// ---------------------------------------------------------------------------------------------
// Command

/** The environment a rollback command runs with: minimal inherited variables plus the rollback. */
export function commandEnv(req: RollbackRequest, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  const inherit = ['PATH', 'HOME', 'LANG', ...(process.platform === 'win32' ? ['SystemRoot', 'PATHEXT'] : [])];
  for (const k of inherit) {
    const v = base[k];
    if (v !== undefined) env[k] = v;
  }
  const clean = (s: string) => s.replace(/\0/g, '');
  env.OPTIINFRA_GATE_ID = clean(req.gateId);
  env.OPTIINFRA_DEPLOYMENT = clean(req.deployment);
  env.OPTIINFRA_FROM_VERSION = clean(req.fromVersion);
  env.OPTIINFRA_TO_VERSION = clean(req.toVersion);
  env.OPTIINFRA_REASON = clean(req.reason).slice(0, ENV_REASON_LIMIT);
  env.OPTIINFRA_IDEMPOTENCY_KEY = clean(req.idempotencyKey);
  env.OPTIINFRA_ATTEMPT = String(attemptOf(req));
  return env;
}

/**
 * The end of one output stream: only the last bytes are kept however much is written (a command
 * may write gigabytes), with room to spare so a secret cut by the tail is redacted whole first.
 */
class OutputTail {
  private buf = Buffer.alloc(0);
  private total = 0;
  constructor(private readonly keep: number) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (chunk.length >= this.keep) this.buf = Buffer.from(chunk.subarray(chunk.length - this.keep));
    else {
      const joined = Buffer.concat([this.buf, chunk]);
      this.buf = joined.length > this.keep ? Buffer.from(joined.subarray(joined.length - this.keep)) : joined;
    }
  }

  /** The last ≤ 2 KB, secrets redacted before it is clipped, escapes and control characters removed. */
  text(secrets: string[]): string {
    let start = 0;
    // Skip UTF-8 continuation bytes so the text starts on a character.
    if (this.total > this.buf.length) while (start < this.buf.length && ((this.buf[start] ?? 0) & 0xc0) === 0x80) start++;
    const full = terminalSafe(redact(this.buf.subarray(start).toString('utf8'), secrets)).trim();
    const cut = full.length > TAIL_BYTES;
    return cut || this.total > this.buf.length ? `…${full.slice(cut ? full.length - TAIL_BYTES : 0).trim()}` : full;
  }
}

/**
 * Descendants of a process (Linux, from /proc; elsewhere none): the processes that left its
 * process group (setsid, a `detached` spawn) are still its descendants while it runs.
 */
function descendants(root: number): number[] {
  if (process.platform !== 'linux') return [];
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch {
      // ended meanwhile
    }
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
function signalTree(pid: number, signal: NodeJS.Signals, seen: Set<number>): void {
  const send = (p: number) => {
    try {
      process.kill(p, signal);
    } catch {
      // gone already
    }
  };
  if (process.platform === 'win32') {
    send(pid);
    return;
  }
  for (const p of descendants(pid)) seen.add(p);
  send(-pid);
  send(pid);
  for (const p of seen) send(p);
}

function runCommand(
  argv: string[],
  req: RollbackRequest,
  opts: DeliverOptions,
  secrets: string[],
): Promise<{ status: 'delivered'; detail: string }> {
  const program = argv[0];
  if (program === undefined || program === '') {
    return Promise.reject(failure('DeployerRejected', 'rollback command has no program: set deployer.argv', secrets));
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const what = `rollback command '${program}'`;
  const keep = TAIL_BYTES * 4 + Math.max(TAIL_SLACK_BYTES, ...secrets.map((s) => Buffer.byteLength(s) * 2));
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(program, argv.slice(1), {
        env: commandEnv(req),
        // stdin is /dev/null: a command that reads it gets end-of-file instead of waiting.
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group, so that the timeout ends everything it started.
        detached: process.platform !== 'win32',
        windowsHide: true,
        shell: false,
      });
    } catch (err) {
      // Synchronous argument validation (e.g. a NUL byte in an argument).
      const msg = err instanceof Error ? err.message : String(err);
      reject(failure('DeployerRejected', `${what} cannot be started: ${msg}; fix deployer.argv`, secrets));
      return;
    }
    const stdout = new OutputTail(keep);
    const stderr = new OutputTail(keep);
    child.stdout?.on('data', (c: Buffer) => stdout.push(c));
    child.stderr?.on('data', (c: Buffer) => stderr.push(c));
    child.stdout?.on('error', () => undefined);
    child.stderr?.on('error', () => undefined);

    const seen = new Set<number>();
    const timers: NodeJS.Timeout[] = [];
    let stopped: 'timeout' | 'cancelled' | undefined;
    let settled = false;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;

    const stop = (why: 'timeout' | 'cancelled') => {
      if (stopped || settled || child.pid === undefined) return;
      stopped = why;
      signalTree(child.pid, 'SIGTERM', seen);
      const pid = child.pid;
      timers.push(setTimeout(() => signalTree(pid, 'SIGKILL', seen), KILL_GRACE_MS));
      // A process that survives SIGKILL (uninterruptible I/O) does not hold the attempt.
      timers.push(setTimeout(() => finish(), 2 * KILL_GRACE_MS + OUTPUT_GRACE_MS));
    };
    const onAbort = () => stop('cancelled');
    timers.push(setTimeout(() => stop('timeout'), timeoutMs));
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (spawnError?: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      opts.signal?.removeEventListener('abort', onAbort);
      child.stdout?.destroy();
      child.stderr?.destroy();
      if (child.pid !== undefined) {
        // What it left running (a background child, a process holding its output) ends with it.
        const pid = child.pid;
        signalTree(pid, 'SIGTERM', seen);
        setTimeout(() => signalTree(pid, 'SIGKILL', seen), KILL_GRACE_MS).unref();
      }
      const out = stdout.text(secrets);
      const errOut = stderr.text(secrets);
      const outputs = [errOut ? `stderr: ${errOut}` : '', out ? `stdout: ${out}` : ''].filter(Boolean).join('; ');
      const withOutput = outputs ? ` — ${outputs}` : ' (no output)';
      const fail = (type: DeployerErrorType, message: string) => reject(failure(type, message, secrets));
      if (spawnError) {
        const code = spawnError.code;
        if (code === 'ENOENT') {
          return fail(
            'DeployerRejected',
            `${what} was not found (ENOENT): give an absolute path in deployer.argv[0] or make sure it is on the worker's PATH (${process.env.PATH ? 'PATH is set' : 'PATH is empty'})`,
          );
        }
        if (code === 'EACCES' || code === 'EISDIR' || code === 'ENOEXEC' || code === 'ENOTDIR' || code === 'EPERM') {
          return fail('DeployerRejected', `${what} cannot be executed (${code}): check that it is an executable file`);
        }
        return fail('DeployerUnavailable', `${what} could not be started (${code ?? spawnError.message}); it will be retried`);
      }
      if (stopped === 'cancelled') {
        return fail(
          'DeployerUnavailable',
          `${what} was stopped because the rollback attempt was cancelled (the worker is shutting down or lost the attempt)${withOutput}`,
        );
      }
      if (stopped === 'timeout') {
        return fail(
          'DeployerUnavailable',
          `${what} did not finish within ${seconds(timeoutMs)} and was stopped; it will be retried${withOutput}`,
        );
      }
      if (exited?.code === 0) {
        resolve({ status: 'delivered', detail: redact(`${what} exited with 0${withOutput}`, secrets) });
        return;
      }
      if (typeof exited?.code === 'number')
        return fail('DeployerUnavailable', `${what} exited with ${exited.code}; it will be retried${withOutput}`);
      return fail('DeployerUnavailable', `${what} was killed by ${exited?.signal ?? 'a signal'}; it will be retried${withOutput}`);
    };

    child.on('error', (err: NodeJS.ErrnoException) => {
      if (child.pid === undefined) finish(err);
    });
    child.on('close', () => finish());
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      // The rest of its output has a moment to arrive; a process it left behind holding the
      // pipes does not keep the attempt open.
      timers.push(setTimeout(() => finish(), OUTPUT_GRACE_MS));
    });
    if (opts.signal?.aborted) onAbort();
  });
}

// ---------------------------------------------------------------------------------------------

function failure(type: DeployerErrorType, message: string, secrets: string[], nextRetryDelayMs?: number): ApplicationFailure {
  return failureOf(type, redact(message, secrets), { nextRetryDelay: nextRetryDelayMs });
}
