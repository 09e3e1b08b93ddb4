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
 *   import { verifySignature } from 'optiinfra/activities/deploy/deployer.js';
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
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ApplicationFailure } from '@temporalio/common';
import { failure as failureOf, type FailureType } from '../../common/failures.js';
import { redact } from '../../common/config.js';
import type { DeployerConfig } from '../../domain/gate/types.js';
import { retryAfterMsOf } from '../llm/client.js';

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
/** Default tolerance of `verifySignature` between the signed timestamp and the receiver's clock. */
export const SIGNATURE_TOLERANCE_SEC = 300;
export const SIGNATURE_HEADER = 'X-OptiInfra-Signature';
export const TIMESTAMP_HEADER = 'X-OptiInfra-Timestamp';

/** How much of a command's output, or a webhook's error body, goes into a message or detail. */
const TAIL_BYTES = 2048;
const BODY_SNIPPET_CHARS = 300;
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
// Signatures

/** `sha256=<hex>` for a timestamp and a raw body. */
export function signPayload(secret: string, timestamp: string, rawBody: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`, 'utf8').digest('hex')}`;
}

/**
 * For receivers of the rollback webhook: true when `header` (the X-OptiInfra-Signature value,
 * `sha256=<hex>`) is the HMAC-SHA256 of "<timestamp>.<rawBody>" with `secret` AND `timestamp`
 * (the X-OptiInfra-Timestamp value, unix seconds) is within `toleranceSec` (default 300) of
 * `now` (milliseconds since the epoch, default Date.now()). Pass the body exactly as received.
 * The comparison is constant-time. Never throws: anything malformed is simply false.
 */
export function verifySignature(
  secret: string,
  timestamp: string,
  rawBody: string,
  header: string | undefined,
  opts: { toleranceSec?: number; now?: number } = {},
): boolean {
  if (typeof secret !== 'string' || secret === '') return false;
  if (typeof header !== 'string' || typeof timestamp !== 'string' || typeof rawBody !== 'string') return false;
  if (!/^\d{1,15}$/.test(timestamp.trim())) return false;
  const ts = Number(timestamp.trim());
  const tolerance = opts.toleranceSec ?? SIGNATURE_TOLERANCE_SEC;
  const nowSec = (opts.now ?? Date.now()) / 1000;
  if (!Number.isFinite(tolerance) || Math.abs(nowSec - ts) > tolerance) return false;
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(header.trim());
  if (!m || m[1] === undefined) return false;
  const expected = createHmac('sha256', secret).update(`${timestamp.trim()}.${rawBody}`, 'utf8').digest();
  const given = Buffer.from(m[1], 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
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

/** A URL for messages: credentials and query string (often a token) left out. */
function describeUrl(u: string): string {
  try {
    const x = new URL(u);
    return `${x.origin}${x.pathname}${x.search ? '?…' : ''}`;
  } catch {
    return '(unparseable webhook URL)';
  }
}

async function postWebhook(
  url: string,
  req: RollbackRequest,
  opts: DeliverOptions,
  secrets: string[],
): Promise<{ status: 'delivered'; detail: string }> {
  const where = describeUrl(url);
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw failure('DeployerRejected', 'rollback webhook URL does not parse: fix deployer.url', secrets);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw failure('DeployerRejected', `rollback webhook URL must be http or https (got ${target.protocol}): fix deployer.url`, secrets);
  }
  // Credentials in the URL become Basic auth (fetch refuses them in the URL); they, and the
  // query string, never appear in a message.
  let authorization: string | undefined;
  if (target.username || target.password) {
    const user = decodeURIComponent(target.username);
    const pass = decodeURIComponent(target.password);
    authorization = `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
    secrets = [...secrets, pass, authorization.slice('Basic '.length)];
    target.username = '';
    target.password = '';
  }
  if (target.search.length > 1) secrets = [...secrets, target.search.slice(1), ...target.searchParams.values()];
  const timeoutMs = opts.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  const now = new Date();
  const timestamp = String(Math.floor(now.getTime() / 1000));
  const rawBody = webhookBody(req, now);
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'Idempotency-Key': req.idempotencyKey,
    [TIMESTAMP_HEADER]: timestamp,
    'User-Agent': 'optiinfra-deploy-gate',
  };
  if (opts.webhookSecret) headers[SIGNATURE_HEADER] = signPayload(opts.webhookSecret, timestamp, rawBody);
  if (authorization) headers['Authorization'] = authorization;

  let res: Response;
  try {
    res = await fetch(target, {
      method: 'POST',
      headers,
      body: rawBody,
      // A redirected POST silently becomes a GET: report it instead of following it.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    if (isTimeout(err)) {
      throw failure(
        'DeployerUnavailable',
        `rollback webhook ${where} did not answer within ${seconds(timeoutMs)}; it will be retried (raise the timeout if the receiver is slow)`,
        secrets,
      );
    }
    throw failure(
      'DeployerUnavailable',
      `rollback webhook ${where} is unreachable (${describeNetworkError(err)}); it will be retried — check the URL and that the receiver is running`,
      secrets,
    );
  }

  const status = res.status;
  const signed = opts.webhookSecret
    ? 'signed with HMAC-SHA256'
    : 'UNSIGNED: no webhook secret is configured, so the receiver cannot verify that the request came from the gate';
  if ((status >= 200 && status < 300) || status === 409) {
    await res.body?.cancel().catch(() => undefined);
    const what = status === 409 ? `answered 409 (already processed this idempotency key)` : `answered ${status}`;
    return {
      status: 'delivered',
      detail: redact(`rollback webhook ${where} ${what}; idempotency key ${req.idempotencyKey}; ${signed}`, secrets),
    };
  }

  const snippet = await bodySnippet(res);
  const said = snippet ? `: ${snippet}` : '';
  if (status === 429 || status === 503) {
    const delay = retryAfterMsOf(res.headers);
    const after = delay !== undefined ? ` after ${seconds(delay)} as it asked` : '';
    throw failure(
      'DeployerUnavailable',
      `rollback webhook ${where} answered ${status} (${status === 429 ? 'rate limited' : 'unavailable'})${said}; it will be retried${after}`,
      secrets,
      delay,
    );
  }
  if (status >= 500 || status === 408) {
    throw failure('DeployerUnavailable', `rollback webhook ${where} answered ${status}${said}; it will be retried`, secrets);
  }
  if (status >= 300 && status < 400) {
    const location = res.headers.get('location');
    throw failure(
      'DeployerRejected',
      `rollback webhook ${where} answered a redirect (${status}${location ? ` to ${describeUrl(new URL(location, url).toString())}` : ''}); configure the final URL in deployer.url`,
      secrets,
    );
  }
  const hint =
    status === 401 || status === 403
      ? ' — check that the receiver and the gate use the same webhook secret and that the gate may call it'
      : status === 404
        ? ' — check deployer.url'
        : ' — the receiver refused the request; fix the receiver or the deployer configuration and roll back by hand';
  throw failure('DeployerRejected', `rollback webhook ${where} rejected the rollback with ${status}${said}${hint}`, secrets);
}

async function bodySnippet(res: Response): Promise<string> {
  try {
    const text = (await res.text()).replace(/\s+/g, ' ').trim();
    return text.length > BODY_SNIPPET_CHARS ? `${text.slice(0, BODY_SNIPPET_CHARS)}…` : text;
  } catch {
    return '';
  }
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}

function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  if (cause && typeof cause === 'object') {
    const code = (cause as { code?: unknown }).code;
    const msg = cause instanceof Error ? cause.message : '';
    if (typeof code === 'string') return msg && !msg.includes(code) ? `${code}: ${msg}` : msg || code;
    if (msg) return msg;
  }
  return err.message;
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
  env['OPTIINFRA_GATE_ID'] = clean(req.gateId);
  env['OPTIINFRA_DEPLOYMENT'] = clean(req.deployment);
  env['OPTIINFRA_FROM_VERSION'] = clean(req.fromVersion);
  env['OPTIINFRA_TO_VERSION'] = clean(req.toVersion);
  env['OPTIINFRA_REASON'] = clean(req.reason).slice(0, ENV_REASON_LIMIT);
  env['OPTIINFRA_IDEMPOTENCY_KEY'] = clean(req.idempotencyKey);
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
            `${what} was not found (ENOENT): give an absolute path in deployer.argv[0] or make sure it is on the worker's PATH (${process.env['PATH'] ? 'PATH is set' : 'PATH is empty'})`,
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
          failure('DeployerUnavailable', `${what} did not finish within ${seconds(timeoutMs)} and was stopped; it will be retried${withOutput}`, secrets),
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

function seconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

function failure(type: DeployerErrorType, message: string, secrets: string[], nextRetryDelayMs?: number): ApplicationFailure {
  return failureOf(type, redact(message, secrets), { nextRetryDelay: nextRetryDelayMs });
}
