/**
 * Interaction sources behind one interface: JSONL files (a file or a directory of files) and an
 * HTTP endpoint. A source returns pages of validated records plus every record it had to reject,
 * with a position and a reason; it throws `SourceError` only when the source itself cannot be
 * read. The record format and both protocols are described in docs/record-format.md.
 */
import { open, readdir, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import {
  MAX_METADATA_CHARS,
  MAX_METADATA_DEPTH,
  MAX_RECORD_CHARS,
  interactionSchema,
  nestsDeeperThan,
  timestampWindow,
  wellFormed,
  type Interaction,
} from '../../domain/collector/record.js';
import { formatZodError, httpUrlSchema } from '../../common/types.js';

export const sourceConfigSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('jsonl'), path: z.string().min(1) }),
  z.object({
    type: z.literal('http'),
    url: httpUrlSchema('source url'),
    headers: z.record(z.string(), z.string()).optional(),
  }),
]);
export type SourceConfig = z.output<typeof sourceConfigSchema>;

/** A record that was read but rejected. position: "file.jsonl:17" or "page <cursor> item 3". */
export interface BadRecord {
  position: string;
  reason: string;
  id?: string;
}

export interface FetchResult {
  records: Interaction[];
  /** Items read but refused, and (one entry) items a source sent beyond the page size. */
  bad: BadRecord[];
  /** Items a source sent beyond the page size (not read; one entry in `bad` says so). */
  ignored?: number;
  /** Opaque; pass it to the next `fetch`. Equal to the input cursor (normalised) when nothing was consumed. */
  nextCursor: string;
  /** True when more items are available right now. */
  hasMore: boolean;
}

export interface InteractionSource {
  readonly kind: string;
  /**
   * Read up to `limit` items (valid or not) after `cursor` (`null` = from the very beginning).
   * Never throws for bad records; throws `SourceError` when the source is unreachable or unreadable.
   */
  fetch(cursor: string | null, limit: number): Promise<FetchResult>;
}

/** The source is unreachable or unreadable. Messages name the path/URL, never header values. */
export class SourceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SourceError';
  }
}

export interface SourceOptions {
  /** HTTP request timeout in milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Accepted record timestamps, epoch ms (default: timestampWindow(now)). */
  window?: { oldest: number; newest: number };
}

/** An HTTP page body larger than this is refused without being parsed. */
export const MAX_PAGE_BYTES = 64 * 1024 * 1024;

export const HTTP_TIMEOUT_MS = 10_000;

/**
 * A JSONL line longer than this many bytes is rejected without being parsed. Generous enough for
 * any record within MAX_RECORD_CHARS even if every character is written as a \uXXXX escape.
 */
export const MAX_LINE_BYTES = MAX_RECORD_CHARS * 6 + 1_000_000;

const MAX_REASON_CHARS = 300;
const clip = (s: string, n = MAX_REASON_CHARS) => (s.length > n ? `${s.slice(0, n)}...` : s);

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function textLength(v: unknown): number {
  return typeof v === 'string' ? v.length : 0;
}

/** Validate one raw item. Pure; never throws. */
export function parseRecord(
  raw: unknown,
  deployment: string,
  position: string,
  window: { oldest: number; newest: number } = timestampWindow(Date.now()),
): { ok: true; record: Interaction } | { ok: false; bad: BadRecord } {
  const fail = (reason: string, id?: string) => {
    const bad: BadRecord = { position, reason };
    if (id !== undefined) bad.id = id;
    return { ok: false as const, bad };
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return fail(`not a JSON object (got ${describeType(raw)})`);
  }
  const obj = raw as Record<string, unknown>;
  const id = typeof obj.id === 'string' && obj.id.length > 0 ? clip(obj.id, 200) : undefined;
  const total = textLength(obj.prompt) + textLength(obj.response) + textLength(obj.context);
  if (total > MAX_RECORD_CHARS) {
    return fail(`oversized: ${total} chars > ${MAX_RECORD_CHARS} budget`, id);
  }
  if (nestsDeeperThan(obj.metadata, MAX_METADATA_DEPTH)) {
    return fail(`metadata nests deeper than ${MAX_METADATA_DEPTH} levels`, id);
  }
  const parsed = interactionSchema.safeParse(raw);
  if (!parsed.success) return fail(clip(formatZodError(parsed.error)), id);
  const r = parsed.data;
  if (r.deployment !== deployment) {
    return fail(`deployment '${r.deployment}' does not match expected '${deployment}'`, id);
  }
  const ts = Date.parse(r.timestamp);
  if (ts < window.oldest || ts > window.newest) {
    return fail(
      `timestamp ${r.timestamp} is outside the accepted window ${new Date(window.oldest).toISOString()} .. ${new Date(window.newest).toISOString()} ` +
        '(OPTIINFRA_MAX_RECORD_AGE_DAYS, OPTIINFRA_MAX_CLOCK_AHEAD_MINUTES)',
      id,
    );
  }
  let metadata: string;
  try {
    metadata = JSON.stringify(r.metadata ?? {});
  } catch (e) {
    return fail(`metadata cannot be serialised: ${errorText(e)}`, id);
  }
  if (metadata.length > MAX_METADATA_CHARS) return fail(`metadata of ${metadata.length} chars > ${MAX_METADATA_CHARS}`, id);
  // Stores refuse lone UTF-16 surrogates: texts keep everything else, with U+FFFD in their place.
  return {
    ok: true,
    record: {
      ...r,
      prompt: wellFormed(r.prompt),
      response: wellFormed(r.response),
      ...(r.context === undefined ? {} : { context: wellFormed(r.context) }),
      ...(r.metadata === undefined ? {} : { metadata: JSON.parse(wellFormed(metadata)) as Record<string, unknown> }),
    },
  };
}

/** Collects one page: validates items, keeps the first of duplicate ids and reports the rest. */
class PageBuilder {
  readonly records: Interaction[] = [];
  readonly bad: BadRecord[] = [];
  private readonly firstSeen = new Map<string, string>();

  constructor(
    private readonly deployment: string,
    private readonly window: { oldest: number; newest: number },
  ) {}

  add(raw: unknown, position: string): void {
    const r = parseRecord(raw, this.deployment, position, this.window);
    if (!r.ok) {
      this.bad.push(r.bad);
      return;
    }
    const first = this.firstSeen.get(r.record.id);
    if (first !== undefined) {
      this.bad.push({ position, reason: `duplicate id (first seen at ${first})`, id: r.record.id });
      return;
    }
    this.firstSeen.set(r.record.id, position);
    this.records.push(r.record);
  }

  addBad(b: BadRecord): void {
    this.bad.push(b);
  }
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`limit must be a positive integer (got ${limit})`);
  }
}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

// ---------------------------------------------------------------------------------------------
// JSONL

interface JsonlCursor {
  v: 1;
  /** File name (not path) inside the directory; '' = before the first file. */
  file: string;
  /** Byte offset of the next unread line in `file`. */
  offset: number;
  /** 1-based number of that line. */
  line: number;
}

const jsonlCursorSchema = z.object({
  v: z.literal(1),
  file: z.string(),
  offset: z.number().int().min(0),
  line: z.number().int().min(1),
});

const encodeJsonlCursor = (c: JsonlCursor) => JSON.stringify(c);

interface RawLine {
  /** Decoded text, or null when the line was too long to be read. */
  text: string | null;
  /** Length of the line in bytes, without the newline. */
  bytes: number;
  /** Byte offset just after the line (and its newline). */
  end: number;
}

const CHUNK_BYTES = 64 * 1024;

/**
 * Lines of `fh` starting at byte `start`, up to `size` bytes (the size observed when the read
 * began, so concurrent appends wait for the next fetch). A final line without a newline is
 * yielded only when `takeUnterminatedTail` is set.
 */
async function* readLines(fh: FileHandle, start: number, size: number, takeUnterminatedTail: boolean): AsyncGenerator<RawLine> {
  let pos = start; // next byte to read from the file
  let lineStart = start; // file offset of the current (incomplete) line
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let skipping = false; // the current line exceeded MAX_LINE_BYTES: count it, do not keep it
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);

  while (pos < size) {
    const { bytesRead } = await fh.read(chunk, 0, Math.min(CHUNK_BYTES, size - pos), pos);
    if (bytesRead === 0) break; // the file shrank while we read it
    let from = 0;
    while (from < bytesRead) {
      const nl = chunk.indexOf(0x0a, from);
      const stop = nl === -1 || nl >= bytesRead ? bytesRead : nl;
      const piece = chunk.subarray(from, stop);
      if (!skipping) {
        pending.push(Buffer.from(piece));
        pendingBytes += piece.length;
        if (pendingBytes > MAX_LINE_BYTES) {
          skipping = true;
          pending = [];
        }
      } else {
        pendingBytes += piece.length;
      }
      if (stop === bytesRead) break;
      // a complete line
      const end = pos + nl + 1;
      yield {
        text: skipping ? null : Buffer.concat(pending, pendingBytes).toString('utf8'),
        bytes: pendingBytes,
        end,
      };
      lineStart = end;
      pending = [];
      pendingBytes = 0;
      skipping = false;
      from = nl + 1;
    }
    pos += bytesRead;
  }
  if (pendingBytes > 0 && takeUnterminatedTail && lineStart < pos) {
    yield {
      text: skipping ? null : Buffer.concat(pending, pendingBytes).toString('utf8'),
      bytes: pendingBytes,
      end: pos,
    };
  }
}

class JsonlSource implements InteractionSource {
  readonly kind = 'jsonl';
  private readonly dir: string;
  /** Set when the configured path is a single file. */
  private readonly singleFile: string | null;

  constructor(
    private readonly configuredPath: string,
    isDirectory: boolean,
    private readonly deployment: string,
    private readonly window: { oldest: number; newest: number },
  ) {
    const resolved = path.resolve(configuredPath);
    this.dir = isDirectory ? resolved : path.dirname(resolved);
    this.singleFile = isDirectory ? null : path.basename(resolved);
  }

  private parseCursor(cursor: string | null): JsonlCursor {
    if (cursor === null) return { v: 1, file: '', offset: 0, line: 1 };
    let data: unknown;
    try {
      data = JSON.parse(cursor);
    } catch {
      throw new SourceError(`JSONL source ${this.configuredPath}: cursor is not a JSONL cursor: ${clip(cursor, 120)}`);
    }
    const parsed = jsonlCursorSchema.safeParse(data);
    if (!parsed.success) {
      throw new SourceError(`JSONL source ${this.configuredPath}: cursor is not a JSONL cursor (${formatZodError(parsed.error)})`);
    }
    const c = parsed.data;
    if (this.singleFile !== null && c.file !== '' && c.file !== this.singleFile) {
      throw new SourceError(`JSONL source ${this.configuredPath}: cursor belongs to file '${c.file}', not '${this.singleFile}'`);
    }
    return c;
  }

  private async listFiles(): Promise<string[]> {
    if (this.singleFile !== null) return [this.singleFile];
    let entries: Dirent[];
    try {
      entries = await readdir(this.dir, { withFileTypes: true });
    } catch (e) {
      throw new SourceError(`JSONL source ${this.configuredPath}: cannot list directory: ${errorText(e)}`, { cause: e });
    }
    return entries
      .filter((d) => d.isFile() && d.name.endsWith('.jsonl'))
      .map((d) => d.name)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  async fetch(cursor: string | null, limit: number): Promise<FetchResult> {
    checkLimit(limit);
    const state = this.parseCursor(cursor);
    const files = (await this.listFiles()).filter((f) => f >= state.file);
    const page = new PageBuilder(this.deployment, this.window);
    let consumed = 0;
    let hasMore = false;

    for (let fi = 0; fi < files.length; fi++) {
      const file = files[fi]!;
      const isLast = fi === files.length - 1;
      const startOffset = file === state.file ? state.offset : 0;
      let line = file === state.file ? state.line : 1;
      const full = path.join(this.dir, file);
      let fh: FileHandle;
      try {
        fh = await open(full, 'r');
      } catch (e) {
        // A file of a directory that vanished between listing and opening: skip it.
        if (this.singleFile === null && (e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new SourceError(`JSONL source ${full}: cannot open: ${errorText(e)}`, { cause: e });
      }
      try {
        let size: number;
        try {
          size = (await fh.stat()).size;
        } catch (e) {
          throw new SourceError(`JSONL source ${full}: cannot stat: ${errorText(e)}`, { cause: e });
        }
        if (size < startOffset) {
          throw new SourceError(
            `JSONL source ${full}: file is ${size} bytes but the cursor is at byte ${startOffset}; ` +
              'it was truncated or replaced (reset the cursor to re-read it)',
          );
        }
        let offset = startOffset;
        let stoppedAtLimit = false;
        try {
          for await (const l of readLines(fh, startOffset, size, !isLast)) {
            let text = l.text;
            if (text !== null && line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
            if (text?.endsWith('\r')) text = text.slice(0, -1);
            if (text !== null && text.trim() === '') {
              // blank lines are not records: step over them
              offset = l.end;
              line += 1;
              continue;
            }
            if (consumed >= limit) {
              stoppedAtLimit = true;
              break;
            }
            const position = `${file}:${line}`;
            offset = l.end;
            line += 1;
            consumed += 1;
            if (text === null) {
              page.addBad({ position, reason: `oversized: line of ${l.bytes} bytes > ${MAX_LINE_BYTES} byte limit` });
              continue;
            }
            let raw: unknown;
            try {
              raw = JSON.parse(text);
            } catch (e) {
              page.addBad({ position, reason: clip(`invalid JSON: ${errorText(e)}`) });
              continue;
            }
            page.add(raw, position);
          }
        } catch (e) {
          if (e instanceof SourceError) throw e;
          throw new SourceError(`JSONL source ${full}: read failed: ${errorText(e)}`, { cause: e });
        }
        state.file = file;
        state.offset = offset;
        state.line = line;
        if (stoppedAtLimit) {
          hasMore = true;
          break;
        }
        if (!isLast) {
          // This file is finished (a later one exists): continue with the next one.
          state.file = files[fi + 1]!;
          state.offset = 0;
          state.line = 1;
        }
      } finally {
        await fh.close().catch(() => undefined);
      }
    }

    return { records: page.records, bad: page.bad, nextCursor: encodeJsonlCursor(state), hasMore };
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/** The response body as text, refused when longer than `max` bytes. */
async function readCapped(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel();
    throw new SourceError(`the page is ${declared} bytes, more than the ${max}-byte limit: ask for fewer items (--page-size)`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body ?? []) {
    total += chunk.length;
    if (total > max) throw new SourceError(`the page is more than the ${max}-byte limit: ask for fewer items (--page-size)`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const httpPageSchema = z.object({
  items: z.array(z.unknown()),
  next_cursor: z.string(),
  has_more: z.boolean(),
});

/** The URL without credentials or query string, for messages. */
function displayUrl(u: URL): string {
  return `${u.origin}${u.pathname}`;
}

class HttpSource implements InteractionSource {
  readonly kind = 'http';
  private readonly base: URL;

  constructor(
    url: string,
    private readonly headers: Record<string, string>,
    private readonly deployment: string,
    private readonly timeoutMs: number,
    private readonly window: { oldest: number; newest: number },
  ) {
    this.base = new URL(url);
  }

  async fetch(cursor: string | null, limit: number): Promise<FetchResult> {
    checkLimit(limit);
    const u = new URL(this.base);
    // Credentials in the URL become Basic auth (fetch refuses them in the URL); they never appear in a message.
    const auth: Record<string, string> =
      u.username || u.password
        ? {
            authorization: `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`,
          }
        : {};
    u.username = '';
    u.password = '';
    if (cursor !== null) u.searchParams.set('cursor', cursor);
    u.searchParams.set('limit', String(limit));
    const where = `GET ${displayUrl(this.base)}`;
    let res: Response;
    let body: string;
    try {
      res = await fetch(u, {
        method: 'GET',
        headers: { accept: 'application/json', ...auth, ...this.headers },
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'follow',
      });
      body = await readCapped(res, MAX_PAGE_BYTES);
    } catch (e) {
      const name = (e as Error | undefined)?.name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        throw new SourceError(`${where} timed out after ${this.timeoutMs / 1000} s`, { cause: e });
      }
      const cause = (e as { cause?: unknown } | undefined)?.cause;
      const detail = cause !== undefined ? errorText(cause) : errorText(e);
      throw new SourceError(`${where} failed: ${detail}`, { cause: e });
    }
    if (!res.ok) {
      throw new SourceError(`${where} answered HTTP ${res.status}: ${clip(body.trim(), 200) || res.statusText}`);
    }
    let data: unknown;
    try {
      data = JSON.parse(body);
    } catch {
      throw new SourceError(`${where} did not answer JSON (body starts: ${JSON.stringify(body.slice(0, 80))})`);
    }
    const parsed = httpPageSchema.safeParse(data);
    if (!parsed.success) {
      throw new SourceError(
        `${where} answered an unexpected shape (want {items: [...], next_cursor: string, has_more: boolean}): ` +
          clip(formatZodError(parsed.error)),
      );
    }
    const { items, next_cursor, has_more } = parsed.data;
    if (has_more && items.length === 0 && next_cursor === (cursor ?? '')) {
      throw new SourceError(`${where} reported has_more without items or a new cursor (would loop forever)`);
    }
    const page = new PageBuilder(this.deployment, this.window);
    const label = cursor === null ? 'start' : clip(cursor, 80);
    // A source that ignores the page size: only `limit` items are read; the rest are reported.
    for (const [i, raw] of items.slice(0, limit).entries()) page.add(raw, `page ${label} item ${i}`);
    if (items.length > limit) {
      page.addBad({
        position: `page ${label} items ${limit}..${items.length - 1}`,
        reason: `the source returned ${items.length} items for limit=${limit}: the ${items.length - limit} beyond the limit were not read (fix the source to honour ?limit=)`,
      });
    }
    return { records: page.records, bad: page.bad, nextCursor: next_cursor, hasMore: has_more, ignored: Math.max(0, items.length - limit) };
  }
}

// ---------------------------------------------------------------------------------------------

/** A JSONL path that is a directory is read as a sequence of *.jsonl files. */
function createJsonlSource(p: string, deployment: string, window: { oldest: number; newest: number }): InteractionSource {
  // Decide file vs directory lazily on the first fetch so a missing path is a SourceError.
  let inner: JsonlSource | null = null;
  return {
    kind: 'jsonl',
    async fetch(cursor, limit) {
      if (inner === null) {
        let isDir: boolean;
        try {
          isDir = (await stat(p)).isDirectory();
        } catch (e) {
          throw new SourceError(`JSONL source ${p}: cannot read: ${errorText(e)}`, { cause: e });
        }
        inner = new JsonlSource(p, isDir, deployment, window);
      }
      return inner.fetch(cursor, limit);
    },
  };
}

export function createSource(cfg: SourceConfig, deployment: string, opts: SourceOptions = {}): InteractionSource {
  const parsed = sourceConfigSchema.safeParse(cfg);
  if (!parsed.success) {
    // Never echo the config itself: headers may hold tokens.
    throw new SourceError(`invalid source config: ${formatZodError(parsed.error)}`);
  }
  const c = parsed.data;
  const window = opts.window ?? timestampWindow(Date.now());
  switch (c.type) {
    case 'jsonl':
      return createJsonlSource(c.path, deployment, window);
    case 'http':
      return new HttpSource(c.url, c.headers ?? {}, deployment, opts.timeoutMs ?? HTTP_TIMEOUT_MS, window);
  }
}
