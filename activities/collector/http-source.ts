/**
 * The HTTP source: `GET <url>?cursor=<cursor>&limit=<n>` answering
 * `{items: [...], next_cursor: string, has_more: boolean}`; credentials in the URL are sent as
 * Basic auth, and messages name the URL without credentials, query string or header values. The
 * protocol is described in docs/record-format.md.
 */
import { z } from 'zod';
import { formatZodError } from '../../common/types.js';
import { printable } from '../../domain/collector/record.js';
import { PageBuilder } from './record-parsing.js';
import { checkLimit, clip, errorText, MAX_PAGE_BYTES, SourceError, type FetchResult, type InteractionSource } from './source-contract.js';
import { urlAddress } from '../../common/secrets.js';

export { MAX_PAGE_BYTES };

export const HTTP_TIMEOUT_MS = 10_000;

/**
 * A page body holding more JSON values than this is refused before it is parsed: a body of tiny
 * values (`[{},{},...]`) within MAX_PAGE_BYTES would take gigabytes of memory once parsed.
 */
export const MAX_PAGE_VALUES = 2_000_000;

/** A `next_cursor` longer than this is refused: it is stored, sent back in the URL and carried in workflow history. */
export const MAX_CURSOR_CHARS = 4096;

/** Redirects followed per request (to the same host only). */
const MAX_REDIRECTS = 5;

/** An upper bound of the JSON values in `body`: objects, arrays and array or object members after a comma. */
function countJsonValues(body: Uint8Array, max: number): number {
  let n = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const b = body[i]!;
    if (inString) {
      if (b === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x2c || b === 0x7b || b === 0x5b) {
      if (++n > max) return n;
    }
  }
  return n;
}

/** The response body, refused when longer than `max` bytes. */
async function readCapped(res: Response, max: number): Promise<Uint8Array> {
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
  return Buffer.concat(chunks, total);
}

/** UTF-8 text of a body; a byte order mark is dropped, invalid bytes become U+FFFD. */
const utf8 = (bytes: Uint8Array) => new TextDecoder('utf-8').decode(bytes);

const httpPageSchema = z.object({
  items: z.array(z.unknown()),
  next_cursor: z.string(),
  has_more: z.boolean(),
});

/** The URL without credentials or query string, for messages. */
function displayUrl(u: URL): string {
  return urlAddress(u) ?? '(URL)';
}

export class HttpSource implements InteractionSource {
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
    let bytes: Uint8Array;
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      res = await this.request(u, auth, signal, where);
      bytes = await readCapped(res, MAX_PAGE_BYTES);
    } catch (e) {
      if (e instanceof SourceError) throw e;
      const name = (e as Error | undefined)?.name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        throw new SourceError(`${where} timed out after ${this.timeoutMs / 1000} s`, { cause: e });
      }
      const cause = (e as { cause?: unknown } | undefined)?.cause;
      const detail = cause !== undefined ? errorText(cause) : errorText(e);
      throw new SourceError(`${where} failed: ${detail}`, { cause: e });
    }
    if (!res.ok) {
      throw new SourceError(`${where} answered HTTP ${res.status}: ${clip(utf8(bytes).trim(), 200) || res.statusText}`);
    }
    if (countJsonValues(bytes, MAX_PAGE_VALUES) > MAX_PAGE_VALUES) {
      throw new SourceError(
        `${where} answered a page of more than ${MAX_PAGE_VALUES} JSON values (${bytes.length} bytes), refused unparsed: ask for fewer items (--page-size)`,
      );
    }
    const body = utf8(bytes);
    let data: unknown;
    try {
      data = JSON.parse(body);
    } catch {
      const what = body.length ? `body starts: ${JSON.stringify(body.slice(0, 80))}` : 'empty body';
      throw new SourceError(`${where} did not answer JSON (HTTP ${res.status}, ${what})`);
    }
    const parsed = httpPageSchema.safeParse(data);
    if (!parsed.success) {
      throw new SourceError(
        `${where} answered an unexpected shape (want {items: [...], next_cursor: string, has_more: boolean}): ` +
          clip(formatZodError(parsed.error)),
      );
    }
    const { items, next_cursor, has_more } = parsed.data;
    if (next_cursor.length > MAX_CURSOR_CHARS) {
      throw new SourceError(
        `${where} answered a next_cursor of ${next_cursor.length} characters, more than the ${MAX_CURSOR_CHARS} allowed`,
      );
    }
    if (printable(next_cursor) !== next_cursor) {
      throw new SourceError(
        `${where} answered a next_cursor with control characters or invalid UTF-16 (${JSON.stringify(clip(next_cursor, 80))}): it cannot be stored`,
      );
    }
    if (has_more && next_cursor === (cursor ?? '')) {
      throw new SourceError(
        `${where} reported has_more with next_cursor unchanged (${JSON.stringify(clip(next_cursor, 80))}): ` +
          'paging would loop forever on the same page (fix the source to advance next_cursor)',
      );
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
    return {
      records: page.records,
      bad: page.bad,
      nextCursor: next_cursor,
      // A page without items ends the cycle: a source that always answers an empty page with a new
      // cursor and has_more would otherwise be paged forever. The next cycle continues from the cursor.
      hasMore: has_more && items.length > 0,
      ignored: Math.max(0, items.length - limit),
    };
  }

  /**
   * GET `u`, following redirects to the same host only: the configured headers and credentials
   * are never sent to another host.
   */
  private async request(u: URL, auth: Record<string, string>, signal: AbortSignal, where: string): Promise<Response> {
    let target = u;
    for (let hop = 0; ; hop++) {
      const res = await fetch(target, {
        method: 'GET',
        headers: { accept: 'application/json', ...auth, ...this.headers },
        signal,
        redirect: 'manual',
      });
      const location = res.headers.get('location');
      if (res.status < 300 || res.status > 399 || location === null) return res;
      await res.body?.cancel();
      let next: URL;
      try {
        next = new URL(location, target);
      } catch {
        throw new SourceError(`${where} answered HTTP ${res.status} with an invalid location: ${JSON.stringify(clip(location, 120))}`);
      }
      const to = `${next.protocol}//${next.host}${next.pathname}`;
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new SourceError(`${where} redirected (HTTP ${res.status}) to a non-HTTP URL ${clip(printable(to), 120)}`);
      }
      const sameHost = next.origin === target.origin || (next.protocol === 'https:' && next.hostname === target.hostname);
      if (!sameHost) {
        throw new SourceError(
          `${where} redirected (HTTP ${res.status}) to another host, ${clip(printable(to), 120)}: ` +
            "redirects to another host are not followed (the source's headers would be sent there); configure that URL as the source",
        );
      }
      if (hop + 1 > MAX_REDIRECTS) {
        throw new SourceError(`${where} redirected more than ${MAX_REDIRECTS} times (last to ${clip(printable(to), 120)})`);
      }
      target = next;
    }
  }
}
