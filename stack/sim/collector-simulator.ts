/**
 * Demo deployment simulator: an HTTP server speaking the HTTP source protocol
 * (docs/record-format.md), serving interactions built from HaluEval QA rows. The "good" model
 * answers with `right_answer`; a degraded model answers with `hallucinated_answer` for a share of
 * the interactions. Which interactions degrade is a pure function of (seed, index), so runs are
 * reproducible.
 */
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { formatZodError, idSchema } from '../../common/types.js';
import { mulberry32 } from '../../common/random.js';

export { mulberry32 };

export interface SimulatorOptions {
  deployment: string;
  modelVersion: string;
  degradedShare: number;
  seed?: number;
  /** 0 = random free port (default). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Interactions generated per minute automatically; 0 or unset = only on demand. */
  ratePerMinute?: number;
  /** Directory holding halueval/qa_one-turn.jsonl; default env OPTIINFRA_DATA_DIR, else <repo>/data. */
  dataDir?: string;
}

export interface Simulator {
  /** Base URL for an http SourceConfig, e.g. http://127.0.0.1:P/interactions */
  url: string;
  /** Generate `count` interactions with the current model; returns the new total of served items. */
  generate(count: number): number;
  setModel(modelVersion: string, degradedShare: number): void;
  /** Items in the served log (generated plus injected). */
  count(): number;
  close(): Promise<void>;
}

export const DATA_DIR_ENV = 'OPTIINFRA_DATA_DIR';
export const HALUEVAL_QA_FILE = path.join('halueval', 'qa_one-turn.jsonl');
export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;
const MAX_GENERATE = 100_000;
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const INDEX_DIGITS = 8;

const degradedShareSchema = z
  .number({ error: 'degraded_share must be a number' })
  .min(0, { message: 'degraded_share must be between 0 and 1' })
  .max(1, { message: 'degraded_share must be between 0 and 1' });

const optionsSchema = z.object({
  deployment: idSchema('deployment'),
  modelVersion: idSchema('modelVersion'),
  degradedShare: degradedShareSchema,
  seed: z.number().int().optional(),
  port: z.number().int().min(0).max(65535).optional(),
  host: z.string().min(1).optional(),
  ratePerMinute: z.number().min(0).max(600_000).optional(),
  dataDir: z.string().min(1).optional(),
});

const generateBodySchema = z.object({
  count: z
    .number({ error: 'count must be a number' })
    .int({ message: 'count must be an integer' })
    .min(1, { message: 'count must be at least 1' })
    .max(MAX_GENERATE, { message: `count must be at most ${MAX_GENERATE}` }),
});
const modelBodySchema = z.object({
  model_version: idSchema('model_version'),
  degraded_share: degradedShareSchema,
});

const qaRowSchema = z.object({
  knowledge: z.string(),
  question: z.string().min(1),
  right_answer: z.string(),
  hallucinated_answer: z.string(),
});
export type QaRow = z.output<typeof qaRowSchema>;

/** The data directory: explicit, else env OPTIINFRA_DATA_DIR, else <repo>/data. */
export function resolveDataDir(explicit?: string): { dir: string; from: string } {
  if (explicit) return { dir: path.resolve(explicit), from: 'the dataDir option' };
  const env = process.env[DATA_DIR_ENV];
  if (env?.trim()) return { dir: path.resolve(env.trim()), from: `env ${DATA_DIR_ENV}` };
  // This file is <repo>/stack/sim/collector-simulator.ts; the data sets ship in <repo>/data.
  return { dir: fileURLToPath(new URL('../../data', import.meta.url)), from: 'the data/ folder of the repository' };
}

export function loadQaRows(dataDir?: string): QaRow[] {
  const { dir, from } = resolveDataDir(dataDir);
  const file = path.join(dir, HALUEVAL_QA_FILE);
  if (!existsSync(file)) {
    throw new Error(
      `HaluEval QA data not found: looked for ${file} (data dir from ${from}). ` +
        `Set ${DATA_DIR_ENV} to the directory that contains ${HALUEVAL_QA_FILE}.`,
    );
  }
  const rows: QaRow[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      let data: unknown;
      try {
        data = JSON.parse(line);
      } catch (e) {
        throw new Error(`${file}:${i + 1}: invalid JSON: ${(e as Error).message}`);
      }
      const r = qaRowSchema.safeParse(data);
      if (!r.success) throw new Error(`${file}:${i + 1}: ${formatZodError(r.error)}`);
      rows.push(r.data);
    });
  if (rows.length === 0) throw new Error(`${file} holds no rows`);
  return rows;
}

/** A uniform number in [0, 1) that depends only on (seed, index). */
export function uniformAt(seed: number, index: number): number {
  let h = Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(index | 0, 0x85ebca6b) ^ Math.floor(index / 2 ** 32);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  h ^= h >>> 16;
  return mulberry32(h)();
}

/** Whether the interaction at `index` is answered by the degraded path. */
export function isDegraded(seed: number, index: number, degradedShare: number): boolean {
  return uniformAt(seed, index) < degradedShare;
}

export interface SimulatedInteraction {
  id: string;
  deployment: string;
  model_version: string;
  timestamp: string;
  prompt: string;
  response: string;
  context: string;
  metadata: { simulated: true; degraded: boolean; source_row: number };
}

/** Pure: the interaction at `index` for a model with the given degraded share. */
export function buildInteraction(
  rows: readonly QaRow[],
  p: { deployment: string; modelVersion: string; degradedShare: number; seed: number; index: number; timestamp: string },
): SimulatedInteraction {
  const sourceRow = p.index % rows.length;
  const row = rows[sourceRow]!;
  const degraded = isDegraded(p.seed, p.index, p.degradedShare);
  return {
    id: `${p.deployment}-${String(p.index).padStart(INDEX_DIGITS, '0')}`,
    deployment: p.deployment,
    model_version: p.modelVersion,
    timestamp: p.timestamp,
    prompt: row.question,
    response: degraded ? row.hallucinated_answer : row.right_answer,
    context: row.knowledge,
    metadata: { simulated: true, degraded, source_row: sourceRow },
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function readJson<T>(req: http.IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const text = await readBody(req);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body must be JSON');
  }
  const r = schema.safeParse(data);
  if (!r.success) throw new HttpError(400, formatZodError(r.error));
  return r.data;
}

function parseNonNegInt(v: string, what: string): number {
  if (!/^\d{1,15}$/.test(v)) throw new HttpError(400, `${what} must be a non-negative integer (got '${v.slice(0, 40)}')`);
  return Number(v);
}

export async function startSimulator(o: SimulatorOptions): Promise<Simulator> {
  const opts = optionsSchema.safeParse(o);
  if (!opts.success) throw new Error(`invalid simulator options: ${formatZodError(opts.error)}`);
  const { deployment, seed = 1, port = 0, host = '127.0.0.1', ratePerMinute = 0 } = opts.data;
  const rows = loadQaRows(opts.data.dataDir);

  let modelVersion = opts.data.modelVersion;
  let degradedShare = opts.data.degradedShare;
  const log: unknown[] = [];
  let generated = 0;

  const generate = (count: number): number => {
    if (!Number.isInteger(count) || count < 0 || count > MAX_GENERATE) {
      throw new RangeError(`count must be an integer between 0 and ${MAX_GENERATE} (got ${count})`);
    }
    const timestamp = new Date().toISOString();
    for (let k = 0; k < count; k++) {
      log.push(buildInteraction(rows, { deployment, modelVersion, degradedShare, seed, index: generated, timestamp }));
      generated += 1;
    }
    return log.length;
  };

  const setModel = (mv: string, share: number): void => {
    const r = modelBodySchema.safeParse({ model_version: mv, degraded_share: share });
    if (!r.success) throw new Error(`invalid model: ${formatZodError(r.error)}`);
    modelVersion = r.data.model_version;
    degradedShare = r.data.degraded_share;
  };

  const health = () => ({
    deployment,
    count: log.length,
    generated,
    model_version: modelVersion,
    degraded_share: degradedShare,
  });

  const handle = async (req: http.IncomingMessage): Promise<{ status: number; body: unknown }> => {
    const u = new URL(req.url ?? '/', 'http://simulator');
    const route = `${req.method ?? 'GET'} ${u.pathname}`;
    switch (route) {
      case 'GET /interactions': {
        const c = u.searchParams.get('cursor');
        const start = c === null || c === '' ? 0 : parseNonNegInt(c, 'cursor');
        if (start > log.length) throw new HttpError(400, `cursor ${start} is beyond the log (${log.length} items)`);
        const l = u.searchParams.get('limit');
        const limit = l === null || l === '' ? DEFAULT_PAGE_LIMIT : parseNonNegInt(l, 'limit');
        if (limit < 1) throw new HttpError(400, 'limit must be at least 1');
        const end = Math.min(log.length, start + Math.min(limit, MAX_PAGE_LIMIT));
        return {
          status: 200,
          body: { items: log.slice(start, end), next_cursor: String(end), has_more: end < log.length },
        };
      }
      case 'GET /health':
        return { status: 200, body: health() };
      case 'POST /admin/generate': {
        const b = await readJson(req, generateBodySchema);
        return { status: 200, body: { generated: b.count, count: generate(b.count) } };
      }
      case 'POST /admin/model': {
        const b = await readJson(req, modelBodySchema);
        setModel(b.model_version, b.degraded_share);
        return { status: 200, body: health() };
      }
      case 'POST /admin/inject': {
        const text = await readBody(req);
        let data: unknown;
        try {
          data = JSON.parse(text);
        } catch {
          throw new HttpError(400, 'body must be JSON');
        }
        if (typeof data !== 'object' || data === null || Array.isArray(data) || !('raw' in data)) {
          throw new HttpError(400, 'body must be an object with a "raw" field');
        }
        log.push((data as { raw: unknown }).raw);
        return { status: 200, body: { count: log.length } };
      }
      default: {
        const known = ['/interactions', '/health', '/admin/generate', '/admin/model', '/admin/inject'];
        if (known.includes(u.pathname)) throw new HttpError(405, `method ${req.method} not allowed on ${u.pathname}`);
        throw new HttpError(404, `no route ${u.pathname}`);
      }
    }
  };

  const server = http.createServer((req, res) => {
    handle(req).then(
      ({ status, body }) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      },
      (e: unknown) => {
        const status = e instanceof HttpError ? e.status : 500;
        const message = e instanceof Error ? e.message : String(e);
        if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: message }));
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const hostForUrl = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  const url = `http://${hostForUrl}:${addr.port}/interactions`;

  let timer: NodeJS.Timeout | null = null;
  if (ratePerMinute > 0) {
    let owed = 0;
    timer = setInterval(() => {
      owed += ratePerMinute / 60;
      const n = Math.floor(owed);
      if (n > 0) {
        owed -= n;
        generate(Math.min(n, MAX_GENERATE));
      }
    }, 1000);
    timer.unref();
  }

  let closed: Promise<void> | null = null;
  return {
    url,
    generate,
    setModel,
    count: () => log.length,
    close: () => {
      if (closed) return closed;
      if (timer) clearInterval(timer);
      closed = new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
