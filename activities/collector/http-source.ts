/**
 * The HTTP source: `GET <url>?cursor=<cursor>&limit=<n>` answering
 * `{items: [...], next_cursor: string, has_more: boolean}`; credentials in the URL are sent as
 * Basic auth, and messages name the URL without credentials, query string or header values. The
 * protocol is described in docs/record-format.md.
 */
import { z } from 'zod';
import { formatZodError } from '../../common/types.js';
import { PageBuilder } from './record-parsing.js';
import { checkLimit, clip, errorText, SourceError, type FetchResult, type InteractionSource } from './source-contract.js';

/** An HTTP page body larger than this is refused without being parsed. */
export const MAX_PAGE_BYTES = 64 * 1024 * 1024;

export const HTTP_TIMEOUT_MS = 10_000;

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
