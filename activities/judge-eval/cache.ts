/**
 * The benchmark's judgement cache: what a judge said of an input, appended as one JSON line per
 * judgement to a file under the cache directory, so an interrupted or repeated run judges only
 * what is missing.
 *
 * A judgement is found by its key: a SHA-256 of the judge (name, endpoint and model), the prompt
 * version, the mode, the reasoning effort, the check (separate mode) and the judged texts. A new
 * prompt version, model or mode therefore never reads an old judgement. Only judgements whose
 * every check succeeded are written: failed calls are tried again on the next run. Lines that do
 * not parse (a run killed while writing) or do not validate are ignored and counted.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { checkResultSchemas, CHECKS, type AnyCheckResult, type Check, type JudgeInput } from '../../common/types.js';

/** Bump when the key or the line format changes. */
export const CACHE_FORMAT = 'judge-eval-cache-v1';

export interface CachedOutcome {
  check: Check;
  status: 'ok' | 'abstained';
  result?: AnyCheckResult;
  reason?: string;
}

export interface CachedUsage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  calls: number;
}

export interface CacheEntry {
  key: string;
  outcomes: CachedOutcome[];
  usage: CachedUsage;
  /** When it was judged (ISO). */
  at: string;
}

/** What identifies a judge's answer besides the texts. */
export interface JudgementIdentity {
  /** e.g. 'groq:openai/gpt-oss-20b'. */
  judge: string;
  /** Where the requests went (no credentials). */
  endpoint: string;
  model: string;
  promptVersion: string;
  mode: 'combined' | 'separate';
  reasoningEffort: string;
  /** Separate mode: the one check judged; combined mode: undefined (all checks). */
  check?: Check;
}

export function judgementKey(id: JudgementIdentity, input: JudgeInput): string {
  const parts = [
    CACHE_FORMAT,
    id.judge,
    id.endpoint,
    id.model,
    id.promptVersion,
    id.mode,
    id.reasoningEffort,
    id.check ?? 'all',
    input.prompt,
    input.response,
    input.context ?? null,
  ];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** A file name for a judge: its name with anything but letters, digits, '.', '-' and '_' replaced. */
export function cacheFileName(judge: string): string {
  return `${judge.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 120)}.jsonl`;
}

function usageOf(u: unknown): CachedUsage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const o = u as Record<string, unknown>;
  const n = (k: string) => (typeof o[k] === 'number' && Number.isFinite(o[k]) && (o[k] as number) >= 0 ? (o[k] as number) : undefined);
  const v = {
    promptTokens: n('promptTokens'),
    completionTokens: n('completionTokens'),
    cachedTokens: n('cachedTokens'),
    reasoningTokens: n('reasoningTokens'),
    calls: n('calls'),
  };
  return Object.values(v).every((x) => x !== undefined) ? (v as CachedUsage) : undefined;
}

/** A cache line, validated; undefined when it is not one this version wrote. */
export function parseCacheLine(line: string): CacheEntry | undefined {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!o || typeof o !== 'object') return undefined;
  const r = o as Record<string, unknown>;
  if (r.v !== CACHE_FORMAT || typeof r.key !== 'string' || !/^[0-9a-f]{64}$/.test(r.key) || !Array.isArray(r.outcomes)) return undefined;
  const usage = usageOf(r.usage);
  if (!usage) return undefined;
  const outcomes: CachedOutcome[] = [];
  for (const x of r.outcomes as unknown[]) {
    if (!x || typeof x !== 'object') return undefined;
    const c = x as Record<string, unknown>;
    if (!(CHECKS as readonly unknown[]).includes(c.check)) return undefined;
    const check = c.check as Check;
    if (c.status === 'abstained' && typeof c.reason === 'string') outcomes.push({ check, status: 'abstained', reason: c.reason });
    else if (c.status === 'ok') {
      const parsed = checkResultSchemas[check].safeParse(c.result);
      if (!parsed.success) return undefined;
      outcomes.push({ check, status: 'ok', result: parsed.data });
    } else return undefined;
  }
  if (!outcomes.length) return undefined;
  return { key: r.key, outcomes, usage, at: typeof r.at === 'string' ? r.at : '' };
}

/** A judgement could not be appended to the cache file (unwritable, a full disk, ...). */
export class CacheWriteError extends Error {
  override name = 'CacheWriteError';
}

export class JudgementCache {
  readonly file: string;
  private readonly entries = new Map<string, CacheEntry>();
  /** Lines of the file that were not usable. */
  readonly ignoredLines: number;

  private constructor(file: string, ignored: number) {
    this.file = file;
    this.ignoredLines = ignored;
  }

  /**
   * Opens (and creates the directory of) the cache file of `judge` under `dir`, reading what it
   * holds. Throws when the file is not a regular file (a directory, a FIFO that would block the
   * read) or cannot be appended to, before any judgement is paid for.
   */
  static open(dir: string, judge: string): JudgementCache {
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, cacheFileName(judge));
    let text = '';
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new Error(`${file} is not a regular file`);
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
    }
    appendFileSync(file, '');
    let ignored = 0;
    const entries: CacheEntry[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const entry = parseCacheLine(line);
      if (entry) entries.push(entry);
      else ignored++;
    }
    const cache = new JudgementCache(file, ignored);
    for (const e of entries) cache.entries.set(e.key, e);
    // A line cut short by a killed run has no newline: start the next one on a line of its own.
    if (text && !text.endsWith('\n')) appendFileSync(file, '\n');
    return cache;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): CacheEntry | undefined {
    return this.entries.get(key);
  }

  /** Whether the file can still be appended to (it was replaced, its rights changed); CacheWriteError when not. */
  check(): void {
    try {
      appendFileSync(this.file, '');
    } catch (e) {
      throw new CacheWriteError(`cannot write the judgement cache ${this.file}: ${(e as Error).message}`);
    }
  }

  /** Records a judgement (one line, appended and flushed before this returns); CacheWriteError when it cannot. */
  put(entry: CacheEntry): void {
    try {
      appendFileSync(this.file, `${JSON.stringify({ v: CACHE_FORMAT, ...entry })}\n`);
    } catch (e) {
      throw new CacheWriteError(`cannot write the judgement cache ${this.file}: ${(e as Error).message}`);
    }
    this.entries.set(entry.key, entry);
  }
}
