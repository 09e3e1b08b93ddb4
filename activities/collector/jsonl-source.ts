/**
 * The JSONL source: a file, or a directory read as the sequence of its *.jsonl files in name
 * order. Its cursor is the file, byte offset and line of the next unread line; a final line
 * without a newline waits for the next fetch unless a later file exists. The protocol is
 * described in docs/record-format.md.
 */
import { open, readdir, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { MAX_RECORD_CHARS } from '../../domain/collector/record.js';
import { formatZodError } from '../../common/types.js';
import { PageBuilder } from './record-parsing.js';
import { checkLimit, clip, errorText, SourceError, type FetchResult, type InteractionSource } from './source-contract.js';

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
