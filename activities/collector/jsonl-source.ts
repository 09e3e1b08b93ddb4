/**
 * The JSONL source: a file, or a directory read as the sequence of its *.jsonl files in name
 * order. Its cursor is the file, byte offset and line of the next unread line; a final line
 * without a newline waits for the next fetch unless a later file exists. The protocol is
 * described in docs/record-format.md.
 */
import { createHash } from 'node:crypto';
import { constants, type Dirent } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { MAX_RECORD_CHARS } from '../../domain/collector/record.js';
import { formatZodError } from '../../common/types.js';
import { PageBuilder } from './record-parsing.js';
import { checkLimit, clip, errorText, MAX_PAGE_BYTES, SourceError, type FetchResult, type InteractionSource } from './source-contract.js';

/**
 * A JSONL line longer than this many bytes is rejected without being parsed. Generous enough for
 * any record within MAX_RECORD_CHARS even if every character is written as a \uXXXX escape.
 */
export const MAX_LINE_BYTES = MAX_RECORD_CHARS * 6 + 1_000_000;

interface JsonlCursor {
  v: 1;
  /** File name (not path) inside the directory; '' = before the first file. */
  file: string;
  /** Byte offset of the next unread line in `file`. */
  offset: number;
  /** 1-based number of that line. */
  line: number;
  /** Hash of the file's first bytes (up to HEAD_BYTES, before `offset`): tells a replaced file. */
  head?: string;
}

const jsonlCursorSchema = z.object({
  v: z.literal(1),
  file: z.string(),
  offset: z.number().int().min(0),
  line: z.number().int().min(1),
  head: z.string().optional(),
});

/** Bytes at the start of a file whose hash the cursor keeps. */
const HEAD_BYTES = 4096;

/** Hash of the first min(upTo, HEAD_BYTES) bytes of `fh`. */
async function headHash(fh: FileHandle, upTo: number): Promise<string> {
  const n = Math.min(upTo, HEAD_BYTES);
  const buf = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    const { bytesRead } = await fh.read(buf, got, n - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return createHash('sha256').update(buf.subarray(0, got)).digest('hex').slice(0, 16);
}

/** Open for reading without blocking on a FIFO (whose open would wait for a writer). */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

function describeNonFile(st: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
}): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

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
 * began, so concurrent appends wait for the next fetch), in batches (one per chunk read). A final
 * line without a newline is yielded only when `takeUnterminatedTail` is set.
 */
async function* readLines(fh: FileHandle, start: number, size: number, takeUnterminatedTail: boolean): AsyncGenerator<RawLine[]> {
  let pos = start; // next byte to read from the file
  let lineStart = start; // file offset of the current (incomplete) line
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let skipping = false; // the current line exceeded MAX_LINE_BYTES: count it, do not keep it
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  const text = () => (skipping ? null : pendingBytes === 0 ? '' : Buffer.concat(pending, pendingBytes).toString('utf8'));

  while (pos < size) {
    const { bytesRead } = await fh.read(chunk, 0, Math.min(CHUNK_BYTES, size - pos), pos);
    if (bytesRead === 0) break; // the file shrank while we read it
    const batch: RawLine[] = [];
    let from = 0;
    while (from < bytesRead) {
      const nl = chunk.indexOf(0x0a, from);
      const stop = nl === -1 || nl >= bytesRead ? bytesRead : nl;
      if (stop > from) {
        if (!skipping) {
          pending.push(Buffer.from(chunk.subarray(from, stop)));
          pendingBytes += stop - from;
          if (pendingBytes > MAX_LINE_BYTES) {
            skipping = true;
            pending = [];
          }
        } else {
          pendingBytes += stop - from;
        }
      }
      if (stop === bytesRead) break;
      // a complete line
      const end = pos + nl + 1;
      batch.push({ text: text(), bytes: pendingBytes, end });
      lineStart = end;
      pending = [];
      pendingBytes = 0;
      skipping = false;
      from = nl + 1;
    }
    pos += bytesRead;
    if (batch.length) yield batch;
  }
  if (pendingBytes > 0 && takeUnterminatedTail && lineStart < pos) {
    yield [{ text: text(), bytes: pendingBytes, end: pos }];
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
    const names: string[] = [];
    for (const d of entries) {
      if (!d.name.endsWith('.jsonl')) continue;
      if (d.isFile()) names.push(d.name);
      else if (d.isSymbolicLink()) {
        // A link to a regular file is read like one; links to anything else (or nowhere) are ignored.
        const target = await stat(path.join(this.dir, d.name)).catch(() => null);
        if (target?.isFile()) names.push(d.name);
      }
    }
    return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  async fetch(cursor: string | null, limit: number): Promise<FetchResult> {
    checkLimit(limit);
    const state = this.parseCursor(cursor);
    const files = (await this.listFiles()).filter((f) => f >= state.file);
    const page = new PageBuilder(this.deployment, this.window);
    let consumed = 0;
    /** Bytes of lines (records or blank) passed by this fetch: a page stops beyond MAX_PAGE_BYTES. */
    let scanned = 0;
    let hasMore = false;

    for (let fi = 0; fi < files.length; fi++) {
      const file = files[fi]!;
      const isLast = fi === files.length - 1;
      let startOffset = file === state.file ? state.offset : 0;
      let line = file === state.file ? state.line : 1;
      const full = path.join(this.dir, file);
      let fh: FileHandle;
      try {
        fh = await open(full, OPEN_FLAGS);
      } catch (e) {
        // A file of a directory that vanished between listing and opening: skip it.
        if (this.singleFile === null && (e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new SourceError(`JSONL source ${full}: cannot open: ${errorText(e)}`, { cause: e });
      }
      try {
        let size: number;
        try {
          const st = await fh.stat();
          if (!st.isFile()) {
            // Replaced by something that is not a file since it was listed: not read.
            if (this.singleFile === null) continue;
            throw new SourceError(`JSONL source ${full}: is ${describeNonFile(st)}, not a JSONL file`);
          }
          size = st.size;
        } catch (e) {
          if (e instanceof SourceError) throw e;
          throw new SourceError(`JSONL source ${full}: cannot stat: ${errorText(e)}`, { cause: e });
        }
        if (startOffset > 0) {
          // The file the cursor points into was truncated or replaced (log rotation, copytruncate,
          // rewritten): it is read again from its start. Records read before are not stored twice.
          const replaced =
            size < startOffset
              ? `it has ${size} bytes`
              : state.head !== undefined && (await headHash(fh, startOffset)) !== state.head
                ? 'its first bytes changed'
                : null;
          if (replaced !== null) {
            page.addBad({
              position: file,
              reason: `file truncated or replaced since the last read (cursor at line ${line}, byte ${startOffset}; ${replaced}): read again from its start`,
            });
            startOffset = 0;
            line = 1;
          }
        }
        let offset = startOffset;
        let stoppedAtLimit = false;
        try {
          read: for await (const batch of readLines(fh, startOffset, size, !isLast)) {
            for (const l of batch) {
              let text = l.text;
              if (text !== null && line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
              if (text?.endsWith('\r')) text = text.slice(0, -1);
              // blank lines are not records: they are stepped over, within the page's byte budget
              const blank = text !== null && text.trim() === '';
              if ((!blank && consumed >= limit) || scanned >= MAX_PAGE_BYTES) {
                stoppedAtLimit = true;
                break read;
              }
              scanned += l.end - offset;
              const position = `${file}:${line}`;
              offset = l.end;
              line += 1;
              if (blank) continue;
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
          }
        } catch (e) {
          if (e instanceof SourceError) throw e;
          throw new SourceError(`JSONL source ${full}: read failed: ${errorText(e)}`, { cause: e });
        }
        state.file = file;
        state.offset = offset;
        state.line = line;
        delete state.head;
        if (offset > 0) {
          try {
            state.head = await headHash(fh, offset);
          } catch (e) {
            throw new SourceError(`JSONL source ${full}: read failed: ${errorText(e)}`, { cause: e });
          }
        }
        if (stoppedAtLimit) {
          hasMore = true;
          break;
        }
        if (!isLast) {
          // This file is finished (a later one exists): continue with the next one.
          state.file = files[fi + 1]!;
          state.offset = 0;
          state.line = 1;
          delete state.head;
        }
      } finally {
        await fh.close().catch(() => undefined);
      }
    }

    return { records: page.records, bad: page.bad, nextCursor: encodeJsonlCursor(state), hasMore };
  }
}

/** A JSONL path that is a directory is read as a sequence of *.jsonl files. */
export function createJsonlSource(p: string, deployment: string, window: { oldest: number; newest: number }): InteractionSource {
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
