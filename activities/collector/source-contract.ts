/**
 * What every interaction source provides: pages of validated records plus the items it had to
 * reject (with a position and a reason), and `SourceError` when the source itself cannot be read;
 * with the helpers the JSONL and HTTP sources share for page sizes and messages.
 */
import type { Interaction } from '../../domain/collector/record.js';

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

/** Bytes read from a source per page at most (a JSONL page stops at the first line boundary beyond it). */
export const MAX_PAGE_BYTES = 64 * 1024 * 1024;

const MAX_REASON_CHARS = 300;
export const clip = (s: string, n = MAX_REASON_CHARS) => (s.length > n ? `${s.slice(0, n)}...` : s);

export function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`limit must be a positive integer (got ${limit})`);
  }
}

export function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}
