/**
 * Signed JSON webhooks, shared by rollbacks and notifications. A POST carries
 *     Content-Type: application/json
 *     Idempotency-Key: <key>
 *     X-OptiInfra-Timestamp: <unix seconds>
 *     X-OptiInfra-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with the secret>
 * (the signature only when a webhook secret is configured). Delivery is at least once, with one
 * idempotency key per message: Temporal retries, so receivers deduplicate on the key.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { redact, urlAddress } from '../../common/secrets.js';
import { failure as failureOf, type FailureType } from '../../common/failures.js';
import { retryAfterMsOf } from '../llm/errors.js';

/** Default tolerance of `verifySignature` between the signed timestamp and the receiver's clock. */
export const SIGNATURE_TOLERANCE_SEC = 300;
export const SIGNATURE_HEADER = 'X-OptiInfra-Signature';
export const TIMESTAMP_HEADER = 'X-OptiInfra-Timestamp';
const BODY_SNIPPET_CHARS = 300;
/** How much of an error answer's body is read for its snippet: a receiver's body may never end. */
const BODY_READ_BYTES = 16 * 1024;
/**
 * The longest wait between attempts a receiver's retry-after may ask for: the retry policy's
 * maximum interval (workflows/options.ts), so a rollback is not put off for hours.
 */
export const MAX_WEBHOOK_RETRY_DELAY_MS = 2 * 60_000;

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

/** A URL for messages: credentials and query string (often a token) left out. */
function describeUrl(u: string): string {
  const address = urlAddress(u);
  return address === undefined ? '(unparseable webhook URL)' : `${address}${new URL(u).search ? '?…' : ''}`;
}

export interface SignedPost {
  url: string;
  rawBody: string;
  idempotencyKey: string;
  /** What the receiver is, for messages: "rollback webhook", "notification webhook". */
  what: string;
  /** The setting holding the URL, for messages. */
  setting: string;
  /** What to do when the receiver refuses for good. */
  refusedHint: string;
  webhookSecret?: string;
  timeoutMs: number;
  secrets: string[];
  failureType: { retry: FailureType; refuse: FailureType };
  /** How a URL (the webhook's, a redirect's) is named in messages; default: origin and path. */
  describe?: (url: string) => string;
  /**
   * For a 2xx answer: its body's start (bounded, redacted) → why the receiver did not take the
   * message after all (a refusal), or undefined when it did.
   */
  checkAnswer?: (body: string) => string | undefined;
  /** A TLS certificate that does not verify is a refusal (it does not pass by retrying), not an outage. */
  refuseUnverifiedTls?: boolean;
  /** Aborted when the attempt is cancelled: the request is abandoned (a retryable failure). */
  signal?: AbortSignal;
}

/**
 * POST a JSON body with the signature headers (module comment); resolves when the receiver
 * answered 2xx or 409 (it has processed this idempotency key before), throws a retryable failure
 * for what may pass (network, timeouts, 408, 429, 5xx; a 429/503 retry-after is honoured) and a
 * non-retryable one for a refusal. No secret, credential or query string appears in a message.
 */
export async function postSigned(o: SignedPost): Promise<{ status: 'delivered'; detail: string }> {
  const { url, rawBody, what, setting } = o;
  let secrets = o.secrets;
  const failure = (kind: 'retry' | 'refuse', message: string, delay?: number) =>
    failureOf(o.failureType[kind], redact(message, secrets), { nextRetryDelay: delay });
  const describe = o.describe ?? describeUrl;
  const where = describe(url);
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw failure('refuse', `${what} URL does not parse: fix ${setting}`);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw failure('refuse', `${what} URL must be http or https (got ${target.protocol}): fix ${setting}`);
  }
  // Credentials in the URL become Basic auth (fetch refuses them in the URL); they, and the
  // query string, never appear in a message.
  let authorization: string | undefined;
  if (target.username || target.password) {
    const user = decodeURIComponent(target.username);
    const pass = decodeURIComponent(target.password);
    authorization = `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
    // Without a password the user part is the token itself (https://TOKEN@host/...); with one it
    // names who calls, and stays readable.
    const token = target.password ? [] : [target.username, user];
    secrets = [...secrets, ...token, target.password, pass, authorization.slice('Basic '.length)];
    target.username = '';
    target.password = '';
  }
  if (target.search.length > 1) secrets = [...secrets, target.search.slice(1), ...target.searchParams.values()];
  const timeoutMs = o.timeoutMs;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'Idempotency-Key': o.idempotencyKey,
    [TIMESTAMP_HEADER]: timestamp,
    'User-Agent': 'optiinfra-deploy-gate',
  };
  if (o.webhookSecret) headers[SIGNATURE_HEADER] = signPayload(o.webhookSecret, timestamp, rawBody);
  if (authorization) headers.Authorization = authorization;

  let res: Response;
  try {
    res = await fetch(target, {
      method: 'POST',
      headers,
      body: rawBody,
      // A redirected POST silently becomes a GET: report it instead of following it.
      redirect: 'manual',
      signal: o.signal ? AbortSignal.any([AbortSignal.timeout(timeoutMs), o.signal]) : AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    if (o.signal?.aborted) throw failure('retry', `${what} ${where} was abandoned because the attempt was cancelled`);
    if (isTimeout(err)) {
      throw failure(
        'retry',
        `${what} ${where} did not answer within ${seconds(timeoutMs)}; it will be retried (raise the timeout if the receiver is slow)`,
      );
    }
    if (o.refuseUnverifiedTls && isTlsVerification(err)) {
      throw failure(
        'refuse',
        `${what} ${where} presented a TLS certificate that does not verify (${describeNetworkError(err)}); fix the receiver's certificate or ${setting}`,
      );
    }
    throw failure(
      'retry',
      `${what} ${where} is unreachable (${describeNetworkError(err)}); it will be retried — check the URL and that the receiver is running`,
    );
  }

  const status = res.status;
  const signed = o.webhookSecret
    ? 'signed with HMAC-SHA256'
    : 'UNSIGNED: no webhook secret is configured, so the receiver cannot verify that the request came from the gate';
  if (status >= 200 && status < 300 && o.checkAnswer) {
    const refused = o.checkAnswer(await bodySnippet(res, secrets));
    if (refused !== undefined) {
      throw failure('refuse', `${what} ${where} answered ${status} but did not take the message: ${refused} — ${o.refusedHint}`);
    }
  }
  if ((status >= 200 && status < 300) || status === 409) {
    await res.body?.cancel().catch(() => undefined);
    const answered = status === 409 ? `answered 409 (already processed this idempotency key)` : `answered ${status}`;
    return {
      status: 'delivered',
      detail: redact(`${what} ${where} ${answered}; idempotency key ${o.idempotencyKey}; ${signed}`, secrets),
    };
  }

  const snippet = await bodySnippet(res, secrets);
  const said = snippet ? `: ${snippet}` : '';
  if (status === 429 || status === 503) {
    const asked = retryAfterMsOf(res.headers);
    const delay = asked === undefined ? undefined : Math.min(asked, MAX_WEBHOOK_RETRY_DELAY_MS);
    const after =
      asked === undefined || delay === undefined
        ? ''
        : asked > delay
          ? ` after ${seconds(delay)} (it asked for ${seconds(asked)}, longer than the gate waits between attempts)`
          : ` after ${seconds(delay)} as it asked`;
    throw failure(
      'retry',
      `${what} ${where} answered ${status} (${status === 429 ? 'rate limited' : 'unavailable'})${said}; it will be retried${after}`,
      delay,
    );
  }
  if (status >= 500 || status === 408) {
    throw failure('retry', `${what} ${where} answered ${status}${said}; it will be retried`);
  }
  if (status >= 300 && status < 400) {
    const location = res.headers.get('location');
    throw failure(
      'refuse',
      `${what} ${where} answered a redirect (${status}${location ? ` to ${describeLocation(location, url, describe)}` : ''}); configure the final URL in ${setting}`,
    );
  }
  const hint =
    status === 401 || status === 403
      ? ' — check that the receiver and the gate use the same webhook secret and that the gate may call it'
      : status === 404
        ? ` — check ${setting}`
        : ` — the receiver refused the request; ${o.refusedHint}`;
  throw failure('refuse', `${what} ${where} refused the request with ${status}${said}${hint}`);
}

/** A redirect's target for messages (without credentials or query), relative to the webhook URL. */
function describeLocation(location: string, base: string, describe: (url: string) => string): string {
  try {
    return describe(new URL(location, base).toString());
  } catch {
    return 'an unparseable location';
  }
}

/**
 * The start of an error answer's body, secrets redacted before it is clipped: reading stops once
 * BODY_READ_BYTES have arrived (the rest is cancelled), and a body cut short by the timeout gives
 * what had arrived.
 */
async function bodySnippet(res: Response, secrets: string[]): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < BODY_READ_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    /* cut short (timeout, reset): what arrived is the snippet */
  } finally {
    reader.cancel().catch(() => undefined);
  }
  const text = terminalSafe(redact(Buffer.concat(chunks).toString('utf8'), secrets))
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > BODY_SNIPPET_CHARS || size >= BODY_READ_BYTES ? `${text.slice(0, BODY_SNIPPET_CHARS)}…` : text;
}

/**
 * Text a program or a receiver wrote, safe to store and show: terminal escape sequences (colours,
 * titles, cursor moves) removed, other control characters (NUL included, which PostgreSQL
 * refuses) replaced by U+FFFD; line breaks and tabs kept.
 */
export function terminalSafe(s: string): string {
  return s
    .replace(/\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?/g, '')
    .replace(/(?:\u001b\[|\u009b)[0-?]*[ -/]*[@-~]/g, '')
    .replace(/\u001b[@-_]?/g, '')
    .replace(/\r\n?/g, '\n')
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '\ufffd')
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}

/** Codes of a TLS certificate that does not verify (self-signed, expired, wrong name, unknown issuer). */
const TLS_VERIFY_CODES =
  /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_\w+|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)$/;

function isTlsVerification(err: unknown): boolean {
  const cause = err instanceof Error ? (err as { cause?: unknown }).cause : undefined;
  const code = cause && typeof cause === 'object' ? (cause as { code?: unknown }).code : undefined;
  return typeof code === 'string' && TLS_VERIFY_CODES.test(code);
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

export function seconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}
