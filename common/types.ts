/**
 * Shared, pure types and schemas. Safe to import from workflow code (no I/O, no Node APIs).
 */
import { z } from 'zod';

/** Deployment ids and model versions reach SQL, shell commands and workflow ids: keep them boring. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
export const idSchema = (what: string) =>
  z.string({ error: `${what} is required` }).regex(ID_PATTERN, {
    message: `${what} must be 1-128 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit`,
  });

/** An http(s) URL (nothing else is fetched: no javascript:, file:, ftp: ...). */
export const httpUrlSchema = (what: string) =>
  z.string({ error: `${what} is required` }).refine(
    (v) => {
      try {
        const u = new URL(v);
        return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
      } catch {
        return false;
      }
    },
    { message: `${what} must be an http:// or https:// URL` },
  );

const DURATION_UNITS_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Milliseconds of a duration like 30s, 15m, 2h or 1d (NaN when it is not one). */
export function durationMs(v: string): number {
  const m = /^(\d{1,9})(s|m|h|d)$/.exec(v);
  return m ? Number(m[1]) * DURATION_UNITS_MS[m[2] as keyof typeof DURATION_UNITS_MS] : Number.NaN;
}

/** A duration like 30s, 15m, 2h or 1d, between `min` and `max` (both given the same way). */
export const durationSchema = (what: string, min: string, max: string) =>
  z.string().superRefine((v, ctx) => {
    const ms = durationMs(v);
    if (Number.isNaN(ms)) ctx.addIssue({ code: 'custom', message: `${what} must look like 30s, 15m, 2h or 1d (got '${v.slice(0, 40)}')` });
    else if (ms < durationMs(min) || ms > durationMs(max))
      ctx.addIssue({ code: 'custom', message: `${what} must be between ${min} and ${max} (got ${v})` });
  });

export const CHECKS = ['quality', 'hallucination', 'toxicity'] as const;
export type Check = (typeof CHECKS)[number];

/** Text budget per field, in characters, applied before judging (documented in README). */
export const TEXT_BUDGET = { prompt: 8000, response: 8000, context: 16000 } as const;
/**
 * false when a string starts with a calendar date (YYYY-MM-DD) that does not exist, such as
 * 2025-02-30 (JavaScript's Date would silently roll it over to March).
 */
export function calendarDateExists(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(s.trim());
  if (!m) return true;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d;
}

/** An ISO-8601 date-time without a zone designator (2025-06-01T10:00, 2025-06-01 10:00:00.5). */
const ZONELESS_DATE_TIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$/i;

/**
 * Epoch milliseconds of a date text (NaN when it does not parse), read as UTC when it names no
 * zone: JavaScript reads such a date-time in the process's TZ, so the same record or argument
 * would mean another instant on a machine in another zone.
 */
export function parseUtcDate(s: string): number {
  const t = s.trim();
  const m = ZONELESS_DATE_TIME.exec(t);
  return Date.parse(m ? `${m[1]}T${m[2]}Z` : t);
}

/** The texts a judge sees, after truncation. */
export interface JudgeInput {
  prompt: string;
  response: string;
  context?: string;
}

export const checkResultSchemas = {
  quality: z.object({
    coherence: z.number().min(0).max(1),
    relevance: z.number().min(0).max(1),
    accuracy: z.number().min(0).max(1),
    completeness: z.number().min(0).max(1),
    overall: z.number().min(0).max(1),
    reasoning: z.string().max(4000).optional(),
  }),
  hallucination: z.object({
    score: z.number().min(0).max(1),
    confidence: z.number().min(0).max(1),
    reasoning: z.string().max(4000),
  }),
  toxicity: z.object({
    toxicity: z.number().min(0).max(1),
    hate_speech: z.number().min(0).max(1),
    violence: z.number().min(0).max(1),
    profanity: z.number().min(0).max(1),
    reasoning: z.string().max(4000).optional(),
  }),
} as const;
export type CheckResult<C extends Check> = z.output<(typeof checkResultSchemas)[C]>;

/** The reply of a combined judge call: one result per check. */
export const combinedResultSchema = z.object({
  quality: checkResultSchemas.quality,
  hallucination: checkResultSchemas.hallucination,
  toxicity: checkResultSchemas.toxicity,
});
export type CombinedResult = z.output<typeof combinedResultSchema>;
export type AnyCheckResult = CheckResult<'quality'> | CheckResult<'hallucination'> | CheckResult<'toxicity'>;

/** The single number stored as `score` for a check (higher = more of the named property). */
export function primaryScore(check: Check, r: AnyCheckResult): number {
  switch (check) {
    case 'quality':
      return (r as CheckResult<'quality'>).overall;
    case 'hallucination':
      return (r as CheckResult<'hallucination'>).score;
    case 'toxicity':
      return (r as CheckResult<'toxicity'>).toxicity;
  }
}

/** Issues named in a validation message; the rest are counted (a message must stay storable and readable). */
const ISSUES_SHOWN = 5;

export function formatZodError(e: z.ZodError): string {
  const shown = e.issues.slice(0, ISSUES_SHOWN).map((i) => {
    const text = i.path.length ? `${i.path.map(String).join('.')}: ${i.message}` : i.message;
    return text.length > 300 ? `${text.slice(0, 300)}…` : text;
  });
  const more = e.issues.length - shown.length;
  return `${shown.join('; ')}${more > 0 ? `; and ${more} more issues` : ''}`;
}

/** C0 and C1 control characters (newlines, escapes, NUL) and lone surrogates: unprintable, and PostgreSQL refuses NUL. */
const CONTROL_OR_LONE_SURROGATE = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** One line of text a person typed (a reason, a name): trimmed, 1 to `max` characters, no control characters. */
export const plainTextSchema = (what: string, max: number, whenEmpty = `${what} must not be empty`) =>
  z
    .string({ error: `${what} must be text` })
    .trim()
    .min(1, { message: whenEmpty })
    .max(max, { message: `${what} must be at most ${max} characters` })
    .refine((s) => !CONTROL_OR_LONE_SURROGATE.test(s), {
      message: `${what} must be one line without control characters (newlines, tabs, escapes, NUL) or broken unicode`,
    });
