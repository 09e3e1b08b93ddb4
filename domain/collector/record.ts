/** One interaction record as every source delivers it (documented in docs/record-format.md). Pure, workflow-safe. */
import { z } from 'zod';
import { calendarDateExists, idSchema, parseUtcDate } from '../../common/types.js';

/** A record whose texts exceed this many characters in total is rejected as oversized. */
export const MAX_RECORD_CHARS = 1_000_000;

/**
 * One interaction as every source delivers it (after parsing). Documented in README "Record format".
 */
export const interactionSchema = z.object({
  id: idSchema('id'),
  deployment: idSchema('deployment'),
  model_version: idSchema('model_version'),
  timestamp: z.union([z.string(), z.number()]).transform((v, ctx) => {
    const d = typeof v === 'number' ? new Date(v < 1e12 ? v * 1000 : v) : new Date(parseUtcDate(v));
    if (Number.isNaN(d.getTime()) || (typeof v === 'string' && !calendarDateExists(v))) {
      ctx.addIssue({ code: 'custom', message: `timestamp '${v}' is not an ISO-8601 date or epoch number` });
      return z.NEVER;
    }
    return d.toISOString();
  }),
  prompt: z.string().min(1, { message: 'prompt must not be empty' }),
  response: z.string(),
  context: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export type Interaction = z.output<typeof interactionSchema>;

/** How old or how far ahead of the collector's clock a record's timestamp may be (defaults). */
export const DEFAULT_TIMESTAMP_WINDOW = { maxAgeDays: 3650, maxAheadMinutes: 24 * 60 } as const;
/** Metadata nested deeper than this is refused (it cannot be stored or shown safely). */
export const MAX_METADATA_DEPTH = 32;
/** Metadata larger than this many characters once serialised is refused. */
export const MAX_METADATA_CHARS = 100_000;

/** The accepted range of record timestamps at `now`, in epoch milliseconds. */
export function timestampWindow(now: number, w: { maxAgeDays: number; maxAheadMinutes: number } = DEFAULT_TIMESTAMP_WINDOW) {
  return { oldest: now - w.maxAgeDays * 86_400_000, newest: now + w.maxAheadMinutes * 60_000 };
}

/** Whether a JSON value nests deeper than `max` levels (iterative: any depth is safe to ask). */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= max) return true;
    for (const x of Array.isArray(v) ? v : Object.values(v)) stack.push([x, depth + 1]);
  }
  return false;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** The text with every lone UTF-16 surrogate replaced by U+FFFD (stores refuse them). */
export function wellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD');
}

/** Text safe to store and show: control characters and lone surrogates replaced by U+FFFD. */
export function printable(s: string): string {
  return wellFormed(s).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '\ufffd');
}
