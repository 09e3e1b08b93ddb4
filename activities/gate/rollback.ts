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
 * A worker that dies (kill -9, out of memory, its host's reboot) while a command runs cannot stop
 * it, and Temporal retries the activity: the command must not run twice at once (two
 * `kubectl rollout undo` toggle the rollback away again). On Linux:
 * - With `setpriv` (util-linux 2.33 or later) on the worker's PATH, the command is started through
 *   `setpriv --pdeathsig KILL`, which execs it in its own place (same pid, same process group):
 *   the command gets SIGKILL when the worker's thread that started it ends. This reaches the
 *   command only, not the processes it started; it is lost when the command execs a set-user-ID
 *   program (sudo); and a worker that dies between the spawn and setpriv's prctl leaves it
 *   running. Without setpriv (or off Linux) the command is spawned as before.
 * - The worker records, on its host, which process group runs the delivery of an idempotency key
 *   (see command-processes.ts: pid, group, start time from /proc and the boot id, in
 *   `optiinfra-rollback-commands-<uid>` of the OS's temporary directory, or `opts.stateDir`).
 *   Before the next attempt of that key on the same host, whatever of the earlier command still
 *   runs (the command, or the processes of its group: only those that started after it and
 *   carry the key in their environment) is ended as at the timeout (SIGTERM, SIGKILL 2 s later,
 *   descendants too), the attempt waits until it is gone, and the detail says "ended the earlier
 *   attempt's command still running (pid N)"; if something survives SIGKILL the attempt fails
 *   (retryable) without running the command. The record goes when an attempt ends. A record that
 *   is malformed, of another key or boot, or names a process that is not that command is never
 *   acted on.
 *   Not covered: a retry on another host (the receiver's idempotency key is the only guard
 *   there); a process that left the command's group (setsid, a `detached` spawn) and survived
 *   the command, or cleared its environment; a command running as another user.
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
import type { ApplicationFailure } from '@temporalio/common';
import { failure as failureOf, type FailureType } from '../../common/failures.js';
import { redact } from '../../common/secrets.js';
import type { DeployerConfig } from '../../domain/gate/types.js';
import { endEarlierRun, recordDirectory, recordRun, setprivExecFailure, signalTree, withParentDeathSignal } from './command-processes.js';
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
  /**
   * Where this host records which process group runs a command's delivery (see the module
   * comment). Default: `optiinfra-rollback-commands-<uid>` in the OS's temporary directory, the
   * same for every worker of the user on the host.
   */
  stateDir?: string;
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
/** After SIGKILL, how long an earlier attempt's command may take to be gone before this attempt gives up. */
const EARLIER_GONE_MS = 10_000;

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

async function runCommand(
  argv: string[],
  req: RollbackRequest,
  opts: DeliverOptions,
  secrets: string[],
): Promise<{ status: 'delivered'; detail: string }> {
  const program = argv[0];
  if (program === undefined || program === '') {
    throw failure('DeployerRejected', 'rollback command has no program: set deployer.argv', secrets);
  }
  const what = `rollback command '${program}'`;
  // An earlier attempt of this key whose worker died may still run here: it ends first.
  const records = recordDirectory(opts.stateDir);
  const earlier = records === undefined ? undefined : await endEarlierRun(records, req.idempotencyKey, KILL_GRACE_MS, EARLIER_GONE_MS);
  if (earlier && !earlier.ended) {
    throw failure(
      'DeployerUnavailable',
      `the earlier attempt's ${what} (pid ${earlier.pid}) still runs after SIGKILL; it was not started again and will be retried`,
      secrets,
    );
  }
  const note = earlier
    ? `; ended the earlier attempt's command still running (pid ${earlier.pid}) before this run: ${earlier.processes} process${earlier.processes === 1 ? '' : 'es'}${earlier.commandRan ? '' : ' of its group (the command itself had ended)'}`
    : '';
  return spawnCommand(argv, req, opts, secrets, what, note, records);
}

function spawnCommand(
  argv: string[],
  req: RollbackRequest,
  opts: DeliverOptions,
  secrets: string[],
  what: string,
  note: string,
  records: string | undefined,
): Promise<{ status: 'delivered'; detail: string }> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const env = commandEnv(req);
  // SIGKILL when the worker dies, where setpriv can arrange it (see the module comment).
  const run = withParentDeathSignal(argv, env);
  const keep = TAIL_BYTES * 4 + Math.max(TAIL_SLACK_BYTES, ...secrets.map((s) => Buffer.byteLength(s) * 2));
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(run.argv[0] as string, run.argv.slice(1), {
        env,
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
    // Which process group runs this key's delivery, for a retry on this host after the worker died.
    const forget = records !== undefined && child.pid !== undefined ? recordRun(records, req.idempotencyKey, child.pid) : () => undefined;
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
        let groupLeft = true;
        try {
          process.kill(-pid, 0);
        } catch {
          groupLeft = false;
        }
        // The record goes with the last of its processes (at once when nothing is left).
        if (!groupLeft && seen.size === 0) forget();
        setTimeout(() => {
          signalTree(pid, 'SIGKILL', seen);
          forget();
        }, KILL_GRACE_MS).unref();
      }
      const out = stdout.text(secrets);
      const errOut = stderr.text(secrets);
      const outputs = [errOut ? `stderr: ${errOut}` : '', out ? `stdout: ${out}` : ''].filter(Boolean).join('; ');
      const withOutput = `${outputs ? ` — ${outputs}` : ' (no output)'}${note}`;
      const fail = (type: DeployerErrorType, message: string) => reject(failure(type, message, secrets));
      // setpriv could not exec the program after all (a script's missing interpreter): as a failed spawn.
      const execFailure = run.wrapped && !stopped ? setprivExecFailure(exited?.code ?? null, errOut, out) : undefined;
      if (execFailure) spawnError = Object.assign(new Error(errOut), { code: execFailure });
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
