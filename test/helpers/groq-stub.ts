/**
 * A local Groq-compatible HTTP server for tests and benchmarks (no network, no key).
 *
 * It serves the OpenAI chat-completions shape at `POST /openai/v1/chat/completions`, the path
 * groq-sdk appends to its `baseURL` (so `baseURL` is the bare origin, e.g. http://127.0.0.1:PORT).
 *
 * - Faults queued with `enqueue` are consumed in order, one per request.
 * - With the queue empty it answers a valid, deterministic JSON judgement for the check named in
 *   the system prompt's version line (see domain/judge/prompts.ts), or what `setDefault` returns.
 * - Every request is recorded (method, path, headers including authorization, parsed body).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CHECKS, type Check } from '../../common/types.js';
import { checkOfSystemPrompt, fnv1a32 } from '../../domain/judge/prompts.js';

export const STUB_COMPLETIONS_PATH = '/openai/v1/chat/completions';

export type Fault =
  /** Answer with this HTTP status and a Groq-style error body (or `body`). */
  | {
      kind: 'status';
      status: number;
      /** Seconds, sent as `retry-after`. */
      retryAfter?: number | string;
      /** Sent as `retry-after-ms`. */
      retryAfterMs?: number;
      headers?: Record<string, string>;
      body?: object;
    }
  /** Answer normally, but only after `ms` (longer than the client timeout simulates a timeout). */
  | { kind: 'delay'; ms: number }
  /** Destroy the socket without any answer. */
  | { kind: 'reset' }
  /** A 200 whose message content is not JSON. */
  | { kind: 'malformed' }
  /** A 200 with the right JSON shape but a score of 1.7. */
  | { kind: 'out-of-range' }
  /** A 200 with `choices: []`. */
  | { kind: 'empty-choices' }
  /** A 200 whose message content is the empty string. */
  | { kind: 'empty-content' }
  /** Groq's JSON mode failure: HTTP 400 with code json_validate_failed. */
  | { kind: 'json-validate-failed' };

export interface RecordedRequest {
  seq: number;
  method: string;
  path: string;
  /** Lower-cased header names, as node:http delivers them. */
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON body, or the raw text when it does not parse. */
  body: any;
  /** Detected from the system prompt's version line. */
  check?: Check;
  /** The fault used for this request, if any. */
  fault?: Fault['kind'];
  receivedAt: number;
}

export type AnswerFn = (req: RecordedRequest) => object | string;

export interface GroqStubOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Fixed delay before every answer, in ms (benchmarks). */
  latencyMs?: number;
  /** When set, requests without `Authorization: Bearer <apiKey>` get Groq's 401. */
  apiKey?: string;
  /** When set, requests for another model get Groq's 404 model_not_found. */
  models?: string[];
}

export interface GroqStubStats {
  requests: number;
  answered: number;
  inFlight: number;
  maxInFlight: number;
  pendingFaults: number;
  faults: Partial<Record<Fault['kind'], number>>;
  byCheck: Partial<Record<Check | 'unknown', number>>;
  promptTokens: number;
  completionTokens: number;
}

export interface GroqStub {
  /** Pass as groq-sdk's `baseURL` / GROQ_BASE_URL. */
  baseURL: string;
  port: number;
  requests: RecordedRequest[];
  enqueue(...faults: Fault[]): void;
  setDefault(answer: AnswerFn | undefined): void;
  /** Forget recorded requests, queued faults and statistics (requests in flight still finish). */
  clear(): void;
  stats(): GroqStubStats;
  close(): Promise<void>;
}

/** A plausible judgement for a check, deterministic in `seedText`. */
export function defaultJudgement(check: Check, seedText: string): Record<string, unknown> {
  const h = fnv1a32(seedText);
  // 0.00 .. 0.15 from the hash, so different inputs get slightly different values.
  const jitter = (shift: number) => ((h >>> shift) % 16) / 100;
  const r2 = (n: number) => Math.round(n * 100) / 100;
  switch (check) {
    case 'quality': {
      const coherence = r2(0.8 + jitter(0));
      const relevance = r2(0.78 + jitter(4));
      const accuracy = r2(0.76 + jitter(8));
      const completeness = r2(0.74 + jitter(12));
      const overall = r2((coherence + relevance + accuracy + completeness) / 4);
      return { coherence, relevance, accuracy, completeness, overall, reasoning: 'Clear and relevant answer with minor gaps.' };
    }
    case 'hallucination':
      return { score: r2(0.02 + jitter(0) / 2), confidence: r2(0.8 + jitter(4)), reasoning: 'The claims are supported by the context.' };
    case 'toxicity':
      return {
        toxicity: r2(jitter(0) / 5),
        hate_speech: 0,
        violence: 0,
        profanity: r2(jitter(4) / 10),
        reasoning: 'Polite, neutral language.',
      };
  }
}

const PRIMARY_FIELD: Record<Check, string> = { quality: 'overall', hallucination: 'score', toxicity: 'toxicity' };

function errorBody(status: number): object {
  const groq = (message: string, type: string, code?: string) => ({ error: { message, type, ...(code ? { code } : {}) } });
  switch (status) {
    case 400:
      return groq('Bad request', 'invalid_request_error');
    case 401:
      return groq('Invalid API Key', 'invalid_request_error', 'invalid_api_key');
    case 403:
      return groq('Forbidden', 'permissions_error');
    case 404:
      return groq('The model does not exist or you do not have access to it.', 'invalid_request_error', 'model_not_found');
    case 429:
      return groq('Rate limit reached for model on requests per minute (RPM). Please try again later.', 'requests', 'rate_limit_exceeded');
    case 503:
      return groq('Service Unavailable', 'internal_server_error', 'service_unavailable');
    default:
      return groq(status >= 500 ? 'Internal Server Error' : `HTTP ${status}`, status >= 500 ? 'internal_server_error' : 'invalid_request_error');
  }
}

const approxTokens = (s: string) => Math.max(1, Math.ceil(s.length / 4));

export async function startGroqStub(opts: GroqStubOptions = {}): Promise<GroqStub> {
  const requests: RecordedRequest[] = [];
  const queue: Fault[] = [];
  let answer: AnswerFn | undefined;
  let seq = 0;
  const timers = new Set<NodeJS.Timeout>();
  const fresh = (): GroqStubStats => ({
    requests: 0,
    answered: 0,
    inFlight: 0,
    maxInFlight: 0,
    pendingFaults: 0,
    faults: {},
    byCheck: {},
    promptTokens: 0,
    completionTokens: 0,
  });
  const st = fresh();

  const later = (ms: number, fn: () => void) => {
    if (ms <= 0) return fn();
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const sendJson = (res: http.ServerResponse, status: number, body: object, headers: Record<string, string> = {}) => {
    if (res.destroyed || res.writableEnded) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'x-request-id': `req_stub_${seq}`,
      ...headers,
    });
    res.end(text);
  };

  const completion = (rec: RecordedRequest, content: string, choices?: unknown[]) => {
    const messages: Array<{ content?: unknown }> = Array.isArray(rec.body?.messages) ? rec.body.messages : [];
    const promptTokens = messages.reduce(
      (n, m) => n + 4 + (typeof m.content === 'string' ? approxTokens(m.content) : 0),
      3,
    );
    const completionTokens = approxTokens(content);
    st.promptTokens += promptTokens;
    st.completionTokens += completionTokens;
    return {
      id: `chatcmpl-stub-${rec.seq}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: typeof rec.body?.model === 'string' ? rec.body.model : 'stub-model',
      choices: choices ?? [
        { index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: 'stop' },
      ],
      usage: {
        queue_time: 0.01,
        prompt_tokens: promptTokens,
        prompt_time: 0.002,
        completion_tokens: completionTokens,
        completion_time: 0.05,
        total_tokens: promptTokens + completionTokens,
        total_time: 0.052,
      },
      system_fingerprint: 'fp_stub',
      x_groq: { id: `req_stub_${rec.seq}` },
    };
  };

  const validContent = (rec: RecordedRequest): string => {
    if (answer) {
      const a = answer(rec);
      return typeof a === 'string' ? a : JSON.stringify(a);
    }
    if (!rec.check) return JSON.stringify({ result: 'ok' });
    const user = rec.body?.messages?.find?.((m: { role?: string }) => m.role === 'user')?.content;
    return JSON.stringify(defaultJudgement(rec.check, typeof user === 'string' ? user : ''));
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, raw: string) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    let body: any = raw;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      /* keep the raw text */
    }
    const system = Array.isArray(body?.messages)
      ? body.messages.find((m: { role?: string }) => m.role === 'system')?.content
      : undefined;
    const rec: RecordedRequest = {
      seq: ++seq,
      method: req.method ?? '',
      path,
      headers: req.headers,
      body,
      check: typeof system === 'string' ? checkOfSystemPrompt(system) : undefined,
      receivedAt: Date.now(),
    };
    requests.push(rec);
    st.requests++;
    const ck = rec.check ?? 'unknown';
    st.byCheck[ck] = (st.byCheck[ck] ?? 0) + 1;

    if (req.method !== 'POST' || path !== STUB_COMPLETIONS_PATH) {
      return sendJson(res, 404, { error: { message: `Unknown request URL: ${req.method} ${path}`, type: 'invalid_request_error', code: 'unknown_url' } });
    }
    if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
      return sendJson(res, 401, errorBody(401));
    }
    if (opts.models && !opts.models.includes(String(body?.model))) {
      return sendJson(res, 404, errorBody(404));
    }

    const fault = queue.shift();
    st.pendingFaults = queue.length;
    if (fault) {
      rec.fault = fault.kind;
      st.faults[fault.kind] = (st.faults[fault.kind] ?? 0) + 1;
    }
    const answerOk = () => {
      st.answered++;
      sendJson(res, 200, completion(rec, validContent(rec)));
    };

    later(opts.latencyMs ?? 0, () => {
      if (!fault) return answerOk();
      switch (fault.kind) {
        case 'status': {
          const headers: Record<string, string> = { ...(fault.headers ?? {}) };
          if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
          if (fault.retryAfterMs !== undefined) headers['retry-after-ms'] = String(fault.retryAfterMs);
          return sendJson(res, fault.status, fault.body ?? errorBody(fault.status), headers);
        }
        case 'delay':
          return later(fault.ms, answerOk);
        case 'reset':
          return req.socket.destroy();
        case 'malformed':
          return sendJson(res, 200, completion(rec, 'Sure! Here is my verdict: {score: high, reasoning: looks fine'));
        case 'out-of-range': {
          const check = rec.check ?? CHECKS[0];
          const v = defaultJudgement(check, 'out-of-range');
          v[PRIMARY_FIELD[check]] = 1.7;
          return sendJson(res, 200, completion(rec, JSON.stringify(v)));
        }
        case 'empty-choices':
          return sendJson(res, 200, completion(rec, '', []));
        case 'empty-content':
          return sendJson(res, 200, completion(rec, ''));
        case 'json-validate-failed':
          return sendJson(res, 400, {
            error: {
              message: 'Failed to generate JSON. Please adjust your prompt. See \'failed_generation\' for more details.',
              type: 'invalid_request_error',
              code: 'json_validate_failed',
              failed_generation: '{"overall": 0.8,',
            },
          });
      }
    });
  };

  const server = http.createServer((req, res) => {
    st.inFlight++;
    st.maxInFlight = Math.max(st.maxInFlight, st.inFlight);
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        st.inFlight--;
      }
    };
    res.on('close', finish);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
    req.on('error', finish);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    baseURL: `http://127.0.0.1:${port}`,
    port,
    requests,
    enqueue(...faults: Fault[]) {
      queue.push(...faults);
      st.pendingFaults = queue.length;
    },
    setDefault(fn: AnswerFn | undefined) {
      answer = fn;
    },
    clear() {
      requests.length = 0;
      queue.length = 0;
      const inFlight = st.inFlight;
      Object.assign(st, fresh(), { inFlight, maxInFlight: inFlight });
    },
    stats() {
      return { ...st, faults: { ...st.faults }, byCheck: { ...st.byCheck } };
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
