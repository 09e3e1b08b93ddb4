/**
 * Metrics sources of the performance and resource agents: an exporter's `/metrics` scraped
 * directly (parsed by domain/infra/prometheus-text.ts), and Prometheus' HTTP query API.
 *
 * - `scrapeMetrics`: one scrape of a `/metrics` endpoint (vLLM, DCGM exporter, node exporter).
 * - `queryRange`: `/api/v1/query_range` of a Prometheus server, validated with zod.
 *
 * Every failure is a `MetricsSourceError` naming the URL without credentials and the reason; an
 * answer is read to at most MAX_RESPONSE_BYTES, and the whole request is bounded by its timeout.
 */
import { z } from 'zod';
import type { MetricSample } from '../../domain/agents/types.js';
import { parsePrometheusText, parsePromFloat, snippet } from '../../domain/infra/prometheus-text.js';
import { safeUrl } from '../../common/secrets.js';

// ---------------------------------------------------------------------------------------------
// Errors and URLs

export type MetricsSourceErrorReason =
  | 'connection-refused'
  | 'timeout'
  | 'http-status'
  | 'garbage'
  | 'prometheus-error'
  | 'invalid-response'
  | 'invalid-url'
  | 'network';

export class MetricsSourceError extends Error {
  override name = 'MetricsSourceError';
  constructor(
    /** The URL asked, with user, password and secret-looking query values masked. */
    readonly url: string,
    readonly reason: MetricsSourceErrorReason,
    message: string,
    /** HTTP status when there was a response. */
    readonly status?: number,
    /** Prometheus' `errorType` for reason 'prometheus-error'. */
    readonly errorType?: string,
  ) {
    super(`${url}: ${message}`);
  }
  /** The answer was refused for its size (a smaller range may pass). */
  tooLarge?: boolean;
}

export { safeUrl };

/** fetch() rejects URLs with credentials: move them into a Basic auth header. */
function requestTarget(url: string): { href: string; headers: Record<string, string> } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new MetricsSourceError(safeUrl(url), 'invalid-url', 'not a valid URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new MetricsSourceError(safeUrl(url), 'invalid-url', `unsupported protocol ${u.protocol} (http or https)`);
  }
  const headers: Record<string, string> = {};
  if (u.username || u.password) {
    const user = decodeURIComponent(u.username);
    const pass = decodeURIComponent(u.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    u.username = '';
    u.password = '';
  }
  return { href: u.toString(), headers };
}

function errCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur && typeof cur === 'object'; i++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === 'string') return c;
    // AggregateError (happy eyeballs) carries the real errors in `errors`.
    const errs = (cur as { errors?: unknown }).errors;
    if (Array.isArray(errs) && errs.length > 0) {
      const inner = errCode(errs[0]);
      if (inner) return inner;
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Largest answer read from an exporter or Prometheus, in bytes (default of `maxBytes`). */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

async function httpGet(
  url: string,
  timeoutMs: number,
  accept: string,
  maxBytes = MAX_RESPONSE_BYTES,
): Promise<{ status: number; contentType: string; body: string }> {
  const shown = safeUrl(url);
  const { href, headers } = requestTarget(url);
  try {
    const r = await fetch(href, {
      headers: { accept, ...headers },
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'follow',
    });
    const declared = Number(r.headers.get('content-length') ?? '');
    const tooLarge = () =>
      Object.assign(new MetricsSourceError(shown, 'invalid-response', `answer larger than ${maxBytes} bytes`, r.status), {
        tooLarge: true,
      });
    if (Number.isFinite(declared) && declared > maxBytes) {
      await r.body?.cancel().catch(() => undefined);
      throw tooLarge();
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (r.body) {
      const reader = r.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > maxBytes) {
          await reader.cancel().catch(() => undefined);
          throw tooLarge();
        }
        chunks.push(value);
      }
    }
    const body = new TextDecoder().decode(Buffer.concat(chunks));
    return { status: r.status, contentType: r.headers.get('content-type') ?? '', body };
  } catch (e) {
    if (e instanceof MetricsSourceError) throw e;
    const name = (e as { name?: string }).name;
    if (name === 'TimeoutError' || name === 'AbortError') {
      throw new MetricsSourceError(shown, 'timeout', `no complete answer within ${timeoutMs} ms`);
    }
    const code = errCode(e);
    if (code === 'ECONNREFUSED') throw new MetricsSourceError(shown, 'connection-refused', 'connection refused (nothing listens there)');
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT') {
      throw new MetricsSourceError(shown, 'timeout', `timed out (${code})`);
    }
    throw new MetricsSourceError(shown, 'network', `request failed (${code ?? (e as Error).message})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Direct scrape

export interface ScrapeOptions {
  /** Whole request, connect to last byte (default 5000 ms). */
  timeoutMs?: number;
  /** Scrape time for the samples' `ts` (default: now). */
  now?: () => Date;
  /** Largest answer read (default MAX_RESPONSE_BYTES). */
  maxBytes?: number;
}

const DAY_MS = 86_400_000;
const YEAR_2000_MS = Date.UTC(2000, 0, 1);

/**
 * Scrape one `/metrics` endpoint. Every sample gets its exposition timestamp, else the scrape time, as `ts` (ISO). NaN and ±Inf
 * values are kept as they are (a gauge may legitimately be NaN).
 */
export async function scrapeMetrics(url: string, opts: ScrapeOptions = {}): Promise<MetricSample[]> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const shown = safeUrl(url);
  const r = await httpGet(url, timeoutMs, 'text/plain;version=0.0.4;q=0.9,*/*;q=0.1', opts.maxBytes);
  if (r.status < 200 || r.status > 299) {
    throw new MetricsSourceError(shown, 'http-status', `HTTP ${r.status}: ${snippet(r.body, 200)}`, r.status);
  }
  const ts = (opts.now?.() ?? new Date()).toISOString();
  const parsed = parsePrometheusText(r.body);
  const bad = parsed.sampleLines - parsed.samples.length; // sample lines that did not parse
  if (parsed.samples.length === 0 || (parsed.sampleLines > 0 && bad * 2 > parsed.sampleLines)) {
    const first = parsed.errors[0];
    throw new MetricsSourceError(
      shown,
      'garbage',
      `not Prometheus text format (${parsed.samples.length} samples, ${parsed.errors.length} bad lines of ${parsed.sampleLines}` +
        `${r.contentType ? `, content-type ${r.contentType}` : ''}${first ? `; line ${first.line}: ${first.reason}` : ''})`,
      r.status,
    );
  }
  // An explicit timestamp in the exposition wins over the scrape time, as in Prometheus; one
  // that cannot be a sample's time (before 2000, or a day after the scrape) is an exporter's
  // mistake, most often seconds written where the format wants milliseconds.
  const scrapeMs = Date.parse(ts);
  const odd = parsed.samples.find(
    (s) => s.timestampMs !== undefined && (s.timestampMs < YEAR_2000_MS || s.timestampMs > scrapeMs + DAY_MS),
  )?.timestampMs;
  if (odd !== undefined) {
    const asDate = (ms: number) => (Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : 'no date');
    const why =
      Math.abs(odd * 1000 - scrapeMs) <= DAY_MS
        ? 'it is in seconds, but the exposition format wants milliseconds since the epoch'
        : `it is not within a day of the scrape time ${ts}`;
    throw new MetricsSourceError(
      shown,
      'garbage',
      `sample timestamp ${odd} (${asDate(odd)}) cannot be right: ${why}; fix the exporter or have it write no timestamps`,
      r.status,
    );
  }
  return parsed.samples.map((s) => ({
    ts: s.timestampMs !== undefined ? new Date(s.timestampMs).toISOString() : ts,
    metric: s.metric,
    labels: s.labels,
    value: s.value,
  }));
}

// ---------------------------------------------------------------------------------------------
// Prometheus HTTP API

const promValue = z.tuple([z.number(), z.string()]);

const queryRangeResponse = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('success'),
    data: z.object({
      resultType: z.literal('matrix'),
      result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(promValue) })),
    }),
    warnings: z.array(z.string()).optional(),
  }),
  z.object({
    status: z.literal('error'),
    errorType: z.string(),
    error: z.string(),
  }),
]);

export interface QueryRangeOptions {
  /** Default 10000 ms. */
  timeoutMs?: number;
  /** Largest answer read (default MAX_RESPONSE_BYTES). */
  maxBytes?: number;
}

/** A range bound as Prometheus reads it (unix seconds or RFC 3339), in unix seconds. */
function unixSeconds(t: string): number | undefined {
  const n = /^-?[0-9]+(\.[0-9]+)?$/.test(t.trim()) ? Number(t) : Date.parse(t) / 1000;
  return Number.isFinite(n) ? n : undefined;
}

/** Latest time a JavaScript Date holds, in unix seconds. */
const MAX_UNIX_SECONDS = 8.64e12;

export interface RangeSeries {
  metric: Record<string, string>;
  /** [unix seconds, value] pairs; Prometheus' "NaN", "+Inf", "-Inf" become numbers. */
  values: Array<[number, number]>;
}

/**
 * `GET <baseUrl>/api/v1/query_range`. `start`/`end` are RFC 3339 or unix seconds (as Prometheus
 * accepts them). An error answer from Prometheus (bad PromQL, timeout, ...) becomes a
 * MetricsSourceError carrying its `errorType` and `error`.
 */
export async function queryRange(
  baseUrl: string,
  promql: string,
  range: { start: string; end: string; stepSeconds: number },
  opts: QueryRangeOptions = {},
): Promise<RangeSeries[]> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  if (!(range.stepSeconds > 0) || !Number.isFinite(range.stepSeconds)) {
    throw new MetricsSourceError(safeUrl(baseUrl), 'invalid-url', `stepSeconds must be a positive number (got ${range.stepSeconds})`);
  }
  let u: URL;
  try {
    u = new URL(baseUrl);
  } catch {
    throw new MetricsSourceError(safeUrl(baseUrl), 'invalid-url', 'not a valid URL');
  }
  // Trailing slashes dropped from the start of their run only (`\/+$` took quadratic time on a path of slashes).
  u.pathname = `${u.pathname.replace(/(?<!\/)\/+$/, '')}/api/v1/query_range`;
  u.search = '';
  u.searchParams.set('query', promql);
  u.searchParams.set('start', range.start);
  u.searchParams.set('end', range.end);
  u.searchParams.set('step', String(range.stepSeconds));
  u.searchParams.set('timeout', `${Math.max(1, Math.floor(timeoutMs / 1000))}s`);
  const url = u.toString();
  const shown = safeUrl(url);
  const r = await httpGet(url, timeoutMs, 'application/json', opts.maxBytes);
  let json: unknown;
  try {
    json = JSON.parse(r.body);
  } catch {
    if (r.status < 200 || r.status > 299) {
      throw new MetricsSourceError(shown, 'http-status', `HTTP ${r.status}: ${snippet(r.body, 200)}`, r.status);
    }
    throw new MetricsSourceError(shown, 'invalid-response', `answer is not JSON: ${snippet(r.body, 120)}`, r.status);
  }
  const parsed = queryRangeResponse.safeParse(json);
  if (!parsed.success) {
    if (r.status < 200 || r.status > 299) {
      throw new MetricsSourceError(shown, 'http-status', `HTTP ${r.status}: ${snippet(r.body, 200)}`, r.status);
    }
    const issue = parsed.error.issues[0];
    throw new MetricsSourceError(
      shown,
      'invalid-response',
      `unexpected query_range answer (${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'schema mismatch'})`,
      r.status,
    );
  }
  const d = parsed.data;
  if (d.status === 'error') {
    throw new MetricsSourceError(shown, 'prometheus-error', `Prometheus error ${d.errorType}: ${d.error}`, r.status, d.errorType);
  }
  // Samples lie within the range asked (one step of slack either side); one outside it is an
  // answer in other units (milliseconds from a proxy) or for another query.
  const [from, to] = [unixSeconds(range.start), unixSeconds(range.end)];
  const out: RangeSeries[] = [];
  for (const s of d.data.result) {
    const values: Array<[number, number]> = [];
    for (const [t, v] of s.values) {
      if (!(Math.abs(t) <= MAX_UNIX_SECONDS)) {
        throw new MetricsSourceError(shown, 'invalid-response', `sample time ${t} is not a unix time in seconds`, r.status);
      }
      if ((from !== undefined && t < from - range.stepSeconds) || (to !== undefined && t > to + range.stepSeconds)) {
        throw new MetricsSourceError(
          shown,
          'invalid-response',
          `sample time ${t} is outside the range asked (${range.start} to ${range.end}); Prometheus answers in unix seconds`,
          r.status,
        );
      }
      const x = parsePromFloat(v);
      if (x === undefined) {
        throw new MetricsSourceError(shown, 'invalid-response', `sample value '${snippet(v, 30)}' is not a number`, r.status);
      }
      values.push([t, x]);
    }
    out.push({ metric: s.metric, values });
  }
  return out;
}
