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
 *   OPTIINFRA_IDEMPOTENCY_KEY, on top of a minimal environment (PATH, HOME, LANG): the worker's
 *   own environment (GROQ_API_KEY, DATABASE_URL, ...) is not passed on. Exit code 0 = delivered.
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
import { execFile, type ExecFileException } from 'node:child_process';
import type { ApplicationFailure } from '@temporalio/common';
import { failure as failureOf, type FailureType } from '../../common/failures.js';
import { redact } from '../../common/secrets.js';
import type { DeployerConfig } from '../../domain/gate/types.js';
import { postSigned, seconds } from './webhook.js';

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
}

export interface DeliverOptions {
  /** HMAC key for the webhook signature. Without it the webhook is sent unsigned. */
  webhookSecret?: string;
  /** Per attempt. Default: 30 s for a webhook, 5 min for a command. */
  timeoutMs?: number;
  /** Strings never to show in a message or detail (API keys, passwords, the webhook secret). */
  secrets?: string[];
}

export type DeployerErrorType = Extract<FailureType, `Deployer${string}`>;

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 30_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 5 * 60_000;

/** How much of a command's output, or a webhook's error body, goes into a message or detail. */
const TAIL_BYTES = 2048;
/** Longest OPTIINFRA_REASON passed to a command (environment strings have OS limits). */
const ENV_REASON_LIMIT = 8192;
const COMMAND_MAX_BUFFER = 16 * 1024 * 1024;

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
      return postWebhook(cfg.url, req, opts, secrets);
    case 'command':
      return runCommand(cfg.argv, req, opts, secrets);
    default: {
      const never: never = cfg;
      throw failure('DeployerRejected', `unknown deployer type '${String((never as { type?: unknown }).type)}'`, secrets);
    }
  }
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
  return env;
}

/** The last ≤ 2 KB of an output, on a character boundary, whitespace-trimmed. */
function tail(out: string | Buffer | undefined): string {
  if (out === undefined) return '';
  const buf = Buffer.isBuffer(out) ? out : Buffer.from(out, 'utf8');
  if (buf.length <= TAIL_BYTES) return buf.toString('utf8').trim();
  let start = buf.length - TAIL_BYTES;
  // Skip UTF-8 continuation bytes so the tail starts on a character.
  while (start < buf.length && ((buf[start] ?? 0) & 0xc0) === 0x80) start++;
  return `…${buf.subarray(start).toString('utf8').trim()}`;
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
  return new Promise((resolve, reject) => {
    const done = (stdout: string, stderr: string, err: ExecFileException | null) => {
      const out = tail(stdout);
      const errOut = tail(stderr);
      const outputs = [errOut ? `stderr: ${errOut}` : '', out ? `stdout: ${out}` : ''].filter(Boolean).join('; ');
      const withOutput = outputs ? ` — ${outputs}` : ' (no output)';
      if (!err) {
        resolve({ status: 'delivered', detail: redact(`${what} exited with 0${withOutput}`, secrets) });
        return;
      }
      const code = err.code;
      if (code === 'ENOENT') {
        reject(
          failure(
            'DeployerRejected',
            `${what} was not found (ENOENT): give an absolute path in deployer.argv[0] or make sure it is on the worker's PATH (${process.env.PATH ? 'PATH is set' : 'PATH is empty'})`,
            secrets,
          ),
        );
        return;
      }
      if (code === 'EACCES' || code === 'EISDIR' || code === 'ENOEXEC' || code === 'ENOTDIR') {
        reject(failure('DeployerRejected', `${what} cannot be executed (${code}): check that it is an executable file`, secrets));
        return;
      }
      if (code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
        reject(
          failure(
            'DeployerUnavailable',
            `${what} wrote more than ${COMMAND_MAX_BUFFER / 1024 / 1024} MB of output and was stopped; it will be retried${withOutput}`,
            secrets,
          ),
        );
        return;
      }
      if (err.killed && (err.signal === 'SIGTERM' || err.signal === 'SIGKILL')) {
        reject(
          failure(
            'DeployerUnavailable',
            `${what} did not finish within ${seconds(timeoutMs)} and was stopped; it will be retried${withOutput}`,
            secrets,
          ),
        );
        return;
      }
      if (typeof code === 'number') {
        reject(failure('DeployerUnavailable', `${what} exited with ${code}; it will be retried${withOutput}`, secrets));
        return;
      }
      if (err.signal) {
        reject(failure('DeployerUnavailable', `${what} was killed by ${err.signal}; it will be retried${withOutput}`, secrets));
        return;
      }
      reject(failure('DeployerUnavailable', `${what} failed (${code ?? err.message}); it will be retried${withOutput}`, secrets));
    };
    try {
      execFile(
        program,
        argv.slice(1),
        {
          env: commandEnv(req),
          timeout: timeoutMs,
          killSignal: 'SIGTERM',
          maxBuffer: COMMAND_MAX_BUFFER,
          windowsHide: true,
          shell: false,
          encoding: 'utf8',
        },
        (err, stdout, stderr) => done(String(stdout ?? ''), String(stderr ?? ''), err),
      );
    } catch (err) {
      // Synchronous argument validation (e.g. a NUL byte in an argument).
      const msg = err instanceof Error ? err.message : String(err);
      reject(failure('DeployerRejected', `${what} cannot be started: ${msg}; fix deployer.argv`, secrets));
    }
  });
}

// ---------------------------------------------------------------------------------------------

function failure(type: DeployerErrorType, message: string, secrets: string[], nextRetryDelayMs?: number): ApplicationFailure {
  return failureOf(type, redact(message, secrets), { nextRetryDelay: nextRetryDelayMs });
}
