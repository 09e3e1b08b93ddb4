/**
 * The result of one infrastructure collection (`collectInfra`), bounded whatever the number of
 * sources: totals over every source, and at most MAX_LISTED_SOURCES outcomes listed, those with an
 * error or bad rows first, each error clipped. It crosses Temporal (the workflow's result and the
 * carry of its continue-as-new), where a payload may hold at most 2 MB. Pure, workflow-safe.
 */
import { z } from 'zod';

/** One source's outcome as the collection lists it. */
export interface SourceOutcome {
  id: string;
  kind: string;
  rows: number;
  bad: number;
  stepSeconds?: number;
  error?: string;
}

export interface InfraCollection {
  /** Sources collected (with or without an error). */
  sources: number;
  rows: number;
  bad: number;
  /** Sources whose collection failed. */
  failed: number;
  /** At most MAX_LISTED_SOURCES: failed ones first, then those with bad rows, then the others; each in id order. */
  outcomes: SourceOutcome[];
  /** Sources not in `outcomes` (all counted in the totals). */
  notListed: number;
}

export const MAX_LISTED_SOURCES = 200;
/** Characters of one source's error a collection keeps. */
export const MAX_ERROR_CHARS = 400;

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const sourceOutcomeSchema = z.object({
  id: z.string().max(1_000),
  kind: z.string().max(40),
  rows: count,
  bad: count,
  stepSeconds: count.optional(),
  error: z
    .string()
    .max(MAX_ERROR_CHARS + 1)
    .optional(),
});
export const infraCollectionSchema = z.object({
  sources: count,
  rows: count,
  bad: count,
  failed: count,
  outcomes: z.array(sourceOutcomeSchema).max(MAX_LISTED_SOURCES),
  notListed: count,
});
/** What a collection carries into its next run (continue-as-new): the sources up to `after` are done. */
export const infraCarrySchema = z.object({ after: z.string().min(1).max(1_000), done: infraCollectionSchema });
export type InfraCarry = z.output<typeof infraCarrySchema>;

export const emptyCollection = (): InfraCollection => ({ sources: 0, rows: 0, bad: 0, failed: 0, outcomes: [], notListed: 0 });

const rank = (o: SourceOutcome) => (o.error !== undefined ? 0 : o.bad > 0 ? 1 : 2);
const byRankThenId = (a: SourceOutcome, b: SourceOutcome) => rank(a) - rank(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

const clip = (s: string) => (s.length > MAX_ERROR_CHARS ? `${s.slice(0, MAX_ERROR_CHARS)}…` : s);

/** `c` with one more source's outcome counted (and listed while it ranks among the first MAX_LISTED_SOURCES). */
export function addOutcome(c: InfraCollection, o: SourceOutcome): InfraCollection {
  const listed: SourceOutcome = {
    id: o.id,
    kind: o.kind,
    rows: o.rows,
    bad: o.bad,
    ...(o.stepSeconds !== undefined ? { stepSeconds: o.stepSeconds } : {}),
    ...(o.error !== undefined ? { error: clip(o.error) } : {}),
  };
  const outcomes = [...c.outcomes, listed].sort(byRankThenId);
  const kept = outcomes.slice(0, MAX_LISTED_SOURCES);
  return {
    sources: c.sources + 1,
    rows: c.rows + o.rows,
    bad: c.bad + o.bad,
    failed: c.failed + (o.error !== undefined ? 1 : 0),
    outcomes: kept,
    notListed: c.notListed + outcomes.length - kept.length,
  };
}

/** One line for the Web UI and the CLI: "412 sources, 1,203,112 rows, 3 bad, 2 failed". */
export function collectionLine(c: InfraCollection): string {
  const n = (x: number) => x.toLocaleString('en-US');
  return `${n(c.sources)} source${c.sources === 1 ? '' : 's'}, ${n(c.rows)} rows, ${n(c.bad)} bad, ${n(c.failed)} failed`;
}
